//! Command line: options, size parsing, validation and the recipient pool.

use std::path::PathBuf;
use std::time::Duration;

use anyhow::{Result, bail, ensure};
use clap::Parser;

/// Measured messages when neither `--messages` nor `--duration-secs` is given.
pub const DEFAULT_MESSAGES: u64 = 5000;

#[derive(Debug, Parser)]
#[command(
    name = "mailcluster-smtp-bench",
    version,
    about = "Closed-loop SMTP load generator: accepted msg/s, MB/s and accept latency"
)]
pub struct Args {
    /// SMTP server to load (host:port). Plain SMTP, no TLS.
    #[arg(long, default_value = "127.0.0.1:2525")]
    pub target: String,

    /// Concurrent SMTP sessions; each one is reused for many messages.
    #[arg(long, default_value_t = 20, value_parser = clap::value_parser!(u32).range(1..=100_000))]
    pub connections: u32,

    /// Measured messages in total over all connections (default 5000), sent after the warm-up.
    #[arg(long, conflicts_with = "duration_secs")]
    pub messages: Option<u64>,

    /// Measure for this many seconds after the warm-up instead of a message count.
    #[arg(long)]
    pub duration_secs: Option<u64>,

    /// Messages sent before measuring starts; they count in no statistic.
    #[arg(long, default_value_t = 200)]
    pub warmup: u64,

    /// Message size as stored (headers + body, after un-dot-stuffing, without the final
    /// ".\r\n"). Plain bytes or with a binary suffix: 2K, 50K, 1M (K/KB/KiB = 1024, M/MB/MiB = 1024²).
    #[arg(long, default_value = "2K", value_parser = parse_size)]
    pub size: usize,

    /// Recipients (RCPT TO) per message.
    #[arg(long, default_value_t = 1, value_parser = clap::value_parser!(u32).range(1..=10_000))]
    pub recipients: u32,

    /// Envelope and header sender.
    #[arg(long, default_value = "bench@bench.test")]
    pub from: String,

    /// Recipient address, or a comma-separated list used round-robin. If the list is shorter
    /// than --recipients, it is widened with sub-addresses (rcpt+1@..., rcpt+2@...).
    #[arg(long, value_delimiter = ',', default_value = "rcpt@bench.test")]
    pub to: Vec<String>,

    /// Name sent with EHLO.
    #[arg(long, default_value = "bench.client")]
    pub helo: String,

    /// Send MAIL, RCPT(s) and DATA in one write when the server advertises PIPELINING.
    #[arg(long)]
    pub pipelining: bool,

    /// Write the results as JSON to this file.
    #[arg(long)]
    pub json: Option<PathBuf>,

    /// Free text copied into the output, e.g. "ours 2K c20 reuse".
    #[arg(long, default_value = "")]
    pub label: String,

    /// Exit non-zero when (failed + errors) / (accepted + failed + errors) exceeds this.
    #[arg(long, default_value_t = 0.01)]
    pub max_failure_ratio: f64,

    /// Timeout for connecting and for each server reply, in seconds.
    #[arg(long, default_value_t = 60)]
    pub timeout_secs: u64,
}

/// When the measured phase ends.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum StopRule {
    /// After this many measured messages have been started (and then finished).
    Messages(u64),
    /// No measured message is started after this much time past the warm-up instant.
    Duration(Duration),
}

impl Args {
    pub fn stop_rule(&self) -> StopRule {
        match (self.messages, self.duration_secs) {
            (_, Some(secs)) => StopRule::Duration(Duration::from_secs(secs)),
            (Some(n), None) => StopRule::Messages(n),
            (None, None) => StopRule::Messages(DEFAULT_MESSAGES),
        }
    }

    pub fn validate(&self) -> Result<()> {
        ensure!(self.messages != Some(0), "--messages must be at least 1");
        ensure!(
            self.duration_secs != Some(0),
            "--duration-secs must be at least 1"
        );
        ensure!(self.timeout_secs > 0, "--timeout-secs must be at least 1");
        ensure!(
            (0.0..=1.0).contains(&self.max_failure_ratio),
            "--max-failure-ratio must be within 0..=1"
        );
        check_address("--from", &self.from)?;
        ensure!(!self.to.is_empty(), "--to needs at least one address");
        for to in &self.to {
            check_address("--to", to)?;
        }
        check_token("--helo", &self.helo)?;
        ensure!(!self.helo.is_empty(), "--helo must not be empty");
        Ok(())
    }
}

