//! Attachment stripping and blocking over hand-written messages, the malformed-MIME corpus of
//! mail-parser (services/lib/imap/tests/data/malformed-mime) and random input.

use mail_parser::{MessageParser, MimeHeaders, PartType};
use mc_antispam::attachments::{
    ATTACHMENT_REMOVED, MAX_REPLACEMENT_BYTES, Rewritten, block_extensions, strip_attachments,
};
use proptest::prelude::*;

fn blocked() -> Vec<String> {
    [
        "bat", "cmd", "com", "cpl", "csh", "exe", "inf", "lnk", "msi", "msp", "pif", "reg", "scf",
        "scr",
    ]
    .map(String::from)
    .to_vec()
}

const HEAD: &str = "From: Alice <alice@example.com>\r\n\
To: bob@example.net\r\n\
Subject: files\r\n\
MIME-Version: 1.0\r\n\
Content-Type: multipart/mixed; boundary=\"outer\"\r\n\
\r\n";

fn mixed(parts: &[&str]) -> Vec<u8> {
    let mut message = String::from(HEAD);
    message.push_str("This is a multi-part message in MIME format.\r\n");
    for part in parts {
        message.push_str("--outer\r\n");
        message.push_str(part);
        message.push_str("\r\n");
    }
    message.push_str("--outer--\r\n");
    message.into_bytes()
}

const TEXT: &str = "Content-Type: text/plain; charset=us-ascii\r\n\r\nHello Bob,\r\nsee attached.";
const HTML: &str = "Content-Type: text/html\r\n\r\n<p>Hello</p>";

fn binary(name_params: &str) -> String {
    format!(
        "Content-Type: application/octet-stream{name_params}\r\n\
         Content-Transfer-Encoding: base64\r\n\
         Content-Disposition: attachment\r\n\r\n\
         TVqQAAMAAAAEAAAA//8AALgAAAAAAAAAQAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA"
    )
}

fn parts_of(message: &[u8]) -> Vec<(String, Option<String>, String)> {
    let parsed = MessageParser::default().parse(message).expect("parses");
    parsed
        .parts
        .iter()
        .filter(|p| !matches!(p.body, PartType::Multipart(_)))
        .map(|p| {
            let ct = p
                .content_type()
                .map(|t| format!("{}/{}", t.ctype(), t.subtype().unwrap_or("")))
                .unwrap_or_default();
            let text = p.text_contents().unwrap_or_default().to_string();
            (ct, p.attachment_name().map(String::from), text)
        })
        .collect()
}

fn assert_bounded(input: &[u8], out: &Rewritten) {
    assert!(
        out.message.len() <= input.len() + out.removed.len() * MAX_REPLACEMENT_BYTES,
        "{} -> {} with {} removed",
        input.len(),
        out.message.len(),
        out.removed.len()
    );
    if !out.changed() {
        assert_eq!(out.message, input);
    }
}

#[test]
fn strip_replaces_attachments_and_keeps_bodies_and_structure() {
    let input = mixed(&[
        TEXT,
        HTML,
        &binary("; name=\"tool.exe\""),
        "Content-Type: image/png; name=\"a.png\"\r\nContent-Transfer-Encoding: base64\r\n\r\niVBORw0KGgo=",
        "Content-Type: application/octet-stream\r\n\r\nno name, not text",
    ]);
    let out = strip_attachments(&input);
    assert_eq!(out.removed, ["tool.exe", "a.png", ""]);
    assert_eq!(out.unreplaced, 0);
    assert_bounded(&input, &out);
    // Everything up to the first replaced part is byte-identical.
    let first = memchr::memmem::find(&input, b"Content-Type: application/octet-stream").unwrap();
    assert_eq!(out.message[..first], input[..first]);
    assert!(out.message.ends_with(b"--outer--\r\n"));
    let parts = parts_of(&out.message);
    assert_eq!(parts.len(), 5);
    assert_eq!(parts[0].2, "Hello Bob,\r\nsee attached.");
    assert_eq!(parts[1].0, "text/html");
    for (ct, name, text) in &parts[2..] {
        assert_eq!(ct, "text/plain");
        assert_eq!(name, &None);
        assert!(text.starts_with("Virus found:"), "{text}");
    }
    assert!(parts[2].2.contains("Removed: tool.exe"));
    // Nothing left to strip.
    let again = strip_attachments(&out.message);
    assert!(!again.changed(), "{:?}", again.removed);
}

