//! The composition root: config → metadata quorum (openraft + sled) → controller → replica
//! layer → replication, group coordinator → background tasks. It wires the rooms together and
//! implements the small traits they declare (the ISR proposer); it owns no protocol logic.
//! Listeners are bound by the caller and passed in, so tests run many nodes in one process on
//! ephemeral ports.
//!
//! # Start order
//! 1. The data directory and `meta.properties` (node id, cluster id) are checked.
//! 2. The metadata store (sled) and the raft member open; the local controller and the
//!    controller client are built on them; the replica layer is created empty.
//! 3. The RPC server starts on the controller listener (raft, controller RPCs, replication):
//!    peers may need this node's vote before the quorum can form.
//! 4. A voter bootstraps (or checks) the quorum; a broker registers and heartbeats once.
//! 5. Replicas are opened from the metadata image (one that cannot be opened is offline and
//!    retried), fetchers and group coordination follow, then the background tasks start.
//!
//! # Shutdown order
//! The Kafka listener stops first (the caller); then a controlled shutdown moves this broker's
//! leaderships away (bounded wait), the shutdown signal stops every background task and
//! fetcher, the raft member and the RPC server stop (releasing the metadata store), and every
//! log is fsynced with its high watermark checkpointed.

pub(crate) mod meta_properties;
mod tasks;
mod txn_markers;

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Duration;

use anyhow::{Context, bail};
use futures_util::future::BoxFuture;
use tokio::net::TcpListener;
use tokio::sync::{Mutex, watch};
use uuid::Uuid;

use crate::admin::metrics::Metrics;
use crate::config::broker::BrokerConfig;
use crate::controller::client::ControllerClient;
use crate::controller::service::ControllerService;
use crate::controller::{Controller, ControllerReply, ControllerRequest};
use crate::error_code::{ApiError, ErrorCode};
use crate::group::GroupCoordinator;
use crate::metadata::MetadataLog;
use crate::metadata::decide::{TopicDefaults, TopicSpec};
use crate::metadata::image::BrokerRegistration;
use crate::raft::log_store::LogStore;
use crate::raft::metadata_log::RaftMetadataLog;
use crate::raft::network::{Dialer, NetworkFactory, RAFT_MESSAGE_BYTES_MAX};
use crate::raft::pb::controller_server::ControllerServer;
use crate::raft::pb::raft_server::RaftServer;
use crate::raft::service::RaftService;
use crate::raft::state_machine::StateMachineStore;
use crate::raft::{MetadataRaft, RaftNode};
use crate::replica::ReplicaManager;
use crate::replication::isr::{IsrChange, IsrChangeKind, IsrProposer};
use crate::replication::pb::replication_server::ReplicationServer;
use crate::replication::service::{REPLICATION_MESSAGE_BYTES_MAX, ReplicationService};
use crate::replication::{Replication, ReplicationContext};

/// How long startup waits to register with an active controller (the other voters may still
/// be starting).
pub const REGISTRATION_WAIT: Duration = Duration::from_secs(120);
/// How long startup waits for the metadata store's lock (held by a broker still shutting down).
const METADATA_LOCK_WAIT: Duration = Duration::from_secs(5);
/// How long shutdown waits for the RPC server to stop serving.
const RPC_SERVER_STOP_WAIT: Duration = Duration::from_secs(5);
/// How long a stopping broker waits for the controller to move its leaderships.
pub const CONTROLLED_SHUTDOWN_WAIT: Duration = Duration::from_secs(5);
/// sled's page cache for the metadata store: metadata is small.
const SLED_CACHE_BYTES: u64 = 16 * 1024 * 1024;

