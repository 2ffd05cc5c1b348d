//! Per-message metadata, computed once when a message is stored, so that FETCH of ENVELOPE, BODY,
//! BODYSTRUCTURE and RFC822.SIZE, header SEARCH keys, SORT and partial body sections never need
//! the message itself: a `BODY[1.2]<0.100>` becomes a ranged read of the object store.
//!
//! Standards: RFC 5322 (header fields, addresses, dates), RFC 2045/2046 (MIME structure and its
//! defaults), RFC 2047 (encoded-words, decoded only for SEARCH), RFC 2183 (Content-Disposition),
//! RFC 2231 (parameter continuations), RFC 3282 (Content-Language), RFC 2557 (Content-Location),
//! RFC 3501 sections 6.4.5 and 7.4.2 (section numbering, ENVELOPE, BODY, BODYSTRUCTURE) and RFC
//! 5256 section 2.1 (base subject).
//!
//! Trust: the message is untrusted input from the network. [`MessageMetadata::parse`] never
//! fails and never panics; every stored range lies within the parsed input, and the amount stored
//! is bounded ([`MAX_STORED_HEADER_BYTES`], [`MAX_ENVELOPE_FIELD_BYTES`], [`MAX_MIME_PARTS`],
//! [`MAX_MIME_DEPTH`]). Stored metadata is trusted only as far as our own format: a value read back
//! from the database may be stale or hand-edited, so the conversions and [`section_range`]
//! tolerate any field values and merely return ranges as stored; the caller clamps them to the
//! object it reads.
//!
//! Structure parsing is mail-parser's; the raw ENVELOPE and MIME field values, the address
//! parser and the section rules are here, because IMAP wants them undecoded.
//!
//! [`section_range`]: MessageMetadata::section_range

mod address;
mod crlf;
mod header;
mod imap;
mod model;
mod parse;
mod section;
mod subject;

#[cfg(test)]
mod tests;

use serde::{Deserialize, Serialize};

pub use crlf::normalize_line_endings;
pub use header::filter_header_fields;
pub use model::{Address, Disposition, EmbeddedMessage, Envelope, Part};
pub use section::SectionWhat;

/// Version of the stored JSON format, written as `"v"`.
pub const METADATA_VERSION: u32 = 1;
/// Top-level header bytes kept in [`MessageMetadata::header`] for SEARCH.
pub const MAX_STORED_HEADER_BYTES: usize = 64 * 1024;
/// Longest raw ENVELOPE field (before address parsing) that is stored; longer ones are cut.
pub const MAX_ENVELOPE_FIELD_BYTES: usize = 16 * 1024;
/// Most MIME parts described per message, embedded messages included; later parts are left out
/// (their bytes stay inside the enclosing part's body).
pub const MAX_MIME_PARTS: usize = 1_000;
/// Deepest nesting of multiparts and embedded messages described; a deeper multipart is reported
/// as one application/octet-stream part. Keeps the stored JSON well inside serde_json's
/// 128-level recursion limit.
pub const MAX_MIME_DEPTH: usize = 24;

/// What the store keeps about one message (stored as jsonb beside the message object).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct MessageMetadata {
    /// Format version, [`METADATA_VERSION`] when written by this code.
    pub v: u32,
    /// Size of the raw message in octets (RFC822.SIZE).
    pub size: u64,
    /// Length of the top-level header including the blank line after it (`BODY[HEADER]`); the
    /// top-level body (`BODY[TEXT]`) is `header_len..size`.
    pub header_len: u64,
    /// The top-level header as lossy UTF-8, cut at a line end after [`MAX_STORED_HEADER_BYTES`].
    pub header: String,
    /// Whether `header` was cut.
    #[serde(default, skip_serializing_if = "is_false")]
    pub header_truncated: bool,
    /// Whether the MIME structure is incomplete: parts left out because of [`MAX_MIME_PARTS`] or
    /// [`MAX_MIME_DEPTH`], or the MIME parser failed and the body is described as one part.
    #[serde(default, skip_serializing_if = "is_false")]
    pub structure_truncated: bool,
    /// The Date header as Unix seconds, for SENT* searches and SORT DATE.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub date: Option<i64>,
    /// The Date header's zone offset in minutes east of UTC: SENTON/SENTBEFORE/SENTSINCE
    /// compare the date as written (RFC 3501 section 6.4.4).
    #[serde(rename = "dz", default, skip_serializing_if = "Option::is_none")]
    pub date_offset: Option<i32>,
    #[serde(rename = "env", default)]
    pub envelope: Envelope,
    /// The top-level MIME part: header `0..header_len`, body `header_len..size`.
    pub body: Part,
}

impl MessageMetadata {
    /// The RFC 3501 ENVELOPE of the message.
    pub fn envelope(&self) -> imap_types::envelope::Envelope<'static> {
        imap::envelope(&self.envelope)
    }

    /// BODYSTRUCTURE (`extended`) or BODY (not extended) per RFC 3501 section 7.4.2.
    pub fn body_structure(&self, extended: bool) -> imap_types::body::BodyStructure<'static> {
        imap::body_structure(&self.body, extended)
    }

    /// Values of every top-level header field called `name` (case-insensitive), unfolded and with
    /// RFC 2047 encoded-words decoded, for SEARCH HEADER/FROM/TO/CC/BCC/SUBJECT.
    pub fn header_values(&self, name: &str) -> Vec<String> {
        header::decoded_values(self.header.as_bytes(), name)
    }

    /// Every top-level header field as `(name, value)`, unfolded and decoded (SEARCH TEXT).
    pub fn header_fields(&self) -> Vec<(String, String)> {
        header::fields(self.header.as_bytes())
            .map(|field| {
                (
                    String::from_utf8_lossy(field.name).into_owned(),
                    header::decode_encoded_words(&header::unfold(field.value)),
                )
            })
            .collect()
    }

    /// The Date header as an instant in the zone it was written in (UTC when unknown).
    pub fn sent_date(&self) -> Option<time::OffsetDateTime> {
        let at = time::OffsetDateTime::from_unix_timestamp(self.date?).ok()?;
        let offset = self
            .date_offset
            .and_then(|minutes| time::UtcOffset::from_whole_seconds(minutes * 60).ok())
            .unwrap_or(time::UtcOffset::UTC);
        Some(at.to_offset(offset))
    }

    /// The RFC 5256 base subject, for SORT SUBJECT and THREAD; empty without a Subject.
    pub fn base_subject(&self) -> String {
        let subject = self.header_values("subject").into_iter().next();
        subject::base_subject(&subject.unwrap_or_default())
    }
}

fn is_false(value: &bool) -> bool {
    !*value
}
