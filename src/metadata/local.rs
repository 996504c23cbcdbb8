//! The single-node metadata log: commands are appended as JSON lines to
//! `<data-dir>/metadata/commands.jsonl` and fsynced before they are applied, so a committed change
//! survives a crash. At startup the log is replayed on top of the last `image.json` snapshot,
//! then compacted into a new snapshot, so the file stays small.
//!
//! This is the "quorum of one" that `samsa dev` runs; openraft replaces it for clusters.

use std::fs::{self, File, OpenOptions};
use std::io::{self, BufRead, BufReader, Write};
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};

use tokio::sync::watch;

use super::commands::{MetadataCommand, apply};
use super::image::MetadataImage;
use super::{BoxFuture, MetadataError, MetadataLog};

const SNAPSHOT_FILE: &str = "image.json";
const LOG_FILE: &str = "commands.jsonl";

struct Inner {
    file: File,
    image: Arc<MetadataImage>,
}

/// The metadata log of a one-node cluster.
pub struct LocalMetadataLog {
    inner: Arc<Mutex<Inner>>,
    tx: watch::Sender<Arc<MetadataImage>>,
}

impl LocalMetadataLog {
    /// Opens the log in `dir`, replaying and compacting what is there.
    pub fn open(dir: &Path) -> io::Result<Self> {
        fs::create_dir_all(dir)?;
        let mut image = match fs::read(dir.join(SNAPSHOT_FILE)) {
            Ok(bytes) => serde_json::from_slice(&bytes).map_err(|e| {
                io::Error::new(io::ErrorKind::InvalidData, format!("{}: {e}", SNAPSHOT_FILE))
            })?,
            Err(e) if e.kind() == io::ErrorKind::NotFound => MetadataImage::default(),
            Err(e) => return Err(e),
        };
        image.reindex();
        let log_path = dir.join(LOG_FILE);
        if let Ok(f) = File::open(&log_path) {
            for line in BufReader::new(f).lines() {
                let line = line?;
                // A torn last line (crash mid-append) was never acknowledged: stop there.
                let Ok(cmd) = serde_json::from_str::<MetadataCommand>(&line) else { break };
                apply(&mut image, &cmd);
            }
        }
        let snapshot = serde_json::to_vec(&image).map_err(io::Error::other)?;
        crate::fsutil::write_atomically(&dir.join(SNAPSHOT_FILE), &snapshot)?;
        let file = Self::reset_log(&log_path)?;
        let image = Arc::new(image);
        let (tx, _) = watch::channel(image.clone());
        Ok(LocalMetadataLog { inner: Arc::new(Mutex::new(Inner { file, image })), tx })
    }

    fn reset_log(path: &PathBuf) -> io::Result<File> {
        let file = OpenOptions::new().create(true).write(true).truncate(true).open(path)?;
        file.sync_all()?;
        Ok(file)
    }

    fn commit_blocking(
        inner: &Mutex<Inner>,
        commands: &[MetadataCommand],
    ) -> io::Result<Arc<MetadataImage>> {
        let mut guard = inner.lock().map_err(|_| io::Error::other("metadata lock poisoned"))?;
        let mut buf = Vec::new();
        for c in commands {
            serde_json::to_writer(&mut buf, c).map_err(io::Error::other)?;
            buf.push(b'\n');
        }
        guard.file.write_all(&buf)?;
        guard.file.sync_data()?;
        let mut image = (*guard.image).clone();
        for c in commands {
            apply(&mut image, c);
        }
        guard.image = Arc::new(image);
        Ok(guard.image.clone())
    }
}

impl MetadataLog for LocalMetadataLog {
    fn commit(&self, commands: Vec<MetadataCommand>) -> BoxFuture<'_, Result<(), MetadataError>> {
        let inner = self.inner.clone();
        Box::pin(async move {
            let image =
                tokio::task::spawn_blocking(move || Self::commit_blocking(&inner, &commands))
                    .await
                    .map_err(|e| MetadataError::Io(io::Error::other(e)))??;
            self.tx.send_replace(image);
            Ok(())
        })
    }

    fn image(&self) -> Arc<MetadataImage> {
        self.tx.borrow().clone()
    }

    fn subscribe(&self) -> watch::Receiver<Arc<MetadataImage>> {
        self.tx.subscribe()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::BTreeMap;
    use uuid::Uuid;

    #[tokio::test]
    async fn committed_commands_survive_reopen_and_a_torn_line_is_ignored() {
        let dir = tempfile::tempdir().expect("tmp");
        {
            let log = LocalMetadataLog::open(dir.path()).expect("open");
            log.commit(vec![MetadataCommand::InitCluster { cluster_id: "c1".into() }])
                .await
                .expect("commit");
            log.commit(vec![MetadataCommand::CreateTopic {
                name: "t".into(),
                id: Uuid::from_u128(7),
                assignments: vec![vec![crate::types::NodeId(1)]],
                configs: BTreeMap::new(),
            }])
            .await
            .expect("commit");
            assert!(log.image().topics.contains_key("t"));
        }
        let mut f = OpenOptions::new().append(true).open(dir.path().join(LOG_FILE)).expect("open");
        f.write_all(b"{\"DeleteTopic\":{\"na").expect("torn");
        drop(f);
        let log = LocalMetadataLog::open(dir.path()).expect("reopen");
        let img = log.image();
        assert_eq!(img.cluster_id.as_deref(), Some("c1"));
        assert_eq!(img.topic_by_id(&Uuid::from_u128(7)).map(|t| t.name.as_str()), Some("t"));
        // Reopening compacted the log into the snapshot.
        assert_eq!(fs::metadata(dir.path().join(LOG_FILE)).expect("meta").len(), 0);
    }
}
