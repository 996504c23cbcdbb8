//! What the chaos runner needs of a cluster, whatever runs it: local processes (each in its own
//! network namespace when partitions are wanted) or containers. Every method is blocking and
//! bounded; node ids are samsa's `node.id`.

use std::path::{Path, PathBuf};
use std::sync::Arc;

use anyhow::Context;

use crate::docker::ContainerCluster;
use crate::netns::Fabric;
use crate::process::{LocalCluster, Network, Node};

/// A running cluster the runner can hurt.
pub trait Target {
    /// One line for the summary, e.g. "3 samsa server processes in network namespaces".
    fn describe(&self) -> String;
    fn ids(&self) -> Vec<i32>;
    /// host:port of node `id`'s Kafka listener, as the workload reaches it.
    fn kafka_addr(&self, id: i32) -> anyhow::Result<String>;
    /// Every node's Kafka address, comma separated.
    fn bootstrap(&self) -> String;
    /// SIGKILL; returns once the process is gone.
    fn kill(&mut self, id: i32) -> anyhow::Result<()>;
    /// SIGTERM (a controlled shutdown); returns once the process is gone.
    fn stop(&mut self, id: i32) -> anyhow::Result<()>;
    /// Starts a stopped node without waiting for it.
    fn start(&mut self, id: i32) -> anyhow::Result<()>;
    /// Waits (bounded) until a started node is ready.
    fn wait_ready(&mut self, id: i32) -> anyhow::Result<()>;
    /// Freezes the node (SIGSTOP, or the cgroup freezer).
    fn pause(&mut self, id: i32) -> anyhow::Result<()>;
    fn resume(&mut self, id: i32) -> anyhow::Result<()>;
    /// Cuts the node off from its peers (clients still reach it).
    fn isolate(&mut self, id: i32) -> anyhow::Result<()>;
    fn heal(&mut self, id: i32) -> anyhow::Result<()>;
    /// Whether network partitions are possible on this target.
    fn can_partition(&self) -> bool;
    /// Where node `id` keeps its data (readable from the host).
    fn data_dir(&self, id: i32) -> PathBuf;
    /// Copies the nodes' logs into `dir`.
    fn save_logs(&self, dir: &Path);
    /// Node ids whose process died without being told to (a crash).
    fn crashed(&mut self) -> Vec<i32>;
    /// Whether node `id`'s process runs (a paused one does).
    fn is_running(&self, id: i32) -> bool;
}

/// `samsa server` processes on this machine.
pub struct ProcessTarget {
    cluster: LocalCluster,
    /// Kept for the partitions; dropped after the cluster (field order) so no node outlives it.
    fabric: Option<Arc<Fabric>>,
    /// Nodes the runner stopped on purpose (not crashes).
    down: std::collections::BTreeSet<i32>,
}

impl ProcessTarget {
    /// Starts `voters` nodes with `extra` settings. With `namespaces`, each node gets a network
    /// namespace of its own (needs root); otherwise all listen on loopback.
    pub fn start(
        binary: &Path,
        voters: usize,
        extra: &[&str],
        namespaces: bool,
    ) -> anyhow::Result<Self> {
        let fabric = if namespaces {
            let ids: Vec<i32> = (1..=voters as i32).collect();
            Some(Arc::new(Fabric::create(&ids)?))
        } else {
            None
        };
        let network = fabric.clone().map_or(Network::Loopback, Network::Namespaces);
        let env = [("SAMSA_LOG", "info,openraft=warn")];
        let cluster = LocalCluster::start_on(binary, voters, 0, extra, network, &env)?;
        Ok(ProcessTarget { cluster, fabric, down: Default::default() })
    }

    fn fabric(&self) -> anyhow::Result<&Fabric> {
        self.fabric.as_deref().context("this cluster runs on loopback: no partitions")
    }
}

impl Target for ProcessTarget {
    fn describe(&self) -> String {
        let n = self.cluster.nodes.len();
        match self.fabric {
            Some(_) => format!("{n} samsa server processes, each in its own network namespace"),
            None => format!("{n} samsa server processes on loopback"),
        }
    }

    fn ids(&self) -> Vec<i32> {
        self.cluster.nodes.keys().copied().collect()
    }

    fn kafka_addr(&self, id: i32) -> anyhow::Result<String> {
        let p = self.cluster.ports.get(&id).with_context(|| format!("no node {id}"))?;
        Ok(format!("{}:{}", self.cluster.host(id), p.kafka))
    }

    fn bootstrap(&self) -> String {
        self.ids().iter().filter_map(|id| self.kafka_addr(*id).ok()).collect::<Vec<_>>().join(",")
    }

