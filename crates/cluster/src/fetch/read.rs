//! One read of many partitions: answer from the cache what it can, one statement for the
//! rest, the chunks' GETs at once, then each partition's whole batches within its limit
//! and the running total.

use bytes::{Bytes, BytesMut};
use std::sync::Arc;

use weir_log::batch::BatchHeader;
use weir_log::store::{PartitionRead, ReadSpec};
use weir_log::{AbortedTxn, LogError};

use super::chunks;
use super::query::{self, AbortedRow, ChunkRow, Found, Want};
use super::state::PartitionState;
use super::{bump, storage_error, Shared, ABORTED_TXNS_PER_READ_MAX};
use crate::error::ClusterError;

pub(super) async fn read(
    shared: &Shared,
    reads: &[ReadSpec],
    max_bytes: usize,
) -> Vec<Option<PartitionRead>> {
    // 1. Partitions asked for at their fresh cached high watermark need no query.
    let mut results: Vec<Option<Option<PartitionRead>>> = reads
        .iter()
        .map(|spec| at_cached_end(shared, spec).map(Some))
        .collect();
    let to_query: Vec<usize> = (0..reads.len()).filter(|&i| results[i].is_none()).collect();
    if to_query.is_empty() {
        return results.into_iter().map(|r| r.expect("answered")).collect();
    }

    // 2. One statement for the rest.
    let wants: Vec<Want> = to_query
        .iter()
        .map(|&i| {
            let spec = &reads[i];
            Want {
                topic_id: spec.tp.topic_id,
                partition: spec.tp.partition,
                fetch_offset: spec.fetch_offset,
                bytes_max: spec.partition_max_bytes.min(max_bytes) as i64,
                read_committed: spec.read_committed,
            }
        })
        .collect();
    let generation = shared.states.generation();
    bump(&shared.counters.read_queries, 1);
    let found = shared
        .session
        .bounded(
            "a read of the partition index",
            shared.settings.statement_timeout,
            async {
                let client = shared.session.client().await?;
                Ok(query::read(
                    &client,
                    &wants,
                    shared.settings.chunk_rows_per_query_max,
                    ABORTED_TXNS_PER_READ_MAX + 1,
                )
                .await?)
            },
        )
        .await;
    let found = match found {
        Ok(found) => found,
        Err(e) => {
            tracing::warn!(error = %e, "a fetch could not read the partition index");
            for &i in &to_query {
                results[i] = Some(Some(failed(shared, &reads[i], &e)));
            }
            return results.into_iter().map(|r| r.expect("answered")).collect();
        }
    };

    // 3. Plan each partition's chunks within its limit and the running total, taking the
    //    chunks' sizes as what they will yield (a read from inside a chunk yields less, so
    //    a plan never takes more than the limits allow), and get them all at once
    //    (`chunks::fetch_all`: the cache first, one GET for neighbours in one object).
    let mut plans: Vec<Option<Plan>> = Vec::with_capacity(to_query.len());
    let mut planned_total = 0usize;
    for (k, &i) in to_query.iter().enumerate() {
        let spec = &reads[i];
        let plan = found[k].as_ref().map(|found| {
            let state = shared.states.merge_row(&spec.tp, &found.row, generation);
            plan(spec, found, state, max_bytes, &mut planned_total)
        });
        plans.push(plan);
    }
    let wanted: Vec<ChunkRow> = plans
        .iter()
        .flatten()
        .flat_map(|p| p.chunks.iter().copied())
        .collect();
    let mut fetched = chunks::fetch_all(shared, &wanted).await.into_iter();

    // 4. Whole batches, in order, within the limits counted exactly.
    let mut total = 0usize;
    for (k, &i) in to_query.iter().enumerate() {
        let Some(plan) = plans[k].take() else {
            // No live row: a deleted partition is forgotten, and its watchers woken.
            if let Some(id) = shared.states.id_of(&reads[i].tp) {
                shared.states.forget(id);
            }
            results[i] = Some(None);
            continue;
        };
        let bytes: Vec<_> = fetched.by_ref().take(plan.chunks.len()).collect();
        results[i] = Some(Some(assemble(
            &reads[i], plan, bytes, max_bytes, &mut total,
        )));
    }
    results.into_iter().map(|r| r.expect("answered")).collect()
}

