//! The commit of one flush: one PostgreSQL transaction that decides, for every write of
//! the flush in the order they were queued, whether it is stored, a duplicate or refused,
//! and records the outcome.
//!
//! Steps:
//! 0. when the flush holds coordinators' writes and the engine is fenced
//!    ([`super::CoordinatorFence`]), ask whether this broker is the controller by
//!    PostgreSQL's view: the live broker with the smallest node id, under this broker's
//!    incarnation; if not, those writes are refused with NOT_COORDINATOR (the others go on);
//! 1. lock the flush's `partitions` rows, in `partition_id` order so that two brokers
//!    committing the same partitions cannot deadlock;
//! 2. load the `producer_state` rows of the producers the flush names;
//! 3. [`plan`] (no I/O): Kafka's idempotence checks per write, with weir-log's
//!    `ProducerStateTable`, exactly as the local engine runs them; offsets from
//!    `next_offset`; one `chunks` row per run of accepted bytes;
//! 4. insert the `chunks` rows, update `partitions` and `producer_state`, insert the
//!    aborted transactions markers ended, recompute the first unstable offset of the
//!    partitions that took markers, mark the object live (or, when no chunk points at it,
//!    deleting), notify `weir_appended`, commit.

use std::collections::{BTreeMap, BTreeSet, HashMap, VecDeque};

use serde_json::json;
use tokio_postgres::types::ToSql;
use tokio_postgres::Client;
use weir_log::batch::BatchHeader;
use weir_log::producer::{CachedBatch, ProducerEntry, ProducerStateTable, SequenceCheck};
use weir_log::LogError;

use super::{CoordinatorFence, QueuedMarker};
use crate::error::ClusterError;
use crate::notify::CHANNEL_APPENDED;

/// The largest `pg_notify` payload sent; PostgreSQL refuses more than 8000 bytes.
pub(super) const NOTIFY_PAYLOAD_BYTES_MAX: usize = 7000;

/// One write of the flush, as the commit sees it.
#[derive(Debug, Clone)]
pub(super) struct CommitWrite {
    pub partition_id: i64,
    pub headers: Vec<BatchHeader>,
    /// Where the write's first batch lies in the object; its batches follow one another.
    pub position: u64,
    /// Set for a transaction marker (one control batch).
    pub marker: Option<QueuedMarker>,
    /// A coordinator's write, refused unless this broker is the controller.
    pub coordinator: bool,
}

/// A partition's row, as locked.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) struct PartitionRow {
    pub next_offset: i64,
    pub log_start_offset: i64,
    pub size_bytes: i64,
    pub first_unstable_offset: Option<i64>,
}

/// What became of one write.
#[derive(Debug)]
pub(super) enum WriteOutcome {
    Stored {
        base_offset: i64,
        last_offset: i64,
        log_start_offset: i64,
        duplicate: bool,
    },
    Refused {
        error: LogError,
        log_start_offset: i64,
    },
    /// The partition's row is gone (deleted since the lookup).
    UnknownPartition,
}

/// One `chunks` row: a run of accepted batches of one partition, contiguous in the object
/// and in offsets.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) struct ChunkRow {
    pub partition_id: i64,
    pub base_offset: i64,
    pub last_offset: i64,
    pub position: u64,
    pub size_bytes: u64,
    pub batch_count: u32,
    pub max_timestamp: i64,
}

/// Everything the transaction writes, decided before it writes.
#[derive(Debug, Default)]
pub(super) struct Plan {
    pub outcomes: Vec<WriteOutcome>,
    pub chunks: Vec<ChunkRow>,
    /// The partitions that took records, with their new rows.
    pub partitions: BTreeMap<i64, PartitionRow>,
    /// The producer states changed: (partition id, producer id) -> entry.
    pub producers: BTreeMap<(i64, i64), ProducerEntry>,
    /// Transactions ended by abort markers: `aborted_txns` rows.
    pub aborted: Vec<AbortedRow>,
    /// The partitions that took markers, whose first unstable offset is recomputed from
    /// all their producers' open transactions (the plan sees only the flush's producers).
    pub marked: BTreeSet<i64>,
    pub records_committed: u64,
    pub batches_committed: u64,
}

