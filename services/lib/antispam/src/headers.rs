//! Edits of a client's header section before it is stored: fields that claim to be ours are
//! removed (an `Authentication-Results` under our host name, RFC 8601 §5, and the `X-Spam-*`
//! fields we write), and the subject may get a prefix. The section is raw bytes; folded fields
//! are kept or dropped whole, and every other byte is left exactly as it came.

/// Splits a header section into whole fields (each with its continuation lines and line end).
/// A trailing blank line, if any, is its own last item.
fn fields(head: &[u8]) -> Vec<&[u8]> {
    let mut out: Vec<&[u8]> = Vec::new();
    let mut start = 0;
    let mut pos = 0;
    while pos < head.len() {
        let end = memchr::memchr(b'\n', &head[pos..]).map_or(head.len(), |i| pos + i + 1);
        let line = &head[pos..end];
        let continuation = matches!(line.first(), Some(b' ' | b'\t'));
        if !continuation && pos > start {
            out.push(&head[start..pos]);
            start = pos;
        }
        pos = end;
    }
    if start < head.len() {
        out.push(&head[start..]);
    }
    out
}

fn name_of(field: &[u8]) -> Option<&[u8]> {
    let colon = memchr::memchr(b':', field)?;
    let name = field[..colon].trim_ascii();
    (!name.is_empty() && !name.iter().any(|b| b.is_ascii_whitespace())).then_some(name)
}

/// The authserv-id of an `Authentication-Results` value: the first token before `;`, after
/// optional comments in parentheses.
fn authserv_id(value: &[u8]) -> String {
    let text = String::from_utf8_lossy(value);
    let mut depth = 0usize;
    let mut id = String::new();
    for c in text.chars() {
        match c {
            '(' => depth += 1,
            ')' => depth = depth.saturating_sub(1),
            _ if depth > 0 => {}
            ';' => break,
            c if c.is_whitespace() => {
                if !id.is_empty() {
                    break;
                }
            }
            c => id.push(c),
        }
    }
    id.to_ascii_lowercase()
}

/// Our own field names that a client must not be able to forge.
const OURS: [&[u8]; 3] = [b"x-spam-flag", b"x-spam-status", b"x-spam-reason"];

pub struct Edited {
    pub head: Vec<u8>,
    /// Fields removed because they claimed to be ours.
    pub removed: usize,
}

/// Removes forged fields and, with `subject_prefix`, prefixes the (first) `Subject:`.
pub fn edit(head: &[u8], hostname: &str, subject_prefix: Option<&str>) -> Edited {
    let host = hostname.to_ascii_lowercase();
    let mut out = Vec::with_capacity(head.len() + 16);
    let mut removed = 0;
    let mut prefixed = subject_prefix.is_none();
    for field in fields(head) {
        let Some(name) = name_of(field) else {
            out.extend_from_slice(field);
            continue;
        };
        let lower = name.to_ascii_lowercase();
        let value = &field[memchr::memchr(b':', field).map_or(field.len(), |c| c + 1)..];
        if lower == b"authentication-results" && authserv_id(value) == host {
            removed += 1;
            continue;
        }
        if OURS.contains(&lower.as_slice()) {
            removed += 1;
            continue;
        }
        if !prefixed && lower == b"subject" {
            prefixed = true;
            let colon = memchr::memchr(b':', field).unwrap_or(0);
            let prefix = subject_prefix.unwrap_or_default();
            let rest = &field[colon + 1..];
            let rest = rest.strip_prefix(b" ").unwrap_or(rest);
            out.extend_from_slice(&field[..=colon]);
            out.push(b' ');
            out.extend_from_slice(prefix.as_bytes());
            out.push(b' ');
            out.extend_from_slice(rest);
            continue;
        }
        out.extend_from_slice(field);
    }
    if !prefixed && let Some(prefix) = subject_prefix {
        // No subject at all: one is added (before the blank line that ends the section).
        let line = format!("Subject: {prefix}\r\n");
        let at = if out.ends_with(b"\r\n\r\n") {
            out.len() - 2
        } else if out == b"\r\n" {
            0
        } else {
            out.len()
        };
        out.splice(at..at, line.into_bytes());
    }
    Edited { head: out, removed }
}

/// The value of the first field `name` (unfolded, trimmed), if any.
pub fn value_of(head: &[u8], name: &str) -> Option<String> {
    fields(head).into_iter().find_map(|field| {
        let n = name_of(field)?;
        if !n.eq_ignore_ascii_case(name.as_bytes()) {
            return None;
        }
        let colon = memchr::memchr(b':', field)?;
        let value = String::from_utf8_lossy(&field[colon + 1..]);
        Some(
            value
                .split(['\r', '\n'])
                .map(str::trim)
                .filter(|s| !s.is_empty())
                .collect::<Vec<_>>()
                .join(" "),
        )
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn forged_results_for_our_host_are_removed_and_others_kept() {
        let head = b"Authentication-Results: MX.Example.Test;\r\n\tspf=pass smtp.mailfrom=a@b\r\nAuthentication-Results: other.test; dkim=pass\r\nAuthentication-Results: (comment) mx.example.test; none\r\nX-Spam-Flag: NO\r\nSubject: hi\r\n\r\n";
        let edited = edit(head, "mx.example.test", None);
        assert_eq!(edited.removed, 3);
        assert_eq!(
            edited.head,
            b"Authentication-Results: other.test; dkim=pass\r\nSubject: hi\r\n\r\n"
        );
    }

    #[test]
    fn subject_prefix_is_added_once_or_a_subject_is_created() {
        let edited = edit(
            b"Subject: hello\r\n  world\r\nSubject: two\r\n\r\n",
            "h",
            Some("[SPAM]"),
        );
        assert_eq!(
            edited.head,
            b"Subject: [SPAM] hello\r\n  world\r\nSubject: two\r\n\r\n"
        );
        let edited = edit(b"From: a@b\r\n\r\n", "h", Some("[SPAM]"));
        assert_eq!(edited.head, b"From: a@b\r\nSubject: [SPAM]\r\n\r\n");
        let edited = edit(b"From: a@b\r\n", "h", Some("[SPAM]"));
        assert_eq!(edited.head, b"From: a@b\r\nSubject: [SPAM]\r\n");
    }

    #[test]
    fn bytes_are_kept_when_nothing_matches() {
        let head = b"From: a@b\r\nbroken line without colon\r\n\tcontinued\r\nTo: c@d\r\n\r\n";
        assert_eq!(edit(head, "h", None).head, head.to_vec());
    }

    #[test]
    fn values_are_unfolded() {
        let head = b"subject: a\r\n b\r\nFrom: x\r\n\r\n";
        assert_eq!(value_of(head, "Subject").as_deref(), Some("a b"));
        assert_eq!(value_of(head, "To"), None);
    }

    proptest::proptest! {
        #[test]
        fn garbage_never_panics_and_without_edits_is_unchanged(head in proptest::collection::vec(proptest::num::u8::ANY, 0..400)) {
            let edited = edit(&head, "host.test", None);
            if edited.removed == 0 {
                proptest::prop_assert_eq!(edited.head, head.clone());
            }
            let _ = edit(&head, "host.test", Some("[SPAM]"));
            let _ = value_of(&head, "subject");
        }
    }
}
