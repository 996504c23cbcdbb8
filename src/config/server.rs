//! `samsa server` configuration: Kafka's key names from three sources, later ones winning:
//!
//! 1. a properties file (`samsa server server.properties`),
//! 2. `SAMSA_*` environment variables, mapped as Kafka's container images map `KAFKA_*`:
//!    strip the prefix, lowercase, `___` → `-`, `__` → `_`, `_` → `.`
//!    (`SAMSA_NODE_ID` → `node.id`, `SAMSA_CONTROLLER_QUORUM_VOTERS` → `controller.quorum.voters`),
//! 3. `--override key=value` on the command line.
//!
//! Listeners use Kafka's syntax: `listeners=PLAINTEXT://0.0.0.0:9092,CONTROLLER://0.0.0.0:9093`,
//! `advertised.listeners=PLAINTEXT://samsa-1:9092`, `controller.listener.names=CONTROLLER`.
//! Every node has a CONTROLLER listener: voters use it for raft, broker-only nodes receive the
//! metadata log on it.

use std::collections::BTreeMap;
use std::net::{SocketAddr, ToSocketAddrs};
use std::path::Path;

use anyhow::{Context, bail};

use super::broker::{BrokerConfig, KafkaListener};
use crate::security::PeerTls;
use crate::security::props::{self, SecurityProps};
use crate::security::{ListenerSecurity, SecurityProtocol};

/// Environment variables that are samsa's own, not configuration keys.
const NOT_CONFIG_VARS: &[&str] = &["SAMSA_LOG", "SAMSA_BIN", "SAMSA_ADD_SCRAM"];

/// Maps a `SAMSA_*` variable name to a config key, or `None` if it is not one.
pub fn env_key(var: &str) -> Option<String> {
    let rest = var.strip_prefix("SAMSA_")?;
    if NOT_CONFIG_VARS.contains(&var) || rest.is_empty() {
        return None;
    }
    Some(
        rest.to_lowercase()
            .replace("___", "-")
            .replace("__", "\u{0}")
            .replace('_', ".")
            .replace('\u{0}', "_"),
    )
}

/// Parses a properties file as Java does (`java.util.Properties`): `key=value`, `key: value` or
/// `key value`, `#`/`!` comments, backslash line continuations, `\uXXXX` and other escapes.
/// The file is read as UTF-8 (a superset of the ASCII Kafka's files use). Values are trimmed, as
/// Kafka's config parsing trims them. Pairs come back in file order.
pub fn parse_properties(text: &str) -> anyhow::Result<Vec<(String, String)>> {
    let mut out = Vec::new();
    java_properties::PropertiesIter::new_with_encoding(text.as_bytes(), encoding_rs::UTF_8)
        .read_into(|k, v| out.push((k.trim().to_string(), v.trim().to_string())))
        .map_err(|e| anyhow::anyhow!("{e}"))?;
    Ok(out)
}

/// One `NAME://host:port` listener.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Listener {
    pub name: String,
    pub host: String,
    pub port: u16,
}

/// Parses `listeners` / `advertised.listeners`.
pub fn parse_listeners(key: &str, value: &str) -> anyhow::Result<Vec<Listener>> {
    let mut out = Vec::new();
    for l in value.split(',').map(str::trim).filter(|l| !l.is_empty()) {
        let (name, addr) =
            l.split_once("://").with_context(|| format!("{key}: '{l}' is not NAME://host:port"))?;
        let (host, port) =
            addr.rsplit_once(':').with_context(|| format!("{key}: '{l}' has no port"))?;
        let port: u16 = port.parse().with_context(|| format!("{key}: bad port in '{l}'"))?;
        out.push(Listener {
            name: name.to_uppercase(),
            host: host.trim_matches(['[', ']']).to_string(),
            port,
        });
    }
    Ok(out)
}

fn resolve(host: &str, port: u16) -> anyhow::Result<SocketAddr> {
    let host = if host.is_empty() { "0.0.0.0" } else { host };
    (host, port)
        .to_socket_addrs()
        .with_context(|| format!("cannot resolve listener host '{host}'"))?
        .next()
        .with_context(|| format!("'{host}' resolves to no address"))
}

