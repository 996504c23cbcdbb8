//! SCRAM-SHA-256 and SCRAM-SHA-512 (RFC 5802, RFC 7677) on the server side, as Kafka's
//! `ScramSaslServer`: two round trips, credentials stored salted (`StoredKey`, `ServerKey`,
//! salt, iterations; never the password), looked up by user name when the client's first
//! message arrives. Channel binding is refused (`p=`), as Kafka does; the `tokenauth`
//! extension (delegation tokens) is refused too, since samsa issues none.
//!
//! Invariants: the client proof is checked in constant time; every failure says only Kafka's
//! "invalid credentials" sentence or what was malformed, never a key, salt or proof; a message
//! of any shape fails cleanly (fuzzed in `tests/decoder_fuzz.rs`).

use std::fmt;
use std::sync::Arc;

use base64::Engine;
use base64::engine::general_purpose::STANDARD as B64;
use hmac::{Hmac, KeyInit, Mac};
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256, Sha512};
use subtle::ConstantTimeEq;

use super::{AuthError, Step};

/// Fewest iterations Kafka accepts for a stored credential.
pub const ITERATIONS_MIN: i32 = 4096;
/// Most iterations Kafka accepts for a stored credential.
pub const ITERATIONS_MAX: i32 = 16384;
/// Random bytes in the server's part of the nonce.
const SERVER_NONCE_BYTES: usize = 24;
/// Longest client message taken (a user name, a nonce and a proof fit many times over).
const MESSAGE_MAX_BYTES: usize = 4096;

/// A SCRAM hash function.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
pub enum ScramMechanism {
    Sha256,
    Sha512,
}

impl ScramMechanism {
    pub const ALL: [ScramMechanism; 2] = [ScramMechanism::Sha256, ScramMechanism::Sha512];

    pub fn name(self) -> &'static str {
        match self {
            ScramMechanism::Sha256 => "SCRAM-SHA-256",
            ScramMechanism::Sha512 => "SCRAM-SHA-512",
        }
    }

    pub fn parse(name: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|m| m.name() == name)
    }

    /// The wire value in AlterUserScramCredentials / DescribeUserScramCredentials.
    pub fn wire(self) -> i8 {
        match self {
            ScramMechanism::Sha256 => 1,
            ScramMechanism::Sha512 => 2,
        }
    }

    pub fn from_wire(v: i8) -> Option<Self> {
        Self::ALL.into_iter().find(|m| m.wire() == v)
    }

    fn hmac(self, key: &[u8], data: &[u8]) -> Vec<u8> {
        fn run<M: Mac + KeyInit>(key: &[u8], data: &[u8]) -> Vec<u8> {
            // HMAC takes keys of any length; the error arm cannot happen.
            match <M as KeyInit>::new_from_slice(key) {
                Ok(mut mac) => {
                    mac.update(data);
                    mac.finalize().into_bytes().to_vec()
                }
                Err(_) => Vec::new(),
            }
        }
        match self {
            ScramMechanism::Sha256 => run::<Hmac<Sha256>>(key, data),
            ScramMechanism::Sha512 => run::<Hmac<Sha512>>(key, data),
        }
    }

    fn hash(self, data: &[u8]) -> Vec<u8> {
        match self {
            ScramMechanism::Sha256 => Sha256::digest(data).to_vec(),
            ScramMechanism::Sha512 => Sha512::digest(data).to_vec(),
        }
    }

    /// `Hi(password, salt, iterations)`: PBKDF2 with this hash's HMAC.
    pub fn salted_password(self, password: &[u8], salt: &[u8], iterations: i32) -> Vec<u8> {
        let rounds = iterations.max(1) as u32;
        match self {
            ScramMechanism::Sha256 => {
                let mut out = vec![0u8; 32];
                pbkdf2::pbkdf2_hmac::<Sha256>(password, salt, rounds, &mut out);
                out
            }
            ScramMechanism::Sha512 => {
                let mut out = vec![0u8; 64];
                pbkdf2::pbkdf2_hmac::<Sha512>(password, salt, rounds, &mut out);
                out
            }
        }
    }
}

