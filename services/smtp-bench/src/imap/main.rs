//! `mailcluster-imap-bench`: IMAP figures for the access service (ISSUE: 100,000-message
//! mailbox, idle connections).
//!
//! * `mailbox`: one session logs in, then times `SELECT INBOX`, `FETCH 1:* (UID FLAGS)` and
//!   `FETCH 1:* (ENVELOPE)` from writing the command to reading its tagged OK (every response
//!   byte read and parsed for literals), `--rounds` times on fresh connections. Prints JSON with
//!   every round's milliseconds and the response sizes.
//! * `idle`: opens `--connections` sessions (in parallel batches of 50), each logging in,
//!   selecting INBOX and entering IDLE, prints `READY <n>` on stdout once all idle, holds them
//!   for `--hold-secs` (the caller measures the server's memory meanwhile), then ends each with
//!   DONE and LOGOUT. With `--tls`, connections use implicit TLS and trust `--ca-file`.
//!
//! Plain connections log in with LOGIN, so the server must allow passwords without TLS from
//! the bench's address (the local stack does on loopback).

use anyhow::{Context, bail};
use clap::{Parser, Subcommand};
use std::sync::Arc;
use std::time::{Duration, Instant};
use tokio::io::{AsyncBufReadExt, AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt, BufReader};
use tokio::net::TcpStream;

#[derive(Parser)]
#[command(
    name = "mailcluster-imap-bench",
    about = "IMAP benchmark for the access service"
)]
struct Cli {
    /// Server address (IMAP, or IMAPS with --tls).
    #[arg(long, default_value = "127.0.0.1:2143")]
    addr: String,
    #[arg(long)]
    user: String,
    #[arg(long, env = "IMAP_BENCH_PASSWORD")]
    password: String,
    /// Implicit TLS, trusting --ca-file (or, with --insecure, any certificate).
    #[arg(long)]
    tls: bool,
    #[arg(long)]
    ca_file: Option<std::path::PathBuf>,
    /// Accept any server certificate: for measuring a local server whose certificate rustls
    /// refuses (the local stack's self-signed one is marked as a CA). Never for real servers.
    #[arg(long)]
    insecure: bool,
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Times SELECT and FETCH 1:* on the INBOX.
    Mailbox {
        #[arg(long, default_value_t = 5)]
        rounds: usize,
    },
    /// Holds many sessions in IDLE.
    Idle {
        #[arg(long, default_value_t = 1000)]
        connections: usize,
        #[arg(long, default_value_t = 10)]
        hold_secs: u64,
    },
}

trait Io: AsyncRead + AsyncWrite + Unpin + Send {}
impl<T: AsyncRead + AsyncWrite + Unpin + Send> Io for T {}

struct Session {
    io: BufReader<Box<dyn Io>>,
    tag: u32,
}

impl Session {
    async fn connect(cli: &Cli, tls: Option<&tokio_rustls::TlsConnector>) -> anyhow::Result<Self> {
        let tcp = TcpStream::connect(&cli.addr).await?;
        tcp.set_nodelay(true)?;
        let io: Box<dyn Io> = match tls {
            Some(connector) => {
                let name = rustls_pki_types::ServerName::try_from("localhost")?;
                Box::new(connector.connect(name, tcp).await?)
            }
            None => Box::new(tcp),
        };
        let mut session = Session {
            io: BufReader::new(io),
            tag: 0,
        };
        let greeting = session.line().await?;
        if !greeting.starts_with(b"* OK") {
            bail!("greeting: {}", String::from_utf8_lossy(&greeting));
        }
        Ok(session)
    }

    async fn line(&mut self) -> anyhow::Result<Vec<u8>> {
        let mut line = Vec::new();
        let read = self.io.read_until(b'\n', &mut line).await?;
        if read == 0 {
            bail!("connection closed");
        }
        Ok(line)
    }

