//! The chaos runner: starts a cluster on a target, runs the workload, injects the seeded fault
//! schedule until the duration is spent, heals everything, reads every partition back, compares
//! the replicas, and checks the whole recorded history.
//!
//! One fault at a time: inject, hold, heal, wait (bounded) until the cluster is healthy again
//! (every workload partition led, ISR complete, a controller known), pause, next. A cluster that
//! does not recover within [`ChaosConfig::recovery_timeout`] is a violation, and the run goes on.
//!
//! The runner thread drives faults (blocking calls); two tasks on a small tokio runtime watch the
//! cluster: the observer records every leadership and controller change, the sampler reads the
//! group's committed offsets. Everything lands in the run directory (`runner.jsonl`, one
//! `<worker>.jsonl` per workload process, the nodes' logs), which `samsa-chaos check DIR` checks
//! again later.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use anyhow::Context;

use crate::availability::{self, KindAvailability};
use crate::checker::{self, Report};
use crate::history::{self, Event, Offsets, Recorder, now_ms};
use crate::probe::{ClusterView, Probe};
use crate::schedule::{FaultKind, Schedule, Step, Victim, seeded_order};
use crate::target::{ContainerTarget, ProcessTarget, Target};
use crate::workload::{Workload, WorkloadConfig};
use crate::{verify, watch};

/// The workload topic.
pub const TOPIC: &str = "chaos";
/// The workload's consumer group.
pub const GROUP: &str = "chaos-group";
/// The compacted topic (one partition) its keyed producer updates.
pub const COMPACTED_TOPIC: &str = "chaos-compacted";
/// The transactional topic, and its partitions (transactions span several).
pub const TXN_TOPIC: &str = "chaos-txn";
const TXN_PARTITIONS: i32 = 3;
/// Distinct keys the keyed producer cycles through: each key is rewritten every few seconds, so
/// the cleaner always has work.
const COMPACTED_KEYS: u32 = 50;
/// `segment.bytes` of the chaos topic: a few KiB of records per partition per second roll a
/// segment every few seconds.
const CHAOS_SEGMENT_BYTES: &str = "65536";
/// Workload warm-up before the first fault.
const WARM_UP: Duration = Duration::from_secs(3);

/// Broker settings of a chaos cluster: short sessions so faults are noticed within seconds, RF 3
/// with min.insync.replicas 2 everywhere, preferred-leader elections during the run, an
/// authorizer.
pub const CHAOS_SETTINGS: [&str; 13] = [
    "broker.session.timeout.ms=3000",
    "broker.heartbeat.interval.ms=500",
    "replica.lag.time.max.ms=5000",
    "default.replication.factor=3",
    "min.insync.replicas=2",
    "offsets.topic.replication.factor=3",
    "offsets.topic.num.partitions=10",
    "group.initial.rebalance.delay.ms=0",
    "leader.imbalance.check.interval.seconds=30",
    // The cleaner looks for work every second, so compaction runs under every fault kind.
    "log.cleaner.backoff.ms=1000",
    // Every request passes the StandardAuthorizer; the workload's PLAINTEXT clients and the
    // nodes (User:ANONYMOUS) are super users, and the admin worker's ACLs are state to check.
    "authorizer.class.name=org.apache.kafka.metadata.authorizer.StandardAuthorizer",
    "super.users=User:ANONYMOUS",
    "allow.everyone.if.no.acl.found=false",
];

/// Where the cluster runs.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TargetKind {
    Processes,
    Containers,
}

impl TargetKind {
    pub fn name(self) -> &'static str {
        match self {
            TargetKind::Processes => "processes",
            TargetKind::Containers => "containers",
        }
    }
}

#[derive(Debug, Clone)]
pub struct ChaosConfig {
    pub target: TargetKind,
    pub duration: Duration,
    /// Run exactly this many rounds (every enabled kind once per round) instead of `duration`.
    pub rounds: Option<usize>,
    pub seed: u64,
    pub faults: Vec<FaultKind>,
    pub out_dir: PathBuf,
    /// The samsa binary (processes target).
    pub samsa_bin: PathBuf,
    /// The image (containers target).
    pub image: String,
    pub python: PathBuf,
    pub worker_script: PathBuf,
    pub nodes: usize,
    pub partitions: i32,
    pub producers: usize,
    pub consumers: usize,
    /// Writes per second per producer.
    pub rate: u32,
    pub recovery_timeout: Duration,
}

