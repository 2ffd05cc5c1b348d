//! Mailbox commands of the authenticated state (RFC 3501 sections 6.3.3–6.3.10): CREATE,
//! DELETE, RENAME, SUBSCRIBE, UNSUBSCRIBE, LIST, LSUB and STATUS, with CHILDREN (RFC 3348) and
//! SPECIAL-USE (RFC 6154) attributes in LIST.

use super::{Flow, Session, State};
use imap_codec::imap_types::core::Tag;
use imap_codec::imap_types::mailbox::{ListMailbox, Mailbox};
use imap_codec::imap_types::status::StatusDataItemName;
use mc_mailstore::MailboxError;
use mc_mailstore::mailboxes::{DELIMITER, MailboxInfo, canonical_name};

/// The stored form of a mailbox name from a command.
pub fn mailbox_name(mailbox: &Mailbox<'_>) -> String {
    match mailbox {
        Mailbox::Inbox => mc_mailstore::INBOX.to_string(),
        Mailbox::Other(other) => canonical_name(&String::from_utf8_lossy(other.inner().as_ref())),
    }
}

/// A name as an IMAP string: quoted when it can be, a literal otherwise.
pub fn quoted(name: &str) -> String {
    if name.bytes().all(|b| (0x20..0x7f).contains(&b)) {
        format!("\"{}\"", name.replace('\\', "\\\\").replace('"', "\\\""))
    } else {
        format!("{{{}}}\r\n{name}", name.len())
    }
}

fn answer_error(session: &mut Session, tag: &Tag<'_>, error: MailboxError) -> Flow {
    match error {
        MailboxError::Exists => {
            session.tagged_no(tag, Some("ALREADYEXISTS"), "Mailbox already exists");
        }
        MailboxError::NotFound => session.tagged_no(tag, Some("NONEXISTENT"), "No such mailbox"),
        MailboxError::NotAllowed => {
            session.tagged_no(tag, Some("CANNOT"), "That is not allowed for this mailbox");
        }
        MailboxError::Database(error) => return session.internal_error(tag, &error),
    }
    Flow::Continue
}

fn account_id(session: &Session) -> i64 {
    session.state.account().map_or(0, |account| account.id)
}

pub async fn create(session: &mut Session, tag: &Tag<'_>, mailbox: Mailbox<'_>) -> Flow {
    let name = mailbox_name(&mailbox);
    if name == mc_mailstore::INBOX {
        return answer_error(session, tag, MailboxError::Exists);
    }
    match session
        .ctx
        .mailstore
        .create_mailbox(account_id(session), &name)
        .await
    {
        Ok(()) => {
            session.tagged_ok(tag, None, "CREATE completed");
            Flow::Continue
        }
        Err(error) => answer_error(session, tag, error),
    }
}

pub async fn delete(session: &mut Session, tag: &Tag<'_>, mailbox: Mailbox<'_>) -> Flow {
    let name = mailbox_name(&mailbox);
    let id = account_id(session);
    let target = session.ctx.mailstore.mailbox(id, &name).await;
    match session.ctx.mailstore.delete_mailbox(id, &name).await {
        Ok(()) => {
            if let Ok(Some(info)) = target {
                session.ctx.changes.publish(info.id);
            }
            session.tagged_ok(tag, None, "DELETE completed");
            Flow::Continue
        }
        Err(error) => answer_error(session, tag, error),
    }
}

pub async fn rename(
    session: &mut Session,
    tag: &Tag<'_>,
    from: Mailbox<'_>,
    to: Mailbox<'_>,
) -> Flow {
    let (from, to) = (mailbox_name(&from), mailbox_name(&to));
    let id = account_id(session);
    let source = session.ctx.mailstore.mailbox(id, &from).await;
    match session.ctx.mailstore.rename_mailbox(id, &from, &to).await {
        Ok(()) => {
            if let Ok(Some(info)) = source {
                session.ctx.changes.publish(info.id);
            }
            session.tagged_ok(tag, None, "RENAME completed");
            Flow::Continue
        }
        Err(error) => answer_error(session, tag, error),
    }
}

pub async fn subscribe(
    session: &mut Session,
    tag: &Tag<'_>,
    mailbox: Mailbox<'_>,
    subscribed: bool,
) -> Flow {
    let name = mailbox_name(&mailbox);
    let result = session
        .ctx
        .mailstore
        .set_subscribed(account_id(session), &name, subscribed)
        .await;
    match result {
        Ok(()) => {
            session.tagged_ok(tag, None, "Subscription changed");
            Flow::Continue
        }
        // Unsubscribing from a name that does not exist is harmless.
        Err(MailboxError::NotFound) if !subscribed => {
            session.tagged_ok(tag, None, "Subscription changed");
            Flow::Continue
        }
        Err(error) => answer_error(session, tag, error),
    }
}

/// Does `name` match a LIST pattern (`*` anything, `%` anything but the delimiter)? Dynamic
/// programming over (pattern, name) positions: linear in their product whatever the pattern,
/// so a pattern full of wildcards costs no more than any other.
pub fn matches_pattern(pattern: &[u8], name: &[u8]) -> bool {
    // reachable[j]: the pattern prefix read so far can match name[..j].
    let mut reachable = vec![false; name.len() + 1];
    reachable[0] = true;
    for p in pattern {
        let mut next = vec![false; name.len() + 1];
        match p {
            b'*' | b'%' => {
                let mut open = false;
                for j in 0..=name.len() {
                    if reachable[j] {
                        open = true;
                    } else if *p == b'%' && j > 0 && name[j - 1] == DELIMITER as u8 {
                        open = false;
                    }
                    next[j] = open;
                }
            }
            c => {
                for j in 1..=name.len() {
                    next[j] = reachable[j - 1] && name[j - 1] == *c;
                }
            }
        }
        reachable = next;
    }
    reachable[name.len()]
}

