//! Throttling against client quotas, decided as Kafka's `ClientQuotaManager` decides it
//! (KIP-13, KIP-124, KIP-219), with time passed in: no clock, no I/O, no tasks.
//!
//! Each quota entry a connection falls under (the tags `weir_meta::client_quotas` resolves)
//! has a [`Rate`]: Kafka's sampled rate over [`QUOTA_WINDOW_SAMPLES`] windows of
//! [`QUOTA_WINDOW_MS`]. A request's bytes are recorded, then the rate measured; above the
//! limit, the throttle time is the time the rate needs to come back to the limit:
//! `(rate - limit) / limit * window`, Kafka's `QuotaUtils.throttleTime`. The broker sets it
//! as the response's `throttle_time_ms` and stops reading the connection for that long.

use std::collections::HashMap;

use weir_meta::client_quotas::QuotaLimit;

/// Kafka's `quota.window.num` default: samples kept per rate.
pub const QUOTA_WINDOW_SAMPLES: usize = 11;
/// Kafka's `quota.window.size.seconds` default, in milliseconds: one sample's span.
pub const QUOTA_WINDOW_MS: i64 = 1_000;
/// Rates kept at once. A rate not recorded to for all its windows measures zero and is
/// dropped when room is needed; past that bound new entries are not throttled.
pub const QUOTA_RATES_MAX: usize = 100_000;

#[derive(Debug, Clone, Copy, PartialEq)]
struct Sample {
    window_start_ms: i64,
    value: f64,
}

/// Kafka's `Rate` over a `WindowedSum`: samples reused round-robin, each covering
/// [`QUOTA_WINDOW_MS`] from its first record.
#[derive(Debug, Clone, Default)]
pub struct Rate {
    samples: Vec<Sample>,
    current: usize,
}

impl Rate {
    /// `SampledStat.record`: into the current sample, or the next one once the current
    /// one's window is over.
    pub fn record(&mut self, value: f64, now_ms: i64) {
        if self.samples.is_empty() {
            self.samples.push(Sample {
                window_start_ms: now_ms,
                value: 0.0,
            });
        }
        if now_ms - self.samples[self.current].window_start_ms >= QUOTA_WINDOW_MS {
            self.advance(now_ms);
        }
        self.samples[self.current].value += value;
        assert!(self.samples.len() <= QUOTA_WINDOW_SAMPLES);
    }

    fn advance(&mut self, now_ms: i64) {
        self.current = (self.current + 1) % QUOTA_WINDOW_SAMPLES;
        let fresh = Sample {
            window_start_ms: now_ms,
            value: 0.0,
        };
        if self.current >= self.samples.len() {
            self.samples.push(fresh);
        } else {
            self.samples[self.current] = fresh;
        }
    }

    /// Resets samples older than all the windows, as Kafka's `purgeObsoleteSamples` does
    /// (a reset sample starts now).
    fn purge(&mut self, now_ms: i64) {
        let expire_ms = QUOTA_WINDOW_SAMPLES as i64 * QUOTA_WINDOW_MS;
        for s in self.samples.iter_mut() {
            if now_ms - s.window_start_ms >= expire_ms {
                *s = Sample {
                    window_start_ms: now_ms,
                    value: 0.0,
                };
            }
        }
    }

    /// Kafka's `Rate.windowSize`: the time since the oldest sample started, counted as at
    /// least `samples - 1` full windows so a new rate does not measure high.
    pub fn window_ms(&mut self, now_ms: i64) -> i64 {
        self.purge(now_ms);
        let oldest_ms = self
            .samples
            .iter()
            .map(|s| s.window_start_ms)
            .min()
            .unwrap_or(now_ms);
        let mut elapsed_ms = now_ms - oldest_ms;
        let full_windows = elapsed_ms / QUOTA_WINDOW_MS;
        let min_full_windows = QUOTA_WINDOW_SAMPLES as i64 - 1;
        if full_windows < min_full_windows {
            elapsed_ms += (min_full_windows - full_windows) * QUOTA_WINDOW_MS;
        }
        elapsed_ms.max(1)
    }

    /// The rate per second.
    pub fn measure(&mut self, now_ms: i64) -> f64 {
        self.purge(now_ms);
        let total: f64 = self.samples.iter().map(|s| s.value).sum();
        total / (self.window_ms(now_ms) as f64 / 1000.0)
    }

    /// Whether every sample is older than the windows, so the rate measures zero.
    fn is_idle(&self, now_ms: i64) -> bool {
        let expire_ms = QUOTA_WINDOW_SAMPLES as i64 * QUOTA_WINDOW_MS;
        self.samples
            .iter()
            .all(|s| now_ms - s.window_start_ms >= expire_ms || s.value == 0.0)
    }
}

/// Which rate a recording goes to: the quota key and Kafka's sensor tags.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
struct RateKey {
    quota_key: &'static str,
    user_tag: String,
    client_id_tag: String,
}

/// Every quota entry's rate.
#[derive(Debug, Default)]
pub struct QuotaRates {
    rates: HashMap<RateKey, Rate>,
}

