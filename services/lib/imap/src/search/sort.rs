//! SORT ordering of two messages (RFC 5256 section 3, DISPLAYFROM/DISPLAYTO from RFC 5957).
//!
//! Strings compare with the default `i;ascii-casemap` collation (RFC 4790: ASCII letters
//! uppercased, then octet order). Messages equal under every criterion fall back to sequence
//! number order, which REVERSE does not flip.

use std::cmp::Ordering;

use imap_types::extensions::sort::{SortCriterion, SortKey};
use time::OffsetDateTime;

use super::{SearchSubject, base_subject};

/// Orders `a` before or after `b` by `criteria`, in order, then by sequence number.
pub fn compare<M: SearchSubject + ?Sized>(a: &M, b: &M, criteria: &[SortCriterion]) -> Ordering {
    criteria
        .iter()
        .map(|criterion| {
            let ordering = compare_key(a, b, &criterion.key);
            if criterion.reverse {
                ordering.reverse()
            } else {
                ordering
            }
        })
        .find(|ordering| ordering.is_ne())
        .unwrap_or_else(|| a.seq().cmp(&b.seq()))
}

fn compare_key<M: SearchSubject + ?Sized>(a: &M, b: &M, key: &SortKey) -> Ordering {
    match key {
        SortKey::Arrival => a.internal_date().cmp(&b.internal_date()),
        SortKey::Date => sent_or_internal(a).cmp(&sent_or_internal(b)),
        SortKey::Size => a.size().cmp(&b.size()),
        SortKey::Subject => casemap(&subject(a), &subject(b)),
        SortKey::From => casemap(&mailbox(a, "From"), &mailbox(b, "From")),
        SortKey::To => casemap(&mailbox(a, "To"), &mailbox(b, "To")),
        SortKey::Cc => casemap(&mailbox(a, "Cc"), &mailbox(b, "Cc")),
        SortKey::DisplayFrom => casemap(&display(a, "From"), &display(b, "From")),
        SortKey::DisplayTo => casemap(&display(a, "To"), &display(b, "To")),
    }
}

/// RFC 5256: the Date header as an instant (time zone taken into account), else INTERNALDATE.
fn sent_or_internal<M: SearchSubject + ?Sized>(message: &M) -> OffsetDateTime {
    message
        .sent_date()
        .unwrap_or_else(|| message.internal_date())
}

fn subject<M: SearchSubject + ?Sized>(message: &M) -> String {
    message
        .header_values("Subject")
        .first()
        .map(|subject| base_subject(subject))
        .unwrap_or_default()
}

/// addr-mailbox of the first address; the empty string when there is none.
fn mailbox<M: SearchSubject + ?Sized>(message: &M, field: &str) -> String {
    message
        .first_address(field)
        .map(|address| address.mailbox)
        .unwrap_or_default()
}

/// RFC 5957: display name of the first address, else its addr-spec, else empty.
fn display<M: SearchSubject + ?Sized>(message: &M, field: &str) -> String {
    message
        .first_address(field)
        .map(|address| address.display())
        .unwrap_or_default()
}

fn casemap(a: &str, b: &str) -> Ordering {
    a.bytes()
        .map(|byte| byte.to_ascii_uppercase())
        .cmp(b.bytes().map(|byte| byte.to_ascii_uppercase()))
}

#[cfg(test)]
mod tests {
    use super::casemap;
    use std::cmp::Ordering;

    #[test]
    fn casemap_ignores_ascii_case_and_uppercases_before_comparing() {
        assert_eq!(casemap("alice", "ALICE"), Ordering::Equal);
        assert_eq!(casemap("alice", "Bob"), Ordering::Less);
        // '_' (0x5F) sorts after uppercased letters, as i;ascii-casemap requires.
        assert_eq!(casemap("_x", "zed"), Ordering::Greater);
        assert_eq!(casemap("", "a"), Ordering::Less);
    }
}
