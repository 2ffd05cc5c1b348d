//! Per-connection tallies, their merge, and the final report (JSON and text).

use std::collections::BTreeMap;
use std::time::{Duration, Instant};

use anyhow::{Context, Result};
use hdrhistogram::Histogram;
use serde::Serialize;

/// Highest latency the histogram resolves: 60 s, in microseconds (larger values saturate).
const MAX_LATENCY_US: u64 = 60_000_000;
/// Bytes per MB in `mb_per_sec` (decimal, as in PERFORMANCE.md).
const MB: f64 = 1_000_000.0;

/// Whether a message counts in the statistics.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Phase {
    Warmup,
    Measured,
}

#[derive(Debug)]
pub struct ConnStats {
    pub accepted: u64,
    pub failed: u64,
    pub errors: u64,
    pub warmup_messages: u64,
    pub warmup_errors: u64,
    pub codes: BTreeMap<u16, u64>,
    /// Accept latency of accepted measured messages, in µs.
    pub hist: Histogram<u64>,
    /// Completion time of the last measured message.
    pub last_done: Option<Instant>,
}

impl ConnStats {
    pub fn new() -> Result<Self> {
        Ok(Self {
            accepted: 0,
            failed: 0,
            errors: 0,
            warmup_messages: 0,
            warmup_errors: 0,
            codes: BTreeMap::new(),
            hist: Histogram::new_with_bounds(1, MAX_LATENCY_US, 3)
                .context("creating the latency histogram")?,
            last_done: None,
        })
    }

    /// A finished transaction: `code` is the final reply (250 = accepted) or the first
    /// rejection; `latency` runs from writing MAIL FROM to reading that reply.
    pub fn record(&mut self, phase: Phase, code: u16, latency: Duration, done: Instant) {
        if phase == Phase::Warmup {
            self.warmup_messages += 1;
            return;
        }
        *self.codes.entry(code).or_default() += 1;
        if code == 250 {
            self.accepted += 1;
            let us = u64::try_from(latency.as_micros()).unwrap_or(u64::MAX);
            self.hist.saturating_record(us.clamp(1, MAX_LATENCY_US));
        } else {
            self.failed += 1;
        }
        self.note_done(done);
    }

    /// An I/O or protocol error (the connection is then re-opened). `done` is set when the
    /// error ended a measured message, which then counts towards the measured wall time.
    pub fn error(&mut self, phase: Phase, done: Option<Instant>) {
        match phase {
            Phase::Warmup => self.warmup_errors += 1,
            Phase::Measured => {
                self.errors += 1;
                if let Some(done) = done {
                    self.note_done(done);
                }
            }
        }
    }

    fn note_done(&mut self, done: Instant) {
        self.last_done = Some(self.last_done.map_or(done, |t| t.max(done)));
    }

    pub fn merge(&mut self, other: &ConnStats) -> Result<()> {
        self.accepted += other.accepted;
        self.failed += other.failed;
        self.errors += other.errors;
        self.warmup_messages += other.warmup_messages;
        self.warmup_errors += other.warmup_errors;
        for (code, n) in &other.codes {
            *self.codes.entry(*code).or_default() += n;
        }
        self.hist
            .add(&other.hist)
            .context("merging latency histograms")?;
        if let Some(done) = other.last_done {
            self.note_done(done);
        }
        Ok(())
    }
}

#[derive(Debug, Serialize)]
pub struct LatencyMs {
    pub p50: f64,
    pub p90: f64,
    pub p99: f64,
    pub p999: f64,
    pub max: f64,
    pub mean: f64,
}

#[derive(Debug, Serialize)]
pub struct Report {
    pub label: String,
    pub target: String,
    pub size_bytes: usize,
    pub connections: u32,
    pub recipients: u32,
    /// True when PIPELINING was requested and the server advertised it.
    pub pipelining: bool,
    pub warmup_messages: u64,
    pub warmup_errors: u64,
    pub messages_accepted: u64,
    pub messages_failed: u64,
    pub reply_codes: BTreeMap<u16, u64>,
    pub errors: u64,
    pub elapsed_secs: f64,
    pub msgs_per_sec: f64,
    pub mb_per_sec: f64,
    pub latency_ms: LatencyMs,
}

/// Run parameters copied into the report.
pub struct RunInfo {
    pub label: String,
    pub target: String,
    pub size_bytes: usize,
    pub connections: u32,
    pub recipients: u32,
    pub pipelining: bool,
}

