//! The one place where errors become HTTP responses. Clients get a kind and a message meant for
//! them; internal details (SQL, hashing) go to the log only.

use axum::Json;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use mc_directory::DirectoryError;
use mc_policy::PolicyError;
use mc_queue::QueueError;
use mc_queue::admin::AdminError;
use serde::Serialize;
use utoipa::ToSchema;

#[derive(Debug)]
pub struct ApiError {
    pub status: StatusCode,
    pub kind: &'static str,
    pub message: String,
}

/// The body of every error response.
#[derive(Debug, Serialize, ToSchema)]
pub struct ErrorBody {
    pub error: ErrorDetail,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct ErrorDetail {
    /// Stable machine-readable kind: `invalid`, `not_found`, `already_exists`, `conflict`,
    /// `unauthorized`, `unavailable`, `internal`.
    pub kind: String,
    pub message: String,
}

impl ApiError {
    pub fn new(status: StatusCode, kind: &'static str, message: impl Into<String>) -> Self {
        Self {
            status,
            kind,
            message: message.into(),
        }
    }

    pub fn invalid(message: impl Into<String>) -> Self {
        Self::new(StatusCode::BAD_REQUEST, "invalid", message)
    }

    pub fn unauthorized() -> Self {
        Self::new(
            StatusCode::UNAUTHORIZED,
            "unauthorized",
            "a valid bearer token is required",
        )
    }

    /// Classifies a database error once: the client's own bad data (SQLSTATE class 22, e.g. a NUL
    /// character) is a 400, a constraint it broke (class 23) a 409, an unreachable or overloaded
    /// database a 503 worth retrying, anything else a 500. Details go to the log only.
    fn store(error: &sqlx::Error) -> Self {
        let class = match error {
            sqlx::Error::Database(db) => db
                .code()
                .map(|code| code.chars().take(2).collect::<String>()),
            _ => None,
        };
        match (class.as_deref(), error) {
            (Some("22"), _) => {
                tracing::info!(%error, "admin request with data the database refuses");
                Self::invalid(
                    "a value is not acceptable to the database (for example it contains a NUL character)",
                )
            }
            (Some("23"), _) => {
                tracing::info!(%error, "admin request breaks a constraint");
                Self::new(
                    StatusCode::CONFLICT,
                    "conflict",
                    "the change conflicts with existing data",
                )
            }
            (
                _,
                sqlx::Error::PoolTimedOut
                | sqlx::Error::PoolClosed
                | sqlx::Error::Io(_)
                | sqlx::Error::Tls(_),
            )
            | (Some("08" | "53" | "57"), _) => {
                tracing::error!(%error, "database unavailable during admin request");
                Self::new(
                    StatusCode::SERVICE_UNAVAILABLE,
                    "unavailable",
                    "the database is unavailable; try again (details in the admin service log)",
                )
            }
            _ => {
                tracing::error!(%error, "database error in admin request");
                Self::new(
                    StatusCode::INTERNAL_SERVER_ERROR,
                    "internal",
                    "internal error (see the admin service log)",
                )
            }
        }
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let body = ErrorBody {
            error: ErrorDetail {
                kind: self.kind.to_string(),
                message: self.message,
            },
        };
        (self.status, Json(body)).into_response()
    }
}

impl From<DirectoryError> for ApiError {
    fn from(error: DirectoryError) -> Self {
        match error {
            DirectoryError::InvalidAddress { .. }
            | DirectoryError::InvalidDomain { .. }
            | DirectoryError::Invalid(_) => Self::invalid(error.to_string()),
            DirectoryError::UnknownDomain(_) | DirectoryError::NotFound { .. } => {
                Self::new(StatusCode::NOT_FOUND, "not_found", error.to_string())
            }
            DirectoryError::AlreadyExists(_) => {
                Self::new(StatusCode::CONFLICT, "already_exists", error.to_string())
            }
            DirectoryError::Conflict(_) => {
                Self::new(StatusCode::CONFLICT, "conflict", error.to_string())
            }
            DirectoryError::Database(e) => Self::store(&e),
            DirectoryError::Hashing(e) => {
                tracing::error!(error = %e, "password hashing failed");
                Self::new(
                    StatusCode::INTERNAL_SERVER_ERROR,
                    "internal",
                    "internal error (see the admin service log)",
                )
            }
        }
    }
}

impl From<PolicyError> for ApiError {
    fn from(error: PolicyError) -> Self {
        match error {
            PolicyError::Invalid(_) => Self::invalid(error.to_string()),
            PolicyError::NotFound(_) => {
                Self::new(StatusCode::NOT_FOUND, "not_found", error.to_string())
            }
            PolicyError::AlreadyExists(_) => {
                Self::new(StatusCode::CONFLICT, "already_exists", error.to_string())
            }
            PolicyError::Database(e) => Self::store(&e),
        }
    }
}

impl From<QueueError> for ApiError {
    fn from(error: QueueError) -> Self {
        match error {
            QueueError::Invalid(message) => Self::invalid(message),
            QueueError::Database(e) => Self::store(&e),
        }
    }
}

impl From<AdminError> for ApiError {
    fn from(error: AdminError) -> Self {
        match error {
            AdminError::NotFound(_) => {
                Self::new(StatusCode::NOT_FOUND, "not_found", error.to_string())
            }
            AdminError::Queue(e) => e.into(),
        }
    }
}
