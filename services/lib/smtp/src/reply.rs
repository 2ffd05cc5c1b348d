//! SMTP replies (RFC 5321 section 4.2) with enhanced status codes (RFC 3463 / RFC 2034), and the
//! reply texts of the reference server (hMailServer manual, FEATURES.md section 2) where it has one.
//!
//! Every reply the server sends is built here, so the code, the enhanced code and the text stay
//! consistent. Texts never carry internal error details: those go to the log.

use std::borrow::Cow;
use std::fmt;
use std::io::Write as _;

/// An enhanced status code `class.subject.detail`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Status(pub u8, pub u16, pub u16);

/// One reply: a code, an optional enhanced status and one or more text lines.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Reply {
    pub code: u16,
    pub status: Option<Status>,
    pub lines: Vec<Cow<'static, str>>,
}

impl Reply {
    pub fn new(code: u16, status: Option<Status>, text: impl Into<Cow<'static, str>>) -> Self {
        Self {
            code,
            status,
            lines: vec![text.into()],
        }
    }

    pub fn multi(code: u16, lines: Vec<Cow<'static, str>>) -> Self {
        Self {
            code,
            status: None,
            lines,
        }
    }

    pub fn is_positive(&self) -> bool {
        self.code < 400
    }

    pub fn is_permanent(&self) -> bool {
        self.code >= 500
    }

    /// Serialises the reply; multi-line replies use `code-text` for all but the last line. Any CR
    /// or LF in a text is replaced so that a reply can never be split into two.
    pub fn write_to(&self, out: &mut Vec<u8>) {
        let count = self.lines.len().max(1);
        for index in 0..count {
            let text = self.lines.get(index).map(|l| l.as_ref()).unwrap_or("");
            let separator = if index + 1 == count { ' ' } else { '-' };
            // Writing into a Vec cannot fail; no String is built per line on this hot path.
            let _ = write!(out, "{}{}", self.code, separator);
            if let Some(Status(class, subject, detail)) = self.status {
                let _ = write!(out, "{class}.{subject}.{detail} ");
            }
            out.extend(
                text.bytes()
                    .map(|b| if b == b'\r' || b == b'\n' { b' ' } else { b }),
            );
            out.extend_from_slice(b"\r\n");
        }
    }

    pub fn to_bytes(&self) -> Vec<u8> {
        let mut out = Vec::with_capacity(64);
        self.write_to(&mut out);
        out
    }
}

impl fmt::Display for Reply {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "{}",
            String::from_utf8_lossy(&self.to_bytes()).trim_end()
        )
    }
}

const fn s(class: u8, subject: u16, detail: u16) -> Option<Status> {
    Some(Status(class, subject, detail))
}

/// The replies the server sends, by situation.
pub mod replies {
    use super::{Reply, s};

    pub fn ok() -> Reply {
        Reply::new(250, s(2, 0, 0), "OK")
    }
    pub fn sender_ok() -> Reply {
        Reply::new(250, s(2, 1, 0), "Sender OK")
    }
    pub fn recipient_ok() -> Reply {
        Reply::new(250, s(2, 1, 5), "Recipient OK")
    }
    pub fn reset() -> Reply {
        Reply::new(250, s(2, 0, 0), "Reset OK")
    }
    pub fn bye(hostname: &str) -> Reply {
        Reply::new(221, s(2, 0, 0), format!("{hostname} closing connection"))
    }
    pub fn start_data() -> Reply {
        // Intermediate replies carry no enhanced status (RFC 2034 section 3).
        Reply::new(354, None, "End data with <CR><LF>.<CR><LF>")
    }
    pub fn ready_for_tls() -> Reply {
        Reply::new(220, s(2, 0, 0), "Ready to start TLS")
    }
    pub fn queued(queue_id: &str) -> Reply {
        Reply::new(250, s(2, 0, 0), format!("OK queued as {queue_id}"))
    }
    pub fn chunk_ok(bytes: u64) -> Reply {
        Reply::new(250, s(2, 0, 0), format!("{bytes} octets received"))
    }
    pub fn auth_ok() -> Reply {
        Reply::new(235, s(2, 7, 0), "Authentication successful")
    }
    pub fn help() -> Reply {
        Reply::new(
            214,
            s(2, 0, 0),
            "Commands: EHLO HELO MAIL RCPT DATA BDAT RSET NOOP QUIT HELP STARTTLS AUTH",
        )
    }
    pub fn vrfy_ambiguous() -> Reply {
        Reply::new(
            252,
            s(2, 5, 2),
            "Cannot VRFY user, but will accept message and attempt delivery",
        )
    }

