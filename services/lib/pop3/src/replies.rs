//! Every reply text a client can see, one function per situation, so that status, response code
//! and wording stay consistent and each error is mapped to its reply in exactly one place. Texts
//! never carry internal error details (those belong in the driver's log) and never echo a user
//! name or a password.

use crate::command::{MessageNumber, ParseError};
use crate::maildrop::LookupError;
use crate::reply::{Reply, ResponseCode};

pub fn ok() -> Reply {
    Reply::ok("")
}
pub fn greeting(hostname: &str, welcome: Option<&str>) -> Reply {
    match welcome {
        Some(text) => Reply::ok(text),
        None => Reply::ok(&format!("{hostname} POP3 server ready")),
    }
}
pub fn signing_off(hostname: &str) -> Reply {
    Reply::ok(&format!("{hostname} POP3 server signing off"))
}
pub fn signing_off_after_update(hostname: &str, remaining: usize) -> Reply {
    match remaining {
        0 => Reply::ok(&format!(
            "{hostname} POP3 server signing off (maildrop empty)"
        )),
        1 => Reply::ok(&format!(
            "{hostname} POP3 server signing off (1 message left)"
        )),
        n => Reply::ok(&format!(
            "{hostname} POP3 server signing off ({n} messages left)"
        )),
    }
}
/// RFC 1939 section 6: the deletions could not all be applied.
pub fn update_failed() -> Reply {
    Reply::err(
        Some(ResponseCode::SysTemp),
        "some deleted messages not removed",
    )
}
pub fn parse_error(error: ParseError) -> Reply {
    Reply::err(None, &error.to_string())
}
pub fn wrong_state() -> Reply {
    Reply::err(None, "command not valid in this state")
}
pub fn too_many_errors() -> Reply {
    Reply::err(None, "too many errors, closing connection")
}
pub fn too_many_commands_before_login() -> Reply {
    Reply::err(
        None,
        "too many commands without logging in, closing connection",
    )
}
/// A driver called the session out of order; the client only learns that it must go away.
pub fn out_of_sequence() -> Reply {
    Reply::err(
        Some(ResponseCode::SysTemp),
        "internal error, closing connection",
    )
}
pub fn session_closed() -> Reply {
    Reply::err(None, "session closed")
}
pub fn capabilities(user_and_plain: bool, stls: bool) -> Reply {
    let mut lines = vec!["TOP", "UIDL", "RESP-CODES", "AUTH-RESP-CODE", "PIPELINING"];
    if user_and_plain {
        lines.extend(["USER", "SASL PLAIN"]);
    }
    if stls {
        lines.push("STLS");
    }
    Reply::ok_multiline("capability list follows", lines)
}

// STLS (RFC 2595 section 4)
pub fn begin_tls() -> Reply {
    Reply::ok("Begin TLS negotiation")
}
pub fn already_tls() -> Reply {
    Reply::err(None, "TLS already active")
}
pub fn tls_unavailable() -> Reply {
    Reply::err(None, "STLS not available")
}

// Authentication (RFC 1939 section 7, RFC 5034, RFC 3206)
pub fn plaintext_disallowed(stls_offered: bool) -> Reply {
    let text = if stls_offered {
        "plaintext authentication disallowed on non-secure connections, use STLS first"
    } else {
        "plaintext authentication disallowed on non-secure connections"
    };
    Reply::err(Some(ResponseCode::Auth), text)
}
pub fn send_pass() -> Reply {
    Reply::ok("send PASS")
}
pub fn user_first() -> Reply {
    Reply::err(None, "send USER first")
}
pub fn mechanism_list() -> Reply {
    Reply::ok_multiline("SASL mechanisms follow", ["PLAIN"])
}
pub fn unsupported_mechanism() -> Reply {
    Reply::err(None, "unsupported authentication mechanism")
}
pub fn auth_cancelled() -> Reply {
    Reply::err(None, "authentication cancelled")
}
pub fn sasl_bad_base64() -> Reply {
    Reply::err(None, "invalid base64 in SASL response")
}
pub fn sasl_malformed() -> Reply {
    Reply::err(None, "malformed SASL PLAIN response")
}
pub fn auth_failed() -> Reply {
    Reply::err(Some(ResponseCode::Auth), "authentication failed")
}
pub fn auth_failed_closing() -> Reply {
    Reply::err(
        Some(ResponseCode::Auth),
        "authentication failed, too many attempts, closing connection",
    )
}
pub fn maildrop_locked() -> Reply {
    Reply::err(
        Some(ResponseCode::InUse),
        "maildrop already locked by another session",
    )
}
pub fn login_temporary_failure() -> Reply {
    Reply::err(
        Some(ResponseCode::SysTemp),
        "maildrop unavailable, try again later",
    )
}
pub fn login_permanent_failure() -> Reply {
    Reply::err(Some(ResponseCode::SysPerm), "maildrop unavailable")
}
pub fn logged_in(messages: usize, octets: u64) -> Reply {
    Reply::ok(&format!(
        "logged in, maildrop has {messages} messages ({octets} octets)"
    ))
}

// Transaction (RFC 1939 section 5)
pub fn stat(messages: usize, octets: u64) -> Reply {
    Reply::ok(&format!("{messages} {octets}"))
}
pub fn scan_line(number: MessageNumber, octets: u64) -> Reply {
    Reply::ok(&format!("{number} {octets}"))
}
pub fn scan_listing(messages: usize, octets: u64, lines: Vec<String>) -> Reply {
    Reply::ok_multiline(&format!("{messages} messages ({octets} octets)"), lines)
}
pub fn uid_line(number: MessageNumber, uid: &str) -> Reply {
    Reply::ok(&format!("{number} {uid}"))
}
pub fn uid_listing(lines: Vec<String>) -> Reply {
    Reply::ok_multiline("unique-id listing follows", lines)
}
pub fn retr(octets: u64) -> Reply {
    Reply::ok(&format!("{octets} octets"))
}
pub fn top() -> Reply {
    Reply::ok("top of message follows")
}
pub fn deleted(number: MessageNumber) -> Reply {
    Reply::ok(&format!("message {number} deleted"))
}
pub fn reset(messages: usize, octets: u64) -> Reply {
    Reply::ok(&format!(
        "maildrop has {messages} messages ({octets} octets)"
    ))
}
pub fn lookup_error(number: MessageNumber, error: LookupError) -> Reply {
    match error {
        LookupError::NoSuchMessage => Reply::err(None, "no such message"),
        LookupError::AlreadyDeleted => {
            Reply::err(None, &format!("message {number} already deleted"))
        }
    }
}
/// The driver could not read a message before anything of it was sent.
pub fn message_unavailable() -> Reply {
    Reply::err(
        Some(ResponseCode::SysTemp),
        "message temporarily unavailable",
    )
}
