//! Three-valued evaluation of a search-key tree against one message.
//!
//! A key whose answer depends on a body that is not loaded evaluates to `Unknown`. AND, OR and NOT
//! combine the three values the Kleene way, so a branch decided by flags or headers (`OR SEEN BODY
//! x` on a seen message) settles the answer without the body; only an `Unknown` root becomes
//! [`SearchError::NeedBody`].

use imap_types::core::AString;
use imap_types::datetime::NaiveDate;
use imap_types::search::SearchKey;
use imap_types::sequence::{SeqOrUid, Sequence, SequenceSet};
use time::OffsetDateTime;

use super::text::{Needle, contains};
use super::{MAX_SEARCH_DEPTH, SearchContext, SearchError, SearchSubject};

/// Kleene truth value: `Unknown` means "depends on the body, which is not loaded".
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Truth {
    True,
    False,
    Unknown,
}

impl Truth {
    fn from_bool(value: bool) -> Self {
        if value { Truth::True } else { Truth::False }
    }

    fn not(self) -> Self {
        match self {
            Truth::True => Truth::False,
            Truth::False => Truth::True,
            Truth::Unknown => Truth::Unknown,
        }
    }
}

/// Julian day number of 1970-01-01, to line `time` dates up with chrono's epoch days.
const UNIX_EPOCH_JULIAN_DAY: i64 = 2_440_588;

