//! Scenario tests of the transaction coordinator through its public API: a test context
//! applies nothing by hand; it only feeds requests, marks markers written and advances a
//! fake clock, then checks answers, records and the replayed state.

use kafka_protocol::messages::add_partitions_to_txn_request::AddPartitionsToTxnTopic;
use kafka_protocol::messages::*;
use kafka_protocol::protocol::StrBytes;
use kafka_protocol::ResponseError;
use weir_txn::*;

struct Counter(i64);
impl ProducerIds for Counter {
    fn next_producer_id(&mut self) -> Result<i64, TxnError> {
        self.0 += 1;
        Ok(self.0)
    }
}

struct Ctx {
    c: TxnCoordinator,
    ids: Counter,
    now_ms: i64,
    token: u64,
    log: Vec<Record>,
    markers: Vec<MarkerJob>,
}

fn s(v: &str) -> StrBytes {
    StrBytes::from_string(v.to_string())
}

impl Ctx {
    fn new() -> Ctx {
        Ctx {
            c: TxnCoordinator::new(TxnConfig::default()),
            ids: Counter(999),
            now_ms: 1_000,
            token: 0,
            log: Vec::new(),
            markers: Vec::new(),
        }
    }

    fn run(&mut self, version: i16, request: TxnRequest) -> Vec<TxnResponse> {
        self.token += 1;
        let out = self.c.handle(
            self.now_ms,
            RequestContext {
                token: self.token,
                api_version: version,
            },
            request,
            &mut self.ids,
        );
        self.absorb(out)
    }

    fn absorb(&mut self, out: Output) -> Vec<TxnResponse> {
        self.log.extend(out.records);
        self.markers.extend(out.markers);
        out.responses.into_iter().map(|(_, r)| r).collect()
    }

    /// Writes every pending marker job, as the runtime does.
    fn write_markers(&mut self) -> Vec<TxnResponse> {
        let jobs = std::mem::take(&mut self.markers);
        let mut answers = Vec::new();
        for j in jobs {
            let out = self.c.markers_written(
                self.now_ms,
                &j.transactional_id,
                j.producer_id,
                j.producer_epoch,
            );
            answers.extend(self.absorb(out));
        }
        answers
    }

    fn init(&mut self, tid: &str, expected: Option<(i64, i16)>) -> InitProducerIdResponse {
        let (pid, epoch) = expected.unwrap_or((-1, -1));
        let r = InitProducerIdRequest::default()
            .with_transactional_id(Some(TransactionalId(s(tid))))
            .with_transaction_timeout_ms(60_000)
            .with_producer_id(ProducerId(pid))
            .with_producer_epoch(epoch);
        match self.run(5, TxnRequest::InitProducerId(r)).pop() {
            Some(TxnResponse::InitProducerId(b)) => b,
            other => panic!("{other:?}"),
        }
    }

    fn add(&mut self, tid: &str, pid: i64, epoch: i16, topic: &str, partitions: &[i32]) -> i16 {
        let r = AddPartitionsToTxnRequest::default()
            .with_v3_and_below_transactional_id(TransactionalId(s(tid)))
            .with_v3_and_below_producer_id(ProducerId(pid))
            .with_v3_and_below_producer_epoch(epoch)
            .with_v3_and_below_topics(vec![AddPartitionsToTxnTopic::default()
                .with_name(TopicName(s(topic)))
                .with_partitions(partitions.to_vec())]);
        match self.run(3, TxnRequest::AddPartitionsToTxn(r)).pop() {
            Some(TxnResponse::AddPartitionsToTxn(b)) => {
                b.results_by_topic_v3_and_below[0].results_by_partition[0].partition_error_code
            }
            other => panic!("{other:?}"),
        }
    }

    /// EndTxn at `version`; the answer arrives once markers are written.
    fn end(
        &mut self,
        version: i16,
        tid: &str,
        pid: i64,
        epoch: i16,
        commit: bool,
    ) -> EndTxnResponse {
        let r = EndTxnRequest::default()
            .with_transactional_id(TransactionalId(s(tid)))
            .with_producer_id(ProducerId(pid))
            .with_producer_epoch(epoch)
            .with_committed(commit);
        let mut answers = self.run(version, TxnRequest::EndTxn(r));
        answers.extend(self.write_markers());
        match answers.pop() {
            Some(TxnResponse::EndTxn(b)) => b,
            other => panic!("{other:?}"),
        }
    }

    /// Replaying every record written so far from empty gives the live state.
    fn assert_replay_matches(&self) {
        let mut fresh = TxnCoordinator::new(TxnConfig::default());
        for r in &self.log {
            fresh.replay(&r.key, r.value.as_deref()).unwrap();
        }
        let live: Vec<_> = self.c.transactions().cloned().collect();
        let replayed: Vec<_> = fresh.transactions().cloned().collect();
        assert_eq!(live, replayed);
    }
}

