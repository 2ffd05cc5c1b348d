//! SPF macro strings (RFC 7208 §7): their syntax, checked when a record is parsed, and their
//! expansion, bounded by [`MAX_EXPANSION_LEN`].

use std::fmt::Write as _;
use std::net::IpAddr;

/// Longest expansion of one macro string, in bytes: far above any real domain name (253) or
/// explanation, low enough that a record of many `%{S}` cannot make us build megabytes.
pub const MAX_EXPANSION_LEN: usize = 4096;

/// Where a macro string stands: what it may contain differs (§7.1).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Context {
    /// A mechanism's or redirect=/exp='s target: no `c`, `r`, `t`, no spaces.
    DomainSpec,
    /// The TXT record exp= points at: spaces and every macro letter.
    Explanation,
    /// An unknown modifier's value: only checked, never expanded.
    UnknownModifier,
}

/// The macro syntax was broken; the text says where, for logs.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SyntaxError(pub String);

/// An expansion grew past [`MAX_EXPANSION_LEN`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct TooLong;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Letter {
    Sender,
    LocalPart,
    SenderDomain,
    Domain,
    Ip,
    ValidatedName,
    IpVersion,
    Helo,
    ClientIp,
    Receiver,
    Timestamp,
}

#[derive(Debug, Clone, PartialEq, Eq)]
struct Macro {
    letter: Letter,
    /// Keep this many right-hand parts (nonzero); `None` keeps all.
    keep: Option<usize>,
    reverse: bool,
    /// The characters to split on; empty means ".".
    delimiters: String,
    /// An upper-case letter: the value is URL-escaped (§7.3).
    escape: bool,
}

#[derive(Debug, Clone, PartialEq, Eq)]
enum Piece {
    Literal(String),
    /// `%%`, `%_` or `%-`: a macro-expand with a fixed value.
    Escape(&'static str),
    Macro(Macro),
}

/// A parsed macro string.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MacroString {
    pieces: Vec<Piece>,
}

/// What the macro letters stand for in one evaluation (§7.3).
#[derive(Debug, Clone, Copy)]
pub struct Values<'a> {
    pub sender: &'a str,
    pub local_part: &'a str,
    pub sender_domain: &'a str,
    pub domain: &'a str,
    pub ip: IpAddr,
    /// `%{p}`; "unknown" when no name validated.
    pub validated_name: &'a str,
    pub helo: &'a str,
    pub receiver: &'a str,
    /// Seconds since the Unix epoch, `%{t}`.
    pub now: u64,
}

impl MacroString {
    pub fn parse(text: &str, context: Context) -> Result<Self, SyntaxError> {
        let bytes = text.as_bytes();
        let mut pieces = Vec::new();
        let mut literal = String::new();
        let mut at = 0;
        while at < bytes.len() {
            let byte = bytes[at];
            if byte != b'%' {
                let allowed = matches!(byte, 0x21..=0x7e)
                    || (byte == b' ' && context == Context::Explanation);
                if !allowed {
                    return Err(SyntaxError(format!("byte {byte:#04x} in a macro string")));
                }
                literal.push(char::from(byte));
                at += 1;
                continue;
            }
            let escape = match bytes.get(at + 1) {
                Some(b'%') => Some("%"),
                Some(b'_') => Some(" "),
                Some(b'-') => Some("%20"),
                Some(b'{') => None,
                _ => {
                    return Err(SyntaxError(
                        "'%' not followed by '{', '%', '_' or '-'".into(),
                    ));
                }
            };
            if !literal.is_empty() {
                pieces.push(Piece::Literal(std::mem::take(&mut literal)));
            }
            if let Some(value) = escape {
                pieces.push(Piece::Escape(value));
                at += 2;
                continue;
            }
            let close = bytes[at..]
                .iter()
                .position(|b| *b == b'}')
                .ok_or_else(|| SyntaxError("unterminated macro".into()))?;
            pieces.push(Piece::Macro(parse_macro(
                &text[at + 2..at + close],
                context,
            )?));
            at += close + 1;
        }
        if !literal.is_empty() {
            pieces.push(Piece::Literal(literal));
        }
        Ok(Self { pieces })
    }

