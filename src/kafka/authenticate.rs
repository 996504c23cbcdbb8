//! A connection's authentication, between the TLS handshake and the first routed request.
//!
//! On a SASL listener nothing but ApiVersions, SaslHandshake and SaslAuthenticate is served
//! until the exchange succeeds; anything else closes the connection (Kafka's
//! `SaslServerAuthenticator`). SaslHandshake v1 is followed by SaslAuthenticate requests;
//! SaslHandshake v0 by raw size-prefixed tokens without a request header (the 0.10 clients'
//! framing). A failed exchange is answered (SASL_AUTHENTICATION_FAILED, or
//! UNSUPPORTED_SASL_MECHANISM with the enabled list) and the connection closed; the node goes on
//! serving everyone else.
//!
//! Re-authentication (KIP-368): with `connections.max.reauth.ms` set for the mechanism, a
//! successful SaslAuthenticate v1+ answers `session_lifetime_ms`, and the session expires then.
//! On such a session the client may start again with SaslHandshake on the same connection (at
//! most once a second), with the same mechanism, and must come out as the same principal; its
//! other requests meanwhile are served as before. A frame other than that SaslHandshake on an
//! expired session closes the connection, whatever the client's version (as Kafka's
//! `SaslServerAuthenticator`). Otherwise, once authenticated, SaslHandshake and SaslAuthenticate
//! reach their handlers, which answer ILLEGAL_SASL_STATE as Kafka does.
//!
//! Invariant: the principal a connection is served as is fixed here, once: the SASL user, the
//! mapped certificate subject on `SSL`, or `User:ANONYMOUS`; re-authentication never changes it.

use std::sync::Arc;
use std::time::{Duration, Instant};

use bytes::{BufMut, Bytes, BytesMut};
use kafka_protocol::messages::{
    ApiKey, RequestHeader, SaslAuthenticateRequest, SaslAuthenticateResponse, SaslHandshakeRequest,
    SaslHandshakeResponse,
};
use kafka_protocol::protocol::{Decodable, StrBytes};

use super::response::Body;
use super::router;
use crate::error_code::ErrorCode;
use crate::security::sasl::scram::CredentialStore;
use crate::security::sasl::{Mechanism, SaslConfig, SaslServer, Step};
use crate::security::{ListenerSecurity, Principal};

/// What the connection does with a frame.
#[derive(Debug)]
pub(crate) enum Verdict {
    /// Route it as a Kafka request.
    Route,
    /// Answer with these bytes (a whole frame) and go on reading.
    Respond(Body),
    /// Write `last` if any, then close; `why` is logged.
    Close { why: String, last: Option<Body> },
}

enum State {
    /// No SASL on this listener, or the exchange succeeded.
    Authenticated(Principal),
    AwaitHandshake,
    /// A mechanism was chosen; `raw` after a v0 handshake.
    AwaitToken {
        server: SaslServer,
        raw: bool,
    },
}

/// A SASL session once established: what re-authentication must match, and when it ends.
struct Established {
    principal: Principal,
    mechanism: Mechanism,
    /// When the session ends (`connections.max.reauth.ms` after authenticating), if ever.
    /// Only a session that ends may be re-authenticated (Kafka's rule).
    expires_at: Option<Instant>,
    /// When the last re-authentication began: at most one a second.
    last_reauth_start: Option<Instant>,
}

/// Re-authentications further apart than this are allowed (Kafka's one a second).
const REAUTH_INTERVAL_MIN: Duration = Duration::from_secs(1);

/// One connection's authentication state.
pub(crate) struct Authenticator {
    sasl: Option<Arc<SaslConfig>>,
    credentials: Arc<dyn CredentialStore>,
    state: State,
    /// The session being served (kept while a re-authentication is under way).
    established: Option<Established>,
}

impl Authenticator {
    /// `transport` is who TLS says the client is (`User:ANONYMOUS` without a certificate);
    /// SCRAM exchanges look users up in `credentials`.
    pub(crate) fn new(
        security: &ListenerSecurity,
        transport: Principal,
        credentials: Arc<dyn CredentialStore>,
    ) -> Self {
        let (sasl, state) = match &security.sasl {
            Some(sasl) => (Some(sasl.clone()), State::AwaitHandshake),
            None => (None, State::Authenticated(transport)),
        };
        Authenticator { sasl, credentials, state, established: None }
    }

    /// The principal, once authenticated (during a re-authentication, the session's).
    pub(crate) fn principal(&self) -> Option<&Principal> {
        match (&self.state, &self.established) {
            (State::Authenticated(p), _) => Some(p),
            (_, Some(e)) => Some(&e.principal),
            _ => None,
        }
    }

    /// Whether the next frame is a raw SASL token (after a v0 handshake): it has no request
    /// header, and must not be read as one (it holds the password).
    pub(crate) fn expects_raw_token(&self) -> bool {
        matches!(self.state, State::AwaitToken { raw: true, .. })
    }

