//! The `healthcheck` subcommand every service binary offers: one HTTP/1.0 `GET` of the service's
//! own `/readyz` (or of a given URL) over a plain TCP connection, exit status 0 on `200` and 1
//! otherwise. Container images have no curl (distroless), so Docker's `HEALTHCHECK` runs this.
//!
//! It trusts nothing it reads: only the status line is parsed, at most [`MAX_RESPONSE_BYTES`]
//! are read, and the whole probe is bounded by one deadline. It speaks plain HTTP only (the ops
//! endpoint has no TLS) and never follows redirects.

use crate::config::{ServiceConfig, Sources};
use std::io::{Read, Write};
use std::net::{SocketAddr, TcpStream, ToSocketAddrs};
use std::path::PathBuf;
use std::process::ExitCode;
use std::time::{Duration, Instant};

/// Default deadline of one probe (Docker's own `--timeout` should be a little longer).
pub const DEFAULT_TIMEOUT: Duration = Duration::from_secs(3);
/// Most bytes read from the answer; the status line comes first, the body is never needed.
pub const MAX_RESPONSE_BYTES: usize = 4096;
/// Path probed when no `--url` is given.
pub const READY_PATH: &str = "/readyz";

/// The subcommand's arguments, shared by every service binary:
/// `healthcheck [--url URL] [--timeout-secs N]`.
#[derive(Debug, Clone, clap::Args)]
pub struct HealthcheckArgs {
    /// Probe this URL instead (plain http://).
    #[arg(long)]
    pub url: Option<String>,
    /// Give up after this many seconds.
    #[arg(long, default_value_t = DEFAULT_TIMEOUT.as_secs())]
    pub timeout_secs: u64,
}

impl HealthcheckArgs {
    /// [`main`] with these arguments.
    pub fn run<C: ServiceConfig>(
        self,
        config_file: Option<PathBuf>,
        ops_listen: impl FnOnce(&C) -> SocketAddr,
    ) -> ExitCode {
        main(
            config_file,
            self.url,
            Duration::from_secs(self.timeout_secs),
            ops_listen,
        )
    }
}

/// Runs the subcommand: probes `url`, or `/readyz` on the `ops.listen` address of the service's
/// configuration (`ops_listen` picks it). Prints one line; exit 0 when ready, 1 otherwise
/// (Docker reserves other codes, so a bad configuration is 1 too).
pub fn main<C: ServiceConfig>(
    config_file: Option<PathBuf>,
    url: Option<String>,
    timeout: Duration,
    ops_listen: impl FnOnce(&C) -> SocketAddr,
) -> ExitCode {
    let url = match url {
        Some(url) => url,
        None => match crate::config::load::<C>(&Sources::from_process(config_file)) {
            Ok(config) => ready_url(ops_listen(&config)),
            Err(errors) => {
                eprint!("healthcheck: {errors}");
                return ExitCode::FAILURE;
            }
        },
    };
    match probe(&url, timeout) {
        Ok(()) => {
            println!("healthcheck: {url}: 200");
            ExitCode::SUCCESS
        }
        Err(reason) => {
            eprintln!("healthcheck: {url}: {reason}");
            ExitCode::FAILURE
        }
    }
}

/// The readiness URL of an ops listener; a wildcard address is probed on loopback.
pub fn ready_url(listen: SocketAddr) -> String {
    let mut address = listen;
    if address.ip().is_unspecified() {
        address.set_ip(match listen {
            SocketAddr::V4(_) => [127, 0, 0, 1].into(),
            SocketAddr::V6(_) => std::net::Ipv6Addr::LOCALHOST.into(),
        });
    }
    format!("http://{address}{READY_PATH}")
}

/// GETs `url` (`http://host[:port][/path]`); `Ok` only for status 200 within `timeout`.
pub fn probe(url: &str, timeout: Duration) -> Result<(), String> {
    let deadline = Instant::now() + timeout;
    let (authority, path) = split_url(url)?;
    let addresses: Vec<SocketAddr> = authority
        .to_socket_addrs()
        .map_err(|e| format!("cannot resolve {authority}: {e}"))?
        .collect();
    let mut last_error = format!("{authority} resolves to no address");
    for address in addresses {
        match request(address, &authority, &path, deadline) {
            Ok(200) => return Ok(()),
            Ok(status) => return Err(format!("status {status}")),
            Err(error) => last_error = error,
        }
    }
    Err(last_error)
}

/// Splits `http://host[:port][/path]` into `host:port` (port 80 by default) and the path.
fn split_url(url: &str) -> Result<(String, String), String> {
    let rest = url
        .strip_prefix("http://")
        .ok_or_else(|| format!("not an http:// URL: {url}"))?;
    let (authority, path) = match rest.find('/') {
        Some(slash) => (&rest[..slash], &rest[slash..]),
        None => (rest, "/"),
    };
    if authority.is_empty() || authority.contains(['@', ' ']) || path.contains([' ', '\r', '\n']) {
        return Err(format!("not a usable URL: {url}"));
    }
    // A port is present when the text after the last ':' is outside an IPv6 literal's brackets.
    let has_port = authority
        .rsplit_once(':')
        .is_some_and(|(_, port)| !port.contains(']'));
    let authority = if has_port {
        authority.to_string()
    } else {
        format!("{authority}:80")
    };
    Ok((authority, path.to_string()))
}

