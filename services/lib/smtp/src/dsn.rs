//! Delivery status notifications (RFC 3464, in an RFC 6522 `multipart/report`): the message that
//! tells a sender which recipients failed (or are delayed) and why, with the original message
//! (`RET=FULL`) or its header section (`RET=HDRS`, and the default) attached.
//!
//! Sans-IO: the caller supplies the time and the ids. Every value that reaches a header or a
//! report field comes from the queue (addresses, the client's ENVID, a remote server's reply),
//! so control characters are replaced and nothing can start a new header line. The MIME boundary
//! is chosen so that it occurs nowhere in the attached original.

use time::OffsetDateTime;
use time::format_description::well_known::Rfc2822;

/// What happened to one recipient.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Action {
    /// Given up: the recipient will not receive the message.
    Failed,
    /// Still trying (a delay warning).
    Delayed,
    /// Put into the recipient's mailbox (NOTIFY=SUCCESS).
    Delivered,
    /// Passed to a server that does not offer DSN: no report will follow from there.
    Relayed,
}

impl Action {
    fn as_str(self) -> &'static str {
        match self {
            Self::Failed => "failed",
            Self::Delayed => "delayed",
            Self::Delivered => "delivered",
            Self::Relayed => "relayed",
        }
    }
}

/// One recipient's line of the report.
#[derive(Debug, Clone)]
pub struct RecipientReport<'a> {
    /// The address delivery was attempted to.
    pub final_recipient: &'a str,
    /// The client's ORCPT parameter (`rfc822;addr`, or the address alone, taken as rfc822).
    pub original_recipient: Option<&'a str>,
    pub action: Action,
    /// Enhanced status code, e.g. `5.1.1`.
    pub status: &'a str,
    /// The remote server that answered, if the answer came from one.
    pub remote_mta: Option<&'a str>,
    /// The SMTP reply or our own explanation, e.g. `550 5.1.1 Unknown user`.
    pub diagnostic: &'a str,
}

/// What to attach of the original message.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Return {
    /// The whole message (`RET=FULL`).
    Full,
    /// The header section only (`RET=HDRS`, and when the sender asked for nothing).
    Headers,
}

/// Everything one notification says.
#[derive(Debug, Clone)]
pub struct Notification<'a> {
    /// This server's name (`Reporting-MTA`, `From: MAILER-DAEMON@…`, `Message-ID`).
    pub hostname: &'a str,
    /// Where the notification goes: the original envelope sender (never `<>`: the caller
    /// sends no notification for a null sender).
    pub to: &'a str,
    /// Unique among this server's notifications (goes into the `Message-ID`).
    pub id: &'a str,
    pub now: OffsetDateTime,
    /// When the original message was accepted.
    pub arrival: OffsetDateTime,
    /// The client's ENVID parameter.
    pub envelope_id: Option<&'a str>,
    pub recipients: &'a [RecipientReport<'a>],
    pub original: &'a [u8],
    pub attach: Return,
}

