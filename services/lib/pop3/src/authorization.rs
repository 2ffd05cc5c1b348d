//! The AUTHORIZATION state (RFC 1939 section 4): CAPA (RFC 2449), STLS (RFC 2595), USER/PASS
//! (RFC 1939 section 7), AUTH PLAIN in both forms (RFC 5034), and the driver's answers to a login.
//!
//! Plaintext policy: unless TLS is active or [`crate::Config::allow_plaintext_auth`] is set,
//! neither USER nor SASL PLAIN is announced and USER, PASS and AUTH are refused with `[AUTH]`.
//! USER never reveals whether an account exists; only the driver's verdict after PASS does, and
//! `[IN-USE]` is only reported once the password was right.

use crate::command::Command;
use crate::maildrop::Maildrop;
use crate::replies;
use crate::reply::Reply;
use crate::sasl::{self, SaslError};
use crate::session::{Action, LoginFailure, Session, State, Step, close, reply};

impl Session {
    pub(crate) fn authorization(&mut self, user: Option<String>, command: Command) -> Step {
        match command {
            Command::Capa => reply(State::Authorization { user }, self.capabilities()),
            Command::Quit => close(replies::signing_off(&self.config.hostname)),
            Command::Stls => self.stls(State::Authorization { user }),
            Command::User(name) => match self.plaintext_refusal() {
                Some(refusal) => self.refuse(State::Authorization { user }, refusal),
                None => reply(
                    State::Authorization { user: Some(name) },
                    replies::send_pass(),
                ),
            },
            Command::Pass(password) => match (self.plaintext_refusal(), user) {
                (Some(refusal), user) => self.refuse(State::Authorization { user }, refusal),
                (None, None) => self.refuse(State::idle(), replies::user_first()),
                // The name is used once: a failed PASS needs a new USER (RFC 1939 section 7).
                (None, Some(user)) => (
                    State::Authenticating { user: user.clone() },
                    Action::Authenticate { user, password },
                ),
            },
            Command::Auth {
                mechanism,
                initial_response,
            } => self.auth(mechanism, initial_response),
            Command::Stat
            | Command::List(_)
            | Command::Uidl(_)
            | Command::Top { .. }
            | Command::Retr(_)
            | Command::Dele(_)
            | Command::Rset
            | Command::Noop => self.refuse(State::Authorization { user }, replies::wrong_state()),
        }
    }

    /// The CAPA reply. RFC 2449 section 5: what AUTHORIZATION offers is announced in both states.
    pub(crate) fn capabilities(&self) -> Reply {
        let stls = self.config.tls_available && !self.tls;
        replies::capabilities(self.plaintext_permitted(), stls)
    }

    fn plaintext_permitted(&self) -> bool {
        self.tls || self.config.allow_plaintext_auth
    }

    fn plaintext_refusal(&self) -> Option<Reply> {
        if self.plaintext_permitted() {
            return None;
        }
        Some(replies::plaintext_disallowed(self.config.tls_available))
    }

    fn stls(&mut self, unchanged: State) -> Step {
        if self.tls {
            return self.refuse(unchanged, replies::already_tls());
        }
        if !self.config.tls_available {
            return self.refuse(unchanged, replies::tls_unavailable());
        }
        (State::TlsHandshake, Action::StartTls(replies::begin_tls()))
    }

    /// The handshake after [`Action::StartTls`] succeeded. Everything learnt in clear is
    /// forgotten: the session starts over in AUTHORIZATION (RFC 2595 section 4).
    pub fn tls_started(&mut self) {
        self.tls = true;
        if matches!(self.state, State::TlsHandshake) {
            self.state = State::idle();
        }
    }

    fn auth(&mut self, mechanism: Option<String>, initial_response: Option<String>) -> Step {
        if let Some(refusal) = self.plaintext_refusal() {
            return self.refuse(State::idle(), refusal);
        }
        match (mechanism.as_deref(), initial_response) {
            (None, _) => reply(State::idle(), replies::mechanism_list()),
            (Some("PLAIN"), None) => reply(State::SaslResponse, Reply::continuation()),
            (Some("PLAIN"), Some(response)) => self.plain_response(&response),
            (Some(_), _) => self.refuse(State::idle(), replies::unsupported_mechanism()),
        }
    }

    pub(crate) fn sasl_response(&mut self, line: &[u8]) -> Step {
        let line = crate::command::strip_line_ending(line);
        if line.len() > crate::MAX_LINE_LEN {
            return self.refuse(
                State::idle(),
                replies::parse_error(crate::ParseError::TooLong),
            );
        }
        match std::str::from_utf8(line) {
            Ok(response) => self.plain_response(response),
            Err(_) => self.refuse(State::idle(), replies::sasl_bad_base64()),
        }
    }

    fn plain_response(&mut self, response: &str) -> Step {
        match sasl::decode_plain(response) {
            Ok((user, password)) => (
                State::Authenticating { user: user.clone() },
                Action::Authenticate { user, password },
            ),
            Err(SaslError::Cancelled) => reply(State::idle(), replies::auth_cancelled()),
            Err(SaslError::BadBase64) => self.refuse(State::idle(), replies::sasl_bad_base64()),
            Err(SaslError::Malformed) => self.refuse(State::idle(), replies::sasl_malformed()),
        }
    }

    /// The credentials were right and the maildrop is locked: the session enters TRANSACTION.
    pub fn login_succeeded(&mut self, maildrop: Maildrop) -> Action {
        self.transition(|_, state| match state {
            State::Authenticating { user } => {
                let (messages, octets) = maildrop.stat();
                let next = State::Transaction { user, maildrop };
                reply(next, replies::logged_in(messages, octets))
            }
            _ => close(replies::out_of_sequence()),
        })
    }

    /// The login was refused; the client may try again (within the limits) or QUIT.
    pub fn login_failed(&mut self, failure: LoginFailure) -> Action {
        self.transition(|session, state| match state {
            State::Authenticating { .. } => match failure {
                LoginFailure::BadCredentials => session.count_auth_failure(),
                LoginFailure::MaildropLocked => reply(State::idle(), replies::maildrop_locked()),
                LoginFailure::Temporary => reply(State::idle(), replies::login_temporary_failure()),
                LoginFailure::Permanent => reply(State::idle(), replies::login_permanent_failure()),
            },
            _ => close(replies::out_of_sequence()),
        })
    }
}
