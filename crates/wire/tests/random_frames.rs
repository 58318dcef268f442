//! Mutated and random request frames through the decoder: refused or decoded, never a
//! panic and never an allocation the frame cannot justify. This runs on stable in every
//! `cargo test`; the cargo-fuzz target `decode_request` explores further on nightly.

use bytes::{Bytes, BytesMut};
use kafka_protocol::messages::*;
use kafka_protocol::protocol::{Encodable, StrBytes};
use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};
use weir_wire::api::advertised;
use weir_wire::request::decode_request;

fn valid_frame<T: Encodable>(key: ApiKey, version: i16, body: &T) -> Option<Vec<u8>> {
    let header = RequestHeader::default()
        .with_request_api_key(key as i16)
        .with_request_api_version(version)
        .with_correlation_id(1)
        .with_client_id(Some(StrBytes::from_static_str("fuzz")));
    let mut buf = BytesMut::new();
    header
        .encode(&mut buf, key.request_header_version(version))
        .ok()?;
    body.encode(&mut buf, version).ok()?;
    Some(buf.to_vec())
}

fn seeds() -> Vec<Vec<u8>> {
    let mut out = Vec::new();
    for r in advertised(true) {
        for v in r.min_version..=r.max_version {
            let f = match r.api_key {
                ApiKey::Produce => valid_frame(
                    r.api_key,
                    v,
                    &ProduceRequest::default().with_acks(1).with_topic_data(vec![
                        produce_request::TopicProduceData::default().with_partition_data(vec![
                            produce_request::PartitionProduceData::default()
                                .with_records(Some(Bytes::from_static(&[0; 70]))),
                        ]),
                    ]),
                ),
                ApiKey::Fetch => valid_frame(
                    r.api_key,
                    v,
                    &FetchRequest::default()
                        .with_topics(vec![fetch_request::FetchTopic::default()
                            .with_partitions(vec![fetch_request::FetchPartition::default()])]),
                ),
                ApiKey::Metadata => valid_frame(r.api_key, v, &MetadataRequest::default()),
                ApiKey::JoinGroup => valid_frame(
                    r.api_key,
                    v,
                    &JoinGroupRequest::default().with_protocols(vec![
                        join_group_request::JoinGroupRequestProtocol::default(),
                    ]),
                ),
                ApiKey::OffsetCommit => valid_frame(
                    r.api_key,
                    v,
                    &OffsetCommitRequest::default().with_topics(vec![
                        offset_commit_request::OffsetCommitRequestTopic::default()
                            .with_partitions(vec![Default::default()]),
                    ]),
                ),
                ApiKey::CreateTopics => valid_frame(
                    r.api_key,
                    v,
                    &CreateTopicsRequest::default()
                        .with_topics(vec![create_topics_request::CreatableTopic::default()]),
                ),
                _ => valid_frame(r.api_key, v, &ApiVersionsRequest::default())
                    .filter(|_| r.api_key == ApiKey::ApiVersions),
            };
            out.extend(f);
        }
    }
    out
}

#[test]
fn mutated_frames_never_panic() {
    // Goal: bit flips, truncations, insertions and random length fields in real frames of
    // every advertised API version are handled without a panic.
    let seeds = seeds();
    assert!(seeds.len() > 50, "seed frames for most APIs and versions");
    let iterations: usize = std::env::var("WEIR_FRAME_MUTATIONS")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(200_000);
    let mut rng = StdRng::seed_from_u64(7);
    for _ in 0..iterations {
        let mut f = seeds[rng.gen_range(0..seeds.len())].clone();
        for _ in 0..rng.gen_range(1..4) {
            match rng.gen_range(0..5) {
                0 if !f.is_empty() => {
                    let i = rng.gen_range(0..f.len());
                    f[i] ^= 1 << rng.gen_range(0..8);
                }
                1 if !f.is_empty() => {
                    let n = rng.gen_range(0..f.len());
                    f.truncate(n);
                }
                2 => {
                    let i = rng.gen_range(0..=f.len());
                    f.insert(i, rng.gen());
                }
                3 if f.len() >= 4 => {
                    // A huge or negative length or count somewhere in the body.
                    let i = rng.gen_range(0..f.len() - 3);
                    let v: i32 = if rng.gen_bool(0.5) {
                        i32::MAX - rng.gen_range(0..16)
                    } else {
                        -rng.gen_range(1..16)
                    };
                    f[i..i + 4].copy_from_slice(&v.to_be_bytes());
                }
                _ => {
                    let i = rng.gen_range(0..=f.len());
                    f.splice(i..i, [0xff, 0xff, 0xff, 0x7f]);
                }
            }
        }
        let _ = decode_request(Bytes::from(f), true);
    }
}
