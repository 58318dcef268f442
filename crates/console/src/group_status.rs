//! The status of a consumer group, judged from a window of its lag samples
//! ([`crate::lag_history`]): is it keeping up, falling behind, stuck, stopped, or losing
//! records? A pure function of the samples; `docs/metrics.md` states the same rule.
//!
//! The window is the latest [`STATUS_WINDOW_SAMPLES`] samples (five minutes at the default
//! sampling interval). Each partition the group has committed, as of the latest sample, is
//! judged on the samples that hold it, first rule that applies:
//!
//! 1. **error**: its committed offset is below the partition's log start offset: records
//!    were deleted (retention, DeleteRecords) before the group consumed them.
//! 2. **ok**: its lag is 0 now.
//! 3. **ok**: fewer than [`STATUS_SAMPLES_MIN`] samples hold it: too early to see a trend.
//! 4. if the committed offset is the same in every sample and the lag is above 0 in every
//!    sample: **stalled** when the group has members now (they consume nothing, or do not
//!    commit), **stopped** when it has none.
//! 5. **warning**: the committed offset moved, yet the lag never fell from one sample to the
//!    next and is higher at the end than at the start: the group consumes, but slower than
//!    records arrive.
//! 6. **ok** otherwise.
//!
//! The group's status is the worst of its partitions' (ok < warning < stalled < stopped <
//! error); a group with no committed partition, or no samples, is ok.

use std::sync::Arc;

use crate::lag_history::{GroupSample, PartitionSample};

/// Samples a status is judged on: the latest ones.
pub const STATUS_WINDOW_SAMPLES: usize = 30;
/// Samples of a partition needed before its lag can be called stuck or growing (two
/// intervals at least).
pub const STATUS_SAMPLES_MIN: usize = 3;

/// A group's or partition's status, from best to worst.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum GroupStatus {
    Ok,
    Warning,
    Stalled,
    Stopped,
    Error,
}

impl GroupStatus {
    pub const ALL: [GroupStatus; 5] = [
        GroupStatus::Ok,
        GroupStatus::Warning,
        GroupStatus::Stalled,
        GroupStatus::Stopped,
        GroupStatus::Error,
    ];

    /// The `status` label of `weir_group_status`, and the API's word.
    pub fn name(self) -> &'static str {
        match self {
            GroupStatus::Ok => "ok",
            GroupStatus::Warning => "warning",
            GroupStatus::Stalled => "stalled",
            GroupStatus::Stopped => "stopped",
            GroupStatus::Error => "error",
        }
    }
}

/// The latest [`STATUS_WINDOW_SAMPLES`] of `samples` (oldest first).
pub fn status_window(samples: &[GroupSample]) -> &[GroupSample] {
    &samples[samples.len().saturating_sub(STATUS_WINDOW_SAMPLES)..]
}

/// The status of each partition of the latest sample, judged on `window` (oldest first).
pub fn partition_statuses(window: &[GroupSample]) -> Vec<(Arc<str>, i32, GroupStatus)> {
    let Some(latest) = window.last() else {
        return Vec::new();
    };
    latest
        .partitions
        .iter()
        .map(|p| {
            let series: Vec<&PartitionSample> = window
                .iter()
                .filter_map(|s| {
                    s.partitions
                        .iter()
                        .find(|q| q.topic == p.topic && q.partition == p.partition)
                })
                .collect();
            let status = partition_status(&series, latest.has_members);
            (Arc::clone(&p.topic), p.partition, status)
        })
        .collect()
}

/// The group's status: the worst of its partitions', ok without any.
pub fn group_status(window: &[GroupSample]) -> GroupStatus {
    partition_statuses(window)
        .into_iter()
        .map(|(_, _, s)| s)
        .max()
        .unwrap_or(GroupStatus::Ok)
}

