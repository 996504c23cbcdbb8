//! samsa's additions to the Kafka protocol, each in a tagged field (flexible versions only), which
//! every other client skips: the broker writes them, samsa's CLI reads them.
//!
//! * DescribeLogDirs v2+, partition entry, tag [`CLEANER_TAG`]: a compacted replica's cleaner
//!   position (i64, the first offset not yet cleaned) and dirty ratio (i32, millionths),
//!   big-endian.

use bytes::{BufMut, Bytes, BytesMut};

/// The tag of the cleaner state (well above the tags Kafka assigns, which start at 0).
pub(crate) const CLEANER_TAG: i32 = 10_000;

pub(crate) fn encode_cleaner_tag(position: i64, dirty_ratio: f64) -> Bytes {
    let mut tag = BytesMut::with_capacity(12);
    tag.put_i64(position);
    tag.put_i32((dirty_ratio.clamp(0.0, 1.0) * 1e6) as i32);
    tag.freeze()
}

/// (position, dirty ratio); `None` for a malformed tag.
pub(crate) fn decode_cleaner_tag(b: &[u8]) -> Option<(i64, f64)> {
    let position = i64::from_be_bytes(b.get(0..8)?.try_into().ok()?);
    let ppm = i32::from_be_bytes(b.get(8..12)?.try_into().ok()?);
    Some((position, f64::from(ppm) / 1e6))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_cleaner_tag_round_trips_and_short_tags_are_ignored() {
        let b = encode_cleaner_tag(1234, 0.25);
        assert_eq!(decode_cleaner_tag(&b), Some((1234, 0.25)));
        assert_eq!(decode_cleaner_tag(&b[..5]), None);
    }
}
