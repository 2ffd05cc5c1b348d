//! Mailbox addresses: RFC 5321 section 4.1.2 `Mailbox`, with the UTF-8 extensions of RFC 6531.

use crate::domain::{Domain, DomainError};
use serde::{Deserialize, Deserializer, Serialize, Serializer};

/// Longest local part in octets (RFC 5321 section 4.5.3.1.1).
pub const MAX_LOCAL_PART_LEN: usize = 64;
/// Longest address in octets: a 256-octet path minus its angle brackets.
pub const MAX_ADDRESS_LEN: usize = 254;

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum AddressError {
    #[error("the address has no @")]
    NoAt,
    #[error("the local part is empty")]
    EmptyLocalPart,
    #[error("the local part is longer than {MAX_LOCAL_PART_LEN} octets")]
    LocalPartTooLong,
    #[error("the address is longer than {MAX_ADDRESS_LEN} octets")]
    TooLong,
    #[error("the local part is not a valid dot-string or quoted-string")]
    InvalidLocalPart,
    #[error("the domain is not valid: {0}")]
    InvalidDomain(#[from] DomainError),
    #[error("address literals ([…]) are not accepted here")]
    AddressLiteral,
}

/// A syntactically valid address `local@domain`.
///
/// The local part is kept as written (case preserved: RFC 5321 leaves its meaning to the host), in
/// its shortest form: a quoted string whose content is a valid dot-string is unquoted. The domain is
/// lower-case ASCII. [`EmailAddress::lookup_key`] gives the case-folded form the directory uses.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct EmailAddress {
    local: String,
    domain: Domain,
}

impl EmailAddress {
    /// Parses `local@domain`. UTF-8 is accepted in both parts (RFC 6531); use
    /// [`EmailAddress::needs_smtputf8`] to decide whether a session may carry it.
    pub fn parse(input: &str) -> Result<Self, AddressError> {
        if input.len() > MAX_ADDRESS_LEN {
            return Err(AddressError::TooLong);
        }
        let at = input.rfind('@').ok_or(AddressError::NoAt)?;
        let (local_raw, domain_raw) = (&input[..at], &input[at + 1..]);
        if domain_raw.starts_with('[') {
            return Err(AddressError::AddressLiteral);
        }
        let local = parse_local_part(local_raw)?;
        let domain = Domain::parse(domain_raw)?;
        Ok(Self { local, domain })
    }

    /// Builds an address from a local part and an already valid domain.
    pub fn from_parts(local: &str, domain: Domain) -> Result<Self, AddressError> {
        Ok(Self {
            local: parse_local_part(local)?,
            domain,
        })
    }

    pub fn local_part(&self) -> &str {
        &self.local
    }

    pub fn domain(&self) -> &Domain {
        &self.domain
    }

    /// True when the address cannot be carried without the SMTPUTF8 extension.
    pub fn needs_smtputf8(&self) -> bool {
        !self.local.is_ascii()
    }

    /// The case-folded form used as the key in the directory: local part lower-cased (mail
    /// administrators expect `Alice@` and `alice@` to be one mailbox), domain as stored.
    pub fn lookup_key(&self) -> String {
        format!("{}@{}", self.local.to_lowercase(), self.domain)
    }
}

/// Validates a local part and returns its canonical spelling.
fn parse_local_part(raw: &str) -> Result<String, AddressError> {
    if raw.is_empty() {
        return Err(AddressError::EmptyLocalPart);
    }
    if raw.len() > MAX_LOCAL_PART_LEN {
        return Err(AddressError::LocalPartTooLong);
    }
    if let Some(inner) = raw.strip_prefix('"') {
        let inner = inner
            .strip_suffix('"')
            .ok_or(AddressError::InvalidLocalPart)?;
        let content = unquote(inner)?;
        if content.is_empty() {
            return Err(AddressError::EmptyLocalPart);
        }
        if is_dot_string(&content) {
            return Ok(content);
        }
        return Ok(quote(&content));
    }
    if is_dot_string(raw) {
        Ok(raw.to_string())
    } else {
        Err(AddressError::InvalidLocalPart)
    }
}

/// `atext` of RFC 5322 plus any non-ASCII character (RFC 6531 `UTF8-non-ascii`).
fn is_atext(c: char) -> bool {
    c.is_ascii_alphanumeric()
        || "!#$%&'*+-/=?^_`{|}~".contains(c)
        || (!c.is_ascii() && !c.is_control())
}

fn is_dot_string(s: &str) -> bool {
    !s.is_empty()
        && s.split('.')
            .all(|atom| !atom.is_empty() && atom.chars().all(is_atext))
}

/// Content of a `Quoted-string` (RFC 5321 `QcontentSMTP`), escapes removed.
fn unquote(inner: &str) -> Result<String, AddressError> {
    let mut out = String::with_capacity(inner.len());
    let mut chars = inner.chars();
    while let Some(c) = chars.next() {
        match c {
            '\\' => match chars.next() {
                Some(escaped) if (' '..='~').contains(&escaped) => out.push(escaped),
                _ => return Err(AddressError::InvalidLocalPart),
            },
            '"' => return Err(AddressError::InvalidLocalPart),
            c if (' '..='~').contains(&c) => out.push(c),
            c if !c.is_ascii() && !c.is_control() => out.push(c),
            _ => return Err(AddressError::InvalidLocalPart),
        }
    }
    Ok(out)
}

