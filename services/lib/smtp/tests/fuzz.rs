//! Property tests: the SMTP core is fed garbage, hostile lines and random sessions and must never
//! panic; the DATA decoder must give the same result however its input is split, and must round
//! trip dot-stuffed text.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use base64::Engine;
use base64::engine::general_purpose::STANDARD;
use mc_smtp::{
    Action, BareLineEndings, DataDecoder, Progress, Reply, Session, SessionConfig, Status, VrfyMode,
};
use proptest::prelude::*;

fn postmaster() -> mc_types::EmailAddress {
    mc_types::EmailAddress::parse("postmaster@mx.test").unwrap()
}

const CASES: u32 = 2000;

// ---------------------------------------------------------------------------------------------
// Strategies

const VERBS: &[&str] = &[
    "EHLO",
    "HELO",
    "LHLO",
    "MAIL FROM:",
    "MAIL FROM:<",
    "RCPT TO:",
    "RCPT TO:<",
    "DATA",
    "BDAT",
    "AUTH",
    "AUTH PLAIN",
    "AUTH LOGIN",
    "STARTTLS",
    "RSET",
    "NOOP",
    "QUIT",
    "HELP",
    "VRFY",
    "EXPN",
    "TURN",
    "ETRN",
    "ATRN",
    "BURL",
    "XCLIENT",
    "SEND",
    "mail from:",
    "rcpt to:",
    "bdat",
    "",
];

const FRAGMENTS: &[&str] = &[
    " ",
    "<",
    ">",
    "@",
    ":",
    "=",
    ",",
    ";",
    "\"",
    "\\",
    "[",
    "]",
    ".",
    "+",
    "*",
    "a",
    "example.com",
    "a@example.com",
    "<>",
    " SIZE=",
    " BODY=8BITMIME",
    " BODY=BINARYMIME",
    " SMTPUTF8",
    " RET=FULL",
    " RET=HDRS",
    " ENVID=",
    " NOTIFY=",
    "NEVER",
    "SUCCESS,FAILURE,DELAY",
    " ORCPT=rfc822;",
    " AUTH=<>",
    " LAST",
    " HOLDFOR=",
    " MT-PRIORITY=",
    " REQUIRETLS",
    "99999999999999999999",
    "18446744073709551615",
    "0",
    "10",
    "ü",
    "jörg",
    "IPv6:::1",
    "xn--",
    "+2B",
    "\t",
    "\r",
    "\0",
];

fn bytes_upto(max: usize) -> impl Strategy<Value = Vec<u8>> {
    prop::collection::vec(any::<u8>(), 0..max)
}

/// Argument bytes built from fragments that steer the parser into its branches, mixed with any
/// single byte.
fn hostile_argument() -> impl Strategy<Value = Vec<u8>> {
    prop::collection::vec(
        prop_oneof![
            3 => prop::sample::select(FRAGMENTS).prop_map(|f| f.as_bytes().to_vec()),
            1 => any::<u8>().prop_map(|b| vec![b]),
        ],
        0..16,
    )
    .prop_map(|parts| parts.concat())
}

fn line_ending() -> impl Strategy<Value = &'static [u8]> {
    const ENDINGS: &[&[u8]] = &[b"\r\n", b"\n", b"\r\r\n", b"", b" \r\n"];
    prop::sample::select(ENDINGS)
}

fn hostile_line() -> impl Strategy<Value = Vec<u8>> {
    (
        prop::sample::select(VERBS),
        any::<bool>(),
        hostile_argument(),
        line_ending(),
    )
        .prop_map(|(verb, space, argument, end)| {
            let separator: &[u8] = if space { b" " } else { b"" };
            [verb.as_bytes(), separator, &argument, end].concat()
        })
}

fn b64(text: &str) -> String {
    STANDARD.encode(text)
}