    // 4xx
    pub fn timeout() -> Reply {
        Reply::new(421, s(4, 4, 2), "Connection timeout")
    }
    pub fn session_too_long() -> Reply {
        Reply::new(421, s(4, 4, 2), "Session time limit exceeded")
    }
    pub fn too_many_connections() -> Reply {
        Reply::new(421, s(4, 7, 0), "Too many connections, try again later")
    }
    pub fn too_many_errors() -> Reply {
        Reply::new(421, s(4, 7, 0), "Too many errors, closing connection")
    }
    pub fn shutting_down(hostname: &str) -> Reply {
        Reply::new(421, s(4, 3, 2), format!("{hostname} service shutting down"))
    }
    pub fn excessive_data() -> Reply {
        Reply::new(421, s(4, 5, 0), "Excessive amounts of data sent to server")
    }
    pub fn store_failed() -> Reply {
        Reply::new(
            451,
            s(4, 3, 0),
            "Requested action aborted: local error, please retry later",
        )
    }
    pub fn temporary_failure() -> Reply {
        Reply::new(451, s(4, 3, 0), "Temporary failure, please retry later")
    }
    pub fn too_many_recipients() -> Reply {
        Reply::new(452, s(4, 5, 3), "Too many recipients")
    }
    pub fn tls_not_available() -> Reply {
        Reply::new(454, s(4, 7, 0), "TLS not available")
    }
    pub fn auth_temporary() -> Reply {
        Reply::new(454, s(4, 7, 0), "Temporary authentication failure")
    }

    // 5xx: syntax and sequence
    pub fn line_too_long() -> Reply {
        Reply::new(500, s(5, 5, 2), "Line too long")
    }
    pub fn unrecognized() -> Reply {
        Reply::new(500, s(5, 5, 2), "Syntax error, command unrecognized")
    }
    pub fn syntax(usage: &'static str) -> Reply {
        Reply::new(
            501,
            s(5, 5, 4),
            format!("Syntax error. Syntax should be {usage}"),
        )
    }
    pub fn invalid_parameter(param: &str) -> Reply {
        Reply::new(501, s(5, 5, 4), format!("Invalid {param} parameter"))
    }
    pub fn unsupported_parameter() -> Reply {
        Reply::new(
            555,
            s(5, 5, 4),
            "Unsupported MAIL FROM or RCPT TO parameter",
        )
    }
    pub fn ehlo_invalid() -> Reply {
        Reply::new(501, s(5, 5, 4), "EHLO Invalid domain address")
    }
    pub fn helo_invalid() -> Reply {
        Reply::new(501, s(5, 5, 4), "HELO Invalid domain address")
    }
    pub fn no_crlf_in_argument() -> Reply {
        Reply::new(
            501,
            s(5, 5, 4),
            "Control characters are not allowed in commands",
        )
    }
    pub fn unimplemented() -> Reply {
        Reply::new(502, s(5, 5, 1), "Unimplemented command")
    }
    pub fn turn_disallowed() -> Reply {
        Reply::new(502, s(5, 5, 1), "TURN disallowed")
    }
    pub fn vrfy_disallowed() -> Reply {
        Reply::new(502, s(5, 5, 1), "VRFY disallowed")
    }
    pub fn expn_disallowed() -> Reply {
        Reply::new(502, s(5, 5, 1), "EXPN disallowed")
    }
    pub fn helo_first() -> Reply {
        Reply::new(503, s(5, 5, 1), "Use HELO/EHLO first")
    }
    pub fn reset_first() -> Reply {
        Reply::new(503, s(5, 5, 1), "Issue a reset if you want to start over")
    }
    pub fn sender_first() -> Reply {
        Reply::new(503, s(5, 5, 1), "Must have sender first")
    }
    pub fn sender_and_recipient_first() -> Reply {
        Reply::new(503, s(5, 5, 1), "Must have sender and recipient first")
    }
    pub fn already_authenticated() -> Reply {
        Reply::new(503, s(5, 5, 1), "Already authenticated")
    }
    pub fn no_auth_in_transaction() -> Reply {
        Reply::new(
            503,
            s(5, 5, 1),
            "AUTH is not allowed during a mail transaction",
        )
    }
    pub fn already_tls() -> Reply {
        Reply::new(503, s(5, 5, 1), "TLS already active")
    }
    pub fn bdat_data_mix() -> Reply {
        Reply::new(
            503,
            s(5, 5, 1),
            "DATA and BDAT cannot be mixed in one transaction",
        )
    }
    pub fn auth_mechanism_unsupported() -> Reply {
        Reply::new(504, s(5, 5, 4), "Authentication method not supported")
    }
    pub fn auth_type_missing() -> Reply {
        Reply::new(504, s(5, 5, 4), "Authentication type not supported")
    }
    pub fn auth_cancelled() -> Reply {
        Reply::new(501, s(5, 0, 0), "Authentication cancelled")
    }
    pub fn auth_malformed() -> Reply {
        Reply::new(501, s(5, 5, 2), "Invalid authentication response")
    }

