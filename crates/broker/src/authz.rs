//! What a connection's principal may do: the ACL questions handlers ask before they act,
//! with Kafka's per-API rules living in each handler. An [`Access`] is cheap to clone and
//! owns what it needs, so a handler can carry it into the part of its answer that runs
//! later (filtering a coordinator's response).
//!
//! While the authorizer is off every question is answered yes, so handlers ask
//! unconditionally.

use std::net::IpAddr;
use std::sync::Arc;

use weir_meta::acls::{Operation, ResourceType};
use weir_wire::ResponseError;

use crate::connection::ClientInfo;
use crate::security::principal::Principal;
use crate::state::{ApiError, BrokerState};

/// The resource name Kafka gives the cluster.
pub const CLUSTER_NAME: &str = "kafka-cluster";

/// The operations a topic supports, as Kafka lists them for authorized operations.
const TOPIC_OPERATIONS: [Operation; 8] = [
    Operation::Read,
    Operation::Write,
    Operation::Create,
    Operation::Delete,
    Operation::Alter,
    Operation::Describe,
    Operation::DescribeConfigs,
    Operation::AlterConfigs,
];

/// The operations the cluster supports.
const CLUSTER_OPERATIONS: [Operation; 7] = [
    Operation::Create,
    Operation::ClusterAction,
    Operation::DescribeConfigs,
    Operation::AlterConfigs,
    Operation::IdempotentWrite,
    Operation::Alter,
    Operation::Describe,
];

/// The operations a group supports.
const GROUP_OPERATIONS: [Operation; 5] = [
    Operation::Read,
    Operation::Describe,
    Operation::Delete,
    Operation::DescribeConfigs,
    Operation::AlterConfigs,
];

#[derive(Clone)]
pub struct Access {
    state: Arc<BrokerState>,
    principal: Arc<Principal>,
    host: IpAddr,
}

impl Access {
    pub fn of(state: &Arc<BrokerState>, client: &ClientInfo) -> Access {
        Access {
            state: Arc::clone(state),
            principal: Arc::clone(&client.principal),
            host: client.peer.ip(),
        }
    }

    /// The access of `principal` connected from `host`, for callers that are not Kafka
    /// connections (the HTTP API).
    pub fn new(state: &Arc<BrokerState>, principal: Principal, host: IpAddr) -> Access {
        Access {
            state: Arc::clone(state),
            principal: Arc::new(principal),
            host,
        }
    }

    pub fn principal(&self) -> &Principal {
        &self.principal
    }

    fn allows(&self, operation: Operation, resource_type: ResourceType, name: &str) -> bool {
        self.state
            .authorize(&self.principal, self.host, operation, resource_type, name)
    }

    pub fn topic(&self, operation: Operation, name: &str) -> bool {
        self.allows(operation, ResourceType::Topic, name)
    }

    pub fn group(&self, operation: Operation, name: &str) -> bool {
        self.allows(operation, ResourceType::Group, name)
    }

    pub fn cluster(&self, operation: Operation) -> bool {
        self.allows(operation, ResourceType::Cluster, CLUSTER_NAME)
    }

    pub fn transactional_id(&self, operation: Operation, id: &str) -> bool {
        self.allows(operation, ResourceType::TransactionalId, id)
    }

    /// Whether the principal may perform `operation` on at least one topic.
    pub fn any_topic(&self, operation: Operation) -> bool {
        self.state
            .authorize_any(&self.principal, self.host, operation, ResourceType::Topic)
    }

    /// Of `supported`, the operations the principal may perform on the resource, as the
    /// bit field of their ACL operation codes that authorized-operations fields report.
    fn operations_on(
        &self,
        supported: &[Operation],
        resource_type: ResourceType,
        name: &str,
    ) -> i32 {
        supported
            .iter()
            .filter(|op| self.allows(**op, resource_type, name))
            .fold(0, |bits, op| bits | (1 << op.code()))
    }

    /// The operations the principal may perform on a topic (Metadata,
    /// DescribeTopicPartitions).
    pub fn topic_operations(&self, name: &str) -> i32 {
        self.operations_on(&TOPIC_OPERATIONS, ResourceType::Topic, name)
    }

    /// The operations the principal may perform on a group (DescribeGroups,
    /// ConsumerGroupDescribe).
    pub fn group_operations(&self, name: &str) -> i32 {
        self.operations_on(&GROUP_OPERATIONS, ResourceType::Group, name)
    }

    /// The operations the principal may perform on the cluster (DescribeCluster).
    pub fn cluster_operations(&self) -> i32 {
        self.operations_on(&CLUSTER_OPERATIONS, ResourceType::Cluster, CLUSTER_NAME)
    }

    /// CREATE on the cluster, or on the topic itself: what creating a topic needs.
    pub fn create_topic(&self, name: &str) -> bool {
        self.cluster(Operation::Create) || self.topic(Operation::Create, name)
    }
}

/// A refusal as Kafka words it when the handler adds no message of its own (the error's
/// default message).
pub fn refusal(code: ResponseError) -> ApiError {
    let message = match code {
        ResponseError::TopicAuthorizationFailed => "Topic authorization failed.",
        ResponseError::GroupAuthorizationFailed => "Group authorization failed.",
        ResponseError::ClusterAuthorizationFailed => "Cluster authorization failed.",
        ResponseError::TransactionalIdAuthorizationFailed => {
            "Transactional Id authorization failed."
        }
        _ => "Authorization failed.",
    };
    ApiError::new(code, message)
}
