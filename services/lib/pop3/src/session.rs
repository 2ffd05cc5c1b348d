//! The POP3 session state machine (RFC 1939 sections 3–6 with RFC 2449, RFC 2595 STLS and RFC
//! 5034 AUTH): it takes lines and the driver's answers and returns [`Action`]s.
//!
//! The driver decides whether a password is right, locks and reads the mailbox and applies
//! deletions; ordering, limits, plaintext policy and every reply text are here. Each state owns
//! its data and every transition consumes the old state, so a maildrop exists only after a
//! successful login and deletions can only be committed from it. Lines that arrive while the
//! session waits for the driver (TLS handshake, credential check, commit) are driver bugs: they
//! close the session rather than being read as commands.

use crate::command::{Command, ParseError};
use crate::maildrop::Maildrop;
use crate::replies;
use crate::reply::Reply;
use crate::sasl::Password;

/// Refused commands (syntax errors, commands of another state, refused logins) a client may
/// cause; the last one closes the session.
pub const MAX_BAD_COMMANDS: u32 = 10;

/// Wrong credentials a client may try; the last one closes the session.
pub const MAX_AUTH_FAILURES: u32 = 3;

/// Lines a client may send before it is logged in.
pub const MAX_COMMANDS_BEFORE_LOGIN: u32 = 30;

/// What one listener's sessions may do.
#[derive(Debug, Clone)]
pub struct Config {
    /// Named in the greeting and the sign-off.
    pub hostname: String,
    /// Replaces the greeting text (to hide the server software, for instance).
    pub welcome: Option<String>,
    /// A certificate is configured, so STLS may be offered on cleartext connections.
    pub tls_available: bool,
    /// USER/PASS and AUTH PLAIN are accepted without TLS (off by default: passwords would cross
    /// in clear).
    pub allow_plaintext_auth: bool,
    /// Refused commands before the session closes ([`MAX_BAD_COMMANDS`] by default).
    pub max_bad_commands: u32,
    /// Wrong credentials before the session closes ([`MAX_AUTH_FAILURES`] by default).
    pub max_auth_failures: u32,
}

impl Config {
    pub fn new(hostname: impl Into<String>) -> Self {
        Self {
            hostname: hostname.into(),
            welcome: None,
            max_bad_commands: MAX_BAD_COMMANDS,
            max_auth_failures: MAX_AUTH_FAILURES,
            tls_available: false,
            allow_plaintext_auth: false,
        }
    }
}

/// Why the driver refused a login.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LoginFailure {
    /// Unknown user or wrong password: `-ERR [AUTH]`, counted towards [`MAX_AUTH_FAILURES`].
    BadCredentials,
    /// Another session holds the maildrop lock: `-ERR [IN-USE]`.
    MaildropLocked,
    /// The directory or the mailbox could not be reached: `-ERR [SYS/TEMP]`.
    Temporary,
    /// The mailbox cannot be offered, e.g. [`crate::MaildropError`]: `-ERR [SYS/PERM]`.
    Permanent,
}

/// What the driver must do next.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Action {
    /// Send the reply.
    Reply(Reply),
    /// Send the reply, then close the connection without applying any deletion.
    Close(Reply),
    /// Send the reply, discard any input already buffered (RFC 2595 section 4: nothing sent in
    /// clear may be read as a command after TLS), run the handshake, then call
    /// [`Session::tls_started`]; close the connection if the handshake fails.
    StartTls(Reply),
    /// Check the credentials; if they are right, lock and list the maildrop, then call
    /// [`Session::login_succeeded`] or [`Session::login_failed`].
    Authenticate { user: String, password: Password },
    /// Send `reply` (`+OK`), then message `index` (0-based in the listing) through a
    /// [`crate::MessageEncoder`] made with `top_lines`. If the message cannot be read before
    /// anything was sent, send [`Session::retrieval_failed`] instead; if it fails midway, close.
    SendMessage {
        index: usize,
        top_lines: Option<u64>,
        reply: Reply,
    },
    /// QUIT in the TRANSACTION state: delete these messages (0-based indices, ascending;
    /// possibly none), release the lock, then call [`Session::commit_done`].
    Commit { deleted: Vec<usize> },
}

/// Where the session is. Only [`Session`] moves between states.
#[derive(Debug)]
pub enum State {
    /// RFC 1939 section 4; `user` is the name given by USER, awaiting PASS.
    Authorization {
        user: Option<String>,
    },
    /// `AUTH PLAIN` was answered with `+ `; the next line is the SASL response.
    SaslResponse,
    /// STLS was accepted; waiting for [`Session::tls_started`].
    TlsHandshake,
    /// The credentials are with the driver.
    Authenticating {
        user: String,
    },
    /// RFC 1939 section 5.
    Transaction {
        user: String,
        maildrop: Maildrop,
    },
    /// RFC 1939 section 6: QUIT was given; waiting for [`Session::commit_done`].
    Update {
        user: String,
        remaining: usize,
    },
    Closed,
}

