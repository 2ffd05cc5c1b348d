//! Shared fixtures for the SEARCH/SORT tests: an in-memory message and helpers that go through
//! imap-codec, so the keys under test are exactly what a client's bytes decode to.

mod commands;
mod keys;
mod nesting;
mod properties;
mod sorting;

use imap_codec::CommandCodec;
use imap_codec::decode::Decoder;
use imap_types::command::CommandBody;
use time::OffsetDateTime;
use time::format_description::well_known::{Rfc2822, Rfc3339};

use super::{SearchContext, SearchError, SearchKey, SearchSubject, evaluate};

/// A message held entirely in memory.
#[derive(Debug, Clone)]
pub(super) struct TestMessage {
    pub seq: u32,
    pub uid: u32,
    pub flags: Vec<String>,
    pub recent: bool,
    pub internal_date: OffsetDateTime,
    pub size: u64,
    pub modseq: u64,
    pub headers: Vec<(String, String)>,
    pub body: Option<String>,
}

impl TestMessage {
    /// Seq 1, UID 1, no flags, received 2024-02-01T12:00:00Z, 1000 octets, modseq 1, no headers,
    /// empty body loaded.
    pub fn new() -> Self {
        TestMessage {
            seq: 1,
            uid: 1,
            flags: Vec::new(),
            recent: false,
            internal_date: at("2024-02-01T12:00:00Z"),
            size: 1000,
            modseq: 1,
            headers: Vec::new(),
            body: Some(String::new()),
        }
    }

    pub fn flag(mut self, flag: &str) -> Self {
        self.flags.push(flag.to_owned());
        self
    }

    pub fn header(mut self, name: &str, value: &str) -> Self {
        self.headers.push((name.to_owned(), value.to_owned()));
        self
    }

    pub fn body(mut self, body: Option<&str>) -> Self {
        self.body = body.map(str::to_owned);
        self
    }

    pub fn received(mut self, rfc3339: &str) -> Self {
        self.internal_date = at(rfc3339);
        self
    }
}

impl SearchSubject for TestMessage {
    fn seq(&self) -> u32 {
        self.seq
    }
    fn uid(&self) -> u32 {
        self.uid
    }
    fn flags(&self) -> &[String] {
        &self.flags
    }
    fn recent(&self) -> bool {
        self.recent
    }
    fn internal_date(&self) -> OffsetDateTime {
        self.internal_date
    }
    fn size(&self) -> u64 {
        self.size
    }
    fn modseq(&self) -> u64 {
        self.modseq
    }
    fn header_fields(&self) -> Vec<(String, String)> {
        self.headers.clone()
    }
    fn sent_date(&self) -> Option<OffsetDateTime> {
        let date = self.header_values("Date").into_iter().next()?;
        OffsetDateTime::parse(&date, &Rfc2822).ok()
    }
    fn body_text(&self) -> Option<&str> {
        self.body.as_deref()
    }
}

pub(super) fn at(rfc3339: &str) -> OffsetDateTime {
    OffsetDateTime::parse(rfc3339, &Rfc3339).unwrap()
}

/// Ten messages, UIDs up to 100.
pub(super) const CONTEXT: SearchContext = SearchContext {
    max_seq: 10,
    max_uid: 100,
};

/// Decodes `tag SEARCH ...`/`tag UID SEARCH ...` (CRLF appended) into its criteria.
pub(super) fn criteria(command: &str) -> Vec<SearchKey<'static>> {
    let line = format!("{command}\r\n");
    let (rest, command) = CommandCodec::default()
        .decode_static(line.as_bytes())
        .unwrap_or_else(|error| panic!("{command:?} does not decode: {error:?}"));
    assert!(rest.is_empty(), "trailing bytes after {command:?}");
    match command.body {
        CommandBody::Search { criteria, .. } => criteria.into_inner(),
        other => panic!("not a SEARCH: {other:?}"),
    }
}

/// Evaluates the keys of `a SEARCH <keys>` against `message` with [`CONTEXT`].
pub(super) fn search(keys: &str, message: &TestMessage) -> Result<bool, SearchError> {
    search_in(keys, message, &CONTEXT)
}

pub(super) fn search_in(
    keys: &str,
    message: &TestMessage,
    context: &SearchContext,
) -> Result<bool, SearchError> {
    evaluate(&criteria(&format!("a SEARCH {keys}")), message, context)
}

/// `search` for keys that never need the body.
pub(super) fn hit(keys: &str, message: &TestMessage) -> bool {
    search(keys, message).unwrap_or_else(|error| panic!("{keys}: {error}"))
}