    /// Decides what to do with `frame` (one request without its size prefix).
    pub(crate) fn on_frame(&mut self, frame: &Bytes) -> Verdict {
        let Some(sasl) = self.sasl.clone() else { return Verdict::Route };
        match &mut self.state {
            State::Authenticated(_) => self.on_authenticated_frame(&sasl, frame),
            State::AwaitToken { server, raw: true } => match server.step(frame) {
                Ok(step) => {
                    let mechanism = server.mechanism();
                    let (challenge, done) = match step {
                        Step::Challenge(c) => (c, None),
                        Step::Done { user, last } => (last, Some(user)),
                    };
                    if let Some(user) = done {
                        self.establish(&sasl, Principal::user(user), mechanism);
                    }
                    let mut out = BytesMut::with_capacity(4 + challenge.len());
                    out.put_u32(challenge.len() as u32);
                    out.extend_from_slice(&challenge);
                    let mut body = Body::default();
                    body.push_bytes(out.freeze());
                    Verdict::Respond(body)
                }
                Err(e) => {
                    Verdict::Close { why: format!("SASL authentication failed: {e}"), last: None }
                }
            },
            State::AwaitHandshake | State::AwaitToken { raw: false, .. } => {
                self.on_request(&sasl, frame)
            }
        }
    }

    /// A frame on an authenticated connection: a SaslHandshake on a session that expires
    /// starts a re-authentication (at most one a second); anything else is served, unless the
    /// session has expired.
    fn on_authenticated_frame(&mut self, sasl: &SaslConfig, frame: &Bytes) -> Verdict {
        let Some(e) = &mut self.established else { return Verdict::Route };
        let (key, version) = api_of(frame);
        let now = Instant::now();
        if key == ApiKey::SaslHandshake as i16
            && e.expires_at.is_some()
            && e.last_reauth_start.is_none_or(|t| now.duration_since(t) >= REAUTH_INTERVAL_MIN)
        {
            e.last_reauth_start = Some(now);
            return self.handshake(sasl, version, frame.clone());
        }
        self.serve_session()
    }

    /// Serve a request as the established session, unless it has expired.
    fn serve_session(&self) -> Verdict {
        match &self.established {
            Some(e) if e.expires_at.is_some_and(|at| Instant::now() >= at) => close(
                "SASL session expired: the client did not re-authenticate within connections.max.reauth.ms".into(),
            ),
            _ => Verdict::Route,
        }
    }

    /// Authenticated as `principal` with `mechanism`: the session starts (or, after a
    /// re-authentication, starts again).
    fn establish(&mut self, sasl: &SaslConfig, principal: Principal, mechanism: Mechanism) {
        let lifetime = sasl.session_lifetime(mechanism);
        let last_reauth_start = self.established.as_ref().and_then(|e| e.last_reauth_start);
        self.established = Some(Established {
            principal: principal.clone(),
            mechanism,
            expires_at: lifetime.map(|d| Instant::now() + d),
            last_reauth_start,
        });
        self.state = State::Authenticated(principal);
    }

    fn on_request(&mut self, sasl: &SaslConfig, frame: &Bytes) -> Verdict {
        if frame.len() < 8 {
            return close(format!("request frame of {} bytes is too short", frame.len()));
        }
        let (key, version) = api_of(frame);
        match ApiKey::try_from(key) {
            Ok(ApiKey::ApiVersions) => Verdict::Route,
            Ok(ApiKey::SaslHandshake) => self.handshake(sasl, version, frame.clone()),
            Ok(ApiKey::SaslAuthenticate) if matches!(self.state, State::AwaitToken { .. }) => {
                self.authenticate(sasl, version, frame.clone())
            }
            // A re-authenticating client's other requests are served as its session.
            Ok(_) if self.established.is_some() => self.serve_session(),
            Ok(api) => close(format!(
                "{api:?} request before SASL authentication completed (the client must authenticate first: check its security.protocol and sasl.mechanism)"
            )),
            Err(_) => close(format!("unknown API key {key} before SASL authentication")),
        }
    }