/// Loads a node's configuration from `file`, `env` and `overrides` (in that order of precedence,
/// lowest first) and checks the keys against each other.
pub fn load(
    file: Option<&Path>,
    env: impl IntoIterator<Item = (String, String)>,
    overrides: &[String],
) -> anyhow::Result<BrokerConfig> {
    let mut entries: Vec<(String, String, String)> = Vec::new(); // (key, value, source)
    if let Some(path) = file {
        let text = std::fs::read_to_string(path)
            .with_context(|| format!("cannot read {}", path.display()))?;
        for (k, v) in parse_properties(&text).with_context(|| format!("in {}", path.display()))? {
            entries.push((k, v, path.display().to_string()));
        }
    }
    for (var, value) in env {
        if let Some(key) = env_key(&var) {
            entries.push((key, value, format!("environment variable {var}")));
        }
    }
    for o in overrides {
        let (k, v) =
            o.split_once('=').with_context(|| format!("--override '{o}' is not key=value"))?;
        entries.push((k.trim().to_string(), v.trim().to_string(), "--override".into()));
    }
    let mut raw: BTreeMap<String, String> = BTreeMap::new();
    let mut security = SecurityProps::default();
    let mut config = BrokerConfig::dev("./samsa-data".into(), "127.0.0.1:9092".parse()?);
    config.voters.clear();
    // A cluster node starts from Kafka's group defaults (dev mode skips the initial delay).
    config.group = crate::config::group::GroupConfig::default();
    for (k, v, source) in entries {
        match k.as_str() {
            "listeners"
            | "advertised.listeners"
            | "controller.listener.names"
            | "listener.security.protocol.map"
            | "inter.broker.listener.name" => {
                raw.insert(k, v);
            }
            k if props::is_security_key(k) => {
                check_security_key(k).with_context(|| format!("from {source}"))?;
                security.insert(k, &v);
            }
            _ => config.set(&k, &v).with_context(|| format!("from {source}"))?,
        }
    }
    apply_listeners(&mut config, &raw, &security)?;
    config.security_props = security;
    validate(&config)?;
    Ok(config)
}

fn apply_listeners(
    config: &mut BrokerConfig,
    raw: &BTreeMap<String, String>,
    security: &SecurityProps,
) -> anyhow::Result<()> {
    let controller_name =
        raw.get("controller.listener.names").map_or("CONTROLLER".to_string(), |s| {
            s.split(',').next().unwrap_or("").trim().to_uppercase()
        });
    let listeners = parse_listeners("listeners", raw.get("listeners").map_or("", String::as_str))?;
    let advertised = parse_listeners(
        "advertised.listeners",
        raw.get("advertised.listeners").map_or("", String::as_str),
    )?;
    let controller = listeners.iter().find(|l| l.name == controller_name).with_context(|| {
        format!("listeners must include a {controller_name}:// listener (controller.listener.names); every node needs one for the metadata quorum")
    })?;
    config.controller_listener = resolve(&controller.host, controller.port)?;
    let voter_addr = config.voters.get(&config.node_id).cloned();
    config.controller_advertised = match (
        voter_addr,
        advertised.iter().find(|l| l.name == controller_name),
    ) {
        (Some(v), _) => v,
        (None, Some(a)) => format!("{}:{}", a.host, a.port),
        (None, None) if !controller.host.is_empty() && controller.host != "0.0.0.0" => {
            format!("{}:{}", controller.host, controller.port)
        }
        (None, None) => bail!(
            "the {controller_name} listener binds {}:{} but no reachable address is known: add {controller_name}://host:port to advertised.listeners",
            controller.host,
            controller.port
        ),
    };
    let protocols = security_protocols(raw)?;
    let protocol_of = |name: &str| -> anyhow::Result<SecurityProtocol> {
        match protocols.get(name) {
            Some(p) => Ok(*p),
            None if name == controller_name => Ok(SecurityProtocol::Plaintext),
            None => SecurityProtocol::parse(name).with_context(|| {
                format!("listener {name} has no entry in listener.security.protocol.map: add {name}:PLAINTEXT (or SSL, SASL_PLAINTEXT, SASL_SSL)")
            }),
        }
    };
    config.controller_tls = match protocol_of(&controller_name)? {
        SecurityProtocol::Plaintext => None,
        SecurityProtocol::Ssl => Some(
            PeerTls::build(&controller_name, security)
                .with_context(|| format!("the {controller_name} listener is mapped to SSL"))?,
        ),
        other => bail!(
            "the {controller_name} listener is mapped to {}: samsa's nodes authenticate each other on it with TLS certificates, so map it to SSL (with ssl.client.auth=required) or PLAINTEXT",
            other.name()
        ),
    };
    if config.process_roles.broker {
        let kafka: Vec<&Listener> =
            listeners.iter().filter(|l| l.name != controller_name).collect();
        if kafka.is_empty() {
            bail!(
                "a broker needs a client listener besides the controller one, e.g. listeners=PLAINTEXT://0.0.0.0:9092,CONTROLLER://0.0.0.0:9093"
            );
        }
        if let Some(name) = raw.get("inter.broker.listener.name")
            && !kafka.iter().any(|l| l.name == name.to_uppercase())
        {
            bail!("inter.broker.listener.name={name} is not one of the listeners");
        }
        let mut resolved = Vec::new();
        for l in kafka {
            let protocol = protocol_of(&l.name)?;
            if protocol != SecurityProtocol::Plaintext {
                config
                    .listener_security
                    .insert(l.name.clone(), ListenerSecurity::build(&l.name, protocol, security)?);
            }
            let (host, port) = advertised_for(l, &advertised)?;
            resolved.push(KafkaListener {
                name: l.name.clone(),
                bind: resolve(&l.host, l.port)?,
                advertised_host: host,
                advertised_port: port,
            });
        }
        let first = resolved.remove(0);
        config.listener = first.bind;
        config.listener_name = first.name;
        config.advertised_host = first.advertised_host;
        config.advertised_port = first.advertised_port;
        config.extra_listeners = resolved;
    }
    Ok(())
}

