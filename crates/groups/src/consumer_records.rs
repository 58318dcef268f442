//! Kafka's key and value schemas for the consumer groups of KIP-848 in
//! `__consumer_offsets`, so a restarted broker replays epochs and assignments.
//!
//! A key is `version i16` (which names the record type) followed by the key's strings in the
//! classic layout (i16 length). A value is `version i16` (0 for all of them) followed by
//! the fields in the flexible layout: compact strings and arrays (unsigned varint length
//! plus one), 16-byte UUIDs, and a tagged-field section, which weir writes empty and skips
//! when it reads one.
//!
//! ```text
//! key 3  ConsumerGroupMetadata             group             value: epoch i32
//! key 4  ConsumerGroupPartitionMetadata    group             value: [topic_id uuid | topic_name | partitions i32 | [partition i32 | [rack]]]
//! key 5  ConsumerGroupMemberMetadata       group, member     value: instance_id? | rack_id? | client_id | client_host |
//!                                                                   [subscribed_topic_name] | subscribed_topic_regex? |
//!                                                                   rebalance_timeout_ms i32 | server_assignor? |
//!                                                                   tag 0: classic_member_metadata (session_timeout_ms i32 |
//!                                                                          [name | metadata bytes]), for classic members
//! key 6  ConsumerGroupTargetAssignmentMetadata group         value: assignment_epoch i32
//! key 7  ConsumerGroupTargetAssignmentMember group, member   value: [topic_id uuid | [partition i32]]
//! key 8  ConsumerGroupCurrentMemberAssignment group, member  value: member_epoch i32 | previous_member_epoch i32 | state i8 |
//!                                                                   assigned [topic_id | [partition]] |
//!                                                                   pending_revocation [topic_id | [partition]]
//! ```

use std::collections::{BTreeMap, BTreeSet};

use bytes::{Buf, BufMut, Bytes, BytesMut};
use uuid::Uuid;

use crate::GroupsError;

/// Partitions by topic id: an assignment, a target, or what is pending revocation.
pub type Assignment = BTreeMap<Uuid, BTreeSet<i32>>;

/// Elements one array in a value may hold, whatever its declared length says.
pub const VALUE_ARRAY_ELEMENTS_MAX: usize = 1_000_000;

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ConsumerKey {
    GroupMetadata { group: String },
    PartitionMetadata { group: String },
    MemberMetadata { group: String, member: String },
    TargetAssignmentMetadata { group: String },
    TargetAssignmentMember { group: String, member: String },
    CurrentMemberAssignment { group: String, member: String },
}

impl ConsumerKey {
    pub fn version(&self) -> i16 {
        match self {
            ConsumerKey::GroupMetadata { .. } => 3,
            ConsumerKey::PartitionMetadata { .. } => 4,
            ConsumerKey::MemberMetadata { .. } => 5,
            ConsumerKey::TargetAssignmentMetadata { .. } => 6,
            ConsumerKey::TargetAssignmentMember { .. } => 7,
            ConsumerKey::CurrentMemberAssignment { .. } => 8,
        }
    }

    pub fn group(&self) -> &str {
        match self {
            ConsumerKey::GroupMetadata { group }
            | ConsumerKey::PartitionMetadata { group }
            | ConsumerKey::MemberMetadata { group, .. }
            | ConsumerKey::TargetAssignmentMetadata { group }
            | ConsumerKey::TargetAssignmentMember { group, .. }
            | ConsumerKey::CurrentMemberAssignment { group, .. } => group,
        }
    }

    pub fn encode(&self) -> Bytes {
        let mut buf = BytesMut::new();
        buf.put_i16(self.version());
        let mut put = |s: &str| {
            buf.put_i16(s.len() as i16);
            buf.put_slice(s.as_bytes());
        };
        match self {
            ConsumerKey::GroupMetadata { group }
            | ConsumerKey::PartitionMetadata { group }
            | ConsumerKey::TargetAssignmentMetadata { group } => put(group),
            ConsumerKey::MemberMetadata { group, member }
            | ConsumerKey::TargetAssignmentMember { group, member }
            | ConsumerKey::CurrentMemberAssignment { group, member } => {
                put(group);
                put(member);
            }
        }
        buf.freeze()
    }

