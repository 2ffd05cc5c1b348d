//! `mailcluster-smtp-sink`: an SMTP server that accepts every message and keeps none, the
//! receiving end of remote-delivery benchmarks (ops/bench-delivery), like Postfix's smtp-sink.
//!
//! Plain SMTP (RFC 5321) with PIPELINING (RFC 2920), no TLS, no AUTH. Each connection gets
//! `220`, then `250` to EHLO/HELO, MAIL, RCPT, RSET and NOOP, `354` to DATA, `250` after the
//! data, `221` to QUIT; unknown commands get `500`, MAIL/RCPT/DATA out of order `503`. The
//! message data is scanned for its terminator and dropped, so memory per connection is bounded
//! by its read buffer, whatever the message size.
//!
//! It counts the messages accepted and their recipients and writes `MESSAGES RECIPIENTS` to the
//! `--stats` file every 200 ms (atomically: a temporary file renamed over it) and once more on
//! SIGTERM or SIGINT, then exits 0. It trusts nothing from clients and answers them only from
//! fixed replies; it must never be exposed beyond a benchmark host.
#![forbid(unsafe_code)]

mod end_of_data;
mod session;

use std::ffi::OsString;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering::Relaxed};
use std::time::Duration;

use anyhow::{Context, Result};
use clap::Parser;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use tokio::signal::unix::{SignalKind, signal};
use tokio::sync::Semaphore;

use crate::session::{Fed, GREETING, MAX_COMMAND_LINE, Session};

/// Bytes read at once per connection; also the most input a connection holds.
const READ_BUFFER: usize = 64 * 1024;
const _: () = assert!(READ_BUFFER > MAX_COMMAND_LINE);
/// Connections served at once; more are told 421 and closed.
const MAX_CONNECTIONS: usize = 1024;
/// A connection that sends nothing for this long is closed.
const IDLE_TIMEOUT: Duration = Duration::from_secs(300);
/// How often the stats file is rewritten.
const STATS_INTERVAL: Duration = Duration::from_millis(200);

#[derive(Debug, Parser)]
#[command(
    name = "mailcluster-smtp-sink",
    version,
    about = "SMTP sink: accepts every message, keeps none, counts them"
)]
struct Args {
    /// Address to listen on (host:port).
    #[arg(long, default_value = "127.0.0.1:2626")]
    listen: SocketAddr,

    /// File to write "MESSAGES RECIPIENTS" (accepted so far) to, every 200 ms and at exit.
    #[arg(long)]
    stats: Option<PathBuf>,
}

/// Messages accepted so far, and their recipients.
#[derive(Debug, Default)]
struct Counters {
    messages: AtomicU64,
    recipients: AtomicU64,
}

impl Counters {
    fn add(&self, fed: &Fed) {
        if fed.messages > 0 {
            self.messages.fetch_add(fed.messages, Relaxed);
            self.recipients.fetch_add(fed.recipients, Relaxed);
        }
    }

    fn line(&self) -> String {
        format!(
            "{} {}\n",
            self.messages.load(Relaxed),
            self.recipients.load(Relaxed)
        )
    }
}

#[tokio::main]
async fn main() -> Result<()> {
    let args = Args::parse();
    let mut terminate = signal(SignalKind::terminate()).context("SIGTERM handler")?;
    let mut interrupt = signal(SignalKind::interrupt()).context("SIGINT handler")?;
    let listener = TcpListener::bind(args.listen)
        .await
        .with_context(|| format!("listening on {}", args.listen))?;
    let counters = Arc::new(Counters::default());
    if let Some(path) = &args.stats {
        write_stats(path, &counters).await?;
    }
    eprintln!(
        "mailcluster-smtp-sink listening on {}",
        listener.local_addr()?
    );

    let mut ticker = tokio::time::interval(STATS_INTERVAL);
    let slots = Arc::new(Semaphore::new(MAX_CONNECTIONS));
    loop {
        tokio::select! {
            accepted = listener.accept() => match accepted {
                Ok((socket, _)) => {
                    let counters = Arc::clone(&counters);
                    let slot = Arc::clone(&slots).try_acquire_owned();
                    tokio::spawn(async move {
                        let result = match slot {
                            Ok(_slot) => serve(socket, &counters).await,
                            Err(_) => refuse(socket).await,
                        };
                        // Clients hanging up mid-session are normal at the end of a benchmark.
                        drop(result);
                    });
                }
                Err(e) => {
                    // Out of file descriptors, usually: let connections finish.
                    eprintln!("accept: {e}");
                    tokio::time::sleep(Duration::from_millis(100)).await;
                }
            },
            _ = ticker.tick() => {
                if let Some(path) = &args.stats {
                    write_stats(path, &counters).await?;
                }
            }
            _ = terminate.recv() => break,
            _ = interrupt.recv() => break,
        }
    }
    if let Some(path) = &args.stats {
        write_stats(path, &counters).await?;
    }
    eprint!(
        "mailcluster-smtp-sink accepted (messages recipients): {}",
        counters.line()
    );
    Ok(())
}

/// Runs one session until QUIT, the client closes, or it idles too long.
async fn serve(mut socket: TcpStream, counters: &Counters) -> std::io::Result<()> {
    socket.set_nodelay(true)?;
    socket.write_all(GREETING).await?;
    let mut session = Session::new();
    let mut buffer = vec![0; READ_BUFFER];
    let mut out = Vec::with_capacity(1024);
    // buffer[start..end] is input read but not yet consumed: at most a partial command line.
    let (mut start, mut end) = (0, 0);
    loop {
        if start == end {
            (start, end) = (0, 0);
        } else if end == buffer.len() {
            buffer.copy_within(start..end, 0);
            (start, end) = (0, end - start);
        }
        let read = tokio::time::timeout(IDLE_TIMEOUT, socket.read(&mut buffer[end..]))
            .await
            .map_err(|_| std::io::ErrorKind::TimedOut)??;
        if read == 0 {
            return Ok(());
        }
        end += read;
        let fed = session.feed(&buffer[start..end], &mut out);
        start += fed.consumed;
        counters.add(&fed);
        // All replies to what arrived together go out in one write (PIPELINING).
        if !out.is_empty() {
            socket.write_all(&out).await?;
            out.clear();
        }
        if fed.close {
            return socket.shutdown().await;
        }
    }
}

async fn refuse(mut socket: TcpStream) -> std::io::Result<()> {
    socket
        .write_all(b"421 4.3.2 too many connections\r\n")
        .await?;
    socket.shutdown().await
}

/// Writes the counters to a temporary file next to `path`, then renames it over `path`, so a
/// reader never sees a partial line.
async fn write_stats(path: &Path, counters: &Counters) -> Result<()> {
    let mut temporary = OsString::from(path.as_os_str());
    temporary.push(".tmp");
    let temporary = PathBuf::from(temporary);
    tokio::fs::write(&temporary, counters.line())
        .await
        .with_context(|| format!("writing {}", temporary.display()))?;
    tokio::fs::rename(&temporary, path)
        .await
        .with_context(|| format!("renaming {} to {}", temporary.display(), path.display()))
}