/// ANDs the top-level criteria of a SEARCH command.
pub(super) fn all<M: SearchSubject + ?Sized>(
    criteria: &[SearchKey<'_>],
    message: &M,
    context: &SearchContext,
) -> Result<bool, SearchError> {
    match and(criteria, message, context, 0)? {
        Truth::True => Ok(true),
        Truth::False => Ok(false),
        Truth::Unknown => Err(SearchError::NeedBody),
    }
}

fn and<M: SearchSubject + ?Sized>(
    keys: &[SearchKey<'_>],
    message: &M,
    context: &SearchContext,
    depth: usize,
) -> Result<Truth, SearchError> {
    let mut result = Truth::True;
    for key in keys {
        match key_truth(key, message, context, depth)? {
            Truth::False => return Ok(Truth::False),
            Truth::Unknown => result = Truth::Unknown,
            Truth::True => {}
        }
    }
    Ok(result)
}

fn key_truth<M: SearchSubject + ?Sized>(
    key: &SearchKey<'_>,
    message: &M,
    context: &SearchContext,
    depth: usize,
) -> Result<Truth, SearchError> {
    let nested = depth + 1;
    if matches!(
        key,
        SearchKey::Not(_) | SearchKey::Or(..) | SearchKey::And(_)
    ) && nested > MAX_SEARCH_DEPTH
    {
        return Err(SearchError::TooDeep);
    }
    let flag = |name: &str| Truth::from_bool(has_flag(message, name));
    let internal_day = || epoch_days(message.internal_date());
    let sent_day = || message.sent_date().map(epoch_days);
    Ok(match key {
        SearchKey::And(keys) => and(keys.as_ref(), message, context, nested)?,
        SearchKey::Not(inner) => key_truth(inner, message, context, nested)?.not(),
        SearchKey::Or(left, right) => match key_truth(left, message, context, nested)? {
            Truth::True => Truth::True,
            first => match (first, key_truth(right, message, context, nested)?) {
                (_, Truth::True) => Truth::True,
                (Truth::False, Truth::False) => Truth::False,
                _ => Truth::Unknown,
            },
        },
        SearchKey::All => Truth::True,
        SearchKey::SequenceSet(set) => {
            Truth::from_bool(set_contains(set, message.seq(), context.max_seq))
        }
        SearchKey::Uid(set) => Truth::from_bool(set_contains(set, message.uid(), context.max_uid)),
        SearchKey::Answered => flag("\\Answered"),
        SearchKey::Deleted => flag("\\Deleted"),
        SearchKey::Draft => flag("\\Draft"),
        SearchKey::Flagged => flag("\\Flagged"),
        SearchKey::Seen => flag("\\Seen"),
        SearchKey::Unanswered => flag("\\Answered").not(),
        SearchKey::Undeleted => flag("\\Deleted").not(),
        SearchKey::Undraft => flag("\\Draft").not(),
        SearchKey::Unflagged => flag("\\Flagged").not(),
        SearchKey::Unseen => flag("\\Seen").not(),
        SearchKey::Keyword(keyword) => flag(keyword.as_ref()),
        SearchKey::Unkeyword(keyword) => flag(keyword.as_ref()).not(),
        SearchKey::Recent => Truth::from_bool(message.recent()),
        SearchKey::Old => Truth::from_bool(!message.recent()),
        SearchKey::New => Truth::from_bool(message.recent() && !has_flag(message, "\\Seen")),
        SearchKey::Before(date) => Truth::from_bool(internal_day() < key_days(date)),
        SearchKey::On(date) => Truth::from_bool(internal_day() == key_days(date)),
        SearchKey::Since(date) => Truth::from_bool(internal_day() >= key_days(date)),
        SearchKey::SentBefore(date) => {
            Truth::from_bool(sent_day().is_some_and(|d| d < key_days(date)))
        }
        SearchKey::SentOn(date) => Truth::from_bool(sent_day() == Some(key_days(date))),
        SearchKey::SentSince(date) => {
            Truth::from_bool(sent_day().is_some_and(|d| d >= key_days(date)))
        }
        SearchKey::Larger(octets) => Truth::from_bool(message.size() > u64::from(*octets)),
        SearchKey::Smaller(octets) => Truth::from_bool(message.size() < u64::from(*octets)),
        SearchKey::ModSequence { modseq, .. } => Truth::from_bool(message.modseq() >= *modseq),
        SearchKey::From(value) => header(message, "From", value),
        SearchKey::To(value) => header(message, "To", value),
        SearchKey::Cc(value) => header(message, "Cc", value),
        SearchKey::Bcc(value) => header(message, "Bcc", value),
        SearchKey::Subject(value) => header(message, "Subject", value),
        SearchKey::Header(field, value) => {
            header(message, &String::from_utf8_lossy(field.as_ref()), value)
        }
        SearchKey::Body(value) => body(message, &Needle::new(value.as_ref())),
        SearchKey::Text(value) => text(message, &Needle::new(value.as_ref())),
        // Keys of imap-types features this crate does not enable (RFC 5032 OLDER/YOUNGER); only
        // reachable when feature unification turns them on.
        #[allow(unreachable_patterns)]
        _ => return Err(SearchError::Unsupported),
    })
}

fn has_flag<M: SearchSubject + ?Sized>(message: &M, name: &str) -> bool {
    message
        .flags()
        .iter()
        .any(|flag| flag.eq_ignore_ascii_case(name))
}

/// `HEADER field value` semantics: the field must exist; an empty value matches any instance.
fn header<M: SearchSubject + ?Sized>(message: &M, field: &str, value: &AString<'_>) -> Truth {
    let needle = Needle::new(value.as_ref());
    let values = message.header_values(field);
    Truth::from_bool(values.iter().any(|value| contains(value, &needle)))
}

fn body<M: SearchSubject + ?Sized>(message: &M, needle: &Needle) -> Truth {
    if needle.is_empty() {
        return Truth::True;
    }
    match message.body_text() {
        Some(body) => Truth::from_bool(contains(body, needle)),
        None => Truth::Unknown,
    }
}

fn text<M: SearchSubject + ?Sized>(message: &M, needle: &Needle) -> Truth {
    let in_headers = message
        .header_fields()
        .iter()
        .any(|(name, value)| contains(&format!("{name}: {value}"), needle));
    if in_headers {
        Truth::True
    } else {
        body(message, needle)
    }
}

/// Whether `value` is in `set`, `*` standing for `largest` (nothing when `largest` is 0).
pub(super) fn set_contains(set: &SequenceSet, value: u32, largest: u32) -> bool {
    let resolve = |bound: &SeqOrUid| match bound {
        SeqOrUid::Value(number) => Some(number.get()),
        SeqOrUid::Asterisk => (largest != 0).then_some(largest),
    };
    set.0.as_ref().iter().any(|sequence| match sequence {
        Sequence::Single(bound) => resolve(bound) == Some(value),
        Sequence::Range(first, last) => match (resolve(first), resolve(last)) {
            (Some(first), Some(last)) => (first.min(last)..=first.max(last)).contains(&value),
            _ => false,
        },
    })
}

/// Calendar day of `moment` in its own offset, counted from 1970-01-01.
fn epoch_days(moment: OffsetDateTime) -> i64 {
    i64::from(moment.date().to_julian_day()) - UNIX_EPOCH_JULIAN_DAY
}

fn key_days(date: &NaiveDate) -> i64 {
    i64::from(date.as_ref().to_epoch_days())
}