/// One `aborted_txns` row.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) struct AbortedRow {
    pub partition_id: i64,
    pub producer_id: i64,
    pub first_offset: i64,
    /// The abort marker's offset.
    pub last_offset: i64,
}

/// Decides the outcome of every write in order, against the locked `rows` and the loaded
/// producer `states` (one table per partition). `not_controller` says why coordinators'
/// writes are refused, when they are. Pure: the transaction writes what it says.
pub(super) fn plan(
    writes: &[CommitWrite],
    rows: &HashMap<i64, PartitionRow>,
    mut states: HashMap<i64, ProducerStateTable>,
    not_controller: Option<&str>,
) -> Plan {
    let mut plan = Plan::default();
    // The chunk row each partition's last accepted run went into, to extend.
    let mut last_chunk: HashMap<i64, usize> = HashMap::new();
    for write in writes {
        let Some(row) = plan
            .partitions
            .get(&write.partition_id)
            .or_else(|| rows.get(&write.partition_id))
            .copied()
        else {
            plan.outcomes.push(WriteOutcome::UnknownPartition);
            continue;
        };
        if let Some(why) = not_controller.filter(|_| write.coordinator) {
            plan.outcomes.push(WriteOutcome::Refused {
                error: LogError::NotCoordinator(why.to_string()),
                log_start_offset: row.log_start_offset,
            });
            continue;
        }
        let table = states.entry(write.partition_id).or_default();
        if let Some(marker) = write.marker {
            // As the local engine's `append_marker`: the epochs are checked, then the
            // marker ends the producer's open transaction (if it has one) at its offset.
            let header = &write.headers[0];
            if let Err(error) = table.check_marker(
                header.producer_id,
                header.producer_epoch,
                marker.coordinator_epoch,
            ) {
                plan.outcomes.push(WriteOutcome::Refused {
                    error,
                    log_start_offset: row.log_start_offset,
                });
                continue;
            }
            let aborted = table.record_marker(
                header.producer_id,
                header.producer_epoch,
                marker.coordinator_epoch,
                marker.control_type,
                row.next_offset,
                header.max_timestamp,
            );
            if let Some(aborted) = aborted {
                plan.aborted.push(AbortedRow {
                    partition_id: write.partition_id,
                    producer_id: header.producer_id,
                    first_offset: aborted.first_offset,
                    last_offset: aborted.last_offset,
                });
            }
            plan.marked.insert(write.partition_id);
        } else {
            // As the local engine: sequence and transaction checks of all batches before
            // any is stored; a retry of one batch gets its first offsets back.
            let checks = match table.check_batches(&write.headers) {
                Ok(checks) => checks,
                Err(error) => {
                    plan.outcomes.push(WriteOutcome::Refused {
                        error,
                        log_start_offset: row.log_start_offset,
                    });
                    continue;
                }
            };
            if let [SequenceCheck::Duplicate { base_offset }] = checks[..] {
                plan.outcomes.push(WriteOutcome::Stored {
                    base_offset,
                    last_offset: base_offset + i64::from(write.headers[0].last_offset_delta),
                    log_start_offset: row.log_start_offset,
                    duplicate: true,
                });
                continue;
            }
            if checks.iter().any(|c| *c != SequenceCheck::Append) {
                plan.outcomes.push(WriteOutcome::Refused {
                    error: LogError::InvalidRecord(
                        "a retried batch was sent together with other batches".into(),
                    ),
                    log_start_offset: row.log_start_offset,
                });
                continue;
            }
        }

        // Accepted whole: assign offsets and record the batches.
        let base_offset = row.next_offset;
        let mut next = base_offset;
        let mut size_bytes = 0u64;
        let mut max_timestamp = -1i64;
        for header in &write.headers {
            let stored = BatchHeader {
                base_offset: next,
                ..*header
            };
            // A marker's producer state was recorded above, by `record_marker`.
            if write.marker.is_none() {
                table.record(&stored);
            }
            if stored.producer_id >= 0 {
                let entry = table
                    .entries()
                    .find(|(pid, _)| *pid == stored.producer_id)
                    .map(|(_, e)| e.clone())
                    .expect("just recorded");
                plan.producers
                    .insert((write.partition_id, stored.producer_id), entry);
            }
            next = stored.last_offset() + 1;
            size_bytes += header.size_bytes as u64;
            max_timestamp = max_timestamp.max(header.max_timestamp);
            plan.records_committed += u64::from(header.records_count.max(0) as u32);
            plan.batches_committed += 1;
        }
        let last_offset = next - 1;
        let first_unstable_offset = match (row.first_unstable_offset, table.first_unstable_offset())
        {
            (Some(a), Some(b)) => Some(a.min(b)),
            (a, b) => a.or(b),
        };
        plan.partitions.insert(
            write.partition_id,
            PartitionRow {
                next_offset: next,
                size_bytes: row.size_bytes + size_bytes as i64,
                first_unstable_offset,
                ..row
            },
        );
        let batch_count = write.headers.len() as u32;
        // A run goes on when this write's bytes follow the previous accepted ones of the
        // partition in the object; a refused or duplicate write between them breaks it.
        let extends = last_chunk.get(&write.partition_id).and_then(|&i| {
            let chunk = &plan.chunks[i];
            (chunk.position + chunk.size_bytes == write.position
                && chunk.last_offset + 1 == base_offset)
                .then_some(i)
        });
        match extends {
            Some(i) => {
                let chunk = &mut plan.chunks[i];
                chunk.last_offset = last_offset;
                chunk.size_bytes += size_bytes;
                chunk.batch_count += batch_count;
                chunk.max_timestamp = chunk.max_timestamp.max(max_timestamp);
            }
            None => {
                last_chunk.insert(write.partition_id, plan.chunks.len());
                plan.chunks.push(ChunkRow {
                    partition_id: write.partition_id,
                    base_offset,
                    last_offset,
                    position: write.position,
                    size_bytes,
                    batch_count,
                    max_timestamp,
                });
            }
        }
        plan.outcomes.push(WriteOutcome::Stored {
            base_offset,
            last_offset,
            log_start_offset: row.log_start_offset,
            duplicate: false,
        });
    }
    plan
}

