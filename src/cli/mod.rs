//! The `samsa` command line: `dev` runs a broker; `topic`, `produce`, `consume` and `bench` are
//! Kafka clients that talk the wire protocol to `--bootstrap-server`, like Kafka's own tools.

/// Writes a line to stdout, returning an error instead of panicking when stdout is closed (a
/// pipe into `head`); `main` turns a broken pipe into a quiet exit, as Kafka's tools behave.
macro_rules! outln {
    ($($arg:tt)*) => {{
        use std::io::Write as _;
        writeln!(std::io::stdout().lock(), $($arg)*)?;
    }};
}

mod acl;
mod admin;
mod bench;
mod cluster;
mod configs;
mod consume;
mod dev;
mod group;
mod health;
mod plan;
mod produce;
mod quorum;
mod reassign;
mod throttle;
mod topic;
mod transactions;
mod user;

use std::path::PathBuf;

use clap::{Args, Parser, Subcommand};

/// Where the client tools connect by default.
pub const DEFAULT_BOOTSTRAP: &str = "127.0.0.1:9092";

#[derive(Debug, Parser)]
#[command(name = "samsa", version, about = "A Kafka-compatible event streaming platform")]
pub struct Cli {
    /// Kafka client properties for the client commands (`security.protocol`, `sasl.mechanism`,
    /// `sasl.username`/`sasl.password` or `sasl.jaas.config`, `ssl.truststore.location`, ...).
    #[arg(long, global = true, value_name = "FILE")]
    pub command_config: Option<PathBuf>,
    #[command(subcommand)]
    pub command: Command,
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Run a single-node samsa with embedded defaults (data in ./samsa-data, Kafka on :9092).
    Dev(DevArgs),
    /// Run a cluster node configured with Kafka's keys (file, SAMSA_* variables, --override).
    Server(dev::ServerArgs),
    /// Create, list, describe, alter and delete topics.
    #[command(subcommand)]
    Topic(TopicCommand),
    /// Produce lines from stdin, one record per line.
    Produce(produce::ProduceArgs),
    /// Consume records and print one per line.
    Consume(consume::ConsumeArgs),
    /// List, describe, delete consumer groups and reset their offsets.
    #[command(subcommand)]
    Group(group::GroupCommand),
    /// Exit 0 if a node's admin listener says it is ready (`--live`: alive), else 1.
    Health(health::HealthArgs),
    /// Broker maintenance: `samsa broker drain N`.
    #[command(subcommand)]
    Broker(BrokerCommand),
    /// Inspect and balance the cluster: `samsa cluster status|rebalance`.
    #[command(subcommand)]
    Cluster(cluster::ClusterCommand),
    /// List, describe and abort transactions, like kafka-transactions.sh.
    #[command(subcommand)]
    Transactions(transactions::TransactionsCommand),
    /// Show the producers of a topic's partitions (idempotent and transactional).
    #[command(subcommand)]
    Producers(transactions::ProducersCommand),
    /// The metadata quorum: describe it, add and remove voters (KIP-853), like
    /// kafka-metadata-quorum.
    #[command(subcommand)]
    Quorum(quorum::QuorumCommand),
    /// Describe and alter dynamic broker configs, topic overrides and client quotas, like
    /// kafka-configs.sh.
    Configs(configs::ConfigsArgs),
    /// Add, list and remove ACLs, like kafka-acls.sh.
    #[command(subcommand)]
    Acl(acl::AclCommand),
    /// Create, list and delete SCRAM users.
    #[command(subcommand)]
    User(user::UserCommand),
    /// Measure produce or consume throughput and latency.
    #[command(subcommand)]
    Bench(bench::BenchCommand),
}

#[derive(Debug, Args)]
pub struct DevArgs {
    /// Directory for partition logs and metadata.
    #[arg(long, default_value = "./samsa-data")]
    pub data_dir: PathBuf,
    /// Kafka listener port (0 picks a free one).
    #[arg(long, default_value_t = 9092)]
    pub port: u16,
    /// Kafka listener address.
    #[arg(long, default_value = "127.0.0.1")]
    pub host: String,
    /// A broker setting with Kafka's name, e.g. `--override num.partitions=3`. Repeatable.
    #[arg(long = "override", value_name = "KEY=VALUE")]
    pub overrides: Vec<String>,
}

/// Connection options shared by the client tools.
#[derive(Debug, Args, Clone)]
pub struct ClientArgs {
    /// The broker to talk to, as host:port.
    #[arg(long, default_value = DEFAULT_BOOTSTRAP)]
    pub bootstrap_server: String,
}

#[derive(Debug, Subcommand)]
pub enum TopicCommand {
    /// Create a topic.
    Create(topic::CreateArgs),
    /// List topics.
    List(ClientArgs),
    /// Show partitions, leaders, replicas, ISR, offsets and configs.
    Describe(topic::DescribeArgs),
    /// Change a topic's configs (`--config k=v`, `--delete-config k`).
    Alter(topic::AlterArgs),
    /// Delete a topic.
    Delete(topic::DeleteArgs),
    /// Move partitions to the replicas a kafka-reassign-partitions JSON plan names
    /// (`--verify` reports progress, `--cancel` reverts the ongoing moves).
    Reassign(reassign::ReassignArgs),
}

#[derive(Debug, Subcommand)]
pub enum BrokerCommand {
    /// Move every replica and leadership off a broker (before maintenance or removal).
    Drain(reassign::DrainArgs),
}

/// Runs the parsed command.
pub async fn run(cli: Cli) -> anyhow::Result<()> {
    if let Some(path) = &cli.command_config {
        crate::client::security::install(crate::client::security::ClientSecurity::from_file(path)?);
    }
    match cli.command {
        Command::Dev(args) => dev::dev(args).await,
        Command::Server(args) => dev::server(args).await,
        Command::Topic(cmd) => topic::run(cmd).await,
        Command::Produce(args) => produce::run(args).await,
        Command::Consume(args) => consume::run(args).await,
        Command::Bench(cmd) => bench::run(cmd).await,
        Command::Cluster(cmd) => cluster::run(cmd).await,
        Command::Broker(BrokerCommand::Drain(args)) => reassign::drain(args).await,
        Command::Group(cmd) => group::run(cmd).await,
        Command::Health(args) => health::run(args).await,
        Command::Transactions(cmd) => transactions::run(cmd).await,
        Command::Producers(cmd) => transactions::run_producers(cmd).await,
        Command::Configs(a) => configs::run(a).await,
        Command::Quorum(cmd) => quorum::run(cmd).await,
        Command::Acl(cmd) => acl::run(cmd).await,
        Command::User(cmd) => user::run(cmd).await,
    }
}
