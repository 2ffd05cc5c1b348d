//! SASL PLAIN (RFC 4616) as POP3 carries it (RFC 5034): a base64 response decoded to a login
//! and a password, and the [`Password`] type that keeps secrets out of logs.
//!
//! Nothing here verifies a password; the driver checks the credentials against the directory.
//! Proxy authorisation is not supported: an authorisation identity must be empty or the login
//! itself. Responses are bounded by the command line limit before they reach this module.

use base64::Engine;
use base64::engine::general_purpose::STANDARD;
use std::fmt;

/// A password as the client sent it. Its `Debug` output never shows it, so commands and actions
/// can be logged whole.
#[derive(Clone, PartialEq, Eq)]
pub struct Password(String);

impl Password {
    pub fn new(password: String) -> Self {
        Self(password)
    }

    /// The secret itself, for the credential check only.
    pub fn expose(&self) -> &str {
        &self.0
    }
}

impl fmt::Debug for Password {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("Password(<redacted>)")
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum SaslError {
    /// The client sent `*` (RFC 5034 section 4).
    Cancelled,
    BadBase64,
    /// Not UTF-8, not three fields, an empty login, or a foreign authorisation identity.
    Malformed,
}

/// Decodes a PLAIN response `[authzid] NUL authcid NUL password`. `=` stands for an empty
/// initial response (RFC 5034 section 4), which PLAIN cannot use.
pub(crate) fn decode_plain(response: &str) -> Result<(String, Password), SaslError> {
    let response = response.trim_matches(' ');
    if response == "*" {
        return Err(SaslError::Cancelled);
    }
    let bytes = match response {
        "=" | "" => Vec::new(),
        _ => STANDARD
            .decode(response)
            .map_err(|_| SaslError::BadBase64)?,
    };
    let text = String::from_utf8(bytes).map_err(|_| SaslError::Malformed)?;
    let mut fields = text.split('\0');
    let (Some(authzid), Some(login), Some(password), None) =
        (fields.next(), fields.next(), fields.next(), fields.next())
    else {
        return Err(SaslError::Malformed);
    };
    if login.is_empty() || (!authzid.is_empty() && authzid != login) {
        return Err(SaslError::Malformed);
    }
    Ok((login.to_string(), Password::new(password.to_string())))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn b64(text: &str) -> String {
        STANDARD.encode(text)
    }

    #[test]
    fn plain_with_and_without_authorisation_identity() {
        let (login, password) = decode_plain(&b64("\0alice@example.com\0s3cret")).expect("plain");
        assert_eq!(login, "alice@example.com");
        assert_eq!(password.expose(), "s3cret");
        assert!(decode_plain(&b64("bob\0bob\0pw")).is_ok());
        assert_eq!(
            decode_plain(&b64("admin\0bob\0pw")),
            Err(SaslError::Malformed)
        );
    }

    #[test]
    fn cancelled_bad_and_malformed() {
        assert_eq!(decode_plain("*"), Err(SaslError::Cancelled));
        assert_eq!(decode_plain("not base64!"), Err(SaslError::BadBase64));
        assert_eq!(decode_plain("="), Err(SaslError::Malformed));
        assert_eq!(decode_plain(""), Err(SaslError::Malformed));
        assert_eq!(decode_plain(&b64("one field")), Err(SaslError::Malformed));
        assert_eq!(decode_plain(&b64("\0\0pw")), Err(SaslError::Malformed));
        assert_eq!(decode_plain(&b64("a\0b\0c\0d")), Err(SaslError::Malformed));
    }

    #[test]
    fn passwords_are_redacted_in_debug_output() {
        let password = Password::new("hunter2".into());
        assert_eq!(format!("{password:?}"), "Password(<redacted>)");
    }
}
