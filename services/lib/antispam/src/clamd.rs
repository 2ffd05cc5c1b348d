//! A ClamAV client (clamd's TCP protocol): `zINSTREAM` sends the message in chunks, each prefixed
//! by its length as a 4-byte big-endian number, ended by a zero length; clamd answers one
//! NUL-terminated line: `stream: OK`, `stream: <signature> FOUND` or `<reason> ERROR`. `zPING`
//! answers `PONG`.
//!
//! One deadline covers the whole exchange (connect, send, answer). Every failure is an error,
//! never a verdict: the caller decides what an unscanned message means (the ingress accepts it,
//! logs and counts it, since a scanner that is down must not lose mail). The answer is read up
//! to [`MAX_REPLY`] bytes and a signature name is kept printable and short, since it ends up in
//! an SMTP reply and in logs.

use std::time::Duration;
use tokio::io::{AsyncReadExt, AsyncWriteExt};

/// Bytes sent per INSTREAM chunk.
pub const CHUNK_BYTES: usize = 64 * 1024;
/// The longest answer read from clamd; a longer one is a protocol error.
pub const MAX_REPLY: usize = 4096;
/// The longest signature name passed on (clamd's are far shorter).
pub const MAX_SIGNATURE_CHARS: usize = 200;

/// What clamd found in the stream.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ScanVerdict {
    Clean,
    /// The name of the signature that matched, e.g. `Win.Test.EICAR_HDB-1`.
    Infected(String),
}

