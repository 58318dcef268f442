//! The object format: one object in the bucket holds the chunks of one flush, a chunk being
//! a run of whole Kafka v2 record batches of one partition, followed by a footer that
//! indexes them.
//!
//! ```text
//! object := body footer
//! body   := chunk*                  positions count from the object's first byte
//! footer := entry{chunk_count} tail
//!
//! entry (ENTRY_BYTES = 64), big-endian like Kafka's own fields:
//!    0  [16]  topic_id
//!   16  i32   partition
//!   20  u64   position
//!   28  u32   size_bytes
//!   32  u32   batch_count
//!   36  i64   base_offset      0 unless offsets_in_object: offsets are then relative
//!   44  i64   last_offset
//!   52  i64   max_timestamp
//!   60  u8    flags            bit 0 = offsets_in_object; the other bits are zero
//!   61  [3]   zero
//!
//! tail (TAIL_BYTES = 26), the object's last bytes:
//!    0  u32   chunk_count
//!    4  u64   body_size_bytes
//!   12  [4]   magic "WOBJ"
//!   16  u16   format_version
//!   18  u32   crc32c of every footer byte before this field
//!   22  u32   footer_size_bytes (entries and tail)
//! ```
//!
//! The footer is at the end so the writer can stream the body and index it after, and so a
//! reader needs one ranged GET for it: the last [`FOOTER_BYTES_MAX`] bytes hold any footer,
//! and the last 14 bytes (magic, version, checksum, footer size) keep their places in every
//! future version. The footer is for tools and repair, and for reading an object whose
//! PostgreSQL rows are being rebuilt; the fetch path finds chunks through the `chunks` table.

mod builder;
mod error;
mod footer;
mod patch;

pub use builder::ObjectBuilder;
pub use error::ObjectError;
pub use footer::Footer;
pub(crate) use patch::batches;
pub use patch::{patch_offsets, set_leader_epoch};
use uuid::Uuid;

/// The format this build writes and the only one it reads.
pub const FORMAT_VERSION: u16 = 1;
/// Marks a weir object ("weir object", as in the `.wob` key suffix).
pub const MAGIC: [u8; 4] = *b"WOBJ";
/// One footer entry.
pub const ENTRY_BYTES: usize = 64;
/// The fixed end of the footer.
pub const TAIL_BYTES: usize = 26;

/// Chunks in one object. A flush touching more partitions is split into several objects.
/// The bound keeps the footer (256 KiB at most) one cheap GET, and the commit's per-chunk
/// arrays to PostgreSQL a size a single statement handles well.
pub const CHUNKS_PER_OBJECT_MAX: usize = 4096;
/// Bytes of one object, footer included: eight times the default flush size
/// (`--cluster-batch-bytes`, 8 MiB), so a flush of large batches still fits in one PUT,
/// while a writer keeps the whole object in memory and far under S3's 5 GiB PUT limit. It
/// also keeps a chunk's size inside the footer's `u32` (and the `chunks` table's `int`).
pub const OBJECT_BYTES_MAX: u64 = 64 * 1024 * 1024;
/// The largest footer: all entries of a full object and the tail.
pub const FOOTER_BYTES_MAX: usize = footer_size_bytes(CHUNKS_PER_OBJECT_MAX);

/// The footer's size for `chunk_count` chunks.
pub const fn footer_size_bytes(chunk_count: usize) -> usize {
    chunk_count * ENTRY_BYTES + TAIL_BYTES
}

/// The partition a chunk belongs to: the topic's id (names can be reused after a delete,
/// ids cannot) and the partition index.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct PartitionKey {
    pub topic_id: Uuid,
    pub partition: i32,
}

/// One chunk as the footer indexes it; the fields match the `chunks` table's.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ChunkEntry {
    pub partition: PartitionKey,
    /// Where the chunk starts, from the object's first byte.
    pub position: u64,
    pub size_bytes: u32,
    pub batch_count: u32,
    /// The first batch's base offset: 0 when the batches carry relative offsets (as a
    /// producer sent them), the real one when `offsets_in_object`.
    pub base_offset: i64,
    /// The last batch's last offset, on the same footing as `base_offset`.
    pub last_offset: i64,
    /// The largest batch `max_timestamp` (-1 when no batch has one), for time retention and
    /// ListOffsets by time.
    pub max_timestamp: i64,
    /// The batches carry their real base offsets (compactor output), so a reader must not
    /// patch them.
    pub offsets_in_object: bool,
}

impl ChunkEntry {
    /// The byte range of the chunk in the object, as a ranged GET asks for it.
    pub fn range(&self) -> std::ops::Range<u64> {
        self.position..self.position + u64::from(self.size_bytes)
    }

    /// The offsets the chunk spans; every batch takes at least one.
    pub fn offset_count(&self) -> i64 {
        self.last_offset - self.base_offset + 1
    }
}

const _: () = assert!(FOOTER_BYTES_MAX <= OBJECT_BYTES_MAX as usize);
const _: () = assert!(OBJECT_BYTES_MAX <= u32::MAX as u64);