/// A running node's shared state.
pub struct Broker {
    pub config: BrokerConfig,
    pub metadata: Arc<dyn MetadataLog>,
    /// Reaches the active controller, wherever it is.
    pub controller: Arc<ControllerClient>,
    /// The replica layer: every partition replica hosted here.
    pub(crate) replicas: Arc<ReplicaManager>,
    /// Request, byte and ISR-change counters for `/metrics`.
    pub(crate) metrics: Arc<Metrics>,
    /// The consumer-group coordinator for the offsets partitions this broker leads.
    pub(crate) groups: Arc<GroupCoordinator>,
    /// The transaction coordinator for the `__transaction_state` partitions this broker leads.
    pub(crate) txns: Arc<crate::txn::TransactionCoordinator>,
    /// Markers to partition leaders and KIP-890 verification with coordinators.
    txn_peers: Arc<txn_markers::BrokerMarkers>,
    /// Follower fetchers and leader-side ISR checks.
    pub(crate) replication: Arc<Replication>,
    /// What the log cleaner threads did (they run from `tasks`).
    pub(crate) cleaner: Arc<crate::cleaner::CleanerStats>,
    /// Client-quota usage (`crate::quota::client`).
    pub(crate) quotas: crate::quota::client::ClientQuotas,
    raft: MetadataRaft,
    /// This node's controller, active when it leads the quorum (runs session expiry).
    pub local_controller: Arc<Controller>,
    /// Random per process start; tells the controller a restart from a retry.
    incarnation: Uuid,
    /// This data directory's `directory.id` (KIP-853).
    directory_id: Uuid,
    /// The unused part of this broker's producer-id block: (next, end).
    producer_ids: Mutex<(i64, i64)>,
    /// The raft/controller/replication RPC server; awaited at shutdown so the metadata store
    /// it holds is released before `shutdown` returns.
    rpc_server: Mutex<Option<tokio::task::JoinHandle<()>>>,
    shutdown: watch::Sender<bool>,
}

/// ISR changes go to the active controller as AlterPartition, and are counted for `/metrics`.
struct ControllerIsrProposer {
    controller: Arc<ControllerClient>,
    metrics: Arc<Metrics>,
}

impl IsrProposer for ControllerIsrProposer {
    fn alter_partition(&self, change: IsrChange) -> BoxFuture<'static, Result<(), ApiError>> {
        let (controller, metrics) = (self.controller.clone(), self.metrics.clone());
        Box::pin(async move {
            let request = ControllerRequest::AlterPartition {
                topic: change.topic,
                partition: change.partition,
                leader: change.leader,
                leader_epoch: change.leader_epoch,
                partition_epoch: change.partition_epoch,
                isr: change.isr,
            };
            controller.execute(request).await?;
            match change.kind {
                IsrChangeKind::Expand => metrics.isr_expands.inc(),
                IsrChangeKind::Shrink => metrics.isr_shrinks.inc(),
            };
            Ok(())
        })
    }
}

/// The quorum member and what is built directly on it.
struct Quorum {
    raft: MetadataRaft,
    /// Whether this node may vote (KIP-853).
    admission: Arc<crate::raft::admission::Admission>,
    metadata: Arc<dyn MetadataLog>,
    local: Arc<Controller>,
    controller: Arc<ControllerClient>,
}

fn raft_config() -> anyhow::Result<openraft::Config> {
    let config = openraft::Config {
        cluster_name: "samsa".into(),
        heartbeat_interval: 100,
        election_timeout_min: 500,
        election_timeout_max: 1000,
        install_snapshot_timeout: 5000,
        max_payload_entries: 300,
        snapshot_policy: openraft::SnapshotPolicy::LogsSinceLast(1000),
        max_in_snapshot_log_to_keep: 500,
        ..Default::default()
    };
    config.validate().context("invalid raft configuration")
}

