//! CreateAcls, DescribeAcls and DeleteAcls v0 (clients and tools older than Kafka 2.0, KIP-290):
//! v1 without the resource pattern type, which v0 means to be LITERAL. Each request is decoded
//! by hand into v1 with LITERAL filled in, answered by the v1 handler, and its response written
//! back without the pattern type:
//! ```text
//! CreateAcls v0:   [resource_type i8, resource_name string, principal string, host string,
//!                   operation i8, permission_type i8]
//!   response:      the v1 layout (v1 changed only quota throttling)
//! DescribeAcls v0: resource_type i8, resource_name nullable string, principal nullable string,
//!                   host nullable string, operation i8, permission_type i8
//!   response:      throttle_time_ms i32, error_code i16, error_message nullable string,
//!                   [resource_type i8, resource_name string,
//!                    [principal string, host string, operation i8, permission_type i8]]
//! DeleteAcls v0:   [the DescribeAcls v0 filter]
//!   response:      throttle_time_ms i32, [error_code i16, error_message nullable string,
//!                   [error_code i16, error_message nullable string, resource_type i8,
//!                    resource_name string, principal string, host string, operation i8,
//!                    permission_type i8]]
//! ```
//! A LITERAL filter matches only LITERAL bindings, so a v0 answer never has a pattern type it
//! cannot express.

use std::sync::Arc;

use bytes::{BufMut, Bytes, BytesMut};
use kafka_protocol::messages::create_acls_request::AclCreation;
use kafka_protocol::messages::delete_acls_request::DeleteAclsFilter;
use kafka_protocol::messages::{CreateAclsRequest, DeleteAclsRequest, DescribeAclsRequest};
use kafka_protocol::protocol::{Encodable, StrBytes};

use super::Reader;
use crate::broker::Broker;
use crate::kafka::handlers::{create_acls, delete_acls, describe_acls};
use crate::kafka::response::Body;
use crate::kafka::router::RequestContext;

/// Kafka's PatternType.LITERAL, what every v0 pattern and filter is.
const LITERAL: i8 = 3;
/// The smallest encoded creation or filter: three i8 fields and three empty or null strings.
const ENTRY_BYTES_MIN: usize = 3 + 3 * 2;

fn put_string(out: &mut BytesMut, s: Option<&str>) {
    match s {
        Some(s) => {
            out.put_i16(i16::try_from(s.len()).unwrap_or(i16::MAX));
            out.put_slice(&s.as_bytes()[..s.len().min(i16::MAX as usize)]);
        }
        None => out.put_i16(-1),
    }
}

fn body(bytes: BytesMut) -> Body {
    let mut b = Body::default();
    b.push_bytes(bytes.freeze());
    b
}

fn text(s: String) -> StrBytes {
    StrBytes::from_string(s)
}

/// A DescribeAcls / DeleteAcls v0 filter, in v1's fields.
struct Filter {
    resource_type: i8,
    resource_name: Option<String>,
    principal: Option<String>,
    host: Option<String>,
    operation: i8,
    permission_type: i8,
}

fn filter(r: &mut Reader) -> Result<Filter, String> {
    Ok(Filter {
        resource_type: r.i8()?,
        resource_name: r.nullable_string()?,
        principal: r.nullable_string()?,
        host: r.nullable_string()?,
        operation: r.i8()?,
        permission_type: r.i8()?,
    })
}

fn end(r: &Reader, what: &str) -> Result<(), String> {
    if r.0.is_empty() {
        Ok(())
    } else {
        Err(format!("{} bytes after the end of a {what} v0 request", r.0.len()))
    }
}