#[derive(Debug, Default)]
struct Counters {
    bad_commands: u32,
    auth_failures: u32,
    lines_before_login: u32,
}

#[derive(Debug)]
pub struct Session {
    pub(crate) config: Config,
    pub(crate) tls: bool,
    pub(crate) state: State,
    counters: Counters,
}

impl Session {
    /// `tls`: the connection is already encrypted (implicit TLS, port 995).
    pub fn new(config: Config, tls: bool) -> Self {
        Self {
            config,
            tls,
            state: State::Authorization { user: None },
            counters: Counters::default(),
        }
    }

    /// The first line sent on a connection.
    pub fn greeting(&self) -> Reply {
        replies::greeting(&self.config.hostname, self.config.welcome.as_deref())
    }

    pub fn state(&self) -> &State {
        &self.state
    }

    pub fn is_tls(&self) -> bool {
        self.tls
    }

    pub fn is_closed(&self) -> bool {
        matches!(self.state, State::Closed)
    }

    /// The logged-in user (also while the login or the commit is with the driver).
    pub fn user(&self) -> Option<&str> {
        match &self.state {
            State::Authenticating { user }
            | State::Transaction { user, .. }
            | State::Update { user, .. } => Some(user),
            _ => None,
        }
    }

    /// The next line is a SASL response, which holds credentials: do not log it.
    pub fn expects_sasl_response(&self) -> bool {
        matches!(self.state, State::SaslResponse)
    }

    /// Handles one line from the client, with or without its CRLF.
    pub fn on_line(&mut self, line: &[u8]) -> Action {
        self.transition(|session, state| session.line(state, line))
    }

    /// The client sent more than [`crate::MAX_LINE_LEN`] octets without a line end; the driver
    /// discards input up to the next LF and calls this instead of [`Session::on_line`].
    pub fn on_overlong_line(&mut self) -> Action {
        self.transition(|session, state| session.parse_failed(state, ParseError::TooLong))
    }

    /// Runs one step on the state taken out of the session; a `Close` always ends in `Closed`.
    pub(crate) fn transition(&mut self, step: impl FnOnce(&mut Self, State) -> Step) -> Action {
        let state = std::mem::replace(&mut self.state, State::Closed);
        let (next, action) = step(self, state);
        if !matches!(action, Action::Close(_)) {
            self.state = next;
        }
        action
    }

    fn line(&mut self, state: State, line: &[u8]) -> Step {
        if matches!(state, State::Authorization { .. } | State::SaslResponse) {
            self.counters.lines_before_login += 1;
            if self.counters.lines_before_login > MAX_COMMANDS_BEFORE_LOGIN {
                return close(replies::too_many_commands_before_login());
            }
        }
        match state {
            State::Authorization { user } => match Command::parse(line) {
                Ok(command) => self.authorization(user, command),
                Err(error) => self.parse_failed(State::Authorization { user }, error),
            },
            State::SaslResponse => self.sasl_response(line),
            State::Transaction { user, maildrop } => match Command::parse(line) {
                Ok(command) => self.transaction(user, maildrop, command),
                Err(error) => self.parse_failed(State::Transaction { user, maildrop }, error),
            },
            State::TlsHandshake | State::Authenticating { .. } | State::Update { .. } => {
                close(replies::out_of_sequence())
            }
            State::Closed => close(replies::session_closed()),
        }
    }

    fn parse_failed(&mut self, state: State, error: ParseError) -> Step {
        match state {
            // A broken SASL response ends the exchange (RFC 5034 section 4).
            State::SaslResponse => self.refuse(State::idle(), replies::parse_error(error)),
            State::Closed => close(replies::session_closed()),
            State::TlsHandshake | State::Authenticating { .. } | State::Update { .. } => {
                close(replies::out_of_sequence())
            }
            state => self.refuse(state, replies::parse_error(error)),
        }
    }

    /// Counts a refused command; the `max_bad_commands`th closes the session.
    pub(crate) fn refuse(&mut self, state: State, reply: Reply) -> Step {
        self.counters.bad_commands += 1;
        if self.counters.bad_commands >= self.config.max_bad_commands.max(1) {
            return close(replies::too_many_errors());
        }
        (state, Action::Reply(reply))
    }

    /// Counts wrong credentials; the `max_auth_failures`th closes the session.
    pub(crate) fn count_auth_failure(&mut self) -> Step {
        self.counters.auth_failures += 1;
        if self.counters.auth_failures >= self.config.max_auth_failures.max(1) {
            return close(replies::auth_failed_closing());
        }
        (State::idle(), Action::Reply(replies::auth_failed()))
    }
}

impl State {
    /// AUTHORIZATION with nothing pending.
    pub(crate) fn idle() -> Self {
        State::Authorization { user: None }
    }
}

/// The state after a step and what the driver must do.
pub(crate) type Step = (State, Action);

pub(crate) fn close(reply: Reply) -> Step {
    (State::Closed, Action::Close(reply))
}

pub(crate) fn reply(state: State, reply: Reply) -> Step {
    (state, Action::Reply(reply))
}