/// What a run found.
pub struct Outcome {
    pub report: Report,
    pub availability: Vec<KindAvailability>,
    pub faults: BTreeMap<String, usize>,
    pub elapsed: Duration,
    pub target: String,
}

/// A checked history.
pub struct Checked {
    pub report: Report,
    pub availability: Vec<KindAvailability>,
    /// Faults injected, by kind.
    pub faults: BTreeMap<String, usize>,
}

/// Checks a stored run directory (again).
pub fn check_dir(dir: &Path) -> anyhow::Result<Checked> {
    let (events, unreadable) = history::load(dir)?;
    let mut report = checker::check(&events);
    if unreadable > 0 {
        report.violations.push(checker::Violation::Incomplete {
            detail: format!("{unreadable} history lines could not be read as events"),
        });
    }
    let recoveries = availability::recoveries(&events);
    let mut faults = BTreeMap::new();
    for r in &recoveries {
        *faults.entry(r.kind.clone()).or_insert(0) += 1;
    }
    Ok(Checked { report, availability: availability::by_kind(&recoveries), faults })
}

fn stamp(start: Instant) -> String {
    let s = start.elapsed().as_secs();
    format!("[{:02}:{:02}]", s / 60, s % 60)
}

/// The runner's state during a run.
struct Runner<'a> {
    cfg: &'a ChaosConfig,
    rt: tokio::runtime::Runtime,
    target: Box<dyn Target>,
    probe: Probe,
    rec: Recorder,
    start: Instant,
}

