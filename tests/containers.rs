//! The samsa:latest image (scripts/build-image.sh) as a three-node cluster under testcontainers:
//! each container a broker+controller on a private network, its EXTERNAL listener mapped to a
//! host port it advertises, so this test produces and consumes through it like any host client.
//! Skipped (with a message) when the image has not been built.

use std::time::Duration;

use samsa::client::cluster::ClusterClient;
use testcontainers::core::{IntoContainerPort, WaitFor};
use testcontainers::runners::AsyncRunner;
use testcontainers::{GenericImage, ImageExt};

fn image_built() -> bool {
    std::process::Command::new("docker")
        .args(["image", "inspect", "samsa:latest"])
        .output()
        .is_ok_and(|o| o.status.success())
}

#[tokio::test(flavor = "multi_thread")]
async fn a_three_node_cluster_from_the_image_serves_produce_and_consume() {
    if !image_built() {
        eprintln!("skipped: no samsa:latest image; run scripts/build-image.sh");
        return;
    }
    let run = uuid::Uuid::new_v4().simple().to_string()[..8].to_string();
    let network = format!("samsa-tc-{run}");
    let name = |i: i32| format!("samsa-tc-{run}-{i}");
    let ports: Vec<u16> =
        (0..3).map(|_| samsa_cluster::free_port().expect("a free port")).collect();
    let voters = (1..=3).map(|i| format!("{i}@{}:9093", name(i))).collect::<Vec<_>>().join(",");
    let mut nodes = Vec::new();
    for i in 1..=3 {
        let port = ports[(i - 1) as usize];
        let node = GenericImage::new("samsa", "latest")
            .with_wait_for(WaitFor::message_on_stdout("samsa server ready"))
            .with_network(&network)
            .with_container_name(name(i))
            .with_mapped_port(port, 19092.tcp())
            .with_env_var("SAMSA_NODE_ID", i.to_string())
            .with_env_var("SAMSA_PROCESS_ROLES", "broker,controller")
            .with_env_var("SAMSA_CONTROLLER_QUORUM_VOTERS", &voters)
            .with_env_var(
                "SAMSA_LISTENERS",
                "INTERNAL://0.0.0.0:9092,EXTERNAL://0.0.0.0:19092,CONTROLLER://0.0.0.0:9093",
            )
            .with_env_var(
                "SAMSA_ADVERTISED_LISTENERS",
                format!(
                    "INTERNAL://{n}:9092,EXTERNAL://127.0.0.1:{port},CONTROLLER://{n}:9093",
                    n = name(i)
                ),
            )
            .with_env_var(
                "SAMSA_LISTENER_SECURITY_PROTOCOL_MAP",
                "INTERNAL:PLAINTEXT,EXTERNAL:PLAINTEXT,CONTROLLER:PLAINTEXT",
            )
            .with_env_var("SAMSA_DEFAULT_REPLICATION_FACTOR", "3")
            .with_startup_timeout(Duration::from_secs(120));
        nodes.push(node);
    }
    // Voters wait for each other: start all three concurrently.
    let started = futures_join_all(nodes).await;
    let bootstrap = ports.iter().map(|p| format!("127.0.0.1:{p}")).collect::<Vec<_>>().join(",");
    let mut cluster = ClusterClient::connect(&bootstrap).await.expect("connect");
    // Each node prints "ready" once it has registered itself; the node that answers may learn of
    // the other registrations a moment later through the metadata log, so wait for all three.
    let mut want: Vec<i32> = ports.iter().map(|p| i32::from(*p)).collect();
    want.sort();
    let deadline = std::time::Instant::now() + Duration::from_secs(30);
    let advertised = loop {
        let md = cluster.refresh(None).await.expect("metadata");
        let mut advertised: Vec<i32> = md.brokers.iter().map(|b| b.port).collect();
        advertised.sort();
        if advertised.len() >= want.len() || std::time::Instant::now() > deadline {
            break advertised;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    };
    assert_eq!(advertised, want, "host clients are told the mapped ports");

    let samsa = env!("CARGO_BIN_EXE_samsa");
    let cli = |args: &[&str], input: Option<&str>| {
        use std::io::Write;
        let mut child = std::process::Command::new(samsa)
            .args(args)
            .args(["--bootstrap-server", &bootstrap])
            .stdin(std::process::Stdio::piped())
            .stdout(std::process::Stdio::piped())
            .stderr(std::process::Stdio::piped())
            .spawn()
            .expect("spawn samsa");
        if let Some(input) = input {
            child.stdin.take().expect("stdin").write_all(input.as_bytes()).expect("write");
        }
        drop(child.stdin.take());
        let out = child.wait_with_output().expect("wait");
        assert!(out.status.success(), "samsa {args:?}: {}", String::from_utf8_lossy(&out.stderr));
        String::from_utf8_lossy(&out.stdout).to_string()
    };
    cli(&["topic", "create", "tc", "--partitions", "3", "--replication-factor", "3"], None);
    let values: Vec<String> = (0..30).map(|i| format!("v{i}")).collect();
    cli(&["produce", "tc", "--acks", "all"], Some(&(values.join("\n") + "\n")));
    let read = cli(&["consume", "tc", "--from-beginning", "--max-messages", "30"], None);
    let mut got: Vec<&str> = read.split_whitespace().collect();
    got.sort();
    let mut want: Vec<&str> = values.iter().map(String::as_str).collect();
    want.sort();
    assert_eq!(got, want);
    drop(started);
}

/// Starts every node at once (each waits for the others to form the quorum).
async fn futures_join_all(
    nodes: Vec<testcontainers::ContainerRequest<GenericImage>>,
) -> Vec<testcontainers::ContainerAsync<GenericImage>> {
    let handles: Vec<_> =
        nodes.into_iter().map(|n| tokio::spawn(async move { n.start().await })).collect();
    let mut out = Vec::new();
    for h in handles {
        out.push(h.await.expect("join").expect("container starts"));
    }
    out
}
