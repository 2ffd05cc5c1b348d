//! Password hashing and verification.
//!
//! New passwords are hashed with argon2id (PHC string, OWASP parameters m=19 MiB, t=2, p=1).
//! Verification dispatches on the stored hash's scheme, so hashes imported from another server
//! (the reference stores salted SHA-256, MD5 or clear text; Dovecot uses `{SCHEME}` prefixes) can
//! be added as further arms without touching callers. Hashing costs tens of milliseconds of CPU,
//! so both directions run on the blocking thread pool, never on a reactor thread.

use crate::DirectoryError;
use argon2::password_hash::PasswordHasher;
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

/// Verifies a password against a stored hash on the verification threads. A malformed or
/// unsupported stored hash verifies as false (and is logged), never as true.
pub async fn verify(password: Secret<String>, stored: String) -> bool {
    let Ok(_permit) = hashing_permits().acquire().await else {
        return false;
    };
    let (reply, answer) = tokio::sync::oneshot::channel();
    let job = VerifyJob {
        password,
        stored,
        reply,
    };
    if verifiers().lock().map(|s| s.send(job)).is_err() {
        return false;
    }
    answer.await.unwrap_or(false)
}

/// One verification for the verification threads.
struct VerifyJob {
    password: Secret<String>,
    stored: String,
    reply: tokio::sync::oneshot::Sender<bool>,
}

/// The verification threads: one per core, each keeping its argon2 working memory (19 MiB with
/// the default parameters) for the next verification. Allocating that memory per login, on
/// whichever blocking thread runs it, leaves the allocator holding tens of MiB per thread that
/// ever verified: after a burst of logins a server kept hundreds of MiB it did not use.
fn verifiers() -> &'static std::sync::Mutex<std::sync::mpsc::Sender<VerifyJob>> {
    static SENDER: std::sync::OnceLock<std::sync::Mutex<std::sync::mpsc::Sender<VerifyJob>>> =
        std::sync::OnceLock::new();
    SENDER.get_or_init(|| {
        let (sender, receiver) = std::sync::mpsc::channel::<VerifyJob>();
        let receiver = std::sync::Arc::new(std::sync::Mutex::new(receiver));
        let threads = std::thread::available_parallelism()
            .map(|n| n.get())
            .unwrap_or(2);
        for index in 0..threads {
            let receiver = receiver.clone();
            let spawned = std::thread::Builder::new()
                .name(format!("password-verify-{index}"))
                .spawn(move || {
                    let mut memory: Vec<argon2::Block> = Vec::new();
                    loop {
                        let job = match receiver.lock() {
                            Ok(receiver) => receiver.recv(),
                            Err(_) => return,
                        };
                        let Ok(job) = job else { return };
                        let ok = verify_blocking(job.password.expose(), &job.stored, &mut memory);
                        let _ = job.reply.send(ok);
                    }
                });
            if let Err(error) = spawned {
                tracing::error!(%error, "password verification thread not started");
            }
        }
        std::sync::Mutex::new(sender)
    })
}

fn verify_blocking(password: &str, stored: &str, memory: &mut Vec<argon2::Block>) -> bool {
    match scheme_of(stored) {
        Scheme::Argon2 => match PasswordHash::new(stored) {
            Ok(parsed) => match argon2_matches(password.as_bytes(), &parsed, memory) {
                Ok(matches) => matches,
                Err(error) => {
                    tracing::warn!(%error, "stored argon2 hash cannot be checked");
                    false
                }
            },
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

/// Recomputes an argon2 hash with the stored algorithm, version, parameters and salt into the
/// thread's reusable memory, and compares in constant time.
fn argon2_matches(
    password: &[u8],
    parsed: &PasswordHash,
    memory: &mut Vec<argon2::Block>,
) -> Result<bool, String> {
    let (Some(salt), Some(expected)) = (&parsed.salt, &parsed.hash) else {
        return Err("no salt or no hash".into());
    };
    let params = argon2::Params::try_from(parsed).map_err(|e| e.to_string())?;
    let algorithm = argon2::Algorithm::new(parsed.algorithm.as_str()).map_err(|e| e.to_string())?;
    let version = match parsed.version {
        Some(version) => argon2::Version::try_from(version).map_err(|e| e.to_string())?,
        None => argon2::Version::default(),
    };
    let blocks = params.block_count();
    if memory.len() < blocks {
        memory.resize(blocks, argon2::Block::default());
    }
    let expected: &[u8] = expected.as_ref();
    let mut computed = vec![0u8; expected.len()];
    Argon2::new(algorithm, version, params)
        .hash_password_into_with_memory(
            password,
            salt.as_ref(),
            &mut computed,
            &mut memory[..blocks],
        )
        .map_err(|e| e.to_string())?;
    let difference = computed
        .iter()
        .zip(expected)
        .fold(0u8, |acc, (a, b)| acc | (a ^ b));
    Ok(difference == 0 && computed.len() == expected.len())
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
    async fn hashes_with_other_parameters_and_algorithms_verify_like_the_argon2_crate() {
        use argon2::password_hash::PasswordVerifier;
        for (algorithm, m, t, p) in [
            (argon2::Algorithm::Argon2id, 8, 1, 1),
            (argon2::Algorithm::Argon2id, 64, 3, 2),
            (argon2::Algorithm::Argon2i, 32, 2, 1),
            (argon2::Algorithm::Argon2d, 32, 1, 4),
        ] {
            let params = argon2::Params::new(m, t, p, None).unwrap();
            let hasher = Argon2::new(algorithm, argon2::Version::V0x13, params);
            let stored = hasher.hash_password(b"right password").unwrap().to_string();
            for (attempt, expected) in [("right password", true), ("wrong password", false)] {
                let parsed = PasswordHash::new(&stored).unwrap();
                let reference = Argon2::default()
                    .verify_password(attempt.as_bytes(), &parsed)
                    .is_ok();
                assert_eq!(reference, expected, "{stored}");
                assert_eq!(
                    verify(Secret::new(attempt.into()), stored.clone()).await,
                    expected,
                    "{stored} with {attempt}"
                );
            }
        }
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
