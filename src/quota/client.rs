//! Client quotas, enforced as Kafka's ClientQuotaManager does: each connection's usage (bytes
//! produced, bytes fetched, request-handling time) is recorded under the entity its quota
//! resolved to (`metadata::quotas::resolve`), and a client over its quota is told to pause with
//! `throttle_time_ms` and muted for that long (the connection reads nothing more from it).
//!
//! Invariants: a client without a quota costs one map lookup on the image and is never
//! throttled; a byte-rate throttle is as long as it takes the rate to fall back to the quota
//! (unbounded, as Kafka's), a request-time throttle at most one quota window; sensors idle for
//! longer than the window are dropped, so memory follows the active clients.

use std::collections::HashMap;
use std::sync::Mutex;

use super::rate::SampledRate;
use crate::metadata::image::MetadataImage;
use crate::metadata::quotas::{
    CONSUMER_BYTE_RATE, PRODUCER_BYTE_RATE, REQUEST_PERCENTAGE, resolve,
};

/// Sensors kept before idle ones are swept.
const SENSORS_BEFORE_SWEEP: usize = 1024;

/// What a quota bounds.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub(crate) enum QuotaKind {
    /// Produce request bytes per second.
    Produce,
    /// Fetch response bytes per second.
    Fetch,
    /// Percent of one thread's time spent handling the client's requests.
    Request,
}

impl QuotaKind {
    fn key(self) -> &'static str {
        match self {
            QuotaKind::Produce => PRODUCER_BYTE_RATE,
            QuotaKind::Fetch => CONSUMER_BYTE_RATE,
            QuotaKind::Request => REQUEST_PERCENTAGE,
        }
    }
}

/// A sensor's identity: what it bounds and the entity parts usage is counted under.
type SensorKey = (QuotaKind, Option<String>, Option<String>);

/// Who a request is from, as quotas see it.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Client<'a> {
    /// The principal's name (`ANONYMOUS` on an unauthenticated listener).
    pub(crate) user: &'a str,
    pub(crate) client_id: &'a str,
}

/// The node's client-quota sensors.
#[derive(Debug)]
pub(crate) struct ClientQuotas {
    window_ms: i64,
    samples: usize,
    sensors: Mutex<HashMap<SensorKey, SampledRate>>,
}

impl ClientQuotas {
    /// `quota.window.size.seconds` and `quota.window.num`.
    pub(crate) fn new(window_seconds: i64, samples: i64) -> Self {
        ClientQuotas {
            window_ms: window_seconds.max(1) * 1000,
            samples: samples.max(1) as usize,
            sensors: Mutex::new(HashMap::new()),
        }
    }

    /// The longest one throttle of `kind` lasts: a request-time throttle at most one quota
    /// window (Kafka's ClientRequestQuotaManager), a byte-rate throttle whatever it takes.
    fn max_throttle_ms(&self, kind: QuotaKind) -> i64 {
        match kind {
            QuotaKind::Request => self.window_ms,
            QuotaKind::Produce | QuotaKind::Fetch => i64::from(i32::MAX),
        }
    }

    /// The quota and sensor for `client`, if one applies.
    fn bound(
        image: &MetadataImage,
        client: Client<'_>,
        kind: QuotaKind,
    ) -> Option<(f64, SensorKey)> {
        resolve(&image.client_quotas, client.user, client.client_id, kind.key())
            .map(|(bound, (user, client_id))| (bound, (kind, user, client_id)))
    }

    fn with_sensor<T>(
        &self,
        key: SensorKey,
        now_ms: i64,
        f: impl FnOnce(&mut SampledRate) -> T,
    ) -> T {
        let mut sensors = self.sensors.lock().unwrap_or_else(|p| p.into_inner());
        if sensors.len() >= SENSORS_BEFORE_SWEEP && !sensors.contains_key(&key) {
            sensors.retain(|_, s| !s.idle(now_ms));
        }
        let sensor =
            sensors.entry(key).or_insert_with(|| SampledRate::new(self.window_ms, self.samples));
        f(sensor)
    }

    /// Records `amount` of `kind` for `client` at `now_ms` and returns how long it must be
    /// throttled (0: within its quota, or none applies).
    pub(crate) fn record(
        &self,
        image: &MetadataImage,
        client: Client<'_>,
        kind: QuotaKind,
        amount: f64,
        now_ms: i64,
    ) -> i64 {
        let Some((bound, key)) = Self::bound(image, client, kind) else { return 0 };
        let max = self.max_throttle_ms(kind);
        self.with_sensor(key, now_ms, |s| {
            s.record(amount, now_ms);
            s.throttle_ms(bound, now_ms).min(max)
        })
    }

