//! Property tests: the parser and whole sessions are fed random bytes and random command mixes
//! and must never panic, every reply must be well formed, and the message encoder must give the
//! same bytes however its input is split and must round-trip through un-stuffing.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use common::{PASSWORD, Server, USER, config, plaintext_config};
use mc_pop3::{
    Command, MAX_LINE_LEN, MAX_REPLY_LINE_LEN, MessageEncoder, Reply, State, encode_message,
};
use proptest::prelude::*;

const CASES: u32 = 2000;

const VERBS: &[&str] = &[
    "USER",
    "PASS",
    "STAT",
    "LIST",
    "UIDL",
    "TOP",
    "RETR",
    "DELE",
    "RSET",
    "NOOP",
    "QUIT",
    "CAPA",
    "STLS",
    "AUTH",
    "AUTH PLAIN",
    "APOP",
    "user",
    "list",
    "",
    "*",
    "=",
];

const ARGUMENTS: &[&str] = &[
    "",
    " ",
    " 0",
    " 1",
    " 2",
    " 3",
    " 4",
    " 1 0",
    " 3 1",
    " 2 5",
    " -1",
    " +1",
    " 1 2 3",
    " 99999999999999999999",
    " PLAIN",
    " PLAIN =",
    " PLAIN *",
    " XOAUTH2",
    " a@b",
    "  1",
    " \u{e9}",
    " .",
    " \0",
    " \r",
];

/// A line built from real verbs and arguments, or raw bytes.
fn line() -> impl Strategy<Value = Vec<u8>> {
    let login = prop_oneof![
        Just(format!("USER {USER}")),
        Just(format!("PASS {PASSWORD}")),
        Just("AUTH PLAIN AGFsaWNlQGV4YW1wbGUuY29tAGNvcnJlY3QgaG9yc2U=".to_string()),
        Just("AGFsaWNlQGV4YW1wbGUuY29tAGNvcnJlY3QgaG9yc2U=".to_string()),
    ];
    prop_oneof![
        4 => (0..VERBS.len(), 0..ARGUMENTS.len())
            .prop_map(|(v, a)| format!("{}{}", VERBS[v], ARGUMENTS[a]).into_bytes()),
        2 => login.prop_map(String::into_bytes),
        1 => proptest::collection::vec(any::<u8>(), 0..40),
        1 => proptest::collection::vec(any::<u8>(), 500..600),
    ]
}

/// Checks the shape of one reply: a `+OK`/`-ERR` line, a `+ ` continuation, or a `+OK` line,
/// dot-stuffed lines and a final `.`.
fn assert_well_formed(reply: &Reply) {
    let text = reply.as_str();
    assert!(text.ends_with("\r\n"), "{text:?}");
    let lines: Vec<&str> = text[..text.len() - 2].split("\r\n").collect();
    for line in &lines {
        assert!(!line.contains('\r') && !line.contains('\n'), "{text:?}");
        assert!(line.len() + 2 <= MAX_REPLY_LINE_LEN, "{text:?}");
    }
    let first = lines[0];
    if lines.len() == 1 {
        assert!(
            first == "+OK"
                || first.starts_with("+OK ")
                || first.starts_with("-ERR ")
                || first == "+ ",
            "{text:?}"
        );
        return;
    }
    assert!(first.starts_with("+OK"), "{text:?}");
    assert_eq!(lines.last(), Some(&"."), "{text:?}");
    for line in &lines[1..lines.len() - 1] {
        assert!(*line != ".", "{text:?}");
    }
}

/// Reverses the encoder: strips the terminator and the stuffing dots.
fn unstuff(encoded: &[u8]) -> Vec<u8> {
    let body = encoded.strip_suffix(b".\r\n").expect("terminator");
    let mut out = Vec::new();
    for line in body.split_inclusive(|&b| b == b'\n') {
        assert!(line.ends_with(b"\r\n"), "every line ends with CRLF");
        assert_ne!(line, b".\r\n", "no early terminator");
        out.extend_from_slice(line.strip_prefix(b".").unwrap_or(line));
    }
    out
}

