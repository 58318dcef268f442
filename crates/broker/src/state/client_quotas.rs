//! Client quotas on [`BrokerState`]: described and altered through the catalog (on disk
//! before a change is answered); the rates produce and fetch bytes, handler time and new
//! connections are throttled by; and the token buckets topic and partition creation and
//! deletion charge (`controller_mutation_rate`).
//!
//! The quotas each request looks its limit up in are a copy of the catalog's, replaced
//! after each change, so that lookup never waits on the catalog lock (held across file
//! writes).

use std::collections::BTreeMap;
use std::sync::atomic::{AtomicI32, AtomicI64, Ordering};
use std::sync::Arc;
use std::time::Duration;

use parking_lot::{Mutex, RwLock};
use weir_meta::client_quotas::{
    self, ClientQuotas, FilterComponent, QuotaAlteration, QuotaEntity, RequestEntity,
    CONNECTION_CREATION_RATE, CONTROLLER_MUTATION_RATE, REQUEST_PERCENTAGE,
};
use weir_meta::MetaError;
use weir_wire::ResponseError;

use super::{ApiError, BrokerState};
use crate::quota_throttle::{MutationBuckets, QuotaRates, QUOTA_WINDOW_MS};

/// The quotas requests are checked against, and their measured rates.
#[derive(Debug, Default)]
pub struct QuotaState {
    quotas: RwLock<Arc<ClientQuotas>>,
    rates: Mutex<QuotaRates>,
    buckets: Mutex<MutationBuckets>,
}

impl QuotaState {
    /// Replaces the quotas requests are measured against (a catalog taken from another
    /// broker).
    pub fn set(&self, quotas: &ClientQuotas) {
        *self.quotas.write() = Arc::new(quotas.clone());
    }

    pub fn new(quotas: &ClientQuotas) -> QuotaState {
        QuotaState {
            quotas: RwLock::new(Arc::new(quotas.clone())),
            rates: Mutex::default(),
            buckets: Mutex::default(),
        }
    }
}

impl BrokerState {
    /// DescribeClientQuotas over the catalog's quotas.
    pub fn describe_client_quotas(
        &self,
        components: &[FilterComponent],
        strict: bool,
    ) -> Result<Vec<(QuotaEntity, BTreeMap<String, f64>)>, MetaError> {
        let quotas = Arc::clone(&self.quotas.quotas.read());
        client_quotas::describe(&quotas, components, strict)
    }

    /// AlterClientQuotas: applies what passes Kafka's checks (nothing when
    /// `validate_only`) and persists the catalog before returning one result per entity.
    /// If the catalog cannot be written, nothing changes and the error is returned.
    pub fn alter_client_quotas(
        &self,
        alterations: &[QuotaAlteration],
        validate_only: bool,
    ) -> Result<Vec<(RequestEntity, Result<(), MetaError>)>, ApiError> {
        let mut catalog = self.catalog.lock();
        let before = catalog.client_quotas.clone();
        let results = client_quotas::alter(&mut catalog.client_quotas, alterations, validate_only);
        if catalog.client_quotas == before {
            return Ok(results);
        }
        if let Err(e) = self.persist_catalog(&mut catalog) {
            // Memory stays what the disk holds.
            catalog.client_quotas = before;
            return Err(e);
        }
        *self.quotas.quotas.write() = Arc::new(catalog.client_quotas.clone());
        let changed = results.iter().filter(|(_, r)| r.is_ok()).count();
        tracing::info!(entities = changed, "altered client quotas");
        Ok(results)
    }

    /// Whether any client quota is set: without one, requests are not measured at all.
    pub fn has_client_quotas(&self) -> bool {
        !self.quotas.quotas.read().is_empty()
    }

    /// Records `bytes` against the `quota_key` limit (`producer_byte_rate`,
    /// `consumer_byte_rate`) of a connection of `user` with `client_id`, at `now_ms`, and
    /// returns how long to throttle it: 0 when no quota applies or it is within it.
    pub fn record_client_quota(
        &self,
        quota_key: &'static str,
        user: &str,
        client_id: &str,
        bytes: usize,
        now_ms: i64,
    ) -> i32 {
        let quotas = Arc::clone(&self.quotas.quotas.read());
        if quotas.is_empty() {
            return 0;
        }
        let Some(limit) = quotas.limit_for(quota_key, user, client_id) else {
            return 0;
        };
        self.quotas
            .rates
            .lock()
            .record(quota_key, &limit, bytes as f64, now_ms)
    }
}

