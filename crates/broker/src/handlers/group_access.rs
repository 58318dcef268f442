//! The ACL checks of the group APIs, made before the coordinator sees a request and, for
//! the APIs that filter, applied to its answer. The rules are Kafka's:
//!
//! - JoinGroup, SyncGroup, Heartbeat, LeaveGroup, ConsumerGroupHeartbeat and OffsetCommit
//!   need READ on the group; OffsetCommit and OffsetDelete also READ on each topic;
//! - OffsetFetch, DescribeGroups and ConsumerGroupDescribe need DESCRIBE on each group, and
//!   OffsetFetch DESCRIBE on each topic (named ones are refused, in the every-topic form the
//!   others are left out);
//! - DeleteGroups and OffsetDelete need DELETE on the group;
//! - ListGroups lists every group to a principal with DESCRIBE on the cluster, else only
//!   the groups it may DESCRIBE.
//!
//! A refused group gets GROUP_AUTHORIZATION_FAILED, a refused topic
//! TOPIC_AUTHORIZATION_FAILED.

use kafka_protocol::messages::offset_commit_response::{
    OffsetCommitResponsePartition, OffsetCommitResponseTopic,
};
use kafka_protocol::messages::offset_delete_response::{
    OffsetDeleteResponsePartition, OffsetDeleteResponseTopic,
};
use kafka_protocol::messages::offset_fetch_response::{
    OffsetFetchResponseGroup, OffsetFetchResponsePartition, OffsetFetchResponsePartitions,
    OffsetFetchResponseTopic, OffsetFetchResponseTopics,
};
use kafka_protocol::messages::{
    consumer_group_describe_response, delete_groups_response::DeletableGroupResult,
    describe_groups_response::DescribedGroup, ConsumerGroupDescribeResponse,
    ConsumerGroupHeartbeatResponse, DeleteGroupsResponse, DescribeGroupsResponse,
    HeartbeatResponse, JoinGroupResponse, LeaveGroupResponse, OffsetCommitResponse,
    OffsetDeleteResponse, OffsetFetchResponse, SyncGroupResponse,
};
use weir_groups::{GroupRequest, GroupResponse};
use weir_meta::acls::Operation;
use weir_wire::ResponseError;

use super::{str_bytes, RequestMeta};
use crate::authz::{refusal, Access};
use crate::connection::Reply;

const GROUP_DENIED: ResponseError = ResponseError::GroupAuthorizationFailed;
const TOPIC_DENIED: ResponseError = ResponseError::TopicAuthorizationFailed;

/// OffsetFetch v8 batches groups; earlier versions ask for one.
const OFFSET_FETCH_GROUPS_VERSION: i16 = 8;

/// What to add to, or take from, the coordinator's answer once it comes.
#[derive(Default)]
pub struct After {
    /// OffsetCommit: the refused partitions, by topic.
    commit_refused: Vec<OffsetCommitResponseTopic>,
    /// OffsetDelete: the refused partitions, by topic.
    delete_offsets_refused: Vec<OffsetDeleteResponseTopic>,
    /// OffsetFetch v8+: groups refused, and per allowed group the refused named topics.
    fetch_groups_refused: Vec<OffsetFetchResponseGroup>,
    fetch_topics_refused: Vec<(String, Vec<OffsetFetchResponseTopics>)>,
    /// OffsetFetch before v8: the refused named topics.
    fetch_topics_refused_v0: Vec<OffsetFetchResponseTopic>,
    /// DescribeGroups, DeleteGroups, ConsumerGroupDescribe: the refused groups.
    described_refused: Vec<DescribedGroup>,
    deleted_refused: Vec<DeletableGroupResult>,
    consumer_described_refused: Vec<consumer_group_describe_response::DescribedGroup>,
    /// Leave out what the principal may not describe (ListGroups, OffsetFetch of every
    /// topic).
    filter: Option<Access>,
    /// DescribeGroups and ConsumerGroupDescribe asking for authorized operations: each
    /// described group's are the principal's.
    operations: Option<Access>,
}

