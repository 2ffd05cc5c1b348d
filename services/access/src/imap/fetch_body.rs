//! The body side of FETCH: the message's parsed metadata (parsed from the body and stored the
//! first time it is missing) and the bytes of `BODY[section]<partial>`, `RFC822`,
//! `RFC822.HEADER` and `RFC822.TEXT`, read from the object store as ranges of the message's
//! blob. A message whose body is wanted more than once in one command is read once, whole.

use crate::Ctx;
use bytes::Bytes;
use imap_codec::imap_types::core::{AString, Literal, NString};
use imap_codec::imap_types::fetch::{MessageDataItem, Part, Section};
use mc_imap::message::{MessageMetadata, SectionWhat, filter_header_fields};
use mc_mailstore::FetchRow;
use mc_mailstore::blob::{BlobError, BlobKey};
use std::num::NonZeroU32;
use std::ops::Range;

#[derive(Debug, thiserror::Error)]
pub enum FetchError {
    #[error("object store: {0}")]
    Blob(#[from] BlobError),
    #[error("database: {0}")]
    Store(#[from] mc_mailstore::StoreError),
    #[error("stored message is damaged: {0}")]
    Damaged(String),
}

pub enum BodyItem<'a> {
    Section {
        section: Option<Section<'a>>,
        partial: Option<(u32, NonZeroU32)>,
    },
    Rfc822,
    Rfc822Header,
    Rfc822Text,
}

/// One message being fetched.
pub struct Loaded {
    row: Option<FetchRow>,
    metadata: Option<MessageMetadata>,
    whole: Option<Bytes>,
    body_reads: u32,
}

impl Loaded {
    pub fn new(row: Option<FetchRow>) -> Self {
        Self {
            row,
            metadata: None,
            whole: None,
            body_reads: 0,
        }
    }

    pub fn row(&self) -> Option<&FetchRow> {
        self.row.as_ref()
    }

    pub fn metadata(&self) -> Option<&MessageMetadata> {
        self.metadata.as_ref()
    }

    /// Reads the stored metadata, or parses the body and stores it when there is none (a
    /// message delivered before metadata existed, or by a writer that does not parse).
    pub async fn ensure_metadata(&mut self, ctx: &Ctx) -> Result<(), FetchError> {
        let Some(row) = &self.row else {
            return Ok(());
        };
        if let Some(value) = &row.metadata
            && let Ok(metadata) = serde_json::from_value::<MessageMetadata>(value.clone())
            && metadata.v == mc_imap::message::METADATA_VERSION
        {
            self.metadata = Some(metadata);
            return Ok(());
        }
        let message_id = row.message_id;
        let whole = self.whole_message(ctx).await?;
        let metadata = MessageMetadata::parse(&whole);
        if let Ok(value) = serde_json::to_value(&metadata) {
            ctx.mailstore.set_metadata(message_id, &value).await?;
        }
        self.metadata = Some(metadata);
        Ok(())
    }

    /// The whole message, read once.
    async fn whole_message(&mut self, ctx: &Ctx) -> Result<Bytes, FetchError> {
        if self.whole.is_none() {
            let size = self.size();
            self.whole = Some(self.ranged(ctx, 0..size).await?);
        }
        Ok(self.whole.clone().unwrap_or_default())
    }

    fn size(&self) -> u64 {
        self.row
            .as_ref()
            .map_or(0, |row| row.size_bytes.max(0) as u64)
    }

    /// Bytes `range` of the message: a ranged read the first time, the whole message (kept)
    /// when a second part of the same message is wanted.
    async fn read(&mut self, ctx: &Ctx, range: Range<u64>) -> Result<Bytes, FetchError> {
        if self.whole.is_none() {
            self.body_reads += 1;
            if self.body_reads == 1 {
                return self.ranged(ctx, range).await;
            }
            self.whole_message(ctx).await?;
        }
        let whole = self.whole.clone().unwrap_or_default();
        let end = (range.end as usize).min(whole.len());
        let start = (range.start as usize).min(end);
        Ok(whole.slice(start..end))
    }

    async fn ranged(&self, ctx: &Ctx, range: Range<u64>) -> Result<Bytes, FetchError> {
        let Some(row) = &self.row else {
            return Ok(Bytes::new());
        };
        let size = self.size();
        let end = range.end.min(size);
        let start = range.start.min(end);
        if start == end {
            return Ok(Bytes::new());
        }
        let key = BlobKey::parse(&row.blob_key)?;
        let base = row.blob_offset.max(0) as u64;
        let bytes = ctx.blobs.get_range(&key, base + start..base + end).await?;
        if bytes.len() as u64 != end - start {
            return Err(FetchError::Damaged(format!(
                "{} returned {} bytes for a range of {}",
                row.blob_key,
                bytes.len(),
                end - start
            )));
        }
        Ok(bytes)
    }

