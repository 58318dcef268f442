//! Writing a response: size prefix, response header (v0 or flexible v1), body.

use bytes::{BufMut, Bytes, BytesMut};
use kafka_protocol::messages::{ApiKey, ResponseHeader};
use kafka_protocol::protocol::Encodable;

/// Encodes a complete response frame, size prefix included.
///
/// Fails only if the body holds something its version cannot carry, which is a broker bug.
pub fn encode_response<T: Encodable>(
    api_key: ApiKey,
    api_version: i16,
    correlation_id: i32,
    body: &T,
) -> anyhow::Result<Bytes> {
    let header_version = api_key.response_header_version(api_version);
    let header = ResponseHeader::default().with_correlation_id(correlation_id);
    let size = header.compute_size(header_version)? + body.compute_size(api_version)?;
    let mut buf = BytesMut::with_capacity(4 + size);
    buf.put_i32(size as i32);
    header.encode(&mut buf, header_version)?;
    body.encode(&mut buf, api_version)?;
    debug_assert_eq!(buf.len(), 4 + size);
    Ok(buf.freeze())
}

/// Stands in for a partition's records while the rest of the response is encoded; followed
/// by the partition's index (u32) to make 16 bytes.
const SPLICE_MARK: &[u8; 12] = b"\xffweir\x00splice";

/// Encodes a Fetch response without copying record data into it: the frame comes back as
/// chunks, each partition's records being the very `Bytes` the log read. Concatenated, the
/// chunks are exactly what [`encode_response`] would produce.
pub fn encode_fetch_response(
    api_version: i16,
    correlation_id: i32,
    mut body: kafka_protocol::messages::FetchResponse,
) -> anyhow::Result<Vec<Bytes>> {
    // 1. Swap large record sets for numbered marks.
    let mut spliced: Vec<Bytes> = Vec::new();
    for t in body.responses.iter_mut() {
        for p in t.partitions.iter_mut() {
            // Every non-empty record set is taken out, so no client-written byte is left in
            // the frame where a mark is looked for.
            if p.records.as_ref().is_some_and(|r| !r.is_empty()) {
                let mut mark = BytesMut::with_capacity(16);
                mark.put_slice(SPLICE_MARK);
                mark.put_u32(spliced.len() as u32);
                spliced.push(p.records.replace(mark.freeze()).expect("checked above"));
            }
        }
    }
    let small = encode_response(ApiKey::Fetch, api_version, correlation_id, &body)?;
    if spliced.is_empty() {
        return Ok(vec![small]);
    }
    // 2. Cut the small frame at each mark and its length prefix; put the records between.
    let flexible = api_version >= 12;
    let prefix_len = if flexible { 1 } else { 4 };
    let mut chunks = Vec::with_capacity(2 * spliced.len() + 1);
    let (mut from, mut at, mut next) = (0usize, 0usize, 0usize);
    while at + 16 <= small.len() && next < spliced.len() {
        if &small[at..at + 12] != SPLICE_MARK {
            at += 1;
            continue;
        }
        let index =
            u32::from_be_bytes(small[at + 12..at + 16].try_into().expect("4 bytes")) as usize;
        let prefix_ok = if flexible {
            at >= 1 && small[at - 1] == 17
        } else {
            at >= 4 && small[at - 4..at] == 16i32.to_be_bytes()
        };
        if index != next || !prefix_ok {
            at += 1;
            continue;
        }
        let records = &spliced[next];
        chunks.push(small.slice(from..at - prefix_len));
        let mut len = BytesMut::with_capacity(5);
        if flexible {
            put_unsigned_varint(&mut len, records.len() as u32 + 1);
        } else {
            len.put_i32(records.len() as i32);
        }
        chunks.push(len.freeze());
        chunks.push(records.clone());
        next += 1;
        at += 16;
        from = at;
    }
    if next != spliced.len() {
        // Not expected; fall back to the plain encoding rather than send a wrong frame.
        let mut records = spliced.into_iter();
        for t in body.responses.iter_mut() {
            for p in t.partitions.iter_mut() {
                if p.records
                    .as_ref()
                    .is_some_and(|r| r.len() == 16 && r.starts_with(SPLICE_MARK))
                {
                    p.records = records.next();
                }
            }
        }
        return Ok(vec![encode_response(
            ApiKey::Fetch,
            api_version,
            correlation_id,
            &body,
        )?]);
    }
    if from < small.len() {
        chunks.push(small.slice(from..));
    }
    // 3. The size prefix counts the records now.
    let total: usize = chunks.iter().map(Bytes::len).sum();
    let mut head = BytesMut::from(&chunks[0][..]);
    head[..4].copy_from_slice(&((total - 4) as i32).to_be_bytes());
    chunks[0] = head.freeze();
    Ok(chunks)
}

