//! A rate measured over sampled windows, as Kafka's `Rate` over a `SampledStat` measures quota
//! usage: `samples` windows of `window_ms` each; a window starts at the first record after the
//! previous one ended, and windows older than `samples × window_ms` are forgotten.
//!
//! Invariant: the elapsed time a rate divides by is never less than `samples - 1` whole windows
//! (Kafka's rule), so a client's first burst is measured against the whole quota window rather
//! than the few milliseconds since it connected, and never zero.

use std::collections::VecDeque;

/// One window's total.
#[derive(Debug, Clone, Copy)]
struct Sample {
    start_ms: i64,
    value: f64,
}

/// A sampled rate, in units per second.
#[derive(Debug, Clone)]
pub(crate) struct SampledRate {
    window_ms: i64,
    samples: usize,
    windows: VecDeque<Sample>,
}

impl SampledRate {
    pub(crate) fn new(window_ms: i64, samples: usize) -> Self {
        SampledRate {
            window_ms: window_ms.max(1),
            samples: samples.max(1),
            windows: VecDeque::new(),
        }
    }

    fn purge(&mut self, now_ms: i64) {
        let expire_before = now_ms - self.window_ms * self.samples as i64;
        while self.windows.front().is_some_and(|w| w.start_ms + self.window_ms <= expire_before) {
            self.windows.pop_front();
        }
    }

    /// Adds `value` at `now_ms` (a negative value takes back what was recorded: Kafka's
    /// "unrecord" of a throttled fetch).
    pub(crate) fn record(&mut self, value: f64, now_ms: i64) {
        self.purge(now_ms);
        let current = self.windows.back().is_some_and(|w| now_ms < w.start_ms + self.window_ms);
        if !current {
            self.windows.push_back(Sample { start_ms: now_ms, value: 0.0 });
            while self.windows.len() > self.samples {
                self.windows.pop_front();
            }
        }
        if let Some(w) = self.windows.back_mut() {
            w.value += value;
        }
    }

    /// The time the rate is measured over at `now_ms`, in milliseconds (Kafka's
    /// `Rate.windowSize`).
    pub(crate) fn window_size_ms(&mut self, now_ms: i64) -> i64 {
        self.purge(now_ms);
        let oldest = self.windows.front().map_or(now_ms, |w| w.start_ms);
        let mut elapsed = now_ms - oldest;
        let full = elapsed / self.window_ms;
        let min_full = self.samples as i64 - 1;
        if full < min_full {
            elapsed += (min_full - full) * self.window_ms;
        }
        elapsed.max(1)
    }

    /// Units per second at `now_ms`.
    pub(crate) fn rate(&mut self, now_ms: i64) -> f64 {
        let size = self.window_size_ms(now_ms);
        let total: f64 = self.windows.iter().map(|w| w.value).sum();
        total * 1000.0 / size as f64
    }

    /// How long a client whose rate exceeds `bound` must pause so the rate falls back to it
    /// (Kafka's `QuotaUtils.throttleTime`), in milliseconds; 0 when within the bound.
    pub(crate) fn throttle_ms(&mut self, bound: f64, now_ms: i64) -> i64 {
        let rate = self.rate(now_ms);
        if rate <= bound || bound <= 0.0 {
            return 0;
        }
        let size = self.window_size_ms(now_ms);
        ((rate - bound) / bound * size as f64).round() as i64
    }

    /// Whether nothing was recorded within the measured span (the sensor may be dropped).
    pub(crate) fn idle(&mut self, now_ms: i64) -> bool {
        self.purge(now_ms);
        self.windows.is_empty()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_first_burst_is_measured_over_the_whole_window() {
        let mut r = SampledRate::new(1000, 11);
        r.record(10_000.0, 0);
        // 10 windows assumed elapsed: 1000 units/s, not 10000/0.
        assert!((r.rate(0) - 1000.0).abs() < 1e-9);
        assert_eq!(r.throttle_ms(1000.0, 0), 0);
        r.record(10_000.0, 500);
        // 20000 over 10.5 s = 1904.8/s; to fall to 1000/s: (1904.8-1000)/1000 × 10.5 s.
        let t = r.throttle_ms(1000.0, 500);
        assert!((9400..=9600).contains(&t), "{t}");
    }

    #[test]
    fn old_windows_are_forgotten_and_unrecording_takes_back() {
        let mut r = SampledRate::new(1000, 3);
        r.record(3000.0, 0);
        r.record(-3000.0, 10);
        assert_eq!(r.rate(10), 0.0);
        r.record(3000.0, 100);
        assert!(r.rate(200) > 0.0);
        assert!(r.idle(100 + 4000));
        assert_eq!(r.rate(100 + 4000), 0.0);
    }

    #[test]
    fn a_steady_rate_at_the_bound_is_not_throttled() {
        let mut r = SampledRate::new(1000, 11);
        for s in 0..30 {
            r.record(1000.0, s * 1000);
        }
        let rate = r.rate(29_999);
        assert!((900.0..=1100.0).contains(&rate), "{rate}");
    }
}
