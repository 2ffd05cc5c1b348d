//! Header sections as bytes (RFC 5322 section 2.2): splitting into fields, unfolding, the
//! HEADER.FIELDS / HEADER.FIELDS.NOT subsets of RFC 3501 section 6.4.5, and decoding of RFC 2047
//! encoded-words for SEARCH.
//!
//! Lenient by design: lines ending in a bare LF are accepted, a line without a colon (or with a
//! name that is not printable ASCII) is not a field and is skipped, and a header without a
//! terminating blank line simply ends with the input.

use std::borrow::Cow;

use mail_parser::{HeaderValue, parsers::MessageStream};

/// One header field: `name` without the colon or surrounding blanks, `value` the raw bytes after
/// the colon (folding kept, final line ending removed), `raw` the whole field with its line ending.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Field<'a> {
    pub name: &'a [u8],
    pub value: &'a [u8],
    pub raw: &'a [u8],
}

/// Iterates over the fields of a header section, stopping at the first empty line.
pub(crate) fn fields(header: &[u8]) -> impl Iterator<Item = Field<'_>> {
    let mut pos = 0;
    std::iter::from_fn(move || {
        loop {
            let rest = header.get(pos..).filter(|rest| !rest.is_empty())?;
            if rest.starts_with(b"\n") || rest.starts_with(b"\r\n") {
                return None;
            }
            let len = field_len(rest);
            pos += len;
            let raw = rest.get(..len)?;
            if let Some(field) = split_field(raw) {
                return Some(field);
            }
        }
    })
}

/// Offset just after the first empty line (the end of the header section), or the input length
/// when there is none.
pub(crate) fn header_end(raw: &[u8]) -> usize {
    let mut pos = 0;
    while let Some(rest) = raw.get(pos..).filter(|rest| !rest.is_empty()) {
        if rest.starts_with(b"\n") {
            return pos + 1;
        }
        if rest.starts_with(b"\r\n") {
            return pos + 2;
        }
        match memchr::memchr(b'\n', rest) {
            Some(newline) => pos += newline + 1,
            None => break,
        }
    }
    raw.len()
}

/// Length of the field starting at `rest[0]`: its first line plus every continuation line.
fn field_len(rest: &[u8]) -> usize {
    let mut end = 0;
    loop {
        match memchr::memchr(b'\n', rest.get(end..).unwrap_or_default()) {
            Some(newline) => end += newline + 1,
            None => return rest.len(),
        }
        match rest.get(end) {
            Some(b' ' | b'\t') => continue,
            _ => return end,
        }
    }
}

fn split_field(raw: &[u8]) -> Option<Field<'_>> {
    let colon = memchr::memchr(b':', raw)?;
    let name = trim(raw.get(..colon)?);
    if name.is_empty() || !name.iter().all(|&b| (33..=126).contains(&b)) {
        return None;
    }
    let mut value = raw.get(colon + 1..)?;
    value = value.strip_suffix(b"\n").unwrap_or(value);
    value = value.strip_suffix(b"\r").unwrap_or(value);
    Some(Field { name, value, raw })
}

fn trim(mut bytes: &[u8]) -> &[u8] {
    while let [b' ' | b'\t' | b'\r' | b'\n', rest @ ..] = bytes {
        bytes = rest;
    }
    while let [rest @ .., b' ' | b'\t' | b'\r' | b'\n'] = bytes {
        bytes = rest;
    }
    bytes
}

/// RFC 5322 section 2.2.3 unfolding plus trimming: line breaks are removed (the blank that starts
/// the continuation line stays), and so are stray CR/LF and NUL octets, which no IMAP string can
/// carry. Invalid UTF-8 is replaced, as the result is stored as JSON text.
pub(crate) fn unfold(value: &[u8]) -> String {
    let cleaned: Vec<u8> = trim(value)
        .iter()
        .copied()
        .filter(|&b| !matches!(b, b'\r' | b'\n' | 0))
        .collect();
    match String::from_utf8(cleaned) {
        Ok(text) => text,
        Err(error) => String::from_utf8_lossy(error.as_bytes()).into_owned(),
    }
}

/// The first field called `name` (case-insensitive), unfolded; `None` when absent.
pub(crate) fn first_value(header: &[u8], name: &str) -> Option<String> {
    fields(header)
        .find(|field| field.name.eq_ignore_ascii_case(name.as_bytes()))
        .map(|field| unfold(field.value))
}

/// Every field called `name`, unfolded and with RFC 2047 encoded-words decoded.
pub(crate) fn decoded_values(header: &[u8], name: &str) -> Vec<String> {
    fields(header)
        .filter(|field| field.name.eq_ignore_ascii_case(name.as_bytes()))
        .map(|field| decode_encoded_words(&unfold(field.value)))
        .collect()
}

