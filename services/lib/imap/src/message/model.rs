//! The stored shapes: one [`Part`] per MIME entity, with its byte ranges in the raw message, and
//! the raw [`Envelope`] of the message and of every embedded message/rfc822.
//!
//! These are persisted as jsonb once per message, so empty and default-valued fields are left out
//! and the per-part keys that appear on every part are short (`hs`, `bs`, `be`). Deserialising a
//! value written by this version and serialising it again yields the same JSON.

use serde::{Deserialize, Serialize};

/// One MIME entity (RFC 2045 section 2.4): the top-level message body, a child of a multipart, or
/// the body of an embedded message/rfc822.
///
/// Offsets are byte offsets into the raw message as stored, always ordered
/// `header_start <= body_start <= body_end <= message size`. Type, subtype, parameter names and the
/// transfer encoding are lower-cased; everything else is the raw header text, unfolded and not
/// decoded, because BODYSTRUCTURE returns it that way.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Part {
    /// Media type after RFC 2045 defaulting, e.g. `text`, `multipart`, `message`.
    #[serde(
        rename = "type",
        default = "default_type",
        skip_serializing_if = "is_default_type"
    )]
    pub media_type: String,
    /// Media subtype after defaulting, e.g. `plain`, `mixed`, `rfc822`.
    #[serde(
        default = "default_subtype",
        skip_serializing_if = "is_default_subtype"
    )]
    pub subtype: String,
    /// Content-Type parameters as given (RFC 2231 continuations merged and decoded to UTF-8).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub params: Vec<(String, String)>,
    /// Raw Content-ID, angle brackets included.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub id: Option<String>,
    /// Raw Content-Description (encoded-words left encoded).
    #[serde(rename = "desc", default, skip_serializing_if = "Option::is_none")]
    pub description: Option<String>,
    /// Content-Transfer-Encoding token; `None` means the RFC 2045 default, 7bit.
    #[serde(rename = "enc", default, skip_serializing_if = "Option::is_none")]
    pub encoding: Option<String>,
    /// Raw Content-MD5 (RFC 1864).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub md5: Option<String>,
    /// Content-Disposition (RFC 2183).
    #[serde(rename = "disp", default, skip_serializing_if = "Option::is_none")]
    pub disposition: Option<Disposition>,
    /// Content-Language tags (RFC 3282).
    #[serde(rename = "lang", default, skip_serializing_if = "Vec::is_empty")]
    pub language: Vec<String>,
    /// Raw Content-Location (RFC 2557).
    #[serde(rename = "loc", default, skip_serializing_if = "Option::is_none")]
    pub location: Option<String>,
    /// Offset of this part's own header (its MIME header; 0 for the top-level part).
    #[serde(rename = "hs")]
    pub header_start: u64,
    /// Offset of the first body byte, just after the blank line ending the header.
    #[serde(rename = "bs")]
    pub body_start: u64,
    /// Offset one past the last body byte (the CRLF before a boundary belongs to the boundary).
    #[serde(rename = "be")]
    pub body_end: u64,
    /// Body lines, counted for text/* parts and parsed message/rfc822 parts only.
    #[serde(default, skip_serializing_if = "is_zero")]
    pub lines: u64,
    /// Children of a multipart, in order; may be empty for a multipart with no parts at all.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub parts: Vec<Part>,
    /// The embedded message of a message/rfc822 part whose body was parsed.
    #[serde(rename = "msg", default, skip_serializing_if = "Option::is_none")]
    pub message: Option<Box<EmbeddedMessage>>,
}

/// A message/rfc822 body: its envelope and its own top-level part, whose header starts at the
/// enclosing part's `body_start` and whose body ends at the enclosing part's `body_end`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct EmbeddedMessage {
    #[serde(rename = "env", default)]
    pub envelope: Envelope,
    pub body: Part,
}

/// Content-Disposition type (lower-cased) and parameters.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Disposition {
    #[serde(rename = "type")]
    pub kind: String,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub params: Vec<(String, String)>,
}

/// The RFC 3501 ENVELOPE fields as they appear in the header: unfolded, trimmed, not decoded.
///
/// Sender and Reply-To are stored only when present; [`Envelope`]'s conversion applies the RFC
/// 3501 rule that they default to From.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Envelope {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub date: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub subject: Option<String>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub from: Vec<Address>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub sender: Vec<Address>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub reply_to: Vec<Address>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub to: Vec<Address>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub cc: Vec<Address>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub bcc: Vec<Address>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub in_reply_to: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub message_id: Option<String>,
}

/// One RFC 3501 address structure. Group syntax uses the IMAP encoding: a group starts with
/// `mailbox = Some(group name), host = None` and ends with all four fields `None`. An address
/// without a domain has `host = Some("")` so that it cannot be mistaken for a group marker.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Address {
    /// Display name (phrase) or, failing that, a trailing comment; raw encoded-words kept.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub name: Option<String>,
    /// Obsolete source route, e.g. `@relay1,@relay2`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub adl: Option<String>,
    /// Local part, or the group name for a group start.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub mailbox: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub host: Option<String>,
}

impl Part {
    /// A text/plain part spanning the given offsets, with nothing else set.
    pub(crate) fn empty(header_start: u64, body_start: u64, body_end: u64) -> Part {
        Part {
            media_type: default_type(),
            subtype: default_subtype(),
            params: Vec::new(),
            id: None,
            description: None,
            encoding: None,
            md5: None,
            disposition: None,
            language: Vec::new(),
            location: None,
            header_start,
            body_start,
            body_end,
            lines: 0,
            parts: Vec::new(),
            message: None,
        }
    }

    /// Whether this part is a multipart whose children are in [`Part::parts`].
    pub fn is_multipart(&self) -> bool {
        self.media_type == "multipart"
    }

    /// Body size in octets, in its transfer encoding (RFC 3501 body-fld-octets).
    pub fn body_size(&self) -> u64 {
        self.body_end.saturating_sub(self.body_start)
    }

    /// The value of a Content-Type parameter, by case-insensitive name.
    pub fn param(&self, name: &str) -> Option<&str> {
        self.params
            .iter()
            .find(|(key, _)| key.eq_ignore_ascii_case(name))
            .map(|(_, value)| value.as_str())
    }
}

fn default_type() -> String {
    "text".to_owned()
}

fn default_subtype() -> String {
    "plain".to_owned()
}

fn is_default_type(value: &str) -> bool {
    value == "text"
}

fn is_default_subtype(value: &str) -> bool {
    value == "plain"
}

fn is_zero(value: &u64) -> bool {
    *value == 0
}
