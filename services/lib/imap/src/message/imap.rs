//! Conversion of stored metadata into imap-types values, which imap-codec serialises: ENVELOPE
//! and BODY/BODYSTRUCTURE exactly as RFC 3501 section 7.4.2 lays them out.
//!
//! Choices where RFC 3501 leaves room, following common servers (Cyrus, Dovecot): type, subtype,
//! parameter names, the transfer encoding and the disposition type are upper-cased; a text part
//! without a charset gets `("CHARSET" "US-ASCII")` (RFC 2046 section 4.1.2); the extension data of
//! BODYSTRUCTURE is always written in full (`md5 dsp lang loc`, NIL where absent); a multipart
//! without parts gets one empty text/plain child, since the grammar needs at least one; and a
//! parameter value that is not ASCII (mail-parser decoded it from RFC 2231 or RFC 2047) is sent
//! re-encoded per RFC 2231 as `NAME*` = `utf-8''...`, so the response stays 7-bit.
//!
//! Strings that cannot be quoted (8-bit text) become literals; NUL, CR and LF, which no IMAP
//! string may hold in a quoted form and which a stored value should not contain, are dropped.

use imap_types::body::{
    BasicFields, Body, BodyStructure, Disposition as ImapDisposition, Language, Location,
    MultiPartExtensionData, SinglePartExtensionData, SpecificFields,
};
use imap_types::core::{IString, NString, Quoted, Vec1};
use imap_types::envelope::{Address as ImapAddress, Envelope as ImapEnvelope};

use super::model::{Address, Envelope, Part};

/// The RFC 3501 ENVELOPE, with Sender and Reply-To defaulting to From.
pub(crate) fn envelope(envelope: &Envelope) -> ImapEnvelope<'static> {
    let or_from = |list: &[Address]| match list.is_empty() {
        true => addresses(&envelope.from),
        false => addresses(list),
    };
    ImapEnvelope {
        date: nstring(envelope.date.as_deref()),
        subject: nstring(envelope.subject.as_deref()),
        from: addresses(&envelope.from),
        sender: or_from(&envelope.sender),
        reply_to: or_from(&envelope.reply_to),
        to: addresses(&envelope.to),
        cc: addresses(&envelope.cc),
        bcc: addresses(&envelope.bcc),
        in_reply_to: nstring(envelope.in_reply_to.as_deref()),
        message_id: nstring(envelope.message_id.as_deref()),
    }
}

fn addresses(list: &[Address]) -> Vec<ImapAddress<'static>> {
    list.iter()
        .map(|address| ImapAddress {
            name: nstring(address.name.as_deref()),
            adl: nstring(address.adl.as_deref()),
            mailbox: nstring(address.mailbox.as_deref()),
            host: nstring(address.host.as_deref()),
        })
        .collect()
}

/// BODY (`extended == false`) or BODYSTRUCTURE of a part and everything below it.
pub(crate) fn body_structure(part: &Part, extended: bool) -> BodyStructure<'static> {
    if part.is_multipart() {
        let mut bodies: Vec<BodyStructure<'static>> = part
            .parts
            .iter()
            .map(|child| body_structure(child, extended))
            .collect();
        if bodies.is_empty() {
            let start = part.body_start;
            bodies.push(body_structure(&Part::empty(start, start, start), extended));
        }
        let bodies = match Vec1::try_from(bodies) {
            Ok(bodies) => bodies,
            Err(_) => Vec1::from(empty_text_part(extended)),
        };
        return BodyStructure::Multi {
            bodies,
            subtype: istring(&part.subtype.to_ascii_uppercase()),
            extension_data: extended.then(|| MultiPartExtensionData {
                parameter_list: parameters(part),
                tail: Some(disposition(part)),
            }),
        };
    }
    let basic = BasicFields {
        parameter_list: parameters(part),
        id: nstring(part.id.as_deref()),
        description: nstring(part.description.as_deref()),
        content_transfer_encoding: istring(
            &part
                .encoding
                .as_deref()
                .unwrap_or("7bit")
                .to_ascii_uppercase(),
        ),
        size: saturate(part.body_size()),
    };
    let lines = saturate(part.lines);
    let specific = match (&part.message, part.media_type.as_str()) {
        (Some(embedded), _) => SpecificFields::Message {
            envelope: Box::new(envelope(&embedded.envelope)),
            body_structure: Box::new(body_structure(&embedded.body, extended)),
            number_of_lines: lines,
        },
        (None, "text") => SpecificFields::Text {
            subtype: istring(&part.subtype.to_ascii_uppercase()),
            number_of_lines: lines,
        },
        (None, media_type) => SpecificFields::Basic {
            r#type: istring(&media_type.to_ascii_uppercase()),
            subtype: istring(&part.subtype.to_ascii_uppercase()),
        },
    };
    BodyStructure::Single {
        body: Body { basic, specific },
        extension_data: extended.then(|| SinglePartExtensionData {
            md5: nstring(part.md5.as_deref()),
            tail: Some(disposition(part)),
        }),
    }
}

