//! `samsa quorum describe|add-voter|remove-voter`, like kafka-metadata-quorum's describe,
//! add-controller and remove-controller (KIP-853): the metadata quorum's voters with their
//! directory ids, and changes of the voter set. Replacing a controller whose disk was lost:
//! start it on an empty directory (it gets a new `directory.id` and replicates without voting),
//! `remove-voter` its old directory id, then `add-voter` the new one.

use anyhow::bail;
use clap::{Args, Subcommand};
use kafka_protocol::messages::add_raft_voter_request::Listener;
use kafka_protocol::messages::{AddRaftVoterRequest, RemoveRaftVoterRequest};
use kafka_protocol::protocol::StrBytes;

use super::ClientArgs;
use super::topic::error_name;
use crate::client::cluster::ClusterClient;
use crate::types::{parse_uuid, uuid_text};

/// How long a voter change may take (a new voter first catches up as a learner).
const VOTER_CHANGE_TIMEOUT_MS: i32 = 60_000;

#[derive(Debug, Subcommand)]
pub enum QuorumCommand {
    /// The leader, term, and every voter and observer with its directory id and log end.
    Describe(ClientArgs),
    /// Add a controller to the voters (it catches up as a learner first).
    AddVoter(AddVoterArgs),
    /// Remove a voter, named by its node id and directory id.
    RemoveVoter(RemoveVoterArgs),
}

#[derive(Debug, Args)]
pub struct AddVoterArgs {
    #[arg(long)]
    pub controller_id: i32,
    /// The new voter's `directory.id` (its data directory's meta.properties). It may start
    /// with `-` (URL-safe base64).
    #[arg(long, allow_hyphen_values = true)]
    pub controller_directory_id: String,
    /// host:port of the new voter's CONTROLLER listener.
    #[arg(long)]
    pub controller_endpoint: String,
    #[command(flatten)]
    pub client: ClientArgs,
}

#[derive(Debug, Args)]
pub struct RemoveVoterArgs {
    #[arg(long)]
    pub controller_id: i32,
    /// The `directory.id` the voter is recorded with (`samsa quorum describe`).
    #[arg(long, allow_hyphen_values = true)]
    pub controller_directory_id: String,
    #[command(flatten)]
    pub client: ClientArgs,
}

fn directory(text: &str) -> anyhow::Result<uuid::Uuid> {
    parse_uuid(text).ok_or_else(|| {
        anyhow::anyhow!("'{text}' is not a directory id (22 characters, as meta.properties and `samsa quorum describe` show it)")
    })
}

fn check(what: &str, code: i16, message: Option<&StrBytes>) -> anyhow::Result<()> {
    if code != 0 {
        bail!(
            "{what} was refused: {}{}",
            error_name(code),
            message.map_or(String::new(), |m| format!(": {m}"))
        );
    }
    Ok(())
}

pub(super) async fn run(cmd: QuorumCommand) -> anyhow::Result<()> {
    match cmd {
        QuorumCommand::Describe(c) => describe(c).await,
        QuorumCommand::AddVoter(a) => {
            let (host, port) = a
                .controller_endpoint
                .rsplit_once(':')
                .and_then(|(h, p)| Some((h.to_string(), p.parse::<u16>().ok()?)))
                .ok_or_else(|| anyhow::anyhow!("--controller-endpoint must be host:port"))?;
            let mut l = Listener::default();
            l.name = StrBytes::from_static_str("CONTROLLER");
            l.host = StrBytes::from_string(host);
            l.port = port;
            let mut req = AddRaftVoterRequest::default();
            req.timeout_ms = VOTER_CHANGE_TIMEOUT_MS;
            req.voter_id = a.controller_id;
            req.voter_directory_id = directory(&a.controller_directory_id)?;
            req.listeners = vec![l];
            let mut cluster = ClusterClient::connect(&a.client.bootstrap_server).await?;
            let client = cluster.any();
            let v = client.version::<AddRaftVoterRequest>(0)?;
            let resp = client.send(&req, v).await?;
            check("AddRaftVoter", resp.error_code, resp.error_message.as_ref())?;
            println!(
                "Added controller {} with directory id {} as a voter.",
                a.controller_id, a.controller_directory_id
            );
            Ok(())
        }
        QuorumCommand::RemoveVoter(a) => {
            let mut req = RemoveRaftVoterRequest::default();
            req.voter_id = a.controller_id;
            req.voter_directory_id = directory(&a.controller_directory_id)?;
            let mut cluster = ClusterClient::connect(&a.client.bootstrap_server).await?;
            let client = cluster.any();
            let v = client.version::<RemoveRaftVoterRequest>(0)?;
            let resp = client.send(&req, v).await?;
            check("RemoveRaftVoter", resp.error_code, resp.error_message.as_ref())?;
            println!(
                "Removed voter {} with directory id {}.",
                a.controller_id, a.controller_directory_id
            );
            Ok(())
        }
    }
}

async fn describe(c: ClientArgs) -> anyhow::Result<()> {
    let mut cluster = ClusterClient::connect(&c.bootstrap_server).await?;
    let resp = super::cluster::describe_quorum(cluster.any()).await?;
    check("DescribeQuorum", resp.error_code, resp.error_message.as_ref())?;
    let Some(p) = resp.topics.first().and_then(|t| t.partitions.first()) else {
        bail!("DescribeQuorum answered no metadata partition");
    };
    let endpoint = |id: i32| {
        resp.nodes
            .iter()
            .find(|n| n.node_id.0 == id)
            .and_then(|n| n.listeners.first())
            .map_or(String::from("-"), |l| format!("{}:{}", l.host, l.port))
    };
    println!("LeaderId:       {}", p.leader_id.0);
    println!("LeaderEpoch:    {}", p.leader_epoch);
    println!("HighWatermark:  {}", p.high_watermark);
    println!("{:<8}{:<24}{:<14}{:<10}Endpoint", "NodeId", "DirectoryId", "LogEndOffset", "Status");
    let rows = p
        .current_voters
        .iter()
        .map(|r| (r, "Voter"))
        .chain(p.observers.iter().map(|r| (r, "Observer")));
    for (r, status) in rows {
        let dir = if r.replica_directory_id.is_nil() {
            "-".to_string()
        } else {
            uuid_text(&r.replica_directory_id)
        };
        let status = if r.replica_id == p.leader_id { "Leader" } else { status };
        println!(
            "{:<8}{:<24}{:<14}{:<10}{}",
            r.replica_id.0,
            dir,
            r.log_end_offset,
            status,
            endpoint(r.replica_id.0)
        );
    }
    Ok(())
}
