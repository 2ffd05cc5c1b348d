//! The body of a RETR or TOP reply (RFC 1939 sections 3, 7 and 9): a stored message turned into
//! CRLF lines, dot-stuffed, cut after the header and `n` body lines for TOP, and terminated by
//! `.`.
//!
//! The message is trusted for nothing: it may use bare LF or bare CR line ends, hold lines that
//! are a single dot, or end without a line end. Every CR, LF and CRLF becomes one CRLF, so the
//! output has no bare CR or LF and a client can only ever see the terminator where we put it.
//! The encoder keeps no buffer; it holds a few flags so that chunks may be split anywhere.

use memchr::memchr2;

#[derive(Debug, Clone)]
pub struct MessageEncoder {
    /// Body lines TOP may still send; `None` for the whole message.
    body_lines_left: Option<u64>,
    /// The blank line that ends the header has been sent.
    in_body: bool,
    /// Nothing of the current line has been sent yet.
    line_start: bool,
    /// The previous byte was a CR that ended a line: an LF right after it is part of that end.
    after_cr: bool,
    /// TOP has sent everything it may; the rest of the input is dropped.
    complete: bool,
}

impl MessageEncoder {
    /// `top_lines`: `None` for RETR, `Some(n)` for `TOP msg n`.
    pub fn new(top_lines: Option<u64>) -> Self {
        Self {
            body_lines_left: top_lines,
            in_body: false,
            line_start: true,
            after_cr: false,
            complete: false,
        }
    }

    /// Encodes the next chunk of the message, appending to `out`, which grows by at most twice
    /// the chunk's length.
    pub fn encode(&mut self, chunk: &[u8], out: &mut Vec<u8>) {
        let mut rest = chunk;
        while let Some((&byte, tail)) = rest.split_first() {
            if self.complete {
                return;
            }
            if std::mem::take(&mut self.after_cr) && byte == b'\n' {
                rest = tail;
                continue;
            }
            if byte == b'\r' || byte == b'\n' {
                self.end_line(out);
                self.after_cr = byte == b'\r';
                rest = tail;
                continue;
            }
            if std::mem::take(&mut self.line_start) && byte == b'.' {
                out.push(b'.');
            }
            let run = memchr2(b'\r', b'\n', rest).unwrap_or(rest.len());
            let (text, after) = rest.split_at(run);
            out.extend_from_slice(text);
            rest = after;
        }
    }

    /// TOP has sent all it will: the driver may stop reading the message.
    pub fn is_complete(&self) -> bool {
        self.complete
    }

    /// Ends the last line if the message did not, then writes the terminating `.` line.
    pub fn finish(self, out: &mut Vec<u8>) {
        if !self.line_start {
            out.extend_from_slice(b"\r\n");
        }
        out.extend_from_slice(b".\r\n");
    }

    fn end_line(&mut self, out: &mut Vec<u8>) {
        let empty = self.line_start;
        out.extend_from_slice(b"\r\n");
        self.line_start = true;
        if !self.in_body {
            if empty {
                self.in_body = true;
                self.complete = self.body_lines_left == Some(0);
            }
            return;
        }
        if let Some(left) = &mut self.body_lines_left {
            *left = left.saturating_sub(1);
            self.complete = *left == 0;
        }
    }
}

/// Encodes a whole message at once.
pub fn encode_message(message: &[u8], top_lines: Option<u64>) -> Vec<u8> {
    let mut encoder = MessageEncoder::new(top_lines);
    let mut out = Vec::with_capacity(message.len() + message.len() / 16 + 5);
    encoder.encode(message, &mut out);
    encoder.finish(&mut out);
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn encode(message: &str, top: Option<u64>) -> String {
        String::from_utf8(encode_message(message.as_bytes(), top)).expect("utf-8")
    }

    #[test]
    fn lines_are_normalised_and_dot_stuffed() {
        assert_eq!(
            encode("A: b\n\n.\n..x\r\nend", None),
            "A: b\r\n\r\n..\r\n...x\r\nend\r\n.\r\n"
        );
        assert_eq!(encode("a\rb\r\n", None), "a\r\nb\r\n.\r\n");
        assert_eq!(encode("a\r\r\nb", None), "a\r\n\r\nb\r\n.\r\n");
        assert_eq!(encode("", None), ".\r\n");
        assert_eq!(encode(".", None), "..\r\n.\r\n");
    }

    #[test]
    fn top_sends_the_header_and_n_body_lines() {
        let message = "A: 1\r\nB: 2\r\n\r\none\r\ntwo\r\nthree\r\n";
        assert_eq!(encode(message, Some(0)), "A: 1\r\nB: 2\r\n\r\n.\r\n");
        assert_eq!(
            encode(message, Some(2)),
            "A: 1\r\nB: 2\r\n\r\none\r\ntwo\r\n.\r\n"
        );
        assert_eq!(encode(message, Some(10)), encode(message, None));
        assert_eq!(encode("A: 1\nB: 2", Some(0)), "A: 1\r\nB: 2\r\n.\r\n");
        assert_eq!(encode("\n.body\nx", Some(1)), "\r\n..body\r\n.\r\n");
    }

    #[test]
    fn a_crlf_split_between_chunks_is_one_line_end() {
        let mut encoder = MessageEncoder::new(None);
        let mut out = Vec::new();
        encoder.encode(b"a\r", &mut out);
        encoder.encode(b"\n.b\r", &mut out);
        encoder.encode(b"\r\n", &mut out);
        encoder.finish(&mut out);
        assert_eq!(out, b"a\r\n..b\r\n\r\n.\r\n");
    }

    #[test]
    fn top_completes_and_drops_the_rest() {
        let mut encoder = MessageEncoder::new(Some(1));
        let mut out = Vec::new();
        encoder.encode(b"H: v\n\nfirst\n", &mut out);
        assert!(encoder.is_complete());
        encoder.encode(b"second\n", &mut out);
        encoder.finish(&mut out);
        assert_eq!(out, b"H: v\r\n\r\nfirst\r\n.\r\n");
    }
}
