//! The recorded history of a chaos run: one JSON object per line, in files under the run's
//! directory (`runner.jsonl` from the runner, `<worker>.jsonl` from each workload process,
//! `final.jsonl` for the final read). Every event carries `e` (its kind) and, where it happened in
//! time, `t` (Unix milliseconds, one clock: all processes run on one machine).
//!
//! Within one file, events are in the order they happened; the checker relies on that for each
//! worker's reads (a reader's order) and nothing else.

use std::collections::BTreeMap;
use std::fs::File;
use std::io::{BufRead, BufReader, BufWriter, Write};
use std::path::Path;
use std::sync::{Arc, Mutex};
use std::time::{SystemTime, UNIX_EPOCH};

use anyhow::Context;
use serde::{Deserialize, Serialize};

/// Partition → offset, with the partition as a string key (JSON objects have string keys).
pub type Offsets = BTreeMap<String, i64>;

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "e", rename_all = "snake_case")]
pub enum Event {
    // --- producers (workload/chaos_worker.py producer) ---
    /// Write `v` to partition `p`, created (handed to the client) at `c`, was acknowledged at
    /// offset `o`. librdkafka acknowledges without an offset a write whose request timed out
    /// when a later write of the same idempotent producer was accepted (it must have been
    /// persisted); `o` is null then.
    Ack {
        t: i64,
        w: String,
        p: i32,
        o: Option<i64>,
        v: String,
        #[serde(default)]
        c: i64,
    },
    /// Write `v` failed; it may or may not have been written.
    Fail {
        t: i64,
        w: String,
        p: i32,
        v: String,
        err: String,
    },
    /// The compacted topic's producer (`--keys`): write `v` of key `k` acknowledged at `o`.
    KeyedAck {
        t: i64,
        w: String,
        p: i32,
        o: Option<i64>,
        k: String,
        v: String,
    },
    /// A write of key `k` to the compacted topic failed (indeterminate).
    KeyedFail {
        t: i64,
        w: String,
        p: i32,
        k: String,
        v: String,
        err: String,
    },
    // --- the transactional producer and its read_committed reader (workload/chaos_worker.py txn) ---
    /// Transaction `txn` of values `vs` ((partition, value) pairs) was committed: acknowledged
    /// by commit_transaction.
    TxnCommit {
        t: i64,
        w: String,
        txn: String,
        vs: Vec<(i32, String)>,
    },
    /// Transaction `txn` was aborted on purpose (abort_transaction acknowledged).
    TxnAbort {
        t: i64,
        w: String,
        txn: String,
        vs: Vec<(i32, String)>,
    },
    /// Transaction `txn`'s end is unknown: all of `vs` or none may be committed.
    TxnFail {
        t: i64,
        w: String,
        txn: String,
        vs: Vec<(i32, String)>,
        err: String,
    },
    /// The read_committed reader read `v` at `o`.
    TxnRead {
        t: i64,
        w: String,
        p: i32,
        o: i64,
        v: String,
    },
    // --- consumers in a group ---
    /// The consumer's assignment changed: a new read session starts.
    Assigned {
        t: i64,
        w: String,
        ps: Vec<i32>,
    },
    /// The consumer read `v` at `o`.
    Read {
        t: i64,
        w: String,
        p: i32,
        o: i64,
        v: String,
    },
    /// A synchronous commit of these next-offsets was acknowledged.
    Commit {
        t: i64,
        w: String,
        offsets: Offsets,
    },
    CommitFailed {
        t: i64,
        w: String,
        err: String,
    },
    // --- admin client ---
    /// An admin operation and its outcome (`ok: false` means unknown: it may have happened).
    Admin {
        t: i64,
        w: String,
        op: String,
        topic: String,
        #[serde(default)]
        partitions: Option<i32>,
        ok: bool,
        #[serde(default)]
        err: Option<String>,
    },
    /// Anything else a worker wants on record (client errors, producer re-creation).
    Log {
        t: i64,
        w: String,
        msg: String,
    },
    /// A worker ended cleanly; `sent` counts the writes it attempted.
    Done {
        t: i64,
        w: String,
        #[serde(default)]
        sent: u64,
        /// A producer of the compacted topic.
        #[serde(default)]
        keyed: bool,
    },
    // --- the runner ---
    /// A fault phase: `inject`, `heal`, `recovered` or `not_recovered`. At injection, `led` maps
    /// each partition a victim led to its leader epoch then, and `term` is the raft term when a
    /// victim was the active controller.
    Fault {
        t: i64,
        n: u64,
        kind: String,
        phase: String,
        nodes: Vec<i32>,
        #[serde(default)]
        led: Offsets,
        #[serde(default)]
        term: Option<i64>,
        #[serde(default)]
        detail: String,
    },
    /// A partition's leadership as first seen anywhere.
    Leader {
        t: i64,
        p: i32,
        leader: i32,
        epoch: i32,
        isr: Vec<i32>,
    },
    /// The active controller as first seen anywhere.
    Controller {
        t: i64,
        node: i32,
        term: i64,
    },
    /// The group's committed offsets, read by a request sent at `t0` and answered at `t`.
    Offsets {
        t: i64,
        t0: i64,
        group: String,
        offsets: Offsets,
    },
    /// A node process died without being told to.
    Crash {
        t: i64,
        node: i32,
    },
    /// Something the run needed did not happen (a worker died, a final read failed).
    Incomplete {
        t: i64,
        detail: String,
    },
    /// Record `v` at offset `o` of partition `p`, read from the leader after the run, with the
    /// producer session (producer id, producer epoch) of its batch when it was written by an
    /// idempotent producer (absent in histories recorded before it was kept).
    Final {
        p: i32,
        o: i64,
        v: String,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        session: Option<(i64, i16)>,
    },
    /// The final read of partition `p` reached its high watermark.
    FinalEnd {
        t: i64,
        p: i32,
        high_watermark: i64,
    },
    /// The SCRAM users (DescribeUserScramCredentials) after the run.
    ScramUsers {
        t: i64,
        users: std::collections::BTreeSet<String>,
    },
    /// The principals of the ACL bindings node `node` serves (DescribeAcls, from its own
    /// metadata image) after the run.
    AclPrincipals {
        t: i64,
        node: i32,
        principals: std::collections::BTreeSet<String>,
    },
    /// Topics and partition counts after the run.
    Topics {
        t: i64,
        topics: BTreeMap<String, i32>,
    },
    /// The latest record of key `k` in the compacted topic, read from the leader after the
    /// run (the compacted view: older records of the key may or may not still be there).
    KeyedFinal {
        o: i64,
        k: String,
        v: String,
    },
    /// The final read of the compacted topic reached its high watermark.
    KeyedFinalEnd {
        t: i64,
        high_watermark: i64,
    },
    /// Whether every replica of the compacted topic holds the same latest record per key and
    /// log end offset after the run (bytes may differ: each replica compacts on its own).
    CompactedReplicas {
        t: i64,
        identical: bool,
        detail: String,
    },
    /// Partition `p` of the transactional topic after the run, as the leader's log holds it
    /// below the high watermark: the values of committed transactions (with their offsets),
    /// of aborted ones, and of transactions still open (no marker).
    TxnFinal {
        t: i64,
        p: i32,
        committed: Vec<(i64, String)>,
        aborted: Vec<String>,
        open: Vec<String>,
    },
    /// Whether every replica of the transactional topic's partition `p` holds the same bytes.
    TxnReplicas {
        t: i64,
        p: i32,
        identical: bool,
        detail: String,
    },
    /// Whether every replica of partition `p` holds the same bytes after the run.
    Replicas {
        t: i64,
        p: i32,
        identical: bool,
        detail: String,
    },
}

