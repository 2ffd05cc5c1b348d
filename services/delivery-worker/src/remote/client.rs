//! A small SMTP client for outbound delivery: one connection, one command at a time, with a
//! reply per recipient. It speaks EHLO (HELO when refused), STARTTLS, AUTH PLAIN/LOGIN, SIZE,
//! 8BITMIME, SMTPUTF8 and DSN parameters, and dot-stuffs the message itself.
//!
//! Replies are bounded (line length and line count), every read and write has a timeout, and
//! buffered plaintext is discarded when TLS starts (no STARTTLS response injection).

use super::tls::{TlsClient, TlsOutcome};
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

/// Longest reply line we read, and most lines in one reply (RFC 5321 allows 512 octets per
/// line; servers exceed it in practice, so a margin).
const MAX_LINE: usize = 4096;
const MAX_LINES: usize = 200;

/// A reply: its code and text lines (without the code prefix).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Reply {
    pub code: u16,
    pub lines: Vec<String>,
}

impl Reply {
    pub fn is_positive(&self) -> bool {
        (200..400).contains(&self.code)
    }

    pub fn is_permanent(&self) -> bool {
        self.code >= 500
    }

    /// The enhanced status code of the first line (RFC 3463), when the server gave one whose
    /// class agrees with the reply code; else one derived from the reply code.
    pub fn status(&self) -> String {
        let class = self.code / 100;
        if let Some(first) = self.lines.first().and_then(|l| l.split_whitespace().next()) {
            let parts: Vec<&str> = first.split('.').collect();
            if parts.len() == 3
                && parts
                    .iter()
                    .all(|p| !p.is_empty() && p.len() <= 3 && p.bytes().all(|b| b.is_ascii_digit()))
                && parts[0] == class.to_string()
            {
                return first.to_string();
            }
        }
        match class {
            2 => "2.0.0".into(),
            4 => "4.0.0".into(),
            _ => "5.0.0".into(),
        }
    }

    /// The reply as one line, for logs and bounces: `550 5.1.1 no such user`.
    pub fn one_line(&self) -> String {
        let text = self.lines.join(" ");
        let text: String = text.chars().filter(|c| !c.is_control()).take(900).collect();
        format!("{} {}", self.code, text.trim())
    }
}