/// The `recent` column: the producer's last batches, oldest first.
fn recent_json(batches: &VecDeque<CachedBatch>) -> serde_json::Value {
    serde_json::Value::Array(
        batches
            .iter()
            .map(|b| {
                json!({
                    "first_seq": b.first_sequence,
                    "last_seq": b.last_sequence,
                    "base_offset": b.base_offset,
                })
            })
            .collect(),
    )
}

fn recent_from_json(value: &serde_json::Value) -> Result<VecDeque<CachedBatch>, ClusterError> {
    let bad = || {
        ClusterError::Corrupt(format!(
            "producer_state.recent is not a list of batches: {value}"
        ))
    };
    let items = value.as_array().ok_or_else(bad)?;
    items
        .iter()
        .map(|item| {
            let field = |name: &str| item.get(name).and_then(serde_json::Value::as_i64);
            Ok(CachedBatch {
                first_sequence: field("first_seq").ok_or_else(bad)? as i32,
                last_sequence: field("last_seq").ok_or_else(bad)? as i32,
                base_offset: field("base_offset").ok_or_else(bad)?,
            })
        })
        .collect()
}

/// The payloads of the `weir_appended` notifications for a commit: `object_id;` then
/// `partition_id:next_offset` pairs joined by commas, as many notifications as it takes to
/// stay under [`NOTIFY_PAYLOAD_BYTES_MAX`].
pub(super) fn notify_payloads(object_id: i64, next_offsets: &[(i64, i64)]) -> Vec<String> {
    let prefix = format!("{object_id};");
    let mut payloads = Vec::new();
    let mut current = prefix.clone();
    for (partition_id, next_offset) in next_offsets {
        let pair = format!("{partition_id}:{next_offset}");
        let separator = usize::from(current.len() > prefix.len());
        if current.len() > prefix.len()
            && current.len() + separator + pair.len() > NOTIFY_PAYLOAD_BYTES_MAX
        {
            payloads.push(std::mem::replace(&mut current, prefix.clone()));
        }
        if current.len() > prefix.len() {
            current.push(',');
        }
        current.push_str(&pair);
    }
    if current.len() > prefix.len() {
        payloads.push(current);
    }
    payloads
}

