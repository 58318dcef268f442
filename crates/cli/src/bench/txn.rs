//! `weir bench txn`: committed transactions per second from transactional producers that
//! speak the Kafka protocol themselves, so the figure means the same against weir and
//! Apache Kafka.
//!
//! Each producer finds its transaction coordinator (FindCoordinator, key type 1), takes a
//! producer id and epoch for its own transactional id (InitProducerId), then repeats one
//! transaction:
//!
//! - transactions V2 (KIP-890 part 2), when the broker finalizes `transaction.version` >= 2
//!   and speaks Produce v12 and EndTxn v5: Produce v12 adds the partitions to the
//!   transaction, EndTxn v5 answers with the next epoch, and every partition's sequence
//!   restarts at 0 with it;
//! - transactions V1 otherwise: AddPartitionsToTxn v3, Produce (at most v11, which only
//!   verifies), EndTxn (at most v4); the epoch stays and sequences continue.
//!
//! Commit latency runs from EndTxn sent to EndTxn answered; transaction latency from the
//! first request of a transaction to its EndTxn answer. Retriable answers (a previous
//! transaction still completing, a coordinator loading) are retried after
//! `--retry-backoff-ms` and counted; the time spent is in the latencies.

use std::collections::BTreeMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::{anyhow, bail};
use bytes::Bytes;
use clap::{Args, ValueEnum};
use kafka_protocol::error::ResponseError;
use kafka_protocol::messages::*;
use kafka_protocol::protocol::{Message, Request};
use kafka_protocol::records::Compression;
use weir_log::batch::NewRecord;

use super::{ensure_topic, percentiles, report};
use crate::client::{sb, Connection};

/// Records one transaction may carry.
const RECORDS_PER_TXN_MAX: u32 = 100_000;
/// Partitions one transaction may spread over.
const PARTITIONS_MAX: i32 = 1_000;
/// Concurrent producers, each with its own connections.
const PRODUCERS_MAX: usize = 1_000;
/// Transactions one producer runs at most, which bounds the latency samples it keeps
/// (two u64 per transaction). A `--duration` run that reaches it ends early and says so.
const TRANSACTIONS_PER_PRODUCER_MAX: u64 = 10_000_000;
/// Tries of one request that keeps getting a retriable answer before the bench gives up.
const RETRIES_PER_REQUEST_MAX: u32 = 1_000;
/// How long finding the coordinator may take: Kafka creates `__transaction_state` on the
/// first FindCoordinator for a transactional id and answers COORDINATOR_NOT_AVAILABLE until then.
const COORDINATOR_WAIT: Duration = Duration::from_secs(60);
/// FindCoordinator's key type for transactional ids.
const KEY_TYPE_TRANSACTION: i8 = 1;
/// The first Produce version that adds partitions to the transaction (KIP-890 part 2).
const PRODUCE_V2_VERSION: i16 = 12;
/// The first EndTxn version that bumps the epoch and returns it.
const END_TXN_V2_VERSION: i16 = 5;
/// AddPartitionsToTxn's newest client version (v4 and later are broker-to-coordinator).
const ADD_PARTITIONS_CLIENT_VERSION_MAX: i16 = 3;

#[derive(Args)]
pub struct TxnArgs {
    /// The topic, created if missing with --partitions partitions.
    #[arg(long, default_value = "bench-txn")]
    topic: String,
    /// Records in each transaction.
    #[arg(long, default_value_t = 10)]
    records_per_txn: u32,
    /// Partitions a transaction spreads its records over (round robin; a transaction of
    /// fewer records than partitions touches as many partitions as it has records, the
    /// next transaction starting where the last one stopped).
    #[arg(long, default_value_t = 1)]
    partitions: i32,
    /// Committed transactions to measure, split across the producers.
    #[arg(long, default_value_t = 1_000, conflicts_with = "duration")]
    transactions: u64,
    /// Measure for this long instead of a number of transactions: 10s, 1500ms, 2m.
    #[arg(long, value_parser = parse_duration)]
    duration: Option<Duration>,
    /// Value size in bytes.
    #[arg(long, default_value_t = 100)]
    size: usize,
    /// Concurrent transactional producers, each with its own transactional id.
    #[arg(long, default_value_t = 1)]
    producers: usize,
    /// Transaction protocol; auto takes V2 when the broker offers it.
    #[arg(long, value_enum, default_value_t = ProtocolChoice::Auto)]
    protocol: ProtocolChoice,
    /// Wait before retrying a retriable answer (the Java producer waits 20 ms before it
    /// retries AddPartitionsToTxn after CONCURRENT_TRANSACTIONS).
    #[arg(long, default_value_t = 20)]
    retry_backoff_ms: u64,
    #[arg(long, default_value_t = 60_000)]
    transaction_timeout_ms: i32,
}

#[derive(Clone, Copy, PartialEq, Eq, Debug, ValueEnum)]
pub enum ProtocolChoice {
    Auto,
    V1,
    V2,
}