impl Runner<'_> {
    fn view(&mut self) -> ClusterView {
        self.rt.block_on(self.probe.view(TOPIC))
    }

    /// Polls until the cluster is healthy; Err(reason) after `limit`.
    fn wait_healthy(&mut self, limit: Duration) -> Result<Duration, String> {
        let started = Instant::now();
        let mut view = ClusterView::default();
        while started.elapsed() < limit {
            view = self.view();
            if view.healthy(self.cfg.partitions) && view.answered.len() == self.target.ids().len() {
                return Ok(started.elapsed());
            }
            std::thread::sleep(Duration::from_millis(200));
        }
        Err(format!(
            "after {limit:?}: {}; nodes answering {:?}",
            view.unhealthy_reason(self.cfg.partitions),
            view.answered
        ))
    }

    fn resolve(&self, view: &ClusterView, victim: Victim) -> Vec<i32> {
        let ids = self.target.ids();
        let any = |n: u64| ids[(n % ids.len() as u64) as usize];
        match victim {
            Victim::LeaderOf(n) => {
                let p = (n % self.cfg.partitions as u64) as i32;
                match view.partitions.get(&p).map(|v| v.leader).filter(|l| ids.contains(l)) {
                    Some(l) => vec![l],
                    None => vec![any(n)],
                }
            }
            Victim::Controller => match view.controller.map(|(c, _)| c).filter(|c| ids.contains(c))
            {
                Some(c) => vec![c],
                None => vec![any(0)],
            },
            Victim::Node(n) => vec![any(n)],
            Victim::All(n) => seeded_order(&ids, n),
            Victim::ReplicaOf(n) => {
                let partitions = self.cfg.partitions.max(1) as u64;
                let p = (n % partitions) as i32;
                match view.partitions.get(&p).map(|v| &v.replicas).filter(|r| !r.is_empty()) {
                    Some(r) => vec![r[((n / partitions) % r.len() as u64) as usize]],
                    None => vec![any(n)],
                }
            }
        }
    }

    fn record_fault(&self, n: u64, step: &Step, phase: &str, nodes: &[i32], detail: String) {
        self.rec.record(&Event::Fault {
            t: now_ms(),
            n,
            kind: step.kind.name().into(),
            phase: phase.into(),
            nodes: nodes.to_vec(),
            led: Offsets::new(),
            term: None,
            detail,
        });
    }

    /// Injects, holds and heals one fault, then waits for recovery.
    fn run_step(&mut self, n: u64, step: &Step) {
        let view = self.view();
        let victims = self.resolve(&view, step.victim);
        let led: Offsets = view
            .partitions
            .iter()
            .filter(|(_, v)| victims.contains(&v.leader))
            .map(|(p, v)| (p.to_string(), i64::from(v.epoch)))
            .collect();
        let term = view.controller.filter(|(c, _)| victims.contains(c)).map(|(_, t)| t);
        let mut roles = Vec::new();
        if !led.is_empty() {
            roles.push(format!(
                "leads {}",
                led.keys().map(|p| format!("p{p}")).collect::<Vec<_>>().join(",")
            ));
        }
        if term.is_some() {
            roles.push("active controller".to_string());
        }
        let detail = format!("nodes {victims:?} ({}), hold {:?}", roles.join(", "), step.hold);
        println!("{} #{n} {} {detail}", stamp(self.start), step.kind);
        // Recorded once the fault is in place (a container's kill takes a while, and writes
        // acknowledged meanwhile say nothing about recovery).
        let mut injected = Some(Event::Fault {
            t: 0,
            n,
            kind: step.kind.name().into(),
            phase: "inject".into(),
            nodes: victims.clone(),
            led,
            term,
            detail,
        });
        let result = self.act(step, &victims, &mut injected);
        self.took_effect(&mut injected);
        self.record_fault(n, step, "heal", &victims, String::new());
        let outcome = match result {
            Ok(()) => self.wait_healthy(self.cfg.recovery_timeout),
            Err(e) => Err(format!("the fault could not be carried out: {e:#}")),
        };
        match outcome {
            Ok(took) => self.record_fault(
                n,
                step,
                "recovered",
                &victims,
                format!("{} ms", took.as_millis()),
            ),
            Err(reason) => {
                println!("{} #{n} NOT RECOVERED: {reason}", stamp(self.start));
                self.record_fault(n, step, "not_recovered", &victims, reason);
                if let Err(e) = self.restore() {
                    println!("{} cannot restore the cluster: {e:#}", stamp(self.start));
                }
            }
        }
        for node in self.target.crashed() {
            println!("{} node {node} CRASHED; restarting it", stamp(self.start));
            self.rec.record(&Event::Crash { t: now_ms(), node });
            let _ = self.restore();
        }
        std::thread::sleep(step.gap);
    }

    /// Carries out one fault on its victims.
    fn act(
        &mut self,
        step: &Step,
        victims: &[i32],
        injected: &mut Option<Event>,
    ) -> anyhow::Result<()> {
        match step.kind {
            FaultKind::KillLeader | FaultKind::KillController | FaultKind::KillAll => {
                for v in victims {
                    self.target.kill(*v)?;
                }
                self.took_effect(injected);
                std::thread::sleep(step.hold);
                for v in victims {
                    self.target.start(*v)?;
                }
                for v in victims {
                    self.target.wait_ready(*v)?;
                }
            }
            FaultKind::Pause => {
                for v in victims {
                    self.target.pause(*v)?;
                }
                self.took_effect(injected);
                std::thread::sleep(step.hold);
                for v in victims {
                    self.target.resume(*v)?;
                }
            }
            FaultKind::Partition => {
                for v in victims {
                    self.target.isolate(*v)?;
                }
                self.took_effect(injected);
                std::thread::sleep(step.hold);
                for v in victims {
                    self.target.heal(*v)?;
                }
            }
            FaultKind::Reassign => {
                let Victim::ReplicaOf(n) = step.victim else {
                    anyhow::bail!("a reassign step names a replica, not {:?}", step.victim)
                };
                let p = (n % self.cfg.partitions.max(1) as u64) as i32;
                let dropped = *victims.first().context("no replica to move off")?;
                let replicas =
                    self.view().partitions.get(&p).map(|v| v.replicas.clone()).unwrap_or_default();
                anyhow::ensure!(
                    replicas.contains(&dropped),
                    "partition {p} has no replica on node {dropped}: {replicas:?}"
                );
                let kept: Vec<i32> = replicas.iter().copied().filter(|r| *r != dropped).collect();
                self.rt.block_on(self.probe.reassign(TOPIC, p, &kept))?;
                self.took_effect(injected);
                std::thread::sleep(step.hold);
                // Back onto the replica, at a seeded place in the list (the preferred leader
                // may change): it starts empty and copies the whole partition again.
                let mut back = kept;
                let at = ((n / 7) % (back.len() as u64 + 1)) as usize;
                back.insert(at, dropped);
                self.rt.block_on(self.probe.reassign(TOPIC, p, &back))?;
            }
            FaultKind::RollingRestart => {
                for v in victims {
                    self.target.stop(*v)?;
                    self.took_effect(injected);
                    self.target.start(*v)?;
                    self.target.wait_ready(*v)?;
                    // As an operator does: the next node only once nothing is under-replicated.
                    self.wait_healthy(self.cfg.recovery_timeout).map_err(anyhow::Error::msg)?;
                }
            }
        }
        Ok(())
    }

    /// Records the pending injection event, stamped now (once).
    fn took_effect(&self, injected: &mut Option<Event>) {
        if let Some(mut e) = injected.take() {
            if let Event::Fault { t, .. } = &mut e {
                *t = now_ms();
            }
            self.rec.record(&e);
        }
    }

    /// Brings every node back: resumed, healed, started. Errors of nodes already fine are
    /// ignored (resuming a running process, healing an intact network).
    fn restore(&mut self) -> anyhow::Result<()> {
        for id in self.target.ids() {
            let _ = self.target.resume(id);
            if self.target.can_partition() {
                let _ = self.target.heal(id);
            }
        }
        let stopped: Vec<i32> =
            self.target.ids().into_iter().filter(|id| !self.target.is_running(*id)).collect();
        for id in &stopped {
            self.target.start(*id)?;
        }
        for id in &stopped {
            self.target.wait_ready(*id)?;
        }
        Ok(())
    }
}

