//! The admin HTTP listener (`admin.listener`), for orchestrators and monitoring:
//! * `GET /healthz`: 200 while the process serves (liveness);
//! * `GET /readyz`: 200 once this node is registered, unfenced, knows the active controller and
//!   has applied the metadata log up to what it holds (readiness); 503 with the reason before;
//! * `GET /metrics`: Prometheus text format.
//!
//! It only reads broker state; nothing here can change it.

pub mod http;
pub mod metrics;

use std::fmt::Write as _;
use std::future::Future;
use std::sync::Arc;

use tokio::net::TcpListener;

use self::http::Response;
use self::metrics::{header, label};
use crate::broker::Broker;

/// A node is ready when its applied metadata is at most this many raft entries behind the
/// entries it holds.
pub const METADATA_LAG_READY_MAX: u64 = 10;

/// Serves the admin endpoints until `shutdown` resolves.
pub async fn serve(listener: TcpListener, broker: Arc<Broker>, shutdown: impl Future<Output = ()>) {
    tokio::pin!(shutdown);
    loop {
        tokio::select! {
            _ = &mut shutdown => break,
            accepted = listener.accept() => {
                let Ok((mut stream, _)) = accepted else { continue };
                let broker = broker.clone();
                tokio::spawn(async move {
                    let Some((method, path)) = http::read_request(&mut stream).await else { return };
                    let response = route(&broker, &method, &path);
                    http::write_response(&mut stream, &response).await;
                });
            }
        }
    }
}

fn route(broker: &Broker, method: &str, path: &str) -> Response {
    if method != "GET" && method != "HEAD" {
        return Response::text(405, "only GET\n");
    }
    match path {
        "/healthz" => Response::text(200, "ok\n"),
        "/readyz" => match readiness(broker) {
            Ok(()) => Response::text(200, "ready\n"),
            Err(why) => Response::text(503, format!("not ready: {why}\n")),
        },
        "/metrics" => Response {
            status: 200,
            content_type: "text/plain; version=0.0.4; charset=utf-8",
            body: render(broker),
        },
        _ => Response::text(404, "endpoints: /healthz /readyz /metrics\n"),
    }
}

/// Why this node should not get traffic yet, if it should not.
pub fn readiness(broker: &Broker) -> Result<(), String> {
    let quorum = broker.metadata.quorum();
    if quorum.leader.is_none() {
        return Err("no active controller is known".into());
    }
    if quorum.applied_index + METADATA_LAG_READY_MAX < quorum.last_log_index {
        return Err(format!(
            "metadata applied to index {} of {}",
            quorum.applied_index, quorum.last_log_index
        ));
    }
    if broker.config.process_roles.broker {
        match broker.metadata.image().brokers.get(&broker.config.node_id) {
            None => return Err("not registered with the controller".into()),
            Some(b) if b.fenced => return Err("fenced by the controller".into()),
            Some(_) => {}
        }
    }
    Ok(())
}

/// Every metric: the counters plus gauges read now.
pub fn render(broker: &Broker) -> String {
    let mut out = String::new();
    broker.metrics.render(&mut out);
    let quorum = broker.metadata.quorum();
    let image = broker.metadata.image();
    let is_controller = quorum.leader == Some(broker.config.node_id);
    let mut led = 0;
    let mut under_replicated = 0;
    for part in broker.replicas.all() {
        let st = part.snapshot();
        if st.leader == Some(broker.config.node_id) {
            led += 1;
            if st.isr.len() < st.replicas.len() {
                under_replicated += 1;
            }
        }
    }
    let live = |id: &crate::types::NodeId| image.brokers.get(id).is_some_and(|b| !b.fenced);
    let offline = image
        .topics
        .values()
        .flat_map(|t| &t.partitions)
        .filter(|p| !p.leader.as_ref().is_some_and(live))
        .count();
    let gauges = [
        (
            "samsa_active_controller",
            "1 on the node that is the active controller.",
            u64::from(is_controller),
        ),
        ("samsa_raft_term", "The metadata quorum's current raft term.", quorum.term),
        (
            "samsa_raft_commit_index",
            "The last metadata log index applied on this node.",
            quorum.commit_index,
        ),
        (
            "samsa_raft_last_log_index",
            "The last metadata log index this node holds.",
            quorum.last_log_index,
        ),
        ("samsa_leader_partitions", "Partitions this broker leads.", led),
        (
            "samsa_under_replicated_partitions",
            "Partitions this broker leads whose ISR is smaller than the replica set.",
            under_replicated,
        ),
        (
            "samsa_offline_partitions",
            "Partitions without a live leader, in this node's metadata.",
            offline as u64,
        ),
    ];
    for (name, help, v) in gauges {
        header(&mut out, name, "gauge", help);
        let _ = writeln!(out, "{name} {v}");
    }
    header(
        &mut out,
        "samsa_consumer_group_lag",
        "gauge",
        "High watermark minus committed offset, for groups this broker coordinates and partitions it leads.",
    );
    for (group, topic, partition, committed) in broker.groups.committed_offsets() {
        let Some(part) = broker.replicas.get(&topic, partition) else { continue };
        if !part.is_leader() {
            continue;
        }
        let lag = (part.high_watermark().0 - committed).max(0);
        let _ = writeln!(
            out,
            "samsa_consumer_group_lag{{group=\"{}\",topic=\"{}\",partition=\"{partition}\"}} {lag}",
            label(&group),
            label(&topic)
        );
    }
    out
}
