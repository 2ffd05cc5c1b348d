//! One behaviour per RFC 3501 search key (plus MODSEQ), keys decoded from command text.

use super::{CONTEXT, TestMessage, hit, search, search_in};
use crate::search::{SearchContext, SearchError};

#[test]
fn all_matches_every_message() {
    assert!(hit("ALL", &TestMessage::new()));
}

#[test]
fn system_flag_keys_follow_stored_flags() {
    for (flag, set_key, unset_key) in [
        ("\\Answered", "ANSWERED", "UNANSWERED"),
        ("\\Deleted", "DELETED", "UNDELETED"),
        ("\\Draft", "DRAFT", "UNDRAFT"),
        ("\\Flagged", "FLAGGED", "UNFLAGGED"),
        ("\\Seen", "SEEN", "UNSEEN"),
    ] {
        let with = TestMessage::new().flag(flag);
        let without = TestMessage::new().flag("\\Recent-ish").flag("$Other");
        assert!(hit(set_key, &with), "{set_key} on {flag}");
        assert!(!hit(unset_key, &with), "{unset_key} on {flag}");
        assert!(!hit(set_key, &without), "{set_key} without {flag}");
        assert!(hit(unset_key, &without), "{unset_key} without {flag}");
    }
}

#[test]
fn flags_compare_ascii_case_insensitively() {
    let message = TestMessage::new().flag("\\SEEN");
    assert!(hit("seen", &message));
    assert!(!hit("UnSeen", &message));
}

#[test]
fn keyword_matches_custom_flags_case_insensitively() {
    let message = TestMessage::new().flag("$Forwarded").flag("Work");
    assert!(hit("KEYWORD $Forwarded", &message));
    assert!(hit("KEYWORD $forwarded", &message));
    assert!(hit("KEYWORD work", &message));
    assert!(!hit("KEYWORD $Junk", &message));
    assert!(!hit("UNKEYWORD Work", &message));
    assert!(hit("UNKEYWORD $Junk", &message));
}

#[test]
fn keyword_never_matches_a_system_flag_by_its_bare_name() {
    let message = TestMessage::new().flag("\\Seen");
    assert!(!hit("KEYWORD Seen", &message));
}

#[test]
fn new_is_recent_and_unseen() {
    let mut recent_unseen = TestMessage::new();
    recent_unseen.recent = true;
    let recent_seen = recent_unseen.clone().flag("\\Seen");
    let old_unseen = TestMessage::new();
    assert!(hit("NEW", &recent_unseen));
    assert!(!hit("NEW", &recent_seen));
    assert!(!hit("NEW", &old_unseen));
    for message in [&recent_unseen, &recent_seen, &old_unseen] {
        assert_eq!(hit("NEW", message), hit("(RECENT UNSEEN)", message));
    }
}

#[test]
fn old_is_not_recent_and_recent_is_the_session_flag() {
    let mut recent = TestMessage::new();
    recent.recent = true;
    let old = TestMessage::new().flag("\\Seen");
    assert!(hit("RECENT", &recent));
    assert!(!hit("OLD", &recent));
    assert!(hit("OLD", &old));
    assert!(!hit("RECENT", &old));
    for message in [&recent, &old] {
        assert_eq!(hit("OLD", message), hit("NOT RECENT", message));
    }
}

#[test]
fn larger_and_smaller_are_strict() {
    let message = TestMessage::new(); // 1000 octets
    assert!(hit("LARGER 999", &message));
    assert!(!hit("LARGER 1000", &message));
    assert!(hit("SMALLER 1001", &message));
    assert!(!hit("SMALLER 1000", &message));
    assert!(!hit("SMALLER 0", &message));
}

#[test]
fn larger_compares_sizes_beyond_u32() {
    let mut message = TestMessage::new();
    message.size = u64::from(u32::MAX) + 10;
    assert!(hit("LARGER 4294967295", &message));
    assert!(!hit("SMALLER 4294967295", &message));
}

