//! A small Kafka client of our own, used by the CLI tools and the integration tests. It speaks
//! the wire protocol like any client: negotiates versions with ApiVersions, frames requests, and
//! supports pipelining (several requests in flight on one connection, answered in order).

pub mod cluster;
pub mod partitioner;
pub mod records;
pub mod security;

use std::collections::HashMap;
use std::time::Duration;

use anyhow::{Context, anyhow, bail};
use bytes::Bytes;
use bytes::{Buf, BytesMut};
use kafka_protocol::messages::{
    ApiKey, ApiVersionsRequest, ApiVersionsResponse, RequestHeader, ResponseHeader,
    SaslAuthenticateRequest, SaslHandshakeRequest,
};
use kafka_protocol::protocol::{Decodable, Encodable, Request, StrBytes};
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};
use tokio::net::TcpStream;

use self::security::{ClientSecurity, SaslLogin};
use crate::security::sasl::scram::ScramClient;

/// A connection's byte stream: TCP, or TLS over it.
trait Conn: AsyncRead + AsyncWrite + Unpin + Send {}
impl<T: AsyncRead + AsyncWrite + Unpin + Send> Conn for T {}

/// How long connecting may take before the tools give up with a clear message.
pub const CONNECT_TIMEOUT: Duration = Duration::from_secs(5);
/// How long one request may wait for its response: a frozen broker (SIGSTOP, a hung disk)
/// still accepts connections, so every read needs a bound.
pub const REQUEST_TIMEOUT: Duration = Duration::from_secs(30);
/// Largest response frame the client accepts (a fetch of many partitions stays far below).
pub const RESPONSE_BYTES_MAX: usize = 256 * 1024 * 1024;

/// One connection to a broker.
pub struct KafkaClient {
    stream: Box<dyn Conn>,
    next_correlation_id: i32,
    /// The broker's supported range per API key.
    versions: HashMap<i16, (i16, i16)>,
    inbuf: BytesMut,
    outbuf: BytesMut,
    addr: String,
}

impl KafkaClient {
    /// Connects to the first reachable address of a comma-separated list and negotiates
    /// versions.
    pub async fn connect(addrs: &str) -> anyhow::Result<Self> {
        let mut last = None;
        for addr in addrs.split(',').map(str::trim).filter(|a| !a.is_empty()) {
            match Self::connect_one(addr).await {
                Ok(c) => return Ok(c),
                Err(e) => last = Some(e),
            }
        }
        Err(last.unwrap_or_else(|| anyhow!("no bootstrap server given")))
    }

    async fn connect_one(addr: &str) -> anyhow::Result<Self> {
        let stream = tokio::time::timeout(CONNECT_TIMEOUT, TcpStream::connect(addr))
            .await
            .map_err(|_| anyhow!("timed out connecting to {addr}; is samsa running there?"))?
            .with_context(|| {
                format!(
                    "cannot connect to {addr}; is samsa running there? (start one with `samsa dev`)"
                )
            })?;
        stream.set_nodelay(true)?;
        let security = security::installed();
        let stream: Box<dyn Conn> = match security.and_then(|s| s.tls.clone().map(|t| (s, t))) {
            None => Box::new(stream),
            Some((s, tls)) => {
                let name = s.server_name(addr)?;
                let tls = tokio::time::timeout(
                    CONNECT_TIMEOUT,
                    tokio_rustls::TlsConnector::from(tls).connect(name, stream),
                )
                .await
                .map_err(|_| anyhow!("TLS handshake with {addr} timed out"))?
                .with_context(|| format!("TLS handshake with {addr} failed (is it a TLS listener, and does ssl.truststore.location hold its CA?)"))?;
                Box::new(tls)
            }
        };
        let mut client = KafkaClient {
            stream,
            next_correlation_id: 1,
            versions: HashMap::new(),
            inbuf: BytesMut::with_capacity(64 * 1024),
            outbuf: BytesMut::new(),
            addr: addr.to_string(),
        };
        let mut req = ApiVersionsRequest::default();
        req.client_software_name = StrBytes::from_static_str("samsa-cli");
        req.client_software_version = StrBytes::from_static_str(env!("CARGO_PKG_VERSION"));
        let resp: ApiVersionsResponse = client.send(&req, 3).await?;
        if resp.error_code != 0 {
            bail!("ApiVersions failed with error {}", resp.error_code);
        }
        client.versions =
            resp.api_keys.iter().map(|k| (k.api_key, (k.min_version, k.max_version))).collect();
        if let Some(login) = security.and_then(|s: &ClientSecurity| s.sasl.as_ref()) {
            client.authenticate(login).await?;
        }
        Ok(client)
    }

    /// SaslHandshake v1, then SaslAuthenticate with PLAIN's one token or SCRAM's two.
    async fn authenticate(&mut self, login: &SaslLogin) -> anyhow::Result<()> {
        let mut handshake = SaslHandshakeRequest::default();
        handshake.mechanism = StrBytes::from_string(login.mechanism.clone());
        let resp = self.send(&handshake, 1).await?;
        if resp.error_code != 0 {
            let offered: Vec<String> = resp.mechanisms.iter().map(|m| m.to_string()).collect();
            bail!(
                "{} refused SASL mechanism {} (error {}); it enables {}",
                self.addr,
                login.mechanism,
                resp.error_code,
                offered.join(", ")
            );
        }
        let password = login.password.expose();
        match login.scram() {
            None => {
                let token = format!("\u{0}{}\u{0}{password}", login.username);
                self.sasl_step(token.into_bytes()).await?;
            }
            Some(m) => {
                let mut scram = ScramClient::new(m, &login.username, password);
                let server_first = self.sasl_step(scram.first()).await?;
                let client_final = scram
                    .respond(&server_first)
                    .map_err(|e| anyhow!("SCRAM with {}: {e}", self.addr))?;
                let server_final = self.sasl_step(client_final).await?;
                scram
                    .verify(&server_final)
                    .map_err(|e| anyhow!("SCRAM with {}: {e}", self.addr))?;
            }
        }
        Ok(())
    }

