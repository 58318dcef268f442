//! The lag of consumer groups, computed in one place for `/metrics`, the lag history and the
//! REST API: per (group, topic, partition), the committed offset, the partition's log start
//! offset and high watermark, the lag in records, and the lag in time.
//!
//! The committed offsets are asked of the group coordinator as an admin client would (a
//! ListGroups, then one OffsetFetch for many groups); the offsets and timestamps are read
//! from the partition logs right after.
//!
//! - Lag in records is the high watermark minus the committed offset (0 at least). It is
//!   measured against the high watermark even for read_committed consumers: their true end is
//!   the last stable offset, but a group's isolation level is the consumers' setting, which
//!   the broker never sees. Transaction markers count as records here, as in Kafka's tools.
//! - Lag in time is now minus the timestamp of the first record the group has not consumed
//!   (the first user record at or after the committed offset): how long that record has been
//!   waiting. It is 0 when the lag in records is 0, or when only transaction markers are left,
//!   and never negative (a producer's clock may run ahead). With CreateTime the timestamp is
//!   the producer's, so clock skew between producer and broker shows up in it.
//!
//! Bounds: at most [`GROUPS_READ_MAX`] groups (by group id) and [`GROUP_PARTITIONS_READ_MAX`]
//! (group, partition) pairs per reading; the timestamp of at most
//! [`LAG_TIMESTAMPS_READ_MAX`] distinct (topic, partition, offset) places is read from the
//! logs (each read decodes one stored batch); pairs beyond that have no lag in time.

use std::collections::HashMap;
use std::sync::Arc;

use kafka_protocol::messages::offset_fetch_request::OffsetFetchRequestGroup;
use kafka_protocol::messages::{GroupId, ListGroupsRequest, OffsetFetchRequest};
use kafka_protocol::protocol::StrBytes;
use weir_broker::state::BrokerState;
use weir_groups::{GroupRequest, GroupResponse};

/// The most groups one reading covers.
pub const GROUPS_READ_MAX: usize = 1_000;
/// The most (group, topic, partition) pairs one reading covers.
pub const GROUP_PARTITIONS_READ_MAX: usize = 10_000;
/// The most distinct (topic, partition, offset) places whose record timestamp one reading
/// looks up; each lookup decodes a stored batch under the partition's lock, so this bounds
/// the work and the lock time of a scrape.
pub const LAG_TIMESTAMPS_READ_MAX: usize = 2_000;
/// The ListGroups and OffsetFetch versions spoken to the coordinator: the newest, where
/// OffsetFetch asks for many groups at once.
const LIST_GROUPS_VERSION: i16 = 5;
const OFFSET_FETCH_VERSION: i16 = 9;
/// How the coordinator sees these readings in its logs.
const CLIENT_ID: &str = "weir-console";

/// One group's position on one partition.
#[derive(Debug, Clone, PartialEq)]
pub struct PartitionLag {
    pub topic: String,
    pub partition: i32,
    pub committed_offset: i64,
    /// The partition's log start offset and high watermark; `None` when the partition no
    /// longer exists (then the lags are `None` too).
    pub log_start_offset: Option<i64>,
    pub high_watermark: Option<i64>,
    /// High watermark minus committed offset, at least 0.
    pub lag_records: Option<i64>,
    /// Timestamp of the first record not consumed yet, when one exists and was looked up.
    pub first_unconsumed_timestamp_ms: Option<i64>,
    /// Now minus [`PartitionLag::first_unconsumed_timestamp_ms`] in seconds, at least 0; 0
    /// when nothing is left to consume. `None` when the partition is gone or the lookup was
    /// beyond [`LAG_TIMESTAMPS_READ_MAX`] or failed.
    pub lag_seconds: Option<f64>,
}

impl PartitionLag {
    /// Records were deleted (retention, DeleteRecords) before the group consumed them: its
    /// committed offset is below the partition's log start offset.
    pub fn committed_below_log_start(&self) -> bool {
        self.log_start_offset
            .is_some_and(|start| self.committed_offset < start)
    }
}

/// One group's lag on every partition it has committed, in (topic, partition) order.
#[derive(Debug, Clone, PartialEq)]
pub struct GroupLag {
    pub group_id: String,
    pub partitions: Vec<PartitionLag>,
}

