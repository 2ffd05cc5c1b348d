//! FETCH transcripts: metadata converted to imap-types and serialised by imap-codec must give
//! the RFC 3501 section 7.4.2 text.

use imap_types::fetch::MessageDataItem;

use super::samples::{ALTERNATIVE, ENCODED, MIXED, SIMPLE};
use super::{body, bodystructure, envelope, fetch, section};
use crate::message::{MessageMetadata, SectionWhat, filter_header_fields};

#[test]
fn simple_text_message_fetch_is_rfc3501_text() {
    let meta = MessageMetadata::parse(SIMPLE);
    let fred = "(\"Fred Foobar\" NIL \"foobar\" \"Blurdybloop.COM\")";
    let items = vec![
        MessageDataItem::Rfc822Size(meta.size as u32),
        MessageDataItem::Envelope(meta.envelope()),
        MessageDataItem::Body(meta.body_structure(false)),
    ];
    assert_eq!(
        fetch(items),
        format!(
            "* 1 FETCH (RFC822.SIZE {} ENVELOPE (\"Mon, 7 Feb 1994 21:52:25 -0800 (PST)\" \
             \"afternoon meeting\" ({fred}) ({fred}) ({fred}) \
             ((NIL NIL \"mooch\" \"owatagu.siam.edu\")) NIL NIL NIL \
             \"<B27397-0100000@Blurdybloop.COM>\") \
             BODY (\"TEXT\" \"PLAIN\" (\"CHARSET\" \"US-ASCII\") NIL NIL \"7BIT\" 55 1))\r\n",
            SIMPLE.len()
        )
    );
    assert_eq!(
        bodystructure(&meta),
        "* 1 FETCH (BODYSTRUCTURE (\"TEXT\" \"PLAIN\" (\"CHARSET\" \"US-ASCII\") NIL NIL \
         \"7BIT\" 55 1 NIL NIL NIL NIL))\r\n"
    );
    assert_eq!(meta.date, Some(760_686_745));
    assert_eq!(
        section(SIMPLE, &meta, &[1], SectionWhat::Whole),
        b"Hello Joe, do you think we can meet at 3:30 tomorrow?\r\n"
    );
    assert_eq!(
        filter_header_fields(
            section(SIMPLE, &meta, &[], SectionWhat::Header),
            &[b"SUBJECT"],
            false
        ),
        b"Subject: afternoon meeting\r\n\r\n"
    );
}

#[test]
fn multipart_alternative_fetch_is_rfc3501_text() {
    let meta = MessageMetadata::parse(ALTERNATIVE);
    let a = "((NIL NIL \"a\" \"example.com\"))";
    assert_eq!(
        envelope(&meta),
        format!(
            "* 1 FETCH (ENVELOPE (NIL \"alt\" {a} {a} {a} ((NIL NIL \"b\" \"example.com\")) \
             NIL NIL NIL NIL))\r\n"
        )
    );
    assert_eq!(
        body(&meta),
        "* 1 FETCH (BODY ((\"TEXT\" \"PLAIN\" (\"CHARSET\" \"utf-8\") NIL NIL \
         \"QUOTED-PRINTABLE\" 12 1)(\"TEXT\" \"HTML\" (\"CHARSET\" \"utf-8\") NIL NIL \"7BIT\" \
         9 1) \"ALTERNATIVE\"))\r\n"
    );
    assert_eq!(
        bodystructure(&meta),
        "* 1 FETCH (BODYSTRUCTURE ((\"TEXT\" \"PLAIN\" (\"CHARSET\" \"utf-8\") NIL NIL \
         \"QUOTED-PRINTABLE\" 12 1 NIL NIL NIL NIL)(\"TEXT\" \"HTML\" (\"CHARSET\" \"utf-8\") \
         NIL NIL \"7BIT\" 9 1 NIL NIL NIL NIL) \"ALTERNATIVE\" (\"BOUNDARY\" \"XX\") NIL NIL \
         NIL))\r\n"
    );
    assert_eq!(
        section(ALTERNATIVE, &meta, &[1], SectionWhat::Whole),
        b"Hi =E2=98=BA"
    );
    assert_eq!(
        section(ALTERNATIVE, &meta, &[2, 1], SectionWhat::Whole),
        b"<p>Hi</p>"
    );
    assert_eq!(
        section(ALTERNATIVE, &meta, &[2], SectionWhat::Mime),
        b"Content-Type: text/html; charset=utf-8\r\n\r\n"
    );
    assert!(section(ALTERNATIVE, &meta, &[], SectionWhat::Text).starts_with(b"preamble\r\n"));
}

