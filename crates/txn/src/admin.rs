//! DescribeTransactions and ListTransactions: what `kafka-transactions.sh` and
//! `weir transactions` show.

use kafka_protocol::messages::describe_transactions_response::{self, TopicData};
use kafka_protocol::messages::list_transactions_response;
use kafka_protocol::messages::{
    DescribeTransactionsRequest, DescribeTransactionsResponse, ListTransactionsRequest,
    ListTransactionsResponse, ProducerId, TopicName,
};
use kafka_protocol::protocol::StrBytes;
use kafka_protocol::ResponseError;

use crate::coordinator::TxnCoordinator;
use crate::metadata::TxnState;
use crate::{Output, RequestContext, TxnResponse};

pub fn describe(
    c: &TxnCoordinator,
    ctx: RequestContext,
    r: DescribeTransactionsRequest,
    out: &mut Output,
) {
    let states = r
        .transactional_ids
        .into_iter()
        .map(|id| {
            let base = describe_transactions_response::TransactionState::default()
                .with_transactional_id(id.clone())
                .with_transaction_state(StrBytes::from_static_str(""))
                .with_producer_id(ProducerId(-1))
                .with_producer_epoch(-1)
                .with_transaction_start_time_ms(-1);
            if id.0.is_empty() {
                return base.with_error_code(ResponseError::InvalidRequest.code());
            }
            let Some(m) = c
                .txns
                .get(id.0.as_str())
                .filter(|m| m.state != TxnState::Dead)
            else {
                return base.with_error_code(ResponseError::TransactionalIdNotFound.code());
            };
            let topics = m
                .topics()
                .into_iter()
                .map(|(t, ps)| {
                    TopicData::default()
                        .with_topic(TopicName(StrBytes::from_string(t)))
                        .with_partitions(ps)
                })
                .collect();
            base.with_transaction_state(StrBytes::from_static_str(m.state.name()))
                .with_transaction_timeout_ms(m.txn_timeout_ms)
                .with_transaction_start_time_ms(m.txn_start_timestamp_ms)
                .with_producer_id(ProducerId(m.producer_id))
                .with_producer_epoch(m.producer_epoch)
                .with_topics(topics)
        })
        .collect();
    let body = DescribeTransactionsResponse::default().with_transaction_states(states);
    out.responses
        .push((ctx.token, TxnResponse::DescribeTransactions(body)));
}

pub fn list(
    c: &TxnCoordinator,
    now_ms: i64,
    ctx: RequestContext,
    r: ListTransactionsRequest,
    out: &mut Output,
) {
    let mut wanted_states = Vec::new();
    let mut unknown = Vec::new();
    for s in &r.state_filters {
        match TxnState::from_name(s.as_str()) {
            Some(state) => wanted_states.push(state),
            None => unknown.push(s.clone()),
        }
    }
    // v2 (KIP-1152): a regular expression the whole transactional id must match; an empty
    // or absent one filters nothing, a malformed one is INVALID_REGULAR_EXPRESSION.
    let pattern = match r
        .transactional_id_pattern
        .as_deref()
        .filter(|p| !p.is_empty())
    {
        None => None,
        Some(p) => match regex::Regex::new(&format!("^(?:{p})$")) {
            Ok(re) => Some(re),
            Err(_) => {
                let body = ListTransactionsResponse::default()
                    .with_error_code(ResponseError::InvalidRegularExpression.code());
                out.responses
                    .push((ctx.token, TxnResponse::ListTransactions(body)));
                return;
            }
        },
    };
    let states = c
        .txns
        .values()
        .filter(|m| {
            pattern
                .as_ref()
                .is_none_or(|re| re.is_match(&m.transactional_id))
        })
        .filter(|m| m.state != TxnState::Dead)
        .filter(|m| r.state_filters.is_empty() || wanted_states.contains(&m.state))
        .filter(|m| {
            r.producer_id_filters.is_empty()
                || r.producer_id_filters.iter().any(|p| p.0 == m.producer_id)
        })
        // v1: only transactions running for longer than the filter.
        .filter(|m| {
            r.duration_filter < 0
                || (m.state == TxnState::Ongoing
                    && now_ms - m.txn_start_timestamp_ms > r.duration_filter)
        })
        .map(|m| {
            list_transactions_response::TransactionState::default()
                .with_transactional_id(kafka_protocol::messages::TransactionalId(
                    StrBytes::from_string(m.transactional_id.clone()),
                ))
                .with_producer_id(ProducerId(m.producer_id))
                .with_transaction_state(StrBytes::from_static_str(m.state.name()))
        })
        .collect();
    let body = ListTransactionsResponse::default()
        .with_unknown_state_filters(unknown)
        .with_transaction_states(states);
    out.responses
        .push((ctx.token, TxnResponse::ListTransactions(body)));
}
