//! Sans-IO SMTP server core: command parsing (RFC 5321 with smtp-proto's grammar), the session
//! state machine with its replies (RFC 5321, 3207, 4954, 3030, 3461, 1870, 6531, 2034), SASL
//! PLAIN/LOGIN decoding and the DATA decoder that defeats SMTP smuggling.
//!
//! It never does I/O, never looks at a clock and never touches a store: the driver (the
//! `smtp-ingress` service) reads bytes, asks the directory and policy, stores messages and reports
//! back through [`Session`] methods. Everything here can be driven by byte transcripts and fed
//! random input; nothing may panic on any input.
#![forbid(unsafe_code)]

pub mod auth;
pub mod command;
pub mod data;
pub mod dsn;
pub mod reply;
pub mod session;

pub use command::{Body, Command, DsnNotify, DsnReturn, MailFrom, Mechanism, RcptTo};
pub use data::{BareLineEndings, DataDecoder, Progress};
pub use reply::{Reply, Status, replies};
pub use session::{Action, Greeting, Session, SessionConfig, Transaction, VrfyMode};
