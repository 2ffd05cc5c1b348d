//! Transcript tests of the sans-IO SMTP core: a small driver feeds bytes to a [`Session`] the way
//! `smtp-ingress` does (lines, DATA through a [`DataDecoder`], BDAT chunks by count) and records
//! every reply, so each test states a conversation and its exact codes and enhanced codes.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use base64::Engine;
use base64::engine::general_purpose::STANDARD;
use mc_smtp::{
    Action, BareLineEndings, DataDecoder, Progress, Reply, Session, SessionConfig, Status,
    Transaction, VrfyMode, replies,
};
use mc_types::EmailAddress;

const QUEUE_ID: &str = "Q1";

fn config() -> SessionConfig {
    SessionConfig {
        hostname: "mx.test".into(),
        max_message_bytes: 10_000,
        max_recipients: 100,
        max_bad_commands: 20,
        max_auth_failures: 3,
        vrfy: VrfyMode::Disabled,
        starttls: true,
        auth: true,
        allow_plaintext_auth: false,
        require_auth: false,
        allow_empty_sender: true,
        postmaster: EmailAddress::parse("postmaster@mx.test").unwrap(),
    }
}

/// `"503 5.5.1"` for a reply with an enhanced code, `"354"` for one without.
fn summary(reply: &Reply) -> String {
    match reply.status {
        Some(Status(class, subject, detail)) => {
            format!("{} {class}.{subject}.{detail}", reply.code)
        }
        None => reply.code.to_string(),
    }
}

fn b64(text: &str) -> String {
    STANDARD.encode(text)
}

enum Mode {
    Lines,
    Data(DataDecoder, Vec<u8>),
    Chunk {
        size: u64,
        remaining: u64,
        last: bool,
        /// `Some` for a discarded chunk: the reply sent once it has been read.
        discard: Option<Reply>,
    },
    Closed,
}

struct Delivered {
    transaction: Transaction,
    content: Vec<u8>,
}

/// The driver: moves bytes, accepts every sender and recipient, takes "right" as the only
/// correct password and stores messages in memory.
struct Client {
    session: Session,
    mode: Mode,
    bare_line_endings: BareLineEndings,
    buffer: Vec<u8>,
    chunks: Vec<u8>,
    replies: Vec<Reply>,
    delivered: Vec<Delivered>,
    /// The chunk being discarded ends the session.
    closing: bool,
}

impl Client {
    fn new(config: SessionConfig) -> Self {
        Self::with_tls(config, false)
    }

    fn with_tls(config: SessionConfig, tls: bool) -> Self {
        Self {
            session: Session::new(config, tls),
            mode: Mode::Lines,
            closing: false,
            bare_line_endings: BareLineEndings::Keep,
            buffer: Vec::new(),
            chunks: Vec::new(),
            replies: Vec::new(),
            delivered: Vec::new(),
        }
    }

    /// A client that has already said EHLO.
    fn greeted(config: SessionConfig) -> Self {
        let mut client = Self::new(config);
        assert_eq!(client.send("EHLO client.test\r\n"), ["250"]);
        client
    }

    fn in_transaction(config: SessionConfig) -> Self {
        let mut client = Self::greeted(config);
        assert_eq!(
            client.send("MAIL FROM:<a@example.com>\r\nRCPT TO:<b@example.com>\r\n"),
            ["250 2.1.0", "250 2.1.5"]
        );
        client
    }

    /// Sends bytes (any number of pipelined lines) and returns the replies they caused.
    fn send(&mut self, input: &str) -> Vec<String> {
        self.send_bytes(input.as_bytes())
    }

    fn send_bytes(&mut self, input: &[u8]) -> Vec<String> {
        let before = self.replies.len();
        self.buffer.extend_from_slice(input);
        self.process();
        self.replies[before..].iter().map(summary).collect()
    }

    fn last(&self) -> &Reply {
        self.replies.last().expect("a reply")
    }

    fn is_closed(&self) -> bool {
        matches!(self.mode, Mode::Closed)
    }

    fn process(&mut self) {
        loop {
            match std::mem::replace(&mut self.mode, Mode::Lines) {
                Mode::Closed => {
                    self.mode = Mode::Closed;
                    self.buffer.clear();
                    return;
                }
                Mode::Lines => {
                    let Some(end) = self.buffer.iter().position(|&b| b == b'\n') else {
                        return;
                    };
                    let line: Vec<u8> = self.buffer.drain(..=end).collect();
                    let action = self.session.line(&line);
                    self.handle(action);
                }
                Mode::Data(mut decoder, mut content) => {
                    match decoder.feed(&self.buffer, &mut content) {
                        Progress::NeedMore => {
                            self.buffer.clear();
                            self.mode = Mode::Data(decoder, content);
                            return;
                        }
                        Progress::Done { consumed } => {
                            self.buffer.drain(..consumed);
                            let refused = self.bare_line_endings == BareLineEndings::Keep
                                && decoder.bare_line_endings() > 0;
                            self.finish_message(content, refused);
                        }
                    }
                }
                Mode::Chunk {
                    size,
                    remaining,
                    last,
                    discard,
                } => {
                    let take = remaining.min(self.buffer.len() as u64) as usize;
                    let bytes: Vec<u8> = self.buffer.drain(..take).collect();
                    let remaining = remaining - take as u64;
                    if discard.is_none() {
                        self.chunks.extend_from_slice(&bytes);
                    }
                    if remaining > 0 {
                        self.mode = Mode::Chunk {
                            size,
                            remaining,
                            last,
                            discard,
                        };
                        return;
                    }
                    if let Some(reply) = discard {
                        self.replies.push(reply);
                        if self.closing {
                            self.mode = Mode::Closed;
                            return;
                        }
                    } else if last {
                        let content = std::mem::take(&mut self.chunks);
                        self.finish_message(content, false);
                    } else {
                        let reply = self.session.chunk_received(size);
                        self.replies.push(reply);
                    }
                }
            }
        }
    }

    fn handle(&mut self, action: Action) {
        match action {
            Action::Reply(reply) => self.replies.push(reply),
            Action::Close(reply) => {
                self.replies.push(reply);
                self.mode = Mode::Closed;
            }
            Action::StartTls => {
                self.replies.push(replies::ready_for_tls());
                // Bytes pipelined after STARTTLS were sent in clear: they are dropped.
                self.buffer.clear();
                self.session.tls_started();
            }
            Action::Authenticate(credentials) => {
                if credentials.password == "right" {
                    let reply = self.session.auth_succeeded(credentials.login);
                    self.replies.push(reply);
                } else {
                    let action = self.session.auth_failed();
                    self.handle(action);
                }
            }
            Action::CheckMail(mail) => {
                let reply = self.session.accept_mail(mail);
                self.replies.push(reply);
            }
            Action::CheckRecipient(rcpt) => {
                let reply = self.session.accept_recipient(rcpt);
                self.replies.push(reply);
            }
            Action::StartData => {
                self.replies.push(replies::start_data());
                self.mode = Mode::Data(DataDecoder::new(self.bare_line_endings), Vec::new());
            }
            Action::ReceiveChunk { size, last } => {
                self.mode = Mode::Chunk {
                    size,
                    remaining: size,
                    last,
                    discard: None,
                };
            }
            Action::DiscardChunk { size, reply, close } => {
                self.closing = close;
                self.mode = Mode::Chunk {
                    size,
                    remaining: size,
                    last: false,
                    discard: Some(reply),
                };
            }
        }
    }

