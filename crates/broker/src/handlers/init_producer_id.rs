//! InitProducerId: an idempotent producer gets a new producer id here; one with a
//! transactional id is answered by the transaction coordinator (epochs and fencing).
//!
//! A transactional producer needs WRITE on its transactional id (else
//! TRANSACTIONAL_ID_AUTHORIZATION_FAILED); an idempotent one IDEMPOTENT_WRITE on the cluster
//! or WRITE on some topic (else CLUSTER_AUTHORIZATION_FAILED), as Kafka checks.

use std::sync::Arc;

use kafka_protocol::messages::{InitProducerIdRequest, InitProducerIdResponse, ProducerId};
use weir_meta::acls::Operation;
use weir_wire::ResponseError;

use super::RequestMeta;
use crate::authz::Access;
use crate::connection::{ClientInfo, Reply};
use crate::state::BrokerState;

pub fn handle(
    state: &Arc<BrokerState>,
    meta: &RequestMeta,
    client: &ClientInfo,
    access: &Access,
    request: InitProducerIdRequest,
) -> Reply {
    let mut body = InitProducerIdResponse::default()
        .with_producer_id(ProducerId(-1))
        .with_producer_epoch(-1);
    if let Some(tid) = &request.transactional_id {
        if !access.transactional_id(Operation::Write, tid.0.as_str()) {
            body.error_code = ResponseError::TransactionalIdAuthorizationFailed.code();
            return meta.reply(&body);
        }
        return super::txn::handle(
            state,
            meta,
            client,
            weir_txn::TxnRequest::InitProducerId(request),
        );
    }
    if !access.cluster(Operation::IdempotentWrite) && !access.any_topic(Operation::Write) {
        body.error_code = ResponseError::ClusterAuthorizationFailed.code();
        return meta.reply(&body);
    }
    // An idempotent producer asking to bump its epoch gets a fresh id, as Kafka does for
    // producers without a transactional id.
    match state.allocate_producer_id() {
        Ok(id) => {
            body.producer_id = ProducerId(id);
            body.producer_epoch = 0;
        }
        Err(e) => body.error_code = e.code,
    }
    meta.reply(&body)
}
