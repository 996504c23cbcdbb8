//! The metadata state machine: committed command batches replayed by the pure
//! `metadata::commands::apply` into a `MetadataImage`, published to the broker through watch
//! channels (the image, and the last applied raft index so callers can wait for a commit).
//!
//! Snapshots are the image as JSON, stored in sled tree `raft-snapshot` with their metadata;
//! at startup the state starts from the snapshot and openraft re-applies committed entries after
//! it (apply is deterministic, so re-applying gives the same image).

use std::io::Cursor;
use std::sync::{Arc, Mutex};

use openraft::storage::{RaftStateMachine, Snapshot};
use openraft::{
    Entry, EntryPayload, LogId, OptionalSend, RaftSnapshotBuilder, SnapshotMeta, StorageError,
    StorageIOError, StoredMembership,
};
use serde::{Deserialize, Serialize};
use tokio::sync::watch;

use super::{RaftNode, RaftNodeId, TypeConfig};
use crate::metadata::commands::apply;
use crate::metadata::image::MetadataImage;

type Result<T> = std::result::Result<T, StorageError<RaftNodeId>>;

const SNAPSHOT_KEY: &str = "current";

#[derive(Debug, Clone, Serialize, Deserialize)]
struct StoredSnapshot {
    meta: SnapshotMeta<RaftNodeId, RaftNode>,
    /// The image as JSON.
    data: Vec<u8>,
}

#[derive(Debug, Default)]
struct State {
    last_applied: Option<LogId<RaftNodeId>>,
    membership: StoredMembership<RaftNodeId, RaftNode>,
    image: MetadataImage,
    /// Suffix that keeps snapshot ids unique within this process.
    snapshot_seq: u64,
}

/// The state machine; clones share state (a clone is the snapshot builder).
#[derive(Debug, Clone)]
pub(crate) struct StateMachineStore {
    state: Arc<Mutex<State>>,
    db: sled::Db,
    snapshots: sled::Tree,
    image_tx: Arc<watch::Sender<Arc<MetadataImage>>>,
    applied_tx: Arc<watch::Sender<u64>>,
}

impl StateMachineStore {
    /// Opens the state machine, starting from the stored snapshot if there is one.
    pub(crate) fn open(db: &sled::Db) -> std::result::Result<Self, Box<dyn std::error::Error>> {
        let snapshots = db.open_tree("raft-snapshot")?;
        let mut state = State::default();
        if let Some(raw) = snapshots.get(SNAPSHOT_KEY)? {
            let snap: StoredSnapshot = serde_json::from_slice(&raw)?;
            let mut image: MetadataImage = serde_json::from_slice(&snap.data)?;
            image.reindex();
            state.last_applied = snap.meta.last_log_id;
            state.membership = snap.meta.last_membership.clone();
            state.image = image;
        }
        let applied = state.last_applied.map_or(0, |l| l.index);
        let (image_tx, _) = watch::channel(Arc::new(state.image.clone()));
        let (applied_tx, _) = watch::channel(applied);
        Ok(StateMachineStore {
            state: Arc::new(Mutex::new(state)),
            db: db.clone(),
            snapshots,
            image_tx: Arc::new(image_tx),
            applied_tx: Arc::new(applied_tx),
        })
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// The current image.
    pub(crate) fn image(&self) -> Arc<MetadataImage> {
        self.image_tx.borrow().clone()
    }

    pub(crate) fn subscribe_image(&self) -> watch::Receiver<Arc<MetadataImage>> {
        self.image_tx.subscribe()
    }

    /// The raft index of the last applied entry.
    pub(crate) fn subscribe_applied(&self) -> watch::Receiver<u64> {
        self.applied_tx.subscribe()
    }

    fn publish(&self, state: &State) {
        self.image_tx.send_replace(Arc::new(state.image.clone()));
        self.applied_tx.send_replace(state.last_applied.map_or(0, |l| l.index));
    }

    async fn store_snapshot(&self, snap: &StoredSnapshot) -> Result<()> {
        let sig = Some(snap.meta.signature());
        let bytes = serde_json::to_vec(snap)
            .map_err(|e| StorageIOError::write_snapshot(sig.clone(), &e))?;
        self.snapshots
            .insert(SNAPSHOT_KEY, bytes)
            .map_err(|e| StorageIOError::write_snapshot(sig.clone(), &e))?;
        self.db.flush_async().await.map_err(|e| StorageIOError::write_snapshot(sig, &e))?;
        Ok(())
    }
}

impl RaftSnapshotBuilder<TypeConfig> for StateMachineStore {
    async fn build_snapshot(&mut self) -> Result<Snapshot<TypeConfig>> {
        let (meta, data) = {
            let mut st = self.lock();
            st.snapshot_seq += 1;
            let data = serde_json::to_vec(&st.image)
                .map_err(|e| StorageIOError::read_state_machine(&e))?;
            let snapshot_id = match st.last_applied {
                Some(l) => format!("{}-{}-{}", l.leader_id, l.index, st.snapshot_seq),
                None => format!("--{}", st.snapshot_seq),
            };
            let meta = SnapshotMeta {
                last_log_id: st.last_applied,
                last_membership: st.membership.clone(),
                snapshot_id,
            };
            (meta, data)
        };
        self.store_snapshot(&StoredSnapshot { meta: meta.clone(), data: data.clone() }).await?;
        Ok(Snapshot { meta, snapshot: Box::new(Cursor::new(data)) })
    }
}

impl RaftStateMachine<TypeConfig> for StateMachineStore {
    type SnapshotBuilder = Self;

