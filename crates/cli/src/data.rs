//! `weir produce` and `weir consume`.

use std::collections::BTreeMap;
use std::io::{BufRead, BufReader, Read, Write};
use std::path::PathBuf;
use std::time::{Duration, Instant};

use anyhow::{anyhow, bail, Context};
use bytes::{Bytes, BytesMut};
use clap::ValueEnum;
use indexmap::IndexMap;
use indicatif::{ProgressBar, ProgressStyle};
use kafka_protocol::messages::*;
use kafka_protocol::protocol::StrBytes;
use kafka_protocol::records::{
    Compression, Record, RecordBatchEncoder, RecordEncodeOptions, TimestampType,
};
use serde_json::json;

use crate::bench::Member;
use crate::client::sb;
use crate::cluster::{error_name, Cluster, TopicInfo};
use crate::topics::parse_kv;

#[derive(Clone, Copy, ValueEnum)]
pub enum Acks {
    #[value(name = "0")]
    None,
    #[value(name = "1")]
    Leader,
    All,
}

#[derive(Clone, Copy, ValueEnum)]
pub enum Codec {
    None,
    Gzip,
    Snappy,
    Lz4,
    Zstd,
}

#[derive(clap::Args)]
pub struct ProduceArgs {
    topic: String,
    /// Read lines from this file instead of stdin (shows a progress bar).
    #[arg(long, short = 'f', value_name = "FILE")]
    file: Option<PathBuf>,
    /// Split each line at the first SEP into key and value.
    #[arg(long, short = 'K', value_name = "SEP")]
    key_separator: Option<String>,
    /// Header KEY=VALUE added to every record; repeat for more.
    #[arg(long = "header", short = 'H', value_name = "KEY=VALUE")]
    headers: Vec<String>,
    /// Send every record to this partition (default: by key hash as the Java client does; unkeyed round-robin).
    #[arg(long, short = 'p')]
    partition: Option<i32>,
    #[arg(long, value_enum, default_value = "all")]
    acks: Acks,
    #[arg(long, value_enum, default_value = "none")]
    compression: Codec,
    /// Most records per batch.
    #[arg(long, default_value_t = 10_000)]
    batch_records: usize,
}

#[derive(clap::Args)]
pub struct ConsumeArgs {
    topic: String,
    /// Consume as a member of this group: committed offsets decide where to start, and what is printed is committed.
    #[arg(long, short = 'g')]
    group: Option<String>,
    /// Start at the earliest offset (with --group: where the group has no committed offset).
    #[arg(long)]
    from_beginning: bool,
    /// Start at this offset (of every chosen partition).
    #[arg(long, conflicts_with_all = ["from_beginning", "timestamp", "group"])]
    offset: Option<i64>,
    /// Start at the first record at or after this ISO 8601 time.
    #[arg(long, conflicts_with_all = ["from_beginning", "group"])]
    timestamp: Option<String>,
    /// Only these partitions; repeat for more (not with --group).
    #[arg(long = "partition", short = 'p', conflicts_with = "group")]
    partitions: Vec<i32>,
    /// Stop after this many records.
    #[arg(long, short = 'n')]
    max_messages: Option<u64>,
    /// Stop once every partition has been read to its end.
    #[arg(long, short = 'e')]
    exit_at_end: bool,
    /// Output per record, with %t topic, %p partition, %o offset, %k key, %v value,
    /// %T timestamp (ms), %h headers; \n and \t escapes.
    #[arg(long, default_value = "%v")]
    format: String,
    /// One JSON object per record instead of --format.
    #[arg(long)]
    json: bool,
}

// ---------------------------------------------------------------- produce

pub use weir_console::partitioner::partition_for_key;

fn compression(c: Codec) -> Compression {
    match c {
        Codec::None => Compression::None,
        Codec::Gzip => Compression::Gzip,
        Codec::Snappy => Compression::Snappy,
        Codec::Lz4 => Compression::Lz4,
        Codec::Zstd => Compression::Zstd,
    }
}

fn now_ms() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_millis() as i64)
        .unwrap_or(0)
}

struct Pending {
    records: BTreeMap<i32, Vec<Record>>,
    count: usize,
}

