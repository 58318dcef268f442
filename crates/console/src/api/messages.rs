//! Messages: reading a partition's records from an offset or a time, and producing one
//! record.
//!
//! Reads decode stored batches with the log's own reader (`PartitionLog::read_records`),
//! bounded by [`MESSAGES_READ_MAX`] records and [`MESSAGES_READ_BYTES_MAX`] bytes. A key,
//! value or header value is shown as UTF-8 text when it is valid UTF-8, else as base64, and
//! a field next to it says which.
//!
//! A produce is one record in one batch, appended through the same function as a Kafka
//! Produce (acks=all), so it is checked, stored and made durable alike.

use std::collections::HashMap;
use std::sync::atomic::{AtomicU32, Ordering};

use axum::Json;
use base64::Engine;
use bytes::Bytes;
use kafka_protocol::indexmap::IndexMap;
use kafka_protocol::messages::list_offsets_request::{ListOffsetsPartition, ListOffsetsTopic};
use kafka_protocol::messages::produce_request::{PartitionProduceData, TopicProduceData};
use kafka_protocol::messages::{ListOffsetsRequest, ProduceRequest, TopicName};
use kafka_protocol::protocol::StrBytes;
use kafka_protocol::records::{
    Compression, Record, RecordBatchEncoder, RecordEncodeOptions, TimestampType,
};
use serde::{Deserialize, Serialize};
use utoipa::{IntoParams, ToSchema};

use weir_meta::acls::Operation;

use super::extract::{JsonBody, PathParams, QueryParams};
use super::topics::{partition_or_404, topic_or_404};
use super::{blocking, ApiContext};
use crate::errors::{ErrorBody, HttpError};

/// The most records one read returns.
pub const MESSAGES_READ_MAX: usize = 1_000;
/// The most bytes of keys, values and headers one read returns (the first record is
/// returned whatever its size).
pub const MESSAGES_READ_BYTES_MAX: usize = 4 << 20;
/// Records a read returns when the query does not say.
const MESSAGES_READ_DEFAULT: usize = 100;
/// Bytes a read returns at most when the query does not say.
const MESSAGES_READ_BYTES_DEFAULT: usize = 1 << 20;
/// The Produce version the API appends at: the newest that names topics by name.
const PRODUCE_VERSION: i16 = 12;
/// The ListOffsets version used to find the offset at a time.
const LIST_OFFSETS_VERSION: i16 = 8;
/// Headers one produced record may carry.
pub const HEADERS_PER_MESSAGE_MAX: usize = 64;

/// Keyless records go to the partitions in turn.
static NEXT_KEYLESS_PARTITION: AtomicU32 = AtomicU32::new(0);

/// How a key, value or header value is written.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum Encoding {
    /// UTF-8 text, as is.
    #[default]
    Text,
    /// Standard base64 with padding.
    Base64,
}