#[test]
fn sequence_sets_match_singles_lists_and_unordered_ranges() {
    let mut message = TestMessage::new();
    message.seq = 3;
    assert!(hit("3", &message));
    assert!(hit("1,3,5", &message));
    assert!(hit("2:4", &message));
    assert!(hit("4:2", &message));
    assert!(!hit("4:9", &message));
    assert!(!hit("1,2,4", &message));
}

#[test]
fn star_in_sequence_set_is_the_largest_sequence_number() {
    let mut last = TestMessage::new();
    last.seq = CONTEXT.max_seq;
    let mut first = TestMessage::new();
    first.seq = 1;
    assert!(hit("*", &last));
    assert!(!hit("*", &first));
    assert!(hit("5:*", &last));
    assert!(hit("*:5", &last));
    assert!(!hit("*:5", &first));
    assert!(hit("1:*", &first));
}

#[test]
fn uid_ranges_are_unordered_and_star_is_the_largest_uid() {
    let mut message = TestMessage::new();
    message.uid = 42;
    assert!(hit("UID 40:45", &message));
    assert!(hit("UID 45:40", &message));
    assert!(hit("UID 1,42", &message));
    assert!(!hit("UID 43:*", &message));
    let mut newest = TestMessage::new();
    newest.uid = CONTEXT.max_uid;
    assert!(hit("UID *", &newest));
    // RFC 3501: "UID 500:*" still matches the largest UID when it is below 500.
    assert!(hit("UID 500:*", &newest));
    // UID sets look at UIDs, not sequence numbers.
    assert!(!hit("UID 1", &newest));
}

#[test]
fn star_matches_nothing_in_an_empty_mailbox() {
    let empty = SearchContext::default();
    let message = TestMessage::new();
    for keys in ["*", "1:*", "*:1", "UID *", "UID 1:*"] {
        assert_eq!(search_in(keys, &message, &empty), Ok(false), "{keys}");
    }
    assert_eq!(search_in("NOT *", &message, &empty), Ok(true));
    assert_eq!(search_in("1", &message, &empty), Ok(true));
}

#[test]
fn internal_date_keys_compare_calendar_days() {
    let message = TestMessage::new().received("2024-02-01T00:00:00Z");
    assert!(hit("ON 1-Feb-2024", &message));
    assert!(hit("SINCE 1-Feb-2024", &message));
    assert!(!hit("BEFORE 1-Feb-2024", &message));
    assert!(hit("BEFORE 2-Feb-2024", &message));
    assert!(!hit("SINCE 2-Feb-2024", &message));
    assert!(hit("SINCE 31-Jan-2024", &message));
    assert!(!hit("ON 31-Jan-2024", &message));
}

#[test]
fn internal_date_uses_its_own_offset_not_utc() {
    // 23:30 in New York is already 2 February in UTC: the message is still on 1 February.
    let late_west = TestMessage::new().received("2024-02-01T23:30:00-05:00");
    assert!(hit("ON 1-Feb-2024", &late_west));
    assert!(!hit("ON 2-Feb-2024", &late_west));
    assert!(hit("BEFORE 2-Feb-2024", &late_west));
    // 08:00 in Tokyo is still 31 January in UTC: the message is on 1 February.
    let early_east = TestMessage::new().received("2024-02-01T08:00:00+09:00");
    assert!(hit("ON 1-Feb-2024", &early_east));
    assert!(hit("SINCE 1-Feb-2024", &early_east));
    assert!(!hit("ON 31-Jan-2024", &early_east));
}

#[test]
fn sent_keys_use_the_date_header_in_its_own_offset() {
    let message = TestMessage::new()
        .received("2024-03-10T10:00:00Z")
        .header("Date", "Thu, 29 Feb 2024 23:59:59 -1000");
    assert!(hit("SENTON 29-Feb-2024", &message));
    assert!(!hit("SENTON 1-Mar-2024", &message));
    assert!(hit("SENTBEFORE 1-Mar-2024", &message));
    assert!(!hit("SENTBEFORE 29-Feb-2024", &message));
    assert!(hit("SENTSINCE 29-Feb-2024", &message));
    assert!(!hit("SENTSINCE 1-Mar-2024", &message));
    assert!(!hit("ON 29-Feb-2024", &message));
}