#[test]
fn mixed_with_attachment_and_embedded_message_fetch_is_rfc3501_text() {
    let meta = MessageMetadata::parse(MIXED);
    assert_eq!((meta.size, meta.header_len), (813, 155));
    let bob = "((NIL NIL \"bob\" \"example.com\"))";
    let inner_envelope = format!("(NIL \"original\" {bob} {bob} {bob} NIL NIL NIL NIL NIL)");
    let text = "(\"TEXT\" \"PLAIN\" (\"CHARSET\" \"US-ASCII\") NIL NIL \"7BIT\" 13 1";
    let pdf = "(\"APPLICATION\" \"PDF\" (\"NAME\" \"r.pdf\") \"<pdf1@example.com>\" \
               \"The report\" \"BASE64\" 12";
    let inner_text = "(\"TEXT\" \"PLAIN\" (\"CHARSET\" \"us-ascii\") NIL NIL \"7BIT\" 19 2";
    let inner_html = "(\"TEXT\" \"HTML\" (\"CHARSET\" \"US-ASCII\") NIL NIL \"7BIT\" 11 1";
    assert_eq!(
        bodystructure(&meta),
        format!(
            "* 1 FETCH (BODYSTRUCTURE ({text} NIL NIL NIL NIL)\
             {pdf} NIL (\"ATTACHMENT\" (\"FILENAME\" \"r.pdf\")) NIL NIL)\
             (\"MESSAGE\" \"RFC822\" NIL NIL NIL \"7BIT\" 302 {inner_envelope} \
             ({inner_text} NIL NIL (\"en\" \"de\") NIL)\
             {inner_html} NIL NIL NIL \"http://example.com/x.html\") \"ALTERNATIVE\" \
             (\"BOUNDARY\" \"inner\") NIL NIL NIL) 16 NIL (\"INLINE\" NIL) NIL NIL) \
             \"MIXED\" (\"BOUNDARY\" \"outer\") NIL NIL NIL))\r\n"
        )
    );
    assert_eq!(
        body(&meta),
        format!(
            "* 1 FETCH (BODY ({text}){pdf})\
             (\"MESSAGE\" \"RFC822\" NIL NIL NIL \"7BIT\" 302 {inner_envelope} \
             ({inner_text}){inner_html}) \"ALTERNATIVE\") 16) \"MIXED\"))\r\n"
        )
    );
    assert_eq!(
        envelope(&meta),
        "* 1 FETCH (ENVELOPE (NIL \"report\" ((\"Doe, Jane\" NIL \"jane\" \"example.com\")) \
         ((\"Doe, Jane\" NIL \"jane\" \"example.com\")) ((\"Doe, Jane\" NIL \"jane\" \
         \"example.com\")) ((NIL NIL \"bob\" \"example.com\")) NIL NIL NIL \
         \"<m1@example.com>\"))\r\n"
    );
    assert_eq!(
        section(MIXED, &meta, &[3], SectionWhat::Header),
        b"From: bob@example.com\r\nSubject: original\r\n\
          Content-Type: multipart/alternative; boundary=inner\r\n\r\n"
    );
    assert_eq!(
        section(MIXED, &meta, &[3, 1], SectionWhat::Whole),
        b"orig text\r\nline two"
    );
    assert_eq!(
        section(MIXED, &meta, &[3, 2], SectionWhat::Whole),
        b"<b>orig</b>"
    );
    assert!(
        section(MIXED, &meta, &[3, 2], SectionWhat::Mime).starts_with(b"Content-Type: text/html")
    );
    assert!(section(MIXED, &meta, &[3], SectionWhat::Text).ends_with(b"--inner--"));
    assert_eq!(
        section(MIXED, &meta, &[2], SectionWhat::Whole),
        b"JVBERi0xLjQK"
    );
    assert_eq!(meta.section_range(&[2], SectionWhat::Header), None);
    assert_eq!(meta.section_range(&[3, 3], SectionWhat::Whole), None);
}

#[test]
fn encoded_words_stay_raw_in_envelope_and_groups_use_nil_host() {
    let meta = MessageMetadata::parse(ENCODED);
    let keld = "((\"=?ISO-8859-1?Q?Keld_J=F8rn_Simonsen?=\" NIL \"keld\" \"example.dk\"))";
    assert_eq!(
        envelope(&meta),
        format!(
            "* 1 FETCH (ENVELOPE (\"Tue, 1 Jul 2003 10:52:37 +0200\" \
             \"=?utf-8?B?w6lsw6h2ZQ==?=  report\" {keld} {keld} {keld} \
             ((NIL NIL \"undisclosed-recipients\" NIL)(NIL NIL NIL NIL)) \
             ((NIL NIL \"Friends\" NIL)(\"Ann\" NIL \"ann\" \"example.org\")\
             (\"Ben\" NIL \"ben\" \"example.org\")(NIL NIL NIL NIL)) NIL NIL NIL))\r\n"
        )
    );
    assert_eq!(meta.date, Some(1_057_049_557));
    assert_eq!(meta.header_values("SUBJECT"), ["élève report"]);
    assert_eq!(
        meta.header_values("from"),
        ["Keld Jørn Simonsen <keld@example.dk>"]
    );
    assert_eq!(meta.base_subject(), "élève report");
    assert!(meta.header_values("x-missing").is_empty());
}