/// Lines a real client sends, SASL responses included, weighted so that random sequences get
/// deep into the state machine (transactions, DATA, BDAT, AUTH exchanges).
fn valid_line() -> impl Strategy<Value = Vec<u8>> {
    fn lines(lines: &[&str]) -> impl Strategy<Value = Vec<u8>> {
        let lines: Vec<Vec<u8>> = lines.iter().map(|l| l.as_bytes().to_vec()).collect();
        prop::sample::select(lines)
    }
    let transaction = lines(&[
        "MAIL FROM:<a@example.com>\r\n",
        "MAIL FROM:<>\r\n",
        "MAIL FROM:<a@example.com> SIZE=40 SMTPUTF8\r\n",
        "MAIL FROM:<a@example.com> SIZE=99999999\r\n",
        "RCPT TO:<b@example.com>\r\n",
        "RCPT TO:<c@example.com> NOTIFY=SUCCESS\r\n",
        "RCPT TO:<C@example.com>\r\n",
        "RCPT TO:<d@example.com>\r\n",
        "RCPT TO:<jörg@example.com>\r\n",
        "DATA\r\n",
        "BDAT 10\r\n",
        "BDAT 30\r\n",
        "BDAT 0 LAST\r\n",
        "BDAT 5 LAST\r\n",
        "BDAT 9999999999999999999\r\n",
        "RSET\r\n",
    ]);
    let plain_right = format!("AUTH PLAIN {}\r\n", b64("\0u@example.com\0right"));
    let plain_wrong = format!("AUTH PLAIN {}\r\n", b64("\0u@example.com\0wrong"));
    let response_right = format!("{}\r\n", b64("\0u@example.com\0right"));
    let user = format!("{}\r\n", b64("u@example.com"));
    let right = format!("{}\r\n", b64("right"));
    let wrong = format!("{}\r\n", b64("wrong"));
    let auth: Vec<Vec<u8>> = [
        "AUTH PLAIN\r\n",
        "AUTH LOGIN\r\n",
        "AUTH CRAM-MD5\r\n",
        "*\r\n",
        "=\r\n",
        &plain_right,
        &plain_wrong,
        &response_right,
        &user,
        &right,
        &wrong,
    ]
    .iter()
    .map(|l| l.as_bytes().to_vec())
    .collect();
    let other = lines(&[
        "EHLO client.test\r\n",
        "HELO client.test\r\n",
        "NOOP\r\n",
        "HELP\r\n",
        "VRFY postmaster\r\n",
        "STARTTLS\r\n",
        "QUIT\r\n",
    ]);
    prop_oneof![6 => transaction, 3 => prop::sample::select(auth), 1 => other]
}

fn any_line() -> impl Strategy<Value = Vec<u8>> {
    prop_oneof![
        8 => valid_line(),
        1 => hostile_line(),
        1 => bytes_upto(80).prop_map(|mut b| {
            b.extend_from_slice(b"\r\n");
            b
        }),
    ]
}

fn owned(lines: &[&str]) -> Vec<Vec<u8>> {
    lines.iter().map(|l| l.as_bytes().to_vec()).collect()
}

/// A whole transaction: MAIL, some RCPTs, then DATA, BDAT chunks, RSET or nothing.
fn transaction_block() -> impl Strategy<Value = Vec<Vec<u8>>> {
    let mail = prop::sample::select(owned(&[
        "MAIL FROM:<a@example.com>\r\n",
        "MAIL FROM:<>\r\n",
        "MAIL FROM:<a@example.com> SIZE=40 SMTPUTF8\r\n",
        "MAIL FROM:<a@example.com> SIZE=99999999\r\n",
    ]));
    let rcpt = prop::sample::select(owned(&[
        "RCPT TO:<b@example.com>\r\n",
        "RCPT TO:<c@example.com> NOTIFY=SUCCESS\r\n",
        "RCPT TO:<C@example.com>\r\n",
        "RCPT TO:<d@example.com>\r\n",
        "RCPT TO:<jörg@example.com>\r\n",
    ]));
    let end = prop::sample::select(vec![
        owned(&["DATA\r\n"]),
        owned(&["BDAT 10\r\n", "BDAT 30\r\n", "BDAT 5 LAST\r\n"]),
        owned(&["BDAT 30\r\n", "DATA\r\n"]),
        owned(&["BDAT 0 LAST\r\n"]),
        owned(&["BDAT 9999999999999999999\r\n"]),
        owned(&["RSET\r\n"]),
        owned(&[]),
    ]);
    (mail, prop::collection::vec(rcpt, 0..4), end)
        .prop_map(|(mail, rcpts, end)| [vec![mail], rcpts, end].concat())
}

