//! Out-of-office replies (RFC 3834), with the reference server's rules: an empty subject
//! becomes `Re: <original subject>`, `%SUBJECT%` in the subject and text stands for the
//! original subject, the reply goes to the envelope sender from the null sender `<>`, and never
//! to `<>`, to ourselves, to automatic or list mail, to robots (MAILER-DAEMON, owner-…,
//! …-request, no-reply), or to an account whose own auto-reply is on (two vacations would
//! answer each other forever). Each sender hears it once per account and interval, recorded in
//! `autoreply_sent` in the transaction that stores the copy.

use crate::Ctx;
use mc_directory::AutoReply;
use mc_mailstore::blob::BlobKey;
use mc_queue::lease::Claimed;
use mc_queue::{Envelope, NewEntry};

/// Most of the original read to find its header section.
const HEADER_LIMIT: u64 = 64 * 1024;

/// The header fields of `header` (unfolded), names lower-cased.
fn fields(header: &[u8]) -> Vec<(String, String)> {
    let text = String::from_utf8_lossy(header);
    let mut fields: Vec<(String, String)> = Vec::new();
    for line in text.split('\n') {
        let line = line.trim_end_matches('\r');
        if line.is_empty() {
            break;
        }
        if line.starts_with([' ', '\t']) {
            if let Some((_, value)) = fields.last_mut() {
                value.push(' ');
                value.push_str(line.trim());
            }
            continue;
        }
        if let Some((name, value)) = line.split_once(':') {
            fields.push((name.trim().to_ascii_lowercase(), value.trim().to_string()));
        }
    }
    fields
}

/// Why the message must not be answered automatically, if it must not.
fn automatic(fields: &[(String, String)]) -> Option<&'static str> {
    for (name, value) in fields {
        let value = value.to_ascii_lowercase();
        match name.as_str() {
            "auto-submitted" if !value.starts_with("no") => return Some("Auto-Submitted"),
            "precedence"
                if ["bulk", "list", "junk"]
                    .iter()
                    .any(|p| value.starts_with(p)) =>
            {
                return Some("Precedence");
            }
            "list-id" | "list-unsubscribe" | "list-post" => return Some("mailing list"),
            "x-auto-response-suppress" if value.contains("oof") || value.contains("all") => {
                return Some("X-Auto-Response-Suppress");
            }
            _ => {}
        }
    }
    None
}

/// Whether the sender looks like a robot that must not get replies.
fn robot(sender: &str) -> bool {
    let local = sender
        .rsplit_once('@')
        .map_or(sender, |(local, _)| local)
        .to_ascii_lowercase();
    local == "mailer-daemon"
        || local.starts_with("owner-")
        || local.ends_with("-request")
        || matches!(
            local.as_str(),
            "noreply" | "no-reply" | "do-not-reply" | "donotreply"
        )
}

/// An RFC 2047 encoded word when the text is not plain ASCII.
fn header_text(text: &str) -> String {
    let text: String = text.chars().filter(|c| !c.is_control()).collect();
    if text.is_ascii() {
        return text;
    }
    use base64::Engine as _;
    format!(
        "=?utf-8?b?{}?=",
        base64::engine::general_purpose::STANDARD.encode(text.as_bytes())
    )
}

/// The reply to `recipient`'s message on behalf of `account`, stored and ready to queue; `None`
/// when no reply is due. Errors are logged and mean "no reply" (an auto-reply is a courtesy:
/// it never holds up the delivery).
pub async fn prepare(
    ctx: &Ctx,
    recipient: &Claimed,
    account: &str,
    account_id: i64,
    reply: &AutoReply,
) -> Option<NewEntry> {
    let sender = recipient.sender.as_str();
    if sender.is_empty() || sender.eq_ignore_ascii_case(account) || robot(sender) {
        return None;
    }
    if let Some(key) = mc_types::EmailAddress::parse(sender)
        .ok()
        .map(|a| a.lookup_key())
        && let Ok(Some(profile)) = ctx.directory.delivery_profile(&key).await
        && profile.autoreply.is_some()
    {
        return None;
    }
    // Already answered within the interval: decided for good in the copy's transaction, this
    // only saves building a reply that would not be sent.
    let recent: Result<Option<i32>, _> = sqlx::query_scalar(
        "SELECT 1 FROM autoreply_sent
          WHERE account_id = $1 AND sender = $2 AND sent_at > now() - make_interval(hours => $3)",
    )
    .bind(account_id)
    .bind(sender.to_ascii_lowercase())
    .bind(i32::try_from(ctx.config.autoreply_interval_hours).unwrap_or(i32::MAX))
    .fetch_optional(ctx.queue.pool())
    .await;
    if !matches!(recent, Ok(None)) {
        return None;
    }
    match build(ctx, recipient, account, reply).await {
        Ok(entry) => entry,
        Err(error) => {
            tracing::warn!(%error, %account, "auto-reply not prepared");
            None
        }
    }
}

