//! Chunk bytes for a read: from the memory cache when it holds them, else from the disk
//! cache, else by ranged GETs from the bucket (then offered to the disk cache), one GET
//! for the neighbouring chunks of one object. A produce flush packs many partitions'
//! chunks side by side in one object, so a fetch of several partitions written together
//! costs one GET rather than one per partition; GETs are what an object store bills.

use std::collections::BTreeMap;
use std::sync::Arc;

use bytes::Bytes;
use futures::StreamExt;

use super::query::ChunkRow;
use super::{bump, CacheKey, Shared};
use crate::error::ClusterError;
use crate::object::{patch_offsets, set_leader_epoch};

/// Leader epoch written into every batch sent: cluster mode never truncates a log, so
/// there is one epoch for ever.
const LEADER_EPOCH: i32 = 0;
/// Bytes between two chunks of one object that one GET may read and throw away rather
/// than make two GETs.
pub const COALESCE_GAP_BYTES_MAX: u64 = 1024 * 1024;
/// Bytes one coalesced GET may span, so a read's memory stays near what it sends.
pub const COALESCED_GET_BYTES_MAX: u64 = 16 * 1024 * 1024;

/// The bytes of each of `chunks`, in their order: cache hits first, then the misses,
/// neighbours in one object gathered into one ranged GET, the GETs run at once (at most
/// `gets_in_flight_max`). A failed GET fails the chunks it was for.
pub(super) async fn fetch_all(
    shared: &Shared,
    chunks: &[ChunkRow],
) -> Vec<Result<Bytes, Arc<ClusterError>>> {
    let mut out: Vec<Option<Result<Bytes, Arc<ClusterError>>>> = chunks
        .iter()
        .map(|chunk| cached(shared, chunk).map(|r| r.map_err(Arc::new)))
        .collect();
    // The disk cache next, for the memory cache's misses.
    if shared.settings.disk_cache.is_some() {
        let found = futures::future::join_all(
            chunks
                .iter()
                .enumerate()
                .filter(|(i, _)| out[*i].is_none())
                .map(|(i, chunk)| async move { (i, from_disk(shared, chunk).await) }),
        )
        .await;
        for (i, bytes) in found {
            if let Some(bytes) = bytes {
                out[i] = Some(Ok(bytes));
            }
        }
    }
    // Misses by object and position; a chunk asked for twice shares its span.
    let mut misses: BTreeMap<(i64, i64), Vec<usize>> = BTreeMap::new();
    for (i, chunk) in chunks.iter().enumerate() {
        if out[i].is_none() {
            misses
                .entry((chunk.object_id, chunk.position))
                .or_default()
                .push(i);
        }
    }
    let mut spans: Vec<Span> = Vec::new();
    for ((object_id, position), members) in misses {
        let chunk = chunks[members[0]];
        let start = position as u64;
        let end = start + chunk.size_bytes as u64;
        match spans.last_mut() {
            Some(span)
                if span.object_id == object_id
                    && start <= span.end + COALESCE_GAP_BYTES_MAX
                    && end.max(span.end) - span.start <= COALESCED_GET_BYTES_MAX =>
            {
                span.end = span.end.max(end);
                span.members.push((chunk, members));
            }
            _ => spans.push(Span {
                object_id,
                start,
                end,
                members: vec![(chunk, members)],
            }),
        }
    }
    let got: Vec<(Span, Result<Bytes, ClusterError>)> = futures::stream::iter(spans)
        .map(|span| async move {
            let raw = get(shared, span.object_id, span.start, span.end).await;
            (span, raw)
        })
        .buffered(shared.settings.gets_in_flight_max)
        .collect()
        .await;
    for (span, raw) in got {
        let raw = raw.map_err(Arc::new);
        for (chunk, members) in span.members {
            let bytes = match &raw {
                Ok(raw) => {
                    let at = (chunk.position as u64 - span.start) as usize;
                    let result = ready_to_send(&chunk, &raw[at..at + chunk.size_bytes as usize]);
                    if let Ok(bytes) = &result {
                        keep(shared, &chunk, bytes);
                    }
                    result.map_err(Arc::new)
                }
                Err(e) => Err(Arc::clone(e)),
            };
            for i in members {
                out[i] = Some(bytes.clone());
            }
        }
    }
    out.into_iter()
        .map(|r| r.expect("every chunk is a hit or in a span"))
        .collect()
}

