//! The SPF record (RFC 7208 §4.5, §4.6, §5, §6): which TXT strings are one, and its strict
//! parse. Any syntax error anywhere makes the whole record a permerror (§4.6), so a record is
//! parsed completely before anything is evaluated.

use super::macros::{Context, MacroString, SyntaxError};
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

/// Longest record we parse, in bytes. DNS lets a TXT record reach 64 KiB; published records
/// stay far below this (the 10-lookup limit keeps them short), and a longer one is a permerror.
pub const MAX_RECORD_LEN: usize = 4096;

const VERSION: &[u8] = b"v=spf1";

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Qualifier {
    Pass,
    Fail,
    SoftFail,
    Neutral,
}

/// The CIDR lengths of `a` and `mx`: full lengths unless given.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct DualCidr {
    pub v4: u8,
    pub v6: u8,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Mechanism {
    All,
    Include(MacroString),
    A(Option<MacroString>, DualCidr),
    Mx(Option<MacroString>, DualCidr),
    Ptr(Option<MacroString>),
    Ip4(Ipv4Addr, u8),
    Ip6(Ipv6Addr, u8),
    Exists(MacroString),
}

impl Mechanism {
    /// Whether evaluating it costs DNS lookups, counted against the limit of 10 (§4.6.4).
    pub fn queries_dns(&self) -> bool {
        !matches!(self, Self::All | Self::Ip4(..) | Self::Ip6(..))
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Directive {
    pub qualifier: Qualifier,
    pub mechanism: Mechanism,
}

#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Record {
    pub directives: Vec<Directive>,
    pub redirect: Option<MacroString>,
    pub explanation: Option<MacroString>,
}

/// Whether a TXT record (its strings joined) is an SPF record: "v=spf1", any case, then a space
/// or the end (§4.5).
pub fn is_spf(text: &[u8]) -> bool {
    text.len() >= VERSION.len()
        && text[..VERSION.len()].eq_ignore_ascii_case(VERSION)
        && matches!(text.get(VERSION.len()), None | Some(b' '))
}

impl Record {
    /// Parses a record [`is_spf`] accepted.
    pub fn parse(text: &[u8]) -> Result<Self, SyntaxError> {
        if text.len() > MAX_RECORD_LEN {
            return Err(SyntaxError(format!(
                "record of {} bytes, more than {MAX_RECORD_LEN}",
                text.len()
            )));
        }
        if !is_spf(text) {
            return Err(SyntaxError("no v=spf1 record".into()));
        }
        // Only US-ASCII (§3.1); the terms then check every byte against their grammar.
        let text = std::str::from_utf8(&text[VERSION.len()..])
            .ok()
            .filter(|text| text.is_ascii())
            .ok_or_else(|| SyntaxError("non-ASCII bytes in the record".into()))?;
        let mut record = Self::default();
        // Terms are separated by spaces only: other whitespace is a syntax error (§4.6.1).
        for term in text.split(' ').filter(|term| !term.is_empty()) {
            record.add_term(term)?;
        }
        Ok(record)
    }

    fn add_term(&mut self, term: &str) -> Result<(), SyntaxError> {
        // A modifier is a name followed by '=' before any ':' or '/' (§4.6.1).
        let name_end = term
            .find(|c: char| !(c.is_ascii_alphanumeric() || matches!(c, '.' | '-' | '_')))
            .unwrap_or(term.len());
        if term[name_end..].starts_with('=') {
            return self.add_modifier(&term[..name_end], &term[name_end + 1..]);
        }
        let (qualifier, rest) = match term.as_bytes()[0] {
            b'+' => (Qualifier::Pass, &term[1..]),
            b'-' => (Qualifier::Fail, &term[1..]),
            b'~' => (Qualifier::SoftFail, &term[1..]),
            b'?' => (Qualifier::Neutral, &term[1..]),
            _ => (Qualifier::Pass, term),
        };
        let mechanism = parse_mechanism(rest)?;
        self.directives.push(Directive {
            qualifier,
            mechanism,
        });
        Ok(())
    }