/// A stored SCRAM credential (Kafka's `UserScramCredentialRecord`).
#[derive(Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ScramCredential {
    pub salt: Vec<u8>,
    pub stored_key: Vec<u8>,
    pub server_key: Vec<u8>,
    pub iterations: i32,
}

impl fmt::Debug for ScramCredential {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ScramCredential")
            .field("iterations", &self.iterations)
            .finish_non_exhaustive()
    }
}

impl ScramCredential {
    /// From a salted password, as AlterUserScramCredentials carries it.
    pub fn from_salted_password(
        mechanism: ScramMechanism,
        salt: &[u8],
        salted_password: &[u8],
        iterations: i32,
    ) -> Self {
        let client_key = mechanism.hmac(salted_password, b"Client Key");
        ScramCredential {
            salt: salt.to_vec(),
            stored_key: mechanism.hash(&client_key),
            server_key: mechanism.hmac(salted_password, b"Server Key"),
            iterations,
        }
    }

    /// From a password and a fresh random salt.
    pub fn from_password(mechanism: ScramMechanism, password: &str, iterations: i32) -> Self {
        let salt: [u8; 32] = rand::random();
        let salted = mechanism.salted_password(password.as_bytes(), &salt, iterations);
        Self::from_salted_password(mechanism, &salt, &salted, iterations)
    }
}

/// A SCRAM credential the cluster starts with (`samsa server --add-scram`, as
/// `kafka-storage format --add-scram`): committed with the cluster id, once, by the controller
/// that creates the cluster.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BootstrapCredential {
    pub user: String,
    pub mechanism: ScramMechanism,
    pub credential: ScramCredential,
}

impl BootstrapCredential {
    /// Parses Kafka's `--add-scram` syntax:
    /// `SCRAM-SHA-256=[name=alice,password=alice-secret]`, optionally with `iterations=8192`.
    /// Errors never repeat the argument (it holds a password).
    pub fn parse(arg: &str) -> Result<Self, String> {
        let (mechanism, rest) = arg
            .split_once('=')
            .ok_or("expected SCRAM-SHA-256=[name=<user>,password=<password>]")?;
        let mechanism = ScramMechanism::parse(mechanism.trim())
            .ok_or("the mechanism must be SCRAM-SHA-256 or SCRAM-SHA-512")?;
        let body = rest
            .trim()
            .strip_prefix('[')
            .and_then(|r| r.strip_suffix(']'))
            .ok_or("expected [name=<user>,password=<password>] after the mechanism")?;
        let (mut user, mut password, mut iterations) = (None, None, ITERATIONS_MIN);
        for field in body.split(',') {
            let (k, v) = field.split_once('=').ok_or("each field is key=value")?;
            let v = v.trim().trim_matches('"');
            match k.trim() {
                "name" => user = Some(v.to_string()),
                "password" => password = Some(v.to_string()),
                "iterations" => {
                    iterations = v
                        .parse()
                        .ok()
                        .filter(|i| (ITERATIONS_MIN..=ITERATIONS_MAX).contains(i))
                        .ok_or("iterations must be between 4096 and 16384")?
                }
                _ => return Err("the fields are name, password and iterations".into()),
            }
        }
        let user = user.filter(|u| !u.is_empty()).ok_or("name= is required")?;
        let password = password.filter(|p| !p.is_empty()).ok_or("password= is required")?;
        Ok(BootstrapCredential {
            user,
            mechanism,
            credential: ScramCredential::from_password(mechanism, &password, iterations),
        })
    }
}

/// Where a SCRAM exchange finds a user's credential (the metadata image, on a broker).
pub trait CredentialStore: Send + Sync {
    fn credential(&self, user: &str, mechanism: ScramMechanism) -> Option<ScramCredential>;
}

/// One SCRAM exchange.
pub struct ScramServer {
    mechanism: ScramMechanism,
    store: Arc<dyn CredentialStore>,
    state: State,
}

impl fmt::Debug for ScramServer {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ScramServer").field("mechanism", &self.mechanism).finish_non_exhaustive()
    }
}