async fn send(
    cluster: &mut Cluster,
    topic: &TopicInfo,
    pending: &mut Pending,
    acks: Acks,
    codec: Codec,
) -> anyhow::Result<()> {
    let mut by_leader: BTreeMap<i32, Vec<(i32, Bytes)>> = BTreeMap::new();
    for (p, recs) in std::mem::take(&mut pending.records) {
        if recs.is_empty() {
            continue;
        }
        let mut buf = BytesMut::new();
        RecordBatchEncoder::encode(
            &mut buf,
            &recs,
            &RecordEncodeOptions {
                version: 2,
                compression: compression(codec),
            },
        )
        .map_err(|e| anyhow!("cannot encode a batch: {e}"))?;
        let leader = topic
            .partitions
            .iter()
            .find(|x| x.partition == p)
            .map(|x| x.leader)
            .unwrap_or(-1);
        by_leader.entry(leader).or_default().push((p, buf.freeze()));
    }
    pending.count = 0;
    let acks = match acks {
        Acks::None => 0,
        Acks::Leader => 1,
        Acks::All => -1,
    };
    for (leader, batches) in by_leader {
        let req = ProduceRequest::default()
            .with_acks(acks)
            .with_timeout_ms(30_000)
            .with_topic_data(vec![produce_request::TopicProduceData::default()
                .with_name(TopicName(sb(&topic.name)))
                .with_topic_id(topic.id.parse::<uuid::Uuid>().unwrap_or_default())
                .with_partition_data(
                    batches
                        .into_iter()
                        .map(|(p, b)| {
                            produce_request::PartitionProduceData::default()
                                .with_index(p)
                                .with_records(Some(b))
                        })
                        .collect(),
                )]);
        if acks == 0 {
            let address = cluster
                .brokers
                .get(&leader)
                .cloned()
                .ok_or_else(|| anyhow!("leader {leader} is not in the metadata"))?;
            let conn = cluster.conn(&address).await?;
            let v = conn.version::<ProduceRequest>()?.min(12);
            conn.send_at(&req, v).await?;
            conn.forget_last();
            continue;
        }
        let address = cluster
            .brokers
            .get(&leader)
            .cloned()
            .ok_or_else(|| anyhow!("leader {leader} is not in the metadata"))?;
        let conn = cluster.conn(&address).await?;
        // v13 names topics by id only; v12 and below by name.
        let v = conn.version::<ProduceRequest>()?.min(12);
        let resp = conn.call_at(&req, v).await?;
        for t in resp.responses {
            for p in t.partition_responses {
                if p.error_code != 0 {
                    let msg = p
                        .error_message
                        .as_ref()
                        .map(|m| format!(" ({m})"))
                        .unwrap_or_default();
                    bail!(
                        "produce to {}[{}] failed: {}{msg}",
                        topic.name,
                        p.index,
                        error_name(p.error_code)
                    );
                }
            }
        }
    }
    Ok(())
}

