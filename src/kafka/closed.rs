//! Why the broker closed a client's connection, told to the operator: an unknown API, an
//! unsupported version, an undecodable request or an oversize frame closes only that connection
//! (Kafka's behaviour), and each is logged as one WARN naming the client — its `client.id`, and
//! from ApiVersions v3+ its software name and version (KIP-511) — with the API key and version,
//! so an operator can see why a client fails. At most one WARN per client id per
//! [`WARN_INTERVAL`]; the rest go to DEBUG, so a client reconnecting in a loop cannot flood
//! the log. The limiter remembers at most [`CLIENTS_TRACKED_MAX`] client ids.

use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::{Mutex, OnceLock};
use std::time::{Duration, Instant};

use bytes::{Buf, Bytes};
use kafka_protocol::messages::{ApiKey, ApiVersionsRequest, RequestHeader};
use kafka_protocol::protocol::Decodable;

/// How often one client id's closed connections are logged at WARN.
pub(crate) const WARN_INTERVAL: Duration = Duration::from_secs(60);
/// Client ids the limiter remembers; past it the memory is cleared (a few extra WARNs).
pub(crate) const CLIENTS_TRACKED_MAX: usize = 10_000;

/// What a connection's requests said about the client.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub(crate) struct ClientInfo {
    pub(crate) client_id: Option<String>,
    /// (name, version) from ApiVersions v3+.
    pub(crate) software: Option<(String, String)>,
    /// The API key and version of the last request read.
    pub(crate) last_request: Option<(i16, i16)>,
}

impl ClientInfo {
    /// Notes what `frame` (one request, without its size prefix) says about the client. Never
    /// fails: whatever cannot be read is left as it was.
    pub(crate) fn observe(&mut self, frame: &[u8]) {
        if frame.len() < 8 {
            return;
        }
        let key = i16::from_be_bytes([frame[0], frame[1]]);
        let version = i16::from_be_bytes([frame[2], frame[3]]);
        self.last_request = Some((key, version));
        if let Some(id) = peek_client_id(frame) {
            self.client_id = Some(id);
        }
        if key == ApiKey::ApiVersions as i16 && version >= 3 {
            let mut buf = Bytes::copy_from_slice(frame);
            let header_version = ApiKey::ApiVersions.request_header_version(version);
            if RequestHeader::decode(&mut buf, header_version).is_ok()
                && let Ok(r) = ApiVersionsRequest::decode(&mut buf, version)
            {
                self.software = Some((
                    r.client_software_name.to_string(),
                    r.client_software_version.to_string(),
                ));
            }
        }
    }
}

/// The client id of a request header v1/v2 (every API but ControlledShutdown v0): an i16-length
/// string after the key, version and correlation id; `None` if null or unreadable.
pub(crate) fn peek_client_id(frame: &[u8]) -> Option<String> {
    let mut rest = frame.get(8..)?;
    if rest.remaining() < 2 {
        return None;
    }
    let len = rest.get_i16();
    let len = usize::try_from(len).ok()?;
    let id = rest.get(..len)?;
    Some(String::from_utf8_lossy(id).into_owned())
}

/// Whether this close of `client` is the one to log at WARN now.
fn warn_now(client: &str) -> bool {
    static LAST: OnceLock<Mutex<HashMap<String, Instant>>> = OnceLock::new();
    let mut last = LAST.get_or_init(Default::default).lock().unwrap_or_else(|p| p.into_inner());
    if last.get(client).is_some_and(|t| t.elapsed() < WARN_INTERVAL) {
        return false;
    }
    if last.len() >= CLIENTS_TRACKED_MAX {
        last.clear();
    }
    last.insert(client.to_string(), Instant::now());
    true
}

/// Logs that the connection from `peer` was closed because of `why`.
pub(crate) fn log_close(peer: &SocketAddr, info: &ClientInfo, why: &str) {
    let client_id = info.client_id.as_deref().unwrap_or("");
    let (software, software_version) =
        info.software.as_ref().map_or(("unknown", "unknown"), |(n, v)| (n.as_str(), v.as_str()));
    let (api_key, api_version) = info.last_request.unwrap_or((-1, -1));
    let api =
        ApiKey::try_from(api_key).map_or_else(|_| "unknown".to_string(), |a| format!("{a:?}"));
    let key = if client_id.is_empty() { peer.ip().to_string() } else { client_id.to_string() };
    if warn_now(&key) {
        tracing::warn!(%peer, client_id, client_software = software, software_version, api,
            api_key, api_version, reason = why,
            "closed a client's connection; this client's next closes within a minute are logged at debug");
    } else {
        tracing::debug!(%peer, client_id, api, api_key, api_version, reason = why,
            "closed a client's connection");
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use bytes::BytesMut;
    use kafka_protocol::protocol::{Encodable, StrBytes};

    fn frame(key: ApiKey, version: i16, client_id: Option<&str>, body: &[u8]) -> Vec<u8> {
        let mut h = RequestHeader::default();
        h.request_api_key = key as i16;
        h.request_api_version = version;
        h.correlation_id = 7;
        h.client_id = client_id.map(|c| StrBytes::from_string(c.to_string()));
        let mut out = BytesMut::new();
        h.encode(&mut out, key.request_header_version(version)).expect("header");
        out.extend_from_slice(body);
        out.to_vec()
    }

    #[test]
    fn the_client_id_and_software_are_read_from_requests() {
        let mut r = ApiVersionsRequest::default();
        r.client_software_name = StrBytes::from_static_str("sarama");
        r.client_software_version = StrBytes::from_static_str("1.22");
        let mut body = BytesMut::new();
        r.encode(&mut body, 3).expect("body");
        let mut info = ClientInfo::default();
        info.observe(&frame(ApiKey::ApiVersions, 3, Some("burrow"), &body));
        assert_eq!(info.client_id.as_deref(), Some("burrow"));
        assert_eq!(info.software, Some(("sarama".into(), "1.22".into())));
        // ListOffsets v0: the header is still readable when the version is not served.
        info.observe(&frame(ApiKey::ListOffsets, 0, Some("burrow"), b""));
        assert_eq!(info.last_request, Some((ApiKey::ListOffsets as i16, 0)));
        assert_eq!(peek_client_id(&frame(ApiKey::Metadata, 1, None, b"")), None);
        // Garbage never panics.
        for junk in [&[][..], &[0, 3, 0, 1, 0, 0, 0, 1, 0x7f][..], &[0; 7][..]] {
            info.observe(junk);
        }
    }

    #[test]
    fn one_warn_per_client_id_per_interval() {
        assert!(warn_now("rate-limited-client"));
        assert!(!warn_now("rate-limited-client"));
        assert!(warn_now("another-client"));
    }
}
