//! The table printed at the end of a chaos run (and by `samsa-chaos check`).

use std::collections::BTreeMap;
use std::fmt::Write;

use crate::availability::{Figures, KindAvailability};
use crate::checker::Report;

/// Every violation class, in the order the table lists them.
const CLASSES: [&str; 18] = [
    "lost",
    "duplicated",
    "divergent",
    "vanished",
    "out of order",
    "committed offset went back",
    "admin operation lost",
    "replicas differ",
    "node crashed",
    "writes stalled",
    "not recovered",
    "history incomplete",
    "txn lost",
    "txn torn",
    "aborted read",
    "uncommitted read",
    "txn duplicate",
    "txn phantom",
];
/// How many violations are listed one by one.
const LISTED_MAX: usize = 25;

fn secs(ms: i64) -> String {
    format!("{:.1}s", ms as f64 / 1000.0)
}

fn figures(f: Option<Figures>) -> String {
    match f {
        Some(f) => {
            format!("{:>4} {:>7} {:>7} {:>7}", f.n, secs(f.p50_ms), secs(f.p99_ms), secs(f.max_ms))
        }
        None => format!("{:>4} {:>7} {:>7} {:>7}", 0, "-", "-", "-"),
    }
}

/// The summary: faults by kind with availability, writes and reads, violations by class, the
/// first violations, and the verdict.
pub fn render(
    header: &str,
    faults: &BTreeMap<String, usize>,
    availability: &[KindAvailability],
    report: &Report,
) -> String {
    let mut out = String::new();
    let s = &report.stats;
    let _ = writeln!(out, "\n{header}");
    let _ =
        writeln!(out, "\nfaults injected and availability (time from injection; n p50 p99 max)");
    let _ = writeln!(
        out,
        "  {:<16} {:>5}   {:<28}   {:<28}   {:<28}",
        "kind", "count", "writes resume", "new partition leader", "controller back"
    );
    for row in availability {
        let count = faults.get(&row.kind).copied().unwrap_or(row.count);
        let count = if row.kind == "all faults" { row.count } else { count };
        let _ = writeln!(
            out,
            "  {:<16} {:>5}   {}   {}   {}",
            row.kind,
            count,
            figures(row.writes),
            figures(row.leader),
            figures(row.controller)
        );
    }
    let missing: usize =
        availability.iter().filter(|r| r.kind != "all faults").map(|r| r.writes_missing).sum();
    if missing > 0 {
        let _ = writeln!(
            out,
            "  ({missing} faults: some partition they hit took no new write before the next fault)"
        );
    }
    let _ = writeln!(
        out,
        "\nwrites   attempted {}  acknowledged {}  failed {} ({} of those written anyway; a failure is indeterminate)",
        s.attempted, s.acknowledged, s.failed, s.failed_but_written
    );
    let _ = writeln!(
        out,
        "         lost {}  duplicated {}  divergent {}",
        report.count("lost"),
        report.count("duplicated"),
        report.count("divergent")
    );
    if s.resent_in_new_session > 0 {
        let _ = writeln!(
            out,
            "         re-sent by the client in a new producer session {} (not deduplicable by a \
             broker; librdkafka #4953):",
            s.resent_in_new_session
        );
        for line in report.resent.iter().take(LISTED_MAX) {
            let _ = writeln!(out, "           {line}");
        }
    }
    let _ = writeln!(
        out,
        "reads    {} by consumers in {} assignments; final log {} records in {} partitions",
        s.reads, s.read_sessions, s.final_records, s.partitions
    );
    let _ = writeln!(
        out,
        "compacted topic  {} writes acknowledged; {} keys in the final view",
        s.compacted_acknowledged, s.compacted_keys
    );
    let _ = writeln!(
        out,
        "transactions  {} committed, {} aborted, {} with an unknown end; {} read_committed reads",
        s.txn_committed, s.txn_aborted, s.txn_unknown, s.txn_reads
    );
    let _ = writeln!(
        out,
        "commits  {} acknowledged; committed offsets read {} times",
        s.commits, s.offset_reads
    );
    let _ = writeln!(
        out,
        "admin    {} acknowledged, {} failed (unknown outcome)",
        s.admin_ok, s.admin_failed
    );
    let _ = writeln!(out, "\nviolations");
    for class in CLASSES {
        let _ = writeln!(out, "  {:<28} {}", class, report.count(class));
    }
    for v in report.violations.iter().take(LISTED_MAX) {
        let _ = writeln!(out, "  ! {v}");
    }
    if report.violations.len() > LISTED_MAX {
        let _ = writeln!(out, "  ... and {} more", report.violations.len() - LISTED_MAX);
    }
    let verdict = if report.passed() { "PASS" } else { "FAIL" };
    let _ = writeln!(out, "\nresult: {verdict}");
    out
}
