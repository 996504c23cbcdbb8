//! The only list of supported APIs. Each entry names a handler module, which declares its
//! version range beside its code; ApiVersions answers from this list, so samsa advertises exactly
//! what it implements.
//!
//! Per request: peek key and version, decode the header, decode the body at that version, call
//! the handler, encode the response at the same version. An unknown key, a version outside the
//! handler's range (except ApiVersions, which answers UNSUPPORTED_VERSION as KIP-511 asks) or an
//! undecodable body closes the connection, as Kafka does.

use std::sync::Arc;
use std::sync::atomic::{AtomicI64, AtomicU64, Ordering};

use bytes::{Bytes, BytesMut};
use kafka_protocol::messages::{ApiKey, RequestHeader, ResponseHeader};
use kafka_protocol::protocol::{Decodable, Encodable};

use super::handlers;
use super::response::{Body, IntoBody};
use crate::broker::Broker;
use crate::quota::client::QuotaKind;
use crate::security::Principal;

/// What the connection does after a request.
#[derive(Debug)]
pub enum Outcome {
    /// Write this response: the size prefix, the header and the body, in order.
    Respond(Body),
    /// Send nothing (Produce with acks=0).
    NoResponse,
    /// Close the connection; the reason is logged.
    Close(String),
}

/// What a handler asks the connection to do. Handlers that always answer return `Option<T>`,
/// which converts into this.
#[derive(Debug)]
pub enum Reply<T> {
    Send(T),
    /// Send nothing (Produce with acks=0).
    Nothing,
    /// Send nothing and close the connection (an acks=0 produce that failed: closing is how
    /// Kafka tells such a producer to refresh its metadata).
    Close(String),
}

impl<T> From<Option<T>> for Reply<T> {
    fn from(o: Option<T>) -> Self {
        o.map_or(Reply::Nothing, Reply::Send)
    }
}

/// An inclusive range of API versions.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Versions {
    pub min: i16,
    pub max: i16,
}

impl Versions {
    pub const fn new(min: i16, max: i16) -> Self {
        Versions { min, max }
    }
    pub fn contains(&self, v: i16) -> bool {
        self.min <= v && v <= self.max
    }
}

/// Who sent a request, for the handlers that record it (JoinGroup keeps each member's client id
/// and host, as DescribeGroups shows them).
#[derive(Debug, Clone)]
pub struct RequestContext {
    pub client_id: String,
    pub client_host: String,
    /// The name of the listener the request came in on (`PLAINTEXT`, `EXTERNAL`, ...): broker
    /// addresses in answers are that listener's.
    pub listener: Arc<str>,
    /// Who the connection authenticated as (`User:ANONYMOUS` on PLAINTEXT).
    pub principal: Arc<Principal>,
    /// What client quotas decide during this request (`crate::quota::client`).
    pub(crate) quota: Arc<RequestQuota>,
}

/// One request's client-quota state, shared by the router and the handler: the request's size,
/// the request-time throttle the client already owes, the throttle the handler decided (Produce
/// and Fetch byte rates) and the time it spent waiting rather than working (a fetch's long
/// poll, an acks=all produce's wait for the ISR), which does not count as request time.
#[derive(Debug, Default)]
pub(crate) struct RequestQuota {
    pub(crate) request_bytes: usize,
    pub(crate) owed_ms: i64,
    handler_throttle_ms: AtomicI64,
    idle_ns: AtomicU64,
}

impl RequestQuota {
    /// The handler's throttle: `throttle_time_ms` of its response, and how long the connection
    /// is muted after it.
    pub(crate) fn throttle(&self, ms: i64) {
        self.handler_throttle_ms.fetch_max(ms, Ordering::Relaxed);
    }

    /// Time the handler spent waiting, not handling.
    pub(crate) fn idle(&self, waited: std::time::Duration) {
        self.idle_ns.fetch_add(waited.as_nanos() as u64, Ordering::Relaxed);
    }
}

impl RequestContext {
    /// Who the client is, as quotas see it.
    pub(crate) fn quota_client(&self) -> crate::quota::client::Client<'_> {
        crate::quota::client::Client { user: &self.principal.name, client_id: &self.client_id }
    }

    /// The client's IP address as ACL host filters name it.
    pub fn ip(&self) -> &str {
        self.client_host.trim_start_matches('/')
    }
}

