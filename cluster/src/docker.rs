//! samsa nodes as containers of the `samsa:latest` image (scripts/build-image.sh), driven through
//! the `docker` CLI, with the faults a container platform has: SIGKILL of the container's
//! process, `docker stop` (SIGTERM), `docker pause` (the cgroup freezer) and disconnecting a
//! container from a network.
//!
//! Each node sits on two networks:
//! - `<tag>-peer`: the CONTROLLER listener (metadata quorum and replication) and INTERNAL. Nodes
//!   know each other by the alias `samsa-N`, which exists only on this network.
//! - `<tag>-client`: the EXTERNAL listener, advertised at the node's fixed address there, which the
//!   host reaches directly (no published ports).
//!
//! [`ContainerCluster::isolate`] disconnects a node from the peer network (its peers lose it, the
//! clients keep it); [`ContainerCluster::heal`] connects it again with the same alias and address.
//! Data directories are bind mounts under the cluster's directory, so replicas can be compared
//! byte for byte from the host.
//!
//! Invariants: every container and network carries the label `samsa-chaos.pid`; dropping the
//! cluster removes them, and [`ContainerCluster::sweep_stale`] removes those of runs whose process
//! is gone.

use std::collections::BTreeMap;
use std::io::{Read, Write};
use std::net::TcpStream;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, Instant};

use anyhow::{Context, bail};

use crate::process::READY_TIMEOUT;

/// The Kafka listener clients use, on the client network.
const CLIENT_PORT: u16 = 19092;
/// The admin HTTP listener (`/readyz`).
const ADMIN_PORT: u16 = 9644;
/// `docker stop` grace before SIGKILL: a controlled shutdown moves leaderships first.
const STOP_GRACE_S: u32 = 30;
/// The label that marks what a run created, with the creating process id as value.
const LABEL: &str = "samsa-chaos.pid";

/// One container of the cluster.
#[derive(Debug, Clone)]
struct ContainerNode {
    name: String,
    peer_ip: String,
    client_ip: String,
}

/// A cluster of samsa containers on a private pair of networks.
pub struct ContainerCluster {
    image: String,
    tag: String,
    dir: tempfile::TempDir,
    nodes: BTreeMap<i32, ContainerNode>,
    voters: usize,
    extra: Vec<String>,
}

fn docker(args: &[&str]) -> anyhow::Result<String> {
    let out = Command::new("docker").args(args).output().context("cannot run docker")?;
    if !out.status.success() {
        bail!(
            "`docker {}` failed: {}",
            args.join(" "),
            String::from_utf8_lossy(&out.stderr).trim()
        );
    }
    Ok(String::from_utf8_lossy(&out.stdout).trim().to_string())
}

/// `key=value` (Kafka's name) as the image's environment variable (`SAMSA_KEY`).
fn env_name(key: &str) -> String {
    let mut name = String::from("SAMSA_");
    for c in key.chars() {
        match c {
            '.' => name.push('_'),
            '_' => name.push_str("__"),
            '-' => name.push_str("___"),
            c => name.push(c.to_ascii_uppercase()),
        }
    }
    name
}

impl ContainerCluster {
    /// Whether the docker engine answers and `image` exists; the error says what to do.
    pub fn check_available(image: &str) -> anyhow::Result<()> {
        docker(&["version", "--format", "{{.Server.Version}}"])
            .context("the container target needs a running Docker engine")?;
        docker(&["image", "inspect", "--format", "{{.Id}}", image])
            .with_context(|| format!("no image {image}: build it with scripts/build-image.sh"))?;
        Ok(())
    }

