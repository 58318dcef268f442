//! The APIs that act on the cluster as a whole, and the cluster operation each needs, as
//! Kafka checks them: creating and deleting ACLs, electing leaders, reassigning partitions
//! and altering SCRAM credentials need ALTER; describing ACLs, reassignments and SCRAM
//! credentials needs DESCRIBE; describing client quotas DESCRIBE_CONFIGS and altering them
//! ALTER_CONFIGS; writing transaction markers ALTER or CLUSTER_ACTION. A
//! refused request is answered CLUSTER_AUTHORIZATION_FAILED in the shape of its response,
//! before its handler runs.

use kafka_protocol::messages::alter_client_quotas_response::{
    EntityData as AlteredQuotaEntity, EntryData as AlteredQuotaEntry,
};
use kafka_protocol::messages::alter_partition_reassignments_response::{
    ReassignablePartitionResponse, ReassignableTopicResponse,
};
use kafka_protocol::messages::alter_user_scram_credentials_response::AlterUserScramCredentialsResult;
use kafka_protocol::messages::create_acls_response::AclCreationResult;
use kafka_protocol::messages::delete_acls_response::DeleteAclsFilterResult;
use kafka_protocol::messages::elect_leaders_response::{PartitionResult, ReplicaElectionResult};
use kafka_protocol::messages::write_txn_markers_response::{
    WritableTxnMarkerPartitionResult, WritableTxnMarkerResult, WritableTxnMarkerTopicResult,
};
use kafka_protocol::messages::*;
use kafka_protocol::protocol::StrBytes;
use weir_meta::acls::Operation;
use weir_wire::request::Request;
use weir_wire::ResponseError;

use super::{str_bytes, RequestMeta};
use crate::authz::{refusal, Access};
use crate::connection::Reply;

const DENIED: ResponseError = ResponseError::ClusterAuthorizationFailed;

/// The refusal of `request`, if it needs a cluster operation the principal lacks.
pub fn refuse(access: &Access, meta: &RequestMeta, request: &Request) -> Option<Reply> {
    let allowed = |op: Operation| access.cluster(op);
    let message = || Some(str_bytes(&refusal(DENIED).message));
    let code = DENIED.code();
    let reply = match request {
        Request::CreateAcls(r) if !allowed(Operation::Alter) => meta.reply(
            &CreateAclsResponse::default().with_results(
                r.creations
                    .iter()
                    .map(|_| {
                        AclCreationResult::default()
                            .with_error_code(code)
                            .with_error_message(message())
                    })
                    .collect(),
            ),
        ),
        Request::DeleteAcls(r) if !allowed(Operation::Alter) => meta.reply(
            &DeleteAclsResponse::default().with_filter_results(
                r.filters
                    .iter()
                    .map(|_| {
                        DeleteAclsFilterResult::default()
                            .with_error_code(code)
                            .with_error_message(message())
                    })
                    .collect(),
            ),
        ),
        Request::DescribeAcls(_) if !allowed(Operation::Describe) => meta.reply(
            &DescribeAclsResponse::default()
                .with_error_code(code)
                .with_error_message(message()),
        ),
        Request::DescribeUserScramCredentials(_) if !allowed(Operation::Describe) => meta.reply(
            &DescribeUserScramCredentialsResponse::default()
                .with_error_code(code)
                .with_error_message(message()),
        ),
        Request::AlterUserScramCredentials(r) if !allowed(Operation::Alter) => {
            let mut users: Vec<&StrBytes> = r
                .deletions
                .iter()
                .map(|d| &d.name)
                .chain(r.upsertions.iter().map(|u| &u.name))
                .collect();
            users.sort();
            users.dedup();
            meta.reply(
                &AlterUserScramCredentialsResponse::default().with_results(
                    users
                        .into_iter()
                        .map(|u| {
                            AlterUserScramCredentialsResult::default()
                                .with_user(u.clone())
                                .with_error_code(code)
                                .with_error_message(message())
                        })
                        .collect(),
                ),
            )
        }
        Request::DescribeClientQuotas(_) if !allowed(Operation::DescribeConfigs) => meta.reply(
            &DescribeClientQuotasResponse::default()
                .with_error_code(code)
                .with_error_message(message())
                .with_entries(None),
        ),
        Request::AlterClientQuotas(r) if !allowed(Operation::AlterConfigs) => meta.reply(
            &AlterClientQuotasResponse::default().with_entries(
                r.entries
                    .iter()
                    .map(|e| {
                        AlteredQuotaEntry::default()
                            .with_error_code(code)
                            .with_error_message(message())
                            .with_entity(
                                e.entity
                                    .iter()
                                    .map(|p| {
                                        AlteredQuotaEntity::default()
                                            .with_entity_type(p.entity_type.clone())
                                            .with_entity_name(p.entity_name.clone())
                                    })
                                    .collect(),
                            )
                    })
                    .collect(),
            ),
        ),
        Request::ElectLeaders(r) if !allowed(Operation::Alter) => meta.reply(
            &ElectLeadersResponse::default()
                .with_error_code(code)
                .with_replica_election_results(
                    r.topic_partitions
                        .iter()
                        .flatten()
                        .map(|t| {
                            ReplicaElectionResult::default()
                                .with_topic(t.topic.clone())
                                .with_partition_result(
                                    t.partitions
                                        .iter()
                                        .map(|p| {
                                            PartitionResult::default()
                                                .with_partition_id(*p)
                                                .with_error_code(code)
                                                .with_error_message(message())
                                        })
                                        .collect(),
                                )
                        })
                        .collect(),
                ),
        ),
        Request::AlterPartitionReassignments(r) if !allowed(Operation::Alter) => meta.reply(
            &AlterPartitionReassignmentsResponse::default()
                .with_error_code(code)
                .with_error_message(message())
                .with_responses(
                    r.topics
                        .iter()
                        .map(|t| {
                            ReassignableTopicResponse::default()
                                .with_name(t.name.clone())
                                .with_partitions(
                                    t.partitions
                                        .iter()
                                        .map(|p| {
                                            ReassignablePartitionResponse::default()
                                                .with_partition_index(p.partition_index)
                                                .with_error_code(code)
                                                .with_error_message(message())
                                        })
                                        .collect(),
                                )
                        })
                        .collect(),
                ),
        ),
        Request::ListPartitionReassignments(_) if !allowed(Operation::Describe) => meta.reply(
            &ListPartitionReassignmentsResponse::default()
                .with_error_code(code)
                .with_error_message(message()),
        ),
        Request::WriteTxnMarkers(r)
            if !allowed(Operation::Alter) && !allowed(Operation::ClusterAction) =>
        {
            meta.reply(
                &WriteTxnMarkersResponse::default().with_markers(
                    r.markers
                        .iter()
                        .map(|m| {
                            WritableTxnMarkerResult::default()
                                .with_producer_id(m.producer_id)
                                .with_topics(
                                    m.topics
                                        .iter()
                                        .map(|t| {
                                            WritableTxnMarkerTopicResult::default()
                                                .with_name(t.name.clone())
                                                .with_partitions(
                                                    t.partition_indexes
                                                        .iter()
                                                        .map(|p| {
                                                            WritableTxnMarkerPartitionResult::default()
                                                                .with_partition_index(*p)
                                                                .with_error_code(code)
                                                        })
                                                        .collect(),
                                                )
                                        })
                                        .collect(),
                                )
                        })
                        .collect(),
                ),
            )
        }
        _ => return None,
    };
    Some(reply)
}
