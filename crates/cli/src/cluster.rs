//! The CLI's view of a Kafka-protocol cluster: one connection per broker, opened on demand,
//! with requests routed where Kafka wants them (partition leaders, group coordinators).

use std::collections::{BTreeMap, HashMap};
use std::time::Duration;

use anyhow::{anyhow, bail};
use bytes::Bytes;
use kafka_protocol::messages::*;
use kafka_protocol::protocol::Request;
use kafka_protocol::records::{Record, RecordBatchDecoder};
use kafka_protocol::ResponseError;
use weir_log::batch::whole_batches;

use crate::client::{ask_coordinator, sb, Connection};

/// Kafka's name for an error code, e.g. `UNKNOWN_TOPIC_OR_PARTITION`.
pub fn error_name(code: i16) -> String {
    match ResponseError::try_from_code(code) {
        None => "NONE".into(),
        Some(e) => {
            let debug = format!("{e:?}");
            let mut out = String::new();
            for (i, c) in debug.chars().enumerate() {
                if c.is_uppercase() && i > 0 {
                    out.push('_');
                }
                out.push(c.to_ascii_uppercase());
            }
            out
        }
    }
}

pub struct PartitionInfo {
    pub partition: i32,
    pub leader: i32,
    pub replicas: Vec<i32>,
    pub isr: Vec<i32>,
}

pub struct TopicInfo {
    pub name: String,
    pub id: String,
    pub internal: bool,
    pub error: i16,
    pub partitions: Vec<PartitionInfo>,
}

pub struct Cluster {
    bootstrap: String,
    conns: HashMap<String, Connection>,
    pub brokers: BTreeMap<i32, String>,
    pub controller: i32,
    pub cluster_id: String,
}

impl Cluster {
    pub async fn connect(bootstrap: &str) -> anyhow::Result<Cluster> {
        let conn = Connection::connect(bootstrap).await?;
        let mut c = Cluster {
            bootstrap: bootstrap.to_string(),
            conns: HashMap::new(),
            brokers: BTreeMap::new(),
            controller: -1,
            cluster_id: String::new(),
        };
        c.conns.insert(bootstrap.to_string(), conn);
        c.metadata(Some(&[])).await?;
        Ok(c)
    }

    pub fn bootstrap(&self) -> &str {
        &self.bootstrap
    }

    /// The connection to `address`, opened on first use.
    pub async fn conn(&mut self, address: &str) -> anyhow::Result<&mut Connection> {
        if !self.conns.contains_key(address) {
            let c = Connection::connect(address).await?;
            self.conns.insert(address.to_string(), c);
        }
        Ok(self.conns.get_mut(address).expect("inserted above"))
    }

    pub async fn call<R: Request>(&mut self, request: &R) -> anyhow::Result<R::Response> {
        let b = self.bootstrap.clone();
        Ok(self.conn(&b).await?.call(request).await?.0)
    }

    pub async fn call_on<R: Request>(
        &mut self,
        broker: i32,
        request: &R,
    ) -> anyhow::Result<R::Response> {
        let address = self
            .brokers
            .get(&broker)
            .cloned()
            .ok_or_else(|| anyhow!("broker {broker} is not in the cluster metadata"))?;
        Ok(self.conn(&address).await?.call(request).await?.0)
    }