/// Where clients are told to reach listener `l`: its advertised entry, else its own host
/// (refused when that is a wildcard: clients would be told to connect to 0.0.0.0).
fn advertised_for(l: &Listener, advertised: &[Listener]) -> anyhow::Result<(String, u16)> {
    match advertised.iter().find(|a| a.name == l.name) {
        Some(a) => Ok((a.host.clone(), a.port)),
        None if !l.host.is_empty() && l.host != "0.0.0.0" => Ok((l.host.clone(), l.port)),
        None => bail!(
            "listener {}://{}:{} binds all interfaces: set advertised.listeners={}://<host clients can reach>:{} so clients are not told to connect to 0.0.0.0",
            l.name,
            l.host,
            l.port,
            l.name,
            l.port
        ),
    }
}

/// `listener.security.protocol.map`: listener name → protocol.
fn security_protocols(
    raw: &BTreeMap<String, String>,
) -> anyhow::Result<BTreeMap<String, SecurityProtocol>> {
    let mut out = BTreeMap::new();
    let Some(map) = raw.get("listener.security.protocol.map") else { return Ok(out) };
    for entry in map.split(',').map(str::trim).filter(|e| !e.is_empty()) {
        let (name, protocol) = entry.split_once(':').with_context(|| {
            format!("listener.security.protocol.map: '{entry}' is not NAME:PROTOCOL")
        })?;
        let p = SecurityProtocol::parse(protocol).with_context(|| {
            format!("listener.security.protocol.map: {protocol} is not PLAINTEXT, SSL, SASL_PLAINTEXT or SASL_SSL")
        })?;
        out.insert(name.trim().to_uppercase(), p);
    }
    Ok(out)
}

/// The `ssl.*` / `sasl.*` keys (and `connections.max.reauth.ms`) samsa reads or accepts; `listener.name.<l>.` and
/// `listener.name.<l>.<mechanism>.` prefixes are stripped before the check.
const SECURITY_KEYS: &[&str] = &[
    "ssl.keystore.type",
    "ssl.keystore.location",
    "ssl.keystore.certificate.chain",
    "ssl.keystore.key",
    "ssl.key.password",
    "ssl.truststore.type",
    "ssl.truststore.location",
    "ssl.truststore.certificates",
    "ssl.client.auth",
    "ssl.enabled.protocols",
    "ssl.cipher.suites",
    "ssl.principal.mapping.rules",
    "sasl.enabled.mechanisms",
    "sasl.jaas.config",
    "connections.max.reauth.ms",
];

/// Keys Kafka defines that change nothing for samsa's TLS (JVM provider and manager choices,
/// the PEM store's unused password, the client-side `ssl.endpoint.identification.algorithm`).
const SECURITY_KEYS_WITHOUT_EFFECT: &[&str] = &[
    "ssl.keystore.password",
    "ssl.truststore.password",
    "ssl.protocol",
    "ssl.provider",
    "ssl.keymanager.algorithm",
    "ssl.trustmanager.algorithm",
    "ssl.secure.random.implementation",
    "ssl.endpoint.identification.algorithm",
    "sasl.mechanism.inter.broker.protocol",
    "sasl.mechanism.controller.protocol",
];

