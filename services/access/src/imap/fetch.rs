//! FETCH and UID FETCH (RFC 3501 section 6.4.5, RFC 7162 CHANGEDSINCE/MODSEQ).
//!
//! UID, FLAGS and MODSEQ come from the session's view, so `FETCH 1:* (UID FLAGS)` touches no
//! store at all. Everything else comes from the message rows in PostgreSQL (INTERNALDATE,
//! RFC822.SIZE) and their parsed metadata (ENVELOPE, BODYSTRUCTURE, section offsets); only body
//! bytes are read from the object store, as ranges (`fetch_body`). Fetching a body part without
//! `.PEEK` sets `\Seen` first, in one STORE for the whole command.

use super::fetch_body::{BodyItem, Loaded};
use super::{Flow, Session, State};
use imap_codec::imap_types::command::FetchModifier;
use imap_codec::imap_types::core::{Tag, Vec1};
use imap_codec::imap_types::datetime::DateTime;
use imap_codec::imap_types::fetch::{
    MacroOrMessageDataItemNames, MessageDataItem, MessageDataItemName,
};
use imap_codec::imap_types::response::{Data, Response};
use imap_codec::imap_types::sequence::SequenceSet;
use imap_codec::{ResponseCodec, encode::Encoder};
use mc_imap::view::Entry;
use std::num::{NonZeroU32, NonZeroU64};

/// Messages whose rows are read from PostgreSQL in one statement.
const ROWS_PER_QUERY: usize = 500;
/// Output buffered before it is written out in the middle of a long FETCH.
const FLUSH_BYTES: usize = 256 * 1024;

/// `* seq FETCH (UID u FLAGS (...) [MODSEQ (m)])`, for flag changes and STORE.
pub fn flags_line(seq: u32, entry: &Entry, condstore: bool) -> String {
    let mut items = vec![MessageDataItem::Flags(entry.flags.to_fetch())];
    if let Some(uid) = NonZeroU32::new(entry.uid) {
        items.insert(0, MessageDataItem::Uid(uid));
    }
    if condstore && let Some(modseq) = NonZeroU64::new(entry.modseq) {
        items.push(MessageDataItem::ModSeq(modseq));
    }
    encode_fetch(seq, items)
        .map(|bytes| String::from_utf8_lossy(&bytes).into_owned())
        .unwrap_or_default()
}

fn encode_fetch(seq: u32, items: Vec<MessageDataItem<'_>>) -> Option<Vec<u8>> {
    let seq = NonZeroU32::new(seq)?;
    let items = Vec1::try_from(items).ok()?;
    let response = Response::Data(Data::Fetch { seq, items });
    Some(ResponseCodec::default().encode(&response).dump())
}

/// What the items need beyond the view.
struct Needs {
    row: bool,
    metadata: bool,
    sets_seen: bool,
}

