//! [`TxnMetadata`]: what the coordinator knows of one transactional id, and [`TxnState`]
//! with its one checked transition.

use std::collections::{BTreeMap, BTreeSet};

/// The states of a transactional id, with Kafka's ids (the `TransactionStatus` field of the
/// transaction log) and names (DescribeTransactions, ListTransactions).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum TxnState {
    Empty,
    Ongoing,
    PrepareCommit,
    PrepareAbort,
    CompleteCommit,
    CompleteAbort,
    Dead,
    PrepareEpochFence,
}

impl TxnState {
    pub const ALL: [TxnState; 8] = [
        TxnState::Empty,
        TxnState::Ongoing,
        TxnState::PrepareCommit,
        TxnState::PrepareAbort,
        TxnState::CompleteCommit,
        TxnState::CompleteAbort,
        TxnState::Dead,
        TxnState::PrepareEpochFence,
    ];

    pub fn id(self) -> i8 {
        match self {
            TxnState::Empty => 0,
            TxnState::Ongoing => 1,
            TxnState::PrepareCommit => 2,
            TxnState::PrepareAbort => 3,
            TxnState::CompleteCommit => 4,
            TxnState::CompleteAbort => 5,
            TxnState::Dead => 6,
            TxnState::PrepareEpochFence => 7,
        }
    }

    pub fn from_id(id: i8) -> Option<TxnState> {
        TxnState::ALL.into_iter().find(|s| s.id() == id)
    }

    pub fn name(self) -> &'static str {
        match self {
            TxnState::Empty => "Empty",
            TxnState::Ongoing => "Ongoing",
            TxnState::PrepareCommit => "PrepareCommit",
            TxnState::PrepareAbort => "PrepareAbort",
            TxnState::CompleteCommit => "CompleteCommit",
            TxnState::CompleteAbort => "CompleteAbort",
            TxnState::Dead => "Dead",
            TxnState::PrepareEpochFence => "PrepareEpochFence",
        }
    }

    pub fn from_name(name: &str) -> Option<TxnState> {
        TxnState::ALL.into_iter().find(|s| s.name() == name)
    }

    /// The states this one may be entered from (Kafka's `validPreviousStates`). Entering a
    /// state from any other is a coordinator bug.
    fn valid_previous(self) -> &'static [TxnState] {
        use TxnState::*;
        match self {
            Empty => &[Empty, CompleteCommit, CompleteAbort],
            Ongoing => &[Ongoing, Empty, CompleteCommit, CompleteAbort],
            PrepareCommit => &[Ongoing],
            PrepareAbort => &[Ongoing, PrepareEpochFence],
            CompleteCommit => &[PrepareCommit],
            CompleteAbort => &[PrepareAbort],
            Dead => &[Empty, CompleteAbort, CompleteCommit],
            PrepareEpochFence => &[Ongoing],
        }
    }

    pub fn can_follow(self, previous: TxnState) -> bool {
        self.valid_previous().contains(&previous)
    }

    /// Markers are being written: the transaction's outcome is decided but not yet complete.
    pub fn is_preparing(self) -> bool {
        matches!(self, TxnState::PrepareCommit | TxnState::PrepareAbort)
    }
}

/// Producer epochs run up to `i16::MAX`; the last one is kept back so a producer can always
/// be fenced by one more bump (Kafka's `isEpochExhausted`).
pub fn epoch_exhausted(epoch: i16) -> bool {
    epoch >= i16::MAX - 1
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TxnMetadata {
    pub transactional_id: String,
    pub producer_id: i64,
    /// The producer id before the last rotation (epoch exhaustion), -1 if none.
    pub previous_producer_id: i64,
    /// Transactions V2: the id the producer moves to once this transaction completes, when
    /// its epoch ran out; -1 if none.
    pub next_producer_id: i64,
    pub producer_epoch: i16,
    pub txn_timeout_ms: i32,
    pub state: TxnState,
    /// (topic, partition) pairs in the current transaction.
    pub partitions: BTreeSet<(String, i32)>,
    /// When the current transaction began; -1 when none is open.
    pub txn_start_timestamp_ms: i64,
    pub txn_last_update_timestamp_ms: i64,
    /// The client's transaction version as last seen (2: epoch bump at every end).
    pub client_transaction_version: i16,
}

impl TxnMetadata {
    /// A transactional id seen for the first time, before its first epoch.
    pub fn new(
        transactional_id: &str,
        producer_id: i64,
        txn_timeout_ms: i32,
        now_ms: i64,
    ) -> TxnMetadata {
        TxnMetadata {
            transactional_id: transactional_id.to_string(),
            producer_id,
            previous_producer_id: -1,
            next_producer_id: -1,
            producer_epoch: -1,
            txn_timeout_ms,
            state: TxnState::Empty,
            partitions: BTreeSet::new(),
            txn_start_timestamp_ms: -1,
            txn_last_update_timestamp_ms: now_ms,
            client_transaction_version: 0,
        }
    }

    /// The partitions grouped by topic, topics and partitions in order.
    pub fn topics(&self) -> BTreeMap<String, Vec<i32>> {
        let mut topics: BTreeMap<String, Vec<i32>> = BTreeMap::new();
        for (t, p) in &self.partitions {
            topics.entry(t.clone()).or_default().push(*p);
        }
        topics
    }

    /// Transactions V2: every transaction end bumps the epoch.
    pub fn bumps_epoch_at_end(&self) -> bool {
        self.client_transaction_version >= 2
    }

    /// The moment an open transaction times out.
    pub fn timeout_deadline_ms(&self) -> Option<i64> {
        (self.state == TxnState::Ongoing).then(|| {
            self.txn_start_timestamp_ms
                .saturating_add(i64::from(self.txn_timeout_ms))
        })
    }
}
