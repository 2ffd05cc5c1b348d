//! NOT/OR/AND combination, body-free short-circuits, the depth bound and the tree helpers.

use imap_types::core::{Charset, Vec1};

use super::{TestMessage, criteria, hit, search};
use crate::search::{
    MAX_SEARCH_DEPTH, SearchError, SearchKey, charset_supported, evaluate, needs_body, uses_modseq,
};

fn seen_from_alice() -> TestMessage {
    TestMessage::new()
        .flag("\\Seen")
        .header("From", "alice@example.com")
}

#[test]
fn parenthesised_list_and_top_level_keys_are_anded() {
    let message = seen_from_alice();
    assert!(hit("SEEN FROM alice", &message));
    assert!(hit("(SEEN FROM alice)", &message));
    assert!(!hit("(SEEN FROM bob)", &message));
    assert!(!hit("SEEN (FROM alice UNSEEN)", &message));
}

#[test]
fn or_matches_when_either_side_matches() {
    let message = seen_from_alice();
    assert!(hit("OR UNSEEN FROM alice", &message));
    assert!(hit("OR FROM alice UNSEEN", &message));
    assert!(!hit("OR UNSEEN FROM bob", &message));
}

#[test]
fn not_or_nesting_follows_boolean_logic() {
    let message = seen_from_alice();
    assert!(hit("NOT OR UNSEEN FROM bob", &message));
    assert!(!hit("NOT NOT UNSEEN", &message));
    assert!(hit("NOT NOT SEEN", &message));
    assert!(hit("OR (UNSEEN FROM alice) (SEEN NOT FROM bob)", &message));
    assert!(!hit("OR NOT SEEN OR DELETED NOT FROM alice", &message));
    assert!(hit("NOT (UNSEEN OR DELETED FLAGGED)", &message));
}

#[test]
fn or_decided_by_flags_does_not_need_the_body() {
    let message = seen_from_alice().body(None);
    assert_eq!(search("OR SEEN BODY x", &message), Ok(true));
    assert_eq!(search("OR BODY x SEEN", &message), Ok(true));
    assert_eq!(search("UNSEEN BODY x", &message), Ok(false));
    assert_eq!(search("BODY x UNSEEN", &message), Ok(false));
    assert_eq!(search("NOT OR SEEN BODY x", &message), Ok(false));
}

#[test]
fn undecided_body_keys_ask_for_the_body_through_not_and_or() {
    let message = seen_from_alice().body(None);
    for keys in [
        "NOT BODY x",
        "OR UNSEEN BODY x",
        "SEEN TEXT zzz",
        "(BODY a BODY b)",
    ] {
        assert_eq!(search(keys, &message), Err(SearchError::NeedBody), "{keys}");
    }
    let loaded = message.clone().body(Some("a b"));
    assert_eq!(search("NOT BODY x", &loaded), Ok(true));
    assert_eq!(search("(BODY a BODY b)", &loaded), Ok(true));
}

#[test]
fn needs_body_sees_body_and_text_at_any_depth() {
    let needs = |command: &str| criteria(command).iter().any(needs_body);
    assert!(needs("a SEARCH BODY x"));
    assert!(needs("a SEARCH SEEN NOT (FROM a OR ALL TEXT x)"));
    assert!(!needs(
        "a SEARCH OR FROM a SUBJECT b NOT HEADER X-Body body"
    ));
}

#[test]
fn uses_modseq_sees_modseq_at_any_depth() {
    let uses = |command: &str| criteria(command).iter().any(uses_modseq);
    assert!(uses("a SEARCH MODSEQ 5"));
    assert!(uses("a UID SEARCH OR SEEN NOT (ALL MODSEQ 5)"));
    assert!(!uses("a SEARCH OR SEEN NOT ALL"));
}

/// `levels` nested NOTs around ALL.
fn nested_nots(levels: usize) -> SearchKey<'static> {
    (0..levels).fold(SearchKey::All, |key, _| SearchKey::Not(Box::new(key)))
}

#[test]
fn nesting_up_to_the_limit_evaluates() {
    let message = TestMessage::new();
    let key = nested_nots(MAX_SEARCH_DEPTH);
    let expected = MAX_SEARCH_DEPTH.is_multiple_of(2);
    assert_eq!(evaluate(&[key], &message, &super::CONTEXT), Ok(expected));
    let list = SearchKey::And(Vec1::from(nested_nots(MAX_SEARCH_DEPTH - 1)));
    assert!(evaluate(&[list], &message, &super::CONTEXT).is_ok());
}

#[test]
fn nesting_beyond_the_limit_is_too_deep() {
    let message = TestMessage::new();
    let key = nested_nots(MAX_SEARCH_DEPTH + 1);
    assert_eq!(
        evaluate(&[key], &message, &super::CONTEXT),
        Err(SearchError::TooDeep)
    );
    let list = SearchKey::And(Vec1::from(nested_nots(MAX_SEARCH_DEPTH)));
    assert_eq!(
        evaluate(&[list], &message, &super::CONTEXT),
        Err(SearchError::TooDeep)
    );
}

#[test]
fn helpers_walk_very_deep_trees_without_recursion() {
    let deep = nested_nots(10_000);
    assert!(!needs_body(&deep));
    assert!(!uses_modseq(&deep));
    // Dropping the tree recurses inside imap-types; unwind it by hand to keep the test stack small.
    let mut key = deep;
    while let SearchKey::Not(inner) = key {
        key = *inner;
    }
}

#[test]
fn imap_codec_refuses_nesting_beyond_nine_levels() {
    use imap_codec::CommandCodec;
    use imap_codec::decode::Decoder;
    let nested = |levels: usize| format!("a SEARCH {}ALL\r\n", "NOT ".repeat(levels));
    assert!(CommandCodec::default().decode(nested(8).as_bytes()).is_ok());
    assert!(
        CommandCodec::default()
            .decode(nested(9).as_bytes())
            .is_err()
    );
}

#[test]
fn charsets_are_absent_utf8_or_us_ascii() {
    assert!(charset_supported(None));
    for name in ["UTF-8", "utf-8", "US-ASCII"] {
        assert!(
            charset_supported(Some(&Charset::try_from(name).unwrap())),
            "{name}"
        );
    }
    assert!(!charset_supported(Some(
        &Charset::try_from("ISO-8859-1").unwrap()
    )));
}