#[test]
fn strip_keeps_a_text_only_message_as_it_is() {
    for input in [
        mixed(&[TEXT, HTML]),
        b"Subject: plain\r\n\r\nJust text.\r\n".to_vec(),
        b"".to_vec(),
        b"no header at all".to_vec(),
    ] {
        let out = strip_attachments(&input);
        assert!(!out.changed());
        assert_eq!(out.message, input);
    }
}

#[test]
fn strip_of_a_single_part_attachment_keeps_the_message_headers() {
    let input =
        b"Received: from x\r\nFrom: a@example.com\r\nSubject: invoice\r\nMIME-Version: 1.0\r\n\
Content-Type: application/zip; name=\"invoice.zip\"\r\nContent-Transfer-Encoding: base64\r\n\
Content-Disposition: attachment;\r\n filename=\"invoice.zip\"\r\n\r\nUEsDBAoAAAAAAA==\r\n";
    let out = strip_attachments(input);
    assert_eq!(out.removed, ["invoice.zip"]);
    let text = String::from_utf8(out.message.clone()).unwrap();
    assert!(
        text.starts_with(
            "Received: from x\r\nFrom: a@example.com\r\nSubject: invoice\r\nMIME-Version: 1.0\r\nContent-Type: text/plain; charset=utf-8\r\n"
        ),
        "{text}"
    );
    assert!(!text.contains("UEsDB"));
    assert!(text.ends_with("Removed: invoice.zip\r\n"), "{text:?}");
    let parsed = MessageParser::default().parse(&out.message).unwrap();
    assert_eq!(parsed.subject(), Some("invoice"));
    assert!(parsed.body_text(0).unwrap().contains("Virus found"));
}

#[test]
fn strip_walks_into_forwarded_messages_and_replaces_attached_ones() {
    let forwarded = "Content-Type: message/rfc822\r\n\r\n\
From: carol@example.org\r\nSubject: inner\r\nMIME-Version: 1.0\r\n\
Content-Type: multipart/mixed; boundary=\"inner\"\r\n\r\n\
--inner\r\nContent-Type: text/plain\r\n\r\ninner text\r\n\
--inner\r\nContent-Type: application/x-msdownload; name=\"setup.exe\"\r\n\r\nMZ....\r\n\
--inner--";
    let attached = "Content-Type: message/rfc822; name=\"old.eml\"\r\n\
Content-Disposition: attachment; filename=\"old.eml\"\r\n\r\n\
From: dave@example.org\r\nSubject: old\r\n\r\nold body";
    let input = mixed(&[TEXT, forwarded, attached]);
    let out = strip_attachments(&input);
    assert_eq!(out.removed, ["setup.exe", "old.eml"]);
    assert_eq!(out.unreplaced, 0);
    let text = String::from_utf8(out.message.clone()).unwrap();
    assert!(text.contains("From: carol@example.org\r\nSubject: inner\r\n"));
    assert!(text.contains("--inner\r\nContent-Type: text/plain\r\n\r\ninner text\r\n--inner\r\n"));
    assert!(!text.contains("MZ...."));
    assert!(!text.contains("old body"));
    assert!(text.contains("--inner--\r\n--outer"), "{text}");
    MessageParser::default().parse(&out.message).unwrap();
}

#[test]
fn blocked_extensions_become_txt_attachments_with_a_notice() {
    let input = mixed(&[
        TEXT,
        &binary("; name=\"EVIL.EXE\""),
        &binary("; name=\"report.pdf\""),
        &binary("; name=\"trailing.scr. \""),
        // RFC 2231: "悪.exe" in UTF-8.
        "Content-Type: application/octet-stream\r\nContent-Disposition: attachment;\r\n filename*=utf-8''%E6%82%AA.exe\r\n\r\nAAAA",
        // RFC 2047 in a quoted parameter: "Rechnung.bat".
        "Content-Type: application/octet-stream; name=\"=?utf-8?B?UmVjaG51bmcuYmF0?=\"\r\n\r\nAAAA",
        // Only the Content-Type name carries the extension.
        "Content-Type: application/x-msdownload; name=\"a.com\"\r\nContent-Disposition: attachment; filename=\"a.txt\"\r\n\r\nAAAA",
    ]);
    let out = block_extensions(&input, &blocked());
    assert_eq!(
        out.removed,
        [
            "EVIL.EXE",
            "trailing.scr. ",
            "悪.exe",
            "Rechnung.bat",
            "a.com"
        ]
    );
    assert_bounded(&input, &out);
    let parts = parts_of(&out.message);
    assert_eq!(parts.len(), 7);
    assert_eq!(parts[0].2, "Hello Bob,\r\nsee attached.");
    assert_eq!(parts[2].1.as_deref(), Some("report.pdf"));
    for (index, name) in [
        (1, "EVIL.EXE"),
        (3, "trailing.scr. "),
        (4, "悪.exe"),
        (5, "Rechnung.bat"),
        (6, "a.com"),
    ] {
        let (ct, new_name, text) = &parts[index];
        assert_eq!(ct, "text/plain");
        assert_eq!(new_name.as_deref(), Some(format!("{name}.txt").as_str()));
        // Wrapped at spaces: compare the words.
        assert_eq!(
            text.replace("\r\n", " ").trim_end(),
            ATTACHMENT_REMOVED.replace("%MACRO_FILE%", name).trim_end()
        );
    }
    // The replaced names no longer end in a blocked extension.
    assert!(!block_extensions(&out.message, &blocked()).changed());
}

