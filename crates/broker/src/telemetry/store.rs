//! [`TelemetryStore`]: the latest metric values each client instance pushed, in memory and
//! bounded. The HTTP console will read it through [`TelemetryStore::clients`] and
//! [`TelemetryStore::client`]; nothing is written to disk, so a restart starts it empty.

use std::collections::BTreeMap;

use uuid::Uuid;

use super::otlp::{MetricValue, Sample};

/// Client instances kept; past this, the one that pushed longest ago is dropped.
pub const TELEMETRY_CLIENTS_MAX: usize = 1_024;
/// Metric series kept per client instance; past this, the series updated longest ago is
/// dropped. A Java producer sends about 60 series per broker it talks to.
pub const TELEMETRY_SERIES_PER_CLIENT_MAX: usize = 2_048;

/// Who a client instance is, as its connection and its pushes say.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ClientIdentity {
    pub client_id: String,
    pub client_software_name: String,
    pub client_software_version: String,
    pub client_source_address: String,
}

/// One series' latest value.
#[derive(Debug, Clone, PartialEq)]
pub struct SeriesValue {
    pub value: MetricValue,
    /// The sample's own time, as the client stamped it.
    pub time_unix_nano: u64,
    /// When the broker received it.
    pub received_ms: i64,
    /// Order of updates within this client, to find the series updated longest ago.
    update_seq: u64,
}

/// What one client instance pushed.
#[derive(Debug, Clone, PartialEq)]
pub struct ClientTelemetry {
    pub client_instance_id: Uuid,
    pub identity: ClientIdentity,
    /// The resource attributes of its latest push (the client's own description).
    pub resource: Vec<(String, String)>,
    pub pushes: u64,
    pub last_push_ms: i64,
    /// Series name -> latest value, at most [`TELEMETRY_SERIES_PER_CLIENT_MAX`].
    pub series: BTreeMap<String, SeriesValue>,
    update_seq: u64,
}

impl ClientTelemetry {
    fn record(&mut self, sample: Sample, now_ms: i64) {
        self.update_seq += 1;
        let seq = self.update_seq;
        if !self.series.contains_key(&sample.series)
            && self.series.len() >= TELEMETRY_SERIES_PER_CLIENT_MAX
        {
            let oldest = self
                .series
                .iter()
                .min_by_key(|(_, v)| v.update_seq)
                .map(|(k, _)| k.clone())
                .expect("the map is full, so not empty");
            self.series.remove(&oldest);
        }
        self.series.insert(
            sample.series,
            SeriesValue {
                value: sample.value,
                time_unix_nano: sample.time_unix_nano,
                received_ms: now_ms,
                update_seq: seq,
            },
        );
        assert!(self.series.len() <= TELEMETRY_SERIES_PER_CLIENT_MAX);
    }
}

/// The store. Not thread-safe by itself: the broker keeps it behind a lock.
#[derive(Debug, Default)]
pub struct TelemetryStore {
    clients: BTreeMap<Uuid, ClientTelemetry>,
}

impl TelemetryStore {
    /// Keeps one push's samples as the latest values of `client_instance_id`. Returns true
    /// when this is the first push the store holds for that instance.
    pub fn record_push(
        &mut self,
        client_instance_id: Uuid,
        identity: &ClientIdentity,
        resource: Vec<(String, String)>,
        samples: Vec<Sample>,
        now_ms: i64,
    ) -> bool {
        let new = !self.clients.contains_key(&client_instance_id);
        if new && self.clients.len() >= TELEMETRY_CLIENTS_MAX {
            let oldest = self
                .clients
                .values()
                .min_by_key(|c| c.last_push_ms)
                .map(|c| c.client_instance_id)
                .expect("the store is full, so not empty");
            self.clients.remove(&oldest);
        }
        let client = self
            .clients
            .entry(client_instance_id)
            .or_insert_with(|| ClientTelemetry {
                client_instance_id,
                identity: identity.clone(),
                resource: Vec::new(),
                pushes: 0,
                last_push_ms: now_ms,
                series: BTreeMap::new(),
                update_seq: 0,
            });
        client.identity = identity.clone();
        if !resource.is_empty() {
            client.resource = resource;
        }
        client.pushes += 1;
        client.last_push_ms = now_ms;
        for s in samples {
            client.record(s, now_ms);
        }
        assert!(self.clients.len() <= TELEMETRY_CLIENTS_MAX);
        new
    }

    /// Every client instance kept, by id.
    pub fn clients(&self) -> Vec<&ClientTelemetry> {
        self.clients.values().collect()
    }

    /// One client instance's telemetry, if the store keeps it.
    pub fn client(&self, client_instance_id: Uuid) -> Option<&ClientTelemetry> {
        self.clients.get(&client_instance_id)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sample(series: &str, v: i64) -> Sample {
        Sample {
            series: series.to_string(),
            time_unix_nano: 1,
            value: MetricValue::Int(v),
        }
    }

    #[test]
    fn keeps_the_latest_value_of_each_series() {
        // Goal: a second push replaces a series' value and counts as a push, not a client.
        let mut store = TelemetryStore::default();
        let id = Uuid::from_u128(1);
        let who = ClientIdentity {
            client_id: "app".into(),
            ..Default::default()
        };
        assert!(store.record_push(id, &who, vec![], vec![sample("a", 1), sample("b", 1)], 10));
        assert!(!store.record_push(id, &who, vec![], vec![sample("a", 2)], 20));
        let c = store.client(id).unwrap();
        assert_eq!(c.pushes, 2);
        assert_eq!(c.last_push_ms, 20);
        assert_eq!(c.series["a"].value, MetricValue::Int(2));
        assert_eq!(c.series["b"].value, MetricValue::Int(1));
        assert_eq!(c.identity.client_id, "app");
    }

    #[test]
    fn drops_the_oldest_client_and_series_past_the_caps() {
        // Goal: neither the clients nor one client's series grow past their caps; what is
        // dropped is what was pushed or updated longest ago.
        let mut store = TelemetryStore::default();
        let who = ClientIdentity::default();
        for i in 0..TELEMETRY_CLIENTS_MAX as u128 {
            store.record_push(Uuid::from_u128(i), &who, vec![], vec![], i as i64);
        }
        // Client 0 pushes again, so client 1 is now the oldest.
        store.record_push(Uuid::from_u128(0), &who, vec![], vec![], 5_000);
        store.record_push(Uuid::from_u128(99_999), &who, vec![], vec![], 5_001);
        assert_eq!(store.clients().len(), TELEMETRY_CLIENTS_MAX);
        assert!(store.client(Uuid::from_u128(1)).is_none());
        assert!(store.client(Uuid::from_u128(0)).is_some());

        let id = Uuid::from_u128(0);
        let samples = (0..TELEMETRY_SERIES_PER_CLIENT_MAX)
            .map(|i| sample(&format!("s{i}"), 0))
            .collect();
        store.record_push(id, &who, vec![], samples, 6_000);
        // s0 is updated, so s1 is the one updated longest ago.
        store.record_push(
            id,
            &who,
            vec![],
            vec![sample("s0", 1), sample("new", 1)],
            7_000,
        );
        let c = store.client(id).unwrap();
        assert_eq!(c.series.len(), TELEMETRY_SERIES_PER_CLIENT_MAX);
        assert!(c.series.contains_key("new"));
        assert!(c.series.contains_key("s0"));
        assert!(!c.series.contains_key("s1"));
    }
}