    /// Creates the networks and `voters` broker+controller containers with `extra` settings
    /// (`key=value`), starts them together and waits until each is ready.
    pub fn start(image: &str, voters: usize, extra: &[&str]) -> anyhow::Result<Self> {
        Self::check_available(image)?;
        Self::sweep_stale();
        let pid = std::process::id();
        let tag = format!("samsa-chaos-{pid}");
        let mut cluster = ContainerCluster {
            image: image.to_string(),
            tag,
            dir: tempfile::Builder::new().prefix("samsa-chaos-containers-").tempdir()?,
            nodes: BTreeMap::new(),
            voters,
            extra: extra.iter().map(|s| s.to_string()).collect(),
        };
        let (peer, client) = cluster.create_networks()?;
        for id in 1..=voters as i32 {
            let node = ContainerNode {
                name: format!("{}-{id}", cluster.tag),
                peer_ip: format!("{peer}.{}", 10 + id),
                client_ip: format!("{client}.{}", 10 + id),
            };
            cluster.nodes.insert(id, node);
        }
        for id in 1..=voters as i32 {
            cluster.create_container(id)?;
        }
        for id in 1..=voters as i32 {
            cluster.start_node(id)?;
        }
        for id in 1..=voters as i32 {
            cluster.wait_ready(id)?;
        }
        Ok(cluster)
    }

    fn peer_network(&self) -> String {
        format!("{}-peer", self.tag)
    }

    fn client_network(&self) -> String {
        format!("{}-client", self.tag)
    }

    /// Creates both networks on free /24 subnets; returns their first three octets.
    fn create_networks(&self) -> anyhow::Result<(String, String)> {
        let label = format!("{LABEL}={}", std::process::id());
        let mut made = Vec::new();
        for (name, base) in [(self.peer_network(), 214), (self.client_network(), 215)] {
            let mut last = None;
            for i in 0..50u32 {
                let third = (std::process::id() + i * 7) % 250 + 1;
                let prefix = format!("10.{base}.{third}");
                let subnet = format!("{prefix}.0/24");
                match docker(&["network", "create", "--label", &label, "--subnet", &subnet, &name])
                {
                    Ok(_) => {
                        made.push(prefix);
                        last = None;
                        break;
                    }
                    Err(e) => last = Some(e),
                }
            }
            if let Some(e) = last {
                return Err(e.context(format!("cannot create network {name}")));
            }
        }
        match made.as_slice() {
            [peer, client] => Ok((peer.clone(), client.clone())),
            _ => bail!("networks were not created"),
        }
    }

    fn node(&self, id: i32) -> anyhow::Result<&ContainerNode> {
        self.nodes.get(&id).with_context(|| format!("no node {id}"))
    }

    /// The node's data directory on the host (bind-mounted into the container).
    pub fn data_dir(&self, id: i32) -> PathBuf {
        self.dir.path().join(format!("node{id}"))
    }

    fn create_container(&self, id: i32) -> anyhow::Result<()> {
        let node = self.node(id)?.clone();
        let data = self.data_dir(id);
        std::fs::create_dir_all(&data)?;
        // The image runs as 10001:10001.
        let out = Command::new("chown").arg("10001:10001").arg(&data).output()?;
        if !out.status.success() {
            bail!("cannot chown {} to the image's user 10001", data.display());
        }
        let voters = (1..=self.voters).map(|i| format!("{i}@samsa-{i}:9093")).collect::<Vec<_>>();
        let mut env = vec![
            ("node.id".to_string(), id.to_string()),
            ("process.roles".into(), "broker,controller".into()),
            ("controller.quorum.voters".into(), voters.join(",")),
            (
                "listeners".into(),
                format!(
                    "INTERNAL://0.0.0.0:9092,EXTERNAL://0.0.0.0:{CLIENT_PORT},CONTROLLER://0.0.0.0:9093"
                ),
            ),
            (
                "advertised.listeners".into(),
                format!(
                    "INTERNAL://samsa-{id}:9092,EXTERNAL://{}:{CLIENT_PORT},CONTROLLER://samsa-{id}:9093",
                    node.client_ip
                ),
            ),
            (
                "listener.security.protocol.map".into(),
                "INTERNAL:PLAINTEXT,EXTERNAL:PLAINTEXT,CONTROLLER:PLAINTEXT".into(),
            ),
            ("inter.broker.listener.name".into(), "INTERNAL".into()),
            ("controller.listener.names".into(), "CONTROLLER".into()),
        ];
        for kv in &self.extra {
            let (k, v) = kv.split_once('=').with_context(|| format!("not key=value: {kv}"))?;
            env.push((k.to_string(), v.to_string()));
        }
        let label = format!("{LABEL}={}", std::process::id());
        let volume = format!("{}:/var/lib/samsa", data.display());
        let client_net = self.client_network();
        let mut args: Vec<String> = [
            "create",
            "--name",
            &node.name,
            "--label",
            &label,
            "--network",
            &client_net,
            "--ip",
            &node.client_ip,
            "-v",
            &volume,
            "-e",
            "SAMSA_LOG=info,openraft=warn",
        ]
        .iter()
        .map(|s| s.to_string())
        .collect();
        for (k, v) in env {
            args.push("-e".into());
            args.push(format!("{}={v}", env_name(&k)));
        }
        args.push(self.image.clone());
        docker(&args.iter().map(String::as_str).collect::<Vec<_>>())?;
        self.connect_peer(id)
    }

