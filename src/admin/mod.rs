//! The admin HTTP listener (`admin.listener`), for orchestrators and monitoring:
//! * `GET /healthz`: 200 while the process serves (liveness);
//! * `GET /readyz`: 200 once this node is registered, unfenced, knows the active controller and
//!   has applied the metadata log up to what it holds (readiness); 503 with the reason before;
//! * `GET /metrics`: Prometheus text format.
//!
//! It only reads broker state; nothing here can change it. It may serve TLS and require a
//! bearer token on everything but `/healthz` (see [`auth`]).

pub mod auth;
pub(crate) mod metrics;

use std::future::Future;
use std::sync::Arc;
use std::time::Duration;

use axum::Router;
use axum::extract::State;
use axum::http::{StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use hyper_util::rt::{TokioIo, TokioTimer};
use hyper_util::service::TowerToHyperService;
use tokio::net::TcpListener;

use self::auth::{ADMIN_TLS_HANDSHAKE_TIMEOUT, AdminSecurity, AdminToken};
use self::metrics::{LagLabels, Sample};
use crate::broker::Broker;

/// A node is ready when its applied metadata is at most this many raft entries behind the
/// entries it holds.
pub const METADATA_LAG_READY_MAX: u64 = 10;
/// Largest request head read (request line and headers); larger requests are refused.
pub const REQUEST_HEAD_BYTES_MAX: usize = 16 * 1024;
/// How long a client may take to send its request head before the connection is dropped.
pub const REQUEST_READ_TIMEOUT: Duration = Duration::from_secs(5);

/// The admin endpoints; all but `/healthz` behind the bearer token, when one is set.
fn router(broker: Arc<Broker>, token: Option<AdminToken>) -> Router {
    Router::new()
        .route("/readyz", get(ready))
        .route("/metrics", get(prometheus))
        .route_layer(axum::middleware::from_fn_with_state(token, auth::require_token))
        .route("/healthz", get(|| async { "ok\n" }))
        .fallback(|| async { (StatusCode::NOT_FOUND, "endpoints: /healthz /readyz /metrics\n") })
        .with_state(broker)
}

async fn ready(State(broker): State<Arc<Broker>>) -> Response {
    match readiness(&broker) {
        Ok(()) => "ready\n".into_response(),
        Err(why) => {
            (StatusCode::SERVICE_UNAVAILABLE, format!("not ready: {why}\n")).into_response()
        }
    }
}

async fn prometheus(State(broker): State<Arc<Broker>>) -> Response {
    let content_type = "application/openmetrics-text; version=1.0.0; charset=utf-8";
    ([(header::CONTENT_TYPE, content_type)], render(&broker)).into_response()
}

/// Serves the admin endpoints (HTTP/1.1, hyper; over TLS when `security` says so) until
/// `shutdown` resolves. Each connection is bounded: a TLS handshake slower than
/// [`ADMIN_TLS_HANDSHAKE_TIMEOUT`], a request head over [`REQUEST_HEAD_BYTES_MAX`] or slower
/// than [`REQUEST_READ_TIMEOUT`] ends it.
pub async fn serve(
    listener: TcpListener,
    broker: Arc<Broker>,
    security: AdminSecurity,
    shutdown: impl Future<Output = ()>,
) {
    let service = TowerToHyperService::new(router(broker, security.token));
    let tls = security.tls.map(tokio_rustls::TlsAcceptor::from);
    tokio::pin!(shutdown);
    loop {
        tokio::select! {
            _ = &mut shutdown => break,
            accepted = listener.accept() => {
                let Ok((stream, peer)) = accepted else { continue };
                let service = service.clone();
                let tls = tls.clone();
                tokio::spawn(async move {
                    let Some(tls) = tls else {
                        serve_connection(TokioIo::new(stream), service).await;
                        return;
                    };
                    match tokio::time::timeout(ADMIN_TLS_HANDSHAKE_TIMEOUT, tls.accept(stream)).await {
                        Ok(Ok(stream)) => serve_connection(TokioIo::new(stream), service).await,
                        Ok(Err(e)) => tracing::info!(%peer, error = %e, "admin TLS handshake failed"),
                        Err(_) => tracing::info!(%peer, "admin TLS handshake timed out"),
                    }
                });
            }
        }
    }
}

async fn serve_connection<S>(io: TokioIo<S>, service: TowerToHyperService<Router>)
where
    S: tokio::io::AsyncRead + tokio::io::AsyncWrite + Unpin + Send + 'static,
{
    let served = hyper::server::conn::http1::Builder::new()
        // One response per connection, as the probes and scrapers expect.
        .keep_alive(false)
        .timer(TokioTimer::new())
        .header_read_timeout(REQUEST_READ_TIMEOUT)
        .max_buf_size(REQUEST_HEAD_BYTES_MAX)
        .serve_connection(io, service)
        .await;
    if let Err(e) = served {
        tracing::debug!(error = %e, "admin connection ended");
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

fn cleaner_sample(stats: &crate::cleaner::CleanerStats) -> metrics::CleanerSample {
    use std::sync::atomic::Ordering::Relaxed;
    metrics::CleanerSample {
        bytes_read: stats.bytes_read.load(Relaxed),
        bytes_written: stats.bytes_written.load(Relaxed),
        rounds: stats.rounds.load(Relaxed),
        last_run_duration_s: stats.last_run_duration_us.load(Relaxed) as f64 / 1e6,
        max_dirty_ratio: stats.max_dirty_ratio_ppm.load(Relaxed) as f64 / 1e6,
        uncleanable_partitions: stats.uncleanable_partitions() as u64,
    }
}

/// Every metric: the counters plus gauges read now.
pub(crate) fn render(broker: &Broker) -> String {
    let quorum = broker.metadata.quorum();
    let image = broker.metadata.image();
    let mut sample = Sample {
        active_controller: quorum.leader == Some(broker.config.node_id),
        raft_term: quorum.term,
        raft_commit_index: quorum.commit_index,
        raft_last_log_index: quorum.last_log_index,
        cleaner: cleaner_sample(&broker.cleaner),
        ..Default::default()
    };
    for part in broker.replicas.all() {
        let st = part.snapshot();
        if st.leader == Some(broker.config.node_id) {
            sample.leader_partitions += 1;
            if st.isr.len() < st.replicas.len() {
                sample.under_replicated_partitions += 1;
            }
        }
    }
    let live = |id: &crate::types::NodeId| image.brokers.get(id).is_some_and(|b| !b.fenced);
    sample.offline_partitions = image
        .topics
        .values()
        .flat_map(|t| &t.partitions)
        .filter(|p| !p.leader.as_ref().is_some_and(live))
        .count() as u64;
    for (group, topic, partition, committed) in broker.groups.committed_offsets() {
        let Some(part) = broker.replicas.get(&topic, partition) else { continue };
        if !part.is_leader() {
            continue;
        }
        let lag = (part.high_watermark().0 - committed).max(0);
        sample.group_lag.push((LagLabels { group, topic, partition }, lag));
    }
    broker.metrics.encode(sample)
}