pub async fn produce(cluster: &mut Cluster, a: ProduceArgs) -> anyhow::Result<()> {
    let topic = cluster.topic(&a.topic).await.map_err(|e| {
        if e.to_string().contains("does not exist") {
            anyhow!(
                "topic '{}' does not exist; create it with `weir topics create {} --partitions 3`",
                a.topic,
                a.topic
            )
        } else {
            e
        }
    })?;
    let n = topic.partitions.len() as i32;
    if let Some(p) = a.partition {
        if p < 0 || p >= n {
            bail!(
                "topic '{}' has no partition {p}; it has partitions 0 to {}",
                a.topic,
                n - 1
            );
        }
    }
    let mut headers: IndexMap<StrBytes, Option<Bytes>> = IndexMap::new();
    for h in &a.headers {
        let (k, v) = parse_kv(h)?;
        headers.insert(StrBytes::from_string(k), Some(Bytes::from(v)));
    }
    let (input, size): (Box<dyn Read>, Option<u64>) = match &a.file {
        Some(f) => {
            let file =
                std::fs::File::open(f).with_context(|| format!("cannot open {}", f.display()))?;
            let size = file.metadata().ok().map(|m| m.len());
            (Box::new(file), size)
        }
        None => (Box::new(std::io::stdin()), None),
    };
    let bar = match size {
        Some(s) => ProgressBar::new(s).with_style(
            ProgressStyle::with_template("{bar:40} {bytes}/{total_bytes} {per_sec} eta {eta}")
                .expect("valid template"),
        ),
        None => ProgressBar::new_spinner().with_style(
            ProgressStyle::with_template("{spinner} {pos} records {per_sec}")
                .expect("valid template"),
        ),
    };
    if a.file.is_none() && !std::io::IsTerminal::is_terminal(&std::io::stderr()) {
        bar.set_draw_target(indicatif::ProgressDrawTarget::hidden());
    }
    let mut pending = Pending {
        records: BTreeMap::new(),
        count: 0,
    };
    let (mut total, mut rr, mut offset_in_batch) = (0u64, 0i32, BTreeMap::<i32, i64>::new());
    let started = Instant::now();
    let mut reader = BufReader::with_capacity(1 << 20, input);
    let mut line = Vec::new();
    loop {
        line.clear();
        let read = reader.read_until(b'\n', &mut line)?;
        if read == 0 {
            break;
        }
        if size.is_some() {
            bar.inc(read as u64);
        } else {
            bar.inc(1);
        }
        while matches!(line.last(), Some(b'\n' | b'\r')) {
            line.pop();
        }
        let (key, value) = match &a.key_separator {
            Some(sep) => match find(&line, sep.as_bytes()) {
                Some(i) => (
                    Some(Bytes::copy_from_slice(&line[..i])),
                    Bytes::copy_from_slice(&line[i + sep.len()..]),
                ),
                None => (None, Bytes::copy_from_slice(&line)),
            },
            None => (None, Bytes::copy_from_slice(&line)),
        };
        let p = match (a.partition, &key) {
            (Some(p), _) => p,
            (None, Some(k)) => partition_for_key(k, n),
            (None, None) => rr,
        };
        let o = offset_in_batch.entry(p).or_insert(0);
        pending.records.entry(p).or_default().push(Record {
            transactional: false,
            control: false,
            delete_horizon: false,
            partition_leader_epoch: -1,
            producer_id: -1,
            producer_epoch: -1,
            timestamp_type: TimestampType::Creation,
            offset: *o,
            // The encoder starts a new batch when offset minus sequence changes; one batch
            // per partition is what Kafka accepts.
            sequence: *o as i32 - 1,
            timestamp: now_ms(),
            key,
            value: Some(value),
            headers: headers.clone(),
        });
        *o += 1;
        pending.count += 1;
        total += 1;
        if pending.count >= a.batch_records.max(1) {
            send(cluster, &topic, &mut pending, a.acks, a.compression).await?;
            offset_in_batch.clear();
            rr = (rr + 1) % n;
        }
    }
    send(cluster, &topic, &mut pending, a.acks, a.compression).await?;
    bar.finish_and_clear();
    let secs = started.elapsed().as_secs_f64();
    eprintln!(
        "produced {total} record{} to topic '{}' in {secs:.1} s",
        if total == 1 { "" } else { "s" },
        a.topic
    );
    Ok(())
}

fn find(hay: &[u8], needle: &[u8]) -> Option<usize> {
    if needle.is_empty() {
        return None;
    }
    hay.windows(needle.len()).position(|w| w == needle)
}

// ---------------------------------------------------------------- consume

