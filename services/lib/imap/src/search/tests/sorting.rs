//! SORT ordering, criteria decoded from real `SORT` commands by imap-codec.

use imap_codec::CommandCodec;
use imap_codec::decode::Decoder;
use imap_types::command::CommandBody;

use super::TestMessage;
use crate::search::{SortCriterion, SortKey, compare, evaluate};

fn sort_criteria(command: &str) -> Vec<SortCriterion> {
    let line = format!("{command}\r\n");
    let (_, command) = CommandCodec::default().decode(line.as_bytes()).unwrap();
    match command.body {
        CommandBody::Sort { sort_criteria, .. } => sort_criteria.into_inner(),
        other => panic!("not a SORT: {other:?}"),
    }
}

/// Sequence numbers of `messages` in the order `command` asks for.
fn sorted(command: &str, messages: &[TestMessage]) -> Vec<u32> {
    let criteria = sort_criteria(command);
    let mut order: Vec<&TestMessage> = messages.iter().collect();
    order.sort_by(|a, b| compare(*a, *b, &criteria));
    order.iter().map(|message| message.seq).collect()
}

fn numbered(messages: Vec<TestMessage>) -> Vec<TestMessage> {
    messages
        .into_iter()
        .zip(1..)
        .map(|(mut message, seq)| {
            message.seq = seq;
            message
        })
        .collect()
}

#[test]
fn arrival_and_size_sort_with_reverse() {
    let mut big = TestMessage::new().received("2024-01-01T00:00:00Z");
    big.size = 9000;
    let small = TestMessage::new().received("2024-03-01T00:00:00Z");
    let messages = numbered(vec![small, big]);
    assert_eq!(sorted("a SORT (ARRIVAL) UTF-8 ALL", &messages), vec![2, 1]);
    assert_eq!(
        sorted("a SORT (REVERSE ARRIVAL) UTF-8 ALL", &messages),
        vec![1, 2]
    );
    assert_eq!(sorted("a SORT (SIZE) UTF-8 ALL", &messages), vec![1, 2]);
    assert_eq!(
        sorted("a SORT (REVERSE SIZE) UTF-8 ALL", &messages),
        vec![2, 1]
    );
}

#[test]
fn date_sort_compares_instants_and_falls_back_to_internal_date() {
    // 10:00 +0200 is 08:00 UTC: earlier than 09:00 UTC despite the larger wall clock.
    let east = TestMessage::new().header("Date", "Thu, 1 Feb 2024 10:00:00 +0200");
    let utc = TestMessage::new().header("Date", "Thu, 1 Feb 2024 09:00:00 +0000");
    let undated = TestMessage::new().received("2024-02-01T08:30:00Z");
    let messages = numbered(vec![utc, undated, east]);
    assert_eq!(sorted("a SORT (DATE) UTF-8 ALL", &messages), vec![3, 2, 1]);
}

#[test]
fn subject_sort_uses_the_base_subject_case_insensitively() {
    let messages = numbered(vec![
        TestMessage::new().header("Subject", "Re: [list] banana"),
        TestMessage::new().header("Subject", "APPLE"),
        TestMessage::new().header("Subject", "Fwd: cherry (fwd)"),
        TestMessage::new(),
    ]);
    assert_eq!(
        sorted("a SORT (SUBJECT) UTF-8 ALL", &messages),
        vec![4, 2, 1, 3]
    );
}

#[test]
fn address_sorts_use_the_mailbox_of_the_first_address() {
    let messages = numbered(vec![
        TestMessage::new()
            .header("From", "Zed <bob@example.com>")
            .header("To", "x@example.com")
            .header("Cc", "b@example.com"),
        TestMessage::new()
            .header("From", "Anna <Carol@example.com>, aaron@example.com")
            .header("To", "Y@example.com"),
        TestMessage::new()
            .header("From", "alice@zzz.example")
            .header("Cc", "a@example.com"),
    ]);
    assert_eq!(sorted("a SORT (FROM) UTF-8 ALL", &messages), vec![3, 1, 2]);
    assert_eq!(sorted("a SORT (TO) UTF-8 ALL", &messages), vec![3, 1, 2]);
    assert_eq!(sorted("a SORT (CC) UTF-8 ALL", &messages), vec![2, 3, 1]);
    assert_eq!(
        sorted("a SORT (DISPLAYFROM) UTF-8 ALL", &messages),
        vec![3, 2, 1]
    );
}

#[test]
fn ties_keep_sequence_order_even_when_reversed() {
    let messages = numbered(vec![
        TestMessage::new(),
        TestMessage::new(),
        TestMessage::new(),
    ]);
    assert_eq!(
        sorted("a SORT (REVERSE SIZE) UTF-8 ALL", &messages),
        vec![1, 2, 3]
    );
    assert_eq!(
        sorted("a SORT (SUBJECT ARRIVAL) UTF-8 ALL", &messages),
        vec![1, 2, 3]
    );
}

#[test]
fn later_criteria_break_ties_of_earlier_ones() {
    let mut small_late = TestMessage::new()
        .header("Subject", "same")
        .received("2024-05-01T00:00:00Z");
    small_late.size = 1;
    let big_early = TestMessage::new().header("Subject", "Re: same");
    let messages = numbered(vec![big_early, small_late]);
    assert_eq!(
        sorted("a SORT (SUBJECT SIZE) UTF-8 ALL", &messages),
        vec![2, 1]
    );
    assert_eq!(
        sorted("a SORT (SUBJECT REVERSE ARRIVAL) UTF-8 ALL", &messages),
        vec![2, 1]
    );
    let by_hand = [SortCriterion {
        reverse: false,
        key: SortKey::Arrival,
    }];
    assert!(compare(&messages[0], &messages[1], &by_hand).is_lt());
}

#[test]
fn sort_search_criteria_evaluate_like_search() {
    let line = "a UID SORT (DATE) UTF-8 UNSEEN SUBJECT x\r\n";
    let (_, command) = CommandCodec::default().decode(line.as_bytes()).unwrap();
    let CommandBody::Sort {
        search_criteria, ..
    } = command.body
    else {
        panic!("not a SORT");
    };
    let message = TestMessage::new().header("Subject", "xyz");
    let verdict = evaluate(search_criteria.as_ref(), &message, &super::CONTEXT);
    assert_eq!(verdict, Ok(true));
}
