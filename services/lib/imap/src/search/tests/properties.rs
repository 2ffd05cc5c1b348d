//! Property tests: random key trees (as command text, decoded by imap-codec) and random bytes
//! never make evaluation panic, and the body-free pass agrees with the full one.

use imap_codec::CommandCodec;
use imap_codec::decode::Decoder;
use imap_types::command::CommandBody;
use proptest::prelude::*;

use super::TestMessage;
use crate::search::{SearchContext, SearchError, SearchKey, compare, evaluate, needs_body};
use crate::search::{SortCriterion, SortKey, uses_modseq};

fn word() -> impl Strategy<Value = String> {
    prop_oneof![
        Just("\"\"".to_owned()),
        "[a-zA-Z@.]{1,6}",
        "\"[a-zA-Z .:]{0,8}\"",
    ]
}

fn date() -> impl Strategy<Value = String> {
    (1u32..=28, 0usize..12, 1990u32..2030).prop_map(|(day, month, year)| {
        let months = [
            "Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec",
        ];
        format!(
            "{day}-{}-{year}",
            months.get(month).copied().unwrap_or("Jan")
        )
    })
}

fn set() -> impl Strategy<Value = String> {
    let bound = prop_oneof![
        Just("*".to_owned()),
        (1u32..=12).prop_map(|n| n.to_string())
    ];
    let sequence = prop_oneof![
        bound.clone(),
        (bound.clone(), bound).prop_map(|(a, b)| format!("{a}:{b}")),
    ];
    prop::collection::vec(sequence, 1..4).prop_map(|parts| parts.join(","))
}

fn leaf() -> impl Strategy<Value = String> {
    let simple = prop::sample::select(vec![
        "ALL",
        "ANSWERED",
        "DELETED",
        "DRAFT",
        "FLAGGED",
        "NEW",
        "OLD",
        "RECENT",
        "SEEN",
        "UNANSWERED",
        "UNDELETED",
        "UNDRAFT",
        "UNFLAGGED",
        "UNSEEN",
    ])
    .prop_map(str::to_owned);
    let stringy = (
        prop::sample::select(vec!["BCC", "BODY", "CC", "FROM", "SUBJECT", "TEXT", "TO"]),
        word(),
    )
        .prop_map(|(key, word)| format!("{key} {word}"));
    let dated = (
        prop::sample::select(vec![
            "BEFORE",
            "ON",
            "SINCE",
            "SENTBEFORE",
            "SENTON",
            "SENTSINCE",
        ]),
        date(),
    )
        .prop_map(|(key, date)| format!("{key} {date}"));
    prop_oneof![
        simple,
        stringy,
        dated,
        (
            prop::sample::select(vec!["Subject", "X-Tag", "date"]),
            word()
        )
            .prop_map(|(field, word)| format!("HEADER {field} {word}")),
        prop::sample::select(vec!["KEYWORD", "UNKEYWORD"])
            .prop_flat_map(|key| "[$a-zA-Z]{1,5}".prop_map(move |flag| format!("{key} {flag}"))),
        (prop::sample::select(vec!["LARGER", "SMALLER"]), 0u32..3000)
            .prop_map(|(key, size)| format!("{key} {size}")),
        (0u64..20).prop_map(|modseq| format!("MODSEQ {modseq}")),
        set(),
        set().prop_map(|set| format!("UID {set}")),
    ]
}

/// Up to 4 composite levels over a leaf: at most 6 parser levels even when wrapped in
/// `NOT (...)`, within imap-codec's limit of 9.
fn key() -> impl Strategy<Value = String> {
    leaf().prop_recursive(4, 24, 3, |inner| {
        prop_oneof![
            inner.clone().prop_map(|key| format!("NOT {key}")),
            (inner.clone(), inner.clone()).prop_map(|(a, b)| format!("OR {a} {b}")),
            prop::collection::vec(inner, 1..4).prop_map(|keys| format!("({})", keys.join(" "))),
        ]
    })
}