async fn build(
    ctx: &Ctx,
    recipient: &Claimed,
    account: &str,
    reply: &AutoReply,
) -> Result<Option<NewEntry>, String> {
    let key = BlobKey::parse(&recipient.blob_key).map_err(|e| e.to_string())?;
    let offset = u64::try_from(recipient.blob_offset).map_err(|e| e.to_string())?;
    let size = u64::try_from(recipient.size_bytes).map_err(|e| e.to_string())?;
    let header = ctx
        .blobs
        .get_range(&key, offset..offset + size.min(HEADER_LIMIT))
        .await
        .map_err(|e| e.to_string())?;
    let fields = fields(&header);
    if let Some(reason) = automatic(&fields) {
        tracing::debug!(%account, reason, "no auto-reply to automatic mail");
        return Ok(None);
    }
    let parsed = mail_parser::MessageParser::new().parse_headers(&header[..]);
    let original_subject = parsed
        .as_ref()
        .and_then(|m| m.subject())
        .unwrap_or("")
        .to_string();
    let original_id = parsed
        .as_ref()
        .and_then(|m| m.message_id())
        .map(str::to_string);
    let subject = if reply.subject.trim().is_empty() {
        format!("Re: {original_subject}")
    } else {
        reply.subject.replace("%SUBJECT%", &original_subject)
    };
    let text = reply.body.replace("%SUBJECT%", &original_subject);
    let id = Envelope::new_id();
    let now = time::OffsetDateTime::now_utc();
    let date = now
        .format(&time::format_description::well_known::Rfc2822)
        .map_err(|e| e.to_string())?;
    let mut message = String::new();
    message.push_str(&format!("From: <{account}>\r\n"));
    message.push_str(&format!("To: <{}>\r\n", recipient.sender));
    message.push_str(&format!("Subject: {}\r\n", header_text(&subject)));
    message.push_str(&format!("Date: {date}\r\n"));
    message.push_str(&format!(
        "Message-ID: <{id}.autoreply@{}>\r\n",
        ctx.config.hostname
    ));
    if let Some(original) = &original_id {
        let original: String = original.chars().filter(|c| !c.is_control()).collect();
        message.push_str(&format!("In-Reply-To: <{original}>\r\n"));
        message.push_str(&format!("References: <{original}>\r\n"));
    }
    message.push_str("Auto-Submitted: auto-replied\r\n");
    message.push_str("MIME-Version: 1.0\r\n");
    message.push_str("Content-Type: text/plain; charset=utf-8\r\n");
    message.push_str("Content-Transfer-Encoding: 8bit\r\n\r\n");
    for line in text.lines() {
        message.push_str(line);
        message.push_str("\r\n");
    }
    crate::bounce::notice(ctx, id, message.into_bytes(), &recipient.sender)
        .await
        .map(Some)
}

/// Records the reply as sent to this sender, in the copy's transaction; false if another
/// delivery answered the sender within the interval meanwhile (then nothing is queued).
pub async fn claim(
    transaction: &mut sqlx::PgConnection,
    account_id: i64,
    sender: &str,
    interval_hours: u64,
) -> Result<bool, sqlx::Error> {
    let claimed: Option<i32> = sqlx::query_scalar(
        "INSERT INTO autoreply_sent (account_id, sender) VALUES ($1, $2)
         ON CONFLICT (account_id, sender) DO UPDATE SET sent_at = now()
          WHERE autoreply_sent.sent_at <= now() - make_interval(hours => $3)
         RETURNING 1",
    )
    .bind(account_id)
    .bind(sender.to_ascii_lowercase())
    .bind(i32::try_from(interval_hours).unwrap_or(i32::MAX))
    .fetch_optional(transaction)
    .await?;
    Ok(claimed.is_some())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn automatic_and_list_mail_is_recognised() {
        let list = fields(b"Subject: x\r\nList-Id: <a.b>\r\n\r\nbody");
        assert_eq!(automatic(&list), Some("mailing list"));
        let auto = fields(b"Auto-Submitted:\r\n auto-generated\r\n\r\n");
        assert_eq!(automatic(&auto), Some("Auto-Submitted"));
        let human =
            fields(b"Auto-Submitted: no\r\nPrecedence: first-class\r\n\r\nList-Id: in body\r\n");
        assert_eq!(automatic(&human), None);
        assert_eq!(
            automatic(&fields(b"Precedence: bulk\r\n")),
            Some("Precedence")
        );
    }

    #[test]
    fn robots_are_not_answered() {
        for sender in [
            "MAILER-DAEMON@x.test",
            "owner-list@x.test",
            "list-request@x.test",
            "no-reply@x.test",
        ] {
            assert!(robot(sender), "{sender}");
        }
        assert!(!robot("alice@x.test"));
    }

    #[test]
    fn non_ascii_subjects_are_encoded() {
        assert_eq!(header_text("Re: hello"), "Re: hello");
        assert_eq!(header_text("Re: café"), "=?utf-8?b?UmU6IGNhZsOp?=");
        assert_eq!(header_text("a\r\nBcc: x"), "aBcc: x");
    }
}
