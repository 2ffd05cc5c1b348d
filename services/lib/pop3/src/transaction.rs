//! The TRANSACTION and UPDATE states (RFC 1939 sections 5–7): STAT, LIST, UIDL, TOP, RETR, DELE,
//! RSET, NOOP, CAPA and QUIT over the session's [`Maildrop`], and the driver's answer to the
//! commit.
//!
//! Deletions are only marks until QUIT; the driver applies them and only then is `+OK` sent
//! (acknowledge after commit). A session that ends any other way deletes nothing. Messages
//! marked deleted are left out of STAT, LIST and UIDL, and naming one is an error.

use crate::command::{Command, MessageNumber};
use crate::maildrop::Maildrop;
use crate::replies;
use crate::reply::Reply;
use crate::session::{Action, Session, State, Step, close, reply};

impl Session {
    pub(crate) fn transaction(
        &mut self,
        user: String,
        mut maildrop: Maildrop,
        command: Command,
    ) -> Step {
        let action = match command {
            Command::Stat => {
                let (messages, octets) = maildrop.stat();
                replies::stat(messages, octets)
            }
            Command::List(None) => scan_listing(&maildrop),
            Command::List(Some(number)) => match maildrop.get(number) {
                Ok(entry) => replies::scan_line(number, entry.size),
                Err(error) => replies::lookup_error(number, error),
            },
            Command::Uidl(None) => replies::uid_listing(
                maildrop
                    .live()
                    .map(|(number, entry)| format!("{number} {}", entry.uid))
                    .collect(),
            ),
            Command::Uidl(Some(number)) => match maildrop.get(number) {
                Ok(entry) => replies::uid_line(number, &entry.uid),
                Err(error) => replies::lookup_error(number, error),
            },
            Command::Top { message, lines } => {
                return send(user, maildrop, message, Some(lines));
            }
            Command::Retr(message) => return send(user, maildrop, message, None),
            Command::Dele(number) => match maildrop.delete(number) {
                Ok(()) => replies::deleted(number),
                Err(error) => replies::lookup_error(number, error),
            },
            Command::Rset => {
                maildrop.reset();
                let (messages, octets) = maildrop.stat();
                replies::reset(messages, octets)
            }
            Command::Noop => replies::ok(),
            Command::Capa => self.capabilities(),
            Command::Quit => {
                let deleted = maildrop.deleted_indices();
                let (remaining, _) = maildrop.stat();
                return (
                    State::Update { user, remaining },
                    Action::Commit { deleted },
                );
            }
            Command::User(_) | Command::Pass(_) | Command::Auth { .. } | Command::Stls => {
                return self.refuse(
                    State::Transaction { user, maildrop },
                    replies::wrong_state(),
                );
            }
        };
        reply(State::Transaction { user, maildrop }, action)
    }

    /// The deletions of [`Action::Commit`] were applied (`ok`) or not all of them were; the
    /// lock is released either way. The session is over: send the reply and close.
    pub fn commit_done(&mut self, ok: bool) -> Action {
        let hostname = self.config.hostname.clone();
        self.transition(|_, state| match state {
            State::Update { remaining, .. } if ok => {
                close(replies::signing_off_after_update(&hostname, remaining))
            }
            State::Update { .. } => close(replies::update_failed()),
            _ => close(replies::out_of_sequence()),
        })
    }

    /// The reply when the message of [`Action::SendMessage`] could not be read before anything
    /// of it was sent. The session goes on.
    pub fn retrieval_failed(&self) -> Reply {
        replies::message_unavailable()
    }
}

fn scan_listing(maildrop: &Maildrop) -> Reply {
    let (messages, octets) = maildrop.stat();
    let lines = maildrop
        .live()
        .map(|(number, entry)| format!("{number} {}", entry.size))
        .collect();
    replies::scan_listing(messages, octets, lines)
}

fn send(user: String, maildrop: Maildrop, message: MessageNumber, top: Option<u64>) -> Step {
    let action = match maildrop.get(message) {
        Ok(entry) => Action::SendMessage {
            index: message.index(),
            top_lines: top,
            reply: match top {
                Some(_) => replies::top(),
                None => replies::retr(entry.size),
            },
        },
        Err(error) => Action::Reply(replies::lookup_error(message, error)),
    };
    (State::Transaction { user, maildrop }, action)
}