    /// Parses a domain-spec (§7.1): a non-empty macro string ending in a macro-expand or in
    /// "." and a toplabel, with an optional final dot.
    pub fn parse_domain_spec(text: &str) -> Result<Self, SyntaxError> {
        let spec = Self::parse(text, Context::DomainSpec)?;
        let valid_end = match spec.pieces.last() {
            None => false,
            Some(Piece::Macro(_) | Piece::Escape(_)) => true,
            Some(Piece::Literal(text)) => {
                let text = text.strip_suffix('.').unwrap_or(text);
                text.rfind('.')
                    .is_some_and(|dot| is_toplabel(&text[dot + 1..]))
            }
        };
        if valid_end {
            Ok(spec)
        } else {
            Err(SyntaxError(format!(
                "domain-spec {text:?} ends in neither a macro nor a valid top label"
            )))
        }
    }

    /// Whether expanding needs `%{p}`, which costs DNS lookups.
    pub fn uses_validated_name(&self) -> bool {
        self.pieces
            .iter()
            .any(|piece| matches!(piece, Piece::Macro(m) if m.letter == Letter::ValidatedName))
    }

    pub fn expand(&self, values: &Values<'_>) -> Result<String, TooLong> {
        let mut out = String::new();
        for piece in &self.pieces {
            match piece {
                Piece::Literal(text) => out.push_str(text),
                Piece::Escape(text) => out.push_str(text),
                Piece::Macro(one) => expand_macro(one, values, &mut out)?,
            }
            if out.len() > MAX_EXPANSION_LEN {
                return Err(TooLong);
            }
        }
        Ok(out)
    }
}

/// The inside of `%{...}`: letter, transformers, delimiters.
fn parse_macro(inner: &str, context: Context) -> Result<Macro, SyntaxError> {
    let mut chars = inner.chars();
    let first = chars
        .next()
        .ok_or_else(|| SyntaxError("empty macro".into()))?;
    let letter = match first.to_ascii_lowercase() {
        's' => Letter::Sender,
        'l' => Letter::LocalPart,
        'o' => Letter::SenderDomain,
        'd' => Letter::Domain,
        'i' => Letter::Ip,
        'p' => Letter::ValidatedName,
        'v' => Letter::IpVersion,
        'h' => Letter::Helo,
        'c' => Letter::ClientIp,
        'r' => Letter::Receiver,
        't' => Letter::Timestamp,
        other => return Err(SyntaxError(format!("unknown macro letter {other:?}"))),
    };
    let explanation_only = matches!(
        letter,
        Letter::ClientIp | Letter::Receiver | Letter::Timestamp
    );
    if explanation_only && context == Context::DomainSpec {
        return Err(SyntaxError(format!(
            "macro letter {first:?} outside an explanation"
        )));
    }
    let rest = chars.as_str();
    let digits_end = rest
        .find(|c: char| !c.is_ascii_digit())
        .unwrap_or(rest.len());
    let (digits, rest) = rest.split_at(digits_end);
    let keep = if digits.is_empty() {
        None
    } else {
        // More parts than any name has are "all of them"; saturate instead of overflowing.
        let value = digits.bytes().fold(0usize, |value, digit| {
            value
                .saturating_mul(10)
                .saturating_add(usize::from(digit - b'0'))
                .min(MAX_EXPANSION_LEN)
        });
        if value == 0 {
            return Err(SyntaxError("macro transformer digit 0".into()));
        }
        Some(value)
    };
    let (reverse, delimiters) = match rest.strip_prefix(['r', 'R']) {
        Some(after) => (true, after),
        None => (false, rest),
    };
    if let Some(bad) = delimiters
        .chars()
        .find(|c| !matches!(c, '.' | '-' | '+' | ',' | '/' | '_' | '='))
    {
        return Err(SyntaxError(format!("{bad:?} is no macro delimiter")));
    }
    Ok(Macro {
        letter,
        keep,
        reverse,
        delimiters: delimiters.to_string(),
        escape: first.is_ascii_uppercase(),
    })
}

