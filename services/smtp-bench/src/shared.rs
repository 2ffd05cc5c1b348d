//! Run-wide state shared by the connection tasks: settings, pre-formatted commands, the
//! message template, and the atomics that implement warm-up and the stop rule.

use std::sync::OnceLock;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering::Relaxed};
use std::time::{Duration, Instant};

use crate::cli::StopRule;
use crate::message::Template;
use crate::stats::Phase;

/// Per-run settings the sessions need.
pub struct Settings {
    pub target: String,
    pub helo: String,
    pub want_pipelining: bool,
    pub io_timeout: Duration,
    pub stop: StopRule,
    pub warmup: u64,
    pub recipients: usize,
}

/// State shared by all connection tasks.
pub struct Shared {
    pub cfg: Settings,
    pub template: Template,
    pub mail_cmd: Vec<u8>,
    /// `RCPT TO:<...>\r\n` for every address of the recipient pool.
    pub rcpt_cmds: Vec<Vec<u8>>,
    /// Next message number (Message-ID counter and recipient rotation).
    seq: AtomicU64,
    warmup_done: AtomicU64,
    measured_claimed: AtomicU64,
    /// The warm-up instant: set when the `warmup`th message finishes (or at start if 0).
    measure_start: OnceLock<Instant>,
    pipelining_missing: AtomicBool,
}

impl Shared {
    pub fn new(cfg: Settings, template: Template, from: &str, pool: &[String]) -> Self {
        let measure_start = OnceLock::new();
        if cfg.warmup == 0 {
            let _ = measure_start.set(Instant::now());
        }
        Self {
            cfg,
            template,
            mail_cmd: format!("MAIL FROM:<{from}>\r\n").into_bytes(),
            rcpt_cmds: pool
                .iter()
                .map(|r| format!("RCPT TO:<{r}>\r\n").into_bytes())
                .collect(),
            seq: AtomicU64::new(0),
            warmup_done: AtomicU64::new(0),
            measured_claimed: AtomicU64::new(0),
            measure_start,
            pipelining_missing: AtomicBool::new(false),
        }
    }

    pub fn measure_start(&self) -> Option<Instant> {
        self.measure_start.get().copied()
    }

    /// True when PIPELINING was requested and every session could use it.
    pub fn pipelining_used(&self) -> bool {
        self.cfg.want_pipelining && !self.pipelining_missing.load(Relaxed)
    }

    /// The phase of the next message, or `None` when the run is over. In message-count mode
    /// this claims one of the measured slots.
    pub fn next_message(&self) -> Option<Phase> {
        let Some(start) = self.measure_start.get() else {
            return Some(Phase::Warmup);
        };
        let go = match self.cfg.stop {
            StopRule::Duration(d) => start.elapsed() < d,
            StopRule::Messages(n) => self.measured_claimed.fetch_add(1, Relaxed) < n,
        };
        go.then_some(Phase::Measured)
    }

    /// Whether the run is over (without claiming anything).
    pub fn finished(&self) -> bool {
        match (self.measure_start.get(), self.cfg.stop) {
            (None, _) => false,
            (Some(start), StopRule::Duration(d)) => start.elapsed() >= d,
            (Some(_), StopRule::Messages(n)) => self.measured_claimed.load(Relaxed) >= n,
        }
    }

    pub fn warmup_message_done(&self) {
        if self.warmup_done.fetch_add(1, Relaxed) + 1 >= self.cfg.warmup {
            self.measure_start.get_or_init(Instant::now);
        }
    }

    pub fn next_seq(&self) -> u64 {
        self.seq.fetch_add(1, Relaxed)
    }

    /// Notes that a session could not use PIPELINING; true only the first time.
    pub fn first_pipelining_miss(&self) -> bool {
        !self.pipelining_missing.swap(true, Relaxed)
    }
}
