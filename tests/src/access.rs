//! Access end-to-end harness: the `mailcluster-access` process (IMAP and POP3, plain and TLS) on
//! fresh ports, and a runner for Python scripts that drive it with the standard library's
//! `imaplib` and `poplib` (independent clients), reporting what they saw as JSON.

use crate::{TestDatabase, bin, free_port, http_status, uuid_like};
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

/// A running `mailcluster-access serve`; killed (SIGKILL) when dropped.
pub struct AccessProcess {
    pub child: Child,
    pub imap_port: u16,
    pub imaps_port: u16,
    pub pop3_port: u16,
    pub pop3s_port: u16,
    pub ops_url: String,
    /// The certificate the TLS listeners present (a client's CA file).
    pub cert: PathBuf,
    pub redis_prefix: String,
    log: PathBuf,
    _tls: tempfile::TempDir,
}

impl AccessProcess {
    /// Starts the access service against `db` and the test object store (`s3_prefix`, where
    /// the ingress of the same test stores bodies) and waits until `/readyz` answers 200.
    pub fn start(db: &TestDatabase, s3_prefix: &str, extra_env: &[(&str, &str)]) -> Self {
        let redis_prefix = mc_testkit::unique_prefix("access");
        Self::start_shared(db, s3_prefix, &redis_prefix, extra_env)
    }

    /// Like [`AccessProcess::start`] with a given Redis prefix: replicas of one cluster share it.
    pub fn start_shared(
        db: &TestDatabase,
        s3_prefix: &str,
        redis_prefix: &str,
        extra_env: &[(&str, &str)],
    ) -> Self {
        // Five ports free a moment ago may be taken by another test by the time the service
        // binds them: then it exits at once, and a new set is tried.
        for _ in 0..3 {
            match Self::try_start(db, s3_prefix, redis_prefix, extra_env) {
                Ok(access) => return access,
                Err(log) if log.contains("Address already in use") => continue,
                Err(log) => panic!("mailcluster-access did not become ready; its log:\n{log}"),
            }
        }
        panic!("mailcluster-access found no free ports in three attempts");
    }

