//! The domains that a message's links point to, for SURBL-style lists: found in the decoded
//! text parts (plain and HTML) after `http://`, `https://` or `www.`, reduced to the registered
//! domain (two labels, three under a few well-known second-level suffixes such as `co.uk`).

use std::collections::BTreeSet;

/// At most this many distinct domains are looked up per message.
pub const MAX_DOMAINS: usize = 20;

const SECOND_LEVEL: [&str; 12] = [
    "co.uk", "org.uk", "ac.uk", "gov.uk", "com.au", "net.au", "org.au", "co.jp", "co.nz", "com.br",
    "com.cn", "co.za",
];

/// The link domains of `message` (the whole message as received).
pub fn domains(message: &[u8]) -> Vec<String> {
    let Some(parsed) = mail_parser::MessageParser::default().parse(message) else {
        return Vec::new();
    };
    let mut found = BTreeSet::new();
    let texts = parsed
        .text_bodies()
        .chain(parsed.html_bodies())
        .filter_map(|part| part.text_contents());
    for text in texts {
        scan(text, &mut found);
        if found.len() >= MAX_DOMAINS {
            break;
        }
    }
    found.into_iter().take(MAX_DOMAINS).collect()
}

/// Adds the link domains of one text.
pub fn scan(text: &str, found: &mut BTreeSet<String>) {
    let lower = text.to_ascii_lowercase();
    let bytes = lower.as_bytes();
    let mut pos = 0;
    while pos < bytes.len() && found.len() < MAX_DOMAINS {
        let rest = &lower[pos..];
        let next = ["http://", "https://", "www."]
            .iter()
            .filter_map(|marker| rest.find(marker).map(|i| (i, *marker)))
            .min_by_key(|(i, _)| *i);
        let Some((at, marker)) = next else { break };
        let start = pos + at + if marker == "www." { 0 } else { marker.len() };
        let host_end = lower[start..]
            .find(|c: char| {
                !(c.is_ascii_alphanumeric() || c == '.' || c == '-' || c == '@' || c == ':')
            })
            .map_or(lower.len(), |i| start + i);
        let authority = &lower[start..host_end];
        let host = authority.rsplit('@').next().unwrap_or("");
        let host = host.split(':').next().unwrap_or("").trim_matches('.');
        if let Some(domain) = registered_domain(host) {
            found.insert(domain);
        }
        pos = host_end.max(pos + at + 1);
    }
}

/// `a.b.example.com` → `example.com`; `x.example.co.uk` → `example.co.uk`. `None` for names
/// that are not domains (one label, address literals, empty labels).
pub fn registered_domain(host: &str) -> Option<String> {
    let labels: Vec<&str> = host.split('.').collect();
    if labels.len() < 2
        || labels.iter().any(|l| l.is_empty() || l.len() > 63)
        || labels.iter().all(|l| l.chars().all(|c| c.is_ascii_digit()))
    {
        return None;
    }
    let last_two = labels[labels.len() - 2..].join(".");
    let keep = if SECOND_LEVEL.contains(&last_two.as_str()) && labels.len() >= 3 {
        3
    } else {
        2
    };
    Some(labels[labels.len() - keep..].join("."))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn links_in_plain_and_html_parts() {
        let message = b"From: a@b.test\r\nContent-Type: multipart/alternative; boundary=x\r\n\r\n--x\r\nContent-Type: text/plain\r\n\r\nsee https://Shop.Spammy.Example/buy?x=1 and www.other.example.co.uk\r\n--x\r\nContent-Type: text/html\r\n\r\n<a href=\"http://user@click.tracker.test:8080/p\">x</a> http://10.0.0.1/\r\n--x--\r\n";
        assert_eq!(
            domains(message),
            vec!["example.co.uk", "spammy.example", "tracker.test"]
        );
    }

    #[test]
    fn registered_domains() {
        assert_eq!(
            registered_domain("a.b.example.com").as_deref(),
            Some("example.com")
        );
        assert_eq!(registered_domain("localhost"), None);
        assert_eq!(registered_domain("1.2.3.4"), None);
        assert_eq!(registered_domain("a..b"), None);
    }

    proptest::proptest! {
        #[test]
        fn garbage_never_panics(text in ".{0,300}", bytes in proptest::collection::vec(proptest::num::u8::ANY, 0..300)) {
            let mut found = BTreeSet::new();
            scan(&text, &mut found);
            proptest::prop_assert!(found.len() <= MAX_DOMAINS);
            let _ = domains(&bytes);
        }
    }
}