/// The transaction protocol a run speaks.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
enum Protocol {
    V1,
    V2,
}

/// What the broker's ApiVersions answer offers for transactions.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
struct Offer {
    /// The finalized `transaction.version` max level; 0 when the broker names none.
    transaction_version: i16,
    produce_max: i16,
    end_txn_max: i16,
}

/// V2 needs all three: the feature finalized and the two request versions that carry it.
fn choose_protocol(
    choice: ProtocolChoice,
    offer: Offer,
    address: &str,
) -> anyhow::Result<Protocol> {
    let v2 = offer.transaction_version >= 2
        && offer.produce_max >= PRODUCE_V2_VERSION
        && offer.end_txn_max >= END_TXN_V2_VERSION;
    match choice {
        ProtocolChoice::Auto => Ok(if v2 { Protocol::V2 } else { Protocol::V1 }),
        ProtocolChoice::V1 => Ok(Protocol::V1),
        ProtocolChoice::V2 if v2 => Ok(Protocol::V2),
        ProtocolChoice::V2 => bail!(
            "broker at {address} does not offer transactions V2 (finalized transaction.version {}, Produce up to v{}, EndTxn up to v{}; V2 needs 2, v12 and v5); use --protocol v1 or auto",
            offer.transaction_version,
            offer.produce_max,
            offer.end_txn_max
        ),
    }
}

/// The partitions of transaction number `txn_index` and the records each gets: records
/// go round robin over `partitions`, starting where the previous transaction stopped.
fn spread(txn_index: u64, records_per_txn: u32, partitions: i32) -> Vec<(i32, u32)> {
    assert!(partitions > 0 && records_per_txn > 0);
    let first = (txn_index * u64::from(records_per_txn) % partitions as u64) as i32;
    let touched = (records_per_txn as i32).min(partitions);
    let (per, extra) = (
        records_per_txn / partitions as u32,
        records_per_txn % partitions as u32,
    );
    let mut out: Vec<(i32, u32)> = (0..touched)
        .map(|i| {
            let count = per + u32::from((i as u32) < extra);
            ((first + i) % partitions, count)
        })
        .collect();
    out.sort_unstable();
    assert_eq!(out.iter().map(|(_, n)| n).sum::<u32>(), records_per_txn);
    out
}

/// Parses 10s, 1500ms, 2m or a bare number of seconds.
fn parse_duration(text: &str) -> Result<Duration, String> {
    let text = text.trim();
    let (number, unit_ms) = if let Some(n) = text.strip_suffix("ms") {
        (n, 1)
    } else if let Some(n) = text.strip_suffix('s') {
        (n, 1_000)
    } else if let Some(n) = text.strip_suffix('m') {
        (n, 60_000)
    } else {
        (text, 1_000)
    };
    let n: u64 = number
        .trim()
        .parse()
        .map_err(|_| format!("'{text}' is not a duration; write e.g. 10s, 1500ms or 2m"))?;
    if n == 0 {
        return Err("the duration must be more than zero".into());
    }
    Ok(Duration::from_millis(n * unit_ms))
}

/// An error code's name and number, as `ConcurrentTransactions (51)`.
fn error_name(code: i16) -> String {
    match ResponseError::try_from_code(code) {
        Some(ResponseError::Unknown(_)) | None => format!("error {code}"),
        Some(e) => format!("{e:?} ({code})"),
    }
}

/// Answers worth another try after a backoff: a previous transaction still completing, a
/// coordinator or partition not ready yet, a verification that timed out. Kafka's broker
/// answers a V2 produce whose implicit AddPartitionsToTxn met a completing transaction
/// with NOT_ENOUGH_REPLICAS or CONCURRENT_TRANSACTIONS.
fn retriable(code: i16) -> bool {
    [
        ResponseError::ConcurrentTransactions,
        ResponseError::CoordinatorLoadInProgress,
        ResponseError::CoordinatorNotAvailable,
        ResponseError::NotEnoughReplicas,
        ResponseError::NotEnoughReplicasAfterAppend,
        ResponseError::RequestTimedOut,
        ResponseError::LeaderNotAvailable,
    ]
    .iter()
    .any(|e| e.code() == code)
}

/// One sentence for a refused transactional request, with what to do about it.
fn refusal(api: &str, transactional_id: &str, code: i16) -> anyhow::Error {
    let hint = match ResponseError::try_from_code(code) {
        Some(ResponseError::ProducerFenced | ResponseError::InvalidProducerEpoch) => {
            "another producer took over this transactional id; run one bench per broker at a time"
        }
        Some(ResponseError::TransactionalIdAuthorizationFailed) => "grant WRITE on this transactional id to the bench's principal",
        Some(ResponseError::ClusterAuthorizationFailed) => "grant IDEMPOTENT_WRITE on the cluster to the bench's principal",
        Some(ResponseError::TopicAuthorizationFailed) => "grant WRITE on the topic to the bench's principal",
        Some(ResponseError::InvalidTransactionTimeout) => "pick a --transaction-timeout-ms the broker allows (Kafka's transaction.max.timeout.ms)",
        Some(ResponseError::UnknownTopicOrPartition) => "the topic was deleted during the run; run the bench again",
        Some(ResponseError::OutOfOrderSequenceNumber | ResponseError::InvalidTxnState) => {
            "the broker's view of this producer differs from the bench's; report it with the broker's log"
        }
        _ => "see the broker's log",
    };
    anyhow!(
        "{api} for transactional id '{transactional_id}' failed: {}; {hint}",
        error_name(code)
    )
}

