//! SASL PLAIN (RFC 4616) and LOGIN (draft-murchison-sasl-login) responses, decoded from base64.
//! Nothing here verifies a password; it only turns client responses into a login and a password,
//! which the caller checks against the directory. Decoded secrets are never logged.

use base64::Engine;
use base64::engine::general_purpose::STANDARD;

/// Longest base64 response accepted (a login plus a password, generously).
pub const MAX_RESPONSE_LEN: usize = 2048;

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Credentials {
    pub login: String,
    pub password: String,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SaslError {
    /// The client sent `*`.
    Cancelled,
    /// Not base64, not UTF-8, wrong number of fields, or an authorisation identity other than
    /// the login.
    Malformed,
}

fn decode(response: &str) -> Result<Vec<u8>, SaslError> {
    let response = response.trim();
    if response == "*" {
        return Err(SaslError::Cancelled);
    }
    if response.len() > MAX_RESPONSE_LEN {
        return Err(SaslError::Malformed);
    }
    if response == "=" {
        return Ok(Vec::new());
    }
    STANDARD.decode(response).map_err(|_| SaslError::Malformed)
}

/// Decodes a PLAIN response: `authzid NUL authcid NUL password`. An authorisation identity is
/// allowed only when it names the login itself (no proxy authorisation).
pub fn plain(response: &str) -> Result<Credentials, SaslError> {
    let bytes = decode(response)?;
    let text = String::from_utf8(bytes).map_err(|_| SaslError::Malformed)?;
    let mut parts = text.split('\0');
    let (Some(authzid), Some(login), Some(password), None) =
        (parts.next(), parts.next(), parts.next(), parts.next())
    else {
        return Err(SaslError::Malformed);
    };
    if login.is_empty() || (!authzid.is_empty() && authzid != login) {
        return Err(SaslError::Malformed);
    }
    Ok(Credentials {
        login: login.to_string(),
        password: password.to_string(),
    })
}

/// Decodes one LOGIN response (the user name or the password).
pub fn login_field(response: &str) -> Result<String, SaslError> {
    let bytes = decode(response)?;
    let text = String::from_utf8(bytes).map_err(|_| SaslError::Malformed)?;
    if text.contains('\0') {
        return Err(SaslError::Malformed);
    }
    Ok(text)
}

/// The LOGIN challenges, base64 of "Username:" and "Password:".
pub const LOGIN_USERNAME_CHALLENGE: &str = "VXNlcm5hbWU6";
pub const LOGIN_PASSWORD_CHALLENGE: &str = "UGFzc3dvcmQ6";

#[cfg(test)]
mod tests {
    use super::*;

    fn b64(s: &str) -> String {
        STANDARD.encode(s)
    }

    #[test]
    fn plain_with_and_without_authzid() {
        let creds = plain(&b64("\0user@example.com\0secret")).expect("plain");
        assert_eq!(creds.login, "user@example.com");
        assert_eq!(creds.password, "secret");
        assert!(plain(&b64("user@example.com\0user@example.com\0pw")).is_ok());
        assert_eq!(
            plain(&b64("admin@x\0user@example.com\0pw")),
            Err(SaslError::Malformed)
        );
    }

    #[test]
    fn malformed_and_cancelled() {
        assert_eq!(plain("*"), Err(SaslError::Cancelled));
        assert_eq!(plain("!!!"), Err(SaslError::Malformed));
        assert_eq!(plain(&b64("only-one-field")), Err(SaslError::Malformed));
        assert_eq!(plain(&b64("a\0b\0c\0d")), Err(SaslError::Malformed));
        assert_eq!(plain("="), Err(SaslError::Malformed));
        assert_eq!(login_field(&b64("user")), Ok("user".to_string()));
    }
}