    fn try_start(
        db: &TestDatabase,
        s3_prefix: &str,
        redis_prefix: &str,
        extra_env: &[(&str, &str)],
    ) -> Result<Self, String> {
        let (tls, cert, key) = crate::self_signed_tls();
        let (imap, imaps, pop3, pop3s, ops) = (
            free_port(),
            free_port(),
            free_port(),
            free_port(),
            free_port(),
        );
        let log = std::env::temp_dir().join(format!("mc-access-{}.log", uuid_like()));
        let file = std::fs::File::create(&log).expect("log file");
        let list = |port: u16| format!("[\"127.0.0.1:{port}\"]");
        let child = Command::new(bin("mailcluster-access"))
            .arg("serve")
            .env_clear()
            .env("PATH", std::env::var("PATH").unwrap_or_default())
            .env("MAILCLUSTER_DATABASE__URL", &db.url)
            .envs(crate::store_env(s3_prefix))
            .env("MAILCLUSTER_REDIS__KEY_PREFIX", redis_prefix)
            .env("MAILCLUSTER_ACCESS__HOSTNAME", "imap.test.example")
            .env("MAILCLUSTER_ACCESS__IMAP_LISTEN", list(imap))
            .env("MAILCLUSTER_ACCESS__IMAPS_LISTEN", list(imaps))
            .env("MAILCLUSTER_ACCESS__POP3_LISTEN", list(pop3))
            .env("MAILCLUSTER_ACCESS__POP3S_LISTEN", list(pop3s))
            .env("MAILCLUSTER_OPS__LISTEN", format!("127.0.0.1:{ops}"))
            .env("MAILCLUSTER_LOG__FORMAT", "text")
            .env("MAILCLUSTER_TLS__CERT_FILE", &cert)
            .env("MAILCLUSTER_TLS__KEY_FILE", &key)
            .envs(extra_env.iter().copied())
            .stdout(file.try_clone().expect("log file"))
            .stderr(file)
            .spawn()
            .expect("start mailcluster-access");
        let access = Self {
            child,
            imap_port: imap,
            imaps_port: imaps,
            pop3_port: pop3,
            pop3s_port: pop3s,
            ops_url: format!("http://127.0.0.1:{ops}"),
            cert,
            redis_prefix: redis_prefix.to_string(),
            log,
            _tls: tls,
        };
        let mut access = access;
        let started = Instant::now();
        while started.elapsed() < Duration::from_secs(30) {
            if http_status(&format!("{}/readyz", access.ops_url)) == Some(200) {
                return Ok(access);
            }
            if matches!(access.child.try_wait(), Ok(Some(_))) {
                break;
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        Err(access.log_text())
    }

    pub fn log_text(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap_or_default()
    }

    pub fn metrics(&self) -> String {
        crate::http_get(&format!("{}/metrics", self.ops_url)).expect("metrics")
    }

    /// Runs a Python script against this server: it sees `IMAP_PORT`, `IMAPS_PORT`,
    /// `POP3_PORT`, `POP3S_PORT`, `CA_FILE` and `PASSWORD` in its environment, and must print
    /// one JSON document on stdout.
    pub fn python(&self, script: &str) -> serde_json::Value {
        self.python_with(script, &[])
    }

    /// [`AccessProcess::python`] with more environment (another replica's ports, say).
    pub fn python_with(&self, script: &str, env: &[(&str, String)]) -> serde_json::Value {
        let output = self
            .python_command(script, env)
            .stdin(Stdio::null())
            .output()
            .expect("run python");
        let stdout = String::from_utf8_lossy(&output.stdout);
        assert!(
            output.status.success(),
            "python failed: {}\nstdout: {stdout}\nserver log:\n{}",
            String::from_utf8_lossy(&output.stderr),
            self.log_text()
        );
        serde_json::from_str(stdout.trim())
            .unwrap_or_else(|e| panic!("python printed no JSON ({e}): {stdout}"))
    }

    /// Starts a script in the background: it may print progress lines (read them with
    /// [`PythonChild::line`]) before its final JSON line.
    pub fn python_spawn(&self, script: &str, env: &[(&str, String)]) -> PythonChild {
        let mut child = self
            .python_command(script, env)
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .expect("start python");
        let stdout = std::io::BufReader::new(child.stdout.take().expect("stdout"));
        PythonChild { child, stdout }
    }

    fn python_command(&self, script: &str, env: &[(&str, String)]) -> Command {
        let mut command = Command::new(crate::sink::venv_python());
        command
            .arg("-u")
            .arg("-c")
            .arg(script)
            .env("IMAP_PORT", self.imap_port.to_string())
            .env("IMAPS_PORT", self.imaps_port.to_string())
            .env("POP3_PORT", self.pop3_port.to_string())
            .env("POP3S_PORT", self.pop3s_port.to_string())
            .env("CA_FILE", &self.cert)
            .env("PASSWORD", crate::smtp::PASSWORD)
            .envs(env.iter().map(|(k, v)| (*k, v.as_str())));
        command
    }
}

/// A Python client running in the background.
pub struct PythonChild {
    child: std::process::Child,
    stdout: std::io::BufReader<std::process::ChildStdout>,
}

impl PythonChild {
    /// The next line the script printed (panics at its end).
    pub fn line(&mut self) -> String {
        use std::io::BufRead;
        let mut line = String::new();
        self.stdout
            .read_line(&mut line)
            .expect("read python output");
        assert!(!line.is_empty(), "python ended early: {}", self.stderr());
        line.trim_end().to_string()
    }

    fn stderr(&mut self) -> String {
        use std::io::Read;
        let mut text = String::new();
        if let Some(stderr) = self.child.stderr.as_mut() {
            let _ = stderr.read_to_string(&mut text);
        }
        text
    }

    /// Waits for the script's end and parses its last line as JSON.
    pub fn finish(mut self) -> serde_json::Value {
        let line = self.line();
        let status = self.child.wait().expect("python exit");
        assert!(status.success(), "python failed: {}", self.stderr());
        serde_json::from_str(&line).unwrap_or_else(|e| panic!("not JSON ({e}): {line}"))
    }
}

impl Drop for PythonChild {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl Drop for AccessProcess {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}
