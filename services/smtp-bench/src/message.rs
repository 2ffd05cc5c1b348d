//! The message sent on every transaction, built once per run in its wire form (dot-stuffed,
//! CRLF, terminated by ".\r\n"). Every connection keeps its own copy and patches a fixed-width
//! counter into the Message-ID before each send, so each message is unique at no cost.

use std::time::{SystemTime, UNIX_EPOCH};

use anyhow::{Result, ensure};

/// Digits of the per-message counter in the Message-ID (a u64 has at most 20).
pub const COUNTER_WIDTH: usize = 20;
/// Printable characters per body line (RFC 2045 style), plus CRLF.
const LINE_TEXT: usize = 76;
/// Every `DOT_EVERY`th body line starts with a '.', to exercise dot-stuffing on both sides.
const DOT_EVERY: usize = 16;
const TEXT: &[u8] = b"Lorem ipsum dolor sit amet, consectetur adipiscing elit, sed do eiusmod \
tempor incididunt ut labore et dolore magna aliqua. Ut enim ad minim veniam, quis nostrud \
exercitation ullamco laboris nisi ut aliquip ex ea commodo consequat. 0123456789 ";

#[derive(Debug, Clone)]
pub struct Template {
    wire: Vec<u8>,
    counter_at: usize,
    stored_len: usize,
}

impl Template {
    /// Builds a message whose stored form is exactly `size` bytes.
    pub fn build(size: usize, from: &str, to: &str) -> Result<Self> {
        let now = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .unwrap_or_default();
        let domain = from.rsplit_once('@').map_or("bench.test", |(_, d)| d);
        let mut head = format!(
            "From: <{from}>\r\nTo: <{to}>\r\nSubject: mailcluster bench message, {size} bytes\r\n\
             Date: {}\r\nMessage-ID: <",
            rfc5322_date(now.as_secs())
        );
        let counter_at = head.len();
        head.push_str(&"0".repeat(COUNTER_WIDTH));
        head.push_str(&format!(
            ".{:x}.{}@{domain}>\r\nMIME-Version: 1.0\r\n\
             Content-Type: text/plain; charset=us-ascii\r\n\
             Content-Transfer-Encoding: 7bit\r\n\r\n",
            now.as_nanos(),
            std::process::id()
        ));
        // The smallest body is one empty line, so that the message ends with CRLF.
        let min = head.len() + 2;
        ensure!(
            size >= min,
            "--size {size} is too small: the headers alone need {min} bytes"
        );

        let mut wire = Vec::with_capacity(size + size / (DOT_EVERY * LINE_TEXT) + 8);
        wire.extend_from_slice(head.as_bytes());
        for (n, len) in body_lines(size - head.len()).enumerate() {
            push_line(&mut wire, n, len - 2);
        }
        wire.extend_from_slice(b".\r\n");
        Ok(Self {
            wire,
            counter_at,
            stored_len: size,
        })
    }

    /// The wire form, ready for one `write_all` after the 354 reply.
    pub fn wire(&self) -> &[u8] {
        &self.wire
    }

    /// Bytes of the message as the server stores it.
    pub fn stored_len(&self) -> usize {
        self.stored_len
    }

    /// Writes `seq` into the Message-ID of `buf`, a copy of [`Template::wire`].
    pub fn patch(&self, buf: &mut [u8], seq: u64) {
        let Some(field) = buf.get_mut(self.counter_at..self.counter_at + COUNTER_WIDTH) else {
            return;
        };
        let mut v = seq;
        for b in field.iter_mut().rev() {
            *b = b'0' + (v % 10) as u8;
            v /= 10;
        }
    }
}

/// Lengths (CRLF included) of the body lines filling exactly `total` bytes; `total >= 2`.
fn body_lines(total: usize) -> impl Iterator<Item = usize> {
    let full = LINE_TEXT + 2;
    let (n, r) = (total / full, total % full);
    // A 1-byte remainder cannot be a line: shorten one full line and add an empty line.
    let (n, tail): (usize, &[usize]) = if r == 1 {
        (n - 1, &[LINE_TEXT + 1, 2])
    } else {
        (n, &[])
    };
    let last = (r >= 2).then_some(r);
    std::iter::repeat_n(full, n)
        .chain(tail.iter().copied())
        .chain(last)
}

/// Appends one body line of `len` printable characters plus CRLF, dot-stuffed: a line whose
/// first character is '.' goes out with one more '.' in front.
fn push_line(out: &mut Vec<u8>, n: usize, len: usize) {
    let mut rest = len;
    let mut at = (n * 7) % TEXT.len();
    if len > 0 && n % DOT_EVERY == DOT_EVERY - 1 {
        out.extend_from_slice(b"..");
        rest -= 1;
    } else if len > 0 && TEXT[at] == b'.' {
        out.push(b'.');
    }
    while rest > 0 {
        let take = rest.min(TEXT.len() - at);
        out.extend_from_slice(&TEXT[at..at + take]);
        rest -= take;
        at = 0;
    }
    out.extend_from_slice(b"\r\n");
}

