//! The workload: processes of `workload/chaos_worker.py` (confluent-kafka, i.e. librdkafka), each
//! writing its own history file into the run directory. Idempotent acks=all producers write
//! unique values round-robin over the workload partitions; a keyed producer rewrites a fixed
//! set of keys in a compacted topic; transactional producers commit and abort transactions
//! over a transactional topic that a read_committed reader follows; consumers in one group read
//! and commit; one admin client creates, grows and deletes topics throughout.
//!
//! Workers are stopped with SIGTERM (a producer then waits for its outstanding writes) and
//! SIGKILLed if they outlive [`PRODUCER_STOP_TIMEOUT`] (producers) or [`OTHER_STOP_TIMEOUT`].

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use anyhow::Context;

/// A stopping producer waits up to 60 s for outstanding writes; allow a little more.
pub const PRODUCER_STOP_TIMEOUT: Duration = Duration::from_secs(75);
/// Consumers and the admin client write their last event before closing; a close that hangs
/// (waiting for a coordinator) is cut short after this.
pub const OTHER_STOP_TIMEOUT: Duration = Duration::from_secs(20);

/// How to start workers.
#[derive(Debug, Clone)]
pub struct WorkloadConfig {
    /// A Python with confluent-kafka (scripts/test-setup.sh makes `.venv`).
    pub python: PathBuf,
    pub script: PathBuf,
    pub bootstrap: String,
    pub topic: String,
    pub partitions: i32,
    pub group: String,
    pub producers: usize,
    pub consumers: usize,
    /// Writes per second per producer.
    pub rate: u32,
    /// Prefix of the admin worker's topics.
    pub admin_prefix: String,
    /// A compacted topic (one partition) and the number of keys a keyed producer cycles
    /// through in it, at `rate`.
    pub compacted: Option<(String, u32)>,
    /// A transactional topic and its partition count: transactional producers write to it
    /// (at [`TXN_RATE`] transactions per second each) and a read_committed reader reads it.
    pub transactional: Option<(String, i32)>,
}

/// Transactional producers, and the transactions per second each one runs.
pub const TXN_PRODUCERS: usize = 2;
pub const TXN_RATE: u32 = 20;

/// One running worker.
pub struct Worker {
    pub name: String,
    child: Option<Child>,
    /// Its death was already reported.
    reported: bool,
}

impl Worker {
    fn spawn(
        cfg: &WorkloadConfig,
        dir: &Path,
        role: &str,
        name: &str,
        args: &[String],
    ) -> anyhow::Result<Worker> {
        let out = dir.join(format!("{name}.jsonl"));
        let log = std::fs::File::create(dir.join(format!("{name}.log")))?;
        let child = Command::new(&cfg.python)
            .arg(&cfg.script)
            .arg(role)
            .args(["--bootstrap", &cfg.bootstrap, "--name", name])
            .arg("--out")
            .arg(&out)
            .args(args)
            .stdin(Stdio::null())
            .stdout(log.try_clone()?)
            .stderr(log)
            .spawn()
            .with_context(|| {
                format!("cannot run {} (make it with scripts/test-setup.sh)", cfg.python.display())
            })?;
        Ok(Worker { name: name.to_string(), child: Some(child), reported: false })
    }

    /// Whether the worker died on its own (it should run until told to stop); reported once.
    pub fn exited(&mut self) -> Option<std::process::ExitStatus> {
        if self.reported {
            return None;
        }
        let status = self.child.as_mut().and_then(|c| c.try_wait().ok().flatten())?;
        self.reported = true;
        Some(status)
    }

    fn signal(&self, sig: &str) {
        if let Some(c) = &self.child {
            let _ = Command::new("kill").args([sig, &c.id().to_string()]).status();
        }
    }

    /// Waits up to `limit` for the exit after a SIGTERM; Ok(false) if it had to be killed or
    /// did not exit cleanly. (A second SIGTERM could land while Python shuts down, after its
    /// handler is gone, and kill it mid-flush: it is sent once, by the caller.)
    fn wait_exit(&mut self, limit: Duration) -> anyhow::Result<bool> {
        let Some(mut child) = self.child.take() else { return Ok(true) };
        let deadline = Instant::now() + limit;
        loop {
            if let Some(status) = child.try_wait()? {
                return Ok(status.success());
            }
            if Instant::now() > deadline {
                let _ = child.kill();
                let _ = child.wait();
                return Ok(false);
            }
            std::thread::sleep(Duration::from_millis(50));
        }
    }
}

