//! Network namespaces that give each node of a process cluster a host of its own, so a network
//! partition is a real cut in the kernel rather than a flag in samsa.
//!
//! ```text
//!   root namespace (harness, workload clients)         <tag>-hub namespace
//!     <tag>c 10.213.S.1/24  ──veth──  <tag>x ─┐
//!                                             ├─ br0 (bridge)
//!   <tag>-n1: eth0 10.213.S.11 ──veth── <tag>h1 ─┤
//!   <tag>-n2: eth0 10.213.S.12 ──veth── <tag>h2 ─┤
//!   ...                                          ┘
//! ```
//!
//! The bridge lives in a namespace of its own, so the host's firewall (Docker sets the FORWARD
//! policy to DROP) never sees the nodes' traffic. [`Fabric::isolate`] drops, with iptables inside
//! the node's namespace, every packet to and from the other nodes: the node and its peers stop
//! hearing each other in both directions while clients (on 10.213.S.1) still reach it, the
//! partition a deposed leader must survive without acknowledging anything.
//!
//! Invariants: every name carries the run's tag (`sc<pid>`), dropping the [`Fabric`] removes all
//! it created, and [`Fabric::sweep_stale`] removes what runs whose process is gone left behind.
//! Needs root (CAP_NET_ADMIN), `ip` and `iptables`.

use std::process::Command;

use anyhow::{Context, bail};

/// The first two octets of every fabric's subnet; the third is picked per run.
const SUBNET_PREFIX: &str = "10.213";
/// Interface-name budget of Linux (IFNAMSIZ - 1).
const IFNAME_BYTES_MAX: usize = 15;

/// The namespaces, bridge and veths of one run.
pub struct Fabric {
    /// `sc<pid>`: the prefix of every namespace and interface this fabric created.
    tag: String,
    /// Third octet of 10.213.S.0/24.
    subnet: u8,
    /// Node ids with a namespace.
    nodes: Vec<i32>,
}

/// Runs a command, failing with its stderr.
fn run(program: &str, args: &[&str]) -> anyhow::Result<()> {
    let out = Command::new(program)
        .args(args)
        .output()
        .with_context(|| format!("cannot run {program}"))?;
    if !out.status.success() {
        bail!(
            "`{program} {}` failed: {}",
            args.join(" "),
            String::from_utf8_lossy(&out.stderr).trim()
        );
    }
    Ok(())
}

fn output(program: &str, args: &[&str]) -> anyhow::Result<String> {
    let out = Command::new(program)
        .args(args)
        .output()
        .with_context(|| format!("cannot run {program}"))?;
    Ok(String::from_utf8_lossy(&out.stdout).into_owned())
}

impl Fabric {
    /// Whether this machine can build a fabric; the error says what is missing.
    pub fn check_available() -> anyhow::Result<()> {
        let uid = output("id", &["-u"])?;
        if uid.trim() != "0" {
            bail!(
                "network partitions of local processes need root (network namespaces and \
                 iptables); run as root, use --target containers, or leave `partition` out of \
                 --faults"
            );
        }
        for tool in ["ip", "iptables"] {
            if Command::new(tool).arg("-V").output().is_err() {
                bail!(
                    "network partitions need `{tool}` (Debian: apt-get install iproute2 iptables)"
                );
            }
        }
        Ok(())
    }

    /// Creates a namespace per node in `nodes`, the hub with its bridge, and the harness's veth.
    pub fn create(nodes: &[i32]) -> anyhow::Result<Fabric> {
        Self::check_available()?;
        Self::sweep_stale();
        let tag = format!("sc{}", std::process::id());
        let used = output("ip", &["-4", "-o", "addr", "show"])?;
        let subnet = (0..250u8)
            .map(|i| ((std::process::id() % 250) as u8).wrapping_add(i) % 250 + 1)
            .find(|s| !used.contains(&format!("{SUBNET_PREFIX}.{s}.")))
            .context("no free 10.213.x.0/24 subnet for the test fabric")?;
        let fabric = Fabric { tag, subnet, nodes: nodes.to_vec() };
        fabric.build().inspect_err(|_| fabric.teardown())?;
        Ok(fabric)
    }

