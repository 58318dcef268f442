//! `weir transactions`: list and describe transactions, see which producers hold open
//! transactions on a partition, and abort a hanging one (KIP-664), over the Kafka protocol,
//! against weir or Apache Kafka.

use anyhow::{anyhow, bail};
use clap::Subcommand;
use kafka_protocol::messages::describe_producers_request::TopicRequest;
use kafka_protocol::messages::write_txn_markers_request::{
    WritableTxnMarker, WritableTxnMarkerTopic,
};
use kafka_protocol::messages::*;
use serde_json::json;

use crate::client::{sb, KEY_TYPE_TRANSACTION};
use crate::cluster::{error_name, Cluster};
use crate::output::{self, emit, Format};

#[derive(Subcommand)]
pub enum TransactionsCommand {
    /// List transactional ids with their producer id and state.
    ///
    /// Examples:
    ///   weir transactions list
    ///   weir transactions list --state Ongoing --older-than-ms 60000
    List {
        /// Only these states (Ongoing, PrepareCommit, CompleteCommit, ...); repeat for more.
        #[arg(long = "state")]
        states: Vec<String>,
        /// Only transactions open for longer than this.
        #[arg(long, value_name = "MS")]
        older_than_ms: Option<i64>,
    },
    /// Show one transactional id: state, producer id and epoch, timeout, and the partitions
    /// of its open transaction.
    ///
    /// Example:
    ///   weir transactions describe orders-app-tx
    Describe { transactional_id: String },
    /// Show the producers a partition knows, with the first offset of each one's open
    /// transaction.
    ///
    /// Example:
    ///   weir transactions describe-producers --topic orders --partition 0
    DescribeProducers {
        #[arg(long)]
        topic: String,
        #[arg(long)]
        partition: i32,
    },
    /// Abort a hanging transaction: the open transaction that starts at --start-offset of a
    /// partition gets an abort marker, so read_committed readers move past it. Only for a
    /// transaction its coordinator has lost track of (a live one would be aborted too).
    ///
    /// Example:
    ///   weir transactions abort --topic orders --partition 0 --start-offset 1200
    Abort {
        #[arg(long)]
        topic: String,
        #[arg(long)]
        partition: i32,
        #[arg(long)]
        start_offset: i64,
    },
}

/// How long ago a broker timestamp (ms since the epoch) was.
fn since(timestamp_ms: i64) -> String {
    let now_ms = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_millis() as i64)
        .unwrap_or(0);
    output::age(now_ms - timestamp_ms)
}

pub async fn run(
    cluster: &mut Cluster,
    format: Format,
    command: TransactionsCommand,
) -> anyhow::Result<()> {
    match command {
        TransactionsCommand::List {
            states,
            older_than_ms,
        } => list(cluster, format, states, older_than_ms).await,
        TransactionsCommand::Describe { transactional_id } => {
            describe(cluster, format, &transactional_id).await
        }
        TransactionsCommand::DescribeProducers { topic, partition } => {
            let producers = producers(cluster, &topic, partition).await?;
            let rows: Vec<_> = producers
                .iter()
                .map(|p| {
                    json!({"producer_id": p.producer_id.0, "producer_epoch": p.producer_epoch, "last_sequence": p.last_sequence,
                       "last_timestamp_ms": p.last_timestamp, "coordinator_epoch": p.coordinator_epoch,
                       "open_transaction_start_offset": (p.current_txn_start_offset >= 0).then_some(p.current_txn_start_offset)})
                })
                .collect();
            emit(format, &json!(rows), || {
                let mut t = output::table(&[
                    "PRODUCER ID",
                    "EPOCH",
                    "LAST SEQUENCE",
                    "LAST WRITE",
                    "OPEN TRANSACTION FROM",
                ]);
                for p in &producers {
                    let open = if p.current_txn_start_offset >= 0 {
                        p.current_txn_start_offset.to_string()
                    } else {
                        "-".into()
                    };
                    t.add_row(vec![
                        p.producer_id.0.to_string(),
                        p.producer_epoch.to_string(),
                        p.last_sequence.to_string(),
                        format!("{} ago", since(p.last_timestamp)),
                        open,
                    ]);
                }
                println!("{t}");
            })
        }
        TransactionsCommand::Abort {
            topic,
            partition,
            start_offset,
        } => abort(cluster, &topic, partition, start_offset).await,
    }
}