fn empty_text_part(extended: bool) -> BodyStructure<'static> {
    body_structure(&Part::empty(0, 0, 0), extended)
}

/// `body-fld-param`, with the default charset of text parts and RFC 2231 re-encoding.
fn parameters(part: &Part) -> Vec<(IString<'static>, IString<'static>)> {
    let mut list = parameter_list(&part.params);
    if part.media_type == "text" && !part.is_multipart() && part.param("charset").is_none() {
        list.insert(0, (istring("CHARSET"), istring("US-ASCII")));
    }
    list
}

fn parameter_list(params: &[(String, String)]) -> Vec<(IString<'static>, IString<'static>)> {
    params
        .iter()
        .map(|(name, value)| {
            let name = name.to_ascii_uppercase();
            match value.is_ascii() {
                true => (istring(&name), istring(value)),
                false => (istring(&format!("{name}*")), istring(&rfc2231(value))),
            }
        })
        .collect()
}

/// `utf-8''` followed by the percent-encoded value (RFC 2231 section 4).
fn rfc2231(value: &str) -> String {
    let mut out = String::from("utf-8''");
    for byte in value.bytes() {
        match byte {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'.' | b'-' | b'_' | b'~' => {
                out.push(char::from(byte));
            }
            _ => out.push_str(&format!("%{byte:02X}")),
        }
    }
    out
}

/// `body-fld-dsp SP body-fld-lang SP body-fld-loc`, always all three.
fn disposition(part: &Part) -> ImapDisposition<'static> {
    ImapDisposition {
        disposition: part.disposition.as_ref().map(|disposition| {
            (
                istring(&disposition.kind.to_ascii_uppercase()),
                parameter_list(&disposition.params),
            )
        }),
        tail: Some(Language {
            language: part.language.iter().map(|tag| istring(tag)).collect(),
            tail: Some(Location {
                location: nstring(part.location.as_deref()),
                extensions: Vec::new(),
            }),
        }),
    }
}

fn saturate(value: u64) -> u32 {
    u32::try_from(value).unwrap_or(u32::MAX)
}

fn nstring(value: Option<&str>) -> NString<'static> {
    NString(value.map(istring))
}

/// A quoted string when possible, else a literal; never fails (see the module notes).
pub(crate) fn istring(value: &str) -> IString<'static> {
    let clean: String = value
        .chars()
        .filter(|c| !matches!(c, '\0' | '\r' | '\n'))
        .collect();
    match IString::try_from(clean) {
        Ok(string) => string,
        Err(_) => IString::from(Quoted::unvalidated("")),
    }
}

#[cfg(test)]
mod tests {
    use imap_types::core::IString;

    use super::*;
    use crate::message::model::Disposition;

    fn text(value: &IString<'_>) -> String {
        String::from_utf8_lossy(value.as_ref()).into_owned()
    }

    #[test]
    fn non_ascii_parameters_are_sent_as_rfc2231() {
        let mut part = Part::empty(0, 0, 0);
        part.media_type = "application".to_owned();
        part.subtype = "pdf".to_owned();
        part.disposition = Some(Disposition {
            kind: "attachment".to_owned(),
            params: vec![("filename".to_owned(), "€ 1.pdf".to_owned())],
        });
        let ImapDisposition { disposition, .. } = disposition(&part);
        let (kind, params) = disposition.expect("disposition");
        assert_eq!(text(&kind), "ATTACHMENT");
        assert_eq!(text(&params[0].0), "FILENAME*");
        assert_eq!(text(&params[0].1), "utf-8''%E2%82%AC%201.pdf");
    }

    #[test]
    fn eight_bit_text_becomes_a_literal_and_nul_is_dropped() {
        assert!(matches!(istring("Jörg"), IString::Literal(_)));
        assert_eq!(text(&istring("a\0b\r\nc")), "abc");
        assert!(matches!(istring("plain \"quoted\""), IString::Quoted(_)));
    }

    #[test]
    fn multipart_without_children_gets_an_empty_text_part() {
        let mut part = Part::empty(0, 10, 10);
        part.media_type = "multipart".to_owned();
        part.subtype = "mixed".to_owned();
        let BodyStructure::Multi { bodies, .. } = body_structure(&part, false) else {
            panic!("not a multipart");
        };
        assert_eq!(bodies.as_ref().len(), 1);
    }

    #[test]
    fn sender_and_reply_to_default_to_from_even_when_present_but_empty() {
        let from = Address {
            name: None,
            adl: None,
            mailbox: Some("a".to_owned()),
            host: Some("b".to_owned()),
        };
        let stored = Envelope {
            from: vec![from],
            ..Envelope::default()
        };
        let converted = envelope(&stored);
        assert_eq!(converted.sender, converted.from);
        assert_eq!(converted.reply_to, converted.from);
        assert!(converted.to.is_empty());
    }
}
