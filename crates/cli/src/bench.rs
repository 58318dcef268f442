//! `weir bench`: load generators that speak plain Kafka protocol, so they measure weir and
//! Apache Kafka alike. Each shows progress on stderr while it runs and ends with a human
//! table and one JSON line on stdout.

use std::collections::BTreeMap;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::{anyhow, bail};
use bytes::{Buf, BufMut, Bytes, BytesMut};
use clap::{Args, Subcommand};
use kafka_protocol::error::ResponseError;
use kafka_protocol::messages::*;
use kafka_protocol::protocol::{Decodable, Encodable};
use kafka_protocol::records::Compression;
use parking_lot::Mutex;
use weir_log::batch::NewRecord;

use crate::client::{ask_group_coordinator, sb, Connection};

mod consumer_group;
mod rebalance;
mod txn;

#[derive(Subcommand)]
pub enum BenchCommand {
    /// Produce throughput and ack latency, each partition written at its leader.
    ///
    /// Example: weir bench produce --records 1000000 --size 100 --partitions 3 --acks 1
    Produce(ProduceArgs),
    /// Consumption throughput of a consumer group of N members.
    ///
    /// Example: weir bench consume --topic bench --members 3
    Consume(ConsumeArgs),
    /// End-to-end latency at a fixed offered rate.
    ///
    /// Example: weir bench e2e --rate 10000 --seconds 10
    E2e(E2eArgs),
    /// Time for a group of M members to get every partition, and to recover after a leave and
    /// a crash, over the classic or the consumer (KIP-848) protocol.
    ///
    /// Example: weir bench rebalance --protocol consumer --members 100 --partitions 200
    Rebalance(rebalance::RebalanceArgs),
    /// Offset commits per second sustained by the group coordinator.
    ///
    /// Example: weir bench commit --seconds 10 --committers 8
    Commit(CommitArgs),
    /// Committed transactions per second and commit latency of transactional producers.
    ///
    /// Example: weir bench txn --records-per-txn 10 --partitions 4 --duration 10s
    Txn(txn::TxnArgs),
    /// ConsumerGroupHeartbeat requests per second the coordinator answers for a stable group.
    ///
    /// Example: weir bench heartbeats --members 1000 --connections 4 --seconds 10
    Heartbeats(consumer_group::HeartbeatsArgs),
}

#[derive(Args)]
pub struct ProduceArgs {
    #[arg(long, default_value = "bench")]
    topic: String,
    #[arg(long, default_value_t = 1_000_000)]
    records: u64,
    /// Value size in bytes.
    #[arg(long, default_value_t = 100)]
    size: usize,
    #[arg(long, default_value_t = 3)]
    partitions: i32,
    /// 0, 1 or -1 (all).
    #[arg(long, default_value_t = 1, allow_hyphen_values = true)]
    acks: i16,
    /// none, gzip, snappy, lz4 or zstd.
    #[arg(long, default_value = "none")]
    compression: String,
    /// Bytes per partition batch.
    #[arg(long, default_value_t = 65_536)]
    batch_bytes: usize,
    /// Produce requests in flight per producer and partition leader.
    #[arg(long, default_value_t = 5)]
    in_flight: usize,
    /// Producers, each with its own connection to every partition leader.
    #[arg(long, default_value_t = 1)]
    producers: usize,
}

#[derive(Args)]
pub struct ConsumeArgs {
    #[arg(long, default_value = "bench")]
    topic: String,
    #[arg(long, default_value_t = 3)]
    members: usize,
    #[arg(long, default_value_t = 10_000)]
    session_timeout_ms: i32,
}

#[derive(Args)]
pub struct E2eArgs {
    #[arg(long, default_value = "bench-e2e")]
    topic: String,
    /// Records per second offered.
    #[arg(long, default_value_t = 10_000)]
    rate: u64,
    #[arg(long, default_value_t = 10)]
    seconds: u64,
    #[arg(long, default_value_t = 100)]
    size: usize,
}

#[derive(Args)]
pub struct CommitArgs {
    #[arg(long, default_value_t = 10)]
    seconds: u64,
    #[arg(long, default_value_t = 8)]
    committers: usize,
}

pub async fn run(bootstrap: &str, command: BenchCommand) -> anyhow::Result<()> {
    match command {
        BenchCommand::Produce(a) => produce(bootstrap, a).await,
        BenchCommand::Consume(a) => consume(bootstrap, a).await,
        BenchCommand::E2e(a) => e2e(bootstrap, a).await,
        BenchCommand::Rebalance(a) => rebalance::rebalance(bootstrap, a).await,
        BenchCommand::Commit(a) => commit(bootstrap, a).await,
        BenchCommand::Txn(a) => txn::txn(bootstrap, a).await,
        BenchCommand::Heartbeats(a) => consumer_group::heartbeats(bootstrap, a).await,
    }
}

