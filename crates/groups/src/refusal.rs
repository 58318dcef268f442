//! A group API refused as a whole before the coordinator sees it: the answer a broker
//! gives when it is not the group coordinator (NOT_COORDINATOR, so the client finds the
//! coordinator again) or while the coordinator is still loading its groups
//! (COORDINATOR_LOAD_IN_PROGRESS, so the client retries).
//!
//! Each response carries the code where a client looks for it: the top level, or each
//! group, topic or partition the request named, as Kafka's error responses do. ListGroups
//! is the exception: clients ask every broker for the groups it coordinates, so a broker
//! that is not the coordinator answers an empty list.

use kafka_protocol::error::ResponseError;
use kafka_protocol::messages::consumer_group_describe_response::DescribedGroup as ConsumerDescribedGroup;
use kafka_protocol::messages::delete_groups_response::DeletableGroupResult;
use kafka_protocol::messages::describe_groups_response::DescribedGroup;
use kafka_protocol::messages::offset_commit_response::{
    OffsetCommitResponsePartition, OffsetCommitResponseTopic,
};
use kafka_protocol::messages::offset_fetch_response::{
    OffsetFetchResponseGroup, OffsetFetchResponsePartition, OffsetFetchResponseTopic,
};
use kafka_protocol::messages::txn_offset_commit_response::{
    TxnOffsetCommitResponsePartition, TxnOffsetCommitResponseTopic,
};
use kafka_protocol::messages::*;

use crate::{GroupRequest, GroupResponse};

/// The first OffsetFetch version that answers an error at the top level.
const OFFSET_FETCH_TOP_LEVEL_ERROR_VERSION: i16 = 2;
/// The first OffsetFetch version that batches groups.
const OFFSET_FETCH_GROUPS_VERSION: i16 = 8;

impl GroupRequest {
    /// This request answered with `error` everywhere it carries a code, at `api_version`.
    pub fn refused(&self, api_version: i16, error: ResponseError) -> GroupResponse {
        let code = error.code();
        match self {
            GroupRequest::JoinGroup(..) => GroupResponse::JoinGroup(
                JoinGroupResponse::default()
                    .with_error_code(code)
                    .with_generation_id(-1),
            ),
            GroupRequest::SyncGroup(..) => {
                GroupResponse::SyncGroup(SyncGroupResponse::default().with_error_code(code))
            }
            GroupRequest::Heartbeat(_) => {
                GroupResponse::Heartbeat(HeartbeatResponse::default().with_error_code(code))
            }
            GroupRequest::LeaveGroup(_) => {
                GroupResponse::LeaveGroup(LeaveGroupResponse::default().with_error_code(code))
            }
            GroupRequest::OffsetCommit(r) => GroupResponse::OffsetCommit(
                OffsetCommitResponse::default().with_topics(
                    r.topics
                        .iter()
                        .map(|t| {
                            OffsetCommitResponseTopic::default()
                                .with_name(t.name.clone())
                                .with_topic_id(t.topic_id)
                                .with_partitions(
                                    t.partitions
                                        .iter()
                                        .map(|p| {
                                            OffsetCommitResponsePartition::default()
                                                .with_partition_index(p.partition_index)
                                                .with_error_code(code)
                                        })
                                        .collect(),
                                )
                        })
                        .collect(),
                ),
            ),
            GroupRequest::OffsetFetch(r) => {
                GroupResponse::OffsetFetch(offset_fetch_refused(r, api_version, code))
            }
            GroupRequest::OffsetDelete(_) => {
                GroupResponse::OffsetDelete(OffsetDeleteResponse::default().with_error_code(code))
            }
            // Each broker lists the groups it coordinates (clients ask every broker and
            // merge): one that is not the coordinator has none, which is no error.
            GroupRequest::ListGroups(_) if matches!(error, ResponseError::NotCoordinator) => {
                GroupResponse::ListGroups(ListGroupsResponse::default())
            }
            GroupRequest::ListGroups(_) => {
                GroupResponse::ListGroups(ListGroupsResponse::default().with_error_code(code))
            }
            GroupRequest::DescribeGroups(r) => GroupResponse::DescribeGroups(
                DescribeGroupsResponse::default().with_groups(
                    r.groups
                        .iter()
                        .map(|g| {
                            DescribedGroup::default()
                                .with_group_id(g.clone())
                                .with_error_code(code)
                        })
                        .collect(),
                ),
            ),
            GroupRequest::DeleteGroups(r) => GroupResponse::DeleteGroups(
                DeleteGroupsResponse::default().with_results(
                    r.groups_names
                        .iter()
                        .map(|g| {
                            DeletableGroupResult::default()
                                .with_group_id(g.clone())
                                .with_error_code(code)
                        })
                        .collect(),
                ),
            ),
            GroupRequest::TxnOffsetCommit(r) => GroupResponse::TxnOffsetCommit(
                TxnOffsetCommitResponse::default().with_topics(
                    r.topics
                        .iter()
                        .map(|t| {
                            TxnOffsetCommitResponseTopic::default()
                                .with_name(t.name.clone())
                                .with_partitions(
                                    t.partitions
                                        .iter()
                                        .map(|p| {
                                            TxnOffsetCommitResponsePartition::default()
                                                .with_partition_index(p.partition_index)
                                                .with_error_code(code)
                                        })
                                        .collect(),
                                )
                        })
                        .collect(),
                ),
            ),
            GroupRequest::ConsumerGroupHeartbeat(..) => GroupResponse::ConsumerGroupHeartbeat(
                ConsumerGroupHeartbeatResponse::default().with_error_code(code),
            ),
            GroupRequest::ConsumerGroupDescribe(r, _) => GroupResponse::ConsumerGroupDescribe(
                ConsumerGroupDescribeResponse::default().with_groups(
                    r.group_ids
                        .iter()
                        .map(|g| {
                            ConsumerDescribedGroup::default()
                                .with_group_id(g.clone())
                                .with_error_code(code)
                        })
                        .collect(),
                ),
            ),
        }
    }
}