enum State {
    AwaitClientFirst,
    AwaitClientFinal {
        user: String,
        credential: ScramCredential,
        gs2_header: String,
        client_first_bare: String,
        server_first: String,
        nonce: String,
    },
    Finished,
}

impl ScramServer {
    pub fn new(mechanism: ScramMechanism, store: Arc<dyn CredentialStore>) -> Self {
        ScramServer { mechanism, store, state: State::AwaitClientFirst }
    }

    pub fn mechanism(&self) -> ScramMechanism {
        self.mechanism
    }

    fn invalid_credentials(&self) -> AuthError {
        AuthError::Refused(format!(
            "Authentication failed during authentication due to invalid credentials with SASL mechanism {}",
            self.mechanism.name()
        ))
    }

    fn malformed(&self, reason: &str) -> AuthError {
        AuthError::Malformed { mechanism: self.mechanism.name(), reason: reason.to_string() }
    }

    pub fn step(&mut self, token: &[u8]) -> Result<Step, AuthError> {
        if token.len() > MESSAGE_MAX_BYTES {
            return Err(self.malformed("message too long"));
        }
        let text = std::str::from_utf8(token).map_err(|_| self.malformed("not UTF-8"))?;
        match std::mem::replace(&mut self.state, State::Finished) {
            State::AwaitClientFirst => self.client_first(text),
            State::AwaitClientFinal {
                user,
                credential,
                gs2_header,
                client_first_bare,
                server_first,
                nonce,
            } => {
                let auth = Exchange {
                    credential: &credential,
                    gs2_header: &gs2_header,
                    client_first_bare: &client_first_bare,
                    server_first: &server_first,
                    nonce: &nonce,
                };
                self.client_final(text, &auth).map(|last| Step::Done { user, last })
            }
            State::Finished => Err(self.malformed("the exchange is already over")),
        }
    }

    fn client_first(&mut self, text: &str) -> Result<Step, AuthError> {
        let first = parse_client_first(text).map_err(|r| self.malformed(r))?;
        if first.extensions.iter().any(|(k, _)| *k == "tokenauth") {
            return Err(AuthError::Refused(
                "delegation tokens (tokenauth) are not supported by samsa".into(),
            ));
        }
        let user = unescape_name(first.user).ok_or_else(|| self.malformed("invalid user name"))?;
        if let Some(authzid) = first.authzid
            && unescape_name(authzid).as_deref() != Some(user.as_str())
        {
            return Err(AuthError::Refused(
                "Client requested an authorization id that is different from username".into(),
            ));
        }
        let credential = self
            .store
            .credential(&user, self.mechanism)
            .ok_or_else(|| self.invalid_credentials())?;
        // Alphanumeric, as Kafka's: older librdkafka (Debian's kcat) mangles '+' and '/' in it.
        let nonce = format!("{}{}", first.nonce, fresh_nonce_hex());
        let server_first =
            format!("r={nonce},s={},i={}", B64.encode(&credential.salt), credential.iterations);
        self.state = State::AwaitClientFinal {
            user,
            credential,
            gs2_header: first.gs2_header.to_string(),
            client_first_bare: first.bare.to_string(),
            server_first: server_first.clone(),
            nonce,
        };
        Ok(Step::Challenge(server_first.into_bytes()))
    }

