//! What the broker counts as it runs, and the gauges read at scrape time, in one
//! prometheus-client registry rendered as OpenMetrics text (which Prometheus scrapes). Counters
//! are atomics and request latencies go into fixed buckets per API, so recording never blocks a
//! request and memory is bounded by the number of API keys.

use std::sync::Mutex;
use std::time::Duration;

use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::metrics::histogram::Histogram;
use prometheus_client::registry::Registry;

/// Histogram bucket upper bounds, in seconds (Prometheus convention).
pub(crate) const LATENCY_BUCKETS_S: [f64; 12] =
    [0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 5.0];

#[derive(Debug, Clone, Hash, PartialEq, Eq, EncodeLabelSet)]
struct ApiLabel {
    api: &'static str,
}

/// A consumer group's lag on one partition.
#[derive(Debug, Clone, Hash, PartialEq, Eq, EncodeLabelSet)]
pub(crate) struct LagLabels {
    pub(crate) group: String,
    pub(crate) topic: String,
    pub(crate) partition: i32,
}

fn latency_histogram() -> Histogram {
    Histogram::new(LATENCY_BUCKETS_S)
}

/// Broker state sampled at scrape time.
#[derive(Debug, Clone, Default, PartialEq)]
pub(crate) struct Sample {
    pub(crate) active_controller: bool,
    pub(crate) raft_term: u64,
    pub(crate) raft_commit_index: u64,
    pub(crate) raft_last_log_index: u64,
    pub(crate) leader_partitions: u64,
    pub(crate) under_replicated_partitions: u64,
    pub(crate) offline_partitions: u64,
    pub(crate) group_lag: Vec<(LagLabels, i64)>,
    pub(crate) cleaner: CleanerSample,
}

/// The log cleaner's totals and state, read at scrape time.
#[derive(Debug, Clone, Default, PartialEq)]
pub(crate) struct CleanerSample {
    pub(crate) bytes_read: u64,
    pub(crate) bytes_written: u64,
    pub(crate) rounds: u64,
    pub(crate) last_run_duration_s: f64,
    pub(crate) max_dirty_ratio: f64,
    pub(crate) uncleanable_partitions: u64,
}

/// The gauges a [`Sample`] sets.
#[derive(Debug, Default)]
struct Gauges {
    active_controller: Gauge,
    raft_term: Gauge,
    raft_commit_index: Gauge,
    raft_last_log_index: Gauge,
    leader_partitions: Gauge,
    under_replicated_partitions: Gauge,
    offline_partitions: Gauge,
    group_lag: Family<LagLabels, Gauge>,
    cleaner_bytes_read: Counter,
    cleaner_bytes_written: Counter,
    cleaner_rounds: Counter,
    cleaner_last_run_duration_s: Gauge<f64, std::sync::atomic::AtomicU64>,
    cleaner_max_dirty_ratio: Gauge<f64, std::sync::atomic::AtomicU64>,
    cleaner_uncleanable_partitions: Gauge,
}

/// Every metric of one node.
pub(crate) struct Metrics {
    registry: Registry,
    requests: Family<ApiLabel, Counter>,
    latency: Family<ApiLabel, Histogram, fn() -> Histogram>,
    bytes_in: Counter,
    bytes_out: Counter,
    produce_conversions: Counter,
    fetch_conversions: Counter,
    follower_fetch_bytes: Counter,
    pub(crate) isr_shrinks: Counter,
    pub(crate) isr_expands: Counter,
    gauges: Gauges,
    /// One scrape at a time: a scrape sets the gauges, then encodes them.
    scrape: Mutex<()>,
}

impl Default for Metrics {
    fn default() -> Self {
        let m = Metrics {
            registry: Registry::default(),
            requests: Family::default(),
            latency: Family::new_with_constructor(latency_histogram),
            bytes_in: Counter::default(),
            bytes_out: Counter::default(),
            produce_conversions: Counter::default(),
            fetch_conversions: Counter::default(),
            follower_fetch_bytes: Counter::default(),
            isr_shrinks: Counter::default(),
            isr_expands: Counter::default(),
            gauges: Gauges::default(),
            scrape: Mutex::new(()),
        };
        m.register()
    }
}