    /// Sends a command and reads everything up to its tagged reply (literals included).
    /// Returns the bytes read.
    async fn command(&mut self, text: &str) -> anyhow::Result<usize> {
        self.tag += 1;
        let tag = format!("b{}", self.tag);
        self.io
            .get_mut()
            .write_all(format!("{tag} {text}\r\n").as_bytes())
            .await?;
        let mut total = 0;
        loop {
            let line = self.line().await?;
            total += line.len();
            if let Some(length) = literal_length(&line) {
                let mut literal = vec![0; length];
                self.io.read_exact(&mut literal).await?;
                total += length;
                continue;
            }
            if line.starts_with(tag.as_bytes()) && line.get(tag.len()) == Some(&b' ') {
                let status = &line[tag.len() + 1..];
                if !status.starts_with(b"OK") {
                    bail!("{text}: {}", String::from_utf8_lossy(&line));
                }
                return Ok(total);
            }
        }
    }

    async fn login(&mut self, cli: &Cli) -> anyhow::Result<()> {
        self.command(&format!("LOGIN \"{}\" \"{}\"", cli.user, cli.password))
            .await
            .map(|_| ())
    }
}

/// `{n}` at the end of a line announces n bytes of literal.
fn literal_length(line: &[u8]) -> Option<usize> {
    let trimmed = line
        .strip_suffix(b"\r\n")
        .or_else(|| line.strip_suffix(b"\n"))?;
    let open = trimmed.iter().rposition(|b| *b == b'{')?;
    let inner = trimmed.get(open + 1..trimmed.len().checked_sub(1)?)?;
    if trimmed.last() != Some(&b'}') {
        return None;
    }
    std::str::from_utf8(inner)
        .ok()?
        .trim_end_matches('+')
        .parse()
        .ok()
}

fn connector(cli: &Cli) -> anyhow::Result<Option<tokio_rustls::TlsConnector>> {
    if !cli.tls {
        return Ok(None);
    }
    use rustls_pki_types::pem::PemObject;
    if cli.insecure {
        let config = rustls::ClientConfig::builder()
            .dangerous()
            .with_custom_certificate_verifier(Arc::new(AnyCertificate))
            .with_no_client_auth();
        return Ok(Some(tokio_rustls::TlsConnector::from(Arc::new(config))));
    }
    let path = cli
        .ca_file
        .as_ref()
        .context("--tls needs --ca-file or --insecure")?;
    let mut roots = rustls::RootCertStore::empty();
    for cert in rustls_pki_types::CertificateDer::pem_file_iter(path)? {
        roots.add(cert?)?;
    }
    let config = rustls::ClientConfig::builder()
        .with_root_certificates(roots)
        .with_no_client_auth();
    Ok(Some(tokio_rustls::TlsConnector::from(Arc::new(config))))
}

/// `--insecure`: a verifier that accepts every certificate but still checks the handshake
/// signatures with the provider's algorithms.
#[derive(Debug)]
struct AnyCertificate;

impl rustls::client::danger::ServerCertVerifier for AnyCertificate {
    fn verify_server_cert(
        &self,
        _end_entity: &rustls_pki_types::CertificateDer<'_>,
        _intermediates: &[rustls_pki_types::CertificateDer<'_>],
        _server_name: &rustls_pki_types::ServerName<'_>,
        _ocsp_response: &[u8],
        _now: rustls_pki_types::UnixTime,
    ) -> Result<rustls::client::danger::ServerCertVerified, rustls::Error> {
        Ok(rustls::client::danger::ServerCertVerified::assertion())
    }

    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &rustls_pki_types::CertificateDer<'_>,
        dss: &rustls::DigitallySignedStruct,
    ) -> Result<rustls::client::danger::HandshakeSignatureValid, rustls::Error> {
        let algorithms =
            rustls::crypto::aws_lc_rs::default_provider().signature_verification_algorithms;
        rustls::crypto::verify_tls12_signature(message, cert, dss, &algorithms)
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &rustls_pki_types::CertificateDer<'_>,
        dss: &rustls::DigitallySignedStruct,
    ) -> Result<rustls::client::danger::HandshakeSignatureValid, rustls::Error> {
        let algorithms =
            rustls::crypto::aws_lc_rs::default_provider().signature_verification_algorithms;
        rustls::crypto::verify_tls13_signature(message, cert, dss, &algorithms)
    }

