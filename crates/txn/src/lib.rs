//! `weir-txn`: the transaction coordinator as a pure, deterministic state machine, in the
//! shape of `weir-groups`.
//!
//! Requests and clock ticks go in; responses, records for `__transaction_state`, the
//! markers to write and the next deadline come out. Nothing here touches a socket, a file,
//! a thread or the wall clock: time arrives as `now_ms`, and new producer ids come from a
//! [`ProducerIds`] source the caller passes in.
//!
//! State changes only by [`TxnCoordinator::replay`]: a step encodes each new
//! [`TxnMetadata`] as a transaction log record and replays it at once, so the live state
//! and the state loaded from the log cannot differ.
//!
//! The runtime (in `weir-broker`) must:
//! 1. append [`Output::records`] durably;
//! 2. write every [`MarkerJob`] of the output (a commit or abort control batch into each
//!    of its partitions), then call [`TxnCoordinator::markers_written`], whose output (the
//!    completing record and the parked EndTxn answers) is handled the same way;
//! 3. only then release [`Output::responses`];
//! 4. call [`TxnCoordinator::tick`] at [`TxnCoordinator::next_deadline_ms`];
//! 5. on start, feed every record of `__transaction_state` to [`TxnCoordinator::replay`],
//!    then write the markers of [`TxnCoordinator::pending_markers`].
//!
//! Layout:
//! - [`records`]: Kafka's key/value schemas for `__transaction_state`.
//! - [`metadata`]: [`TxnMetadata`] and [`TxnState`] with its one checked transition.
//! - [`coordinator`]: [`TxnCoordinator`]: dispatch, timers, replay, markers.
//! - [`init_producer_id`]: InitProducerId with a transactional id (epochs, fencing, KIP-360).
//! - [`add_partitions`]: AddPartitionsToTxn (client and broker forms), AddOffsetsToTxn.
//! - [`end_txn`]: EndTxn, timeouts, and the completion once markers are written.
//! - [`admin`]: DescribeTransactions, ListTransactions.
//! - [`refusal`]: any transaction API answered with one error (NOT_COORDINATOR on a broker
//!   that is not the coordinator, COORDINATOR_LOAD_IN_PROGRESS while it loads).

pub mod add_partitions;
pub mod admin;
pub mod coordinator;
pub mod end_txn;
pub mod init_producer_id;
pub mod metadata;
pub mod records;
pub mod refusal;

use bytes::Bytes;
use kafka_protocol::messages::*;

pub use coordinator::TxnCoordinator;
pub use metadata::{TxnMetadata, TxnState};

/// Chosen by the runtime; identifies a request whose response may come later.
pub type RequestToken = u64;

/// The internal topic holding transaction state.
pub const TRANSACTION_STATE_TOPIC: &str = "__transaction_state";
/// Transactional ids one coordinator holds; new ones beyond it are refused.
pub const TRANSACTIONAL_IDS_MAX: usize = 1_000_000;
/// Partitions one transaction may span.
pub const TXN_PARTITIONS_MAX: usize = 100_000;
/// EndTxn requests parked per transactional id while its markers are written (a client has
/// one in flight; retries may add a few).
pub const END_TXN_PARKED_MAX: usize = 16;

#[derive(Debug, Clone)]
pub struct TxnConfig {
    /// Kafka's `transaction.max.timeout.ms`.
    pub transaction_max_timeout_ms: i32,
    /// Kafka's `transactional.id.expiration.ms`.
    pub transactional_id_expiration_ms: i64,
    /// Kafka's `transaction.remove.expired.transaction.cleanup.interval.ms`.
    pub remove_expired_interval_ms: i64,
    /// Kafka's `transaction.state.log.num.partitions`.
    pub transaction_state_partitions: i32,
    /// The epoch written into markers; fences markers of an older coordinator.
    pub coordinator_epoch: i32,
}

impl Default for TxnConfig {
    fn default() -> Self {
        TxnConfig {
            transaction_max_timeout_ms: 900_000,
            transactional_id_expiration_ms: 7 * 24 * 3600 * 1000,
            remove_expired_interval_ms: 3_600_000,
            transaction_state_partitions: 50,
            coordinator_epoch: 0,
        }
    }
}

/// Where new producer ids come from (the broker's persisted id blocks; a counter in tests).
pub trait ProducerIds {
    fn next_producer_id(&mut self) -> Result<i64, TxnError>;
}

#[derive(Debug, Clone, Copy)]
pub struct RequestContext {
    pub token: RequestToken,
    pub api_version: i16,
}

#[derive(Debug, Clone)]
pub enum TxnRequest {
    /// With a transactional id; the broker answers idempotent-only producers itself.
    InitProducerId(InitProducerIdRequest),
    /// v0-3 from clients; v4+ from the broker's produce and offset-commit paths, to verify
    /// (KIP-890 part 1) or to add (part 2, transactions V2) partitions.
    AddPartitionsToTxn(AddPartitionsToTxnRequest),
    /// `offsets_partition`: the `__consumer_offsets` partition of the request's group.
    AddOffsetsToTxn {
        request: AddOffsetsToTxnRequest,
        offsets_partition: i32,
    },
    EndTxn(EndTxnRequest),
    DescribeTransactions(DescribeTransactionsRequest),
    ListTransactions(ListTransactionsRequest),
}

#[derive(Debug, Clone, PartialEq)]
pub enum TxnResponse {
    InitProducerId(InitProducerIdResponse),
    AddPartitionsToTxn(AddPartitionsToTxnResponse),
    AddOffsetsToTxn(AddOffsetsToTxnResponse),
    EndTxn(EndTxnResponse),
    DescribeTransactions(DescribeTransactionsResponse),
    ListTransactions(ListTransactionsResponse),
}

/// A record for `__transaction_state`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Record {
    pub partition: i32,
    pub key: Bytes,
    /// `None` is a tombstone.
    pub value: Option<Bytes>,
}

/// Control batches to write: one marker for `producer_id` at `producer_epoch` into each
/// partition, then [`TxnCoordinator::markers_written`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MarkerJob {
    pub transactional_id: String,
    pub producer_id: i64,
    pub producer_epoch: i16,
    pub coordinator_epoch: i32,
    pub commit: bool,
    pub partitions: Vec<(String, i32)>,
}

/// What one step of the coordinator produced.
#[derive(Debug, Default)]
pub struct Output {
    /// Responses to release once the records (and markers) are durable.
    pub responses: Vec<(RequestToken, TxnResponse)>,
    /// Records to append durably before any response of this output is released.
    pub records: Vec<Record>,
    /// Markers to write once the records are durable.
    pub markers: Vec<MarkerJob>,
}

impl Output {
    pub fn extend(&mut self, other: Output) {
        self.responses.extend(other.responses);
        self.records.extend(other.records);
        self.markers.extend(other.markers);
    }
}

#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum TxnError {
    #[error("unreadable __transaction_state record: {0}")]
    BadRecord(String),
    #[error("no producer id could be allocated: {0}")]
    ProducerIdsUnavailable(String),
}