/// What a producer measured; latencies in µs.
#[derive(Default)]
struct Measured {
    transactions: u64,
    commit_us: Vec<u64>,
    txn_us: Vec<u64>,
    /// Retries by request name.
    retries: BTreeMap<&'static str, u64>,
    /// True when the producer stopped at [`TRANSACTIONS_PER_PRODUCER_MAX`].
    capped: bool,
}

/// One transactional producer: its connections (one per broker it talks to), identity
/// and per-partition sequences.
struct TxnProducer {
    transactional_id: String,
    topic: String,
    protocol: Protocol,
    conns: Vec<Connection>,
    coordinator: usize,
    /// Per partition index: its leader's connection in `conns`.
    leader: Vec<usize>,
    producer_id: i64,
    epoch: i16,
    /// Per partition index: the next sequence number.
    sequences: Vec<i32>,
    produce_version: i16,
    end_txn_version: i16,
    add_partitions_version: i16,
    value: Bytes,
    records_per_txn: u32,
    partitions: i32,
    retry_backoff: Duration,
    measured: Measured,
}

/// The connection in `conns` to `address`, opened if there is none.
async fn conn_to(conns: &mut Vec<Connection>, address: &str) -> anyhow::Result<usize> {
    if let Some(i) = conns.iter().position(|c| c.address == address) {
        return Ok(i);
    }
    conns.push(Connection::connect(address).await?);
    Ok(conns.len() - 1)
}

/// Reads the broker's transaction offer with an ApiVersions request at v3 or later, which
/// carries the finalized features (the connection's own negotiation uses v0).
async fn offer_of(conn: &mut Connection) -> anyhow::Result<Offer> {
    let v = conn.version::<ApiVersionsRequest>()?;
    let max_of = |key: i16, resp: &ApiVersionsResponse| {
        resp.api_keys
            .iter()
            .find(|k| k.api_key == key)
            .map(|k| k.max_version)
            .unwrap_or(-1)
    };
    if v < 3 {
        return Ok(Offer {
            transaction_version: 0,
            produce_max: -1,
            end_txn_max: -1,
        });
    }
    // Kafka checks that v3+ names the client software with letters, digits, '.' and '-'.
    let req = ApiVersionsRequest::default()
        .with_client_software_name(sb("weir-bench"))
        .with_client_software_version(sb(env!("CARGO_PKG_VERSION")));
    let resp = conn.call_at(&req, v).await?;
    if resp.error_code != 0 {
        bail!(
            "broker at {} refused ApiVersions v{v}: {}",
            conn.address,
            error_name(resp.error_code)
        );
    }
    let transaction_version = resp
        .finalized_features
        .iter()
        .find(|f| f.name.as_str() == "transaction.version")
        .map(|f| f.max_version_level)
        .unwrap_or(0);
    Ok(Offer {
        transaction_version,
        produce_max: max_of(ProduceRequest::KEY, &resp).min(ProduceRequest::VERSIONS.max),
        end_txn_max: max_of(EndTxnRequest::KEY, &resp).min(EndTxnRequest::VERSIONS.max),
    })
}

