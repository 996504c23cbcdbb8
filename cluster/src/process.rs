//! samsa nodes as real local processes: `samsa dev` single nodes, and N-node clusters of
//! `samsa server` (voters and broker-only observers) on loopback, or each node in its own network
//! namespace (see [`crate::netns`]) so that partitions can cut it off for real. Faults: SIGKILL,
//! SIGTERM, SIGSTOP/SIGCONT and restarts.
//!
//! Every wait is bounded: a node that is not ready within [`READY_TIMEOUT`] is an error that
//! carries the tail of its log.

use std::collections::BTreeMap;
use std::fs;
use std::io::{BufRead, BufReader};
use std::net::TcpListener;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus, Stdio};
use std::sync::Arc;
use std::sync::mpsc::{Receiver, RecvTimeoutError};
use std::time::{Duration, Instant};

use anyhow::{Context, bail};

use crate::netns::Fabric;

/// How long a node may take to print its ready line (a cluster node waits for a quorum).
pub const READY_TIMEOUT: Duration = Duration::from_secs(60);
/// Starts of a node whose port was taken for a moment (see [`Node::wait_ready`]).
const BIND_RETRIES: u32 = 3;
/// How long a graceful stop may take before it counts as a failure.
pub const STOP_TIMEOUT: Duration = Duration::from_secs(30);

/// Test ports come from below Linux's ephemeral range (32768+), so an outgoing connection of a
/// test running in parallel can never take a port a node is about to bind.
const TEST_PORTS: std::ops::Range<u32> = 20_000..32_000;

/// A free TCP port on loopback for a test node: a pseudo-random pick (seeded by pid and a
/// counter, so parallel test processes diverge), checked by binding it.
pub fn free_port() -> anyhow::Result<u16> {
    use std::sync::atomic::{AtomicU32, Ordering};
    static NEXT: AtomicU32 = AtomicU32::new(0);
    let span = TEST_PORTS.end - TEST_PORTS.start;
    for _ in 0..1000 {
        let n = NEXT.fetch_add(1, Ordering::Relaxed);
        let mixed =
            (std::process::id().wrapping_mul(2_654_435_761) ^ n.wrapping_mul(40_503)) % span;
        let port = (TEST_PORTS.start + mixed) as u16;
        if TcpListener::bind(("127.0.0.1", port)).is_ok() {
            return Ok(port);
        }
    }
    bail!("no free test port in {TEST_PORTS:?}")
}

/// One samsa node running as a child process.
pub struct Node {
    /// What is executed: the samsa binary, or `ip` when the node runs in a network namespace.
    program: PathBuf,
    args: Vec<String>,
    log_path: PathBuf,
    /// host:port of the node's Kafka listener, as clients reach it.
    kafka_addr: String,
    /// Extra environment for the process (e.g. `SAMSA_LOG`).
    env: Vec<(String, String)>,
    child: Option<Child>,
    ready: Option<Receiver<bool>>,
    /// Time from spawn to the ready line, for the last start.
    pub last_startup: Duration,
    spawned_at: Instant,
}

impl Node {
    /// Starts `samsa dev` with `data_dir` on `port` and waits until it is ready.
    pub fn start(binary: &Path, data_dir: &Path, port: u16) -> anyhow::Result<Node> {
        fs::create_dir_all(data_dir)?;
        let args = vec![
            "dev".to_string(),
            "--port".into(),
            port.to_string(),
            "--data-dir".into(),
            data_dir.display().to_string(),
        ];
        let log = data_dir.with_extension("log");
        let mut node = Node::new(binary, args, log, format!("127.0.0.1:{port}"));
        node.spawn()?;
        node.wait_ready()?;
        Ok(node)
    }

    fn new(program: &Path, args: Vec<String>, log_path: PathBuf, kafka_addr: String) -> Node {
        Node {
            program: program.to_path_buf(),
            args,
            log_path,
            kafka_addr,
            env: Vec::new(),
            child: None,
            ready: None,
            last_startup: Duration::ZERO,
            spawned_at: Instant::now(),
        }
    }