fn start_target(cfg: &ChaosConfig) -> anyhow::Result<Box<dyn Target>> {
    let partitions_wanted = cfg.faults.contains(&FaultKind::Partition);
    Ok(match cfg.target {
        TargetKind::Processes => Box::new(ProcessTarget::start(
            &cfg.samsa_bin,
            cfg.nodes,
            &CHAOS_SETTINGS,
            partitions_wanted,
        )?),
        TargetKind::Containers => {
            Box::new(ContainerTarget::start(&cfg.image, cfg.nodes, &CHAOS_SETTINGS)?)
        }
    })
}

/// Removes what an earlier run left in `dir` (its histories would be checked with this one's).
fn clear_earlier_run(dir: &Path) -> anyhow::Result<()> {
    for entry in std::fs::read_dir(dir)?.flatten() {
        let path = entry.path();
        let ours = path.extension().is_some_and(|x| x == "jsonl" || x == "log");
        if ours {
            std::fs::remove_file(&path)?;
        } else if path.file_name().is_some_and(|n| n == "replicas") {
            std::fs::remove_dir_all(&path)?;
        }
    }
    Ok(())
}

/// Runs the whole chaos run described by `cfg`.
pub fn run(cfg: &ChaosConfig, interrupted: Arc<AtomicBool>) -> anyhow::Result<Outcome> {
    std::fs::create_dir_all(&cfg.out_dir)
        .with_context(|| format!("cannot create {}", cfg.out_dir.display()))?;
    clear_earlier_run(&cfg.out_dir)?;
    let rec = Recorder::create(&cfg.out_dir.join("runner.jsonl"))?;
    let start = Instant::now();
    let mut runner = Runner::start(cfg, rec.clone(), start)?;
    let target_name = runner.target.describe();
    let watchers = Watchers::start(&runner, cfg);
    let mut workload = start_workload(cfg, &runner.target.bootstrap(), start)?;
    std::thread::sleep(WARM_UP);
    let counts = inject_faults(&mut runner, &mut workload, cfg, &interrupted);
    println!(
        "{} chaos: faults done ({}); stopping the producers",
        stamp(start),
        summary_counts(&counts)
    );
    wind_down(&mut runner, &mut workload, cfg);
    watchers.stop(&runner.rt);

    println!("{} chaos: reading every partition back and comparing replicas", stamp(start));
    verify::final_checks(
        &runner.rt,
        &mut runner.probe,
        runner.target.as_ref(),
        &rec,
        &cfg.out_dir,
        (TOPIC, cfg.partitions),
    )?;
    verify::final_compacted_checks(
        &runner.rt,
        &mut runner.probe,
        runner.target.as_ref(),
        &rec,
        &cfg.out_dir,
        COMPACTED_TOPIC,
    )?;
    verify::final_txn_checks(
        &runner.rt,
        &mut runner.probe,
        runner.target.as_ref(),
        &rec,
        &cfg.out_dir,
        (TXN_TOPIC, TXN_PARTITIONS),
    )?;
    rec.flush();
    runner.target.save_logs(&cfg.out_dir);
    drop(runner);

    let checked = check_dir(&cfg.out_dir)?;
    Ok(Outcome {
        report: checked.report,
        availability: checked.availability,
        faults: counts,
        elapsed: start.elapsed(),
        target: target_name,
    })
}

