//! Throttling against client quotas, decided as Kafka's `ClientQuotaManager` decides it
//! (KIP-13, KIP-124, KIP-219, KIP-599), with time passed in: no clock, no I/O, no tasks.
//!
//! Each quota entry a connection falls under (the tags `weir_meta::client_quotas` resolves)
//! has a [`Rate`]: Kafka's sampled rate over [`QUOTA_WINDOW_SAMPLES`] windows of
//! [`QUOTA_WINDOW_MS`]. A request's bytes are recorded, then the rate measured; above the
//! limit, the throttle time is the time the rate needs to come back to the limit:
//! `(rate - limit) / limit * window`, Kafka's `QuotaUtils.throttleTime`. The broker sets it
//! as the response's `throttle_time_ms` and stops reading the connection for that long.
//!
//! `request_percentage` uses the same rate over handler time, recorded as percent-seconds
//! of one thread (Kafka's `ClientRequestQuotaManager`), so the measured rate is a
//! percentage; its throttle is bounded by one window, as Kafka bounds it.
//! `connection_creation_rate` uses it too, one rate per address, counting connections
//! (Kafka's `ConnectionQuotas`).
//!
//! `controller_mutation_rate` is a [`TokenBucket`] instead (Kafka's, for KIP-599): it holds
//! up to `samples x window x rate` partitions, refills at the rate, and a mutation is
//! refused (strict) or throttled (permissive) once it is in debt.
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

impl RateKey {
    fn new(quota_key: &'static str, limit: &QuotaLimit) -> RateKey {
        RateKey {
            quota_key,
            user_tag: limit.user_tag.clone(),
            client_id_tag: limit.client_id_tag.clone(),
        }
    }
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
        self.record_only(quota_key, limit, value, now_ms);
        self.throttle_ms(quota_key, limit, now_ms, i64::from(i32::MAX))
    }

    /// Records `value` against the rate `limit` measures by, without deciding a throttle
    /// (a request's handler time, known only once its response is built).
    pub fn record_only(
        &mut self,
        quota_key: &'static str,
        limit: &QuotaLimit,
        value: f64,
        now_ms: i64,
    ) {
        if let Some(rate) = self.rate_mut(quota_key, limit, now_ms) {
            rate.record(value, now_ms);
        }
    }

    /// The throttle time the rate `limit` measures by asks for now, without recording:
    /// 0 within the limit, else Kafka's formula bounded by `throttle_ms_max`.
    pub fn throttle_ms(
        &mut self,
        quota_key: &'static str,
        limit: &QuotaLimit,
        now_ms: i64,
        throttle_ms_max: i64,
    ) -> i32 {
        assert!(limit.limit > 0.0, "the catalog keeps only positive quotas");
        let key = RateKey::new(quota_key, limit);
        let Some(rate) = self.rates.get_mut(&key) else {
            return 0;
        };
        let measured = rate.measure(now_ms);
        if measured <= limit.limit {
            return 0;
        }
        let window_ms = rate.window_ms(now_ms) as f64;
        let throttle_ms = ((measured - limit.limit) / limit.limit * window_ms).round();
        throttle_ms.min(throttle_ms_max as f64).min(i32::MAX as f64) as i32
    }

    /// The rate of `limit`'s entry, made if there is room for it.
    fn rate_mut(
        &mut self,
        quota_key: &'static str,
        limit: &QuotaLimit,
        now_ms: i64,
    ) -> Option<&mut Rate> {
        assert!(limit.limit > 0.0, "the catalog keeps only positive quotas");
        let key = RateKey::new(quota_key, limit);
        if !self.rates.contains_key(&key) && self.rates.len() >= QUOTA_RATES_MAX {
            self.rates.retain(|_, r| !r.is_idle(now_ms));
            if self.rates.len() >= QUOTA_RATES_MAX {
                return None;
            }
        }
        Some(self.rates.entry(key).or_default())
    }

    pub fn len(&self) -> usize {
        self.rates.len()
    }

    pub fn is_empty(&self) -> bool {
        self.rates.is_empty()
    }
}

/// Kafka's `TokenBucket` for `controller_mutation_rate`: credits (partitions) refilled at
/// the quota's rate up to a burst of [`QUOTA_WINDOW_SAMPLES`] windows' worth. A new bucket
/// is full (Kafka's starts empty at time 0 and refills to the burst at its first use).
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct TokenBucket {
    tokens: f64,
    last_update_ms: i64,
}

impl TokenBucket {
    pub fn new(rate: f64, now_ms: i64) -> TokenBucket {
        TokenBucket {
            tokens: Self::burst(rate),
            last_update_ms: now_ms,
        }
    }