fn render(format: &str, topic: &str, r: &Record) -> String {
    let text = |b: &Option<Bytes>| {
        b.as_ref()
            .map(|b| String::from_utf8_lossy(b).into_owned())
            .unwrap_or_default()
    };
    let mut out = String::new();
    let mut chars = format.chars().peekable();
    while let Some(c) = chars.next() {
        match (c, chars.peek().copied()) {
            ('%', Some(x)) => {
                chars.next();
                match x {
                    't' => out.push_str(topic),
                    'p' => out.push_str(&r.partition_leader_epoch.to_string()),
                    'o' => out.push_str(&r.offset.to_string()),
                    'k' => out.push_str(&text(&r.key)),
                    'v' => out.push_str(&text(&r.value)),
                    'T' => out.push_str(&r.timestamp.to_string()),
                    'h' => out.push_str(
                        &r.headers
                            .iter()
                            .map(|(k, v)| format!("{k}={}", text(v)))
                            .collect::<Vec<_>>()
                            .join(","),
                    ),
                    '%' => out.push('%'),
                    other => {
                        out.push('%');
                        out.push(other);
                    }
                }
            }
            ('\\', Some('n')) => {
                chars.next();
                out.push('\n');
            }
            ('\\', Some('t')) => {
                chars.next();
                out.push('\t');
            }
            _ => out.push(c),
        }
    }
    out
}

fn as_json(topic: &str, partition: i32, r: &Record) -> String {
    let text = |b: &Option<Bytes>| b.as_ref().map(|b| String::from_utf8_lossy(b).into_owned());
    json!({
        "topic": topic, "partition": partition, "offset": r.offset, "timestamp": r.timestamp,
        "key": text(&r.key), "value": text(&r.value),
        "headers": r.headers.iter().map(|(k, v)| (k.to_string(), text(v))).collect::<BTreeMap<_, _>>(),
    })
    .to_string()
}

async fn commit(
    cluster: &mut Cluster,
    coordinator: i32,
    group: &str,
    member: &Member,
    topic: &str,
    positions: &BTreeMap<i32, i64>,
) -> anyhow::Result<()> {
    let req = OffsetCommitRequest::default()
        .with_group_id(GroupId(sb(group)))
        .with_generation_id_or_member_epoch(member.generation)
        .with_member_id(sb(&member.member_id))
        .with_topics(vec![
            offset_commit_request::OffsetCommitRequestTopic::default()
                .with_name(TopicName(sb(topic)))
                .with_partitions(
                    positions
                        .iter()
                        .map(|(p, o)| {
                            offset_commit_request::OffsetCommitRequestPartition::default()
                                .with_partition_index(*p)
                                .with_committed_offset(*o)
                                .with_committed_leader_epoch(-1)
                        })
                        .collect(),
                ),
        ]);
    // A rebalance can refuse a commit; the records then come again to whoever owns them next.
    let _ = cluster.call_on(coordinator, &req).await?;
    Ok(())
}

