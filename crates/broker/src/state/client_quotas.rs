//! Client quotas on [`BrokerState`]: described and altered through the catalog (on disk
//! before a change is answered), and the rates produce and fetch are throttled by.
//!
//! The quotas each request looks its limit up in are a copy of the catalog's, replaced
//! after each change, so that lookup never waits on the catalog lock (held across file
//! writes).

use std::collections::BTreeMap;
use std::sync::atomic::{AtomicI64, Ordering};
use std::sync::Arc;

use parking_lot::{Mutex, RwLock};
use weir_meta::client_quotas::{
    self, ClientQuotas, FilterComponent, QuotaAlteration, QuotaEntity, RequestEntity,
};
use weir_meta::MetaError;

use super::{ApiError, BrokerState};
use crate::quota_throttle::QuotaRates;

/// The quotas requests are checked against, and their measured rates.
#[derive(Debug, Default)]
pub struct QuotaState {
    quotas: RwLock<Arc<ClientQuotas>>,
    rates: Mutex<QuotaRates>,
}

impl QuotaState {
    pub fn new(quotas: &ClientQuotas) -> QuotaState {
        QuotaState {
            quotas: RwLock::new(Arc::new(quotas.clone())),
            rates: Mutex::default(),
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
        if let Err(e) = self.persist_catalog(&catalog) {
            // Memory stays what the disk holds.
            catalog.client_quotas = before;
            return Err(e.into());
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
        if throttle_time_ms > 0 {
            self.muted_until_ms
                .fetch_max(now_ms + i64::from(throttle_time_ms), Ordering::Relaxed);
        }
        throttle_time_ms
    }
}