fn message() -> impl Strategy<Value = TestMessage> {
    let flags = prop::sample::subsequence(
        vec![
            "\\Seen",
            "\\Answered",
            "\\Flagged",
            "\\Deleted",
            "\\Draft",
            "$Junk",
            "Abc",
        ],
        0..=7,
    );
    let headers = prop::collection::vec(
        (
            prop::sample::select(vec!["From", "To", "Cc", "Bcc", "Subject", "X-Tag", "Date"]),
            "[a-zA-Z@.: ,<>\"]{0,12}",
        ),
        0..5,
    );
    (
        (1u32..=12, 1u32..=12, flags, any::<bool>()),
        (
            0i64..2_000_000_000,
            -43_200i32..=43_200,
            0u64..4000,
            0u64..20,
        ),
        (headers, "[a-zA-Z .]{0,20}"),
    )
        .prop_map(
            |((seq, uid, flags, recent), (unix, offset, size, modseq), (headers, body))| {
                let offset = time::UtcOffset::from_whole_seconds(offset).unwrap();
                let mut message = TestMessage::new();
                message.seq = seq;
                message.uid = uid;
                message.flags = flags.into_iter().map(str::to_owned).collect();
                message.recent = recent;
                message.internal_date = time::OffsetDateTime::from_unix_timestamp(unix)
                    .unwrap()
                    .to_offset(offset);
                message.size = size;
                message.modseq = modseq;
                message.headers = headers
                    .into_iter()
                    .map(|(name, value)| (name.to_owned(), value))
                    .collect();
                message
                    .headers
                    .push(("Date".into(), "Thu, 1 Feb 2024 10:00:00 +0200".into()));
                message.body = Some(body);
                message
            },
        )
}

fn context() -> impl Strategy<Value = SearchContext> {
    (0u32..=12, 0u32..=12).prop_map(|(max_seq, max_uid)| SearchContext { max_seq, max_uid })
}

fn decode(keys: &str) -> Option<Vec<SearchKey<'static>>> {
    let line = format!("a SEARCH {keys}\r\n");
    match CommandCodec::default().decode_static(line.as_bytes()) {
        Ok((_, command)) => match command.body {
            CommandBody::Search { criteria, .. } => Some(criteria.into_inner()),
            _ => None,
        },
        Err(_) => None,
    }
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(512))]

    #[test]
    fn generated_keys_decode_and_evaluate_consistently(
        keys in prop::collection::vec(key(), 1..3),
        message in message(),
        context in context(),
    ) {
        let text = keys.join(" ");
        let criteria = decode(&text).unwrap();
        let full = evaluate(&criteria, &message, &context);
        prop_assert!(full.is_ok(), "{text}: {full:?}");
        // Without the body the answer is the same, or the body is asked for and could matter.
        let lazy = evaluate(&criteria, &message.clone().body(None), &context);
        match lazy {
            Err(SearchError::NeedBody) => prop_assert!(criteria.iter().any(needs_body)),
            other => prop_assert_eq!(other, full),
        }
        // NOT flips the answer.
        let negated = decode(&format!("NOT ({text})")).unwrap();
        prop_assert_eq!(evaluate(&negated, &message, &context).map(|b| !b), full);
        let _ = criteria.iter().any(uses_modseq);
    }

    #[test]
    fn random_bytes_after_search_never_panic(
        bytes in prop::collection::vec(any::<u8>(), 0..64),
        message in message(),
        context in context(),
    ) {
        let mut line = b"a SEARCH ".to_vec();
        line.extend_from_slice(&bytes);
        line.extend_from_slice(b"\r\n");
        if let Ok((_, command)) = CommandCodec::default().decode(&line)
            && let CommandBody::Search { criteria, .. } = command.body
        {
            let _ = evaluate(criteria.as_ref(), &message, &context);
            let _ = criteria.as_ref().iter().any(needs_body);
        }
    }

    #[test]
    fn sort_is_a_total_order_on_random_messages(
        messages in prop::collection::vec(message(), 1..6),
        reverse in any::<bool>(),
        key in prop::sample::select(vec![
            SortKey::Arrival, SortKey::Cc, SortKey::Date, SortKey::From, SortKey::Size,
            SortKey::Subject, SortKey::To, SortKey::DisplayFrom, SortKey::DisplayTo,
        ]),
    ) {
        let criteria = [SortCriterion { reverse, key }];
        for a in &messages {
            prop_assert!(compare(a, a, &criteria).is_eq());
            for b in &messages {
                prop_assert_eq!(compare(a, b, &criteria), compare(b, a, &criteria).reverse());
            }
        }
    }
}
