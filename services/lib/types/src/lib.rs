//! Validated value types shared by every mailcluster crate.
//!
//! * [`EmailAddress`] and [`Domain`]: mailbox syntax of RFC 5321 section 4.1.2, extended for
//!   internationalised addresses by RFC 6531 (SMTPUTF8). Domains are kept in their ASCII
//!   (A-label, lower-case) form so that lookups compare like with like.
//! * [`Secret`]: a wrapper that never prints its content, for passwords and tokens.
//!
//! This crate trusts nothing: every constructor validates its input and enforces the RFC length
//! bounds. It must never do I/O.
#![forbid(unsafe_code)]

mod address;
mod domain;
mod secret;

pub use address::{AddressError, EmailAddress};
pub use domain::{Domain, DomainError};
pub use secret::Secret;