impl TxnProducer {
    /// 1. The leaders of the topic's partitions. 2. The coordinator of `transactional_id`.
    /// 3. A producer id and epoch.
    async fn start(
        bootstrap: &str,
        transactional_id: String,
        a: &TxnArgs,
        protocol: Protocol,
    ) -> anyhow::Result<TxnProducer> {
        let mut conns = vec![Connection::connect(bootstrap).await?];
        let retry_backoff = Duration::from_millis(a.retry_backoff_ms);
        // 1.
        let mut leader = Vec::with_capacity(a.partitions as usize);
        for address in super::leaders(&mut conns[0], &a.topic, a.partitions).await? {
            leader.push(conn_to(&mut conns, &address).await?);
        }
        let produce_version = match protocol {
            Protocol::V2 => conns[leader[0]]
                .version::<ProduceRequest>()?
                .min(PRODUCE_V2_VERSION),
            Protocol::V1 => conns[leader[0]]
                .version::<ProduceRequest>()?
                .min(PRODUCE_V2_VERSION - 1),
        };
        // 2. The versions of the coordinator's APIs are read from the bootstrap broker:
        // a cluster's brokers speak the same versions.
        let coordinator = 0;
        let end_txn_max = conns[coordinator].version::<EndTxnRequest>()?;
        let end_txn_version = match protocol {
            Protocol::V2 => END_TXN_V2_VERSION,
            Protocol::V1 => end_txn_max.min(END_TXN_V2_VERSION - 1),
        };
        let add_partitions_version = match protocol {
            Protocol::V2 => -1,
            Protocol::V1 => conns[coordinator]
                .version::<AddPartitionsToTxnRequest>()?
                .min(ADD_PARTITIONS_CLIENT_VERSION_MAX),
        };
        let mut p = TxnProducer {
            transactional_id,
            topic: a.topic.clone(),
            protocol,
            conns,
            coordinator,
            leader,
            producer_id: -1,
            epoch: -1,
            sequences: vec![0; a.partitions as usize],
            produce_version,
            end_txn_version,
            add_partitions_version,
            value: Bytes::from(vec![b'x'; a.size]),
            records_per_txn: a.records_per_txn,
            partitions: a.partitions,
            retry_backoff,
            measured: Measured::default(),
        };
        p.find_coordinator().await?;
        // 3.
        let req = InitProducerIdRequest::default()
            .with_transactional_id(Some(TransactionalId(sb(&p.transactional_id))))
            .with_transaction_timeout_ms(a.transaction_timeout_ms)
            .with_producer_id(ProducerId(-1))
            .with_producer_epoch(-1);
        let v = p.conns[p.coordinator].version::<InitProducerIdRequest>()?;
        let r = p
            .retrying(
                "InitProducerId",
                |r: &InitProducerIdResponse| r.error_code,
                &req,
                v,
            )
            .await?;
        p.producer_id = r.producer_id.0;
        p.epoch = r.producer_epoch;
        Ok(p)
    }

