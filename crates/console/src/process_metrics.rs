//! The process's own metrics under the names every Prometheus user knows
//! (`process_resident_memory_bytes`, `process_cpu_seconds_total`, …), read from `/proc/self`
//! on each scrape. Linux only: elsewhere, or when `/proc` cannot be read, the families are
//! left out rather than reported as zero.
//!
//! Times in `/proc` are in the kernel's USER_HZ ticks. Reading USER_HZ needs `sysconf`, an
//! unsafe call this workspace forbids; it is 100 on every architecture weir builds for, so
//! that is assumed ([`USER_HZ`]).

use prometheus_client::collector::Collector;
use prometheus_client::encoding::{DescriptorEncoder, EncodeMetric};
use prometheus_client::metrics::counter::ConstCounter;
use prometheus_client::metrics::gauge::ConstGauge;
use prometheus_client::metrics::MetricType;
use prometheus_client::registry::Unit;

/// Clock ticks per second of the times in `/proc/<pid>/stat`.
const USER_HZ: f64 = 100.0;

/// One reading of the process, taken before encoding.
#[derive(Debug, Clone, PartialEq)]
pub struct ProcessReading {
    pub resident_memory_bytes: i64,
    pub virtual_memory_bytes: i64,
    pub cpu_seconds: f64,
    pub open_fds: i64,
    pub max_fds: i64,
    pub start_time_seconds: f64,
}

impl ProcessReading {
    /// Reads `/proc/self`; `None` off Linux or when a file is missing or unexpected.
    pub fn read() -> Option<ProcessReading> {
        if !cfg!(target_os = "linux") {
            return None;
        }
        let stat = std::fs::read_to_string("/proc/self/stat").ok()?;
        let status = std::fs::read_to_string("/proc/self/status").ok()?;
        let limits = std::fs::read_to_string("/proc/self/limits").ok()?;
        let boot = std::fs::read_to_string("/proc/stat").ok()?;
        let open_fds = std::fs::read_dir("/proc/self/fd").ok()?.count();
        let stat = parse_stat(&stat)?;
        let boot_time_seconds: f64 = field_after(&boot, "btime")?.parse().ok()?;
        Some(ProcessReading {
            resident_memory_bytes: status_kib(&status, "VmRSS:")? * 1024,
            virtual_memory_bytes: status_kib(&status, "VmSize:")? * 1024,
            cpu_seconds: (stat.utime_ticks + stat.stime_ticks) as f64 / USER_HZ,
            // The directory listing holds one descriptor of its own while it is read.
            open_fds: i64::try_from(open_fds.saturating_sub(1)).ok()?,
            max_fds: max_open_files(&limits)?,
            start_time_seconds: boot_time_seconds + stat.start_ticks as f64 / USER_HZ,
        })
    }
}

struct Stat {
    utime_ticks: u64,
    stime_ticks: u64,
    start_ticks: u64,
}

/// The fields of `/proc/self/stat` after the command name, which is in parentheses and may
/// itself hold spaces and parentheses: so the fields start after the last `)`.
fn parse_stat(stat: &str) -> Option<Stat> {
    let rest = &stat[stat.rfind(')')? + 1..];
    let fields: Vec<&str> = rest.split_whitespace().collect();
    // Field n of proc(5) (1-based, pid first) is fields[n - 3] here.
    let field = |n: usize| fields.get(n - 3)?.parse::<u64>().ok();
    Some(Stat {
        utime_ticks: field(14)?,
        stime_ticks: field(15)?,
        start_ticks: field(22)?,
    })
}

/// The first word after `key` on the line that starts with it.
fn field_after<'a>(text: &'a str, key: &str) -> Option<&'a str> {
    text.lines()
        .find_map(|l| l.strip_prefix(key))?
        .split_whitespace()
        .next()
}

/// A `Vm…:  1234 kB` line of `/proc/self/status`, in KiB.
fn status_kib(status: &str, key: &str) -> Option<i64> {
    field_after(status, key)?.parse().ok()
}

/// The soft limit on open files from `/proc/self/limits`; "unlimited" as `i64::MAX`.
fn max_open_files(limits: &str) -> Option<i64> {
    let soft = field_after(limits, "Max open files")?;
    if soft == "unlimited" {
        return Some(i64::MAX);
    }
    soft.parse().ok()
}

/// The collector registered on each scrape; it reads the process when encoded.
#[derive(Debug, Default)]
pub struct ProcessMetrics;

fn gauge(
    encoder: &mut DescriptorEncoder,
    name: &str,
    help: &str,
    unit: Option<&Unit>,
    value: impl EncodeMetric,
) -> Result<(), std::fmt::Error> {
    value.encode(encoder.encode_descriptor(name, help, unit, MetricType::Gauge)?)
}

impl Collector for ProcessMetrics {
    fn encode(&self, mut encoder: DescriptorEncoder) -> Result<(), std::fmt::Error> {
        let Some(r) = ProcessReading::read() else {
            return Ok(());
        };
        let e = &mut encoder;
        gauge(
            e,
            "process_resident_memory",
            "Resident memory size.",
            Some(&Unit::Bytes),
            ConstGauge::new(r.resident_memory_bytes),
        )?;
        gauge(
            e,
            "process_virtual_memory",
            "Virtual memory size.",
            Some(&Unit::Bytes),
            ConstGauge::new(r.virtual_memory_bytes),
        )?;
        ConstCounter::new(r.cpu_seconds).encode(e.encode_descriptor(
            "process_cpu",
            "User and system CPU time spent.",
            Some(&Unit::Seconds),
            MetricType::Counter,
        )?)?;
        gauge(
            e,
            "process_open_fds",
            "Open file descriptors.",
            None,
            ConstGauge::new(r.open_fds),
        )?;
        gauge(
            e,
            "process_max_fds",
            "Most file descriptors the process may open (the soft limit).",
            None,
            ConstGauge::new(r.max_fds),
        )?;
        gauge(
            e,
            "process_start_time",
            "Start time of the process since the Unix epoch.",
            Some(&Unit::Seconds),
            ConstGauge::new(r.start_time_seconds),
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The stat line is cut after the last parenthesis, so a command name with spaces and
    /// parentheses does not shift the fields.
    #[test]
    fn stat_fields_survive_an_odd_command_name() {
        let line = "42 (we ir) (x)) S 1 42 42 0 -1 4194560 100 0 0 0 250 75 0 0 20 0 9 0 \
                    123456 1000000 500 18446744073709551615";
        let stat = parse_stat(line).unwrap();
        assert_eq!(stat.utime_ticks, 250);
        assert_eq!(stat.stime_ticks, 75);
        assert_eq!(stat.start_ticks, 123456);
    }

    /// The soft limit is the first number of the "Max open files" row.
    #[test]
    fn max_open_files_is_the_soft_limit() {
        let limits = "Limit                     Soft Limit           Hard Limit           Units\n\
                      Max processes             63432                63432                processes\n\
                      Max open files            1024                 524288               files\n";
        assert_eq!(max_open_files(limits), Some(1024));
        let unlimited =
            "Max open files            unlimited            unlimited            files\n";
        assert_eq!(max_open_files(unlimited), Some(i64::MAX));
    }
}