/// One client connection, as the router needs it.
#[derive(Debug, Clone)]
pub struct Session {
    pub peer: std::net::SocketAddr,
    pub listener: Arc<str>,
    pub principal: Arc<Principal>,
}

impl Session {
    /// A PLAINTEXT connection from `peer` on `listener`.
    pub fn anonymous(peer: std::net::SocketAddr, listener: Arc<str>) -> Self {
        Session { peer, listener, principal: Arc::new(Principal::anonymous()) }
    }
}

macro_rules! call {
    ($broker:ident, $version:ident, $body:ident, $api:ident, $handler:expr) => {{
        let request = Decodable::decode(&mut $body, $version)
            .map_err(|e| format!("undecodable {:?} v{} request: {e}", $api, $version))?;
        match $handler(request).await.into() {
            Reply::Send(response) => IntoBody::into_body(response, $version).map(Some),
            Reply::Nothing => Ok(None),
            Reply::Close(why) => Err(why),
        }
    }};
}

macro_rules! routes {
    ($($key:ident => $module:ident),* $(,)?) => {
        /// Every supported API and its version range.
        pub const SUPPORTED: &[(ApiKey, Versions)] = &[
            $((ApiKey::$key, handlers::$module::VERSIONS),)*
        ];

        async fn dispatch(
            broker: &Arc<Broker>,
            ctx: &RequestContext,
            api: ApiKey,
            version: i16,
            mut body: Bytes,
        ) -> Result<Option<Body>, String> {
            match api {
                $(ApiKey::$key => call!(broker, version, body, api,
                    |r| handlers::$module::handle(broker, ctx, version, r)),)*
                _ => Err(format!("unsupported API {api:?}")),
            }
        }
    };
}

routes! {
    Produce => produce,
    Fetch => fetch,
    ListOffsets => list_offsets,
    Metadata => metadata,
    OffsetCommit => offset_commit,
    OffsetFetch => offset_fetch,
    FindCoordinator => find_coordinator,
    JoinGroup => join_group,
    Heartbeat => heartbeat,
    LeaveGroup => leave_group,
    SyncGroup => sync_group,
    DescribeGroups => describe_groups,
    ListGroups => list_groups,
    SaslHandshake => sasl_handshake,
    ApiVersions => api_versions,
    CreateTopics => create_topics,
    DeleteTopics => delete_topics,
    InitProducerId => init_producer_id,
    OffsetForLeaderEpoch => offset_for_leader_epoch,
    AddPartitionsToTxn => add_partitions_to_txn,
    AddOffsetsToTxn => add_offsets_to_txn,
    EndTxn => end_txn,
    WriteTxnMarkers => write_txn_markers,
    TxnOffsetCommit => txn_offset_commit,
    DescribeAcls => describe_acls,
    CreateAcls => create_acls,
    DeleteAcls => delete_acls,
    DescribeConfigs => describe_configs,
    AlterConfigs => alter_configs,
    DescribeLogDirs => describe_log_dirs,
    SaslAuthenticate => sasl_authenticate,
    CreatePartitions => create_partitions,
    DeleteGroups => delete_groups,
    IncrementalAlterConfigs => incremental_alter_configs,
    OffsetDelete => offset_delete,
    DescribeCluster => describe_cluster,
    DescribeUserScramCredentials => describe_user_scram_credentials,
    AlterUserScramCredentials => alter_user_scram_credentials,
    DescribeQuorum => describe_quorum,
    DescribeProducers => describe_producers,
    DescribeTransactions => describe_transactions,
    ListTransactions => list_transactions,
    DeleteRecords => delete_records,
    ElectLeaders => elect_leaders,
    AlterPartitionReassignments => alter_partition_reassignments,
    ListPartitionReassignments => list_partition_reassignments,
    DescribeClientQuotas => describe_client_quotas,
    AlterClientQuotas => alter_client_quotas,
    AddRaftVoter => add_raft_voter,
    RemoveRaftVoter => remove_raft_voter,
    DescribeTopicPartitions => describe_topic_partitions,
}

