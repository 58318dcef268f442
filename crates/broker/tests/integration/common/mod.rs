//! A broker on 127.0.0.1:0 in a temp dir, and a minimal raw Kafka client for tests.
#![allow(dead_code)]

use std::net::SocketAddr;
use std::path::PathBuf;

use bytes::{Buf, BufMut, Bytes, BytesMut};
use kafka_protocol::messages::*;
use kafka_protocol::protocol::{Decodable, Encodable, HeaderVersion, Message, StrBytes};
use kafka_protocol::records::*;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;
use tokio::sync::oneshot;
use weir_broker::{Broker, BrokerConfig};
use weir_log::batch::{encode_batch, NewRecord};

pub struct TestBroker {
    pub addr: SocketAddr,
    /// The running broker's state, for tests that serve more than Kafka (HTTP) from it.
    pub state: std::sync::Arc<weir_broker::state::BrokerState>,
    pub dir: tempfile::TempDir,
    stop: Option<oneshot::Sender<()>>,
    task: Option<tokio::task::JoinHandle<()>>,
}

impl TestBroker {
    pub async fn start(tweak: impl FnOnce(&mut BrokerConfig)) -> TestBroker {
        let dir = tempfile::tempdir().unwrap();
        Self::start_in(dir, tweak).await
    }

    pub async fn start_in(
        dir: tempfile::TempDir,
        tweak: impl FnOnce(&mut BrokerConfig),
    ) -> TestBroker {
        let mut config =
            BrokerConfig::new("127.0.0.1:0".parse().unwrap(), PathBuf::from(dir.path()));
        tweak(&mut config);
        let broker = Broker::bind(config).await.unwrap();
        let addr = broker.local_addr();
        let state = broker.state();
        let (tx, rx) = oneshot::channel();
        let task = tokio::spawn(async move {
            broker
                .run(async {
                    let _ = rx.await;
                })
                .await
                .unwrap();
        });
        TestBroker {
            addr,
            state,
            dir,
            stop: Some(tx),
            task: Some(task),
        }
    }

    /// Stops the broker cleanly and hands back its data directory.
    pub async fn stop(mut self) -> tempfile::TempDir {
        let _ = self.stop.take().unwrap().send(());
        self.task.take().unwrap().await.unwrap();
        let dir = tempfile::tempdir().unwrap();
        std::mem::replace(&mut self.dir, dir)
    }

    pub async fn client(&self) -> Client {
        Client {
            stream: TcpStream::connect(self.addr).await.unwrap(),
            correlation_id: 0,
        }
    }
}

pub struct Client {
    pub stream: TcpStream,
    correlation_id: i32,
}

impl Client {
    pub async fn send_raw(&mut self, frame: &[u8]) {
        self.stream.write_all(frame).await.unwrap();
    }

    /// Reads one response frame; None when the broker closed the connection.
    pub async fn read_frame(&mut self) -> Option<Bytes> {
        let size = self.stream.read_i32().await.ok()?;
        let mut buf = vec![0u8; size as usize];
        self.stream.read_exact(&mut buf).await.ok()?;
        Some(Bytes::from(buf))
    }

    pub fn encode<T: Encodable + Message>(
        &mut self,
        key: ApiKey,
        version: i16,
        body: &T,
    ) -> (i32, Vec<u8>) {
        self.correlation_id += 1;
        let header = RequestHeader::default()
            .with_request_api_key(key as i16)
            .with_request_api_version(version)
            .with_correlation_id(self.correlation_id)
            .with_client_id(Some(StrBytes::from_static_str("weir-test")));
        let mut buf = BytesMut::new();
        header
            .encode(&mut buf, key.request_header_version(version))
            .unwrap();
        body.encode(&mut buf, version).unwrap();
        let mut frame = Vec::with_capacity(buf.len() + 4);
        frame.put_i32(buf.len() as i32);
        frame.extend_from_slice(&buf);
        (self.correlation_id, frame)
    }

    /// Sends a request and decodes its response at the same version.
    pub async fn call<Req, Resp>(&mut self, key: ApiKey, version: i16, body: &Req) -> Resp
    where
        Req: Encodable + Message,
        Resp: Decodable + HeaderVersion,
    {
        let (cid, frame) = self.encode(key, version, body);
        self.send_raw(&frame).await;
        let mut resp = self.read_frame().await.expect("broker answered");
        let header = ResponseHeader::decode(&mut resp, Resp::header_version(version)).unwrap();
        assert_eq!(header.correlation_id, cid);
        let out = Resp::decode(&mut resp, version).unwrap();
        assert!(!resp.has_remaining(), "response has trailing bytes");
        out
    }