/// Kafka's `ClientRequestQuotaManager` unit: a nanosecond of handler time is this many
/// percent-seconds of one thread, so the measured rate is a percentage.
const PERCENT_SECONDS_PER_NANO: f64 = 100.0 / 1e9;

impl BrokerState {
    /// The throttle time the `request_percentage` quota of `user` with `client_id` asks
    /// for at `now_ms`, from the handler time already recorded; bounded by one quota
    /// window, as Kafka bounds it.
    pub fn request_quota_throttle_ms(&self, user: &str, client_id: &str, now_ms: i64) -> i32 {
        let quotas = Arc::clone(&self.quotas.quotas.read());
        let Some(limit) = quotas.limit_for(REQUEST_PERCENTAGE, user, client_id) else {
            return 0;
        };
        self.quotas
            .rates
            .lock()
            .throttle_ms(REQUEST_PERCENTAGE, &limit, now_ms, QUOTA_WINDOW_MS)
    }

    /// Records `spent` handler time against the `request_percentage` quota of `user` with
    /// `client_id`, if one applies.
    pub fn record_request_time(&self, user: &str, client_id: &str, spent: Duration, now_ms: i64) {
        let quotas = Arc::clone(&self.quotas.quotas.read());
        let Some(limit) = quotas.limit_for(REQUEST_PERCENTAGE, user, client_id) else {
            return;
        };
        let percent_seconds = spent.as_nanos() as f64 * PERCENT_SECONDS_PER_NANO;
        self.quotas
            .rates
            .lock()
            .record_only(REQUEST_PERCENTAGE, &limit, percent_seconds, now_ms);
    }

    /// Records a new connection from `ip` at `now_ms` against its `connection_creation_rate`
    /// quota (KIP-612) and returns how long to hold it before closing it unserved: 0 when
    /// no quota applies or it is within it. A refused connection is not counted, and the
    /// time is bounded by one quota window, as Kafka's `ConnectionQuotas` decides.
    pub fn connection_throttle_ms(&self, ip: std::net::IpAddr, now_ms: i64) -> i32 {
        let quotas = Arc::clone(&self.quotas.quotas.read());
        if quotas.is_empty() {
            return 0;
        }
        let Some(limit) = quotas.ip_limit(ip) else {
            return 0;
        };
        let mut rates = self.quotas.rates.lock();
        rates.record_only(CONNECTION_CREATION_RATE, &limit, 1.0, now_ms);
        let throttle_ms =
            rates.throttle_ms(CONNECTION_CREATION_RATE, &limit, now_ms, QUOTA_WINDOW_MS);
        if throttle_ms > 0 {
            rates.record_only(CONNECTION_CREATION_RATE, &limit, -1.0, now_ms);
        }
        throttle_ms
    }

    /// Charges `partitions` created or deleted to the `controller_mutation_rate` quota of
    /// `user` with `client_id`. Strict: `Err(throttle)` when refused; permissive: always
    /// `Ok(throttle)`. No quota: `Ok(0)`.
    pub fn charge_controller_mutation(
        &self,
        user: &str,
        client_id: &str,
        partitions: i32,
        strict: bool,
        now_ms: i64,
    ) -> Result<i32, i32> {
        let quotas = Arc::clone(&self.quotas.quotas.read());
        if quotas.is_empty() {
            return Ok(0);
        }
        let Some(limit) = quotas.limit_for(CONTROLLER_MUTATION_RATE, user, client_id) else {
            return Ok(0);
        };
        let mut buckets = self.quotas.buckets.lock();
        if strict {
            buckets
                .charge_strict(&limit, f64::from(partitions), now_ms)
                .map(|()| 0)
        } else {
            Ok(buckets.charge_permissive(&limit, f64::from(partitions), now_ms))
        }
    }
}

/// One request's side of its connection's quotas: who sent it, and the connection's mute,
/// which a request over its quota extends (Kafka mutes the channel for the throttle time).
#[derive(Clone)]
pub struct QuotaClient {
    state: Arc<BrokerState>,
    user: String,
    client_id: String,
    muted_until_ms: Arc<AtomicI64>,
}

impl std::fmt::Debug for QuotaClient {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("QuotaClient")
            .field("user", &self.user)
            .field("client_id", &self.client_id)
            .finish()
    }
}

