//! FindCoordinator: the controller coordinates every group and every transactional id
//! ([`crate::coordinator_role`]); the answer names it with its endpoint on the listener the
//! client came in on. While no live broker reaches the client there, the answer is
//! COORDINATOR_NOT_AVAILABLE, which clients retry. Finding a group's coordinator needs
//! DESCRIBE on the group, a transaction's DESCRIBE on the transactional id, checked first
//! as Kafka does.

use std::sync::Arc;

use kafka_protocol::messages::find_coordinator_response::Coordinator;
use kafka_protocol::messages::{BrokerId, FindCoordinatorRequest, FindCoordinatorResponse};
use kafka_protocol::protocol::StrBytes;
use weir_meta::acls::Operation;
use weir_wire::ResponseError;

use super::{str_bytes, RequestMeta};
use crate::authz::Access;
use crate::connection::{ClientInfo, Reply};
use crate::state::BrokerState;

const KEY_TYPE_GROUP: i8 = 0;
const KEY_TYPE_TRANSACTION: i8 = 1;

pub fn handle(
    state: &Arc<BrokerState>,
    meta: &RequestMeta,
    client: &ClientInfo,
    access: &Access,
    request: FindCoordinatorRequest,
) -> Reply {
    let controller = state.membership().controller();
    let coordinator = state
        .brokers(&client.listener.config)
        .into_iter()
        .find(|b| b.node_id == controller);
    let answer = |key: StrBytes| -> Coordinator {
        if request.key_type != KEY_TYPE_GROUP && request.key_type != KEY_TYPE_TRANSACTION {
            return Coordinator::default()
                .with_key(key)
                .with_node_id(BrokerId(-1))
                .with_port(-1)
                .with_error_code(ResponseError::InvalidRequest.code())
                .with_error_message(Some(str_bytes(&format!(
                    "unknown coordinator key type {}",
                    request.key_type
                ))));
        }
        let refused = match request.key_type {
            KEY_TYPE_GROUP => (!access.group(Operation::Describe, key.as_str()))
                .then_some(ResponseError::GroupAuthorizationFailed),
            _ => (!access.transactional_id(Operation::Describe, key.as_str()))
                .then_some(ResponseError::TransactionalIdAuthorizationFailed),
        };
        if let Some(code) = refused {
            return Coordinator::default()
                .with_key(key)
                .with_node_id(BrokerId(-1))
                .with_port(-1)
                .with_error_code(code.code())
                .with_error_message(Some(str_bytes(&crate::authz::refusal(code).message)));
        }
        if key.is_empty() {
            let code = if request.key_type == KEY_TYPE_GROUP {
                ResponseError::InvalidGroupId
            } else {
                ResponseError::InvalidRequest
            };
            return Coordinator::default()
                .with_key(key)
                .with_node_id(BrokerId(-1))
                .with_port(-1)
                .with_error_code(code.code());
        }
        match &coordinator {
            Some(b) => Coordinator::default()
                .with_key(key)
                .with_node_id(BrokerId(b.node_id))
                .with_host(str_bytes(&b.host))
                .with_port(b.port),
            None => Coordinator::default()
                .with_key(key)
                .with_node_id(BrokerId(-1))
                .with_port(-1)
                .with_error_code(ResponseError::CoordinatorNotAvailable.code()),
        }
    };
    // v4+ batches keys; earlier versions carry one key and answer at the top level.
    let body = if meta.api_version >= 4 {
        FindCoordinatorResponse::default().with_coordinators(
            request
                .coordinator_keys
                .iter()
                .cloned()
                .map(answer)
                .collect(),
        )
    } else {
        let c = answer(request.key.clone());
        let mut b = FindCoordinatorResponse::default()
            .with_error_code(c.error_code)
            .with_node_id(c.node_id)
            .with_host(c.host)
            .with_port(c.port);
        if meta.api_version >= 1 {
            b.error_message = c.error_message;
        }
        b
    };
    meta.reply(&body)
}
