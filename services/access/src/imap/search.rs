//! SEARCH / UID SEARCH (RFC 3501 section 6.4.4, RFC 7162 MODSEQ) and SORT / UID SORT (RFC 5256).
//! Keys about flags, UIDs and sequence numbers are answered from the session's view; dates and
//! sizes need the message rows; header keys the stored metadata; BODY and TEXT the body itself,
//! which is read only for messages the other keys did not already decide.

use super::fetch_body::Loaded;
use super::{Flow, Session, State};
use imap_codec::imap_types::core::{Charset, Tag, Vec1};
use imap_codec::imap_types::search::SearchKey;
use mc_imap::message::MessageMetadata;
use mc_imap::search::{
    SearchContext, SearchError, SearchSubject, SortCriterion, any_key, charset_supported, compare,
    evaluate, uses_modseq,
};
use mc_imap::view::Entry;
use time::OffsetDateTime;

const ROWS_PER_QUERY: usize = 500;

/// One message as SEARCH sees it.
struct Candidate {
    seq: u32,
    entry: Entry,
    flags: Vec<String>,
    internal_date: OffsetDateTime,
    size: u64,
    metadata: Option<MessageMetadata>,
    body: Option<String>,
}

impl SearchSubject for Candidate {
    fn seq(&self) -> u32 {
        self.seq
    }
    fn uid(&self) -> u32 {
        self.entry.uid
    }
    fn flags(&self) -> &[String] {
        &self.flags
    }
    fn recent(&self) -> bool {
        false
    }
    fn internal_date(&self) -> OffsetDateTime {
        self.internal_date
    }
    fn size(&self) -> u64 {
        self.size
    }
    fn modseq(&self) -> u64 {
        self.entry.modseq
    }
    fn header_fields(&self) -> Vec<(String, String)> {
        self.metadata
            .as_ref()
            .map(MessageMetadata::header_fields)
            .unwrap_or_default()
    }
    fn header_values(&self, name: &str) -> Vec<String> {
        self.metadata
            .as_ref()
            .map(|m| m.header_values(name))
            .unwrap_or_default()
    }
    fn sent_date(&self) -> Option<OffsetDateTime> {
        self.metadata.as_ref()?.sent_date()
    }
    fn body_text(&self) -> Option<&str> {
        self.body.as_deref()
    }
}

fn needs_row(key: &SearchKey<'_>) -> bool {
    any_key(key, |key| {
        !matches!(
            key,
            SearchKey::And(_)
                | SearchKey::Or(..)
                | SearchKey::Not(_)
                | SearchKey::SequenceSet(_)
                | SearchKey::Uid(_)
                | SearchKey::All
                | SearchKey::Answered
                | SearchKey::Unanswered
                | SearchKey::Deleted
                | SearchKey::Undeleted
                | SearchKey::Draft
                | SearchKey::Undraft
                | SearchKey::Flagged
                | SearchKey::Unflagged
                | SearchKey::Seen
                | SearchKey::Unseen
                | SearchKey::New
                | SearchKey::Old
                | SearchKey::Recent
                | SearchKey::Keyword(_)
                | SearchKey::Unkeyword(_)
                | SearchKey::ModSequence { .. }
        )
    })
}

