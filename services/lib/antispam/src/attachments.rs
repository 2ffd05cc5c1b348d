//! Attachments replaced by notices, the two content actions of the anti-virus settings
//! (FEATURES.md AV-05, AV-08):
//!
//! - [`strip_attachments`]: a message that carries a virus is delivered with every attachment
//!   replaced by a text part saying so (the reference's `VIRUS_ATTACHMENT_REMOVED`).
//! - [`block_extensions`]: each attachment whose file name ends in a blocked extension is
//!   replaced by a text attachment `<name>.txt` holding a short notice (`ATTACHMENT_REMOVED`).
//!
//! mail-parser finds the parts and their byte ranges; the message is rewritten by splicing those
//! ranges, so every byte outside a replaced part (other parts, boundaries, the headers of the
//! message and of its containers) stays as the sender wrote it. A replaced part keeps its header
//! fields other than `Content-*` (for the top-level part: From, Subject, …) and gets new
//! `Content-*` fields and body.
//!
//! Input is untrusted and may be any bytes: nothing here panics, parts whose byte ranges do not
//! make sense (overlapping, out of order) are left alone and counted in
//! [`Rewritten::unreplaced`], and the output grows by at most [`MAX_REPLACEMENT_BYTES`] per
//! replaced part, with at most [`MAX_REPLACED_PARTS`] parts replaced.

use mail_parser::{Encoding, Message, MessageParser, MessagePart, MimeHeaders, PartType};

/// The notice of a stripped attachment (the reference's `VIRUS_ATTACHMENT_REMOVED`).
pub const VIRUS_ATTACHMENT_REMOVED: &str = "Virus found:\r\nThe attachment(s) of this message was \
     removed since a virus was detected in at least one of them.\r\n";
/// The notice of a blocked attachment (the reference's `ATTACHMENT_REMOVED`); `%MACRO_FILE%` is
/// the file name.
pub const ATTACHMENT_REMOVED: &str = "The attachment %MACRO_FILE% was blocked for delivery by the \
     e-mail server. Please contact your system administrator if you have any questions regarding \
     this.\r\n";
/// Parts replaced in one message at most; more are left as they are (and counted).
pub const MAX_REPLACED_PARTS: usize = 1000;
/// File names are cut to this many characters in notices and new part names.
pub const MAX_NAME_CHARS: usize = 200;
/// What one replacement may add beyond the header fields it keeps.
pub const MAX_REPLACEMENT_BYTES: usize = 8 * 1024;

/// A rewritten message.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Rewritten {
    /// The whole message (header section and body); the input unchanged when nothing matched.
    pub message: Vec<u8>,
    /// The file names of the parts replaced (`""` for a part without one).
    pub removed: Vec<String>,
    /// Parts that should have been replaced but whose position in the message could not be
    /// trusted (malformed MIME), or beyond [`MAX_REPLACED_PARTS`]; 1 when the MIME parser gave
    /// up on the message.
    pub unreplaced: usize,
}

impl Rewritten {
    pub fn changed(&self) -> bool {
        !self.removed.is_empty()
    }
}

/// Replaces every part that is not a plain body text with a notice: attachments (disposition
/// `attachment`), parts with a file name, and parts that are not text. Text and HTML bodies,
/// and the containers around them, stay.
pub fn strip_attachments(message: &[u8]) -> Rewritten {
    rewrite(message, |part, container| {
        let names = names(part);
        let attachment = is_attachment(part) || !names.is_empty();
        if container && !attachment {
            return None;
        }
        if !container && !attachment && is_text(part) {
            return None;
        }
        let name = names.first().map(|n| clip(n)).unwrap_or_default();
        let mut notice = VIRUS_ATTACHMENT_REMOVED.to_string();
        if !name.is_empty() {
            notice.push_str(&format!("\r\nRemoved: {name}\r\n"));
        }
        Some(Replacement {
            fields: "Content-Type: text/plain; charset=utf-8\r\nContent-Disposition: inline\r\n"
                .to_string(),
            notice,
            name,
        })
    })
}

