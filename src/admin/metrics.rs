//! Counters the data path bumps, and the Prometheus text rendering of them plus gauges read at
//! scrape time. Counters are atomics: recording never blocks a request. Latencies go into fixed
//! buckets per API key (Prometheus histograms), so memory is bounded by the number of API keys.

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::sync::Mutex;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

/// Histogram bucket upper bounds, in seconds (Prometheus convention).
pub const LATENCY_BUCKETS_S: [f64; 12] =
    [0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 5.0];

/// One API's request count and latency histogram.
#[derive(Debug, Default, Clone)]
struct ApiStats {
    count: u64,
    sum_s: f64,
    buckets: [u64; LATENCY_BUCKETS_S.len()],
}

/// What the broker counts as it runs.
#[derive(Debug, Default)]
pub struct Metrics {
    /// Per API name. A mutex, not atomics: one short lock per request, never across `.await`.
    requests: Mutex<BTreeMap<&'static str, ApiStats>>,
    pub bytes_in: AtomicU64,
    pub bytes_out: AtomicU64,
    pub isr_shrinks: AtomicU64,
    pub isr_expands: AtomicU64,
}

impl Metrics {
    /// Records one handled request of `api`.
    pub fn record_request(&self, api: &'static str, elapsed: Duration) {
        let s = elapsed.as_secs_f64();
        let mut map = self.requests.lock().unwrap_or_else(|p| p.into_inner());
        let stats = map.entry(api).or_default();
        stats.count += 1;
        stats.sum_s += s;
        for (i, le) in LATENCY_BUCKETS_S.iter().enumerate() {
            if s <= *le {
                stats.buckets[i] += 1;
            }
        }
    }

    pub fn add_bytes_in(&self, n: usize) {
        self.bytes_in.fetch_add(n as u64, Ordering::Relaxed);
    }

    pub fn add_bytes_out(&self, n: usize) {
        self.bytes_out.fetch_add(n as u64, Ordering::Relaxed);
    }

    /// The counters in Prometheus text format.
    pub fn render(&self, out: &mut String) {
        let map = self.requests.lock().unwrap_or_else(|p| p.into_inner()).clone();
        header(out, "samsa_requests_total", "counter", "Kafka requests handled, by API.");
        for (api, s) in &map {
            let _ = writeln!(out, "samsa_requests_total{{api=\"{api}\"}} {}", s.count);
        }
        header(
            out,
            "samsa_request_latency_seconds",
            "histogram",
            "Kafka request handling time, by API.",
        );
        for (api, s) in &map {
            for (i, le) in LATENCY_BUCKETS_S.iter().enumerate() {
                let _ = writeln!(
                    out,
                    "samsa_request_latency_seconds_bucket{{api=\"{api}\",le=\"{le}\"}} {}",
                    s.buckets[i]
                );
            }
            let _ = writeln!(
                out,
                "samsa_request_latency_seconds_bucket{{api=\"{api}\",le=\"+Inf\"}} {}",
                s.count
            );
            let _ = writeln!(out, "samsa_request_latency_seconds_sum{{api=\"{api}\"}} {}", s.sum_s);
            let _ =
                writeln!(out, "samsa_request_latency_seconds_count{{api=\"{api}\"}} {}", s.count);
        }
        let counters = [
            ("samsa_bytes_in_total", "Bytes of Kafka requests received.", &self.bytes_in),
            ("samsa_bytes_out_total", "Bytes of Kafka responses sent.", &self.bytes_out),
            (
                "samsa_isr_shrinks_total",
                "ISR shrinks this broker proposed as a leader.",
                &self.isr_shrinks,
            ),
            (
                "samsa_isr_expands_total",
                "ISR expansions this broker proposed as a leader.",
                &self.isr_expands,
            ),
        ];
        for (name, help, v) in counters {
            header(out, name, "counter", help);
            let _ = writeln!(out, "{name} {}", v.load(Ordering::Relaxed));
        }
    }
}

/// `# HELP` and `# TYPE` lines.
pub fn header(out: &mut String, name: &str, kind: &str, help: &str) {
    let _ = writeln!(out, "# HELP {name} {help}");
    let _ = writeln!(out, "# TYPE {name} {kind}");
}

/// A label value with `\`, `"` and newlines escaped.
pub fn label(v: &str) -> String {
    v.replace('\\', "\\\\").replace('"', "\\\"").replace('\n', "\\n")
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
        let mut out = String::new();
        m.render(&mut out);
        assert!(out.contains("samsa_requests_total{api=\"Produce\"} 2"));
        assert!(
            out.contains("samsa_request_latency_seconds_bucket{api=\"Produce\",le=\"0.0005\"} 1")
        );
        assert!(
            out.contains("samsa_request_latency_seconds_bucket{api=\"Produce\",le=\"0.05\"} 2")
        );
        assert!(
            out.contains("samsa_request_latency_seconds_bucket{api=\"Produce\",le=\"+Inf\"} 2")
        );
        assert!(out.contains("samsa_bytes_in_total 10"));
        assert_eq!(label("a\"b"), "a\\\"b");
    }
}