/// One partition's samples, oldest first (the last is the latest), judged by the rules of
/// the module documentation.
fn partition_status(series: &[&PartitionSample], has_members: bool) -> GroupStatus {
    let (Some(first), Some(last)) = (series.first(), series.last()) else {
        return GroupStatus::Ok;
    };
    // 1. Records deleted before they were consumed.
    if last.committed_offset < last.log_start_offset {
        return GroupStatus::Error;
    }
    // 2. Caught up.
    if last.lag == 0 {
        return GroupStatus::Ok;
    }
    // 3. Too early to judge a trend.
    if series.len() < STATUS_SAMPLES_MIN {
        return GroupStatus::Ok;
    }
    // 4. No commit in the whole window while records wait.
    let commits_moved = series
        .iter()
        .any(|s| s.committed_offset != first.committed_offset);
    let lag_throughout = series.iter().all(|s| s.lag > 0);
    if !commits_moved && lag_throughout {
        return if has_members {
            GroupStatus::Stalled
        } else {
            GroupStatus::Stopped
        };
    }
    // 5. Consuming, but falling behind.
    let never_fell = series.windows(2).all(|w| w[1].lag >= w[0].lag);
    if commits_moved && never_fell && last.lag > first.lag {
        return GroupStatus::Warning;
    }
    GroupStatus::Ok
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A window of one partition: per sample (committed offset, high watermark), with the
    /// log starting at `log_start`.
    fn window(has_members: bool, log_start: i64, points: &[(i64, i64)]) -> Vec<GroupSample> {
        points
            .iter()
            .enumerate()
            .map(|(i, &(committed_offset, high_watermark))| GroupSample {
                at_ms: i as i64 * 10_000,
                has_members,
                partitions: vec![PartitionSample {
                    topic: Arc::from("t"),
                    partition: 0,
                    committed_offset,
                    log_start_offset: log_start,
                    high_watermark,
                    lag: (high_watermark - committed_offset).max(0),
                }],
            })
            .collect()
    }

    #[test]
    fn a_group_keeping_up_is_ok() {
        // Goal: commits that follow the high watermark, lag that goes up and down, a lag of
        // 0, and an idle group with nothing to read are all ok.
        let following = window(true, 0, &[(10, 15), (15, 22), (22, 25), (25, 31)]);
        assert_eq!(group_status(&following), GroupStatus::Ok);
        let caught_up = window(true, 0, &[(10, 20), (20, 20), (20, 20)]);
        assert_eq!(group_status(&caught_up), GroupStatus::Ok);
        let idle_no_members = window(false, 0, &[(20, 20), (20, 20), (20, 20)]);
        assert_eq!(group_status(&idle_no_members), GroupStatus::Ok);
        assert_eq!(group_status(&[]), GroupStatus::Ok);
    }

    #[test]
    fn lag_growing_over_the_whole_window_while_commits_move_is_a_warning() {
        // Goal: the group commits, but its lag never falls and ends higher: warning. One
        // dip in the lag is enough to call it ok.
        let behind = window(true, 0, &[(10, 20), (12, 25), (14, 28), (16, 40)]);
        assert_eq!(group_status(&behind), GroupStatus::Warning);
        let dip = window(true, 0, &[(10, 20), (12, 25), (20, 26), (22, 40)]);
        assert_eq!(group_status(&dip), GroupStatus::Ok);
    }

    #[test]
    fn commits_not_moving_with_lag_is_stalled_with_members_and_stopped_without() {
        // Goal: the same committed offset in every sample while records wait: stalled when
        // members are present, stopped when none are; the same window too short to judge is
        // ok.
        let points = [(10, 20), (10, 25), (10, 30)];
        assert_eq!(
            group_status(&window(true, 0, &points)),
            GroupStatus::Stalled
        );
        assert_eq!(
            group_status(&window(false, 0, &points)),
            GroupStatus::Stopped
        );
        assert_eq!(
            group_status(&window(true, 0, &points[..STATUS_SAMPLES_MIN - 1])),
            GroupStatus::Ok
        );
        // Lag that appeared only during the window (new records after an idle spell) is not
        // a stall yet.
        let new_records = window(true, 0, &[(20, 20), (20, 20), (20, 24)]);
        assert_eq!(group_status(&new_records), GroupStatus::Ok);
    }

    #[test]
    fn a_committed_offset_below_the_log_start_is_an_error() {
        // Goal: records deleted before the group consumed them make it an error at once,
        // whatever else holds, and an error outranks every other partition's status.
        let lost = window(true, 50, &[(10, 60)]);
        assert_eq!(group_status(&lost), GroupStatus::Error);
        let mut mixed = window(true, 0, &[(10, 20), (10, 25), (10, 30)]);
        for (i, s) in mixed.iter_mut().enumerate() {
            s.partitions.push(PartitionSample {
                topic: Arc::from("u"),
                partition: 3,
                committed_offset: 5,
                log_start_offset: if i == 2 { 8 } else { 0 },
                high_watermark: 9,
                lag: 4,
            });
        }
        let statuses = partition_statuses(&mixed);
        assert_eq!(statuses[0].2, GroupStatus::Stalled);
        assert_eq!(statuses[1].2, GroupStatus::Error);
        assert_eq!(group_status(&mixed), GroupStatus::Error);
    }

    #[test]
    fn the_window_is_the_latest_samples() {
        // Goal: a stall older than the window does not count once commits move within it.
        let mut points: Vec<(i64, i64)> = vec![(10, 20); STATUS_WINDOW_SAMPLES];
        points.extend((0..STATUS_WINDOW_SAMPLES as i64).map(|i| (10 + i, 20 + i / 2)));
        let all = window(true, 0, &points);
        assert_eq!(
            group_status(&all[..STATUS_WINDOW_SAMPLES]),
            GroupStatus::Stalled
        );
        assert_eq!(status_window(&all).len(), STATUS_WINDOW_SAMPLES);
        assert_eq!(group_status(status_window(&all)), GroupStatus::Ok);
    }
}