impl QuotaRates {
    /// Records `value` (bytes) against the rate `limit` measures by, and returns the
    /// throttle time in milliseconds: 0 while the rate is within the limit.
    pub fn record(
        &mut self,
        quota_key: &'static str,
        limit: &QuotaLimit,
        value: f64,
        now_ms: i64,
    ) -> i32 {
        assert!(limit.limit > 0.0, "the catalog keeps only positive quotas");
        let key = RateKey {
            quota_key,
            user_tag: limit.user_tag.clone(),
            client_id_tag: limit.client_id_tag.clone(),
        };
        if !self.rates.contains_key(&key) && self.rates.len() >= QUOTA_RATES_MAX {
            self.rates.retain(|_, r| !r.is_idle(now_ms));
            if self.rates.len() >= QUOTA_RATES_MAX {
                return 0;
            }
        }
        let rate = self.rates.entry(key).or_default();
        rate.record(value, now_ms);
        let measured = rate.measure(now_ms);
        if measured <= limit.limit {
            return 0;
        }
        let window_ms = rate.window_ms(now_ms) as f64;
        let throttle_ms = ((measured - limit.limit) / limit.limit * window_ms).round();
        throttle_ms.min(i32::MAX as f64) as i32
    }

    pub fn len(&self) -> usize {
        self.rates.len()
    }

    pub fn is_empty(&self) -> bool {
        self.rates.is_empty()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn limit(bytes_per_second: f64) -> QuotaLimit {
        QuotaLimit {
            user_tag: String::new(),
            client_id_tag: "c".to_string(),
            limit: bytes_per_second,
        }
    }

    #[test]
    fn a_new_rate_counts_ten_full_windows() {
        // Goal: Kafka's window size: at least samples-1 full windows, plus the elapsed part
        // of the current one.
        let mut r = Rate::default();
        r.record(1000.0, 0);
        assert_eq!(r.window_ms(0), 10_000);
        assert_eq!(r.window_ms(500), 10_500);
        assert!((r.measure(500) - 1000.0 / 10.5).abs() < 1e-9);
        // Past 11 windows the old sample is gone.
        assert_eq!(r.measure(11_000), 0.0);
        assert!(r.is_idle(11_000));
    }

    #[test]
    fn samples_roll_over_each_window() {
        // Goal: one sample per window, reused round-robin, so only the last 11 windows count.
        let mut r = Rate::default();
        for second in 0..30 {
            r.record(100.0, second * 1000);
        }
        assert_eq!(r.samples.len(), QUOTA_WINDOW_SAMPLES);
        // Samples of seconds 19..=29 remain: 11 * 100 bytes over 10 s (oldest started at 19 s).
        assert_eq!(r.window_ms(29_000), 10_000);
        assert!((r.measure(29_000) - 110.0).abs() < 1e-9);
    }

    #[test]
    fn throttle_time_is_kafkas_formula() {
        // Goal: (rate - limit) / limit * window, and none within the limit.
        let mut rates = QuotaRates::default();
        let l = limit(1000.0);
        // 10_000 bytes at t=0: rate 1000/s over 10 s, exactly at the limit.
        assert_eq!(rates.record("producer_byte_rate", &l, 10_000.0, 0), 0);
        // 5_000 more at t=0: 1500/s; (1500-1000)/1000 * 10_000 ms = 5000 ms.
        assert_eq!(rates.record("producer_byte_rate", &l, 5_000.0, 0), 5_000);
        // Another key is another rate.
        assert_eq!(rates.record("consumer_byte_rate", &l, 5_000.0, 0), 0);
        assert_eq!(rates.len(), 2);
    }

    #[test]
    fn a_producer_obeying_throttles_is_held_to_its_quota() {
        // Goal: a client that sends as fast as allowed, waiting out each throttle, averages
        // the quota within 10 % over 30 s.
        let mut rates = QuotaRates::default();
        let l = limit(100_000.0);
        let batch = 16_384.0;
        let (mut now_ms, mut sent) = (0i64, 0.0);
        while now_ms < 30_000 {
            let throttle_ms = rates.record("producer_byte_rate", &l, batch, now_ms);
            sent += batch;
            now_ms += 1 + throttle_ms as i64;
        }
        let rate = sent / (now_ms as f64 / 1000.0);
        // The first 10 s may run ahead (the window starts full), so measure the whole span
        // generously, and the steady state strictly.
        assert!(rate < 100_000.0 * 1.4, "rate {rate}");
        let (start_ms, start_sent) = (now_ms, sent);
        while now_ms < start_ms + 30_000 {
            let throttle_ms = rates.record("producer_byte_rate", &l, batch, now_ms);
            sent += batch;
            now_ms += 1 + throttle_ms as i64;
        }
        let steady = (sent - start_sent) / ((now_ms - start_ms) as f64 / 1000.0);
        assert!(
            (steady - 100_000.0).abs() < 10_000.0,
            "steady rate {steady}"
        );
    }

    #[test]
    fn rates_are_bounded_and_idle_ones_make_room() {
        // Goal: the bound holds; an idle rate is dropped for a new one, a busy one is not.
        let mut rates = QuotaRates::default();
        for i in 0..QUOTA_RATES_MAX {
            let l = QuotaLimit {
                user_tag: i.to_string(),
                client_id_tag: String::new(),
                limit: 1e12,
            };
            rates.record("producer_byte_rate", &l, 1.0, 0);
        }
        assert_eq!(rates.len(), QUOTA_RATES_MAX);
        // Still inside the windows: no room, the new entry is not tracked.
        assert_eq!(
            rates.record("producer_byte_rate", &limit(1.0), 1e9, 5_000),
            0
        );
        assert_eq!(rates.len(), QUOTA_RATES_MAX);
        // Past them: the idle rates go.
        assert!(rates.record("producer_byte_rate", &limit(1.0), 1e9, 20_000) > 0);
        assert_eq!(rates.len(), 1);
    }
}