#[test]
fn messages_without_date_header_match_no_sent_key() {
    let message = TestMessage::new();
    for keys in [
        "SENTON 1-Feb-2024",
        "SENTBEFORE 1-Jan-9999",
        "SENTSINCE 1-Jan-1900",
    ] {
        assert!(!hit(keys, &message), "{keys}");
    }
    assert!(hit("NOT SENTON 1-Feb-2024", &message));
}

#[test]
fn address_and_subject_keys_are_case_insensitive_substrings() {
    let message = TestMessage::new()
        .header("From", "Alice Example <alice@example.com>")
        .header("To", "bob@example.org")
        .header("Cc", "Carol <carol@example.net>")
        .header("Bcc", "dave@example.com")
        .header("Subject", "Hello World");
    assert!(hit("FROM ALICE", &message));
    assert!(hit("FROM \"example.com>\"", &message));
    assert!(hit("TO Bob@Example", &message));
    assert!(hit("CC carol", &message));
    assert!(hit("BCC DAVE", &message));
    assert!(hit("SUBJECT \"lo wor\"", &message));
    assert!(!hit("FROM bob", &message));
    assert!(!hit("TO alice", &message));
    assert!(!hit("SUBJECT goodbye", &message));
}

#[test]
fn string_keys_match_decoded_non_ascii_text() {
    let message = TestMessage::new().header("Subject", "Grüße aus KÖLN");
    let keys = super::criteria("a SEARCH CHARSET UTF-8 SUBJECT {5+}\r\nköln");
    assert_eq!(crate::search::evaluate(&keys, &message, &CONTEXT), Ok(true));
}

#[test]
fn absent_field_never_matches_even_the_empty_string() {
    let message = TestMessage::new().header("Subject", "x");
    assert!(!hit("FROM \"\"", &message));
    assert!(!hit("HEADER X-Spam \"\"", &message));
    assert!(hit("SUBJECT \"\"", &message));
}

#[test]
fn header_with_empty_string_matches_when_the_field_exists() {
    let message = TestMessage::new().header("List-Id", "");
    assert!(hit("HEADER List-Id \"\"", &message));
    assert!(hit("HEADER list-id \"\"", &message));
    assert!(!hit("HEADER List-Id x", &message));
}

#[test]
fn header_matches_any_instance_of_a_repeated_field() {
    let message = TestMessage::new()
        .header("Received", "from a.example")
        .header("Received", "from b.example");
    assert!(hit("HEADER RECEIVED b.EXAMPLE", &message));
    assert!(!hit("HEADER Received c.example", &message));
}

#[test]
fn body_matches_loaded_body_and_asks_for_it_otherwise() {
    let loaded = TestMessage::new().body(Some("Meeting at NOON"));
    assert!(hit("BODY noon", &loaded));
    assert!(!hit("BODY midnight", &loaded));
    let unloaded = loaded.clone().body(None);
    assert_eq!(search("BODY noon", &unloaded), Err(SearchError::NeedBody));
    assert_eq!(search("BODY \"\"", &unloaded), Ok(true));
}

#[test]
fn text_matches_header_names_values_or_body() {
    let message = TestMessage::new()
        .header("Subject", "quarterly report")
        .body(Some("numbers inside"));
    assert!(hit("TEXT QUARTERLY", &message));
    assert!(hit("TEXT \"subject: quarterly\"", &message));
    assert!(hit("TEXT inside", &message));
    assert!(!hit("TEXT absent", &message));
    let unloaded = message.clone().body(None);
    assert_eq!(search("TEXT quarterly", &unloaded), Ok(true));
    assert_eq!(search("TEXT inside", &unloaded), Err(SearchError::NeedBody));
}

#[test]
fn modseq_matches_equal_or_greater_mod_sequences() {
    let mut message = TestMessage::new();
    message.modseq = 620162338;
    assert!(hit("MODSEQ 620162338", &message));
    assert!(hit("MODSEQ 1", &message));
    assert!(!hit("MODSEQ 620162339", &message));
    assert!(hit("MODSEQ \"/flags/\\\\draft\" all 620162338", &message));
    assert!(!hit("MODSEQ \"/flags/$junk\" priv 620162339", &message));
}