/// Milliseconds since the Unix epoch, now.
pub fn now_ms() -> i64 {
    SystemTime::now().duration_since(UNIX_EPOCH).map_or(0, |d| d.as_millis() as i64)
}

/// A JSON-lines file events are appended to, shared between tasks.
#[derive(Clone)]
pub struct Recorder {
    out: Arc<Mutex<BufWriter<File>>>,
}

impl Recorder {
    pub fn create(path: &Path) -> anyhow::Result<Self> {
        let f = File::create(path).with_context(|| format!("cannot create {}", path.display()))?;
        Ok(Recorder { out: Arc::new(Mutex::new(BufWriter::new(f))) })
    }

    /// Appends one event. A write error is reported once per call and otherwise ignored: the
    /// checker then finds the history incomplete rather than the runner stopping mid-fault.
    pub fn record(&self, event: &Event) {
        let Ok(line) = serde_json::to_string(event) else { return };
        if let Ok(mut out) = self.out.lock()
            && let Err(e) = writeln!(out, "{line}")
        {
            eprintln!("chaos: cannot write the history: {e}");
        }
    }

    pub fn flush(&self) {
        if let Ok(mut out) = self.out.lock() {
            let _ = out.flush();
        }
    }
}

/// Every event of every `*.jsonl` file in `dir`, file by file (each file in its own order).
/// Lines that are not events (a worker's stray output) are counted, not fatal.
pub fn load(dir: &Path) -> anyhow::Result<(Vec<Event>, usize)> {
    let mut files: Vec<_> = std::fs::read_dir(dir)
        .with_context(|| format!("cannot read {}", dir.display()))?
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| p.extension().is_some_and(|x| x == "jsonl"))
        .collect();
    files.sort();
    let mut events = Vec::new();
    let mut unreadable = 0;
    for f in files {
        let reader = BufReader::new(File::open(&f)?);
        for line in reader.lines() {
            let line = line?;
            if line.trim().is_empty() {
                continue;
            }
            match serde_json::from_str::<Event>(&line) {
                Ok(e) => events.push(e),
                Err(_) => unreadable += 1,
            }
        }
    }
    Ok((events, unreadable))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn worker_lines_parse_as_events() {
        let line = r#"{"e":"ack","t":5,"w":"p1","p":2,"o":7,"v":"p1-9"}"#;
        let e: Event = serde_json::from_str(line).expect("an ack");
        assert_eq!(
            e,
            Event::Ack { t: 5, w: "p1".into(), p: 2, o: Some(7), v: "p1-9".into(), c: 0 }
        );
        let line = r#"{"e":"ack","t":5,"w":"p1","p":2,"o":null,"v":"p1-9","c":3}"#;
        assert!(matches!(serde_json::from_str::<Event>(line), Ok(Event::Ack { o: None, .. })));
        let line = r#"{"e":"commit","t":5,"w":"c1","offsets":{"0":3,"2":9}}"#;
        assert!(matches!(serde_json::from_str::<Event>(line), Ok(Event::Commit { .. })));
        let line = r#"{"e":"admin","t":5,"w":"a","op":"create","topic":"x","ok":true}"#;
        assert!(matches!(serde_json::from_str::<Event>(line), Ok(Event::Admin { .. })));
    }
}
