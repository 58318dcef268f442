//! CreateAcls, DescribeAcls and DeleteAcls, answered as Kafka 4.x answers them: one result
//! per creation, one per delete filter (with the ACLs it removed), and the ACLs a describe
//! filter matches grouped by resource pattern.
//!
//! A request holding a code Kafka does not know (UNKNOWN, or past the last value) is one
//! Kafka refuses to read: the connection is closed. The ACLs are stored, and changes
//! persisted, whether or not authorization is on, so they can be written before it is
//! turned on (Kafka without an authorizer answers SECURITY_DISABLED instead).

use std::collections::BTreeMap;
use std::sync::Arc;

use kafka_protocol::messages::create_acls_response::AclCreationResult;
use kafka_protocol::messages::delete_acls_response::{
    DeleteAclsFilterResult, DeleteAclsMatchingAcl,
};
use kafka_protocol::messages::describe_acls_response::{AclDescription, DescribeAclsResource};
use kafka_protocol::messages::{
    CreateAclsRequest, CreateAclsResponse, DeleteAclsRequest, DeleteAclsResponse,
    DescribeAclsRequest, DescribeAclsResponse,
};
use weir_meta::acls::{self, AclBinding, AclBindingFilter};
use weir_wire::ResponseError;

use super::{str_bytes, RequestMeta};
use crate::connection::Reply;
use crate::state::{ApiError, BrokerState};

/// Logs why a request is refused unread and closes its connection, as Kafka does.
fn close_unreadable(meta: &RequestMeta, what: &str) -> Reply {
    tracing::warn!(api = ?meta.api_key, version = meta.api_version, "{what} holds an ACL code Kafka does not know; closing the connection");
    Reply::Close(None)
}

/// Whether every code of a creation is one Kafka knows (a value, ANY or MATCH).
fn creation_codes_known(c: &kafka_protocol::messages::create_acls_request::AclCreation) -> bool {
    acls::is_known_resource_type(c.resource_type)
        && acls::is_known_pattern_type(c.resource_pattern_type)
        && acls::is_known_operation(c.operation)
        && acls::is_known_permission(c.permission_type)
}

/// Whether a creation holds a code only a filter may have (ANY, or MATCH as pattern type).
fn creation_has_filter_code(
    c: &kafka_protocol::messages::create_acls_request::AclCreation,
) -> bool {
    c.resource_type == acls::CODE_ANY
        || c.resource_pattern_type == acls::CODE_ANY
        || c.resource_pattern_type == acls::CODE_MATCH
        || c.operation == acls::CODE_ANY
        || c.permission_type == acls::CODE_ANY
}

/// CreateAcls. Steps:
/// 1. refuse unread a request with a code Kafka does not know;
/// 2. fail the whole request when a creation holds a filter-only code: Kafka cannot even
///    build such a binding, and answers UNKNOWN_SERVER_ERROR, without a message, for every
///    creation;
/// 3. check each creation (Kafka's broker checks, then its controller's);
/// 4. create the valid ones and persist the catalog once;
/// 5. answer one result per creation, in order.
pub fn create(state: &Arc<BrokerState>, meta: &RequestMeta, request: CreateAclsRequest) -> Reply {
    // Authorization: ALTER on CLUSTER is checked in dispatch before this runs.
    // 1.
    if !request.creations.iter().all(creation_codes_known) {
        return close_unreadable(meta, "CreateAcls");
    }
    // 2.
    if request.creations.iter().any(creation_has_filter_code) {
        let failed = AclCreationResult::default()
            .with_error_code(ResponseError::UnknownServerError.code())
            .with_error_message(None);
        return meta.reply(
            &CreateAclsResponse::default().with_results(vec![failed; request.creations.len()]),
        );
    }
    // 3.
    let checked: Vec<Result<AclBinding, ApiError>> = request
        .creations
        .iter()
        .map(|c| {
            AclBinding::from_codes(
                c.resource_type,
                &c.resource_name,
                c.resource_pattern_type,
                &c.principal,
                &c.host,
                c.operation,
                c.permission_type,
            )
            .map_err(ApiError::from)
        })
        .collect();
    // 4.
    let valid: Vec<AclBinding> = checked.iter().flatten().cloned().collect();
    let mut created = state.create_acls(valid).into_iter();
    // 5.
    let results = checked
        .into_iter()
        .map(|c| {
            let outcome = match c {
                Ok(_) => created.next().expect("one result per valid creation"),
                Err(e) => Err(e),
            };
            match outcome {
                Ok(()) => AclCreationResult::default(),
                Err(e) => {
                    tracing::debug!(error = %e, "ACL not created");
                    AclCreationResult::default()
                        .with_error_code(e.code)
                        .with_error_message(Some(str_bytes(&e.message)))
                }
            }
        })
        .collect();
    meta.reply(&CreateAclsResponse::default().with_results(results))
}