/// Replaces each attachment whose file name (Content-Disposition `filename` or Content-Type
/// `name`, RFC 2231/2047 decoded) ends in `.<ext>` for one of `extensions` (case-insensitive;
/// trailing dots and spaces, which Windows ignores, are ignored too) by a text attachment
/// named `<name>.txt` holding [`ATTACHMENT_REMOVED`].
pub fn block_extensions(message: &[u8], extensions: &[String]) -> Rewritten {
    let suffixes: Vec<String> = extensions
        .iter()
        .map(|e| e.trim().trim_start_matches('.').to_lowercase())
        .filter(|e| !e.is_empty())
        .map(|e| format!(".{e}"))
        .collect();
    if suffixes.is_empty() {
        return unchanged(message);
    }
    rewrite(message, |part, _container| {
        let names = names(part);
        let blocked = names.iter().find(|name| {
            let name = name
                .trim_end_matches(|c: char| c == '.' || c.is_whitespace())
                .to_lowercase();
            suffixes.iter().any(|s| name.ends_with(s.as_str()))
        })?;
        let name = clip(blocked);
        let new_name = format!("{name}.txt");
        Some(Replacement {
            fields: format!(
                "Content-Type: text/plain; charset=utf-8{}\r\nContent-Disposition: attachment{}\r\n",
                parameter("name", &new_name),
                parameter("filename", &new_name)
            ),
            notice: ATTACHMENT_REMOVED.replace("%MACRO_FILE%", &name),
            name,
        })
    })
}

struct Replacement {
    /// The new `Content-*` fields, each ending in CRLF, without Content-Transfer-Encoding.
    fields: String,
    /// The new body text (CRLF line ends).
    notice: String,
    name: String,
}

fn unchanged(message: &[u8]) -> Rewritten {
    Rewritten {
        message: message.to_vec(),
        removed: Vec::new(),
        unreplaced: 0,
    }
}

/// Walks every part of `message` (nested messages included) and replaces those `decide` returns
/// a replacement for. `decide` sees leaves (`false`) and nested messages (`true`, replaced whole
/// or else walked into); multiparts are containers and are never replaced themselves.
fn rewrite(
    message: &[u8],
    mut decide: impl FnMut(&MessagePart<'_>, bool) -> Option<Replacement>,
) -> Rewritten {
    // mail-parser is documented never to panic, yet on some malformed input its debug
    // assertions fire (see mc-imap's message/parse.rs): a message it fails on is left as it is,
    // and said to hold a part that could not be replaced.
    let found = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
        find_splices(message, &mut decide)
    }));
    let (splices, mut unreplaced) = match found {
        Ok(Some(found)) => found,
        Ok(None) => return unchanged(message),
        Err(_) => {
            return Rewritten {
                unreplaced: 1,
                ..unchanged(message)
            };
        }
    };
    let mut out = Vec::with_capacity(message.len() + 1024);
    let mut removed = Vec::new();
    let mut copied = 0;
    for (start, body, end, replacement) in splices {
        if start < copied || removed.len() >= MAX_REPLACED_PARTS {
            unreplaced += 1;
            continue;
        }
        out.extend_from_slice(&message[copied..start]);
        out.extend_from_slice(&kept_fields(&message[start..body]));
        out.extend_from_slice(replacement.fields.as_bytes());
        write_body(&mut out, &replacement.notice);
        // The bytes after the part (the line break before the next boundary) must begin on a
        // new line; a part that ran to the end of the message ends with one.
        if !matches!(message.get(end), Some(b'\r' | b'\n')) {
            out.extend_from_slice(b"\r\n");
        }
        copied = end;
        removed.push(replacement.name);
    }
    if removed.is_empty() {
        return Rewritten {
            message: message.to_vec(),
            removed,
            unreplaced,
        };
    }
    out.extend_from_slice(&message[copied..]);
    Rewritten {
        message: out,
        removed,
        unreplaced,
    }
}

/// A part to replace: where its header starts, where its body starts, where it ends, and what
/// replaces it.
type Splice = (usize, usize, usize, Replacement);

