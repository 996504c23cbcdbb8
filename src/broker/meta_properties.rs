//! `<data-dir>/meta.properties`: which cluster and node a data directory belongs to, written
//! once when the directory is formatted (Kafka's `kafka-storage format`). A directory formatted
//! for another node id is refused, so two nodes never share data.

use std::collections::BTreeMap;
use std::fs;
use std::path::Path;

use anyhow::{Context, bail};

use crate::types::NodeId;

const FILE: &str = "meta.properties";
const FORMAT_VERSION: &str = "1";

/// The identity a data directory was formatted with.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MetaProperties {
    pub cluster_id: String,
    pub node_id: NodeId,
}

/// A new random cluster id: 22 characters of URL-safe base64 of a UUID, like Kafka's.
pub fn new_cluster_id() -> String {
    const ALPHABET: &[u8] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";
    let bits = uuid::Uuid::new_v4().as_u128();
    (0..22).map(|i| ALPHABET[((bits >> (i * 6)) & 63) as usize] as char).collect()
}

/// Reads `meta.properties`, or formats the directory with a new cluster id if it has none.
pub fn load_or_format(data_dir: &Path, node_id: NodeId) -> anyhow::Result<MetaProperties> {
    let path = data_dir.join(FILE);
    if !path.exists() {
        let props = MetaProperties { cluster_id: new_cluster_id(), node_id };
        let text = format!(
            "#samsa data directory\nversion={FORMAT_VERSION}\ncluster.id={}\nnode.id={}\n",
            props.cluster_id, node_id.0
        );
        crate::fsutil::write_atomically(&path, text.as_bytes())
            .with_context(|| format!("cannot write {}", path.display()))?;
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
    let cluster_id = kv.get("cluster.id").context("meta.properties has no cluster.id")?.to_string();
    let stored: i32 = kv
        .get("node.id")
        .and_then(|v| v.parse().ok())
        .context("meta.properties has no valid node.id")?;
    if stored != node_id.0 {
        bail!(
            "data directory {} was formatted for node.id={stored}, but this node is node.id={}; use that node's own directory",
            data_dir.display(),
            node_id.0
        );
    }
    Ok(MetaProperties { cluster_id, node_id })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn formatting_is_stable_and_another_node_id_is_refused() {
        let dir = tempfile::tempdir().expect("tmp");
        let a = load_or_format(dir.path(), NodeId(1)).expect("format");
        let b = load_or_format(dir.path(), NodeId(1)).expect("reload");
        assert_eq!(a, b);
        assert_eq!(a.cluster_id.len(), 22);
        let err = load_or_format(dir.path(), NodeId(2)).expect_err("refused");
        assert!(err.to_string().contains("node.id=1"));
    }
}