    fn finish_message(&mut self, content: Vec<u8>, refused: bool) {
        let transaction = self
            .session
            .take_transaction()
            .expect("a transaction at end of data");
        if refused {
            self.replies.push(replies::bare_line_endings());
        } else {
            self.delivered.push(Delivered {
                transaction,
                content,
            });
            self.replies.push(replies::queued(QUEUE_ID));
        }
        self.session.message_finished();
    }
}

// ---------------------------------------------------------------------------------------------
// Ordering (RFC 5321 section 4.1.4)

#[test]
fn banner_is_220_with_the_hostname() {
    let client = Client::new(config());
    assert_eq!(
        client.session.banner().to_bytes(),
        b"220 mx.test ESMTP ready\r\n"
    );
}

#[test]
fn mail_before_helo_is_503() {
    let mut client = Client::new(config());
    assert_eq!(client.send("MAIL FROM:<a@example.com>\r\n"), ["503 5.5.1"]);
    assert_eq!(client.last().lines, ["Use HELO/EHLO first"]);
    assert!(client.session.transaction().is_none());
}

#[test]
fn rcpt_before_mail_is_503() {
    let mut client = Client::greeted(config());
    assert_eq!(client.send("RCPT TO:<b@example.com>\r\n"), ["503 5.5.1"]);
    assert_eq!(client.last().lines, ["Must have sender first"]);
}

#[test]
fn data_without_recipients_is_503() {
    let mut client = Client::greeted(config());
    assert_eq!(client.send("DATA\r\n"), ["503 5.5.1"]);
    assert_eq!(client.send("MAIL FROM:<a@example.com>\r\n"), ["250 2.1.0"]);
    assert_eq!(client.send("DATA\r\n"), ["503 5.5.1"]);
    assert_eq!(
        client.last().lines,
        ["Must have sender and recipient first"]
    );
    // The session stays in command mode: the next line is a command, not message content.
    assert_eq!(client.send("NOOP\r\n"), ["250 2.0.0"]);
}

#[test]
fn data_before_helo_is_503_use_helo_first() {
    let mut client = Client::new(config());
    assert_eq!(client.send("DATA\r\n"), ["503 5.5.1"]);
    assert_eq!(client.last().lines, ["Use HELO/EHLO first"]);
}

#[test]
fn second_mail_in_transaction_is_503() {
    let mut client = Client::greeted(config());
    assert_eq!(client.send("MAIL FROM:<a@example.com>\r\n"), ["250 2.1.0"]);
    assert_eq!(client.send("MAIL FROM:<c@example.com>\r\n"), ["503 5.5.1"]);
    assert_eq!(
        client.last().lines,
        ["Issue a reset if you want to start over"]
    );
    let sender = &client.session.transaction().unwrap().mail.sender;
    assert_eq!(
        sender.as_ref().map(|s| s.to_string()).as_deref(),
        Some("a@example.com")
    );
}

#[test]
fn rset_clears_the_transaction() {
    let mut client = Client::in_transaction(config());
    assert_eq!(client.send("RSET\r\n"), ["250 2.0.0"]);
    assert!(client.session.transaction().is_none());
    assert_eq!(client.send("RCPT TO:<b@example.com>\r\n"), ["503 5.5.1"]);
    assert_eq!(client.send("MAIL FROM:<c@example.com>\r\n"), ["250 2.1.0"]);
    // RSET keeps the greeting.
    assert_eq!(
        client.session.greeting().map(|g| g.name.as_str()),
        Some("client.test")
    );
}

#[test]
fn ehlo_in_transaction_resets_it() {
    let mut client = Client::in_transaction(config());
    assert_eq!(client.send("EHLO again.test\r\n"), ["250"]);
    assert!(client.session.transaction().is_none());
}

#[test]
fn noop_and_help_work_before_helo() {
    let mut client = Client::new(config());
    assert_eq!(client.send("NOOP\r\nHELP\r\n"), ["250 2.0.0", "214 2.0.0"]);
}

#[test]
fn full_transaction_with_data_is_queued_once() {
    let mut client = Client::in_transaction(config());
    assert_eq!(client.send("RCPT TO:<c@example.com>\r\n"), ["250 2.1.5"]);
    assert_eq!(client.send("DATA\r\n"), ["354"]);
    assert_eq!(
        client.send("Subject: hi\r\n\r\n..dot\r\n"),
        Vec::<String>::new()
    );
    assert_eq!(client.send(".\r\n"), ["250 2.0.0"]);
    assert_eq!(client.last().lines, ["OK queued as Q1"]);
    assert_eq!(client.delivered.len(), 1);
    assert_eq!(client.delivered[0].content, b"Subject: hi\r\n\r\n.dot\r\n");
    assert_eq!(client.delivered[0].transaction.recipients.len(), 2);
    assert!(client.session.transaction().is_none());
    // A new transaction may start without RSET.
    assert_eq!(client.send("MAIL FROM:<a@example.com>\r\n"), ["250 2.1.0"]);
}

#[test]
fn pipelined_transaction_in_one_packet() {
    let mut client = Client::new(config());
    let replies = client.send(
        "EHLO c.test\r\nMAIL FROM:<a@example.com>\r\nRCPT TO:<b@example.com>\r\nDATA\r\n\
         body\r\n.\r\nQUIT\r\n",
    );
    assert_eq!(
        replies,
        [
            "250",
            "250 2.1.0",
            "250 2.1.5",
            "354",
            "250 2.0.0",
            "221 2.0.0"
        ]
    );
    assert_eq!(client.delivered.len(), 1);
    assert!(client.is_closed());
}

#[test]
fn helo_gives_250_and_ehlo_lists_extensions() {
    let mut client = Client::new(config());
    assert_eq!(client.send("HELO client.test\r\n"), ["250"]);
    assert_eq!(client.last().to_bytes(), b"250 mx.test\r\n");
    assert_eq!(
        client
            .session
            .greeting()
            .map(|g| (g.name.as_str(), g.esmtp)),
        Some(("client.test", false))
    );

    assert_eq!(client.send("EHLO client.test\r\n"), ["250"]);
    assert_eq!(
        client.last().lines,
        [
            "mx.test",
            "PIPELINING",
            "SIZE 10000",
            "8BITMIME",
            "SMTPUTF8",
            "ENHANCEDSTATUSCODES",
            "CHUNKING",
            "DSN",
            "STARTTLS",
            "HELP"
        ]
    );
    assert_eq!(
        client.last().to_bytes(),
        b"250-mx.test\r\n250-PIPELINING\r\n250-SIZE 10000\r\n250-8BITMIME\r\n250-SMTPUTF8\r\n\
          250-ENHANCEDSTATUSCODES\r\n250-CHUNKING\r\n250-DSN\r\n250-STARTTLS\r\n250 HELP\r\n"
    );
    assert!(client.session.greeting().unwrap().esmtp);
}

fn ehlo_lines(config: SessionConfig, tls: bool) -> Vec<String> {
    let mut client = Client::with_tls(config, tls);
    assert_eq!(client.send("EHLO client.test\r\n"), ["250"]);
    client.last().lines.iter().map(|l| l.to_string()).collect()
}

#[test]
fn ehlo_offers_starttls_only_without_tls_and_when_configured() {
    let has = |lines: &[String], word: &str| lines.iter().any(|l| l == word);
    assert!(has(&ehlo_lines(config(), false), "STARTTLS"));
    assert!(!has(&ehlo_lines(config(), true), "STARTTLS"));
    let no_tls = SessionConfig {
        starttls: false,
        ..config()
    };
    assert!(!has(&ehlo_lines(no_tls, false), "STARTTLS"));
}

