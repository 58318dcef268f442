//! InitProducerId: an idempotent producer gets a new producer id here; one with a
//! transactional id is answered by the transaction coordinator (epochs and fencing).

use std::sync::Arc;

use kafka_protocol::messages::{InitProducerIdRequest, InitProducerIdResponse, ProducerId};

use super::RequestMeta;
use crate::connection::{ClientInfo, Reply};
use crate::state::BrokerState;

pub fn handle(
    state: &Arc<BrokerState>,
    meta: &RequestMeta,
    client: &ClientInfo,
    request: InitProducerIdRequest,
) -> Reply {
    let mut body = InitProducerIdResponse::default()
        .with_producer_id(ProducerId(-1))
        .with_producer_epoch(-1);
    if request.transactional_id.is_some() {
        return super::txn::handle(
            state,
            meta,
            client,
            weir_txn::TxnRequest::InitProducerId(request),
        );
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
