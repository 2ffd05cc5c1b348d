//! Byte ranges of RFC 3501 body sections (section 6.4.5, FETCH `BODY[section]`), so the server
//! reads only those bytes from the object store.
//!
//! Part numbers follow RFC 3501 as Dovecot implements it: a multipart's children are numbered
//! from 1; a non-multipart part has only number 1, meaning itself (so `1.1` of a text part inside
//! a multipart is that part); a path continues past a part only when that part is
//! message/rfc822, and then continues in the embedded message. Anything
//! else (0, a number past the last child, HEADER/TEXT of a non-message part, MIME without a part)
//! is `None`, for which servers commonly return an empty string.

use std::ops::Range;

use super::MessageMetadata;
use super::model::Part;

/// Which bytes of the addressed part `BODY[...]` wants.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum SectionWhat {
    /// `BODY[]` (whole message) or `BODY[1.2]` (the part's body, for message/rfc822 the whole
    /// embedded message).
    Whole,
    /// `BODY[HEADER]`, or `BODY[1.2.HEADER]` of a message/rfc822 part: the header with its
    /// blank line. Also the source of HEADER.FIELDS (see [`super::filter_header_fields`]).
    Header,
    /// `BODY[TEXT]`, or `BODY[1.2.TEXT]` of a message/rfc822 part: the body after the header.
    Text,
    /// `BODY[1.2.MIME]`: the part's own MIME header with its blank line.
    Mime,
}

impl MessageMetadata {
    /// The byte range of `BODY[path.what]` in the raw message, or `None` when the section does
    /// not exist. `path` holds the part numbers (`[]` for the message itself, `[1, 2]` for `1.2`).
    pub fn section_range(&self, path: &[u32], what: SectionWhat) -> Option<Range<u64>> {
        if path.is_empty() {
            return match what {
                SectionWhat::Whole => Some(0..self.size),
                SectionWhat::Header => Some(0..self.header_len),
                SectionWhat::Text => Some(self.header_len..self.size),
                SectionWhat::Mime => None,
            };
        }
        let part = find_part(&self.body, path)?;
        match what {
            SectionWhat::Whole => Some(part.body_start..part.body_end),
            SectionWhat::Mime => Some(part.header_start..part.body_start),
            SectionWhat::Header => {
                let root = &part.message.as_ref()?.body;
                Some(root.header_start..root.body_start)
            }
            SectionWhat::Text => {
                let root = &part.message.as_ref()?.body;
                Some(root.body_start..root.body_end)
            }
        }
    }
}

fn find_part<'a>(root: &'a Part, path: &[u32]) -> Option<&'a Part> {
    let mut part = root;
    for (index, &number) in path.iter().enumerate() {
        let continues = index + 1 < path.len();
        if part.is_multipart() {
            let position = usize::try_from(number.checked_sub(1)?).ok()?;
            part = part.parts.get(position)?;
        } else if number != 1 || (continues && part.message.is_none()) {
            return None;
        }
        if continues && let Some(embedded) = &part.message {
            part = &embedded.body;
        }
    }
    Some(part)
}

#[cfg(test)]
mod tests {
    use super::*;

    const NESTED: &[u8] = b"Content-Type: multipart/mixed; boundary=b\r\n\r\n\
        --b\r\nContent-Type: text/plain\r\n\r\nhello\r\n\
        --b\r\nContent-Type: message/rfc822\r\n\r\n\
        Subject: inner\r\n\r\ninner body\r\n\
        --b--\r\n";

    fn text(meta: &MessageMetadata, path: &[u32], what: SectionWhat) -> Option<String> {
        let range = meta.section_range(path, what)?;
        let bytes = NESTED.get(range.start as usize..range.end as usize)?;
        Some(String::from_utf8_lossy(bytes).into_owned())
    }

    #[test]
    fn sections_of_a_nested_message() {
        let meta = MessageMetadata::parse(NESTED);
        let text = |path: &[u32], what| text(&meta, path, what);
        assert_eq!(text(&[1], SectionWhat::Whole).as_deref(), Some("hello"));
        assert_eq!(
            text(&[1], SectionWhat::Mime).as_deref(),
            Some("Content-Type: text/plain\r\n\r\n")
        );
        assert_eq!(
            text(&[2], SectionWhat::Whole).as_deref(),
            Some("Subject: inner\r\n\r\ninner body")
        );
        assert_eq!(
            text(&[2], SectionWhat::Header).as_deref(),
            Some("Subject: inner\r\n\r\n")
        );
        assert_eq!(text(&[2], SectionWhat::Text).as_deref(), Some("inner body"));
        assert_eq!(
            text(&[2, 1], SectionWhat::Whole).as_deref(),
            Some("inner body")
        );
        assert_eq!(text(&[1], SectionWhat::Header), None);
        // Like Dovecot: a trailing `.1` on a non-multipart part names the part itself.
        assert_eq!(text(&[1, 1], SectionWhat::Whole).as_deref(), Some("hello"));
        assert_eq!(text(&[1, 2], SectionWhat::Whole), None);
        assert_eq!(text(&[1, 1, 1], SectionWhat::Whole), None);
        assert_eq!(text(&[3], SectionWhat::Whole), None);
        assert_eq!(text(&[0], SectionWhat::Whole), None);
        assert_eq!(text(&[2, 2], SectionWhat::Whole), None);
        assert_eq!(text(&[], SectionWhat::Mime), None);
    }

    #[test]
    fn part_one_of_a_single_part_message_is_its_body() {
        let raw = b"Subject: x\r\n\r\nbody\r\n";
        let meta = MessageMetadata::parse(raw);
        assert_eq!(meta.section_range(&[1], SectionWhat::Whole), Some(14..20));
        assert_eq!(meta.section_range(&[], SectionWhat::Header), Some(0..14));
        assert_eq!(meta.section_range(&[], SectionWhat::Text), Some(14..20));
        assert_eq!(meta.section_range(&[], SectionWhat::Whole), Some(0..20));
        assert_eq!(meta.section_range(&[2], SectionWhat::Whole), None);
    }
}
