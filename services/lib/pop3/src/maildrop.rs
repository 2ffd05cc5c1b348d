//! The maildrop of one POP3 session (RFC 1939 sections 5–6): the listing the driver took when it
//! locked the mailbox, plus the deletion marks of the session, which only the UPDATE state
//! applies.
//!
//! Trusts the driver for sizes and order; checks what would break replies: unique-ids must be
//! 1–70 printable characters without spaces (RFC 1939 section 7) and unique, and the listing is
//! bounded by [`MAX_MAILDROP_MESSAGES`] because LIST and UIDL replies grow with it.

use crate::command::MessageNumber;
use std::collections::HashSet;

/// Most messages one maildrop may present (a UIDL reply for it is about 20 MB).
pub const MAX_MAILDROP_MESSAGES: usize = 250_000;

/// Longest unique-id (RFC 1939 section 7).
pub const MAX_UID_LEN: usize = 70;

/// One message as the driver lists it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MaildropEntry {
    /// Octets of the message with CRLF line ends, which is what RETR sends before dot-stuffing.
    pub size: u64,
    /// Stable across sessions (RFC 1939 section 7): the same message keeps it, no other message
    /// ever gets it.
    pub uid: String,
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum MaildropError {
    #[error("maildrop has {count} messages, more than {MAX_MAILDROP_MESSAGES}")]
    TooManyMessages { count: usize },
    #[error("unique-id of message at index {index} is not 1-70 characters 0x21-0x7E")]
    InvalidUid { index: usize },
    #[error("unique-id of message at index {index} is used twice")]
    DuplicateUid { index: usize },
}

/// Why a message number does not name a message the client may use.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LookupError {
    NoSuchMessage,
    AlreadyDeleted,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Maildrop {
    entries: Vec<MaildropEntry>,
    /// Parallel to `entries`: marked by DELE, cleared by RSET.
    deleted: Vec<bool>,
}

impl Maildrop {
    /// Message `n` of the session is `entries[n - 1]`.
    pub fn new(entries: Vec<MaildropEntry>) -> Result<Self, MaildropError> {
        if entries.len() > MAX_MAILDROP_MESSAGES {
            return Err(MaildropError::TooManyMessages {
                count: entries.len(),
            });
        }
        let mut seen = HashSet::with_capacity(entries.len());
        for (index, entry) in entries.iter().enumerate() {
            if !valid_uid(&entry.uid) {
                return Err(MaildropError::InvalidUid { index });
            }
            if !seen.insert(entry.uid.as_str()) {
                return Err(MaildropError::DuplicateUid { index });
            }
        }
        let deleted = vec![false; entries.len()];
        Ok(Self { entries, deleted })
    }

    /// Messages in the listing, deleted ones included.
    pub fn len(&self) -> usize {
        self.entries.len()
    }

    pub fn is_empty(&self) -> bool {
        self.entries.is_empty()
    }

    /// Messages not marked deleted and their total size (the STAT answer).
    pub fn stat(&self) -> (usize, u64) {
        self.live().fold((0, 0), |(count, octets), (_, entry)| {
            (count + 1, octets.saturating_add(entry.size))
        })
    }

    /// The messages not marked deleted, in order, with their numbers.
    pub fn live(&self) -> impl Iterator<Item = (MessageNumber, &MaildropEntry)> {
        self.entries
            .iter()
            .zip(&self.deleted)
            .enumerate()
            .filter(|(_, (_, deleted))| !**deleted)
            .filter_map(|(index, (entry, _))| Some((MessageNumber::from_index(index)?, entry)))
    }

    pub fn get(&self, number: MessageNumber) -> Result<&MaildropEntry, LookupError> {
        let index = number.index();
        match (self.entries.get(index), self.deleted.get(index)) {
            (Some(_), Some(true)) => Err(LookupError::AlreadyDeleted),
            (Some(entry), Some(false)) => Ok(entry),
            _ => Err(LookupError::NoSuchMessage),
        }
    }

    pub fn delete(&mut self, number: MessageNumber) -> Result<(), LookupError> {
        match self.deleted.get_mut(number.index()) {
            Some(true) => Err(LookupError::AlreadyDeleted),
            Some(flag) => {
                *flag = true;
                Ok(())
            }
            None => Err(LookupError::NoSuchMessage),
        }
    }

    /// Unmarks every message (RSET).
    pub fn reset(&mut self) {
        self.deleted.fill(false);
    }

    /// 0-based indices of the messages marked deleted, ascending.
    pub fn deleted_indices(&self) -> Vec<usize> {
        self.deleted
            .iter()
            .enumerate()
            .filter_map(|(index, deleted)| deleted.then_some(index))
            .collect()
    }
}

fn valid_uid(uid: &str) -> bool {
    (1..=MAX_UID_LEN).contains(&uid.len()) && uid.bytes().all(|b| (0x21..=0x7e).contains(&b))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn entry(size: u64, uid: &str) -> MaildropEntry {
        MaildropEntry {
            size,
            uid: uid.into(),
        }
    }

    fn number(n: usize) -> MessageNumber {
        MessageNumber::new(n).expect("non-zero")
    }

    #[test]
    fn deletion_marks_are_excluded_and_reset() {
        let mut maildrop =
            Maildrop::new(vec![entry(10, "a"), entry(20, "b"), entry(30, "c")]).expect("valid");
        assert_eq!(maildrop.stat(), (3, 60));
        assert_eq!(maildrop.delete(number(2)), Ok(()));
        assert_eq!(maildrop.delete(number(2)), Err(LookupError::AlreadyDeleted));
        assert_eq!(maildrop.get(number(2)), Err(LookupError::AlreadyDeleted));
        assert_eq!(maildrop.get(number(4)), Err(LookupError::NoSuchMessage));
        assert_eq!(maildrop.delete(number(4)), Err(LookupError::NoSuchMessage));
        assert_eq!(maildrop.stat(), (2, 40));
        let live: Vec<usize> = maildrop.live().map(|(n, _)| n.get()).collect();
        assert_eq!(live, [1, 3]);
        assert_eq!(maildrop.deleted_indices(), [1]);
        maildrop.reset();
        assert_eq!(maildrop.stat(), (3, 60));
        assert!(maildrop.deleted_indices().is_empty());
    }

    #[test]
    fn unique_ids_are_checked() {
        assert_eq!(
            Maildrop::new(vec![entry(1, "a b")]),
            Err(MaildropError::InvalidUid { index: 0 })
        );
        assert_eq!(
            Maildrop::new(vec![entry(1, "ok"), entry(1, "")]),
            Err(MaildropError::InvalidUid { index: 1 })
        );
        assert_eq!(
            Maildrop::new(vec![entry(1, &"x".repeat(71))]),
            Err(MaildropError::InvalidUid { index: 0 })
        );
        assert_eq!(
            Maildrop::new(vec![entry(1, "x\r\n")]),
            Err(MaildropError::InvalidUid { index: 0 })
        );
        assert_eq!(
            Maildrop::new(vec![entry(1, "u"), entry(2, "u")]),
            Err(MaildropError::DuplicateUid { index: 1 })
        );
        assert!(Maildrop::new(Vec::new()).expect("empty").is_empty());
    }
}