impl GroupLag {
    /// The sum of the partitions' lags in records.
    pub fn total_lag_records(&self) -> i64 {
        self.partitions.iter().filter_map(|p| p.lag_records).sum()
    }

    /// The largest lag in time over the partitions, `None` when none is known.
    pub fn max_lag_seconds(&self) -> Option<f64> {
        self.partitions
            .iter()
            .filter_map(|p| p.lag_seconds)
            .reduce(f64::max)
    }
}

/// The lag of many groups at one moment.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct GroupLagReport {
    /// Broker wall-clock time of the reading, in ms since the Unix epoch.
    pub now_ms: i64,
    /// By group id.
    pub groups: Vec<GroupLag>,
    /// Groups beyond [`GROUPS_READ_MAX`], left out.
    pub groups_unreported: usize,
    /// Committed partitions beyond [`GROUP_PARTITIONS_READ_MAX`], left out.
    pub partitions_unreported: usize,
}

impl GroupLagReport {
    /// The lag of every group the coordinator knows (the first [`GROUPS_READ_MAX`] by id),
    /// at `now_ms`. Empty when the coordinator is not running (start-up, shutdown).
    pub async fn read_all(state: &Arc<BrokerState>, now_ms: i64) -> GroupLagReport {
        let Some(groups) = state.groups() else {
            return GroupLagReport::empty(now_ms);
        };
        let Some(GroupResponse::ListGroups(listed)) = groups
            .call(
                LIST_GROUPS_VERSION,
                CLIENT_ID.to_string(),
                String::new(),
                GroupRequest::ListGroups(ListGroupsRequest::default()),
            )
            .await
        else {
            return GroupLagReport::empty(now_ms);
        };
        let ids: Vec<String> = listed
            .groups
            .into_iter()
            .map(|g| g.group_id.0.to_string())
            .collect();
        GroupLagReport::read(state, ids, now_ms).await
    }

    /// The lag of the named groups (the first [`GROUPS_READ_MAX`] by id) at `now_ms`. A group
    /// that does not exist, or has committed nothing, has no partitions.
    pub async fn read(
        state: &Arc<BrokerState>,
        mut group_ids: Vec<String>,
        now_ms: i64,
    ) -> GroupLagReport {
        group_ids.sort();
        group_ids.dedup();
        let groups_unreported = group_ids.len().saturating_sub(GROUPS_READ_MAX);
        group_ids.truncate(GROUPS_READ_MAX);
        let Some(committed) = committed_offsets(state, &group_ids).await else {
            return GroupLagReport::empty(now_ms);
        };
        let state = Arc::clone(state);
        // The log reads take partition locks, which an append may hold during disk I/O, and
        // may decode batches: off the async workers.
        let report = tokio::task::spawn_blocking(move || {
            lag_from_logs(&state, committed, groups_unreported, now_ms)
        })
        .await;
        report.unwrap_or_else(|e| {
            tracing::error!(error = %e, "reading the lag of consumer groups failed");
            GroupLagReport::empty(now_ms)
        })
    }

    fn empty(now_ms: i64) -> GroupLagReport {
        GroupLagReport {
            now_ms,
            ..GroupLagReport::default()
        }
    }

    /// One group of the report, by id.
    pub fn group(&self, group_id: &str) -> Option<&GroupLag> {
        self.groups
            .binary_search_by(|g| g.group_id.as_str().cmp(group_id))
            .ok()
            .map(|i| &self.groups[i])
    }
}

/// (group id, [(topic, partition, committed offset)]) in the order asked.
type Committed = Vec<(String, Vec<(String, i32, i64)>)>;

