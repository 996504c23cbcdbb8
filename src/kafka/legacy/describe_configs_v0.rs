//! DescribeConfigs v0 (Sarama 1.22's admin `ListTopics`, kafka-python at 0.11): the request is
//! v1's without `include_synonyms` at its end, decoded as v1 with it false; the response has
//! `is_default` where v1 has `config_source`, and no synonyms:
//! ```text
//! throttle_time_ms i32, [error_code i16, error_message nullable string, resource_type i8,
//!   resource_name string, [name string, value nullable string, read_only bool, is_default bool,
//!   is_sensitive bool]]
//! ```

use std::sync::Arc;

use bytes::{BufMut, Bytes, BytesMut};
use kafka_protocol::messages::DescribeConfigsRequest;
use kafka_protocol::protocol::Decodable;

use crate::broker::Broker;
use crate::kafka::handlers::describe_configs;
use crate::kafka::response::Body;
use crate::kafka::router::RequestContext;

/// `config_source` of a value that is the default (Kafka's DEFAULT_CONFIG).
const DEFAULT_CONFIG: i8 = 5;

fn put_string(out: &mut BytesMut, s: Option<&str>) {
    match s {
        Some(s) => {
            out.put_i16(s.len() as i16);
            out.put_slice(s.as_bytes());
        }
        None => out.put_i16(-1),
    }
}

pub(super) async fn handle(
    broker: &Arc<Broker>,
    ctx: &RequestContext,
    raw: Bytes,
) -> Result<Body, String> {
    let mut b = BytesMut::from(&raw[..]);
    b.put_u8(0); // include_synonyms = false
    let mut b = b.freeze();
    let req = DescribeConfigsRequest::decode(&mut b, 1)
        .map_err(|e| format!("undecodable DescribeConfigs v0 request: {e}"))?;
    let resp = describe_configs::handle(broker, ctx, 1, req)
        .await
        .ok_or("DescribeConfigs gave no answer")?;
    let mut out = BytesMut::new();
    out.put_i32(resp.throttle_time_ms);
    out.put_i32(resp.results.len() as i32);
    for r in &resp.results {
        out.put_i16(r.error_code);
        put_string(&mut out, r.error_message.as_deref());
        out.put_i8(r.resource_type);
        put_string(&mut out, Some(&r.resource_name));
        out.put_i32(r.configs.len() as i32);
        for c in &r.configs {
            put_string(&mut out, Some(&c.name));
            put_string(&mut out, c.value.as_deref());
            out.put_u8(u8::from(c.read_only));
            out.put_u8(u8::from(c.config_source == DEFAULT_CONFIG));
            out.put_u8(u8::from(c.is_sensitive));
        }
    }
    let mut body = Body::default();
    body.push_bytes(out.freeze());
    Ok(body)
}