/// DescribeAcls: the ACLs the filter matches, one entry per resource pattern.
pub fn describe(
    state: &Arc<BrokerState>,
    meta: &RequestMeta,
    request: DescribeAclsRequest,
) -> Reply {
    // Authorization: DESCRIBE on CLUSTER is checked in dispatch before this runs.
    let Some(filter) = AclBindingFilter::from_codes(
        request.resource_type_filter,
        request.resource_name_filter.as_deref(),
        request.pattern_type_filter,
        request.principal_filter.as_deref(),
        request.host_filter.as_deref(),
        request.operation,
        request.permission_type,
    ) else {
        return close_unreadable(meta, "DescribeAcls");
    };
    let mut by_pattern: BTreeMap<(i8, String, i8), Vec<AclDescription>> = BTreeMap::new();
    for b in state.describe_acls(&filter) {
        by_pattern
            .entry((
                b.resource_type.code(),
                b.resource_name.clone(),
                b.pattern_type.code(),
            ))
            .or_default()
            .push(
                AclDescription::default()
                    .with_principal(str_bytes(&b.principal))
                    .with_host(str_bytes(&b.host))
                    .with_operation(b.operation.code())
                    .with_permission_type(b.permission.code()),
            );
    }
    let resources = by_pattern
        .into_iter()
        .map(|((resource_type, name, pattern_type), acls)| {
            DescribeAclsResource::default()
                .with_resource_type(resource_type)
                .with_resource_name(str_bytes(&name))
                .with_pattern_type(pattern_type)
                .with_acls(acls)
        })
        .collect();
    meta.reply(&DescribeAclsResponse::default().with_resources(resources))
}

fn matching_acl(b: &AclBinding) -> DeleteAclsMatchingAcl {
    DeleteAclsMatchingAcl::default()
        .with_error_message(None)
        .with_resource_type(b.resource_type.code())
        .with_resource_name(str_bytes(&b.resource_name))
        .with_pattern_type(b.pattern_type.code())
        .with_principal(str_bytes(&b.principal))
        .with_host(str_bytes(&b.host))
        .with_operation(b.operation.code())
        .with_permission_type(b.permission.code())
}

/// DeleteAcls: each filter removes what it matches; the answer lists, per filter, the ACLs
/// it matched (each with error code 0) or the filter's error.
pub fn delete(state: &Arc<BrokerState>, meta: &RequestMeta, request: DeleteAclsRequest) -> Reply {
    // Authorization: ALTER on CLUSTER is checked in dispatch before this runs.
    let mut filters = Vec::with_capacity(request.filters.len());
    for f in &request.filters {
        let Some(filter) = AclBindingFilter::from_codes(
            f.resource_type_filter,
            f.resource_name_filter.as_deref(),
            f.pattern_type_filter,
            f.principal_filter.as_deref(),
            f.host_filter.as_deref(),
            f.operation,
            f.permission_type,
        ) else {
            return close_unreadable(meta, "DeleteAcls");
        };
        filters.push(filter);
    }
    let filter_results = state
        .delete_acls(&filters)
        .into_iter()
        .map(|r| match r {
            Ok(deleted) => DeleteAclsFilterResult::default()
                .with_error_message(None)
                .with_matching_acls(deleted.iter().map(matching_acl).collect()),
            Err(e) => DeleteAclsFilterResult::default()
                .with_error_code(e.code)
                .with_error_message(Some(str_bytes(&e.message))),
        })
        .collect();
    meta.reply(&DeleteAclsResponse::default().with_filter_results(filter_results))
}