    fn add_modifier(&mut self, name: &str, value: &str) -> Result<(), SyntaxError> {
        if !name.starts_with(|c: char| c.is_ascii_alphabetic()) {
            return Err(SyntaxError(format!(
                "modifier name {name:?} does not start with a letter"
            )));
        }
        let slot = if name.eq_ignore_ascii_case("redirect") {
            &mut self.redirect
        } else if name.eq_ignore_ascii_case("exp") {
            &mut self.explanation
        } else {
            // Unknown modifiers are ignored, but their value must still be a macro string.
            MacroString::parse(value, Context::UnknownModifier)?;
            return Ok(());
        };
        if slot.is_some() {
            return Err(SyntaxError(format!("{name}= more than once")));
        }
        *slot = Some(MacroString::parse_domain_spec(value)?);
        Ok(())
    }

    /// Whether the record has an `all` mechanism, which makes any redirect= moot (§6.1).
    pub fn has_all(&self) -> bool {
        self.directives
            .iter()
            .any(|directive| directive.mechanism == Mechanism::All)
    }
}

fn parse_mechanism(text: &str) -> Result<Mechanism, SyntaxError> {
    let name_end = text.find([':', '/']).unwrap_or(text.len());
    let (name, rest) = text.split_at(name_end);
    let name = name.to_ascii_lowercase();
    let argument = |rest| argument(&name, rest);
    match name.as_str() {
        "all" if rest.is_empty() => Ok(Mechanism::All),
        "include" => Ok(Mechanism::Include(MacroString::parse_domain_spec(
            argument(rest)?,
        )?)),
        "exists" => Ok(Mechanism::Exists(MacroString::parse_domain_spec(
            argument(rest)?,
        )?)),
        "ptr" if rest.is_empty() => Ok(Mechanism::Ptr(None)),
        "ptr" => Ok(Mechanism::Ptr(Some(MacroString::parse_domain_spec(
            argument(rest)?,
        )?))),
        "a" | "mx" => {
            let (spec, cidr) = split_dual_cidr(rest)?;
            let domain = if spec.is_empty() {
                None
            } else {
                Some(MacroString::parse_domain_spec(argument(spec)?)?)
            };
            Ok(if name == "a" {
                Mechanism::A(domain, cidr)
            } else {
                Mechanism::Mx(domain, cidr)
            })
        }
        "ip4" => {
            let (network, prefix) = split_prefix(argument(rest)?, 32)?;
            let address = parse_ipv4(network)
                .ok_or_else(|| SyntaxError(format!("bad ip4 network {network:?}")))?;
            Ok(Mechanism::Ip4(address, prefix))
        }
        "ip6" => {
            let (network, prefix) = split_prefix(argument(rest)?, 128)?;
            let address = network
                .parse()
                .map_err(|_| SyntaxError(format!("bad ip6 network {network:?}")))?;
            Ok(Mechanism::Ip6(address, prefix))
        }
        _ => Err(SyntaxError(format!(
            "unknown mechanism or bad term {text:?}"
        ))),
    }
}

/// What follows the ':' after a mechanism's name.
fn argument<'a>(name: &str, rest: &'a str) -> Result<&'a str, SyntaxError> {
    rest.strip_prefix(':')
        .ok_or_else(|| SyntaxError(format!("{name} needs ':' and an argument")))
}

/// `network [ "/" length ]` of ip4/ip6.
fn split_prefix(text: &str, max: u8) -> Result<(&str, u8), SyntaxError> {
    match text.split_once('/') {
        Some((network, length)) => Ok((network, cidr_length(length, max)?)),
        None => Ok((text, max)),
    }
}

/// Splits `[ ":" domain-spec ] [ "/" ip4-length ] [ "//" ip6-length ]` into the part before
/// the lengths and the lengths. A domain-spec never ends in "/" and digits (its end is a
/// macro or a top label), so trailing "/digits" are always lengths.
fn split_dual_cidr(text: &str) -> Result<(&str, DualCidr), SyntaxError> {
    let mut cidr = DualCidr { v4: 32, v6: 128 };
    let mut rest = text;
    if let Some((head, digits)) = trailing_length(rest) {
        if let Some(head) = head.strip_suffix('/') {
            cidr.v6 = cidr_length(digits, 128)?;
            rest = head;
            if let Some((head, digits)) = trailing_length(rest) {
                cidr.v4 = cidr_length(digits, 32)?;
                rest = head;
            }
        } else {
            cidr.v4 = cidr_length(digits, 32)?;
            rest = head;
        }
    }
    Ok((rest, cidr))
}