fn quote(content: &str) -> String {
    let mut out = String::with_capacity(content.len() + 2);
    out.push('"');
    for c in content.chars() {
        if c == '"' || c == '\\' {
            out.push('\\');
        }
        out.push(c);
    }
    out.push('"');
    out
}

impl std::fmt::Display for EmailAddress {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}@{}", self.local, self.domain)
    }
}

impl std::str::FromStr for EmailAddress {
    type Err = AddressError;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Self::parse(s)
    }
}

impl Serialize for EmailAddress {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.collect_str(self)
    }
}

impl<'de> Deserialize<'de> for EmailAddress {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let text = String::deserialize(deserializer)?;
        Self::parse(&text).map_err(serde::de::Error::custom)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn plain_addresses_parse_and_keep_local_case() {
        let a = EmailAddress::parse("Alice.Smith+tag@Example.TEST").unwrap();
        assert_eq!(a.local_part(), "Alice.Smith+tag");
        assert_eq!(a.domain().as_str(), "example.test");
        assert_eq!(a.to_string(), "Alice.Smith+tag@example.test");
        assert_eq!(a.lookup_key(), "alice.smith+tag@example.test");
        assert!(!a.needs_smtputf8());
    }

    #[test]
    fn smtputf8_addresses_are_accepted_and_flagged() {
        let a = EmailAddress::parse("用户@例子.测试").unwrap();
        assert!(a.needs_smtputf8());
        assert_eq!(a.domain().as_str(), "xn--fsqu00a.xn--0zwm56d");
        let b = EmailAddress::parse("JÖRG@bücher.example").unwrap();
        assert_eq!(b.lookup_key(), "jörg@xn--bcher-kva.example");
    }

    #[test]
    fn quoted_local_parts_are_canonicalised() {
        assert_eq!(
            EmailAddress::parse("\"bob\"@x.test").unwrap().local_part(),
            "bob"
        );
        assert_eq!(
            EmailAddress::parse("\"john doe\"@x.test")
                .unwrap()
                .local_part(),
            "\"john doe\""
        );
        assert_eq!(
            EmailAddress::parse(r#""a\"b"@x.test"#)
                .unwrap()
                .local_part(),
            r#""a\"b""#
        );
        // An @ inside a quoted local part is legal and stays inside the local part.
        let odd = EmailAddress::parse("\"a@b\"@x.test").unwrap();
        assert_eq!(odd.local_part(), "\"a@b\"");
        assert_eq!(odd.domain().as_str(), "x.test");
    }

    #[test]
    fn malformed_addresses_are_refused_with_the_reason() {
        assert_eq!(EmailAddress::parse("no-at-sign"), Err(AddressError::NoAt));
        assert_eq!(
            EmailAddress::parse("@x.test"),
            Err(AddressError::EmptyLocalPart)
        );
        assert_eq!(
            EmailAddress::parse("a..b@x.test"),
            Err(AddressError::InvalidLocalPart)
        );
        assert_eq!(
            EmailAddress::parse(".a@x.test"),
            Err(AddressError::InvalidLocalPart)
        );
        assert_eq!(
            EmailAddress::parse("a b@x.test"),
            Err(AddressError::InvalidLocalPart)
        );
        assert_eq!(
            EmailAddress::parse("a\r\nb@x.test"),
            Err(AddressError::InvalidLocalPart)
        );
        assert_eq!(
            EmailAddress::parse("\"a\r\"@x.test"),
            Err(AddressError::InvalidLocalPart)
        );
        assert_eq!(
            EmailAddress::parse("a@[127.0.0.1]"),
            Err(AddressError::AddressLiteral)
        );
        assert_eq!(
            EmailAddress::parse(&format!("{}@x.test", "a".repeat(65))),
            Err(AddressError::LocalPartTooLong)
        );
        assert_eq!(
            EmailAddress::parse(&format!("a@{}.test", "b".repeat(250))),
            Err(AddressError::TooLong)
        );
        assert!(matches!(
            EmailAddress::parse("a@bad_domain.test"),
            Err(AddressError::InvalidDomain(_))
        ));
        assert!(matches!(
            EmailAddress::parse("a@"),
            Err(AddressError::InvalidDomain(_))
        ));
    }

    proptest! {
        #[test]
        fn parse_never_panics_and_accepted_addresses_round_trip(input in "\\PC{0,80}") {
            if let Ok(address) = EmailAddress::parse(&input) {
                let again = EmailAddress::parse(&address.to_string()).unwrap();
                prop_assert_eq!(again, address);
            }
        }

        #[test]
        fn accepted_addresses_never_contain_line_breaks(input in "[a-z\"\\\\\r\n @.]{0,40}") {
            if let Ok(address) = EmailAddress::parse(&input) {
                let text = address.to_string();
                prop_assert!(!text.contains('\r') && !text.contains('\n'));
            }
        }
    }
}
