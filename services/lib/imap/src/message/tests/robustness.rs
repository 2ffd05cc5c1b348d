//! Hostile input: the malformed-MIME corpus, random bytes and mutated messages must never panic,
//! and every range must lie within the input, for parsing, both conversions (encoded by
//! imap-codec, so its debug-build validation runs too), section lookups and JSON round trips.

use std::path::{Path, PathBuf};

use imap_codec::{ResponseCodec, encode::Encoder};
use imap_types::core::Vec1;
use imap_types::fetch::MessageDataItem;
use imap_types::response::{Data, Response};
use proptest::prelude::*;

use super::samples::{ALTERNATIVE, ENCODED, MIXED};
use crate::message::{MAX_MIME_PARTS, MessageMetadata, Part, SectionWhat, filter_header_fields};

const WHATS: [SectionWhat; 4] = [
    SectionWhat::Whole,
    SectionWhat::Header,
    SectionWhat::Text,
    SectionWhat::Mime,
];

/// Parses `raw` and checks every invariant the server relies on.
fn check(raw: &[u8]) -> MessageMetadata {
    let meta = MessageMetadata::parse(raw);
    let size = raw.len() as u64;
    assert_eq!(meta.size, size);
    assert!(meta.header_len <= size);
    assert_eq!(
        (meta.body.header_start, meta.body.body_start),
        (0, meta.header_len)
    );
    assert_eq!(meta.body.body_end, size);

    let mut paths = vec![
        vec![],
        vec![1],
        vec![2],
        vec![1, 1],
        vec![2, 1],
        vec![3, 2, 1],
    ];
    check_part(&meta.body, 0, size, &mut Vec::new(), &mut paths);
    for path in &paths {
        for what in WHATS {
            if let Some(range) = meta.section_range(path, what) {
                assert!(
                    range.start <= range.end && range.end <= size,
                    "{path:?} {range:?}"
                );
            }
        }
    }
    let header = meta.section_range(&[], SectionWhat::Header).unwrap_or(0..0);
    let header = &raw[header.start as usize..header.end as usize];
    let _ = filter_header_fields(header, &[b"subject", b"from"], false);
    let _ = filter_header_fields(header, &[b"received"], true);
    let _ = meta.header_values("subject");
    let _ = meta.base_subject();

    let items = vec![
        MessageDataItem::Envelope(meta.envelope()),
        MessageDataItem::Body(meta.body_structure(false)),
        MessageDataItem::BodyStructure(meta.body_structure(true)),
    ];
    let items = Vec1::try_from(items).expect("three items");
    let response = Response::Data(Data::Fetch {
        seq: std::num::NonZeroU32::MIN,
        items,
    });
    assert!(!ResponseCodec::default().encode(&response).dump().is_empty());

    let json = serde_json::to_string(&meta).expect("serialise");
    let back: MessageMetadata = serde_json::from_str(&json).expect("deserialise");
    assert_eq!(back, meta);
    meta
}

/// Ranges nest: a part lies within `low..high`, children within its body, an embedded message
/// exactly on its body. Collects every part's path on the way.
fn check_part(part: &Part, low: u64, high: u64, path: &mut Vec<u32>, paths: &mut Vec<Vec<u32>>) {
    assert!(low <= part.header_start, "{path:?}");
    assert!(part.header_start <= part.body_start, "{path:?}");
    assert!(
        part.body_start <= part.body_end && part.body_end <= high,
        "{path:?}"
    );
    for (index, child) in part.parts.iter().enumerate() {
        path.push(index as u32 + 1);
        paths.push(path.clone());
        check_part(child, part.body_start, part.body_end, path, paths);
        path.pop();
    }
    if let Some(embedded) = &part.message {
        assert_eq!(embedded.body.header_start, part.body_start);
        assert_eq!(embedded.body.body_end, part.body_end);
        path.push(1);
        paths.push(path.clone());
        check_part(&embedded.body, part.body_start, part.body_end, path, paths);
        path.pop();
    }
}

fn files_under(dir: &Path, out: &mut Vec<PathBuf>) {
    let Ok(entries) = std::fs::read_dir(dir) else {
        return;
    };
    for entry in entries.flatten() {
        let path = entry.path();
        if path.is_dir() {
            files_under(&path, out);
        } else {
            out.push(path);
        }
    }
}

fn with_crlf(raw: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(raw.len() + raw.len() / 16);
    for (index, &byte) in raw.iter().enumerate() {
        if byte == b'\n' && (index == 0 || raw[index - 1] != b'\r') {
            out.push(b'\r');
        }
        out.push(byte);
    }
    out
}