/// Why a connection or a command failed.
#[derive(Debug, thiserror::Error)]
pub enum ClientError {
    #[error("connection to {0} failed: {1}")]
    Connect(SocketAddr, String),
    #[error("timed out waiting for {0}")]
    Timeout(&'static str),
    #[error("connection lost: {0}")]
    Io(#[from] std::io::Error),
    #[error("malformed reply: {0}")]
    Protocol(String),
    #[error("TLS: {0}")]
    Tls(String),
}

enum Stream {
    Plain(TcpStream),
    Tls(Box<tokio_rustls::client::TlsStream<TcpStream>>),
    /// Between states (while STARTTLS takes the socket).
    Gone,
}

/// What the server offered in its EHLO reply.
#[derive(Debug, Clone, Default)]
pub struct Capabilities {
    pub esmtp: bool,
    pub starttls: bool,
    pub size: Option<u64>,
    pub eight_bit_mime: bool,
    pub smtputf8: bool,
    pub dsn: bool,
    pub auth_plain: bool,
    pub auth_login: bool,
}

impl Capabilities {
    fn parse(reply: &Reply) -> Self {
        let mut caps = Capabilities {
            esmtp: true,
            ..Default::default()
        };
        for line in reply.lines.iter().skip(1) {
            let mut words = line.split_whitespace();
            let Some(keyword) = words.next() else {
                continue;
            };
            match keyword.to_ascii_uppercase().as_str() {
                "STARTTLS" => caps.starttls = true,
                "SIZE" => caps.size = Some(words.next().and_then(|w| w.parse().ok()).unwrap_or(0)),
                "8BITMIME" => caps.eight_bit_mime = true,
                "SMTPUTF8" => caps.smtputf8 = true,
                "DSN" => caps.dsn = true,
                "AUTH" => {
                    for mechanism in words {
                        match mechanism.to_ascii_uppercase().as_str() {
                            "PLAIN" => caps.auth_plain = true,
                            "LOGIN" => caps.auth_login = true,
                            _ => {}
                        }
                    }
                }
                _ => {}
            }
        }
        caps
    }
}

/// An open SMTP session to one server, greeted and ready for a transaction.
pub struct Connection {
    stream: Stream,
    buffer: Vec<u8>,
    timeout: Duration,
    pub peer: SocketAddr,
    /// The name the server is known by here (the MX or route host).
    pub host: String,
    pub capabilities: Capabilities,
    /// How TLS went (none, verified, or not verified and why).
    pub tls: TlsOutcome,
    pub authenticated: bool,
}

/// How to open a session.
pub struct Opening<'a> {
    pub peer: SocketAddr,
    pub host: &'a str,
    pub helo: &'a str,
    pub connect_timeout: Duration,
    pub timeout: Duration,
    /// Use STARTTLS when offered.
    pub starttls: bool,
    pub tls: &'a Arc<TlsClient>,
}

/// The outcome of opening a session that did not fail on the network: the server may still
/// have refused us (a 4xx/5xx greeting or EHLO).
pub enum Opened {
    Ready(Box<Connection>),
    Refused(Reply),
}

impl Connection {
    /// Connects, reads the greeting, says EHLO (HELO if EHLO is refused) and starts TLS when
    /// asked and offered.
    pub async fn open(opening: Opening<'_>) -> Result<Opened, ClientError> {
        let socket =
            tokio::time::timeout(opening.connect_timeout, TcpStream::connect(opening.peer))
                .await
                .map_err(|_| ClientError::Connect(opening.peer, "timed out".into()))?
                .map_err(|e| ClientError::Connect(opening.peer, e.to_string()))?;
        let _ = socket.set_nodelay(true);
        let mut connection = Connection {
            stream: Stream::Plain(socket),
            buffer: Vec::new(),
            timeout: opening.timeout,
            peer: opening.peer,
            host: opening.host.to_string(),
            capabilities: Capabilities::default(),
            tls: TlsOutcome::None,
            authenticated: false,
        };
        let greeting = connection.read_reply("the greeting").await?;
        if greeting.code != 220 {
            let _ = connection.command("QUIT").await;
            return Ok(Opened::Refused(greeting));
        }
        if let Some(refused) = connection.hello(opening.helo).await? {
            return Ok(Opened::Refused(refused));
        }
        if opening.starttls && connection.capabilities.starttls {
            let reply = connection.command("STARTTLS").await?;
            if reply.code == 220 {
                connection.start_tls(opening.tls).await?;
                if let Some(refused) = connection.hello(opening.helo).await? {
                    return Ok(Opened::Refused(refused));
                }
            }
        }
        Ok(Opened::Ready(Box::new(connection)))
    }

    /// EHLO, or HELO when EHLO is refused; `Some` if both are.
    async fn hello(&mut self, helo: &str) -> Result<Option<Reply>, ClientError> {
        let reply = self.command(&format!("EHLO {helo}")).await?;
        if reply.code == 250 {
            self.capabilities = Capabilities::parse(&reply);
            return Ok(None);
        }
        let reply = self.command(&format!("HELO {helo}")).await?;
        if reply.code == 250 {
            self.capabilities = Capabilities::default();
            return Ok(None);
        }
        let _ = self.command("QUIT").await;
        Ok(Some(reply))
    }

    async fn start_tls(&mut self, tls: &Arc<TlsClient>) -> Result<(), ClientError> {
        // Anything the server sent after its 220 was sent before TLS: discard it.
        self.buffer.clear();
        let Stream::Plain(socket) = std::mem::replace(&mut self.stream, Stream::Gone) else {
            return Err(ClientError::Tls("STARTTLS on a TLS connection".into()));
        };
        let (stream, outcome) =
            tokio::time::timeout(self.timeout, tls.connect(&self.host, self.peer, socket))
                .await
                .map_err(|_| ClientError::Timeout("the TLS handshake"))?
                .map_err(|e| ClientError::Tls(e.to_string()))?;
        self.stream = Stream::Tls(Box::new(stream));
        self.tls = outcome;
        Ok(())
    }

