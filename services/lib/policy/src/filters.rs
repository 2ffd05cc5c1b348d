//! The anti-spam lists an administrator keeps: the whitelist (senders that skip the spam tests or
//! greylisting), the DNS block lists with the answers that count as "listed", and our own backup
//! MX hosts (incoming relays). Administration here; the SMTP ingress asks [`Whitelist::matches`],
//! [`DnsBlacklists::active`] and [`IncomingRelays::contains`].
//!
//! The two little pattern languages are pure functions ([`wildcard_match`],
//! [`ExpectedAnswers`]) checked when an entry is added, so a stored entry always parses.

mod blacklists;
mod relays;
mod whitelist;

pub use blacklists::{
    Blacklist, BlacklistKind, DnsBlacklists, ExpectedAnswers, NewBlacklist, answer_matches,
    parse_expected,
};
pub use relays::{IncomingRelay, IncomingRelays, NewIncomingRelay};
pub use whitelist::{NewWhitelistEntry, Whitelist, WhitelistEntry, WhitelistKind, wildcard_match};

use crate::PolicyError;
use crate::ip_ranges::canonical_ip;
use ipnet::IpNet;
use std::net::IpAddr;

/// Both ends canonical, of one family, in order.
fn checked_range(lower: IpAddr, upper: IpAddr) -> Result<(IpNet, IpNet), PolicyError> {
    let (lower, upper) = (canonical_ip(lower), canonical_ip(upper));
    if lower.is_ipv4() != upper.is_ipv4() {
        return Err(PolicyError::Invalid(
            "lower and upper must be of the same address family".into(),
        ));
    }
    if lower > upper {
        return Err(PolicyError::Invalid("lower must not be above upper".into()));
    }
    Ok((IpNet::from(lower), IpNet::from(upper)))
}

/// One line of text for a table: at most `max` characters, no control characters.
fn check_text(what: &str, text: &str, max: usize) -> Result<(), PolicyError> {
    if text.chars().count() > max || text.chars().any(char::is_control) {
        return Err(PolicyError::Invalid(format!(
            "{what} must be one line of at most {max} characters"
        )));
    }
    Ok(())
}

fn unique(e: sqlx::Error, what: String) -> PolicyError {
    match &e {
        sqlx::Error::Database(db) if db.is_unique_violation() => PolicyError::AlreadyExists(what),
        _ => PolicyError::Database(e),
    }
}

/// Whether `ip` lies in the inclusive range `[lower, upper]` of its own family (IPv4-mapped IPv6
/// addresses count as IPv4).
pub fn in_range(ip: IpAddr, lower: IpAddr, upper: IpAddr) -> bool {
    let (ip, lower, upper) = (canonical_ip(ip), canonical_ip(lower), canonical_ip(upper));
    ip.is_ipv4() == lower.is_ipv4() && lower <= ip && ip <= upper
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ranges_are_canonical_same_family_and_ordered() {
        let v4: IpAddr = "192.0.2.1".parse().unwrap();
        let mapped: IpAddr = "::ffff:192.0.2.9".parse().unwrap();
        let (lower, upper) = checked_range(v4, mapped).unwrap();
        assert_eq!(upper.addr().to_string(), "192.0.2.9");
        assert_eq!(lower.addr(), v4);
        assert!(checked_range(v4, "2001:db8::1".parse().unwrap()).is_err());
        assert!(checked_range(mapped, v4).is_err());
    }
}