async fn list(
    cluster: &mut Cluster,
    format: Format,
    states: Vec<String>,
    older_than_ms: Option<i64>,
) -> anyhow::Result<()> {
    cluster.metadata(Some(&[])).await?;
    let brokers: Vec<i32> = cluster.brokers.keys().copied().collect();
    let mut found = Vec::new();
    // Every broker coordinates some transactional ids; ask each.
    for b in brokers {
        let req = ListTransactionsRequest::default()
            .with_state_filters(states.iter().map(|s| sb(s)).collect())
            .with_duration_filter(older_than_ms.unwrap_or(-1));
        let r = cluster.call_on(b, &req).await?;
        if r.error_code != 0 {
            bail!(
                "broker {b} could not list transactions: {}",
                error_name(r.error_code)
            );
        }
        if let Some(unknown) = r.unknown_state_filters.first() {
            bail!("'{unknown}' is not a transaction state; use Empty, Ongoing, PrepareCommit, PrepareAbort, CompleteCommit or CompleteAbort");
        }
        found.extend(r.transaction_states.into_iter().map(|t| {
            (
                t.transactional_id.0.to_string(),
                t.producer_id.0,
                t.transaction_state.to_string(),
                b,
            )
        }));
    }
    found.sort();
    let rows: Vec<_> = found.iter().map(|(id, pid, state, b)| json!({"transactional_id": id, "producer_id": pid, "state": state, "coordinator": b})).collect();
    emit(format, &json!(rows), || {
        let mut t = output::table(&["TRANSACTIONAL ID", "PRODUCER ID", "STATE", "COORDINATOR"]);
        for (id, pid, state, b) in &found {
            t.add_row(vec![
                id.clone(),
                pid.to_string(),
                state.clone(),
                b.to_string(),
            ]);
        }
        println!("{t}");
    })
}

async fn describe(
    cluster: &mut Cluster,
    format: Format,
    transactional_id: &str,
) -> anyhow::Result<()> {
    let coordinator = cluster
        .coordinator_of(KEY_TYPE_TRANSACTION, transactional_id)
        .await?;
    let req = DescribeTransactionsRequest::default()
        .with_transactional_ids(vec![TransactionalId(sb(transactional_id))]);
    let r = cluster.call_on(coordinator, &req).await?;
    let s = r
        .transaction_states
        .into_iter()
        .next()
        .ok_or_else(|| anyhow!("the coordinator answered nothing for '{transactional_id}'"))?;
    if s.error_code != 0 {
        bail!(
            "cannot describe transactional id '{transactional_id}': {}",
            error_name(s.error_code)
        );
    }
    let partitions: Vec<String> = s
        .topics
        .iter()
        .flat_map(|t| {
            t.partitions
                .iter()
                .map(move |p| format!("{}-{p}", t.topic.0))
        })
        .collect();
    let value = json!({
        "transactional_id": transactional_id, "coordinator": coordinator, "state": s.transaction_state.to_string(),
        "producer_id": s.producer_id.0, "producer_epoch": s.producer_epoch, "timeout_ms": s.transaction_timeout_ms,
        "start_time_ms": (s.transaction_start_time_ms >= 0).then_some(s.transaction_start_time_ms), "partitions": partitions,
    });
    emit(format, &value, || {
        let mut t = output::table(&["FIELD", "VALUE"]);
        t.add_row(vec![
            "transactional id".to_string(),
            transactional_id.to_string(),
        ]);
        t.add_row(vec!["coordinator".to_string(), coordinator.to_string()]);
        t.add_row(vec!["state".to_string(), s.transaction_state.to_string()]);
        t.add_row(vec![
            "producer id / epoch".to_string(),
            format!("{} / {}", s.producer_id.0, s.producer_epoch),
        ]);
        t.add_row(vec![
            "timeout".to_string(),
            format!("{} ms", s.transaction_timeout_ms),
        ]);
        let started = if s.transaction_start_time_ms >= 0 {
            format!("{} ago", since(s.transaction_start_time_ms))
        } else {
            "-".into()
        };
        t.add_row(vec!["started".to_string(), started]);
        t.add_row(vec![
            "partitions".to_string(),
            if partitions.is_empty() {
                "-".into()
            } else {
                partitions.join(", ")
            },
        ]);
        println!("{t}");
    })
}

