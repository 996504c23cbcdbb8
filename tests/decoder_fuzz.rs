//! Property test: the request path (frame header peek, header decode, body decode for every
//! supported API, handler) never panics on random bytes, and the broker keeps serving.

mod common;

use bytes::{BufMut, Bytes, BytesMut};
use common::TestBroker;
use proptest::prelude::*;
use proptest::test_runner::{Config, TestRunner};
use samsa::kafka::router::{self, Outcome, SUPPORTED};

const PEER: std::net::SocketAddr =
    std::net::SocketAddr::new(std::net::IpAddr::V4(std::net::Ipv4Addr::LOCALHOST), 40000);

#[test]
fn random_request_frames_never_panic_the_broker() {
    let rt = tokio::runtime::Builder::new_multi_thread().enable_all().build().expect("runtime");
    let b = rt.block_on(TestBroker::start(&[]));
    let broker = b.broker.clone();
    let session = router::Session::anonymous(PEER, std::sync::Arc::from("PLAINTEXT"));
    let mut runner = TestRunner::new(Config { cases: 3000, ..Config::default() });
    let strategy = (
        0usize..SUPPORTED.len(),
        any::<i16>(),
        any::<bool>(),
        proptest::collection::vec(any::<u8>(), 0..300),
    );
    runner
        .run(&strategy, |(api_idx, version_noise, in_range, body)| {
            let (api, versions) = SUPPORTED[api_idx];
            // Half the cases use a supported version, so the body decoders are exercised.
            let version = if in_range {
                versions.min + (version_noise.rem_euclid(versions.max - versions.min + 1))
            } else {
                version_noise
            };
            let mut frame = BytesMut::new();
            frame.put_i16(api as i16);
            frame.put_i16(version);
            frame.put_i32(7);
            frame.put_slice(&body);
            let outcome = rt.block_on(router::handle(&broker, &session, frame.freeze()));
            prop_assert!(matches!(
                outcome,
                Outcome::Respond(_) | Outcome::Close(_) | Outcome::NoResponse
            ));
            Ok(())
        })
        .expect("no panic on any input");
    // Fully random frames, headers included.
    let mut runner = TestRunner::new(Config { cases: 2000, ..Config::default() });
    runner
        .run(&proptest::collection::vec(any::<u8>(), 0..200), |bytes| {
            let _ = rt.block_on(router::handle(&broker, &session, Bytes::from(bytes)));
            Ok(())
        })
        .expect("no panic on any input");
    // The broker still answers a well-formed request.
    let healthy = rt.block_on(async {
        let mut c = samsa::client::KafkaClient::connect(&b.bootstrap()).await.expect("connect");
        c.send(&kafka_protocol::messages::MetadataRequest::default(), 12).await.expect("metadata")
    });
    assert_eq!(healthy.brokers.len(), 1);
    rt.block_on(b.stop());
}
