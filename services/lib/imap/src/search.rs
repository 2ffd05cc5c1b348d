//! SEARCH evaluation (RFC 3501 section 6.4.4, MODSEQ from RFC 7162 section 3.1.5) and SORT
//! ordering (RFC 5256, DISPLAYFROM/DISPLAYTO from RFC 5957) for one message at a time.
//!
//! The search keys are imap-types' [`SearchKey`] trees exactly as imap-codec decoded them; the
//! message is seen only through [`SearchSubject`], so this module knows nothing about storage. The
//! driver walks the selected mailbox and calls [`evaluate`] once per message, with a
//! [`SearchContext`] that says what `*` means in sequence sets.
//!
//! Loading a message body is the expensive part of a search. [`needs_body`] tells the driver up
//! front whether a key can need it at all, and [`evaluate`] first decides what it can from flags,
//! dates and headers: `OR SEEN BODY x` on a seen message never asks for the body. Only when the
//! answer really depends on the body and [`SearchSubject::body_text`] is `None` does it return
//! [`SearchError::NeedBody`]; the driver then loads the body and asks again.
//!
//! Semantics chosen where the RFC leaves room:
//! - String keys are case-insensitive substring matches on decoded header values (Unicode
//!   lowercasing, so ASCII folds too). FROM/TO/CC/BCC/SUBJECT behave like `HEADER <field>`: a
//!   message without that field never matches, and an empty string matches when the field exists.
//!   TEXT looks at `name: value` of every header field, then at the body.
//! - BEFORE/ON/SINCE use the calendar date of the internal date in its own offset, SENTBEFORE/
//!   SENTON/SENTSINCE that of the Date header; a message without a Date header matches no SENT* key.
//! - `*` is the context's largest sequence number (or UID for `UID` sets), ranges are unordered
//!   (`4:2` is `2:4`), and in an empty mailbox (largest 0) `*`, and every range with a `*` end,
//!   matches nothing.
//! - MODSEQ matches mod-sequences greater than or equal to the value. Mod-sequences are kept per
//!   message, not per flag, so the optional entry name and type are ignored as RFC 7162 requires.
//!
//! Bounds: imap-codec's parser allows at most 9 nested search-key levels (`search_key(9)` in its
//! `search.rs`), so decoded keys are shallow. Trees built in code could be deeper; evaluation stops
//! at [`MAX_SEARCH_DEPTH`] nested NOT/OR/parenthesised levels with [`SearchError::TooDeep`], and
//! [`needs_body`]/[`uses_modseq`] walk with an explicit stack, so no input overflows the stack
//! here. Which charsets SEARCH accepts is the driver's call ([`charset_supported`] answers it);
//! strings that are not UTF-8 are compared after lossy decoding. Nothing here panics.

mod address;
mod base_subject;
mod eval;
mod sort;
mod text;

#[cfg(test)]
mod tests;

use imap_types::core::Charset;
pub use imap_types::extensions::sort::{SortCriterion, SortKey};
pub use imap_types::search::SearchKey;
use time::OffsetDateTime;

pub use address::SortAddress;
pub use base_subject::base_subject;
pub use sort::compare;

/// Nesting limit for NOT, OR and parenthesised lists during evaluation. imap-codec already stops
/// at 9 levels, so this only bites trees built in code.
pub const MAX_SEARCH_DEPTH: usize = 32;