/// The answer for a partition read at its fresh cached high watermark: nothing to send.
/// `None` when the cache cannot answer.
fn at_cached_end(shared: &Shared, spec: &ReadSpec) -> Option<PartitionRead> {
    let id = shared.partition_id(&spec.tp)?;
    let state = shared.states.fresh(id)?;
    if spec.fetch_offset != state.next_offset || (spec.read_committed && !state.lso_known) {
        return None;
    }
    let offsets = state.offsets();
    Some(PartitionRead {
        high_watermark: offsets.high_watermark,
        last_stable_offset: offsets.last_stable_offset,
        log_start_offset: offsets.log_start_offset,
        aborted: spec.read_committed.then(Vec::new),
        records: Ok(Bytes::new()),
    })
}

/// The read of a partition whose statement failed: the storage error, and the offsets as
/// last seen (-1 when never seen, as Kafka answers an error).
fn failed(shared: &Shared, spec: &ReadSpec, e: &ClusterError) -> PartitionRead {
    let offsets = shared
        .partition_id(&spec.tp)
        .and_then(|id| shared.states.cached(id))
        .map(|s| s.offsets());
    PartitionRead {
        high_watermark: offsets.map_or(-1, |o| o.high_watermark),
        last_stable_offset: offsets.map_or(-1, |o| o.last_stable_offset),
        log_start_offset: offsets.map_or(-1, |o| o.log_start_offset),
        aborted: None,
        records: Err(storage_error(e)),
    }
}

/// What one partition's read will do.
struct Plan {
    state: PartitionState,
    /// Offsets at or past it are not sent: the high watermark, or for read_committed
    /// reads the last stable offset (or the first aborted transaction left out).
    upper_offset: i64,
    chunks: Vec<ChunkRow>,
    aborted: Option<Vec<AbortedRow>>,
    /// Why nothing is read, decided before any GET.
    refused: Option<LogError>,
}

fn plan(
    spec: &ReadSpec,
    found: &Found,
    state: PartitionState,
    max_bytes: usize,
    planned_total: &mut usize,
) -> Plan {
    let row = &found.row;
    let mut upper_offset = if spec.read_committed {
        row.last_stable_offset()
    } else {
        row.next_offset
    };
    let mut aborted = None;
    if spec.read_committed {
        let mut rows = found.aborted.clone();
        if rows.len() as i64 > ABORTED_TXNS_PER_READ_MAX {
            // The statement asked for one more than the bound: stop before it.
            let left_out = rows.pop().expect("more than the bound");
            upper_offset = upper_offset.min(left_out.first_offset);
        }
        aborted = Some(rows);
    }
    let mut plan = Plan {
        state,
        upper_offset,
        chunks: Vec::new(),
        aborted,
        refused: None,
    };
    if spec.fetch_offset < row.log_start_offset || spec.fetch_offset > row.next_offset {
        plan.refused = Some(LogError::OffsetOutOfRange {
            offset: spec.fetch_offset,
            log_start_offset: row.log_start_offset,
            log_end_offset: row.next_offset,
        });
        return plan;
    }
    if found.chunks.is_empty() && spec.fetch_offset < upper_offset {
        // The commit that moves the high watermark inserts the chunks below it.
        plan.refused = Some(LogError::Io(std::io::Error::other(format!(
            "the partition index has no chunk holding offset {} below offset {upper_offset}",
            spec.fetch_offset
        ))));
        return plan;
    }
    // A compaction leaves gaps: the next chunk may start past the fetch offset, and
    // (read_committed) past the last stable offset too, with nothing to send before it.
    let first_below_upper = found
        .chunks
        .first()
        .is_some_and(|c| c.base_offset < upper_offset);
    if spec.fetch_offset >= upper_offset || !first_below_upper {
        // At the end, or (read_committed) at the last stable offset: nothing to send.
        return plan;
    }
    if *planned_total > 0 && *planned_total >= max_bytes {
        // The partitions before this one are expected to fill the response: no GET for
        // a chunk that would be left out.
        return plan;
    }
    let limit = spec
        .partition_max_bytes
        .min(max_bytes.saturating_sub(*planned_total));
    let mut planned = 0usize;
    for chunk in &found.chunks {
        if chunk.base_offset >= upper_offset {
            break;
        }
        // The first chunk is always taken (its first batch goes whole unless the
        // response already holds data, which only the exact count in `assemble` knows).
        if !plan.chunks.is_empty() && planned + chunk.size_bytes as usize > limit {
            break;
        }
        planned += chunk.size_bytes as usize;
        plan.chunks.push(*chunk);
    }
    *planned_total += planned;
    plan
}