    // 5xx: policy
    pub fn auth_required() -> Reply {
        Reply::new(530, s(5, 7, 0), "SMTP authentication is required")
    }
    pub fn tls_required_for_auth() -> Reply {
        Reply::new(
            538,
            s(5, 7, 11),
            "Encryption required for requested authentication mechanism",
        )
    }
    pub fn auth_failed() -> Reply {
        Reply::new(
            535,
            s(5, 7, 8),
            "Authentication failed. Restarting authentication process",
        )
    }
    pub fn credentials_no_longer_valid() -> Reply {
        Reply::new(
            550,
            s(5, 7, 8),
            "Login credentials no longer valid. Please re-authenticate",
        )
    }
    pub fn relay_denied() -> Reply {
        Reply::new(550, s(5, 7, 1), "Delivery is not allowed to this address")
    }
    pub fn connection_refused() -> Reply {
        Reply::new(554, s(5, 7, 1), "Access denied")
    }
    pub fn invalid_recipient() -> Reply {
        Reply::new(550, s(5, 1, 3), "A valid address is required")
    }
    pub fn invalid_sender() -> Reply {
        Reply::new(550, s(5, 1, 7), "The address is not valid")
    }
    pub fn mail_syntax() -> Reply {
        Reply::new(
            550,
            s(5, 5, 4),
            "Invalid syntax. Syntax should be MAIL FROM:<user@domain>",
        )
    }
    pub fn sender_required() -> Reply {
        Reply::new(550, s(5, 1, 7), "Sender address must be specified")
    }
    pub fn smtputf8_required() -> Reply {
        Reply::new(553, s(5, 6, 7), "Non-ASCII addresses require SMTPUTF8")
    }
    pub fn message_too_big(size_kb: u64, max_kb: u64) -> Reply {
        Reply::new(
            552,
            s(5, 3, 4),
            format!(
                "Message size exceeds fixed maximum message size. Size: {size_kb} KB, Max size: {max_kb} KB"
            ),
        )
    }
    pub fn bare_line_endings() -> Reply {
        Reply::new(554, s(5, 6, 0), "Rejected message using bare LF's or CR's")
    }
    pub fn too_many_hops() -> Reply {
        Reply::new(554, s(5, 4, 6), "Too many hops, mail loop detected")
    }
    pub fn headers_too_big() -> Reply {
        Reply::new(552, s(5, 3, 4), "Header section too large")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn single_line_reply_has_code_status_and_text() {
        assert_eq!(
            replies::auth_required().to_bytes(),
            b"530 5.7.0 SMTP authentication is required\r\n"
        );
    }

    #[test]
    fn intermediate_reply_has_no_enhanced_code() {
        assert_eq!(
            replies::start_data().to_bytes(),
            b"354 End data with <CR><LF>.<CR><LF>\r\n"
        );
    }

    #[test]
    fn multi_line_reply_uses_dashes_until_the_last_line() {
        let reply = Reply::multi(250, vec!["a".into(), "b".into(), "c".into()]);
        assert_eq!(reply.to_bytes(), b"250-a\r\n250-b\r\n250 c\r\n");
    }

    #[test]
    fn line_breaks_in_texts_cannot_split_a_reply() {
        let reply = Reply::new(250, None, "x\r\n250 injected");
        assert_eq!(reply.to_bytes(), b"250 x  250 injected\r\n");
    }
}
