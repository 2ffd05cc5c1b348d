//! Domain names (RFC 5321 `Domain`, RFC 1035 labels, RFC 5890 IDNA for U-labels).

use serde::{Deserialize, Deserializer, Serialize, Serializer};

/// Longest domain name in octets (RFC 5321 section 4.5.3.1.2).
pub const MAX_DOMAIN_LEN: usize = 255;
/// Longest label in octets (RFC 1035 section 2.3.4).
pub const MAX_LABEL_LEN: usize = 63;

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum DomainError {
    #[error("the domain is empty")]
    Empty,
    #[error("the domain is longer than {MAX_DOMAIN_LEN} octets")]
    TooLong,
    #[error("the domain has an empty label")]
    EmptyLabel,
    #[error("a domain label is longer than {MAX_LABEL_LEN} octets")]
    LabelTooLong,
    #[error("a domain label starts or ends with a hyphen")]
    HyphenAtLabelEdge,
    #[error("the domain contains a character that is not allowed: {0:?}")]
    InvalidCharacter(char),
    #[error("the internationalised domain is not valid IDNA")]
    InvalidIdna,
    #[error("a hosted domain needs at least one dot")]
    NoDot,
}

/// A syntactically valid domain name, stored lower-case in ASCII (A-labels for IDNs).
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Domain(String);

impl Domain {
    /// Parses a domain as it appears in an address or on the command line. Non-ASCII input
    /// (U-labels) is converted to A-labels (`xn--…`).
    pub fn parse(input: &str) -> Result<Self, DomainError> {
        let input = input.strip_suffix('.').unwrap_or(input);
        if input.is_empty() {
            return Err(DomainError::Empty);
        }
        let ascii = if input.is_ascii() {
            input.to_ascii_lowercase()
        } else {
            idna::domain_to_ascii(input).map_err(|_| DomainError::InvalidIdna)?
        };
        validate_ascii(&ascii)?;
        Ok(Self(ascii))
    }

    /// Parses a domain that this cluster may host: besides [`Domain::parse`], it must contain a
    /// dot (the reference server's rule; a bare `localhost` cannot be hosted).
    pub fn parse_hosted(input: &str) -> Result<Self, DomainError> {
        let domain = Self::parse(input)?;
        if !domain.0.contains('.') {
            return Err(DomainError::NoDot);
        }
        Ok(domain)
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

fn validate_ascii(ascii: &str) -> Result<(), DomainError> {
    if ascii.len() > MAX_DOMAIN_LEN {
        return Err(DomainError::TooLong);
    }
    for label in ascii.split('.') {
        if label.is_empty() {
            return Err(DomainError::EmptyLabel);
        }
        if label.len() > MAX_LABEL_LEN {
            return Err(DomainError::LabelTooLong);
        }
        if label.starts_with('-') || label.ends_with('-') {
            return Err(DomainError::HyphenAtLabelEdge);
        }
        if let Some(bad) = label
            .chars()
            .find(|c| !(c.is_ascii_alphanumeric() || *c == '-'))
        {
            return Err(DomainError::InvalidCharacter(bad));
        }
    }
    Ok(())
}

impl std::fmt::Display for Domain {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}

impl std::str::FromStr for Domain {
    type Err = DomainError;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Self::parse(s)
    }
}

impl Serialize for Domain {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.serialize_str(&self.0)
    }
}

impl<'de> Deserialize<'de> for Domain {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let text = String::deserialize(deserializer)?;
        Self::parse(&text).map_err(serde::de::Error::custom)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ascii_domains_are_lowercased() {
        assert_eq!(
            Domain::parse("Example.TEST").unwrap().as_str(),
            "example.test"
        );
        assert_eq!(
            Domain::parse("example.test.").unwrap().as_str(),
            "example.test"
        );
    }

    #[test]
    fn unicode_domains_become_a_labels() {
        assert_eq!(
            Domain::parse("bücher.example").unwrap().as_str(),
            "xn--bcher-kva.example"
        );
    }

    #[test]
    fn malformed_domains_are_refused_with_the_reason() {
        assert_eq!(Domain::parse(""), Err(DomainError::Empty));
        assert_eq!(Domain::parse("a..b"), Err(DomainError::EmptyLabel));
        assert_eq!(Domain::parse("-a.b"), Err(DomainError::HyphenAtLabelEdge));
        assert_eq!(
            Domain::parse("a_b.c"),
            Err(DomainError::InvalidCharacter('_'))
        );
        assert_eq!(
            Domain::parse(&"a".repeat(64)),
            Err(DomainError::LabelTooLong)
        );
        let long = vec!["abcdefghi"; 30].join(".");
        assert_eq!(Domain::parse(&long), Err(DomainError::TooLong));
        assert_eq!(Domain::parse_hosted("localhost"), Err(DomainError::NoDot));
    }
}
