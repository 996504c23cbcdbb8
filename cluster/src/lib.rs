//! samsa-cluster: the test harness that runs samsa nodes as real local processes and injects
//! faults into them. Today it runs single `samsa dev` nodes (start, SIGTERM, SIGKILL, restart on
//! the same data and port); multi-node clusters, containers and network faults build on it.
//!
//! Every wait is bounded: a node that is not ready within [`READY_TIMEOUT`] is an error.

use std::io::{BufRead, BufReader};
use std::net::TcpListener;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus, Stdio};
use std::time::{Duration, Instant};

use anyhow::{Context, bail};

/// How long a node may take to print its ready line.
pub const READY_TIMEOUT: Duration = Duration::from_secs(20);
/// How long a graceful stop may take before it counts as a failure.
pub const STOP_TIMEOUT: Duration = Duration::from_secs(30);

/// A free TCP port on loopback (bound and released; fine for tests on one machine).
pub fn free_port() -> anyhow::Result<u16> {
    Ok(TcpListener::bind("127.0.0.1:0")?.local_addr()?.port())
}

/// One samsa node running as a child process.
pub struct Node {
    binary: PathBuf,
    data_dir: PathBuf,
    port: u16,
    child: Option<Child>,
    /// Time from spawn to the ready line, for the last start.
    pub last_startup: Duration,
}

impl Node {
    /// Starts `samsa dev` with `data_dir` on `port` and waits until it is ready.
    pub fn start(binary: &Path, data_dir: &Path, port: u16) -> anyhow::Result<Node> {
        let mut node = Node {
            binary: binary.to_path_buf(),
            data_dir: data_dir.to_path_buf(),
            port,
            child: None,
            last_startup: Duration::ZERO,
        };
        node.spawn()?;
        Ok(node)
    }

    fn spawn(&mut self) -> anyhow::Result<()> {
        let started = Instant::now();
        let mut child = Command::new(&self.binary)
            .args(["dev", "--port", &self.port.to_string(), "--data-dir"])
            .arg(&self.data_dir)
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()
            .with_context(|| format!("cannot run {}", self.binary.display()))?;
        let stdout = child.stdout.take().context("no stdout")?;
        let (tx, rx) = std::sync::mpsc::channel();
        std::thread::spawn(move || {
            let mut lines = BufReader::new(stdout).lines();
            let ready = lines.by_ref().map_while(Result::ok).any(|l| l.contains("ready"));
            let _ = tx.send(ready);
            for _ in lines {} // keep draining so the child never blocks on a full pipe
        });
        match rx.recv_timeout(READY_TIMEOUT) {
            Ok(true) => {}
            _ => {
                let _ = child.kill();
                bail!("samsa on port {} did not become ready within {READY_TIMEOUT:?}", self.port);
            }
        }
        self.last_startup = started.elapsed();
        self.child = Some(child);
        Ok(())
    }

    pub fn bootstrap(&self) -> String {
        format!("127.0.0.1:{}", self.port)
    }

    pub fn pid(&self) -> Option<u32> {
        self.child.as_ref().map(Child::id)
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

    /// SIGTERM and wait (bounded) for a clean exit; returns the exit status.
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
                bail!("samsa did not stop within {STOP_TIMEOUT:?} of SIGTERM");
            }
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    /// Starts the node again on the same data directory and port.
    pub fn restart(&mut self) -> anyhow::Result<()> {
        if self.child.is_some() {
            self.terminate()?;
        }
        self.spawn()
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