/// The parts to replace, in order, and how many were to be replaced at ranges outside the
/// message; `None` when nothing parses.
fn find_splices(
    message: &[u8],
    decide: &mut impl FnMut(&MessagePart<'_>, bool) -> Option<Replacement>,
) -> Option<(Vec<Splice>, usize)> {
    let parsed = MessageParser::default().parse(message)?;
    let mut splices: Vec<Splice> = Vec::new();
    let mut unreplaced = 0;
    // An explicit stack: nested messages may be nested deeply.
    let mut stack: Vec<&Message<'_>> = vec![&parsed];
    while let Some(current) = stack.pop() {
        for part in &current.parts {
            let nested = match &part.body {
                PartType::Multipart(_) => continue,
                PartType::Message(nested) if same_bytes(nested, message, part) => Some(nested),
                _ => None,
            };
            match decide(part, nested.is_some()) {
                Some(replacement) => {
                    let (start, body, end) = (
                        part.raw_header_offset() as usize,
                        part.raw_body_offset() as usize,
                        part.raw_end_offset() as usize,
                    );
                    if start <= body && body <= end && end <= message.len() {
                        splices.push((start, body, end, replacement));
                    } else {
                        unreplaced += 1;
                    }
                }
                None => stack.extend(nested),
            }
        }
    }
    splices.sort_by_key(|(start, _, end, _)| (*start, *end));
    Some((splices, unreplaced))
}

/// True when mail-parser parsed the nested message in place (not from a decoded body), so that
/// its parts' offsets point into `message`.
fn same_bytes(nested: &Message<'_>, message: &[u8], part: &MessagePart<'_>) -> bool {
    part.encoding == Encoding::None
        && nested.raw_message.len() == message.len()
        && std::ptr::eq(nested.raw_message.as_ptr(), message.as_ptr())
}

/// The file names a part announces: Content-Disposition `filename`, then Content-Type `name`.
fn names<'a>(part: &'a MessagePart<'_>) -> Vec<&'a str> {
    let mut names = Vec::new();
    if let Some(name) = part
        .content_disposition()
        .and_then(|d| d.attribute("filename"))
    {
        names.push(name);
    }
    if let Some(name) = part.content_type().and_then(|t| t.attribute("name")) {
        names.push(name);
    }
    names.retain(|n| !n.trim().is_empty());
    names
}

fn is_attachment(part: &MessagePart<'_>) -> bool {
    part.content_disposition()
        .is_some_and(|d| d.is_attachment())
}

/// A part without Content-Type is text/plain (RFC 2045 section 5.2).
fn is_text(part: &MessagePart<'_>) -> bool {
    part.content_type()
        .is_none_or(|t| t.ctype().eq_ignore_ascii_case("text"))
}

/// A file name fit for a notice and a parameter: at most [`MAX_NAME_CHARS`], no control
/// characters.
fn clip(name: &str) -> String {
    name.chars()
        .filter(|c| !c.is_control())
        .take(MAX_NAME_CHARS)
        .collect()
}

/// The fields of a header block other than `Content-*`, each with its continuation lines, as
/// they were (the blank line that ended the block is left out).
fn kept_fields(header: &[u8]) -> Vec<u8> {
    let mut out = Vec::new();
    let mut keep = false;
    for line in header.split_inclusive(|&b| b == b'\n') {
        let content = line.strip_suffix(b"\n").unwrap_or(line);
        let content = content.strip_suffix(b"\r").unwrap_or(content);
        if content.is_empty() {
            break;
        }
        if !matches!(line[0], b' ' | b'\t') {
            keep = !line
                .get(..8)
                .is_some_and(|p| p.eq_ignore_ascii_case(b"content-"));
        }
        if keep {
            out.extend_from_slice(line);
            if !line.ends_with(b"\n") {
                out.extend_from_slice(b"\r\n");
            }
        }
    }
    out
}

/// `Content-Transfer-Encoding`, the blank line and the notice: 7bit when it is ASCII, else
/// base64 (the notice may carry a file name in any script). No line break at the end.
fn write_body(out: &mut Vec<u8>, notice: &str) {
    let notice = notice.trim_end_matches(['\r', '\n']);
    if notice.is_ascii() {
        out.extend_from_slice(b"Content-Transfer-Encoding: 7bit\r\n\r\n");
        out.extend_from_slice(wrap(notice).as_bytes());
    } else {
        out.extend_from_slice(b"Content-Transfer-Encoding: base64\r\n\r\n");
        let encoded = base64(notice.as_bytes());
        for (index, line) in encoded.as_bytes().chunks(76).enumerate() {
            if index > 0 {
                out.extend_from_slice(b"\r\n");
            }
            out.extend_from_slice(line);
        }
    }
}

/// Lines of at most 76 characters where spaces allow (a long file name stays whole).
fn wrap(text: &str) -> String {
    let mut out = String::with_capacity(text.len() + 16);
    for (index, line) in text.split("\r\n").enumerate() {
        if index > 0 {
            out.push_str("\r\n");
        }
        let mut width = 0;
        for (position, word) in line.split(' ').enumerate() {
            if position > 0 {
                if width + 1 + word.len() > 76 {
                    out.push_str("\r\n");
                    width = 0;
                } else {
                    out.push(' ');
                    width += 1;
                }
            }
            out.push_str(word);
            width += word.len();
        }
    }
    out
}

/// `;` and a folded MIME parameter: quoted when the value is short printable ASCII, else
/// RFC 2231 (UTF-8, percent-encoded, in continuations that keep lines short).
fn parameter(name: &str, value: &str) -> String {
    let plain = value.len() <= 60
        && value
            .bytes()
            .all(|b| (0x20..0x7f).contains(&b) && b != b'"' && b != b'\\');
    if plain {
        return format!(";\r\n {name}=\"{value}\"");
    }
    let mut encoded = String::new();
    for b in value.bytes() {
        if b.is_ascii_alphanumeric() || b"!#$&+-.^_`|~".contains(&b) {
            encoded.push(char::from(b));
        } else {
            encoded.push_str(&format!("%{b:02X}"));
        }
    }
    if encoded.len() <= 50 {
        return format!(";\r\n {name}*=utf-8''{encoded}");
    }
    let mut out = String::new();
    let mut rest = encoded.as_str();
    let mut index = 0;
    while !rest.is_empty() {
        let mut cut = rest.len().min(50);
        // Never split a %XX escape.
        if let Some(p) = rest[..cut].rfind('%')
            && p + 3 > cut
        {
            cut = p;
        }
        let charset = if index == 0 { "utf-8''" } else { "" };
        out.push_str(&format!(";\r\n {name}*{index}*={charset}{}", &rest[..cut]));
        rest = &rest[cut..];
        index += 1;
    }
    out
}

fn base64(input: &[u8]) -> String {
    const ALPHABET: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    let mut out = String::with_capacity(input.len().div_ceil(3) * 4);
    for chunk in input.chunks(3) {
        let bytes = [
            chunk[0],
            *chunk.get(1).unwrap_or(&0),
            *chunk.get(2).unwrap_or(&0),
        ];
        let n = (u32::from(bytes[0]) << 16) | (u32::from(bytes[1]) << 8) | u32::from(bytes[2]);
        for (i, shift) in [18, 12, 6, 0].into_iter().enumerate() {
            if i <= chunk.len() {
                out.push(char::from(ALPHABET[((n >> shift) & 63) as usize]));
            } else {
                out.push('=');
            }
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn base64_matches_rfc_4648_vectors() {
        for (input, output) in [
            ("", ""),
            ("f", "Zg=="),
            ("fo", "Zm8="),
            ("foo", "Zm9v"),
            ("foob", "Zm9vYg=="),
            ("fooba", "Zm9vYmE="),
            ("foobar", "Zm9vYmFy"),
        ] {
            assert_eq!(base64(input.as_bytes()), output);
        }
    }

    #[test]
    fn parameters_are_quoted_or_rfc_2231_encoded() {
        assert_eq!(parameter("name", "a b.txt"), ";\r\n name=\"a b.txt\"");
        assert_eq!(
            parameter("filename", "b\"d.txt"),
            ";\r\n filename*=utf-8''b%22d.txt"
        );
        let long = parameter("filename", &"\u{00e9}".repeat(40));
        assert!(long.lines().all(|l| l.len() < 80), "{long}");
        assert!(long.contains("filename*1*=%"), "{long}");
    }

    #[test]
    fn notices_are_wrapped_at_spaces() {
        let text = ATTACHMENT_REMOVED.replace("%MACRO_FILE%", "x.exe");
        let wrapped = wrap(text.trim_end());
        assert!(wrapped.split("\r\n").all(|l| l.len() <= 76), "{wrapped}");
        assert_eq!(wrapped.replace("\r\n", " "), text.trim_end());
        assert_eq!(wrap("a\r\n\r\nb"), "a\r\n\r\nb");
    }

    #[test]
    fn kept_fields_drop_content_fields_and_their_continuations() {
        let header = b"From: a@b\r\nContent-Type: multipart/mixed;\r\n boundary=x\r\nSubject: s\r\n  more\r\ncontent-id: <i>\r\n\r\n";
        assert_eq!(
            kept_fields(header),
            b"From: a@b\r\nSubject: s\r\n  more\r\n".to_vec()
        );
        assert_eq!(kept_fields(b"X: 1"), b"X: 1\r\n".to_vec());
    }
}