    async fn applied_state(
        &mut self,
    ) -> Result<(Option<LogId<RaftNodeId>>, StoredMembership<RaftNodeId, RaftNode>)> {
        let st = self.lock();
        Ok((st.last_applied, st.membership.clone()))
    }

    async fn apply<I>(&mut self, entries: I) -> Result<Vec<()>>
    where
        I: IntoIterator<Item = Entry<TypeConfig>> + OptionalSend,
        I::IntoIter: OptionalSend,
    {
        let mut replies = Vec::new();
        let mut st = self.lock();
        for entry in entries {
            st.last_applied = Some(entry.log_id);
            match entry.payload {
                EntryPayload::Blank => {}
                EntryPayload::Normal(batch) => {
                    for c in &batch.commands {
                        apply(&mut st.image, c);
                    }
                }
                EntryPayload::Membership(m) => {
                    st.membership = StoredMembership::new(Some(entry.log_id), m);
                }
            }
            replies.push(());
        }
        self.publish(&st);
        Ok(replies)
    }

    async fn get_snapshot_builder(&mut self) -> Self::SnapshotBuilder {
        self.clone()
    }

    async fn begin_receiving_snapshot(&mut self) -> Result<Box<Cursor<Vec<u8>>>> {
        Ok(Box::new(Cursor::new(Vec::new())))
    }

    async fn install_snapshot(
        &mut self,
        meta: &SnapshotMeta<RaftNodeId, RaftNode>,
        snapshot: Box<Cursor<Vec<u8>>>,
    ) -> Result<()> {
        let data = snapshot.into_inner();
        let mut image: MetadataImage = serde_json::from_slice(&data)
            .map_err(|e| StorageIOError::read_snapshot(Some(meta.signature()), &e))?;
        image.reindex();
        {
            let mut st = self.lock();
            st.image = image;
            st.last_applied = meta.last_log_id;
            st.membership = meta.last_membership.clone();
            self.publish(&st);
        }
        self.store_snapshot(&StoredSnapshot { meta: meta.clone(), data }).await
    }

    async fn get_current_snapshot(&mut self) -> Result<Option<Snapshot<TypeConfig>>> {
        let raw = self
            .snapshots
            .get(SNAPSHOT_KEY)
            .map_err(|e| StorageIOError::read_snapshot(None, &e))?;
        let Some(raw) = raw else { return Ok(None) };
        let snap: StoredSnapshot =
            serde_json::from_slice(&raw).map_err(|e| StorageIOError::read_snapshot(None, &e))?;
        Ok(Some(Snapshot { meta: snap.meta, snapshot: Box::new(Cursor::new(snap.data)) }))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::raft::log_store::LogStore;
    use openraft::testing::{StoreBuilder, Suite};

    struct SledBuilder;

    impl StoreBuilder<TypeConfig, LogStore, StateMachineStore, tempfile::TempDir> for SledBuilder {
        async fn build(&self) -> Result<(tempfile::TempDir, LogStore, StateMachineStore)> {
            let dir = tempfile::tempdir().map_err(|e| StorageIOError::write(&e))?;
            let db = sled::Config::new()
                .path(dir.path())
                .open()
                .map_err(|e| StorageIOError::write(&e))?;
            let log = LogStore::open(&db).map_err(|e| StorageIOError::write(&e))?;
            let sm = StateMachineStore::open(&db)
                .map_err(|e| StorageIOError::write(&std::io::Error::other(e.to_string())))?;
            Ok((dir, log, sm))
        }
    }

    #[test]
    fn the_sled_store_passes_openrafts_storage_conformance_suite() {
        Suite::test_all(SledBuilder).expect("openraft storage suite");
    }
}