#[derive(Debug, Deserialize, IntoParams)]
#[serde(deny_unknown_fields)]
#[into_params(parameter_in = Query)]
pub struct ReadQuery {
    /// The first offset to read; the log start offset when neither this nor `timestamp_ms`
    /// is given.
    pub offset: Option<i64>,
    /// Read from the first record at or after this time (milliseconds since the epoch).
    pub timestamp_ms: Option<i64>,
    /// At most this many records (default 100, at most 1000).
    pub max_records: Option<usize>,
    /// Stop once keys, values and headers add up to this many bytes (default 1 MiB, at
    /// most 4 MiB).
    pub max_bytes: Option<usize>,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct Messages {
    pub topic: String,
    pub partition: i32,
    pub log_start_offset: i64,
    pub high_watermark: i64,
    /// Where the next read should start.
    pub next_offset: i64,
    pub records: Vec<Message>,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct Message {
    pub offset: i64,
    pub timestamp_ms: i64,
    /// `create_time` (the producer's) or `log_append_time` (the broker's).
    pub timestamp_type: String,
    pub key: Option<String>,
    /// How `key` is written; null when the key is null.
    pub key_encoding: Option<Encoding>,
    pub value: Option<String>,
    /// How `value` is written; null when the value is null.
    pub value_encoding: Option<Encoding>,
    pub headers: Vec<Header>,
    /// Written in a transaction (shown whether or not it committed).
    pub transactional: bool,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct Header {
    /// The header's key, as UTF-8 (invalid bytes replaced).
    pub key: String,
    pub value: Option<String>,
    pub value_encoding: Option<Encoding>,
}

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct ProduceMessage {
    /// The partition; when left out, a keyed record goes where Kafka's clients put that key
    /// (murmur2), a keyless one to the partitions in turn.
    pub partition: Option<i32>,
    pub key: Option<String>,
    pub value: Option<String>,
    #[serde(default)]
    pub headers: Vec<ProduceHeader>,
    /// How `key`, `value` and header values are written in this body (default `text`).
    #[serde(default)]
    pub encoding: Encoding,
    /// The record's timestamp; now when left out.
    pub timestamp_ms: Option<i64>,
}

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct ProduceHeader {
    pub key: String,
    pub value: Option<String>,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct Produced {
    pub topic: String,
    pub partition: i32,
    pub offset: i64,
    pub timestamp_ms: i64,
}

/// Bytes as text when they are UTF-8, else base64.
fn shown(bytes: Option<&Bytes>) -> (Option<String>, Option<Encoding>) {
    match bytes {
        None => (None, None),
        Some(b) => match std::str::from_utf8(b) {
            Ok(s) => (Some(s.to_string()), Some(Encoding::Text)),
            Err(_) => (
                Some(base64::engine::general_purpose::STANDARD.encode(b)),
                Some(Encoding::Base64),
            ),
        },
    }
}

/// A field of a produce body as bytes.
fn bytes_of(
    field: &str,
    text: Option<String>,
    encoding: Encoding,
) -> Result<Option<Bytes>, HttpError> {
    let Some(text) = text else { return Ok(None) };
    match encoding {
        Encoding::Text => Ok(Some(Bytes::from(text))),
        Encoding::Base64 => base64::engine::general_purpose::STANDARD
            .decode(text.as_bytes())
            .map(|b| Some(Bytes::from(b)))
            .map_err(|e| {
                HttpError::bad_request(
                    "invalid_body",
                    format!("The {field} is not valid base64 ({e}); with \"encoding\": \"base64\" every key, value and header value is base64."),
                )
            }),
    }
}

/// A bound from the query, its default when absent, 400 when zero or above `max`.
fn bounded(
    name: &str,
    asked: Option<usize>,
    default: usize,
    max: usize,
) -> Result<usize, HttpError> {
    match asked {
        None => Ok(default),
        Some(n) if (1..=max).contains(&n) => Ok(n),
        Some(n) => Err(HttpError::bad_request(
            "invalid_query",
            format!("The {name} asked is {n}; it must be between 1 and {max}."),
        )),
    }
}

/// The first offset at or after `timestamp_ms`, asked as a ListOffsets is; the high
/// watermark when no record is that recent.
async fn offset_at_time(
    ctx: &ApiContext,
    topic: &str,
    partition: i32,
    timestamp_ms: i64,
) -> Result<Option<i64>, HttpError> {
    let request = ListOffsetsRequest::default()
        .with_replica_id(kafka_protocol::messages::BrokerId(-1))
        .with_topics(vec![ListOffsetsTopic::default()
            .with_name(TopicName(StrBytes::from_string(topic.to_string())))
            .with_partitions(vec![ListOffsetsPartition::default()
                .with_partition_index(partition)
                .with_timestamp(timestamp_ms)])]);
    let answer =
        weir_broker::handlers::list_offsets::answer(&ctx.broker, LIST_OFFSETS_VERSION, request)
            .await;
    let found = answer
        .topics
        .first()
        .and_then(|t| t.partitions.first())
        .ok_or_else(|| {
            HttpError::new(
                axum::http::StatusCode::INTERNAL_SERVER_ERROR,
                "internal",
                "ListOffsets answered nothing for the partition.",
            )
        })?;
    if found.error_code != 0 {
        return Err(HttpError::from_kafka(
            found.error_code,
            format!("cannot find the offset at {timestamp_ms} ms"),
        ));
    }
    Ok((found.offset >= 0).then_some(found.offset))
}

#[utoipa::path(
    get,
    path = "/api/v1/topics/{topic}/partitions/{partition}/messages",
    tag = "messages",
    params(
        ("topic" = String, Path, description = "Topic name"),
        ("partition" = i32, Path, description = "Partition index"),
        ReadQuery,
    ),
    responses(
        (status = 200, description = "Records from the offset or time asked", body = Messages),
        (status = 400, description = "Bad bounds, both offset and timestamp_ms, or an offset outside the log", body = ErrorBody),
        (status = 404, description = "No such topic or partition", body = ErrorBody),
    )
)]
pub async fn read_messages(
    ctx: ApiContext,
    PathParams((topic, partition)): PathParams<(String, i32)>,
    QueryParams(query): QueryParams<ReadQuery>,
) -> Result<Json<Messages>, HttpError> {
    ctx.require_topic(Operation::Read, &topic)?;
    let max_records = bounded(
        "max_records",
        query.max_records,
        MESSAGES_READ_DEFAULT,
        MESSAGES_READ_MAX,
    )?;
    let max_bytes = bounded(
        "max_bytes",
        query.max_bytes,
        MESSAGES_READ_BYTES_DEFAULT,
        MESSAGES_READ_BYTES_MAX,
    )?;
    if query.offset.is_some() && query.timestamp_ms.is_some() {
        return Err(HttpError::bad_request(
            "invalid_query",
            "Give offset or timestamp_ms, not both.",
        ));
    }
    let at_time = match (query.offset, query.timestamp_ms) {
        (None, Some(ts)) => offset_at_time(&ctx, &topic, partition, ts).await?,
        _ => None,
    };
    blocking(move || {
        let tp = partition_or_404(&ctx.broker, &topic, partition)?;
        let admin = ctx.broker.log_admin();
        let offsets = admin
            .status(&tp)
            .ok_or(weir_log::store::StoreError::UnknownPartition)?
            .offsets;
        let (log_start_offset, high_watermark) = (offsets.log_start_offset, offsets.high_watermark);
        let from = match (query.offset, query.timestamp_ms) {
            (Some(offset), _) => offset,
            (None, Some(_)) => at_time.unwrap_or(high_watermark),
            (None, None) => log_start_offset,
        };
        if from < log_start_offset || from > high_watermark {
            return Err(HttpError::bad_request(
                "offset_out_of_range",
                format!("Offset {from} is outside partition {partition} of '{topic}', which holds offsets {log_start_offset} to {high_watermark} (its high watermark)."),
            ));
        }
        // On a blocking thread: the engine may read and decode stored batches.
        let stored = tokio::runtime::Handle::current().block_on(admin.read_records(
            &tp,
            from,
            max_records,
            max_bytes,
        ))?;
        let next_offset = stored.last().map_or(from, |r| r.offset + 1);
        let records = stored
            .iter()
            .map(|r| {
                let (key, key_encoding) = shown(r.key.as_ref());
                let (value, value_encoding) = shown(r.value.as_ref());
                Message {
                    offset: r.offset,
                    timestamp_ms: r.timestamp_ms,
                    timestamp_type: match r.timestamp_type {
                        weir_log::records::TimestampType::CreateTime => "create_time",
                        weir_log::records::TimestampType::LogAppendTime => "log_append_time",
                    }
                    .to_string(),
                    key,
                    key_encoding,
                    value,
                    value_encoding,
                    headers: r
                        .headers
                        .iter()
                        .map(|h| {
                            let (value, value_encoding) = shown(h.value.as_ref());
                            Header {
                                key: String::from_utf8_lossy(&h.key).into_owned(),
                                value,
                                value_encoding,
                            }
                        })
                        .collect(),
                    transactional: r.transactional,
                }
            })
            .collect();
        Ok(Json(Messages {
            topic,
            partition,
            log_start_offset,
            high_watermark,
            next_offset,
            records,
        }))
    })
    .await
}

#[utoipa::path(
    post,
    path = "/api/v1/topics/{topic}/messages",
    tag = "messages",
    params(("topic" = String, Path, description = "Topic name")),
    request_body = ProduceMessage,
    responses(
        (status = 200, description = "Appended", body = Produced),
        (status = 400, description = "A bad partition, encoding, header or record", body = ErrorBody),
        (status = 404, description = "No such topic or partition", body = ErrorBody),
        (status = 413, description = "The body, or the record for the topic, is too large", body = ErrorBody),
    )
)]
pub async fn produce_message(
    ctx: ApiContext,
    PathParams(topic_name): PathParams<String>,
    JsonBody(body): JsonBody<ProduceMessage>,
) -> Result<Json<Produced>, HttpError> {
    ctx.require_topic(Operation::Write, &topic_name)?;
    let topic = topic_or_404(&ctx.broker, &topic_name)?;
    if topic.internal {
        return Err(HttpError::bad_request(
            "invalid_topic",
            format!("Topic '{topic_name}' is internal; only the broker writes to it."),
        ));
    }
    if body.headers.len() > HEADERS_PER_MESSAGE_MAX {
        return Err(HttpError::bad_request(
            "invalid_body",
            format!("A message may carry at most {HEADERS_PER_MESSAGE_MAX} headers."),
        ));
    }
    let key = bytes_of("key", body.key, body.encoding)?;
    let value = bytes_of("value", body.value, body.encoding)?;
    let mut headers = IndexMap::new();
    for h in body.headers {
        let v = bytes_of("header value", h.value, body.encoding)?;
        if headers
            .insert(StrBytes::from_string(h.key.clone()), v)
            .is_some()
        {
            return Err(HttpError::bad_request(
                "invalid_body",
                format!(
                    "Header '{}' is given twice; header keys must differ.",
                    h.key
                ),
            ));
        }
    }
    let partition = match (body.partition, &key) {
        (Some(p), _) => p,
        (None, Some(k)) => crate::partitioner::partition_for_key(k, topic.partitions),
        (None, None) => {
            let n = u32::try_from(topic.partitions).unwrap_or(1).max(1);
            (NEXT_KEYLESS_PARTITION.fetch_add(1, Ordering::Relaxed) % n) as i32
        }
    };
    partition_or_404(&ctx.broker, &topic_name, partition)?;
    let timestamp_ms = body
        .timestamp_ms
        .unwrap_or_else(weir_broker::handlers::produce::now_ms);
    let record = Record {
        transactional: false,
        control: false,
        delete_horizon: false,
        partition_leader_epoch: 0,
        producer_id: -1,
        producer_epoch: -1,
        timestamp_type: TimestampType::Creation,
        offset: 0,
        sequence: -1,
        timestamp: timestamp_ms,
        key,
        value,
        headers,
    };
    let mut batch = bytes::BytesMut::new();
    RecordBatchEncoder::encode(
        &mut batch,
        [&record],
        &RecordEncodeOptions {
            version: 2,
            compression: Compression::None,
        },
    )
    .map_err(|e| {
        HttpError::bad_request(
            "invalid_record",
            format!("The record cannot be encoded: {e}."),
        )
    })?;
    let request = ProduceRequest::default()
        .with_acks(-1)
        .with_timeout_ms(30_000)
        .with_topic_data(vec![TopicProduceData::default()
            .with_name(TopicName(StrBytes::from_string(topic_name.clone())))
            .with_partition_data(vec![PartitionProduceData::default()
                .with_index(partition)
                .with_records(Some(batch.freeze()))])]);
    let broker = ctx.broker.clone();
    let appended = blocking(move || {
        Ok(weir_broker::handlers::produce::append(
            &broker,
            PRODUCE_VERSION,
            request,
            &HashMap::new(),
        ))
    })
    .await?;
    let answer = appended.answer().await;
    let p = answer
        .responses
        .first()
        .and_then(|t| t.partition_responses.first())
        .ok_or_else(|| {
            HttpError::new(
                axum::http::StatusCode::INTERNAL_SERVER_ERROR,
                "internal",
                "The produce answered nothing for the partition.",
            )
        })?;
    if p.error_code != 0 {
        let message = p
            .error_message
            .as_ref()
            .map(|m| m.to_string())
            .unwrap_or_else(|| "the record was refused".to_string());
        return Err(HttpError::from_kafka(p.error_code, message));
    }
    Ok(Json(Produced {
        topic: topic_name,
        partition,
        offset: p.base_offset,
        timestamp_ms,
    }))
}