    /// AUTH PLAIN (or LOGIN) with the given credentials; the reply if refused.
    pub async fn authenticate(
        &mut self,
        user: &str,
        password: &str,
    ) -> Result<Option<Reply>, ClientError> {
        use base64::Engine as _;
        let b64 = base64::engine::general_purpose::STANDARD;
        let reply = if self.capabilities.auth_plain || !self.capabilities.auth_login {
            let token = b64.encode(format!("\0{user}\0{password}"));
            self.command_secret(&format!("AUTH PLAIN {token}")).await?
        } else {
            let reply = self.command("AUTH LOGIN").await?;
            if reply.code != 334 {
                return Ok(Some(reply));
            }
            let reply = self.command_secret(&b64.encode(user)).await?;
            if reply.code != 334 {
                return Ok(Some(reply));
            }
            self.command_secret(&b64.encode(password)).await?
        };
        if reply.code == 235 {
            self.authenticated = true;
            Ok(None)
        } else {
            Ok(Some(reply))
        }
    }

    /// Sends a command line and reads the reply.
    pub async fn command(&mut self, line: &str) -> Result<Reply, ClientError> {
        tracing::trace!(peer = %self.peer, command = line, "smtp client");
        self.write(format!("{line}\r\n").as_bytes()).await?;
        self.read_reply("a reply").await
    }

    /// A command carrying a secret: never traced.
    async fn command_secret(&mut self, line: &str) -> Result<Reply, ClientError> {
        self.write(format!("{line}\r\n").as_bytes()).await?;
        self.read_reply("a reply").await
    }

    /// Sends the message after a 354: dot-stuffed, CRLF line ends, ending with `.`; returns
    /// the final reply (waited for twice as long as a command's).
    pub async fn send_data(&mut self, message: &[u8]) -> Result<Reply, ClientError> {
        let stuffed = dot_stuff(message);
        self.write(&stuffed).await?;
        let timeout = self.timeout;
        self.timeout = timeout * 2;
        let reply = self.read_reply("the reply to the message data").await;
        self.timeout = timeout;
        reply
    }

    /// Ends the session politely (errors ignored).
    pub async fn quit(mut self) {
        let _ = tokio::time::timeout(Duration::from_secs(5), self.command("QUIT")).await;
    }

    async fn write(&mut self, data: &[u8]) -> Result<(), ClientError> {
        let timeout = self.timeout;
        let write = async {
            match &mut self.stream {
                Stream::Plain(s) => {
                    s.write_all(data).await?;
                    s.flush().await
                }
                Stream::Tls(s) => {
                    s.write_all(data).await?;
                    s.flush().await
                }
                Stream::Gone => Err(std::io::Error::other("no stream")),
            }
        };
        tokio::time::timeout(timeout, write)
            .await
            .map_err(|_| ClientError::Timeout("a write"))??;
        Ok(())
    }

    async fn fill(&mut self, what: &'static str) -> Result<(), ClientError> {
        let mut chunk = [0u8; 4096];
        let timeout = self.timeout;
        let read = async {
            match &mut self.stream {
                Stream::Plain(s) => s.read(&mut chunk).await,
                Stream::Tls(s) => s.read(&mut chunk).await,
                Stream::Gone => Err(std::io::Error::other("no stream")),
            }
        };
        let n = tokio::time::timeout(timeout, read)
            .await
            .map_err(|_| ClientError::Timeout(what))??;
        if n == 0 {
            return Err(ClientError::Io(std::io::Error::new(
                std::io::ErrorKind::UnexpectedEof,
                "the server closed the connection",
            )));
        }
        self.buffer.extend_from_slice(&chunk[..n]);
        Ok(())
    }

