//! [`TxnCoordinator`]: owns every transactional id; routes requests; fires timers; replays
//! records.

use std::collections::BTreeMap;

use crate::metadata::{TxnMetadata, TxnState};
use crate::{
    add_partitions, admin, end_txn, init_producer_id, records, MarkerJob, Output, ProducerIds,
    Record, RequestContext, RequestToken, TxnConfig, TxnError, TxnRequest,
};

pub struct TxnCoordinator {
    pub(crate) config: TxnConfig,
    pub(crate) txns: BTreeMap<String, TxnMetadata>,
    /// EndTxn requests answered once their transaction's markers are written, by id.
    pub(crate) parked_end_txn: BTreeMap<String, Vec<(RequestToken, i16)>>,
    next_expiration_check_ms: Option<i64>,
}

impl TxnCoordinator {
    pub fn new(config: TxnConfig) -> TxnCoordinator {
        TxnCoordinator {
            config,
            txns: BTreeMap::new(),
            parked_end_txn: BTreeMap::new(),
            next_expiration_check_ms: None,
        }
    }

    pub fn config(&self) -> &TxnConfig {
        &self.config
    }

    /// The `__transaction_state` partition that holds `transactional_id`, as Kafka computes it.
    pub fn partition_for(&self, transactional_id: &str) -> i32 {
        weir_meta::placement::partition_for(
            transactional_id,
            self.config.transaction_state_partitions,
        )
    }

    /// Handles one request. Responses may be for this request or for parked ones.
    pub fn handle(
        &mut self,
        now_ms: i64,
        ctx: RequestContext,
        request: TxnRequest,
        ids: &mut dyn ProducerIds,
    ) -> Output {
        let mut out = Output::default();
        match request {
            TxnRequest::InitProducerId(r) => {
                init_producer_id::handle(self, now_ms, ctx, r, ids, &mut out)
            }
            TxnRequest::AddPartitionsToTxn(r) => {
                add_partitions::handle(self, now_ms, ctx, r, &mut out)
            }
            TxnRequest::AddOffsetsToTxn {
                request,
                offsets_partition,
            } => {
                add_partitions::add_offsets(self, now_ms, ctx, request, offsets_partition, &mut out)
            }
            TxnRequest::EndTxn(r) => end_txn::handle(self, now_ms, ctx, r, ids, &mut out),
            TxnRequest::DescribeTransactions(r) => admin::describe(self, ctx, r, &mut out),
            TxnRequest::ListTransactions(r) => admin::list(self, now_ms, ctx, r, &mut out),
        }
        out
    }

    /// The broker wrote every marker of the transaction `producer_id`/`producer_epoch` of
    /// `transactional_id`: the transaction completes, and its parked EndTxn requests are
    /// answered.
    pub fn markers_written(
        &mut self,
        now_ms: i64,
        transactional_id: &str,
        producer_id: i64,
        producer_epoch: i16,
    ) -> Output {
        let mut out = Output::default();
        end_txn::complete(
            self,
            now_ms,
            transactional_id,
            producer_id,
            producer_epoch,
            &mut out,
        );
        out
    }

    /// Fires every timer due at `now_ms`: transaction timeouts and id expiration.
    pub fn tick(&mut self, now_ms: i64) -> Output {
        let mut out = Output::default();
        end_txn::abort_timed_out(self, now_ms, &mut out);
        if self.next_expiration_check_ms.is_none_or(|t| now_ms >= t) {
            self.expire_ids(now_ms, &mut out);
            self.next_expiration_check_ms =
                Some(now_ms + self.config.remove_expired_interval_ms.max(1));
        }
        out
    }

    /// The earliest time `tick` has work to do.
    pub fn next_deadline_ms(&self) -> Option<i64> {
        self.txns
            .values()
            .filter_map(TxnMetadata::timeout_deadline_ms)
            .chain(Some(self.next_expiration_check_ms.unwrap_or(0)))
            .min()
    }

    /// Markers of transactions whose outcome is decided but not yet complete: after a
    /// restart they are written again (writing a marker twice is harmless).
    pub fn pending_markers(&self) -> Vec<MarkerJob> {
        self.txns
            .values()
            .filter(|m| m.state.is_preparing())
            .map(|m| self.marker_job(m))
            .collect()
    }

    pub(crate) fn marker_job(&self, m: &TxnMetadata) -> MarkerJob {
        MarkerJob {
            transactional_id: m.transactional_id.clone(),
            producer_id: m.producer_id,
            producer_epoch: m.producer_epoch,
            coordinator_epoch: self.config.coordinator_epoch,
            commit: m.state == TxnState::PrepareCommit,
            partitions: m.partitions.iter().cloned().collect(),
        }
    }

    /// Applies one `__transaction_state` record. Used on load for every record, and live for
    /// every record a step emits, so live and replayed state cannot differ.
    pub fn replay(&mut self, key: &[u8], value: Option<&[u8]>) -> Result<(), TxnError> {
        let transactional_id = records::decode_key(key)?;
        match value {
            None => {
                self.txns.remove(&transactional_id);
            }
            Some(v) => {
                let m = records::decode_value(&transactional_id, v)?;
                self.txns.insert(transactional_id, m);
            }
        }
        Ok(())
    }

    /// Emits the record for `m` and replays it, which makes it the current state. The
    /// transition must be one Kafka allows.
    pub(crate) fn write(&mut self, m: TxnMetadata, out: &mut Output) {
        if let Some(old) = self.txns.get(&m.transactional_id) {
            assert!(
                m.state.can_follow(old.state)
                    || (old.producer_epoch == -1 && m.state == TxnState::Empty),
                "transaction {} cannot go from {:?} to {:?}",
                m.transactional_id,
                old.state,
                m.state
            );
        }
        let record = Record {
            partition: self.partition_for(&m.transactional_id),
            key: records::encode_key(&m.transactional_id),
            value: Some(records::encode_value(&m)),
        };
        self.replay(&record.key, record.value.as_deref())
            .expect("a record weir encoded decodes");
        out.records.push(record);
    }

    /// Transactional ids idle for `transactional.id.expiration.ms` with nothing open go, as
    /// in Kafka: a tombstone each.
    fn expire_ids(&mut self, now_ms: i64, out: &mut Output) {
        let expired: Vec<String> = self
            .txns
            .values()
            .filter(|m| {
                matches!(
                    m.state,
                    TxnState::Empty | TxnState::CompleteCommit | TxnState::CompleteAbort
                )
            })
            .filter(|m| {
                now_ms.saturating_sub(m.txn_last_update_timestamp_ms)
                    >= self.config.transactional_id_expiration_ms
            })
            .map(|m| m.transactional_id.clone())
            .collect();
        for id in expired {
            let record = Record {
                partition: self.partition_for(&id),
                key: records::encode_key(&id),
                value: None,
            };
            self.replay(&record.key, None)
                .expect("a record weir encoded decodes");
            out.records.push(record);
        }
    }

    pub fn transaction(&self, transactional_id: &str) -> Option<&TxnMetadata> {
        self.txns.get(transactional_id)
    }

    pub fn transactions(&self) -> impl Iterator<Item = &TxnMetadata> {
        self.txns.values()
    }
}
