//! Real SEARCH command lines, decoded by imap-codec and run over a small mailbox.

use super::{TestMessage, criteria};
use crate::search::{SearchContext, SearchKey, evaluate, needs_body, uses_modseq};

/// Four messages: seq n has UID 10 * n.
fn mailbox() -> Vec<TestMessage> {
    let mut alice = TestMessage::new()
        .header("From", "Alice <alice@example.com>")
        .header("Subject", "hello world")
        .received("2024-02-03T09:00:00+01:00")
        .body(Some("see you at the meeting"));
    alice.recent = true;
    let bob = TestMessage::new()
        .flag("\\Seen")
        .header("From", "bob@example.org")
        .header("Subject", "Re: Hello World")
        .received("2024-01-15T09:00:00Z")
        .body(Some("sure, MEETING confirmed"));
    let carol = TestMessage::new()
        .flag("\\Flagged")
        .flag("$Forwarded")
        .header("From", "carol@example.net")
        .header("Subject", "invoice")
        .received("2024-02-10T09:00:00Z")
        .body(Some("please pay"));
    let mut dave = TestMessage::new()
        .flag("\\Seen")
        .flag("\\Deleted")
        .header("From", "dave@example.com")
        .header("Subject", "hello again")
        .received("2024-02-01T00:30:00Z");
    dave.size = 50_000;
    dave.modseq = 900;
    let mut messages = vec![alice, bob, carol, dave];
    for (index, message) in messages.iter_mut().enumerate() {
        let seq = u32::try_from(index + 1).unwrap();
        message.seq = seq;
        message.uid = seq * 10;
    }
    messages
}

const CONTEXT: SearchContext = SearchContext {
    max_seq: 4,
    max_uid: 40,
};

/// Sequence numbers of the messages matching `command`.
fn run(command: &str) -> Vec<u32> {
    let keys = criteria(command);
    mailbox()
        .iter()
        .filter(|message| evaluate(&keys, *message, &CONTEXT).unwrap())
        .map(|message| message.seq)
        .collect()
}

#[test]
fn or_from_subject_unseen_since() {
    assert_eq!(
        run("a SEARCH OR FROM alice SUBJECT \"hello world\" UNSEEN SINCE 1-Feb-2024"),
        vec![1]
    );
}

#[test]
fn subject_substring_over_the_mailbox() {
    assert_eq!(run("a SEARCH SUBJECT hello"), vec![1, 2, 4]);
    assert_eq!(run("a SEARCH NOT SUBJECT hello"), vec![3]);
}

#[test]
fn uid_search_with_reversed_range_and_star() {
    assert_eq!(run("a UID SEARCH UID 35:15"), vec![2, 3]);
    assert_eq!(run("a UID SEARCH UID *"), vec![4]);
    assert_eq!(run("a UID SEARCH UID 400:*"), vec![4]);
    assert_eq!(run("a SEARCH 2:* UNDELETED"), vec![2, 3]);
}

#[test]
fn date_range_and_size() {
    assert_eq!(
        run("a SEARCH SINCE 1-Feb-2024 BEFORE 10-Feb-2024"),
        vec![1, 4]
    );
    assert_eq!(run("a SEARCH ON 3-Feb-2024"), vec![1]);
    assert_eq!(run("a SEARCH LARGER 10000"), vec![4]);
}

#[test]
fn flags_keywords_and_recency() {
    assert_eq!(run("a SEARCH NEW"), vec![1]);
    assert_eq!(run("a SEARCH OLD SEEN"), vec![2, 4]);
    assert_eq!(run("a SEARCH KEYWORD $forwarded"), vec![3]);
    assert_eq!(run("a SEARCH OR FLAGGED DELETED"), vec![3, 4]);
    assert_eq!(run("a SEARCH charset utf-8 (unseen unflagged)"), vec![1]);
}

#[test]
fn body_search_with_driver_retry_loop() {
    let keys = criteria("a SEARCH OR SEEN BODY meeting");
    assert!(keys.iter().any(needs_body));
    let mut loads = 0;
    let mut found = Vec::new();
    for message in mailbox() {
        let lazy = message.clone().body(None);
        let verdict = match evaluate(&keys, &lazy, &CONTEXT) {
            Err(crate::search::SearchError::NeedBody) => {
                loads += 1;
                evaluate(&keys, &message, &CONTEXT).unwrap()
            }
            other => other.unwrap(),
        };
        if verdict {
            found.push(message.seq);
        }
    }
    assert_eq!(found, vec![1, 2, 4]);
    // Seen messages 2 and 4 were decided from their flags.
    assert_eq!(loads, 2);
}

#[test]
fn modseq_search_is_flagged_for_the_modseq_response() {
    let keys = criteria("a SEARCH MODSEQ 500");
    assert!(keys.iter().any(uses_modseq));
    assert_eq!(run("a SEARCH MODSEQ 500"), vec![4]);
    assert!(!criteria("a SEARCH ALL").iter().any(uses_modseq));
}

#[test]
fn decoded_criteria_keep_their_structure() {
    let keys = criteria("a SEARCH (1:2 NOT 3) OR ALL SEEN");
    assert!(matches!(
        keys.as_slice(),
        [SearchKey::And(_), SearchKey::Or(..)]
    ));
}
