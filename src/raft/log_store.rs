//! The raft log and vote in sled: tree `raft-log` maps big-endian index → JSON entry; tree
//! `raft-meta` holds `vote`, `committed` and `last_purged`.
//!
//! Durability: every write is followed by `flush_async` before openraft is told it happened
//! (the vote before `save_vote` returns, entries before the `LogFlushed` callback fires).

use std::fmt::Debug;
use std::ops::{Bound, RangeBounds};

use openraft::storage::{LogFlushed, LogState, RaftLogStorage};
use openraft::{Entry, LogId, OptionalSend, RaftLogReader, StorageError, StorageIOError, Vote};
use serde::Serialize;
use serde::de::DeserializeOwned;

use super::{RaftNodeId, TypeConfig, key};

type Result<T> = std::result::Result<T, StorageError<RaftNodeId>>;

/// The sled-backed raft log. Cheap to clone (sled handles are shared).
#[derive(Debug, Clone)]
pub(crate) struct LogStore {
    db: sled::Db,
    log: sled::Tree,
    meta: sled::Tree,
}

impl LogStore {
    pub(crate) fn open(db: &sled::Db) -> std::result::Result<Self, sled::Error> {
        Ok(LogStore {
            db: db.clone(),
            log: db.open_tree("raft-log")?,
            meta: db.open_tree("raft-meta")?,
        })
    }

    fn get_meta<T: DeserializeOwned>(&self, name: &str) -> Result<Option<T>> {
        let raw = self.meta.get(name).map_err(|e| StorageIOError::read(&e))?;
        match raw {
            None => Ok(None),
            Some(v) => {
                serde_json::from_slice(&v).map(Some).map_err(|e| StorageIOError::read(&e).into())
            }
        }
    }

    async fn put_meta<T: Serialize>(&self, name: &str, value: &T) -> Result<()> {
        let bytes = serde_json::to_vec(value).map_err(|e| StorageIOError::write(&e))?;
        self.meta.insert(name, bytes).map_err(|e| StorageIOError::write(&e))?;
        self.db.flush_async().await.map_err(|e| StorageIOError::write(&e))?;
        Ok(())
    }

    fn decode(bytes: &[u8]) -> Result<Entry<TypeConfig>> {
        serde_json::from_slice(bytes).map_err(|e| StorageIOError::read_logs(&e).into())
    }
}

impl RaftLogReader<TypeConfig> for LogStore {
    async fn try_get_log_entries<RB: RangeBounds<u64> + Clone + Debug + OptionalSend>(
        &mut self,
        range: RB,
    ) -> Result<Vec<Entry<TypeConfig>>> {
        let start = match range.start_bound() {
            Bound::Included(x) => *x,
            Bound::Excluded(x) => x.saturating_add(1),
            Bound::Unbounded => 0,
        };
        let mut out = Vec::new();
        for item in self.log.range(key(start)..) {
            let (_, v) = item.map_err(|e| StorageIOError::read_logs(&e))?;
            let entry = Self::decode(&v)?;
            if !range.contains(&entry.log_id.index) {
                break;
            }
            out.push(entry);
        }
        Ok(out)
    }
}

impl RaftLogStorage<TypeConfig> for LogStore {
    type LogReader = Self;

    async fn get_log_state(&mut self) -> Result<LogState<TypeConfig>> {
        let last_purged_log_id: Option<LogId<RaftNodeId>> = self.get_meta("last_purged")?;
        let last = match self.log.last().map_err(|e| StorageIOError::read_logs(&e))? {
            Some((_, v)) => Some(Self::decode(&v)?.log_id),
            None => last_purged_log_id,
        };
        Ok(LogState { last_purged_log_id, last_log_id: last })
    }

    async fn get_log_reader(&mut self) -> Self::LogReader {
        self.clone()
    }

    async fn save_vote(&mut self, vote: &Vote<RaftNodeId>) -> Result<()> {
        self.put_meta("vote", vote).await
    }

    async fn read_vote(&mut self) -> Result<Option<Vote<RaftNodeId>>> {
        self.get_meta("vote")
    }

    async fn save_committed(&mut self, committed: Option<LogId<RaftNodeId>>) -> Result<()> {
        self.put_meta("committed", &committed).await
    }

    async fn read_committed(&mut self) -> Result<Option<LogId<RaftNodeId>>> {
        Ok(self.get_meta::<Option<LogId<RaftNodeId>>>("committed")?.flatten())
    }

    async fn append<I>(&mut self, entries: I, callback: LogFlushed<TypeConfig>) -> Result<()>
    where
        I: IntoIterator<Item = Entry<TypeConfig>> + OptionalSend,
        I::IntoIter: OptionalSend,
    {
        let mut batch = sled::Batch::default();
        for entry in entries {
            let bytes = serde_json::to_vec(&entry).map_err(|e| StorageIOError::write_logs(&e))?;
            batch.insert(&key(entry.log_id.index), bytes);
        }
        self.log.apply_batch(batch).map_err(|e| StorageIOError::write_logs(&e))?;
        let flushed = self.db.flush_async().await.map(|_| ()).map_err(std::io::Error::other);
        callback.log_io_completed(flushed);
        Ok(())
    }

    async fn truncate(&mut self, log_id: LogId<RaftNodeId>) -> Result<()> {
        let mut batch = sled::Batch::default();
        for item in self.log.range(key(log_id.index)..) {
            let (k, _) = item.map_err(|e| StorageIOError::write_logs(&e))?;
            batch.remove(k);
        }
        self.log.apply_batch(batch).map_err(|e| StorageIOError::write_logs(&e))?;
        self.db.flush_async().await.map_err(|e| StorageIOError::write_logs(&e))?;
        Ok(())
    }

    async fn purge(&mut self, log_id: LogId<RaftNodeId>) -> Result<()> {
        self.put_meta("last_purged", &log_id).await?;
        let mut batch = sled::Batch::default();
        for item in self.log.range(..=key(log_id.index)) {
            let (k, _) = item.map_err(|e| StorageIOError::write_logs(&e))?;
            batch.remove(k);
        }
        self.log.apply_batch(batch).map_err(|e| StorageIOError::write_logs(&e))?;
        Ok(())
    }
}
