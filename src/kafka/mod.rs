//! The Kafka wire protocol: [`frame`] splits the byte stream into size-prefixed frames,
//! [`router`] decodes headers and dispatches to one [`handlers`] module per API, and
//! [`server`] runs the listener and one task per connection, writing each [`response`] as
//! encoded bytes and, for fetched records, slices of segment files sent with `sendfile`.
//!
//! Invariant: nothing a client sends can crash the broker. An undecodable frame, an unknown API
//! key or an oversize frame closes that one connection; every other failure is an error code in
//! a response.

pub(crate) mod authenticate;
pub(crate) mod closed;
pub(crate) mod extensions;
pub(crate) mod frame;
pub(crate) mod handlers;
pub(crate) mod legacy;
pub mod response;
pub mod router;
pub mod server;
