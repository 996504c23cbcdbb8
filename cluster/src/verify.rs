//! The end of a chaos run, once every fault is healed: each workload partition read back from
//! its leader up to the high watermark (the reference the checker holds every other observation
//! against), each partition's replicas compared byte for byte (followers store the leader's
//! batches verbatim, so after catching up they must be identical), and the final topic list
//! (for the admin operations' checks). The compacted topic is read back as its latest record per
//! key, and its replicas are compared by that view and their log end offsets, not by bytes:
//! every replica compacts on its own. Results go into the history; nothing here judges.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use crate::history::{Event, Recorder, now_ms};
use crate::probe::Probe;
use crate::target::Target;

/// How long replicas may take to converge after the run before they count as different.
const CONVERGE_TIMEOUT: Duration = Duration::from_secs(30);

/// Where the first copy that differs from the first one starts to differ.
fn describe_difference(copies: &[(i32, Vec<u8>)]) -> String {
    let Some((base_node, base)) = copies.first() else { return String::new() };
    for (node, bytes) in &copies[1..] {
        if let Some(at) = base.iter().zip(bytes).position(|(a, b)| a != b) {
            return format!("node {node} differs from node {base_node} at byte {at}");
        }
        if bytes.len() != base.len() {
            return format!("node {node} and node {base_node} differ in length");
        }
    }
    String::new()
}

/// Copies the replicas of a partition that differ into the run directory, for a post-mortem.
fn keep_replicas(target: &dyn Target, out_dir: &Path, topic: &str, p: i32, replicas: &[i32]) {
    for r in replicas {
        let from = target.data_dir(*r).join(format!("{topic}-{p}"));
        let to = out_dir.join("replicas").join(format!("{topic}-{p}-node{r}"));
        if std::fs::create_dir_all(&to).is_err() {
            continue;
        }
        for entry in std::fs::read_dir(&from).into_iter().flatten().flatten() {
            let _ = std::fs::copy(entry.path(), to.join(entry.file_name()));
        }
    }
}

/// Key → (offset, value) of each key's latest record, and the offset after the last batch.
type CompactedView = (BTreeMap<String, (i64, String)>, i64);

/// One replica's compacted view: the latest record per key (tombstones applied) and the offset
/// after its last batch, read from its segment files.
fn compacted_view(dir: &Path) -> CompactedView {
    let bytes = bytes::Bytes::from(replica_bytes(dir));
    let end = crate::probe::batches_end(&bytes).unwrap_or(0);
    let mut view = BTreeMap::new();
    let mut buf = bytes;
    let sets =
        kafka_protocol::records::RecordBatchDecoder::decode_all(&mut buf).unwrap_or_default();
    for r in sets.into_iter().flat_map(|s| s.records).filter(|r| !r.control) {
        let Some(k) = r.key.map(|k| String::from_utf8_lossy(&k).into_owned()) else { continue };
        match r.value {
            Some(v) => view.insert(k, (r.offset, String::from_utf8_lossy(&v).into_owned())),
            None => view.remove(&k),
        };
    }
    (view, end)
}

/// Whether every replica of the compacted topic's partition 0 holds the same view (waiting up
/// to `CONVERGE_TIMEOUT`); differing replicas are copied into the run directory.
fn compare_compacted_replicas(
    target: &dyn Target,
    out_dir: &Path,
    topic: &str,
    replicas: &[i32],
) -> (bool, String) {
    let started = Instant::now();
    loop {
        let views: Vec<(i32, CompactedView)> = replicas
            .iter()
            .map(|r| (*r, compacted_view(&target.data_dir(*r).join(format!("{topic}-0")))))
            .collect();
        let same = views.windows(2).all(|w| w[0].1 == w[1].1);
        if same || started.elapsed() > CONVERGE_TIMEOUT {
            let mut detail: Vec<String> = views
                .iter()
                .map(|(r, (v, end))| format!("node {r}: {} keys, log end {end}", v.len()))
                .collect();
            if !same {
                keep_replicas(target, out_dir, topic, 0, replicas);
                if let Some((base_node, (base, _))) = views.first() {
                    for (node, (v, _)) in &views[1..] {
                        if let Some(k) =
                            base.keys().chain(v.keys()).find(|k| base.get(*k) != v.get(*k))
                        {
                            detail.push(format!(
                                "key {k}: node {base_node} {:?}, node {node} {:?}",
                                base.get(k),
                                v.get(k)
                            ));
                            break;
                        }
                    }
                }
            }
            return (same, detail.join(", "));
        }
        std::thread::sleep(Duration::from_millis(500));
    }
}

