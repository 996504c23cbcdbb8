//! A connection's authentication, between the TLS handshake and the first routed request.
//!
//! On a SASL listener nothing but ApiVersions, SaslHandshake and SaslAuthenticate is served
//! until the exchange succeeds; anything else closes the connection (Kafka's
//! `SaslServerAuthenticator`). SaslHandshake v1 is followed by SaslAuthenticate requests;
//! SaslHandshake v0 by raw size-prefixed tokens without a request header (the 0.10 clients'
//! framing). A failed exchange is answered (SASL_AUTHENTICATION_FAILED, or
//! UNSUPPORTED_SASL_MECHANISM with the enabled list) and the connection closed; the node goes on
//! serving everyone else. Once authenticated, SaslHandshake and SaslAuthenticate reach their
//! handlers, which answer ILLEGAL_SASL_STATE as Kafka does.
//!
//! Invariant: the principal a connection is served as is fixed here, once: the SASL user, the
//! mapped certificate subject on `SSL`, or `User:ANONYMOUS`.

use std::sync::Arc;

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
use crate::security::sasl::{SaslConfig, SaslServer, Step};
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

/// One connection's authentication state.
pub(crate) struct Authenticator {
    sasl: Option<Arc<SaslConfig>>,
    credentials: Arc<dyn CredentialStore>,
    state: State,
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
        Authenticator { sasl, credentials, state }
    }

    /// The principal, once authenticated.
    pub(crate) fn principal(&self) -> Option<&Principal> {
        match &self.state {
            State::Authenticated(p) => Some(p),
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
            State::Authenticated(_) => Verdict::Route,
            State::AwaitToken { server, raw: true } => match server.step(frame) {
                Ok(step) => {
                    let (challenge, done) = match step {
                        Step::Challenge(c) => (c, None),
                        Step::Done { user, last } => (last, Some(user)),
                    };
                    if let Some(user) = done {
                        self.state = State::Authenticated(Principal::user(user));
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

    fn on_request(&mut self, sasl: &SaslConfig, frame: &Bytes) -> Verdict {
        if frame.len() < 8 {
            return close(format!("request frame of {} bytes is too short", frame.len()));
        }
        let key = i16::from_be_bytes([frame[0], frame[1]]);
        let version = i16::from_be_bytes([frame[2], frame[3]]);
        match ApiKey::try_from(key) {
            Ok(ApiKey::ApiVersions) => Verdict::Route,
            Ok(ApiKey::SaslHandshake) => self.handshake(sasl, version, frame.clone()),
            Ok(ApiKey::SaslAuthenticate) if matches!(self.state, State::AwaitToken { .. }) => {
                self.authenticate(version, frame.clone())
            }
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
        let Some(mechanism) = sasl.mechanism(request.mechanism.as_str()) else {
            response.error_code = ErrorCode::UnsupportedSaslMechanism.code();
            let why = format!(
                "client asked for SASL mechanism {:?}; this listener enables {}",
                truncate(request.mechanism.as_str()),
                sasl.enabled_names().join(", ")
            );
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

    fn authenticate(&mut self, version: i16, mut frame: Bytes) -> Verdict {
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
        let mechanism = server.mechanism().name();
        let mut response = SaslAuthenticateResponse::default();
        match server.step(&request.auth_bytes) {
            Ok(Step::Challenge(c)) => {
                response.auth_bytes = Bytes::from(c);
            }
            Ok(Step::Done { user, last }) => {
                tracing::debug!(mechanism, "SASL authentication succeeded");
                response.auth_bytes = Bytes::from(last);
                self.state = State::Authenticated(Principal::user(user));
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
