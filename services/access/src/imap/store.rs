//! STORE / UID STORE (RFC 3501 section 6.4.6, RFC 7162 UNCHANGEDSINCE) and EXPUNGE / UID
//! EXPUNGE (RFC 3501 section 6.4.3, RFC 4315). The OK comes after PostgreSQL committed; then
//! every other session on every replica is told.

use super::{Flow, Session, State};
use imap_codec::imap_types::command::StoreModifier;
use imap_codec::imap_types::core::Tag;
use imap_codec::imap_types::flag::{Flag, StoreResponse, StoreType};
use imap_codec::imap_types::sequence::SequenceSet;
use mc_imap::flags::{is_settable, stored_name};
use mc_imap::view::Entry;
use mc_mailstore::{FlagChange, StoreError};

/// Sets `\Seen` on these UIDs (FETCH of a body without PEEK) and updates the view.
pub async fn mark_seen(
    session: &mut Session,
    mailbox_id: i64,
    uids: &[i64],
) -> Result<Vec<Entry>, StoreError> {
    let (updated, _) = session
        .ctx
        .mailstore
        .store_flags(
            mailbox_id,
            uids,
            FlagChange::Add,
            &["\\Seen".to_string()],
            None,
        )
        .await?;
    let entries = apply_own(session, &updated);
    if !updated.is_empty() {
        session.ctx.changes.publish(mailbox_id);
    }
    Ok(entries)
}

/// Puts this session's own changes into its view (so they are not reported back to it).
fn apply_own(session: &mut Session, rows: &[mc_mailstore::MessageState]) -> Vec<Entry> {
    let State::Selected(_, selected) = &mut session.state else {
        return Vec::new();
    };
    rows.iter()
        .map(|row| {
            let entry = super::select::entry(row.uid, &row.flags, row.modseq);
            selected
                .view
                .set_flags(entry.uid, entry.flags.clone(), entry.modseq);
            entry
        })
        .collect()
}

#[allow(clippy::too_many_arguments)]
pub async fn store(
    session: &mut Session,
    tag: &Tag<'_>,
    set: SequenceSet,
    kind: StoreType,
    response: StoreResponse,
    flags: Vec<Flag<'_>>,
    by_uid: bool,
    modifiers: Vec<StoreModifier>,
) -> Flow {
    let State::Selected(_, selected) = &session.state else {
        return Flow::Continue;
    };
    if selected.read_only {
        session.tagged_no(tag, Some("READ-ONLY"), "Mailbox is read-only");
        return Flow::Continue;
    }
    if !by_uid && !selected.view.in_range(&set) {
        session.tagged_bad(tag, "Invalid message sequence number");
        return session.bad_command();
    }
    let targets = selected.view.resolve(&set, by_uid);
    let mailbox_id = selected.id;
    let mut unchanged_since = None;
    for modifier in &modifiers {
        let StoreModifier::UnchangedSince(value) = modifier;
        unchanged_since = Some(*value as i64);
        session.condstore = true;
    }
    let names: Vec<String> = flags
        .iter()
        .filter(|flag| is_settable(flag))
        .map(stored_name)
        .collect();
    let change = match kind {
        StoreType::Add => FlagChange::Add,
        StoreType::Remove => FlagChange::Remove,
        StoreType::Replace => FlagChange::Replace,
    };
    let uids: Vec<i64> = targets.iter().map(|(_, uid)| i64::from(*uid)).collect();
    let (updated, refused) = if uids.is_empty() {
        (Vec::new(), Vec::new())
    } else {
        match session
            .ctx
            .mailstore
            .store_flags(mailbox_id, &uids, change, &names, unchanged_since)
            .await
        {
            Ok(result) => result,
            Err(error) => return session.internal_error(tag, &error),
        }
    };
    apply_own(session, &updated);
    if !updated.is_empty() {
        session.ctx.changes.publish(mailbox_id);
    }
    let silent = matches!(response, StoreResponse::Silent);
    let condstore = session.condstore;
    if let State::Selected(_, selected) = &session.state {
        let mut lines = String::new();
        for (seq, uid) in &targets {
            if refused.contains(&i64::from(*uid)) {
                continue;
            }
            let was_updated = updated.iter().any(|row| row.uid == i64::from(*uid));
            // .SILENT still reports a new MODSEQ to a CONDSTORE client (RFC 7162 3.1.3).
            if (silent && !(condstore && was_updated)) || selected.view.get(*seq).is_none() {
                continue;
            }
            if let Some(entry) = selected.view.get(*seq) {
                lines.push_str(&super::fetch::flags_line(*seq, entry, condstore));
            }
        }
        session.queue(lines.as_bytes());
    }
    if by_uid && let Err(error) = session.sync().await {
        return session.internal_error(tag, &error);
    }
    if refused.is_empty() {
        session.tagged_ok(tag, None, "STORE completed");
    } else {
        let list: Vec<String> = refused.iter().map(|uid| uid.to_string()).collect();
        let code = if by_uid {
            format!("MODIFIED {}", list.join(","))
        } else {
            let State::Selected(_, selected) = &session.state else {
                return Flow::Continue;
            };
            let seqs: Vec<String> = refused
                .iter()
                .filter_map(|uid| selected.view.seq_of(*uid as u32))
                .map(|seq| seq.to_string())
                .collect();
            format!("MODIFIED {}", seqs.join(","))
        };
        session.tagged_ok(
            tag,
            Some(&code),
            "Conditional STORE failed for some messages",
        );
    }
    Flow::Continue
}

pub async fn expunge(session: &mut Session, tag: &Tag<'_>, uid_set: Option<SequenceSet>) -> Flow {
    let State::Selected(account, selected) = &session.state else {
        return Flow::Continue;
    };
    if selected.read_only {
        session.tagged_no(tag, Some("READ-ONLY"), "Mailbox is read-only");
        return Flow::Continue;
    }
    let only: Option<Vec<i64>> = uid_set.map(|set| {
        selected
            .view
            .resolve(&set, true)
            .into_iter()
            .map(|(_, uid)| i64::from(uid))
            .collect()
    });
    if only.as_ref().is_some_and(Vec::is_empty) {
        session.tagged_ok(tag, None, "EXPUNGE completed");
        return Flow::Continue;
    }
    let (account_id, mailbox_id) = (account.id, selected.id);
    let gone = match session
        .ctx
        .mailstore
        .expunge(account_id, mailbox_id, only.as_deref())
        .await
    {
        Ok(gone) => gone,
        Err(error) => return session.internal_error(tag, &error),
    };
    if !gone.is_empty() {
        session.ctx.changes.publish(mailbox_id);
    }
    let uids: Vec<u32> = gone.iter().map(|uid| *uid as u32).collect();
    let updates = match &mut session.state {
        State::Selected(_, selected) => selected.view.expunge(&uids),
        _ => Vec::new(),
    };
    let condstore = session.condstore;
    for update in updates {
        session.queue_update(update, condstore);
    }
    if let Err(error) = session.sync().await {
        return session.internal_error(tag, &error);
    }
    session.tagged_ok(tag, None, "EXPUNGE completed");
    Flow::Continue
}