/// Kafka's name of an API, for metrics labels.
fn api_name(api: ApiKey) -> &'static str {
    macro_rules! names {
        ($($key:ident),*) => { match api { $(ApiKey::$key => stringify!($key),)* _ => "Other" } };
    }
    names!(
        Produce,
        Fetch,
        ListOffsets,
        Metadata,
        OffsetCommit,
        OffsetFetch,
        FindCoordinator,
        JoinGroup,
        Heartbeat,
        LeaveGroup,
        SyncGroup,
        DescribeGroups,
        ListGroups,
        ApiVersions,
        CreateTopics,
        DeleteTopics,
        DeleteGroups,
        InitProducerId,
        OffsetForLeaderEpoch,
        DescribeConfigs,
        AlterConfigs,
        CreatePartitions,
        IncrementalAlterConfigs,
        OffsetDelete,
        DescribeCluster,
        DescribeLogDirs,
        DescribeQuorum,
        AddPartitionsToTxn,
        AddOffsetsToTxn,
        EndTxn,
        TxnOffsetCommit,
        DescribeProducers,
        DescribeTransactions,
        ListTransactions,
        WriteTxnMarkers,
        SaslHandshake,
        SaslAuthenticate,
        DescribeUserScramCredentials,
        AlterUserScramCredentials,
        DescribeAcls,
        CreateAcls,
        DeleteAcls,
        DeleteRecords,
        ElectLeaders,
        AlterPartitionReassignments,
        ListPartitionReassignments,
        DescribeClientQuotas,
        AlterClientQuotas,
        AddRaftVoter,
        RemoveRaftVoter,
        DescribeTopicPartitions
    )
}

/// The versions supported for `api`, if any: the handler's range, extended down by the legacy
/// versions decoded in `legacy/`.
pub fn versions_of(api: ApiKey) -> Option<Versions> {
    let modern = SUPPORTED.iter().find(|(k, _)| *k == api).map(|(_, v)| *v)?;
    let lowest = super::legacy::LEGACY
        .iter()
        .filter(|(a, _, hi)| *a == api && *hi + 1 >= modern.min)
        .map(|(_, lo, _)| *lo)
        .min()
        .unwrap_or(modern.min);
    Some(Versions::new(lowest.min(modern.min), modern.max))
}

/// Handles one request frame from an authenticated `session`.
pub async fn handle(broker: &Arc<Broker>, session: &Session, frame: Bytes) -> Outcome {
    handle_muted(broker, session, frame).await.0
}

/// [`handle`], and how long the connection must then read nothing from this client: the
/// throttle its quotas impose (Kafka mutes the channel; zero when within its quotas).
pub async fn handle_muted(
    broker: &Arc<Broker>,
    session: &Session,
    frame: Bytes,
) -> (Outcome, std::time::Duration) {
    let mut mute_ms = 0;
    let outcome = route(broker, session, frame, &mut mute_ms).await;
    (outcome, std::time::Duration::from_millis(mute_ms.max(0) as u64))
}

