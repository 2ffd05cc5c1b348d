//! SMTP clients for the tests: a raw line client (exact bytes), Python's smtplib, and swaks.

use std::io::{BufRead, BufReader, Read, Write};
use std::net::TcpStream;
use std::process::{Child, ChildStdout, Command, Stdio};
use std::time::Duration;

/// One reply: its code and its lines' texts (after `code-`/`code `).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Reply {
    pub code: u16,
    pub lines: Vec<String>,
}

impl Reply {
    /// The last line's text (with the enhanced code, if any).
    pub fn text(&self) -> &str {
        self.lines.last().map(String::as_str).unwrap_or("")
    }

    /// `"<code> <last line>"`, e.g. `"550 5.1.1 Unknown user"`.
    pub fn line(&self) -> String {
        format!("{} {}", self.code, self.text())
    }
}

/// A raw SMTP client on plain TCP: exact bytes out, replies in.
pub struct RawClient {
    pub stream: TcpStream,
    buffer: Vec<u8>,
}

impl RawClient {
    /// Connects and reads the banner.
    pub fn connect(port: u16) -> (Self, Reply) {
        Self::connect_to(std::net::SocketAddr::from(([127, 0, 0, 1], port)), b"")
    }

    /// Connects to `address`, sends `preamble` (e.g. a PROXY protocol header) and reads the
    /// banner.
    pub fn connect_to(address: std::net::SocketAddr, preamble: &[u8]) -> (Self, Reply) {
        let mut stream = TcpStream::connect(address).expect("connect");
        std::io::Write::write_all(&mut stream, preamble).expect("send the preamble");
        stream
            .set_read_timeout(Some(Duration::from_secs(10)))
            .expect("timeout");
        let mut client = Self {
            stream,
            buffer: Vec::new(),
        };
        let banner = client.reply().expect("banner");
        (client, banner)
    }

    pub fn send(&mut self, bytes: &[u8]) {
        self.stream.write_all(bytes).expect("send");
    }

    /// Sends one command line (CRLF added) and reads its reply.
    pub fn cmd(&mut self, line: &str) -> Reply {
        self.send(format!("{line}\r\n").as_bytes());
        self.reply()
            .unwrap_or_else(|| panic!("no reply to {line:?}"))
    }

    /// The next reply, or `None` when the connection closed (or the read timed out) first.
    pub fn reply(&mut self) -> Option<Reply> {
        let mut lines = Vec::new();
        loop {
            let line = self.line()?;
            let code = line.get(..3)?.parse().ok()?;
            let last = line.as_bytes().get(3) != Some(&b'-');
            lines.push(line.get(4..).unwrap_or("").to_string());
            if last {
                return Some(Reply { code, lines });
            }
        }
    }

    /// Every reply until the server closes the connection.
    pub fn replies_until_close(&mut self) -> Vec<Reply> {
        std::iter::from_fn(|| self.reply()).collect()
    }

    fn line(&mut self) -> Option<String> {
        loop {
            if let Some(end) = self.buffer.windows(2).position(|w| w == b"\r\n") {
                let line = String::from_utf8_lossy(&self.buffer[..end]).into_owned();
                self.buffer.drain(..end + 2);
                return Some(line);
            }
            let mut chunk = [0u8; 4096];
            match self.stream.read(&mut chunk) {
                Ok(0) | Err(_) => return None,
                Ok(n) => self.buffer.extend_from_slice(&chunk[..n]),
            }
        }
    }

    /// Whether the server closed the connection (EOF within the read timeout).
    pub fn is_closed(&mut self) -> bool {
        let mut byte = [0u8; 1];
        matches!(self.stream.read(&mut byte), Ok(0))
    }
}

/// How the Python client connects.
#[derive(Debug, Clone, Copy)]
pub enum Tls {
    Plain,
    StartTls,
    Implicit,
}

/// The smtplib driver: reads its spec as one JSON line on stdin, connects, says EHLO (and
/// STARTTLS + EHLO again), runs the steps, and prints
/// `{"ehlo": [keywords], "steps": [[code, text], ...], "error": ...}` as JSON.
const PYTHON_DRIVER: &str = r#"
import json, smtplib, ssl, sys
spec = json.loads(sys.stdin.readline())
ctx = ssl.create_default_context()
ctx.check_hostname = False
ctx.verify_mode = ssl.CERT_NONE
out = {"steps": [], "ehlo": [], "error": None}
def rec(reply):
    code, text = reply
    out["steps"].append([code, text.decode("utf-8", "replace") if isinstance(text, bytes) else str(text)])
try:
    if spec["tls"] == "Implicit":
        s = smtplib.SMTP_SSL("127.0.0.1", spec["port"], context=ctx, timeout=15)
    else:
        s = smtplib.SMTP("127.0.0.1", spec["port"], timeout=15)
    s.ehlo("client.test")
    if spec["tls"] == "StartTls":
        s.starttls(context=ctx)
        s.ehlo("client.test")
    out["ehlo"] = [(k + " " + v.strip()).strip().upper() for k, v in s.esmtp_features.items()]
    for step in spec["steps"]:
        op = step[0]
        try:
            if op == "auth":
                s.user, s.password = step[2], step[3]
                rec(s.auth(step[1], getattr(s, "auth_" + step[1].lower())))
            elif op == "mail":
                rec(s.mail(step[1], step[2] if len(step) > 2 else []))
            elif op == "rcpt":
                rec(s.rcpt(step[1]))
            elif op == "data":
                rec(s.data(step[1].encode()))
            elif op == "cmd":
                rec(s.docmd(step[1]))
            elif op == "pause":
                print("PAUSE", flush=True)
                sys.stdin.readline()
        except smtplib.SMTPResponseException as e:
            rec((e.smtp_code, e.smtp_error))
    s.quit()
