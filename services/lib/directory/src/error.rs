//! Errors of directory operations, classified once: the admin API and the protocol services map
//! these kinds to their replies in one place each.

use mc_types::{AddressError, DomainError};

#[derive(Debug, thiserror::Error)]
pub enum DirectoryError {
    #[error("invalid address {input:?}: {reason}")]
    InvalidAddress { input: String, reason: AddressError },
    #[error("invalid domain {input:?}: {reason}")]
    InvalidDomain { input: String, reason: DomainError },
    #[error("{0}")]
    Invalid(String),
    #[error("the domain {0} is not hosted here")]
    UnknownDomain(String),
    #[error("{kind} {name} does not exist")]
    NotFound { kind: &'static str, name: String },
    #[error("{0} is already in use")]
    AlreadyExists(String),
    #[error("{0}")]
    Conflict(String),
    #[error("database error: {0}")]
    Database(#[from] sqlx::Error),
    #[error("password hashing failed: {0}")]
    Hashing(String),
}

impl mc_runtime::store_metrics::StoreOutcome for DirectoryError {
    fn store_outcome(&self) -> mc_runtime::store_metrics::Outcome {
        match self {
            Self::Database(error) => error.store_outcome(),
            _ => mc_runtime::store_metrics::Outcome::Ok,
        }
    }
}

impl DirectoryError {
    pub(crate) fn not_found(kind: &'static str, name: impl Into<String>) -> Self {
        Self::NotFound {
            kind,
            name: name.into(),
        }
    }

    /// Maps a unique violation (including the cross-table triggers) to `AlreadyExists`.
    pub(crate) fn from_insert(error: sqlx::Error, name: &str) -> Self {
        match &error {
            sqlx::Error::Database(db) if db.is_unique_violation() => {
                Self::AlreadyExists(name.to_string())
            }
            _ => Self::Database(error),
        }
    }
}

pub(crate) fn parse_address(input: &str) -> Result<mc_types::EmailAddress, DirectoryError> {
    mc_types::EmailAddress::parse(input.trim()).map_err(|reason| DirectoryError::InvalidAddress {
        input: input.to_string(),
        reason,
    })
}

pub(crate) fn parse_hosted_domain(input: &str) -> Result<mc_types::Domain, DirectoryError> {
    mc_types::Domain::parse_hosted(input.trim()).map_err(|reason| DirectoryError::InvalidDomain {
        input: input.to_string(),
        reason,
    })
}