    async fn sasl_step(&mut self, token: Vec<u8>) -> anyhow::Result<Bytes> {
        let mut req = SaslAuthenticateRequest::default();
        req.auth_bytes = Bytes::from(token);
        let resp = self.send(&req, 1).await?;
        if resp.error_code != 0 {
            bail!(
                "authentication with {} failed: {} (check sasl.username / sasl.password in --command-config)",
                self.addr,
                resp.error_message
                    .map(|m| m.to_string())
                    .unwrap_or_else(|| format!("error {}", resp.error_code))
            );
        }
        Ok(resp.auth_bytes)
    }

    pub fn addr(&self) -> &str {
        &self.addr
    }

    /// The highest version of `R` both sides support, capped at `ours_max`.
    pub fn version<R: Request>(&self, ours_max: i16) -> anyhow::Result<i16> {
        let (min, max) = self
            .versions
            .get(&R::KEY)
            .copied()
            .ok_or_else(|| anyhow!("the broker does not support API key {}", R::KEY))?;
        let v = max.min(ours_max).min(R::VERSIONS.max);
        if v < min {
            bail!("no common version for API key {} (broker {min}..={max})", R::KEY);
        }
        Ok(v)
    }

    /// Queues a request without sending it; returns its correlation id.
    pub fn queue<R: Request>(&mut self, request: &R, version: i16) -> anyhow::Result<i32> {
        let api = ApiKey::try_from(R::KEY).map_err(|_| anyhow!("unknown API key {}", R::KEY))?;
        let correlation_id = self.next_correlation_id;
        self.next_correlation_id = self.next_correlation_id.wrapping_add(1);
        let mut header = RequestHeader::default();
        header.request_api_key = R::KEY;
        header.request_api_version = version;
        header.correlation_id = correlation_id;
        header.client_id = Some(StrBytes::from_static_str("samsa-cli"));
        let start = self.outbuf.len();
        self.outbuf.extend_from_slice(&[0; 4]);
        header.encode(&mut self.outbuf, api.request_header_version(version))?;
        request.encode(&mut self.outbuf, version)?;
        let size = (self.outbuf.len() - start - 4) as i32;
        self.outbuf[start..start + 4].copy_from_slice(&size.to_be_bytes());
        Ok(correlation_id)
    }

    /// Sends everything queued.
    pub async fn flush(&mut self) -> anyhow::Result<()> {
        self.stream.write_all(&self.outbuf).await?;
        self.outbuf.clear();
        Ok(())
    }

    /// Reads the next response, which must answer `R` at `version`.
    pub async fn receive<R: Request>(
        &mut self,
        version: i16,
    ) -> anyhow::Result<(i32, R::Response)> {
        let api = ApiKey::try_from(R::KEY).map_err(|_| anyhow!("unknown API key {}", R::KEY))?;
        let mut frame = self.read_frame().await?;
        let header_version =
            if api == ApiKey::ApiVersions { 0 } else { api.response_header_version(version) };
        let header = ResponseHeader::decode(&mut frame, header_version)?;
        let body = R::Response::decode(&mut frame, version)
            .with_context(|| format!("cannot decode the {api:?} v{version} response"))?;
        Ok((header.correlation_id, body))
    }

    /// Sends one request and waits for its response.
    pub async fn send<R: Request>(
        &mut self,
        request: &R,
        version: i16,
    ) -> anyhow::Result<R::Response> {
        let id = self.queue(request, version)?;
        self.flush().await?;
        let (got, body) = self.receive::<R>(version).await?;
        if got != id {
            bail!("response correlation id {got} does not match request {id}");
        }
        Ok(body)
    }

    async fn read_frame(&mut self) -> anyhow::Result<BytesMut> {
        match tokio::time::timeout(REQUEST_TIMEOUT, self.read_frame_unbounded()).await {
            Ok(r) => r,
            Err(_) => bail!("no response from {} within {REQUEST_TIMEOUT:?}", self.addr),
        }
    }

    async fn read_frame_unbounded(&mut self) -> anyhow::Result<BytesMut> {
        loop {
            if self.inbuf.len() >= 4 {
                let size = i32::from_be_bytes([
                    self.inbuf[0],
                    self.inbuf[1],
                    self.inbuf[2],
                    self.inbuf[3],
                ]);
                if size < 0 || size as usize > RESPONSE_BYTES_MAX {
                    bail!("invalid response frame size {size}");
                }
                if self.inbuf.len() >= 4 + size as usize {
                    self.inbuf.advance(4);
                    return Ok(self.inbuf.split_to(size as usize));
                }
                self.inbuf.reserve(4 + size as usize - self.inbuf.len());
            }
            self.inbuf.reserve(64 * 1024);
            if self.stream.read_buf(&mut self.inbuf).await? == 0 {
                bail!("the broker at {} closed the connection", self.addr);
            }
        }
    }
}