impl Report {
    /// `start` is the warm-up instant; the measured wall time runs from it to the completion
    /// of the last measured message.
    pub fn new(info: RunInfo, s: &ConnStats, start: Option<Instant>) -> Self {
        let elapsed = match (start, s.last_done) {
            (Some(start), Some(done)) => done.saturating_duration_since(start).as_secs_f64(),
            _ => 0.0,
        };
        let rate = |n: f64| if elapsed > 0.0 { n / elapsed } else { 0.0 };
        let msgs_per_sec = rate(s.accepted as f64);
        let ms = |us: u64| us as f64 / 1000.0;
        let h = &s.hist;
        let latency_ms = LatencyMs {
            p50: ms(h.value_at_quantile(0.50)),
            p90: ms(h.value_at_quantile(0.90)),
            p99: ms(h.value_at_quantile(0.99)),
            p999: ms(h.value_at_quantile(0.999)),
            max: ms(h.max()),
            mean: if h.is_empty() { 0.0 } else { h.mean() / 1000.0 },
        };
        Self {
            label: info.label,
            target: info.target,
            size_bytes: info.size_bytes,
            connections: info.connections,
            recipients: info.recipients,
            pipelining: info.pipelining,
            warmup_messages: s.warmup_messages,
            warmup_errors: s.warmup_errors,
            messages_accepted: s.accepted,
            messages_failed: s.failed,
            reply_codes: s.codes.clone(),
            errors: s.errors,
            elapsed_secs: elapsed,
            msgs_per_sec,
            mb_per_sec: msgs_per_sec * info.size_bytes as f64 / MB,
            latency_ms,
        }
    }

    /// Human-readable summary, three lines.
    pub fn summary(&self) -> String {
        let label = if self.label.is_empty() {
            String::new()
        } else {
            format!("[{}] ", self.label)
        };
        let l = &self.latency_ms;
        let codes: Vec<String> = self
            .reply_codes
            .iter()
            .map(|(c, n)| format!("{c}={n}"))
            .collect();
        format!(
            "{label}{} B x {} conn x {} rcpt{}: {} accepted, {} failed, {} errors in {:.3} s \
             -> {:.1} msg/s, {:.2} MB/s\n\
             {label}accept latency ms: p50 {:.3}  p90 {:.3}  p99 {:.3}  p99.9 {:.3}  max {:.3}  mean {:.3}\n\
             {label}reply codes: {}  (warm-up: {} messages, {} errors)",
            self.size_bytes,
            self.connections,
            self.recipients,
            if self.pipelining { ", pipelining" } else { "" },
            self.messages_accepted,
            self.messages_failed,
            self.errors,
            self.elapsed_secs,
            self.msgs_per_sec,
            self.mb_per_sec,
            l.p50,
            l.p90,
            l.p99,
            l.p999,
            l.max,
            l.mean,
            if codes.is_empty() {
                "none".to_string()
            } else {
                codes.join(" ")
            },
            self.warmup_messages,
            self.warmup_errors,
        )
    }

    /// `Err(reason)` when the run should be treated as broken by a calling script.
    pub fn verdict(&self, max_failure_ratio: f64) -> std::result::Result<(), String> {
        if self.messages_accepted == 0 {
            return Err("no message was accepted".into());
        }
        let bad = self.messages_failed + self.errors;
        let ratio = bad as f64 / (self.messages_accepted + bad) as f64;
        if ratio > max_failure_ratio {
            return Err(format!(
                "failure ratio {ratio:.4} ({bad} failed or errored) exceeds {max_failure_ratio}"
            ));
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn info() -> RunInfo {
        RunInfo {
            label: "t".into(),
            target: "x".into(),
            size_bytes: 1_000_000,
            connections: 2,
            recipients: 1,
            pipelining: false,
        }
    }

    #[test]
    fn merge_rates_and_verdict() {
        let t0 = Instant::now();
        let mut a = ConnStats::new().unwrap();
        let mut b = ConnStats::new().unwrap();
        a.record(Phase::Warmup, 250, Duration::from_millis(1), t0);
        for i in 1..=99 {
            a.record(
                Phase::Measured,
                250,
                Duration::from_millis(2),
                t0 + Duration::from_millis(i),
            );
        }
        b.record(
            Phase::Measured,
            451,
            Duration::from_millis(3),
            t0 + Duration::from_secs(1),
        );
        a.merge(&b).unwrap();
        let r = Report::new(info(), &a, Some(t0));
        assert_eq!(
            (r.messages_accepted, r.messages_failed, r.warmup_messages),
            (99, 1, 1)
        );
        assert_eq!(r.reply_codes, BTreeMap::from([(250, 99), (451, 1)]));
        assert!((r.elapsed_secs - 1.0).abs() < 1e-9);
        assert!((r.msgs_per_sec - 99.0).abs() < 1e-9);
        assert!((r.mb_per_sec - 99.0).abs() < 1e-9);
        assert!((r.latency_ms.p50 - 2.0).abs() < 0.01);
        assert!(r.verdict(0.02).is_ok());
        assert!(r.verdict(0.005).is_err());
        let json = serde_json::to_value(&r).unwrap();
        assert_eq!(json["reply_codes"]["451"], 1);
        assert!(json["latency_ms"]["p999"].is_number());
        assert!(r.summary().contains("99 accepted, 1 failed"));
    }

    #[test]
    fn nothing_accepted_is_broken() {
        let s = ConnStats::new().unwrap();
        let r = Report::new(info(), &s, None);
        assert_eq!(r.msgs_per_sec, 0.0);
        assert!(r.verdict(1.0).is_err());
    }
}
