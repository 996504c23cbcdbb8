//! DescribeConfigs of a BROKER resource: `broker.rack` is listed (null when unset, as Kafka shows
//! it), and each key says where its value comes from: STATIC_BROKER_CONFIG (4) when set in the
//! file, the environment or `--override`, DEFAULT_CONFIG (5) otherwise.

mod common;

use common::TestBroker;
use kafka_protocol::messages::DescribeConfigsRequest;
use kafka_protocol::messages::describe_configs_request::DescribeConfigsResource;
use kafka_protocol::protocol::StrBytes;
use samsa::client::KafkaClient;

/// (value, source) of every broker config, by name.
async fn broker_configs(b: &TestBroker) -> Vec<(String, Option<String>, i8)> {
    let mut c = KafkaClient::connect(&b.bootstrap()).await.expect("connect");
    let mut r = DescribeConfigsResource::default();
    r.resource_type = 4; // BROKER
    r.resource_name = StrBytes::from_static_str("1");
    let mut req = DescribeConfigsRequest::default();
    req.resources = vec![r];
    let resp = c.send(&req, 3).await.expect("describe configs");
    assert_eq!(resp.results[0].error_code, 0);
    resp.results[0]
        .configs
        .iter()
        .map(|e| (e.name.to_string(), e.value.as_ref().map(|v| v.to_string()), e.config_source))
        .collect()
}

fn find<'a>(
    all: &'a [(String, Option<String>, i8)],
    key: &str,
) -> &'a (String, Option<String>, i8) {
    all.iter().find(|(k, _, _)| k == key).unwrap_or_else(|| panic!("{key} is not described"))
}

#[tokio::test]
async fn broker_configs_show_broker_rack_and_the_source_of_each_value() {
    let b = TestBroker::start(&["broker.rack=rack-a", "num.partitions=2"]).await;
    let all = broker_configs(&b).await;
    assert_eq!(find(&all, "broker.rack").1.as_deref(), Some("rack-a"));
    assert_eq!(find(&all, "broker.rack").2, 4);
    assert_eq!(
        (find(&all, "num.partitions").1.as_deref(), find(&all, "num.partitions").2),
        (Some("2"), 4)
    );
    assert_eq!(find(&all, "log.retention.ms").2, 5, "a default");
    b.stop().await;

    let b = TestBroker::start(&[]).await;
    let all = broker_configs(&b).await;
    assert_eq!((find(&all, "broker.rack").1.as_deref(), find(&all, "broker.rack").2), (None, 5));
    b.stop().await;
}