pub(super) async fn create(
    broker: &Arc<Broker>,
    ctx: &RequestContext,
    raw: Bytes,
) -> Result<Body, String> {
    let mut r = Reader(raw);
    let mut req = CreateAclsRequest::default();
    for _ in 0..r.array_len(ENTRY_BYTES_MIN)? {
        let mut c = AclCreation::default();
        c.resource_type = r.i8()?;
        c.resource_name = text(r.string()?);
        c.resource_pattern_type = LITERAL;
        c.principal = text(r.string()?);
        c.host = text(r.string()?);
        c.operation = r.i8()?;
        c.permission_type = r.i8()?;
        req.creations.push(c);
    }
    end(&r, "CreateAcls")?;
    let resp = create_acls::handle(broker, ctx, 1, req).await.ok_or("CreateAcls gave no answer")?;
    let mut out = BytesMut::new();
    resp.encode(&mut out, 1).map_err(|e| format!("cannot encode the response: {e}"))?;
    Ok(body(out))
}

pub(super) async fn describe(
    broker: &Arc<Broker>,
    ctx: &RequestContext,
    raw: Bytes,
) -> Result<Body, String> {
    let mut r = Reader(raw);
    let f = filter(&mut r)?;
    end(&r, "DescribeAcls")?;
    let mut req = DescribeAclsRequest::default();
    req.resource_type_filter = f.resource_type;
    req.resource_name_filter = f.resource_name.map(text);
    req.pattern_type_filter = LITERAL;
    req.principal_filter = f.principal.map(text);
    req.host_filter = f.host.map(text);
    req.operation = f.operation;
    req.permission_type = f.permission_type;
    let resp =
        describe_acls::handle(broker, ctx, 1, req).await.ok_or("DescribeAcls gave no answer")?;
    let mut out = BytesMut::new();
    out.put_i32(resp.throttle_time_ms);
    out.put_i16(resp.error_code);
    put_string(&mut out, resp.error_message.as_deref());
    out.put_i32(resp.resources.len() as i32);
    for res in &resp.resources {
        out.put_i8(res.resource_type);
        put_string(&mut out, Some(&res.resource_name));
        out.put_i32(res.acls.len() as i32);
        for acl in &res.acls {
            put_string(&mut out, Some(&acl.principal));
            put_string(&mut out, Some(&acl.host));
            out.put_i8(acl.operation);
            out.put_i8(acl.permission_type);
        }
    }
    Ok(body(out))
}

pub(super) async fn delete(
    broker: &Arc<Broker>,
    ctx: &RequestContext,
    raw: Bytes,
) -> Result<Body, String> {
    let mut r = Reader(raw);
    let mut req = DeleteAclsRequest::default();
    for _ in 0..r.array_len(ENTRY_BYTES_MIN)? {
        let f = filter(&mut r)?;
        let mut d = DeleteAclsFilter::default();
        d.resource_type_filter = f.resource_type;
        d.resource_name_filter = f.resource_name.map(text);
        d.pattern_type_filter = LITERAL;
        d.principal_filter = f.principal.map(text);
        d.host_filter = f.host.map(text);
        d.operation = f.operation;
        d.permission_type = f.permission_type;
        req.filters.push(d);
    }
    end(&r, "DeleteAcls")?;
    let resp = delete_acls::handle(broker, ctx, 1, req).await.ok_or("DeleteAcls gave no answer")?;
    let mut out = BytesMut::new();
    out.put_i32(resp.throttle_time_ms);
    out.put_i32(resp.filter_results.len() as i32);
    for fr in &resp.filter_results {
        out.put_i16(fr.error_code);
        put_string(&mut out, fr.error_message.as_deref());
        out.put_i32(fr.matching_acls.len() as i32);
        for m in &fr.matching_acls {
            out.put_i16(m.error_code);
            put_string(&mut out, m.error_message.as_deref());
            out.put_i8(m.resource_type);
            put_string(&mut out, Some(&m.resource_name));
            put_string(&mut out, Some(&m.principal));
            put_string(&mut out, Some(&m.host));
            out.put_i8(m.operation);
            out.put_i8(m.permission_type);
        }
    }
    Ok(body(out))
}
