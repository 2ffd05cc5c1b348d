//! Delivery status notifications, read back by an independent parser (mail-parser): the MIME
//! structure, the report fields, the attached original, and hostile values kept on their lines.
#![allow(clippy::unwrap_used)]

use mail_parser::{MessageParser, MimeHeaders};
use mc_smtp::dsn::{Action, Notification, RecipientReport, Return};
use proptest::prelude::*;
use time::macros::datetime;

const ORIGINAL: &[u8] =
    b"From: sender@remote.test\r\nSubject: hello\r\nMessage-ID: <orig@remote.test>\r\n\r\nThe body.\r\n";

fn report<'a>(recipients: &'a [RecipientReport<'a>], attach: Return) -> Notification<'a> {
    Notification {
        hostname: "mx.example.test",
        to: "sender@remote.test",
        id: "0192-abc",
        now: datetime!(2026-11-29 10:00:00 UTC),
        arrival: datetime!(2026-11-28 09:30:00 UTC),
        envelope_id: Some("ENV-7"),
        recipients,
        original: ORIGINAL,
        attach,
    }
}

fn unknown_user() -> RecipientReport<'static> {
    RecipientReport {
        final_recipient: "nobody@example.test",
        original_recipient: Some("rfc822;Nobody@example.test"),
        action: Action::Failed,
        status: "5.1.1",
        remote_mta: None,
        diagnostic: "550 5.1.1 Unknown user",
    }
}

#[test]
fn a_failure_report_has_three_parts_and_the_full_original() {
    let recipients = [unknown_user()];
    let bytes = report(&recipients, Return::Full).render();
    let text = String::from_utf8(bytes.clone()).unwrap();
    let message = MessageParser::default().parse(&bytes).unwrap();
    assert_eq!(
        message.subject(),
        Some("Undelivered Mail Returned to Sender")
    );
    assert_eq!(
        message.from().unwrap().first().unwrap().address(),
        Some("MAILER-DAEMON@mx.example.test")
    );
    let content_type = message.content_type().unwrap();
    assert_eq!(
        (content_type.ctype(), content_type.subtype()),
        ("multipart", Some("report"))
    );
    assert_eq!(
        content_type.attribute("report-type"),
        Some("delivery-status")
    );
    // Root, text, delivery-status, attached message (and the attached message's own part).
    let types: Vec<String> = message
        .parts
        .iter()
        .map(|p| {
            let ct = p.content_type().unwrap();
            format!("{}/{}", ct.ctype(), ct.subtype().unwrap_or(""))
        })
        .collect();
    assert_eq!(
        &types[..4],
        [
            "multipart/report",
            "text/plain",
            "message/delivery-status",
            "message/rfc822"
        ]
    );
    for field in [
        "Reporting-MTA: dns; mx.example.test\r\n",
        "Original-Envelope-Id: ENV-7\r\n",
        "Arrival-Date: Sat, 28 Nov 2026 09:30:00 +0000\r\n",
        "Final-Recipient: rfc822; nobody@example.test\r\n",
        "Original-Recipient: rfc822;Nobody@example.test\r\n",
        "Action: failed\r\n",
        "Status: 5.1.1\r\n",
        "Diagnostic-Code: smtp; 550 5.1.1 Unknown user\r\n",
        "Auto-Submitted: auto-replied\r\n",
    ] {
        assert!(text.contains(field), "{field:?} missing from:\n{text}");
    }
    let attached = message.parts[3].message().unwrap();
    assert_eq!(attached.subject(), Some("hello"));
    assert_eq!(attached.body_text(0).as_deref(), Some("The body.\r\n"));
}

#[test]
fn headers_only_attaches_the_header_section_and_a_delay_says_so() {
    let delayed = RecipientReport {
        action: Action::Delayed,
        status: "4.4.1",
        remote_mta: Some("mx.remote.test"),
        diagnostic: "421 4.4.1 try later",
        ..unknown_user()
    };
    let recipients = [delayed];
    let bytes = report(&recipients, Return::Headers).render();
    let text = String::from_utf8(bytes.clone()).unwrap();
    assert!(
        text.contains("Content-Type: text/rfc822-headers\r\n"),
        "{text}"
    );
    assert!(text.contains("Subject: hello\r\n"), "{text}");
    assert!(!text.contains("The body."), "{text}");
    assert!(
        text.contains("Action: delayed\r\nStatus: 4.4.1\r\nRemote-MTA: dns; mx.remote.test\r\n")
    );
    let message = MessageParser::default().parse(&bytes).unwrap();
    assert_eq!(
        message.subject(),
        Some("Delayed Mail (still being retried)")
    );
}

#[test]
fn hostile_values_cannot_start_a_header_line() {
    let hostile = RecipientReport {
        final_recipient: "x@example.test\r\nBcc: victim@else.test",
        diagnostic: "550 no\r\n\r\nInjected: yes",
        ..unknown_user()
    };
    let recipients = [hostile];
    let mut notification = report(&recipients, Return::Headers);
    notification.envelope_id = Some("E\nX-Evil: 1");
    let text = String::from_utf8(notification.render()).unwrap();
    for injected in ["\r\nBcc:", "\nInjected:", "\nX-Evil:"] {
        assert!(!text.contains(injected), "{injected:?} in:\n{text}");
    }
}

proptest! {
    /// Whatever the original holds (binary, a copy of our boundary, no header end), the
    /// notification parses and the attached part is the original, byte for byte.
    #[test]
    fn any_original_is_attached_intact(mut original in proptest::collection::vec(any::<u8>(), 0..400)) {
        original.extend_from_slice(b"--=_mailcluster_0192abc_0\r\n");
        let recipients = [unknown_user()];
        let mut notification = report(&recipients, Return::Full);
        notification.original = &original;
        let bytes = notification.render();
        let text = String::from_utf8_lossy(&bytes);
        let boundary = text
            .split("boundary=\"")
            .nth(1)
            .and_then(|rest| rest.split('"').next())
            .unwrap()
            .to_string();
        prop_assert_ne!(&boundary, "=_mailcluster_0192abc_0");
        let marker = "Content-Type: message/rfc822\r\n\r\n";
        let start = memchr::memmem::find(&bytes, marker.as_bytes()).unwrap() + marker.len();
        prop_assert_eq!(&bytes[start..start + original.len()], &original[..]);
        let closing = format!("--{}--\r\n", boundary);
        prop_assert!(bytes.ends_with(closing.as_bytes()));
    }
}
