//! The far side of remote delivery, from tools that share no code with ours: a remote SMTP server
//! (`tests/tools/smtp_sink.py`, aiosmtpd) and a DKIM verifier (`tests/tools/dkim_verify.py`,
//! dkimpy). Both run in the Python venv that `ops/test` installs and names in
//! `MAILCLUSTER_TEST_VENV`.
//!
//! The sink answers by the recipient's local part: `reject…` is 550 5.1.1 at RCPT, `tempfail…`
//! is 451 4.3.0 at RCPT for the first `tempfail_times` attempts (then accepted), `datafail…` makes
//! DATA 554 5.6.0; anything else is accepted and spooled.

use std::io::{BufRead, BufReader, Write};
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::mpsc;
use std::time::{Duration, Instant};

/// How long the sink may take to print `ready`.
const START_TIMEOUT: Duration = Duration::from_secs(20);

/// How the sink presents itself.
#[derive(Debug, Clone)]
pub struct SinkOptions {
    /// The name in the banner and the EHLO reply.
    pub hostname: String,
    /// PEM certificate chain and private key: offer STARTTLS with them.
    pub tls: Option<(PathBuf, PathBuf)>,
    /// User and password: offer AUTH PLAIN and LOGIN (only after STARTTLS when `tls` is set) and
    /// refuse MAIL without it.
    pub auth: Option<(String, String)>,
    /// How many times RCPT of each `tempfail…` address is answered 451 before it is accepted.
    pub tempfail_times: u32,
}

impl Default for SinkOptions {
    fn default() -> Self {
        Self {
            hostname: "sink.test".into(),
            tls: None,
            auth: None,
            tempfail_times: 1,
        }
    }
}

/// One message the sink accepted.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Received {
    /// The reverse-path; empty for the null sender `<>`.
    pub mail_from: String,
    /// The accepted recipients, in RCPT order.
    pub rcpt_tos: Vec<String>,
    /// The message exactly as transmitted, dot-unstuffed, CRLF line ends.
    pub data: Vec<u8>,
    /// Whether the session used STARTTLS.
    pub tls: bool,
    pub auth_user: Option<String>,
    /// The name given in EHLO/HELO.
    pub helo: String,
    /// MAIL FROM parameters (upper-cased by aiosmtpd), e.g. `BODY=8BITMIME`, `SMTPUTF8`.
    pub mail_options: Vec<String>,
    /// RCPT TO parameters of each accepted recipient.
    pub rcpt_options: Vec<Vec<String>>,
    /// The client's `ip:port`.
    pub peer: String,
}

/// A running `smtp_sink.py` on a loopback port chosen by the system; killed when dropped.
pub struct SinkProcess {
    child: Child,
    port: u16,
    /// Holds `spool/` and `sink.log`; removed on drop.
    dir: tempfile::TempDir,
}

impl SinkProcess {
    /// Starts the sink and waits for its `ready` line (panics with its log after 20 s).
    pub fn start(options: SinkOptions) -> Self {
        let dir = tempfile::tempdir().expect("sink temp dir");
        let log = std::fs::File::create(dir.path().join("sink.log")).expect("sink log");
        let mut command = Command::new(venv_python());
        // Port 0: the sink binds whatever is free and reports it, so no other process can take
        // the port between choosing and binding it.
        command
            .arg(tools_dir().join("smtp_sink.py"))
            .args(["--listen", "127.0.0.1:0", "--spool"])
            .arg(dir.path().join("spool"))
            .args(["--hostname", &options.hostname])
            .args(["--tempfail-times", &options.tempfail_times.to_string()]);
        if let Some((cert, key)) = &options.tls {
            command
                .arg("--tls-cert")
                .arg(cert)
                .arg("--tls-key")
                .arg(key);
        }
        if let Some((user, password)) = &options.auth {
            command.arg("--auth").arg(format!("{user}:{password}"));
        }
        let mut child = command
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(log)
            .spawn()
            .expect("start tests/tools/smtp_sink.py");
        let stdout = child.stdout.take().expect("sink stdout");
        let (sender, receiver) = mpsc::channel();
        std::thread::spawn(move || {
            let mut line = String::new();
            let _ = BufReader::new(stdout).read_line(&mut line);
            let _ = sender.send(line);
        });
        let port = receiver
            .recv_timeout(START_TIMEOUT)
            .ok()
            .and_then(|line| line.trim().strip_prefix("ready ")?.parse().ok());
        let Some(port) = port else {
            let _ = child.kill();
            let _ = child.wait();
            panic!(
                "smtp_sink.py did not report ready within {START_TIMEOUT:?}; its log:\n{}",
                std::fs::read_to_string(dir.path().join("sink.log")).unwrap_or_default()
            );
        };
        Self { child, port, dir }
    }

    pub fn addr(&self) -> SocketAddr {
        SocketAddr::from(([127, 0, 0, 1], self.port))
    }

    pub fn port(&self) -> u16 {
        self.port
    }

    /// What the sink logged: connections, commands, decisions.
    pub fn log_text(&self) -> String {
        std::fs::read_to_string(self.dir.path().join("sink.log")).unwrap_or_default()
    }