/// OffsetFetch refused: per group from v8, at the top level from v2, per partition before.
fn offset_fetch_refused(
    r: &OffsetFetchRequest,
    api_version: i16,
    code: i16,
) -> OffsetFetchResponse {
    if api_version >= OFFSET_FETCH_GROUPS_VERSION {
        return OffsetFetchResponse::default().with_groups(
            r.groups
                .iter()
                .map(|g| {
                    OffsetFetchResponseGroup::default()
                        .with_group_id(g.group_id.clone())
                        .with_error_code(code)
                })
                .collect(),
        );
    }
    let topics = r
        .topics
        .iter()
        .flatten()
        .map(|t| {
            OffsetFetchResponseTopic::default()
                .with_name(t.name.clone())
                .with_partitions(
                    t.partition_indexes
                        .iter()
                        .map(|p| {
                            OffsetFetchResponsePartition::default()
                                .with_partition_index(*p)
                                .with_committed_offset(-1)
                                .with_error_code(code)
                        })
                        .collect(),
                )
        })
        .collect();
    let body = OffsetFetchResponse::default().with_topics(topics);
    if api_version >= OFFSET_FETCH_TOP_LEVEL_ERROR_VERSION {
        body.with_error_code(code)
    } else {
        body
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use kafka_protocol::messages::offset_fetch_request::{
        OffsetFetchRequestGroup, OffsetFetchRequestTopic,
    };
    use kafka_protocol::protocol::StrBytes;

    #[test]
    fn refusals_carry_the_code_where_clients_look() {
        // Goal: a refused OffsetFetch names the error per group from v8, at the top level
        // (and per partition) before; a refused DescribeGroups names it for each group.
        let code = ResponseError::NotCoordinator;
        let r = OffsetFetchRequest::default()
            .with_group_id(GroupId(StrBytes::from_static_str("g")))
            .with_topics(Some(vec![OffsetFetchRequestTopic::default()
                .with_name(TopicName(StrBytes::from_static_str("t")))
                .with_partition_indexes(vec![0, 1])]))
            .with_groups(vec![OffsetFetchRequestGroup::default()
                .with_group_id(GroupId(StrBytes::from_static_str("g")))]);
        let GroupResponse::OffsetFetch(v8) = GroupRequest::OffsetFetch(r.clone()).refused(8, code)
        else {
            panic!("an OffsetFetch answer")
        };
        assert_eq!(v8.groups.len(), 1);
        assert_eq!(v8.groups[0].error_code, code.code());
        assert_eq!(v8.error_code, 0);
        let GroupResponse::OffsetFetch(v1) = GroupRequest::OffsetFetch(r.clone()).refused(1, code)
        else {
            panic!("an OffsetFetch answer")
        };
        assert_eq!(v1.error_code, 0);
        assert!(v1.topics[0]
            .partitions
            .iter()
            .all(|p| p.error_code == code.code()));
        let GroupResponse::OffsetFetch(v5) = GroupRequest::OffsetFetch(r).refused(5, code) else {
            panic!("an OffsetFetch answer")
        };
        assert_eq!(v5.error_code, code.code());
        let d = DescribeGroupsRequest::default().with_groups(vec![
            GroupId(StrBytes::from_static_str("a")),
            GroupId(StrBytes::from_static_str("b")),
        ]);
        let GroupResponse::DescribeGroups(b) = GroupRequest::DescribeGroups(d).refused(5, code)
        else {
            panic!("a DescribeGroups answer")
        };
        assert_eq!(b.groups.len(), 2);
        assert!(b.groups.iter().all(|g| g.error_code == code.code()));
    }
}
