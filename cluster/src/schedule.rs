//! The fault schedule: a pure function of the seed and the enabled fault kinds. Faults come in
//! rounds; each round holds every enabled kind once, in a seeded order, so a run of N rounds has
//! exactly N faults of each kind. Victims are chosen by role (the leader of a partition, the
//! active controller, any node) and resolved against the live cluster when the step runs; the
//! seeded part is the role, the hold time and the pause after.
//!
//! The generator is SplitMix64, written out here so a seed means the same schedule on every
//! machine and every version of every dependency.

use std::fmt;
use std::str::FromStr;
use std::time::Duration;

/// The kinds of fault, by the names `--faults` takes.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum FaultKind {
    /// SIGKILL the leader of a workload partition, restart it after the hold.
    KillLeader,
    /// SIGKILL the active controller (the raft leader), restart it after the hold.
    KillController,
    /// SIGSTOP (or freeze) a node for the hold, then SIGCONT.
    Pause,
    /// Cut a node off from its peers for the hold, then heal.
    Partition,
    /// SIGTERM and restart every node in turn, each back in service before the next.
    RollingRestart,
    /// SIGKILL every node at once, restart them all after the hold.
    KillAll,
    /// Reassign a workload partition off one of its replicas (KIP-455), then, after the hold,
    /// back onto it: the replica is deleted and copied again from scratch while the workload
    /// writes, and the new preferred leader may differ.
    Reassign,
}

impl FaultKind {
    pub const ALL: [FaultKind; 7] = [
        FaultKind::KillLeader,
        FaultKind::KillController,
        FaultKind::Pause,
        FaultKind::Partition,
        FaultKind::RollingRestart,
        FaultKind::KillAll,
        FaultKind::Reassign,
    ];

    pub fn name(self) -> &'static str {
        match self {
            FaultKind::KillLeader => "kill-leader",
            FaultKind::KillController => "kill-controller",
            FaultKind::Pause => "pause",
            FaultKind::Partition => "partition",
            FaultKind::RollingRestart => "rolling-restart",
            FaultKind::KillAll => "kill-all",
            FaultKind::Reassign => "reassign",
        }
    }

    /// The range the hold time is drawn from, in milliseconds.
    fn hold_ms(self) -> (u64, u64) {
        match self {
            // Short and long outages: a restart before and after the broker session expires.
            FaultKind::KillLeader | FaultKind::KillController => (0, 5_000),
            // Up to about twice the chaos profile's broker session (3 s): a paused leader is
            // fenced while frozen, and wakes up believing it still leads.
            FaultKind::Pause => (500, 7_000),
            FaultKind::Partition => (1_000, 10_000),
            FaultKind::RollingRestart => (0, 0),
            FaultKind::KillAll => (0, 3_000),
            // Long enough for the partition to run on two replicas for a while.
            FaultKind::Reassign => (1_000, 8_000),
        }
    }
}

impl fmt::Display for FaultKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

impl FromStr for FaultKind {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        FaultKind::ALL.into_iter().find(|k| k.name() == s).ok_or_else(|| {
            let names: Vec<&str> = FaultKind::ALL.iter().map(|k| k.name()).collect();
            format!("unknown fault '{s}': use {}", names.join(", "))
        })
    }
}

/// Which node a step hurts, resolved when it runs.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Victim {
    /// The leader of workload partition `n % partitions`.
    LeaderOf(u64),
    /// The active controller.
    Controller,
    /// Node number `n % nodes` in id order.
    Node(u64),
    /// Every node (kill-all; rolling restarts go through all nodes in the order `n` seeds).
    All(u64),
    /// A replica of workload partition `n % partitions`: the `(n / partitions) % replicas`-th
    /// in its replica list (reassign).
    ReplicaOf(u64),
}

/// One fault of the schedule.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Step {
    pub kind: FaultKind,
    pub victim: Victim,
    /// How long the fault lasts before it is healed (node down, frozen or cut off).
    pub hold: Duration,
    /// How long the runner waits after the cluster recovered, before the next fault.
    pub gap: Duration,
}

/// SplitMix64 (Steele, Lea, Flood 2014): tiny, fast and the same everywhere.
#[derive(Debug, Clone)]
pub struct SplitMix64(u64);

impl SplitMix64 {
    pub fn new(seed: u64) -> Self {
        SplitMix64(seed)
    }

    pub fn next_u64(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }

    /// Uniform in lo..=hi.
    pub fn between(&mut self, lo: u64, hi: u64) -> u64 {
        if hi <= lo {
            return lo;
        }
        lo + self.next_u64() % (hi - lo + 1)
    }
}

/// Pause after recovery before the next fault, in milliseconds.
const GAP_MS: (u64, u64) = (500, 3_000);

/// The endless stream of steps for a seed and a set of kinds.
#[derive(Debug, Clone)]
pub struct Schedule {
    rng: SplitMix64,
    kinds: Vec<FaultKind>,
    round: Vec<FaultKind>,
}

impl Schedule {
    /// `kinds` must not be empty; duplicates are ignored.
    pub fn new(seed: u64, kinds: &[FaultKind]) -> Self {
        let mut kinds = kinds.to_vec();
        kinds.sort();
        kinds.dedup();
        assert!(!kinds.is_empty(), "a schedule needs at least one fault kind");
        Schedule { rng: SplitMix64::new(seed), kinds, round: Vec::new() }
    }