fn auth_block() -> impl Strategy<Value = Vec<Vec<u8>>> {
    let plain = |password: &str| {
        format!(
            "AUTH PLAIN {}\r\n",
            b64(&format!("\0u@example.com\0{password}"))
        )
    };
    let field = |text: &str| format!("{}\r\n", b64(text));
    let flows: Vec<Vec<String>> = vec![
        vec![plain("right")],
        vec![plain("wrong")],
        vec!["AUTH PLAIN\r\n".into(), field("\0u@example.com\0right")],
        vec!["AUTH PLAIN\r\n".into(), field("\0u@example.com\0wrong")],
        vec!["AUTH PLAIN\r\n".into(), "*\r\n".into()],
        vec![
            "AUTH LOGIN\r\n".into(),
            field("u@example.com"),
            field("right"),
        ],
        vec![
            "AUTH LOGIN\r\n".into(),
            field("u@example.com"),
            field("wrong"),
        ],
        vec![
            "AUTH LOGIN\r\n".into(),
            field("u@example.com"),
            "*\r\n".into(),
        ],
        vec![
            format!("AUTH LOGIN {}", field("u@example.com")),
            field("right"),
        ],
    ];
    let flows: Vec<Vec<Vec<u8>>> = flows
        .into_iter()
        .map(|flow| flow.into_iter().map(String::into_bytes).collect())
        .collect();
    prop::sample::select(flows)
}

/// A session: sub-dialogues a client would send, with random lines and garbage in between.
fn session_lines() -> impl Strategy<Value = Vec<Vec<u8>>> {
    let block = prop_oneof![
        4 => prop::collection::vec(any_line(), 1..3),
        3 => transaction_block(),
        2 => auth_block(),
        1 => Just(owned(&["STARTTLS\r\n", "EHLO client.test\r\n"])),
    ];
    prop::collection::vec(block, 0..10).prop_map(|blocks| blocks.concat())
}

fn session_config() -> impl Strategy<Value = SessionConfig> {
    (
        prop::sample::select(vec![0u64, 50, 10_000]),
        prop::sample::select(vec![0usize, 1, 2, 3, 100]),
        prop::sample::select(vec![0u32, 3, 50, 50]),
        prop::sample::select(vec![0u32, 1, 3, 10, 10]),
        any::<bool>(),
        any::<[bool; 3]>(),
        prop::bool::weighted(0.2),
        prop::bool::weighted(0.8),
    )
        .prop_map(
            |(
                max_message_bytes,
                max_recipients,
                max_bad_commands,
                max_auth_failures,
                ambiguous,
                flags,
                require_auth,
                allow_empty_sender,
            )| {
                SessionConfig {
                    hostname: "mx.test".into(),
                    max_message_bytes,
                    max_recipients,
                    max_bad_commands,
                    max_auth_failures,
                    vrfy: if ambiguous {
                        VrfyMode::Ambiguous
                    } else {
                        VrfyMode::Disabled
                    },
                    starttls: flags[0],
                    auth: flags[1],
                    allow_plaintext_auth: flags[2],
                    require_auth,
                    allow_empty_sender,
                    postmaster: mc_types::EmailAddress::parse("postmaster@mx.test").unwrap(),
                }
            },
        )
}

// ---------------------------------------------------------------------------------------------
// Checks

/// A reply goes out as CRLF-terminated lines that all start with its code, with no stray CR or
/// LF, and its enhanced code (if any) has the class of the code.
fn check_reply(reply: &Reply) -> Result<(), TestCaseError> {
    prop_assert!((200..600).contains(&reply.code), "code {}", reply.code);
    if let Some(Status(class, _, _)) = reply.status {
        prop_assert_eq!(u16::from(class), reply.code / 100, "{}", reply);
    }
    let bytes = reply.to_bytes();
    let code = reply.code.to_string();
    let lines: Vec<&[u8]> = bytes.split_inclusive(|&b| b == b'\n').collect();
    prop_assert_eq!(lines.len(), reply.lines.len().max(1));
    for line in lines {
        prop_assert!(line.ends_with(b"\r\n"));
        let body = &line[..line.len() - 2];
        prop_assert!(!body.contains(&b'\r') && !body.contains(&b'\n'));
        prop_assert!(body.starts_with(code.as_bytes()));
    }
    Ok(())
}

