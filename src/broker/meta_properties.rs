//! `<data-dir>/meta.properties`: which node, and once known which cluster, a data directory
//! belongs to, and the directory's own id (`directory.id`, KIP-853). Written when the directory
//! is first used; the cluster id is added when the node first registers with the quorum (or
//! given up front with `cluster.id`). A directory of another node id, or of another cluster, is
//! refused, so nodes never share or mix data.
//!
//! The directory id is random and never changes: a voter whose disk was wiped comes back with a
//! new one, so the quorum can tell it from the voter it replaced (it may not vote until it is
//! added again under its new id; see `raft::admission`).

use std::collections::BTreeMap;
use std::fs;
use std::path::Path;

use anyhow::{Context, bail};

use crate::types::NodeId;

const FILE: &str = "meta.properties";
const FORMAT_VERSION: &str = "1";

/// The identity recorded in a data directory.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct MetaProperties {
    pub node_id: NodeId,
    pub cluster_id: Option<String>,
    /// `directory.id`: this data directory's id.
    pub directory_id: uuid::Uuid,
    /// The file was created by this start (a new or wiped directory).
    pub fresh: bool,
}

fn write(data_dir: &Path, props: &MetaProperties) -> anyhow::Result<()> {
    let mut text =
        format!("#samsa data directory\nversion={FORMAT_VERSION}\nnode.id={}\n", props.node_id.0);
    if let Some(c) = &props.cluster_id {
        text.push_str(&format!("cluster.id={c}\n"));
    }
    text.push_str(&format!("directory.id={}\n", crate::types::uuid_text(&props.directory_id)));
    let path = data_dir.join(FILE);
    crate::fsutil::write_atomically(&path, text.as_bytes())
        .with_context(|| format!("cannot write {}", path.display()))
}

/// Reads `meta.properties`, or creates it. `configured` is the `cluster.id` setting, if any.
pub(crate) fn load_or_create(
    data_dir: &Path,
    node_id: NodeId,
    configured: Option<&str>,
) -> anyhow::Result<MetaProperties> {
    let path = data_dir.join(FILE);
    if !path.exists() {
        let props = MetaProperties {
            node_id,
            cluster_id: configured.map(String::from),
            directory_id: uuid::Uuid::new_v4(),
            fresh: true,
        };
        write(data_dir, &props)?;
        return Ok(props);
    }
    let text =
        fs::read_to_string(&path).with_context(|| format!("cannot read {}", path.display()))?;
    let kv: BTreeMap<&str, &str> = text
        .lines()
        .filter(|l| !l.trim_start().starts_with('#'))
        .filter_map(|l| l.split_once('='))
        .map(|(k, v)| (k.trim(), v.trim()))
        .collect();
    let stored: i32 = kv
        .get("node.id")
        .and_then(|v| v.parse().ok())
        .context("meta.properties has no valid node.id")?;
    if stored != node_id.0 {
        bail!(
            "data directory {} belongs to node.id={stored}, but this node is node.id={}; give every node its own directory",
            data_dir.display(),
            node_id.0
        );
    }
    let cluster_id = kv.get("cluster.id").map(|s| s.to_string());
    if let (Some(stored), Some(configured)) = (&cluster_id, configured)
        && stored != configured
    {
        bail!(
            "data directory {} belongs to cluster {stored}, but cluster.id is {configured}; refusing to mix clusters",
            data_dir.display()
        );
    }
    let stored_dir = kv.get("directory.id").and_then(|v| crate::types::parse_uuid(v));
    let props = MetaProperties {
        node_id,
        cluster_id: cluster_id.or(configured.map(String::from)),
        directory_id: stored_dir.unwrap_or_else(uuid::Uuid::new_v4),
        fresh: false,
    };
    if stored_dir.is_none() {
        // A directory from before directory ids: it gets one now, once.
        write(data_dir, &props)?;
    }
    Ok(props)
}

/// Records the cluster id the quorum reports, or refuses if the directory belongs elsewhere.
pub(crate) fn record_cluster_id(
    data_dir: &Path,
    props: &mut MetaProperties,
    cluster_id: &str,
) -> anyhow::Result<()> {
    match &props.cluster_id {
        Some(c) if c == cluster_id => Ok(()),
        Some(c) => bail!(
            "data directory {} belongs to cluster {c}, but the controller quorum is cluster {cluster_id}; refusing to start",
            data_dir.display()
        ),
        None => {
            props.cluster_id = Some(cluster_id.to_string());
            write(data_dir, props)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn identity_is_stable_and_mismatches_are_refused() {
        let dir = tempfile::tempdir().expect("tmp");
        let mut a = load_or_create(dir.path(), NodeId(1), None).expect("create");
        assert_eq!(a.cluster_id, None);
        record_cluster_id(dir.path(), &mut a, "c1").expect("record");
        let b = load_or_create(dir.path(), NodeId(1), None).expect("reload");
        assert_eq!(b.cluster_id.as_deref(), Some("c1"));
        let err = load_or_create(dir.path(), NodeId(2), None).expect_err("refused");
        assert!(err.to_string().contains("node.id=1"));
        assert!(load_or_create(dir.path(), NodeId(1), Some("other")).is_err());
        let mut c = b.clone();
        assert!(record_cluster_id(dir.path(), &mut c, "c2").is_err());
        assert_eq!(crate::types::new_cluster_id().len(), 22);
        assert!(a.fresh && !b.fresh);
        assert_eq!(a.directory_id, b.directory_id, "the directory id never changes");
        assert_eq!(
            crate::types::parse_uuid(&crate::types::uuid_text(&a.directory_id)),
            Some(a.directory_id)
        );
        assert_eq!(crate::types::uuid_text(&a.directory_id).len(), 22);
    }
}
