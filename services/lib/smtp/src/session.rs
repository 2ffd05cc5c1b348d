//! The SMTP session state machine (RFC 5321 section 4.1.4 ordering, RFC 3207 STARTTLS, RFC 4954
//! AUTH, RFC 3030 CHUNKING). It takes command lines and returns [`Action`]s; the driver moves bytes,
//! asks the stores and reports back. Policy decisions (may this sender send, may this recipient
//! receive, is this password right) are the driver's; ordering, limits and reply texts are here.

use crate::auth::{self, Credentials, SaslError};
use crate::command::{self, Command, MailFrom, Mechanism, RcptTo};
use crate::reply::{Reply, replies};
use mc_types::EmailAddress;
use std::borrow::Cow;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum VrfyMode {
    /// `502 VRFY disallowed` (the reference server's behaviour).
    Disabled,
    /// `252`: neither confirms nor denies (RFC 5321 section 7.3).
    Ambiguous,
}

/// What one listener's sessions may do.
#[derive(Debug, Clone)]
pub struct SessionConfig {
    pub hostname: String,
    /// 0 = unlimited.
    pub max_message_bytes: u64,
    pub max_recipients: usize,
    /// 5xx replies a client may cause before it is disconnected.
    pub max_bad_commands: u32,
    pub max_auth_failures: u32,
    pub vrfy: VrfyMode,
    /// STARTTLS may be offered (a certificate is configured and the listener is not implicit TLS).
    pub starttls: bool,
    /// AUTH is offered on this listener.
    pub auth: bool,
    /// AUTH is offered without TLS too (off by default: passwords would cross in clear).
    pub allow_plaintext_auth: bool,
    /// Every message needs an authenticated session (submission listeners).
    pub require_auth: bool,
    pub allow_empty_sender: bool,
    /// Where `RCPT TO:<Postmaster>` (no domain) goes.
    pub postmaster: EmailAddress,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Greeting {
    pub name: String,
    pub esmtp: bool,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum BodyMode {
    None,
    Data,
    Bdat,
}

#[derive(Debug, Clone)]
pub struct Transaction {
    pub mail: MailFrom,
    pub recipients: Vec<RcptTo>,
    mode: BodyMode,
    /// Bytes received so far by BDAT.
    pub chunked_bytes: u64,
}

#[derive(Debug, Clone, PartialEq, Eq)]
enum Phase {
    Command,
    /// Waiting for the PLAIN response after an empty `AUTH PLAIN`.
    AuthPlain,
    AuthLoginUser,
    AuthLoginPassword {
        login: String,
    },
    /// Between `Action::StartData` and `message_finished`.
    Data,
    /// After QUIT or a closing reply.
    Closed,
}

/// What the driver must do next.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Action {
    Reply(Reply),
    /// Send the reply, then close the connection.
    Close(Reply),
    /// Send [`replies::ready_for_tls`], discard any input already buffered, run the handshake,
    /// then call [`Session::tls_started`].
    StartTls,
    /// Verify the credentials, then call [`Session::auth_succeeded`] or
    /// [`Session::auth_failed`].
    Authenticate(Credentials),
    /// May this sender start a transaction? Call [`Session::accept_mail`] or reply with the
    /// refusal (and [`Session::count_error`]).
    CheckMail(MailFrom),
    /// May this recipient receive? Call [`Session::accept_recipient`] or reply with the refusal.
    CheckRecipient(RcptTo),
    /// Send 354, then decode DATA until its end and call [`Session::message_finished`].
    StartData,
    /// Read exactly `size` bytes into the message, then reply (`last`: finish the message and call
    /// [`Session::message_finished`]; otherwise reply [`replies::chunk_ok`] and call
    /// [`Session::chunk_received`]).
    ReceiveChunk {
        size: u64,
        last: bool,
    },
    /// Read and drop exactly `size` bytes, then send the reply (and close when `close`: the
    /// client passed the error limit).
    DiscardChunk {
        size: u64,
        reply: Reply,
        close: bool,
    },
}

#[derive(Debug)]
pub struct Session {
    config: SessionConfig,
    tls: bool,
    greeting: Option<Greeting>,
    authenticated: Option<String>,
    transaction: Option<Transaction>,
    phase: Phase,
    bad_commands: u32,
    auth_failures: u32,
}

impl Session {
    pub fn new(config: SessionConfig, tls: bool) -> Self {
        Self {
            config,
            tls,
            greeting: None,
            authenticated: None,
            transaction: None,
            phase: Phase::Command,
            bad_commands: 0,
            auth_failures: 0,
        }
    }

