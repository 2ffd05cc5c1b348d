//! A SpamAssassin client (spamd protocol, `CHECK SPAMC/1.5`): sends the message, reads whether
//! spamd calls it spam and its score. Every step has the caller's deadline; any failure is an
//! error, and the caller scores nothing for it (an unreachable scanner must not block mail).

use std::time::Duration;
use tokio::io::{AsyncReadExt, AsyncWriteExt};

#[derive(Debug, Clone, Copy, PartialEq)]
pub struct SpamdVerdict {
    pub spam: bool,
    pub score: f64,
    pub threshold: f64,
}

#[derive(Debug, thiserror::Error)]
pub enum SpamdError {
    #[error("spamd: {0}")]
    Io(#[from] std::io::Error),
    #[error("spamd did not answer within {0:?}")]
    Timeout(Duration),
    #[error("spamd answered: {0}")]
    Protocol(String),
}

pub async fn check(
    host: &str,
    port: u16,
    message: &[u8],
    limit: Duration,
) -> Result<SpamdVerdict, SpamdError> {
    tokio::time::timeout(limit, check_inner(host, port, message))
        .await
        .map_err(|_| SpamdError::Timeout(limit))?
}

async fn check_inner(host: &str, port: u16, message: &[u8]) -> Result<SpamdVerdict, SpamdError> {
    let mut stream = tokio::net::TcpStream::connect((host, port)).await?;
    let head = format!(
        "CHECK SPAMC/1.5\r\nContent-length: {}\r\n\r\n",
        message.len()
    );
    stream.write_all(head.as_bytes()).await?;
    stream.write_all(message).await?;
    stream.shutdown().await?;
    let mut answer = Vec::new();
    stream.take(64 * 1024).read_to_end(&mut answer).await?;
    parse(&String::from_utf8_lossy(&answer))
}

/// Parses spamd's answer: `SPAMD/1.1 0 EX_OK` then `Spam: True ; 15.2 / 5.0`.
pub fn parse(answer: &str) -> Result<SpamdVerdict, SpamdError> {
    let mut lines = answer.split("\r\n");
    let status = lines.next().unwrap_or("");
    let mut words = status.split_whitespace();
    if !words.next().is_some_and(|w| w.starts_with("SPAMD/")) || words.next() != Some("0") {
        return Err(SpamdError::Protocol(status.chars().take(100).collect()));
    }
    for line in lines {
        let Some((name, value)) = line.split_once(':') else {
            continue;
        };
        if !name.trim().eq_ignore_ascii_case("spam") {
            continue;
        }
        let (flag, scores) = value
            .split_once(';')
            .ok_or_else(|| SpamdError::Protocol(line.to_string()))?;
        let (score, threshold) = scores
            .split_once('/')
            .ok_or_else(|| SpamdError::Protocol(line.to_string()))?;
        let number = |s: &str| {
            s.trim()
                .parse::<f64>()
                .ok()
                .filter(|n| n.is_finite())
                .ok_or_else(|| SpamdError::Protocol(line.to_string()))
        };
        let spam = match flag.trim().to_ascii_lowercase().as_str() {
            "true" | "yes" => true,
            "false" | "no" => false,
            _ => return Err(SpamdError::Protocol(line.to_string())),
        };
        return Ok(SpamdVerdict {
            spam,
            score: number(score)?,
            threshold: number(threshold)?,
        });
    }
    Err(SpamdError::Protocol("no Spam: line".into()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn answers() {
        let v = parse("SPAMD/1.1 0 EX_OK\r\nSpam: True ; 15.2 / 5.0\r\n\r\n").unwrap();
        assert_eq!(
            v,
            SpamdVerdict {
                spam: true,
                score: 15.2,
                threshold: 5.0
            }
        );
        let v = parse("SPAMD/1.1 0 EX_OK\r\nContent-length: 0\r\nSpam: False ; -1.0 / 5.0\r\n\r\n")
            .unwrap();
        assert!(!v.spam && v.score == -1.0);
        for bad in [
            "",
            "SPAMD/1.1 76 EX_PROTOCOL\r\n",
            "SPAMD/1.1 0 EX_OK\r\nSpam: maybe ; 1 / 2\r\n",
            "SPAMD/1.1 0 EX_OK\r\nSpam: True ; NaN / 5\r\n",
            "HTTP/1.1 200 OK\r\n",
        ] {
            assert!(parse(bad).is_err(), "{bad:?}");
        }
    }

    #[tokio::test]
    async fn talks_to_a_spamd_over_tcp_and_times_out() {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let port = listener.local_addr().unwrap().port();
        let server = tokio::spawn(async move {
            let (mut socket, _) = listener.accept().await.unwrap();
            let mut request = Vec::new();
            socket.read_to_end(&mut request).await.unwrap();
            socket
                .write_all(b"SPAMD/1.1 0 EX_OK\r\nSpam: True ; 7.5 / 5.0\r\n\r\n")
                .await
                .unwrap();
            request
        });
        let v = check(
            "127.0.0.1",
            port,
            b"Subject: x\r\n\r\nbody",
            Duration::from_secs(5),
        )
        .await
        .unwrap();
        assert_eq!(v.score, 7.5);
        let request = server.await.unwrap();
        assert_eq!(
            request,
            b"CHECK SPAMC/1.5\r\nContent-length: 18\r\n\r\nSubject: x\r\n\r\nbody".to_vec()
        );
        // A server that accepts and never answers: the deadline ends the check.
        let (port, _hold) = crate::test_servers::silent().await;
        let err = check("127.0.0.1", port, b"x", Duration::from_millis(300))
            .await
            .unwrap_err();
        assert!(matches!(err, SpamdError::Timeout(_)));
    }
}
