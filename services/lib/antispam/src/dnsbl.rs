//! DNS block lists: the query names (RFC 5782) and the lookup. Whether an answer counts as
//! "listed" is the list's `expected` pattern, applied by the caller.

use hickory_resolver::TokioResolver;
use std::net::{IpAddr, Ipv4Addr};

/// The name asked of a DNSBL about `ip`: reversed octets (IPv4) or nibbles (IPv6) + zone.
pub fn client_query(ip: IpAddr, zone: &str) -> String {
    let zone = zone.trim_matches('.');
    match ip {
        IpAddr::V4(v4) => {
            let [a, b, c, d] = v4.octets();
            format!("{d}.{c}.{b}.{a}.{zone}.")
        }
        IpAddr::V6(v6) => {
            let mut name = String::with_capacity(64 + zone.len());
            for byte in v6.octets().iter().rev() {
                name.push(char::from_digit(u32::from(byte & 0x0f), 16).unwrap_or('0'));
                name.push('.');
                name.push(char::from_digit(u32::from(byte >> 4), 16).unwrap_or('0'));
                name.push('.');
            }
            name.push_str(zone);
            name.push('.');
            name
        }
    }
}

/// The name asked of a SURBL-style list about a domain.
pub fn domain_query(domain: &str, zone: &str) -> String {
    format!(
        "{}.{}.",
        domain.trim_matches('.').to_ascii_lowercase(),
        zone.trim_matches('.')
    )
}

/// The A records of `name`: empty when the name does not exist (not listed). DNS failures
/// count as not listed too (a block list that does not answer must not block mail); they are
/// logged.
pub async fn answers(resolver: &TokioResolver, name: &str) -> Vec<Ipv4Addr> {
    match resolver.ipv4_lookup(name).await {
        Ok(lookup) => lookup
            .answers()
            .iter()
            .filter_map(|record| match &record.data {
                hickory_resolver::proto::rr::RData::A(a) => Some(a.0),
                _ => None,
            })
            .collect(),
        Err(error) => {
            if !error.is_no_records_found() && !error.is_nx_domain() {
                tracing::debug!(%error, name, "block list lookup failed; counted as not listed");
            }
            Vec::new()
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn query_names() {
        assert_eq!(
            client_query("192.0.2.99".parse().unwrap(), "zen.example"),
            "99.2.0.192.zen.example."
        );
        assert_eq!(
            client_query("2001:db8::1".parse().unwrap(), "bl.test."),
            "1.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.8.b.d.0.1.0.0.2.bl.test."
        );
        assert_eq!(
            domain_query("Spam.Example.", "multi.surbl.test"),
            "spam.example.multi.surbl.test."
        );
    }
}