    fn handshake(&mut self, sasl: &SaslConfig, version: i16, mut frame: Bytes) -> Verdict {
        if !handlers_sasl_handshake_versions().contains(version) {
            return close(format!("unsupported SaslHandshake version {version}"));
        }
        let Some((correlation_id, request)) =
            decode::<SaslHandshakeRequest>(ApiKey::SaslHandshake, version, &mut frame)
        else {
            return close("undecodable SaslHandshake request".into());
        };
        let mut response = SaslHandshakeResponse::default();
        response.mechanisms =
            sasl.enabled_names().into_iter().map(StrBytes::from_static_str).collect();
        let reauth_mechanism = self.established.as_ref().map(|e| e.mechanism);
        let Some(mechanism) = sasl
            .mechanism(request.mechanism.as_str())
            .filter(|m| reauth_mechanism.is_none_or(|was| was == *m))
        else {
            response.error_code = ErrorCode::UnsupportedSaslMechanism.code();
            let why = match reauth_mechanism {
                Some(was) => format!(
                    "client asked for SASL mechanism {:?} to re-authenticate a {} session; re-authentication keeps the mechanism",
                    truncate(request.mechanism.as_str()),
                    was.name()
                ),
                None => format!(
                    "client asked for SASL mechanism {:?}; this listener enables {}",
                    truncate(request.mechanism.as_str()),
                    sasl.enabled_names().join(", ")
                ),
            };
            return Verdict::Close {
                why,
                last: answer(correlation_id, ApiKey::SaslHandshake, version, response),
            };
        };
        self.state = State::AwaitToken {
            server: sasl.server(mechanism, &self.credentials),
            raw: version == 0,
        };
        match answer(correlation_id, ApiKey::SaslHandshake, version, response) {
            Some(body) => Verdict::Respond(body),
            None => close("cannot encode the SaslHandshake response".into()),
        }
    }

    fn authenticate(&mut self, sasl: &SaslConfig, version: i16, mut frame: Bytes) -> Verdict {
        if !(0..=2).contains(&version) {
            return close(format!("unsupported SaslAuthenticate version {version}"));
        }
        let Some((correlation_id, request)) =
            decode::<SaslAuthenticateRequest>(ApiKey::SaslAuthenticate, version, &mut frame)
        else {
            return close("undecodable SaslAuthenticate request".into());
        };
        let State::AwaitToken { server, .. } = &mut self.state else {
            return close("SaslAuthenticate before SaslHandshake".into());
        };
        let kind = server.mechanism();
        let mechanism = kind.name();
        let mut response = SaslAuthenticateResponse::default();
        match server.step(&request.auth_bytes) {
            Ok(Step::Challenge(c)) => {
                response.auth_bytes = Bytes::from(c);
            }
            Ok(Step::Done { user, last }) => {
                let principal = Principal::user(user);
                if let Some(was) = self.established.as_ref().map(|e| &e.principal)
                    && *was != principal
                {
                    let why = format!(
                        "re-authentication cannot change the principal (from {was} to {principal})"
                    );
                    response.error_code = ErrorCode::SaslAuthenticationFailed.code();
                    response.error_message = Some(StrBytes::from_string(why.clone()));
                    return Verdict::Close {
                        why,
                        last: answer(correlation_id, ApiKey::SaslAuthenticate, version, response),
                    };
                }
                let again = self.established.is_some();
                tracing::debug!(
                    mechanism,
                    reauthentication = again,
                    "SASL authentication succeeded"
                );
                response.auth_bytes = Bytes::from(last);
                response.session_lifetime_ms = sasl.session_lifetime(kind).map_or(0, duration_ms);
                self.establish(sasl, principal, kind);
            }
            Err(e) => {
                response.error_code = ErrorCode::SaslAuthenticationFailed.code();
                response.error_message = Some(StrBytes::from_string(e.to_string()));
                return Verdict::Close {
                    why: format!("SASL/{mechanism} authentication failed: {e}"),
                    last: answer(correlation_id, ApiKey::SaslAuthenticate, version, response),
                };
            }
        }
        match answer(correlation_id, ApiKey::SaslAuthenticate, version, response) {
            Some(body) => Verdict::Respond(body),
            None => close("cannot encode the SaslAuthenticate response".into()),
        }
    }
}

fn handlers_sasl_handshake_versions() -> router::Versions {
    super::handlers::sasl_handshake::VERSIONS
}

/// The API key and version at the head of a request frame (0s if it is too short).
fn api_of(frame: &[u8]) -> (i16, i16) {
    match frame {
        [k0, k1, v0, v1, ..] => (i16::from_be_bytes([*k0, *k1]), i16::from_be_bytes([*v0, *v1])),
        _ => (0, 0),
    }
}

fn duration_ms(d: Duration) -> i64 {
    i64::try_from(d.as_millis()).unwrap_or(i64::MAX)
}

fn close(why: String) -> Verdict {
    Verdict::Close { why, last: None }
}

/// A client-chosen string, cut short for a log line.
fn truncate(s: &str) -> String {
    s.chars().take(64).collect()
}

fn decode<T: Decodable>(api: ApiKey, version: i16, frame: &mut Bytes) -> Option<(i32, T)> {
    let header = RequestHeader::decode(frame, api.request_header_version(version)).ok()?;
    let body = T::decode(frame, version).ok()?;
    Some((header.correlation_id, body))
}

fn answer<T: kafka_protocol::protocol::Encodable>(
    correlation_id: i32,
    api: ApiKey,
    version: i16,
    body: T,
) -> Option<Body> {
    router::framed(correlation_id, api.response_header_version(version), body, version).ok()
}