    fn connect_peer(&self, id: i32) -> anyhow::Result<()> {
        let node = self.node(id)?;
        let alias = format!("samsa-{id}");
        docker(&[
            "network",
            "connect",
            "--alias",
            &alias,
            "--ip",
            &node.peer_ip,
            &self.peer_network(),
            &node.name,
        ])?;
        Ok(())
    }

    /// Node ids.
    pub fn ids(&self) -> Vec<i32> {
        self.nodes.keys().copied().collect()
    }

    /// host:port of node `id`'s Kafka listener for the host's clients.
    pub fn kafka_addr(&self, id: i32) -> anyhow::Result<String> {
        Ok(format!("{}:{CLIENT_PORT}", self.node(id)?.client_ip))
    }

    /// Kafka addresses of all nodes, comma separated.
    pub fn bootstrap(&self) -> String {
        self.nodes
            .values()
            .map(|n| format!("{}:{CLIENT_PORT}", n.client_ip))
            .collect::<Vec<_>>()
            .join(",")
    }

    /// Starts a stopped container (same config, addresses and data).
    pub fn start_node(&self, id: i32) -> anyhow::Result<()> {
        docker(&["start", &self.node(id)?.name])?;
        Ok(())
    }

    /// Whether the container's process is running (paused counts as running).
    pub fn is_running(&self, id: i32) -> bool {
        self.node(id)
            .and_then(|n| docker(&["inspect", "-f", "{{.State.Running}}", &n.name]))
            .is_ok_and(|s| s == "true")
    }

    /// Waits (bounded) until the node's `/readyz` answers 200.
    pub fn wait_ready(&self, id: i32) -> anyhow::Result<()> {
        let node = self.node(id)?;
        let deadline = Instant::now() + READY_TIMEOUT;
        while Instant::now() < deadline {
            if http_status(&node.client_ip, ADMIN_PORT, "/readyz") == Some(200) {
                return Ok(());
            }
            if !self.is_running(id) {
                bail!("container {} exited before it was ready:\n{}", node.name, self.log_tail(id));
            }
            std::thread::sleep(Duration::from_millis(100));
        }
        bail!(
            "container {} was not ready within {READY_TIMEOUT:?}:\n{}",
            node.name,
            self.log_tail(id)
        )
    }

    /// SIGKILL to the container's process; returns once the container has stopped.
    pub fn kill(&self, id: i32) -> anyhow::Result<()> {
        docker(&["kill", "--signal", "KILL", &self.node(id)?.name])?;
        self.wait_stopped(id)
    }

