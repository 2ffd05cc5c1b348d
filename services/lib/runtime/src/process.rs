//! The standard `process_*` metrics (CPU seconds, resident memory, open descriptors, start time),
//! read from `/proc/self` at each scrape. On systems without `/proc` they are simply absent.

use prometheus_client::collector::Collector;
use prometheus_client::encoding::{DescriptorEncoder, EncodeMetric};
use prometheus_client::metrics::counter::ConstCounter;
use prometheus_client::metrics::gauge::ConstGauge;

/// Linux reports CPU times in clock ticks of `sysconf(_SC_CLK_TCK)`, 100 on every mainstream
/// architecture; reading it would need libc for one constant.
const TICKS_PER_SECOND: f64 = 100.0;

#[derive(Debug, Default)]
pub struct ProcessCollector;

struct Sample {
    cpu_seconds: f64,
    resident_bytes: f64,
    open_fds: f64,
    start_time_seconds: f64,
}

fn sample() -> Option<Sample> {
    let stat = std::fs::read_to_string("/proc/self/stat").ok()?;
    // Fields after the command name, which is in parentheses and may contain spaces.
    let fields: Vec<&str> = stat.rsplit_once(')')?.1.split_whitespace().collect();
    let ticks = |i: usize| fields.get(i).and_then(|f| f.parse::<f64>().ok());
    // (3-based field numbers of proc(5) minus 3: utime=14, stime=15, starttime=22.)
    let cpu_seconds = (ticks(11)? + ticks(12)?) / TICKS_PER_SECOND;
    let started_after_boot = ticks(19)? / TICKS_PER_SECOND;
    let boot_time: f64 = std::fs::read_to_string("/proc/stat")
        .ok()?
        .lines()
        .find_map(|l| l.strip_prefix("btime ").and_then(|v| v.trim().parse().ok()))?;
    let resident_kib: f64 = std::fs::read_to_string("/proc/self/status")
        .ok()?
        .lines()
        .find_map(|l| {
            l.strip_prefix("VmRSS:")
                .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
        })?;
    let open_fds = std::fs::read_dir("/proc/self/fd").ok()?.count() as f64;
    Some(Sample {
        cpu_seconds,
        resident_bytes: resident_kib * 1024.0,
        open_fds,
        start_time_seconds: boot_time + started_after_boot,
    })
}

impl Collector for ProcessCollector {
    fn encode(&self, mut encoder: DescriptorEncoder) -> Result<(), std::fmt::Error> {
        let Some(s) = sample() else { return Ok(()) };
        let cpu = ConstCounter::new(s.cpu_seconds);
        cpu.encode(encoder.encode_descriptor(
            "process_cpu_seconds",
            "Total user and system CPU time spent in seconds",
            None,
            cpu.metric_type(),
        )?)?;
        for (name, help, value) in [
            (
                "process_resident_memory_bytes",
                "Resident memory size in bytes",
                s.resident_bytes,
            ),
            (
                "process_open_fds",
                "Number of open file descriptors",
                s.open_fds,
            ),
            (
                "process_start_time_seconds",
                "Start time of the process since the Unix epoch in seconds",
                s.start_time_seconds,
            ),
        ] {
            let gauge = ConstGauge::new(value);
            gauge.encode(encoder.encode_descriptor(name, help, None, gauge.metric_type())?)?;
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    #[test]
    fn a_sample_of_this_process_is_plausible() {
        let s = super::sample().expect("/proc is available on Linux");
        assert!(s.resident_bytes > 1024.0 * 1024.0, "{}", s.resident_bytes);
        assert!(s.open_fds >= 3.0);
        assert!(s.start_time_seconds > 1.7e9, "{}", s.start_time_seconds);
        assert!(s.cpu_seconds >= 0.0);
    }
}