    /// The messages accepted so far, in arrival order.
    pub fn messages(&self) -> Vec<Received> {
        let spool = self.dir.path().join("spool");
        let mut numbered: Vec<(u64, PathBuf)> = std::fs::read_dir(&spool)
            .expect("read the sink spool")
            .map(|entry| entry.expect("sink spool entry").path())
            .filter_map(|path| {
                let number = path.file_name()?.to_str()?.strip_suffix(".json")?.parse();
                Some((number.ok()?, path))
            })
            .collect();
        numbered.sort();
        numbered
            .iter()
            .map(|(_, path)| parse_spooled(path))
            .collect()
    }

    /// Waits until at least `count` messages arrived and returns all of them; panics with the
    /// sink's log when `timeout` passes first.
    pub fn wait_for(&self, count: usize, timeout: Duration) -> Vec<Received> {
        let started = Instant::now();
        loop {
            let messages = self.messages();
            if messages.len() >= count {
                return messages;
            }
            if started.elapsed() >= timeout {
                panic!(
                    "the sink received {} of {count} messages within {timeout:?}; its log:\n{}",
                    messages.len(),
                    self.log_text()
                );
            }
            std::thread::sleep(Duration::from_millis(50));
        }
    }
}

impl Drop for SinkProcess {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn parse_spooled(path: &Path) -> Received {
    let text = std::fs::read_to_string(path).expect("read a spooled message");
    let json: serde_json::Value = serde_json::from_str(&text).expect("spooled message is JSON");
    let string = |key: &str| json[key].as_str().map(str::to_string);
    let strings = |value: &serde_json::Value| -> Vec<String> {
        value
            .as_array()
            .map(|items| {
                items
                    .iter()
                    .filter_map(|item| item.as_str().map(str::to_string))
                    .collect()
            })
            .unwrap_or_default()
    };
    // `data` is the bytes decoded as latin-1: each char's code point is one byte.
    let data = json["data"]
        .as_str()
        .expect("spooled data")
        .chars()
        .map(|c| u8::try_from(u32::from(c)).expect("latin-1 data"))
        .collect();
    Received {
        mail_from: string("mail_from").unwrap_or_default(),
        rcpt_tos: strings(&json["rcpt_tos"]),
        data,
        tls: json["tls"].as_bool().unwrap_or(false),
        auth_user: string("auth_user"),
        helo: string("helo").unwrap_or_default(),
        mail_options: strings(&json["mail_options"]),
        rcpt_options: json["rcpt_options"]
            .as_array()
            .map(|lists| lists.iter().map(strings).collect())
            .unwrap_or_default(),
        peer: string("peer").unwrap_or_default(),
    }
}

/// Verifies the (first) DKIM signature of `message` with dkimpy, the public keys coming from
/// `txt`, pairs of record name and value such as
/// `("sel._domainkey.example.org", "v=DKIM1; k=rsa; p=…")`. `Ok("pass d=<domain> s=<selector>")`
/// when it verifies, else `Err` with dkimpy's reason.
pub fn dkim_verify(message: &[u8], txt: &[(&str, &str)]) -> Result<String, String> {
    let mut file = tempfile::NamedTempFile::new().expect("temp file");
    file.write_all(message).expect("write the message");
    let mut command = Command::new(venv_python());
    command
        .arg(tools_dir().join("dkim_verify.py"))
        .arg(file.path());
    for (name, value) in txt {
        command.arg("--txt").arg(format!("{name}={value}"));
    }
    let output = command
        .stdin(Stdio::null())
        .output()
        .expect("run tests/tools/dkim_verify.py");
    let stdout = String::from_utf8_lossy(&output.stdout).trim().to_string();
    if output.status.success() {
        return Ok(stdout);
    }
    let stderr = String::from_utf8_lossy(&output.stderr).trim().to_string();
    Err([stdout, stderr]
        .into_iter()
        .filter(|text| !text.is_empty())
        .collect::<Vec<_>>()
        .join("\n"))
}

/// Signs `message` with dkimpy (`tests/tools/dkim_sign.py`) under `domain`/`selector` with the
/// PEM private key `key_pem`; the signed message.
pub fn dkim_sign(message: &[u8], key_pem: &str, domain: &str, selector: &str) -> Vec<u8> {
    let mut file = tempfile::NamedTempFile::new().expect("temp file");
    file.write_all(message).expect("write the message");
    let mut key = tempfile::NamedTempFile::new().expect("temp file");
    key.write_all(key_pem.as_bytes()).expect("write the key");
    let output = Command::new(venv_python())
        .arg(tools_dir().join("dkim_sign.py"))
        .arg(file.path())
        .arg(key.path())
        .arg(domain)
        .arg(selector)
        .stdin(Stdio::null())
        .output()
        .expect("run tests/tools/dkim_sign.py");
    assert!(
        output.status.success(),
        "dkim_sign.py failed: {}",
        String::from_utf8_lossy(&output.stderr)
    );
    output.stdout
}

/// The Python of the test venv.
pub fn venv_python() -> PathBuf {
    let venv = std::env::var_os("MAILCLUSTER_TEST_VENV").unwrap_or_else(|| {
        panic!(
            "MAILCLUSTER_TEST_VENV is not set: run the tests with ops/test, or run \
             `source .state/test.env` after ops/test has run once"
        )
    });
    let python = PathBuf::from(venv).join("bin").join("python");
    assert!(
        python.exists(),
        "{} is missing: run ops/test (or `bash -c '. ops/lib.sh; ensure_python_tools'`) to \
         create the venv",
        python.display()
    );
    python
}

fn tools_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("..")
        .join("tests")
        .join("tools")
}
