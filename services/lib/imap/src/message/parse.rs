//! Building [`MessageMetadata`] from raw bytes: mail-parser finds the MIME tree and parses
//! Content-Type / Content-Disposition (RFC 2045, 2046, 2183, 2231); this module turns its offsets
//! into checked ranges of the input and reads the other fields raw.
//!
//! mail-parser's offsets are trusted only after clamping: every part is forced inside its parent's
//! body, and an embedded message/rfc822 gets exactly its enclosing part's body. A message/rfc822
//! body with a base64 or quoted-printable transfer encoding is parsed by mail-parser from decoded
//! bytes, whose offsets are not offsets of the input; such a part is kept as an opaque leaf, which
//! is also what IMAP servers commonly report for it.
//!
//! mail-parser is documented never to panic, yet on some malformed input its debug assertions
//! fire (and debug builds check its arithmetic for overflow). The call is therefore wrapped in
//! `catch_unwind`; on a panic the message is described as one text/plain part after its header.
//! This relies on the workspace not building with `panic = "abort"`.

use mail_parser::{
    ContentType, Encoding, GetHeader, HeaderName, HeaderValue, Message, MessageParser, MessagePart,
    PartType, parsers::MessageStream,
};

use super::address::parse_address_list;
use super::header::{first_value, header_end, stored_header};
use super::model::{Disposition, EmbeddedMessage, Envelope, Part};
use super::{
    MAX_ENVELOPE_FIELD_BYTES, MAX_MIME_DEPTH, MAX_MIME_PARTS, MAX_STORED_HEADER_BYTES,
    METADATA_VERSION, MessageMetadata,
};

impl MessageMetadata {
    /// Parses a raw RFC 5322 message once, for storage next to it. Never fails and never panics:
    /// malformed input yields a best-effort structure whose ranges still lie within `raw`.
    ///
    /// Line endings are taken as they are (CRLF or bare LF); a store that normalises them must do
    /// so before calling this, as every size and offset refers to these exact bytes.
    pub fn parse(raw: &[u8]) -> MessageMetadata {
        // See the module notes on why a panic is caught here.
        let structure = std::panic::catch_unwind(|| {
            let mut builder = Builder {
                raw,
                parts_left: MAX_MIME_PARTS.saturating_sub(1),
                truncated: false,
            };
            let body = match MessageParser::new().parse(raw) {
                Some(message) => builder.message_root(&message, 0, raw.len(), 0),
                // No header field and no blank line: RFC 3501 treats it all as header.
                None => Part::empty(0, len64(raw.len()), len64(raw.len())),
            };
            (body, builder.truncated)
        });
        let (body, structure_truncated) = structure.unwrap_or_else(|_| (single_part(raw), true));
        let header_bytes = slice(raw, 0, body.body_start);
        let (header, header_truncated) = stored_header(header_bytes, MAX_STORED_HEADER_BYTES);
        let (date, date_offset) = sent_date(header_bytes);
        MessageMetadata {
            v: METADATA_VERSION,
            size: len64(raw.len()),
            header_len: body.body_start,
            header,
            header_truncated,
            structure_truncated,
            date,
            date_offset,
            envelope: envelope_of(header_bytes),
            body,
        }
    }
}

/// The whole message as one text/plain part after the header, for when the MIME parser failed.
fn single_part(raw: &[u8]) -> Part {
    let body_start = header_end(raw);
    let mut part = Part::empty(0, len64(body_start), len64(raw.len()));
    part.lines = count_lines(raw.get(body_start..).unwrap_or_default());
    part
}

struct Builder<'a> {
    raw: &'a [u8],
    parts_left: usize,
    truncated: bool,
}

