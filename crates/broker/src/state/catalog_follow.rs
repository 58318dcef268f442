//! Taking a catalog another broker committed: in a cluster every broker keeps a copy of
//! the one catalog, and a change committed elsewhere reaches this broker as a newer
//! version of it. The storage engine is told which partitions came and went and which
//! topic configs changed; the copies the request path reads without the catalog lock
//! (ACLs, client quotas, telemetry subscriptions) are replaced; the group coordinator
//! gets the group configs that changed.

use std::collections::BTreeSet;
use std::sync::Arc;

use weir_log::store::Opening;
use weir_meta::Catalog;

use super::{log_config_for, ApiError, BrokerState};

impl BrokerState {
    /// Takes `next` if it is newer than the catalog this broker holds; returns whether it
    /// did. An engine refusing a change fails the call, leaving the older catalog in place
    /// (the next newer version tries again).
    /// Reads the stored catalog afresh and takes it if it is newer (a shared store only):
    /// for a client naming a topic this broker does not know yet, which another broker may
    /// have just created. Failures leave the catalog as it is; the follower catches up.
    pub fn catch_up_catalog(self: &Arc<Self>) {
        match self.catalog_store.latest() {
            Ok(Some(latest)) => {
                if let Err(e) = self.adopt_catalog(latest) {
                    tracing::warn!(error = %e.message, "taking the stored catalog failed");
                }
            }
            Ok(None) => {}
            Err(e) => tracing::debug!(error = %e, "reading the stored catalog failed"),
        }
    }

    pub fn adopt_catalog(self: &Arc<Self>, mut next: Catalog) -> Result<bool, ApiError> {
        let mut catalog = self.catalog.lock();
        if next.version <= catalog.version {
            return Ok(false);
        }
        assert_eq!(
            next.cluster_id, catalog.cluster_id,
            "a catalog of another cluster"
        );
        // 1. Partitions and topic configs, in the engine.
        let lifecycle = self.lifecycle();
        for (name, old) in &catalog.topics {
            match next.topics.get(name) {
                Some(new) if new.id == old.id => {
                    if new.partitions > old.partitions {
                        lifecycle.open_partitions(
                            name,
                            new.id,
                            old.partitions..new.partitions,
                            &log_config_for(new),
                            Opening::Existing,
                        )?;
                    }
                    if new.configs != old.configs {
                        lifecycle.set_config(name, new.id, &log_config_for(new));
                    }
                }
                // Deleted, or deleted and made again under the name (a new id).
                _ => {
                    self.traffic.forget_topic(old.id);
                    lifecycle.delete_topic(name, old.id)?;
                }
            }
        }
        for (name, new) in &next.topics {
            if catalog.topics.get(name).map(|t| t.id) != Some(new.id) {
                lifecycle.open_partitions(
                    name,
                    new.id,
                    0..new.partitions,
                    &log_config_for(new),
                    Opening::Existing,
                )?;
            }
        }
        // 2. The catalog itself, keeping what is this broker's own: its producer id block
        //    and its `allow.everyone.if.no.acl.found` setting.
        next.keep_producer_id_block_of(&catalog);
        next.acls
            .set_allow_everyone_if_no_acl_found(catalog.acls.allow_everyone_if_no_acl_found());
        let changed_groups: BTreeSet<String> = catalog
            .group_configs
            .keys()
            .chain(next.group_configs.keys())
            .filter(|g| catalog.group_configs.get(*g) != next.group_configs.get(*g))
            .cloned()
            .collect();
        *catalog = next;
        // 3. The copies read without the catalog lock.
        *self.authorizer.acls.write() = Arc::new(catalog.acls.clone());
        self.quotas.set(&catalog.client_quotas);
        drop(catalog);
        self.telemetry.set_subscriptions(self.subscriptions());
        if let Some(groups) = self.groups() {
            for group_id in changed_groups {
                groups.push_group_config(self, group_id);
            }
        }
        Ok(true)
    }

    /// A copy of the catalog as this broker holds it now.
    pub fn catalog_copy(&self) -> Catalog {
        self.catalog.lock().clone()
    }
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeMap;

    use uuid::Uuid;
    use weir_log::store::TopicPartition;

    use super::*;
    use crate::config::BrokerConfig;

    fn tp(state: &BrokerState, topic: &str, partition: i32) -> TopicPartition {
        state
            .topic_partition(topic, partition)
            .expect("in the catalog")
    }

    #[test]
    fn a_newer_catalog_opens_drops_and_reconfigures_partitions() {
        // Goal: a catalog committed elsewhere reaches the engine: a new topic's
        // partitions are served, added partitions too, a changed config reaches the logs,
        // a deleted topic's partitions are gone, new ACLs are enforced at once, and an
        // older or equal version changes nothing.
        let dir = tempfile::tempdir().unwrap();
        let config = BrokerConfig::new("127.0.0.1:0".parse().unwrap(), dir.path().into());
        let state = BrokerState::open(config).unwrap();
        state
            .create_topic("old", 1, 1, BTreeMap::new(), false, true)
            .unwrap();

        let mut next = state.catalog_copy();
        next.create_topic("orders", Uuid::new_v4(), 2, 1, BTreeMap::new(), false)
            .unwrap();
        next.set_partitions("orders", 3).unwrap();
        next.delete_topic("old").unwrap();
        let stale = next.clone();
        next.version += 1;
        assert!(state.adopt_catalog(next.clone()).unwrap());
        let admin = state.log_admin();
        assert!(admin.status(&tp(&state, "orders", 2)).is_some());
        assert!(state.topic("old").is_none());
        let gone = TopicPartition {
            topic: "old".into(),
            topic_id: Uuid::nil(),
            partition: 0,
        };
        assert!(
            admin.status(&gone).is_none(),
            "the deleted topic's log is gone"
        );
        assert!(!state.adopt_catalog(stale).unwrap(), "not newer");

        // A config change reaches the log: a smaller max.message.bytes refuses a batch.
        let mut next = state.catalog_copy();
        next.replace_configs(
            "orders",
            BTreeMap::from([("max.message.bytes".to_string(), "100".to_string())]),
        )
        .unwrap();
        next.version += 1;
        assert!(state.adopt_catalog(next).unwrap());
        let records = weir_log::batch::encode_batch(
            &[weir_log::batch::NewRecord {
                key: None,
                value: Some(vec![7u8; 500].into()),
                timestamp_ms: crate::handlers::produce::now_ms(),
            }],
            None,
            kafka_protocol::records::Compression::None,
        )
        .unwrap();
        let results = futures::executor::block_on(state.store().append(
            vec![weir_log::store::PartitionWrite {
                tp: tp(&state, "orders", 0),
                records: bytes::BytesMut::from(&records[..]),
            }],
            weir_log::store::Acks::Leader,
            crate::handlers::produce::now_ms(),
        ));
        assert!(
            matches!(
                &results[0],
                Err(weir_log::store::Refused::Log {
                    error: weir_log::LogError::RecordTooLarge { .. },
                    ..
                })
            ),
            "{results:?}"
        );
    }
}