pub async fn consume(cluster: &mut Cluster, a: ConsumeArgs) -> anyhow::Result<()> {
    let topic = cluster.topic(&a.topic).await?;
    let all: Vec<i32> = topic.partitions.iter().map(|p| p.partition).collect();
    for p in &a.partitions {
        if !all.contains(p) {
            bail!(
                "topic '{}' has no partition {p}; it has partitions 0 to {}",
                a.topic,
                all.len() - 1
            );
        }
    }
    let start_time = match &a.timestamp {
        Some(t) => Some(crate::groups::parse_datetime(t)?),
        None => None,
    };
    let mut member = None;
    let mut coordinator = -1;
    let mut positions: BTreeMap<i32, i64>;
    let mut last_heartbeat = Instant::now();
    if let Some(g) = &a.group {
        coordinator = cluster.coordinator(g).await?;
        let mut m = Member::new(
            cluster.bootstrap(),
            g,
            &a.topic,
            all.len() as i32,
            10_000,
            30_000,
        )
        .await?;
        let parts = m.join().await?;
        positions = start_positions(
            cluster,
            &topic,
            &parts,
            Some(g),
            a.from_beginning,
            None,
            None,
        )
        .await?;
        member = Some(m);
    } else {
        let parts = if a.partitions.is_empty() {
            all.clone()
        } else {
            a.partitions.clone()
        };
        positions = start_positions(
            cluster,
            &topic,
            &parts,
            None,
            a.from_beginning,
            a.offset,
            start_time,
        )
        .await?;
    }
    let mut printed = 0u64;
    let stdout = std::io::stdout();
    let ctrl_c = tokio::signal::ctrl_c();
    tokio::pin!(ctrl_c);
    loop {
        if let Some(max) = a.max_messages {
            if printed >= max {
                break;
            }
        }
        let ps: Vec<(i32, i64)> = positions.iter().map(|(p, o)| (*p, *o)).collect();
        let fetched = if ps.is_empty() {
            tokio::time::sleep(Duration::from_millis(200)).await;
            Vec::new()
        } else {
            tokio::select! {
                r = cluster.fetch_many(&topic, &ps, 1 << 20, 500) => r?,
                _ = &mut ctrl_c => break,
            }
        };
        let mut at_end = !ps.is_empty();
        {
            let mut out = stdout.lock();
            'records: for f in &fetched {
                let p = &f.partition;
                for r in &f.records {
                    if let Some(max) = a.max_messages {
                        if printed >= max {
                            break 'records;
                        }
                    }
                    let line = if a.json {
                        as_json(&a.topic, *p, r)
                    } else {
                        let mut r2 = r.clone();
                        r2.partition_leader_epoch = *p; // %p prints the partition
                        render(&a.format, &a.topic, &r2)
                    };
                    if writeln!(out, "{line}").is_err() {
                        return Ok(()); // the reader went away (e.g. `| head`)
                    }
                    printed += 1;
                    positions.insert(*p, r.offset + 1);
                }
                // Every record of the answer is out: go on after its last batch (on a
                // compacted topic that can be past the last record).
                let position = positions.entry(*p).or_insert(f.next_offset);
                *position = (*position).max(f.next_offset);
                if *position < f.high_watermark {
                    at_end = false;
                }
            }
            out.flush().ok();
        }
        if let (Some(m), Some(g)) = (member.as_mut(), a.group.as_ref()) {
            if !fetched.iter().all(|f| f.records.is_empty()) {
                commit(cluster, coordinator, g, m, &a.topic, &positions).await?;
            }
            if last_heartbeat.elapsed() >= Duration::from_secs(1) {
                last_heartbeat = Instant::now();
                if m.heartbeat().await? {
                    commit(cluster, coordinator, g, m, &a.topic, &positions).await?;
                    let parts = m.join().await?;
                    positions = start_positions(
                        cluster,
                        &topic,
                        &parts,
                        Some(g),
                        a.from_beginning,
                        None,
                        None,
                    )
                    .await?;
                }
            }
        }
        if a.exit_at_end && at_end {
            break;
        }
    }
    if let (Some(mut m), Some(g)) = (member, a.group.as_ref()) {
        commit(cluster, coordinator, g, &m, &a.topic, &positions).await?;
        m.leave().await?;
    }
    eprintln!(
        "consumed {printed} record{}",
        if printed == 1 { "" } else { "s" }
    );
    Ok(())
}

/// Where to start reading each partition: an explicit offset or time, the group's committed
/// offset, or the earliest/latest offset.
async fn start_positions(
    cluster: &mut Cluster,
    topic: &TopicInfo,
    parts: &[i32],
    group: Option<&String>,
    from_beginning: bool,
    offset: Option<i64>,
    time: Option<i64>,
) -> anyhow::Result<BTreeMap<i32, i64>> {
    if parts.is_empty() {
        return Ok(BTreeMap::new());
    }
    let earliest = cluster.list_offsets(topic, parts, -2).await?;
    let latest = cluster.list_offsets(topic, parts, -1).await?;
    let committed = match group {
        Some(g) => crate::groups::read_group(cluster, g)
            .await
            .map(|g| g.committed)
            .unwrap_or_default(),
        None => BTreeMap::new(),
    };
    let at_time = match time {
        Some(t) => Some(cluster.list_offsets(topic, parts, t).await?),
        None => None,
    };
    let mut out = BTreeMap::new();
    for p in parts {
        let (lo, hi) = (earliest[p].0, latest[p].0);
        let start = if let Some(o) = offset {
            o.clamp(lo, hi)
        } else if let Some(m) = &at_time {
            match m.get(p).map(|x| x.0) {
                Some(o) if o >= 0 => o,
                _ => hi,
            }
        } else if let Some(c) = committed.get(&(topic.name.clone(), *p)) {
            (*c).clamp(lo, hi)
        } else if from_beginning {
            lo
        } else {
            hi
        };
        out.insert(*p, start);
    }
    Ok(out)
}