#[test]
fn ehlo_offers_auth_only_with_tls_or_plaintext_allowed() {
    let has_auth = |lines: Vec<String>| lines.iter().any(|l| l == "AUTH PLAIN LOGIN");
    assert!(!has_auth(ehlo_lines(config(), false)));
    assert!(has_auth(ehlo_lines(config(), true)));
    let plaintext = SessionConfig {
        allow_plaintext_auth: true,
        ..config()
    };
    assert!(has_auth(ehlo_lines(plaintext, false)));
    let no_auth = SessionConfig {
        auth: false,
        allow_plaintext_auth: true,
        ..config()
    };
    assert!(!has_auth(ehlo_lines(no_auth.clone(), false)));
    assert!(!has_auth(ehlo_lines(no_auth, true)));
}

#[test]
fn ehlo_size_zero_means_no_limit() {
    let unlimited = SessionConfig {
        max_message_bytes: 0,
        ..config()
    };
    assert!(ehlo_lines(unlimited, false).iter().any(|l| l == "SIZE 0"));
}

#[test]
fn ehlo_with_invalid_domain_is_501() {
    let mut client = Client::new(config());
    assert_eq!(client.send("EHLO\r\n"), ["501 5.5.4"]);
    assert_eq!(client.send("EHLO bad<host>\r\n"), ["501 5.5.4"]);
    assert_eq!(client.last().lines, ["EHLO Invalid domain address"]);
    assert_eq!(client.send("HELO bad\"host\r\n"), ["501 5.5.4"]);
    assert_eq!(client.last().lines, ["HELO Invalid domain address"]);
    assert!(client.session.greeting().is_none());
    assert_eq!(client.send("EHLO [192.0.2.1]\r\n"), ["250"]);
}

// ---------------------------------------------------------------------------------------------
// STARTTLS (RFC 3207)

#[test]
fn starttls_restarts_the_session() {
    let mut client = Client::in_transaction(config());
    assert_eq!(client.send("STARTTLS\r\n"), ["220 2.0.0"]);
    assert!(client.session.is_tls());
    assert!(client.session.greeting().is_none());
    assert!(client.session.transaction().is_none());
    assert_eq!(client.send("MAIL FROM:<a@example.com>\r\n"), ["503 5.5.1"]);
    assert_eq!(client.last().lines, ["Use HELO/EHLO first"]);
    assert_eq!(client.send("EHLO client.test\r\n"), ["250"]);
    assert!(!client.last().lines.iter().any(|l| l == "STARTTLS"));
    assert!(client.last().lines.iter().any(|l| l == "AUTH PLAIN LOGIN"));
}

#[test]
fn commands_pipelined_after_starttls_are_dropped() {
    let mut client = Client::greeted(config());
    // CVE-2011-0411 style injection: the MAIL was sent in clear and must not run inside TLS.
    assert_eq!(
        client.send("STARTTLS\r\nMAIL FROM:<a@example.com>\r\n"),
        ["220 2.0.0"]
    );
    assert!(client.session.transaction().is_none());
}

#[test]
fn starttls_refusals() {
    let mut client = Client::new(config());
    assert_eq!(client.send("STARTTLS\r\n"), ["503 5.5.1"]);

    let mut client = Client::with_tls(config(), true);
    client.send("EHLO c.test\r\n");
    assert_eq!(client.send("STARTTLS\r\n"), ["503 5.5.1"]);
    assert_eq!(client.last().lines, ["TLS already active"]);

    let mut client = Client::greeted(SessionConfig {
        starttls: false,
        ..config()
    });
    assert_eq!(client.send("STARTTLS\r\n"), ["454 4.7.0"]);
}

// ---------------------------------------------------------------------------------------------
// AUTH (RFC 4954)

fn tls_client(config: SessionConfig) -> Client {
    let mut client = Client::with_tls(config, true);
    assert_eq!(client.send("EHLO client.test\r\n"), ["250"]);
    client
}

#[test]
fn auth_not_offered_without_tls_is_538() {
    let mut client = Client::greeted(config());
    let line = format!("AUTH PLAIN {}\r\n", b64("\0u@example.com\0right"));
    assert_eq!(client.send(&line), ["538 5.7.11"]);
    assert!(client.session.authenticated().is_none());
}

#[test]
fn auth_disabled_is_502() {
    let mut client = tls_client(SessionConfig {
        auth: false,
        ..config()
    });
    assert_eq!(client.send("AUTH LOGIN\r\n"), ["502 5.5.1"]);
}

#[test]
fn auth_before_helo_is_503() {
    let mut client = Client::with_tls(config(), true);
    assert_eq!(client.send("AUTH LOGIN\r\n"), ["503 5.5.1"]);
}

#[test]
fn auth_plain_allowed_in_clear_when_configured() {
    let mut client = Client::greeted(SessionConfig {
        allow_plaintext_auth: true,
        ..config()
    });
    let line = format!("AUTH PLAIN {}\r\n", b64("\0u@example.com\0right"));
    assert_eq!(client.send(&line), ["235 2.7.0"]);
}

#[test]
fn auth_plain_with_initial_response() {
    let mut client = tls_client(config());
    let line = format!("AUTH PLAIN {}\r\n", b64("\0u@example.com\0right"));
    assert_eq!(client.send(&line), ["235 2.7.0"]);
    assert_eq!(client.session.authenticated(), Some("u@example.com"));
    // Once authenticated, EHLO no longer offers AUTH.
    assert_eq!(client.send("EHLO client.test\r\n"), ["250"]);
    assert!(!client.last().lines.iter().any(|l| l.starts_with("AUTH")));
}

#[test]
fn auth_plain_with_empty_challenge() {
    let mut client = tls_client(config());
    assert_eq!(client.send("AUTH PLAIN\r\n"), ["334"]);
    assert_eq!(client.last().to_bytes(), b"334 \r\n");
    assert!(client.session.expects_auth_response());
    let response = format!("{}\r\n", b64("u@example.com\0u@example.com\0right"));
    assert_eq!(client.send(&response), ["235 2.7.0"]);
    assert!(!client.session.expects_auth_response());
    assert_eq!(client.session.authenticated(), Some("u@example.com"));
}

#[test]
fn auth_plain_with_proxy_authorization_is_501() {
    let mut client = tls_client(config());
    let line = format!(
        "AUTH PLAIN {}\r\n",
        b64("admin@example.com\0u@example.com\0right")
    );
    assert_eq!(client.send(&line), ["501 5.5.2"]);
    assert!(client.session.authenticated().is_none());
}

#[test]
fn auth_plain_malformed_response_is_501() {
    let mut client = tls_client(config());
    assert_eq!(client.send("AUTH PLAIN\r\n"), ["334"]);
    assert_eq!(client.send("not base64!\r\n"), ["501 5.5.2"]);
    assert_eq!(client.last().lines, ["Invalid authentication response"]);
    assert!(!client.session.expects_auth_response());
    // Back in command mode.
    assert_eq!(client.send("NOOP\r\n"), ["250 2.0.0"]);
}