/// After the run: the compacted topic (one partition) read back from its leader as its latest
/// record per key, and its replicas compared.
pub(crate) fn final_compacted_checks(
    rt: &tokio::runtime::Runtime,
    probe: &mut Probe,
    target: &dyn Target,
    rec: &Recorder,
    out_dir: &Path,
    topic: &str,
) -> anyhow::Result<()> {
    let view = rt.block_on(probe.view(topic));
    let Some(part) = view.partitions.get(&0).filter(|v| v.leader >= 0) else {
        rec.record(&Event::Incomplete {
            t: now_ms(),
            detail: format!("{topic} has no leader at the end"),
        });
        return Ok(());
    };
    match rt.block_on(probe.read_partition(topic, 0, part.leader)) {
        Ok((records, hw)) => {
            let mut latest: BTreeMap<String, (i64, String)> = BTreeMap::new();
            for r in records {
                if let Some(k) = r.key {
                    latest
                        .insert(k, (r.offset, r.value.split('|').next().unwrap_or("").to_string()));
                }
            }
            for (k, (o, v)) in latest {
                rec.record(&Event::KeyedFinal { o, k, v });
            }
            rec.record(&Event::KeyedFinalEnd { t: now_ms(), high_watermark: hw });
        }
        Err(e) => rec.record(&Event::Incomplete {
            t: now_ms(),
            detail: format!("final read of {topic}: {e:#}"),
        }),
    }
    let (identical, detail) = compare_compacted_replicas(target, out_dir, topic, &part.replicas);
    rec.record(&Event::CompactedReplicas { t: now_ms(), identical, detail });
    Ok(())
}

/// What a read_committed reader of one replica's log (below `hw`) would see: committed values
/// with their offsets, aborted values, and values of transactions with no marker yet. Records
/// outside transactions count as committed.
type TxnView = (Vec<(i64, String)>, Vec<String>, Vec<String>);

fn txn_view(dir: &Path, hw: i64) -> TxnView {
    let mut buf = bytes::Bytes::from(replica_bytes(dir));
    let sets =
        kafka_protocol::records::RecordBatchDecoder::decode_all(&mut buf).unwrap_or_default();
    let (mut committed, mut aborted) = (Vec::new(), Vec::new());
    let mut pending: BTreeMap<i64, Vec<(i64, String)>> = BTreeMap::new();
    for r in sets.into_iter().flat_map(|s| s.records).filter(|r| r.offset < hw) {
        if r.control {
            let commit = r.key.as_deref().and_then(|k| k.get(2..4)) == Some(&[0, 1][..]);
            let done = pending.remove(&r.producer_id).unwrap_or_default();
            if commit {
                committed.extend(done);
            } else {
                aborted.extend(done.into_iter().map(|(_, v)| v));
            }
            continue;
        }
        let v = String::from_utf8_lossy(&r.value.unwrap_or_default()).into_owned();
        if r.transactional {
            pending.entry(r.producer_id).or_default().push((r.offset, v));
        } else {
            committed.push((r.offset, v));
        }
    }
    let open = pending.into_values().flatten().map(|(_, v)| v).collect();
    (committed, aborted, open)
}

/// After the run: each partition of the transactional topic as its leader's log holds it (the
/// committed, aborted and open transactions' values, derived from the markers), and its
/// replicas compared byte for byte (markers are replicated like any batch).
pub(crate) fn final_txn_checks(
    rt: &tokio::runtime::Runtime,
    probe: &mut Probe,
    target: &dyn Target,
    rec: &Recorder,
    out_dir: &Path,
    (topic, partitions): (&str, i32),
) -> anyhow::Result<()> {
    let view = rt.block_on(probe.view(topic));
    for p in 0..partitions {
        let Some(part) = view.partitions.get(&p).filter(|v| v.leader >= 0) else {
            rec.record(&Event::Incomplete {
                t: now_ms(),
                detail: format!("{topic}-{p} has no leader at the end"),
            });
            continue;
        };
        let (identical, detail) = compare_replicas(target, out_dir, topic, p, &part.replicas);
        rec.record(&Event::TxnReplicas { t: now_ms(), p, identical, detail });
        match rt.block_on(probe.read_partition(topic, p, part.leader)) {
            Ok((_, hw)) => {
                let dir = target.data_dir(part.leader).join(format!("{topic}-{p}"));
                let (committed, aborted, open) = txn_view(&dir, hw);
                rec.record(&Event::TxnFinal { t: now_ms(), p, committed, aborted, open });
            }
            Err(e) => rec.record(&Event::Incomplete {
                t: now_ms(),
                detail: format!("final read of {topic}-{p}: {e:#}"),
            }),
        }
    }
    Ok(())
}

