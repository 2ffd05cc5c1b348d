//! End-to-end harness: runs the real binaries (`mailcluster-admin`, `mailctl`,
//! `mailcluster-smtp-ingress`) as processes against the stores `ops/test` started, each test on its
//! own database, ports and key prefixes.
#![forbid(unsafe_code)]

pub mod access;
pub mod delivery;
pub mod dns;
pub mod sink;
pub mod smtp;

pub use smtp::IngressProcess;

use std::net::TcpListener;
use std::path::PathBuf;
use std::process::{Child, Command, Output, Stdio};
use std::time::{Duration, Instant};

pub use mc_testkit::TestDatabase;

/// The environment that points a service at the test object store (started by `ops/test`)
/// under `prefix`, and at the test Redis.
pub fn store_env(prefix: &str) -> Vec<(&'static str, String)> {
    let s3 = mc_testkit::S3Settings::from_env("unused");
    vec![
        ("MAILCLUSTER_REDIS__URL", mc_testkit::redis_url()),
        ("MAILCLUSTER_BLOB__BACKEND", "s3".into()),
        ("MAILCLUSTER_BLOB__S3__ENDPOINT", s3.endpoint),
        ("MAILCLUSTER_BLOB__S3__REGION", s3.region),
        ("MAILCLUSTER_BLOB__S3__BUCKET", s3.bucket),
        ("MAILCLUSTER_BLOB__S3__ACCESS_KEY_ID", s3.access_key_id),
        (
            "MAILCLUSTER_BLOB__S3__SECRET_ACCESS_KEY",
            s3.secret_access_key,
        ),
        ("MAILCLUSTER_BLOB__S3__PREFIX", prefix.to_string()),
    ]
}

/// Path of a workspace binary next to the test executable (`target/<profile>/<name>`).
pub fn bin(name: &str) -> PathBuf {
    let exe = std::env::current_exe().expect("current_exe");
    let dir = exe
        .parent()
        .and_then(|deps| deps.parent())
        .expect("target/<profile>");
    let path = dir.join(name);
    assert!(
        path.exists(),
        "{} is missing: build it first (`cargo build --workspace --bins`, which ops/test does)",
        path.display()
    );
    path
}

/// A self-signed certificate for `localhost` and `127.0.0.1` in a temporary folder (kept while
/// the returned guard lives): `(folder, cert.pem, key.pem)`.
pub fn self_signed_tls() -> (tempfile::TempDir, PathBuf, PathBuf) {
    let tls = tempfile::tempdir().expect("tempdir");
    let generated =
        rcgen::generate_simple_self_signed(vec!["localhost".into(), "127.0.0.1".into()])
            .expect("self-signed certificate");
    let (cert, key) = (tls.path().join("cert.pem"), tls.path().join("key.pem"));
    std::fs::write(&cert, generated.cert.pem()).expect("write cert");
    std::fs::write(&key, generated.signing_key.serialize_pem()).expect("write key");
    (tls, cert, key)
}

/// A TCP port that was free a moment ago.
///
/// A port is never handed out twice by one test process: the kernel may give a port that was
/// just released to the next `bind(0)`, and two listeners of one service on the same port make
/// it refuse its configuration.
pub fn free_port() -> u16 {
    static GIVEN: std::sync::Mutex<std::collections::BTreeSet<u16>> =
        std::sync::Mutex::new(std::collections::BTreeSet::new());
    loop {
        let port = TcpListener::bind("127.0.0.1:0")
            .and_then(|l| l.local_addr())
            .map(|a| a.port())
            .expect("free port");
        let mut given = GIVEN
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        if given.insert(port) {
            return port;
        }
    }
}

pub const ADMIN_TOKEN: &str = "e2e-admin-token-0123456789abcdef";

/// A running `mailcluster-admin serve` process; killed when dropped.
pub struct AdminProcess {
    pub child: Child,
    pub api_url: String,
    pub ops_url: String,
    log: PathBuf,
}

impl AdminProcess {
    /// Starts the admin service on fresh ports against `database_url` and waits until `/readyz`
    /// answers 200 (panics with the service log after 60 s).
    pub fn start(database_url: &str) -> Self {
        Self::start_with(database_url, &[])
    }

    /// [`AdminProcess::start`] with extra environment variables.
    pub fn start_with(database_url: &str, extra_env: &[(&str, &str)]) -> Self {
        let (api_port, ops_port) = (free_port(), free_port());
        let log = std::env::temp_dir().join(format!("mc-admin-{}.log", uuid_like()));
        let file = std::fs::File::create(&log).expect("log file");
        let child = Command::new(bin("mailcluster-admin"))
            .arg("serve")
            .env_clear()
            .env("PATH", std::env::var("PATH").unwrap_or_default())
            .env("MAILCLUSTER_DATABASE__URL", database_url)
            .env("MAILCLUSTER_ADMIN__TOKEN", ADMIN_TOKEN)
            .env("MAILCLUSTER_ADMIN__LISTEN", format!("127.0.0.1:{api_port}"))
            .env("MAILCLUSTER_OPS__LISTEN", format!("127.0.0.1:{ops_port}"))
            .env("MAILCLUSTER_LOG__FORMAT", "text")
            .envs(extra_env.iter().copied())
            .stdout(file.try_clone().expect("log file"))
            .stderr(file)
            .spawn()
            .expect("start mailcluster-admin");
        let admin = Self {
            child,
            api_url: format!("http://127.0.0.1:{api_port}"),
            ops_url: format!("http://127.0.0.1:{ops_port}"),
            log,
        };
        admin.wait_ready(Duration::from_secs(60));
        admin
    }