/// `Tue, 01 Jul 2025 12:00:00 +0000` for a Unix time.
pub fn rfc5322_date(unix: u64) -> String {
    const DAYS: [&str; 7] = ["Thu", "Fri", "Sat", "Sun", "Mon", "Tue", "Wed"];
    const MONTHS: [&str; 12] = [
        "Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec",
    ];
    let days = unix / 86_400;
    let secs = unix % 86_400;
    // Civil date from days since 1970-01-01 (H. Hinnant's algorithm).
    let z = days as i64 + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let day = doy - (153 * mp + 2) / 5 + 1;
    let month = if mp < 10 { mp + 3 } else { mp - 9 };
    let year = yoe + era * 400 + i64::from(month <= 2);
    format!(
        "{}, {day:02} {} {year} {:02}:{:02}:{:02} +0000",
        DAYS[(days % 7) as usize],
        MONTHS[(month - 1) as usize],
        secs / 3600,
        secs / 60 % 60,
        secs % 60
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Splits the wire form into lines (without CRLF), checks the terminator and line endings,
    /// and returns the stored (un-dot-stuffed) message.
    fn unstuff(wire: &[u8]) -> Vec<u8> {
        let body = wire.strip_suffix(b".\r\n").expect("terminator");
        assert!(
            body.ends_with(b"\r\n"),
            "message must end with CRLF before the dot"
        );
        let mut stored = Vec::new();
        let mut rest = body;
        while !rest.is_empty() {
            let nl = rest
                .iter()
                .position(|&b| b == b'\n')
                .expect("unterminated line");
            let line = rest[..nl].strip_suffix(b"\r").expect("LF without CR");
            rest = &rest[nl + 1..];
            assert!(!line.contains(&b'\r'), "bare CR");
            assert!(line.len() <= 998, "line longer than 998 bytes");
            assert_ne!(line, b".", "premature end of data");
            let line = match line.first() {
                Some(b'.') => {
                    assert_eq!(line.get(1), Some(&b'.'), "unstuffed leading dot");
                    &line[1..]
                }
                _ => line,
            };
            stored.extend_from_slice(line);
            stored.extend_from_slice(b"\r\n");
        }
        stored
    }

    fn build(size: usize) -> Template {
        Template::build(size, "bench@bench.test", "rcpt@bench.test").unwrap()
    }

    #[test]
    fn exact_size_for_many_sizes() {
        let min = (0..2000).find(|&s| Template::build(s, "bench@bench.test", "r@b").is_ok());
        let min = min.expect("some size fits");
        for size in (min..min + 400).chain([2048, 50 * 1024, 1024 * 1024, 1024 * 1024 + 1]) {
            let t = Template::build(size, "bench@bench.test", "r@b").unwrap();
            let stored = unstuff(t.wire());
            assert_eq!(stored.len(), size, "size {size}");
            assert_eq!(t.stored_len(), size);
        }
        assert!(Template::build(min - 1, "bench@bench.test", "r@b").is_err());
    }

    #[test]
    fn headers_lines_and_dot_stuffing() {
        let t = build(50 * 1024);
        let wire = t.wire();
        let text = std::str::from_utf8(wire).unwrap();
        for h in [
            "From: <bench@bench.test>\r\n",
            "To: <rcpt@bench.test>\r\n",
            "\r\nDate: ",
        ] {
            assert!(text.contains(h), "missing {h:?}");
        }
        assert!(text.contains("\r\n\r\n"), "header/body separator");
        let stored = unstuff(wire);
        let dot_lines = stored
            .split(|&b| b == b'\n')
            .filter(|l| l.first() == Some(&b'.'))
            .count();
        assert!(
            dot_lines > 10,
            "the body should contain lines starting with '.'"
        );
        assert!(
            wire.iter()
                .all(|&b| b == b'\r' || b == b'\n' || (b' '..=b'~').contains(&b))
        );
        let body_start = text.find("\r\n\r\n").unwrap() + 4;
        for line in text[body_start..].split("\r\n") {
            assert!(line.len() <= LINE_TEXT + 1, "{line:?}");
        }
        // Ends CRLF.CRLF and the dot appears nowhere else as a lone line.
        assert!(wire.ends_with(b"\r\n.\r\n"));
        assert_eq!(text.matches("\r\n.\r\n").count(), 1);
    }

    #[test]
    fn counter_makes_message_ids_unique() {
        let t = build(2048);
        let mut a = t.wire().to_vec();
        let mut b = t.wire().to_vec();
        t.patch(&mut a, 7);
        t.patch(&mut b, u64::MAX);
        let id = |m: &[u8]| {
            let s = std::str::from_utf8(m).unwrap();
            let i = s.find("Message-ID: <").unwrap();
            s[i..i + s[i..].find('>').unwrap()].to_string()
        };
        assert!(id(&a).contains("<00000000000000000007."), "{}", id(&a));
        assert!(id(&b).contains("<18446744073709551615."), "{}", id(&b));
        assert_eq!(a.len(), t.wire().len());
        assert_eq!(unstuff(&a).len(), 2048);
    }

    #[test]
    fn dates_format() {
        assert_eq!(rfc5322_date(0), "Thu, 01 Jan 1970 00:00:00 +0000");
        assert_eq!(
            rfc5322_date(1_751_371_200),
            "Tue, 01 Jul 2025 12:00:00 +0000"
        );
        assert_eq!(rfc5322_date(951_782_400), "Tue, 29 Feb 2000 00:00:00 +0000");
    }
}