/// The reference normalisation: CRLF, CR and LF each become CRLF; a last line gets one.
fn normalise(message: &[u8]) -> Vec<Vec<u8>> {
    let mut lines = Vec::new();
    let mut line = Vec::new();
    let mut i = 0;
    while i < message.len() {
        match message[i] {
            b'\r' if message.get(i + 1) == Some(&b'\n') => {
                lines.push(std::mem::take(&mut line));
                i += 1;
            }
            b'\r' | b'\n' => lines.push(std::mem::take(&mut line)),
            byte => line.push(byte),
        }
        i += 1;
    }
    if !line.is_empty() {
        lines.push(line);
    }
    lines
}

/// The reference TOP: the header lines, the blank line, then at most `n` body lines.
fn reference(message: &[u8], top: Option<u64>) -> Vec<u8> {
    let lines = normalise(message);
    let keep = match (top, lines.iter().position(Vec::is_empty)) {
        (Some(n), Some(blank)) => (blank + 1).saturating_add(n as usize).min(lines.len()),
        _ => lines.len(),
    };
    lines[..keep]
        .iter()
        .flat_map(|line| [line.as_slice(), b"\r\n"].concat())
        .collect()
}

fn message_bytes() -> impl Strategy<Value = Vec<u8>> {
    let byte = prop_oneof![
        3 => Just(b'.'),
        3 => Just(b'\r'),
        3 => Just(b'\n'),
        1 => Just(b'a'),
        1 => any::<u8>(),
    ];
    proptest::collection::vec(byte, 0..200)
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(CASES))]

    #[test]
    fn parse_never_panics(bytes in proptest::collection::vec(any::<u8>(), 0..700)) {
        let parsed = Command::parse(&bytes);
        if bytes.len() > MAX_LINE_LEN + 2 {
            prop_assert!(parsed.is_err());
        }
    }

    #[test]
    fn parse_of_real_verbs_never_panics(line in line()) {
        let _ = Command::parse(&line);
    }

    #[test]
    fn sessions_never_panic_and_replies_are_well_formed(
        lines in proptest::collection::vec(line(), 0..40),
        plaintext in any::<bool>(),
        tls in any::<bool>(),
        locked in any::<bool>(),
        commit_fails in any::<bool>(),
        logged_in in any::<bool>(),
    ) {
        let mut server = if logged_in {
            Server::logged_in()
        } else {
            Server::with_tls(if plaintext { plaintext_config() } else { config() }, tls)
        };
        server.locked_elsewhere = locked;
        server.commit_fails = commit_fails;
        for line in &lines {
            let mut bytes = line.clone();
            bytes.extend_from_slice(b"\r\n");
            server.send_bytes(&bytes);
        }
        for reply in &server.replies {
            assert_well_formed(reply);
        }
        if server.closed {
            prop_assert!(server.session.is_closed());
        }
        if matches!(server.session.state(), State::Transaction { .. }) {
            prop_assert!(server.lock_held);
        }
        if server.committed.is_none() {
            prop_assert_eq!(server.mailbox.len(), 3, "only a commit deletes");
        }
    }

    #[test]
    fn encoding_does_not_depend_on_chunk_boundaries(
        message in message_bytes(),
        cuts in proptest::collection::vec(any::<prop::sample::Index>(), 0..8),
        top in proptest::option::of(0u64..5),
    ) {
        let whole = encode_message(&message, top);
        let mut points: Vec<usize> = cuts.iter().map(|c| c.index(message.len() + 1)).collect();
        points.sort_unstable();
        let mut encoder = MessageEncoder::new(top);
        let mut chunked = Vec::new();
        let mut start = 0;
        for point in points.into_iter().chain([message.len()]) {
            encoder.encode(&message[start..point], &mut chunked);
            start = point;
        }
        encoder.finish(&mut chunked);
        prop_assert_eq!(chunked, whole);
    }

    #[test]
    fn unstuffing_gives_the_normalised_message(
        message in message_bytes(),
        top in proptest::option::of(0u64..5),
    ) {
        let encoded = encode_message(&message, top);
        prop_assert_eq!(unstuff(&encoded), reference(&message, top));
    }
}
