//! What `route add` and `relayer set` share: the `HOST[:PORT]` syntax, the TLS mode, and SMTP AUTH
//! credentials for the next hop. The password can come from a flag, a file or the environment
//! (the last two keep it out of shell history and the process list); it is sent, never printed.

use crate::client::Failure;
use clap::{Args, ValueEnum};
use serde_json::{Map, Value, json};
use std::net::Ipv6Addr;
use std::path::PathBuf;

/// Where the password comes from when `--user` is given without `--password`/`--password-file`.
pub(super) const PASSWORD_ENV: &str = "MAILCTL_RELAY_PASSWORD";

/// The SMTP port when `HOST` has none.
const DEFAULT_PORT: u16 = 25;

#[derive(Clone, Copy, ValueEnum)]
pub(super) enum Tls {
    /// STARTTLS with a certificate that verifies, or no delivery.
    Required,
    /// STARTTLS when offered.
    Optional,
    /// Never TLS.
    None,
}

#[derive(Args)]
pub(super) struct HopArgs {
    /// TLS towards the next hop [default: optional].
    #[arg(long, value_enum)]
    tls: Option<Tls>,
    /// User name for SMTP AUTH at the next hop; the password comes from --password,
    /// --password-file or MAILCTL_RELAY_PASSWORD.
    #[arg(long)]
    user: Option<String>,
    /// The password (visible in shell history and the process list; prefer --password-file).
    #[arg(long, conflicts_with = "password_file")]
    password: Option<String>,
    /// File whose first line is the password.
    #[arg(long)]
    password_file: Option<PathBuf>,
}

impl HopArgs {
    /// Adds `tls`, `username` and `password` to a request body.
    pub(super) fn fill(&self, body: &mut Map<String, Value>) -> Result<(), Failure> {
        if let Some(tls) = self.tls {
            let mode = match tls {
                Tls::Required => "required",
                Tls::Optional => "optional",
                Tls::None => "none",
            };
            body.insert("tls".into(), json!(mode));
        }
        let given = self.password()?;
        match (&self.user, given) {
            (None, None) => {}
            (Some(user), Some(password)) => {
                if user.is_empty() {
                    return Err(Failure::Usage("--user must not be empty".into()));
                }
                body.insert("username".into(), json!(user));
                body.insert("password".into(), json!(password));
            }
            (Some(_), None) => {
                return Err(Failure::Usage(format!(
                    "--user needs a password: --password, --password-file or {PASSWORD_ENV}"
                )));
            }
            (None, Some(_)) => {
                return Err(Failure::Usage("a password needs --user".into()));
            }
        }
        Ok(())
    }

    /// The password from a flag or a file; from the environment only when `--user` is given,
    /// so that an exported variable does not turn every command into an authenticated one.
    fn password(&self) -> Result<Option<String>, Failure> {
        let password = if let Some(password) = &self.password {
            password.clone()
        } else if let Some(path) = &self.password_file {
            let text = std::fs::read_to_string(path).map_err(|e| {
                Failure::Usage(format!(
                    "cannot read the password file {}: {e}",
                    path.display()
                ))
            })?;
            text.lines().next().unwrap_or_default().to_string()
        } else if self.user.is_some() {
            match std::env::var(PASSWORD_ENV) {
                Ok(password) => password,
                Err(_) => return Ok(None),
            }
        } else {
            return Ok(None);
        };
        if password.is_empty() {
            return Err(Failure::Usage("the password is empty".into()));
        }
        Ok(Some(password))
    }
}

/// `HOST[:PORT]`: a name, an IPv4 address, a bare IPv6 address, or `[IPv6]` with or without a
/// port. The port defaults to 25.
pub(super) fn host_port(text: &str) -> Result<(String, u16), Failure> {
    let text = text.trim();
    let usage = |why: &str| Failure::Usage(format!("invalid host {text:?}: {why}"));
    if let Some(rest) = text.strip_prefix('[') {
        let (address, after) = rest.split_once(']').ok_or_else(|| usage("missing ']'"))?;
        if address.parse::<Ipv6Addr>().is_err() {
            return Err(usage("brackets hold an IPv6 address"));
        }
        let port = match after {
            "" => DEFAULT_PORT,
            _ => match after.strip_prefix(':') {
                Some(port) => parse_port(port).map_err(|why| usage(&why))?,
                None => return Err(usage("expected ':PORT' after ']'")),
            },
        };
        return Ok((address.to_string(), port));
    }
    if text.parse::<Ipv6Addr>().is_ok() {
        return Ok((text.to_string(), DEFAULT_PORT));
    }
    let (host, port) = match text.split_once(':') {
        None => (text, DEFAULT_PORT),
        Some((_, port)) if port.contains(':') => {
            return Err(usage(
                "an IPv6 address with a port goes in brackets, e.g. [2001:db8::1]:25",
            ));
        }
        Some((host, port)) => (host, parse_port(port).map_err(|why| usage(&why))?),
    };
    if host.is_empty() {
        return Err(usage("the host is empty"));
    }
    Ok((host.to_string(), port))
}

fn parse_port(text: &str) -> Result<u16, String> {
    match text.parse::<u16>() {
        Ok(0) => Err("port 0 is not a port".into()),
        Ok(port) => Ok(port),
        Err(_) => Err(format!("port {text:?} is not a number from 1 to 65535")),
    }
}

#[cfg(test)]
mod tests {
    use super::host_port;

    fn ok(text: &str) -> (String, u16) {
        host_port(text).unwrap_or_else(|e| panic!("{text}: {e}"))
    }

    #[test]
    fn host_and_port_forms_are_understood() {
        assert_eq!(ok("mx.example.org"), ("mx.example.org".into(), 25));
        assert_eq!(ok("mx.example.org:2525"), ("mx.example.org".into(), 2525));
        assert_eq!(ok("192.0.2.7:587"), ("192.0.2.7".into(), 587));
        assert_eq!(ok("[::1]:2525"), ("::1".into(), 2525));
        assert_eq!(ok("[2001:db8::1]"), ("2001:db8::1".into(), 25));
        assert_eq!(ok("2001:db8::1"), ("2001:db8::1".into(), 25));
        assert_eq!(ok("::1"), ("::1".into(), 25));
    }

    #[test]
    fn bad_host_and_port_forms_are_usage_errors() {
        for bad in [
            "",
            ":25",
            "mx.example.org:0",
            "mx.example.org:65536",
            "mx.example.org:smtp",
            "mx.example.org:",
            "[::1",
            "[::1]2525",
            "[mx.example.org]:25",
            "2001:db8::1:x:2525",
        ] {
            let error = host_port(bad).expect_err(bad);
            assert_eq!(error.exit_code(), 2, "{bad}: {error}");
        }
    }
}