    fn wait_ready(&self, limit: Duration) {
        let started = Instant::now();
        while started.elapsed() < limit {
            if http_status(&format!("{}/readyz", self.ops_url)) == Some(200) {
                return;
            }
            std::thread::sleep(Duration::from_millis(100));
        }
        panic!(
            "mailcluster-admin did not become ready; its log:\n{}",
            self.log_text()
        );
    }

    pub fn log_text(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap_or_default()
    }

    /// Runs `mailctl` against this service with the token in the environment.
    pub fn mailctl(&self, args: &[&str]) -> Output {
        mailctl(&self.api_url, Some(ADMIN_TOKEN), args, None)
    }

    /// Sends SIGTERM and waits for the exit status.
    pub fn terminate(mut self) -> std::process::ExitStatus {
        let _ = Command::new("kill")
            .arg("-TERM")
            .arg(self.child.id().to_string())
            .status();
        let started = Instant::now();
        loop {
            if let Ok(Some(status)) = self.child.try_wait() {
                return status;
            }
            assert!(
                started.elapsed() < Duration::from_secs(15),
                "no exit within 15 s of SIGTERM"
            );
            std::thread::sleep(Duration::from_millis(50));
        }
    }
}

impl Drop for AdminProcess {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Runs `mailctl` with a clean environment; `stdin` is written to its standard input.
pub fn mailctl(url: &str, token: Option<&str>, args: &[&str], stdin: Option<&str>) -> Output {
    let mut command = Command::new(bin("mailctl"));
    command.args(args).env_clear().env("MAILCTL_URL", url);
    if let Some(token) = token {
        command.env("MAILCTL_TOKEN", token);
    }
    command.stdin(if stdin.is_some() {
        Stdio::piped()
    } else {
        Stdio::null()
    });
    command.stdout(Stdio::piped()).stderr(Stdio::piped());
    let mut child = command.spawn().expect("start mailctl");
    if let Some(text) = stdin {
        use std::io::Write;
        child
            .stdin
            .take()
            .expect("stdin")
            .write_all(text.as_bytes())
            .expect("write stdin");
    }
    child.wait_with_output().expect("mailctl output")
}

/// A plain HTTP/1.1 GET on loopback: `(status, body)`, or `None` when nothing answers. Enough for
/// the ops endpoints, which send small bodies with a Content-Length.
pub fn http(url: &str) -> Option<(u16, String)> {
    use std::io::{Read, Write};
    let rest = url.strip_prefix("http://")?;
    let (host, path) = rest
        .split_once('/')
        .map(|(h, p)| (h, format!("/{p}")))
        .unwrap_or((rest, "/".into()));
    let mut stream = std::net::TcpStream::connect(host).ok()?;
    stream.set_read_timeout(Some(Duration::from_secs(3))).ok()?;
    write!(
        stream,
        "GET {path} HTTP/1.1\r\nHost: {host}\r\nConnection: close\r\n\r\n"
    )
    .ok()?;
    let mut response = String::new();
    stream.read_to_string(&mut response).ok()?;
    let status = response.split_whitespace().nth(1)?.parse().ok()?;
    let body = response
        .split_once("\r\n\r\n")
        .map(|(_, b)| b.to_string())
        .unwrap_or_default();
    Some((status, body))
}

pub fn http_status(url: &str) -> Option<u16> {
    http(url).map(|(status, _)| status)
}

pub fn http_get(url: &str) -> Option<String> {
    http(url).map(|(_, body)| body)
}

/// The value of one series in a scrape, written exactly as the exposition writes it
/// (`name{label="value",...}`), or `None` when the scrape does not have it.
pub fn sample(scrape: &str, series: &str) -> Option<f64> {
    scrape.lines().find_map(|line| {
        let value = line.strip_prefix(series)?.strip_prefix(' ')?;
        value.split_whitespace().next()?.parse().ok()
    })
}

pub(crate) fn uuid_like() -> String {
    format!(
        "{}-{}",
        std::process::id(),
        Instant::now().elapsed().as_nanos() ^ rand_seed()
    )
}

fn rand_seed() -> u128 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_nanos())
        .unwrap_or(0)
}

/// `stdout` of a finished command as text.
pub fn stdout(output: &Output) -> String {
    String::from_utf8_lossy(&output.stdout).into_owned()
}

pub fn stderr(output: &Output) -> String {
    String::from_utf8_lossy(&output.stderr).into_owned()
}