/// The partition's answer from its fetched chunks: whole batches from the one holding the
/// fetch offset, below the upper offset, the first whole, the others while they fit the
/// partition's limit and what the response has left of `max_bytes`.
fn assemble(
    spec: &ReadSpec,
    plan: Plan,
    chunks: Vec<Result<Bytes, Arc<ClusterError>>>,
    max_bytes: usize,
    total: &mut usize,
) -> PartitionRead {
    let offsets = plan.state.offsets();
    let mut read = PartitionRead {
        high_watermark: offsets.high_watermark,
        last_stable_offset: offsets.last_stable_offset,
        log_start_offset: offsets.log_start_offset,
        aborted: None,
        records: Ok(Bytes::new()),
    };
    if let Some(refused) = plan.refused {
        read.records = Err(refused);
        return read;
    }
    let fetch_offset = spec.fetch_offset;
    let response_left = max_bytes.saturating_sub(*total);
    let limit = spec.partition_max_bytes.min(response_left);
    let mut pieces: Vec<Bytes> = Vec::new();
    let mut taken = 0usize;
    let mut last_offset_taken = None;
    let mut error = None;
    'chunks: for chunk in chunks {
        let chunk = match chunk {
            Ok(chunk) => chunk,
            Err(e) => {
                tracing::warn!(error = %e, topic = %spec.tp.topic, partition = spec.tp.partition, "a fetch could not read a chunk");
                error = Some(storage_error(&e));
                break;
            }
        };
        let mut position = 0usize;
        while position < chunk.len() {
            // `ready_to_send` walked these batches whole; a parse failure here is damage
            // all the same, reported rather than trusted.
            let header = match BatchHeader::parse(&chunk[position..]) {
                Ok(h) if position + h.size_bytes <= chunk.len() => h,
                _ => {
                    error = Some(LogError::Io(std::io::Error::other(format!(
                        "a stored chunk of partition {} is damaged at byte {position}",
                        spec.tp.partition
                    ))));
                    break 'chunks;
                }
            };
            if header.base_offset >= plan.upper_offset {
                break 'chunks;
            }
            if header.last_offset() >= fetch_offset {
                let fits = if taken == 0 {
                    // Only the first data of a response may pass the byte limits.
                    *total == 0 || header.size_bytes <= response_left
                } else {
                    taken + header.size_bytes <= limit
                };
                if !fits {
                    break 'chunks;
                }
                pieces.push(chunk.slice(position..position + header.size_bytes));
                taken += header.size_bytes;
                last_offset_taken = Some(header.last_offset());
            }
            position += header.size_bytes;
        }
    }
    if let Some(aborted) = plan.aborted {
        // Only the transactions overlapping what is sent.
        let sent_last = last_offset_taken.unwrap_or(-1);
        read.aborted = Some(
            aborted
                .into_iter()
                .filter(|a| a.first_offset <= sent_last && a.last_offset >= fetch_offset)
                .map(|a| AbortedTxn {
                    producer_id: a.producer_id,
                    first_offset: a.first_offset,
                    last_offset: a.last_offset,
                    // Not kept in the table, and not sent in a fetch response: the
                    // smallest value it can have.
                    last_stable_offset: a.last_offset + 1,
                })
                .collect(),
        );
    }
    read.records = match (pieces.len(), error) {
        (0, Some(error)) => Err(error),
        (0, None) => Ok(Bytes::new()),
        (1, _) => Ok(pieces.pop().expect("one piece")),
        _ => {
            let mut out = BytesMut::with_capacity(taken);
            for piece in &pieces {
                out.extend_from_slice(piece);
            }
            Ok(out.freeze())
        }
    };
    *total += taken;
    read
}