fn check_security_key(key: &str) -> anyhow::Result<()> {
    let mut base = key;
    if let Some(rest) = key.strip_prefix("listener.name.") {
        let (_, after_listener) = rest
            .split_once('.')
            .with_context(|| format!("{key}: expected listener.name.<listener>.<key>"))?;
        base = after_listener;
        // listener.name.<l>.<mechanism>.sasl.jaas.config and friends.
        if let Some((mechanism, tail)) = base.split_once('.')
            && !matches!(mechanism, "ssl" | "sasl")
            && !SECURITY_KEYS.contains(&base)
        {
            base = tail;
        }
    }
    if SECURITY_KEYS.contains(&base) || SECURITY_KEYS_WITHOUT_EFFECT.contains(&base) {
        return Ok(());
    }
    if base.ends_with(".class") {
        bail!("{key}: samsa cannot load Java classes; its SASL mechanisms and TLS are built in");
    }
    bail!("unknown configuration key '{key}'")
}

/// Checks keys against each other.
pub fn validate(config: &BrokerConfig) -> anyhow::Result<()> {
    if config.voters.is_empty() {
        bail!("controller.quorum.voters is required, e.g. 1@host1:9093,2@host2:9093,3@host3:9093");
    }
    let is_voter = config.voters.contains_key(&config.node_id);
    if config.process_roles.controller && !is_voter {
        bail!(
            "node.id={} has the controller role but is not in controller.quorum.voters",
            config.node_id
        );
    }
    if !config.process_roles.controller && is_voter {
        bail!(
            "node.id={} is in controller.quorum.voters but process.roles lacks controller",
            config.node_id
        );
    }
    config.group.validate()?;
    if config.broker_heartbeat_interval_ms >= config.broker_session_timeout_ms {
        bail!("broker.heartbeat.interval.ms must be smaller than broker.session.timeout.ms");
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::types::NodeId;

    fn props() -> &'static str {
        "# a three-node cluster\nnode.id=2\nprocess.roles=broker,controller\n\
         controller.quorum.voters=1@127.0.0.1:19192,2@127.0.0.1:19193,3@127.0.0.1:19194\n\
         listeners=PLAINTEXT://127.0.0.1:19093,CONTROLLER://127.0.0.1:19193\n\
         log.dirs=/tmp/x\nnum.partitions=3\n"
    }

    #[test]
    fn env_names_map_like_kafkas_images() {
        assert_eq!(env_key("SAMSA_NODE_ID").as_deref(), Some("node.id"));
        assert_eq!(
            env_key("SAMSA_CONTROLLER_QUORUM_VOTERS").as_deref(),
            Some("controller.quorum.voters")
        );
        assert_eq!(env_key("SAMSA_SOME__UNDERSCORE").as_deref(), Some("some_underscore"));
        assert_eq!(env_key("SAMSA_A___B").as_deref(), Some("a-b"));
        assert_eq!(env_key("SAMSA_LOG"), None);
        assert_eq!(env_key("PATH"), None);
    }

    /// Java's properties syntax, as Kafka's own `server.properties` files use it.
    #[test]
    fn properties_files_read_as_java_reads_them() {
        let text = "# a comment\n! another\nnode.id = 1\nprocess.roles: broker,\\\n    controller\n\
                    log.dirs /var/lib/samsa\nbroker.rack=r\\u00e9gion-a  \n";
        let pairs = parse_properties(text).expect("parses");
        assert_eq!(
            pairs,
            vec![
                ("node.id".to_string(), "1".to_string()),
                ("process.roles".to_string(), "broker,controller".to_string()),
                ("log.dirs".to_string(), "/var/lib/samsa".to_string()),
                ("broker.rack".to_string(), "r\u{e9}gion-a".to_string()),
            ]
        );
    }

    #[test]
    fn file_then_env_then_overrides_win() {
        let dir = tempfile::tempdir().expect("tmp");
        let f = dir.path().join("server.properties");
        std::fs::write(&f, props()).expect("write");
        let env = vec![("SAMSA_NUM_PARTITIONS".to_string(), "5".to_string())];
        let c = load(Some(&f), env.clone(), &[]).expect("load");
        assert_eq!(c.node_id, NodeId(2));
        assert_eq!(c.num_partitions, 5, "env beats file");
        assert_eq!(c.listener.port(), 19093);
        assert_eq!(c.advertised_host, "127.0.0.1");
        assert_eq!(c.controller_advertised, "127.0.0.1:19193");
        let c = load(Some(&f), env, &["num.partitions=7".into()]).expect("load");
        assert_eq!(c.num_partitions, 7, "override beats env");
    }

    #[test]
    fn misconfigurations_are_refused_with_a_clear_message() {
        let dir = tempfile::tempdir().expect("tmp");
        let f = dir.path().join("server.properties");
        std::fs::write(&f, props()).expect("write");
        let err = |o: &[&str]| {
            let o: Vec<String> = o.iter().map(|s| s.to_string()).collect();
            format!("{:#}", load(Some(&f), Vec::new(), &o).expect_err("refused"))
        };
        assert!(err(&["process.roles=broker"]).contains("process.roles lacks controller"));
        assert!(err(&["node.id=9"]).contains("not in controller.quorum.voters"));
        assert!(
            err(&["listeners=PLAINTEXT://0.0.0.0:19093,CONTROLLER://127.0.0.1:19193"])
                .contains("advertised.listeners")
        );
        assert!(err(&["listeners=PLAINTEXT://127.0.0.1:19093"]).contains("CONTROLLER"));
        assert!(err(&["no.such.key=1"]).contains("unknown configuration key"));
        assert!(err(&["controller.quorum.voters=1@x"]).contains("controller.quorum.voters"));
        assert!(
            err(&["listener.security.protocol.map=PLAINTEXT:SASL_PLAINTEXT,CONTROLLER:PLAINTEXT"])
                .contains("sasl.enabled.mechanisms")
        );
        assert!(
            err(&["listener.security.protocol.map=PLAINTEXT:SSL,CONTROLLER:PLAINTEXT"])
                .contains("ssl.keystore.location")
        );
        assert!(err(&["listener.security.protocol.map=PLAINTEXT:TLS"]).contains("SASL_SSL"));
        assert!(err(&["ssl.keystore.flavour=x"]).contains("unknown configuration key"));
        assert!(
            err(&["listener.name.plaintext.sasl.server.callback.handler.class=x"])
                .contains("Java classes")
        );
        assert!(err(&["inter.broker.listener.name=NOPE"]).contains("not one of the listeners"));
        let sasl = [
            "listener.security.protocol.map=PLAINTEXT:SASL_PLAINTEXT,CONTROLLER:PLAINTEXT",
            "sasl.enabled.mechanisms=SCRAM-SHA-256",
        ];
        assert!(
            err(&[&sasl[..], &["listener.name.plaintext.connections.max.reauth.ms=soon"]].concat())
                .contains("not a number of milliseconds")
        );
    }

    #[test]
    fn connections_max_reauth_ms_is_read_per_node_listener_and_mechanism() {
        let dir = tempfile::tempdir().expect("tmp");
        let f = dir.path().join("server.properties");
        std::fs::write(&f, props()).expect("write");
        let o: Vec<String> = [
            "listener.security.protocol.map=PLAINTEXT:SASL_PLAINTEXT,CONTROLLER:PLAINTEXT",
            "sasl.enabled.mechanisms=SCRAM-SHA-256,SCRAM-SHA-512",
            "connections.max.reauth.ms=60000",
            "listener.name.plaintext.scram-sha-512.connections.max.reauth.ms=1000",
        ]
        .iter()
        .map(|s| s.to_string())
        .collect();
        let c = load(Some(&f), Vec::new(), &o).expect("loads");
        let sasl = crate::security::sasl::SaslConfig::build("PLAINTEXT", &c.security_props)
            .expect("sasl config");
        let lifetime = |name| {
            let m = crate::security::sasl::Mechanism::parse(name).expect("mechanism");
            sasl.session_lifetime(m)
        };
        assert_eq!(lifetime("SCRAM-SHA-256"), Some(std::time::Duration::from_secs(60)));
        assert_eq!(lifetime("SCRAM-SHA-512"), Some(std::time::Duration::from_secs(1)));
    }

    #[test]
    fn internal_and_external_listeners_each_advertise_their_own_address() {
        let o: Vec<String> = [
            "listeners=INTERNAL://0.0.0.0:9092,EXTERNAL://0.0.0.0:19092,CONTROLLER://0.0.0.0:9093",
            "advertised.listeners=INTERNAL://samsa-1:9092,EXTERNAL://localhost:19092,CONTROLLER://samsa-1:9093",
            "listener.security.protocol.map=INTERNAL:PLAINTEXT,EXTERNAL:PLAINTEXT,CONTROLLER:PLAINTEXT",
            "inter.broker.listener.name=INTERNAL",
            "node.id=1",
            "controller.quorum.voters=1@samsa-1:9093",
        ]
        .iter()
        .map(|s| s.to_string())
        .collect();
        let c = load(None, Vec::new(), &o).expect("load");
        assert_eq!((c.listener_name.as_str(), c.listener.port()), ("INTERNAL", 9092));
        assert_eq!((c.advertised_host.as_str(), c.advertised_port), ("samsa-1", 9092));
        assert_eq!(c.extra_listeners.len(), 1);
        let e = &c.extra_listeners[0];
        assert_eq!((e.name.as_str(), e.bind.port()), ("EXTERNAL", 19092));
        assert_eq!((e.advertised_host.as_str(), e.advertised_port), ("localhost", 19092));
    }
}
