//! The `process_` families in `GET /metrics`, against this test process. Alone in its
//! test binary: other tests running at the same time would open and close descriptors.

#[path = "../../broker/tests/integration/common/mod.rs"]
mod common;
#[path = "integration/scrape/mod.rs"]
mod scrape;

use std::time::{SystemTime, UNIX_EPOCH};

use scrape::{has_sample, sample_sum, scrape, start};

/// The process families follow the process: opening files moves the descriptor count,
/// and the start time is this test process's.
#[cfg(target_os = "linux")]
#[tokio::test]
async fn process_metrics_follow_the_process() {
    let (broker, http) = start().await;
    let text = scrape(http).await;
    for name in [
        "process_resident_memory_bytes",
        "process_virtual_memory_bytes",
        "process_cpu_seconds_total",
        "process_open_fds",
        "process_max_fds",
        "process_start_time_seconds",
    ] {
        assert!(has_sample(&text, name), "{name}: {text}");
    }
    let rss = sample_sum(&text, "process_resident_memory_bytes", &[]);
    let vsz = sample_sum(&text, "process_virtual_memory_bytes", &[]);
    assert!(rss > 1_000_000.0 && rss <= vsz, "{rss} {vsz}");
    let fds_before = sample_sum(&text, "process_open_fds", &[]);
    assert!(fds_before >= 3.0);
    assert!(sample_sum(&text, "process_max_fds", &[]) >= fds_before);
    let started = sample_sum(&text, "process_start_time_seconds", &[]);
    let now = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap()
        .as_secs_f64();
    assert!(
        started <= now + 1.0 && started > now - 3600.0,
        "{started} {now}"
    );

    let files: Vec<std::fs::File> = (0..64)
        .map(|_| std::fs::File::open("/proc/self/stat").unwrap())
        .collect();
    let fds_open = sample_sum(&scrape(http).await, "process_open_fds", &[]);
    assert!(fds_open >= fds_before + 64.0, "{fds_before} -> {fds_open}");
    drop(files);
    let fds_after = sample_sum(&scrape(http).await, "process_open_fds", &[]);
    assert!(fds_after <= fds_open - 64.0, "{fds_open} -> {fds_after}");
    broker.stop().await;
}