/// Plays the driver's part for one action and returns every reply it led to, and whether the
/// session asked to close. `None` when the action cannot be carried out (a chunk larger than any
/// connection could carry).
fn drive(session: &mut Session, action: Action, replies: &mut Vec<Reply>) -> Option<bool> {
    match action {
        Action::Reply(reply) => replies.push(reply),
        Action::Close(reply) => {
            replies.push(reply);
            return Some(true);
        }
        Action::StartTls => session.tls_started(),
        Action::Authenticate(credentials) => {
            if credentials.password == "right" {
                replies.push(session.auth_succeeded(credentials.login));
            } else {
                let next = session.auth_failed();
                return drive(session, next, replies);
            }
        }
        Action::CheckMail(mail) => replies.push(session.accept_mail(mail)),
        Action::CheckRecipient(rcpt) => replies.push(session.accept_recipient(rcpt)),
        Action::StartData => {
            session.take_transaction().expect("a transaction for DATA");
            session.message_finished();
        }
        Action::ReceiveChunk { size, last } => {
            // No connection carries more than this; the driver would time out first.
            if size > 1 << 40 {
                return None;
            }
            if last {
                session
                    .take_transaction()
                    .expect("a transaction for the last chunk");
                session.message_finished();
            } else {
                replies.push(session.chunk_received(size));
            }
        }
        Action::DiscardChunk { reply, .. } => replies.push(reply),
    }
    Some(false)
}

// ---------------------------------------------------------------------------------------------
// Decoder helpers

fn decode_whole(mode: BareLineEndings, input: &[u8]) -> (Vec<u8>, Option<usize>, u64) {
    let mut decoder = DataDecoder::new(mode);
    let mut out = Vec::new();
    let consumed = match decoder.feed(input, &mut out) {
        Progress::Done { consumed } => Some(consumed),
        Progress::NeedMore => None,
    };
    (out, consumed, decoder.bare_line_endings())
}

fn decode_split(
    mode: BareLineEndings,
    input: &[u8],
    cuts: &[usize],
) -> (Vec<u8>, Option<usize>, u64) {
    let mut points: Vec<usize> = cuts.iter().map(|c| c % (input.len() + 1)).collect();
    points.push(0);
    points.push(input.len());
    points.sort_unstable();
    let mut decoder = DataDecoder::new(mode);
    let mut out = Vec::new();
    let mut consumed = None;
    for window in points.windows(2) {
        let (start, end) = (window[0], window[1]);
        if let Progress::Done { consumed: used } = decoder.feed(&input[start..end], &mut out) {
            consumed = Some(start + used);
            break;
        }
    }
    (out, consumed, decoder.bare_line_endings())
}

/// Bytes biased towards the ones that matter to the decoder.
/// (A plain byte vector mapped through a table: much cheaper than a per-byte `prop_oneof!`.)
fn data_bytes(max: usize) -> impl Strategy<Value = Vec<u8>> {
    const INTERESTING: &[u8] = b"\r\n.\0a";
    prop::collection::vec(any::<u8>(), 0..max).prop_map(|bytes| {
        bytes
            .into_iter()
            .map(|b| {
                if b < 192 {
                    INTERESTING[usize::from(b) % INTERESTING.len()]
                } else {
                    b
                }
            })
            .collect()
    })
}

/// A line of text without CR or LF, often starting with dots.
fn text_line() -> impl Strategy<Value = Vec<u8>> {
    prop::collection::vec(any::<u8>(), 0..12).prop_map(|bytes| {
        bytes
            .into_iter()
            .map(|b| match b {
                0..=79 => b'.',
                80..=159 => b'a',
                // Control bytes other than CR and LF.
                160..=191 => match b - 160 {
                    b'\r' | b'\n' => b'\t',
                    control => control,
                },
                high => high,
            })
            .collect()
    })
}

fn dot_stuff(lines: &[Vec<u8>]) -> Vec<u8> {
    let stuffed: Vec<Vec<u8>> = lines
        .iter()
        .map(|line| {
            if line.first() == Some(&b'.') {
                [&b"."[..], line].concat()
            } else {
                line.clone()
            }
        })
        .collect();
    stuffed.join(&b"\r\n"[..])
}

fn contains(haystack: &[u8], needle: &[u8]) -> bool {
    haystack.windows(needle.len()).any(|w| w == needle)
}

