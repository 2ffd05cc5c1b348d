//! The first address of an address header, as RFC 5256 SORT (FROM, TO, CC) and RFC 5957
//! (DISPLAYFROM, DISPLAYTO) compare it. Parsing is mail-parser's.

use mail_parser::HeaderValue;
use mail_parser::parsers::MessageStream;

/// One address reduced to what SORT compares.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct SortAddress {
    /// Display name (phrase), if the address has a non-empty one.
    pub display_name: Option<String>,
    /// Local part (ENVELOPE addr-mailbox): what FROM/TO/CC sort on.
    pub mailbox: String,
    /// Domain (ENVELOPE addr-host); empty when the address has none.
    pub host: String,
}

impl SortAddress {
    /// RFC 5957 display string: the display name, else `mailbox@host`.
    pub fn display(&self) -> String {
        match &self.display_name {
            Some(name) => name.clone(),
            None if self.host.is_empty() => self.mailbox.clone(),
            None => format!("{}@{}", self.mailbox, self.host),
        }
    }
}

/// Parses the first address (or first group member) of a decoded address header value.
pub(super) fn parse_first(value: &str) -> Option<SortAddress> {
    // The address parser stops at an unfolded line end, so give it one.
    let mut line = String::with_capacity(value.len() + 2);
    line.push_str(value);
    line.push_str("\r\n");
    let HeaderValue::Address(address) = MessageStream::new(line.as_bytes()).parse_address() else {
        return None;
    };
    let first = address.first()?;
    let display_name = first
        .name
        .as_deref()
        .map(str::trim)
        .filter(|name| !name.is_empty())
        .map(str::to_owned);
    let (mailbox, host) = match first.address.as_deref() {
        Some(spec) => match spec.rsplit_once('@') {
            Some((mailbox, host)) => (mailbox.to_owned(), host.to_owned()),
            None => (spec.to_owned(), String::new()),
        },
        None => (String::new(), String::new()),
    };
    if display_name.is_none() && mailbox.is_empty() && host.is_empty() {
        return None;
    }
    Some(SortAddress {
        display_name,
        mailbox,
        host,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn address(name: Option<&str>, mailbox: &str, host: &str) -> SortAddress {
        SortAddress {
            display_name: name.map(str::to_owned),
            mailbox: mailbox.to_owned(),
            host: host.to_owned(),
        }
    }

    #[test]
    fn name_and_angle_address_split_into_parts() {
        assert_eq!(
            parse_first("Alice Example <alice@example.com>, bob@example.org"),
            Some(address(Some("Alice Example"), "alice", "example.com"))
        );
    }

    #[test]
    fn bare_address_has_no_display_name() {
        let parsed = parse_first("bob@example.org");
        assert_eq!(parsed, Some(address(None, "bob", "example.org")));
        assert_eq!(
            parsed.map(|a| a.display()).as_deref(),
            Some("bob@example.org")
        );
    }

    #[test]
    fn quoted_name_with_comma_is_one_address() {
        assert_eq!(
            parse_first("\"Doe, John\" <john@example.net>"),
            Some(address(Some("Doe, John"), "john", "example.net"))
        );
    }

    #[test]
    fn group_yields_first_member() {
        assert_eq!(
            parse_first("Team: carol@example.com, dave@example.com;"),
            Some(address(None, "carol", "example.com"))
        );
    }

    #[test]
    fn empty_value_has_no_address() {
        assert_eq!(parse_first(""), None);
        assert_eq!(parse_first("   "), None);
    }
}