impl<'a> Runner<'a> {
    /// Starts the cluster, creates the workload topic and waits until every partition is healthy.
    fn start(cfg: &'a ChaosConfig, rec: Recorder, start: Instant) -> anyhow::Result<Self> {
        let rt =
            tokio::runtime::Builder::new_multi_thread().worker_threads(2).enable_all().build()?;
        println!("chaos: starting {} nodes ({})", cfg.nodes, cfg.target.name());
        let target = start_target(cfg)?;
        println!(
            "{} chaos: {} up; bootstrap {}",
            stamp(start),
            target.describe(),
            target.bootstrap()
        );
        let probe = Probe::new(kafka_nodes(target.as_ref()));
        let mut runner = Runner { cfg, rt, target, probe, rec, start };
        runner.rt.block_on(runner.probe.create_topic(
            TOPIC,
            cfg.partitions,
            3,
            // Small segments: the workload rolls segments (and recovers many of them) under
            // every fault kind, not just appends to one.
            &[("min.insync.replicas", "2"), ("segment.bytes", CHAOS_SEGMENT_BYTES)],
        ))?;
        runner.rt.block_on(runner.probe.create_topic(
            COMPACTED_TOPIC,
            1,
            3,
            &[
                ("cleanup.policy", "compact"),
                ("min.insync.replicas", "2"),
                ("segment.bytes", CHAOS_SEGMENT_BYTES),
                ("min.cleanable.dirty.ratio", "0.01"),
            ],
        ))?;
        runner.rt.block_on(runner.probe.create_topic(
            TXN_TOPIC,
            TXN_PARTITIONS,
            3,
            &[("min.insync.replicas", "2"), ("segment.bytes", CHAOS_SEGMENT_BYTES)],
        ))?;
        runner
            .wait_healthy(cfg.recovery_timeout)
            .map_err(anyhow::Error::msg)
            .context("the new cluster never became healthy")?;
        Ok(runner)
    }
}

/// Every node's id and Kafka address.
fn kafka_nodes(target: &dyn Target) -> Vec<(i32, String)> {
    target.ids().into_iter().filter_map(|id| Some((id, target.kafka_addr(id).ok()?))).collect()
}

/// The observer (leaders, controller) and the committed-offsets sampler, running beside the
/// faults.
struct Watchers {
    stop: Arc<AtomicBool>,
    observer: tokio::task::JoinHandle<()>,
    sampler: tokio::task::JoinHandle<()>,
}

impl Watchers {
    fn start(runner: &Runner<'_>, cfg: &ChaosConfig) -> Self {
        let nodes = kafka_nodes(runner.target.as_ref());
        let stop = Arc::new(AtomicBool::new(false));
        let controller: watch::SharedController = Arc::new(std::sync::atomic::AtomicI32::new(-1));
        let observer = runner.rt.spawn(watch::observe(
            Probe::new(nodes.clone()),
            runner.rec.clone(),
            TOPIC.to_string(),
            controller.clone(),
            stop.clone(),
        ));
        let sampler = runner.rt.spawn(watch::sample_offsets(
            Probe::new(nodes),
            runner.rec.clone(),
            (GROUP.to_string(), TOPIC.to_string(), cfg.partitions),
            controller,
            stop.clone(),
        ));
        Watchers { stop, observer, sampler }
    }