#[derive(Debug, thiserror::Error)]
pub enum ClamdError {
    #[error("clamd: {0}")]
    Io(#[from] std::io::Error),
    #[error("clamd did not answer within {0:?}")]
    Timeout(Duration),
    /// The stream was longer than clamd's `StreamMaxLength`.
    #[error("clamd: INSTREAM size limit exceeded")]
    SizeLimit,
    /// clamd answered `… ERROR` (e.g. it could not scan the stream).
    #[error("clamd error: {0}")]
    Scanner(String),
    /// An answer that is not clamd's.
    #[error("clamd answered: {0:?}")]
    Protocol(String),
}

/// Scans `data` with the clamd at `host:port`; `limit` bounds the whole exchange.
pub async fn scan(
    host: &str,
    port: u16,
    data: &[u8],
    limit: Duration,
) -> Result<ScanVerdict, ClamdError> {
    tokio::time::timeout(limit, scan_inner(host, port, data))
        .await
        .map_err(|_| ClamdError::Timeout(limit))?
}

/// True when clamd answers `PONG` within `limit`.
pub async fn ping(host: &str, port: u16, limit: Duration) -> Result<(), ClamdError> {
    tokio::time::timeout(limit, async {
        let mut stream = tokio::net::TcpStream::connect((host, port)).await?;
        stream.write_all(b"zPING\0").await?;
        let answer = read_reply(&mut stream).await?;
        if answer == "PONG" {
            Ok(())
        } else {
            Err(ClamdError::Protocol(printable(&answer, 100)))
        }
    })
    .await
    .map_err(|_| ClamdError::Timeout(limit))?
}

async fn scan_inner(host: &str, port: u16, data: &[u8]) -> Result<ScanVerdict, ClamdError> {
    let mut stream = tokio::net::TcpStream::connect((host, port)).await?;
    stream.set_nodelay(true)?;
    if let Err(error) = send_stream(&mut stream, data).await {
        // clamd stops reading and answers (then closes) when the stream exceeds its limit: its
        // answer says why better than our broken pipe does.
        return match read_reply(&mut stream).await {
            Ok(answer) if !answer.is_empty() => parse_reply(answer.as_bytes()),
            _ => Err(error.into()),
        };
    }
    let answer = read_reply(&mut stream).await?;
    parse_reply(answer.as_bytes())
}

async fn send_stream(stream: &mut tokio::net::TcpStream, data: &[u8]) -> std::io::Result<()> {
    stream.write_all(b"zINSTREAM\0").await?;
    for chunk in data.chunks(CHUNK_BYTES) {
        // CHUNK_BYTES fits in u32.
        let length = u32::try_from(chunk.len()).unwrap_or(u32::MAX);
        stream.write_all(&length.to_be_bytes()).await?;
        stream.write_all(chunk).await?;
    }
    stream.write_all(&0u32.to_be_bytes()).await?;
    stream.flush().await
}

/// Reads one answer: up to the NUL that ends it, or the end of the connection.
async fn read_reply(stream: &mut tokio::net::TcpStream) -> Result<String, ClamdError> {
    let mut answer = Vec::new();
    let mut buffer = [0u8; 512];
    loop {
        let n = stream.read(&mut buffer).await?;
        if n == 0 {
            break;
        }
        answer.extend_from_slice(&buffer[..n]);
        if let Some(end) = answer.iter().position(|&b| b == 0) {
            answer.truncate(end);
            break;
        }
        if answer.len() > MAX_REPLY {
            return Err(ClamdError::Protocol(printable(
                &String::from_utf8_lossy(&answer),
                100,
            )));
        }
    }
    Ok(String::from_utf8_lossy(&answer).into_owned())
}

/// Parses clamd's answer to INSTREAM (with or without the NUL or a newline at the end).
pub fn parse_reply(answer: &[u8]) -> Result<ScanVerdict, ClamdError> {
    let end = answer.iter().position(|&b| b == 0).unwrap_or(answer.len());
    let text = String::from_utf8_lossy(&answer[..end]);
    let text = text.trim_end_matches(['\r', '\n']).trim();
    if text.starts_with("INSTREAM size limit exceeded") {
        return Err(ClamdError::SizeLimit);
    }
    if let Some(reason) = text.strip_suffix(" ERROR") {
        let reason = reason.strip_prefix("stream:").unwrap_or(reason).trim();
        return Err(ClamdError::Scanner(printable(reason, 200)));
    }
    let Some(result) = text.strip_prefix("stream:").map(str::trim) else {
        return Err(ClamdError::Protocol(printable(text, 100)));
    };
    if result == "OK" {
        return Ok(ScanVerdict::Clean);
    }
    if let Some(name) = result.strip_suffix(" FOUND") {
        let name = name.trim();
        if !name.is_empty()
            && name.chars().count() <= MAX_SIGNATURE_CHARS
            && name.chars().all(|c| c.is_ascii_graphic() || c == ' ')
        {
            return Ok(ScanVerdict::Infected(name.to_string()));
        }
    }
    Err(ClamdError::Protocol(printable(text, 100)))
}

/// At most `max` characters of `text`, control characters replaced, for logs and errors.
fn printable(text: &str, max: usize) -> String {
    text.chars()
        .take(max)
        .map(|c| if c.is_control() { '?' } else { c })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn clamd_answers_are_parsed() {
        assert_eq!(parse_reply(b"stream: OK\0").unwrap(), ScanVerdict::Clean);
        assert_eq!(parse_reply(b"stream: OK\n").unwrap(), ScanVerdict::Clean);
        assert_eq!(
            parse_reply(b"stream: Win.Test.EICAR_HDB-1 FOUND\0").unwrap(),
            ScanVerdict::Infected("Win.Test.EICAR_HDB-1".into())
        );
        assert_eq!(
            parse_reply(b"stream: Eicar-Test-Signature.UNOFFICIAL FOUND").unwrap(),
            ScanVerdict::Infected("Eicar-Test-Signature.UNOFFICIAL".into())
        );
        assert!(matches!(
            parse_reply(b"INSTREAM size limit exceeded. ERROR\0"),
            Err(ClamdError::SizeLimit)
        ));
        match parse_reply(b"stream: Can't allocate memory ERROR\0") {
            Err(ClamdError::Scanner(reason)) => assert_eq!(reason, "Can't allocate memory"),
            other => panic!("{other:?}"),
        }
        assert!(matches!(
            parse_reply(b"UNKNOWN COMMAND\0"),
            Err(ClamdError::Protocol(_))
        ));
    }

    #[test]
    fn garbage_answers_are_protocol_errors() {
        let long_name = format!("stream: {} FOUND", "A".repeat(MAX_SIGNATURE_CHARS + 1));
        for bad in [
            &b""[..],
            b"\0",
            b"stream:",
            b"stream: FOUND",
            b"stream:  FOUND",
            b"stream: OKAY",
            b"stream: Evil\r\nName FOUND",
            b"stream: Evil\x01 FOUND",
            b"HTTP/1.1 200 OK\r\n\r\n",
            b"PONG\0",
            b"\xff\xfe\xfd FOUND",
            long_name.as_bytes(),
        ] {
            assert!(
                matches!(parse_reply(bad), Err(ClamdError::Protocol(_))),
                "{bad:?}"
            );
        }
    }

    proptest! {
        #[test]
        fn any_answer_parses_without_panicking(answer in proptest::collection::vec(any::<u8>(), 0..300)) {
            if let Ok(ScanVerdict::Infected(name)) = parse_reply(&answer) {
                prop_assert!(!name.is_empty() && name.len() <= MAX_SIGNATURE_CHARS);
                prop_assert!(name.chars().all(|c| c.is_ascii_graphic() || c == ' '));
            }
        }
    }

    /// A one-connection clamd stand-in: checks the framing, answers `answer`, returns the
    /// command and the reassembled stream.
    async fn fake_clamd(
        answer: &'static [u8],
    ) -> (u16, tokio::task::JoinHandle<(Vec<u8>, Vec<u8>)>) {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let port = listener.local_addr().unwrap().port();
        let server = tokio::spawn(async move {
            let (mut socket, _) = listener.accept().await.unwrap();
            let mut command = Vec::new();
            loop {
                let byte = socket.read_u8().await.unwrap();
                if byte == 0 {
                    break;
                }
                command.push(byte);
            }
            let mut data = Vec::new();
            if command == b"zINSTREAM" {
                loop {
                    let length = socket.read_u32().await.unwrap() as usize;
                    if length == 0 {
                        break;
                    }
                    assert!(length <= CHUNK_BYTES);
                    let mut chunk = vec![0u8; length];
                    socket.read_exact(&mut chunk).await.unwrap();
                    data.extend_from_slice(&chunk);
                }
            }
            socket.write_all(answer).await.unwrap();
            (command, data)
        });
        (port, server)
    }

    #[tokio::test]
    async fn instream_framing_and_verdicts_over_tcp() {
        let message: Vec<u8> = (0..200_000u32).map(|i| (i % 251) as u8).collect();
        let (port, server) = fake_clamd(b"stream: OK\0").await;
        let verdict = scan("127.0.0.1", port, &message, Duration::from_secs(5))
            .await
            .unwrap();
        assert_eq!(verdict, ScanVerdict::Clean);
        let (command, data) = server.await.unwrap();
        assert_eq!(command, b"zINSTREAM");
        assert_eq!(data, message);

        let (port, _server) = fake_clamd(b"stream: Eicar-Signature FOUND\0").await;
        let verdict = scan("127.0.0.1", port, b"x", Duration::from_secs(5))
            .await
            .unwrap();
        assert_eq!(verdict, ScanVerdict::Infected("Eicar-Signature".into()));

        let (port, _server) = fake_clamd(b"\x00\x01garbage").await;
        let err = scan("127.0.0.1", port, b"x", Duration::from_secs(5))
            .await
            .unwrap_err();
        assert!(matches!(err, ClamdError::Protocol(_)), "{err:?}");

        let (port, server) = fake_clamd(b"PONG\0").await;
        ping("127.0.0.1", port, Duration::from_secs(5))
            .await
            .unwrap();
        assert_eq!(server.await.unwrap().0, b"zPING");
    }

    #[tokio::test]
    async fn an_endless_answer_is_cut_off() {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let port = listener.local_addr().unwrap().port();
        let _server = tokio::spawn(async move {
            let (mut socket, _) = listener.accept().await.unwrap();
            let chunk = vec![b'A'; 1024];
            while socket.write_all(&chunk).await.is_ok() {}
        });
        let err = scan("127.0.0.1", port, b"x", Duration::from_secs(5))
            .await
            .unwrap_err();
        assert!(matches!(err, ClamdError::Protocol(_)), "{err:?}");
    }

    #[tokio::test]
    async fn silence_and_refusal_are_errors() {
        let (port, _hold) = crate::test_servers::silent().await;
        let err = scan("127.0.0.1", port, b"x", Duration::from_millis(300))
            .await
            .unwrap_err();
        assert!(matches!(err, ClamdError::Timeout(_)), "{err:?}");

        // A port nobody listens on.
        let closed = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let port = closed.local_addr().unwrap().port();
        drop(closed);
        let err = scan("127.0.0.1", port, b"x", Duration::from_secs(5))
            .await
            .unwrap_err();
        assert!(matches!(err, ClamdError::Io(_)), "{err:?}");

        // Closed without a word.
        let (port, _server) = fake_clamd(b"").await;
        let err = scan("127.0.0.1", port, b"x", Duration::from_secs(5))
            .await
            .unwrap_err();
        assert!(matches!(err, ClamdError::Protocol(_)), "{err:?}");
    }

    #[tokio::test]
    async fn a_size_limit_answer_mid_stream_is_reported() {
        // clamd answers as soon as the limit is passed and closes without reading the rest.
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let port = listener.local_addr().unwrap().port();
        let _server = tokio::spawn(async move {
            let (mut socket, _) = listener.accept().await.unwrap();
            let mut first = vec![0u8; 100];
            socket.read_exact(&mut first).await.unwrap();
            socket
                .write_all(b"INSTREAM size limit exceeded. ERROR\0")
                .await
                .unwrap();
            socket.shutdown().await.unwrap();
            drop(socket);
        });
        let big = vec![b'x'; 16 * 1024 * 1024];
        let err = scan("127.0.0.1", port, &big, Duration::from_secs(10))
            .await
            .unwrap_err();
        assert!(
            matches!(err, ClamdError::SizeLimit | ClamdError::Io(_)),
            "{err:?}"
        );
    }
}