fn put_unsigned_varint(buf: &mut BytesMut, mut v: u32) {
    while v >= 0x80 {
        buf.put_u8((v as u8 & 0x7f) | 0x80);
        v >>= 7;
    }
    buf.put_u8(v as u8);
}

#[cfg(test)]
mod tests {
    use super::*;
    use kafka_protocol::messages::fetch_response::{FetchableTopicResponse, PartitionData};
    use kafka_protocol::messages::{FetchResponse, TopicName};
    use kafka_protocol::protocol::StrBytes;

    #[test]
    fn spliced_fetch_frames_equal_the_plain_encoding() {
        // Goal: at every Fetch version weir serves, the chunks concatenate to exactly the
        // bytes of the ordinary encoding, with record sets big and small, empty and absent.
        let sizes = [0usize, 100, 511, 512, 4000, 70_000, 200_000];
        for version in 4..=17i16 {
            let partitions: Vec<PartitionData> = sizes
                .iter()
                .enumerate()
                .map(|(i, n)| {
                    let records = if *n == 0 {
                        None
                    } else {
                        Some(Bytes::from(
                            (0..*n).map(|b| (b * 7 + i) as u8).collect::<Vec<u8>>(),
                        ))
                    };
                    PartitionData::default()
                        .with_partition_index(i as i32)
                        .with_high_watermark(*n as i64)
                        .with_records(records)
                })
                .collect();
            // Topics go by name up to v12 and by id from v13; sessions exist from v7.
            let topic = |name: &'static str, id: u128| {
                let t = FetchableTopicResponse::default();
                if version >= 13 {
                    t.with_topic_id(uuid::Uuid::from_u128(id))
                } else {
                    t.with_topic(TopicName(StrBytes::from_static_str(name)))
                }
            };
            let body = FetchResponse::default()
                .with_session_id(if version >= 7 { 7 } else { 0 })
                .with_responses(vec![
                    topic("t", 1).with_partitions(partitions.clone()),
                    topic("u", 2).with_partitions(partitions),
                ]);
            let plain = encode_response(ApiKey::Fetch, version, 42, &body).unwrap();
            let chunks = encode_fetch_response(version, 42, body).unwrap();
            let joined: Vec<u8> = chunks.iter().flat_map(|c| c.iter().copied()).collect();
            assert_eq!(joined, plain.to_vec(), "version {version}");
            assert!(chunks.len() > 1);
        }
    }

    #[test]
    fn records_that_look_like_a_mark_are_carried_intact() {
        let mut evil = vec![17u8];
        evil.extend_from_slice(SPLICE_MARK);
        evil.extend_from_slice(&[0, 0, 0, 0]);
        let p = |i: i32, r: &[u8]| {
            PartitionData::default()
                .with_partition_index(i)
                .with_records(Some(Bytes::copy_from_slice(r)))
        };
        let body = FetchResponse::default().with_responses(vec![FetchableTopicResponse::default()
            .with_topic(TopicName(StrBytes::from_static_str("t")))
            .with_partitions(vec![p(0, &evil), p(1, b"plain")])]);
        let plain = encode_response(ApiKey::Fetch, 12, 1, &body).unwrap();
        let joined: Vec<u8> = encode_fetch_response(12, 1, body)
            .unwrap()
            .iter()
            .flat_map(|c| c.iter().copied())
            .collect();
        assert_eq!(joined, plain.to_vec());
    }
}