impl QuotaClient {
    /// `user` is the principal's name (Kafka's user entity), `muted_until_ms` the
    /// connection's mute deadline in wall-clock milliseconds.
    pub fn new(
        state: &Arc<BrokerState>,
        user: &str,
        client_id: &str,
        muted_until_ms: &Arc<AtomicI64>,
    ) -> QuotaClient {
        QuotaClient {
            state: Arc::clone(state),
            user: user.to_string(),
            client_id: client_id.to_string(),
            muted_until_ms: Arc::clone(muted_until_ms),
        }
    }

    /// Records `bytes` against `quota_key` now; returns the throttle time, having muted the
    /// connection for it.
    pub fn record(&self, quota_key: &'static str, bytes: usize) -> i32 {
        let now_ms = crate::handlers::produce::now_ms();
        let throttle_time_ms =
            self.state
                .record_client_quota(quota_key, &self.user, &self.client_id, bytes, now_ms);
        self.mute(now_ms, throttle_time_ms);
        throttle_time_ms
    }

    /// Stops reading the connection for `throttle_time_ms` from `now_ms`.
    fn mute(&self, now_ms: i64, throttle_time_ms: i32) {
        if throttle_time_ms > 0 {
            self.muted_until_ms
                .fetch_max(now_ms + i64::from(throttle_time_ms), Ordering::Relaxed);
        }
    }

    /// The throttle time the client's `request_percentage` quota asks for now, from the
    /// handler time of its earlier requests; the connection is muted for it.
    pub fn request_throttle(&self) -> i32 {
        let now_ms = crate::handlers::produce::now_ms();
        let throttle_time_ms =
            self.state
                .request_quota_throttle_ms(&self.user, &self.client_id, now_ms);
        self.mute(now_ms, throttle_time_ms);
        throttle_time_ms
    }

    /// Records a request's handler time (the time spent inside its handler's polls).
    pub fn record_request_time(&self, spent: Duration) {
        let now_ms = crate::handlers::produce::now_ms();
        self.state
            .record_request_time(&self.user, &self.client_id, spent, now_ms);
    }
}

/// One CreateTopics, CreatePartitions or DeleteTopics request's charges to its client's
/// `controller_mutation_rate` quota (KIP-599). Strict from the versions Kafka makes it
/// strict: once the bucket is in debt, a topic is refused with THROTTLING_QUOTA_EXCEEDED;
/// permissive before: every topic is accepted and the response only throttled.
#[derive(Debug)]
pub struct ControllerMutationQuota {
    client: Option<QuotaClient>,
    strict: bool,
    throttle_time_ms: AtomicI32,
}

impl ControllerMutationQuota {
    /// The quota of the request `client` sent (`None`: no client quota is set); strict
    /// when the request's version is at least `strict_since_version`.
    pub fn new(client: Option<QuotaClient>, api_version: i16, strict_since_version: i16) -> Self {
        ControllerMutationQuota {
            client,
            strict: api_version >= strict_since_version,
            throttle_time_ms: AtomicI32::new(0),
        }
    }

    /// Whether a client quota is set at all (else charging is a no-op).
    pub fn applies(&self) -> bool {
        self.client.is_some()
    }

    /// Charges one topic's `partitions`, after every other check of the topic passed and
    /// before it is changed, as Kafka's controller charges it. Refused: the error the topic
    /// is answered with; the connection is muted for the throttle time either way.
    pub fn charge(&self, partitions: i32) -> Result<(), ApiError> {
        let Some(client) = &self.client else {
            return Ok(());
        };
        let now_ms = crate::handlers::produce::now_ms();
        let charged = client.state.charge_controller_mutation(
            &client.user,
            &client.client_id,
            partitions,
            self.strict,
            now_ms,
        );
        let throttle_time_ms = match charged {
            Ok(t) | Err(t) => t,
        };
        self.throttle_time_ms
            .fetch_max(throttle_time_ms, Ordering::Relaxed);
        client.mute(now_ms, throttle_time_ms);
        match charged {
            Ok(_) => Ok(()),
            Err(_) => Err(ApiError::new(
                ResponseError::ThrottlingQuotaExceeded,
                "The throttling quota has been exceeded.",
            )),
        }
    }

    /// The throttle time the charges asked for, for the response's `throttle_time_ms`.
    pub fn throttle_time_ms(&self) -> i32 {
        self.throttle_time_ms.load(Ordering::Relaxed)
    }
}
