//! One closed-loop SMTP session per task: connect, 220, EHLO, then one transaction after
//! another on the same connection; reconnects after an I/O or protocol error.

use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::{Context, Result, bail};
use tokio::io::{AsyncWriteExt, BufReader};
use tokio::net::TcpStream;
use tokio::net::tcp::{OwnedReadHalf, OwnedWriteHalf};
use tokio::time::timeout;

use crate::cli::recipient_index;
use crate::reply::read_reply;
use crate::shared::Shared;
use crate::stats::{ConnStats, Phase};

/// Consecutive failed connection attempts after which a task gives up.
const MAX_CONNECT_FAILURES: u32 = 10;
/// Errors printed per connection task (the rest are only counted).
const MAX_LOGGED_ERRORS: u32 = 3;

/// Runs one connection until the run is over; returns its tallies.
pub async fn run_connection(sh: Arc<Shared>, id: u32) -> Result<ConnStats> {
    let mut stats = ConnStats::new()?;
    let mut msg = sh.template.wire().to_vec();
    let mut cmd = Vec::with_capacity(256);
    let mut connect_failures = 0;
    let mut logged = 0;
    let mut log = |what: &str, e: &anyhow::Error| {
        if logged < MAX_LOGGED_ERRORS {
            eprintln!("connection {id}: {what}: {e:#}");
            logged += 1;
        }
    };
    'connect: while !sh.finished() {
        let mut session = match Session::open(&sh).await {
            Ok(s) => s,
            Err(e) => {
                log("connect", &e);
                let phase = if sh.measure_start().is_some() {
                    Phase::Measured
                } else {
                    Phase::Warmup
                };
                stats.error(phase, None);
                connect_failures += 1;
                if connect_failures >= MAX_CONNECT_FAILURES {
                    eprintln!(
                        "connection {id}: giving up after {connect_failures} failed connects"
                    );
                    break;
                }
                tokio::time::sleep(Duration::from_millis(100 * u64::from(connect_failures))).await;
                continue;
            }
        };
        connect_failures = 0;
        while let Some(phase) = sh.next_message() {
            let seq = sh.next_seq();
            sh.template.patch(&mut msg, seq);
            let t0 = Instant::now();
            let res = session.transaction(&sh, seq, &msg, &mut cmd).await;
            let done = Instant::now();
            if phase == Phase::Warmup {
                sh.warmup_message_done();
            }
            match res {
                Ok(tx) => {
                    stats.record(phase, tx.code, done - t0, done);
                    if tx.reconnect {
                        continue 'connect;
                    }
                }
                Err(e) => {
                    log("transaction", &e);
                    stats.error(phase, Some(done));
                    continue 'connect;
                }
            }
        }
        session.quit().await;
        break;
    }
    Ok(stats)
}

/// Outcome of one transaction: the deciding reply code, and whether the session must be
/// re-opened (421, or RSET not accepted).
struct TxResult {
    code: u16,
    reconnect: bool,
}

struct Session {
    reader: BufReader<OwnedReadHalf>,
    writer: OwnedWriteHalf,
    line: Vec<u8>,
    io_timeout: Duration,
    pipelining: bool,
}

impl Session {
    async fn open(sh: &Shared) -> Result<Self> {
        let stream = timeout(sh.cfg.io_timeout, TcpStream::connect(&sh.cfg.target))
            .await
            .context("connect timed out")?
            .with_context(|| format!("connecting to {}", sh.cfg.target))?;
        stream.set_nodelay(true)?;
        let (r, w) = stream.into_split();
        let mut s = Session {
            reader: BufReader::with_capacity(16 * 1024, r),
            writer: w,
            line: Vec::with_capacity(512),
            io_timeout: sh.cfg.io_timeout,
            pipelining: false,
        };
        let code = s.reply().await?;
        if code != 220 {
            bail!("greeting {code}");
        }
        s.send(format!("EHLO {}\r\n", sh.cfg.helo).as_bytes())
            .await?;
        let mut text = Vec::new();
        let code = timeout(
            s.io_timeout,
            read_reply(&mut s.reader, &mut s.line, Some(&mut text)),
        )
        .await
        .context("EHLO reply timed out")??;
        if code == 250 {
            let advertised = text.iter().skip(1).any(|l| {
                l.split_whitespace()
                    .next()
                    .is_some_and(|k| k.eq_ignore_ascii_case("PIPELINING"))
            });
            s.pipelining = sh.cfg.want_pipelining && advertised;
            if sh.cfg.want_pipelining && !advertised && sh.first_pipelining_miss() {
                eprintln!(
                    "warning: server does not advertise PIPELINING; sending commands one by one"
                );
            }
        } else {
            s.send(format!("HELO {}\r\n", sh.cfg.helo).as_bytes())
                .await?;
            let code = s.reply().await?;
            if code != 250 {
                bail!("EHLO and HELO rejected ({code})");
            }
            if sh.cfg.want_pipelining && sh.first_pipelining_miss() {
                eprintln!("warning: EHLO rejected, no PIPELINING");
            }
        }
        Ok(s)
    }

