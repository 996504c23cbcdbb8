//! Background work of a broker, each loop bounded by the shutdown signal:
//! * the reconciler applies every new metadata image to the local replicas;
//! * the flusher fsyncs logs whose unflushed data is older than `flush.ms`;
//! * retention deletes old segments every `log.retention.check.interval.ms` and expires idle
//!   idempotent producers.

use std::sync::{Arc, Weak};
use std::time::Duration;

use super::{Broker, now_ms};

pub(super) fn spawn_all(broker: &Arc<Broker>) {
    spawn_loop(broker, "reconciler", reconcile_loop);
    spawn_loop(broker, "session-expiry", expire_sessions_loop);
    spawn_loop(broker, "isr-shrink", crate::replication::isr::shrink_loop);
    if broker.config.auto_leader_rebalance_enable {
        spawn_loop(broker, "preferred-leaders", preferred_leader_loop);
    }
    crate::replication::fetcher::ensure_fetchers(broker);
    if broker.config.process_roles.broker {
        spawn_loop(broker, "heartbeat", heartbeat_loop);
    }
    let flush_every = Duration::from_millis(broker.config.log_flush_scheduler_interval_ms as u64);
    spawn_periodic(broker, "flusher", flush_every, flush_due);
    let retention_every =
        Duration::from_millis(broker.config.log_retention_check_interval_ms as u64);
    spawn_periodic(broker, "retention", retention_every, enforce_retention);
    spawn_periodic(broker, "hw-checkpoint", HW_CHECKPOINT_INTERVAL, |b| {
        b.replicas.checkpoint_high_watermarks()
    });
}

fn spawn_periodic(broker: &Arc<Broker>, name: &'static str, every: Duration, work: fn(&Broker)) {
    let weak = Arc::downgrade(broker);
    let mut stop = broker.shutdown_signal();
    tokio::spawn(async move {
        let mut tick = tokio::time::interval(every);
        tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            tokio::select! {
                _ = tick.tick() => {}
                _ = stop.changed() => break,
            }
            let Some(broker) = weak.upgrade() else { break };
            if *stop.borrow() {
                break;
            }
            if tokio::task::spawn_blocking(move || work(&broker)).await.is_err() {
                tracing::error!(task = name, "background task panicked");
            }
        }
    });
}

fn spawn_loop<F, Fut>(broker: &Arc<Broker>, name: &'static str, f: F)
where
    F: FnOnce(Weak<Broker>) -> Fut + Send + 'static,
    Fut: std::future::Future<Output = ()> + Send + 'static,
{
    let weak = Arc::downgrade(broker);
    tokio::spawn(async move {
        f(weak).await;
        tracing::debug!(task = name, "stopped");
    });
}

async fn reconcile_loop(weak: Weak<Broker>) {
    let (mut images, mut stop) = match weak.upgrade() {
        Some(b) => (b.metadata.subscribe(), b.shutdown_signal()),
        None => return,
    };
    loop {
        tokio::select! {
            changed = images.changed() => if changed.is_err() { break },
            _ = stop.changed() => break,
        }
        let image = images.borrow_and_update().clone();
        let Some(broker) = weak.upgrade() else { break };
        let b = broker.clone();
        let result =
            tokio::task::spawn_blocking(move || b.replicas.reconcile(&image, &b.config)).await;
        crate::replication::fetcher::ensure_fetchers(&broker);
        match result {
            Ok(Ok(())) => {}
            Ok(Err(e)) => tracing::error!(error = %e, "applying metadata to local replicas failed"),
            Err(e) => tracing::error!(error = %e, "reconciler panicked"),
        }
    }
}

/// How often moved high watermarks are written to disk (Kafka's
/// replica.high.watermark.checkpoint.interval.ms).
const HW_CHECKPOINT_INTERVAL: Duration = Duration::from_secs(5);
/// How often the active controller looks for expired broker sessions.
const SESSION_CHECK_INTERVAL: Duration = Duration::from_millis(250);

async fn heartbeat_loop(weak: Weak<Broker>) {
    let (every, mut stop) = match weak.upgrade() {
        Some(b) => (
            Duration::from_millis(b.config.broker_heartbeat_interval_ms as u64),
            b.shutdown_signal(),
        ),
        None => return,
    };
    loop {
        tokio::select! {
            _ = tokio::time::sleep(every) => {}
            _ = stop.changed() => break,
        }
        let Some(broker) = weak.upgrade() else { break };
        if *stop.borrow() {
            break;
        }
        if let Err(e) = broker.heartbeat(false).await {
            tracing::warn!(error = %e, "heartbeat to the controller failed");
        }
    }
}

async fn expire_sessions_loop(weak: Weak<Broker>) {
    let mut stop = match weak.upgrade() {
        Some(b) => b.shutdown_signal(),
        None => return,
    };
    loop {
        tokio::select! {
            _ = tokio::time::sleep(SESSION_CHECK_INTERVAL) => {}
            _ = stop.changed() => break,
        }
        let Some(broker) = weak.upgrade() else { break };
        for id in broker.local_controller.expired_sessions() {
            tracing::warn!(broker = %id, "broker session expired; fencing it and moving its leaderships");
            let request = crate::controller::ControllerRequest::FenceBroker { broker: id };
            if let Err(e) = broker.local_controller.execute(request).await {
                tracing::warn!(broker = %id, error = %e, "fencing failed");
            }
        }
    }
}

/// On the active controller, every `leader.imbalance.check.interval.seconds`: leaderships go
/// back to preferred replicas that are live and in sync.
async fn preferred_leader_loop(weak: Weak<Broker>) {
    let (every, mut stop) = match weak.upgrade() {
        Some(b) => (
            Duration::from_secs(b.config.leader_imbalance_check_interval_seconds as u64),
            b.shutdown_signal(),
        ),
        None => return,
    };
    loop {
        tokio::select! {
            _ = tokio::time::sleep(every) => {}
            _ = stop.changed() => break,
        }
        let Some(broker) = weak.upgrade() else { break };
        // Only the active controller acts; elsewhere execute() answers NOT_CONTROLLER at once.
        let request = crate::controller::ControllerRequest::PreferredLeaderElection;
        if let Ok(e) = broker.local_controller.execute(request).await
            && e.index > 0
        {
            tracing::info!("moved leaderships back to preferred replicas");
        }
    }
}

fn flush_due(broker: &Broker) {
    let now = now_ms();
    for part in broker.replicas.all() {
        let mut log = part.log();
        if log.flush_due(now)
            && let Err(e) = log.flush()
        {
            tracing::error!(partition = %part.tp, error = %e, "periodic flush failed");
        }
    }
}

fn enforce_retention(broker: &Broker) {
    let now = now_ms();
    let producer_cutoff = now.saturating_sub(broker.config.producer_id_expiration_ms);
    for part in broker.replicas.all() {
        let hw = part.high_watermark();
        let mut log = part.log();
        log.expire_producers(producer_cutoff);
        match log.enforce_retention(now, hw) {
            Ok(0) => {}
            Ok(n) => tracing::info!(partition = %part.tp, segments = n,
                log_start_offset = %log.log_start_offset(), "retention deleted segments"),
            Err(e) => tracing::error!(partition = %part.tp, error = %e, "retention failed"),
        }
    }
}