impl Broker {
    /// Opens storage and the metadata quorum, serves raft and controller RPCs on
    /// `controller_listener`, bootstraps or joins the cluster, registers this broker and opens
    /// every hosted replica (the start order is in the module docs).
    pub async fn start(
        mut config: BrokerConfig,
        controller_listener: TcpListener,
    ) -> anyhow::Result<Arc<Broker>> {
        std::fs::create_dir_all(&config.data_dir).with_context(|| {
            format!("cannot create data directory {}", config.data_dir.display())
        })?;
        let mut props = meta_properties::load_or_create(
            &config.data_dir,
            config.node_id,
            config.cluster_id.as_deref(),
        )?;
        tracing::info!(
            dir = %config.data_dir.display(),
            directory_id = %crate::types::uuid_text(&props.directory_id),
            new = props.fresh,
            "data directory"
        );
        let is_voter = check_roles(&mut config)?;
        let quorum = open_quorum(&config, props.directory_id).await?;
        let (shutdown, _) = watch::channel(false);
        let metrics = Arc::new(Metrics::default());
        let replicas = Arc::new(ReplicaManager::new(config.node_id, config.data_dir.clone()));
        let groups =
            GroupCoordinator::new(config.group.clone(), replicas.clone(), quorum.metadata.clone());
        let marker_observer: Arc<dyn crate::replication::markers::MarkerObserver> =
            Arc::new(txn_markers::GroupMarkers(groups.clone()));
        // The coordinator and its marker sender refer to each other: the sender answers
        // verification from the coordinator, which sends markers through the sender.
        let txn_peers_cell: Arc<std::sync::OnceLock<std::sync::Weak<txn_markers::BrokerMarkers>>> =
            Arc::default();
        let txns = crate::txn::TransactionCoordinator::new(
            config.txn.clone(),
            replicas.clone(),
            quorum.metadata.clone(),
            Arc::new(txn_markers::LateMarkers(txn_peers_cell.clone())),
        );
        let txn_peers = Arc::new(txn_markers::BrokerMarkers {
            node_id: config.node_id,
            replicas: replicas.clone(),
            metadata: quorum.metadata.clone(),
            observer: marker_observer.clone(),
            dialer: peer_dialer(&config),
            clients: Default::default(),
            local: txn_markers::LocalVerifier(txns.clone()),
        });
        let _ = txn_peers_cell.set(Arc::downgrade(&txn_peers));
        let replication = Replication::new(Arc::new(ReplicationContext {
            node_id: config.node_id,
            replicas: replicas.clone(),
            metadata: quorum.metadata.clone(),
            isr: Arc::new(ControllerIsrProposer {
                controller: quorum.controller.clone(),
                metrics: metrics.clone(),
            }),
            shutdown: shutdown.subscribe(),
            replica_lag_time_max_ms: config.replica_lag_time_max_ms,
            throttle: Arc::new(crate::quota::replication::ReplicationThrottle::new(
                config.node_id,
                &config,
            )),
            markers: marker_observer,
            txn_verifier: Arc::new(txn_markers::LocalVerifier(txns.clone())),
            dialer: peer_dialer(&config),
        }));
        let rpc_server = spawn_rpc_server(
            controller_listener,
            quorum.raft.clone(),
            quorum.admission.clone(),
            quorum.local.clone(),
            ReplicationService::new(replication.context().clone()),
            config.controller_tls.clone().map(|t| (t, peer_admission(&config, &quorum.metadata))),
            shutdown.subscribe(),
        );
        if is_voter {
            bootstrap_quorum(&quorum.raft, &config).await?;
        }
        let quotas = crate::quota::client::ClientQuotas::new(
            config.quota_window_size_seconds,
            config.quota_window_num,
        );
        let broker = Arc::new(Broker {
            config,
            metadata: quorum.metadata,
            controller: quorum.controller,
            groups,
            txns,
            txn_peers,
            metrics,
            replicas,
            replication,
            cleaner: Default::default(),
            quotas,
            raft: quorum.raft,
            local_controller: quorum.local,
            incarnation: Uuid::new_v4(),
            directory_id: props.directory_id,
            producer_ids: Mutex::new((0, 0)),
            rpc_server: Mutex::new(Some(rpc_server)),
            shutdown,
        });
        broker.join_cluster(&mut props, is_voter).await?;
        tasks::spawn_all(&broker);
        Ok(broker)
    }

    /// Registers (a broker), then opens the replicas the metadata assigns to this node.
    async fn join_cluster(
        self: &Arc<Self>,
        props: &mut meta_properties::MetaProperties,
        is_voter: bool,
    ) -> anyhow::Result<()> {
        if self.config.process_roles.broker {
            self.register(props, is_voter).await?;
            self.heartbeat(false)
                .await
                .map_err(|e| anyhow::anyhow!("first heartbeat failed: {e}"))?;
        }
        let image = self.metadata.image();
        // Replicas that cannot be opened (a full disk) answer KAFKA_STORAGE_ERROR and are
        // retried by the reconciler; the rest are served.
        if let Err(e) = self.reconcile(&image) {
            tracing::error!(error = %e, "some partition replicas could not be opened; retrying");
        }
        self.follow_replicas();
        Ok(())
    }

    /// KIP-853: a voter whose directory id the quorum has not recorded yet (a voter of
    /// `controller.quorum.voters`) records it, so a later start from a wiped disk is told apart.
    pub(crate) async fn record_voter_directory(&self) {
        let q = self.metadata.quorum();
        let Some(me) = q.voters.iter().find(|v| v.id == self.config.node_id) else { return };
        if me.directory_id.is_some() || q.leader.is_none() {
            return;
        }
        let req = ControllerRequest::RecordVoterDirectory {
            id: self.config.node_id,
            directory: self.directory_id,
        };
        if let Err(e) = self.controller.execute(req).await {
            tracing::debug!(error = %e, "recording this voter's directory id failed; retrying");
        }
    }