/// The messages matching `criteria`, with what SORT needs of them.
async fn matching(
    session: &mut Session,
    criteria: &[SearchKey<'_>],
    for_sort: bool,
) -> Result<Vec<Candidate>, super::fetch_body::FetchError> {
    let State::Selected(_, selected) = &session.state else {
        return Ok(Vec::new());
    };
    let context = SearchContext {
        max_seq: selected.view.len(),
        max_uid: selected.view.max_uid(),
    };
    let mailbox_id = selected.id;
    let entries: Vec<(u32, Entry)> = selected
        .view
        .entries()
        .iter()
        .enumerate()
        .map(|(i, entry)| (i as u32 + 1, entry.clone()))
        .collect();
    let load = for_sort || criteria.iter().any(needs_row);
    let ctx = session.ctx.clone();
    let mut found = Vec::new();
    for chunk in entries.chunks(ROWS_PER_QUERY) {
        let mut rows = std::collections::HashMap::new();
        if load {
            let uids: Vec<i64> = chunk.iter().map(|(_, e)| i64::from(e.uid)).collect();
            for row in ctx.mailstore.fetch_rows(mailbox_id, &uids).await? {
                rows.insert(row.uid as u32, row);
            }
        }
        for (seq, entry) in chunk {
            let row = rows.remove(&entry.uid);
            if load && row.is_none() {
                continue;
            }
            let mut candidate = Candidate {
                seq: *seq,
                flags: entry.flags.to_stored(),
                entry: entry.clone(),
                internal_date: row
                    .as_ref()
                    .map_or(OffsetDateTime::UNIX_EPOCH, |r| r.internal_date),
                size: row.as_ref().map_or(0, |r| r.size_bytes.max(0) as u64),
                metadata: None,
                body: None,
            };
            let mut loaded = Loaded::new(row);
            if load {
                loaded.ensure_metadata(&ctx).await?;
                candidate.metadata = loaded.metadata().cloned();
            }
            let matched = match evaluate(criteria, &candidate, &context) {
                Err(SearchError::NeedBody) => {
                    candidate.body = Some(loaded.body_text(&ctx).await?);
                    evaluate(criteria, &candidate, &context).unwrap_or(false)
                }
                other => other.unwrap_or(false),
            };
            if matched {
                found.push(candidate);
            }
        }
    }
    Ok(found)
}

fn charset_refused(session: &mut Session, tag: &Tag<'_>, charset: Option<&Charset<'_>>) -> bool {
    if charset_supported(charset) {
        return false;
    }
    session.tagged_no(
        tag,
        Some("BADCHARSET (UTF-8 US-ASCII)"),
        "Unsupported charset",
    );
    true
}

pub async fn search(
    session: &mut Session,
    tag: &Tag<'_>,
    charset: Option<Charset<'_>>,
    criteria: Vec1<SearchKey<'_>>,
    by_uid: bool,
) -> Flow {
    if charset_refused(session, tag, charset.as_ref()) {
        return Flow::Continue;
    }
    let criteria = criteria.into_inner();
    let with_modseq = criteria.iter().any(uses_modseq);
    if with_modseq {
        session.condstore = true;
    }
    let found = match matching(session, &criteria, false).await {
        Ok(found) => found,
        Err(error) => return session.internal_error(tag, &error),
    };
    let numbers: Vec<String> = found
        .iter()
        .map(|c| if by_uid { c.entry.uid } else { c.seq }.to_string())
        .collect();
    let mut line = String::from("* SEARCH");
    for number in &numbers {
        line.push(' ');
        line.push_str(number);
    }
    if with_modseq && let Some(highest) = found.iter().map(|c| c.entry.modseq).max() {
        line.push_str(&format!(" (MODSEQ {highest})"));
    }
    line.push_str("\r\n");
    session.queue(line.as_bytes());
    if by_uid && let Err(error) = session.sync().await {
        return session.internal_error(tag, &error);
    }
    session.tagged_ok(tag, None, "SEARCH completed");
    Flow::Continue
}

pub async fn sort(
    session: &mut Session,
    tag: &Tag<'_>,
    criteria: Vec1<SortCriterion>,
    charset: Charset<'_>,
    search: Vec1<SearchKey<'_>>,
    by_uid: bool,
) -> Flow {
    if charset_refused(session, tag, Some(&charset)) {
        return Flow::Continue;
    }
    let search = search.into_inner();
    let mut found = match matching(session, &search, true).await {
        Ok(found) => found,
        Err(error) => return session.internal_error(tag, &error),
    };
    let criteria = criteria.into_inner();
    found.sort_by(|a, b| compare(a, b, &criteria));
    let mut line = String::from("* SORT");
    for candidate in &found {
        let number = if by_uid {
            candidate.entry.uid
        } else {
            candidate.seq
        };
        line.push_str(&format!(" {number}"));
    }
    line.push_str("\r\n");
    session.queue(line.as_bytes());
    session.tagged_ok(tag, None, "SORT completed");
    Flow::Continue
}