/// One message as SEARCH and SORT see it. Implemented by the storage-facing driver.
pub trait SearchSubject {
    /// Message sequence number in the current view (1-based).
    fn seq(&self) -> u32;
    /// Unique identifier.
    fn uid(&self) -> u32;
    /// Flags as stored: system flags with their backslash (`\Seen`), keywords as is (`$Forwarded`).
    /// Compared ASCII case-insensitively.
    fn flags(&self) -> &[String];
    /// Whether this session holds the message's \Recent flag.
    fn recent(&self) -> bool;
    /// INTERNALDATE, in the offset it was recorded with.
    fn internal_date(&self) -> OffsetDateTime;
    /// RFC 5322 size in octets.
    fn size(&self) -> u64;
    /// CONDSTORE mod-sequence.
    fn modseq(&self) -> u64;
    /// Every header field in message order: name as written, value unfolded and RFC 2047-decoded.
    fn header_fields(&self) -> Vec<(String, String)>;
    /// Values of the fields called `name` (ASCII case-insensitive), in message order; empty when
    /// the message has no such field. Override when the store can answer without listing all.
    fn header_values(&self, name: &str) -> Vec<String> {
        self.header_fields()
            .into_iter()
            .filter(|(field, _)| field.eq_ignore_ascii_case(name))
            .map(|(_, value)| value)
            .collect()
    }
    /// Parsed Date header, in its own offset; `None` when absent or unparseable.
    fn sent_date(&self) -> Option<OffsetDateTime>;
    /// Decoded text of the body parts; `None` when the body has not been loaded.
    fn body_text(&self) -> Option<&str>;
    /// First address of an address field (`From`, `To`, `Cc`) for SORT. The default parses the
    /// first value of [`Self::header_values`]; a store holding ENVELOPE data may override it.
    fn first_address(&self, field: &str) -> Option<SortAddress> {
        self.header_values(field)
            .first()
            .and_then(|value| address::parse_first(value))
    }
}

/// What `*` stands for while searching one mailbox view.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct SearchContext {
    /// Largest message sequence number, i.e. the number of messages (0 when empty).
    pub max_seq: u32,
    /// Largest UID in the mailbox (0 when empty).
    pub max_uid: u32,
}

/// Why a key could not be decided for a message.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum SearchError {
    /// The answer depends on the body and [`SearchSubject::body_text`] returned `None`: load the
    /// body and evaluate again.
    #[error("search needs the message body")]
    NeedBody,
    /// NOT/OR/parenthesised nesting deeper than [`MAX_SEARCH_DEPTH`].
    #[error("search keys nested deeper than {MAX_SEARCH_DEPTH} levels")]
    TooDeep,
    /// A key from an imap-types extension this server does not implement (only reachable when
    /// another crate enables such a feature, e.g. `ext_within`).
    #[error("unsupported search key")]
    Unsupported,
}

/// Whether `message` matches all of `criteria` (a SEARCH command's keys are ANDed).
pub fn evaluate<M: SearchSubject + ?Sized>(
    criteria: &[SearchKey<'_>],
    message: &M,
    context: &SearchContext,
) -> Result<bool, SearchError> {
    eval::all(criteria, message, context)
}

/// Whether `key` can need the message body (it contains BODY or TEXT anywhere, even under NOT).
/// When false, [`evaluate`] never returns [`SearchError::NeedBody`].
pub fn needs_body(key: &SearchKey<'_>) -> bool {
    any_key(key, |key| {
        matches!(key, SearchKey::Body(_) | SearchKey::Text(_))
    })
}

/// Whether `key` contains MODSEQ; the SEARCH response must then end with `(MODSEQ n)` (RFC 7162
/// section 3.1.5).
pub fn uses_modseq(key: &SearchKey<'_>) -> bool {
    any_key(key, |key| matches!(key, SearchKey::ModSequence { .. }))
}

/// Whether SEARCH can honour `CHARSET name`: none given, US-ASCII or UTF-8. Anything else must be
/// refused with `NO [BADCHARSET (US-ASCII UTF-8)]`.
pub fn charset_supported(charset: Option<&Charset<'_>>) -> bool {
    charset.is_none_or(|charset| {
        let name: &str = charset.as_ref();
        name.eq_ignore_ascii_case("UTF-8") || name.eq_ignore_ascii_case("US-ASCII")
    })
}

/// Depth-first search over a key tree with an explicit stack, so any depth is safe.
/// Does any key of the tree (NOT, OR and AND walked without recursion) satisfy `predicate`?
pub fn any_key(root: &SearchKey<'_>, predicate: impl Fn(&SearchKey<'_>) -> bool) -> bool {
    let mut stack = vec![root];
    while let Some(key) = stack.pop() {
        if predicate(key) {
            return true;
        }
        match key {
            SearchKey::Not(inner) => stack.push(inner),
            SearchKey::Or(left, right) => {
                stack.push(left);
                stack.push(right);
            }
            SearchKey::And(keys) => stack.extend(keys.as_ref().iter()),
            _ => {}
        }
    }
    false
}