    /// KIP-890: asks the transaction coordinator of `request.transactional_id` (this broker or
    /// another) which of the partitions are in the producer's open transaction.
    pub(crate) async fn verify_txn(
        &self,
        request: crate::replication::pb::VerifyTxnRequest,
    ) -> crate::replication::pb::VerifyTxnResponse {
        self.txn_peers.verify(request).await
    }

    /// Brings local replicas in line with `image`, under the broker config the image makes
    /// effective (dynamic configs over static ones). Blocking.
    pub(crate) fn reconcile(
        &self,
        image: &crate::metadata::image::MetadataImage,
    ) -> Result<(), crate::replica::ReconcileFailures> {
        let config = crate::config::dynamic::effective(&self.config, image);
        self.replicas.reconcile(image, &config)
    }

    /// After replicas changed: fetch for what this node follows, coordinate the groups of the
    /// offsets partitions it leads.
    pub(crate) fn follow_replicas(&self) {
        self.replication.ensure_fetchers();
        self.groups.on_metadata();
        self.txns.on_metadata();
    }

    /// Brings local replicas up to date with the image right after an admin change, so a client
    /// that creates a topic can produce to it as soon as the answer arrives.
    pub(crate) async fn apply_metadata_now(self: &Arc<Self>) {
        let b = self.clone();
        let result = tokio::task::spawn_blocking(move || b.reconcile(&b.metadata.image())).await;
        match result {
            Ok(Ok(())) => {}
            Ok(Err(e)) => tracing::error!(error = %e, "applying metadata to local replicas failed"),
            Err(e) => tracing::error!(error = %e, "reconcile panicked"),
        }
        self.follow_replicas();
    }

    /// Creates an internal topic (a coordinator's, on first use) unless it exists, and opens
    /// its local replicas before returning.
    pub(crate) async fn ensure_internal_topic(
        self: &Arc<Self>,
        spec: TopicSpec,
    ) -> Result<(), ApiError> {
        tracing::info!(topic = %spec.name, partitions = spec.num_partitions,
            replication_factor = spec.replication_factor, "creating an internal topic");
        match self
            .controller
            .execute(ControllerRequest::CreateTopic { spec, validate_only: false })
            .await
        {
            Ok(_) => {}
            Err(e) if e.code == ErrorCode::TopicAlreadyExists => {}
            Err(e) => return Err(e),
        }
        self.apply_metadata_now().await;
        Ok(())
    }

    /// Registers with the active controller (retrying while the quorum forms) and records the
    /// cluster id in meta.properties.
    async fn register(
        &self,
        props: &mut meta_properties::MetaProperties,
        is_voter: bool,
    ) -> anyhow::Result<()> {
        let request = ControllerRequest::RegisterBroker {
            registration: BrokerRegistration {
                id: self.config.node_id,
                host: self.config.advertised_host.clone(),
                port: self.config.advertised_port,
                rack: self.config.rack.clone(),
                epoch: 0,
                fenced: false,
                incarnation: self.incarnation,
                replication_addr: self.config.controller_advertised.clone(),
                endpoints: std::iter::once((
                    self.config.listener_name.clone(),
                    (self.config.advertised_host.clone(), self.config.advertised_port),
                ))
                .chain(
                    self.config
                        .extra_listeners
                        .iter()
                        .map(|l| (l.name.clone(), (l.advertised_host.clone(), l.advertised_port))),
                )
                .collect(),
            },
            raft_addr: self.config.controller_advertised.clone(),
            observer: !is_voter,
            cluster_id: props.cluster_id.clone(),
        };
        let deadline = tokio::time::Instant::now() + REGISTRATION_WAIT;
        loop {
            match self.controller.execute(request.clone()).await {
                Ok(ControllerReply::Registered { epoch }) => {
                    tracing::info!(node = %self.config.node_id, epoch, "registered with the active controller");
                    break;
                }
                Ok(other) => bail!("unexpected registration reply {other:?}"),
                // Refusals are final; anything else (no controller yet, a membership change
                // still committing right after the quorum formed) is retried within the wait.
                Err(e)
                    if !matches!(
                        e.code,
                        ErrorCode::DuplicateBrokerRegistration | ErrorCode::InconsistentClusterId
                    ) && tokio::time::Instant::now() < deadline =>
                {
                    tracing::info!("registration not accepted yet, retrying: {e}");
                    tokio::time::sleep(Duration::from_millis(100)).await;
                }
                Err(e) => bail!("broker registration refused: {e}"),
            }
        }
        let cluster_id =
            self.metadata.image().cluster_id.clone().context("no cluster id after registration")?;
        meta_properties::record_cluster_id(&self.config.data_dir, props, &cluster_id)
    }