    /// Takes one last committed-offsets reading, then stops both.
    fn stop(self, rt: &tokio::runtime::Runtime) {
        std::thread::sleep(watch::SAMPLE_EVERY * 2);
        self.stop.store(true, Ordering::Relaxed);
        let _ = rt.block_on(self.observer);
        let _ = rt.block_on(self.sampler);
    }
}

fn start_workload(cfg: &ChaosConfig, bootstrap: &str, start: Instant) -> anyhow::Result<Workload> {
    let wcfg = WorkloadConfig {
        python: cfg.python.clone(),
        script: cfg.worker_script.clone(),
        bootstrap: bootstrap.to_string(),
        topic: TOPIC.into(),
        partitions: cfg.partitions,
        group: GROUP.into(),
        producers: cfg.producers,
        consumers: cfg.consumers,
        rate: cfg.rate,
        admin_prefix: "chaos-admin".into(),
        compacted: Some((COMPACTED_TOPIC.into(), COMPACTED_KEYS)),
        transactional: Some((TXN_TOPIC.into(), TXN_PARTITIONS)),
    };
    let workload = Workload::start(&wcfg, &cfg.out_dir, true)?;
    println!(
        "{} chaos: workload started: {} producers, {} consumers, 1 admin client",
        stamp(start),
        cfg.producers,
        cfg.consumers
    );
    Ok(workload)
}

/// Runs the seeded schedule until the duration or round count is reached (or Ctrl-C), noting
/// workload processes that die. Returns the faults injected, by kind.
fn inject_faults(
    runner: &mut Runner<'_>,
    workload: &mut Workload,
    cfg: &ChaosConfig,
    interrupted: &AtomicBool,
) -> BTreeMap<String, usize> {
    let deadline = Instant::now() + cfg.duration;
    let mut counts: BTreeMap<String, usize> = BTreeMap::new();
    let kinds: std::collections::BTreeSet<FaultKind> = cfg.faults.iter().copied().collect();
    let steps_max = cfg.rounds.map(|r| r * kinds.len());
    for (n, step) in Schedule::new(cfg.seed, &cfg.faults).enumerate() {
        let done = match steps_max {
            Some(max) => n >= max,
            None => Instant::now() >= deadline,
        };
        if done || interrupted.load(Ordering::Relaxed) {
            break;
        }
        runner.run_step(n as u64, &step);
        *counts.entry(step.kind.name().to_string()).or_insert(0) += 1;
        for dead in workload.dead() {
            let detail = format!("workload process {dead} exited during the run");
            println!("{} {detail}", stamp(runner.start));
            runner.rec.record(&Event::Incomplete { t: now_ms(), detail });
        }
    }
    counts
}

/// Stops the producers, heals the cluster, waits for it to be healthy, then stops the rest of
/// the workload.
fn wind_down(runner: &mut Runner<'_>, workload: &mut Workload, cfg: &ChaosConfig) {
    let (rec, start) = (runner.rec.clone(), runner.start);
    for name in workload.stop_producers() {
        rec.record(&Event::Incomplete {
            t: now_ms(),
            detail: format!("producer {name} did not stop cleanly"),
        });
    }
    if let Err(e) = runner.restore() {
        println!("{} chaos: cannot restore the cluster: {e:#}", stamp(start));
    }
    if let Err(reason) = runner.wait_healthy(cfg.recovery_timeout) {
        rec.record(&Event::Incomplete {
            t: now_ms(),
            detail: format!("unhealthy at the end: {reason}"),
        });
    }
    for name in workload.stop_rest() {
        // Their histories are complete line by line; only a hanging close was cut short.
        println!(
            "{} chaos: {name} did not close within {:?}; killed",
            stamp(start),
            crate::workload::OTHER_STOP_TIMEOUT
        );
    }
}

fn summary_counts(counts: &BTreeMap<String, usize>) -> String {
    counts.iter().map(|(k, n)| format!("{n} {k}")).collect::<Vec<_>>().join(", ")
}