    fn victim(&mut self, kind: FaultKind) -> Victim {
        let n = self.rng.next_u64();
        match kind {
            FaultKind::KillLeader => Victim::LeaderOf(n),
            FaultKind::KillController => Victim::Controller,
            FaultKind::RollingRestart | FaultKind::KillAll => Victim::All(n),
            FaultKind::Reassign => Victim::ReplicaOf(n),
            FaultKind::Pause | FaultKind::Partition => match self.rng.next_u64() % 3 {
                0 => Victim::LeaderOf(n),
                1 => Victim::Controller,
                _ => Victim::Node(n),
            },
        }
    }
}

impl Iterator for Schedule {
    type Item = Step;

    fn next(&mut self) -> Option<Step> {
        if self.round.is_empty() {
            // A new round: every kind once, Fisher-Yates shuffled.
            self.round = self.kinds.clone();
            for i in (1..self.round.len()).rev() {
                let j = (self.rng.next_u64() % (i as u64 + 1)) as usize;
                self.round.swap(i, j);
            }
        }
        let kind = self.round.pop()?;
        let victim = self.victim(kind);
        let (lo, hi) = kind.hold_ms();
        let hold = Duration::from_millis(self.rng.between(lo, hi));
        let gap = Duration::from_millis(self.rng.between(GAP_MS.0, GAP_MS.1));
        Some(Step { kind, victim, hold, gap })
    }
}

/// The nodes `Victim::All(n)` goes through, in order: a seeded permutation of `ids`.
pub fn seeded_order(ids: &[i32], n: u64) -> Vec<i32> {
    let mut rng = SplitMix64::new(n);
    let mut out = ids.to_vec();
    for i in (1..out.len()).rev() {
        let j = (rng.next_u64() % (i as u64 + 1)) as usize;
        out.swap(i, j);
    }
    out
}

/// Parses `--duration` values: `90s`, `30m`, `1h30m`, `500ms`.
pub fn parse_duration(s: &str) -> Result<Duration, String> {
    let mut total = Duration::ZERO;
    let mut digits = String::new();
    let mut chars = s.trim().chars().peekable();
    let bad = || format!("cannot read duration '{s}': use e.g. 90s, 30m, 1h30m or 500ms");
    if s.trim().is_empty() {
        return Err(bad());
    }
    while let Some(c) = chars.next() {
        if c.is_ascii_digit() {
            digits.push(c);
            continue;
        }
        let n: u64 = digits.parse().map_err(|_| bad())?;
        digits.clear();
        let unit = match (c, chars.peek()) {
            ('m', Some('s')) => {
                chars.next();
                Duration::from_millis(1)
            }
            ('h', _) => Duration::from_secs(3600),
            ('m', _) => Duration::from_secs(60),
            ('s', _) => Duration::from_secs(1),
            _ => return Err(bad()),
        };
        total += unit * n as u32;
    }
    if !digits.is_empty() {
        return Err(bad());
    }
    Ok(total)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_seed_always_gives_the_same_schedule() {
        let a: Vec<Step> = Schedule::new(42, &FaultKind::ALL).take(50).collect();
        let b: Vec<Step> = Schedule::new(42, &FaultKind::ALL).take(50).collect();
        let c: Vec<Step> = Schedule::new(43, &FaultKind::ALL).take(50).collect();
        assert_eq!(a, b);
        assert_ne!(a, c);
    }

    #[test]
    fn every_round_has_each_kind_exactly_once() {
        let kinds = [FaultKind::Pause, FaultKind::KillAll, FaultKind::KillLeader];
        let steps: Vec<Step> = Schedule::new(7, &kinds).take(30).collect();
        for round in steps.chunks(3) {
            let mut got: Vec<FaultKind> = round.iter().map(|s| s.kind).collect();
            got.sort();
            assert_eq!(got, vec![FaultKind::KillLeader, FaultKind::Pause, FaultKind::KillAll]);
        }
    }

    #[test]
    fn holds_stay_within_each_kinds_range() {
        for s in Schedule::new(1, &FaultKind::ALL).take(600) {
            let (lo, hi) = s.kind.hold_ms();
            let ms = s.hold.as_millis() as u64;
            assert!((lo..=hi).contains(&ms), "{s:?}");
            assert!(s.gap >= Duration::from_millis(GAP_MS.0));
        }
    }

    #[test]
    fn fault_names_round_trip_and_unknown_ones_are_refused() {
        for k in FaultKind::ALL {
            assert_eq!(k.name().parse::<FaultKind>(), Ok(k));
        }
        assert!(
            "kill-everything".parse::<FaultKind>().expect_err("unknown").contains("kill-leader")
        );
    }

    #[test]
    fn durations_read_like_the_usage_says() {
        assert_eq!(parse_duration("90s"), Ok(Duration::from_secs(90)));
        assert_eq!(parse_duration("30m"), Ok(Duration::from_secs(1800)));
        assert_eq!(parse_duration("1h30m"), Ok(Duration::from_secs(5400)));
        assert_eq!(parse_duration("500ms"), Ok(Duration::from_millis(500)));
        assert!(parse_duration("90").is_err());
        assert!(parse_duration("soon").is_err());
        assert!(parse_duration("").is_err());
    }

    #[test]
    fn seeded_orders_are_permutations() {
        let mut o = seeded_order(&[1, 2, 3], 99);
        o.sort();
        assert_eq!(o, vec![1, 2, 3]);
    }
}