async fn route(
    broker: &Arc<Broker>,
    session: &Session,
    mut frame: Bytes,
    mute_ms: &mut i64,
) -> Outcome {
    let request_bytes = frame.len() + 4;
    if frame.len() < 8 {
        return Outcome::Close(format!("request frame of {} bytes is too short", frame.len()));
    }
    let key = i16::from_be_bytes([frame[0], frame[1]]);
    let version = i16::from_be_bytes([frame[2], frame[3]]);
    let correlation_id = i32::from_be_bytes([frame[4], frame[5], frame[6], frame[7]]);
    let Ok(api) = ApiKey::try_from(key) else {
        return Outcome::Close(format!("unknown API key {key}"));
    };
    let Some(supported) = versions_of(api) else {
        return Outcome::Close(format!("unsupported API {api:?} (key {key})"));
    };
    if !supported.contains(version) {
        if api == ApiKey::ApiVersions {
            return respond(correlation_id, 0, handlers::api_versions::unsupported_version());
        }
        return Outcome::Close(format!(
            "unsupported {api:?} version {version} (supported {}..={})",
            supported.min, supported.max
        ));
    }
    // Every legacy version predates flexible versions (request header v1, response header v0);
    // kafka-protocol's answer for them can be wrong where its oldest known version is flexible
    // (WriteTxnMarkers v0: it knows only v1).
    let legacy = super::legacy::handles(api, version);
    let header_version = if legacy { 1 } else { api.request_header_version(version) };
    let header = match RequestHeader::decode(&mut frame, header_version) {
        Ok(h) => h,
        Err(e) => return Outcome::Close(format!("undecodable request header: {e}")),
    };
    let client_id = header.client_id.map(|c| c.to_string()).unwrap_or_default();
    let image = broker.metadata.image();
    let client =
        crate::quota::client::Client { user: &session.principal.name, client_id: &client_id };
    let owed_ms = broker.quotas.owed(&image, client, QuotaKind::Request, crate::clock::now_ms());
    let ctx = RequestContext {
        client_id,
        client_host: format!("/{}", session.peer.ip()),
        listener: session.listener.clone(),
        principal: session.principal.clone(),
        quota: Arc::new(RequestQuota { request_bytes, owed_ms, ..RequestQuota::default() }),
    };
    // ApiVersions responses always use header v0 (KIP-511), whatever the request version.
    let response_header_version =
        if api == ApiKey::ApiVersions || legacy { 0 } else { api.response_header_version(version) };
    let started = std::time::Instant::now();
    let result = if legacy {
        super::legacy::dispatch(broker, &ctx, api, version, frame).await
    } else {
        dispatch(broker, &ctx, api, version, frame).await
    };
    let elapsed = started.elapsed();
    broker.metrics.record_request(api_name(api), elapsed);
    let idle = std::time::Duration::from_nanos(ctx.quota.idle_ns.load(Ordering::Relaxed));
    let busy = crate::quota::client::request_percent(elapsed.saturating_sub(idle));
    let owed = broker.quotas.record(
        &image,
        ctx.quota_client(),
        QuotaKind::Request,
        busy,
        crate::clock::now_ms(),
    );
    *mute_ms = ctx.quota.handler_throttle_ms.load(Ordering::Relaxed).max(owed);
    match result {
        Ok(Some(body)) => with_header(correlation_id, response_header_version, body),
        Ok(None) => Outcome::NoResponse,
        Err(why) => Outcome::Close(why),
    }
}

fn respond<T: Encodable>(correlation_id: i32, version: i16, body: T) -> Outcome {
    match body.into_body(version) {
        Ok(b) => with_header(correlation_id, 0, b),
        Err(e) => Outcome::Close(e),
    }
}

fn with_header(correlation_id: i32, header_version: i16, body: Body) -> Outcome {
    match frame_body(correlation_id, header_version, body) {
        Ok(framed) => Outcome::Respond(framed),
        Err(why) => Outcome::Close(why),
    }
}

/// `body` encoded at `version` as a whole response frame: size, header, body.
pub(crate) fn framed<T: Encodable>(
    correlation_id: i32,
    header_version: i16,
    body: T,
    version: i16,
) -> Result<Body, String> {
    frame_body(correlation_id, header_version, body.into_body(version)?)
}

fn frame_body(correlation_id: i32, header_version: i16, body: Body) -> Result<Body, String> {
    let mut header = ResponseHeader::default();
    header.correlation_id = correlation_id;
    let mut out = BytesMut::with_capacity(16);
    out.extend_from_slice(&[0; 4]);
    header
        .encode(&mut out, header_version)
        .map_err(|e| format!("cannot encode response header: {e}"))?;
    let size = i32::try_from(out.len() - 4 + body.len())
        .map_err(|_| format!("response of {} bytes is too large", body.len()))?;
    out[..4].copy_from_slice(&size.to_be_bytes());
    let mut framed = Body::default();
    framed.push_bytes(out.freeze());
    framed.append(body);
    Ok(framed)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_advertised_range_is_one_kafka_protocol_can_encode() {
        for (api, v) in SUPPORTED {
            // (`versions_of` extends some ranges down with the legacy codecs of `legacy/`.)
            let lib = api.valid_versions();
            assert!(lib.min <= v.min && v.max <= lib.max, "{api:?} {v:?} outside {lib:?}");
        }
    }
}