    /// Metadata for `topics` (None: every topic). Refreshes the broker list.
    pub async fn metadata(&mut self, topics: Option<&[String]>) -> anyhow::Result<Vec<TopicInfo>> {
        let b = self.bootstrap.clone();
        let conn = self.conn(&b).await?;
        let v = conn.version::<MetadataRequest>()?;
        let req = MetadataRequest::default()
            .with_topics(topics.map(|ts| {
                ts.iter()
                    .map(|t| {
                        metadata_request::MetadataRequestTopic::default()
                            .with_name(Some(TopicName(sb(t))))
                    })
                    .collect()
            }))
            .with_allow_auto_topic_creation(false);
        let resp = conn.call_at(&req, v).await?;
        self.brokers = resp
            .brokers
            .iter()
            .map(|br| (br.node_id.0, format!("{}:{}", br.host, br.port)))
            .collect();
        self.controller = resp.controller_id.0;
        self.cluster_id = resp
            .cluster_id
            .as_ref()
            .map(|s| s.to_string())
            .unwrap_or_default();
        let mut out: Vec<TopicInfo> = resp
            .topics
            .iter()
            .map(|t| {
                let mut partitions: Vec<PartitionInfo> = t
                    .partitions
                    .iter()
                    .map(|p| PartitionInfo {
                        partition: p.partition_index,
                        leader: p.leader_id.0,
                        replicas: p.replica_nodes.iter().map(|r| r.0).collect(),
                        isr: p.isr_nodes.iter().map(|r| r.0).collect(),
                    })
                    .collect();
                partitions.sort_by_key(|p| p.partition);
                TopicInfo {
                    name: t.name.as_ref().map(|n| n.to_string()).unwrap_or_default(),
                    id: if t.topic_id.is_nil() {
                        String::new()
                    } else {
                        t.topic_id.to_string()
                    },
                    internal: t.is_internal,
                    error: t.error_code,
                    partitions,
                }
            })
            .collect();
        out.sort_by(|a, b| a.name.cmp(&b.name));
        Ok(out)
    }

    /// One topic's metadata, or the one-sentence error a user needs.
    pub async fn topic(&mut self, name: &str) -> anyhow::Result<TopicInfo> {
        let mut ts = self.metadata(Some(&[name.to_string()])).await?;
        let t = ts
            .pop()
            .ok_or_else(|| anyhow!("the broker returned no metadata for topic '{name}'"))?;
        if t.error == ResponseError::UnknownTopicOrPartition.code() {
            bail!("topic '{name}' does not exist; list topics with `weir topics list`");
        }
        if t.error != 0 {
            bail!("cannot read topic '{name}': {}", error_name(t.error));
        }
        Ok(t)
    }

    /// Offsets of `partitions` of `topic` at `timestamp` (-2 earliest, -1 latest, or a time in
    /// ms: the first offset whose timestamp is at or after it). Each answer is (offset,
    /// timestamp); offset -1 means no record at or after that time. Asks each leader; a
    /// partition without a leader yet (just created or added) is asked again, with fresh
    /// metadata, for up to 10 s, as Kafka's tools do.
    pub async fn list_offsets(
        &mut self,
        topic: &TopicInfo,
        partitions: &[i32],
        timestamp: i64,
    ) -> anyhow::Result<BTreeMap<i32, (i64, i64)>> {
        let retriable = [
            ResponseError::NotLeaderOrFollower,
            ResponseError::LeaderNotAvailable,
            ResponseError::UnknownTopicOrPartition,
            ResponseError::OffsetNotAvailable,
            ResponseError::ReplicaNotAvailable,
            ResponseError::UnknownLeaderEpoch,
        ]
        .map(|e| e.code());
        let deadline = tokio::time::Instant::now() + Duration::from_secs(10);
        let mut leaders: BTreeMap<i32, i32> = topic
            .partitions
            .iter()
            .map(|p| (p.partition, p.leader))
            .collect();
        let mut pending = partitions.to_vec();
        let mut out = BTreeMap::new();
        loop {
            let mut by_leader: BTreeMap<i32, Vec<i32>> = BTreeMap::new();
            for p in &pending {
                let leader = *leaders
                    .get(p)
                    .ok_or_else(|| anyhow!("topic '{}' has no partition {p}", topic.name))?;
                by_leader.entry(leader).or_default().push(*p);
            }
            let mut again: Vec<(i32, i16)> = Vec::new();
            for (leader, ps) in by_leader {
                if leader < 0 {
                    again.extend(
                        ps.iter()
                            .map(|p| (*p, ResponseError::LeaderNotAvailable.code())),
                    );
                    continue;
                }
                let req = ListOffsetsRequest::default()
                    .with_replica_id(BrokerId(-1))
                    .with_topics(vec![list_offsets_request::ListOffsetsTopic::default()
                        .with_name(TopicName(sb(&topic.name)))
                        .with_partitions(
                            ps.iter()
                                .map(|p| {
                                    list_offsets_request::ListOffsetsPartition::default()
                                        .with_partition_index(*p)
                                        .with_timestamp(timestamp)
                                })
                                .collect(),
                        )]);
                let resp = self.call_on(leader, &req).await?;
                for t in resp.topics {
                    for p in t.partitions {
                        if p.error_code == 0 {
                            out.insert(p.partition_index, (p.offset, p.timestamp));
                        } else if retriable.contains(&p.error_code) {
                            again.push((p.partition_index, p.error_code));
                        } else {
                            bail!(
                                "cannot list offsets of {}[{}]: {}",
                                topic.name,
                                p.partition_index,
                                error_name(p.error_code)
                            );
                        }
                    }
                }
            }
            let Some(&(partition, code)) = again.first() else {
                return Ok(out);
            };
            if tokio::time::Instant::now() >= deadline {
                bail!(
                    "cannot list offsets of {}[{partition}]: {} for 10 s; is the broker healthy?",
                    topic.name,
                    error_name(code)
                );
            }
            tokio::time::sleep(Duration::from_millis(200)).await;
            let fresh = self.topic(&topic.name).await?;
            leaders = fresh
                .partitions
                .iter()
                .map(|p| (p.partition, p.leader))
                .collect();
            pending = again.into_iter().map(|(p, _)| p).collect();
        }
    }

