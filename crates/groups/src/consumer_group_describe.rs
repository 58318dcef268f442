//! ConsumerGroupDescribe (KIP-848): epochs, the assignor, and per member what it holds and
//! what it is heading for.

use kafka_protocol::error::ResponseError;
use kafka_protocol::messages::consumer_group_describe_response::{
    Assignment as WireAssignment, DescribedGroup, Member, TopicPartitions,
};
use kafka_protocol::messages::*;
use kafka_protocol::protocol::StrBytes;

use crate::assignors;
use crate::consumer_records::Assignment;
use crate::coordinator::Coordinator;
use crate::topics::TopicImage;
use crate::{GroupResponse, Output, RequestContext};

/// Kafka's member type for a member of the consumer protocol (0 is classic, -1 unknown).
const MEMBER_TYPE_CONSUMER: i8 = 1;
/// "Not asked for", as Kafka fills `authorized_operations` when the request does not ask.
const AUTHORIZED_OPERATIONS_OMITTED: i32 = i32::MIN;

fn wire(a: &Assignment, image: &TopicImage) -> WireAssignment {
    WireAssignment::default().with_topic_partitions(
        a.iter()
            .map(|(id, ps)| {
                let name = image.name_of(*id).unwrap_or_default().to_string();
                TopicPartitions::default()
                    .with_topic_id(*id)
                    .with_topic_name(StrBytes::from_string(name).into())
                    .with_partitions(ps.iter().copied().collect())
            })
            .collect(),
    )
}

pub(crate) fn describe(
    c: &mut Coordinator,
    ctx: &RequestContext,
    req: ConsumerGroupDescribeRequest,
    image: &TopicImage,
    out: &mut Output,
) {
    let groups = req
        .group_ids
        .iter()
        .map(|id| {
            let base = DescribedGroup::default()
                .with_group_id(id.clone())
                .with_authorized_operations(AUTHORIZED_OPERATIONS_OMITTED);
            let Some(g) = c.groups.get(id.as_str()) else {
                return base
                    .with_error_code(ResponseError::GroupIdNotFound.code())
                    .with_error_message(Some(StrBytes::from_string(format!(
                        "Group {} not found.",
                        id.as_str()
                    ))));
            };
            let Some(cg) = &g.modern else {
                return base
                    .with_error_code(ResponseError::GroupIdNotFound.code())
                    .with_error_message(Some(StrBytes::from_string(format!(
                        "Group {} is not a consumer group.",
                        id.as_str()
                    ))));
            };
            let members = cg
                .members
                .values()
                .map(|m| {
                    let mut member = Member::default()
                        .with_member_id(StrBytes::from_string(m.member_id.clone()))
                        .with_instance_id(m.instance_id.clone().map(StrBytes::from_string))
                        .with_rack_id(m.rack_id.clone().map(StrBytes::from_string))
                        .with_member_epoch(m.member_epoch)
                        .with_client_id(StrBytes::from_string(m.client_id.clone()))
                        .with_client_host(StrBytes::from_string(m.client_host.clone()))
                        .with_subscribed_topic_names(
                            m.subscribed_topic_names
                                .iter()
                                .map(|t| StrBytes::from_string(t.clone()).into())
                                .collect(),
                        )
                        .with_subscribed_topic_regex(
                            m.subscribed_topic_regex.clone().map(StrBytes::from_string),
                        )
                        .with_assignment(wire(&m.assigned, image))
                        .with_target_assignment(wire(&cg.target_of(&m.member_id), image));
                    if ctx.api_version >= 1 {
                        member = member.with_member_type(MEMBER_TYPE_CONSUMER);
                    }
                    member
                })
                .collect();
            base.with_group_state(StrBytes::from_static_str(cg.state().name()))
                .with_group_epoch(cg.group_epoch)
                .with_assignment_epoch(cg.assignment_epoch)
                .with_assignor_name(StrBytes::from_string(
                    cg.preferred_assignor()
                        .unwrap_or_else(|| assignors::UNIFORM.to_string()),
                ))
                .with_members(members)
        })
        .collect();
    out.responses.push((
        ctx.token,
        GroupResponse::ConsumerGroupDescribe(
            ConsumerGroupDescribeResponse::default().with_groups(groups),
        ),
    ));
}