    /// Decodes the rest of a key whose version (3..=8) was already read.
    pub fn decode_after_version(version: i16, buf: &mut &[u8]) -> Result<ConsumerKey, GroupsError> {
        let group = classic_string(buf)?;
        Ok(match version {
            3 => ConsumerKey::GroupMetadata { group },
            4 => ConsumerKey::PartitionMetadata { group },
            6 => ConsumerKey::TargetAssignmentMetadata { group },
            5 | 7 | 8 => {
                let member = classic_string(buf)?;
                match version {
                    5 => ConsumerKey::MemberMetadata { group, member },
                    7 => ConsumerKey::TargetAssignmentMember { group, member },
                    _ => ConsumerKey::CurrentMemberAssignment { group, member },
                }
            }
            v => return Err(GroupsError::BadRecord(format!("unknown key version {v}"))),
        })
    }
}

fn classic_string(buf: &mut &[u8]) -> Result<String, GroupsError> {
    if buf.remaining() < 2 {
        return Err(short("string length"));
    }
    let len = buf.get_i16();
    if len < 0 || buf.remaining() < len as usize {
        return Err(short("string"));
    }
    let s = std::str::from_utf8(&buf[..len as usize])
        .map_err(|_| GroupsError::BadRecord("string is not UTF-8".into()))?
        .to_string();
    buf.advance(len as usize);
    Ok(s)
}

fn short(what: &str) -> GroupsError {
    GroupsError::BadRecord(format!("{what} is truncated"))
}

/// Writes the flexible layout.
struct Writer(BytesMut);

impl Writer {
    fn new() -> Writer {
        let mut b = BytesMut::new();
        b.put_i16(0);
        Writer(b)
    }
    fn varint(&mut self, mut v: u64) {
        while v >= 0x80 {
            self.0.put_u8((v as u8) | 0x80);
            v >>= 7;
        }
        self.0.put_u8(v as u8);
    }
    fn string(&mut self, s: &str) {
        self.varint(s.len() as u64 + 1);
        self.0.put_slice(s.as_bytes());
    }
    fn nullable_string(&mut self, s: Option<&str>) {
        match s {
            Some(s) => self.string(s),
            None => self.varint(0),
        }
    }
    fn array_len(&mut self, n: usize) {
        self.varint(n as u64 + 1);
    }
    fn uuid(&mut self, id: &Uuid) {
        self.0.put_slice(id.as_bytes());
    }
    fn assignment(&mut self, a: &Assignment) {
        self.array_len(a.len());
        for (id, partitions) in a {
            self.uuid(id);
            self.array_len(partitions.len());
            for p in partitions {
                self.0.put_i32(*p);
            }
            self.no_tags();
        }
    }
    fn bytes(&mut self, b: &[u8]) {
        self.varint(b.len() as u64 + 1);
        self.0.put_slice(b);
    }
    fn no_tags(&mut self) {
        self.varint(0);
    }
    fn finish(mut self) -> Bytes {
        self.no_tags();
        self.0.freeze()
    }
}

/// Reads the flexible layout.
struct Reader<'a>(&'a [u8]);