#[test]
fn auth_login_two_step() {
    let mut client = tls_client(config());
    assert_eq!(client.send("AUTH LOGIN\r\n"), ["334"]);
    assert_eq!(client.last().to_bytes(), b"334 VXNlcm5hbWU6\r\n");
    assert_eq!(
        client.send(&format!("{}\r\n", b64("u@example.com"))),
        ["334"]
    );
    assert_eq!(client.last().to_bytes(), b"334 UGFzc3dvcmQ6\r\n");
    assert_eq!(client.send(&format!("{}\r\n", b64("right"))), ["235 2.7.0"]);
    assert_eq!(client.session.authenticated(), Some("u@example.com"));
}

#[test]
fn auth_login_with_initial_username() {
    let mut client = tls_client(config());
    let line = format!("AUTH LOGIN {}\r\n", b64("u@example.com"));
    assert_eq!(client.send(&line), ["334"]);
    assert_eq!(client.last().lines, ["UGFzc3dvcmQ6"]);
    assert_eq!(client.send(&format!("{}\r\n", b64("right"))), ["235 2.7.0"]);
}

#[test]
fn auth_login_empty_username_is_501() {
    let mut client = tls_client(config());
    assert_eq!(client.send("AUTH LOGIN\r\n"), ["334"]);
    assert_eq!(client.send("=\r\n"), ["501 5.5.2"]);
    assert!(!client.session.expects_auth_response());
}

#[test]
fn auth_line_that_looks_like_a_command_is_a_sasl_response() {
    let mut client = tls_client(config());
    assert_eq!(client.send("AUTH LOGIN\r\n"), ["334"]);
    // "QUIT" is valid base64 ("AB\x13"): it is taken as the user name, not as a command.
    assert_eq!(client.send("QUIT\r\n"), ["334"]);
    assert!(!client.is_closed());
    assert!(client.session.expects_auth_response());
    // A command line is not base64: a malformed response, and no transaction starts.
    assert_eq!(client.send("MAIL FROM:<a@example.com>\r\n"), ["501 5.5.2"]);
    assert!(client.session.transaction().is_none());
    assert!(!client.session.expects_auth_response());
}

#[test]
fn auth_cancel_with_star_is_501() {
    let mut client = tls_client(config());
    assert_eq!(client.send("AUTH PLAIN\r\n"), ["334"]);
    assert_eq!(client.send("*\r\n"), ["501 5.0.0"]);
    assert_eq!(client.last().lines, ["Authentication cancelled"]);
    assert_eq!(client.send("AUTH LOGIN\r\n"), ["334"]);
    assert_eq!(
        client.send(&format!("{}\r\n", b64("u@example.com"))),
        ["334"]
    );
    assert_eq!(client.send("*\r\n"), ["501 5.0.0"]);
    assert!(client.session.authenticated().is_none());
    assert!(!client.session.expects_auth_response());
}

#[test]
fn auth_unknown_mechanism_is_504() {
    let mut client = tls_client(config());
    assert_eq!(client.send("AUTH CRAM-MD5\r\n"), ["504 5.5.4"]);
    assert_eq!(client.send("AUTH\r\n"), ["504 5.5.4"]);
}

#[test]
fn wrong_password_is_535_and_third_failure_closes() {
    let mut client = tls_client(config());
    let wrong = format!("AUTH PLAIN {}\r\n", b64("\0u@example.com\0wrong"));
    assert_eq!(client.send(&wrong), ["535 5.7.8"]);
    assert_eq!(
        client.last().lines,
        ["Authentication failed. Restarting authentication process"]
    );
    assert!(!client.is_closed());
    assert_eq!(client.send(&wrong), ["535 5.7.8"]);
    assert!(!client.is_closed());
    assert_eq!(client.send(&wrong), ["535 5.7.8"]);
    assert!(client.is_closed());
    assert!(client.session.is_closed());
    assert!(client.session.authenticated().is_none());
}

#[test]
fn auth_inside_transaction_is_503() {
    let mut client = Client::with_tls(config(), true);
    client.send("EHLO c.test\r\nMAIL FROM:<a@example.com>\r\n");
    let line = format!("AUTH PLAIN {}\r\n", b64("\0u@example.com\0right"));
    assert_eq!(client.send(&line), ["503 5.5.1"]);
    assert_eq!(
        client.last().lines,
        ["AUTH is not allowed during a mail transaction"]
    );
    assert!(client.session.authenticated().is_none());
}

#[test]
fn second_auth_is_503() {
    let mut client = tls_client(config());
    let line = format!("AUTH PLAIN {}\r\n", b64("\0u@example.com\0right"));
    assert_eq!(client.send(&line), ["235 2.7.0"]);
    assert_eq!(client.send(&line), ["503 5.5.1"]);
    assert_eq!(client.last().lines, ["Already authenticated"]);
}

#[test]
fn submission_requires_auth_530() {
    let submission = SessionConfig {
        require_auth: true,
        ..config()
    };
    let mut client = tls_client(submission);
    assert_eq!(client.send("MAIL FROM:<u@example.com>\r\n"), ["530 5.7.0"]);
    assert!(client.session.transaction().is_none());
    let line = format!("AUTH PLAIN {}\r\n", b64("\0u@example.com\0right"));
    assert_eq!(client.send(&line), ["235 2.7.0"]);
    assert_eq!(client.send("MAIL FROM:<u@example.com>\r\n"), ["250 2.1.0"]);
}

#[test]
fn revoked_authentication_requires_auth_again() {
    let mut client = tls_client(SessionConfig {
        require_auth: true,
        ..config()
    });
    let line = format!("AUTH PLAIN {}\r\n", b64("\0u@example.com\0right"));
    assert_eq!(client.send(&line), ["235 2.7.0"]);
    client.session.revoke_authentication();
    assert_eq!(client.send("MAIL FROM:<u@example.com>\r\n"), ["530 5.7.0"]);
}

#[test]
fn starttls_forgets_plaintext_authentication() {
    let mut client = Client::greeted(SessionConfig {
        allow_plaintext_auth: true,
        ..config()
    });
    let line = format!("AUTH PLAIN {}\r\n", b64("\0u@example.com\0right"));
    assert_eq!(client.send(&line), ["235 2.7.0"]);
    assert_eq!(client.send("STARTTLS\r\n"), ["220 2.0.0"]);
    assert!(client.session.authenticated().is_none());
}

// ---------------------------------------------------------------------------------------------
// MAIL / RCPT parameters and limits

#[test]
fn mail_with_size_over_limit_is_552_5_3_4() {
    let mut client = Client::greeted(config());
    assert_eq!(
        client.send("MAIL FROM:<a@example.com> SIZE=20480\r\n"),
        ["552 5.3.4"]
    );
    assert_eq!(
        client.last().lines,
        ["Message size exceeds fixed maximum message size. Size: 20 KB, Max size: 9 KB"]
    );
    assert!(client.session.transaction().is_none());
    assert_eq!(
        client.send("MAIL FROM:<a@example.com> SIZE=10000\r\n"),
        ["250 2.1.0"]
    );
    assert_eq!(client.session.transaction().unwrap().mail.size, 10_000);
}

#[test]
fn too_many_recipients_is_452_4_5_3() {
    let mut client = Client::greeted(SessionConfig {
        max_recipients: 2,
        ..config()
    });
    let replies = client.send(
        "MAIL FROM:<a@example.com>\r\nRCPT TO:<r1@example.com>\r\nRCPT TO:<r2@example.com>\r\n\
         RCPT TO:<r3@example.com>\r\n",
    );
    assert_eq!(
        replies,
        ["250 2.1.0", "250 2.1.5", "250 2.1.5", "452 4.5.3"]
    );
    assert_eq!(client.session.transaction().unwrap().recipients.len(), 2);
    // The transaction goes on with the recipients it has.
    assert_eq!(client.send("DATA\r\nx\r\n.\r\n"), ["354", "250 2.0.0"]);
}