    fn client_final(&self, text: &str, x: &Exchange<'_>) -> Result<Vec<u8>, AuthError> {
        let (without_proof, proof) =
            text.rsplit_once(",p=").ok_or_else(|| self.malformed("no proof (p=)"))?;
        let mut fields = without_proof.split(',');
        let binding = fields
            .next()
            .and_then(|f| f.strip_prefix("c="))
            .ok_or_else(|| self.malformed("no channel binding (c=)"))?;
        let nonce = fields
            .next()
            .and_then(|f| f.strip_prefix("r="))
            .ok_or_else(|| self.malformed("no nonce (r=)"))?;
        if B64.decode(binding).ok().as_deref() != Some(x.gs2_header.as_bytes()) {
            return Err(self.malformed("channel binding does not match the first message"));
        }
        // Kafka checks only that the echoed nonce ends with the server's: librdkafka 2.0 (Debian's
        // kcat) sends the client nonce twice. The proof covers the message as sent either way.
        if !nonce.ends_with(x.nonce) {
            return Err(self.malformed("nonce does not match"));
        }
        let proof = B64.decode(proof).map_err(|_| self.malformed("proof is not base64"))?;
        let auth_message = format!("{},{},{}", x.client_first_bare, x.server_first, without_proof);
        let signature = self.mechanism.hmac(&x.credential.stored_key, auth_message.as_bytes());
        if proof.len() != signature.len() {
            return Err(self.invalid_credentials());
        }
        let client_key: Vec<u8> = proof.iter().zip(&signature).map(|(a, b)| a ^ b).collect();
        let stored = self.mechanism.hash(&client_key);
        if !bool::from(stored.ct_eq(&x.credential.stored_key)) {
            return Err(self.invalid_credentials());
        }
        let server_signature =
            self.mechanism.hmac(&x.credential.server_key, auth_message.as_bytes());
        Ok(format!("v={}", B64.encode(server_signature)).into_bytes())
    }
}

/// A random nonce of SERVER_NONCE_BYTES, hex (printable, no `,`, as RFC 5802 asks).
fn fresh_nonce_hex() -> String {
    let bytes: [u8; SERVER_NONCE_BYTES] = rand::random();
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

/// The client side of a SCRAM exchange (samsa's own tools): `first`, then `respond` to the
/// server-first message, then `verify` the server's signature.
pub struct ScramClient {
    mechanism: ScramMechanism,
    password: String,
    client_first_bare: String,
    nonce: String,
    expected_server_signature: Option<Vec<u8>>,
}

/// Most iterations a client computes (a hostile server could ask for billions).
const CLIENT_ITERATIONS_MAX: i32 = 1_000_000;

impl ScramClient {
    pub fn new(mechanism: ScramMechanism, user: &str, password: &str) -> Self {
        let nonce = fresh_nonce_hex();
        let escaped = user.replace('=', "=3D").replace(',', "=2C");
        ScramClient {
            mechanism,
            password: password.to_string(),
            client_first_bare: format!("n={escaped},r={nonce}"),
            nonce,
            expected_server_signature: None,
        }
    }

    /// The client-first message.
    pub fn first(&self) -> Vec<u8> {
        format!("n,,{}", self.client_first_bare).into_bytes()
    }

    /// The client-final message for the server's first message.
    pub fn respond(&mut self, server_first: &[u8]) -> Result<Vec<u8>, String> {
        let server_first =
            std::str::from_utf8(server_first).map_err(|_| "server-first message is not UTF-8")?;
        let field =
            |k: &str| server_first.split(',').find_map(|f| f.strip_prefix(k)).map(str::to_string);
        let nonce = field("r=").ok_or("server-first message has no nonce")?;
        if !nonce.starts_with(&self.nonce) || nonce.len() == self.nonce.len() {
            return Err("the server's nonce does not extend ours".into());
        }
        let salt = B64
            .decode(field("s=").ok_or("server-first message has no salt")?)
            .map_err(|_| "the salt is not base64")?;
        let iterations: i32 = field("i=")
            .and_then(|i| i.parse().ok())
            .filter(|i| (1..=CLIENT_ITERATIONS_MAX).contains(i))
            .ok_or("the iteration count is missing or out of range")?;
        let m = self.mechanism;
        let salted = m.salted_password(self.password.as_bytes(), &salt, iterations);
        let client_key = m.hmac(&salted, b"Client Key");
        let keys = ScramCredential::from_salted_password(m, &salt, &salted, iterations);
        let without_proof = format!("c=biws,r={nonce}");
        let auth = format!("{},{server_first},{without_proof}", self.client_first_bare);
        let signature = m.hmac(&keys.stored_key, auth.as_bytes());
        let proof: Vec<u8> = client_key.iter().zip(&signature).map(|(a, b)| a ^ b).collect();
        self.expected_server_signature = Some(m.hmac(&keys.server_key, auth.as_bytes()));
        Ok(format!("{without_proof},p={}", B64.encode(proof)).into_bytes())
    }

    /// Checks the server-final message: the server knew the credential too.
    pub fn verify(&self, server_final: &[u8]) -> Result<(), String> {
        let text = std::str::from_utf8(server_final).map_err(|_| "server-final is not UTF-8")?;
        if let Some(e) = text.strip_prefix("e=") {
            return Err(format!("the server refused: {e}"));
        }
        let v = text.strip_prefix("v=").ok_or("server-final message has no signature")?;
        let v = B64.decode(v).map_err(|_| "the server signature is not base64")?;
        match &self.expected_server_signature {
            Some(expected) if bool::from(expected.ct_eq(&v)) => Ok(()),
            _ => Err("the server's signature is wrong: it does not hold this credential".into()),
        }
    }
}

struct Exchange<'a> {
    credential: &'a ScramCredential,
    gs2_header: &'a str,
    client_first_bare: &'a str,
    server_first: &'a str,
    nonce: &'a str,
}