impl std::fmt::Debug for Metrics {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Metrics").finish_non_exhaustive()
    }
}

impl Metrics {
    fn register(mut self) -> Self {
        let r = &mut self.registry;
        // Counters get their `_total` suffix from the registry.
        r.register("samsa_requests", "Kafka requests handled, by API", self.requests.clone());
        r.register(
            "samsa_request_latency_seconds",
            "Kafka request handling time, by API",
            self.latency.clone(),
        );
        r.register("samsa_bytes_in", "Bytes of Kafka requests received", self.bytes_in.clone());
        r.register("samsa_bytes_out", "Bytes of Kafka responses sent", self.bytes_out.clone());
        r.register(
            "samsa_produce_message_conversions",
            "Records up-converted from message format v0/v1 on append (Kafka's ProduceMessageConversionsPerSec)",
            self.produce_conversions.clone(),
        );
        r.register(
            "samsa_fetch_message_conversions",
            "Records down-converted to message format v0/v1 for Fetch v0-3 (Kafka's FetchMessageConversionsPerSec)",
            self.fetch_conversions.clone(),
        );
        r.register(
            "samsa_follower_fetch_bytes",
            "Bytes of records this broker served to consumers as a follower (KIP-392 fetch from the closest replica)",
            self.follower_fetch_bytes.clone(),
        );
        r.register(
            "samsa_isr_shrinks",
            "ISR shrinks this broker proposed as a leader",
            self.isr_shrinks.clone(),
        );
        r.register(
            "samsa_isr_expands",
            "ISR expansions this broker proposed as a leader",
            self.isr_expands.clone(),
        );
        let g = &self.gauges;
        let gauges = [
            (
                "samsa_active_controller",
                "1 on the node that is the active controller",
                &g.active_controller,
            ),
            ("samsa_raft_term", "The metadata quorum's current raft term", &g.raft_term),
            (
                "samsa_raft_commit_index",
                "The last metadata log index applied on this node",
                &g.raft_commit_index,
            ),
            (
                "samsa_raft_last_log_index",
                "The last metadata log index this node holds",
                &g.raft_last_log_index,
            ),
            ("samsa_leader_partitions", "Partitions this broker leads", &g.leader_partitions),
            (
                "samsa_under_replicated_partitions",
                "Partitions this broker leads whose ISR is smaller than the replica set",
                &g.under_replicated_partitions,
            ),
            (
                "samsa_offline_partitions",
                "Partitions without a live leader, in this node's metadata",
                &g.offline_partitions,
            ),
        ];
        for (name, help, gauge) in gauges {
            r.register(name, help, gauge.clone());
        }
        r.register(
            "samsa_log_cleaner_bytes_read",
            "Bytes the log cleaner read from compacted logs",
            g.cleaner_bytes_read.clone(),
        );
        r.register(
            "samsa_log_cleaner_bytes_written",
            "Bytes the log cleaner wrote into cleaned segments",
            g.cleaner_bytes_written.clone(),
        );
        r.register(
            "samsa_log_cleaner_rounds",
            "Cleaning rounds finished",
            g.cleaner_rounds.clone(),
        );
        r.register(
            "samsa_log_cleaner_last_run_duration_seconds",
            "How long the last cleaning round took",
            g.cleaner_last_run_duration_s.clone(),
        );
        r.register(
            "samsa_log_cleaner_max_dirty_ratio",
            "The largest dirty ratio over this node's compacted logs",
            g.cleaner_max_dirty_ratio.clone(),
        );
        r.register(
            "samsa_log_cleaner_uncleanable_partitions",
            "Compacted logs whose last cleaning failed (retried after 10 minutes)",
            g.cleaner_uncleanable_partitions.clone(),
        );
        r.register(
            "samsa_consumer_group_lag",
            "High watermark minus committed offset, for groups this broker coordinates and partitions it leads",
            g.group_lag.clone(),
        );
        self
    }