#[test]
fn duplicate_recipient_is_accepted_once() {
    let mut client = Client::in_transaction(config());
    assert_eq!(client.send("RCPT TO:<b@example.com>\r\n"), ["250 2.1.5"]);
    assert_eq!(client.send("RCPT TO:<B@EXAMPLE.COM>\r\n"), ["250 2.1.5"]);
    assert_eq!(client.session.transaction().unwrap().recipients.len(), 1);
}

#[test]
fn duplicate_recipient_at_the_limit_is_not_452() {
    let mut client = Client::greeted(SessionConfig {
        max_recipients: 1,
        ..config()
    });
    let replies = client.send(
        "MAIL FROM:<a@example.com>\r\nRCPT TO:<r1@example.com>\r\nRCPT TO:<r1@example.com>\r\n",
    );
    assert_eq!(replies, ["250 2.1.0", "250 2.1.5", "250 2.1.5"]);
}

#[test]
fn empty_sender_refused_when_disallowed_550() {
    let mut client = Client::greeted(SessionConfig {
        allow_empty_sender: false,
        ..config()
    });
    assert_eq!(client.send("MAIL FROM:<>\r\n"), ["550 5.1.7"]);
    assert_eq!(client.last().lines, ["Sender address must be specified"]);
    assert!(client.session.transaction().is_none());
}

#[test]
fn empty_sender_accepted_when_allowed() {
    let mut client = Client::greeted(config());
    assert_eq!(client.send("MAIL FROM:<>\r\n"), ["250 2.1.0"]);
    assert_eq!(client.session.transaction().unwrap().mail.sender, None);
}

#[test]
fn bad_addresses_are_550() {
    let mut client = Client::greeted(config());
    assert_eq!(client.send("MAIL FROM:<no-at-sign>\r\n"), ["550 5.1.7"]);
    assert_eq!(client.send("MAIL FROM:a@example.com\r\n"), ["550 5.5.4"]);
    assert_eq!(client.send("MAIL FROM:<a@example.com>\r\n"), ["250 2.1.0"]);
    assert_eq!(client.send("RCPT TO:<no-at-sign>\r\n"), ["550 5.1.3"]);
    assert_eq!(client.send("RCPT TO:<>\r\n"), ["550 5.1.3"]);
    assert_eq!(client.send("RCPT TO:<a@[127.0.0.1]>\r\n"), ["550 5.1.3"]);
    assert!(client.session.transaction().unwrap().recipients.is_empty());
}

#[test]
fn unsupported_mail_parameter_is_555() {
    let mut client = Client::greeted(config());
    assert_eq!(
        client.send("MAIL FROM:<a@example.com> FOO=BAR\r\n"),
        ["555 5.5.4"]
    );
    assert_eq!(
        client.send("MAIL FROM:<a@example.com> BODY=BINARYMIME\r\n"),
        ["501 5.5.4"]
    );
    assert_eq!(
        client.send("MAIL FROM:<a@example.com> SIZE=abc\r\n"),
        ["501 5.5.4"]
    );
}

#[test]
fn dsn_parameters_reach_the_transaction() {
    let mut client = Client::greeted(config());
    let replies = client.send(
        "MAIL FROM:<a@example.com> RET=FULL ENVID=xyz\r\n\
         RCPT TO:<b@example.com> NOTIFY=FAILURE,DELAY ORCPT=rfc822;b@example.com\r\n",
    );
    assert_eq!(replies, ["250 2.1.0", "250 2.1.5"]);
    let transaction = client.session.transaction().unwrap();
    assert_eq!(
        transaction.mail.dsn_return.map(|r| r.as_str()),
        Some("FULL")
    );
    assert_eq!(transaction.mail.dsn_envid.as_deref(), Some("xyz"));
    let notify = transaction.recipients[0].notify.unwrap();
    assert_eq!(notify.to_param(), "FAILURE,DELAY");
}

#[test]
fn non_ascii_recipient_without_smtputf8_is_553() {
    let mut client = Client::in_transaction(config());
    assert_eq!(client.send("RCPT TO:<jörg@example.com>\r\n"), ["553 5.6.7"]);
    assert_eq!(
        client.last().lines,
        ["Non-ASCII addresses require SMTPUTF8"]
    );
    assert_eq!(client.session.transaction().unwrap().recipients.len(), 1);
}

#[test]
fn non_ascii_recipient_with_smtputf8_is_accepted() {
    let mut client = Client::greeted(config());
    let replies =
        client.send("MAIL FROM:<a@example.com> SMTPUTF8\r\nRCPT TO:<jörg@example.com>\r\n");
    assert_eq!(replies, ["250 2.1.0", "250 2.1.5"]);
}

/// RFC 6531 makes the domain convertible: a U-label domain is taken as its A-label, so only a
/// non-ASCII local part needs SMTPUTF8. (Documents current behaviour; see the report.)
#[test]
fn non_ascii_domain_without_smtputf8_is_accepted_as_its_a_label() {
    let mut client = Client::in_transaction(config());
    assert_eq!(client.send("RCPT TO:<a@bücher.example>\r\n"), ["250 2.1.5"]);
    let recipients = &client.session.transaction().unwrap().recipients;
    assert_eq!(
        recipients[1].recipient.to_string(),
        "a@xn--bcher-kva.example"
    );
}

/// RFC 5321 section 4.5.1: `RCPT TO:<Postmaster>` (no domain, any case) MUST be accepted.
#[test]
fn rcpt_to_bare_postmaster_is_accepted() {
    let mut client = Client::in_transaction(config());
    assert_eq!(client.send("RCPT TO:<Postmaster>\r\n"), ["250 2.1.5"]);
    assert_eq!(client.send("RCPT TO:<pOSTMASTER>\r\n"), ["250 2.1.5"]);
    let recipients = &client.session.transaction().unwrap().recipients;
    assert_eq!(recipients.len(), 2, "the same recipient twice counts once");
    assert_eq!(recipients[1].recipient.to_string(), "postmaster@mx.test");
}

#[test]
fn postmaster_behind_a_source_route_is_the_postmaster_and_other_bare_names_are_not() {
    let mut client = Client::in_transaction(config());
    assert_eq!(
        client.send("RCPT TO:<@relay.test:Postmaster>\r\n"),
        ["250 2.1.5"]
    );
    assert_eq!(client.send("RCPT TO:<abuse>\r\n"), ["550 5.1.3"]);
    assert_eq!(client.send("RCPT TO:<Postmaster@>\r\n"), ["550 5.1.3"]);
    assert_eq!(client.send("RCPT TO:<\"Postmaster\">\r\n"), ["550 5.1.3"]);
    let recipients = &client.session.transaction().unwrap().recipients;
    assert_eq!(recipients.len(), 2);
    assert_eq!(recipients[1].recipient.to_string(), "postmaster@mx.test");
}

/// RFC 5321 section 4.1.2: a local part may be a Quoted-string; `EmailAddress` supports it, but
/// smtp-proto hands over the address already unquoted (`a b@example.com`), which no longer parses.
#[test]
fn quoted_local_part_is_accepted() {
    let mut client = Client::in_transaction(config());
    assert_eq!(
        client.send("RCPT TO:<\"a b\"@example.com>\r\n"),
        ["250 2.1.5"]
    );
    let recipients = &client.session.transaction().unwrap().recipients;
    assert_eq!(recipients[1].recipient.to_string(), "\"a b\"@example.com");
}