async fn producers(
    cluster: &mut Cluster,
    topic: &str,
    partition: i32,
) -> anyhow::Result<Vec<describe_producers_response::ProducerState>> {
    let info = cluster.topic(topic).await?;
    let leader = info
        .partitions
        .iter()
        .find(|p| p.partition == partition)
        .map(|p| p.leader)
        .ok_or_else(|| {
            anyhow!(
                "topic '{topic}' has no partition {partition}; it has {}",
                info.partitions.len()
            )
        })?;
    let req = DescribeProducersRequest::default().with_topics(vec![TopicRequest::default()
        .with_name(TopicName(sb(topic)))
        .with_partition_indexes(vec![partition])]);
    let r = cluster.call_on(leader, &req).await?;
    let p = r
        .topics
        .into_iter()
        .flat_map(|t| t.partitions)
        .next()
        .ok_or_else(|| anyhow!("the leader answered nothing for {topic}-{partition}"))?;
    if p.error_code != 0 {
        bail!(
            "cannot describe the producers of {topic}-{partition}: {}",
            error_name(p.error_code)
        );
    }
    Ok(p.active_producers)
}

async fn abort(
    cluster: &mut Cluster,
    topic: &str,
    partition: i32,
    start_offset: i64,
) -> anyhow::Result<()> {
    // 1. The producer whose open transaction starts there.
    let producers = producers(cluster, topic, partition).await?;
    let Some(p) = producers
        .iter()
        .find(|p| p.current_txn_start_offset == start_offset)
    else {
        let open: Vec<String> = producers
            .iter()
            .filter(|p| p.current_txn_start_offset >= 0)
            .map(|p| p.current_txn_start_offset.to_string())
            .collect();
        bail!(
            "no open transaction of {topic}-{partition} starts at offset {start_offset}; open ones start at: {}",
            if open.is_empty() { "none".to_string() } else { open.join(", ") }
        );
    };
    let epoch = i16::try_from(p.producer_epoch)
        .map_err(|_| anyhow!("producer epoch {} is out of range", p.producer_epoch))?;
    // 2. An abort marker, written by the partition's leader.
    let info = cluster.topic(topic).await?;
    let leader = info
        .partitions
        .iter()
        .find(|x| x.partition == partition)
        .map(|x| x.leader)
        .unwrap_or(-1);
    let marker = WritableTxnMarker::default()
        .with_producer_id(p.producer_id)
        .with_producer_epoch(epoch)
        .with_transaction_result(false)
        .with_coordinator_epoch(p.coordinator_epoch.max(0))
        .with_topics(vec![WritableTxnMarkerTopic::default()
            .with_name(TopicName(sb(topic)))
            .with_partition_indexes(vec![partition])]);
    let r = cluster
        .call_on(
            leader,
            &WriteTxnMarkersRequest::default().with_markers(vec![marker]),
        )
        .await?;
    let code = r
        .markers
        .iter()
        .flat_map(|m| m.topics.iter())
        .flat_map(|t| t.partitions.iter())
        .map(|x| x.error_code)
        .find(|c| *c != 0)
        .unwrap_or(0);
    if code != 0 {
        bail!(
            "the abort marker for {topic}-{partition} was refused: {}",
            error_name(code)
        );
    }
    println!("aborted the transaction of producer {} (epoch {epoch}) that started at {topic}-{partition} offset {start_offset}", p.producer_id.0);
    Ok(())
}