/// Neighbouring chunks of one object, got together.
struct Span {
    object_id: i64,
    start: u64,
    end: u64,
    /// Each chunk and the indexes (in the caller's list) that asked for it.
    members: Vec<(ChunkRow, Vec<usize>)>,
}

fn key(chunk: &ChunkRow) -> CacheKey {
    CacheKey::Chunk {
        object_id: chunk.object_id,
        position: chunk.position as u64,
    }
}

/// The chunk from the memory cache, as a chunk or inside a whole object; `None` on a miss
/// (counted).
fn cached(shared: &Shared, chunk: &ChunkRow) -> Option<Result<Bytes, ClusterError>> {
    if let Some(bytes) = shared.cache.get(&key(chunk)) {
        bump(&shared.counters.cache_hits, 1);
        return Some(Ok(bytes));
    }
    let position = chunk.position as u64;
    let end = position + chunk.size_bytes as u64;
    let object = shared.cache.get(&CacheKey::Object {
        object_id: chunk.object_id,
    });
    if let Some(object) = object.filter(|o| end <= o.len() as u64) {
        bump(&shared.counters.cache_hits, 1);
        // Not kept as a chunk too: the object holds its bytes already.
        return Some(ready_to_send(
            chunk,
            &object[position as usize..end as usize],
        ));
    }
    bump(&shared.counters.cache_misses, 1);
    None
}

/// One ranged GET, counted, checked to return the bytes asked for.
async fn get(shared: &Shared, object_id: i64, start: u64, end: u64) -> Result<Bytes, ClusterError> {
    bump(&shared.counters.gets, 1);
    let raw = shared.bucket.get_range(object_id, start..end).await?;
    bump(&shared.counters.bytes_got, raw.len() as u64);
    if raw.len() as u64 != end - start {
        return Err(ClusterError::Corrupt(format!(
            "object {object_id} returned {} bytes for the range {start}..{end}",
            raw.len()
        )));
    }
    Ok(raw)
}

/// One chunk's batches, ready to send (a lookup by timestamp reads one at a time).
pub(super) async fn chunk_bytes(shared: &Shared, chunk: ChunkRow) -> Result<Bytes, ClusterError> {
    if let Some(result) = cached(shared, &chunk) {
        return result;
    }
    if let Some(bytes) = from_disk(shared, &chunk).await {
        return Ok(bytes);
    }
    let start = chunk.position as u64;
    let raw = get(
        shared,
        chunk.object_id,
        start,
        start + chunk.size_bytes as u64,
    )
    .await?;
    let bytes = ready_to_send(&chunk, &raw)?;
    keep(shared, &chunk, &bytes);
    Ok(bytes)
}

/// The chunk from the disk cache, if the broker has one and it holds the chunk (counted,
/// and kept in the memory cache too).
async fn from_disk(shared: &Shared, chunk: &ChunkRow) -> Option<Bytes> {
    let disk = shared.settings.disk_cache.as_ref()?;
    let bytes = disk.get(&key(chunk), chunk.size_bytes as usize).await?;
    bump(&shared.counters.disk_cache_hits, 1);
    shared.cache.insert(key(chunk), bytes.clone());
    Some(bytes)
}

/// Keeps a chunk got from the bucket in the memory cache and offers it to the disk cache.
fn keep(shared: &Shared, chunk: &ChunkRow, bytes: &Bytes) {
    shared.cache.insert(key(chunk), bytes.clone());
    if let Some(disk) = &shared.settings.disk_cache {
        disk.offer(key(chunk), bytes.clone());
    }
}

/// A copy of the chunk's batches with their real offsets and the leader epoch written.
fn ready_to_send(chunk: &ChunkRow, raw: &[u8]) -> Result<Bytes, ClusterError> {
    let corrupt = |why: String| {
        ClusterError::Corrupt(format!(
            "the chunk at {} of object {} (offsets {}..={}): {why}",
            chunk.position, chunk.object_id, chunk.base_offset, chunk.last_offset
        ))
    };
    let mut bytes = raw.to_vec();
    if !chunk.offsets_in_object {
        let next_offset =
            patch_offsets(&mut bytes, chunk.base_offset).map_err(|e| corrupt(e.to_string()))?;
        if next_offset != chunk.last_offset + 1 {
            return Err(corrupt(format!(
                "its batches end at offset {}",
                next_offset - 1
            )));
        }
    }
    set_leader_epoch(&mut bytes, LEADER_EPOCH).map_err(|e| corrupt(e.to_string()))?;
    Ok(Bytes::from(bytes))
}