    /// Records one handled request of `api`.
    pub(crate) fn record_request(&self, api: &'static str, elapsed: Duration) {
        let label = ApiLabel { api };
        self.requests.get_or_create(&label).inc();
        self.latency.get_or_create(&label).observe(elapsed.as_secs_f64());
    }

    pub(crate) fn add_bytes_in(&self, n: usize) {
        self.bytes_in.inc_by(n as u64);
    }

    pub(crate) fn add_produce_conversions(&self, records: usize) {
        self.produce_conversions.inc_by(records as u64);
    }

    pub(crate) fn add_follower_fetch_bytes(&self, n: usize) {
        self.follower_fetch_bytes.inc_by(n as u64);
    }

    pub(crate) fn add_fetch_conversions(&self, records: usize) {
        self.fetch_conversions.inc_by(records as u64);
    }

    pub(crate) fn add_bytes_out(&self, n: usize) {
        self.bytes_out.inc_by(n as u64);
    }

    /// Every metric in OpenMetrics text, with the gauges set from `sample`.
    pub(crate) fn encode(&self, sample: Sample) -> String {
        let _one_scrape = self.scrape.lock().unwrap_or_else(|p| p.into_inner());
        let g = &self.gauges;
        let as_i64 = |v: u64| i64::try_from(v).unwrap_or(i64::MAX);
        g.active_controller.set(i64::from(sample.active_controller));
        g.raft_term.set(as_i64(sample.raft_term));
        g.raft_commit_index.set(as_i64(sample.raft_commit_index));
        g.raft_last_log_index.set(as_i64(sample.raft_last_log_index));
        g.leader_partitions.set(as_i64(sample.leader_partitions));
        g.under_replicated_partitions.set(as_i64(sample.under_replicated_partitions));
        g.offline_partitions.set(as_i64(sample.offline_partitions));
        let c = &sample.cleaner;
        let catch_up = |counter: &Counter, total: u64| {
            counter.inc_by(total.saturating_sub(counter.get()));
        };
        catch_up(&g.cleaner_bytes_read, c.bytes_read);
        catch_up(&g.cleaner_bytes_written, c.bytes_written);
        catch_up(&g.cleaner_rounds, c.rounds);
        g.cleaner_last_run_duration_s.set(c.last_run_duration_s);
        g.cleaner_max_dirty_ratio.set(c.max_dirty_ratio);
        g.cleaner_uncleanable_partitions.set(as_i64(c.uncleanable_partitions));
        g.group_lag.clear();
        for (labels, lag) in &sample.group_lag {
            g.group_lag.get_or_create(labels).set(*lag);
        }
        let mut out = String::new();
        if let Err(e) = prometheus_client::encoding::text::encode(&mut out, &self.registry) {
            tracing::error!(error = %e, "encoding metrics failed");
        }
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn requests_render_as_a_cumulative_histogram() {
        let m = Metrics::default();
        m.record_request("Produce", Duration::from_micros(300));
        m.record_request("Produce", Duration::from_millis(30));
        m.add_bytes_in(10);
        let lag = LagLabels { group: "g\"1".into(), topic: "t".into(), partition: 0 };
        let out = m.encode(Sample { group_lag: vec![(lag, 7)], ..Default::default() });
        assert!(out.contains("samsa_requests_total{api=\"Produce\"} 2"), "{out}");
        assert!(
            out.contains("samsa_request_latency_seconds_bucket{le=\"0.0005\",api=\"Produce\"} 1")
                || out.contains(
                    "samsa_request_latency_seconds_bucket{api=\"Produce\",le=\"0.0005\"} 1"
                ),
            "{out}"
        );
        assert!(out.contains("samsa_bytes_in_total 10"), "{out}");
        assert!(
            out.contains(
                "samsa_consumer_group_lag{group=\"g\\\"1\",topic=\"t\",partition=\"0\"} 7"
            ),
            "{out}"
        );
        assert!(out.trim_end().ends_with("# EOF"));
    }
}