#[test]
fn quoted_local_part_that_is_a_dot_string_is_unquoted() {
    let mut client = Client::in_transaction(config());
    assert_eq!(
        client.send("RCPT TO:<\"a.b\"@example.com>\r\n"),
        ["250 2.1.5"]
    );
    let recipients = &client.session.transaction().unwrap().recipients;
    assert_eq!(recipients[1].recipient.to_string(), "a.b@example.com");
}

#[test]
fn non_ascii_sender_without_smtputf8_is_553() {
    let mut client = Client::greeted(config());
    assert_eq!(
        client.send("MAIL FROM:<jörg@example.com>\r\n"),
        ["553 5.6.7"]
    );
}

#[test]
fn control_characters_in_commands_are_501() {
    let mut client = Client::greeted(config());
    assert_eq!(
        client.send_bytes(b"MAIL FROM:<a@example.com>\rX: 1\r\n"),
        ["501 5.5.4"]
    );
    assert_eq!(
        client.send_bytes(b"MAIL FROM:<a@ex\0ample.com>\r\n"),
        ["501 5.5.4"]
    );
    assert_eq!(
        client.last().lines,
        ["Control characters are not allowed in commands"]
    );
    assert!(client.session.transaction().is_none());
}

#[test]
fn bare_lf_command_lines_are_tolerated() {
    let mut client = Client::new(config());
    assert_eq!(
        client.send("EHLO c.test\nMAIL FROM:<a@example.com>\nRCPT TO:<b@example.com>\n"),
        ["250", "250 2.1.0", "250 2.1.5"]
    );
}

// ---------------------------------------------------------------------------------------------
// Unimplemented and refused verbs, error limits

#[test]
fn vrfy_disabled_is_502_and_ambiguous_is_252() {
    let mut client = Client::greeted(config());
    assert_eq!(client.send("VRFY postmaster\r\n"), ["502 5.5.1"]);
    assert_eq!(client.last().lines, ["VRFY disallowed"]);
    let mut client = Client::greeted(SessionConfig {
        vrfy: VrfyMode::Ambiguous,
        ..config()
    });
    assert_eq!(client.send("VRFY postmaster\r\n"), ["252 2.5.2"]);
}

#[test]
fn expn_and_turn_are_502() {
    let mut client = Client::greeted(config());
    assert_eq!(client.send("EXPN staff\r\n"), ["502 5.5.1"]);
    assert_eq!(client.last().lines, ["EXPN disallowed"]);
    assert_eq!(client.send("TURN\r\n"), ["502 5.5.1"]);
    assert_eq!(client.last().lines, ["TURN disallowed"]);
}

#[test]
fn other_known_verbs_are_502_unimplemented() {
    let mut client = Client::greeted(config());
    for line in [
        "ETRN example.com\r\n",
        "XCLIENT ADDR=1.2.3.4\r\n",
        "SAML FROM:<a@b.c>\r\n",
    ] {
        assert_eq!(client.send(line), ["502 5.5.1"], "{line:?}");
    }
}

#[test]
fn unknown_verb_is_500() {
    let mut client = Client::greeted(config());
    assert_eq!(client.send("FOO bar\r\n"), ["500 5.5.2"]);
    assert_eq!(client.last().lines, ["Syntax error, command unrecognized"]);
    assert_eq!(client.send("\r\n"), ["500 5.5.2"]);
    assert_eq!(client.send("GET / HTTP/1.1\r\n"), ["500 5.5.2"]);
}

#[test]
fn too_many_bad_commands_closes_with_421() {
    let mut client = Client::greeted(SessionConfig {
        max_bad_commands: 3,
        ..config()
    });
    assert_eq!(
        client.send("FOO\r\nBAR\r\nBAZ\r\n"),
        ["500 5.5.2", "500 5.5.2", "500 5.5.2"]
    );
    assert!(!client.is_closed());
    // A good command in between does not reset the count.
    assert_eq!(client.send("NOOP\r\n"), ["250 2.0.0"]);
    let action = client.session.line(b"QUX\r\n");
    assert_eq!(action, Action::Close(replies::too_many_errors()));
    assert_eq!(summary(&replies::too_many_errors()), "421 4.7.0");
    assert!(client.session.is_closed());
}

#[test]
fn closed_session_answers_nothing_but_close() {
    let mut client = Client::greeted(config());
    assert_eq!(client.send("QUIT\r\n"), ["221 2.0.0"]);
    assert!(matches!(client.session.line(b"NOOP\r\n"), Action::Close(_)));
    assert!(matches!(
        client.session.line(b"MAIL FROM:<a@example.com>\r\n"),
        Action::Close(_)
    ));
    assert!(client.session.is_closed());
}

#[test]
fn quit_is_221_and_closes() {
    let mut client = Client::greeted(config());
    assert_eq!(client.send("QUIT\r\nNOOP\r\n"), ["221 2.0.0"]);
    assert_eq!(
        client.last().to_bytes(),
        b"221 2.0.0 mx.test closing connection\r\n"
    );
    assert!(client.is_closed());
    assert!(client.session.is_closed());
}

// ---------------------------------------------------------------------------------------------
// BDAT (RFC 3030)

#[test]
fn bdat_without_recipients_discards_the_chunk_with_503() {
    let mut client = Client::greeted(config());
    // The 10 bytes look like a command; they must be read as chunk data and dropped.
    assert_eq!(client.send("BDAT 10\r\nRSET\r\nXXXX"), ["503 5.5.1"]);
    assert_eq!(
        client.last().lines,
        ["Must have sender and recipient first"]
    );
    assert_eq!(
        client.send("MAIL FROM:<a@example.com>\r\nBDAT 3 LAST\r\nabc"),
        ["250 2.1.0", "503 5.5.1"]
    );
    assert!(client.delivered.is_empty());
    assert_eq!(client.send("NOOP\r\n"), ["250 2.0.0"]);
}

#[test]
fn bdat_over_size_is_552_and_discarded() {
    let mut client = Client::in_transaction(SessionConfig {
        max_message_bytes: 10,
        ..config()
    });
    assert_eq!(client.send("BDAT 6\r\nabcdef"), ["250 2.0.0"]);
    assert_eq!(client.send("BDAT 6 LAST\r\nQUIT\r\n"), ["552 5.3.4"]);
    assert!(
        !client.is_closed(),
        "the 6 chunk bytes were read as data, not as QUIT"
    );
    assert!(client.session.transaction().is_none());
    assert!(client.delivered.is_empty());
    assert_eq!(client.send("BDAT 1 LAST\r\nx"), ["503 5.5.1"]);
}

#[test]
fn bdat_chunks_accumulate() {
    let mut client = Client::in_transaction(config());
    assert_eq!(client.send("BDAT 5\r\nHello"), ["250 2.0.0"]);
    assert_eq!(client.last().lines, ["5 octets received"]);
    assert_eq!(client.send("BDAT 7\r\n, world"), ["250 2.0.0"]);
    assert_eq!(client.last().lines, ["12 octets received"]);
    assert_eq!(client.session.transaction().unwrap().chunked_bytes, 12);
    assert_eq!(client.send("BDAT 3 LAST\r\n!\r\n"), ["250 2.0.0"]);
    assert_eq!(client.last().lines, ["OK queued as Q1"]);
    assert_eq!(client.delivered.len(), 1);
    // BDAT content is binary: no dot-unstuffing, no end marker.
    assert_eq!(client.delivered[0].content, b"Hello, world!\r\n");
    assert!(client.session.transaction().is_none());
    assert_eq!(client.send("NOOP\r\n"), ["250 2.0.0"]);
}