/// The concatenated segment files of one replica.
fn replica_bytes(dir: &Path) -> Vec<u8> {
    let mut files: Vec<PathBuf> = std::fs::read_dir(dir)
        .map(|rd| rd.filter_map(|e| e.ok().map(|e| e.path())).collect())
        .unwrap_or_default();
    files.retain(|p| p.extension().is_some_and(|x| x == "log"));
    files.sort();
    files.iter().flat_map(|f| std::fs::read(f).unwrap_or_default()).collect()
}

/// After the faults, with the cluster healed: reads every workload partition back from its
/// leader (`final.jsonl`), compares each partition's replicas, and lists the topics.
pub(crate) fn final_checks(
    rt: &tokio::runtime::Runtime,
    probe: &mut Probe,
    target: &dyn Target,
    rec: &Recorder,
    out_dir: &Path,
    (topic, partitions): (&str, i32),
) -> anyhow::Result<()> {
    let final_file = Recorder::create(&out_dir.join("final.jsonl"))?;
    let view = rt.block_on(probe.view(topic));
    for p in 0..partitions {
        let Some(leader) = view.partitions.get(&p).map(|v| v.leader).filter(|l| *l >= 0) else {
            rec.record(&Event::Incomplete {
                t: now_ms(),
                detail: format!("p{p} has no leader at the end"),
            });
            continue;
        };
        match rt.block_on(probe.read_partition(topic, p, leader)) {
            Ok((records, hw)) => {
                for r in records {
                    final_file.record(&Event::Final {
                        p,
                        o: r.offset,
                        v: r.value,
                        session: r.session,
                    });
                }
                final_file.record(&Event::FinalEnd { t: now_ms(), p, high_watermark: hw });
            }
            Err(e) => rec.record(&Event::Incomplete {
                t: now_ms(),
                detail: format!("final read of p{p}: {e:#}"),
            }),
        }
    }
    final_file.flush();
    for p in 0..partitions {
        let replicas = view.partitions.get(&p).map(|v| v.replicas.clone()).unwrap_or_default();
        let (identical, detail) = compare_replicas(target, out_dir, topic, p, &replicas);
        rec.record(&Event::Replicas { t: now_ms(), p, identical, detail });
    }
    match rt.block_on(probe.scram_users()) {
        Some(users) => rec.record(&Event::ScramUsers { t: now_ms(), users }),
        None => rec.record(&Event::Incomplete {
            t: now_ms(),
            detail: "no SCRAM user list at the end".into(),
        }),
    }
    for id in target.ids() {
        match rt.block_on(probe.acl_principals(id)) {
            Some(principals) => {
                rec.record(&Event::AclPrincipals { t: now_ms(), node: id, principals })
            }
            None => rec.record(&Event::Incomplete {
                t: now_ms(),
                detail: format!("no ACL list from node {id} at the end"),
            }),
        }
    }
    match rt.block_on(probe.topics()) {
        Some(topics) => rec.record(&Event::Topics { t: now_ms(), topics }),
        None => rec
            .record(&Event::Incomplete { t: now_ms(), detail: "no topic list at the end".into() }),
    }
    Ok(())
}

/// Whether every replica of `topic`-`p` holds the same bytes (waiting up to
/// `CONVERGE_TIMEOUT` for followers to catch up), and what each holds. Differing replicas are
/// copied into the run directory.
fn compare_replicas(
    target: &dyn Target,
    out_dir: &Path,
    topic: &str,
    p: i32,
    replicas: &[i32],
) -> (bool, String) {
    let started = Instant::now();
    loop {
        let copies: Vec<(i32, Vec<u8>)> = replicas
            .iter()
            .map(|r| (*r, replica_bytes(&target.data_dir(*r).join(format!("{topic}-{p}")))))
            .collect();
        let same = copies.windows(2).all(|w| w[0].1 == w[1].1);
        if same || started.elapsed() > CONVERGE_TIMEOUT {
            let mut detail: Vec<String> =
                copies.iter().map(|(r, b)| format!("node {r}: {} bytes", b.len())).collect();
            if !same {
                detail.push(describe_difference(&copies));
                keep_replicas(target, out_dir, topic, p, replicas);
            }
            return (same, detail.join(", "));
        }
        std::thread::sleep(Duration::from_millis(500));
    }
}
