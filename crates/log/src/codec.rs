//! Decompression of one Kafka-compressed payload (the codecs of record batches: gzip,
//! snappy, lz4, zstd, by Kafka's compression type id), with a bound on the output.
//!
//! Record batches are decompressed through the `kafka-protocol` crate's codecs; those read
//! a whole stream into memory, which is fine for a batch already bounded by the topic's
//! `max.message.bytes` but not for a payload whose decompressed size a client chooses
//! freely (client telemetry, KIP-714). This reads the same formats from the same crates,
//! stopping as soon as the output passes `max_bytes`.

use std::io::Read;

use crate::LogError;

/// Kafka's compression type ids.
pub const COMPRESSION_NONE: i8 = 0;
pub const COMPRESSION_GZIP: i8 = 1;
pub const COMPRESSION_SNAPPY: i8 = 2;
pub const COMPRESSION_LZ4: i8 = 3;
pub const COMPRESSION_ZSTD: i8 = 4;

/// The header of snappy-java's stream format (xerial), which Java clients write; a payload
/// without it is one raw snappy block, as other clients write.
const XERIAL_MAGIC: &[u8] = b"\x82SNAPPY\x00";
/// The xerial header: magic, then two 4-byte versions.
const XERIAL_HEADER_BYTES: usize = 16;

fn corrupt(what: &str, e: impl std::fmt::Display) -> LogError {
    LogError::Decompress(format!("{what}: {e}"))
}

/// Reads `reader` to its end, failing once more than `max_bytes` come out.
fn read_bounded(reader: impl Read, max_bytes: usize, what: &str) -> Result<Vec<u8>, LogError> {
    let mut out = Vec::new();
    reader
        .take(max_bytes as u64 + 1)
        .read_to_end(&mut out)
        .map_err(|e| corrupt(what, e))?;
    if out.len() > max_bytes {
        return Err(LogError::DecompressedTooLarge {
            limit_bytes: max_bytes,
        });
    }
    Ok(out)
}

/// One raw snappy block, appended to `out`; its stated length is checked before any work.
fn snappy_block(block: &[u8], out: &mut Vec<u8>, max_bytes: usize) -> Result<(), LogError> {
    let n = snap::raw::decompress_len(block).map_err(|e| corrupt("snappy", e))?;
    if out.len() + n > max_bytes {
        return Err(LogError::DecompressedTooLarge {
            limit_bytes: max_bytes,
        });
    }
    let start = out.len();
    out.resize(start + n, 0);
    snap::raw::Decoder::new()
        .decompress(block, &mut out[start..])
        .map_err(|e| corrupt("snappy", e))?;
    Ok(())
}

fn snappy(bytes: &[u8], max_bytes: usize) -> Result<Vec<u8>, LogError> {
    let mut out = Vec::new();
    if !bytes.starts_with(XERIAL_MAGIC) {
        snappy_block(bytes, &mut out, max_bytes)?;
        return Ok(out);
    }
    // 1. The xerial header, then blocks, each a 4-byte big-endian length and a raw block.
    let mut rest = bytes
        .get(XERIAL_HEADER_BYTES..)
        .ok_or_else(|| corrupt("snappy", "the stream header is cut short"))?;
    while !rest.is_empty() {
        let (len, tail) = rest
            .split_first_chunk::<4>()
            .ok_or_else(|| corrupt("snappy", "a block length is cut short"))?;
        let len = u32::from_be_bytes(*len) as usize;
        let block = tail
            .get(..len)
            .ok_or_else(|| corrupt("snappy", "a block runs past the payload"))?;
        snappy_block(block, &mut out, max_bytes)?;
        rest = &tail[len..];
    }
    Ok(out)
}

/// Decompresses `bytes` compressed with Kafka's compression type `compression_id`. Fails
/// with [`LogError::DecompressedTooLarge`] once the output would pass `max_bytes`, with
/// [`LogError::UnknownCompression`] for an id Kafka does not define.
pub fn decompress(compression_id: i8, bytes: &[u8], max_bytes: usize) -> Result<Vec<u8>, LogError> {
    match compression_id {
        COMPRESSION_NONE => read_bounded(bytes, max_bytes, "none"),
        COMPRESSION_GZIP => read_bounded(flate2::read::GzDecoder::new(bytes), max_bytes, "gzip"),
        COMPRESSION_SNAPPY => snappy(bytes, max_bytes),
        COMPRESSION_LZ4 => {
            let decoder = lz4::Decoder::new(bytes).map_err(|e| corrupt("lz4", e))?;
            read_bounded(decoder, max_bytes, "lz4")
        }
        COMPRESSION_ZSTD => {
            let decoder =
                zstd::stream::read::Decoder::new(bytes).map_err(|e| corrupt("zstd", e))?;
            read_bounded(decoder, max_bytes, "zstd")
        }
        other => Err(LogError::UnknownCompression(other)),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use bytes::BytesMut;
    use kafka_protocol::compression::{Compressor, Gzip, Lz4, Snappy, Zstd};

    /// `payload` compressed by the codec record batches are written with.
    fn compressed(id: i8, payload: &[u8]) -> Vec<u8> {
        let mut out = BytesMut::new();
        let put = |b: &mut BytesMut| -> anyhow::Result<()> {
            b.extend_from_slice(payload);
            Ok(())
        };
        match id {
            COMPRESSION_NONE => out.extend_from_slice(payload),
            COMPRESSION_GZIP => Gzip::compress(&mut out, put).unwrap(),
            COMPRESSION_SNAPPY => Snappy::compress(&mut out, put).unwrap(),
            COMPRESSION_LZ4 => Lz4::compress(&mut out, put).unwrap(),
            COMPRESSION_ZSTD => Zstd::compress(&mut out, put).unwrap(),
            _ => unreachable!(),
        }
        out.to_vec()
    }

    #[test]
    fn every_codec_round_trips_within_the_bound_and_stops_past_it() {
        // Goal: what the record-batch codecs compress comes back whole, and a payload that
        // decompresses past the bound is refused, not read to its end.
        let payload: Vec<u8> = (0..100_000u32)
            .flat_map(|i| (i % 251).to_le_bytes())
            .collect();
        for id in [
            COMPRESSION_NONE,
            COMPRESSION_GZIP,
            COMPRESSION_SNAPPY,
            COMPRESSION_LZ4,
            COMPRESSION_ZSTD,
        ] {
            let c = compressed(id, &payload);
            assert_eq!(
                decompress(id, &c, payload.len()).unwrap(),
                payload,
                "codec {id}"
            );
            assert!(
                matches!(
                    decompress(id, &c, payload.len() - 1),
                    Err(LogError::DecompressedTooLarge { .. })
                ),
                "codec {id}"
            );
        }
        let raw = snap::raw::Encoder::new().compress_vec(&payload).unwrap();
        assert_eq!(
            decompress(COMPRESSION_SNAPPY, &raw, payload.len()).unwrap(),
            payload
        );
        assert!(matches!(
            decompress(5, b"x", 10),
            Err(LogError::UnknownCompression(5))
        ));
        assert!(matches!(
            decompress(COMPRESSION_GZIP, b"not gzip", 10),
            Err(LogError::Decompress(_))
        ));
    }
}
