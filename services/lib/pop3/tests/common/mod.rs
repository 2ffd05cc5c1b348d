//! A test driver for the POP3 core, doing what the `access` service does with sockets and stores
//! but in memory: it feeds lines one at a time, performs every [`Action`] (credential check,
//! maildrop lock, message streaming through [`MessageEncoder`], commit) and records all bytes it
//! would have written, so tests read as transcripts.
#![allow(dead_code, clippy::unwrap_used, clippy::expect_used)]

use base64::Engine;
use base64::engine::general_purpose::STANDARD;
use mc_pop3::{
    Action, Config, LoginFailure, Maildrop, MaildropEntry, MessageEncoder, Reply, Session,
};

pub const HOST: &str = "pop.test";
pub const USER: &str = "alice@example.com";
pub const PASSWORD: &str = "correct horse";

/// Listener configuration: STLS offered, no plaintext login without TLS.
pub fn config() -> Config {
    Config {
        tls_available: true,
        ..Config::new(HOST)
    }
}

pub fn plaintext_config() -> Config {
    Config {
        allow_plaintext_auth: true,
        ..config()
    }
}

/// The default mailbox: CRLF lines, bare LF lines with a dot line, and a longer body.
pub fn mailbox() -> Vec<(String, Vec<u8>)> {
    vec![
        ("uid-1".into(), b"Subject: one\r\n\r\nhello\r\n".to_vec()),
        (
            "uid-2".into(),
            b"Subject: two\n\n.dot line\n.\nbody".to_vec(),
        ),
        (
            "uid-3".into(),
            b"Subject: three\r\nX: y\r\n\r\nl1\r\nl2\r\nl3\r\n".to_vec(),
        ),
    ]
}

/// Octets of a message once every line end is CRLF (what [`MaildropEntry::size`] holds).
pub fn crlf_size(message: &[u8]) -> u64 {
    let mut size = 0u64;
    let mut after_cr = false;
    for &byte in message {
        size += match (byte, after_cr) {
            (b'\n', true) => 0,
            (b'\r' | b'\n', _) => 2,
            _ => 1,
        };
        after_cr = byte == b'\r';
    }
    size
}

pub struct Server {
    pub session: Session,
    pub mailbox: Vec<(String, Vec<u8>)>,
    /// Unread input, as a socket buffer would hold it.
    pub input: Vec<u8>,
    /// Every byte written to the client, greeting included.
    pub output: Vec<u8>,
    /// Every reply, in order (message bodies are only in `output`).
    pub replies: Vec<Reply>,
    pub closed: bool,
    pub lock_held: bool,
    pub locked_elsewhere: bool,
    pub store_down: bool,
    pub commit_fails: bool,
    /// Messages (0-based) whose bodies cannot be read.
    pub unreadable: Vec<usize>,
    pub committed: Option<Vec<usize>>,
    pub handshakes: u32,
    /// Bytes handed to the encoder per call, to exercise chunk boundaries.
    pub chunk_size: usize,
}

impl Server {
    pub fn new(config: Config) -> Self {
        Self::with_tls(config, false)
    }

    pub fn with_tls(config: Config, tls: bool) -> Self {
        let session = Session::new(config, tls);
        let greeting = session.greeting();
        let mut server = Self {
            session,
            mailbox: mailbox(),
            input: Vec::new(),
            output: Vec::new(),
            replies: Vec::new(),
            closed: false,
            lock_held: false,
            locked_elsewhere: false,
            store_down: false,
            commit_fails: false,
            unreadable: Vec::new(),
            committed: None,
            handshakes: 0,
            chunk_size: 5,
        };
        server.write_reply(greeting);
        server
    }

    /// A session logged in over a plaintext-permitting listener.
    pub fn logged_in() -> Self {
        let mut server = Self::new(plaintext_config());
        server.send(&format!("USER {USER}\r\n"));
        let reply = server.send(&format!("PASS {PASSWORD}\r\n"));
        assert!(reply.starts_with("+OK logged in"), "{reply}");
        server
    }

    /// Sends bytes (any number of lines, possibly pipelined) and returns what was written back.
    pub fn send(&mut self, input: &str) -> String {
        self.send_bytes(input.as_bytes())
    }

    pub fn send_bytes(&mut self, input: &[u8]) -> String {
        let before = self.output.len();
        self.input.extend_from_slice(input);
        while !self.closed {
            let Some(end) = self.input.iter().position(|&b| b == b'\n') else {
                break;
            };
            let line: Vec<u8> = self.input.drain(..=end).collect();
            let action = self.session.on_line(&line);
            self.perform(action);
        }
        String::from_utf8_lossy(&self.output[before..]).into_owned()
    }

    fn write_reply(&mut self, reply: Reply) {
        self.output.extend_from_slice(reply.as_bytes());
        self.replies.push(reply);
    }

    pub fn perform(&mut self, action: Action) {
        match action {
            Action::Reply(reply) => self.write_reply(reply),
            Action::Close(reply) => {
                self.write_reply(reply);
                self.closed = true;
                self.lock_held = false;
            }
            Action::StartTls(reply) => {
                self.write_reply(reply);
                self.input.clear();
                self.handshakes += 1;
                self.session.tls_started();
            }
            Action::Authenticate { user, password } => {
                let next = if user != USER || password.expose() != PASSWORD {
                    self.session.login_failed(LoginFailure::BadCredentials)
                } else if self.store_down {
                    self.session.login_failed(LoginFailure::Temporary)
                } else if self.locked_elsewhere {
                    self.session.login_failed(LoginFailure::MaildropLocked)
                } else {
                    self.lock_held = true;
                    self.session.login_succeeded(self.maildrop())
                };
                self.perform(next);
            }
            Action::SendMessage {
                index,
                top_lines,
                reply,
            } => {
                if self.unreadable.contains(&index) {
                    let reply = self.session.retrieval_failed();
                    self.write_reply(reply);
                    return;
                }
                self.write_reply(reply);
                let mut encoder = MessageEncoder::new(top_lines);
                let mut out = Vec::new();
                for chunk in self.mailbox[index].1.chunks(self.chunk_size.max(1)) {
                    if encoder.is_complete() {
                        break;
                    }
                    encoder.encode(chunk, &mut out);
                }
                encoder.finish(&mut out);
                self.output.extend_from_slice(&out);
            }
            Action::Commit { deleted } => {
                if !self.commit_fails {
                    for &index in deleted.iter().rev() {
                        self.mailbox.remove(index);
                    }
                }
                self.committed = Some(deleted);
                self.lock_held = false;
                let next = self.session.commit_done(!self.commit_fails);
                self.perform(next);
            }
        }
    }

    pub fn maildrop(&self) -> Maildrop {
        let entries = self
            .mailbox
            .iter()
            .map(|(uid, message)| MaildropEntry {
                size: crlf_size(message),
                uid: uid.clone(),
            })
            .collect();
        Maildrop::new(entries).expect("valid listing")
    }
}

/// A SASL PLAIN response, base64-encoded.
pub fn plain(authzid: &str, user: &str, password: &str) -> String {
    STANDARD.encode(format!("{authzid}\0{user}\0{password}"))
}

/// A server after a successful STLS (no login yet).
pub fn tls_server() -> Server {
    let mut server = Server::new(config());
    assert_eq!(server.send("STLS\r\n"), "+OK Begin TLS negotiation\r\n");
    assert!(server.session.is_tls());
    server
}