/// Checks `request`, taking out what the principal may not touch: `Err` is the answer when
/// nothing of it may reach the coordinator.
pub fn check(
    access: &Access,
    meta: &RequestMeta,
    request: &mut GroupRequest,
) -> Result<After, Reply> {
    let mut after = After::default();
    let group_refused = |group: &str, op: Operation| !access.group(op, group);
    match request {
        GroupRequest::JoinGroup(r, _) if group_refused(&r.group_id, Operation::Read) => {
            let protocol_name = (meta.api_version < 7).then(|| str_bytes(""));
            return Err(meta.reply(
                &JoinGroupResponse::default()
                    .with_error_code(GROUP_DENIED.code())
                    .with_generation_id(-1)
                    .with_protocol_name(protocol_name),
            ));
        }
        GroupRequest::SyncGroup(r, _) if group_refused(&r.group_id, Operation::Read) => {
            return Err(
                meta.reply(&SyncGroupResponse::default().with_error_code(GROUP_DENIED.code()))
            );
        }
        GroupRequest::Heartbeat(r) if group_refused(&r.group_id, Operation::Read) => {
            return Err(
                meta.reply(&HeartbeatResponse::default().with_error_code(GROUP_DENIED.code()))
            );
        }
        GroupRequest::LeaveGroup(r) if group_refused(&r.group_id, Operation::Read) => {
            return Err(
                meta.reply(&LeaveGroupResponse::default().with_error_code(GROUP_DENIED.code()))
            );
        }
        GroupRequest::ConsumerGroupHeartbeat(r, _)
            if group_refused(&r.group_id, Operation::Read) =>
        {
            return Err(meta.reply(
                &ConsumerGroupHeartbeatResponse::default()
                    .with_error_code(GROUP_DENIED.code())
                    .with_error_message(Some(str_bytes(&refusal(GROUP_DENIED).message))),
            ));
        }
        GroupRequest::OffsetCommit(r) => {
            if group_refused(&r.group_id, Operation::Read) {
                let topics = r
                    .topics
                    .iter()
                    .map(|t| {
                        commit_topic(
                            t.name.0.as_str(),
                            t.partitions.iter().map(|p| p.partition_index),
                            GROUP_DENIED,
                        )
                    })
                    .collect();
                return Err(meta.reply(&OffsetCommitResponse::default().with_topics(topics)));
            }
            r.topics.retain(|t| {
                let allowed = access.topic(Operation::Read, t.name.0.as_str());
                if !allowed {
                    after.commit_refused.push(commit_topic(
                        t.name.0.as_str(),
                        t.partitions.iter().map(|p| p.partition_index),
                        TOPIC_DENIED,
                    ));
                }
                allowed
            });
        }
        GroupRequest::OffsetDelete(r) => {
            if group_refused(&r.group_id, Operation::Delete) {
                return Err(meta
                    .reply(&OffsetDeleteResponse::default().with_error_code(GROUP_DENIED.code())));
            }
            r.topics.retain(|t| {
                let allowed = access.topic(Operation::Read, t.name.0.as_str());
                if !allowed {
                    after.delete_offsets_refused.push(
                        OffsetDeleteResponseTopic::default()
                            .with_name(t.name.clone())
                            .with_partitions(
                                t.partitions
                                    .iter()
                                    .map(|p| {
                                        OffsetDeleteResponsePartition::default()
                                            .with_partition_index(p.partition_index)
                                            .with_error_code(TOPIC_DENIED.code())
                                    })
                                    .collect(),
                            ),
                    );
                }
                allowed
            });
        }
        GroupRequest::OffsetFetch(r) if meta.api_version >= OFFSET_FETCH_GROUPS_VERSION => {
            let mut every_topic = false;
            r.groups.retain_mut(|g| {
                if group_refused(&g.group_id, Operation::Describe) {
                    after.fetch_groups_refused.push(
                        OffsetFetchResponseGroup::default()
                            .with_group_id(g.group_id.clone())
                            .with_error_code(GROUP_DENIED.code()),
                    );
                    return false;
                }
                let Some(topics) = g.topics.as_mut() else {
                    every_topic = true;
                    return true;
                };
                let mut refused = Vec::new();
                topics.retain(|t| {
                    let allowed = access.topic(Operation::Describe, t.name.0.as_str());
                    if !allowed {
                        refused.push(
                            OffsetFetchResponseTopics::default()
                                .with_name(t.name.clone())
                                .with_topic_id(t.topic_id)
                                .with_partitions(
                                    t.partition_indexes
                                        .iter()
                                        .map(|i| {
                                            OffsetFetchResponsePartitions::default()
                                                .with_partition_index(*i)
                                                .with_committed_offset(-1)
                                                .with_committed_leader_epoch(-1)
                                                .with_error_code(TOPIC_DENIED.code())
                                        })
                                        .collect(),
                                ),
                        );
                    }
                    allowed
                });
                if !refused.is_empty() {
                    after
                        .fetch_topics_refused
                        .push((g.group_id.to_string(), refused));
                }
                true
            });
            if every_topic {
                after.filter = Some(access.clone());
            }
            if r.groups.is_empty() {
                return Err(meta.reply(
                    &OffsetFetchResponse::default()
                        .with_groups(std::mem::take(&mut after.fetch_groups_refused)),
                ));
            }
        }
        GroupRequest::OffsetFetch(r) => {
            if group_refused(&r.group_id, Operation::Describe) {
                return Err(meta
                    .reply(&OffsetFetchResponse::default().with_error_code(GROUP_DENIED.code())));
            }
            match r.topics.as_mut() {
                None => after.filter = Some(access.clone()),
                Some(topics) => topics.retain(|t| {
                    let allowed = access.topic(Operation::Describe, t.name.0.as_str());
                    if !allowed {
                        after.fetch_topics_refused_v0.push(
                            OffsetFetchResponseTopic::default()
                                .with_name(t.name.clone())
                                .with_partitions(
                                    t.partition_indexes
                                        .iter()
                                        .map(|i| {
                                            OffsetFetchResponsePartition::default()
                                                .with_partition_index(*i)
                                                .with_committed_offset(-1)
                                                .with_committed_leader_epoch(-1)
                                                .with_error_code(TOPIC_DENIED.code())
                                        })
                                        .collect(),
                                ),
                        );
                    }
                    allowed
                }),
            }
        }
        GroupRequest::ListGroups(_) => {
            if !access.cluster(Operation::Describe) {
                after.filter = Some(access.clone());
            }
        }
        GroupRequest::DescribeGroups(r) => {
            if r.include_authorized_operations {
                after.operations = Some(access.clone());
            }
            r.groups.retain(|g| {
                let allowed = access.group(Operation::Describe, g);
                if !allowed {
                    after.described_refused.push(
                        DescribedGroup::default()
                            .with_group_id(g.clone())
                            .with_error_code(GROUP_DENIED.code())
                            .with_authorized_operations(i32::MIN),
                    );
                }
                allowed
            });
            if r.groups.is_empty() {
                return Err(meta.reply(
                    &DescribeGroupsResponse::default()
                        .with_groups(std::mem::take(&mut after.described_refused)),
                ));
            }
        }
        GroupRequest::DeleteGroups(r) => {
            r.groups_names.retain(|g| {
                let allowed = access.group(Operation::Delete, g);
                if !allowed {
                    after.deleted_refused.push(
                        DeletableGroupResult::default()
                            .with_group_id(g.clone())
                            .with_error_code(GROUP_DENIED.code()),
                    );
                }
                allowed
            });
            if r.groups_names.is_empty() {
                return Err(meta.reply(
                    &DeleteGroupsResponse::default()
                        .with_results(std::mem::take(&mut after.deleted_refused)),
                ));
            }
        }
        GroupRequest::ConsumerGroupDescribe(r, _) => {
            if r.include_authorized_operations {
                after.operations = Some(access.clone());
            }
            r.group_ids.retain(|g| {
                let allowed = access.group(Operation::Describe, g);
                if !allowed {
                    after.consumer_described_refused.push(
                        consumer_group_describe_response::DescribedGroup::default()
                            .with_group_id(g.clone())
                            .with_error_code(GROUP_DENIED.code())
                            .with_error_message(Some(str_bytes(&refusal(GROUP_DENIED).message)))
                            .with_authorized_operations(i32::MIN),
                    );
                }
                allowed
            });
            if r.group_ids.is_empty() {
                return Err(meta.reply(
                    &ConsumerGroupDescribeResponse::default()
                        .with_groups(std::mem::take(&mut after.consumer_described_refused)),
                ));
            }
        }
        _ => {}
    }
    Ok(after)
}