    /// Tells the active controller this broker is alive (or, with `shutting_down`, asks it to
    /// move this broker's leaderships away). Re-registers if the controller lost track of it.
    pub async fn heartbeat(&self, shutting_down: bool) -> Result<(), ApiError> {
        let request = ControllerRequest::BrokerHeartbeat {
            broker: self.config.node_id,
            incarnation: self.incarnation,
            shutting_down,
        };
        match self.controller.execute(request).await {
            Err(e) if e.code == ErrorCode::BrokerIdNotRegistered && !shutting_down => {
                tracing::warn!("the controller asked this broker to register again");
                let mut props = meta_properties::load_or_create(
                    &self.config.data_dir,
                    self.config.node_id,
                    None,
                )
                .map_err(|e| ApiError::new(ErrorCode::UnknownServerError, e.to_string()))?;
                let is_voter = self.config.voters.contains_key(&self.config.node_id);
                self.register(&mut props, is_voter)
                    .await
                    .map_err(|e| ApiError::new(ErrorCode::UnknownServerError, e.to_string()))
            }
            other => other.map(|_| ()),
        }
    }

    /// A receiver that turns true when the broker shuts down.
    pub fn shutdown_signal(&self) -> watch::Receiver<bool> {
        self.shutdown.subscribe()
    }

    /// Stops background tasks, the quorum member and fsyncs every log. Call after the Kafka
    /// listener stopped.
    pub async fn shutdown(&self) {
        if self.config.process_roles.broker && self.metadata.leader().is_none() {
            tracing::warn!(
                "no active controller (quorum lost): stopping without a controlled shutdown"
            );
        } else if self.config.process_roles.broker {
            // Controlled shutdown: leaderships move before we stop serving (bounded wait).
            match tokio::time::timeout(CONTROLLED_SHUTDOWN_WAIT, self.heartbeat(true)).await {
                Ok(Ok(())) => tracing::info!("controlled shutdown: leaderships moved"),
                Ok(Err(e)) => tracing::warn!(error = %e, "controlled shutdown failed"),
                Err(_) => tracing::warn!("controlled shutdown timed out"),
            }
        }
        self.shutdown.send_replace(true);
        if let Err(e) = self.raft.shutdown().await {
            tracing::warn!(error = %e, "raft shutdown");
        }
        let server = self.rpc_server.lock().await.take();
        if let Some(server) = server
            && tokio::time::timeout(RPC_SERVER_STOP_WAIT, server).await.is_err()
        {
            tracing::warn!("the RPC server did not stop in time");
        }
        self.replicas.close_all();
    }

    /// Hands out the next producer id, fetching a new block from the controller when needed.
    pub async fn next_producer_id(&self) -> Result<i64, ApiError> {
        let mut ids = self.producer_ids.lock().await;
        if ids.0 >= ids.1 {
            let broker = self.config.node_id;
            match self.controller.execute(ControllerRequest::AllocateProducerIds { broker }).await?
            {
                ControllerReply::ProducerIds { first, count } => *ids = (first, first + count),
                other => {
                    return Err(ApiError::new(
                        ErrorCode::UnknownServerError,
                        format!("unexpected reply {other:?}"),
                    ));
                }
            }
        }
        let id = ids.0;
        ids.0 += 1;
        Ok(id)
    }
}

/// Checks `process.roles` against `controller.quorum.voters` (a lone node with no voters is
/// its own single-voter quorum); returns whether this node is a voter.
fn check_roles(config: &mut BrokerConfig) -> anyhow::Result<bool> {
    if config.voters.is_empty() {
        // A lone node (samsa dev): its own single-voter quorum.
        config.voters.insert(config.node_id, config.controller_advertised.clone());
    }
    let is_voter = config.voters.contains_key(&config.node_id);
    if config.process_roles.controller != is_voter {
        bail!(
            "node {} has process.roles {} controller but controller.quorum.voters {} it",
            config.node_id,
            if config.process_roles.controller { "with" } else { "without" },
            if is_voter { "lists" } else { "does not list" }
        );
    }
    Ok(is_voter)
}