#[test]
fn malformed_mime_corpus_never_panics_and_ranges_stay_in_bounds() {
    // A copy of ../shared/vectors/malformed-mime (mail-parser's corpus, Apache-2.0 OR MIT; see
    // its ORIGIN.txt), kept in the repository so a clean clone has it.
    let corpus = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/data/malformed-mime");
    let mut files = Vec::new();
    files_under(&corpus, &mut files);
    assert!(files.len() >= 100, "corpus missing at {}", corpus.display());
    for file in files {
        let raw = std::fs::read(&file).expect("readable");
        let stripped: Vec<u8> = raw.iter().copied().filter(|&b| b != b'\r').collect();
        for variant in [raw.clone(), with_crlf(&raw), stripped] {
            check(&variant);
            for cut in [1, 2, 3, 5, 7] {
                check(&variant[..variant.len() * cut / 8]);
            }
        }
    }
}

#[test]
fn deep_nesting_is_cut_and_still_round_trips() {
    let mut raw = Vec::new();
    for level in 0..200 {
        raw.extend_from_slice(
            format!("Content-Type: multipart/mixed; boundary=b{level}\r\n\r\n--b{level}\r\n")
                .as_bytes(),
        );
        raw.extend_from_slice(b"Content-Type: message/rfc822\r\n\r\n");
    }
    raw.extend_from_slice(b"Subject: bottom\r\n\r\nbottom\r\n");
    let meta = check(&raw);
    assert!(meta.structure_truncated);
}

#[test]
fn too_many_parts_are_left_out() {
    let mut raw = b"Content-Type: multipart/mixed; boundary=x\r\n\r\n".to_vec();
    for index in 0..MAX_MIME_PARTS + 50 {
        raw.extend_from_slice(format!("--x\r\n\r\npart {index}\r\n").as_bytes());
    }
    raw.extend_from_slice(b"--x--\r\n");
    let meta = check(&raw);
    assert!(meta.structure_truncated);
    assert_eq!(meta.body.parts.len(), MAX_MIME_PARTS - 1);
    assert!(
        meta.section_range(&[MAX_MIME_PARTS as u32 + 10], SectionWhat::Whole)
            .is_none()
    );
}

/// Pieces of MIME syntax, so random messages reach the structure code and not just the header.
const FRAGMENTS: &[&str] = &[
    "\r\n",
    "\n",
    "\r",
    " ",
    "\t",
    ":",
    ";",
    "\"",
    "=?utf-8?q?x=C3?=",
    "Content-Type: ",
    "multipart/mixed; boundary=b",
    "multipart/digest; boundary=\"b\"",
    "message/rfc822",
    "text/plain; charset=utf-8",
    "--b",
    "--b--",
    "Content-Transfer-Encoding: base64",
    "Content-Disposition: attachment; filename*0*=utf-8''%E2%82; filename*1=x",
    "From: ",
    "a <b@c>",
    "g: a@b, c@d;",
    "(x",
    "<",
    "@",
    "Subject: ",
    "Date: Tue, 1 Jul 2003 10:52:37 +0200",
    "\u{0}",
    "\u{fffd}",
    "Content-ID: <id>",
    "Content-Language: en",
    "body text",
];

fn mutate(mut raw: Vec<u8>, edits: &[(usize, u8, u8)]) -> Vec<u8> {
    for &(position, byte, op) in edits {
        let at = if raw.is_empty() {
            0
        } else {
            position % (raw.len() + 1)
        };
        match op % 4 {
            0 => raw.insert(at, byte),
            1 if at < raw.len() => {
                raw.remove(at);
            }
            2 if at < raw.len() => raw[at] = byte,
            _ => {
                let end = (at + usize::from(byte)).min(raw.len());
                let copy = raw[at..end].to_vec();
                raw.splice(at..at, copy);
            }
        }
    }
    raw
}

proptest! {
    // Failures are kept as named regression tests in this file, not in a seed file.
    #![proptest_config(ProptestConfig {
        cases: 512,
        failure_persistence: None,
        ..ProptestConfig::default()
    })]

    #[test]
    fn random_bytes_never_panic(raw in prop::collection::vec(any::<u8>(), 0..2048)) {
        check(&raw);
    }

    #[test]
    fn random_mime_fragments_never_panic(
        picks in prop::collection::vec(0..FRAGMENTS.len(), 0..120)
    ) {
        let raw: String = picks.iter().map(|&index| FRAGMENTS[index]).collect();
        check(raw.as_bytes());
    }

    #[test]
    fn mutated_messages_never_panic(
        edits in prop::collection::vec((any::<usize>(), any::<u8>(), any::<u8>()), 1..24),
        which in 0..3usize,
    ) {
        let base = [MIXED, ALTERNATIVE, ENCODED];
        check(&mutate(base[which].to_vec(), &edits));
    }
}

#[test]
fn mail_parser_assertion_on_malformed_embedded_message_is_contained() {
    // Found by `mutated_messages_never_panic`: mail-parser's debug assertion "Invalid part ID,
    // could not find multipart" fires on this input in debug builds.
    let edits = [
        (634_349_123_428_370_020, 56, 5),
        (171_824_154_867_721_234, 0, 12),
        (12_042_459_150_260_541_401, 156, 3),
    ];
    let raw = mutate(MIXED.to_vec(), &edits);
    let meta = check(&raw);
    assert!(meta.header_len > 0);
}
