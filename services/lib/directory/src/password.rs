//! Password hashing and verification.
//!
//! New passwords are hashed with argon2id (PHC string, OWASP parameters m=19 MiB, t=2, p=1).
//! Verification dispatches on the stored hash's scheme, so hashes imported from another server
//! (the reference stores salted SHA-256, MD5 or clear text; Dovecot uses `{SCHEME}` prefixes) can
//! be added as further arms without touching callers. Hashing costs tens of milliseconds of CPU,
//! so both directions run on the blocking thread pool, never on a reactor thread.

use crate::DirectoryError;
use argon2::password_hash::{PasswordHasher, PasswordVerifier};
use argon2::{Argon2, PasswordHash};
use mc_types::Secret;

/// Shortest password accepted for a new account or a password change.
pub const MIN_PASSWORD_LEN: usize = 8;
/// Longest password accepted (bounds the hashing work an attacker can cause).
pub const MAX_PASSWORD_LEN: usize = 1024;

/// The scheme of a stored hash.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Scheme {
    Argon2,
    Unsupported,
}

pub fn scheme_of(stored: &str) -> Scheme {
    if stored.starts_with("$argon2id$")
        || stored.starts_with("$argon2i$")
        || stored.starts_with("$argon2d$")
    {
        Scheme::Argon2
    } else {
        Scheme::Unsupported
    }
}

/// Checks the policy for new passwords.
pub fn check_policy(password: &Secret<String>) -> Result<(), DirectoryError> {
    let length = password.expose().chars().count();
    if length < MIN_PASSWORD_LEN {
        return Err(DirectoryError::Invalid(format!(
            "the password must have at least {MIN_PASSWORD_LEN} characters"
        )));
    }
    if password.expose().len() > MAX_PASSWORD_LEN {
        return Err(DirectoryError::Invalid(format!(
            "the password must have at most {MAX_PASSWORD_LEN} bytes"
        )));
    }
    Ok(())
}

/// How many hash computations run at once. Each takes ~19 MiB and a core for tens of
/// milliseconds; a flood of logins queues here instead of exhausting memory and threads.
fn hashing_permits() -> &'static tokio::sync::Semaphore {
    static PERMITS: std::sync::OnceLock<tokio::sync::Semaphore> = std::sync::OnceLock::new();
    PERMITS.get_or_init(|| {
        let cores = std::thread::available_parallelism()
            .map(|n| n.get())
            .unwrap_or(2);
        tokio::sync::Semaphore::new(cores * 2)
    })
}

/// Hashes a password with argon2id on the blocking pool.
pub async fn hash(password: Secret<String>) -> Result<String, DirectoryError> {
    let _permit = hashing_permits()
        .acquire()
        .await
        .map_err(|e| DirectoryError::Hashing(e.to_string()))?;
    tokio::task::spawn_blocking(move || {
        Argon2::default()
            .hash_password(password.expose().as_bytes())
            .map(|hash| hash.to_string())
            .map_err(|e| DirectoryError::Hashing(e.to_string()))
    })
    .await
    .map_err(|e| DirectoryError::Hashing(e.to_string()))?
}

/// Verifies a password against a stored hash on the blocking pool. A malformed or unsupported
/// stored hash verifies as false (and is logged), never as true.
pub async fn verify(password: Secret<String>, stored: String) -> bool {
    let Ok(_permit) = hashing_permits().acquire().await else {
        return false;
    };
    tokio::task::spawn_blocking(move || verify_blocking(password.expose(), &stored))
        .await
        .unwrap_or(false)
}

fn verify_blocking(password: &str, stored: &str) -> bool {
    match scheme_of(stored) {
        Scheme::Argon2 => match PasswordHash::new(stored) {
            Ok(parsed) => Argon2::default()
                .verify_password(password.as_bytes(), &parsed)
                .is_ok(),
            Err(error) => {
                tracing::warn!(%error, "stored argon2 hash does not parse");
                false
            }
        },
        Scheme::Unsupported => {
            tracing::warn!("stored password hash uses an unsupported scheme");
            false
        }
    }
}

/// A hash of a random password, verified against when the login names no account, so that an
/// unknown login costs as much time as a wrong password (no account enumeration by timing).
/// Computed once, on the blocking pool.
pub(crate) async fn dummy_hash() -> Result<String, DirectoryError> {
    static DUMMY: tokio::sync::OnceCell<String> = tokio::sync::OnceCell::const_new();
    DUMMY
        .get_or_try_init(|| async {
            let random: [u8; 32] = rand::random();
            hash(Secret::new(hex_string(&random))).await
        })
        .await
        .cloned()
}

fn hex_string(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn argon2id_hashes_verify_and_wrong_passwords_do_not() {
        let stored = hash(Secret::new("correct horse".into())).await.unwrap();
        assert!(
            stored.starts_with("$argon2id$v=19$m=19456,t=2,p=1$"),
            "{stored}"
        );
        assert!(verify(Secret::new("correct horse".into()), stored.clone()).await);
        assert!(!verify(Secret::new("wrong horse".into()), stored).await);
    }

    #[tokio::test]
    async fn unsupported_or_broken_hashes_never_verify() {
        assert!(!verify(Secret::new("x".into()), "plain-text".into()).await);
        assert!(!verify(Secret::new("x".into()), "$argon2id$garbage".into()).await);
        assert!(!verify(Secret::new("".into()), "".into()).await);
    }

    #[test]
    fn policy_bounds_length() {
        assert!(check_policy(&Secret::new("short".into())).is_err());
        assert!(check_policy(&Secret::new("long enough".into())).is_ok());
        assert!(check_policy(&Secret::new("x".repeat(2000))).is_err());
    }
}