    /// Reads one whole (possibly multi-line) reply.
    async fn read_reply(&mut self, what: &'static str) -> Result<Reply, ClientError> {
        let mut lines = Vec::new();
        let mut code = None;
        loop {
            let Some(end) = self.buffer.iter().position(|&b| b == b'\n') else {
                if self.buffer.len() > MAX_LINE {
                    return Err(ClientError::Protocol("reply line too long".into()));
                }
                self.fill(what).await?;
                continue;
            };
            let raw: Vec<u8> = self.buffer.drain(..=end).collect();
            let line = String::from_utf8_lossy(&raw);
            let line = line.trim_end_matches(['\r', '\n']);
            let (this_code, last, text) = parse_line(line)?;
            if *code.get_or_insert(this_code) != this_code {
                return Err(ClientError::Protocol(format!(
                    "mixed reply codes in {line:?}"
                )));
            }
            lines.push(text.to_string());
            if lines.len() > MAX_LINES {
                return Err(ClientError::Protocol("reply has too many lines".into()));
            }
            if last {
                return Ok(Reply {
                    code: this_code,
                    lines,
                });
            }
        }
    }
}

/// `250-text` / `250 text` / `250` → (code, last line?, text).
fn parse_line(line: &str) -> Result<(u16, bool, &str), ClientError> {
    let bytes = line.as_bytes();
    if bytes.len() < 3
        || !bytes[..3].iter().all(u8::is_ascii_digit)
        || !(b'2'..=b'5').contains(&bytes[0])
    {
        return Err(ClientError::Protocol(format!(
            "not a reply line: {:?}",
            line.chars().take(80).collect::<String>()
        )));
    }
    let code: u16 = line[..3]
        .parse()
        .map_err(|_| ClientError::Protocol(line.into()))?;
    match bytes.get(3) {
        None => Ok((code, true, "")),
        Some(b' ') => Ok((code, true, &line[4..])),
        Some(b'-') => Ok((code, false, &line[4..])),
        Some(_) => Err(ClientError::Protocol(format!("not a reply line: {line:?}"))),
    }
}

/// The message as sent after DATA: lines end in CRLF (a bare LF or CR becomes CRLF), a line
/// starting with `.` gets a second one (RFC 5321 4.5.2), and `.CRLF` ends it.
pub fn dot_stuff(message: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(message.len() + message.len() / 64 + 5);
    let mut at_line_start = true;
    let mut i = 0;
    while i < message.len() {
        let b = message[i];
        if at_line_start && b == b'.' {
            out.push(b'.');
        }
        match b {
            b'\r' => {
                out.extend_from_slice(b"\r\n");
                if message.get(i + 1) == Some(&b'\n') {
                    i += 1;
                }
                at_line_start = true;
            }
            b'\n' => {
                out.extend_from_slice(b"\r\n");
                at_line_start = true;
            }
            _ => {
                out.push(b);
                at_line_start = false;
            }
        }
        i += 1;
    }
    if !at_line_start {
        out.extend_from_slice(b"\r\n");
    }
    out.extend_from_slice(b".\r\n");
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn dot_stuffing_doubles_leading_dots_and_terminates() {
        assert_eq!(dot_stuff(b"a\r\n.b\r\n"), b"a\r\n..b\r\n.\r\n");
        assert_eq!(dot_stuff(b".\r\n"), b"..\r\n.\r\n");
        assert_eq!(dot_stuff(b"no newline"), b"no newline\r\n.\r\n");
        assert_eq!(dot_stuff(b"bare\nlf\r\n."), b"bare\r\nlf\r\n..\r\n.\r\n");
        assert_eq!(dot_stuff(b"x.y\r\n"), b"x.y\r\n.\r\n");
        assert_eq!(dot_stuff(b""), b".\r\n");
    }

    #[test]
    fn reply_lines_parse_and_garbage_is_refused() {
        assert_eq!(parse_line("250-a b").unwrap(), (250, false, "a b"));
        assert_eq!(parse_line("250 ok").unwrap(), (250, true, "ok"));
        assert_eq!(parse_line("354").unwrap(), (354, true, ""));
        for bad in ["", "25", "abc", "250x", "650 no", "hello world"] {
            assert!(parse_line(bad).is_err(), "{bad:?}");
        }
    }

    #[test]
    fn enhanced_status_comes_from_the_reply_when_consistent() {
        let reply = |code, text: &str| Reply {
            code,
            lines: vec![text.to_string()],
        };
        assert_eq!(reply(550, "5.1.1 no such user").status(), "5.1.1");
        assert_eq!(reply(451, "4.7.1 greylisted").status(), "4.7.1");
        assert_eq!(reply(550, "4.1.1 inconsistent").status(), "5.0.0");
        assert_eq!(reply(450, "busy").status(), "4.0.0");
        assert_eq!(reply(550, "no").one_line(), "550 no");
    }

    #[test]
    fn capabilities_are_read_from_ehlo() {
        let reply = Reply {
            code: 250,
            lines: [
                "mx.example",
                "PIPELINING",
                "SIZE 1000",
                "STARTTLS",
                "AUTH LOGIN PLAIN",
                "smtputf8",
                "DSN",
            ]
            .map(String::from)
            .to_vec(),
        };
        let caps = Capabilities::parse(&reply);
        assert!(caps.starttls && caps.auth_plain && caps.auth_login && caps.smtputf8 && caps.dsn);
        assert_eq!(caps.size, Some(1000));
        assert!(!caps.eight_bit_mime);
    }
}