    /// True when the broker has closed the connection (read returns end of stream).
    pub async fn is_closed(&mut self) -> bool {
        let mut b = [0u8; 1];
        matches!(
            tokio::time::timeout(std::time::Duration::from_secs(5), self.stream.read(&mut b)).await,
            Ok(Ok(0)) | Ok(Err(_))
        )
    }

    pub async fn create_topic(
        &mut self,
        name: &str,
        partitions: i32,
        configs: &[(&str, &str)],
    ) -> i16 {
        let topic = create_topics_request::CreatableTopic::default()
            .with_name(TopicName(StrBytes::from_string(name.into())))
            .with_num_partitions(partitions)
            .with_replication_factor(1)
            .with_configs(
                configs
                    .iter()
                    .map(|(k, v)| {
                        create_topics_request::CreatableTopicConfig::default()
                            .with_name(StrBytes::from_string(k.to_string()))
                            .with_value(Some(StrBytes::from_string(v.to_string())))
                    })
                    .collect(),
            );
        let resp: CreateTopicsResponse = self
            .call(
                ApiKey::CreateTopics,
                7,
                &CreateTopicsRequest::default()
                    .with_topics(vec![topic])
                    .with_timeout_ms(5000),
            )
            .await;
        resp.topics[0].error_code
    }

    pub async fn produce(
        &mut self,
        topic: &str,
        partition: i32,
        acks: i16,
        records: Bytes,
    ) -> produce_response::PartitionProduceResponse {
        let req = ProduceRequest::default()
            .with_acks(acks)
            .with_timeout_ms(5000)
            .with_topic_data(vec![produce_request::TopicProduceData::default()
                .with_name(TopicName(StrBytes::from_string(topic.into())))
                .with_partition_data(vec![
                    produce_request::PartitionProduceData::default()
                        .with_index(partition)
                        .with_records(Some(records)),
                ])]);
        let resp: ProduceResponse = self.call(ApiKey::Produce, 9, &req).await;
        resp.responses[0].partition_responses[0].clone()
    }

    pub async fn fetch(
        &mut self,
        topic: &str,
        partition: i32,
        offset: i64,
        max_wait_ms: i32,
    ) -> fetch_response::PartitionData {
        let req = FetchRequest::default()
            .with_replica_id(BrokerId(-1))
            .with_max_wait_ms(max_wait_ms)
            .with_min_bytes(1)
            .with_max_bytes(1 << 20)
            .with_session_epoch(-1)
            .with_topics(vec![fetch_request::FetchTopic::default()
                .with_topic(TopicName(StrBytes::from_string(topic.into())))
                .with_partitions(vec![fetch_request::FetchPartition::default()
                    .with_partition(partition)
                    .with_fetch_offset(offset)
                    .with_partition_max_bytes(1 << 20)])]);
        let resp: FetchResponse = self.call(ApiKey::Fetch, 12, &req).await;
        resp.responses[0].partitions[0].clone()
    }
}

/// A real v2 batch of `values`, optionally idempotent (producer id, epoch, first sequence).
pub fn batch(
    values: &[&str],
    producer: Option<(i64, i16, i32)>,
    compression: Compression,
    ts: i64,
) -> Bytes {
    let records: Vec<NewRecord> = values
        .iter()
        .enumerate()
        .map(|(i, v)| NewRecord {
            key: Some(Bytes::from(format!("key-{i}"))),
            value: Some(Bytes::from(v.to_string())),
            timestamp_ms: ts + i as i64,
        })
        .collect();
    encode_batch(&records, producer, compression)
        .unwrap()
        .freeze()
}

pub fn values_of(records: Option<Bytes>) -> Vec<(i64, String)> {
    let mut bytes = records.unwrap_or_default();
    let mut out = Vec::new();
    for set in RecordBatchDecoder::decode_all(&mut bytes).unwrap() {
        for r in set.records {
            out.push((
                r.offset,
                String::from_utf8(r.value.unwrap().to_vec()).unwrap(),
            ));
        }
    }
    out
}