/// `text` as (what precedes "/digits", digits) when it ends so.
fn trailing_length(text: &str) -> Option<(&str, &str)> {
    let digits_start = text
        .rfind(|c: char| !c.is_ascii_digit())
        .map_or(0, |at| at + 1);
    let (head, digits) = text.split_at(digits_start);
    let head = head.strip_suffix('/')?;
    (!digits.is_empty()).then_some((head, digits))
}

/// A CIDR length: decimal without leading zeros (like ip4-network's octets), at most `max`.
fn cidr_length(digits: &str, max: u8) -> Result<u8, SyntaxError> {
    let valid = !digits.is_empty()
        && digits.len() <= 3
        && digits.bytes().all(|b| b.is_ascii_digit())
        && (digits == "0" || !digits.starts_with('0'));
    match digits.parse::<u8>() {
        Ok(length) if valid && length <= max => Ok(length),
        _ => Err(SyntaxError(format!("bad CIDR length {digits:?}"))),
    }
}

/// ip4-network: exactly four decimal octets without leading zeros (§5.6).
fn parse_ipv4(text: &str) -> Option<Ipv4Addr> {
    let mut octets = [0u8; 4];
    let mut parts = text.split('.');
    for octet in &mut octets {
        let part = parts.next()?;
        let valid = !part.is_empty()
            && part.len() <= 3
            && part.bytes().all(|b| b.is_ascii_digit())
            && (part == "0" || !part.starts_with('0'));
        if !valid {
            return None;
        }
        *octet = part.parse().ok()?;
    }
    parts.next().is_none().then_some(Ipv4Addr::from(octets))
}