fn commit_topic(
    name: &str,
    partitions: impl Iterator<Item = i32>,
    code: ResponseError,
) -> OffsetCommitResponseTopic {
    OffsetCommitResponseTopic::default()
        .with_name(kafka_protocol::messages::TopicName(str_bytes(name)))
        .with_partitions(
            partitions
                .map(|i| {
                    OffsetCommitResponsePartition::default()
                        .with_partition_index(i)
                        .with_error_code(code.code())
                })
                .collect(),
        )
}

impl After {
    /// The OffsetCommit partitions refused, to answer beside those the coordinator took.
    pub fn take_commit_refused(&mut self) -> Vec<OffsetCommitResponseTopic> {
        std::mem::take(&mut self.commit_refused)
    }

    /// Adds the refusals to the coordinator's answer and leaves out what the principal may
    /// not see.
    pub fn apply(self, response: &mut GroupResponse) {
        let visible_topic = |name: &str| {
            self.filter
                .as_ref()
                .is_none_or(|a| a.topic(Operation::Describe, name))
        };
        match response {
            GroupResponse::OffsetDelete(b) => b.topics.extend(self.delete_offsets_refused),
            GroupResponse::OffsetFetch(b) => {
                for g in b.groups.iter_mut() {
                    g.topics.retain(|t| visible_topic(t.name.0.as_str()));
                    if let Some((_, refused)) = self
                        .fetch_topics_refused
                        .iter()
                        .find(|(id, _)| id.as_str() == g.group_id.0.as_str())
                    {
                        g.topics.extend(refused.iter().cloned());
                    }
                }
                b.groups.extend(self.fetch_groups_refused);
                b.topics.retain(|t| visible_topic(t.name.0.as_str()));
                b.topics.extend(self.fetch_topics_refused_v0);
            }
            GroupResponse::ListGroups(b) => {
                if let Some(access) = &self.filter {
                    b.groups
                        .retain(|g| access.group(Operation::Describe, g.group_id.0.as_str()));
                }
            }
            GroupResponse::DescribeGroups(b) => {
                if let Some(access) = &self.operations {
                    for g in b.groups.iter_mut().filter(|g| g.error_code == 0) {
                        g.authorized_operations = access.group_operations(g.group_id.0.as_str());
                    }
                }
                b.groups.extend(self.described_refused)
            }
            GroupResponse::DeleteGroups(b) => b.results.extend(self.deleted_refused),
            GroupResponse::ConsumerGroupDescribe(b) => {
                if let Some(access) = &self.operations {
                    for g in b.groups.iter_mut().filter(|g| g.error_code == 0) {
                        g.authorized_operations = access.group_operations(g.group_id.0.as_str());
                    }
                }
                b.groups.extend(self.consumer_described_refused)
            }
            _ => {}
        }
    }
}