/// Decodes RFC 2047 encoded-words with mail-parser's unstructured-field parser, which also knows
/// the charsets; text that is not an encoded-word is kept.
pub(crate) fn decode_encoded_words(unfolded: &str) -> String {
    if !unfolded.contains("=?") {
        return unfolded.to_owned();
    }
    let line = format!("{unfolded}\n");
    match MessageStream::new(line.as_bytes()).parse_unstructured() {
        HeaderValue::Text(text) => text.into_owned(),
        _ => unfolded.to_owned(),
    }
}

/// Whether a header section ends with the blank line that separates it from a body.
fn has_blank_line(header: &[u8]) -> bool {
    matches!(header, b"\n" | b"\r\n") || header.ends_with(b"\n\n") || header.ends_with(b"\n\r\n")
}

/// The HEADER.FIELDS (or, with `not`, HEADER.FIELDS.NOT) subset of a header section, as RFC 3501
/// section 6.4.5 defines it: whole fields (continuation lines included) whose name matches one of
/// `fields` case-insensitively (or none of them), in their original order and bytes, followed by
/// the blank line when `header` has one.
///
/// `header` is what [`super::MessageMetadata::section_range`] returns for
/// [`super::SectionWhat::Header`]. A last field without a line ending gets a CRLF.
pub fn filter_header_fields(header: &[u8], fields_wanted: &[&[u8]], not: bool) -> Vec<u8> {
    let mut out = Vec::new();
    for field in fields(header) {
        let wanted = fields_wanted
            .iter()
            .any(|name| field.name.eq_ignore_ascii_case(trim(name)));
        if wanted != not {
            out.extend_from_slice(field.raw);
            if !field.raw.ends_with(b"\n") {
                out.extend_from_slice(b"\r\n");
            }
        }
    }
    if has_blank_line(header) {
        out.extend_from_slice(b"\r\n");
    }
    out
}

/// The header text kept for SEARCH: at most `limit` bytes, cut after the last complete line, as
/// lossy UTF-8. The flag says whether anything was cut.
pub(crate) fn stored_header(header: &[u8], limit: usize) -> (String, bool) {
    if header.len() <= limit {
        return (String::from_utf8_lossy(header).into_owned(), false);
    }
    let head = header.get(..limit).unwrap_or_default();
    let cut = memchr::memrchr(b'\n', head).map_or(0, |newline| newline + 1);
    let kept: Cow<'_, str> = String::from_utf8_lossy(head.get(..cut).unwrap_or_default());
    (kept.into_owned(), true)
}

#[cfg(test)]
mod tests {
    use super::*;

    const HEADER: &[u8] = b"From: a@example.com\r\nSubject: one\r\n two\r\nX-Odd : v\r\n\
        not a field\r\nTo: b@example.com\r\n\r\n";

    #[test]
    fn fields_keep_continuations_and_skip_garbage_lines() {
        let names: Vec<&[u8]> = fields(HEADER).map(|field| field.name).collect();
        assert_eq!(names, [&b"From"[..], b"Subject", b"X-Odd", b"To"]);
        assert_eq!(first_value(HEADER, "subject").as_deref(), Some("one two"));
    }

    #[test]
    fn header_fields_subset_keeps_folding_and_blank_line() {
        let subset = filter_header_fields(HEADER, &[b"SUBJECT", b"to"], false);
        assert_eq!(subset, b"Subject: one\r\n two\r\nTo: b@example.com\r\n\r\n");
        let rest = filter_header_fields(HEADER, &[b"subject", b"to"], true);
        assert_eq!(rest, b"From: a@example.com\r\nX-Odd : v\r\n\r\n");
    }

    #[test]
    fn header_fields_subset_of_header_without_blank_line_has_none() {
        assert_eq!(
            filter_header_fields(b"A: 1\nB: 2", &[b"b"], false),
            b"B: 2\r\n"
        );
        assert_eq!(filter_header_fields(b"A: 1\n\n", &[b"b"], false), b"\r\n");
    }

    #[test]
    fn encoded_words_are_decoded() {
        assert_eq!(
            decoded_values(b"Subject: =?utf-8?q?J=C3=B6rg?= says hi\r\n\r\n", "subject"),
            ["Jörg says hi"]
        );
    }

    #[test]
    fn header_ends_after_the_first_empty_line() {
        assert_eq!(header_end(b"A: 1\r\n\r\nbody"), 8);
        assert_eq!(header_end(b"A: 1\n\nbody"), 6);
        assert_eq!(header_end(b"\r\nbody"), 2);
        assert_eq!(header_end(b"A: 1\r\nB: 2"), 10);
    }

    #[test]
    fn stored_header_is_cut_at_a_line_end() {
        assert_eq!(
            stored_header(b"A: 1\r\nB: 22\r\n", 9),
            ("A: 1\r\n".to_owned(), true)
        );
        assert_eq!(
            stored_header(b"A: 1\r\n", 9),
            ("A: 1\r\n".to_owned(), false)
        );
    }
}
