//! Kafka framing: every request and response is a 4-byte big-endian size followed by that many
//! bytes. No I/O here: a partial frame is a normal state (`Ok(None)`), not an error.

use bytes::{Buf, BytesMut};
use thiserror::Error;

/// Why a connection's byte stream cannot continue.
#[derive(Debug, Error, PartialEq, Eq)]
pub(crate) enum FrameError {
    #[error("request frame of {size} bytes exceeds socket.request.max.bytes {max}")]
    TooLarge { size: i64, max: i64 },
    #[error("negative frame size {0}")]
    Negative(i32),
}

/// Takes one whole frame off the front of `buf`, if one is there.
pub(crate) fn take_frame(
    buf: &mut BytesMut,
    max_bytes: i64,
) -> Result<Option<BytesMut>, FrameError> {
    if buf.len() < 4 {
        return Ok(None);
    }
    let size = i32::from_be_bytes([buf[0], buf[1], buf[2], buf[3]]);
    if size < 0 {
        return Err(FrameError::Negative(size));
    }
    if i64::from(size) > max_bytes {
        return Err(FrameError::TooLarge { size: i64::from(size), max: max_bytes });
    }
    let size = size as usize;
    if buf.len() < 4 + size {
        buf.reserve(4 + size - buf.len());
        return Ok(None);
    }
    buf.advance(4);
    Ok(Some(buf.split_to(size)))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn partial_frames_wait_and_whole_frames_split() {
        let mut b = BytesMut::from(&[0u8, 0, 0, 3, 1, 2][..]);
        assert_eq!(take_frame(&mut b, 100), Ok(None));
        b.extend_from_slice(&[3, 0, 0, 0, 1, 9]);
        assert_eq!(take_frame(&mut b, 100).expect("ok").as_deref(), Some(&[1u8, 2, 3][..]));
        assert_eq!(take_frame(&mut b, 100).expect("ok").as_deref(), Some(&[9u8][..]));
        assert_eq!(take_frame(&mut b, 100), Ok(None));
    }

    #[test]
    fn oversize_and_negative_sizes_are_errors() {
        let mut b = BytesMut::from(&[0u8, 0, 1, 0][..]);
        assert!(matches!(take_frame(&mut b, 100), Err(FrameError::TooLarge { size: 256, .. })));
        let mut b = BytesMut::from(&[0xffu8, 0xff, 0xff, 0xff][..]);
        assert_eq!(take_frame(&mut b, 100), Err(FrameError::Negative(-1)));
    }
}