/// Latency percentiles in ms from samples in µs.
fn percentiles(mut us: Vec<u64>) -> (f64, f64, f64, f64) {
    if us.is_empty() {
        return (f64::NAN, f64::NAN, f64::NAN, f64::NAN);
    }
    us.sort_unstable();
    let at =
        |q: f64| us[((q * us.len() as f64).ceil() as usize).clamp(1, us.len()) - 1] as f64 / 1000.0;
    (
        at(0.5),
        at(0.99),
        at(0.999),
        *us.last().expect("non-empty") as f64 / 1000.0,
    )
}

fn report(rows: &[(&str, String)], json: serde_json::Value) {
    let width = rows.iter().map(|(k, _)| k.len()).max().unwrap_or(0);
    for (k, v) in rows {
        println!("{k:<width$}  {v}");
    }
    println!("{json}");
}

fn compression_of(name: &str) -> anyhow::Result<Compression> {
    Ok(match name {
        "none" => Compression::None,
        "gzip" => Compression::Gzip,
        "snappy" => Compression::Snappy,
        "lz4" => Compression::Lz4,
        "zstd" => Compression::Zstd,
        other => bail!("unknown compression '{other}'; use none, gzip, snappy, lz4 or zstd"),
    })
}

/// A v2 record batch of `values`, stamped now.
fn encode_batch(values: &[Bytes], compression: Compression) -> anyhow::Result<Bytes> {
    let ts = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)?
        .as_millis() as i64;
    let records: Vec<NewRecord> = values
        .iter()
        .map(|v| NewRecord {
            key: None,
            value: Some(v.clone()),
            timestamp_ms: ts,
        })
        .collect();
    Ok(weir_log::batch::encode_batch(&records, None, compression)?.freeze())
}