    /// Points `coordinator` at the transaction coordinator of this producer's id, asking
    /// the bootstrap broker. Kafka answers COORDINATOR_NOT_AVAILABLE until it has created
    /// `__transaction_state`.
    async fn find_coordinator(&mut self) -> anyhow::Result<()> {
        let deadline = Instant::now() + COORDINATOR_WAIT;
        let address = loop {
            let v = self.conns[0].version::<FindCoordinatorRequest>()?;
            let req = if v >= 4 {
                FindCoordinatorRequest::default()
                    .with_key_type(KEY_TYPE_TRANSACTION)
                    .with_coordinator_keys(vec![sb(&self.transactional_id)])
            } else {
                FindCoordinatorRequest::default()
                    .with_key_type(KEY_TYPE_TRANSACTION)
                    .with_key(sb(&self.transactional_id))
            };
            let r = self.conns[0].call_at(&req, v).await?;
            let (code, host, port) = match r.coordinators.first() {
                Some(c) => (c.error_code, c.host.to_string(), c.port),
                None => (r.error_code, r.host.to_string(), r.port),
            };
            if code == 0 {
                break format!("{host}:{port}");
            }
            if !retriable(code) {
                return Err(refusal("FindCoordinator", &self.transactional_id, code));
            }
            if Instant::now() > deadline {
                bail!(
                    "no transaction coordinator for '{}' after {} s ({}); is the broker's transaction state topic available?",
                    self.transactional_id,
                    COORDINATOR_WAIT.as_secs(),
                    error_name(code)
                );
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        };
        self.coordinator = conn_to(&mut self.conns, &address).await?;
        Ok(())
    }

    /// Sends `request` to the coordinator until its answer is not retriable; an error
    /// answer ends the run. NOT_COORDINATOR (Kafka's answer while it loads a new
    /// `__transaction_state` partition, or after the coordinator moved) finds the
    /// coordinator again first.
    async fn retrying<R: Request>(
        &mut self,
        api: &'static str,
        code_of: impl Fn(&R::Response) -> i16,
        request: &R,
        version: i16,
    ) -> anyhow::Result<R::Response> {
        let mut tries = 0;
        loop {
            let r = self.conns[self.coordinator]
                .call_at(request, version)
                .await?;
            let code = code_of(&r);
            if code == 0 {
                return Ok(r);
            }
            let not_coordinator = code == ResponseError::NotCoordinator.code();
            if !retriable(code) && !not_coordinator {
                return Err(refusal(api, &self.transactional_id, code));
            }
            tries += 1;
            *self.measured.retries.entry(api).or_default() += 1;
            if tries > RETRIES_PER_REQUEST_MAX {
                bail!("{api} for transactional id '{}' kept answering {} after {RETRIES_PER_REQUEST_MAX} tries", self.transactional_id, error_name(code));
            }
            tokio::time::sleep(self.retry_backoff).await;
            if not_coordinator {
                self.find_coordinator().await?;
            }
        }
    }

    /// One committed transaction, number `index` of this producer. With `measure` its
    /// latencies are kept.
    async fn transaction(&mut self, index: u64, measure: bool) -> anyhow::Result<()> {
        let began = Instant::now();
        let parts = spread(index, self.records_per_txn, self.partitions);
        // 1. V1 adds the partitions first; V2's produce adds them.
        if self.protocol == Protocol::V1 {
            let req = AddPartitionsToTxnRequest::default()
                .with_v3_and_below_transactional_id(TransactionalId(sb(&self.transactional_id)))
                .with_v3_and_below_producer_id(ProducerId(self.producer_id))
                .with_v3_and_below_producer_epoch(self.epoch)
                .with_v3_and_below_topics(vec![
                    add_partitions_to_txn_request::AddPartitionsToTxnTopic::default()
                        .with_name(TopicName(sb(&self.topic)))
                        .with_partitions(parts.iter().map(|(p, _)| *p).collect()),
                ]);
            let code_of = |r: &AddPartitionsToTxnResponse| {
                r.results_by_topic_v3_and_below
                    .iter()
                    .flat_map(|t| t.results_by_partition.iter())
                    .map(|p| p.partition_error_code)
                    .find(|c| *c != 0)
                    .unwrap_or(0)
            };
            let v = self.add_partitions_version;
            self.retrying("AddPartitionsToTxn", code_of, &req, v)
                .await?;
        }
        // 2. One batch per partition, each with its partition's next sequence.
        let ts = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)?
            .as_millis() as i64;
        let mut pending: Vec<(i32, Bytes)> = Vec::with_capacity(parts.len());
        for (p, count) in &parts {
            let records: Vec<NewRecord> = (0..*count)
                .map(|_| NewRecord {
                    key: None,
                    value: Some(self.value.clone()),
                    timestamp_ms: ts,
                })
                .collect();
            let seq = self.sequences[*p as usize];
            let batch = weir_log::batch::encode_transactional_batch(
                &records,
                (self.producer_id, self.epoch, seq),
                Compression::None,
            )?;
            pending.push((*p, batch.freeze()));
        }
        self.produce(pending).await?;
        for (p, count) in &parts {
            let s = &mut self.sequences[*p as usize];
            *s = s.wrapping_add(*count as i32);
        }
        // 3. Commit; V2 answers with the epoch of the next transaction.
        let req = EndTxnRequest::default()
            .with_transactional_id(TransactionalId(sb(&self.transactional_id)))
            .with_producer_id(ProducerId(self.producer_id))
            .with_producer_epoch(self.epoch)
            .with_committed(true);
        let commit_began = Instant::now();
        let v = self.end_txn_version;
        let r = self
            .retrying("EndTxn", |r: &EndTxnResponse| r.error_code, &req, v)
            .await?;
        let done = Instant::now();
        if self.protocol == Protocol::V2 {
            if r.producer_epoch < 0 || r.producer_id.0 < 0 {
                bail!("EndTxn v{v} for transactional id '{}' answered without the next producer epoch; the broker does not speak transactions V2 as it advertises (try --protocol v1)", self.transactional_id);
            }
            if (r.producer_id.0, r.producer_epoch) != (self.producer_id, self.epoch) {
                self.producer_id = r.producer_id.0;
                self.epoch = r.producer_epoch;
                self.sequences.iter_mut().for_each(|s| *s = 0);
            }
        }
        if measure {
            self.measured.transactions += 1;
            self.measured
                .commit_us
                .push(done.duration_since(commit_began).as_micros() as u64);
            self.measured
                .txn_us
                .push(done.duration_since(began).as_micros() as u64);
        }
        Ok(())
    }