impl Notification<'_> {
    /// The notification as a message (CRLF line endings), ready to be queued from `<>`.
    pub fn render(&self) -> Vec<u8> {
        let attached: &[u8] = match self.attach {
            Return::Full => self.original,
            Return::Headers => header_section(self.original),
        };
        let boundary = boundary(self.id, attached);
        let failed = self.recipients.iter().any(|r| r.action == Action::Failed);
        let delayed = self.recipients.iter().any(|r| r.action == Action::Delayed);
        let host = clean(self.hostname);
        let mut out = String::new();
        let mut line = |text: &str| {
            out.push_str(text);
            out.push_str("\r\n");
        };
        line(&format!(
            "From: Mail Delivery System <MAILER-DAEMON@{host}>"
        ));
        line(&format!("To: <{}>", clean(self.to)));
        line(if failed {
            "Subject: Undelivered Mail Returned to Sender"
        } else if delayed {
            "Subject: Delayed Mail (still being retried)"
        } else {
            "Subject: Successful Mail Delivery Report"
        });
        line(&format!("Date: {}", date(self.now)));
        line(&format!("Message-ID: <{}.dsn@{host}>", clean(self.id)));
        line("Auto-Submitted: auto-replied");
        line("MIME-Version: 1.0");
        line(&format!(
            "Content-Type: multipart/report; report-type=delivery-status; boundary=\"{boundary}\""
        ));
        line("");
        line("This is a MIME-encapsulated message.");
        line("");
        line(&format!("--{boundary}"));
        line("Content-Type: text/plain; charset=utf-8");
        line("Content-Transfer-Encoding: 8bit");
        line("");
        line(&format!("This is the mail system at {host}."));
        line("");
        if failed {
            line("Your message could not be delivered to one or more recipients.");
            line("The reasons are given below.");
        } else if delayed {
            line("Your message has not been delivered yet to one or more recipients.");
            line("Delivery is still being retried; you do not need to send it again.");
        } else {
            line("Your message was delivered as you asked to be told.");
            line("Where it was passed to another server that sends no reports, this is the last");
            line("report you will get about it.");
        }
        line("");
        for recipient in self.recipients {
            line(&format!(
                "<{}>: {}",
                clean(recipient.final_recipient),
                clean(recipient.diagnostic)
            ));
        }
        line("");
        line(&format!("--{boundary}"));
        line("Content-Type: message/delivery-status");
        line("");
        line(&format!("Reporting-MTA: dns; {host}"));
        if let Some(envid) = self.envelope_id {
            line(&format!("Original-Envelope-Id: {}", clean(envid)));
        }
        line(&format!("Arrival-Date: {}", date(self.arrival)));
        for recipient in self.recipients {
            line("");
            line(&format!(
                "Final-Recipient: rfc822; {}",
                clean(recipient.final_recipient)
            ));
            if let Some(orcpt) = recipient.original_recipient {
                // The field is `addr-type;address`; an ORCPT kept as the address alone is rfc822.
                let orcpt = clean(orcpt);
                if orcpt.contains(';') {
                    line(&format!("Original-Recipient: {orcpt}"));
                } else {
                    line(&format!("Original-Recipient: rfc822;{orcpt}"));
                }
            }
            line(&format!("Action: {}", recipient.action.as_str()));
            line(&format!("Status: {}", clean(recipient.status)));
            if let Some(remote) = recipient.remote_mta {
                line(&format!("Remote-MTA: dns; {}", clean(remote)));
            }
            line(&format!(
                "Diagnostic-Code: smtp; {}",
                clean(recipient.diagnostic)
            ));
        }
        line("");
        line(&format!("--{boundary}"));
        line(match self.attach {
            Return::Full => "Content-Type: message/rfc822",
            Return::Headers => "Content-Type: text/rfc822-headers",
        });
        line("");
        let mut bytes = out.into_bytes();
        bytes.extend_from_slice(attached);
        // The CRLF before a boundary belongs to the boundary (RFC 2046 section 5.1.1): without
        // this one the original's last line break would be lost.
        bytes.extend_from_slice(format!("\r\n--{boundary}--\r\n").as_bytes());
        bytes
    }
}

/// The header section of a message: everything up to and including the blank line, or the
/// whole message when it has no body.
pub fn header_section(message: &[u8]) -> &[u8] {
    if message.starts_with(b"\r\n") {
        return &message[..2];
    }
    match memchr::memmem::find(message, b"\r\n\r\n") {
        Some(end) => &message[..end + 4],
        None => message,
    }
}

/// A boundary that occurs nowhere in `content` (RFC 2046 section 5.1.1).
fn boundary(id: &str, content: &[u8]) -> String {
    let base: String = id
        .chars()
        .filter(|c| c.is_ascii_alphanumeric())
        .take(40)
        .collect();
    let mut attempt = 0u32;
    loop {
        let candidate = format!("=_mailcluster_{base}_{attempt}");
        if memchr::memmem::find(content, candidate.as_bytes()).is_none() {
            return candidate;
        }
        attempt += 1;
    }
}

/// Control characters (CR and LF above all) become spaces: a value stays on its line.
fn clean(value: &str) -> String {
    value
        .chars()
        .map(|c| if c.is_control() { ' ' } else { c })
        .collect()
}

fn date(at: OffsetDateTime) -> String {
    at.format(&Rfc2822)
        .unwrap_or_else(|_| "Thu, 01 Jan 1970 00:00:00 +0000".into())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn header_section_ends_at_the_blank_line() {
        assert_eq!(header_section(b"A: 1\r\n\r\nbody"), b"A: 1\r\n\r\n");
        assert_eq!(header_section(b"A: 1\r\n"), b"A: 1\r\n");
        assert_eq!(header_section(b"\r\nbody"), b"\r\n");
    }

    #[test]
    fn boundary_avoids_the_content() {
        let taken = "=_mailcluster_Q1_0 and =_mailcluster_Q1_1";
        assert_eq!(boundary("Q1", taken.as_bytes()), "=_mailcluster_Q1_2");
    }
}
