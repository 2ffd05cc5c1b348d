//! SMTP reply reading (RFC 5321 §4.2): `ddd-text` continuation lines, then `ddd text`.
//! Reads through an `AsyncBufRead`, so replies split across TCP reads, or several pipelined
//! replies arriving in one read, are handled by the buffer.

use anyhow::{Context, Result, bail, ensure};
use tokio::io::{AsyncBufRead, AsyncBufReadExt, AsyncReadExt};

/// Longest reply line accepted (RFC 5321 allows 512; servers sometimes exceed it).
const MAX_LINE: u64 = 8192;
/// Most lines in one reply (EHLO lists are the longest in practice).
const MAX_LINES: usize = 256;

/// Reads one complete reply and returns its code. When `text` is given, the text of every
/// line (after the code and separator, without CRLF) is appended to it.
pub async fn read_reply<R>(
    r: &mut R,
    line: &mut Vec<u8>,
    mut text: Option<&mut Vec<String>>,
) -> Result<u16>
where
    R: AsyncBufRead + Unpin,
{
    let mut code = None;
    for _ in 0..MAX_LINES {
        line.clear();
        let n = (&mut *r).take(MAX_LINE).read_until(b'\n', line).await?;
        if n == 0 {
            bail!("connection closed by the server");
        }
        if line.last() != Some(&b'\n') {
            bail!("reply line truncated or longer than {MAX_LINE} bytes");
        }
        let (c, more, t) = parse_line(line)?;
        if let Some(first) = code {
            ensure!(
                first == c,
                "reply code changed from {first} to {c} inside one reply"
            );
        }
        code = Some(c);
        if let Some(text) = text.as_deref_mut() {
            text.push(t.to_string());
        }
        if !more {
            return Ok(c);
        }
    }
    bail!("reply longer than {MAX_LINES} lines")
}

/// Parses one reply line (with its line ending): code, whether more lines follow, text.
pub fn parse_line(line: &[u8]) -> Result<(u16, bool, &str)> {
    let body = line.strip_suffix(b"\n").unwrap_or(line);
    let body = body.strip_suffix(b"\r").unwrap_or(body);
    let shown = || String::from_utf8_lossy(body).into_owned();
    let digits = body.get(..3).filter(|d| d.iter().all(u8::is_ascii_digit));
    let digits = digits.with_context(|| format!("malformed reply line {:?}", shown()))?;
    let code = digits
        .iter()
        .fold(0u16, |acc, d| acc * 10 + u16::from(d - b'0'));
    let (more, rest) = match body.get(3) {
        None => (false, &[][..]),
        Some(b' ') => (false, &body[4..]),
        Some(b'-') => (true, &body[4..]),
        Some(_) => bail!("malformed reply line {:?}", shown()),
    };
    let text = std::str::from_utf8(rest).unwrap_or("");
    Ok((code, more, text))
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::pin::Pin;
    use std::task::{Context as TaskContext, Poll};
    use tokio::io::{AsyncRead, BufReader, ReadBuf};

    /// Yields its data `chunk` bytes per read, to simulate replies split across TCP segments.
    struct Chunked {
        data: Vec<u8>,
        pos: usize,
        chunk: usize,
    }

    impl AsyncRead for Chunked {
        fn poll_read(
            mut self: Pin<&mut Self>,
            _cx: &mut TaskContext<'_>,
            buf: &mut ReadBuf<'_>,
        ) -> Poll<std::io::Result<()>> {
            let n = self
                .chunk
                .min(buf.remaining())
                .min(self.data.len() - self.pos);
            let start = self.pos;
            buf.put_slice(&self.data[start..start + n]);
            self.pos += n;
            Poll::Ready(Ok(()))
        }
    }

    fn reader(data: &[u8], chunk: usize) -> BufReader<Chunked> {
        BufReader::new(Chunked {
            data: data.to_vec(),
            pos: 0,
            chunk,
        })
    }

    const EHLO: &[u8] =
        b"250-mx.example Hello\r\n250-PIPELINING\r\n250-SIZE 10240000\r\n250 8BITMIME\r\n";

    #[tokio::test]
    async fn multi_line_reply_with_text() {
        for chunk in [1, 2, 3, 7, 4096] {
            let mut r = reader(EHLO, chunk);
            let mut line = Vec::new();
            let mut text = Vec::new();
            let code = read_reply(&mut r, &mut line, Some(&mut text))
                .await
                .unwrap();
            assert_eq!(code, 250);
            assert_eq!(
                text,
                [
                    "mx.example Hello",
                    "PIPELINING",
                    "SIZE 10240000",
                    "8BITMIME"
                ]
            );
        }
    }

    #[tokio::test]
    async fn pipelined_replies_in_one_read_and_split_reads() {
        let data = b"250 2.1.0 Ok\r\n250 2.1.5 Ok\r\n550 5.1.1 unknown\r\n354 End data with <CR><LF>.<CR><LF>\r\n250\r\n";
        for chunk in [1, 5, 13, 1 << 16] {
            let mut r = reader(data, chunk);
            let mut line = Vec::new();
            let mut codes = Vec::new();
            for _ in 0..5 {
                codes.push(read_reply(&mut r, &mut line, None).await.unwrap());
            }
            assert_eq!(codes, [250, 250, 550, 354, 250], "chunk {chunk}");
            let eof = read_reply(&mut r, &mut line, None).await;
            assert!(eof.is_err(), "EOF must be an error");
        }
    }

    #[tokio::test]
    async fn bad_replies_are_errors() {
        let cases: [&[u8]; 5] = [
            b"250-first\r\n",      // EOF inside a multi-line reply
            b"250 trunc",          // EOF inside a line
            b"25x nope\r\n",       // not a code
            b"250_what\r\n",       // bad separator
            b"250-a\r\n251 b\r\n", // code changes
        ];
        for data in cases {
            let mut r = reader(data, 3);
            let mut line = Vec::new();
            assert!(
                read_reply(&mut r, &mut line, None).await.is_err(),
                "{data:?}"
            );
        }
    }

    #[test]
    fn line_parsing() {
        assert_eq!(parse_line(b"220 ready\r\n").unwrap(), (220, false, "ready"));
        assert_eq!(
            parse_line(b"250-SIZE 1\r\n").unwrap(),
            (250, true, "SIZE 1")
        );
        assert_eq!(parse_line(b"354\r\n").unwrap(), (354, false, ""));
        assert_eq!(parse_line(b"221 bye\n").unwrap(), (221, false, "bye"));
        assert!(parse_line(b"\r\n").is_err());
    }
}