#[test]
fn commit_writes_markers_then_completes() {
    // Goal: a V1 transaction goes Empty -> Ongoing -> PrepareCommit -> CompleteCommit, its
    // markers name every partition, and EndTxn is answered only once they are written.
    let mut t = Ctx::new();
    let init = t.init("app", None);
    assert_eq!((init.error_code, init.producer_epoch), (0, 0));
    let pid = init.producer_id.0;
    assert_eq!(t.add("app", pid, 0, "orders", &[0, 2]), 0);
    let r = EndTxnRequest::default()
        .with_transactional_id(TransactionalId(s("app")))
        .with_producer_id(ProducerId(pid))
        .with_producer_epoch(0)
        .with_committed(true);
    assert!(
        t.run(4, TxnRequest::EndTxn(r)).is_empty(),
        "no answer before the markers"
    );
    assert_eq!(t.markers.len(), 1);
    assert_eq!(
        t.markers[0].partitions,
        vec![("orders".to_string(), 0), ("orders".to_string(), 2)]
    );
    assert!(t.markers[0].commit);
    assert_eq!(
        t.c.transaction("app").unwrap().state,
        TxnState::PrepareCommit
    );
    let answers = t.write_markers();
    assert!(matches!(&answers[..], [TxnResponse::EndTxn(b)] if b.error_code == 0));
    assert_eq!(
        t.c.transaction("app").unwrap().state,
        TxnState::CompleteCommit
    );
    t.assert_replay_matches();
}

#[test]
fn a_new_instance_fences_the_old_and_aborts_its_transaction() {
    // Goal: InitProducerId while a transaction is open aborts it with a bumped epoch and
    // asks for a retry; the retry bumps again; the old epoch is fenced everywhere.
    let mut t = Ctx::new();
    let pid = t.init("app", None).producer_id.0;
    assert_eq!(t.add("app", pid, 0, "orders", &[1]), 0);
    let second = t.init("app", None);
    assert_eq!(
        second.error_code,
        ResponseError::ConcurrentTransactions.code()
    );
    assert_eq!(t.markers.len(), 1);
    assert!(!t.markers[0].commit);
    assert_eq!(t.markers[0].producer_epoch, 1);
    t.write_markers();
    let retry = t.init("app", None);
    assert_eq!(
        (retry.error_code, retry.producer_id.0, retry.producer_epoch),
        (0, pid, 2)
    );
    assert_eq!(
        t.add("app", pid, 0, "orders", &[1]),
        ResponseError::ProducerFenced.code()
    );
    // A pre-KIP-588 client hears INVALID_PRODUCER_EPOCH instead.
    let old = AddPartitionsToTxnRequest::default()
        .with_v3_and_below_transactional_id(TransactionalId(s("app")))
        .with_v3_and_below_producer_id(ProducerId(pid))
        .with_v3_and_below_producer_epoch(0)
        .with_v3_and_below_topics(vec![AddPartitionsToTxnTopic::default()
            .with_name(TopicName(s("orders")))
            .with_partitions(vec![1])]);
    let Some(TxnResponse::AddPartitionsToTxn(b)) =
        t.run(1, TxnRequest::AddPartitionsToTxn(old)).pop()
    else {
        panic!()
    };
    assert_eq!(
        b.results_by_topic_v3_and_below[0].results_by_partition[0].partition_error_code,
        ResponseError::InvalidProducerEpoch.code()
    );
    t.assert_replay_matches();
}

#[test]
fn bad_input_gets_kafkas_codes() {
    // Goal: a timeout over the maximum, EndTxn with nothing open, an unknown id, and a
    // wrong producer id each get the code Kafka sends, and write nothing.
    let mut t = Ctx::new();
    let r = InitProducerIdRequest::default()
        .with_transactional_id(Some(TransactionalId(s("app"))))
        .with_transaction_timeout_ms(900_001)
        .with_producer_id(ProducerId(-1))
        .with_producer_epoch(-1);
    let Some(TxnResponse::InitProducerId(b)) = t.run(5, TxnRequest::InitProducerId(r)).pop() else {
        panic!()
    };
    assert_eq!(
        b.error_code,
        ResponseError::InvalidTransactionTimeout.code()
    );
    assert!(t.log.is_empty());
    let pid = t.init("app", None).producer_id.0;
    let written = t.log.len();
    assert_eq!(
        t.end(4, "app", pid, 0, true).error_code,
        ResponseError::InvalidTxnState.code()
    );
    assert_eq!(
        t.end(4, "nobody", pid, 0, true).error_code,
        ResponseError::InvalidProducerIdMapping.code()
    );
    assert_eq!(
        t.add("app", pid + 7, 0, "orders", &[0]),
        ResponseError::InvalidProducerIdMapping.code()
    );
    assert_eq!(t.log.len(), written);
}

