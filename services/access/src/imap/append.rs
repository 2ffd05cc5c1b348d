//! APPEND (RFC 3501 section 6.3.11, RFC 4315 APPENDUID). The body goes to the object store
//! first, then one transaction adds the message and its mailbox row; OK only after the commit.

use super::{Flow, Session, State};
use bytes::Bytes;
use imap_codec::imap_types::core::Tag;
use imap_codec::imap_types::datetime::DateTime;
use imap_codec::imap_types::extensions::binary::LiteralOrLiteral8;
use imap_codec::imap_types::flag::Flag;
use imap_codec::imap_types::mailbox::Mailbox;
use mc_imap::flags::{is_settable, stored_name};
use mc_imap::message::MessageMetadata;
use mc_mailstore::StoreError;
use mc_mailstore::blob::BlobKey;

pub async fn append(
    session: &mut Session,
    tag: &Tag<'_>,
    mailbox: Mailbox<'_>,
    flags: Vec<Flag<'_>>,
    date: Option<DateTime>,
    message: LiteralOrLiteral8<'_>,
) -> Flow {
    let Some(account) = session.state.account().cloned() else {
        return Flow::Continue;
    };
    let name = super::mailboxes::mailbox_name(&mailbox);
    let target = match session.ctx.mailstore.mailbox(account.id, &name).await {
        Ok(Some(info)) => info,
        Ok(None) => {
            session.tagged_no(tag, Some("TRYCREATE"), "No such mailbox");
            return Flow::Continue;
        }
        Err(error) => return session.internal_error(tag, &error),
    };
    let raw = match message {
        LiteralOrLiteral8::Literal(literal) => literal.into_inner(),
        LiteralOrLiteral8::Literal8(literal) => literal.data,
    };
    // Stored with CRLF line ends: every size reported (IMAP and POP3) is then what is sent.
    let body = Bytes::from(mc_imap::message::normalize_line_endings(&raw).into_owned());
    let internal_date = date
        .and_then(|date| time::OffsetDateTime::from_unix_timestamp(date.as_ref().timestamp()).ok())
        .unwrap_or_else(time::OffsetDateTime::now_utc);
    let flags: Vec<String> = flags
        .iter()
        .filter(|flag| is_settable(flag))
        .map(stored_name)
        .collect();
    let ctx = session.ctx.clone();
    let key = BlobKey::for_content(&body);
    let size = body.len() as i64;
    let stored = async {
        ctx.mailstore
            .reserve_blob(key.as_str(), size)
            .await
            .map_err(|e| e.to_string())?;
        ctx.blobs
            .put(&key, body.clone())
            .await
            .map_err(|e| e.to_string())?;
        let metadata =
            serde_json::to_value(MessageMetadata::parse(&body)).map_err(|e| e.to_string())?;
        ctx.mailstore
            .append(
                account.id,
                target.id,
                key.as_str(),
                size,
                &metadata,
                &flags,
                internal_date,
            )
            .await
            .map_err(|e| match e {
                StoreError::OverQuota => "over quota".to_string(),
                other => other.to_string(),
            })
    };
    match stored.await {
        Ok((uid_validity, uid)) => {
            ctx.changes.publish(target.id);
            if matches!(&session.state, State::Selected(_, s) if s.id == target.id)
                && let Err(error) = session.sync().await
            {
                return session.internal_error(tag, &error);
            }
            let code = format!("APPENDUID {uid_validity} {uid}");
            session.tagged_ok(tag, Some(&code), "APPEND completed");
        }
        Err(reason) if reason == "over quota" => {
            session.tagged_no(tag, Some("OVERQUOTA"), "Quota exceeded");
        }
        Err(reason) => return session.internal_error(tag, &reason),
    }
    Flow::Continue
}