/// Who may connect to the CONTROLLER listener over TLS: anyone the trust store accepts without
/// an authorizer; with one, principals allowed CLUSTER_ACTION on the cluster (super users, or
/// by the ACLs in the metadata image), as Kafka authorizes its controller RPCs.
fn peer_admission(
    config: &BrokerConfig,
    metadata: &Arc<dyn MetadataLog>,
) -> crate::raft::transport::Admission {
    use crate::security::acl::{CLUSTER_NAME, Operation, ResourceType};
    let Some(authorizer) = config.authorizer.clone() else {
        return Arc::new(|_: &crate::security::Principal, _: &str| true);
    };
    let metadata = metadata.clone();
    Arc::new(move |principal: &crate::security::Principal, host: &str| {
        authorizer.authorize(
            metadata.image().acls.values(),
            principal,
            host,
            Operation::ClusterAction,
            ResourceType::Cluster,
            CLUSTER_NAME,
        )
    })
}

/// How this node dials the other nodes' CONTROLLER listeners.
fn peer_dialer(config: &BrokerConfig) -> Dialer {
    match &config.controller_tls {
        Some(tls) => Dialer::tls(tls.client.clone()),
        None => Dialer::plaintext(),
    }
}

/// Opens the metadata store and the raft member, and builds the local controller and the
/// controller client on them.
async fn open_quorum(config: &BrokerConfig, directory_id: Uuid) -> anyhow::Result<Quorum> {
    let db = open_metadata_store(&config.data_dir).await?;
    let log_store = LogStore::open(&db)?;
    let sm = StateMachineStore::open(&db).map_err(|e| anyhow::anyhow!("{e}"))?;
    let raft = MetadataRaft::new(
        config.node_id.0 as u64,
        Arc::new(raft_config()?),
        NetworkFactory { dialer: peer_dialer(config) },
        log_store,
        sm.clone(),
    )
    .await
    .context("cannot start the metadata quorum")?;
    let admission = crate::raft::admission::Admission::new(config.node_id.0 as u64, directory_id);
    admission.clone().follow(raft.clone());
    let metadata: Arc<dyn MetadataLog> = Arc::new(RaftMetadataLog::new(raft.clone(), sm));
    let defaults = TopicDefaults {
        num_partitions: config.num_partitions,
        replication_factor: config.default_replication_factor,
    };
    let session_timeout = Duration::from_millis(config.broker_session_timeout_ms as u64);
    let local = Arc::new(
        Controller::new(config.node_id, metadata.clone(), defaults, session_timeout)
            .with_bootstrap_scram(config.bootstrap_scram.clone()),
    );
    // Every configured voter address, this node's own included: a process that wrongly shares
    // a node.id must still reach the real owner of that id when it is the leader.
    let voter_addrs = config.voters.values().cloned().collect();
    let controller = Arc::new(ControllerClient::new(
        config.node_id,
        local.clone(),
        metadata.clone(),
        voter_addrs,
        peer_dialer(config),
    ));
    Ok(Quorum { raft, admission, metadata, local, controller })
}

/// Opens the sled metadata store, waiting (bounded) while a previous owner in this process
/// releases its lock; another process holding it is refused with a clear message.
async fn open_metadata_store(data_dir: &std::path::Path) -> anyhow::Result<sled::Db> {
    let deadline = tokio::time::Instant::now() + METADATA_LOCK_WAIT;
    loop {
        let opened = sled::Config::new()
            .path(data_dir.join("metadata"))
            .cache_capacity(SLED_CACHE_BYTES)
            .open();
        match opened {
            Ok(db) => return Ok(db),
            Err(sled::Error::Io(e))
                if e.kind() == std::io::ErrorKind::WouldBlock
                    && tokio::time::Instant::now() < deadline =>
            {
                tokio::time::sleep(Duration::from_millis(50)).await;
            }
            Err(sled::Error::Io(e)) if e.kind() == std::io::ErrorKind::StorageFull => {
                return Err(anyhow::anyhow!(e)).context(format!(
                    "cannot open the metadata store: the disk holding {} is full; free space \
                     there (or grow the volume) and start samsa again",
                    data_dir.display()
                ));
            }
            Err(e) => {
                return Err(anyhow::anyhow!(e)).context(
                    "cannot open the metadata store (is another samsa using this data directory?)",
                );
            }
        }
    }
}