fn needs(items: &[MessageDataItemName<'_>]) -> Needs {
    let mut needs = Needs {
        row: false,
        metadata: false,
        sets_seen: false,
    };
    for item in items {
        match item {
            MessageDataItemName::Uid | MessageDataItemName::Flags | MessageDataItemName::ModSeq => {
            }
            MessageDataItemName::InternalDate | MessageDataItemName::Rfc822Size => {
                needs.row = true;
            }
            MessageDataItemName::BodyExt { peek, .. } => {
                needs.row = true;
                needs.metadata = true;
                needs.sets_seen |= !peek;
            }
            MessageDataItemName::Rfc822 | MessageDataItemName::Rfc822Text => {
                needs.row = true;
                needs.metadata = true;
                needs.sets_seen = true;
            }
            _ => {
                needs.row = true;
                needs.metadata = true;
            }
        }
    }
    needs
}

pub async fn fetch(
    session: &mut Session,
    tag: &Tag<'_>,
    set: SequenceSet,
    names: MacroOrMessageDataItemNames<'_>,
    by_uid: bool,
    modifiers: Vec<FetchModifier>,
) -> Flow {
    let mut items = match names {
        MacroOrMessageDataItemNames::Macro(m) => m
            .expand()
            .into_iter()
            .map(imap_codec::imap_types::IntoStatic::into_static)
            .collect(),
        MacroOrMessageDataItemNames::MessageDataItemNames(items) => items,
    };
    if items.iter().any(|item| {
        matches!(
            item,
            MessageDataItemName::Binary { .. } | MessageDataItemName::BinarySize { .. }
        )
    }) {
        session.tagged_bad(tag, "BINARY is not supported");
        return session.bad_command();
    }
    let mut changed_since = None;
    for modifier in &modifiers {
        if let FetchModifier::ChangedSince(value) = modifier {
            changed_since = Some(value.get());
        }
    }
    if changed_since.is_some() || items.contains(&MessageDataItemName::ModSeq) {
        session.condstore = true;
    }
    if changed_since.is_some() && !items.contains(&MessageDataItemName::ModSeq) {
        items.push(MessageDataItemName::ModSeq);
    }
    if by_uid && !items.contains(&MessageDataItemName::Uid) {
        items.insert(0, MessageDataItemName::Uid);
    }
    let State::Selected(_, selected) = &session.state else {
        return Flow::Continue;
    };
    if !by_uid && !selected.view.in_range(&set) {
        session.tagged_bad(tag, "Invalid message sequence number");
        return session.bad_command();
    }
    let mut targets: Vec<(u32, Entry)> = selected
        .view
        .resolve(&set, by_uid)
        .into_iter()
        .filter_map(|(seq, _)| selected.view.get(seq).map(|entry| (seq, entry.clone())))
        .collect();
    if let Some(since) = changed_since {
        targets.retain(|(_, entry)| entry.modseq > since);
    }
    let needs = needs(&items);
    let read_only = selected.read_only;
    let mailbox_id = selected.id;
    if needs.sets_seen && !read_only {
        let unseen: Vec<i64> = targets
            .iter()
            .filter(|(_, entry)| !entry.flags.is_seen())
            .map(|(_, entry)| i64::from(entry.uid))
            .collect();
        if !unseen.is_empty() {
            match super::store::mark_seen(session, mailbox_id, &unseen).await {
                Ok(updated) => {
                    for (_, entry) in targets.iter_mut() {
                        if let Some(now) = updated.iter().find(|e| e.uid == entry.uid) {
                            *entry = now.clone();
                        }
                    }
                    // The FLAGS item tells the client about the change (RFC 3501 6.4.5).
                    if !items.contains(&MessageDataItemName::Flags) {
                        items.push(MessageDataItemName::Flags);
                    }
                }
                Err(error) => return session.internal_error(tag, &error),
            }
        }
    }
    let ctx = session.ctx.clone();
    let mut rows = std::collections::HashMap::new();
    for chunk in targets.chunks(ROWS_PER_QUERY) {
        if needs.row {
            let uids: Vec<i64> = chunk.iter().map(|(_, e)| i64::from(e.uid)).collect();
            match session.ctx.mailstore.fetch_rows(mailbox_id, &uids).await {
                Ok(found) => {
                    rows.clear();
                    for row in found {
                        rows.insert(row.uid as u32, row);
                    }
                }
                Err(error) => return session.internal_error(tag, &error),
            }
        }
        for (seq, entry) in chunk {
            let row = rows.remove(&entry.uid);
            if needs.row && row.is_none() {
                // Expunged by another session since: nothing to send (RFC 3501 allows it).
                continue;
            }
            let mut loaded = Loaded::new(row);
            if needs.metadata
                && let Err(error) = loaded.ensure_metadata(&session.ctx).await
            {
                return session.internal_error(tag, &error);
            }
            let mut out = Vec::with_capacity(items.len());
            for item in &items {
                match render(&ctx, &mut loaded, entry, item).await {
                    Ok(Some(rendered)) => out.push(rendered),
                    Ok(None) => {}
                    Err(error) => return session.internal_error(tag, &error),
                }
            }
            if let Some(bytes) = encode_fetch(*seq, out) {
                session.queue(&bytes);
            }
            if session.connection.pending_output() > FLUSH_BYTES
                && session.connection.flush().await.is_err()
            {
                return Flow::Close;
            }
        }
    }
    if by_uid {
        // UID commands may report expunges (RFC 3501 section 7.4.1 forbids it only for
        // sequence-number commands).
        if let Err(error) = session.sync().await {
            return session.internal_error(tag, &error);
        }
    }
    session.tagged_ok(tag, None, "FETCH completed");
    Flow::Continue
}

async fn render(
    ctx: &crate::Ctx,
    loaded: &mut Loaded,
    entry: &Entry,
    item: &MessageDataItemName<'_>,
) -> Result<Option<MessageDataItem<'static>>, super::fetch_body::FetchError> {
    Ok(Some(match item {
        MessageDataItemName::Uid => match NonZeroU32::new(entry.uid) {
            Some(uid) => MessageDataItem::Uid(uid),
            None => return Ok(None),
        },
        MessageDataItemName::Flags => MessageDataItem::Flags(entry.flags.to_fetch()),
        MessageDataItemName::ModSeq => match NonZeroU64::new(entry.modseq) {
            Some(modseq) => MessageDataItem::ModSeq(modseq),
            None => return Ok(None),
        },
        MessageDataItemName::InternalDate => {
            let Some(row) = loaded.row() else {
                return Ok(None);
            };
            MessageDataItem::InternalDate(internal_date(row.internal_date))
        }
        MessageDataItemName::Rfc822Size => {
            let Some(row) = loaded.row() else {
                return Ok(None);
            };
            MessageDataItem::Rfc822Size(u32::try_from(row.size_bytes).unwrap_or(u32::MAX))
        }
        MessageDataItemName::Envelope => match loaded.metadata() {
            Some(metadata) => MessageDataItem::Envelope(metadata.envelope()),
            None => return Ok(None),
        },
        MessageDataItemName::BodyStructure => match loaded.metadata() {
            Some(metadata) => MessageDataItem::BodyStructure(metadata.body_structure(true)),
            None => return Ok(None),
        },
        MessageDataItemName::Body => match loaded.metadata() {
            Some(metadata) => MessageDataItem::Body(metadata.body_structure(false)),
            None => return Ok(None),
        },
        MessageDataItemName::BodyExt {
            section, partial, ..
        } => {
            let item = BodyItem::Section {
                section: section.clone(),
                partial: *partial,
            };
            loaded.body_item(ctx, item).await?
        }
        MessageDataItemName::Rfc822 => loaded.body_item(ctx, BodyItem::Rfc822).await?,
        MessageDataItemName::Rfc822Header => loaded.body_item(ctx, BodyItem::Rfc822Header).await?,
        MessageDataItemName::Rfc822Text => loaded.body_item(ctx, BodyItem::Rfc822Text).await?,
        _ => return Ok(None),
    }))
}

/// A stored timestamp as an IMAP date-time (UTC, which every client accepts).
pub fn internal_date(at: time::OffsetDateTime) -> DateTime {
    let when = chrono::DateTime::from_timestamp(at.unix_timestamp(), 0).unwrap_or_default();
    DateTime::unvalidated(when.fixed_offset())
}
