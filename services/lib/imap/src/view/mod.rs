//! One session's view of its selected mailbox (RFC 3501 sections 2.3.1, 7.4.1; RFC 7162): the
//! message sequence numbers it has told the client about, each message's UID, flags and MODSEQ,
//! and how a change read from the store becomes the untagged EXPUNGE / EXISTS / FETCH responses
//! that keep the client's numbering in step.
//!
//! Sequence numbers belong to the session: another session's expunge changes them here only when
//! this session reports it, at a moment the protocol allows. Changes are applied from
//! `(uid, flags, modseq)` rows and expunged UIDs, whoever made them, so the view does not care
//! whether a change came from this session, another replica or the delivery worker.

pub use crate::flags::Flags;

/// A message as the session knows it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Entry {
    pub uid: u32,
    pub flags: Flags,
    pub modseq: u64,
}

/// An untagged response to send, in order.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Update {
    /// `* n EXPUNGE` (numbers already adjusted for the expunges sent before it).
    Expunge(u32),
    /// `* n EXISTS`
    Exists(u32),
    /// `* n FETCH (UID u FLAGS (...) [MODSEQ (m)])` for a message whose flags changed.
    Flags { seq: u32, entry: Entry },
}

#[derive(Debug, Clone)]
pub struct View {
    entries: Vec<Entry>,
    /// The highest MODSEQ whose changes are reflected here.
    pub highest_modseq: u64,
    pub uid_validity: u32,
    pub uid_next: u32,
}

impl View {
    /// A view from a snapshot; `entries` must be in ascending UID order.
    pub fn new(entries: Vec<Entry>, highest_modseq: u64, uid_validity: u32, uid_next: u32) -> Self {
        Self {
            entries,
            highest_modseq,
            uid_validity,
            uid_next,
        }
    }

    pub fn len(&self) -> u32 {
        self.entries.len() as u32
    }

    pub fn is_empty(&self) -> bool {
        self.entries.is_empty()
    }

    pub fn entries(&self) -> &[Entry] {
        &self.entries
    }

    /// The message at sequence number `seq` (1-based).
    pub fn get(&self, seq: u32) -> Option<&Entry> {
        seq.checked_sub(1)
            .and_then(|i| self.entries.get(i as usize))
    }

    /// The sequence number of `uid`, if the session knows it.
    pub fn seq_of(&self, uid: u32) -> Option<u32> {
        self.entries
            .binary_search_by_key(&uid, |entry| entry.uid)
            .ok()
            .map(|i| i as u32 + 1)
    }

    /// The largest UID known (0 when empty).
    pub fn max_uid(&self) -> u32 {
        self.entries.last().map_or(0, |entry| entry.uid)
    }

    /// The first message without `\Seen`, for `[UNSEEN n]`.
    pub fn first_unseen(&self) -> Option<u32> {
        self.entries
            .iter()
            .position(|entry| !entry.flags.is_seen())
            .map(|i| i as u32 + 1)
    }

    /// Sets a message's flags after this session's own STORE (its response already told the
    /// client), so the next sync does not report it again.
    pub fn set_flags(&mut self, uid: u32, flags: Flags, modseq: u64) {
        if let Ok(i) = self.entries.binary_search_by_key(&uid, |entry| entry.uid) {
            self.entries[i].flags = flags;
            self.entries[i].modseq = modseq;
        }
    }

    /// Removes expunged UIDs and returns the EXPUNGE responses, highest number first (each
    /// then leaves the numbers before it unchanged, so they need no adjusting).
    pub fn expunge(&mut self, uids: &[u32]) -> Vec<Update> {
        let mut seqs: Vec<u32> = uids.iter().filter_map(|uid| self.seq_of(*uid)).collect();
        seqs.sort_unstable();
        seqs.dedup();
        let mut updates = Vec::with_capacity(seqs.len());
        for seq in seqs.into_iter().rev() {
            self.entries.remove(seq as usize - 1);
            updates.push(Update::Expunge(seq));
        }
        updates
    }