#[test]
fn bdat_chunk_may_arrive_in_pieces() {
    let mut client = Client::in_transaction(config());
    assert_eq!(client.send("BDAT 7 LAST\r\n\r\n.\r"), Vec::<String>::new());
    assert_eq!(client.send("\nQU"), ["250 2.0.0"]);
    // The chunk ended after "QU": "IT" is the next command line.
    assert_eq!(client.send("IT\r\n"), ["500 5.5.2"]);
    assert_eq!(client.delivered[0].content, b"\r\n.\r\nQU");
}

#[test]
fn bdat_zero_last_ends_the_message() {
    let mut client = Client::in_transaction(config());
    assert_eq!(
        client.send("BDAT 4\r\nabcdBDAT 0 LAST\r\n"),
        ["250 2.0.0", "250 2.0.0"]
    );
    assert_eq!(client.delivered[0].content, b"abcd");
}

#[test]
fn data_after_bdat_is_503() {
    let mut client = Client::in_transaction(config());
    assert_eq!(client.send("BDAT 2\r\nab"), ["250 2.0.0"]);
    assert_eq!(client.send("DATA\r\n"), ["503 5.5.1"]);
    assert_eq!(
        client.last().lines,
        ["DATA and BDAT cannot be mixed in one transaction"]
    );
    assert_eq!(client.send("RCPT TO:<c@example.com>\r\n"), ["503 5.5.1"]);
    assert_eq!(client.send("BDAT 1 LAST\r\nc"), ["250 2.0.0"]);
    assert_eq!(client.delivered[0].content, b"abc");
}

#[test]
fn bdat_before_helo_is_503_and_discarded() {
    let mut client = Client::new(config());
    assert_eq!(client.send("BDAT 4\r\nQUIT"), ["503 5.5.1"]);
    assert_eq!(client.last().lines, ["Use HELO/EHLO first"]);
    assert!(!client.is_closed());
}

/// Past `max_bad_commands`, a refused BDAT should close the session with 421 like every other
/// refused command (after the announced bytes have been read, so the 421 is not mistaken).
#[test]
fn bdat_past_the_error_limit_closes_with_421() {
    let mut client = Client::greeted(SessionConfig {
        max_bad_commands: 3,
        ..config()
    });
    assert_eq!(
        client.send("FOO\r\nFOO\r\nFOO\r\n"),
        ["500 5.5.2", "500 5.5.2", "500 5.5.2"]
    );
    let replies = client.send("BDAT 3\r\nabc");
    assert!(client.session.is_closed());
    assert_eq!(replies, ["421 4.7.0"]);
    assert!(client.is_closed());
}

// ---------------------------------------------------------------------------------------------
// DATA and SMTP smuggling (CVE-2023-51764/5/6)

const SMUGGLING_VARIANTS: [&[u8]; 8] = [
    b"\n.\n",
    b"\n.\r\n",
    b"\r.\r",
    b"\r.\r\n",
    b"\r\n.\n",
    b"\r\n.\r",
    b"\n.\r",
    b"\r\n\x00.\r\n",
];
const SMUGGLED: &[u8] = b"MAIL FROM:<evil@x.test>\r\nRCPT TO:<v@y.test>\r\nDATA\r\nsmuggled\r\n";

fn smuggling_input(variant: &[u8]) -> Vec<u8> {
    [&b"body1"[..], variant, SMUGGLED, b"\r\n.\r\n"].concat()
}

fn contains(haystack: &[u8], needle: &[u8]) -> bool {
    haystack.windows(needle.len()).any(|w| w == needle)
}

fn has_bare_line_ending(input: &[u8]) -> bool {
    input.iter().enumerate().any(|(i, &b)| match b {
        b'\r' => input.get(i + 1) != Some(&b'\n'),
        b'\n' => i == 0 || input[i - 1] != b'\r',
        _ => false,
    })
}

#[test]
fn smuggling_matrix_yields_exactly_one_message() {
    for variant in SMUGGLING_VARIANTS {
        for mode in [BareLineEndings::Keep, BareLineEndings::Normalize] {
            let input = smuggling_input(variant);
            let mut decoder = DataDecoder::new(mode);
            let mut out = Vec::new();
            let progress = decoder.feed(&input, &mut out);
            let label = format!("{variant:?} {mode:?}");
            assert_eq!(
                progress,
                Progress::Done {
                    consumed: input.len()
                },
                "{label}"
            );
            assert!(decoder.is_finished(), "{label}");
            assert!(contains(&out, b"body1"), "{label}");
            assert!(contains(&out, b"smuggled\r\n"), "{label}");
            assert!(contains(&out, b"RCPT TO:<v@y.test>\r\nDATA\r\n"), "{label}");
            assert!(contains(&out, b"MAIL FROM:<evil@x.test>\r\n"), "{label}");
            assert!(out.ends_with(b"smuggled\r\n\r\n"), "{label}");
            assert_eq!(
                decoder.bare_line_endings() > 0,
                has_bare_line_ending(variant),
                "{label}: bare count {}",
                decoder.bare_line_endings()
            );
        }
    }
}

#[test]
fn smuggling_matrix_byte_by_byte_gives_the_same_single_end() {
    for variant in SMUGGLING_VARIANTS {
        let input = smuggling_input(variant);
        let mut decoder = DataDecoder::new(BareLineEndings::Keep);
        let mut out = Vec::new();
        let mut ends = Vec::new();
        for (index, byte) in input.iter().enumerate() {
            if let Progress::Done { consumed } = decoder.feed(std::slice::from_ref(byte), &mut out)
            {
                ends.push(index + consumed);
                break;
            }
        }
        assert_eq!(ends, [input.len()], "{variant:?}");
    }
}

#[test]
fn normalize_mode_turns_bare_line_endings_into_crlf() {
    let mut decoder = DataDecoder::new(BareLineEndings::Normalize);
    let mut out = Vec::new();
    let input = smuggling_input(b"\n.\n");
    decoder.feed(&input, &mut out);
    assert!(
        out.starts_with(b"body1\r\n.\r\nMAIL FROM:<evil@x.test>\r\n"),
        "{out:?}"
    );
    assert_eq!(decoder.bare_line_endings(), 2);
    assert!(
        !out.iter()
            .enumerate()
            .any(|(i, &b)| b == b'\n' && (i == 0 || out[i - 1] != b'\r'))
    );
}

