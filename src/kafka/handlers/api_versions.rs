//! ApiVersions (key 18): the APIs and version ranges samsa implements, derived from the router's
//! list. An unsupported request version gets UNSUPPORTED_VERSION in the v0 layout with the full
//! list, so the client can retry with a version we support (KIP-511).

use std::sync::Arc;

use kafka_protocol::messages::api_versions_response::ApiVersion;
use kafka_protocol::messages::{ApiVersionsRequest, ApiVersionsResponse};

use crate::broker::Broker;
use crate::error_code::ErrorCode;
use crate::kafka::router::{RequestContext, SUPPORTED, Versions, versions_of};

pub(crate) const VERSIONS: Versions = Versions::new(0, 4);

fn response(error: ErrorCode) -> ApiVersionsResponse {
    let mut r = ApiVersionsResponse::default();
    r.error_code = error.code();
    r.api_keys = SUPPORTED
        .iter()
        .map(|(key, _)| {
            let v = versions_of(*key).unwrap_or(Versions::new(0, 0));
            let mut a = ApiVersion::default();
            a.api_key = *key as i16;
            a.min_version = v.min;
            a.max_version = v.max;
            a
        })
        .collect();
    r
}

/// The answer to a request at a version outside [`VERSIONS`] (encode it at v0).
pub(crate) fn unsupported_version() -> ApiVersionsResponse {
    response(ErrorCode::UnsupportedVersion)
}

pub(crate) async fn handle(
    _broker: &Arc<Broker>,
    _ctx: &RequestContext,
    _version: i16,
    _request: ApiVersionsRequest,
) -> Option<ApiVersionsResponse> {
    Some(response(ErrorCode::None))
}
