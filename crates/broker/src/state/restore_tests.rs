//! A catalog change whose commit the store refuses leaves the broker as it was.

use std::collections::BTreeMap;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;

use weir_meta::{Catalog, CatalogStore, MetaError};

use super::*;
use crate::config::BrokerConfig;

/// A store that takes every commit until told to refuse them (as PostgreSQL refuses a
/// change decided on a stale catalog).
struct Switchable {
    refuse: Arc<AtomicBool>,
}

impl CatalogStore for Switchable {
    fn commit(&self, catalog: &Catalog) -> Result<u64, MetaError> {
        if self.refuse.load(Ordering::SeqCst) {
            return Err(MetaError::CatalogConflict);
        }
        Ok(catalog.version + 1)
    }
}

#[test]
fn a_refused_commit_leaves_topics_configs_and_producer_ids_as_they_were() {
    // Goal: when the store refuses a change, the topic is still there (delete), keeps its
    // partition count (add partitions) and its configs (alter configs), and no producer id
    // of an unstored block is handed out; once the store takes commits again, each change
    // goes through.
    let dir = tempfile::tempdir().unwrap();
    let config = BrokerConfig::new("127.0.0.1:0".parse().unwrap(), dir.path().into());
    let metrics = crate::metrics::BrokerMetrics::default();
    let logs = LocalLog::new(&config.data_dir, config.fsync, metrics.fsync_observer());
    let refuse = Arc::new(AtomicBool::new(false));
    let store = Switchable {
        refuse: refuse.clone(),
    };
    let membership = Arc::new(SingleNode {
        node_id: config.node_id,
    });
    let parts = BrokerParts {
        catalog: Catalog::new("restore-test".into()),
        catalog_store: Box::new(store),
        engine: Arc::new(logs),
        membership,
        producer_ids: ProducerIds::CatalogBlocks,
    };
    let state = BrokerState::assemble(config, parts, metrics);
    let configs = BTreeMap::from([("retention.ms".to_string(), "1000".to_string())]);
    state
        .create_topic("orders", 2, 1, configs.clone(), false, true)
        .unwrap();
    let first_id = state.allocate_producer_id().unwrap();
    let stored = state.catalog_copy();

    refuse.store(true, Ordering::SeqCst);
    assert!(state.delete_topic("orders").is_err());
    assert!(state.add_partitions("orders", 5).is_err());
    let other = BTreeMap::from([("retention.ms".to_string(), "5".to_string())]);
    assert!(state
        .set_topic_configs("orders", other.clone(), true)
        .is_err());
    let topic = state.topic("orders").expect("not deleted");
    assert_eq!(topic.partitions, 2);
    assert_eq!(topic.configs, configs);
    assert!(state.topic_partition("orders", 1).is_some());
    // Use up the stored block; the next id needs a new block, which is refused.
    let mut refused_at = None;
    for _ in 0..=weir_meta::catalog::PRODUCER_ID_BLOCK_SIZE {
        if let Err(e) = state.allocate_producer_id() {
            refused_at = Some(e);
            break;
        }
    }
    assert!(refused_at.is_some(), "a new block needs a commit");
    let restored = state.catalog_copy();
    assert_eq!(restored.topics, stored.topics);
    assert_eq!(restored.version, stored.version);

    refuse.store(false, Ordering::SeqCst);
    let next_id = state.allocate_producer_id().unwrap();
    assert!(next_id >= first_id + weir_meta::catalog::PRODUCER_ID_BLOCK_SIZE);
    state
        .set_topic_configs("orders", other.clone(), true)
        .unwrap();
    assert_eq!(state.topic("orders").unwrap().configs, other);
    state.add_partitions("orders", 5).unwrap();
    assert!(state.topic_partition("orders", 4).is_some());
    state.delete_topic("orders").unwrap();
    assert!(state.topic("orders").is_none());
}