    /// Applies changes read from the store after `highest_modseq`: `changed` rows (ascending
    /// UID) and `expunged` UIDs. With `allow_expunge` false (during FETCH, STORE and SEARCH,
    /// RFC 3501 section 7.4.1) nothing is applied at all, so numbers cannot shift under the
    /// client; the caller syncs again later.
    pub fn apply(
        &mut self,
        highest_modseq: u64,
        changed: Vec<Entry>,
        expunged: &[u32],
        uid_next: u32,
    ) -> Vec<Update> {
        let mut updates = self.expunge(expunged);
        let max_before = self.max_uid();
        let count_before = self.len();
        for entry in changed {
            if entry.uid > self.max_uid() {
                if expunged.contains(&entry.uid) {
                    continue;
                }
                self.entries.push(entry);
                continue;
            }
            if let Ok(i) = self.entries.binary_search_by_key(&entry.uid, |e| e.uid) {
                let known = &mut self.entries[i];
                known.modseq = entry.modseq;
                if known.flags != entry.flags {
                    known.flags = entry.flags.clone();
                    updates.push(Update::Flags {
                        seq: i as u32 + 1,
                        entry,
                    });
                }
            }
        }
        if self.len() != count_before || self.max_uid() != max_before {
            updates.push(Update::Exists(self.len()));
        }
        self.highest_modseq = self.highest_modseq.max(highest_modseq);
        self.uid_next = self.uid_next.max(uid_next).max(self.max_uid() + 1);
        updates
    }

    /// Resolves a sequence set to `(seq, uid)` pairs in ascending order. `by_uid` reads the set
    /// as UIDs (RFC 3501 section 6.4.8: UIDs not present are ignored; `*` is the largest UID,
    /// and a range `n:*` always includes the last message).
    pub fn resolve(
        &self,
        set: &imap_codec::imap_types::sequence::SequenceSet,
        by_uid: bool,
    ) -> Vec<(u32, u32)> {
        use imap_codec::imap_types::sequence::{SeqOrUid, Sequence};
        let Some(last) = self.entries.last() else {
            return Vec::new();
        };
        let largest = if by_uid { last.uid } else { self.len() };
        let value = |s: &SeqOrUid| match s {
            SeqOrUid::Value(v) => v.get(),
            SeqOrUid::Asterisk => largest,
        };
        let mut wanted: Vec<(u32, u32)> = Vec::new();
        for sequence in set.0.as_ref() {
            let (low, high) = match sequence {
                Sequence::Single(s) => (value(s), value(s)),
                Sequence::Range(a, b) => {
                    let (a, b) = (value(a), value(b));
                    (a.min(b), a.max(b))
                }
            };
            wanted.push((low, high));
        }
        let mut out = Vec::new();
        if by_uid {
            for (low, high) in wanted {
                let start = self.entries.partition_point(|e| e.uid < low);
                let end = self.entries.partition_point(|e| e.uid <= high);
                for (i, entry) in self.entries[start..end].iter().enumerate() {
                    out.push(((start + i) as u32 + 1, entry.uid));
                }
            }
        } else {
            for (low, high) in wanted {
                let high = high.min(self.len());
                for seq in low.max(1)..=high {
                    out.push((seq, self.entries[seq as usize - 1].uid));
                }
            }
        }
        out.sort_unstable();
        out.dedup();
        out
    }

    /// Is every number of a sequence-number set (not UIDs) within the mailbox? RFC 3501 makes
    /// a number past the end a client error (`BAD`), where UID sets just skip absent UIDs.
    pub fn in_range(&self, set: &imap_codec::imap_types::sequence::SequenceSet) -> bool {
        use imap_codec::imap_types::sequence::{SeqOrUid, Sequence};
        let ok = |s: &SeqOrUid| match s {
            SeqOrUid::Value(v) => v.get() <= self.len(),
            SeqOrUid::Asterisk => !self.is_empty(),
        };
        set.0.as_ref().iter().all(|sequence| match sequence {
            Sequence::Single(s) => ok(s),
            Sequence::Range(a, b) => ok(a) && ok(b),
        })
    }
}

#[cfg(test)]
mod tests;
