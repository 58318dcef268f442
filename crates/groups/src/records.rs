//! Kafka's own key and value schemas for `__consumer_offsets`, so a restart replays them
//! and tools that read the topic (Burrow, `kafka-console-consumer` with the offsets
//! formatter) understand them.
//!
//! ```text
//! OffsetCommitKey     v1: version i16 | group string | topic string | partition i32
//! OffsetCommitValue   v3: version i16 | offset i64 | leader_epoch i32 | metadata string | commit_timestamp i64
//! GroupMetadataKey    v2: version i16 | group string
//! GroupMetadataValue  v3: version i16 | protocol_type string | generation i32 | protocol string? |
//!                         leader string? | current_state_timestamp i64 |
//!                         members [member_id string | group_instance_id string? | client_id string |
//!                                  client_host string | rebalance_timeout i32 | session_timeout i32 |
//!                                  subscription bytes | assignment bytes]
//! ```
//! Older value versions (0..=2) are read too; weir writes the versions above.

use bytes::{Buf, BufMut, Bytes, BytesMut};

use crate::GroupsError;

pub const OFFSET_COMMIT_KEY_VERSION: i16 = 1;
pub const OFFSET_COMMIT_VALUE_VERSION: i16 = 3;
pub const GROUP_METADATA_KEY_VERSION: i16 = 2;
pub const GROUP_METADATA_VALUE_VERSION: i16 = 3;

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum RecordKey {
    OffsetCommit {
        group: String,
        topic: String,
        partition: i32,
    },
    GroupMetadata {
        group: String,
    },
    /// A record of a consumer group (KIP-848), key versions 3 to 8.
    Consumer(crate::consumer_records::ConsumerKey),
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OffsetCommitValue {
    pub offset: i64,
    pub leader_epoch: i32,
    pub metadata: String,
    pub commit_timestamp_ms: i64,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MemberMetadata {
    pub member_id: String,
    pub group_instance_id: Option<String>,
    pub client_id: String,
    pub client_host: String,
    pub rebalance_timeout_ms: i32,
    pub session_timeout_ms: i32,
    pub subscription: Bytes,
    pub assignment: Bytes,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct GroupMetadataValue {
    pub protocol_type: String,
    pub generation: i32,
    pub protocol: Option<String>,
    pub leader: Option<String>,
    pub current_state_timestamp_ms: i64,
    pub members: Vec<MemberMetadata>,
}

fn put_string(buf: &mut BytesMut, s: &str) {
    buf.put_i16(s.len() as i16);
    buf.put_slice(s.as_bytes());
}

fn put_nullable_string(buf: &mut BytesMut, s: Option<&str>) {
    match s {
        Some(s) => put_string(buf, s),
        None => buf.put_i16(-1),
    }
}

fn put_bytes(buf: &mut BytesMut, b: &[u8]) {
    buf.put_i32(b.len() as i32);
    buf.put_slice(b);
}

fn short(what: &str) -> GroupsError {
    GroupsError::BadRecord(format!("{what} is truncated"))
}

fn get_i16(buf: &mut &[u8]) -> Result<i16, GroupsError> {
    if buf.remaining() < 2 {
        return Err(short("i16"));
    }
    Ok(buf.get_i16())
}
fn get_i32(buf: &mut &[u8]) -> Result<i32, GroupsError> {
    if buf.remaining() < 4 {
        return Err(short("i32"));
    }
    Ok(buf.get_i32())
}
fn get_i64(buf: &mut &[u8]) -> Result<i64, GroupsError> {
    if buf.remaining() < 8 {
        return Err(short("i64"));
    }
    Ok(buf.get_i64())
}
fn get_nullable_string(buf: &mut &[u8]) -> Result<Option<String>, GroupsError> {
    let len = get_i16(buf)?;
    if len < 0 {
        return Ok(None);
    }
    let len = len as usize;
    if buf.remaining() < len {
        return Err(short("string"));
    }
    let s = String::from_utf8(buf[..len].to_vec())
        .map_err(|_| GroupsError::BadRecord("string is not UTF-8".into()))?;
    buf.advance(len);
    Ok(Some(s))
}
fn get_string(buf: &mut &[u8]) -> Result<String, GroupsError> {
    get_nullable_string(buf)?
        .ok_or_else(|| GroupsError::BadRecord("null where a string is required".into()))
}
fn get_bytes(buf: &mut &[u8]) -> Result<Bytes, GroupsError> {
    let len = get_i32(buf)?;
    if len < 0 {
        return Ok(Bytes::new());
    }
    let len = len as usize;
    if buf.remaining() < len {
        return Err(short("bytes"));
    }
    let b = Bytes::copy_from_slice(&buf[..len]);
    buf.advance(len);
    Ok(b)
}

impl RecordKey {
    pub fn encode(&self) -> Bytes {
        let mut buf = BytesMut::new();
        match self {
            RecordKey::OffsetCommit {
                group,
                topic,
                partition,
            } => {
                buf.put_i16(OFFSET_COMMIT_KEY_VERSION);
                put_string(&mut buf, group);
                put_string(&mut buf, topic);
                buf.put_i32(*partition);
            }
            RecordKey::GroupMetadata { group } => {
                buf.put_i16(GROUP_METADATA_KEY_VERSION);
                put_string(&mut buf, group);
            }
            RecordKey::Consumer(k) => return k.encode(),
        }
        buf.freeze()
    }

    pub fn decode(mut buf: &[u8]) -> Result<RecordKey, GroupsError> {
        let version = get_i16(&mut buf)?;
        match version {
            0 | 1 => Ok(RecordKey::OffsetCommit {
                group: get_string(&mut buf)?,
                topic: get_string(&mut buf)?,
                partition: get_i32(&mut buf)?,
            }),
            2 => Ok(RecordKey::GroupMetadata {
                group: get_string(&mut buf)?,
            }),
            3..=8 => Ok(RecordKey::Consumer(
                crate::consumer_records::ConsumerKey::decode_after_version(version, &mut buf)?,
            )),
            v => Err(GroupsError::BadRecord(format!("unknown key version {v}"))),
        }
    }
}

impl OffsetCommitValue {
    pub fn encode(&self) -> Bytes {
        let mut buf = BytesMut::new();
        buf.put_i16(OFFSET_COMMIT_VALUE_VERSION);
        buf.put_i64(self.offset);
        buf.put_i32(self.leader_epoch);
        put_string(&mut buf, &self.metadata);
        buf.put_i64(self.commit_timestamp_ms);
        buf.freeze()
    }

    pub fn decode(mut buf: &[u8]) -> Result<OffsetCommitValue, GroupsError> {
        let version = get_i16(&mut buf)?;
        if !(0..=4).contains(&version) {
            return Err(GroupsError::BadRecord(format!(
                "unknown offset value version {version}"
            )));
        }
        let offset = get_i64(&mut buf)?;
        let leader_epoch = if version >= 3 { get_i32(&mut buf)? } else { -1 };
        let metadata = if version >= 4 {
            read_compact_string(&mut buf)?
        } else {
            get_string(&mut buf)?
        };
        let commit_timestamp_ms = get_i64(&mut buf)?;
        Ok(OffsetCommitValue {
            offset,
            leader_epoch,
            metadata,
            commit_timestamp_ms,
        })
    }
}

/// Version 4 values are flexible: a compact string is an unsigned varint length + 1.
fn read_compact_string(buf: &mut &[u8]) -> Result<String, GroupsError> {
    let mut len: u64 = 0;
    let mut shift = 0;
    loop {
        if buf.remaining() < 1 || shift > 28 {
            return Err(short("varint"));
        }
        let b = buf.get_u8();
        len |= u64::from(b & 0x7f) << shift;
        if b & 0x80 == 0 {
            break;
        }
        shift += 7;
    }
    let len = len.saturating_sub(1) as usize;
    if buf.remaining() < len {
        return Err(short("compact string"));
    }
    let s = String::from_utf8(buf[..len].to_vec())
        .map_err(|_| GroupsError::BadRecord("string is not UTF-8".into()))?;
    buf.advance(len);
    Ok(s)
}

impl GroupMetadataValue {
    pub fn encode(&self) -> Bytes {
        let mut buf = BytesMut::new();
        buf.put_i16(GROUP_METADATA_VALUE_VERSION);
        put_string(&mut buf, &self.protocol_type);
        buf.put_i32(self.generation);
        put_nullable_string(&mut buf, self.protocol.as_deref());
        put_nullable_string(&mut buf, self.leader.as_deref());
        buf.put_i64(self.current_state_timestamp_ms);
        buf.put_i32(self.members.len() as i32);
        for m in &self.members {
            put_string(&mut buf, &m.member_id);
            put_nullable_string(&mut buf, m.group_instance_id.as_deref());
            put_string(&mut buf, &m.client_id);
            put_string(&mut buf, &m.client_host);
            buf.put_i32(m.rebalance_timeout_ms);
            buf.put_i32(m.session_timeout_ms);
            put_bytes(&mut buf, &m.subscription);
            put_bytes(&mut buf, &m.assignment);
        }
        buf.freeze()
    }

    pub fn decode(mut buf: &[u8]) -> Result<GroupMetadataValue, GroupsError> {
        let version = get_i16(&mut buf)?;
        if !(0..=3).contains(&version) {
            return Err(GroupsError::BadRecord(format!(
                "unknown group metadata version {version}"
            )));
        }
        let protocol_type = get_string(&mut buf)?;
        let generation = get_i32(&mut buf)?;
        let protocol = get_nullable_string(&mut buf)?;
        let leader = get_nullable_string(&mut buf)?;
        let current_state_timestamp_ms = if version >= 2 { get_i64(&mut buf)? } else { -1 };
        let count = get_i32(&mut buf)?;
        if count < 0 || count as usize > buf.remaining() {
            return Err(GroupsError::BadRecord(format!("member count {count}")));
        }
        let mut members = Vec::with_capacity(count as usize);
        for _ in 0..count {
            let member_id = get_string(&mut buf)?;
            let group_instance_id = if version >= 3 {
                get_nullable_string(&mut buf)?
            } else {
                None
            };
            let client_id = get_string(&mut buf)?;
            let client_host = get_string(&mut buf)?;
            let rebalance_timeout_ms = if version >= 1 { get_i32(&mut buf)? } else { 0 };
            let session_timeout_ms = get_i32(&mut buf)?;
            if version == 0 {
                // v0 has no rebalance timeout: Kafka uses the session timeout.
            }
            let subscription = get_bytes(&mut buf)?;
            let assignment = get_bytes(&mut buf)?;
            members.push(MemberMetadata {
                member_id,
                group_instance_id,
                client_id,
                client_host,
                rebalance_timeout_ms: if version >= 1 {
                    rebalance_timeout_ms
                } else {
                    session_timeout_ms
                },
                session_timeout_ms,
                subscription,
                assignment,
            });
        }
        Ok(GroupMetadataValue {
            protocol_type,
            generation,
            protocol,
            leader,
            current_state_timestamp_ms,
            members,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keys_and_values_round_trip() {
        // Goal: what weir writes, weir reads back identically.
        let k = RecordKey::OffsetCommit {
            group: "g".into(),
            topic: "t".into(),
            partition: 3,
        };
        assert_eq!(RecordKey::decode(&k.encode()).unwrap(), k);
        let k = RecordKey::GroupMetadata { group: "g".into() };
        assert_eq!(RecordKey::decode(&k.encode()).unwrap(), k);
        let v = OffsetCommitValue {
            offset: 42,
            leader_epoch: -1,
            metadata: "m".into(),
            commit_timestamp_ms: 7,
        };
        assert_eq!(OffsetCommitValue::decode(&v.encode()).unwrap(), v);
        let g = GroupMetadataValue {
            protocol_type: "consumer".into(),
            generation: 5,
            protocol: Some("range".into()),
            leader: Some("m1".into()),
            current_state_timestamp_ms: 99,
            members: vec![MemberMetadata {
                member_id: "m1".into(),
                group_instance_id: Some("i1".into()),
                client_id: "c".into(),
                client_host: "/127.0.0.1".into(),
                rebalance_timeout_ms: 300_000,
                session_timeout_ms: 45_000,
                subscription: Bytes::from_static(b"sub"),
                assignment: Bytes::from_static(b"asg"),
            }],
        };
        assert_eq!(GroupMetadataValue::decode(&g.encode()).unwrap(), g);
        assert!(GroupMetadataValue::decode(&g.encode()[..10]).is_err());
        assert!(RecordKey::decode(&[0, 9]).is_err());
    }

    #[test]
    fn offset_commit_key_layout_matches_kafka() {
        // Goal: the bytes are exactly Kafka's layout (version, strings with i16 lengths, i32).
        let k = RecordKey::OffsetCommit {
            group: "ab".into(),
            topic: "t".into(),
            partition: 1,
        };
        assert_eq!(
            &k.encode()[..],
            &[0, 1, 0, 2, b'a', b'b', 0, 1, b't', 0, 0, 0, 1]
        );
    }
}