    fn supported_verify_schemes(&self) -> Vec<rustls::SignatureScheme> {
        rustls::crypto::aws_lc_rs::default_provider()
            .signature_verification_algorithms
            .supported_schemes()
    }
}

fn millis(started: Instant) -> f64 {
    started.elapsed().as_secs_f64() * 1000.0
}

async fn mailbox(cli: &Cli, rounds: usize) -> anyhow::Result<serde_json::Value> {
    let tls = connector(cli)?;
    let (mut select, mut flags, mut envelope) = (Vec::new(), Vec::new(), Vec::new());
    let (mut flags_bytes, mut envelope_bytes) = (0, 0);
    for _ in 0..rounds {
        let mut session = Session::connect(cli, tls.as_ref()).await?;
        session.login(cli).await?;
        let started = Instant::now();
        session.command("SELECT INBOX").await?;
        select.push(millis(started));
        let started = Instant::now();
        flags_bytes = session.command("FETCH 1:* (UID FLAGS)").await?;
        flags.push(millis(started));
        let started = Instant::now();
        envelope_bytes = session.command("FETCH 1:* (ENVELOPE)").await?;
        envelope.push(millis(started));
        session.command("LOGOUT").await.ok();
    }
    Ok(serde_json::json!({
        "select_ms": select,
        "fetch_uid_flags_ms": flags,
        "fetch_envelope_ms": envelope,
        "fetch_uid_flags_bytes": flags_bytes,
        "fetch_envelope_bytes": envelope_bytes,
    }))
}

async fn idle(
    cli: Arc<Cli>,
    connections: usize,
    hold_secs: u64,
) -> anyhow::Result<serde_json::Value> {
    let tls = connector(&cli)?.map(Arc::new);
    let started = Instant::now();
    let mut sessions = Vec::with_capacity(connections);
    let mut remaining = connections;
    while remaining > 0 {
        let batch = remaining.min(50);
        let mut tasks = Vec::new();
        for _ in 0..batch {
            let (cli, tls) = (cli.clone(), tls.clone());
            tasks.push(tokio::spawn(async move {
                let mut session = Session::connect(&cli, tls.as_deref()).await?;
                session.login(&cli).await?;
                session.command("SELECT INBOX").await?;
                session.tag += 1;
                let tag = format!("b{}", session.tag);
                session
                    .io
                    .get_mut()
                    .write_all(format!("{tag} IDLE\r\n").as_bytes())
                    .await?;
                let line = session.line().await?;
                if !line.starts_with(b"+") {
                    bail!("IDLE: {}", String::from_utf8_lossy(&line));
                }
                Ok::<_, anyhow::Error>((session, tag))
            }));
        }
        for task in tasks {
            sessions.push(task.await??);
        }
        remaining -= batch;
    }
    let opened_ms = millis(started);
    println!("READY {}", sessions.len());
    tokio::time::sleep(Duration::from_secs(hold_secs)).await;
    let mut ended = 0;
    for (mut session, tag) in sessions {
        session.io.get_mut().write_all(b"DONE\r\n").await?;
        loop {
            let line = session.line().await?;
            if line.starts_with(tag.as_bytes()) {
                break;
            }
        }
        session.command("LOGOUT").await.ok();
        ended += 1;
    }
    Ok(serde_json::json!({
        "connections": connections,
        "tls": cli.tls,
        "opened_ms": opened_ms,
        "ended": ended,
    }))
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let _ = rustls::crypto::aws_lc_rs::default_provider().install_default();
    let cli = Arc::new(Cli::parse());
    let result = match &cli.command {
        Command::Mailbox { rounds } => mailbox(&cli, *rounds).await?,
        Command::Idle {
            connections,
            hold_secs,
        } => idle(cli.clone(), *connections, *hold_secs).await?,
    };
    println!("{result}");
    Ok(())
}