    /// Writes `pending` (partition, batch) with acks=all, one request per leader, until
    /// every partition has taken its batch. A retried batch keeps its sequence, so the
    /// broker takes it once. A leader's connection is kept for the whole run and found
    /// again only when a partition's answer says it moved.
    async fn produce(&mut self, mut pending: Vec<(i32, Bytes)>) -> anyhow::Result<()> {
        let mut tries = 0;
        while !pending.is_empty() {
            let mut by_leader: BTreeMap<usize, Vec<(i32, Bytes)>> = BTreeMap::new();
            for (p, batch) in &pending {
                by_leader
                    .entry(self.leader[*p as usize])
                    .or_default()
                    .push((*p, batch.clone()));
            }
            // Every leader's request goes out before any answer is awaited.
            for (conn, batches) in &by_leader {
                let req = ProduceRequest::default()
                    .with_transactional_id(Some(TransactionalId(sb(&self.transactional_id))))
                    .with_acks(-1)
                    .with_timeout_ms(30_000)
                    .with_topic_data(vec![produce_request::TopicProduceData::default()
                        .with_name(TopicName(sb(&self.topic)))
                        .with_partition_data(
                            batches
                                .iter()
                                .map(|(p, b)| {
                                    produce_request::PartitionProduceData::default()
                                        .with_index(*p)
                                        .with_records(Some(b.clone()))
                                })
                                .collect(),
                        )]);
                self.conns[*conn]
                    .send_at(&req, self.produce_version)
                    .await?;
            }
            let mut again = Vec::new();
            let mut last_code = 0;
            // Kafka answers NOT_LEADER_OR_FOLLOWER or UNKNOWN_TOPIC_OR_PARTITION for a
            // topic whose metadata has not settled yet, and either after a leader moved.
            let mut refresh_leaders = false;
            for (conn, batches) in by_leader {
                let resp: ProduceResponse = self.conns[conn].recv().await?;
                let codes: BTreeMap<i32, i16> = resp
                    .responses
                    .iter()
                    .flat_map(|t| t.partition_responses.iter())
                    .map(|p| (p.index, p.error_code))
                    .collect();
                for (p, batch) in batches {
                    let code = *codes.get(&p).ok_or_else(|| {
                        anyhow!(
                            "broker at {} did not answer for partition {p} of '{}'",
                            self.conns[conn].address,
                            self.topic
                        )
                    })?;
                    // A duplicate is a retried batch the broker already has.
                    if code == 0 || code == ResponseError::DuplicateSequenceNumber.code() {
                        continue;
                    }
                    let moved = [
                        ResponseError::NotLeaderOrFollower.code(),
                        ResponseError::UnknownTopicOrPartition.code(),
                    ]
                    .contains(&code);
                    if !retriable(code) && !moved {
                        return Err(refusal(
                            &format!(
                                "Produce v{} to partition {p} of '{}'",
                                self.produce_version, self.topic
                            ),
                            &self.transactional_id,
                            code,
                        ));
                    }
                    refresh_leaders |= moved;
                    last_code = code;
                    again.push((p, batch));
                }
            }
            if again.is_empty() {
                return Ok(());
            }
            tries += 1;
            *self.measured.retries.entry("Produce").or_default() += 1;
            if tries > RETRIES_PER_REQUEST_MAX {
                bail!("Produce for transactional id '{}' kept answering {} after {RETRIES_PER_REQUEST_MAX} tries", self.transactional_id, error_name(last_code));
            }
            tokio::time::sleep(self.retry_backoff).await;
            // A partition without a leader yet keeps its old one until the next try.
            if refresh_leaders {
                if let Ok(addresses) =
                    super::leaders(&mut self.conns[0], &self.topic, self.partitions).await
                {
                    for (p, address) in addresses.iter().enumerate() {
                        self.leader[p] = conn_to(&mut self.conns, address).await?;
                    }
                }
            }
            pending = again;
        }
        Ok(())
    }
}

/// How a run ends: after a number of transactions per producer or at a deadline.
#[derive(Clone, Copy)]
enum Until {
    Transactions(u64),
    Deadline(Instant),
}