/// The parts of a client-first message.
#[derive(Debug, PartialEq, Eq)]
struct ClientFirst<'a> {
    gs2_header: &'a str,
    authzid: Option<&'a str>,
    bare: &'a str,
    user: &'a str,
    nonce: &'a str,
    extensions: Vec<(&'a str, &'a str)>,
}

fn parse_client_first(text: &str) -> Result<ClientFirst<'_>, &'static str> {
    let (flag, rest) = text.split_once(',').ok_or("no GS2 header")?;
    match flag {
        "n" | "y" => {}
        f if f.starts_with("p=") => return Err("channel binding is not supported"),
        _ => return Err("bad GS2 channel-binding flag"),
    }
    let (authz, bare) = rest.split_once(',').ok_or("no GS2 header")?;
    let authzid = match authz {
        "" => None,
        a => Some(a.strip_prefix("a=").ok_or("bad authorization id")?),
    };
    let gs2_header = &text[..flag.len() + authz.len() + 2];
    let mut fields = bare.split(',');
    let first = fields.next().ok_or("no user name")?;
    if first.starts_with("m=") {
        return Err("mandatory extensions are not supported");
    }
    let user = first.strip_prefix("n=").ok_or("no user name (n=)")?;
    let nonce = fields.next().and_then(|f| f.strip_prefix("r=")).ok_or("no nonce (r=)")?;
    if user.is_empty() || nonce.is_empty() {
        return Err("empty user name or nonce");
    }
    let extensions = fields
        .map(|f| f.split_once('=').ok_or("malformed extension"))
        .collect::<Result<Vec<_>, _>>()?;
    Ok(ClientFirst { gs2_header, authzid, bare, user, nonce, extensions })
}