    fn build(&self) -> anyhow::Result<()> {
        let hub = self.hub();
        run("ip", &["netns", "add", &hub])?;
        run("ip", &["-n", &hub, "link", "set", "lo", "up"])?;
        run("ip", &["-n", &hub, "link", "add", "br0", "type", "bridge"])?;
        run("ip", &["-n", &hub, "link", "set", "br0", "up"])?;
        let host_if = self.ifname("c");
        let host_peer = self.ifname("x");
        run("ip", &["link", "add", &host_if, "type", "veth", "peer", "name", &host_peer])?;
        run("ip", &["link", "set", &host_peer, "netns", &hub])?;
        run("ip", &["-n", &hub, "link", "set", &host_peer, "master", "br0", "up"])?;
        run("ip", &["addr", "add", &format!("{}/24", self.host_ip()), "dev", &host_if])?;
        run("ip", &["link", "set", &host_if, "up"])?;
        for id in &self.nodes {
            let ns = self.namespace(*id);
            let hub_if = self.ifname(&format!("h{id}"));
            run("ip", &["netns", "add", &ns])?;
            run("ip", &["-n", &ns, "link", "set", "lo", "up"])?;
            // The peer is born inside the node's namespace: the root namespace has an eth0.
            run(
                "ip",
                &["link", "add", &hub_if, "type", "veth", "peer", "name", "eth0", "netns", &ns],
            )?;
            run("ip", &["link", "set", &hub_if, "netns", &hub])?;
            run("ip", &["-n", &hub, "link", "set", &hub_if, "master", "br0", "up"])?;
            let addr = format!("{}/24", self.node_ip(*id));
            run("ip", &["-n", &ns, "addr", "add", &addr, "dev", "eth0"])?;
            run("ip", &["-n", &ns, "link", "set", "eth0", "up"])?;
        }
        Ok(())
    }

    fn ifname(&self, suffix: &str) -> String {
        let name = format!("{}{suffix}", self.tag);
        assert!(name.len() <= IFNAME_BYTES_MAX, "interface name {name} exceeds IFNAMSIZ");
        name
    }

    fn hub(&self) -> String {
        format!("{}-hub", self.tag)
    }

    /// The namespace node `id` runs in.
    pub fn namespace(&self, id: i32) -> String {
        format!("{}-n{id}", self.tag)
    }

    /// The address of node `id` (reachable from the root namespace).
    pub fn node_ip(&self, id: i32) -> String {
        format!("{SUBNET_PREFIX}.{}.{}", self.subnet, 10 + id)
    }

    /// The harness's own address on the fabric.
    pub fn host_ip(&self) -> String {
        format!("{SUBNET_PREFIX}.{}.1", self.subnet)
    }

    /// Cuts node `id` off from every other node, both directions; clients still reach it.
    pub fn isolate(&self, id: i32) -> anyhow::Result<()> {
        let ns = self.namespace(id);
        for peer in self.nodes.iter().filter(|p| **p != id) {
            let ip = self.node_ip(*peer);
            run(
                "ip",
                &["netns", "exec", &ns, "iptables", "-w", "-I", "INPUT", "-s", &ip, "-j", "DROP"],
            )?;
            run(
                "ip",
                &["netns", "exec", &ns, "iptables", "-w", "-I", "OUTPUT", "-d", &ip, "-j", "DROP"],
            )?;
        }
        Ok(())
    }

    /// Removes every cut of node `id`.
    pub fn heal(&self, id: i32) -> anyhow::Result<()> {
        let ns = self.namespace(id);
        run("ip", &["netns", "exec", &ns, "iptables", "-w", "-F", "INPUT"])?;
        run("ip", &["netns", "exec", &ns, "iptables", "-w", "-F", "OUTPUT"])
    }

    fn teardown(&self) {
        let _ = run("ip", &["link", "del", &self.ifname("c")]);
        for id in &self.nodes {
            let _ = run("ip", &["netns", "del", &self.namespace(*id)]);
        }
        let _ = run("ip", &["netns", "del", &self.hub()]);
    }

    /// Removes namespaces and interfaces of earlier runs whose process no longer exists.
    pub fn sweep_stale() {
        let Ok(list) = output("ip", &["netns", "list"]) else { return };
        for name in list.lines().filter_map(|l| l.split_whitespace().next()) {
            let Some((tag, _)) = name.split_once('-') else { continue };
            let Some(pid) = tag.strip_prefix("sc").and_then(|p| p.parse::<u32>().ok()) else {
                continue;
            };
            if std::path::Path::new(&format!("/proc/{pid}")).exists() {
                continue;
            }
            let _ = run("ip", &["netns", "del", name]);
            let _ = run("ip", &["link", "del", &format!("{tag}c")]);
        }
    }
}

impl Drop for Fabric {
    fn drop(&mut self) {
        self.teardown();
    }
}