pub async fn txn(bootstrap: &str, a: TxnArgs) -> anyhow::Result<()> {
    // 1. Check the options.
    if !(1..=RECORDS_PER_TXN_MAX).contains(&a.records_per_txn) {
        bail!("--records-per-txn must be between 1 and {RECORDS_PER_TXN_MAX}");
    }
    if !(1..=PARTITIONS_MAX).contains(&a.partitions) {
        bail!("--partitions must be between 1 and {PARTITIONS_MAX}");
    }
    if !(1..=PRODUCERS_MAX).contains(&a.producers) {
        bail!("--producers must be between 1 and {PRODUCERS_MAX}");
    }
    if a.duration.is_none() && a.transactions < a.producers as u64 {
        bail!("--transactions ({}) must be at least --producers ({}), so that every producer commits one", a.transactions, a.producers);
    }
    if a.duration.is_none() && a.transactions / a.producers as u64 > TRANSACTIONS_PER_PRODUCER_MAX {
        bail!("--transactions allows at most {TRANSACTIONS_PER_PRODUCER_MAX} per producer; add --producers");
    }
    // 2. The topic, and the protocol the broker offers.
    let mut admin = Connection::connect(bootstrap).await?;
    let have = ensure_topic(&mut admin, &a.topic, a.partitions).await?;
    if have < a.partitions {
        bail!("topic '{}' has {have} partitions, fewer than --partitions {}; pick another --topic or delete this one", a.topic, a.partitions);
    }
    let offer = offer_of(&mut admin).await?;
    let protocol = choose_protocol(a.protocol, offer, bootstrap)?;
    eprintln!(
        "transactions {} (broker finalizes transaction.version {}), {} producer(s), {} record(s) of {} B per transaction over {} partition(s)",
        if protocol == Protocol::V2 { "V2" } else { "V1" },
        offer.transaction_version,
        a.producers,
        a.records_per_txn,
        a.size,
        a.partitions
    );
    // 3. Every producer starts and commits one unmeasured transaction; then the clock starts.
    let a = Arc::new(a);
    let committed = Arc::new(AtomicU64::new(0));
    let (ready_tx, mut ready_rx) = tokio::sync::mpsc::channel::<()>(a.producers);
    let (start_tx, start_rx) = tokio::sync::watch::channel::<Option<Until>>(None);
    let run_id = std::process::id();
    let mut tasks = Vec::with_capacity(a.producers);
    for i in 0..a.producers {
        let (bootstrap, a, committed, ready_tx, mut start_rx) = (
            bootstrap.to_string(),
            Arc::clone(&a),
            Arc::clone(&committed),
            ready_tx.clone(),
            start_rx.clone(),
        );
        tasks.push(tokio::spawn(async move {
            let mut p = TxnProducer::start(
                &bootstrap,
                format!("weir-bench-txn-{run_id}-{i}"),
                &a,
                protocol,
            )
            .await?;
            p.transaction(0, false).await?;
            p.measured.retries.clear();
            ready_tx
                .send(())
                .await
                .map_err(|_| anyhow!("the bench stopped"))?;
            drop(ready_tx);
            let until = start_rx
                .wait_for(|u| u.is_some())
                .await
                .map_err(|_| anyhow!("the bench stopped"))?
                .expect("checked by wait_for");
            let mut index = 1;
            loop {
                match until {
                    Until::Transactions(n) if p.measured.transactions >= n => break,
                    Until::Deadline(d) if Instant::now() >= d => break,
                    _ => {}
                }
                if p.measured.transactions >= TRANSACTIONS_PER_PRODUCER_MAX {
                    p.measured.capped = true;
                    break;
                }
                p.transaction(index, true).await?;
                index += 1;
                committed.fetch_add(1, Ordering::Relaxed);
            }
            Ok::<_, anyhow::Error>(p.measured)
        }));
    }
    drop(ready_tx);
    let mut ready = 0;
    while ready < a.producers && ready_rx.recv().await.is_some() {
        ready += 1;
    }
    if ready < a.producers {
        // A producer failed before its first transaction: report its error.
        drop(start_tx);
        let mut first_error = None;
        for t in tasks {
            if let Ok(Err(e)) = t.await {
                first_error.get_or_insert(e);
            }
        }
        return Err(first_error
            .unwrap_or_else(|| anyhow!("a producer stopped before its first transaction")));
    }
    let started = Instant::now();
    let per_producer = a.transactions / a.producers as u64;
    let until = match a.duration {
        Some(d) => Until::Deadline(started + d),
        None => Until::Transactions(per_producer),
    };
    start_tx.send_replace(Some(until));
    let ticker = {
        let committed = Arc::clone(&committed);
        let duration = a.duration;
        let total = per_producer * a.producers as u64;
        tokio::spawn(async move {
            loop {
                tokio::time::sleep(Duration::from_secs(1)).await;
                let done = committed.load(Ordering::Relaxed);
                match duration {
                    None => super::progress("transactions", done, total, started),
                    Some(d) => {
                        let secs = started.elapsed().as_secs_f64();
                        eprint!(
                            "\rtransactions: {done} ({:.0}/s), {secs:.0} of {} s   ",
                            done as f64 / secs.max(1e-9),
                            d.as_secs()
                        );
                    }
                }
            }
        })
    };
    // 4. Gather.
    let mut all = Measured::default();
    let mut first_error = None;
    for t in tasks {
        match t.await? {
            Ok(m) => {
                all.transactions += m.transactions;
                all.commit_us.extend(m.commit_us);
                all.txn_us.extend(m.txn_us);
                for (k, v) in m.retries {
                    *all.retries.entry(k).or_default() += v;
                }
                all.capped |= m.capped;
            }
            Err(e) => {
                first_error.get_or_insert(e);
            }
        }
    }
    let secs = started.elapsed().as_secs_f64();
    ticker.abort();
    eprintln!();
    if let Some(e) = first_error {
        return Err(e);
    }
    if all.capped {
        eprintln!(
            "a producer reached {TRANSACTIONS_PER_PRODUCER_MAX} transactions and stopped early"
        );
    }
    // 5. Report.
    let tps = all.transactions as f64 / secs;
    let rps = tps * f64::from(a.records_per_txn);
    let (c50, c99, _, cmax) = percentiles(all.commit_us);
    let (t50, t99, _, tmax) = percentiles(all.txn_us);
    let retries = if all.retries.is_empty() {
        "none".to_string()
    } else {
        all.retries
            .iter()
            .map(|(k, v)| format!("{k} {v}"))
            .collect::<Vec<_>>()
            .join(", ")
    };
    let protocol_name = match protocol {
        Protocol::V2 => "V2 (Produce v12 adds partitions, EndTxn v5 bumps the epoch)",
        Protocol::V1 => "V1 (AddPartitionsToTxn, Produce, EndTxn)",
    };
    report(
        &[
            ("protocol", protocol_name.to_string()),
            ("producers", a.producers.to_string()),
            (
                "records per transaction / partitions",
                format!("{} / {}", a.records_per_txn, a.partitions),
            ),
            ("transactions", all.transactions.to_string()),
            ("transactions/s", format!("{tps:.0}")),
            ("records/s", format!("{rps:.0}")),
            (
                "commit latency p50/p99/max ms",
                format!("{c50:.2} / {c99:.2} / {cmax:.2}"),
            ),
            (
                "transaction latency p50/p99/max ms",
                format!("{t50:.2} / {t99:.2} / {tmax:.2}"),
            ),
            ("retries", retries),
        ],
        serde_json::json!({
            "workload": "txn",
            "protocol": if protocol == Protocol::V2 { "v2" } else { "v1" },
            "producers": a.producers,
            "records_per_txn": a.records_per_txn,
            "partitions": a.partitions,
            "size": a.size,
            "transactions": all.transactions,
            "seconds": secs,
            "txn_per_s": tps,
            "records_per_s": rps,
            "commit_p50_ms": c50,
            "commit_p99_ms": c99,
            "commit_max_ms": cmax,
            "txn_p50_ms": t50,
            "txn_p99_ms": t99,
            "txn_max_ms": tmax,
            "retries": all.retries,
        }),
    );
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    // Goal: every record of a transaction lands on exactly one partition, the partitions
    // differ, and no partition gets more than one record over another.
    #[test]
    fn spread_covers_records_evenly() {
        for partitions in [1, 2, 4, 7] {
            for records in [1, 3, 4, 10, 100] {
                for index in 0..20 {
                    let parts = spread(index, records, partitions);
                    assert_eq!(parts.len() as i32, (records as i32).min(partitions));
                    assert!(parts.windows(2).all(|w| w[0].0 < w[1].0), "{parts:?}");
                    assert!(parts
                        .iter()
                        .all(|(p, n)| (0..partitions).contains(p) && *n > 0));
                    let (lo, hi) = (
                        parts.iter().map(|x| x.1).min().unwrap(),
                        parts.iter().map(|x| x.1).max().unwrap(),
                    );
                    assert!(hi - lo <= 1, "{parts:?}");
                }
            }
        }
        assert_eq!(spread(0, 10, 4), vec![(0, 3), (1, 3), (2, 2), (3, 2)]);
    }

    // Goal: one-record transactions over 4 partitions take turns, so all 4 get written.
    #[test]
    fn spread_rotates_small_transactions() {
        let firsts: Vec<i32> = (0..8).map(|i| spread(i, 1, 4)[0].0).collect();
        assert_eq!(firsts, vec![0, 1, 2, 3, 0, 1, 2, 3]);
        assert_eq!(spread(1, 2, 4), vec![(2, 1), (3, 1)]);
        assert_eq!(spread(2, 3, 4), vec![(0, 1), (2, 1), (3, 1)]);
    }

    // Goal: V2 only when the feature and both request versions are there; forcing V2 on a
    // broker without it is an error that names the fix.
    #[test]
    fn protocol_needs_feature_and_versions() {
        let full = Offer {
            transaction_version: 2,
            produce_max: 12,
            end_txn_max: 5,
        };
        assert_eq!(
            choose_protocol(ProtocolChoice::Auto, full, "b").unwrap(),
            Protocol::V2
        );
        assert_eq!(
            choose_protocol(ProtocolChoice::V1, full, "b").unwrap(),
            Protocol::V1
        );
        for lacking in [
            Offer {
                transaction_version: 1,
                ..full
            },
            Offer {
                produce_max: 11,
                ..full
            },
            Offer {
                end_txn_max: 4,
                ..full
            },
        ] {
            assert_eq!(
                choose_protocol(ProtocolChoice::Auto, lacking, "b").unwrap(),
                Protocol::V1
            );
            let e = choose_protocol(ProtocolChoice::V2, lacking, "b")
                .unwrap_err()
                .to_string();
            assert!(e.contains("--protocol v1"), "{e}");
        }
    }

    // Goal: the units people write, and refusals for zero and nonsense.
    #[test]
    fn durations_parse() {
        assert_eq!(parse_duration("10s").unwrap(), Duration::from_secs(10));
        assert_eq!(parse_duration("10").unwrap(), Duration::from_secs(10));
        assert_eq!(
            parse_duration("1500ms").unwrap(),
            Duration::from_millis(1500)
        );
        assert_eq!(parse_duration("2m").unwrap(), Duration::from_secs(120));
        assert!(parse_duration("0s").is_err());
        assert!(parse_duration("ten").is_err());
        assert!(parse_duration("-1s").is_err());
    }

    // Goal: refusals name the error and say what to do.
    #[test]
    fn refusals_name_error_and_fix() {
        let e = refusal("EndTxn", "t-1", ResponseError::ProducerFenced.code()).to_string();
        assert!(
            e.contains("'t-1'") && e.contains("ProducerFenced (90)") && e.contains("one bench"),
            "{e}"
        );
        assert!(retriable(ResponseError::ConcurrentTransactions.code()));
        assert!(!retriable(ResponseError::InvalidTxnState.code()));
    }
}