/// One request on one address; returns the status code.
fn request(address: SocketAddr, host: &str, path: &str, deadline: Instant) -> Result<u16, String> {
    let remaining = || {
        deadline
            .checked_duration_since(Instant::now())
            .filter(|left| !left.is_zero())
            .ok_or_else(|| "timed out".to_string())
    };
    let mut stream = TcpStream::connect_timeout(&address, remaining()?)
        .map_err(|e| format!("cannot connect to {address}: {e}"))?;
    stream
        .set_write_timeout(Some(remaining()?))
        .map_err(|e| e.to_string())?;
    let request = format!(
        "GET {path} HTTP/1.0\r\nHost: {host}\r\nUser-Agent: mailcluster-healthcheck\r\n\r\n"
    );
    stream
        .write_all(request.as_bytes())
        .map_err(|e| format!("cannot send the request: {e}"))?;
    let mut answer = Vec::new();
    let mut chunk = [0u8; 512];
    // Read until the status line is complete, the peer closes, or the deadline passes.
    while !answer.contains(&b'\n') && answer.len() < MAX_RESPONSE_BYTES {
        stream
            .set_read_timeout(Some(remaining()?))
            .map_err(|e| e.to_string())?;
        match stream.read(&mut chunk) {
            Ok(0) => break,
            Ok(n) => answer.extend_from_slice(&chunk[..n]),
            Err(e)
                if matches!(
                    e.kind(),
                    std::io::ErrorKind::WouldBlock | std::io::ErrorKind::TimedOut
                ) =>
            {
                return Err("timed out".to_string());
            }
            Err(e) => return Err(format!("cannot read the answer: {e}")),
        }
    }
    status_code(&answer).ok_or_else(|| "not an HTTP answer".to_string())
}

/// The code of an `HTTP/1.x NNN …` status line.
fn status_code(answer: &[u8]) -> Option<u16> {
    let line = answer.split(|&b| b == b'\n').next()?;
    let line = std::str::from_utf8(line).ok()?;
    let mut words = line.split_ascii_whitespace();
    if !words.next()?.starts_with("HTTP/1.") {
        return None;
    }
    let code = words.next()?;
    (code.len() == 3).then(|| code.parse().ok()).flatten()
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::net::TcpListener;
    use std::thread;

    /// A one-shot server answering the first request with `answer`; returns its URL.
    fn serve_once(answer: &'static [u8]) -> String {
        let listener = TcpListener::bind("127.0.0.1:0").expect("bind");
        let address = listener.local_addr().expect("address");
        thread::spawn(move || {
            if let Ok((mut stream, _)) = listener.accept() {
                let mut request = [0u8; 1024];
                let _ = stream.read(&mut request);
                let _ = stream.write_all(answer);
            }
        });
        format!("http://{address}/readyz")
    }

    #[test]
    fn status_200_is_ready() {
        let url = serve_once(b"HTTP/1.1 200 OK\r\ncontent-length: 3\r\n\r\nok\n");
        assert_eq!(probe(&url, DEFAULT_TIMEOUT), Ok(()));
    }

    #[test]
    fn status_503_is_not_ready() {
        let url = serve_once(b"HTTP/1.1 503 Service Unavailable\r\n\r\n{}");
        assert_eq!(probe(&url, DEFAULT_TIMEOUT), Err("status 503".into()));
    }

    #[test]
    fn garbage_is_not_ready() {
        let url = serve_once(b"220 smtp.example.test ESMTP\r\n");
        assert_eq!(
            probe(&url, DEFAULT_TIMEOUT),
            Err("not an HTTP answer".into())
        );
    }

    #[test]
    fn nothing_listening_is_not_ready() {
        // Bind then drop: the port is (almost certainly) closed right after.
        let port = TcpListener::bind("127.0.0.1:0")
            .and_then(|l| l.local_addr())
            .expect("a free port")
            .port();
        let outcome = probe(&format!("http://127.0.0.1:{port}/readyz"), DEFAULT_TIMEOUT);
        assert!(outcome.is_err_and(|e| e.starts_with("cannot connect")));
    }

    #[test]
    fn a_silent_server_times_out_within_the_deadline() {
        let listener = TcpListener::bind("127.0.0.1:0").expect("bind");
        let url = format!("http://{}/readyz", listener.local_addr().expect("address"));
        let started = Instant::now();
        let outcome = probe(&url, Duration::from_millis(300));
        assert_eq!(outcome, Err("timed out".into()));
        assert!(
            started.elapsed() < Duration::from_secs(2),
            "{:?}",
            started.elapsed()
        );
        drop(listener);
    }

    #[test]
    fn urls_are_split_into_authority_and_path() {
        let split = |u: &str| split_url(u).expect(u);
        assert_eq!(
            split("http://127.0.0.1:9101/readyz"),
            ("127.0.0.1:9101".into(), "/readyz".into())
        );
        assert_eq!(
            split("http://localhost"),
            ("localhost:80".into(), "/".into())
        );
        assert_eq!(
            split("http://[::1]:9103/x"),
            ("[::1]:9103".into(), "/x".into())
        );
        assert_eq!(split("http://[::1]/x"), ("[::1]:80".into(), "/x".into()));
        assert!(split_url("https://localhost/").is_err());
        assert!(split_url("http://user@host/").is_err());
        assert!(split_url("http:///readyz").is_err());
    }

    #[test]
    fn a_wildcard_listener_is_probed_on_loopback() {
        assert_eq!(
            ready_url("0.0.0.0:9101".parse().expect("v4")),
            "http://127.0.0.1:9101/readyz"
        );
        assert_eq!(
            ready_url("[::]:9103".parse().expect("v6")),
            "http://[::1]:9103/readyz"
        );
        assert_eq!(
            ready_url("10.1.2.3:9104".parse().expect("v4")),
            "http://10.1.2.3:9104/readyz"
        );
    }
}