    /// Starts the process without waiting for it to be ready.
    pub fn spawn(&mut self) -> anyhow::Result<()> {
        let log = fs::OpenOptions::new().create(true).append(true).open(&self.log_path)?;
        self.spawned_at = Instant::now();
        let mut child = Command::new(&self.program)
            .args(&self.args)
            .envs(self.env.iter().map(|(k, v)| (k, v)))
            .stdout(Stdio::piped())
            .stderr(Stdio::from(log))
            .spawn()
            .with_context(|| format!("cannot run {}", self.program.display()))?;
        let stdout = child.stdout.take().context("no stdout")?;
        let (tx, rx) = std::sync::mpsc::channel();
        std::thread::spawn(move || {
            let mut lines = BufReader::new(stdout).lines();
            let ready = lines.by_ref().map_while(Result::ok).any(|l| l.contains("ready"));
            let _ = tx.send(ready);
            for _ in lines {} // keep draining so the child never blocks on a full pipe
        });
        self.child = Some(child);
        self.ready = Some(rx);
        Ok(())
    }

    /// Waits (bounded) for the ready line. A node that could not bind its ports because
    /// another test process held one of them for a moment (`free_port` checks a candidate by
    /// binding it) is started again, up to [`BIND_RETRIES`] times.
    pub fn wait_ready(&mut self) -> anyhow::Result<()> {
        for attempt in 1..=BIND_RETRIES {
            match self.wait_ready_once() {
                Err(e)
                    if attempt < BIND_RETRIES
                        && self.child.is_none()
                        && e.to_string().contains("Address already in use") =>
                {
                    std::thread::sleep(Duration::from_millis(200));
                    self.spawn()?;
                }
                other => return other,
            }
        }
        bail!("unreachable: the last attempt returns")
    }

    fn wait_ready_once(&mut self) -> anyhow::Result<()> {
        let rx = self.ready.take().context("node was not spawned")?;
        let left = READY_TIMEOUT.saturating_sub(self.spawned_at.elapsed());
        match rx.recv_timeout(left) {
            Ok(true) => {
                self.last_startup = self.spawned_at.elapsed();
                Ok(())
            }
            Ok(false) | Err(RecvTimeoutError::Disconnected) => {
                let status = self.child.as_mut().and_then(|c| c.wait().ok());
                self.child = None;
                bail!("samsa exited before it was ready ({status:?}):\n{}", self.log_tail())
            }
            Err(RecvTimeoutError::Timeout) => {
                if let Some(mut c) = self.child.take() {
                    let _ = c.kill();
                    let _ = c.wait();
                }
                bail!("samsa was not ready within {READY_TIMEOUT:?}:\n{}", self.log_tail())
            }
        }
    }

    /// The node's error lines and the last lines of its log (stderr).
    pub fn log_tail(&self) -> String {
        let text = fs::read_to_string(&self.log_path).unwrap_or_default();
        let lines: Vec<&str> = text.lines().collect();
        let errors: Vec<&str> = lines
            .iter()
            .copied()
            .filter(|l| l.starts_with("error") || l.contains("ERROR"))
            .collect();
        let tail = &lines[lines.len().saturating_sub(5)..];
        format!(
            "{}\n...\n{}",
            errors[errors.len().saturating_sub(10)..].join("\n"),
            tail.join("\n")
        )
    }

    pub fn bootstrap(&self) -> String {
        self.kafka_addr.clone()
    }

    /// The node's log file (its stderr).
    pub fn log_path(&self) -> &Path {
        &self.log_path
    }

    pub fn pid(&self) -> Option<u32> {
        self.child.as_ref().map(Child::id)
    }

    pub fn is_running(&self) -> bool {
        self.child.is_some()
    }

    fn signal(&self, sig: &str) -> anyhow::Result<()> {
        let pid = self.pid().context("node is not running")?;
        let status = Command::new("kill").args([sig, &pid.to_string()]).status()?;
        if !status.success() {
            bail!("kill {sig} {pid} failed");
        }
        Ok(())
    }

    /// SIGKILL: no chance to flush or close anything.
    pub fn kill(&mut self) -> anyhow::Result<()> {
        self.signal("-KILL")?;
        if let Some(mut c) = self.child.take() {
            c.wait()?;
        }
        Ok(())
    }

