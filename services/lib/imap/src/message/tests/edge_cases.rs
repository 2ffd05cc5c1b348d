//! Messages at the edges of RFC 5322: bare LF line ends, no blank line, no body; and the stored
//! JSON form.

use super::samples::{ALTERNATIVE, ENCODED, MIXED, SIMPLE};
use super::{body, bodystructure, section};
use crate::message::{MessageMetadata, SectionWhat, filter_header_fields};

#[test]
fn bare_lf_message_has_exact_offsets() {
    let raw = b"From: a@example.com\nSubject: lf\n\nline1\nline2\n";
    let meta = MessageMetadata::parse(raw);
    assert_eq!((meta.header_len, meta.size), (33, 45));
    assert_eq!(
        bodystructure(&meta),
        "* 1 FETCH (BODYSTRUCTURE (\"TEXT\" \"PLAIN\" (\"CHARSET\" \"US-ASCII\") NIL NIL \
         \"7BIT\" 12 2 NIL NIL NIL NIL))\r\n"
    );
    let multi = b"Content-Type: multipart/mixed; boundary=b\n\n--b\n\nfirst\n\
                  --b\nContent-Type: text/html\n\n<i>x</i>\n--b--\n";
    let meta = MessageMetadata::parse(multi);
    assert_eq!(
        body(&meta),
        "* 1 FETCH (BODY ((\"TEXT\" \"PLAIN\" (\"CHARSET\" \"US-ASCII\") NIL NIL \"7BIT\" 5 1)\
         (\"TEXT\" \"HTML\" (\"CHARSET\" \"US-ASCII\") NIL NIL \"7BIT\" 8 1) \"MIXED\"))\r\n"
    );
    assert_eq!(section(multi, &meta, &[1], SectionWhat::Mime), b"\n");
    assert_eq!(section(multi, &meta, &[1], SectionWhat::Whole), b"first");
    assert_eq!(section(multi, &meta, &[2], SectionWhat::Whole), b"<i>x</i>");
}

#[test]
fn message_without_blank_line_is_all_header() {
    let raw = b"From: a@example.com\r\nSubject: no body\r\n";
    let meta = MessageMetadata::parse(raw);
    assert_eq!(
        (meta.header_len, meta.size),
        (raw.len() as u64, raw.len() as u64)
    );
    assert_eq!(
        bodystructure(&meta),
        "* 1 FETCH (BODYSTRUCTURE (\"TEXT\" \"PLAIN\" (\"CHARSET\" \"US-ASCII\") NIL NIL \
         \"7BIT\" 0 0 NIL NIL NIL NIL))\r\n"
    );
    let header = section(raw, &meta, &[], SectionWhat::Header);
    assert_eq!(header, raw);
    assert_eq!(
        filter_header_fields(header, &[b"subject"], false),
        b"Subject: no body\r\n"
    );
    assert_eq!(section(raw, &meta, &[], SectionWhat::Text), b"");
    assert_eq!(section(raw, &meta, &[1], SectionWhat::Whole), b"");
}

#[test]
fn header_only_message_keeps_its_blank_line_in_header() {
    let raw = b"From: a@example.com\r\nSubject: only header\r\n\r\n";
    let meta = MessageMetadata::parse(raw);
    assert_eq!(
        (meta.header_len, meta.size),
        (raw.len() as u64, raw.len() as u64)
    );
    assert_eq!(meta.envelope.subject.as_deref(), Some("only header"));
    assert_eq!(
        body(&meta),
        "* 1 FETCH (BODY (\"TEXT\" \"PLAIN\" (\"CHARSET\" \"US-ASCII\") NIL NIL \"7BIT\" 0 0))\r\n"
    );
    assert_eq!(
        filter_header_fields(
            section(raw, &meta, &[], SectionWhat::Header),
            &[b"from"],
            true
        ),
        b"Subject: only header\r\n\r\n"
    );
}

#[test]
fn metadata_survives_a_json_round_trip_and_stays_small() {
    for raw in [SIMPLE, ALTERNATIVE, MIXED, ENCODED] {
        let meta = MessageMetadata::parse(raw);
        let json = serde_json::to_string(&meta).expect("serialise");
        let back: MessageMetadata = serde_json::from_str(&json).expect("deserialise");
        assert_eq!(back, meta);
        assert_eq!(serde_json::to_string(&back).expect("serialise"), json);
        assert!(json.starts_with("{\"v\":1,"), "{json}");
    }
    let json = serde_json::to_string(&MessageMetadata::parse(MIXED)).expect("serialise");
    // Header text is most of it; the structure of the 3-part message with its embedded
    // 2-part message is the rest.
    assert!(json.len() < 2 * MIXED.len(), "{} bytes: {json}", json.len());
}

#[test]
fn mime_defaults_follow_rfc2045_and_rfc2046() {
    let raw = b"Content-Type: multipart/digest; boundary=d\r\n\r\n\
        --d\r\n\r\nSubject: in digest\r\n\r\ndigest body\r\n\
        --d\r\nContent-Type: multipart/mixed\r\n\r\nno boundary\r\n\
        --d\r\nContent-Type: text\r\n\r\nno subtype\r\n\
        --d\r\nContent-Type: message/rfc822\r\nContent-Transfer-Encoding: base64\r\n\r\n\
        U3ViamVjdDogeA0KDQpib2R5DQo=\r\n\
        --d--\r\n";
    let meta = MessageMetadata::parse(raw);
    // 1: no Content-Type in a digest is message/rfc822; 2: a multipart without boundary is
    // text/plain; 3: an invalid Content-Type takes the default, here message/rfc822, but unparsed
    // it is sent as a basic part; 4: an encoded message/rfc822 is a basic part too.
    assert_eq!(
        body(&meta),
        "* 1 FETCH (BODY ((\"MESSAGE\" \"RFC822\" NIL NIL NIL \"7BIT\" 33 \
         (NIL \"in digest\" NIL NIL NIL NIL NIL NIL NIL NIL) \
         (\"TEXT\" \"PLAIN\" (\"CHARSET\" \"US-ASCII\") NIL NIL \"7BIT\" 11 1) 3)\
         (\"TEXT\" \"PLAIN\" (\"CHARSET\" \"US-ASCII\") NIL NIL \"7BIT\" 11 1)\
         (\"MESSAGE\" \"RFC822\" NIL NIL NIL \"7BIT\" 10)\
         (\"MESSAGE\" \"RFC822\" NIL NIL NIL \"BASE64\" 28) \"DIGEST\"))\r\n"
    );
    assert_eq!(
        section(raw, &meta, &[1, 1], SectionWhat::Whole),
        b"digest body"
    );
    assert_eq!(meta.section_range(&[4], SectionWhat::Header), None);
    assert!(!meta.structure_truncated);
}
