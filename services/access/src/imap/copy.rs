//! COPY / UID COPY (RFC 3501 section 6.4.7, RFC 4315 COPYUID) and MOVE / UID MOVE (RFC 6851):
//! one transaction copies (and for MOVE expunges) the messages; bodies are shared, not copied.

use super::{Flow, Session, State};
use imap_codec::imap_types::core::Tag;
use imap_codec::imap_types::mailbox::Mailbox;
use imap_codec::imap_types::sequence::SequenceSet;
use mc_mailstore::StoreError;

/// `1:3,5` from ascending numbers.
pub fn compact_set(numbers: &[i64]) -> String {
    let mut parts: Vec<String> = Vec::new();
    let mut iter = numbers.iter().copied().peekable();
    while let Some(start) = iter.next() {
        let mut end = start;
        while iter.peek() == Some(&(end + 1)) {
            end += 1;
            iter.next();
        }
        parts.push(if start == end {
            start.to_string()
        } else {
            format!("{start}:{end}")
        });
    }
    parts.join(",")
}

pub async fn copy(
    session: &mut Session,
    tag: &Tag<'_>,
    set: SequenceSet,
    mailbox: Mailbox<'_>,
    by_uid: bool,
    move_: bool,
) -> Flow {
    let State::Selected(account, selected) = &session.state else {
        return Flow::Continue;
    };
    if move_ && selected.read_only {
        session.tagged_no(tag, Some("READ-ONLY"), "Mailbox is read-only");
        return Flow::Continue;
    }
    if !by_uid && !selected.view.in_range(&set) {
        session.tagged_bad(tag, "Invalid message sequence number");
        return session.bad_command();
    }
    let uids: Vec<i64> = selected
        .view
        .resolve(&set, by_uid)
        .into_iter()
        .map(|(_, uid)| i64::from(uid))
        .collect();
    let (account_id, source) = (account.id, selected.id);
    let name = super::mailboxes::mailbox_name(&mailbox);
    let target = match session.ctx.mailstore.mailbox(account_id, &name).await {
        Ok(Some(info)) => info,
        Ok(None) => {
            session.tagged_no(tag, Some("TRYCREATE"), "No such mailbox");
            return Flow::Continue;
        }
        Err(error) => return session.internal_error(tag, &error),
    };
    let done = if move_ {
        "MOVE completed"
    } else {
        "COPY completed"
    };
    if uids.is_empty() {
        session.tagged_ok(tag, None, done);
        return Flow::Continue;
    }
    let copied = match session
        .ctx
        .mailstore
        .copy(account_id, source, &uids, target.id, move_)
        .await
    {
        Ok(copied) => copied,
        Err(StoreError::OverQuota) => {
            session.tagged_no(tag, Some("OVERQUOTA"), "Quota exceeded");
            return Flow::Continue;
        }
        Err(error) => return session.internal_error(tag, &error),
    };
    session.ctx.changes.publish(target.id);
    let sources: Vec<i64> = copied.uids.iter().map(|(from, _)| *from).collect();
    let news: Vec<i64> = copied.uids.iter().map(|(_, to)| *to).collect();
    let code = (!copied.uids.is_empty()).then(|| {
        format!(
            "COPYUID {} {} {}",
            copied.uid_validity,
            compact_set(&sources),
            compact_set(&news)
        )
    });
    if move_ {
        session.ctx.changes.publish(source);
        if let Some(code) = &code {
            session.queue(format!("* OK [{code}] Moved\r\n").as_bytes());
        }
        let gone: Vec<u32> = sources.iter().map(|uid| *uid as u32).collect();
        let updates = match &mut session.state {
            State::Selected(_, selected) => selected.view.expunge(&gone),
            _ => Vec::new(),
        };
        let condstore = session.condstore;
        for update in updates {
            session.queue_update(update, condstore);
        }
        session.tagged_ok(tag, None, done);
    } else {
        session.tagged_ok(tag, code.as_deref(), done);
    }
    if (by_uid || move_)
        && let Err(error) = session.sync().await
    {
        return session.internal_error(tag, &error);
    }
    Flow::Continue
}

#[cfg(test)]
mod tests {
    #[test]
    fn sets_are_compacted() {
        assert_eq!(super::compact_set(&[1, 2, 3, 5, 7, 8]), "1:3,5,7:8");
        assert_eq!(super::compact_set(&[4]), "4");
    }
}
