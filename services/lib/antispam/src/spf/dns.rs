//! The DNS queries of check_host() over hickory: names built label by label from SPF's text,
//! answers reduced to what SPF needs, and failures told apart from "nothing there".

use hickory_resolver::TokioResolver;
use hickory_resolver::proto::rr::{Name, RData, RecordType};
use std::net::IpAddr;

/// Longest domain name in text form, without the final dot (RFC 1035 §2.3.4 less the dot).
pub const MAX_NAME_LEN: usize = 253;
/// Longest label (RFC 1035 §2.3.4).
const MAX_LABEL_LEN: usize = 63;

/// The server failed or did not answer (SERVFAIL, REFUSED, timeout...): check_host() stops with
/// temperror (§4.4, §5). NXDOMAIN and empty answers are no failure but an empty answer.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct DnsFailure;

/// The name for `text` (one final dot allowed), taken byte for byte between the dots: SPF
/// names may hold any visible character (`foo:bar/baz.example.com`). `None` when DNS cannot
/// carry it: empty, an empty or over-long label, or longer than [`MAX_NAME_LEN`].
pub fn name(text: &str) -> Option<Name> {
    let text = text.strip_suffix('.').unwrap_or(text);
    if text.is_empty() || text.len() > MAX_NAME_LEN {
        return None;
    }
    let labels: Vec<&[u8]> = text.split('.').map(str::as_bytes).collect();
    if labels
        .iter()
        .any(|label| label.is_empty() || label.len() > MAX_LABEL_LEN)
    {
        return None;
    }
    let mut name = Name::from_labels(labels).ok()?;
    name.set_fqdn(true);
    Some(name)
}

/// An expanded domain name cut to [`MAX_NAME_LEN`] by dropping labels from the left (§7.3).
pub fn truncate(text: &str) -> &str {
    let mut text = text.strip_suffix('.').unwrap_or(text);
    while text.len() > MAX_NAME_LEN {
        match text.split_once('.') {
            Some((_, rest)) => text = rest,
            None => break,
        }
    }
    text
}

/// A name from an answer as text, for `%{p}`.
pub fn text(name: &Name) -> String {
    let labels: Vec<String> = name
        .iter()
        .map(|label| String::from_utf8_lossy(label).into_owned())
        .collect();
    labels.join(".")
}

async fn lookup(
    resolver: &TokioResolver,
    name: &Name,
    record_type: RecordType,
) -> Result<Vec<RData>, DnsFailure> {
    match resolver.lookup(name.clone(), record_type).await {
        Ok(lookup) => Ok(lookup
            .answers()
            .iter()
            .filter(|record| record.record_type() == record_type)
            .map(|record| record.data.clone())
            .collect()),
        Err(error) if error.is_no_records_found() => Ok(Vec::new()),
        Err(error) => {
            tracing::debug!(%error, %name, ?record_type, "SPF DNS lookup failed");
            Err(DnsFailure)
        }
    }
}

/// The TXT records at `name`, each as its character-strings joined without separator
/// (§3.3). A record of no string at all (illegal, RFC 1035 §3.3.14) is left out.
pub async fn txt(resolver: &TokioResolver, name: &Name) -> Result<Vec<Vec<u8>>, DnsFailure> {
    let answers = lookup(resolver, name, RecordType::TXT).await?;
    Ok(answers
        .iter()
        .filter_map(|data| match data {
            RData::TXT(txt) if !txt.txt_data.is_empty() => Some(txt.txt_data.concat()),
            _ => None,
        })
        .collect())
}

/// The addresses of `name` of the family of `like`: A for IPv4, AAAA for IPv6.
pub async fn addresses(
    resolver: &TokioResolver,
    name: &Name,
    like: IpAddr,
) -> Result<Vec<IpAddr>, DnsFailure> {
    let record_type = match like {
        IpAddr::V4(_) => RecordType::A,
        IpAddr::V6(_) => RecordType::AAAA,
    };
    let answers = lookup(resolver, name, record_type).await?;
    Ok(answers
        .iter()
        .filter_map(|data| match data {
            RData::A(a) => Some(IpAddr::V4(a.0)),
            RData::AAAA(aaaa) => Some(IpAddr::V6(aaaa.0)),
            _ => None,
        })
        .collect())
}

/// Whether `name` has any A record (the `exists` mechanism, whatever the client's family).
pub async fn has_ipv4(resolver: &TokioResolver, name: &Name) -> Result<bool, DnsFailure> {
    let answers = lookup(resolver, name, RecordType::A).await?;
    Ok(answers.iter().any(|data| matches!(data, RData::A(_))))
}

/// The exchanges of `name`'s MX records in answer order (the null MX's "." included).
pub async fn mx(resolver: &TokioResolver, name: &Name) -> Result<Vec<Name>, DnsFailure> {
    let answers = lookup(resolver, name, RecordType::MX).await?;
    Ok(answers
        .iter()
        .filter_map(|data| match data {
            RData::MX(mx) => Some(mx.exchange.clone()),
            _ => None,
        })
        .collect())
}

/// The names the reverse tree gives for `ip`, in answer order.
pub async fn ptr(resolver: &TokioResolver, ip: IpAddr) -> Result<Vec<Name>, DnsFailure> {
    let mut reverse = Name::from(ip);
    reverse.set_fqdn(true);
    let answers = lookup(resolver, &reverse, RecordType::PTR).await?;
    Ok(answers
        .iter()
        .filter_map(|data| match data {
            RData::PTR(ptr) => Some(ptr.0.clone()),
            _ => None,
        })
        .collect())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_are_taken_label_by_label() {
        let weird = name("foo:bar/baz.example.com.").unwrap();
        assert_eq!(weird.iter().next(), Some(&b"foo:bar/baz"[..]));
        assert_eq!(weird.num_labels(), 3);
        assert!(name("macro%percent  space%20url-space.example.com").is_some());
        assert!(name("mail.example...com").is_none());
        assert!(name(&format!("{}.example.com", "a".repeat(64))).is_none());
        assert!(name(&format!("{}.example.com", "a".repeat(63))).is_some());
        assert!(name("").is_none());
        assert!(name(".").is_none());
    }

    #[test]
    fn truncation_drops_left_labels() {
        let long = format!(
            "foobar.{}example.com",
            "somewhat.long.exp.example.com.".repeat(8)
        );
        let cut = truncate(&long);
        assert!(cut.len() <= MAX_NAME_LEN);
        assert!(cut.starts_with("somewhat."));
        assert_eq!(truncate("example.com."), "example.com");
    }
}