impl Drop for Worker {
    fn drop(&mut self) {
        if let Some(mut c) = self.child.take() {
            let _ = c.kill();
            let _ = c.wait();
        }
    }
}

/// Every worker of a run.
pub struct Workload {
    pub producers: Vec<Worker>,
    pub consumers: Vec<Worker>,
    pub admin: Option<Worker>,
}

impl Workload {
    /// Starts the consumers and the admin client first (so the group forms while the producers
    /// begin), then the producers.
    pub fn start(cfg: &WorkloadConfig, dir: &Path, with_admin: bool) -> anyhow::Result<Workload> {
        let mut w = Workload { producers: Vec::new(), consumers: Vec::new(), admin: None };
        for i in 1..=cfg.consumers {
            let args =
                vec!["--topic".into(), cfg.topic.clone(), "--group".into(), cfg.group.clone()];
            w.consumers.push(Worker::spawn(cfg, dir, "consumer", &format!("c{i}"), &args)?);
        }
        if with_admin {
            let args = vec!["--prefix".into(), cfg.admin_prefix.clone()];
            w.admin = Some(Worker::spawn(cfg, dir, "admin", "admin", &args)?);
        }
        for i in 1..=cfg.producers {
            let args = vec![
                "--topic".into(),
                cfg.topic.clone(),
                "--partitions".into(),
                cfg.partitions.to_string(),
                "--rate".into(),
                cfg.rate.to_string(),
            ];
            w.producers.push(Worker::spawn(cfg, dir, "producer", &format!("p{i}"), &args)?);
        }
        if let Some((topic, keys)) = &cfg.compacted {
            let args = vec![
                "--topic".into(),
                topic.clone(),
                "--partitions".into(),
                "1".into(),
                "--rate".into(),
                cfg.rate.to_string(),
                "--keys".into(),
                keys.to_string(),
            ];
            w.producers.push(Worker::spawn(cfg, dir, "producer", "k1", &args)?);
        }
        if let Some((topic, partitions)) = &cfg.transactional {
            let args = |rate: u32| {
                vec![
                    "--topic".to_string(),
                    topic.clone(),
                    "--partitions".into(),
                    partitions.to_string(),
                    "--rate".into(),
                    rate.to_string(),
                ]
            };
            w.consumers.push(Worker::spawn(cfg, dir, "txn-reader", "r1", &args(0))?);
            for i in 1..=TXN_PRODUCERS {
                w.producers.push(Worker::spawn(
                    cfg,
                    dir,
                    "txn",
                    &format!("x{i}"),
                    &args(TXN_RATE),
                )?);
            }
        }
        Ok(w)
    }

    /// Workers that exited on their own, by name.
    pub fn dead(&mut self) -> Vec<String> {
        self.producers
            .iter_mut()
            .chain(self.consumers.iter_mut())
            .chain(self.admin.iter_mut())
            .filter_map(|w| w.exited().map(|s| format!("{} ({s})", w.name)))
            .collect()
    }

    /// Stops the producers (each waits for its outstanding writes); returns those that had to
    /// be killed.
    pub fn stop_producers(&mut self) -> Vec<String> {
        stop_all(&mut self.producers, PRODUCER_STOP_TIMEOUT)
    }

    /// Stops the consumers and the admin client; returns those that had to be killed.
    pub fn stop_rest(&mut self) -> Vec<String> {
        let mut out = stop_all(&mut self.consumers, OTHER_STOP_TIMEOUT);
        if let Some(a) = self.admin.as_mut() {
            out.extend(stop_all(std::slice::from_mut(a), OTHER_STOP_TIMEOUT));
        }
        out
    }
}

fn stop_all(workers: &mut [Worker], limit: Duration) -> Vec<String> {
    // Signal all first, so they wind down in parallel.
    for w in workers.iter() {
        w.signal("-TERM");
    }
    workers
        .iter_mut()
        .filter_map(|w| match w.wait_exit(limit) {
            Ok(true) => None,
            _ => Some(w.name.clone()),
        })
        .collect()
}
