//! Client telemetry (KIP-714): clients ask which metrics to push
//! (GetTelemetrySubscriptions), then push them (PushTelemetry) as OTLP metrics, possibly
//! compressed. weir is a broker with a telemetry receiver: it keeps the latest values each
//! client instance pushed, where Kafka hands them to a metrics-reporter plugin.
//!
//! Layout:
//! - [`instances`]: the client instances, the subscription each was given, and the rules
//!   of both APIs (pure).
//! - [`otlp`]: decoding the pushed OTLP metrics.
//! - [`store`]: [`store::TelemetryStore`], the bounded latest values the console will read.
//!
//! [`Telemetry`] holds the first and the last behind locks; the handlers are in
//! `handlers/telemetry.rs`.

pub mod instances;
pub mod otlp;
pub mod store;

use parking_lot::Mutex;
use uuid::Uuid;
use weir_meta::client_metrics::Subscription;
use weir_wire::ResponseError;

use crate::state::ApiError;
use instances::{
    AcceptedPush, ClientFacts, ClientInstances, GivenSubscription, TELEMETRY_MAX_BYTES,
};
use store::{ClientIdentity, TelemetryStore};

/// The broker's telemetry: client instances and what they pushed. Each lock is held for
/// one step, never across an await.
#[derive(Debug, Default)]
pub struct Telemetry {
    instances: Mutex<ClientInstances>,
    store: Mutex<TelemetryStore>,
}

impl Telemetry {
    /// Replaces the client-metrics subscriptions clients are matched against.
    pub fn set_subscriptions(&self, subscriptions: Vec<Subscription>) {
        self.instances.lock().set_subscriptions(subscriptions);
    }

    /// GetTelemetrySubscriptions for a client: `requested` is the request's instance id.
    pub fn get_subscription(
        &self,
        requested: Uuid,
        facts: &ClientFacts,
        now_ms: i64,
    ) -> Result<GivenSubscription, ApiError> {
        let mut instances = self.instances.lock();
        let mut fresh = Uuid::new_v4();
        while instances.contains(fresh) {
            fresh = Uuid::new_v4();
        }
        instances.get_subscription(requested, fresh, facts, now_ms)
    }

    /// PushTelemetry: the rules, then the payload decompressed, decoded and kept.
    #[allow(clippy::too_many_arguments)]
    pub fn push(
        &self,
        id: Uuid,
        subscription_id: i32,
        terminating: bool,
        compression_type: i8,
        payload: &[u8],
        facts: &ClientFacts,
        now_ms: i64,
    ) -> Result<(), ApiError> {
        // 1. The rules of the API (interval, subscription id, compression type, size).
        let accepted = self.instances.lock().check_push(
            id,
            subscription_id,
            terminating,
            compression_type,
            payload.len(),
            facts,
            now_ms,
        )?;
        if payload.is_empty() {
            return Ok(());
        }
        // 2. The payload: decompressed within the same bound, then decoded. Kafka answers
        // a payload its receiver cannot read with INVALID_RECORD, which tells the client
        // to stop pushing; one too large once decompressed with TELEMETRY_TOO_LARGE.
        let read =
            weir_log::codec::decompress(compression_type, payload, TELEMETRY_MAX_BYTES as usize)
                .map_err(|e| match e {
                    weir_log::LogError::DecompressedTooLarge { .. } => {
                        ApiError::new(ResponseError::TelemetryTooLarge, e.to_string())
                    }
                    other => ApiError::new(ResponseError::InvalidRecord, other.to_string()),
                })
                .and_then(|bytes| {
                    otlp::decode(&bytes).map_err(|e| {
                        ApiError::new(
                            ResponseError::InvalidRecord,
                            format!("the pushed metrics are not OTLP metrics: {e}"),
                        )
                    })
                });
        let (samples, resource) = match read {
            Ok(r) => r,
            Err(e) => {
                self.instances.lock().payload_refused(id);
                return Err(e);
            }
        };
        // 3. Kept as the instance's latest values.
        let AcceptedPush { facts, .. } = accepted;
        let identity = ClientIdentity {
            client_id: facts.client_id.clone(),
            client_software_name: facts.client_software_name.clone(),
            client_software_version: facts.client_software_version.clone(),
            client_source_address: facts.client_source_address.clone(),
        };
        let series = samples.len();
        let first = self
            .store
            .lock()
            .record_push(id, &identity, resource, samples, now_ms);
        if first {
            tracing::info!(
                client_instance_id = %instances::kafka_uuid_string(id),
                client_id = %identity.client_id,
                software = %format!("{}/{}", identity.client_software_name, identity.client_software_version),
                series,
                "client instance {} (client id {}) pushes telemetry",
                instances::kafka_uuid_string(id),
                identity.client_id,
            );
        }
        Ok(())
    }

    /// The store of pushed metrics, for readers such as the console. The guard must not be
    /// held across an await.
    pub fn store(&self) -> parking_lot::MutexGuard<'_, TelemetryStore> {
        self.store.lock()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use bytes::BytesMut;
    use kafka_protocol::compression::{Compressor, Zstd};
    use weir_log::codec::COMPRESSION_ZSTD;

    #[test]
    fn a_compressed_push_lands_in_the_store_and_garbage_is_an_invalid_record() {
        // Goal: a zstd-compressed OTLP push is decompressed, decoded and kept; a payload
        // that is not OTLP is INVALID_RECORD and keeps nothing.
        let t = Telemetry::default();
        let facts = ClientFacts {
            client_id: "app".into(),
            ..Default::default()
        };
        let g = t.get_subscription(Uuid::nil(), &facts, 1_000).unwrap();
        let mut payload = BytesMut::new();
        Zstd::compress(&mut payload, |b: &mut BytesMut| {
            b.extend_from_slice(&otlp::tests::payload(5));
            Ok(())
        })
        .unwrap();
        let id = g.client_instance_id;
        t.push(
            id,
            g.subscription_id,
            false,
            COMPRESSION_ZSTD,
            &payload,
            &facts,
            1_001,
        )
        .unwrap();
        let store = t.store();
        let c = store.client(id).unwrap();
        assert_eq!(c.identity.client_id, "app");
        assert_eq!(
            c.series["org.apache.kafka.producer.record.send.total"].value,
            otlp::MetricValue::Int(5)
        );
        drop(store);
        let other = t.get_subscription(Uuid::nil(), &facts, 2_000).unwrap();
        let e = t
            .push(
                other.client_instance_id,
                other.subscription_id,
                false,
                0,
                b"\xff\xff\xff",
                &facts,
                2_001,
            )
            .unwrap_err();
        assert_eq!(e.code, ResponseError::InvalidRecord.code());
        assert!(t.store().client(other.client_instance_id).is_none());
    }
}