/// toplabel = ( *alphanum ALPHA *alphanum ) / ( 1*alphanum "-" *( alphanum / "-" ) alphanum )
fn is_toplabel(label: &str) -> bool {
    let bytes = label.as_bytes();
    let (Some(first), Some(last)) = (bytes.first(), bytes.last()) else {
        return false;
    };
    if bytes.contains(&b'-') {
        first.is_ascii_alphanumeric()
            && last.is_ascii_alphanumeric()
            && bytes
                .iter()
                .all(|b| b.is_ascii_alphanumeric() || *b == b'-')
    } else {
        bytes.iter().all(u8::is_ascii_alphanumeric) && bytes.iter().any(u8::is_ascii_alphabetic)
    }
}

fn expand_macro(one: &Macro, values: &Values<'_>, out: &mut String) -> Result<(), TooLong> {
    let owned;
    let value: &str = match one.letter {
        Letter::Sender => values.sender,
        Letter::LocalPart => values.local_part,
        Letter::SenderDomain => values.sender_domain,
        Letter::Domain => values.domain,
        Letter::ValidatedName => values.validated_name,
        Letter::Helo => values.helo,
        Letter::Receiver if values.receiver.is_empty() => "unknown",
        Letter::Receiver => values.receiver,
        Letter::IpVersion => match values.ip {
            IpAddr::V4(_) => "in-addr",
            IpAddr::V6(_) => "ip6",
        },
        Letter::Ip => {
            owned = dotted_ip(values.ip);
            &owned
        }
        Letter::ClientIp => {
            owned = values.ip.to_string();
            &owned
        }
        Letter::Timestamp => {
            owned = values.now.to_string();
            &owned
        }
    };
    if value.len() > MAX_EXPANSION_LEN {
        return Err(TooLong);
    }
    let delimiters = if one.delimiters.is_empty() {
        "."
    } else {
        one.delimiters.as_str()
    };
    let mut parts: Vec<&str> = value.split(|c| delimiters.contains(c)).collect();
    if one.reverse {
        parts.reverse();
    }
    if let Some(keep) = one.keep
        && keep < parts.len()
    {
        parts.drain(..parts.len() - keep);
    }
    let joined = parts.join(".");
    if one.escape {
        for byte in joined.bytes() {
            if byte.is_ascii_alphanumeric() || matches!(byte, b'-' | b'.' | b'_' | b'~') {
                out.push(char::from(byte));
            } else {
                // Writing to a String cannot fail.
                let _ = write!(out, "%{byte:02X}");
            }
        }
    } else {
        out.push_str(&joined);
    }
    Ok(())
}