/// Whether `ip` is in `network/prefix` (same family only).
pub fn in_network(ip: IpAddr, network: IpAddr, prefix: u8) -> bool {
    match (ip, network) {
        (IpAddr::V4(ip), IpAddr::V4(network)) => {
            let mask = u32::MAX
                .checked_shl(32u32.saturating_sub(u32::from(prefix)))
                .unwrap_or(0);
            u32::from(ip) & mask == u32::from(network) & mask
        }
        (IpAddr::V6(ip), IpAddr::V6(network)) => {
            let mask = u128::MAX
                .checked_shl(128u32.saturating_sub(u32::from(prefix)))
                .unwrap_or(0);
            u128::from(ip) & mask == u128::from(network) & mask
        }
        _ => false,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn parse(text: &str) -> Result<Record, SyntaxError> {
        Record::parse(text.as_bytes())
    }

    #[test]
    fn selects_version_1_records_only() {
        assert!(is_spf(b"v=spf1"));
        assert!(is_spf(b"V=SpF1 -all"));
        assert!(!is_spf(b"v=spf10"));
        assert!(!is_spf(b"v=spf1mx"));
        assert!(!is_spf(b"v=spf1\t-all"));
        assert!(!is_spf(b"spf1"));
    }

    #[test]
    fn parses_every_mechanism_and_modifier() {
        let record = parse(
            "v=spf1  +a -mx:mx.example.com/24//64 ~ptr ?ip4:192.0.2.0/24 ip6:2001:db8::/32 \
             include:_spf.example.com exists:%{ir}.bl.example.com a//0 Redirect=x.example.com \
             exp=why.%{d} moo.cow-far_out=man:dog/cat all ",
        )
        .unwrap();
        assert_eq!(record.directives.len(), 9);
        assert_eq!(record.directives[1].qualifier, Qualifier::Fail);
        assert!(matches!(
            record.directives[1].mechanism,
            Mechanism::Mx(Some(_), DualCidr { v4: 24, v6: 64 })
        ));
        assert!(matches!(
            record.directives[7].mechanism,
            Mechanism::A(None, DualCidr { v4: 32, v6: 0 })
        ));
        assert!(record.redirect.is_some() && record.explanation.is_some() && record.has_all());
        assert_eq!(parse("v=spf1").unwrap(), Record::default());
    }

    #[test]
    fn syntax_errors_are_errors() {
        for bad in [
            "v=spf1 -all moo",
            "v=spf1 moo.cow/far_out=man:dog/cat",
            "v=spf1 moo.cow:far=x",
            "v=spf1 redirect:t2.example.com",
            "v=spf1 a:foo-bar",
            "v=spf1 -all.",
            "v=spf1 -all:x",
            "v=spf1 -all/8",
            "v=spf1 ptr/0",
            "v=spf1 ptr:",
            "v=spf1 a/33",
            "v=spf1 a//129",
            "v=spf1 a/24/64",
            "v=spf1 a:example.com:8080",
            "v=spf1 a:museum",
            "v=spf1 a:abc.123",
            "v=spf1 a:foo.example.com\0",
            "v=spf1 a:",
            "v=spf1 include",
            "v=spf1 include:",
            "v=spf1 include:ip5.example.com/24",
            "v=spf1 exists",
            "v=spf1 exists:x.example.com/24",
            "v=spf1 ip4",
            "v=spf1 ip4:1.2.3.4/33",
            "v=spf1 ip4:1.2.3.4/032",
            "v=spf1 ip4:1.2.3.4//32",
            "v=spf1 ip4:1.2.3.4:8080",
            "v=spf1 ip4:1.2.3",
            "v=spf1 ip4:01.2.3.4",
            "v=spf1 ip6",
            "v=spf1 ip6:::1.1.1.1/129",
            "v=spf1 ip6:::1.1.1.1//33",
            "v=spf1 ip6::CAFE::BABE",
            "v=spf1 1up=foo",
            "v=spf1 =all",
            "v=spf1 foo=%abc",
            "v=spf1 exp=",
            "v=spf1 exp=-all",
            "v=spf1 redirect=-all",
            "v=spf1 redirect=",
            "v=spf1 exp=a.example.com exp=b.example.com",
            "v=spf1 redirect=a.example.com redirect=a.example.com",
            "v=spf1 exp=%{r}.example.com",
            "v=spf1 a:%{a}.example.com",
            "v=spf1 a:ctrl.example.com\rptr",
            "v=spf1 ip4:192.0.2.5\n",
            "v=spf1 \u{80}a",
            "v=spf1 -exists:%(ir).sbl.example.com",
        ] {
            assert!(parse(bad).is_err(), "{bad:?} parsed");
        }
    }

    #[test]
    fn valid_oddities_parse() {
        for good in [
            "v=spf1 a:foo:bar/baz.example.com",
            "v=spf1 mx:foo:bar/baz.example.com",
            "v=spf1 default=+",
            "v=spf1 a:foo.example.xn--zckzah -all",
            "v=spf1 a:mail.example...com",
            "v=spf1 ip6:Cafe:Babe:8000::/33",
            "v=spf1 ip6:::1.1.1.1/0",
            "v=spf1 a:%{H}.bar",
            "v=spf1 a:macro%%percent%_%_space%-url-space.example.com",
            "v=spf1 exists:%{l2r+-}.user.%{d2}",
            "v=spf1 redirect=%{d}.d.spf.example.com.",
            "v=spf1 a/24//64",
        ] {
            assert!(parse(good).is_ok(), "{good:?} failed: {:?}", parse(good));
        }
    }

    #[test]
    fn networks_match_by_prefix() {
        let ip = |text: &str| text.parse::<IpAddr>().unwrap();
        assert!(in_network(ip("1.2.3.4"), ip("1.1.1.1"), 0));
        assert!(in_network(ip("1.2.3.4"), ip("1.2.3.0"), 24));
        assert!(!in_network(ip("1.2.4.4"), ip("1.2.3.0"), 24));
        assert!(in_network(
            ip("cafe:babe:8000::"),
            ip("cafe:babe:8000::"),
            33
        ));
        assert!(!in_network(ip("1.2.3.4"), ip("::1.1.1.1"), 0));
    }

    #[test]
    fn over_long_records_are_errors() {
        let long = format!("v=spf1{}", " a".repeat(MAX_RECORD_LEN));
        assert!(parse(&long).is_err());
    }

    proptest! {
        #[test]
        fn garbage_never_panics(body in "[ -~]{0,300}") {
            let _ = parse(&format!("v=spf1 {body}"));
        }

        #[test]
        fn term_shaped_garbage_never_panics(
            terms in proptest::collection::vec(
                "[-+~?]?(a|mx|ptr|ip4|ip6|all|include|exists|redirect|exp|x)[:=/]?[%{}a-z0-9.:/]{0,30}",
                0..20,
            )
        ) {
            let _ = parse(&format!("v=spf1 {}", terms.join(" ")));
        }

        #[test]
        fn any_bytes_never_panic(bytes in proptest::collection::vec(any::<u8>(), 0..400)) {
            let mut text = b"v=spf1 ".to_vec();
            text.extend(bytes);
            let _ = Record::parse(&text);
        }
    }
}
