//! `mailcluster-smtp-bench`: a closed-loop SMTP load generator (plain SMTP, no TLS).
//!
//! # What it measures
//! * **Capacity** (`msgs_per_sec`, `mb_per_sec`): messages the server accepted with `250`
//!   after the final dot, per second of measured wall time. MB are 10⁶ bytes of the message
//!   as stored (`--size`, headers included), so 2K at 2207 msg/s = 4.5 MB/s, as in
//!   PERFORMANCE.md §3.1.
//! * **Accept latency** (`latency_ms`): for each accepted message, the time from writing
//!   `MAIL FROM` to reading the reply to the final `.`; that is MAIL, RCPT(s), DATA, body
//!   and the server's commit, on an already open connection (PERFORMANCE.md §3.2). Recorded in
//!   an HdrHistogram in µs (1 µs–60 s, 3 significant digits; slower values saturate at 60 s).
//!
//! # How
//! * **Closed loop**: `--connections` tasks each run one SMTP session and start the next
//!   message as soon as the previous one is answered, so the offered load adapts to the
//!   server; at most one message per connection is in flight. This measures capacity.
//!   Latency under a closed loop is *not* corrected for coordinated omission: it is the
//!   latency at saturation, not at a fixed arrival rate (§4.1.4 wants an open-loop generator
//!   for that).
//! * **Connection reuse**: connect, read 220, EHLO once, then MAIL/RCPT/DATA repeatedly on
//!   the same connection; QUIT at the end. With `--pipelining` (and PIPELINING advertised),
//!   MAIL, RCPT(s) and DATA go out in one write and all their replies are read before the
//!   body is sent. A rejected transaction is reset with RSET; 421 and I/O or protocol errors
//!   re-open the connection and count in `errors`.
//! * **The message** is built once: realistic headers, a unique Message-ID per message
//!   (a counter patched into a fixed-width field), 76-character lines with CRLF, some lines
//!   starting with '.' (dot-stuffed on the wire), exactly `--size` bytes as stored. The body
//!   goes out in one `write_all`. Each connection holds its own copy (memory: C × size).
//! * **Warm-up and measured window**: a global counter counts finished warm-up messages; the
//!   task that finishes the `--warmup`th one sets the *warm-up instant* T0 (T0 = start when
//!   `--warmup 0`). A message is measured only if it was *started* after T0: messages in
//!   flight at T0 (up to C − 1) are discarded. Warm-up messages count in no statistic. With
//!   `--messages N`, exactly N measured messages are started (slots claimed from an atomic
//!   counter); with `--duration-secs S`, measured messages are started until T0 + S. The
//!   measured wall time runs from T0 to the completion of the last measured message, so it
//!   includes the short ramp after T0 and the drain at the end, when fewer than C messages
//!   are in flight: for N ≫ C the bias is below C/N.
//! * `reply_codes` tallies, per measured message, the code that decided it: 250, or the
//!   first rejection of MAIL, RCPT, DATA or the final dot. A message with any rejected RCPT
//!   is a failure: without pipelining it is aborted with RSET before DATA; with pipelining,
//!   if DATA still gets 354, the body is sent to the accepted recipients (no empty message).
//!
//! Exit status: 0 on success; 1 on a usage or setup error; 2 when nothing was accepted or
//! (failed + errors) / (accepted + failed + errors) exceeds `--max-failure-ratio`.
#![forbid(unsafe_code)]

mod cli;
mod client;
mod message;
mod reply;
mod shared;
mod stats;

use std::process::ExitCode;
use std::sync::Arc;
use std::time::Duration;

use anyhow::{Context, Result};
use clap::Parser;

use crate::cli::Args;
use crate::client::run_connection;
use crate::message::Template;
use crate::shared::{Settings, Shared};
use crate::stats::{ConnStats, Report, RunInfo};

#[tokio::main]
async fn main() -> ExitCode {
    match run().await {
        Ok(code) => code,
        Err(e) => {
            eprintln!("error: {e:#}");
            ExitCode::FAILURE
        }
    }
}

async fn run() -> Result<ExitCode> {
    let args = Args::parse();
    args.validate()?;
    let k = args.recipients as usize;
    let pool = cli::recipient_pool(&args.to, k);
    let header_to = pool.first().context("no recipient")?;
    let template = Template::build(args.size, &args.from, header_to)?;
    let settings = Settings {
        target: args.target.clone(),
        helo: args.helo.clone(),
        want_pipelining: args.pipelining,
        io_timeout: Duration::from_secs(args.timeout_secs),
        stop: args.stop_rule(),
        warmup: args.warmup,
        recipients: k,
    };
    let shared = Arc::new(Shared::new(settings, template, &args.from, &pool));

    let tasks: Vec<_> = (0..args.connections)
        .map(|id| tokio::spawn(run_connection(Arc::clone(&shared), id)))
        .collect();
    let mut total = ConnStats::new()?;
    for task in tasks {
        let stats = task.await.context("connection task panicked")??;
        total.merge(&stats)?;
    }

    let info = RunInfo {
        label: args.label.clone(),
        target: args.target.clone(),
        size_bytes: shared.template.stored_len(),
        connections: args.connections,
        recipients: args.recipients,
        pipelining: shared.pipelining_used(),
    };
    let report = Report::new(info, &total, shared.measure_start());
    println!("{}", report.summary());
    if let Some(path) = &args.json {
        let mut json = serde_json::to_string_pretty(&report)?;
        json.push('\n');
        std::fs::write(path, json).with_context(|| format!("writing {}", path.display()))?;
    }
    match report.verdict(args.max_failure_ratio) {
        Ok(()) => Ok(ExitCode::SUCCESS),
        Err(reason) => {
            eprintln!("error: broken run: {reason}");
            Ok(ExitCode::from(2))
        }
    }
}
