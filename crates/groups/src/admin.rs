//! ListGroups, DescribeGroups and DeleteGroups.

use kafka_protocol::error::ResponseError;
use kafka_protocol::messages::delete_groups_response::DeletableGroupResult;
use kafka_protocol::messages::describe_groups_response::{DescribedGroup, DescribedGroupMember};
use kafka_protocol::messages::list_groups_response::ListedGroup;
use kafka_protocol::messages::*;
use kafka_protocol::protocol::StrBytes;

use crate::coordinator::Coordinator;
use crate::group::GroupState;
use crate::records::RecordKey;
use crate::{GroupResponse, Output, Record, RequestContext};

fn sb(s: &str) -> StrBytes {
    StrBytes::from_string(s.to_string())
}

pub(crate) fn list(
    c: &mut Coordinator,
    ctx: &RequestContext,
    req: ListGroupsRequest,
    out: &mut Output,
) {
    let v = ctx.api_version;
    let groups = c
        .groups
        .values()
        .filter(|g| {
            req.states_filter.is_empty()
                || req
                    .states_filter
                    .iter()
                    .any(|s| s.as_str().eq_ignore_ascii_case(g.state_name()))
        })
        .filter(|g| {
            req.types_filter.is_empty()
                || req
                    .types_filter
                    .iter()
                    .any(|t| t.as_str().eq_ignore_ascii_case(g.group_type()))
        })
        .map(|g| {
            // A consumer group's protocol type is "consumer", as Kafka lists it.
            let protocol_type = if g.modern.is_some() {
                "consumer"
            } else {
                g.protocol_type.as_deref().unwrap_or("")
            };
            let mut l = ListedGroup::default()
                .with_group_id(GroupId(sb(&g.group_id)))
                .with_protocol_type(sb(protocol_type));
            if v >= 4 {
                l.group_state = sb(g.state_name());
            }
            if v >= 5 {
                l.group_type = sb(g.group_type());
            }
            l
        })
        .collect();
    out.responses.push((
        ctx.token,
        GroupResponse::ListGroups(ListGroupsResponse::default().with_groups(groups)),
    ));
}

pub(crate) fn describe(
    c: &mut Coordinator,
    ctx: &RequestContext,
    req: DescribeGroupsRequest,
    out: &mut Output,
) {
    let v = ctx.api_version;
    let groups = req
        .groups
        .iter()
        .map(|gid| {
            let d = DescribedGroup::default().with_group_id(gid.clone());
            if gid.0.is_empty() {
                return d.with_error_code(ResponseError::InvalidGroupId.code());
            }
            let Some(g) = c.groups.get(gid.0.as_str()) else {
                // From v6 a missing group is an error; before, it is described as Dead.
                if v >= 6 {
                    return d
                        .with_error_code(ResponseError::GroupIdNotFound.code())
                        .with_error_message(Some(sb(&format!(
                            "Group {} not found.",
                            gid.0.as_str()
                        ))))
                        .with_group_state(sb(GroupState::Dead.name()));
                }
                return d.with_group_state(sb(GroupState::Dead.name()));
            };
            if g.modern.is_some() {
                // A consumer group (KIP-848) is described by ConsumerGroupDescribe; here it
                // is not found, as in Kafka, from v6 with the reason.
                if v >= 6 {
                    return d
                        .with_error_code(ResponseError::GroupIdNotFound.code())
                        .with_error_message(Some(sb(&format!(
                            "Group {} is not a classic group.",
                            gid.0.as_str()
                        ))))
                        .with_group_state(sb(GroupState::Dead.name()));
                }
                return d.with_group_state(sb(GroupState::Dead.name()));
            }
            // Subscriptions and assignments are shown only once the group is Stable, as
            // in Kafka; in other states the member list carries identities only.
            let stable = g.is(GroupState::Stable);
            let protocol = g.protocol_name.clone().unwrap_or_default();
            let members = g
                .members
                .values()
                .map(|m| {
                    let mut dm = DescribedGroupMember::default()
                        .with_member_id(sb(&m.member_id))
                        .with_client_id(sb(&m.client_id))
                        .with_client_host(sb(&m.client_host));
                    if v >= 4 {
                        dm.group_instance_id = m.group_instance_id.as_deref().map(sb);
                    }
                    if stable {
                        dm.member_metadata = m.metadata_for(&protocol);
                        dm.member_assignment = m.assignment.clone();
                    }
                    dm
                })
                .collect();
            d.with_group_state(sb(g.state().name()))
                .with_protocol_type(sb(g.protocol_type.as_deref().unwrap_or("")))
                .with_protocol_data(sb(if stable { &protocol } else { "" }))
                .with_members(members)
        })
        .collect();
    out.responses.push((
        ctx.token,
        GroupResponse::DescribeGroups(DescribeGroupsResponse::default().with_groups(groups)),
    ));
}

pub(crate) fn delete(
    c: &mut Coordinator,
    _now_ms: i64,
    ctx: &RequestContext,
    req: DeleteGroupsRequest,
    out: &mut Output,
) {
    let results = req
        .groups_names
        .iter()
        .map(|gid| {
            let id = gid.0.to_string();
            let code = match c.groups.get(&id) {
                _ if id.is_empty() => ResponseError::InvalidGroupId.code(),
                None => ResponseError::GroupIdNotFound.code(),
                Some(g) if !g.members.is_empty() || !g.is(GroupState::Empty) => {
                    ResponseError::NonEmptyGroup.code()
                }
                Some(g) if g.modern.as_ref().is_some_and(|cg| !cg.members.is_empty()) => {
                    ResponseError::NonEmptyGroup.code()
                }
                Some(g) => {
                    let partition = c.partition_of(&id);
                    let mut records: Vec<Record> = g
                        .offsets
                        .keys()
                        .map(|(t, p)| Record {
                            partition,
                            key: RecordKey::OffsetCommit {
                                group: id.clone(),
                                topic: t.clone(),
                                partition: *p,
                            }
                            .encode(),
                            value: None,
                            producer: None,
                        })
                        .collect();
                    if g.modern.is_some() {
                        // An empty consumer group's own records go first, its epoch last.
                        records.extend(crate::consumer_group_heartbeat::group_tombstones(c, &id));
                    }
                    records.push(Record {
                        partition,
                        key: RecordKey::GroupMetadata { group: id.clone() }.encode(),
                        value: None,
                        producer: None,
                    });
                    for r in &records {
                        c.replay(&r.key, None).expect("tombstones are readable");
                    }
                    out.records.extend(records);
                    0
                }
            };
            DeletableGroupResult::default()
                .with_group_id(gid.clone())
                .with_error_code(code)
        })
        .collect();
    out.responses.push((
        ctx.token,
        GroupResponse::DeleteGroups(DeleteGroupsResponse::default().with_results(results)),
    ));
}
