//! Cluster metadata, KRaft-style: every change is a [`commands::MetadataCommand`] committed to a
//! metadata log and replayed by the pure [`commands::apply`] into a [`image::MetadataImage`].
//!
//! [`MetadataLog`] is the seam between the control plane and everything else: the single-node
//! [`local::LocalMetadataLog`] commits to a local file; the openraft quorum will commit through
//! raft behind the same trait. Brokers read the image; only the [`controller::Controller`]
//! proposes commands, after deciding them with the pure functions in [`decide`].

pub mod commands;
pub mod controller;
pub mod decide;
pub mod image;
pub mod local;

use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;

use thiserror::Error;
use tokio::sync::watch;

use self::commands::MetadataCommand;
use self::image::MetadataImage;

/// Why commands could not be committed.
#[derive(Debug, Error)]
pub enum MetadataError {
    #[error("metadata log I/O failed: {0}")]
    Io(#[from] std::io::Error),
    #[error("this node is not the active controller")]
    NotController,
}

/// A boxed future, so the trait can be used as `dyn MetadataLog`.
pub type BoxFuture<'a, T> = Pin<Box<dyn Future<Output = T> + Send + 'a>>;

/// A replicated (or local) log of metadata commands and the image they produce.
pub trait MetadataLog: Send + Sync + 'static {
    /// Durably commits `commands` in order and applies them; resolves once the local image
    /// reflects them.
    fn commit(&self, commands: Vec<MetadataCommand>) -> BoxFuture<'_, Result<(), MetadataError>>;
    /// The current image.
    fn image(&self) -> Arc<MetadataImage>;
    /// A receiver that sees every new image.
    fn subscribe(&self) -> watch::Receiver<Arc<MetadataImage>>;
}
