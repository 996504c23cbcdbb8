//! `samsa user create|list|delete`: SCRAM users, as Kafka's
//! `kafka-configs --entity-type users --alter --add-config 'SCRAM-SHA-256=[...]'` does it with
//! AlterUserScramCredentials / DescribeUserScramCredentials (KIP-554).
//!
//! Invariant: the password never leaves this process. The tool salts it here (a fresh random
//! salt per credential) and sends only the salted password, as Kafka's admin client does; the
//! password is read from `--password` or, safer, from the first line of stdin.

use std::io::BufRead as _;

use anyhow::{Context, bail};
use clap::{Args, Subcommand};
use kafka_protocol::messages::alter_user_scram_credentials_request::{
    ScramCredentialDeletion, ScramCredentialUpsertion,
};
use kafka_protocol::messages::describe_user_scram_credentials_request::UserName;
use kafka_protocol::messages::{
    AlterUserScramCredentialsRequest, DescribeUserScramCredentialsRequest,
    DescribeUserScramCredentialsResponse,
};
use kafka_protocol::protocol::StrBytes;

use super::ClientArgs;
use super::topic::error_name;
use crate::client::KafkaClient;
use crate::security::sasl::scram::{ITERATIONS_MAX, ITERATIONS_MIN, ScramMechanism};

/// Bytes of random salt per credential (Kafka's ScramFormatter uses a random salt too).
const SALT_BYTES: usize = 32;

#[derive(Debug, Subcommand)]
pub enum UserCommand {
    /// Create a SCRAM user, or replace its credential for the mechanism.
    Create(CreateArgs),
    /// List SCRAM users with their mechanisms and iterations (never the keys).
    List(ListArgs),
    /// Delete a user's SCRAM credentials (all mechanisms unless --mechanism is given).
    Delete(DeleteArgs),
}

#[derive(Debug, Args)]
pub struct CreateArgs {
    pub user: String,
    /// The password; when absent, the first line of stdin is read (keeps it out of `ps`).
    #[arg(long)]
    pub password: Option<String>,
    /// SCRAM-SHA-256 or SCRAM-SHA-512. Repeat for both.
    #[arg(long = "mechanism", default_value = "SCRAM-SHA-256")]
    pub mechanisms: Vec<String>,
    /// PBKDF2 iterations (Kafka accepts 4096..=16384).
    #[arg(long, default_value_t = ITERATIONS_MIN)]
    pub iterations: i32,
    #[command(flatten)]
    pub client: ClientArgs,
}

#[derive(Debug, Args)]
pub struct ListArgs {
    /// Only these users (default: every user).
    pub users: Vec<String>,
    #[command(flatten)]
    pub client: ClientArgs,
}

#[derive(Debug, Args)]
pub struct DeleteArgs {
    pub user: String,
    /// Only this mechanism's credential. Repeatable.
    #[arg(long = "mechanism")]
    pub mechanisms: Vec<String>,
    #[command(flatten)]
    pub client: ClientArgs,
}

pub(super) async fn run(cmd: UserCommand) -> anyhow::Result<()> {
    match cmd {
        UserCommand::Create(a) => create(a).await,
        UserCommand::List(a) => list(&a).await,
        UserCommand::Delete(a) => delete(&a).await,
    }
}

fn mechanism(name: &str) -> anyhow::Result<ScramMechanism> {
    ScramMechanism::parse(name)
        .with_context(|| format!("--mechanism {name}: use SCRAM-SHA-256 or SCRAM-SHA-512"))
}

fn read_password() -> anyhow::Result<String> {
    let mut line = String::new();
    std::io::stdin().lock().read_line(&mut line).context("cannot read the password from stdin")?;
    let password = line.trim_end_matches(['\r', '\n']).to_string();
    if password.is_empty() {
        bail!("no password: pass --password or write it on the first line of stdin");
    }
    Ok(password)
}