    pub fn banner(&self) -> Reply {
        Reply::new(220, None, format!("{} ESMTP ready", self.config.hostname))
    }

    pub fn config(&self) -> &SessionConfig {
        &self.config
    }
    pub fn is_tls(&self) -> bool {
        self.tls
    }
    pub fn greeting(&self) -> Option<&Greeting> {
        self.greeting.as_ref()
    }
    pub fn authenticated(&self) -> Option<&str> {
        self.authenticated.as_deref()
    }
    pub fn transaction(&self) -> Option<&Transaction> {
        self.transaction.as_ref()
    }
    pub fn is_closed(&self) -> bool {
        self.phase == Phase::Closed
    }
    /// Whether the next input is a SASL response line rather than a command.
    pub fn expects_auth_response(&self) -> bool {
        matches!(
            self.phase,
            Phase::AuthPlain | Phase::AuthLoginUser | Phase::AuthLoginPassword { .. }
        )
    }

    /// Counts a refused command; past the limit the session ends with 421.
    pub fn count_error(&mut self, reply: Reply) -> Action {
        self.bad_commands += 1;
        if self.bad_commands > self.config.max_bad_commands {
            self.phase = Phase::Closed;
            return Action::Close(replies::too_many_errors());
        }
        Action::Reply(reply)
    }

    /// Handles one input line (a command, or a SASL response while AUTH is in progress).
    pub fn line(&mut self, line: &[u8]) -> Action {
        match std::mem::replace(&mut self.phase, Phase::Command) {
            Phase::Command => self.command(line),
            Phase::AuthPlain => {
                let text = String::from_utf8_lossy(line);
                match auth::plain(&text) {
                    Ok(credentials) => Action::Authenticate(credentials),
                    Err(error) => self.sasl_error(error),
                }
            }
            Phase::AuthLoginUser => match auth::login_field(&String::from_utf8_lossy(line)) {
                Ok(login) if !login.is_empty() => {
                    self.phase = Phase::AuthLoginPassword { login };
                    Action::Reply(Reply::new(334, None, auth::LOGIN_PASSWORD_CHALLENGE))
                }
                Ok(_) => self.sasl_error(SaslError::Malformed),
                Err(error) => self.sasl_error(error),
            },
            Phase::AuthLoginPassword { login } => {
                match auth::login_field(&String::from_utf8_lossy(line)) {
                    Ok(password) => Action::Authenticate(Credentials { login, password }),
                    Err(error) => self.sasl_error(error),
                }
            }
            Phase::Data => {
                self.phase = Phase::Data;
                Action::Reply(replies::sender_and_recipient_first())
            }
            Phase::Closed => {
                self.phase = Phase::Closed;
                Action::Close(replies::bye(&self.config.hostname))
            }
        }
    }

    fn sasl_error(&mut self, error: SaslError) -> Action {
        match error {
            SaslError::Cancelled => Action::Reply(replies::auth_cancelled()),
            SaslError::Malformed => self.count_error(replies::auth_malformed()),
        }
    }

    fn command(&mut self, line: &[u8]) -> Action {
        let command = match command::parse(line, &self.config.postmaster) {
            Ok(command) => command,
            Err(reply) => return self.count_error(reply),
        };
        match command {
            Command::Ehlo(name) => {
                self.greeting = Some(Greeting { name, esmtp: true });
                self.transaction = None;
                Action::Reply(self.ehlo_reply())
            }
            Command::Helo(name) => {
                self.greeting = Some(Greeting { name, esmtp: false });
                self.transaction = None;
                Action::Reply(Reply::new(250, None, self.config.hostname.clone()))
            }
            Command::Quit => {
                self.phase = Phase::Closed;
                Action::Close(replies::bye(&self.config.hostname))
            }
            Command::Noop => Action::Reply(replies::ok()),
            Command::Rset => {
                self.transaction = None;
                Action::Reply(replies::reset())
            }
            Command::Help => Action::Reply(replies::help()),
            Command::Vrfy => match self.config.vrfy {
                VrfyMode::Disabled => self.count_error(replies::vrfy_disallowed()),
                VrfyMode::Ambiguous => Action::Reply(replies::vrfy_ambiguous()),
            },
            Command::Expn => self.count_error(replies::expn_disallowed()),
            Command::Turn => self.count_error(replies::turn_disallowed()),
            Command::Unimplemented => self.count_error(replies::unimplemented()),
            Command::StartTls => self.starttls(),
            Command::Auth {
                mechanism,
                initial_response,
            } => self.auth(mechanism, initial_response),
            Command::Mail(mail) => self.mail(mail),
            Command::Rcpt(rcpt) => self.rcpt(rcpt),
            Command::Data => self.data(),
            Command::Bdat { size, last } => self.bdat(size, last),
        }
    }

