//! The ACL checks of the HTTP API and the console: each route asks what the Kafka API
//! doing the same work asks (docs/api.md lists them), of the caller the login found.
//! A refusal is a 403 naming the principal, the operation and the resource, and the
//! `kafka-acls` command that would grant it. While the authorizer is off every check
//! passes.

use axum::http::StatusCode;
use weir_broker::authz::Access;
use weir_meta::acls::Operation;

use super::ApiContext;
use crate::errors::HttpError;

/// A resource an ACL names, as `kafka-acls` takes it.
enum Resource<'a> {
    Topic(&'a str),
    Group(&'a str),
    Cluster,
}

impl ApiContext {
    /// Refuses unless the caller may perform `operation` on the topic.
    pub fn require_topic(&self, operation: Operation, topic: &str) -> Result<(), HttpError> {
        if self.access.topic(operation, topic) {
            Ok(())
        } else {
            Err(refusal(&self.access, operation, Resource::Topic(topic)))
        }
    }

    /// Refuses unless the caller may perform `operation` on the group.
    pub fn require_group(&self, operation: Operation, group: &str) -> Result<(), HttpError> {
        if self.access.group(operation, group) {
            Ok(())
        } else {
            Err(refusal(&self.access, operation, Resource::Group(group)))
        }
    }

    /// Refuses unless the caller may perform `operation` on the cluster.
    pub fn require_cluster(&self, operation: Operation) -> Result<(), HttpError> {
        require_cluster(&self.access, operation)
    }

    /// Kafka's CreateTopics check: CREATE on the cluster, or on the topic.
    pub fn require_create_topic(&self, topic: &str) -> Result<(), HttpError> {
        if self.access.create_topic(topic) {
            Ok(())
        } else {
            Err(refusal(
                &self.access,
                Operation::Create,
                Resource::Topic(topic),
            ))
        }
    }

    /// Whether the caller may see the topic (Metadata's filter).
    pub fn may_describe_topic(&self, topic: &str) -> bool {
        self.access.topic(Operation::Describe, topic)
    }

    /// Whether the caller may see the group (ListGroups' filter: DESCRIBE on the cluster
    /// shows every group).
    pub fn may_describe_group(&self, group: &str) -> bool {
        self.access.cluster(Operation::Describe) || self.access.group(Operation::Describe, group)
    }
}

/// Refuses unless `access` may perform `operation` on the cluster (also `/metrics`,
/// outside the API).
pub fn require_cluster(access: &Access, operation: Operation) -> Result<(), HttpError> {
    if access.cluster(operation) {
        Ok(())
    } else {
        Err(refusal(access, operation, Resource::Cluster))
    }
}

/// The 403 naming the principal, what it may not do, and the grant that would allow it.
fn refusal(access: &Access, operation: Operation, resource: Resource<'_>) -> HttpError {
    let principal = access.principal();
    let op = operation.name();
    let grant_op = kafka_acls_operation(operation);
    let (code, what, flag) = match resource {
        Resource::Topic(t) => (
            "topic_authorization_failed",
            format!("topic '{t}'"),
            format!("--topic '{t}'"),
        ),
        Resource::Group(g) => (
            "group_authorization_failed",
            format!("group '{g}'"),
            format!("--group '{g}'"),
        ),
        Resource::Cluster => (
            "cluster_authorization_failed",
            "the cluster".to_string(),
            "--cluster".to_string(),
        ),
    };
    HttpError::new(
        StatusCode::FORBIDDEN,
        code,
        format!(
            "{principal} may not {op} {what}; an administrator can grant it with kafka-acls --add --allow-principal {principal} --operation {grant_op} {flag}."
        ),
    )
}

/// An operation as `kafka-acls --operation` spells it (`DescribeConfigs`).
fn kafka_acls_operation(operation: Operation) -> String {
    operation
        .name()
        .split('_')
        .map(|w| {
            let mut c = w.chars();
            match c.next() {
                Some(first) => first.to_string() + &c.as_str().to_lowercase(),
                None => String::new(),
            }
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn operations_are_spelled_as_kafka_acls_takes_them() {
        assert_eq!(kafka_acls_operation(Operation::Read), "Read");
        assert_eq!(
            kafka_acls_operation(Operation::DescribeConfigs),
            "DescribeConfigs"
        );
        assert_eq!(
            kafka_acls_operation(Operation::IdempotentWrite),
            "IdempotentWrite"
        );
    }
}
