//! Helpers for tests that drive brokers over the wire: bounded polling and reading a partition.

use std::time::{Duration, Instant};

use samsa::client::KafkaClient;
use samsa::client::records::{decode_records, fetch_request};

/// Polls `f` until it returns `Some`, at most `limit`.
pub async fn eventually<T, F, Fut>(limit: Duration, mut f: F) -> T
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = Option<T>>,
{
    let deadline = Instant::now() + limit;
    loop {
        if let Some(v) = f().await {
            return v;
        }
        assert!(Instant::now() < deadline, "condition not met within {limit:?}");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

/// Every record of `topic`-0 on the broker at `addr`, up to the high watermark, as
/// (offset, value).
pub async fn read_partition(addr: &str, topic: &str) -> Vec<(i64, String)> {
    let mut c = KafkaClient::connect(addr).await.expect("connect");
    let mut out = Vec::new();
    let mut offset = 0i64;
    loop {
        let resp =
            c.send(&fetch_request(topic, &[(0, offset)], 0, 1 << 20), 12).await.expect("fetch");
        let p = &resp.responses[0].partitions[0];
        assert_eq!(p.error_code, 0);
        let recs = decode_records(p.records.clone().unwrap_or_default()).expect("decode");
        if recs.is_empty() {
            return out;
        }
        for r in recs {
            if r.offset >= offset {
                offset = r.offset + 1;
                out.push((
                    r.offset,
                    String::from_utf8_lossy(&r.value.unwrap_or_default()).into_owned(),
                ));
            }
        }
    }
}