    fn ehlo_reply(&self) -> Reply {
        let mut lines: Vec<Cow<'static, str>> = vec![
            self.config.hostname.clone().into(),
            "PIPELINING".into(),
            format!("SIZE {}", self.config.max_message_bytes).into(),
            "8BITMIME".into(),
            "SMTPUTF8".into(),
            "ENHANCEDSTATUSCODES".into(),
            "CHUNKING".into(),
            "DSN".into(),
        ];
        if self.config.starttls && !self.tls {
            lines.push("STARTTLS".into());
        }
        if self.auth_offered() && self.authenticated.is_none() {
            lines.push("AUTH PLAIN LOGIN".into());
        }
        lines.push("HELP".into());
        Reply::multi(250, lines)
    }

    fn auth_offered(&self) -> bool {
        self.config.auth && (self.tls || self.config.allow_plaintext_auth)
    }

    fn starttls(&mut self) -> Action {
        if self.tls {
            return self.count_error(replies::already_tls());
        }
        if !self.config.starttls {
            return self.count_error(replies::tls_not_available());
        }
        if self.greeting.is_none() {
            return self.count_error(replies::helo_first());
        }
        Action::StartTls
    }

    /// The handshake finished: the session restarts as after the banner (RFC 3207 section 4.2).
    pub fn tls_started(&mut self) {
        self.tls = true;
        self.greeting = None;
        self.authenticated = None;
        self.transaction = None;
        self.phase = Phase::Command;
    }

    fn auth(&mut self, mechanism: Option<Mechanism>, initial: Option<String>) -> Action {
        if self.greeting.is_none() {
            return self.count_error(replies::helo_first());
        }
        if !self.config.auth {
            return self.count_error(replies::unimplemented());
        }
        if self.authenticated.is_some() {
            return self.count_error(replies::already_authenticated());
        }
        if self.transaction.is_some() {
            return self.count_error(replies::no_auth_in_transaction());
        }
        if !self.auth_offered() {
            return self.count_error(replies::tls_required_for_auth());
        }
        match (mechanism, initial) {
            (None, _) => self.count_error(replies::auth_mechanism_unsupported()),
            (Some(Mechanism::Plain), Some(initial)) => match auth::plain(&initial) {
                Ok(credentials) => Action::Authenticate(credentials),
                Err(error) => self.sasl_error(error),
            },
            (Some(Mechanism::Plain), None) => {
                self.phase = Phase::AuthPlain;
                Action::Reply(Reply::new(334, None, ""))
            }
            (Some(Mechanism::Login), Some(initial)) => match auth::login_field(&initial) {
                Ok(login) if !login.is_empty() => {
                    self.phase = Phase::AuthLoginPassword { login };
                    Action::Reply(Reply::new(334, None, auth::LOGIN_PASSWORD_CHALLENGE))
                }
                Ok(_) => self.sasl_error(SaslError::Malformed),
                Err(error) => self.sasl_error(error),
            },
            (Some(Mechanism::Login), None) => {
                self.phase = Phase::AuthLoginUser;
                Action::Reply(Reply::new(334, None, auth::LOGIN_USERNAME_CHALLENGE))
            }
        }
    }

    pub fn auth_succeeded(&mut self, account: String) -> Reply {
        self.authenticated = Some(account);
        replies::auth_ok()
    }

    /// A wrong login or password; past the limit the session ends.
    pub fn auth_failed(&mut self) -> Action {
        self.auth_failures += 1;
        if self.auth_failures >= self.config.max_auth_failures {
            self.phase = Phase::Closed;
            return Action::Close(replies::auth_failed());
        }
        self.count_error(replies::auth_failed())
    }

    /// The account behind the session is no longer valid (disabled, password changed): the
    /// session continues unauthenticated.
    pub fn revoke_authentication(&mut self) {
        self.authenticated = None;
    }