/// The whole smuggling attempt sent through a session: one DATA, one 354, one final reply;
/// the smuggled MAIL/RCPT/DATA never reach the session as commands.
#[test]
fn smuggled_commands_never_reach_the_session() {
    for variant in SMUGGLING_VARIANTS {
        for mode in [BareLineEndings::Keep, BareLineEndings::Normalize] {
            let mut client = Client::in_transaction(config());
            client.bare_line_endings = mode;
            let input = [&b"DATA\r\n"[..], &smuggling_input(variant), b"NOOP\r\n"].concat();
            let replies = client.send_bytes(&input);
            let label = format!("{variant:?} {mode:?}");
            let expected_end = if mode == BareLineEndings::Keep && has_bare_line_ending(variant) {
                "554 5.6.0"
            } else {
                "250 2.0.0"
            };
            assert_eq!(replies, ["354", expected_end, "250 2.0.0"], "{label}");
            let delivered: Vec<_> = client.delivered.iter().map(|d| d.content.clone()).collect();
            if expected_end == "250 2.0.0" {
                assert_eq!(delivered.len(), 1, "{label}");
                assert!(contains(&delivered[0], b"smuggled"), "{label}");
                let recipients = &client.delivered[0].transaction.recipients;
                assert_eq!(recipients.len(), 1, "{label}");
                assert_eq!(
                    recipients[0].recipient.to_string(),
                    "b@example.com",
                    "{label}"
                );
            } else {
                assert!(delivered.is_empty(), "{label}");
            }
            assert!(client.session.transaction().is_none(), "{label}");
        }
    }
}

#[test]
fn data_end_split_across_packets() {
    let mut client = Client::in_transaction(config());
    assert_eq!(client.send("DATA\r\nline\r"), ["354"]);
    assert_eq!(client.send("\n."), Vec::<String>::new());
    assert_eq!(client.send("\r"), Vec::<String>::new());
    assert_eq!(client.send("\nRSET\r\n"), ["250 2.0.0", "250 2.0.0"]);
    assert_eq!(client.delivered[0].content, b"line\r\n");
}

#[test]
fn empty_message_is_queued() {
    let mut client = Client::in_transaction(config());
    assert_eq!(client.send("DATA\r\n.\r\n"), ["354", "250 2.0.0"]);
    assert_eq!(client.delivered[0].content, b"");
}

// ---------------------------------------------------------------------------------------------
// Reply formatting

fn all_replies() -> Vec<(&'static str, Reply)> {
    vec![
        ("ok", replies::ok()),
        ("sender_ok", replies::sender_ok()),
        ("recipient_ok", replies::recipient_ok()),
        ("reset", replies::reset()),
        ("bye", replies::bye("mx.test")),
        ("start_data", replies::start_data()),
        ("ready_for_tls", replies::ready_for_tls()),
        ("queued", replies::queued("Q1")),
        ("chunk_ok", replies::chunk_ok(42)),
        ("auth_ok", replies::auth_ok()),
        ("help", replies::help()),
        ("vrfy_ambiguous", replies::vrfy_ambiguous()),
        ("timeout", replies::timeout()),
        ("session_too_long", replies::session_too_long()),
        ("too_many_connections", replies::too_many_connections()),
        ("too_many_errors", replies::too_many_errors()),
        ("shutting_down", replies::shutting_down("mx.test")),
        ("excessive_data", replies::excessive_data()),
        ("store_failed", replies::store_failed()),
        ("temporary_failure", replies::temporary_failure()),
        ("too_many_recipients", replies::too_many_recipients()),
        ("tls_not_available", replies::tls_not_available()),
        ("auth_temporary", replies::auth_temporary()),
        ("line_too_long", replies::line_too_long()),
        ("unrecognized", replies::unrecognized()),
        ("syntax", replies::syntax("FOO <bar>")),
        ("invalid_parameter", replies::invalid_parameter("SIZE")),
        ("unsupported_parameter", replies::unsupported_parameter()),
        ("ehlo_invalid", replies::ehlo_invalid()),
        ("helo_invalid", replies::helo_invalid()),
        ("no_crlf_in_argument", replies::no_crlf_in_argument()),
        ("unimplemented", replies::unimplemented()),
        ("turn_disallowed", replies::turn_disallowed()),
        ("vrfy_disallowed", replies::vrfy_disallowed()),
        ("expn_disallowed", replies::expn_disallowed()),
        ("helo_first", replies::helo_first()),
        ("reset_first", replies::reset_first()),
        ("sender_first", replies::sender_first()),
        (
            "sender_and_recipient_first",
            replies::sender_and_recipient_first(),
        ),
        ("already_authenticated", replies::already_authenticated()),
        ("no_auth_in_transaction", replies::no_auth_in_transaction()),
        ("already_tls", replies::already_tls()),
        ("bdat_data_mix", replies::bdat_data_mix()),
        (
            "auth_mechanism_unsupported",
            replies::auth_mechanism_unsupported(),
        ),
        ("auth_type_missing", replies::auth_type_missing()),
        ("auth_cancelled", replies::auth_cancelled()),
        ("auth_malformed", replies::auth_malformed()),
        ("auth_required", replies::auth_required()),
        ("tls_required_for_auth", replies::tls_required_for_auth()),
        ("auth_failed", replies::auth_failed()),
        (
            "credentials_no_longer_valid",
            replies::credentials_no_longer_valid(),
        ),
        ("relay_denied", replies::relay_denied()),
        ("connection_refused", replies::connection_refused()),
        ("invalid_recipient", replies::invalid_recipient()),
        ("invalid_sender", replies::invalid_sender()),
        ("mail_syntax", replies::mail_syntax()),
        ("sender_required", replies::sender_required()),
        ("smtputf8_required", replies::smtputf8_required()),
        ("message_too_big", replies::message_too_big(20, 10)),
        ("bare_line_endings", replies::bare_line_endings()),
        ("too_many_hops", replies::too_many_hops()),
        ("headers_too_big", replies::headers_too_big()),
    ]
}

#[test]
fn every_reply_is_one_crlf_line_with_a_matching_enhanced_code() {
    for (name, reply) in all_replies() {
        let bytes = reply.to_bytes();
        assert!(bytes.ends_with(b"\r\n"), "{name}");
        let body = &bytes[..bytes.len() - 2];
        assert!(
            !body.contains(&b'\r') && !body.contains(&b'\n'),
            "{name}: more than one line"
        );
        let text = std::str::from_utf8(body).unwrap();
        let code = reply.code.to_string();
        assert!(text.starts_with(&format!("{code} ")), "{name}: {text:?}");
        assert!(
            (200..600).contains(&reply.code) || reply.code == 354,
            "{name}"
        );
        if matches!(reply.code, 334 | 354) {
            assert_eq!(
                reply.status, None,
                "{name}: an intermediate reply has no enhanced code"
            );
            continue;
        }
        let Some(Status(class, _, _)) = reply.status else {
            panic!("{name}: no enhanced status code");
        };
        assert_eq!(u16::from(class), reply.code / 100, "{name}: class vs code");
        let status = format!("{class}.");
        assert!(text[4..].starts_with(&status), "{name}: {text:?}");
        assert!(text.len() > 4 + status.len() + 3, "{name}: no text");
    }
}

#[test]
fn line_breaks_in_a_hostname_cannot_inject_a_reply() {
    let bytes = replies::bye("mx.test\r\n250 injected").to_bytes();
    assert_eq!(
        bytes,
        b"221 2.0.0 mx.test  250 injected closing connection\r\n"
    );
}

#[test]
fn session_replies_to_hostile_input_stay_single_lines() {
    let mut client = Client::greeted(config());
    client.send_bytes(b"MAIL FROM:<a@example.com>\r\nRCPT TO:<\xff\xfe@example.com>\r\n");
    client.send_bytes(b"\xff\xff\xff\r\nVRFY \x1b[31m\r\n");
    for reply in &client.replies[1..] {
        let bytes = reply.to_bytes();
        assert_eq!(bytes.iter().filter(|&&b| b == b'\n').count(), 1, "{reply}");
    }
}
