//! Tests of the message metadata that span its modules: FETCH transcripts against RFC 3501
//! text, edge-case messages, and hostile input.

mod edge_cases;
mod fetch;
mod robustness;
mod samples;

use std::num::NonZeroU32;

use imap_codec::{ResponseCodec, encode::Encoder};
use imap_types::core::Vec1;
use imap_types::fetch::MessageDataItem;
use imap_types::response::{Data, Response};

use super::{MessageMetadata, SectionWhat};

/// `* 1 FETCH (...)` with the given items, as the server would send it.
fn fetch(items: Vec<MessageDataItem<'static>>) -> String {
    let items = Vec1::try_from(items).expect("at least one item");
    let response = Response::Data(Data::Fetch {
        seq: NonZeroU32::MIN,
        items,
    });
    String::from_utf8(ResponseCodec::default().encode(&response).dump()).expect("utf-8")
}

fn envelope(meta: &MessageMetadata) -> String {
    fetch(vec![MessageDataItem::Envelope(meta.envelope())])
}

fn body(meta: &MessageMetadata) -> String {
    fetch(vec![MessageDataItem::Body(meta.body_structure(false))])
}

fn bodystructure(meta: &MessageMetadata) -> String {
    fetch(vec![MessageDataItem::BodyStructure(
        meta.body_structure(true),
    )])
}

fn section<'a>(raw: &'a [u8], meta: &MessageMetadata, path: &[u32], what: SectionWhat) -> &'a [u8] {
    let range = meta.section_range(path, what).expect("section exists");
    &raw[range.start as usize..range.end as usize]
}