    /// The most credits the bucket holds: samples x window x rate.
    fn burst(rate: f64) -> f64 {
        QUOTA_WINDOW_SAMPLES as f64 * (QUOTA_WINDOW_MS as f64 / 1000.0) * rate
    }

    fn refill(&mut self, rate: f64, now_ms: i64) {
        let elapsed_s = (now_ms - self.last_update_ms).max(0) as f64 / 1000.0;
        self.tokens = (self.tokens + rate * elapsed_s).min(Self::burst(rate));
        self.last_update_ms = self.last_update_ms.max(now_ms);
    }

    /// The credits left at `now_ms`; below zero the quota is exhausted.
    pub fn tokens(&mut self, rate: f64, now_ms: i64) -> f64 {
        self.refill(rate, now_ms);
        self.tokens
    }

    pub fn record(&mut self, rate: f64, value: f64, now_ms: i64) {
        self.refill(rate, now_ms);
        self.tokens = (self.tokens - value).min(Self::burst(rate));
    }

    /// The time the bucket needs to refill to zero: `-tokens / rate` seconds, 0 when not
    /// in debt (Kafka's `ControllerMutationQuotaManager.throttleTimeMs`).
    pub fn throttle_ms(&mut self, rate: f64, now_ms: i64) -> i32 {
        let tokens = self.tokens(rate, now_ms);
        if tokens >= 0.0 {
            return 0;
        }
        (-tokens / rate * 1000.0).round().min(i32::MAX as f64) as i32
    }

    fn is_full(&mut self, rate: f64, now_ms: i64) -> bool {
        self.tokens(rate, now_ms) >= Self::burst(rate)
    }
}

/// Every `controller_mutation_rate` entry's bucket.
#[derive(Debug, Default)]
pub struct MutationBuckets {
    /// Each bucket with the rate it last refilled at.
    buckets: HashMap<RateKey, (TokenBucket, f64)>,
}

impl MutationBuckets {
    /// A strict charge (CreateTopics v6+, CreatePartitions v3+, DeleteTopics v5+): refused
    /// with the throttle time while the bucket is in debt, else recorded, even when it takes
    /// the bucket below zero (Kafka checks the quota before recording).
    pub fn charge_strict(
        &mut self,
        limit: &QuotaLimit,
        partitions: f64,
        now_ms: i64,
    ) -> Result<(), i32> {
        let Some(bucket) = self.bucket_mut(limit, now_ms) else {
            return Ok(());
        };
        let throttle_ms = bucket.throttle_ms(limit.limit, now_ms);
        if throttle_ms > 0 {
            return Err(throttle_ms);
        }
        bucket.record(limit.limit, partitions, now_ms);
        Ok(())
    }

    /// A permissive charge (older versions): always recorded; returns the throttle time the
    /// bucket's debt asks for afterwards.
    pub fn charge_permissive(&mut self, limit: &QuotaLimit, partitions: f64, now_ms: i64) -> i32 {
        let Some(bucket) = self.bucket_mut(limit, now_ms) else {
            return 0;
        };
        bucket.record(limit.limit, partitions, now_ms);
        bucket.throttle_ms(limit.limit, now_ms)
    }

    /// The bucket of `limit`'s entry, made full if there is room for it. A full bucket is
    /// the same as a new one, so full buckets make room when the bound is reached.
    fn bucket_mut(&mut self, limit: &QuotaLimit, now_ms: i64) -> Option<&mut TokenBucket> {
        assert!(limit.limit > 0.0, "the catalog keeps only positive quotas");
        let key = RateKey::new(weir_meta::client_quotas::CONTROLLER_MUTATION_RATE, limit);
        if !self.buckets.contains_key(&key) && self.buckets.len() >= QUOTA_RATES_MAX {
            self.buckets
                .retain(|_, (bucket, rate)| !bucket.is_full(*rate, now_ms));
            if self.buckets.len() >= QUOTA_RATES_MAX {
                return None;
            }
        }
        let (bucket, rate) = self
            .buckets
            .entry(key)
            .or_insert_with(|| (TokenBucket::new(limit.limit, now_ms), limit.limit));
        *rate = limit.limit;
        Some(bucket)
    }

    pub fn len(&self) -> usize {
        self.buckets.len()
    }