#[test]
fn transactions_v2_bump_the_epoch_at_every_end_and_recognise_retries() {
    // Goal: EndTxn v5 answers with the next epoch; the same EndTxn retried at the old epoch
    // gets the same answer; the broker's implicit add (AddPartitionsToTxn v4+) opens the
    // next transaction at the new epoch.
    let mut t = Ctx::new();
    let pid = t.init("app", None).producer_id.0;
    let add_v2 = |epoch: i16| {
        let txn = kafka_protocol::messages::add_partitions_to_txn_request::AddPartitionsToTxnTransaction::default()
            .with_transactional_id(TransactionalId(s("app")))
            .with_producer_id(ProducerId(pid))
            .with_producer_epoch(epoch)
            .with_verify_only(false)
            .with_topics(vec![AddPartitionsToTxnTopic::default().with_name(TopicName(s("orders"))).with_partitions(vec![0])]);
        TxnRequest::AddPartitionsToTxn(
            AddPartitionsToTxnRequest::default().with_transactions(vec![txn]),
        )
    };
    let code = |answers: Vec<TxnResponse>| match answers.last() {
        Some(TxnResponse::AddPartitionsToTxn(b)) => {
            b.results_by_transaction[0].topic_results[0].results_by_partition[0]
                .partition_error_code
        }
        other => panic!("{other:?}"),
    };
    assert_eq!(code(t.run(5, add_v2(0))), 0);
    let end = t.end(5, "app", pid, 0, true);
    assert_eq!(
        (end.error_code, end.producer_id.0, end.producer_epoch),
        (0, pid, 1)
    );
    let retried = t.end(5, "app", pid, 0, true);
    assert_eq!((retried.error_code, retried.producer_epoch), (0, 1));
    assert_eq!(
        code(t.run(5, add_v2(0))),
        ResponseError::ProducerFenced.code()
    );
    assert_eq!(code(t.run(5, add_v2(1))), 0);
    let abort = t.end(5, "app", pid, 1, false);
    assert_eq!((abort.error_code, abort.producer_epoch), (0, 2));
    t.assert_replay_matches();
}

#[test]
fn an_expired_transaction_is_aborted_by_the_coordinator() {
    // Goal: past its timeout an open transaction is aborted with a bumped epoch, at the
    // deadline the coordinator announced.
    let mut t = Ctx::new();
    let pid = t.init("app", None).producer_id.0;
    assert_eq!(t.add("app", pid, 0, "orders", &[0]), 0);
    let out = t.c.tick(t.now_ms);
    t.absorb(out);
    assert_eq!(t.c.next_deadline_ms(), Some(1_000 + 60_000));
    t.now_ms = 61_000;
    let out = t.c.tick(t.now_ms);
    t.absorb(out);
    assert_eq!(t.markers.len(), 1);
    assert!(!t.markers[0].commit);
    t.write_markers();
    let m = t.c.transaction("app").unwrap();
    assert_eq!((m.state, m.producer_epoch), (TxnState::CompleteAbort, 1));
    assert_eq!(
        t.add("app", pid, 0, "orders", &[0]),
        ResponseError::ProducerFenced.code()
    );
    t.assert_replay_matches();
}

#[test]
fn list_transactions_filters_by_a_pattern_the_whole_id_matches() {
    // Goal: ListTransactions v2 (KIP-1152): the pattern must match the whole transactional
    // id; an empty pattern filters nothing; a malformed one is INVALID_REGULAR_EXPRESSION.
    let mut x = Ctx::new();
    for tid in ["orders-eu", "orders-us", "payments-eu"] {
        x.init(tid, None);
    }
    let list = |x: &mut Ctx, pattern: Option<&str>| {
        let r = x.run(
            2,
            TxnRequest::ListTransactions(
                ListTransactionsRequest::default()
                    .with_duration_filter(-1)
                    .with_transactional_id_pattern(pattern.map(s)),
            ),
        );
        let TxnResponse::ListTransactions(r) = &r[0] else {
            panic!("{r:?}")
        };
        let mut ids: Vec<String> = r
            .transaction_states
            .iter()
            .map(|t| t.transactional_id.to_string())
            .collect();
        ids.sort();
        (r.error_code, ids)
    };
    assert_eq!(
        list(&mut x, Some("orders-.*")),
        (0, vec!["orders-eu".to_string(), "orders-us".to_string()])
    );
    assert_eq!(
        list(&mut x, Some("orders")),
        (0, vec![]),
        "a whole-id match"
    );
    assert_eq!(list(&mut x, Some("")).1.len(), 3);
    assert_eq!(list(&mut x, None).1.len(), 3);
    assert_eq!(
        list(&mut x, Some("(ab(cd")).0,
        ResponseError::InvalidRegularExpression.code()
    );
}