/// Strings mostly from the base64 alphabet (so decoding gets past the first byte), with any
/// other character mixed in.
fn sasl_text() -> impl Strategy<Value = String> {
    const ALPHABET: &[u8] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/=* ";
    prop::collection::vec(any::<char>(), 0..200).prop_map(|chars| {
        chars
            .into_iter()
            .map(|c| match c as u32 % 4 {
                0 => c,
                n => char::from(ALPHABET[(c as usize / 4 + n as usize) % ALPHABET.len()]),
            })
            .collect()
    })
}

fn modes() -> impl Strategy<Value = BareLineEndings> {
    prop_oneof![
        Just(BareLineEndings::Keep),
        Just(BareLineEndings::Normalize)
    ]
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(CASES))]

    // -----------------------------------------------------------------------------------------
    // command::parse

    #[test]
    fn parse_never_panics_on_arbitrary_bytes(mut line in bytes_upto(600), crlf in any::<bool>()) {
        if crlf {
            line.extend_from_slice(b"\r\n");
        }
        if let Err(reply) = mc_smtp::command::parse(&line, &postmaster()) {
            check_reply(&reply)?;
            prop_assert!(reply.code >= 500, "a refused command is a 5xx: {}", reply);
        }
    }

    #[test]
    fn parse_never_panics_on_hostile_lines(line in hostile_line()) {
        if let Err(reply) = mc_smtp::command::parse(&line, &postmaster()) {
            check_reply(&reply)?;
            prop_assert!(reply.code >= 500, "a refused command is a 5xx: {}", reply);
        }
    }

    #[test]
    fn parse_refuses_control_characters_in_any_line(
        line in hostile_line(),
        control in prop::sample::select(vec![b'\0', b'\r', 0x1b, 0x7f, 0x01]),
        at in any::<prop::sample::Index>(),
    ) {
        // Put a control byte inside the line content (before its line ending).
        let mut content = line.strip_suffix(b"\r\n").unwrap_or(&line).to_vec();
        while content.last().is_some_and(|b| *b == b'\r' || *b == b'\n') {
            content.pop();
        }
        let position = at.index(content.len() + 1);
        content.insert(position, control);
        content.extend_from_slice(b"\r\n");
        prop_assert!(mc_smtp::command::parse(&content, &postmaster()).is_err(), "{:?} accepted", content);
    }

    // -----------------------------------------------------------------------------------------
    // Session

    #[test]
    fn session_survives_any_line_sequence(
        config in session_config(),
        tls in any::<bool>(),
        greet in prop::bool::weighted(0.9),
        lines in session_lines(),
    ) {
        let max_recipients = config.max_recipients;
        let mut session = Session::new(config, tls);
        check_reply(&session.banner())?;
        let mut closed = false;
        let greeting = greet.then(|| b"EHLO client.test\r\n".to_vec());
        for line in greeting.iter().chain(&lines) {
            let action = session.line(line);
            let mut replies = Vec::new();
            let Some(closes) = drive(&mut session, action, &mut replies) else { break };
            for reply in &replies {
                check_reply(reply)?;
            }
            if closed {
                prop_assert!(closes, "a closed session answered {:?} with something else than Close", line);
            }
            if closes {
                closed = true;
                prop_assert!(session.is_closed(), "Close returned but the session is not closed");
            }
            if closed {
                prop_assert!(session.is_closed());
            }
            if let Some(transaction) = session.transaction() {
                prop_assert!(transaction.recipients.len() <= max_recipients);
                prop_assert!(session.greeting().is_some(), "a transaction without a greeting");
            }
            if session.config().require_auth && session.transaction().is_some() {
                prop_assert!(session.authenticated().is_some(), "a transaction without AUTH");
            }
        }
    }

    // -----------------------------------------------------------------------------------------
    // DataDecoder

    #[test]
    fn decoder_gives_the_same_result_for_any_split(
        mode in modes(),
        input in data_bytes(200),
        cuts in prop::collection::vec(any::<usize>(), 0..8),
    ) {
        let whole = decode_whole(mode, &input);
        let split = decode_split(mode, &input, &cuts);
        prop_assert_eq!(&whole, &split);
        if let Some(consumed) = whole.1 {
            prop_assert!(consumed >= 3 && consumed <= input.len());
            // Only CRLF.CRLF (or .CRLF at the very start) ends the data.
            let end = &input[..consumed];
            prop_assert!(end == b".\r\n" || end.ends_with(b"\r\n.\r\n"), "ended at {:?}", end);
        }
    }

    #[test]
    fn decoder_byte_at_a_time_matches_single_shot(mode in modes(), input in data_bytes(120)) {
        let cuts: Vec<usize> = (0..input.len()).collect();
        prop_assert_eq!(decode_whole(mode, &input), decode_split(mode, &input, &cuts));
    }

    #[test]
    fn decoder_round_trips_dot_stuffed_text(
        mode in modes(),
        lines in prop::collection::vec(text_line(), 0..12),
        trailing in data_bytes(20),
        cuts in prop::collection::vec(any::<usize>(), 0..6),
    ) {
        let text = lines.join(&b"\r\n"[..]);
        let encoded = [dot_stuff(&lines), b"\r\n.\r\n".to_vec()].concat();
        let input = [encoded.clone(), trailing].concat();
        let expected = [text, b"\r\n".to_vec()].concat();
        let (out, consumed, bare) = decode_split(mode, &input, &cuts);
        prop_assert_eq!(out, expected);
        prop_assert_eq!(consumed, Some(encoded.len()));
        prop_assert_eq!(bare, 0);
    }

    #[test]
    fn kept_output_has_no_lone_dot_line_unless_one_was_stuffed(input in data_bytes(200)) {
        let (out, _, bare) = decode_whole(BareLineEndings::Keep, &input);
        if contains(&out, b"\r\n.\r\n") || out.starts_with(b".\r\n") {
            prop_assert!(contains(&input, b".."), "lone dot line from {:?}", input);
        }
        let crlf = |bytes: &[u8]| bytes.windows(2).filter(|w| w == b"\r\n").count();
        // Keep mode changes no line ending: every CRLF out was a CRLF in, and bare ones are counted.
        prop_assert!(crlf(&out) <= crlf(&input));
        let bare_in = out.iter().filter(|&&b| b == b'\r' || b == b'\n').count() - 2 * crlf(&out);
        prop_assert_eq!(bare_in as u64, bare);
    }

    #[test]
    fn normalized_output_has_only_crlf_line_endings(input in data_bytes(200)) {
        let (out, _, _) = decode_whole(BareLineEndings::Normalize, &input);
        for (index, byte) in out.iter().enumerate() {
            match byte {
                b'\r' => prop_assert_eq!(out.get(index + 1), Some(&b'\n')),
                b'\n' => prop_assert!(index > 0 && out[index - 1] == b'\r'),
                _ => {}
            }
        }
    }

    #[test]
    fn decoder_after_the_end_consumes_nothing(mode in modes(), rest in data_bytes(40)) {
        let mut decoder = DataDecoder::new(mode);
        let mut out = Vec::new();
        prop_assert_eq!(decoder.feed(b"x\r\n.\r\n", &mut out), Progress::Done { consumed: 6 });
        prop_assert_eq!(decoder.feed(&rest, &mut out), Progress::Done { consumed: 0 });
        prop_assert_eq!(out, b"x\r\n".to_vec());
    }

    // -----------------------------------------------------------------------------------------
    // SASL

    #[test]
    fn sasl_decoders_never_panic_on_arbitrary_strings(text in sasl_text()) {
        let _ = mc_smtp::auth::plain(&text);
        let _ = mc_smtp::auth::login_field(&text);
    }

    #[test]
    fn sasl_decoders_never_panic_on_base64_of_arbitrary_bytes(bytes in bytes_upto(300)) {
        let encoded = STANDARD.encode(&bytes);
        let plain = mc_smtp::auth::plain(&encoded);
        if let Ok(credentials) = &plain {
            prop_assert!(!credentials.login.is_empty());
            prop_assert!(!credentials.login.contains('\0') && !credentials.password.contains('\0'));
        }
        if let Ok(field) = mc_smtp::auth::login_field(&encoded) {
            prop_assert_eq!(field.as_bytes(), &bytes[..]);
        }
    }

    #[test]
    fn sasl_plain_round_trips(login in "[^\\x00]{1,40}", password in "[^\\x00]{0,40}", with_authzid in any::<bool>()) {
        let authzid = if with_authzid { login.as_str() } else { "" };
        let credentials = mc_smtp::auth::plain(&b64(&format!("{authzid}\0{login}\0{password}"))).unwrap();
        prop_assert_eq!(credentials.login, login);
        prop_assert_eq!(credentials.password, password);
    }
}