impl Builder<'_> {
    /// The top-level part of `message`, spanning `start..end` of the raw input.
    fn message_root(
        &mut self,
        message: &Message<'_>,
        start: usize,
        end: usize,
        depth: usize,
    ) -> Part {
        let Some(root) = message.parts.first() else {
            return Part::empty(len64(start), len64(start), len64(end));
        };
        let body_start = clamp(root.offset_body, start, end);
        self.part(message, 0, [start, body_start, end], depth, false)
    }

    fn part(
        &mut self,
        message: &Message<'_>,
        id: usize,
        [start, body_start, end]: [usize; 3],
        depth: usize,
        in_digest: bool,
    ) -> Part {
        let mut part = Part::empty(len64(start), len64(body_start), len64(end));
        let Some(source) = message.parts.get(id) else {
            return part;
        };
        let header = self.raw.get(start..body_start).unwrap_or_default();
        read_mime_fields(&mut part, header, source);
        set_media_type(&mut part, source, in_digest);

        if part.is_multipart() {
            if depth + 1 >= MAX_MIME_DEPTH {
                self.truncated = true;
                part.media_type = "application".to_owned();
                part.subtype = "octet-stream".to_owned();
                part.params.clear();
                return part;
            }
            let digest = part.subtype == "digest";
            if let PartType::Multipart(children) = &source.body {
                for &child_id in children.iter().filter(|&&child| child as usize > id) {
                    let Some(child) = message.parts.get(child_id as usize) else {
                        continue;
                    };
                    if self.parts_left == 0 {
                        self.truncated = true;
                        break;
                    }
                    self.parts_left -= 1;
                    let child_start = clamp(child.offset_header, body_start, end);
                    let child_body = clamp(child.offset_body, child_start, end);
                    let child_end = clamp(child.offset_end, child_body, end);
                    let range = [child_start, child_body, child_end];
                    let child = self.part(message, child_id as usize, range, depth + 1, digest);
                    part.parts.push(child);
                }
            }
        } else if part.media_type == "message" && part.subtype == "rfc822" {
            if let PartType::Message(embedded) = &source.body
                && source.encoding == Encoding::None
            {
                if depth + 1 >= MAX_MIME_DEPTH || self.parts_left == 0 {
                    self.truncated = true;
                } else {
                    self.parts_left -= 1;
                    let root = self.message_root(embedded, body_start, end, depth + 1);
                    let embedded_header = slice(self.raw, root.header_start, root.body_start);
                    part.message = Some(Box::new(EmbeddedMessage {
                        envelope: envelope_of(embedded_header),
                        body: root,
                    }));
                }
            }
            if part.message.is_some() {
                part.lines = count_lines(self.raw.get(body_start..end).unwrap_or_default());
            }
        } else if part.media_type == "text" {
            part.lines = count_lines(self.raw.get(body_start..end).unwrap_or_default());
        }
        part
    }
}

/// Type, subtype and parameters after RFC 2045 section 5.2 defaulting: a missing or unusable
/// Content-Type means text/plain (message/rfc822 inside multipart/digest, RFC 2046 section
/// 5.1.5), and so does a multipart that mail-parser could not split (no boundary).
fn set_media_type(part: &mut Part, source: &MessagePart<'_>, in_digest: bool) {
    let declared = source
        .headers
        .header_value(&HeaderName::ContentType)
        .and_then(HeaderValue::as_content_type);
    let split = matches!(source.body, PartType::Multipart(_));
    let (media_type, subtype) = match declared {
        Some(ct) if ct.ctype().eq_ignore_ascii_case("multipart") => match split {
            true => (
                "multipart".to_owned(),
                ct.subtype().unwrap_or("mixed").to_owned(),
            ),
            false => return,
        },
        Some(ct) if !ct.ctype().is_empty() && ct.subtype().is_some_and(|s| !s.is_empty()) => (
            ct.ctype().to_owned(),
            ct.subtype().unwrap_or_default().to_owned(),
        ),
        _ if in_digest => ("message".to_owned(), "rfc822".to_owned()),
        _ => return,
    };
    part.media_type = media_type.to_ascii_lowercase();
    part.subtype = subtype.to_ascii_lowercase();
    part.params = declared.map(params).unwrap_or_default();
}

fn params(content_type: &ContentType<'_>) -> Vec<(String, String)> {
    content_type
        .attributes()
        .unwrap_or_default()
        .iter()
        .map(|attr| (attr.name.to_ascii_lowercase(), attr.value.to_string()))
        .collect()
}

