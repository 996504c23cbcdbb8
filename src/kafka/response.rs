//! A response as the connection writes it: encoded bytes interleaved with slices of segment
//! files. Record data in a fetch answer stays in the page cache: the writer hands those slices
//! to the socket with `sendfile`, so the broker neither copies nor re-encodes them (as Kafka's
//! `FileRecords.transferTo`).
//!
//! Invariant: the chunks, written in order, are exactly the bytes of one size-prefixed frame;
//! `len` is their total.

use bytes::{Bytes, BytesMut};
use kafka_protocol::protocol::Encodable;

use crate::log::FileSlice;

/// One piece of a response.
#[derive(Debug)]
pub(crate) enum Chunk {
    Bytes(Bytes),
    File(FileSlice),
}

/// The chunks of a response body, or of a whole framed response.
#[derive(Debug, Default)]
pub struct Body {
    chunks: Vec<Chunk>,
    len: usize,
}

impl Body {
    pub(crate) fn push_bytes(&mut self, bytes: Bytes) {
        if !bytes.is_empty() {
            self.len += bytes.len();
            self.chunks.push(Chunk::Bytes(bytes));
        }
    }

    pub(crate) fn push_file(&mut self, slice: FileSlice) {
        if !slice.is_empty() {
            self.len += slice.len();
            self.chunks.push(Chunk::File(slice));
        }
    }

    pub(crate) fn append(&mut self, other: Body) {
        self.len += other.len;
        self.chunks.extend(other.chunks);
    }

    /// Total bytes.
    pub fn len(&self) -> usize {
        self.len
    }

    pub fn is_empty(&self) -> bool {
        self.len == 0
    }

    pub(crate) fn into_chunks(self) -> Vec<Chunk> {
        self.chunks
    }

    /// Every byte, file slices read (tests, and writers that cannot `sendfile`).
    pub fn to_bytes(&self) -> std::io::Result<Bytes> {
        let mut out = BytesMut::with_capacity(self.len);
        for c in &self.chunks {
            match c {
                Chunk::Bytes(b) => out.extend_from_slice(b),
                Chunk::File(s) => s.read_into(&mut out)?,
            }
        }
        Ok(out.freeze())
    }
}

/// A handler's answer turned into response body chunks at the request's version.
pub(crate) trait IntoBody {
    fn into_body(self, version: i16) -> Result<Body, String>;
}

impl<T: Encodable> IntoBody for T {
    fn into_body(self, version: i16) -> Result<Body, String> {
        let mut buf = BytesMut::with_capacity(
            self.compute_size(version)
                .map_err(|e| format!("cannot size response v{version}: {e}"))?,
        );
        self.encode(&mut buf, version)
            .map_err(|e| format!("cannot encode response v{version}: {e}"))?;
        let mut body = Body::default();
        body.push_bytes(buf.freeze());
        Ok(body)
    }
}
