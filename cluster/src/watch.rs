//! The runner's two watchers, tasks on its tokio runtime for the whole run: the observer
//! records every change of a workload partition's leadership (leader, epoch, ISR) and of the
//! active controller as the first node to report it; the sampler reads the group's committed
//! offsets twice a second from the coordinator the active controller names. Both only record.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use crate::history::{Event, Recorder, now_ms};
use crate::probe::{ClusterView, Probe};

/// How often the observer asks every node who leads.
const OBSERVE_EVERY: Duration = Duration::from_millis(200);
/// How often the sampler reads the group's committed offsets.
pub(crate) const SAMPLE_EVERY: Duration = Duration::from_millis(500);

/// The active controller as the observer last saw it (-1: none known).
pub(crate) type SharedController = Arc<std::sync::atomic::AtomicI32>;

/// Watches leadership and the controller until `stop`, recording every change.
pub(crate) async fn observe(
    mut probe: Probe,
    rec: Recorder,
    topic: String,
    controller: SharedController,
    stop: Arc<AtomicBool>,
) {
    let mut last = ClusterView::default();
    while !stop.load(Ordering::Relaxed) {
        let view = probe.view(&topic).await;
        controller.store(view.controller.map_or(-1, |(c, _)| c), Ordering::Relaxed);
        let t = now_ms();
        for (p, v) in &view.partitions {
            if last.partitions.get(p) != Some(v) {
                rec.record(&Event::Leader {
                    t,
                    p: *p,
                    leader: v.leader,
                    epoch: v.epoch,
                    isr: v.isr.clone(),
                });
                last.partitions.insert(*p, v.clone());
            }
        }
        if last.controller != view.controller {
            // None too (no node knows a controller, e.g. every node down): a controller that
            // comes back at the same term (openraft restores a restarted leader) is then seen.
            let (node, term) = match (view.controller, last.controller) {
                (Some(c), _) => c,
                (None, Some((_, term))) => (-1, term),
                (None, None) => (-1, -1),
            };
            rec.record(&Event::Controller { t, node, term });
            last.controller = view.controller;
        }
        tokio::time::sleep(OBSERVE_EVERY).await;
    }
}

/// Reads the group's committed offsets from the coordinator the active controller names, until
/// `stop`.
pub(crate) async fn sample_offsets(
    mut probe: Probe,
    rec: Recorder,
    (group, topic, partitions): (String, String, i32),
    controller: SharedController,
    stop: Arc<AtomicBool>,
) {
    while !stop.load(Ordering::Relaxed) {
        let t0 = now_ms();
        let via = controller.load(Ordering::Relaxed);
        if via >= 0
            && let Some(offsets) = probe.committed(&group, &topic, partitions, via).await
        {
            let offsets = offsets.into_iter().map(|(p, o)| (p.to_string(), o)).collect();
            rec.record(&Event::Offsets { t: now_ms(), t0, group: group.clone(), offsets });
        }
        tokio::time::sleep(SAMPLE_EVERY).await;
    }
}