/// Serves raft and controller RPCs until shutdown.
fn spawn_rpc_server(
    listener: TcpListener,
    raft: MetadataRaft,
    admission: Arc<crate::raft::admission::Admission>,
    controller: Arc<Controller>,
    replication: ReplicationService,
    tls: Option<(crate::security::PeerTls, crate::raft::transport::Admission)>,
    stop: watch::Receiver<bool>,
) -> tokio::task::JoinHandle<()> {
    let replication_service = ReplicationServer::new(replication)
        .max_decoding_message_size(REPLICATION_MESSAGE_BYTES_MAX)
        .max_encoding_message_size(REPLICATION_MESSAGE_BYTES_MAX);
    let raft_service = RaftServer::new(RaftService::new(raft, admission))
        .max_decoding_message_size(RAFT_MESSAGE_BYTES_MAX)
        .max_encoding_message_size(RAFT_MESSAGE_BYTES_MAX);
    let controller_service = ControllerServer::new(ControllerService::new(controller));
    let router = tonic::transport::Server::builder()
        .add_service(raft_service)
        .add_service(controller_service)
        .add_service(replication_service);
    tokio::spawn(async move {
        let shutdown = {
            let mut stop = stop.clone();
            async move {
                let _ = stop.wait_for(|s| *s).await;
            }
        };
        let result = match tls {
            None => {
                let incoming =
                    tonic::transport::server::TcpIncoming::from(listener).with_nodelay(Some(true));
                router.serve_with_incoming_shutdown(incoming, shutdown).await
            }
            Some((tls, admit)) => {
                let incoming =
                    crate::raft::transport::tls_incoming(listener, &tls, admit, stop.clone());
                router.serve_with_incoming_shutdown(incoming, shutdown).await
            }
        };
        if let Err(e) = result {
            tracing::error!(error = %e, "controller listener failed");
        }
    })
}

/// Initializes a new quorum with the configured voters, or joins the existing one: a voter
/// without a metadata log asks the other voters first (KIP-853, `raft::admission`), so a voter
/// whose disk was wiped never bootstraps a quorum of its own. Initializing is safe to repeat on
/// every voter of a new cluster (openraft accepts the same initial membership from each).
async fn bootstrap_quorum(raft: &MetadataRaft, config: &BrokerConfig) -> anyhow::Result<()> {
    use crate::raft::admission::{Bootstrap, bootstrap_decision};
    let voters: BTreeMap<u64, RaftNode> = config
        .voters
        .iter()
        .map(|(id, addr)| (id.0 as u64, RaftNode { addr: addr.clone(), directory_id: None }))
        .collect();
    if !raft.is_initialized().await.context("raft failed")? {
        let peers = voters.iter().map(|(id, n)| (*id, n.addr.clone())).collect();
        let me = config.node_id.0 as u64;
        match bootstrap_decision(me, &peers, &peer_dialer(config)).await? {
            Bootstrap::Initialize => {
                tracing::info!(voters = ?config.voters, "bootstrapping a new metadata quorum");
                if let Err(e) = raft.initialize(voters.clone()).await {
                    tracing::debug!(error = %e, "initialize (already initialized elsewhere)");
                }
            }
            Bootstrap::Join => tracing::info!(
                "joining the existing metadata quorum with a new data directory; this node votes once the quorum admits its directory id"
            ),
        }
        return Ok(());
    }
    let metrics = raft.metrics().borrow().clone();
    let membership = metrics.membership_config.membership();
    let stored: Vec<u64> = membership.voter_ids().collect();
    let wanted: Vec<u64> = voters.keys().copied().collect();
    // An empty membership means a peer's vote request arrived before the membership entry did:
    // it will come by replication, there is nothing to compare yet.
    if !stored.is_empty() && stored != wanted {
        bail!(
            "controller.quorum.voters lists nodes {wanted:?} but this node's metadata quorum has voters {stored:?}; set controller.quorum.voters to the quorum's voters (after `samsa quorum add-voter`/`remove-voter`, on every node)"
        );
    }
    Ok(())
}