/// Parses `2048`, `2K`, `50KiB`, `1M`, `1MB` (binary multiples, case-insensitive).
pub fn parse_size(s: &str) -> Result<usize> {
    let t = s.trim();
    let split = t.find(|c: char| !c.is_ascii_digit()).unwrap_or(t.len());
    let (digits, suffix) = t.split_at(split);
    ensure!(!digits.is_empty(), "size {s:?} must start with a number");
    let n: usize = digits.parse()?;
    let mult: usize = match suffix.trim().to_ascii_lowercase().as_str() {
        "" | "b" => 1,
        "k" | "kb" | "kib" => 1024,
        "m" | "mb" | "mib" => 1024 * 1024,
        other => bail!("unknown size suffix {other:?} (use K or M)"),
    };
    n.checked_mul(mult)
        .ok_or_else(|| anyhow::anyhow!("size {s:?} is too large"))
}

fn check_token(what: &str, v: &str) -> Result<()> {
    ensure!(
        v.bytes().all(|b| b.is_ascii_graphic()),
        "{what} {v:?} must be printable ASCII without spaces"
    );
    Ok(())
}

fn check_address(what: &str, v: &str) -> Result<()> {
    check_token(what, v)?;
    ensure!(
        !v.contains(['<', '>'])
            && v.rsplit_once('@')
                .is_some_and(|(l, d)| !l.is_empty() && !d.is_empty()),
        "{what} {v:?} must look like local@domain"
    );
    Ok(())
}

/// The addresses messages draw their recipients from: `to` itself when it has at least `k`
/// entries, else `k` sub-addressed variants so that one message never repeats a recipient.
pub fn recipient_pool(to: &[String], k: usize) -> Vec<String> {
    if to.len() >= k || to.is_empty() {
        return to.to_vec();
    }
    (0..k)
        .map(|j| {
            let addr = &to[j % to.len()];
            match addr.rsplit_once('@') {
                Some((local, domain)) => format!("{local}+{}@{domain}", j + 1),
                None => format!("{addr}+{}", j + 1),
            }
        })
        .collect()
}

/// Index into the pool of recipient `j` of message number `seq` (round-robin).
pub fn recipient_index(seq: u64, j: usize, k: usize, pool_len: usize) -> usize {
    let len = pool_len.max(1) as u64;
    (((seq % len) * (k as u64 % len) + j as u64) % len) as usize
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sizes_parse_with_binary_suffixes() {
        assert_eq!(parse_size("2000").unwrap(), 2000);
        assert_eq!(parse_size("2K").unwrap(), 2048);
        assert_eq!(parse_size("50k").unwrap(), 50 * 1024);
        assert_eq!(parse_size("50KiB").unwrap(), 50 * 1024);
        assert_eq!(parse_size("1M").unwrap(), 1024 * 1024);
        assert_eq!(parse_size("1MB").unwrap(), 1024 * 1024);
        assert!(parse_size("K").is_err());
        assert!(parse_size("2G").is_err());
        assert!(parse_size("").is_err());
    }

    #[test]
    fn defaults_and_stop_rule() {
        let a = Args::try_parse_from(["x"]).unwrap();
        a.validate().unwrap();
        assert_eq!(a.stop_rule(), StopRule::Messages(DEFAULT_MESSAGES));
        assert_eq!(a.size, 2048);
        let a = Args::try_parse_from(["x", "--duration-secs", "5", "--to", "a@x,b@x"]).unwrap();
        assert_eq!(a.stop_rule(), StopRule::Duration(Duration::from_secs(5)));
        assert_eq!(a.to, ["a@x", "b@x"]);
        assert!(Args::try_parse_from(["x", "--messages", "5", "--duration-secs", "5"]).is_err());
        let bad = Args::try_parse_from(["x", "--to", "a@x\r\nRSET"]).unwrap();
        assert!(bad.validate().is_err());
    }

    #[test]
    fn recipients_round_robin_without_repeats() {
        let to = vec!["rcpt@bench.test".to_string()];
        let pool = recipient_pool(&to, 3);
        assert_eq!(
            pool,
            [
                "rcpt+1@bench.test",
                "rcpt+2@bench.test",
                "rcpt+3@bench.test"
            ]
        );
        let list: Vec<String> = (0..5).map(|i| format!("u{i}@x")).collect();
        assert_eq!(recipient_pool(&list, 2), list);
        for seq in 0..20 {
            let idx: Vec<usize> = (0..2).map(|j| recipient_index(seq, j, 2, 5)).collect();
            assert_ne!(idx[0], idx[1]);
        }
        let first: Vec<usize> = (0..5).map(|s| recipient_index(s, 0, 1, 5)).collect();
        assert_eq!(first, [0, 1, 2, 3, 4]);
    }
}