    fn mail(&mut self, mail: MailFrom) -> Action {
        if self.greeting.is_none() {
            return self.count_error(replies::helo_first());
        }
        if self.transaction.is_some() {
            return self.count_error(replies::reset_first());
        }
        if self.config.require_auth && self.authenticated.is_none() {
            return self.count_error(replies::auth_required());
        }
        if mail.sender.is_none() && !self.config.allow_empty_sender {
            return self.count_error(replies::sender_required());
        }
        let max = self.config.max_message_bytes;
        if max > 0 && mail.size > max {
            return self.count_error(replies::message_too_big(mail.size / 1024, max / 1024));
        }
        Action::CheckMail(mail)
    }

    pub fn accept_mail(&mut self, mail: MailFrom) -> Reply {
        self.transaction = Some(Transaction {
            mail,
            recipients: Vec::new(),
            mode: BodyMode::None,
            chunked_bytes: 0,
        });
        replies::sender_ok()
    }

    fn rcpt(&mut self, rcpt: RcptTo) -> Action {
        let Some(transaction) = &self.transaction else {
            return self.count_error(replies::sender_first());
        };
        if transaction.mode != BodyMode::None {
            return self.count_error(replies::reset_first());
        }
        if rcpt.recipient.needs_smtputf8() && !transaction.mail.smtputf8 {
            return self.count_error(replies::smtputf8_required());
        }
        let key = rcpt.recipient.lookup_key();
        if transaction
            .recipients
            .iter()
            .any(|r| r.recipient.lookup_key() == key)
        {
            // A duplicate: acknowledged once more, delivered once.
            return Action::Reply(replies::recipient_ok());
        }
        if transaction.recipients.len() >= self.config.max_recipients {
            return Action::Reply(replies::too_many_recipients());
        }
        Action::CheckRecipient(rcpt)
    }

    pub fn accept_recipient(&mut self, rcpt: RcptTo) -> Reply {
        if let Some(transaction) = &mut self.transaction {
            transaction.recipients.push(rcpt);
        }
        replies::recipient_ok()
    }

    fn data(&mut self) -> Action {
        match &mut self.transaction {
            Some(t) if t.mode == BodyMode::Bdat => self.count_error(replies::bdat_data_mix()),
            Some(t) if !t.recipients.is_empty() => {
                t.mode = BodyMode::Data;
                self.phase = Phase::Data;
                Action::StartData
            }
            _ if self.greeting.is_none() => self.count_error(replies::helo_first()),
            _ => self.count_error(replies::sender_and_recipient_first()),
        }
    }

    fn bdat(&mut self, size: u64, last: bool) -> Action {
        let refusal = match &mut self.transaction {
            _ if self.greeting.is_none() => Some(replies::helo_first()),
            Some(t) if t.recipients.is_empty() => Some(replies::sender_and_recipient_first()),
            None => Some(replies::sender_and_recipient_first()),
            Some(t) => {
                t.mode = BodyMode::Bdat;
                let max = self.config.max_message_bytes;
                let total = t.chunked_bytes.saturating_add(size);
                if max > 0 && total > max {
                    // The transaction is over; the client must RSET or start again.
                    self.transaction = None;
                    Some(replies::message_too_big(total / 1024, max / 1024))
                } else {
                    None
                }
            }
        };
        match refusal {
            Some(reply) => {
                self.bad_commands += 1;
                if self.bad_commands > self.config.max_bad_commands {
                    // The announced bytes are still dropped first so that the 421 is not read
                    // as a reply to something inside them.
                    self.phase = Phase::Closed;
                    return Action::DiscardChunk {
                        size,
                        reply: replies::too_many_errors(),
                        close: true,
                    };
                }
                Action::DiscardChunk {
                    size,
                    reply,
                    close: false,
                }
            }
            None => {
                if last {
                    self.phase = Phase::Data;
                }
                Action::ReceiveChunk { size, last }
            }
        }
    }

    pub fn chunk_received(&mut self, size: u64) -> Reply {
        if let Some(t) = &mut self.transaction {
            t.chunked_bytes = t.chunked_bytes.saturating_add(size);
            return replies::chunk_ok(t.chunked_bytes);
        }
        replies::chunk_ok(size)
    }

    /// The message was stored or refused: the transaction is over either way.
    pub fn message_finished(&mut self) {
        self.transaction = None;
        if self.phase == Phase::Data {
            self.phase = Phase::Command;
        }
    }

    /// Takes the transaction to store it (at the end of DATA or of the last BDAT chunk).
    pub fn take_transaction(&mut self) -> Option<Transaction> {
        self.transaction.take()
    }
}