/// Creates the topic if it is missing; returns its partition count.
async fn ensure_topic(conn: &mut Connection, topic: &str, partitions: i32) -> anyhow::Result<i32> {
    let req = CreateTopicsRequest::default()
        .with_timeout_ms(30_000)
        .with_topics(vec![create_topics_request::CreatableTopic::default()
            .with_name(TopicName(sb(topic)))
            .with_num_partitions(partitions)
            .with_replication_factor(1)]);
    let (resp, _) = conn.call(&req).await?;
    let code = resp.topics.first().map(|t| t.error_code).unwrap_or(0);
    if code != 0 && code != ResponseError::TopicAlreadyExists.code() {
        bail!("cannot create topic '{topic}': error {code}");
    }
    for _ in 0..50 {
        let req =
            MetadataRequest::default()
                .with_topics(Some(vec![metadata_request::MetadataRequestTopic::default(
                )
                .with_name(Some(TopicName(sb(topic))))]));
        let (meta, _) = conn.call(&req).await?;
        if let Some(t) = meta.topics.first() {
            // A new topic is usable once every partition has a leader.
            if t.error_code == 0
                && !t.partitions.is_empty()
                && t.partitions
                    .iter()
                    .all(|p| p.error_code == 0 && p.leader_id.0 >= 0)
            {
                return Ok(t.partitions.len() as i32);
            }
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    bail!("topic '{topic}' did not become available")
}

/// The address of each partition's leader, by partition index.
pub(crate) async fn leaders(
    conn: &mut Connection,
    topic: &str,
    partitions: i32,
) -> anyhow::Result<Vec<String>> {
    let req = MetadataRequest::default().with_topics(Some(vec![
        metadata_request::MetadataRequestTopic::default().with_name(Some(TopicName(sb(topic)))),
    ]));
    let (meta, _) = conn.call(&req).await?;
    let brokers: BTreeMap<i32, String> = meta
        .brokers
        .iter()
        .map(|b| (b.node_id.0, format!("{}:{}", b.host, b.port)))
        .collect();
    let t = meta
        .topics
        .first()
        .ok_or_else(|| anyhow!("no metadata for topic '{topic}'"))?;
    let mut out = Vec::with_capacity(partitions as usize);
    for p in 0..partitions {
        let part = t
            .partitions
            .iter()
            .find(|x| x.partition_index == p)
            .ok_or_else(|| anyhow!("topic '{topic}' has no partition {p}"))?;
        let address = brokers.get(&part.leader_id.0).ok_or_else(|| anyhow!("partition {p} of '{topic}' has no leader the broker names; try again once the topic settles"))?;
        out.push(address.clone());
    }
    Ok(out)
}

fn progress(label: &str, done: u64, total: u64, started: Instant) {
    let secs = started.elapsed().as_secs_f64().max(1e-9);
    eprint!("\r{label}: {done}/{total} ({:.0}/s)   ", done as f64 / secs);
}

/// One producer's connection to one partition leader, writing the same batch to each of
/// the leader's partitions per request.
struct LeaderWriter {
    address: String,
    topic: String,
    partitions: Vec<i32>,
    batch: Bytes,
    per_batch: u64,
    acks: i16,
    in_flight: usize,
}

impl LeaderWriter {
    /// Sends requests until `records` are written, `in_flight` at a time; the latency of
    /// each acknowledged request, in microseconds.
    async fn run(self, records: u64, sent: Arc<AtomicU64>) -> anyhow::Result<Vec<u64>> {
        let LeaderWriter {
            address,
            topic,
            partitions,
            batch,
            per_batch,
            acks,
            in_flight,
        } = self;
        let mut conn = Connection::connect(&address).await?;
        let version = conn.version::<ProduceRequest>()?.min(12);
        let request = ProduceRequest::default()
            .with_acks(acks)
            .with_timeout_ms(30_000)
            .with_topic_data(vec![produce_request::TopicProduceData::default()
                .with_name(TopicName(sb(&topic)))
                .with_partition_data(
                    partitions
                        .iter()
                        .map(|p| {
                            produce_request::PartitionProduceData::default()
                                .with_index(*p)
                                .with_records(Some(batch.clone()))
                        })
                        .collect(),
                )]);
        // A new topic may not be writable at once (Kafka answers NOT_LEADER_OR_FOLLOWER
        // until its metadata settles): send one request until it is accepted, as
        // clients retry. Those records are not counted.
        if acks != 0 {
            let mut tries = 0;
            loop {
                let resp: ProduceResponse = conn.call_at(&request, version).await?;
                let retriable = resp
                    .responses
                    .iter()
                    .flat_map(|t| t.partition_responses.iter())
                    .any(|p| p.error_code != 0);
                if !retriable {
                    break;
                }
                tries += 1;
                if tries > 100 {
                    bail!("topic '{topic}' does not accept writes at {address} after 10 s");
                }
                tokio::time::sleep(Duration::from_millis(100)).await;
            }
        }
        let per_request = per_batch * partitions.len() as u64;
        let mut latencies = Vec::new();
        let mut sent_at = std::collections::VecDeque::new();
        let mut done = 0u64;
        while done < records || !sent_at.is_empty() {
            while done < records && sent_at.len() < in_flight {
                conn.send_at(&request, version).await?;
                done += per_request;
                if acks == 0 {
                    sent.fetch_add(per_request, Ordering::Relaxed);
                } else {
                    sent_at.push_back(Instant::now());
                }
            }
            if let Some(t) = sent_at.pop_front() {
                let resp: ProduceResponse = conn.recv().await?;
                latencies.push(t.elapsed().as_micros() as u64);
                for p in resp
                    .responses
                    .iter()
                    .flat_map(|t| t.partition_responses.iter())
                {
                    if p.error_code != 0 {
                        bail!(
                            "partition {} refused a batch at {address}: error {}",
                            p.index,
                            p.error_code
                        );
                    }
                }
                sent.fetch_add(per_request, Ordering::Relaxed);
            }
        }
        Ok(latencies)
    }
}

async fn produce(bootstrap: &str, a: ProduceArgs) -> anyhow::Result<()> {
    let compression = compression_of(&a.compression)?;
    if !matches!(a.acks, -1..=1) {
        bail!("--acks must be 0, 1 or -1");
    }
    let mut admin = Connection::connect(bootstrap).await?;
    let partitions = ensure_topic(&mut admin, &a.topic, a.partitions).await?;
    let per_batch = (a.batch_bytes / a.size.max(1)).max(1) as u64;
    let value = Bytes::from(vec![b'x'; a.size]);
    let batch = encode_batch(&vec![value; per_batch as usize], compression)?;
    // Each partition is written at its leader, as clients do: on one broker that is the
    // bootstrap broker, in a cluster each leader gets the requests for its partitions.
    let mut by_leader: BTreeMap<String, Vec<i32>> = BTreeMap::new();
    for (p, address) in leaders(&mut admin, &a.topic, partitions)
        .await?
        .into_iter()
        .enumerate()
    {
        by_leader.entry(address).or_default().push(p as i32);
    }
    let sent = Arc::new(AtomicU64::new(0));
    let started = Instant::now();
    let per_producer = a.records / a.producers as u64;
    let mut tasks = Vec::new();
    for _ in 0..a.producers {
        for (address, parts) in &by_leader {
            let records = per_producer * parts.len() as u64 / partitions as u64;
            let writer = LeaderWriter {
                address: address.clone(),
                topic: a.topic.clone(),
                partitions: parts.clone(),
                batch: batch.clone(),
                per_batch,
                acks: a.acks,
                in_flight: a.in_flight.max(1),
            };
            tasks.push(tokio::spawn(writer.run(records, Arc::clone(&sent))));
        }
    }
    let ticker = {
        let sent = Arc::clone(&sent);
        let total = a.records;
        tokio::spawn(async move {
            loop {
                tokio::time::sleep(Duration::from_secs(1)).await;
                progress("produced", sent.load(Ordering::Relaxed), total, started);
            }
        })
    };
    let mut latencies = Vec::new();
    for t in tasks {
        latencies.extend(t.await??);
    }
    ticker.abort();
    eprintln!();
    let secs = started.elapsed().as_secs_f64();
    let records = sent.load(Ordering::Relaxed);
    let (p50, p99, p999, max) = percentiles(latencies);
    let rps = records as f64 / secs;
    let mbps = rps * a.size as f64 / 1e6;
    report(
        &[
            ("records", records.to_string()),
            ("records/s", format!("{rps:.0}")),
            ("MB/s", format!("{mbps:.1}")),
            (
                "ack latency p50/p99/p99.9/max ms",
                format!("{p50:.2} / {p99:.2} / {p999:.2} / {max:.2}"),
            ),
        ],
        serde_json::json!({"workload":"produce","records":records,"records_per_s":rps,"mb_per_s":mbps,"p50_ms":p50,"p99_ms":p99,"p999_ms":p999,"max_ms":max,"acks":a.acks,"size":a.size,"partitions":partitions}),
    );
    Ok(())
}

/// Tries of a JoinGroup the coordinator is not ready for (100 ms apart).
const JOIN_RETRIES_MAX: u32 = 300;

/// One classic-protocol group member: join, sync, heartbeat. Each member has its own
/// connection, because a JoinGroup waits at the coordinator until the group forms.
pub struct Member {
    conn: Connection,
    group: String,
    topic: String,
    partitions: i32,
    pub member_id: String,
    pub generation: i32,
    session_timeout_ms: i32,
    rebalance_timeout_ms: i32,
}

fn versioned<T: Encodable>(message: &T, version: i16) -> anyhow::Result<Bytes> {
    let mut buf = BytesMut::new();
    buf.put_i16(version);
    message.encode(&mut buf, version)?;
    Ok(buf.freeze())
}

/// The address of `group`'s coordinator, asked through `conn`. The coordinator may not be
/// ready yet (Kafka creates __consumer_offsets on the first request): asks again for a
/// while, as clients do.
async fn find_group_coordinator(conn: &mut Connection, group: &str) -> anyhow::Result<String> {
    let mut tries = 0;
    loop {
        let (code, _, host, port) = ask_group_coordinator(conn, group).await?;
        if code == 0 {
            return Ok(format!("{host}:{port}"));
        }
        tries += 1;
        if tries > 300 {
            bail!("no coordinator for group '{group}' after 30 s (error {code})");
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

/// Waits until `group`'s coordinator, reached through `conn`, answers for the group: Kafka
/// creates __consumer_offsets on the first FindCoordinator and names the coordinator
/// before it has loaded its partitions. A benchmark that starts its clock after this does
/// not time that loading.
async fn wait_coordinator_ready(conn: &mut Connection, group: &str) -> anyhow::Result<()> {
    let req = DescribeGroupsRequest::default().with_groups(vec![GroupId(sb(group))]);
    let mut tries = 0;
    loop {
        let (r, _) = conn.call(&req).await?;
        let code = r.groups.first().map_or(0, |g| g.error_code);
        // A group that does not exist yet is an answer too (DescribeGroups v6 and later).
        if code == 0 || code == ResponseError::GroupIdNotFound.code() {
            return Ok(());
        }
        tries += 1;
        if tries > 300 {
            bail!("the coordinator of group '{group}' was not ready after 30 s (error {code})");
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

impl Member {
    pub async fn new(
        bootstrap: &str,
        group: &str,
        topic: &str,
        partitions: i32,
        session_timeout_ms: i32,
        rebalance_timeout_ms: i32,
    ) -> anyhow::Result<Member> {
        let mut conn = Connection::connect(bootstrap).await?;
        let address = find_group_coordinator(&mut conn, group).await?;
        let conn = if address == bootstrap {
            conn
        } else {
            Connection::connect(&address).await?
        };
        Ok(Member::with_connection(
            conn,
            group,
            topic,
            partitions,
            session_timeout_ms,
            rebalance_timeout_ms,
        ))
    }

    /// A member that talks to its coordinator over `conn`; it has not joined yet.
    fn with_connection(
        conn: Connection,
        group: &str,
        topic: &str,
        partitions: i32,
        session_timeout_ms: i32,
        rebalance_timeout_ms: i32,
    ) -> Member {
        Member {
            conn,
            group: group.into(),
            topic: topic.into(),
            partitions,
            member_id: String::new(),
            generation: -1,
            session_timeout_ms,
            rebalance_timeout_ms,
        }
    }

    /// Joins (or rejoins) and returns this member's partitions.
    pub async fn join(&mut self) -> anyhow::Result<Vec<i32>> {
        let subscription = versioned(
            &ConsumerProtocolSubscription::default().with_topics(vec![sb(&self.topic)]),
            0,
        )?;
        let mut coordinator_retries = 0;
        loop {
            let req = JoinGroupRequest::default()
                .with_group_id(GroupId(sb(&self.group)))
                .with_session_timeout_ms(self.session_timeout_ms)
                .with_rebalance_timeout_ms(self.rebalance_timeout_ms)
                .with_member_id(sb(&self.member_id))
                .with_protocol_type(sb("consumer"))
                .with_protocols(vec![join_group_request::JoinGroupRequestProtocol::default(
                )
                .with_name(sb("range"))
                .with_metadata(subscription.clone())]);
            let (r, _) = self.conn.call(&req).await?;
            if r.error_code == ResponseError::MemberIdRequired.code() {
                self.member_id = r.member_id.to_string();
                continue;
            }
            if r.error_code == ResponseError::UnknownMemberId.code() {
                self.member_id.clear();
                continue;
            }
            if r.error_code == ResponseError::RebalanceInProgress.code() {
                continue;
            }
            let retriable = [
                ResponseError::CoordinatorLoadInProgress.code(),
                ResponseError::CoordinatorNotAvailable.code(),
                ResponseError::NotCoordinator.code(),
            ];
            if retriable.contains(&r.error_code) {
                coordinator_retries += 1;
                if coordinator_retries > JOIN_RETRIES_MAX {
                    bail!(
                        "JoinGroup kept failing with error {} after {JOIN_RETRIES_MAX} tries",
                        r.error_code
                    );
                }
                tokio::time::sleep(Duration::from_millis(100)).await;
                continue;
            }
            if r.error_code != 0 {
                bail!("JoinGroup failed: error {}", r.error_code);
            }
            self.member_id = r.member_id.to_string();
            self.generation = r.generation_id;
            let mut assignments = Vec::new();
            if r.leader == r.member_id {
                let mut ids: Vec<String> =
                    r.members.iter().map(|m| m.member_id.to_string()).collect();
                ids.sort();
                let n = ids.len() as i32;
                for (i, id) in ids.iter().enumerate() {
                    let i = i as i32;
                    let (per, extra) = (self.partitions / n, self.partitions % n);
                    let start = i * per + i.min(extra);
                    let parts: Vec<i32> = (start..start + per + i32::from(i < extra)).collect();
                    let a = ConsumerProtocolAssignment::default().with_assigned_partitions(vec![
                        consumer_protocol_assignment::TopicPartition::default()
                            .with_topic(TopicName(sb(&self.topic)))
                            .with_partitions(parts),
                    ]);
                    assignments.push(
                        sync_group_request::SyncGroupRequestAssignment::default()
                            .with_member_id(sb(id))
                            .with_assignment(versioned(&a, 0)?),
                    );
                }
            }
            let req = SyncGroupRequest::default()
                .with_group_id(GroupId(sb(&self.group)))
                .with_generation_id(self.generation)
                .with_member_id(sb(&self.member_id))
                .with_protocol_type(Some(sb("consumer")))
                .with_protocol_name(Some(sb("range")))
                .with_assignments(assignments);
            let (s, _) = self.conn.call(&req).await?;
            if s.error_code != 0 {
                continue;
            }
            let mut bytes = s.assignment.clone();
            if bytes.len() < 2 {
                return Ok(Vec::new());
            }
            let version = bytes.get_i16();
            let a = ConsumerProtocolAssignment::decode(&mut bytes, version)?;
            return Ok(a
                .assigned_partitions
                .into_iter()
                .flat_map(|t| t.partitions)
                .collect());
        }
    }

    /// One heartbeat; true when the group is rebalancing and this member must rejoin.
    pub async fn heartbeat(&mut self) -> anyhow::Result<bool> {
        let req = HeartbeatRequest::default()
            .with_group_id(GroupId(sb(&self.group)))
            .with_generation_id(self.generation)
            .with_member_id(sb(&self.member_id));
        let (r, _) = self.conn.call(&req).await?;
        Ok(r.error_code != 0)
    }

    pub async fn leave(&mut self) -> anyhow::Result<()> {
        // v3+ leaves in batches; earlier versions name one member.
        let v = self.conn.version::<LeaveGroupRequest>()?;
        let req = LeaveGroupRequest::default().with_group_id(GroupId(sb(&self.group)));
        let req = if v >= 3 {
            req.with_members(vec![
                leave_group_request::MemberIdentity::default().with_member_id(sb(&self.member_id))
            ])
        } else {
            req.with_member_id(sb(&self.member_id))
        };
        self.conn.call_at(&req, v).await?;
        Ok(())
    }
}

/// Records and the next offset in a fetched record set, from the batch headers alone.
fn count_records(records: &[u8], from: i64) -> (u64, i64) {
    let (mut count, mut next, mut at) = (0u64, from, 0usize);
    while at + 61 <= records.len() {
        let b = &records[at..];
        let base = i64::from_be_bytes(b[0..8].try_into().expect("8 bytes"));
        let len = i32::from_be_bytes(b[8..12].try_into().expect("4 bytes")) as usize + 12;
        let last_delta = i32::from_be_bytes(b[23..27].try_into().expect("4 bytes"));
        let n = i32::from_be_bytes(b[57..61].try_into().expect("4 bytes"));
        if at + len > records.len() {
            break;
        }
        if base >= from {
            count += n.max(0) as u64;
        }
        next = next.max(base + i64::from(last_delta) + 1);
        at += len;
    }
    (count, next)
}

async fn consume(bootstrap: &str, a: ConsumeArgs) -> anyhow::Result<()> {
    let mut admin = Connection::connect(bootstrap).await?;
    let (meta, _) = admin
        .call(&MetadataRequest::default().with_topics(Some(
            vec![metadata_request::MetadataRequestTopic::default(
                )
                .with_name(Some(TopicName(sb(&a.topic))))],
        )))
        .await?;
    let t = meta
        .topics
        .first()
        .ok_or_else(|| anyhow!("no metadata for topic '{}'", a.topic))?;
    if t.error_code != 0 {
        bail!(
            "topic '{}' does not exist; fill it first with `weir bench produce --topic {}`",
            a.topic,
            a.topic
        );
    }
    let partitions = t.partitions.len() as i32;
    let list = ListOffsetsRequest::default()
        .with_replica_id(BrokerId(-1))
        .with_topics(vec![list_offsets_request::ListOffsetsTopic::default()
            .with_name(TopicName(sb(&a.topic)))
            .with_partitions(
                (0..partitions)
                    .map(|p| {
                        list_offsets_request::ListOffsetsPartition::default()
                            .with_partition_index(p)
                            .with_timestamp(-1)
                    })
                    .collect(),
            )]);
    let (ends, _) = admin.call(&list).await?;
    let end: BTreeMap<i32, i64> = ends.topics[0]
        .partitions
        .iter()
        .map(|p| (p.partition_index, p.offset))
        .collect();
    let total: i64 = end.values().sum();
    let group = format!("weir-bench-{}", std::process::id());
    let consumed = Arc::new(AtomicU64::new(0));
    let bytes_read = Arc::new(AtomicU64::new(0));
    let started = Instant::now();
    let mut tasks = Vec::new();
    for _ in 0..a.members {
        let (bootstrap, topic, group, end) = (
            bootstrap.to_string(),
            a.topic.clone(),
            group.clone(),
            end.clone(),
        );
        let (consumed, bytes_read) = (Arc::clone(&consumed), Arc::clone(&bytes_read));
        let session = a.session_timeout_ms;
        tasks.push(tokio::spawn(async move {
            let mut m =
                Member::new(&bootstrap, &group, &topic, partitions, session, 60_000).await?;
            let mine = m.join().await?;
            let mut fetcher = Connection::connect(&bootstrap).await?;
            let mut pos: BTreeMap<i32, i64> = mine.iter().map(|p| (*p, 0)).collect();
            let mut last_beat = Instant::now();
            while pos.iter().any(|(p, o)| *o < end[p])
                && (consumed.load(Ordering::Relaxed) as i64) < total
            {
                let req = FetchRequest::default()
                    .with_replica_id(BrokerId(-1))
                    .with_max_wait_ms(500)
                    .with_min_bytes(1)
                    .with_max_bytes(50 << 20)
                    .with_session_epoch(-1)
                    .with_topics(vec![fetch_request::FetchTopic::default()
                        .with_topic(TopicName(sb(&topic)))
                        .with_partitions(
                            pos.iter()
                                .map(|(p, o)| {
                                    fetch_request::FetchPartition::default()
                                        .with_partition(*p)
                                        .with_fetch_offset(*o)
                                        .with_partition_max_bytes(1 << 20)
                                })
                                .collect(),
                        )]);
                let v = fetcher.version::<FetchRequest>()?.min(12);
                let resp: FetchResponse = fetcher.call_at(&req, v).await?;
                for part in resp.responses.iter().flat_map(|t| t.partitions.iter()) {
                    if let Some(records) = &part.records {
                        let from = pos[&part.partition_index];
                        let (n, next) = count_records(records, from);
                        consumed.fetch_add(n, Ordering::Relaxed);
                        bytes_read.fetch_add(records.len() as u64, Ordering::Relaxed);
                        pos.insert(part.partition_index, next);
                    }
                }
                if last_beat.elapsed() > Duration::from_millis(1000) {
                    m.heartbeat().await?;
                    last_beat = Instant::now();
                }
            }
            m.leave().await?;
            Ok::<_, anyhow::Error>(())
        }));
    }
    let ticker = {
        let consumed = Arc::clone(&consumed);
        tokio::spawn(async move {
            loop {
                tokio::time::sleep(Duration::from_secs(1)).await;
                progress(
                    "consumed",
                    consumed.load(Ordering::Relaxed),
                    total as u64,
                    started,
                );
            }
        })
    };
    for t in tasks {
        t.await??;
    }
    ticker.abort();
    eprintln!();
    let secs = started.elapsed().as_secs_f64();
    let n = consumed.load(Ordering::Relaxed);
    let rps = n as f64 / secs;
    let mbps = bytes_read.load(Ordering::Relaxed) as f64 / secs / 1e6;
    report(
        &[
            ("members", a.members.to_string()),
            ("records", n.to_string()),
            ("records/s", format!("{rps:.0}")),
            ("MB/s (on the wire)", format!("{mbps:.1}")),
        ],
        serde_json::json!({"workload":"consume","members":a.members,"records":n,"records_per_s":rps,"mb_per_s":mbps}),
    );
    Ok(())
}

async fn e2e(bootstrap: &str, a: E2eArgs) -> anyhow::Result<()> {
    let mut admin = Connection::connect(bootstrap).await?;
    ensure_topic(&mut admin, &a.topic, 1).await?;
    let list = ListOffsetsRequest::default()
        .with_replica_id(BrokerId(-1))
        .with_topics(vec![list_offsets_request::ListOffsetsTopic::default()
            .with_name(TopicName(sb(&a.topic)))
            .with_partitions(vec![
                list_offsets_request::ListOffsetsPartition::default().with_timestamp(-1),
            ])]);
    let (ends, _) = admin.call(&list).await?;
    let start_offset = ends.topics[0].partitions[0].offset;
    let total = a.rate * a.seconds;
    let origin = Instant::now();
    let done = Arc::new(AtomicBool::new(false));
    let samples = Arc::new(Mutex::new(Vec::with_capacity(total as usize)));
    let reader = {
        let (bootstrap, topic, done, samples) = (
            bootstrap.to_string(),
            a.topic.clone(),
            Arc::clone(&done),
            Arc::clone(&samples),
        );
        tokio::spawn(async move {
            let mut conn = Connection::connect(&bootstrap).await?;
            let v = conn.version::<FetchRequest>()?.min(12);
            let mut offset = start_offset;
            let mut seen = 0u64;
            while seen < total
                && !(done.load(Ordering::Relaxed)
                    && origin.elapsed() > Duration::from_secs(a.seconds + 10))
            {
                let req = FetchRequest::default()
                    .with_replica_id(BrokerId(-1))
                    .with_max_wait_ms(500)
                    .with_min_bytes(1)
                    .with_max_bytes(8 << 20)
                    .with_session_epoch(-1)
                    .with_topics(vec![fetch_request::FetchTopic::default()
                        .with_topic(TopicName(sb(&topic)))
                        .with_partitions(vec![fetch_request::FetchPartition::default()
                            .with_fetch_offset(offset)
                            .with_partition_max_bytes(8 << 20)])]);
                let resp: FetchResponse = conn.call_at(&req, v).await?;
                let Some(mut records) = resp
                    .responses
                    .first()
                    .and_then(|t| t.partitions.first())
                    .and_then(|p| p.records.clone())
                else {
                    continue;
                };
                let now_us = origin.elapsed().as_micros() as u64;
                let sets = kafka_protocol::records::RecordBatchDecoder::decode_all(&mut records)?;
                let mut s = samples.lock();
                for set in sets {
                    for r in set.records {
                        if r.offset < offset {
                            continue;
                        }
                        offset = r.offset + 1;
                        seen += 1;
                        if let Some(v) = r.value {
                            if v.len() >= 8 {
                                let sent_us =
                                    u64::from_be_bytes(v[..8].try_into().expect("8 bytes"));
                                s.push(now_us.saturating_sub(sent_us));
                            }
                        }
                    }
                }
            }
            Ok::<_, anyhow::Error>(())
        })
    };
    let mut conn = Connection::connect(bootstrap).await?;
    let v = conn.version::<ProduceRequest>()?.min(12);
    let interval = Duration::from_nanos(1_000_000_000 / a.rate.max(1));
    let mut sent = 0u64;
    while sent < total {
        let due = origin + interval * sent as u32;
        tokio::time::sleep_until(due.into()).await;
        let mut value = BytesMut::with_capacity(a.size.max(8));
        value.put_u64(origin.elapsed().as_micros() as u64);
        value.resize(a.size.max(8), b'x');
        let batch = encode_batch(&[value.freeze()], Compression::None)?;
        let req = ProduceRequest::default()
            .with_acks(1)
            .with_timeout_ms(30_000)
            .with_topic_data(vec![produce_request::TopicProduceData::default()
                .with_name(TopicName(sb(&a.topic)))
                .with_partition_data(vec![
                    produce_request::PartitionProduceData::default().with_records(Some(batch)),
                ])]);
        conn.send_at(&req, v).await?;
        while conn.in_flight() > 64 {
            let _: ProduceResponse = conn.recv().await?;
        }
        sent += 1;
        if sent % a.rate == 0 {
            progress("sent", sent, total, origin);
        }
    }
    while conn.in_flight() > 0 {
        let _: ProduceResponse = conn.recv().await?;
    }
    done.store(true, Ordering::Relaxed);
    reader.await??;
    eprintln!();
    let samples = std::mem::take(&mut *samples.lock());
    let received = samples.len();
    let (p50, p99, p999, max) = percentiles(samples);
    report(
        &[
            ("offered records/s", a.rate.to_string()),
            ("received", received.to_string()),
            (
                "end-to-end p50/p99/p99.9/max ms",
                format!("{p50:.2} / {p99:.2} / {p999:.2} / {max:.2}"),
            ),
        ],
        serde_json::json!({"workload":"e2e","rate":a.rate,"received":received,"p50_ms":p50,"p99_ms":p99,"p999_ms":p999,"max_ms":max}),
    );
    Ok(())
}

async fn commit(bootstrap: &str, a: CommitArgs) -> anyhow::Result<()> {
    // Kafka refuses commits for topics that do not exist.
    let mut admin = Connection::connect(bootstrap).await?;
    ensure_topic(&mut admin, "bench-commit", 1).await?;
    let commits = Arc::new(AtomicU64::new(0));
    let started = Instant::now();
    let end = started + Duration::from_secs(a.seconds);
    let mut tasks = Vec::new();
    for i in 0..a.committers {
        let (bootstrap, commits) = (bootstrap.to_string(), Arc::clone(&commits));
        tasks.push(tokio::spawn(async move {
            let group = format!("weir-bench-commit-{}-{i}", std::process::id());
            let mut conn = Connection::connect(&bootstrap).await?;
            let mut offset = 0i64;
            while Instant::now() < end {
                offset += 1;
                let req = OffsetCommitRequest::default()
                    .with_group_id(GroupId(sb(&group)))
                    .with_generation_id_or_member_epoch(-1)
                    .with_topics(vec![
                        offset_commit_request::OffsetCommitRequestTopic::default()
                            .with_name(TopicName(sb("bench-commit")))
                            .with_partitions(vec![
                                offset_commit_request::OffsetCommitRequestPartition::default()
                                    .with_committed_offset(offset)
                                    .with_committed_leader_epoch(-1),
                            ]),
                    ]);
                let (r, _) = conn.call(&req).await?;
                let code = r.topics[0].partitions[0].error_code;
                if code != 0 {
                    bail!("commit refused: error {code}");
                }
                commits.fetch_add(1, Ordering::Relaxed);
            }
            Ok::<_, anyhow::Error>(())
        }));
    }
    for t in tasks {
        t.await??;
    }
    let rate = commits.load(Ordering::Relaxed) as f64 / started.elapsed().as_secs_f64();
    report(
        &[
            ("committers", a.committers.to_string()),
            ("commits/s", format!("{rate:.0}")),
        ],
        serde_json::json!({"workload":"commit","committers":a.committers,"commits_per_s":rate}),
    );
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    // Goal: percentiles are nearest-rank (the smallest sample with at least q of all
    // samples at or below it), in ms from µs, so p99 of 100 samples is the 99th.
    #[test]
    fn percentiles_are_nearest_rank() {
        let (p50, p99, p999, max) = percentiles((1..=100).rev().map(|ms| ms * 1000).collect());
        assert_eq!((p50, p99, p999, max), (50.0, 99.0, 100.0, 100.0));
        let (p50, p99, p999, max) = percentiles(vec![2500]);
        assert_eq!((p50, p99, p999, max), (2.5, 2.5, 2.5, 2.5));
        // 1,000 samples: p99.9 is the 999th, below the single slow outlier.
        let mut us: Vec<u64> = vec![1000; 999];
        us.push(900_000);
        let (_, p99, p999, max) = percentiles(us);
        assert_eq!((p99, p999, max), (1.0, 1.0, 900.0));
        assert!(percentiles(Vec::new()).0.is_nan());
    }
}
