//! Background work of a broker, each loop bounded by the shutdown signal:
//! * the reconciler applies every new metadata image to the local replicas;
//! * the flusher fsyncs logs whose unflushed data is older than `flush.ms`;
//! * retention deletes old segments every `log.retention.check.interval.ms` and expires idle
//!   idempotent producers;
//! * the log cleaner's threads compact logs with `cleanup.policy=compact` (`cleaner`);
//! * a voter has the quorum record its data directory id (KIP-853).

use std::sync::{Arc, Weak};
use std::time::Duration;

use super::Broker;
use crate::clock::now_ms;

/// How often a voter checks that the quorum recorded its directory id (KIP-853).
const VOTER_DIRECTORY_INTERVAL: Duration = Duration::from_secs(1);

pub(super) fn spawn_all(broker: &Arc<Broker>) {
    spawn_loop(broker, "reconciler", reconcile_loop);
    spawn_every(broker, "session-expiry", SESSION_CHECK_INTERVAL, expire_sessions);
    spawn_every(broker, "isr-shrink", ISR_CHECK_INTERVAL, |b| async move {
        b.replication.shrink_isrs(now_ms())
    });
    if broker.config.auto_leader_rebalance_enable {
        let every =
            Duration::from_secs(broker.config.leader_imbalance_check_interval_seconds as u64);
        spawn_every(broker, "preferred-leaders", every, elect_preferred_leaders);
    }
    spawn_every(broker, "group-timers", GROUP_TICK_INTERVAL, |b| async move { b.groups.tick() });
    if broker.config.process_roles.controller {
        spawn_every(broker, "voter-directory", VOTER_DIRECTORY_INTERVAL, |b| async move {
            b.record_voter_directory().await
        });
    }
    let every =
        Duration::from_millis(broker.config.txn.abort_timed_out_cleanup_interval_ms.max(1) as u64);
    spawn_every(broker, "transaction-timeouts", every, |b| async move {
        b.txns.abort_timed_out().await
    });
    let every =
        Duration::from_millis(broker.config.txn.remove_expired_cleanup_interval_ms.max(1) as u64);
    spawn_every(
        broker,
        "transactional-id-expiry",
        every,
        |b| async move { b.txns.expire_ids().await },
    );
    let every =
        Duration::from_millis(broker.config.group.offsets_retention_check_interval_ms as u64);
    spawn_every(broker, "offsets-expiry", every, |b| async move {
        b.groups.expire_offsets(now_ms()).await;
    });
    if broker.config.process_roles.broker {
        let every = Duration::from_millis(broker.config.broker_heartbeat_interval_ms as u64);
        spawn_every(broker, "heartbeat", every, |b| async move {
            if let Err(e) = b.heartbeat(false).await {
                tracing::warn!(error = %e, "heartbeat to the controller failed");
            }
        });
    }
    let flush_every = Duration::from_millis(broker.config.log_flush_scheduler_interval_ms as u64);
    spawn_periodic(broker, "flusher", flush_every, flush_due);
    let retention_every =
        Duration::from_millis(broker.config.log_retention_check_interval_ms as u64);
    spawn_periodic(broker, "retention", retention_every, enforce_retention);
    spawn_periodic(broker, "hw-checkpoint", HW_CHECKPOINT_INTERVAL, |b| {
        b.replicas.checkpoint_high_watermarks()
    });
    spawn_periodic(broker, "recovery-point-checkpoint", RECOVERY_POINT_CHECKPOINT_INTERVAL, |b| {
        b.replicas.checkpoint_recovery_points()
    });
    if broker.config.process_roles.broker && broker.config.cleaner.enable {
        let (replicas, stats) = (broker.replicas.clone(), broker.cleaner.clone());
        let config = broker.config.cleaner.clone();
        if let Err(e) = crate::cleaner::spawn(replicas, config, stats, broker.shutdown_signal()) {
            tracing::error!(error = %e, "the log cleaner threads could not start");
        }
    }
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

/// Runs `work` every `every` until shutdown (async work; the broker is held only while it runs).
fn spawn_every<F, Fut>(broker: &Arc<Broker>, name: &'static str, every: Duration, work: F)
where
    F: Fn(Arc<Broker>) -> Fut + Send + 'static,
    Fut: std::future::Future<Output = ()> + Send + 'static,
{
    let weak = Arc::downgrade(broker);
    let mut stop = broker.shutdown_signal();
    tokio::spawn(async move {
        loop {
            tokio::select! {
                _ = tokio::time::sleep(every) => {}
                _ = stop.changed() => break,
            }
            let Some(broker) = weak.upgrade() else { break };
            if *stop.borrow() {
                break;
            }
            work(broker).await;
        }
        tracing::debug!(task = name, "stopped");
    });
}

/// On the active controller: fences brokers whose session expired.
async fn expire_sessions(broker: Arc<Broker>) {
    for id in broker.local_controller.expired_sessions() {
        tracing::warn!(broker = %id, "broker session expired; fencing it and moving its leaderships");
        let request = crate::controller::ControllerRequest::FenceBroker { broker: id };
        if let Err(e) = broker.local_controller.execute(request).await {
            tracing::warn!(broker = %id, error = %e, "fencing failed");
        }
    }
}

/// On the active controller: leaderships go back to preferred replicas that are live and in
/// sync (elsewhere `execute` answers NOT_CONTROLLER at once).
async fn elect_preferred_leaders(broker: Arc<Broker>) {
    let request = crate::controller::ControllerRequest::PreferredLeaderElection;
    if let Ok(e) = broker.local_controller.execute(request).await
        && e.index > 0
    {
        tracing::info!("moved leaderships back to preferred replicas");
    }
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
    // The last failure logged: a retry that fails the same way is not logged again.
    let mut last_failure: Option<String> = None;
    loop {
        let retry = match weak.upgrade() {
            Some(b) => b.replicas.has_offline(),
            None => break,
        };
        tokio::select! {
            changed = images.changed() => if changed.is_err() { break },
            () = tokio::time::sleep(RECONCILE_RETRY_INTERVAL), if retry => {}
            _ = stop.changed() => break,
        }
        let image = images.borrow_and_update().clone();
        let Some(broker) = weak.upgrade() else { break };
        let b = broker.clone();
        let result = tokio::task::spawn_blocking(move || b.reconcile(&image)).await;
        broker.follow_replicas();
        match result {
            Ok(Ok(())) => {
                if last_failure.take().is_some() {
                    tracing::info!("every local replica is in line with the metadata again");
                }
            }
            Ok(Err(e)) => {
                let failure = e.to_string();
                if last_failure.as_ref() != Some(&failure) {
                    tracing::error!(error = %failure, "applying metadata to local replicas failed; retrying");
                    last_failure = Some(failure);
                }
            }
            Err(e) => tracing::error!(error = %e, "reconciler panicked"),
        }
    }
}

/// How often replicas that could not be opened or updated (a full disk) are tried again while
/// the metadata does not change.
const RECONCILE_RETRY_INTERVAL: Duration = Duration::from_secs(1);
/// How often moved high watermarks are written to disk (Kafka's
/// replica.high.watermark.checkpoint.interval.ms).
const HW_CHECKPOINT_INTERVAL: Duration = Duration::from_secs(5);
/// How often moved recovery points are written to disk (Kafka's
/// log.flush.offset.checkpoint.interval.ms is 60 s; samsa checkpoints more often, since each
/// write is one small file per changed partition and a crash then re-validates less).
const RECOVERY_POINT_CHECKPOINT_INTERVAL: Duration = Duration::from_secs(10);
/// How often group timers (member sessions, rebalance deadlines) are checked: the error on
/// every group timeout.
const GROUP_TICK_INTERVAL: Duration = Duration::from_millis(100);
/// How often leaders look for lagging followers.
const ISR_CHECK_INTERVAL: Duration = Duration::from_millis(500);
/// How often the active controller looks for expired broker sessions.
const SESSION_CHECK_INTERVAL: Duration = Duration::from_millis(250);

fn flush_due(broker: &Broker) {
    broker.replicas.flush_due(now_ms());
}

fn enforce_retention(broker: &Broker) {
    let now = now_ms();
    let producer_cutoff = now.saturating_sub(broker.config.producer_id_expiration_ms);
    broker.replicas.enforce_retention(now, producer_cutoff);
}