    pub fn is_empty(&self) -> bool {
        self.buckets.is_empty()
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

    #[test]
    fn request_time_throttle_is_measured_and_bounded_by_one_window() {
        // Goal: handler time recorded as percent-seconds measures as a percentage of one
        // thread; over request_percentage the throttle is Kafka's formula capped at 1 s.
        let mut rates = QuotaRates::default();
        let l = limit(10.0); // 10 % of one thread
                             // 500 ms of handler time = 50 percent-seconds; over a 10 s window: 5 %.
        rates.record_only("request_percentage", &l, 50.0, 0);
        assert_eq!(rates.throttle_ms("request_percentage", &l, 0, 1_000), 0);
        // 1.5 s in all: 15 % > 10 %: (15-10)/10 * 10_000 = 5_000 ms, bounded to 1_000.
        rates.record_only("request_percentage", &l, 100.0, 0);
        assert_eq!(rates.throttle_ms("request_percentage", &l, 0, 1_000), 1_000);
        assert_eq!(
            rates.throttle_ms("request_percentage", &l, 0, i64::MAX),
            5_000
        );
        // Measuring records nothing: asking again gives the same answer.
        assert_eq!(
            rates.throttle_ms("request_percentage", &l, 0, i64::MAX),
            5_000
        );
        // An entry never recorded to is not throttled.
        let other = QuotaLimit {
            client_id_tag: "other".to_string(),
            ..limit(0.5)
        };
        assert_eq!(rates.throttle_ms("request_percentage", &other, 0, 1_000), 0);
    }

    #[test]
    fn a_token_bucket_allows_a_burst_then_refills_at_the_rate() {
        // Goal: Kafka's TokenBucket: full at samples x window x rate, refilled at the rate,
        // throttle = -tokens / rate.
        let mut b = TokenBucket::new(2.0, 0);
        assert_eq!(b.tokens(2.0, 0), 22.0);
        b.record(2.0, 30.0, 0);
        assert_eq!(b.tokens(2.0, 0), -8.0);
        assert_eq!(b.throttle_ms(2.0, 0), 4_000);
        // One second refills 2 tokens.
        assert_eq!(b.throttle_ms(2.0, 1_000), 3_000);
        assert_eq!(b.throttle_ms(2.0, 4_000), 0);
        // Refill stops at the burst.
        assert_eq!(b.tokens(2.0, 1_000_000), 22.0);
    }

    #[test]
    fn a_strict_charge_is_refused_only_once_the_bucket_is_in_debt() {
        // Goal: KIP-599's strict quota: the charge that overdraws is accepted, the next one
        // is refused with the throttle time until the bucket is back to zero.
        let mut buckets = MutationBuckets::default();
        let l = limit(2.0);
        assert_eq!(buckets.charge_strict(&l, 30.0, 0), Ok(()));
        assert_eq!(buckets.charge_strict(&l, 1.0, 0), Err(4_000));
        assert_eq!(buckets.charge_strict(&l, 1.0, 2_000), Err(2_000));
        // Back at zero at 4 s: accepted again, and the bucket goes into debt.
        assert_eq!(buckets.charge_strict(&l, 1.0, 4_000), Ok(()));
        assert_eq!(buckets.charge_strict(&l, 1.0, 4_000), Err(500));
    }

    #[test]
    fn a_permissive_charge_is_always_recorded_and_throttled() {
        // Goal: the permissive quota (older request versions) accepts every mutation and
        // returns the throttle its debt asks for.
        let mut buckets = MutationBuckets::default();
        let l = limit(2.0);
        assert_eq!(buckets.charge_permissive(&l, 20.0, 0), 0);
        assert_eq!(buckets.charge_permissive(&l, 10.0, 0), 4_000);
        assert_eq!(buckets.charge_permissive(&l, 10.0, 0), 9_000);
        // A strict charge on the same entry now sees the debt.
        assert_eq!(buckets.charge_strict(&l, 1.0, 0), Err(9_000));
        assert_eq!(buckets.len(), 1);
    }

    #[test]
    fn mutation_buckets_are_bounded_and_full_ones_make_room() {
        // Goal: the bound holds; a refilled (full) bucket is dropped for a new one.
        let mut buckets = MutationBuckets::default();
        for i in 0..QUOTA_RATES_MAX {
            let l = QuotaLimit {
                user_tag: i.to_string(),
                client_id_tag: String::new(),
                limit: 1.0,
            };
            assert_eq!(buckets.charge_strict(&l, 1.0, 0), Ok(()));
        }
        // Not yet refilled: no room, the new entry is not limited.
        assert_eq!(buckets.charge_strict(&limit(1.0), 1e9, 0), Ok(()));
        assert_eq!(buckets.charge_strict(&limit(1.0), 1.0, 0), Ok(()));
        assert_eq!(buckets.len(), QUOTA_RATES_MAX);
        // One second later every bucket is full again and makes room.
        assert_eq!(buckets.charge_strict(&limit(1.0), 100.0, 1_000), Ok(()));
        assert_eq!(buckets.len(), 1);
        assert_eq!(buckets.charge_strict(&limit(1.0), 1.0, 1_000), Err(89_000));
    }
}
