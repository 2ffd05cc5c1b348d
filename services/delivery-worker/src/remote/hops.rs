//! Where mail for a remote domain goes: its route if it has one, else the relayer if one is
//! set, else its MX hosts (RFC 5321 section 5: preference order, the domain itself when it has
//! no MX, and RFC 7505's null MX meaning "accepts no mail").
//!
//! Loop guard (the reference server's): an MX or relayer that is this cluster itself (its
//! host name, or an address in `delivery.own_networks`) is not used; MX hosts from that
//! preference on are dropped (RFC 5321 5.1), and if none is left the recipient bounces.
//! Routes are the administrator's explicit choice and are exempt.

use super::Remote;
use mc_policy::{NextHop, TlsMode};
use std::net::IpAddr;

/// One host to try, with its addresses in order.
#[derive(Debug, Clone)]
pub struct Hop {
    pub name: String,
    pub addrs: Vec<IpAddr>,
    pub port: u16,
    pub tls: TlsMode,
    pub auth: Option<(String, String)>,
}

/// What to do with recipients at a domain.
pub enum Plan {
    Hops {
        hops: Vec<Hop>,
        /// A route's own retry settings.
        retries: Option<u32>,
        retry_minutes: Option<u32>,
    },
    /// Permanent: bounce (enhanced status, text).
    Fail(&'static str, String),
    /// Temporary: try again later (reason with its enhanced status).
    Defer(String),
}

pub async fn plan(remote: &Remote, domain: &str) -> Plan {
    match remote.settings.route_for(domain).await {
        Err(error) => return Plan::Defer(format!("4.3.0 delivery settings unavailable: {error}")),
        Ok(Some(route)) => return fixed(remote, route, false).await,
        Ok(None) => {}
    }
    match remote.settings.relayer_hop().await {
        Err(error) => return Plan::Defer(format!("4.3.0 delivery settings unavailable: {error}")),
        Ok(Some(relayer)) => return fixed(remote, relayer, true).await,
        Ok(None) => {}
    }
    mx(remote, domain).await
}

/// A route or the relayer: one named host.
async fn fixed(remote: &Remote, next: NextHop, check_loop: bool) -> Plan {
    let addrs = match next.host.parse::<IpAddr>() {
        Ok(ip) => vec![ip],
        Err(_) => match remote.resolver.lookup_ip(next.host.as_str()).await {
            Ok(found) => found.iter().collect(),
            Err(error) if error.is_no_records_found() => Vec::new(),
            Err(error) => {
                return Plan::Defer(format!("4.4.3 DNS lookup of {} failed: {error}", next.host));
            }
        },
    };
    if addrs.is_empty() {
        return Plan::Defer(format!("4.4.4 {} has no address", next.host));
    }
    if check_loop && remote.is_own(&next.host, &addrs) {
        return Plan::Fail(
            "5.4.6",
            format!(
                "The mail server software tried to deliver e-mail to the local machine: the relayer {} is this cluster",
                next.host
            ),
        );
    }
    Plan::Hops {
        hops: vec![Hop {
            name: next.host,
            addrs,
            port: next.port,
            tls: next.tls,
            auth: next.auth,
        }],
        retries: next.retries,
        retry_minutes: next.retry_minutes,
    }
}

async fn mx(remote: &Remote, domain: &str) -> Plan {
    let fqdn = format!("{domain}.");
    let mut exchanges: Vec<(u16, String)> = match remote.resolver.mx_lookup(fqdn.as_str()).await {
        Ok(lookup) => lookup
            .answers()
            .iter()
            .filter_map(|record| match &record.data {
                hickory_resolver::proto::rr::RData::MX(mx) => {
                    Some((mx.preference, mx.exchange.to_ascii()))
                }
                _ => None,
            })
            .collect(),
        Err(error) if error.is_nx_domain() => {
            return Plan::Fail(
                "5.1.2",
                format!("550 5.1.2 the domain {domain} does not exist"),
            );
        }
        Err(error) if error.is_no_records_found() => Vec::new(),
        Err(error) => return Plan::Defer(format!("4.4.3 MX lookup of {domain} failed: {error}")),
    };
    let is_null = |name: &str| name == "." || name.is_empty();
    if !exchanges.is_empty() && exchanges.iter().all(|(_, name)| is_null(name)) {
        return Plan::Fail(
            "5.1.10",
            format!("550 5.1.10 {domain} accepts no mail (null MX, RFC 7505)"),
        );
    }
    exchanges.retain(|(_, name)| !is_null(name));
    if exchanges.is_empty() {
        // No MX: the domain itself is the implicit MX (RFC 5321 5.1).
        exchanges.push((0, domain.to_string()));
    }
    exchanges.sort_by_key(|(preference, _)| *preference);
    let mut hops = Vec::new();
    let mut last_error = None;
    let mut looped = None;
    for (preference, name) in exchanges {
        if let Some(own) = looped
            && preference >= own
        {
            break;
        }
        let name = name.trim_end_matches('.').to_ascii_lowercase();
        let addrs: Vec<IpAddr> = match remote.resolver.lookup_ip(format!("{name}.").as_str()).await
        {
            Ok(found) => found.iter().collect(),
            Err(error) => {
                last_error = Some(format!("{name}: {error}"));
                continue;
            }
        };
        if remote.is_own(&name, &addrs) {
            looped = Some(preference);
            // Hosts of the same preference already listed stay: they are equal peers.
            continue;
        }
        if !addrs.is_empty() {
            hops.push(Hop {
                name,
                addrs,
                port: remote.remote_port,
                tls: TlsMode::Optional,
                auth: None,
            });
        }
    }
    if hops.is_empty() {
        if looped.is_some() {
            return Plan::Fail(
                "5.4.6",
                format!(
                    "550 5.4.6 The mail server software tried to deliver e-mail to the local machine: the MX of {domain} is this cluster"
                ),
            );
        }
        return Plan::Defer(format!(
            "4.4.4 no address found for the mail hosts of {domain}{}",
            last_error.map(|e| format!(" ({e})")).unwrap_or_default()
        ));
    }
    Plan::Hops {
        hops,
        retries: None,
        retry_minutes: None,
    }
}
