//! `PartitionIds`: the `partitions` row of each partition the broker names, cached.
//!
//! The broker names a partition by topic id and index ([`TopicPartition`]); the tables
//! that order records (`chunks`, `producer_state`, `aborted_txns`) use the row's
//! `partition_id`. The row is made by the catalog commit that creates the topic (or adds
//! partitions) and never changes its id, so a found id is cached for good; a deleted
//! partition (`deleted_at` set) is not found, and is dropped from the cache by
//! [`PartitionIds::forget_topic`] when the catalog deletes its topic.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;

use parking_lot::Mutex;
use uuid::Uuid;
use weir_log::store::TopicPartition;

use crate::error::ClusterError;
use crate::pg::Session;

/// How long the lookup of uncached partitions may take.
pub const LOOKUP_TIMEOUT: Duration = Duration::from_secs(5);

/// Partition ids by (topic id, partition index).
pub struct PartitionIds {
    session: Arc<Session>,
    cache: Mutex<HashMap<(Uuid, i32), i64>>,
}

impl PartitionIds {
    pub fn new(session: Arc<Session>) -> PartitionIds {
        PartitionIds {
            session,
            cache: Mutex::new(HashMap::new()),
        }
    }

    /// The cached id, without I/O.
    pub fn cached(&self, tp: &TopicPartition) -> Option<i64> {
        self.cache.lock().get(&(tp.topic_id, tp.partition)).copied()
    }

    /// The id of each partition in `tps` (in their order), `None` for one with no live
    /// row; one query for all the uncached ones.
    pub async fn ids(&self, tps: &[&TopicPartition]) -> Result<Vec<Option<i64>>, ClusterError> {
        let mut found: Vec<Option<i64>> = tps.iter().map(|tp| self.cached(tp)).collect();
        let missing: Vec<usize> = (0..tps.len()).filter(|&i| found[i].is_none()).collect();
        if missing.is_empty() {
            return Ok(found);
        }
        let topic_ids: Vec<Uuid> = missing.iter().map(|&i| tps[i].topic_id).collect();
        let indexes: Vec<i32> = missing.iter().map(|&i| tps[i].partition).collect();
        let session = &self.session;
        let rows = session
            .bounded("the lookup of partition ids", LOOKUP_TIMEOUT, async {
                let client = session.client().await?;
                Ok(client
                    .query(
                        "SELECT p.topic_id, p.partition, p.partition_id \
                         FROM partitions p \
                         JOIN unnest($1::uuid[], $2::int[]) AS want(topic_id, partition) \
                           ON p.topic_id = want.topic_id AND p.partition = want.partition \
                         WHERE p.deleted_at IS NULL",
                        &[&topic_ids, &indexes],
                    )
                    .await?)
            })
            .await?;
        let mut cache = self.cache.lock();
        for row in rows {
            cache.insert((row.get(0), row.get(1)), row.get(2));
        }
        for i in missing {
            found[i] = cache.get(&(tps[i].topic_id, tps[i].partition)).copied();
        }
        Ok(found)
    }

    /// The id of one partition, `None` if it has no live row.
    pub async fn id(&self, tp: &TopicPartition) -> Result<Option<i64>, ClusterError> {
        Ok(self.ids(&[tp]).await?[0])
    }

    /// Drops the cached ids of a deleted topic; returns them.
    pub fn forget_topic(&self, topic_id: Uuid) -> Vec<i64> {
        let mut forgotten = Vec::new();
        self.cache.lock().retain(|(id, _), partition_id| {
            let keep = *id != topic_id;
            if !keep {
                forgotten.push(*partition_id);
            }
            keep
        });
        forgotten
    }
}
