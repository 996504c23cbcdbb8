//! A read that has been located but not copied: a byte range of one segment file holding whole
//! batches. The log lock is needed only to find the range (index lookup and a few header reads);
//! the bytes are read, or handed to the socket with `sendfile`, after the lock is released, so
//! a large fetch does not hold up appends to the same partition.
//!
//! Invariant the callers keep: a slice is taken only of bytes that cannot change before it is
//! used. Below the high watermark that holds for as long as the slice lives, because committed
//! data is never truncated and the file handle keeps a deleted segment readable (retention
//! unlinks whole segments). A read of uncommitted data (a follower's fetch) must be copied while
//! the lock is still held. If the file does shrink under a slice anyway, reading it fails with
//! `UnexpectedEof` rather than returning other bytes.

use std::fs::File;
use std::io;
use std::os::unix::fs::FileExt;
use std::sync::Arc;

use bytes::{Bytes, BytesMut};

/// `len` bytes of `file` from `position`; empty slices hold no file.
#[derive(Debug, Clone, Default)]
pub(crate) struct FileSlice {
    file: Option<Arc<File>>,
    position: u64,
    len: usize,
}

impl FileSlice {
    pub(crate) fn new(file: Arc<File>, position: u64, len: usize) -> Self {
        if len == 0 {
            return Self::default();
        }
        FileSlice { file: Some(file), position, len }
    }

    pub(crate) fn len(&self) -> usize {
        self.len
    }

    pub(crate) fn is_empty(&self) -> bool {
        self.len == 0
    }

    /// The file and the position the slice starts at (for `sendfile`); `None` when empty.
    pub(crate) fn file_and_position(&self) -> Option<(&File, u64)> {
        self.file.as_deref().map(|f| (f, self.position))
    }

    /// The slice cut into consecutive slices of at most `max` bytes each.
    pub(crate) fn chunks(&self, max: usize) -> impl Iterator<Item = FileSlice> + '_ {
        let max = max.max(1);
        (0..self.len).step_by(max).filter_map(move |start| {
            let file = self.file.clone()?;
            Some(FileSlice::new(file, self.position + start as u64, max.min(self.len - start)))
        })
    }

    /// Appends the slice's bytes to `out`.
    pub(crate) fn read_into(&self, out: &mut BytesMut) -> io::Result<()> {
        let Some(file) = &self.file else { return Ok(()) };
        let start = out.len();
        out.resize(start + self.len, 0);
        let read = file.read_exact_at(&mut out[start..], self.position);
        if read.is_err() {
            out.truncate(start);
        }
        read
    }

    /// The slice's bytes, copied out of the file.
    pub(crate) fn to_bytes(&self) -> io::Result<Bytes> {
        let mut out = BytesMut::with_capacity(self.len);
        self.read_into(&mut out)?;
        Ok(out.freeze())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_slice_reads_its_range_and_fails_when_the_file_shrank() {
        let dir = tempfile::tempdir().expect("tempdir");
        let path = dir.path().join("f");
        std::fs::write(&path, b"0123456789").expect("write");
        let file = Arc::new(File::open(&path).expect("open"));
        let slice = FileSlice::new(file.clone(), 2, 5);
        assert_eq!(slice.to_bytes().expect("read").as_ref(), b"23456");
        let parts: Vec<Bytes> = slice.chunks(2).map(|c| c.to_bytes().expect("read")).collect();
        assert_eq!(parts, vec![&b"23"[..], &b"45"[..], &b"6"[..]]);
        assert!(FileSlice::new(file, 2, 0).file_and_position().is_none());
        std::fs::OpenOptions::new().write(true).open(&path).expect("open").set_len(4).expect("cut");
        let mut out = BytesMut::from(&b"ab"[..]);
        let err = slice.read_into(&mut out).expect_err("short read");
        assert_eq!(err.kind(), io::ErrorKind::UnexpectedEof);
        assert_eq!(out.as_ref(), b"ab", "a failed read leaves the buffer as it was");
    }
}