pub async fn list(
    session: &mut Session,
    tag: &Tag<'_>,
    reference: Mailbox<'_>,
    pattern: ListMailbox<'_>,
    lsub: bool,
) -> Flow {
    let command = if lsub { "LSUB" } else { "LIST" };
    let pattern: &[u8] = match &pattern {
        ListMailbox::Token(token) => token.as_ref(),
        ListMailbox::String(string) => string.as_ref(),
    };
    if pattern.is_empty() && !lsub {
        session.queue(b"* LIST (\\Noselect) \"/\" \"\"\r\n");
        session.tagged_ok(tag, None, "LIST completed");
        return Flow::Continue;
    }
    let reference = match &reference {
        Mailbox::Inbox => "INBOX".to_string(),
        Mailbox::Other(other) => String::from_utf8_lossy(other.inner().as_ref()).into_owned(),
    };
    let mut full = format!("{reference}{}", String::from_utf8_lossy(pattern));
    // INBOX matches in any case (RFC 3501 section 6.3.8).
    if full
        .get(..5)
        .is_some_and(|head| head.eq_ignore_ascii_case("INBOX"))
    {
        full.replace_range(..5, "INBOX");
    }
    let boxes = match session.ctx.mailstore.mailboxes(account_id(session)).await {
        Ok(boxes) => boxes,
        Err(error) => return answer_error(session, tag, error),
    };
    for info in &boxes {
        if lsub && !info.subscribed {
            continue;
        }
        if !matches_pattern(full.as_bytes(), info.name.as_bytes()) {
            continue;
        }
        let attributes = attributes(info, &boxes);
        let line = format!(
            "* {command} ({}) \"/\" {}\r\n",
            attributes.join(" "),
            quoted(&info.name)
        );
        session.queue(line.as_bytes());
    }
    session.tagged_ok(tag, None, &format!("{command} completed"));
    Flow::Continue
}

fn attributes(info: &MailboxInfo, all: &[MailboxInfo]) -> Vec<String> {
    let prefix = format!("{}{DELIMITER}", info.name);
    let children = all.iter().any(|other| other.name.starts_with(&prefix));
    let mut out = vec![if children {
        "\\HasChildren".to_string()
    } else {
        "\\HasNoChildren".to_string()
    }];
    if let Some(special) = &info.special_use {
        out.push(special.clone());
    }
    out
}

pub async fn status(
    session: &mut Session,
    tag: &Tag<'_>,
    mailbox: Mailbox<'_>,
    items: &[StatusDataItemName],
) -> Flow {
    let name = mailbox_name(&mailbox);
    let info = match session
        .ctx
        .mailstore
        .mailbox(account_id(session), &name)
        .await
    {
        Ok(Some(info)) => info,
        Ok(None) => return answer_error(session, tag, MailboxError::NotFound),
        Err(error) => return answer_error(session, tag, error),
    };
    let counts = match session.ctx.mailstore.counts(info.id).await {
        Ok(counts) => counts,
        Err(error) => return answer_error(session, tag, error),
    };
    let mut parts = Vec::new();
    for item in items {
        let part = match item {
            StatusDataItemName::Messages => format!("MESSAGES {}", counts.messages),
            StatusDataItemName::Recent => "RECENT 0".to_string(),
            StatusDataItemName::UidNext => format!("UIDNEXT {}", info.uid_next),
            StatusDataItemName::UidValidity => format!("UIDVALIDITY {}", info.uid_validity),
            StatusDataItemName::Unseen => format!("UNSEEN {}", counts.unseen),
            StatusDataItemName::HighestModSeq => {
                session.condstore = true;
                format!("HIGHESTMODSEQ {}", info.highest_modseq)
            }
            _ => continue,
        };
        parts.push(part);
    }
    let line = format!("* STATUS {} ({})\r\n", quoted(&info.name), parts.join(" "));
    session.queue(line.as_bytes());
    // STATUS on the selected mailbox: also a moment to report its changes.
    if matches!(&session.state, State::Selected(_, selected) if selected.id == info.id)
        && let Err(error) = session.sync().await
    {
        return session.internal_error(tag, &error);
    }
    session.tagged_ok(tag, None, "STATUS completed");
    Flow::Continue
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn list_patterns() {
        assert!(matches_pattern(b"*", b"a/b/c"));
        assert!(matches_pattern(b"%", b"INBOX"));
        assert!(!matches_pattern(b"%", b"a/b"));
        assert!(matches_pattern(b"a/%", b"a/b"));
        assert!(!matches_pattern(b"a/%", b"a/b/c"));
        assert!(matches_pattern(b"a/*", b"a/b/c"));
        assert!(matches_pattern(b"%/%", b"a/b"));
        assert!(matches_pattern(b"S%t", b"Sent"));
        assert!(!matches_pattern(b"Sent", b"Sent/x"));
        assert!(matches_pattern(b"", b""));
        assert!(matches_pattern(b"*%*%*", b"x"));
    }

    #[test]
    fn names_are_quoted_or_literal() {
        assert_eq!(quoted("a \"b\""), "\"a \\\"b\\\"\"");
        assert_eq!(quoted("é"), "{2}\r\né");
    }
}
