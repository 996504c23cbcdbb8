//! The composition root: config → metadata log → controller → replicas → background tasks.
//! The Kafka listener (`kafka::server`) is started by the caller with a bound socket, so tests
//! run brokers on ephemeral ports in one process.

pub mod meta_properties;
pub mod replica_manager;
mod tasks;

use std::sync::Arc;
use std::time::{SystemTime, UNIX_EPOCH};

use anyhow::Context;
use tokio::sync::{Mutex, Notify, watch};

use self::replica_manager::ReplicaManager;
use crate::config::broker::BrokerConfig;
use crate::kafka::error_code::ApiError;
use crate::metadata::MetadataLog;
use crate::metadata::commands::MetadataCommand;
use crate::metadata::controller::Controller;
use crate::metadata::decide::TopicDefaults;
use crate::metadata::image::BrokerRegistration;
use crate::metadata::local::LocalMetadataLog;

/// Milliseconds since the Unix epoch, the clock Kafka timestamps use.
pub fn now_ms() -> i64 {
    SystemTime::now().duration_since(UNIX_EPOCH).map_or(0, |d| d.as_millis() as i64)
}

/// A running broker's shared state.
pub struct Broker {
    pub config: BrokerConfig,
    pub metadata: Arc<dyn MetadataLog>,
    pub controller: Controller,
    pub replicas: ReplicaManager,
    /// The unused part of this broker's producer-id block: (next, end).
    producer_ids: Mutex<(i64, i64)>,
    /// Woken on every append, so long-polling fetches wait without polling.
    pub data_appended: Notify,
    shutdown: watch::Sender<bool>,
}

impl Broker {
    /// Opens storage and metadata, bootstraps a new cluster if the data dir is empty, registers
    /// this broker, opens every hosted replica and starts the background tasks.
    pub async fn start(config: BrokerConfig) -> anyhow::Result<Arc<Broker>> {
        std::fs::create_dir_all(&config.data_dir).with_context(|| {
            format!("cannot create data directory {}", config.data_dir.display())
        })?;
        let props = meta_properties::load_or_format(&config.data_dir, config.node_id)?;
        let log = LocalMetadataLog::open(&config.data_dir.join("metadata"))
            .context("cannot open the metadata log")?;
        let metadata: Arc<dyn MetadataLog> = Arc::new(log);
        let defaults = TopicDefaults {
            num_partitions: config.num_partitions,
            replication_factor: config.default_replication_factor,
        };
        let controller = Controller::new(metadata.clone(), defaults);
        let image = metadata.image();
        let mut bootstrap = Vec::new();
        if image.cluster_id.is_none() {
            bootstrap.push(MetadataCommand::InitCluster { cluster_id: props.cluster_id.clone() });
        } else if image.cluster_id.as_deref() != Some(props.cluster_id.as_str()) {
            anyhow::bail!(
                "the metadata in {} belongs to cluster {:?} but meta.properties says {}; refusing to start",
                config.data_dir.display(),
                image.cluster_id,
                props.cluster_id
            );
        }
        let epoch = image.brokers.get(&config.node_id).map_or(0, |b| b.epoch + 1);
        bootstrap.push(MetadataCommand::RegisterBroker(BrokerRegistration {
            id: config.node_id,
            host: config.advertised_host.clone(),
            port: config.advertised_port,
            rack: None,
            epoch,
            fenced: false,
        }));
        controller.commit(bootstrap).await.map_err(|e| anyhow::anyhow!("bootstrap failed: {e}"))?;
        let replicas = ReplicaManager::new(config.node_id, config.data_dir.clone());
        replicas
            .reconcile(&metadata.image(), &config)
            .context("cannot open the partition replicas")?;
        let (shutdown, _) = watch::channel(false);
        let broker = Arc::new(Broker {
            config,
            metadata,
            controller,
            replicas,
            producer_ids: Mutex::new((0, 0)),
            data_appended: Notify::new(),
            shutdown,
        });
        tasks::spawn_all(&broker);
        Ok(broker)
    }

    /// A receiver that turns true when the broker shuts down.
    pub fn shutdown_signal(&self) -> watch::Receiver<bool> {
        self.shutdown.subscribe()
    }

    /// Stops background tasks and fsyncs every log. Call after the listener stopped.
    pub fn shutdown(&self) {
        self.shutdown.send_replace(true);
        self.replicas.flush_all();
    }

    /// Hands out the next producer id, fetching a new block from the controller when needed.
    pub async fn next_producer_id(&self) -> Result<i64, ApiError> {
        let mut ids = self.producer_ids.lock().await;
        if ids.0 >= ids.1 {
            let (first, count) = self.controller.allocate_producer_ids(self.config.node_id).await?;
            *ids = (first, first + count);
        }
        let id = ids.0;
        ids.0 += 1;
        Ok(id)
    }
}