    /// The group coordinator's broker id, waiting while the coordinator is loading.
    pub async fn coordinator(&mut self, group: &str) -> anyhow::Result<i32> {
        self.coordinator_of(crate::client::KEY_TYPE_GROUP, group)
            .await
    }

    /// The broker id coordinating `key` (a group, or a transactional id), waiting while the
    /// coordinator is loading.
    pub async fn coordinator_of(&mut self, key_type: i8, key: &str) -> anyhow::Result<i32> {
        let what = if key_type == crate::client::KEY_TYPE_GROUP {
            "group"
        } else {
            "transactional id"
        };
        let group = key;
        let b = self.bootstrap.clone();
        for _ in 0..100 {
            let (code, node, host, port) =
                ask_coordinator(self.conn(&b).await?, key_type, key).await?;
            if code == 0 {
                self.brokers
                    .entry(node)
                    .or_insert_with(|| format!("{host}:{port}"));
                return Ok(node);
            }
            let retriable = [
                ResponseError::CoordinatorNotAvailable.code(),
                ResponseError::CoordinatorLoadInProgress.code(),
                ResponseError::NotCoordinator.code(),
            ];
            if !retriable.contains(&code) {
                bail!(
                    "cannot find the coordinator of {what} '{group}': {}",
                    error_name(code)
                );
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        bail!("no coordinator for {what} '{group}' after 10 s; is the broker healthy?")
    }

    /// Records of one partition from `offset`, at most about `max_bytes`, waiting up to
    /// `wait_ms` for data. Returns the records and the high watermark.
    pub async fn fetch(
        &mut self,
        topic: &TopicInfo,
        partition: i32,
        offset: i64,
        max_bytes: i32,
        wait_ms: i32,
    ) -> anyhow::Result<(Vec<Record>, i64)> {
        let mut r = self
            .fetch_many(topic, &[(partition, offset)], max_bytes, wait_ms)
            .await?;
        let f = r
            .pop()
            .ok_or_else(|| anyhow!("empty fetch response for {}[{partition}]", topic.name))?;
        Ok((f.records, f.high_watermark))
    }

    /// Records of several partitions of one topic, each from its offset, in one Fetch per
    /// leader.
    pub async fn fetch_many(
        &mut self,
        topic: &TopicInfo,
        positions: &[(i32, i64)],
        max_bytes: i32,
        wait_ms: i32,
    ) -> anyhow::Result<Vec<Fetched>> {
        let mut by_leader: BTreeMap<i32, Vec<(i32, i64)>> = BTreeMap::new();
        for (p, o) in positions {
            let leader = topic
                .partitions
                .iter()
                .find(|x| x.partition == *p)
                .map(|x| x.leader)
                .ok_or_else(|| anyhow!("topic '{}' has no partition {p}", topic.name))?;
            by_leader.entry(leader).or_default().push((*p, *o));
        }
        let id = topic.id.parse::<uuid::Uuid>().unwrap_or_default();
        let mut out = Vec::new();
        for (leader, ps) in by_leader {
            let address = self.brokers.get(&leader).cloned().ok_or_else(|| {
                anyhow!(
                    "leader {leader} of topic '{}' is not in the metadata",
                    topic.name
                )
            })?;
            let conn = self.conn(&address).await?;
            let v = conn.version::<FetchRequest>()?;
            let req = FetchRequest::default()
                .with_replica_id(BrokerId(-1))
                .with_max_wait_ms(wait_ms)
                .with_min_bytes(1)
                .with_max_bytes(max_bytes.saturating_mul(ps.len() as i32).max(1 << 20))
                .with_session_epoch(-1)
                .with_topics(vec![fetch_request::FetchTopic::default()
                    .with_topic(TopicName(sb(&topic.name)))
                    .with_topic_id(id)
                    .with_partitions(
                        ps.iter()
                            .map(|(p, o)| {
                                fetch_request::FetchPartition::default()
                                    .with_partition(*p)
                                    .with_fetch_offset(*o)
                                    .with_partition_max_bytes(max_bytes)
                                    .with_current_leader_epoch(-1)
                            })
                            .collect(),
                    )]);
            let resp = conn.call_at(&req, v).await?;
            if resp.error_code != 0 {
                bail!(
                    "fetch from topic '{}' failed: {}",
                    topic.name,
                    error_name(resp.error_code)
                );
            }
            for p in resp.responses.into_iter().flat_map(|t| t.partitions) {
                let from = ps
                    .iter()
                    .find(|x| x.0 == p.partition_index)
                    .map(|x| x.1)
                    .unwrap_or(0);
                if p.error_code != 0 {
                    bail!(
                        "fetch from {}[{}] at offset {from} failed: {}",
                        topic.name,
                        p.partition_index,
                        error_name(p.error_code)
                    );
                }
                let (records, after) = decode_records(p.records.unwrap_or_default())?;
                out.push(Fetched {
                    partition: p.partition_index,
                    records: records
                        .into_iter()
                        .filter(|r| r.offset >= from && !r.control)
                        .collect(),
                    high_watermark: p.high_watermark,
                    next_offset: after.map_or(from, |a| a.max(from)),
                });
            }
        }
        Ok(out)
    }
}

/// One partition's part of a Fetch answer.
pub struct Fetched {
    pub partition: i32,
    /// Records at or after the offset asked for, control records left out.
    pub records: Vec<Record>,
    pub high_watermark: i64,
    /// Where the next read starts: after the last whole batch, which on a compacted topic
    /// can be past the batch's last record.
    pub next_offset: i64,
}

/// Decodes the complete batches of a fetched record set (a fetch may end in a partial one),
/// with the offset after the last of them.
pub fn decode_records(bytes: Bytes) -> anyhow::Result<(Vec<Record>, Option<i64>)> {
    let mut out = Vec::new();
    let mut after = None;
    for batch in whole_batches(bytes) {
        let (header, mut batch) =
            batch.map_err(|e| anyhow!("cannot decode a record batch: {e}"))?;
        let set = RecordBatchDecoder::decode(&mut batch)
            .map_err(|e| anyhow!("cannot decode a record batch: {e}"))?;
        out.extend(set.records);
        after = Some(header.last_offset() + 1);
    }
    Ok((out, after))
}