/// RFC 5802's `saslname`: `=2C` is `,` and `=3D` is `=`; any other `=` is malformed.
fn unescape_name(name: &str) -> Option<String> {
    let mut out = String::with_capacity(name.len());
    let mut rest = name;
    while let Some(i) = rest.find('=') {
        out.push_str(&rest[..i]);
        let code = rest.get(i + 1..i + 3)?;
        out.push(match code {
            "2C" => ',',
            "3D" => '=',
            _ => return None,
        });
        rest = &rest[i + 3..];
    }
    out.push_str(rest);
    Some(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    struct One(String, ScramMechanism, ScramCredential);
    impl CredentialStore for One {
        fn credential(&self, user: &str, m: ScramMechanism) -> Option<ScramCredential> {
            (user == self.0 && m == self.1).then(|| self.2.clone())
        }
    }

    /// A client side, written from RFC 5802 for the test.
    fn client_final(
        m: ScramMechanism,
        password: &str,
        client_first_bare: &str,
        server_first: &str,
    ) -> (String, Vec<u8>) {
        let fields: Vec<&str> = server_first.split(',').collect();
        let nonce = &fields[0][2..];
        let salt = B64.decode(&fields[1][2..]).expect("salt");
        let iterations: i32 = fields[2][2..].parse().expect("iterations");
        let salted = m.salted_password(password.as_bytes(), &salt, iterations);
        let client_key = m.hmac(&salted, b"Client Key");
        let stored_key = m.hash(&client_key);
        let without_proof = format!("c=biws,r={nonce}");
        let auth = format!("{client_first_bare},{server_first},{without_proof}");
        let sig = m.hmac(&stored_key, auth.as_bytes());
        let proof: Vec<u8> = client_key.iter().zip(&sig).map(|(a, b)| a ^ b).collect();
        let server_sig = m.hmac(&m.hmac(&salted, b"Server Key"), auth.as_bytes());
        (format!("{without_proof},p={}", B64.encode(proof)), server_sig)
    }

    fn exchange(m: ScramMechanism, stored_pw: &str, tried_pw: &str) -> Result<Step, AuthError> {
        let store =
            Arc::new(One("al,ice".into(), m, ScramCredential::from_password(m, stored_pw, 4096)));
        let mut server = ScramServer::new(m, store);
        let bare = "n=al=2Cice,r=fyko+d2lbbFgONRv9qkxdawL";
        let Step::Challenge(first) = server.step(format!("n,,{bare}").as_bytes())? else {
            panic!("expected a challenge")
        };
        let first = String::from_utf8(first).expect("utf8");
        assert!(first.starts_with("r=fyko+d2lbbFgONRv9qkxdawL"));
        let (fin, server_sig) = client_final(m, tried_pw, bare, &first);
        let step = server.step(fin.as_bytes())?;
        if let Step::Done { last, .. } = &step {
            assert_eq!(last, &format!("v={}", B64.encode(server_sig)).into_bytes());
        }
        Ok(step)
    }

    #[test]
    fn the_right_password_authenticates_with_both_hashes() {
        for m in ScramMechanism::ALL {
            assert!(
                matches!(exchange(m, "pencil", "pencil"), Ok(Step::Done { user, .. }) if user == "al,ice")
            );
            assert!(matches!(exchange(m, "pencil", "pen"), Err(AuthError::Refused(_))));
        }
    }

    /// RFC 7677's test vector: SCRAM-SHA-256 with user "user", password "pencil".
    #[test]
    fn rfc_7677_vector() {
        let m = ScramMechanism::Sha256;
        let salt = B64.decode("W22ZaJ0SNY7soEsUEjb6gQ==").expect("salt");
        let salted = m.salted_password(b"pencil", &salt, 4096);
        let cred = ScramCredential::from_salted_password(m, &salt, &salted, 4096);
        let bare = "n=user,r=rOprNGfwEbeRWgbNEkqO";
        let server_first = "r=rOprNGfwEbeRWgbNEkqO%hvYDpWUa2RaTCAfuxFIlj)hNlF$k0,s=W22ZaJ0SNY7soEsUEjb6gQ==,i=4096";
        let without_proof = "c=biws,r=rOprNGfwEbeRWgbNEkqO%hvYDpWUa2RaTCAfuxFIlj)hNlF$k0";
        let auth = format!("{bare},{server_first},{without_proof}");
        let sig = m.hmac(&cred.stored_key, auth.as_bytes());
        let client_key = m.hmac(&salted, b"Client Key");
        let proof: Vec<u8> = client_key.iter().zip(&sig).map(|(a, b)| a ^ b).collect();
        assert_eq!(B64.encode(proof), "dHzbZapWIk4jUhN+Ute9ytag9zjfMHgsqmmiz7AndVQ=");
        let server_sig = m.hmac(&cred.server_key, auth.as_bytes());
        assert_eq!(B64.encode(server_sig), "6rriTRBi23WpRR/wtup+mMhUZUn/dB5nLTJRsjl95G4=");
    }

    #[test]
    fn malformed_and_refused_first_messages() {
        let m = ScramMechanism::Sha256;
        let store = Arc::new(One("u".into(), m, ScramCredential::from_password(m, "p", 4096)));
        for bad in [
            "",
            "n",
            "n,,",
            "x,,n=u,r=a",
            "p=tls-unique,,n=u,r=a",
            "n,,m=x,n=u,r=a",
            "n,,n=u",
            "n,,n=,r=a",
            "n,,n=u=ZZ,r=a",
            "n,b,n=u,r=a",
            "n,,n=u,r=a,broken",
        ] {
            let mut s = ScramServer::new(m, store.clone());
            assert!(matches!(s.step(bad.as_bytes()), Err(AuthError::Malformed { .. })), "{bad:?}");
        }
        let mut s = ScramServer::new(m, store.clone());
        assert!(matches!(s.step(b"n,,n=nobody,r=abc"), Err(AuthError::Refused(_))));
        let mut s = ScramServer::new(m, store.clone());
        assert!(matches!(s.step(b"n,a=other,n=u,r=abc"), Err(AuthError::Refused(_))));
        let mut s = ScramServer::new(m, store.clone());
        assert!(matches!(s.step(b"n,,n=u,r=abc,tokenauth=true"), Err(AuthError::Refused(_))));
        // A final message with the wrong nonce or binding, and a repeated message, fail.
        let mut s = ScramServer::new(m, store);
        assert!(matches!(s.step(b"n,,n=u,r=abc"), Ok(Step::Challenge(_))));
        assert!(matches!(s.step(b"c=biws,r=abcX,p=AAAA"), Err(AuthError::Malformed { .. })));
        let mut s = ScramServer::new(
            m,
            Arc::new(One("u".into(), m, ScramCredential::from_password(m, "p", 4096))),
        );
        assert!(matches!(s.step(b"n,,n=u,r=abc"), Ok(Step::Challenge(_))));
        assert!(
            matches!(s.step(b"c=eSws,r=abc,p=AAAA"), Err(AuthError::Malformed { .. })),
            "binding"
        );
        assert!(s.step(b"c=biws,r=abc,p=AAAA").is_err());
    }

    #[test]
    fn our_client_and_server_agree_and_a_wrong_password_fails() {
        for m in ScramMechanism::ALL {
            for (tried, ok) in [("pencil", true), ("pen", false)] {
                let store =
                    Arc::new(One("u".into(), m, ScramCredential::from_password(m, "pencil", 4096)));
                let mut server = ScramServer::new(m, store);
                let mut client = ScramClient::new(m, "u", tried);
                let Ok(Step::Challenge(first)) = server.step(&client.first()) else {
                    panic!("challenge")
                };
                let fin = client.respond(&first).expect("respond");
                match server.step(&fin) {
                    Ok(Step::Done { last, .. }) => {
                        assert!(ok);
                        client.verify(&last).expect("server signature");
                    }
                    Err(_) => assert!(!ok),
                    other => panic!("{other:?}"),
                }
            }
        }
    }

    #[test]
    fn add_scram_arguments_parse_as_kafka_storage_takes_them() {
        let b = BootstrapCredential::parse(
            "SCRAM-SHA-512=[name=admin,password=admin-secret,iterations=8192]",
        )
        .expect("parses");
        assert_eq!(
            (b.user.as_str(), b.mechanism, b.credential.iterations),
            ("admin", ScramMechanism::Sha512, 8192)
        );
        for bad in [
            "SCRAM-SHA-1=[name=a,password=b]",
            "SCRAM-SHA-256=name=a,password=b",
            "SCRAM-SHA-256=[name=a]",
            "SCRAM-SHA-256=[name=a,password=hunter2,iterations=5]",
        ] {
            let e = BootstrapCredential::parse(bad).expect_err(bad);
            assert!(!e.contains("hunter2"), "{e}");
        }
    }

    #[test]
    fn credentials_never_print() {
        let c = ScramCredential::from_password(ScramMechanism::Sha512, "secret", 4096);
        let shown = format!("{c:?}");
        assert!(
            shown.contains("4096") && !shown.contains("salt") && !shown.contains("key"),
            "{shown}"
        );
    }
}
