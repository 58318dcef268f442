//! The broker's recent throughput, for the console's overview chart: every
//! [`THROUGHPUT_SAMPLE_INTERVAL`] a task adds up what every partition took in and gave out
//! (the counters Produce and Fetch keep with each partition) and keeps the rates since the
//! previous sample in a ring of [`THROUGHPUT_SAMPLES_MAX`] entries, one hour at the default
//! interval. In memory only: a restarted broker starts with an empty chart.

use std::collections::VecDeque;
use std::sync::Arc;
use std::time::Duration;

use parking_lot::Mutex;
use serde::Serialize;
use utoipa::ToSchema;
use weir_broker::state::BrokerState;

/// How often the counters are read.
pub const THROUGHPUT_SAMPLE_INTERVAL: Duration = Duration::from_secs(10);
/// Rates kept: one hour at [`THROUGHPUT_SAMPLE_INTERVAL`].
pub const THROUGHPUT_SAMPLES_MAX: usize = 360;

pub use weir_broker::traffic::TrafficTotals;

/// The rates between two samples, stamped with the later one's time.
#[derive(Debug, Clone, PartialEq, Serialize, ToSchema)]
pub struct ThroughputSample {
    /// Seconds since the Unix epoch.
    pub time_s: f64,
    pub records_in_per_second: f64,
    pub bytes_in_per_second: f64,
    pub bytes_out_per_second: f64,
}

#[derive(Debug, Default)]
struct Ring {
    last: Option<(i64, TrafficTotals)>,
    samples: VecDeque<ThroughputSample>,
}

/// Shared by the sampler and the API; clone the `Arc`.
#[derive(Debug, Default)]
pub struct ThroughputHistory {
    /// Held only to add or copy samples.
    ring: Mutex<Ring>,
}

impl ThroughputHistory {
    /// Adds the counters read at `now_ms`. The first reading only sets the baseline; a
    /// counter that went down (a partition deleted) counts as no traffic rather than a
    /// negative rate.
    pub fn record(&self, now_ms: i64, totals: TrafficTotals) {
        let mut ring = self.ring.lock();
        if let Some((then_ms, before)) = ring.last {
            let elapsed_s = (now_ms - then_ms) as f64 / 1_000.0;
            if elapsed_s > 0.0 {
                let rate = |now: u64, then: u64| now.saturating_sub(then) as f64 / elapsed_s;
                ring.samples.push_back(ThroughputSample {
                    time_s: now_ms as f64 / 1_000.0,
                    records_in_per_second: rate(totals.records_in, before.records_in),
                    bytes_in_per_second: rate(totals.bytes_in, before.bytes_in),
                    bytes_out_per_second: rate(totals.bytes_out, before.bytes_out),
                });
                while ring.samples.len() > THROUGHPUT_SAMPLES_MAX {
                    ring.samples.pop_front();
                }
            }
        }
        ring.last = Some((now_ms, totals));
    }

    /// The kept rates, oldest first.
    pub fn samples(&self) -> Vec<ThroughputSample> {
        self.ring.lock().samples.iter().cloned().collect()
    }

    /// Reads the counters every `interval` until the returned task is aborted.
    pub fn spawn_sampler(
        self: &Arc<Self>,
        state: Arc<BrokerState>,
        interval: Duration,
    ) -> tokio::task::JoinHandle<()> {
        let history = Arc::clone(self);
        every(interval, move || {
            let now_ms = chrono::Utc::now().timestamp_millis();
            history.record(now_ms, state.traffic.totals());
            std::future::ready(())
        })
    }
}

/// Runs `sample` every `interval`, starting at once, until the returned task is aborted. A
/// slow sampling (a busy coordinator) delays the next one instead of bunching them up.
pub fn every<F, Fut>(interval: Duration, mut sample: F) -> tokio::task::JoinHandle<()>
where
    F: FnMut() -> Fut + Send + 'static,
    Fut: std::future::Future<Output = ()> + Send,
{
    tokio::spawn(async move {
        let mut ticks = tokio::time::interval(interval);
        ticks.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            ticks.tick().await;
            sample().await;
        }
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn totals(records_in: u64, bytes_in: u64, bytes_out: u64) -> TrafficTotals {
        TrafficTotals {
            records_in,
            bytes_in,
            bytes_out,
        }
    }

    /// Goal: rates are the counters' growth over the time between samples, the first
    /// reading only sets the baseline, a shrinking counter never gives a negative rate, and
    /// the ring keeps at most its bound, dropping the oldest.
    #[test]
    fn rates_between_samples_in_a_bounded_ring() {
        let history = ThroughputHistory::default();
        history.record(10_000, totals(100, 1_000, 0));
        assert!(history.samples().is_empty());
        history.record(20_000, totals(600, 6_000, 2_000));
        let s = history.samples();
        assert_eq!(s.len(), 1);
        assert_eq!(s[0].time_s, 20.0);
        assert_eq!(s[0].records_in_per_second, 50.0);
        assert_eq!(s[0].bytes_in_per_second, 500.0);
        assert_eq!(s[0].bytes_out_per_second, 200.0);
        history.record(30_000, totals(10, 10, 10));
        assert_eq!(history.samples()[1].bytes_in_per_second, 0.0);
        for i in 0..(THROUGHPUT_SAMPLES_MAX as i64 + 5) {
            history.record(40_000 + i * 10_000, totals(0, 0, 0));
        }
        let s = history.samples();
        assert_eq!(s.len(), THROUGHPUT_SAMPLES_MAX);
        assert!(s[0].time_s > 30.0, "the oldest samples were dropped");
    }
}