/// The MIME fields RFC 3501 reports raw, read from the part's own header bytes.
fn read_mime_fields(part: &mut Part, header: &[u8], source: &MessagePart<'_>) {
    let value = |name: &str| first_value(header, name).filter(|value| !value.is_empty());
    part.id = value("content-id");
    part.description = value("content-description");
    part.md5 = value("content-md5");
    part.location = value("content-location");
    part.encoding = value("content-transfer-encoding").and_then(|value| {
        let token = value
            .split([' ', '\t', ';', '('])
            .next()
            .unwrap_or_default();
        Some(token.to_ascii_lowercase()).filter(|token| !token.is_empty())
    });
    part.language = value("content-language")
        .map(|value| {
            value
                .split([',', ' ', '\t'])
                .filter(|tag| !tag.is_empty() && !tag.starts_with('('))
                .map(str::to_owned)
                .collect()
        })
        .unwrap_or_default();
    part.disposition = source
        .headers
        .header_value(&HeaderName::ContentDisposition)
        .and_then(HeaderValue::as_content_type)
        .filter(|disposition| !disposition.ctype().is_empty())
        .map(|disposition| Disposition {
            kind: disposition.ctype().to_ascii_lowercase(),
            params: params(disposition),
        });
}

/// The RFC 3501 envelope fields of a header section, raw and capped in size.
pub(crate) fn envelope_of(header: &[u8]) -> Envelope {
    let text = |name: &str| first_value(header, name).map(cap);
    let addresses = |name: &str| {
        text(name)
            .map(|value| parse_address_list(&value))
            .unwrap_or_default()
    };
    Envelope {
        date: text("date"),
        subject: text("subject"),
        from: addresses("from"),
        sender: addresses("sender"),
        reply_to: addresses("reply-to"),
        to: addresses("to"),
        cc: addresses("cc"),
        bcc: addresses("bcc"),
        in_reply_to: text("in-reply-to"),
        message_id: text("message-id"),
    }
}

/// The Date field as Unix seconds and its zone's offset in minutes, if present and a valid
/// RFC 5322 date.
fn sent_date(header: &[u8]) -> (Option<i64>, Option<i32>) {
    let Some(value) = first_value(header, "date") else {
        return (None, None);
    };
    let line = format!("{value}\n");
    match MessageStream::new(line.as_bytes()).parse_date() {
        HeaderValue::DateTime(date) if date.is_valid() => {
            let minutes = i32::from(date.tz_hour) * 60 + i32::from(date.tz_minute);
            let offset = if date.tz_before_gmt {
                -minutes
            } else {
                minutes
            };
            (Some(date.to_timestamp()), Some(offset))
        }
        _ => (None, None),
    }
}

fn cap(mut value: String) -> String {
    if value.len() > MAX_ENVELOPE_FIELD_BYTES {
        let mut cut = MAX_ENVELOPE_FIELD_BYTES;
        while !value.is_char_boundary(cut) {
            cut -= 1;
        }
        value.truncate(cut);
    }
    value
}

/// Text lines of a body: line feeds, plus a last line without one (a part's final CRLF belongs to
/// the following boundary, RFC 2046 section 5.1.1).
fn count_lines(body: &[u8]) -> u64 {
    let feeds = len64(memchr::memchr_iter(b'\n', body).count());
    feeds + u64::from(body.last().is_some_and(|&last| last != b'\n'))
}

fn clamp(offset: u32, low: usize, high: usize) -> usize {
    usize::try_from(offset)
        .unwrap_or(usize::MAX)
        .clamp(low, high.max(low))
}

fn slice(raw: &[u8], start: u64, end: u64) -> &[u8] {
    let to_usize = |offset: u64| usize::try_from(offset).unwrap_or(usize::MAX);
    raw.get(to_usize(start)..to_usize(end)).unwrap_or_default()
}

pub(crate) fn len64(len: usize) -> u64 {
    u64::try_from(len).unwrap_or(u64::MAX)
}
