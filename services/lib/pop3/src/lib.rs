//! Sans-IO POP3 server core: command parsing, the session state machine with its replies, and
//! the encoder for RETR/TOP bodies. RFC 1939 (POP3), RFC 2449 (CAPA, response codes), RFC 3206
//! (`[AUTH]`, `[SYS/*]`), RFC 2595 (STLS), RFC 5034 with RFC 4616 (AUTH PLAIN). APOP is not
//! supported.
//!
//! It never does I/O, never looks at a clock and never touches a store. It trusts nothing the
//! client sends and must not panic on any input; it trusts the driver for credential checks,
//! message sizes and the order of the listing. It never logs and never shows a password in
//! `Debug` output.
//!
//! # API for the driver (the `access` service)
//!
//! - [`Config`] `{ hostname, welcome, tls_available, allow_plaintext_auth }` per listener,
//!   [`Session::new(config, tls)`](Session::new) per connection (`tls`: implicit TLS, port 995).
//! - [`Session::greeting`] is the first line to send.
//! - Read lines of at most [`MAX_LINE_LEN`] octets before CRLF. Pass each line to
//!   [`Session::on_line`] (with or without its CRLF or LF). On a longer line, discard through
//!   its LF and call [`Session::on_overlong_line`]. Lines are handled one at a time: the next
//!   line is read only once the previous [`Action`] is complete (PIPELINING is announced, so the
//!   driver simply keeps unread input buffered). Do not log lines while
//!   [`Session::expects_sasl_response`], nor PASS lines.
//! - Each call returns one [`Action`]:
//!   - `Reply(reply)`: write `reply.as_bytes()`.
//!   - `Close(reply)`: write it, flush, close. If the session held a maildrop lock (it was in
//!     TRANSACTION), release it **without** deleting anything (RFC 1939 section 6).
//!   - `StartTls(reply)`: write it, drop any input already buffered, run the TLS handshake, call
//!     [`Session::tls_started`] (no reply follows); if the handshake fails, close.
//!   - `Authenticate { user, password }`: verify the credentials (off the I/O thread). Wrong:
//!     [`Session::login_failed`]`(`[`LoginFailure::BadCredentials`]`)`. Right: take the
//!     maildrop lock (`MaildropLocked` if another session has it), list the mailbox, build a
//!     [`Maildrop`] from [`MaildropEntry`] `{ size, uid }` (size = octets with CRLF line ends; a
//!     [`MaildropError`] means `Permanent`), then [`Session::login_succeeded`]`(maildrop)`. Store
//!     trouble: `Temporary`. Both calls return the next `Action` to perform.
//!   - `SendMessage { index, top_lines, reply }`: fetch message `index` (0-based in the listing
//!     given at login). If it cannot be read, write [`Session::retrieval_failed`] instead and go
//!     on. Otherwise write `reply`, then feed the message in chunks of any size through a
//!     [`MessageEncoder::new(top_lines)`](MessageEncoder::new), writing what it produces (stop
//!     early once [`MessageEncoder::is_complete`]), and end with [`MessageEncoder::finish`]. A
//!     failure after `reply` was written can only close the connection.
//!   - `Commit { deleted }` (QUIT in TRANSACTION): delete those messages (0-based indices,
//!     possibly none), release the lock, call [`Session::commit_done`]`(ok)` and perform the
//!     `Close` it returns.
//! - A timeout or EOF ends the session like `Close` without a reply (RFC 1939 section 3).
//!   Calling a `Session` method out of order returns `Close` with `-ERR [SYS/TEMP]`.
//!
//! # Limits
//!
//! [`MAX_LINE_LEN`], [`MAX_BAD_COMMANDS`], [`MAX_AUTH_FAILURES`], [`MAX_COMMANDS_BEFORE_LOGIN`],
//! [`MAX_MAILDROP_MESSAGES`], [`MAX_UID_LEN`], [`MAX_REPLY_LINE_LEN`].
#![forbid(unsafe_code)]

mod authorization;
pub mod command;
pub mod encoder;
pub mod maildrop;
mod replies;
pub mod reply;
pub mod sasl;
pub mod session;
mod transaction;

pub use command::{Command, MAX_LINE_LEN, MessageNumber, ParseError};
pub use encoder::{MessageEncoder, encode_message};
pub use maildrop::{
    LookupError, MAX_MAILDROP_MESSAGES, MAX_UID_LEN, Maildrop, MaildropEntry, MaildropError,
};
pub use reply::{MAX_REPLY_LINE_LEN, Reply, ResponseCode};
pub use sasl::Password;
pub use session::{
    Action, Config, LoginFailure, MAX_AUTH_FAILURES, MAX_BAD_COMMANDS, MAX_COMMANDS_BEFORE_LOGIN,
    Session, State,
};