/// `%{i}`: dotted quad, or 32 dot-separated nibbles for IPv6 (§7.3). The nibbles are upper
/// case as in the openspf suite; DNS ignores the case, only explanations show it.
fn dotted_ip(ip: IpAddr) -> String {
    match ip {
        IpAddr::V4(v4) => v4.to_string(),
        IpAddr::V6(v6) => {
            let mut text = String::with_capacity(63);
            for byte in v6.octets() {
                for nibble in [byte >> 4, byte & 0x0f] {
                    if !text.is_empty() {
                        text.push('.');
                    }
                    text.push(char::from(b"0123456789ABCDEF"[usize::from(nibble)]));
                }
            }
            text
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn values(ip: &str) -> Values<'static> {
        Values {
            sender: "strong-bad@email.example.com",
            local_part: "strong-bad",
            sender_domain: "email.example.com",
            domain: "email.example.com",
            ip: ip.parse().unwrap(),
            validated_name: "mx.example.org",
            helo: "mx.example.org",
            receiver: "receiver.example",
            now: 1_700_000_000,
        }
    }

    fn expand(text: &str, ip: &str) -> String {
        MacroString::parse(text, Context::Explanation)
            .unwrap()
            .expand(&values(ip))
            .unwrap()
    }

    #[test]
    fn rfc7208_section_7_4_examples() {
        let v4 = "192.0.2.3";
        assert_eq!(expand("%{s}", v4), "strong-bad@email.example.com");
        assert_eq!(expand("%{o}", v4), "email.example.com");
        assert_eq!(expand("%{d}", v4), "email.example.com");
        assert_eq!(expand("%{d4}", v4), "email.example.com");
        assert_eq!(expand("%{d3}", v4), "email.example.com");
        assert_eq!(expand("%{d2}", v4), "example.com");
        assert_eq!(expand("%{d1}", v4), "com");
        assert_eq!(expand("%{dr}", v4), "com.example.email");
        assert_eq!(expand("%{d2r}", v4), "example.email");
        assert_eq!(expand("%{l}", v4), "strong-bad");
        assert_eq!(expand("%{l-}", v4), "strong.bad");
        assert_eq!(expand("%{lr}", v4), "strong-bad");
        assert_eq!(expand("%{lr-}", v4), "bad.strong");
        assert_eq!(expand("%{l1r-}", v4), "strong");
        assert_eq!(
            expand("%{ir}.%{v}._spf.%{d2}", v4),
            "3.2.0.192.in-addr._spf.example.com"
        );
        assert_eq!(
            expand("%{lr-}.lp._spf.%{d2}", v4),
            "bad.strong.lp._spf.example.com"
        );
        assert_eq!(
            expand("%{ir}.%{v}._spf.%{d2}", "2001:db8::cb01"),
            "1.0.B.C.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.8.B.D.0.1.0.0.2.ip6._spf.example.com"
        );
    }

    #[test]
    fn escapes_and_url_encoding() {
        assert_eq!(expand("a%%b%_c%-d", "192.0.2.3"), "a%b c%20d");
        assert_eq!(
            expand("%{S}", "192.0.2.3"),
            "strong-bad%40email.example.com"
        );
        assert_eq!(
            expand("%{c} %{r} %{t}", "2001:db8::1"),
            "2001:db8::1 receiver.example 1700000000"
        );
    }

    #[test]
    fn syntax_errors() {
        for bad in [
            "%",
            "%x",
            "%{",
            "%{x}",
            "%{d0}",
            "%{d2x}",
            "a\tb",
            "%{d}\u{e9}",
            "%(ir)",
        ] {
            assert!(
                MacroString::parse(bad, Context::Explanation).is_err(),
                "{bad:?}"
            );
        }
        assert!(MacroString::parse("%{c}.example.com", Context::DomainSpec).is_err());
        assert!(MacroString::parse("a b", Context::DomainSpec).is_err());
        assert!(MacroString::parse("a b", Context::Explanation).is_ok());
    }

    #[test]
    fn domain_spec_ends() {
        for good in [
            "example.com",
            "example.com.",
            "%{d}",
            "foo.%{d}",
            "foo:bar/baz.example.com",
            "x.xn--zckzah",
            "a.123-456",
            "%{d}.com",
            "x%-",
        ] {
            assert!(MacroString::parse_domain_spec(good).is_ok(), "{good:?}");
        }
        for bad in [
            "",
            "museum",
            "museum.",
            "foo-bar",
            "111.222.33.44",
            "abc.123",
            "example.-com",
            "example.com:8080",
            "example.com/24",
            "%{d}.",
            "%{d}com",
            "example.com..",
        ] {
            assert!(MacroString::parse_domain_spec(bad).is_err(), "{bad:?}");
        }
    }

    proptest! {
        #[test]
        fn garbage_never_panics_and_stays_bounded(text in "[%{}a-zA-Z0-9._+,/=:r-]{0,200}") {
            if let Ok(parsed) = MacroString::parse(&text, Context::Explanation)
                && let Ok(out) = parsed.expand(&values("2001:db8::1"))
            {
                prop_assert!(out.len() <= MAX_EXPANSION_LEN);
            }
            let _ = MacroString::parse_domain_spec(&text);
        }

        #[test]
        fn any_bytes_never_panic(text in any::<String>()) {
            let _ = MacroString::parse(&text, Context::Explanation);
            let _ = MacroString::parse_domain_spec(&text);
        }

        #[test]
        fn repeated_macros_hit_the_bound(count in 1usize..2000) {
            let text = "%{S}".repeat(count);
            let parsed = MacroString::parse(&text, Context::DomainSpec).unwrap();
            match parsed.expand(&values("192.0.2.3")) {
                Ok(out) => prop_assert!(out.len() <= MAX_EXPANSION_LEN),
                Err(TooLong) => prop_assert!(count * 30 > MAX_EXPANSION_LEN),
            }
        }
    }
}
