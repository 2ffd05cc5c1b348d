//! Commands valid in any state or needing no mailbox: CAPABILITY, NOOP/CHECK, LOGOUT, ID
//! (RFC 2971), ENABLE (RFC 5161), NAMESPACE (RFC 2342), GETQUOTAROOT/GETQUOTA (RFC 9208).

use super::{Flow, Session, State};
use imap_codec::imap_types::core::{AString, Tag, Vec1};
use imap_codec::imap_types::extensions::enable::CapabilityEnable;
use imap_codec::imap_types::mailbox::Mailbox;

pub fn capability(session: &mut Session, tag: &Tag<'_>) -> Flow {
    let line = format!("* CAPABILITY {}\r\n", session.capabilities());
    session.queue(line.as_bytes());
    session.tagged_ok(tag, None, "CAPABILITY completed");
    Flow::Continue
}

/// NOOP and CHECK: the moment to report what changed (RFC 3501 section 6.1.2).
pub async fn noop(session: &mut Session, tag: &Tag<'_>) -> Flow {
    if let Err(error) = session.sync().await {
        return session.internal_error(tag, &error);
    }
    session.tagged_ok(tag, None, "NOOP completed");
    Flow::Continue
}

pub fn logout(session: &mut Session, tag: &Tag<'_>) -> Flow {
    session.queue(b"* BYE Logging out\r\n");
    session.tagged_ok(tag, None, "LOGOUT completed");
    session.state = State::Logout;
    Flow::Close
}

pub fn id(session: &mut Session, tag: &Tag<'_>) -> Flow {
    session.queue(b"* ID (\"name\" \"mailcluster\")\r\n");
    session.tagged_ok(tag, None, "ID completed");
    Flow::Continue
}

pub fn enable(
    session: &mut Session,
    tag: &Tag<'_>,
    capabilities: Vec1<CapabilityEnable<'_>>,
) -> Flow {
    let mut enabled = Vec::new();
    for capability in capabilities.as_ref() {
        if matches!(capability, CapabilityEnable::CondStore) && !session.condstore {
            session.condstore = true;
            enabled.push("CONDSTORE");
        }
    }
    let line = if enabled.is_empty() {
        "* ENABLED\r\n".to_string()
    } else {
        format!("* ENABLED {}\r\n", enabled.join(" "))
    };
    session.queue(line.as_bytes());
    session.tagged_ok(tag, None, "ENABLE completed");
    Flow::Continue
}

pub fn namespace(session: &mut Session, tag: &Tag<'_>) -> Flow {
    session.queue(b"* NAMESPACE ((\"\" \"/\")) NIL NIL\r\n");
    session.tagged_ok(tag, None, "NAMESPACE completed");
    Flow::Continue
}

/// Every mailbox shares the account's quota root `""` (RFC 9208 STORAGE in KiB).
pub async fn quota_root(session: &mut Session, tag: &Tag<'_>, mailbox: Mailbox<'_>) -> Flow {
    let Some(account) = session.state.account().cloned() else {
        return Flow::Continue;
    };
    let name = super::mailboxes::mailbox_name(&mailbox);
    match session.ctx.mailstore.mailbox(account.id, &name).await {
        Ok(Some(_)) => {}
        Ok(None) => {
            session.tagged_no(tag, Some("NONEXISTENT"), "No such mailbox");
            return Flow::Continue;
        }
        Err(error) => return session.internal_error(tag, &error),
    }
    let encoded = super::mailboxes::quoted(&name);
    session.queue(format!("* QUOTAROOT {encoded} \"\"\r\n").as_bytes());
    quota_line(session, tag, account.id, "GETQUOTAROOT completed").await
}

pub async fn quota(session: &mut Session, tag: &Tag<'_>, root: AString<'_>) -> Flow {
    let Some(account) = session.state.account().cloned() else {
        return Flow::Continue;
    };
    if !root.as_ref().is_empty() {
        session.tagged_no(tag, Some("NONEXISTENT"), "No such quota root");
        return Flow::Continue;
    }
    quota_line(session, tag, account.id, "GETQUOTA completed").await
}

async fn quota_line(session: &mut Session, tag: &Tag<'_>, account_id: i64, done: &str) -> Flow {
    match session.ctx.mailstore.usage(account_id).await {
        Ok((used, quota)) => {
            if quota > 0 {
                let line = format!(
                    "* QUOTA \"\" (STORAGE {} {})\r\n",
                    (used + 1023) / 1024,
                    quota / 1024
                );
                session.queue(line.as_bytes());
            } else {
                session.queue(b"* QUOTA \"\" ()\r\n");
            }
            session.tagged_ok(tag, None, done);
            Flow::Continue
        }
        Err(error) => session.internal_error(tag, &error),
    }
}
