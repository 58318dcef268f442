//! InitProducerId for idempotent producers. Transactions are not implemented, so a
//! transactional id is refused with a non-retriable error rather than left to hang.

use std::sync::Arc;

use kafka_protocol::messages::{InitProducerIdRequest, InitProducerIdResponse, ProducerId};
use weir_wire::ResponseError;

use super::RequestMeta;
use crate::connection::Reply;
use crate::state::BrokerState;

pub fn handle(state: &Arc<BrokerState>, meta: &RequestMeta, request: InitProducerIdRequest) -> Reply {
    let mut body = InitProducerIdResponse::default().with_producer_id(ProducerId(-1)).with_producer_epoch(-1);
    if request.transactional_id.is_some() {
        body.error_code = ResponseError::TransactionalIdAuthorizationFailed.code();
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