    /// SIGSTOP: the process freezes (a GC pause, a hung disk) without closing anything.
    pub fn pause(&self) -> anyhow::Result<()> {
        self.signal("-STOP")
    }

    /// SIGCONT after [`Node::pause`].
    pub fn resume(&self) -> anyhow::Result<()> {
        self.signal("-CONT")
    }

    /// SIGTERM and wait (bounded) for the exit; returns the exit status.
    pub fn terminate(&mut self) -> anyhow::Result<ExitStatus> {
        self.signal("-TERM")?;
        let mut child = self.child.take().context("node is not running")?;
        let deadline = Instant::now() + STOP_TIMEOUT;
        loop {
            if let Some(status) = child.try_wait()? {
                return Ok(status);
            }
            if Instant::now() > deadline {
                let _ = child.kill();
                let _ = child.wait();
                bail!("samsa did not stop within {STOP_TIMEOUT:?} of SIGTERM");
            }
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    /// Whether the process has exited by itself (a crash); reaps it if so.
    pub fn exited(&mut self) -> Option<ExitStatus> {
        let status = self.child.as_mut().and_then(|c| c.try_wait().ok().flatten())?;
        self.child = None;
        Some(status)
    }

    /// Starts the node again (same data, ports and config) and waits until it is ready.
    pub fn restart(&mut self) -> anyhow::Result<()> {
        if self.child.is_some() {
            self.terminate()?;
        }
        self.spawn()?;
        self.wait_ready()
    }
}

impl Drop for Node {
    fn drop(&mut self) {
        if let Some(mut c) = self.child.take() {
            let _ = c.kill();
            let _ = c.wait();
        }
    }
}

/// Ports of one cluster member.
#[derive(Debug, Clone, Copy)]
pub struct Ports {
    pub kafka: u16,
    pub controller: u16,
}

/// Where the nodes of a [`LocalCluster`] listen.
#[derive(Clone, Default)]
pub enum Network {
    /// All nodes on 127.0.0.1, each with its own free ports.
    #[default]
    Loopback,
    /// Each node in its own network namespace with its own address (fixed ports 9092/9093).
    Namespaces(Arc<Fabric>),
}

/// Kafka and controller ports of a node in its own namespace.
const NAMESPACE_PORTS: Ports = Ports { kafka: 9092, controller: 9093 };

/// A cluster of `samsa server` processes on loopback: nodes `1..=voters` are
/// broker+controller, further nodes are broker-only observers.
pub struct LocalCluster {
    binary: PathBuf,
    pub dir: tempfile::TempDir,
    pub ports: BTreeMap<i32, Ports>,
    pub nodes: BTreeMap<i32, Node>,
    voters: usize,
    extra: Vec<String>,
    network: Network,
    /// Environment of every node process.
    env: Vec<(String, String)>,
}

impl LocalCluster {
    /// Starts `voters` voters and `observers` broker-only nodes, each with `extra` settings
    /// (`key=value`), and waits until all are ready.
    pub fn start(
        binary: &Path,
        voters: usize,
        observers: usize,
        extra: &[&str],
    ) -> anyhow::Result<Self> {
        Self::start_on(binary, voters, observers, extra, Network::Loopback, &[])
    }

    /// [`LocalCluster::start`] on `network`, with `env` set for every node process.
    pub fn start_on(
        binary: &Path,
        voters: usize,
        observers: usize,
        extra: &[&str],
        network: Network,
        env: &[(&str, &str)],
    ) -> anyhow::Result<Self> {
        let mut ports = BTreeMap::new();
        for id in 1..=(voters + observers) as i32 {
            let p = match network {
                Network::Loopback => Ports { kafka: free_port()?, controller: free_port()? },
                Network::Namespaces(_) => NAMESPACE_PORTS,
            };
            ports.insert(id, p);
        }
        let mut cluster = LocalCluster {
            binary: binary.to_path_buf(),
            dir: tempfile::tempdir()?,
            ports,
            nodes: BTreeMap::new(),
            voters,
            extra: extra.iter().map(|s| s.to_string()).collect(),
            network,
            env: env.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect(),
        };
        let ids: Vec<i32> = cluster.ports.keys().copied().collect();
        for id in &ids {
            let node = cluster.node_process(*id, &[])?;
            cluster.nodes.insert(*id, node);
        }
        for id in &ids {
            cluster.node_mut(*id)?.spawn()?;
        }
        for id in &ids {
            cluster.node_mut(*id)?.wait_ready()?;
        }
        Ok(cluster)
    }

    /// The address node `id` listens on.
    pub fn host(&self, id: i32) -> String {
        match &self.network {
            Network::Loopback => "127.0.0.1".to_string(),
            Network::Namespaces(fabric) => fabric.node_ip(id),
        }
    }

    /// `controller.quorum.voters` of this cluster.
    pub fn voters_setting(&self) -> String {
        (1..=self.voters as i32)
            .filter_map(|id| {
                self.ports.get(&id).map(|p| format!("{id}@{}:{}", self.host(id), p.controller))
            })
            .collect::<Vec<_>>()
            .join(",")
    }

    /// The properties of node `id`, with `overrides` appended (later keys win).
    pub fn properties(&self, id: i32, overrides: &[&str]) -> anyhow::Result<String> {
        let p = self.ports.get(&id).with_context(|| format!("no node {id}"))?;
        let roles = if id as usize <= self.voters { "broker,controller" } else { "broker" };
        let host = self.host(id);
        let mut text = format!(
            "node.id={id}\nprocess.roles={roles}\ncontroller.quorum.voters={}\n\
             listeners=PLAINTEXT://{host}:{},CONTROLLER://{host}:{}\nlog.dirs={}\n",
            self.voters_setting(),
            p.kafka,
            p.controller,
            self.data_dir(id).display()
        );
        for kv in self.extra.iter().map(String::as_str).chain(overrides.iter().copied()) {
            text.push_str(kv);
            text.push('\n');
        }
        Ok(text)
    }

    pub fn data_dir(&self, id: i32) -> PathBuf {
        self.dir.path().join(format!("node{id}"))
    }

    /// A process for node `id` with its properties (plus `overrides`) written out, not started.
    pub fn node_process(&self, id: i32, overrides: &[&str]) -> anyhow::Result<Node> {
        let file = self.dir.path().join(format!("node{id}.properties"));
        fs::write(&file, self.properties(id, overrides)?)?;
        let kafka = self.ports.get(&id).map_or(0, |p| p.kafka);
        let server = vec!["server".to_string(), file.display().to_string()];
        let (program, args) = match &self.network {
            Network::Loopback => (self.binary.clone(), server),
            // `ip netns exec` execs the binary in place: the child's pid is samsa's own.
            Network::Namespaces(fabric) => {
                let mut args = vec!["netns".to_string(), "exec".into(), fabric.namespace(id)];
                args.push(self.binary.display().to_string());
                args.extend(server);
                (PathBuf::from("ip"), args)
            }
        };
        let log = self.dir.path().join(format!("node{id}.log"));
        let mut node = Node::new(&program, args, log, format!("{}:{kafka}", self.host(id)));
        node.env = self.env.clone();
        Ok(node)
    }

    /// The network the nodes listen on.
    pub fn network(&self) -> &Network {
        &self.network
    }

    pub fn node_mut(&mut self, id: i32) -> anyhow::Result<&mut Node> {
        self.nodes.get_mut(&id).with_context(|| format!("no node {id}"))
    }

    /// Kafka addresses of all running nodes, comma separated.
    pub fn bootstrap(&self) -> String {
        self.nodes
            .iter()
            .filter(|(_, n)| n.is_running())
            .map(|(_, n)| n.bootstrap())
            .collect::<Vec<_>>()
            .join(",")
    }

    /// Starts every stopped node at once and waits until all are ready.
    pub fn start_stopped(&mut self) -> anyhow::Result<()> {
        let stopped: Vec<i32> =
            self.nodes.iter().filter(|(_, n)| !n.is_running()).map(|(id, _)| *id).collect();
        for id in &stopped {
            self.node_mut(*id)?.spawn()?;
        }
        for id in &stopped {
            self.node_mut(*id)?.wait_ready()?;
        }
        Ok(())
    }
}
