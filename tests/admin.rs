//! The admin HTTP listener: liveness, readiness, Prometheus metrics that move with traffic, and
//! `samsa health` (the container healthcheck) answering through it.

mod common;

use std::process::Command;

use common::TestBroker;
use kafka_protocol::messages::MetadataRequest;
use samsa::client::KafkaClient;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};

async fn get(addr: &str, request: &str) -> (u16, String) {
    let mut s = TcpStream::connect(addr).await.expect("connect");
    s.write_all(request.as_bytes()).await.expect("write");
    let mut raw = String::new();
    s.read_to_string(&mut raw).await.expect("read");
    let (head, body) = raw.split_once("\r\n\r\n").expect("an HTTP response");
    let status = head.split_whitespace().nth(1).and_then(|s| s.parse().ok()).expect("status");
    (status, body.to_string())
}

fn http_get(path: &str) -> String {
    format!("GET {path} HTTP/1.1\r\nHost: x\r\n\r\n")
}

/// The value of an unlabelled metric, or of `name{labels}`.
fn metric(text: &str, series: &str) -> Option<f64> {
    text.lines().find_map(|l| l.strip_prefix(series)?.strip_prefix(' ')?.parse().ok())
}

#[tokio::test(flavor = "multi_thread")]
async fn health_readiness_and_metrics_are_served_and_metrics_follow_traffic() {
    let b = TestBroker::start(&[]).await;
    let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind");
    let admin = listener.local_addr().expect("addr").to_string();
    let (stop_tx, stop_rx) = tokio::sync::oneshot::channel::<()>();
    tokio::spawn(samsa::admin::serve(listener, b.broker.clone(), Default::default(), async {
        let _ = stop_rx.await;
    }));

    assert_eq!(get(&admin, &http_get("/healthz")).await, (200, "ok\n".into()));
    assert_eq!(get(&admin, &http_get("/readyz")).await, (200, "ready\n".into()));
    assert_eq!(get(&admin, &http_get("/nope")).await.0, 404);
    assert_eq!(get(&admin, "POST /metrics HTTP/1.1\r\n\r\n").await.0, 405);

    let (status, before) = get(&admin, &http_get("/metrics")).await;
    assert_eq!(status, 200);
    for name in [
        "samsa_bytes_in_total",
        "samsa_active_controller",
        "samsa_raft_term",
        "samsa_raft_commit_index",
        "samsa_under_replicated_partitions",
        "samsa_offline_partitions",
        "samsa_isr_shrinks_total",
        "samsa_isr_expands_total",
    ] {
        assert!(metric(&before, name).is_some(), "{name} missing from:\n{before}");
    }
    assert_eq!(metric(&before, "samsa_active_controller"), Some(1.0));
    // OpenMetrics text (the group-lag family has series only once a group commits; its
    // rendering is unit-tested beside the registry).
    assert!(before.trim_end().ends_with("# EOF"), "{before}");

    let mut c = KafkaClient::connect(&b.bootstrap()).await.expect("connect");
    for _ in 0..3 {
        c.send(&MetadataRequest::default(), 12).await.expect("metadata");
    }
    let (_, after) = get(&admin, &http_get("/metrics")).await;
    let requests = |t: &str| metric(t, "samsa_requests_total{api=\"Metadata\"}").unwrap_or(0.0);
    assert_eq!(requests(&after) - requests(&before), 3.0);
    assert!(metric(&after, "samsa_bytes_out_total") > metric(&before, "samsa_bytes_out_total"));
    assert!(after.contains("samsa_request_latency_seconds_bucket{le=\"+Inf\",api=\"Metadata\"}"));

    // A fenced broker must not get traffic: 503 until its next heartbeat unfences it.
    let fence =
        samsa::controller::ControllerRequest::FenceBroker { broker: samsa::types::NodeId(1) };
    b.broker.local_controller.execute(fence).await.expect("fence");
    let (status, body) = get(&admin, &http_get("/readyz")).await;
    assert_eq!((status, body.as_str()), (503, "not ready: fenced by the controller\n"));
    common::wire::eventually(std::time::Duration::from_secs(10), || {
        let admin = admin.clone();
        async move { (get(&admin, &http_get("/readyz")).await.0 == 200).then_some(()) }
    })
    .await;

    // The container healthcheck: the binary itself, exit status only.
    let samsa = env!("CARGO_BIN_EXE_samsa");
    let ready = Command::new(samsa).args(["health", "--admin", &admin]).output().expect("run");
    assert!(ready.status.success(), "{}", String::from_utf8_lossy(&ready.stderr));
    let live =
        Command::new(samsa).args(["health", "--live", "--admin", &admin]).output().expect("run");
    assert!(live.status.success());
    let _ = stop_tx.send(());
    b.stop().await;
    let gone = Command::new(samsa).args(["health", "--admin", &admin]).output().expect("run");
    assert!(!gone.status.success(), "a stopped node is not healthy");
}
