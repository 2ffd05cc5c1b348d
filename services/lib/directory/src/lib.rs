//! The directory: hosted domains (with alias names and catch-all), accounts, aliases and
//! distribution lists, stored in PostgreSQL; recipient resolution over all of them; password
//! verification.
//!
//! Addresses are stored in lookup form (local part lower-cased, domain as lower-case A-labels)
//! and a name is only ever one kind of object, which the schema enforces across tables. This
//! crate validates every input itself (callers may pass raw user input) and reports problems as
//! [`DirectoryError`] kinds that the admin API and protocol services map to replies. It never
//! logs or returns a password or a password hash.
#![forbid(unsafe_code)]

mod accounts;
mod aliases;
mod auth;
pub mod cache;
mod domains;
mod error;
mod lists;
pub mod password;
mod resolve;

pub use accounts::{Account, AccountUpdate, AdminLevel, AutoReply, DeliveryProfile, NewAccount};
pub use aliases::{Alias, NewAlias};
pub use auth::{AuthFailure, AuthOutcome};
pub use cache::{CHANGES_CHANNEL, DirectoryCache, follow_changes};
pub use domains::{Domain, DomainUpdate};
pub use error::DirectoryError;
pub use lists::{DistributionList, ListMode, MAX_LIST_MEMBERS, NewList};
pub use resolve::{MAX_RESOLUTION_DEPTH, MAX_RESOLVED_TARGETS, Rejection, Resolved, Target};

use sqlx::PgPool;

/// Directory operations over one PostgreSQL pool. Cheap to clone.
#[derive(Debug, Clone)]
pub struct Directory {
    pool: PgPool,
}

impl Directory {
    pub fn new(pool: PgPool) -> Self {
        Self { pool }
    }

    pub fn pool(&self) -> &PgPool {
        &self.pool
    }
}