impl<'a> Reader<'a> {
    /// Checks the value version (only 0 exists) and returns a reader past it.
    fn new(buf: &'a [u8]) -> Result<Reader<'a>, GroupsError> {
        let mut r = Reader(buf);
        let version = r.i16()?;
        if version != 0 {
            return Err(GroupsError::BadRecord(format!(
                "unknown consumer group value version {version}"
            )));
        }
        Ok(r)
    }
    fn i16(&mut self) -> Result<i16, GroupsError> {
        if self.0.remaining() < 2 {
            return Err(short("i16"));
        }
        Ok(self.0.get_i16())
    }
    fn i8(&mut self) -> Result<i8, GroupsError> {
        if self.0.remaining() < 1 {
            return Err(short("i8"));
        }
        Ok(self.0.get_i8())
    }
    fn i32(&mut self) -> Result<i32, GroupsError> {
        if self.0.remaining() < 4 {
            return Err(short("i32"));
        }
        Ok(self.0.get_i32())
    }
    fn varint(&mut self) -> Result<u64, GroupsError> {
        let mut v: u64 = 0;
        for shift in (0..35).step_by(7) {
            if self.0.remaining() < 1 {
                return Err(short("varint"));
            }
            let b = self.0.get_u8();
            v |= u64::from(b & 0x7f) << shift;
            if b & 0x80 == 0 {
                return Ok(v);
            }
        }
        Err(GroupsError::BadRecord("varint is too long".into()))
    }
    fn nullable_string(&mut self) -> Result<Option<String>, GroupsError> {
        let n = self.varint()?;
        if n == 0 {
            return Ok(None);
        }
        let len = (n - 1) as usize;
        if self.0.remaining() < len {
            return Err(short("string"));
        }
        let s = std::str::from_utf8(&self.0[..len])
            .map_err(|_| GroupsError::BadRecord("string is not UTF-8".into()))?
            .to_string();
        self.0.advance(len);
        Ok(Some(s))
    }
    fn string(&mut self) -> Result<String, GroupsError> {
        self.nullable_string()?
            .ok_or_else(|| GroupsError::BadRecord("null where a string is required".into()))
    }
    fn array_len(&mut self) -> Result<usize, GroupsError> {
        let n = self.varint()?;
        if n == 0 {
            return Err(GroupsError::BadRecord(
                "null where an array is required".into(),
            ));
        }
        let len = (n - 1) as usize;
        if len > VALUE_ARRAY_ELEMENTS_MAX || len > self.0.remaining() {
            return Err(GroupsError::BadRecord(format!("array of {len} elements")));
        }
        Ok(len)
    }
    fn uuid(&mut self) -> Result<Uuid, GroupsError> {
        if self.0.remaining() < 16 {
            return Err(short("uuid"));
        }
        let mut b = [0u8; 16];
        self.0.copy_to_slice(&mut b);
        Ok(Uuid::from_bytes(b))
    }
    fn assignment(&mut self) -> Result<Assignment, GroupsError> {
        let mut a = Assignment::new();
        for _ in 0..self.array_len()? {
            let id = self.uuid()?;
            let mut partitions = BTreeSet::new();
            for _ in 0..self.array_len()? {
                partitions.insert(self.i32()?);
            }
            self.skip_tags()?;
            a.insert(id, partitions);
        }
        Ok(a)
    }
    fn bytes(&mut self) -> Result<Bytes, GroupsError> {
        let n = self.varint()?;
        if n == 0 {
            return Err(GroupsError::BadRecord(
                "null where bytes are required".into(),
            ));
        }
        let len = (n - 1) as usize;
        if self.0.remaining() < len {
            return Err(short("bytes"));
        }
        let b = Bytes::copy_from_slice(&self.0[..len]);
        self.0.advance(len);
        Ok(b)
    }
    /// Tag 0 of a member's metadata: a presence byte, then the struct.
    fn classic_member_metadata(&mut self) -> Result<Option<ClassicMemberMetadata>, GroupsError> {
        if self.i8()? < 0 {
            return Ok(None);
        }
        let session_timeout_ms = self.i32()?;
        let mut protocols = Vec::new();
        for _ in 0..self.array_len()? {
            let name = self.string()?;
            let metadata = self.bytes()?;
            self.skip_tags()?;
            protocols.push((name, metadata));
        }
        self.skip_tags()?;
        Ok(Some(ClassicMemberMetadata {
            session_timeout_ms,
            protocols,
        }))
    }
    fn skip_tags(&mut self) -> Result<(), GroupsError> {
        for _ in 0..self.varint()? {
            self.varint()?;
            let size = self.varint()? as usize;
            if self.0.remaining() < size {
                return Err(short("tagged field"));
            }
            self.0.advance(size);
        }
        Ok(())
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct GroupMetadataValue {
    pub epoch: i32,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TopicMetadata {
    pub topic_id: Uuid,
    pub topic_name: String,
    pub partitions: i32,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PartitionMetadataValue {
    pub topics: Vec<TopicMetadata>,
}

#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct MemberMetadataValue {
    pub instance_id: Option<String>,
    pub rack_id: Option<String>,
    pub client_id: String,
    pub client_host: String,
    pub subscribed_topic_names: Vec<String>,
    pub subscribed_topic_regex: Option<String>,
    pub rebalance_timeout_ms: i32,
    pub server_assignor: Option<String>,
    /// Set for a member that speaks the classic protocol (JoinGroup, SyncGroup, Heartbeat)
    /// in a consumer group, after an online upgrade: Kafka's tagged field 0.
    pub classic: Option<ClassicMemberMetadata>,
}

/// What a classic member of a consumer group last sent in its JoinGroup.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ClassicMemberMetadata {
    pub session_timeout_ms: i32,
    /// (protocol name, embedded consumer protocol subscription), in the member's order.
    pub protocols: Vec<(String, Bytes)>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TargetAssignmentMetadataValue {
    pub assignment_epoch: i32,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TargetAssignmentMemberValue {
    pub partitions: Assignment,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CurrentMemberAssignmentValue {
    pub member_epoch: i32,
    pub previous_member_epoch: i32,
    pub state: i8,
    pub assigned: Assignment,
    pub pending_revocation: Assignment,
}

impl GroupMetadataValue {
    pub fn encode(&self) -> Bytes {
        let mut w = Writer::new();
        w.0.put_i32(self.epoch);
        w.finish()
    }
    pub fn decode(buf: &[u8]) -> Result<GroupMetadataValue, GroupsError> {
        let mut r = Reader::new(buf)?;
        let epoch = r.i32()?;
        r.skip_tags()?;
        Ok(GroupMetadataValue { epoch })
    }
}

impl PartitionMetadataValue {
    pub fn encode(&self) -> Bytes {
        let mut w = Writer::new();
        w.array_len(self.topics.len());
        for t in &self.topics {
            w.uuid(&t.topic_id);
            w.string(&t.topic_name);
            w.0.put_i32(t.partitions);
            // Rack metadata per partition: one node, no racks.
            w.array_len(0);
            w.no_tags();
        }
        w.finish()
    }
    pub fn decode(buf: &[u8]) -> Result<PartitionMetadataValue, GroupsError> {
        let mut r = Reader::new(buf)?;
        let mut topics = Vec::new();
        for _ in 0..r.array_len()? {
            let topic_id = r.uuid()?;
            let topic_name = r.string()?;
            let partitions = r.i32()?;
            for _ in 0..r.array_len()? {
                r.i32()?;
                for _ in 0..r.array_len()? {
                    r.string()?;
                }
                r.skip_tags()?;
            }
            r.skip_tags()?;
            topics.push(TopicMetadata {
                topic_id,
                topic_name,
                partitions,
            });
        }
        r.skip_tags()?;
        Ok(PartitionMetadataValue { topics })
    }
}

impl MemberMetadataValue {
    pub fn encode(&self) -> Bytes {
        let mut w = Writer::new();
        w.nullable_string(self.instance_id.as_deref());
        w.nullable_string(self.rack_id.as_deref());
        w.string(&self.client_id);
        w.string(&self.client_host);
        w.array_len(self.subscribed_topic_names.len());
        for t in &self.subscribed_topic_names {
            w.string(t);
        }
        w.nullable_string(self.subscribed_topic_regex.as_deref());
        w.0.put_i32(self.rebalance_timeout_ms);
        w.nullable_string(self.server_assignor.as_deref());
        let Some(classic) = &self.classic else {
            return w.finish();
        };
        // Tag 0 holds a nullable struct: a presence byte, then the struct.
        let mut body = Writer(BytesMut::new());
        body.0.put_u8(1);
        body.0.put_i32(classic.session_timeout_ms);
        body.array_len(classic.protocols.len());
        for (name, metadata) in &classic.protocols {
            body.string(name);
            body.bytes(metadata);
            body.no_tags();
        }
        body.no_tags();
        w.varint(1);
        w.varint(0);
        w.varint(body.0.len() as u64);
        w.0.put_slice(&body.0);
        w.0.freeze()
    }
    pub fn decode(buf: &[u8]) -> Result<MemberMetadataValue, GroupsError> {
        let mut r = Reader::new(buf)?;
        let instance_id = r.nullable_string()?;
        let rack_id = r.nullable_string()?;
        let client_id = r.string()?;
        let client_host = r.string()?;
        let mut subscribed_topic_names = Vec::new();
        for _ in 0..r.array_len()? {
            subscribed_topic_names.push(r.string()?);
        }
        let subscribed_topic_regex = r.nullable_string()?;
        let rebalance_timeout_ms = r.i32()?;
        let server_assignor = r.nullable_string()?;
        let mut classic = None;
        for _ in 0..r.varint()? {
            let tag = r.varint()?;
            let size = r.varint()? as usize;
            if r.0.remaining() < size {
                return Err(short("tagged field"));
            }
            let (field, rest) = r.0.split_at(size);
            r.0 = rest;
            if tag == 0 {
                classic = Reader(field).classic_member_metadata()?;
            }
        }
        Ok(MemberMetadataValue {
            instance_id,
            rack_id,
            client_id,
            client_host,
            subscribed_topic_names,
            subscribed_topic_regex,
            rebalance_timeout_ms,
            server_assignor,
            classic,
        })
    }
}

impl TargetAssignmentMetadataValue {
    pub fn encode(&self) -> Bytes {
        let mut w = Writer::new();
        w.0.put_i32(self.assignment_epoch);
        w.finish()
    }
    pub fn decode(buf: &[u8]) -> Result<TargetAssignmentMetadataValue, GroupsError> {
        let mut r = Reader::new(buf)?;
        let assignment_epoch = r.i32()?;
        r.skip_tags()?;
        Ok(TargetAssignmentMetadataValue { assignment_epoch })
    }
}

impl TargetAssignmentMemberValue {
    pub fn encode(&self) -> Bytes {
        let mut w = Writer::new();
        w.assignment(&self.partitions);
        w.finish()
    }
    pub fn decode(buf: &[u8]) -> Result<TargetAssignmentMemberValue, GroupsError> {
        let mut r = Reader::new(buf)?;
        let partitions = r.assignment()?;
        r.skip_tags()?;
        Ok(TargetAssignmentMemberValue { partitions })
    }
}

impl CurrentMemberAssignmentValue {
    pub fn encode(&self) -> Bytes {
        let mut w = Writer::new();
        w.0.put_i32(self.member_epoch);
        w.0.put_i32(self.previous_member_epoch);
        w.0.put_i8(self.state);
        w.assignment(&self.assigned);
        w.assignment(&self.pending_revocation);
        w.finish()
    }
    pub fn decode(buf: &[u8]) -> Result<CurrentMemberAssignmentValue, GroupsError> {
        let mut r = Reader::new(buf)?;
        let member_epoch = r.i32()?;
        let previous_member_epoch = r.i32()?;
        let state = r.i8()?;
        let assigned = r.assignment()?;
        let pending_revocation = r.assignment()?;
        r.skip_tags()?;
        Ok(CurrentMemberAssignmentValue {
            member_epoch,
            previous_member_epoch,
            state,
            assigned,
            pending_revocation,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keys_and_values_round_trip() {
        // Goal: every key and value weir writes reads back identically, and a cut value is
        // an error, not a panic.
        let keys = [
            ConsumerKey::GroupMetadata { group: "g".into() },
            ConsumerKey::PartitionMetadata { group: "g".into() },
            ConsumerKey::MemberMetadata {
                group: "g".into(),
                member: "m".into(),
            },
            ConsumerKey::TargetAssignmentMetadata { group: "g".into() },
            ConsumerKey::TargetAssignmentMember {
                group: "g".into(),
                member: "m".into(),
            },
            ConsumerKey::CurrentMemberAssignment {
                group: "g".into(),
                member: "m".into(),
            },
        ];
        for k in keys {
            let bytes = k.encode();
            let mut rest = &bytes[2..];
            let version = i16::from_be_bytes([bytes[0], bytes[1]]);
            assert_eq!(
                ConsumerKey::decode_after_version(version, &mut rest).unwrap(),
                k
            );
        }
        let id = Uuid::from_u128(7);
        let mut a = Assignment::new();
        a.insert(id, [0, 2, 5].into_iter().collect());
        let v = CurrentMemberAssignmentValue {
            member_epoch: 4,
            previous_member_epoch: 3,
            state: 1,
            assigned: a.clone(),
            pending_revocation: Assignment::new(),
        };
        let bytes = v.encode();
        assert_eq!(CurrentMemberAssignmentValue::decode(&bytes).unwrap(), v);
        for cut in 0..bytes.len() {
            assert!(CurrentMemberAssignmentValue::decode(&bytes[..cut]).is_err());
        }
        let m = MemberMetadataValue {
            instance_id: Some("i".into()),
            rack_id: None,
            client_id: "c".into(),
            client_host: "/127.0.0.1".into(),
            subscribed_topic_names: vec!["a".into(), "b".into()],
            subscribed_topic_regex: Some("t.*".into()),
            rebalance_timeout_ms: 300_000,
            server_assignor: Some("range".into()),
            classic: None,
        };
        assert_eq!(MemberMetadataValue::decode(&m.encode()).unwrap(), m);
        let classic = MemberMetadataValue {
            classic: Some(ClassicMemberMetadata {
                session_timeout_ms: 45_000,
                protocols: vec![
                    ("range".into(), Bytes::from_static(b"\x00\x01sub")),
                    ("cooperative-sticky".into(), Bytes::new()),
                ],
            }),
            ..m
        };
        let bytes = classic.encode();
        assert_eq!(MemberMetadataValue::decode(&bytes).unwrap(), classic);
        for cut in 0..bytes.len() {
            assert!(MemberMetadataValue::decode(&bytes[..cut]).is_err());
        }
        let p = PartitionMetadataValue {
            topics: vec![TopicMetadata {
                topic_id: id,
                topic_name: "a".into(),
                partitions: 6,
            }],
        };
        assert_eq!(PartitionMetadataValue::decode(&p.encode()).unwrap(), p);
        let t = TargetAssignmentMemberValue { partitions: a };
        assert_eq!(TargetAssignmentMemberValue::decode(&t.encode()).unwrap(), t);
        let e = GroupMetadataValue { epoch: 9 };
        assert_eq!(GroupMetadataValue::decode(&e.encode()).unwrap(), e);
    }

    #[test]
    fn epoch_value_layout_matches_kafka() {
        // Goal: the bytes are Kafka's flexible layout: version 0, the i32, an empty tag section.
        assert_eq!(
            &GroupMetadataValue { epoch: 1 }.encode()[..],
            &[0, 0, 0, 0, 0, 1, 0]
        );
        // A value with a tagged field Kafka may add later still reads.
        let v = [0u8, 0, 0, 0, 0, 2, 1, 5, 2, 0xaa, 0xbb];
        assert_eq!(GroupMetadataValue::decode(&v).unwrap().epoch, 2);
    }
}
