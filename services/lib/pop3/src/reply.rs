//! POP3 replies (RFC 1939 section 3) with the response codes of RFC 2449 section 8 (`[IN-USE]`)
//! and RFC 3206 (`[AUTH]`, `[SYS/TEMP]`, `[SYS/PERM]`).
//!
//! The texts themselves live in `replies`. A [`Reply`] is well formed by construction: one
//! `+OK`/`-ERR` line, a `+ ` SASL continuation, or a `+OK` line followed by dot-stuffed lines and
//! `.`; every line ends with CRLF, control characters in texts become spaces, and no line
//! exceeds [`MAX_REPLY_LINE_LEN`], whatever text a caller passes in.

use std::fmt;

/// Longest reply line, CRLF included (RFC 2449 section 4).
pub const MAX_REPLY_LINE_LEN: usize = 512;

/// An RFC 2449 extended response code.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ResponseCode {
    /// The credentials were refused (RFC 3206 section 5).
    Auth,
    /// The maildrop is locked by another session (RFC 2449 section 8.1.1).
    InUse,
    /// A temporary system problem; retrying later may work (RFC 3206 section 4).
    SysTemp,
    /// A permanent system problem; retrying will not help (RFC 3206 section 4).
    SysPerm,
}

impl ResponseCode {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Auth => "AUTH",
            Self::InUse => "IN-USE",
            Self::SysTemp => "SYS/TEMP",
            Self::SysPerm => "SYS/PERM",
        }
    }
}

/// One complete reply, ready to be written to the connection as it is.
#[derive(Clone, PartialEq, Eq)]
pub struct Reply(String);

impl Reply {
    /// `+OK text`.
    pub fn ok(text: &str) -> Self {
        let mut out = String::new();
        push_status(&mut out, "+OK", text);
        Self(out)
    }

    /// `-ERR [CODE] text`.
    pub fn err(code: Option<ResponseCode>, text: &str) -> Self {
        let mut out = String::new();
        match code {
            Some(code) => push_status(&mut out, &format!("-ERR [{}]", code.as_str()), text),
            None => push_status(&mut out, "-ERR", text),
        }
        Self(out)
    }

    /// `+OK text`, then each line (dot-stuffed), then `.` (RFC 1939 section 3).
    pub fn ok_multiline<I, S>(text: &str, lines: I) -> Self
    where
        I: IntoIterator<Item = S>,
        S: AsRef<str>,
    {
        let mut out = String::new();
        push_status(&mut out, "+OK", text);
        for line in lines {
            let line = line.as_ref();
            let stuffing = if line.starts_with('.') { "." } else { "" };
            push_line(&mut out, stuffing, line);
        }
        out.push_str(".\r\n");
        Self(out)
    }

    /// The empty SASL challenge `+ ` (RFC 5034 section 4).
    pub(crate) fn continuation() -> Self {
        Self("+ \r\n".to_string())
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }

    pub fn as_bytes(&self) -> &[u8] {
        self.0.as_bytes()
    }

    pub fn into_bytes(self) -> Vec<u8> {
        self.0.into_bytes()
    }

    /// A `+OK` reply (a continuation is neither positive nor negative).
    pub fn is_ok(&self) -> bool {
        self.0.starts_with("+OK")
    }

    pub fn is_err(&self) -> bool {
        self.0.starts_with("-ERR")
    }
}

impl fmt::Debug for Reply {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Reply({:?})", self.0)
    }
}

impl fmt::Display for Reply {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl AsRef<[u8]> for Reply {
    fn as_ref(&self) -> &[u8] {
        self.as_bytes()
    }
}

/// Appends a status line: `status`, then ` text` unless the text is empty.
fn push_status(out: &mut String, status: &str, text: &str) {
    if text.is_empty() {
        push_line(out, status, "");
    } else {
        push_line(out, &format!("{status} "), text);
    }
}

/// Appends `head`, `text` and CRLF, with control characters in `text` replaced and the line cut
/// at a character boundary to fit [`MAX_REPLY_LINE_LEN`].
fn push_line(out: &mut String, head: &str, text: &str) {
    let start = out.len();
    out.push_str(head);
    for ch in text.chars() {
        let ch = if ch.is_control() { ' ' } else { ch };
        if out.len() - start + ch.len_utf8() > MAX_REPLY_LINE_LEN - 2 {
            break;
        }
        out.push(ch);
    }
    out.push_str("\r\n");
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn texts_cannot_split_a_reply() {
        let reply = Reply::err(Some(ResponseCode::Auth), "a\r\nb\0c");
        assert_eq!(reply.as_str(), "-ERR [AUTH] a  b c\r\n");
        assert_eq!(Reply::ok("").as_str(), "+OK\r\n");
    }

    #[test]
    fn long_texts_are_cut_to_the_line_limit() {
        let reply = Reply::ok(&"é".repeat(1000));
        assert!(reply.as_bytes().len() <= MAX_REPLY_LINE_LEN);
        assert!(reply.as_str().ends_with("é\r\n"));
    }

    #[test]
    fn multiline_replies_are_dot_stuffed_and_terminated() {
        let reply = Reply::ok_multiline("list", [".hidden", "plain", ""]);
        assert_eq!(reply.as_str(), "+OK list\r\n..hidden\r\nplain\r\n\r\n.\r\n");
    }
}
