//! SELECT / EXAMINE (RFC 3501 sections 6.3.1–6.3.2, with CONDSTORE's HIGHESTMODSEQ, RFC 7162),
//! CLOSE and UNSELECT (RFC 3691). The session's view starts from one consistent snapshot of the
//! mailbox.

use super::{Flow, Selected, Session, State};
use imap_codec::imap_types::command::SelectParameter;
use imap_codec::imap_types::core::Tag;
use imap_codec::imap_types::mailbox::Mailbox;
use mc_imap::flags::Flags;
use mc_imap::view::{Entry, View};

/// A view entry from stored values.
pub fn entry(uid: i64, flags: &[String], modseq: i64) -> Entry {
    Entry {
        uid: uid as u32,
        flags: Flags::from_stored(flags),
        modseq: modseq as u64,
    }
}

pub async fn select(
    session: &mut Session,
    tag: &Tag<'_>,
    mailbox: Mailbox<'_>,
    parameters: Vec<SelectParameter>,
    read_only: bool,
) -> Flow {
    // Whatever happens next, the previous mailbox is no longer selected (RFC 3501 6.3.1).
    let account = match std::mem::replace(&mut session.state, State::Logout) {
        State::Authenticated(account) | State::Selected(account, _) => account,
        other => {
            session.state = other;
            return Flow::Continue;
        }
    };
    session.state = State::Authenticated(account.clone());
    if parameters
        .iter()
        .any(|p| matches!(p, SelectParameter::CondStore))
    {
        session.condstore = true;
    }
    let name = super::mailboxes::mailbox_name(&mailbox);
    let info = match session.ctx.mailstore.mailbox(account.id, &name).await {
        Ok(Some(info)) => info,
        Ok(None) => {
            session.tagged_no(tag, Some("NONEXISTENT"), "No such mailbox");
            return Flow::Continue;
        }
        Err(error) => return session.internal_error(tag, &error),
    };
    let snapshot = match session.ctx.mailstore.snapshot(info.id).await {
        Ok(snapshot) => snapshot,
        Err(error) => return session.internal_error(tag, &error),
    };
    let entries: Vec<Entry> = snapshot
        .messages
        .iter()
        .map(|row| entry(row.uid, &row.flags, row.modseq))
        .collect();
    let view = View::new(
        entries,
        snapshot.highest_modseq as u64,
        snapshot.uid_validity as u32,
        snapshot.uid_next as u32,
    );
    let mut lines = String::with_capacity(512);
    lines.push_str("* FLAGS (\\Answered \\Flagged \\Deleted \\Seen \\Draft)\r\n");
    if read_only {
        lines.push_str("* OK [PERMANENTFLAGS ()] Read-only mailbox\r\n");
    } else {
        lines.push_str(
            "* OK [PERMANENTFLAGS (\\Answered \\Flagged \\Deleted \\Seen \\Draft \\*)] Flags permitted\r\n",
        );
    }
    lines.push_str(&format!("* {} EXISTS\r\n* 0 RECENT\r\n", view.len()));
    if let Some(unseen) = view.first_unseen() {
        lines.push_str(&format!("* OK [UNSEEN {unseen}] First unseen\r\n"));
    }
    lines.push_str(&format!(
        "* OK [UIDVALIDITY {}] UIDs valid\r\n* OK [UIDNEXT {}] Predicted next UID\r\n* OK [HIGHESTMODSEQ {}] Highest\r\n",
        view.uid_validity, view.uid_next, view.highest_modseq
    ));
    session.queue(lines.as_bytes());
    session.state = State::Selected(
        account,
        Selected {
            id: info.id,
            name: info.name,
            read_only,
            view,
        },
    );
    let (code, text) = if read_only {
        ("READ-ONLY", "EXAMINE completed")
    } else {
        ("READ-WRITE", "SELECT completed")
    };
    session.tagged_ok(tag, Some(code), text);
    Flow::Continue
}

/// CLOSE (expunges silently when read-write) and UNSELECT (does not).
pub async fn close(session: &mut Session, tag: &Tag<'_>, expunge: bool) -> Flow {
    let State::Selected(account, selected) = std::mem::replace(&mut session.state, State::Logout)
    else {
        return Flow::Continue;
    };
    if expunge && !selected.read_only {
        match session
            .ctx
            .mailstore
            .expunge(account.id, selected.id, None)
            .await
        {
            Ok(gone) => {
                if !gone.is_empty() {
                    session.ctx.changes.publish(selected.id);
                }
            }
            Err(error) => {
                session.state = State::Selected(account, selected);
                return session.internal_error(tag, &error);
            }
        }
    }
    session.state = State::Authenticated(account);
    session.tagged_ok(
        tag,
        None,
        if expunge {
            "CLOSE completed"
        } else {
            "UNSELECT completed"
        },
    );
    Flow::Continue
}