    fn kill(&mut self, id: i32) -> anyhow::Result<()> {
        self.down.insert(id);
        self.cluster.node_mut(id)?.kill()
    }

    fn stop(&mut self, id: i32) -> anyhow::Result<()> {
        self.down.insert(id);
        let status = self.cluster.node_mut(id)?.terminate()?;
        anyhow::ensure!(status.success(), "node {id} exited with {status} after SIGTERM");
        Ok(())
    }

    fn start(&mut self, id: i32) -> anyhow::Result<()> {
        let node = self.cluster.node_mut(id)?;
        anyhow::ensure!(!node.is_running(), "node {id} is already running");
        node.spawn()?;
        self.down.remove(&id);
        Ok(())
    }

    fn wait_ready(&mut self, id: i32) -> anyhow::Result<()> {
        self.cluster.node_mut(id)?.wait_ready()
    }

    fn pause(&mut self, id: i32) -> anyhow::Result<()> {
        self.cluster.node_mut(id)?.pause()
    }

    fn resume(&mut self, id: i32) -> anyhow::Result<()> {
        self.cluster.node_mut(id)?.resume()
    }

    fn isolate(&mut self, id: i32) -> anyhow::Result<()> {
        self.fabric()?.isolate(id)
    }

    fn heal(&mut self, id: i32) -> anyhow::Result<()> {
        self.fabric()?.heal(id)
    }

    fn can_partition(&self) -> bool {
        self.fabric.is_some()
    }

    fn data_dir(&self, id: i32) -> PathBuf {
        self.cluster.data_dir(id)
    }

    fn save_logs(&self, dir: &Path) {
        for (id, node) in &self.cluster.nodes {
            let _ = std::fs::copy(node.log_path(), dir.join(format!("node{id}.log")));
        }
    }

    fn crashed(&mut self) -> Vec<i32> {
        let mut out = Vec::new();
        for (id, node) in self.cluster.nodes.iter_mut() {
            if !self.down.contains(id) && node.is_running() && node.exited().is_some() {
                out.push(*id);
            }
        }
        out
    }

    fn is_running(&self, id: i32) -> bool {
        self.cluster.nodes.get(&id).is_some_and(Node::is_running)
    }
}

/// Containers of the samsa image.
pub struct ContainerTarget {
    cluster: ContainerCluster,
    /// Nodes the runner stopped on purpose.
    down: std::collections::BTreeSet<i32>,
}

impl ContainerTarget {
    pub fn start(image: &str, voters: usize, extra: &[&str]) -> anyhow::Result<Self> {
        let cluster = ContainerCluster::start(image, voters, extra)?;
        Ok(ContainerTarget { cluster, down: Default::default() })
    }
}

impl Target for ContainerTarget {
    fn describe(&self) -> String {
        format!("{} samsa containers on a peer and a client network", self.cluster.ids().len())
    }

    fn ids(&self) -> Vec<i32> {
        self.cluster.ids()
    }

    fn kafka_addr(&self, id: i32) -> anyhow::Result<String> {
        self.cluster.kafka_addr(id)
    }

    fn bootstrap(&self) -> String {
        self.cluster.bootstrap()
    }

    fn kill(&mut self, id: i32) -> anyhow::Result<()> {
        self.down.insert(id);
        self.cluster.kill(id)
    }

    fn stop(&mut self, id: i32) -> anyhow::Result<()> {
        self.down.insert(id);
        self.cluster.stop(id)
    }

    fn start(&mut self, id: i32) -> anyhow::Result<()> {
        self.cluster.start_node(id)?;
        self.down.remove(&id);
        Ok(())
    }

    fn wait_ready(&mut self, id: i32) -> anyhow::Result<()> {
        self.cluster.wait_ready(id)
    }

    fn pause(&mut self, id: i32) -> anyhow::Result<()> {
        self.cluster.pause(id)
    }

    fn resume(&mut self, id: i32) -> anyhow::Result<()> {
        self.cluster.resume(id)
    }

    fn isolate(&mut self, id: i32) -> anyhow::Result<()> {
        self.cluster.isolate(id)
    }

    fn heal(&mut self, id: i32) -> anyhow::Result<()> {
        self.cluster.heal(id)
    }

    fn can_partition(&self) -> bool {
        true
    }

    fn data_dir(&self, id: i32) -> PathBuf {
        self.cluster.data_dir(id)
    }

    fn save_logs(&self, dir: &Path) {
        self.cluster.save_logs(dir)
    }

    fn crashed(&mut self) -> Vec<i32> {
        let ids = self.cluster.ids();
        ids.into_iter()
            .filter(|id| !self.down.contains(id) && !self.cluster.is_running(*id))
            .collect()
    }

    fn is_running(&self, id: i32) -> bool {
        self.cluster.is_running(id)
    }
}