    fn wait_stopped(&self, id: i32) -> anyhow::Result<()> {
        let deadline = Instant::now() + Duration::from_secs(30);
        while self.is_running(id) {
            if Instant::now() > deadline {
                bail!("container of node {id} still runs 30 s after it was told to stop");
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        Ok(())
    }

    /// `docker stop`: SIGTERM (controlled shutdown), SIGKILL after the grace period.
    pub fn stop(&self, id: i32) -> anyhow::Result<()> {
        docker(&["stop", "-t", &STOP_GRACE_S.to_string(), &self.node(id)?.name])?;
        Ok(())
    }

    /// Freezes every process of the container (cgroup freezer).
    pub fn pause(&self, id: i32) -> anyhow::Result<()> {
        docker(&["pause", &self.node(id)?.name])?;
        Ok(())
    }

    pub fn resume(&self, id: i32) -> anyhow::Result<()> {
        docker(&["unpause", &self.node(id)?.name])?;
        Ok(())
    }

    /// Disconnects node `id` from the peer network.
    pub fn isolate(&self, id: i32) -> anyhow::Result<()> {
        docker(&["network", "disconnect", &self.peer_network(), &self.node(id)?.name])?;
        Ok(())
    }

    /// Connects node `id` to the peer network again, with its alias and address.
    pub fn heal(&self, id: i32) -> anyhow::Result<()> {
        self.connect_peer(id)
    }

    /// The last lines of the container's log.
    pub fn log_tail(&self, id: i32) -> String {
        let Ok(node) = self.node(id) else { return String::new() };
        Command::new("docker")
            .args(["logs", "--tail", "20", &node.name])
            .output()
            .map(|o| String::from_utf8_lossy(&o.stderr).into_owned())
            .unwrap_or_default()
    }

    /// Writes every container's log to `dir/node<N>.log`.
    pub fn save_logs(&self, dir: &Path) {
        for (id, node) in &self.nodes {
            if let Ok(out) = Command::new("docker").args(["logs", &node.name]).output() {
                let mut text = out.stdout;
                text.extend_from_slice(&out.stderr);
                let _ = std::fs::write(dir.join(format!("node{id}.log")), text);
            }
        }
    }

    /// Removes containers and networks of earlier runs whose process no longer exists.
    pub fn sweep_stale() {
        sweep(&["ps", "-a"], &["rm", "-f", "-v"]);
        sweep(&["network", "ls"], &["network", "rm"]);
    }
}

/// Lists what `list` shows with the run label, and removes with `remove` each item whose
/// creating process is gone.
fn sweep(list: &[&str], remove: &[&str]) {
    let filter = format!("label={LABEL}");
    let format = format!("{{{{.ID}}}} {{{{.Label \"{LABEL}\"}}}}");
    let mut args = list.to_vec();
    args.extend(["--filter", &filter, "--format", &format]);
    for line in docker(&args).unwrap_or_default().lines() {
        if let Some((id, pid)) = line.split_once(' ')
            && !Path::new(&format!("/proc/{pid}")).exists()
        {
            let mut args = remove.to_vec();
            args.push(id);
            let _ = docker(&args);
        }
    }
}

impl Drop for ContainerCluster {
    fn drop(&mut self) {
        for node in self.nodes.values() {
            let _ = docker(&["rm", "-f", "-v", &node.name]);
        }
        let _ = docker(&["network", "rm", &self.peer_network()]);
        let _ = docker(&["network", "rm", &self.client_network()]);
    }
}

/// The status code of `GET path` on host:port, or None when it does not answer within 1 s.
fn http_status(host: &str, port: u16, path: &str) -> Option<u16> {
    let addr = format!("{host}:{port}").parse().ok()?;
    let mut s = TcpStream::connect_timeout(&addr, Duration::from_secs(1)).ok()?;
    s.set_read_timeout(Some(Duration::from_secs(1))).ok()?;
    write!(s, "GET {path} HTTP/1.0\r\nHost: {host}\r\n\r\n").ok()?;
    let mut head = [0u8; 32];
    let n = s.read(&mut head).ok()?;
    let line = std::str::from_utf8(&head[..n]).ok()?;
    line.split_whitespace().nth(1)?.parse().ok()
}

#[cfg(test)]
mod tests {
    use super::env_name;

    #[test]
    fn kafka_keys_map_to_the_images_environment_names() {
        assert_eq!(env_name("node.id"), "SAMSA_NODE_ID");
        assert_eq!(env_name("broker.session.timeout.ms"), "SAMSA_BROKER_SESSION_TIMEOUT_MS");
        assert_eq!(env_name("a_b-c"), "SAMSA_A__B___C");
    }
}