except Exception as e:
    out["error"] = repr(e)
print(json.dumps(out))
"#;

/// What the smtplib driver saw.
#[derive(Debug)]
pub struct PythonRun {
    /// EHLO keywords (upper-case, with their parameters), after STARTTLS when used.
    pub ehlo: Vec<String>,
    /// `"<code> <text>"` per step that got a reply.
    pub steps: Vec<String>,
    pub error: Option<String>,
}

/// Runs the smtplib driver to the end. Steps: `["mail", from, [opts]]`, `["rcpt", to]`,
/// `["data", msg]`, `["cmd", line]`, `["auth", "PLAIN"|"LOGIN", user, password]`, `["pause"]`.
pub fn smtplib(port: u16, tls: Tls, steps: serde_json::Value) -> PythonRun {
    PythonSession::start(port, tls, steps).finish()
}

/// The smtplib driver as a running process, for steps that must wait for the test (`["pause"]`).
pub struct PythonSession {
    child: Child,
    stdout: BufReader<ChildStdout>,
}

impl PythonSession {
    pub fn start(port: u16, tls: Tls, steps: serde_json::Value) -> Self {
        let spec = serde_json::json!({"port": port, "tls": format!("{tls:?}"), "steps": steps});
        let mut child = Command::new("python3")
            .arg("-c")
            .arg(PYTHON_DRIVER)
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .spawn()
            .expect("run python3");
        // The spec goes through stdin: a large message does not fit in an argument.
        let stdin = child.stdin.as_mut().expect("stdin");
        writeln!(stdin, "{spec}")
            .and_then(|()| stdin.flush())
            .expect("write the spec");
        let stdout = BufReader::new(child.stdout.take().expect("stdout"));
        Self { child, stdout }
    }

    /// Blocks until the driver reaches its next `["pause"]` step.
    pub fn wait_pause(&mut self) {
        let mut line = String::new();
        self.stdout.read_line(&mut line).expect("read python");
        assert_eq!(line.trim(), "PAUSE", "the driver did not pause");
    }

    /// Lets the driver continue after a pause.
    pub fn resume(&mut self) {
        let stdin = self.child.stdin.as_mut().expect("stdin");
        stdin
            .write_all(b"\n")
            .and_then(|()| stdin.flush())
            .expect("resume python");
    }

    pub fn finish(mut self) -> PythonRun {
        drop(self.child.stdin.take());
        let mut text = String::new();
        self.stdout.read_to_string(&mut text).expect("read python");
        let _ = self.child.wait();
        let value: serde_json::Value = serde_json::from_str(text.trim())
            .unwrap_or_else(|e| panic!("python output is not JSON ({e}): {text}"));
        let strings = |v: &serde_json::Value| -> Vec<String> {
            v.as_array()
                .into_iter()
                .flatten()
                .map(|x| match x {
                    serde_json::Value::Array(pair) => {
                        format!("{} {}", pair[0], pair[1].as_str().unwrap_or(""))
                    }
                    other => other.as_str().unwrap_or("").to_string(),
                })
                .collect()
        };
        PythonRun {
            ehlo: strings(&value["ehlo"]),
            steps: strings(&value["steps"]),
            error: value["error"].as_str().map(str::to_string),
        }
    }
}

/// What swaks saw: every server reply line it printed (`<-`, `<~`, `<**`, `<~*`) as
/// `"<code><sep><text>"` (multi-line replies give one entry per line), and its exit code.
#[derive(Debug)]
pub struct SwaksRun {
    pub replies: Vec<String>,
    pub exit: Option<i32>,
    pub transcript: String,
}

impl SwaksRun {
    /// The final line of each reply (continuation lines `ddd-` dropped).
    pub fn finals(&self) -> Vec<&str> {
        self.replies
            .iter()
            .filter(|l| l.as_bytes().get(3) != Some(&b'-'))
            .map(String::as_str)
            .collect()
    }
}

/// Runs swaks against 127.0.0.1:`port` with `args` (EHLO name `client.test`).
pub fn swaks(port: u16, args: &[&str]) -> SwaksRun {
    let output = Command::new("swaks")
        .arg("--server")
        .arg(format!("127.0.0.1:{port}"))
        .args(["--helo", "client.test", "--timeout", "15"])
        .args(args)
        .stdin(Stdio::null())
        .output()
        .expect("run swaks");
    let transcript = String::from_utf8_lossy(&output.stdout).into_owned();
    let replies = transcript
        .lines()
        .filter_map(|line| {
            let (marker, rest) = line.split_once(' ')?;
            matches!(marker, "<-" | "<~" | "<**" | "<~*").then(|| rest.trim_start().to_string())
        })
        .collect();
    SwaksRun {
        replies,
        exit: output.status.code(),
        transcript,
    }
}

/// The id in a `250 2.0.0 OK queued as <id>` reply.
pub fn queued_id(reply: &str) -> Option<String> {
    reply
        .split("OK queued as ")
        .nth(1)
        .map(|id| id.trim().to_string())
}
