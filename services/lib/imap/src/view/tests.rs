use super::*;
use imap_codec::imap_types::sequence::SequenceSet;

fn entry(uid: u32, flags: &[&str], modseq: u64) -> Entry {
    Entry {
        uid,
        flags: Flags::from_stored(flags),
        modseq,
    }
}

fn view(uids: &[u32]) -> View {
    let entries = uids.iter().map(|uid| entry(*uid, &[], 1)).collect();
    View::new(entries, 1, 7, uids.last().map_or(1, |u| u + 1))
}

fn set(text: &str) -> SequenceSet {
    SequenceSet::try_from(text).expect("valid set")
}

#[test]
fn expunges_are_reported_highest_first_and_renumber() {
    let mut view = view(&[10, 20, 30, 40]);
    let updates = view.expunge(&[20, 40, 99]);
    assert_eq!(updates, vec![Update::Expunge(4), Update::Expunge(2)]);
    assert_eq!(view.seq_of(30), Some(2));
    assert_eq!(view.len(), 2);
}

#[test]
fn new_messages_become_one_exists() {
    let mut view = view(&[1, 2]);
    let updates = view.apply(5, vec![entry(3, &[], 4), entry(4, &[], 5)], &[], 5);
    assert_eq!(updates, vec![Update::Exists(4)]);
    assert_eq!(view.highest_modseq, 5);
    assert_eq!(view.uid_next, 5);
}

#[test]
fn flag_changes_are_reported_once() {
    let mut view = view(&[1, 2, 3]);
    let updates = view.apply(3, vec![entry(2, &["\\Seen"], 3)], &[], 4);
    assert_eq!(
        updates,
        vec![Update::Flags {
            seq: 2,
            entry: entry(2, &["\\Seen"], 3)
        }]
    );
    // The same row seen again (our own change echoed) is not reported twice.
    assert!(
        view.apply(3, vec![entry(2, &["\\Seen"], 3)], &[], 4)
            .is_empty()
    );
}

#[test]
fn expunge_then_exists_in_one_sync() {
    let mut view = view(&[1, 2, 3]);
    let updates = view.apply(9, vec![entry(4, &[], 9)], &[1], 5);
    assert_eq!(updates, vec![Update::Expunge(1), Update::Exists(3)]);
}

#[test]
fn a_message_added_and_expunged_meanwhile_is_never_shown() {
    let mut view = view(&[1]);
    let updates = view.apply(9, vec![entry(2, &[], 8)], &[2], 3);
    assert!(updates.is_empty());
}

#[test]
fn sequence_sets_resolve_with_star_and_reversed_ranges() {
    let view = view(&[5, 7, 9, 11]);
    assert_eq!(
        view.resolve(&set("2:*"), false),
        vec![(2, 7), (3, 9), (4, 11)]
    );
    assert_eq!(
        view.resolve(&set("3:1"), false),
        vec![(1, 5), (2, 7), (3, 9)]
    );
    assert_eq!(view.resolve(&set("1,1,2"), false), vec![(1, 5), (2, 7)]);
    assert!(view.in_range(&set("1:4")));
    assert!(!view.in_range(&set("5")));
}

#[test]
fn uid_sets_skip_absent_uids_and_star_is_the_last() {
    let view = view(&[5, 7, 9, 11]);
    assert_eq!(view.resolve(&set("6:9"), true), vec![(2, 7), (3, 9)]);
    assert_eq!(view.resolve(&set("100:*"), true), vec![(4, 11)]);
    assert_eq!(view.resolve(&set("1:4"), true), vec![]);
    assert!(
        super::View::new(Vec::new(), 1, 1, 1)
            .resolve(&set("1:*"), true)
            .is_empty()
    );
}