    /// How long `client` must still be throttled for `kind`, recording nothing (the request
    /// quota a Produce or Fetch answer reports with its own throttle).
    pub(crate) fn owed(
        &self,
        image: &MetadataImage,
        client: Client<'_>,
        kind: QuotaKind,
        now_ms: i64,
    ) -> i64 {
        let Some((bound, key)) = Self::bound(image, client, kind) else { return 0 };
        let max = self.max_throttle_ms(kind);
        self.with_sensor(key, now_ms, |s| s.throttle_ms(bound, now_ms).min(max))
    }

    /// Takes back a recorded amount (a fetch answered empty because it was throttled).
    pub(crate) fn unrecord(
        &self,
        image: &MetadataImage,
        client: Client<'_>,
        kind: QuotaKind,
        amount: f64,
        now_ms: i64,
    ) {
        if let Some((_, key)) = Self::bound(image, client, kind) {
            self.with_sensor(key, now_ms, |s| s.record(-amount, now_ms));
        }
    }

    /// The most a fetch may return without being throttled for certain, in bytes (Kafka's
    /// `getMaxValueInQuotaWindow`): the quota over all but one window.
    pub(crate) fn max_fetch_bytes(
        &self,
        image: &MetadataImage,
        client: Client<'_>,
    ) -> Option<usize> {
        Self::bound(image, client, QuotaKind::Fetch).map(|(bound, _)| {
            let seconds =
                (self.samples.saturating_sub(1).max(1) as f64) * (self.window_ms as f64 / 1000.0);
            (bound * seconds).clamp(1.0, i32::MAX as f64) as usize
        })
    }
}

/// `request_percentage` usage of `elapsed`: percent of one second.
pub(crate) fn request_percent(elapsed: std::time::Duration) -> f64 {
    elapsed.as_secs_f64() * 100.0
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::metadata::commands::{MetadataCommand, apply};
    use crate::metadata::quotas::{EntityName, QuotaEntity, QuotaValue};

    fn image(entity: QuotaEntity, key: &str, value: f64) -> MetadataImage {
        let mut img = MetadataImage::default();
        let values = [(key.to_string(), QuotaValue(value))].into();
        apply(&mut img, &MetadataCommand::SetClientQuotas { entity, values });
        img
    }

    #[test]
    fn a_client_over_its_byte_rate_is_throttled_and_others_are_not() {
        let entity = QuotaEntity { user: None, client_id: Some(EntityName::Named("noisy".into())) };
        let img = image(entity, PRODUCER_BYTE_RATE, 1000.0);
        let q = ClientQuotas::new(1, 11);
        let noisy = Client { user: "ANONYMOUS", client_id: "noisy" };
        let quiet = Client { user: "ANONYMOUS", client_id: "quiet" };
        assert_eq!(q.record(&img, noisy, QuotaKind::Produce, 5_000.0, 0), 0);
        let t = q.record(&img, noisy, QuotaKind::Produce, 10_000.0, 100);
        assert!(t > 4000 && t < 6000, "{t}");
        assert!(q.record(&img, quiet, QuotaKind::Request, 1e9, 100) == 0, "no request quota");
        assert_eq!(q.record(&img, quiet, QuotaKind::Produce, 1_000_000.0, 100), 0);
        assert_eq!(q.record(&img, noisy, QuotaKind::Fetch, 1_000_000.0, 100), 0);
        q.unrecord(&img, noisy, QuotaKind::Produce, 15_000.0, 100);
        assert_eq!(q.record(&img, noisy, QuotaKind::Produce, 1.0, 200), 0);
        assert_eq!(q.max_fetch_bytes(&img, noisy), None);
    }

    #[test]
    fn a_request_time_throttle_lasts_at_most_one_window() {
        let entity = QuotaEntity { user: None, client_id: Some(EntityName::Named("x".into())) };
        let img = image(entity, REQUEST_PERCENTAGE, 10.0);
        let q = ClientQuotas::new(1, 11);
        let x = Client { user: "u", client_id: "x" };
        // 5 s of handling within the first second: 50% of a thread over the 10 s window.
        let busy = request_percent(std::time::Duration::from_secs(5));
        assert_eq!(q.record(&img, x, QuotaKind::Request, busy, 0), 1000);
        assert_eq!(q.owed(&img, x, QuotaKind::Request, 10), 1000);
    }

    #[test]
    fn a_default_user_quota_counts_each_user_apart() {
        let img = image(
            QuotaEntity { user: Some(EntityName::Default), client_id: None },
            CONSUMER_BYTE_RATE,
            100.0,
        );
        let q = ClientQuotas::new(1, 11);
        let a = Client { user: "a", client_id: "x" };
        let b = Client { user: "b", client_id: "x" };
        assert!(q.record(&img, a, QuotaKind::Fetch, 5_000.0, 0) > 0);
        assert_eq!(q.record(&img, b, QuotaKind::Fetch, 500.0, 0), 0);
        assert_eq!(q.max_fetch_bytes(&img, a), Some(1000));
    }
}
