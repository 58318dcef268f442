//! Request framing: every Kafka request is a big-endian i32 size followed by that many bytes.

use crate::WireError;

/// Default for the largest request accepted, as Kafka's `socket.request.max.bytes` (100 MiB).
pub const REQUEST_BYTES_MAX_DEFAULT: usize = 104_857_600;

/// Size of the length prefix in front of every request and response.
pub const SIZE_PREFIX_BYTES: usize = 4;

/// Checks a frame's declared size against the limit before any of the body is read, so a
/// hostile size never makes the broker allocate.
pub fn check_frame_size(size_bytes: i32, limit_bytes: usize) -> Result<usize, WireError> {
    if size_bytes < 0 || size_bytes as usize > limit_bytes {
        return Err(WireError::FrameSize {
            size_bytes: i64::from(size_bytes),
            limit_bytes,
        });
    }
    Ok(size_bytes as usize)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rejects_negative_and_oversized_frames() {
        // Goal: sizes outside [0, limit] are refused before allocation.
        assert!(check_frame_size(-1, 100).is_err());
        assert!(check_frame_size(101, 100).is_err());
        assert_eq!(check_frame_size(100, 100), Ok(100));
        assert_eq!(check_frame_size(0, 100), Ok(0));
    }
}