async fn create(a: CreateArgs) -> anyhow::Result<()> {
    if !(ITERATIONS_MIN..=ITERATIONS_MAX).contains(&a.iterations) {
        bail!("--iterations {}: Kafka accepts {ITERATIONS_MIN} to {ITERATIONS_MAX}", a.iterations);
    }
    let mechanisms: Vec<ScramMechanism> =
        a.mechanisms.iter().map(|m| mechanism(m)).collect::<anyhow::Result<_>>()?;
    let password = match a.password {
        Some(p) => p,
        None => read_password()?,
    };
    let mut req = AlterUserScramCredentialsRequest::default();
    for m in &mechanisms {
        let salt: [u8; SALT_BYTES] = rand::random();
        let mut u = ScramCredentialUpsertion::default();
        u.name = StrBytes::from_string(a.user.clone());
        u.mechanism = m.wire();
        u.iterations = a.iterations;
        u.salt = bytes::Bytes::copy_from_slice(&salt);
        u.salted_password =
            bytes::Bytes::from(m.salted_password(password.as_bytes(), &salt, a.iterations));
        req.upsertions.push(u);
    }
    alter(&a.client, req).await?;
    for m in &mechanisms {
        outln!(
            "Created {} credential for user '{}' ({} iterations).",
            m.name(),
            a.user,
            a.iterations
        );
    }
    Ok(())
}

async fn alter(client: &ClientArgs, req: AlterUserScramCredentialsRequest) -> anyhow::Result<()> {
    let mut conn = KafkaClient::connect(&client.bootstrap_server).await?;
    let version = conn.version::<AlterUserScramCredentialsRequest>(0)?;
    let resp = conn.send(&req, version).await.context("AlterUserScramCredentials failed")?;
    for r in resp.results {
        if r.error_code != 0 {
            let detail = r.error_message.map(|m| format!(": {m}")).unwrap_or_default();
            bail!("user '{}': {}{detail}", r.user, error_name(r.error_code));
        }
    }
    Ok(())
}

async fn describe(
    client: &ClientArgs,
    users: &[String],
) -> anyhow::Result<DescribeUserScramCredentialsResponse> {
    let mut conn = KafkaClient::connect(&client.bootstrap_server).await?;
    let version = conn.version::<DescribeUserScramCredentialsRequest>(0)?;
    let mut req = DescribeUserScramCredentialsRequest::default();
    req.users = (!users.is_empty()).then(|| {
        users
            .iter()
            .map(|u| {
                let mut n = UserName::default();
                n.name = StrBytes::from_string(u.clone());
                n
            })
            .collect()
    });
    let resp = conn.send(&req, version).await.context("DescribeUserScramCredentials failed")?;
    if resp.error_code != 0 {
        let detail = resp.error_message.as_ref().map(|m| format!(": {m}")).unwrap_or_default();
        bail!("cannot list users: {}{detail}", error_name(resp.error_code));
    }
    Ok(resp)
}

async fn list(a: &ListArgs) -> anyhow::Result<()> {
    let resp = describe(&a.client, &a.users).await?;
    outln!("{:<32} {:<16} {}", "User", "Mechanism", "Iterations");
    let mut failed = false;
    for r in resp.results {
        if r.error_code != 0 {
            eprintln!("user '{}': {}", r.user, error_name(r.error_code));
            failed = true;
            continue;
        }
        for c in r.credential_infos {
            let name = ScramMechanism::from_wire(c.mechanism).map_or("UNKNOWN", |m| m.name());
            outln!("{:<32} {:<16} {}", r.user.as_str(), name, c.iterations);
        }
    }
    if failed {
        bail!("some users could not be described");
    }
    Ok(())
}

async fn delete(a: &DeleteArgs) -> anyhow::Result<()> {
    let mechanisms: Vec<ScramMechanism> = if a.mechanisms.is_empty() {
        let resp = describe(&a.client, std::slice::from_ref(&a.user)).await?;
        let Some(r) = resp.results.into_iter().next() else { bail!("empty answer") };
        if r.error_code != 0 {
            bail!("user '{}': {}", a.user, error_name(r.error_code));
        }
        r.credential_infos.iter().filter_map(|c| ScramMechanism::from_wire(c.mechanism)).collect()
    } else {
        a.mechanisms.iter().map(|m| mechanism(m)).collect::<anyhow::Result<_>>()?
    };
    let mut req = AlterUserScramCredentialsRequest::default();
    for m in &mechanisms {
        let mut d = ScramCredentialDeletion::default();
        d.name = StrBytes::from_string(a.user.clone());
        d.mechanism = m.wire();
        req.deletions.push(d);
    }
    alter(&a.client, req).await?;
    for m in &mechanisms {
        outln!("Deleted {} credential of user '{}'.", m.name(), a.user);
    }
    Ok(())
}