#[test]
fn blocking_with_no_extensions_or_no_match_changes_nothing() {
    let input = mixed(&[TEXT, &binary("; name=\"tool.exe\"")]);
    assert_eq!(block_extensions(&input, &[]).message, input);
    assert!(!block_extensions(&input, &["pdf".into()]).changed());
    assert!(block_extensions(&input, &[".EXE".into()]).changed());
}

fn corpus() -> Vec<(std::path::PathBuf, Vec<u8>)> {
    let root = std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../imap/tests/data/malformed-mime/resources/eml");
    let mut files = Vec::new();
    for dir in ["malformed", "rfc"] {
        let Ok(entries) = std::fs::read_dir(root.join(dir)) else {
            continue;
        };
        for entry in entries.flatten() {
            let path = entry.path();
            if path.extension().is_some_and(|e| e == "eml") {
                let bytes = std::fs::read(&path).expect("read a corpus file");
                files.push((path, bytes));
            }
        }
    }
    files.sort();
    files
}

#[test]
fn the_malformed_mime_corpus_never_panics_and_stays_parseable() {
    let files = corpus();
    assert!(
        files.len() >= 20,
        "corpus not found ({} files)",
        files.len()
    );
    let mut changed = 0;
    for (path, input) in &files {
        for out in [
            strip_attachments(input),
            block_extensions(input, &blocked()),
            block_extensions(
                input,
                &["txt".into(), "png".into(), "jpg".into(), "gif".into()],
            ),
        ] {
            assert_bounded(input, &out);
            if out.changed() {
                changed += 1;
                assert!(
                    MessageParser::default().parse(&out.message).is_some(),
                    "{}",
                    path.display()
                );
            }
        }
    }
    assert!(changed > 0, "the corpus has attachments");
}

fn mutated() -> impl Strategy<Value = Vec<u8>> {
    let base = mixed(&[
        TEXT,
        &binary("; name=\"x.exe\""),
        "Content-Type: message/rfc822\r\n\r\nSubject: in\r\nContent-Type: multipart/mixed; boundary=in\r\n\r\n--in\r\nContent-Type: image/gif; name=a.gif\r\n\r\nGIF\r\n--in--",
    ]);
    let len = base.len();
    proptest::collection::vec((0..len, 0usize..4, any::<u8>()), 0..12).prop_map(move |edits| {
        let mut message = base.clone();
        for (at, kind, byte) in edits {
            let at = at.min(message.len());
            match kind {
                0 => message.insert(at, byte),
                1 if at < message.len() => {
                    message.remove(at);
                }
                2 if at < message.len() => message[at] = byte,
                _ => {
                    let end = (at + 40).min(message.len());
                    let copy = message[at..end].to_vec();
                    message.splice(at..at, copy);
                }
            }
        }
        message
    })
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(512))]

    #[test]
    fn random_bytes_never_panic(input in proptest::collection::vec(any::<u8>(), 0..2000)) {
        let out = strip_attachments(&input);
        assert_bounded(&input, &out);
        let out = block_extensions(&input, &blocked());
        assert_bounded(&input, &out);
    }

    #[test]
    fn mutated_mime_never_panics(input in mutated()) {
        let out = strip_attachments(&input);
        assert_bounded(&input, &out);
        let out = block_extensions(&input, &blocked());
        assert_bounded(&input, &out);
    }
}