    /// The decoded text of the message's text parts, for SEARCH BODY and TEXT.
    pub async fn body_text(&mut self, ctx: &Ctx) -> Result<String, FetchError> {
        let whole = self.whole_message(ctx).await?;
        let Some(message) = mail_parser::MessageParser::default().parse(&whole[..]) else {
            return Ok(String::from_utf8_lossy(&whole).into_owned());
        };
        let mut text = String::new();
        for index in 0..message.text_body_count() + message.html_body_count() {
            let part = if index < message.text_body_count() {
                message.body_text(index)
            } else {
                message.body_html(index - message.text_body_count())
            };
            if let Some(part) = part {
                text.push_str(&part);
                text.push('\n');
            }
        }
        Ok(text)
    }

    pub async fn body_item(
        &mut self,
        ctx: &Ctx,
        item: BodyItem<'_>,
    ) -> Result<MessageDataItem<'static>, FetchError> {
        let Some(metadata) = self.metadata.clone() else {
            return Err(FetchError::Damaged("no metadata".into()));
        };
        Ok(match item {
            BodyItem::Rfc822 => {
                let bytes = self
                    .section(ctx, &metadata, &[], SectionWhat::Whole)
                    .await?;
                MessageDataItem::Rfc822(nstring(bytes))
            }
            BodyItem::Rfc822Header => {
                let bytes = self
                    .section(ctx, &metadata, &[], SectionWhat::Header)
                    .await?;
                MessageDataItem::Rfc822Header(nstring(bytes))
            }
            BodyItem::Rfc822Text => {
                let bytes = self.section(ctx, &metadata, &[], SectionWhat::Text).await?;
                MessageDataItem::Rfc822Text(nstring(bytes))
            }
            BodyItem::Section { section, partial } => {
                let bytes = match &section {
                    None => {
                        self.section(ctx, &metadata, &[], SectionWhat::Whole)
                            .await?
                    }
                    Some(Section::Part(Part(path))) => {
                        self.section(ctx, &metadata, &numbers(path.as_ref()), SectionWhat::Whole)
                            .await?
                    }
                    Some(Section::Header(part)) => {
                        self.section(ctx, &metadata, &part_numbers(part), SectionWhat::Header)
                            .await?
                    }
                    Some(Section::Text(part)) => {
                        self.section(ctx, &metadata, &part_numbers(part), SectionWhat::Text)
                            .await?
                    }
                    Some(Section::Mime(Part(path))) => {
                        self.section(ctx, &metadata, &numbers(path.as_ref()), SectionWhat::Mime)
                            .await?
                    }
                    Some(Section::HeaderFields(part, fields)) => {
                        let header = self
                            .section(ctx, &metadata, &part_numbers(part), SectionWhat::Header)
                            .await?;
                        filtered(&header, fields.as_ref(), false)
                    }
                    Some(Section::HeaderFieldsNot(part, fields)) => {
                        let header = self
                            .section(ctx, &metadata, &part_numbers(part), SectionWhat::Header)
                            .await?;
                        filtered(&header, fields.as_ref(), true)
                    }
                };
                let (origin, bytes) = match partial {
                    // The response names the origin asked for, even past the end, where the
                    // data is empty (RFC 3501 sections 6.4.5 and 7.4.2).
                    Some((origin, length)) => {
                        let start = origin as usize;
                        let end = start.saturating_add(length.get() as usize);
                        let end = end.min(bytes.len());
                        let start = start.min(end);
                        (Some(origin), bytes.slice(start..end))
                    }
                    None => (None, bytes),
                };
                MessageDataItem::BodyExt {
                    section: section.map(imap_codec::imap_types::IntoStatic::into_static),
                    origin,
                    data: nstring(bytes),
                }
            }
        })
    }

    async fn section(
        &mut self,
        ctx: &Ctx,
        metadata: &MessageMetadata,
        path: &[u32],
        what: SectionWhat,
    ) -> Result<Bytes, FetchError> {
        match metadata.section_range(path, what) {
            // A part that does not exist is an empty string (what clients expect).
            None => Ok(Bytes::new()),
            Some(range) => self.read(ctx, range).await,
        }
    }
}

fn numbers(path: &[NonZeroU32]) -> Vec<u32> {
    path.iter().map(|n| n.get()).collect()
}

fn part_numbers(part: &Option<Part>) -> Vec<u32> {
    part.as_ref()
        .map(|Part(path)| numbers(path.as_ref()))
        .unwrap_or_default()
}

fn filtered(header: &[u8], fields: &[AString<'_>], not: bool) -> Bytes {
    let names: Vec<&[u8]> = fields.iter().map(|field| field.as_ref()).collect();
    Bytes::from(filter_header_fields(header, &names, not))
}

/// Body bytes as a literal (they may hold any octet but NUL-free text is not guaranteed, so
/// validation is skipped: the literal's length is what frames it).
fn nstring(bytes: Bytes) -> NString<'static> {
    NString(Some(Literal::unvalidated(bytes.to_vec()).into()))
}