/// Why this broker is not the controller by PostgreSQL's view now (the live broker with the
/// smallest node id), or `None` when it is, registered under `fence`'s incarnation.
async fn controller_refusal(
    client: &Client,
    fence: CoordinatorFence,
) -> Result<Option<String>, ClusterError> {
    let controller = client
        .query_opt(
            "SELECT node_id, incarnation FROM brokers WHERE lease_expires_at > now() \
             ORDER BY node_id LIMIT 1",
            &[],
        )
        .await?
        .map(|row| (row.get::<_, i32>(0), row.get::<_, uuid::Uuid>(1)));
    Ok(match controller {
        Some((node_id, incarnation))
            if node_id == fence.node_id && incarnation == fence.incarnation =>
        {
            None
        }
        Some((node_id, _)) if node_id == fence.node_id => Some(format!(
            "broker {node_id} registered again since this one did; find the coordinator again"
        )),
        Some((node_id, _)) => Some(format!(
            "broker {node_id} is the controller, not broker {}; find the coordinator again",
            fence.node_id
        )),
        None => Some(format!(
            "no broker holds a live lease, broker {} included; find the coordinator again",
            fence.node_id
        )),
    })
}

/// Runs the transaction on `client` (a connection used by nothing else) and returns the
/// plan it committed. On an error the caller rolls back or drops the connection.
pub(super) async fn run(
    client: &Client,
    object_id: i64,
    writes: &[CommitWrite],
    fence: Option<CoordinatorFence>,
) -> Result<Plan, ClusterError> {
    client.batch_execute("BEGIN").await?;

    // 0. Coordinators' writes need this broker to be the controller, by PostgreSQL's view
    // and clock, within this transaction.
    let not_controller = match fence {
        Some(fence) if writes.iter().any(|w| w.coordinator) => {
            controller_refusal(client, fence).await?
        }
        _ => None,
    };

    // 1. Lock the partitions, in id order.
    let mut partition_ids: Vec<i64> = writes.iter().map(|w| w.partition_id).collect();
    partition_ids.sort_unstable();
    partition_ids.dedup();
    let mut rows = HashMap::new();
    for row in client
        .query(
            "SELECT partition_id, next_offset, log_start_offset, size_bytes, first_unstable_offset \
             FROM partitions WHERE partition_id = ANY($1) AND deleted_at IS NULL \
             ORDER BY partition_id FOR UPDATE",
            &[&partition_ids],
        )
        .await?
    {
        rows.insert(
            row.get::<_, i64>(0),
            PartitionRow {
                next_offset: row.get(1),
                log_start_offset: row.get(2),
                size_bytes: row.get(3),
                first_unstable_offset: row.get(4),
            },
        );
    }

    // 2. The producers' states.
    let mut pairs: Vec<(i64, i64)> = writes
        .iter()
        .flat_map(|w| {
            w.headers
                .iter()
                .filter(|h| h.producer_id >= 0)
                .map(move |h| (w.partition_id, h.producer_id))
        })
        .collect();
    pairs.sort_unstable();
    pairs.dedup();
    let mut states: HashMap<i64, ProducerStateTable> = HashMap::new();
    if !pairs.is_empty() {
        let (pids, producer_ids): (Vec<i64>, Vec<i64>) = pairs.iter().copied().unzip();
        for row in client
            .query(
                "SELECT s.partition_id, s.producer_id, s.producer_epoch, s.recent, \
                        s.coordinator_epoch, s.txn_first_offset, s.last_timestamp \
                 FROM producer_state s \
                 JOIN unnest($1::bigint[], $2::bigint[]) AS want(partition_id, producer_id) \
                   ON s.partition_id = want.partition_id AND s.producer_id = want.producer_id",
                &[&pids, &producer_ids],
            )
            .await?
        {
            let partition_id: i64 = row.get(0);
            let producer_id: i64 = row.get(1);
            let recent: serde_json::Value = row.get(3);
            let entry = ProducerEntry {
                epoch: row.get(2),
                batches: recent_from_json(&recent)?,
                coordinator_epoch: row.get(4),
                current_txn_first_offset: row.get(5),
                last_timestamp_ms: row.get(6),
            };
            if !states
                .entry(partition_id)
                .or_default()
                .insert(producer_id, entry)
            {
                return Err(ClusterError::Corrupt(format!(
                    "producer_state of partition {partition_id}: two open transactions start \
                     at one offset"
                )));
            }
        }
    }

    // 3. Decide.
    let plan = plan(writes, &rows, states, not_controller.as_deref());

    // 4. Write it down.
    if !plan.chunks.is_empty() {
        let c = &plan.chunks;
        let partition_id: Vec<i64> = c.iter().map(|r| r.partition_id).collect();
        let base_offset: Vec<i64> = c.iter().map(|r| r.base_offset).collect();
        let last_offset: Vec<i64> = c.iter().map(|r| r.last_offset).collect();
        let position: Vec<i64> = c.iter().map(|r| r.position as i64).collect();
        // Chunks lie inside one object, which is below u32::MAX bytes and i32::MAX
        // batches.
        let size_bytes: Vec<i32> = c.iter().map(|r| r.size_bytes as i32).collect();
        let batch_count: Vec<i32> = c.iter().map(|r| r.batch_count as i32).collect();
        let max_timestamp: Vec<i64> = c.iter().map(|r| r.max_timestamp).collect();
        let params: [&(dyn ToSql + Sync); 8] = [
            &object_id,
            &partition_id,
            &base_offset,
            &last_offset,
            &position,
            &size_bytes,
            &batch_count,
            &max_timestamp,
        ];
        client
            .execute(
                "INSERT INTO chunks (partition_id, base_offset, last_offset, object_id, position, \
                                     size_bytes, batch_count, max_timestamp, offsets_in_object) \
                 SELECT t.partition_id, t.base_offset, t.last_offset, $1::bigint, t.position, \
                        t.size_bytes, t.batch_count, t.max_timestamp, false \
                 FROM unnest($2::bigint[], $3::bigint[], $4::bigint[], $5::bigint[], $6::int[], \
                             $7::int[], $8::bigint[]) \
                   AS t(partition_id, base_offset, last_offset, position, size_bytes, \
                        batch_count, max_timestamp)",
                &params,
            )
            .await?;
    }
    if !plan.partitions.is_empty() {
        let p = &plan.partitions;
        let partition_id: Vec<i64> = p.keys().copied().collect();
        let next_offset: Vec<i64> = p.values().map(|r| r.next_offset).collect();
        let size_bytes: Vec<i64> = p.values().map(|r| r.size_bytes).collect();
        let first_unstable: Vec<Option<i64>> =
            p.values().map(|r| r.first_unstable_offset).collect();
        client
            .execute(
                "UPDATE partitions p SET next_offset = u.next_offset, size_bytes = u.size_bytes, \
                        first_unstable_offset = u.first_unstable_offset \
                 FROM unnest($1::bigint[], $2::bigint[], $3::bigint[], $4::bigint[]) \
                   AS u(partition_id, next_offset, size_bytes, first_unstable_offset) \
                 WHERE p.partition_id = u.partition_id",
                &[&partition_id, &next_offset, &size_bytes, &first_unstable],
            )
            .await?;
    }
    if !plan.producers.is_empty() {
        let s = &plan.producers;
        let partition_id: Vec<i64> = s.keys().map(|k| k.0).collect();
        let producer_id: Vec<i64> = s.keys().map(|k| k.1).collect();
        let epoch: Vec<i16> = s.values().map(|e| e.epoch).collect();
        let recent: Vec<serde_json::Value> = s.values().map(|e| recent_json(&e.batches)).collect();
        let coordinator_epoch: Vec<i32> = s.values().map(|e| e.coordinator_epoch).collect();
        let txn_first_offset: Vec<Option<i64>> =
            s.values().map(|e| e.current_txn_first_offset).collect();
        let last_timestamp: Vec<i64> = s.values().map(|e| e.last_timestamp_ms).collect();
        let params: [&(dyn ToSql + Sync); 7] = [
            &partition_id,
            &producer_id,
            &epoch,
            &recent,
            &coordinator_epoch,
            &txn_first_offset,
            &last_timestamp,
        ];
        client
            .execute(
                "INSERT INTO producer_state (partition_id, producer_id, producer_epoch, recent, \
                        coordinator_epoch, txn_first_offset, last_timestamp, updated_at) \
                 SELECT t.*, now() FROM unnest($1::bigint[], $2::bigint[], $3::int2[], \
                        $4::jsonb[], $5::int[], $6::bigint[], $7::bigint[]) AS t \
                 ON CONFLICT (partition_id, producer_id) DO UPDATE SET \
                   producer_epoch = EXCLUDED.producer_epoch, recent = EXCLUDED.recent, \
                   coordinator_epoch = EXCLUDED.coordinator_epoch, \
                   txn_first_offset = EXCLUDED.txn_first_offset, \
                   last_timestamp = EXCLUDED.last_timestamp, updated_at = now()",
                &params,
            )
            .await?;
    }
    if !plan.aborted.is_empty() {
        let a = &plan.aborted;
        let partition_id: Vec<i64> = a.iter().map(|r| r.partition_id).collect();
        let producer_id: Vec<i64> = a.iter().map(|r| r.producer_id).collect();
        let first_offset: Vec<i64> = a.iter().map(|r| r.first_offset).collect();
        let last_offset: Vec<i64> = a.iter().map(|r| r.last_offset).collect();
        client
            .execute(
                "INSERT INTO aborted_txns (partition_id, producer_id, first_offset, last_offset) \
                 SELECT * FROM unnest($1::bigint[], $2::bigint[], $3::bigint[], $4::bigint[])",
                &[&partition_id, &producer_id, &first_offset, &last_offset],
            )
            .await?;
    }
    if !plan.marked.is_empty() {
        // After the producer states above: the earliest transaction still open among all
        // of each partition's producers, or none.
        let partition_id: Vec<i64> = plan.marked.iter().copied().collect();
        client
            .execute(
                "UPDATE partitions p SET first_unstable_offset = \
                   (SELECT min(s.txn_first_offset) FROM producer_state s \
                    WHERE s.partition_id = p.partition_id) \
                 WHERE p.partition_id = ANY($1)",
                &[&partition_id],
            )
            .await?;
    }
    // An object no chunk points at (every write a duplicate or refused) is left for
    // deletion at once rather than kept live with nothing in it.
    let marked = client
        .execute(
            "UPDATE objects SET state = CASE WHEN $2 THEN 1 ELSE 2 END, \
                    delete_after = CASE WHEN $2 THEN NULL ELSE now() END \
             WHERE object_id = $1 AND state = 0",
            &[&object_id, &!plan.chunks.is_empty()],
        )
        .await?;
    if marked != 1 {
        return Err(ClusterError::Corrupt(format!(
            "object {object_id} is no longer pending; it cannot be made live"
        )));
    }
    let next_offsets: Vec<(i64, i64)> = plan
        .partitions
        .iter()
        .map(|(&id, row)| (id, row.next_offset))
        .collect();
    for payload in notify_payloads(object_id, &next_offsets) {
        client
            .execute("SELECT pg_notify($1, $2)", &[&CHANNEL_APPENDED, &payload])
            .await?;
    }
    client.batch_execute("COMMIT").await?;
    Ok(plan)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn header(producer: (i64, i16, i32), count: i32, size_bytes: usize) -> BatchHeader {
        BatchHeader {
            base_offset: 0,
            size_bytes,
            magic: 2,
            crc: 0,
            attributes: 0,
            last_offset_delta: count - 1,
            base_timestamp: 0,
            max_timestamp: 100 + i64::from(count),
            producer_id: producer.0,
            producer_epoch: producer.1,
            base_sequence: producer.2,
            records_count: count,
        }
    }

    fn write(partition_id: i64, position: u64, headers: Vec<BatchHeader>) -> CommitWrite {
        CommitWrite {
            partition_id,
            headers,
            position,
            marker: None,
            coordinator: false,
        }
    }

    #[test]
    fn coordinators_writes_are_refused_off_the_controller_and_others_go_on() {
        // Goal: on a broker that is not the controller, a coordinator's write is refused
        // with NOT_COORDINATOR and takes no offsets, while a producer's write in the same
        // flush is stored; on the controller both are.
        let rows = HashMap::from([(
            7,
            PartitionRow {
                next_offset: 10,
                log_start_offset: 0,
                size_bytes: 0,
                first_unstable_offset: None,
            },
        )]);
        let writes = [
            CommitWrite {
                coordinator: true,
                ..write(7, 0, vec![header((-1, -1, -1), 2, 80)])
            },
            write(7, 80, vec![header((-1, -1, -1), 3, 90)]),
        ];
        let fenced = plan(&writes, &rows, HashMap::new(), Some("broker 0 is"));
        assert!(matches!(
            fenced.outcomes[0],
            WriteOutcome::Refused {
                error: LogError::NotCoordinator(_),
                ..
            }
        ));
        assert!(matches!(
            fenced.outcomes[1],
            WriteOutcome::Stored {
                base_offset: 10,
                last_offset: 12,
                ..
            }
        ));
        let served = plan(&writes, &rows, HashMap::new(), None);
        assert!(matches!(
            served.outcomes[0],
            WriteOutcome::Stored {
                base_offset: 10,
                ..
            }
        ));
    }

    #[test]
    fn accepted_writes_form_runs_that_a_refused_write_breaks() {
        // Goal: two adjacent accepted writes of a partition make one chunk row with real
        // offsets; a refused write between two others splits them into two rows, and the
        // write after it takes the offsets the refused one did not.
        let rows = HashMap::from([(
            7,
            PartitionRow {
                next_offset: 10,
                log_start_offset: 3,
                size_bytes: 500,
                first_unstable_offset: None,
            },
        )]);
        let writes = [
            write(7, 0, vec![header((1, 0, 0), 2, 100)]),
            write(7, 100, vec![header((1, 0, 2), 3, 50)]),
            write(7, 150, vec![header((1, 0, 9), 1, 40)]), // a gap: refused
            write(7, 190, vec![header((1, 0, 5), 1, 30)]),
        ];
        let plan = plan(&writes, &rows, HashMap::new(), None);
        assert!(matches!(
            plan.outcomes[2],
            WriteOutcome::Refused {
                error: LogError::OutOfOrderSequence {
                    expected: 5,
                    got: 9,
                    ..
                },
                log_start_offset: 3
            }
        ));
        assert!(matches!(
            plan.outcomes[3],
            WriteOutcome::Stored {
                base_offset: 15,
                last_offset: 15,
                duplicate: false,
                ..
            }
        ));
        let spans: Vec<_> = plan
            .chunks
            .iter()
            .map(|c| {
                (
                    c.base_offset,
                    c.last_offset,
                    c.position,
                    c.size_bytes,
                    c.batch_count,
                )
            })
            .collect();
        assert_eq!(spans, vec![(10, 14, 0, 150, 2), (15, 15, 190, 30, 1)]);
        let row = plan.partitions[&7];
        assert_eq!((row.next_offset, row.size_bytes), (16, 680));
        assert_eq!(plan.producers[&(7, 1)].batches.len(), 3);
    }

    #[test]
    fn transactions_hold_the_first_unstable_offset_at_the_earliest() {
        // Goal: a partition with an open transaction keeps its first unstable offset when
        // another producer opens one later; a partition with none takes the first offset of
        // the transaction a write opens; plain batches change neither.
        let row = |first_unstable_offset| PartitionRow {
            next_offset: 20,
            log_start_offset: 0,
            size_bytes: 0,
            first_unstable_offset,
        };
        let rows = HashMap::from([(1, row(Some(12))), (2, row(None))]);
        let txn = |pid| BatchHeader {
            attributes: 0x10,
            ..header((pid, 0, 0), 2, 10)
        };
        let writes = [
            write(1, 0, vec![txn(5)]),
            write(2, 10, vec![header((-1, -1, -1), 1, 10)]),
            write(2, 20, vec![txn(6)]),
            write(2, 30, vec![txn(7)]),
        ];
        let plan = plan(&writes, &rows, HashMap::new(), None);
        assert_eq!(plan.partitions[&1].first_unstable_offset, Some(12));
        assert_eq!(plan.partitions[&2].first_unstable_offset, Some(21));
        assert_eq!(plan.producers[&(2, 6)].current_txn_first_offset, Some(21));
        assert_eq!(plan.producers[&(2, 7)].current_txn_first_offset, Some(23));
        assert_eq!(plan.partitions[&2].next_offset, 25);
    }

    #[test]
    fn markers_end_transactions_and_stale_ones_are_fenced() {
        // Goal: a commit marker ends its producer's open transaction at the partition's
        // next offset and marks the partition for the first-unstable-offset recompute; an
        // abort marker adds an aborted row from the transaction's first offset to the
        // marker; a marker of an older coordinator epoch is refused and changes nothing.
        use weir_log::batch::ControlRecordType;
        let rows = HashMap::from([(
            4,
            PartitionRow {
                next_offset: 10,
                log_start_offset: 0,
                size_bytes: 0,
                first_unstable_offset: Some(2),
            },
        )]);
        let open = |first_offset| ProducerEntry {
            epoch: 0,
            batches: VecDeque::new(),
            coordinator_epoch: 3,
            current_txn_first_offset: Some(first_offset),
            last_timestamp_ms: 0,
        };
        let mut table = ProducerStateTable::default();
        assert!(table.insert(1, open(2)));
        assert!(table.insert(2, open(5)));
        let marker = |pid, coordinator_epoch, control_type| CommitWrite {
            marker: Some(QueuedMarker {
                coordinator_epoch,
                control_type,
            }),
            ..write(4, 0, vec![header((pid, 0, -1), 1, 70)])
        };
        let writes = [
            marker(1, 2, ControlRecordType::Commit), // an older coordinator: fenced
            marker(1, 3, ControlRecordType::Commit),
            marker(2, 3, ControlRecordType::Abort),
        ];
        let plan = plan(&writes, &rows, HashMap::from([(4, table)]), None);
        assert!(matches!(
            plan.outcomes[0],
            WriteOutcome::Refused {
                error: LogError::TransactionCoordinatorFenced { .. },
                ..
            }
        ));
        assert!(matches!(
            plan.outcomes[1],
            WriteOutcome::Stored {
                base_offset: 10,
                last_offset: 10,
                ..
            }
        ));
        assert_eq!(plan.producers[&(4, 1)].current_txn_first_offset, None);
        assert_eq!(plan.producers[&(4, 2)].current_txn_first_offset, None);
        assert_eq!(
            plan.aborted,
            [AbortedRow {
                partition_id: 4,
                producer_id: 2,
                first_offset: 5,
                last_offset: 11,
            }]
        );
        assert_eq!(plan.marked.iter().copied().collect::<Vec<_>>(), [4]);
        assert_eq!(plan.partitions[&4].next_offset, 12);
    }

    #[test]
    fn notifications_split_before_the_payload_bound() {
        // Goal: every payload starts with the object id, stays under the bound, and
        // together they name every partition once.
        let pairs: Vec<(i64, i64)> = (0..2000)
            .map(|i| (1_000_000 + i, 5_000_000_000 + i))
            .collect();
        let payloads = notify_payloads(42, &pairs);
        assert!(payloads.len() > 1);
        let mut named = Vec::new();
        for p in &payloads {
            assert!(p.len() <= NOTIFY_PAYLOAD_BYTES_MAX, "{}", p.len());
            let rest = p.strip_prefix("42;").unwrap();
            for pair in rest.split(',') {
                let (id, next) = pair.split_once(':').unwrap();
                named.push((id.parse::<i64>().unwrap(), next.parse::<i64>().unwrap()));
            }
        }
        assert_eq!(named, pairs);
        assert!(notify_payloads(42, &[]).is_empty());
    }
}