    async fn send(&mut self, bytes: &[u8]) -> Result<()> {
        timeout(self.io_timeout, self.writer.write_all(bytes))
            .await
            .context("write timed out")?
            .context("write failed")
    }

    async fn reply(&mut self) -> Result<u16> {
        timeout(
            self.io_timeout,
            read_reply(&mut self.reader, &mut self.line, None),
        )
        .await
        .context("reply timed out")?
    }

    /// MAIL FROM, RCPT TO × k, DATA, body; `msg` is the dot-stuffed message with ".\r\n".
    async fn transaction(
        &mut self,
        sh: &Shared,
        seq: u64,
        msg: &[u8],
        cmd: &mut Vec<u8>,
    ) -> Result<TxResult> {
        let k = sh.cfg.recipients;
        let rcpt = |j: usize| &sh.rcpt_cmds[recipient_index(seq, j, k, sh.rcpt_cmds.len())];
        if self.pipelining {
            cmd.clear();
            cmd.extend_from_slice(&sh.mail_cmd);
            for j in 0..k {
                cmd.extend_from_slice(rcpt(j));
            }
            cmd.extend_from_slice(b"DATA\r\n");
            self.send(cmd).await?;
            // Read every reply before deciding, so the stream stays in step.
            let mut first_bad = None;
            let code = self.reply().await?;
            if code != 250 {
                first_bad = Some(code);
            }
            for _ in 0..k {
                let code = self.reply().await?;
                if code != 250 && code != 251 && first_bad.is_none() {
                    first_bad = Some(code);
                }
            }
            let data = self.reply().await?;
            return match (data, first_bad) {
                (354, None) => self.finish_data(msg).await,
                (354, Some(bad)) => {
                    // DATA was accepted for the recipients that were: send the message as a
                    // real client would (no empty message), but count it as rejected.
                    let done = self.finish_data(msg).await?;
                    Ok(TxResult {
                        code: bad,
                        reconnect: done.reconnect || bad == 421,
                    })
                }
                (code, bad) => self.abort(bad.unwrap_or(code)).await,
            };
        }
        self.send(&sh.mail_cmd).await?;
        let code = self.reply().await?;
        if code != 250 {
            return self.abort(code).await;
        }
        for j in 0..k {
            self.send(rcpt(j)).await?;
            let code = self.reply().await?;
            if code != 250 && code != 251 {
                return self.abort(code).await;
            }
        }
        self.send(b"DATA\r\n").await?;
        let code = self.reply().await?;
        if code != 354 {
            return self.abort(code).await;
        }
        self.finish_data(msg).await
    }

    async fn finish_data(&mut self, msg: &[u8]) -> Result<TxResult> {
        self.send(msg).await?;
        let code = self.reply().await?;
        Ok(TxResult {
            code,
            reconnect: code == 421,
        })
    }

    /// Ends a rejected transaction with RSET (or asks for a reconnect after 421).
    async fn abort(&mut self, code: u16) -> Result<TxResult> {
        if code == 421 {
            return Ok(TxResult {
                code,
                reconnect: true,
            });
        }
        self.send(b"RSET\r\n").await?;
        let rset = self.reply().await?;
        Ok(TxResult {
            code,
            reconnect: rset != 250,
        })
    }

    /// Best-effort QUIT; errors do not matter any more.
    async fn quit(mut self) {
        let wait = self.io_timeout.min(Duration::from_secs(5));
        let _ = timeout(wait, async {
            self.writer.write_all(b"QUIT\r\n").await?;
            read_reply(&mut self.reader, &mut self.line, None).await?;
            self.writer.shutdown().await?;
            anyhow::Ok(())
        })
        .await;
    }
}