/// Every committed offset of `group_ids`, in one OffsetFetch; `None` when the coordinator
/// does not answer. Groups the coordinator refuses (an error code) are left out.
async fn committed_offsets(state: &Arc<BrokerState>, group_ids: &[String]) -> Option<Committed> {
    if group_ids.is_empty() {
        return Some(Vec::new());
    }
    let groups = state.groups()?;
    let request = OffsetFetchRequest::default().with_groups(
        group_ids
            .iter()
            // No topics named: every partition the group has committed.
            .map(|id| {
                OffsetFetchRequestGroup::default()
                    .with_group_id(GroupId(StrBytes::from_string(id.clone())))
                    .with_topics(None)
            })
            .collect(),
    );
    let Some(GroupResponse::OffsetFetch(fetched)) = groups
        .call(
            OFFSET_FETCH_VERSION,
            CLIENT_ID.to_string(),
            String::new(),
            GroupRequest::OffsetFetch(request),
        )
        .await
    else {
        return None;
    };
    let mut out: Committed = fetched
        .groups
        .into_iter()
        .filter(|g| g.error_code == 0)
        .map(|g| {
            let mut partitions: Vec<(String, i32, i64)> = g
                .topics
                .iter()
                .flat_map(|t| {
                    t.partitions
                        .iter()
                        .filter(|p| p.error_code == 0 && p.committed_offset >= 0)
                        .map(|p| (t.name.0.to_string(), p.partition_index, p.committed_offset))
                })
                .collect();
            partitions.sort();
            (g.group_id.0.to_string(), partitions)
        })
        .collect();
    out.sort_by(|a, b| a.0.cmp(&b.0));
    Some(out)
}

/// Where the first unconsumed record of a partition lies, shared by every group at that
/// offset.
type Place = (String, i32, i64);

/// A timestamp looked up: `Err` when the log could not be read there.
type Lookup = Result<Option<i64>, ()>;

/// Blocking: reads each partition's offsets and, where there is lag, the timestamp of the
/// first unconsumed record.
fn lag_from_logs(
    state: &BrokerState,
    committed: Committed,
    groups_unreported: usize,
    now_ms: i64,
) -> GroupLagReport {
    let mut report = GroupLagReport {
        now_ms,
        groups_unreported,
        ..GroupLagReport::default()
    };
    let mut pairs = 0usize;
    let mut timestamps: HashMap<Place, Lookup> = HashMap::new();
    for (group_id, partitions) in committed {
        let mut lags = Vec::new();
        for (topic, partition, committed_offset) in partitions {
            if pairs == GROUP_PARTITIONS_READ_MAX {
                report.partitions_unreported += 1;
                continue;
            }
            pairs += 1;
            lags.push(partition_lag(
                state,
                &mut timestamps,
                topic,
                partition,
                committed_offset,
                now_ms,
            ));
        }
        report.groups.push(GroupLag {
            group_id,
            partitions: lags,
        });
    }
    report
}

fn partition_lag(
    state: &BrokerState,
    timestamps: &mut HashMap<Place, Lookup>,
    topic: String,
    partition: i32,
    committed_offset: i64,
    now_ms: i64,
) -> PartitionLag {
    let mut lag = PartitionLag {
        topic,
        partition,
        committed_offset,
        log_start_offset: None,
        high_watermark: None,
        lag_records: None,
        first_unconsumed_timestamp_ms: None,
        lag_seconds: None,
    };
    let Some(tp) = state.topic_partition(&lag.topic, partition) else {
        return lag;
    };
    let admin = state.log_admin();
    let Some(status) = admin.status(&tp) else {
        return lag;
    };
    let high_watermark = status.offsets.high_watermark;
    let lag_records = (high_watermark - committed_offset).max(0);
    lag.log_start_offset = Some(status.offsets.log_start_offset);
    lag.high_watermark = Some(high_watermark);
    lag.lag_records = Some(lag_records);
    if lag_records == 0 {
        lag.lag_seconds = Some(0.0);
        return lag;
    }
    let place = (lag.topic.clone(), partition, committed_offset);
    let timestamp = match timestamps.get(&place) {
        Some(known) => *known,
        None if timestamps.len() < LAG_TIMESTAMPS_READ_MAX => {
            // On a blocking thread (see `GroupLagReport::read`).
            let found = tokio::runtime::Handle::current()
                .block_on(admin.timestamp_at(&tp, committed_offset))
                .map_err(|e| {
                tracing::warn!(topic = %lag.topic, partition, offset = committed_offset, error = %e,
                    "cannot read the timestamp of a group's first unconsumed record");
            });
            timestamps.insert(place, found);
            found
        }
        None => return lag,
    };
    // A failed read leaves the lag in time unknown rather than 0.
    let Ok(timestamp) = timestamp else {
        return lag;
    };
    lag.first_unconsumed_timestamp_ms = timestamp;
    lag.lag_seconds = Some(match timestamp {
        Some(ts) => (now_ms.saturating_sub(ts)).max(0) as f64 / 1000.0,
        // Only transaction markers are left: nothing waits to be consumed.
        None => 0.0,
    });
    lag
}
