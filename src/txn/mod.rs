//! The transaction coordinator (KIP-98, KIP-447). Every transactional id's state lives in the
//! internal topic `__transaction_state`; the coordinator of an id is the leader of the
//! partition the id hashes to. The load, unload and write-then-apply machinery is the shared
//! [`crate::coordinator`] piece; this room holds the state machine, its record formats, and
//! the rounds of markers that end transactions.
//!
//! # Layout
//! * [`records`]: Kafka's key and value formats of the topic.
//! * [`metadata`]: the per-id state machine, pure (decide, then the coordinator writes).
//! * [`markers`]: ending a transaction: markers to every partition, then the Complete state.
//! * `timers`: aborting transactions open past their timeout, forgetting idle ids.
//!
//! # Invariants
//! * A partition's ids are served only while this broker leads it, in the leader epoch they
//!   were loaded in (else NOT_COORDINATOR / COORDINATOR_LOAD_IN_PROGRESS).
//! * A state is applied in memory only once the ISR has its record; while a record of an id is
//!   in flight, other requests for the id get CONCURRENT_TRANSACTIONS.
//! * A Prepare state is stored before any marker is written, and the Complete state only after
//!   every partition has its marker committed; so a coordinator that loads a Prepare state can
//!   always finish it by writing the markers again (a repeated marker closes nothing new).
//! * This room never imports the broker: producer ids and marker delivery come through
//!   [`MarkerSender`] and the callers.

pub(crate) mod markers;
pub(crate) mod metadata;
pub(crate) mod records;
mod timers;

use std::collections::{BTreeSet, HashMap, HashSet};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Duration;

use kafka_protocol::records::Compression;

pub(crate) use self::markers::{MarkerRequest, MarkerSender};
use self::metadata::{EndDecision, InitDecision, InitError, ProducerIdAndEpoch, TxnState};
use self::records::TxnValue;
use crate::clock::now_ms;
use crate::config::txn::{TRANSACTION_STATE_TOPIC, TxnConfig};
use crate::coordinator::{
    InternalTopic, Placement, Shards, StoredRecord, WriteError, partition_for,
};
use crate::error_code::ErrorCode;
use crate::metadata::MetadataLog;
use crate::metadata::decide::TopicSpec;
use crate::replica::ReplicaManager;

/// How long a write to `__transaction_state` waits for the ISR (Kafka's
/// `transaction.state.log` appends use the request timeout).
const STATE_WRITE_TIMEOUT: Duration = Duration::from_secs(30);

#[derive(Debug, Default)]
struct State {
    shards: Shards,
    /// Every loaded id's committed state.
    txns: HashMap<String, TxnValue>,
    /// Ids with a record being written: other requests for them get CONCURRENT_TRANSACTIONS.
    writing: HashSet<String>,
}

impl State {
    fn placement(&self, id: &str) -> Result<Placement, ErrorCode> {
        let count = self.shards.partition_count();
        if count == 0 {
            return Err(ErrorCode::NotCoordinator);
        }
        self.shards.placement(partition_for(id, count))
    }
}

/// A partition and the error code answered for it.
pub(crate) type PartitionCode = ((String, i32), ErrorCode);

/// A described transaction (DescribeTransactions, ListTransactions).
#[derive(Debug, Clone)]
pub(crate) struct TxnDescription {
    pub(crate) transactional_id: String,
    pub(crate) value: TxnValue,
}

/// The coordinator of the transactional ids whose partitions this broker leads.
pub(crate) struct TransactionCoordinator {
    config: TxnConfig,
    topic: Arc<InternalTopic>,
    metadata: Arc<dyn MetadataLog>,
    markers: Arc<dyn MarkerSender>,
    state: Mutex<State>,
}

/// Kafka's answer to a failed write to `__transaction_state`.
fn write_error(e: &WriteError) -> ErrorCode {
    match e {
        WriteError::NotLeader => ErrorCode::NotCoordinator,
        WriteError::NotEnoughReplicas { .. } | WriteError::TimedOut => {
            ErrorCode::CoordinatorNotAvailable
        }
        WriteError::Append(_) | WriteError::Encode(_) => ErrorCode::UnknownServerError,
    }
}

impl TransactionCoordinator {
    pub(crate) fn new(
        config: TxnConfig,
        replicas: Arc<ReplicaManager>,
        metadata: Arc<dyn MetadataLog>,
        markers: Arc<dyn MarkerSender>,
    ) -> Arc<Self> {
        let topic = Arc::new(InternalTopic::new(
            TRANSACTION_STATE_TOPIC,
            replicas,
            STATE_WRITE_TIMEOUT,
            Compression::None,
        ));
        Arc::new(TransactionCoordinator {
            config,
            topic,
            metadata,
            markers,
            state: Mutex::default(),
        })
    }

    fn lock(&self) -> MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Whether this broker coordinates `id` now (for FindCoordinator's callers and tests).
    pub(crate) fn placement(&self, id: &str) -> Result<Placement, ErrorCode> {
        self.lock().placement(id)
    }

    /// Appends `next` as `id`'s record (a tombstone for `None`) under the state lock, marks the
    /// id as being written, and returns what to await.
    fn begin_write(
        &self,
        st: &mut State,
        id: &str,
        at: Placement,
        next: Option<&TxnValue>,
    ) -> Result<crate::coordinator::PendingWrite, ErrorCode> {
        let record = (records::encode_key(id), next.map(TxnValue::encode));
        let pending = self.topic.append(at, vec![record]).map_err(|e| write_error(&e))?;
        st.writing.insert(id.to_string());
        Ok(pending)
    }

    /// Awaits a write begun by [`begin_write`](Self::begin_write) and applies `next` if it
    /// committed in the placement it was decided in.
    async fn finish_write(
        &self,
        id: &str,
        at: Placement,
        pending: crate::coordinator::PendingWrite,
        next: Option<TxnValue>,
    ) -> Result<(), ErrorCode> {
        let committed = pending.committed().await.map_err(|e| write_error(&e));
        let mut st = self.lock();
        st.writing.remove(id);
        committed?;
        if st.placement(id) != Ok(at) {
            return Err(ErrorCode::NotCoordinator);
        }
        match next {
            Some(value) => {
                st.txns.insert(id.to_string(), value);
            }
            None => {
                st.txns.remove(id);
            }
        }
        Ok(())
    }

    /// Decides under the lock, writes, applies. `decide` returns the value to store, or
    /// `None` when nothing needs storing.
    async fn transition(
        &self,
        id: &str,
        decide: impl FnOnce(Option<&TxnValue>) -> Result<Option<TxnValue>, ErrorCode>,
    ) -> Result<Option<TxnValue>, ErrorCode> {
        let (at, pending, next) = {
            let mut st = self.lock();
            let at = st.placement(id)?;
            if st.writing.contains(id) {
                return Err(ErrorCode::ConcurrentTransactions);
            }
            let Some(next) = decide(st.txns.get(id))? else { return Ok(None) };
            let pending = self.begin_write(&mut st, id, at, Some(&next))?;
            (at, pending, next)
        };
        self.finish_write(id, at, pending, Some(next.clone())).await?;
        Ok(Some(next))
    }

    /// InitProducerId with a transactional id: the producer id and epoch to use.
    /// `fresh_producer_id` is one allocated for a new id (asked for by
    /// `Err(InitError::NeedProducerId)`).
    pub(crate) async fn init_producer_id(
        self: &Arc<Self>,
        id: &str,
        timeout_ms: i32,
        claimed: ProducerIdAndEpoch,
        fresh_producer_id: Option<i64>,
    ) -> Result<(i64, i16), InitError> {
        if timeout_ms <= 0 || timeout_ms > self.config.max_timeout_ms {
            return Err(InitError::Code(ErrorCode::InvalidTransactionTimeout));
        }
        let mut fenced = None;
        let now = now_ms();
        let result = self
            .transition(id, |cur| {
                match metadata::init(cur, timeout_ms, fresh_producer_id, claimed, now) {
                    Ok(InitDecision::Write(v)) => Ok(Some(v)),
                    Ok(InitDecision::Fence(v)) => {
                        fenced = Some(v.clone());
                        Ok(Some(v))
                    }
                    Err(InitError::NeedProducerId) => Err(ErrorCode::None),
                    Err(InitError::Code(c)) => Err(c),
                }
            })
            .await;
        match result {
            Err(ErrorCode::None) => Err(InitError::NeedProducerId),
            Err(code) => Err(InitError::Code(code)),
            Ok(_) if fenced.is_some() => {
                // The open transaction is being aborted; the producer retries until it is done.
                self.spawn_markers(id.to_string());
                Err(InitError::Code(ErrorCode::ConcurrentTransactions))
            }
            Ok(Some(v)) => Ok((v.producer_id, v.producer_epoch)),
            Ok(None) => Err(InitError::Code(ErrorCode::UnknownServerError)),
        }
    }

    /// AddPartitionsToTxn and AddOffsetsToTxn: adds partitions to the producer's transaction
    /// (opening it).
    pub(crate) async fn add_partitions(
        &self,
        id: &str,
        producer_id: i64,
        epoch: i16,
        partitions: &[(String, i32)],
    ) -> Result<(), ErrorCode> {
        let now = now_ms();
        self.transition(id, |cur| {
            let v = cur.ok_or(ErrorCode::InvalidProducerIdMapping)?;
            metadata::add_partitions(v, producer_id, epoch, partitions, now)
        })
        .await
        .map(|_| ())
    }

    /// KIP-890's verification (AddPartitionsToTxn v4+ from brokers): for each partition,
    /// whether it is in the producer's open transaction.
    pub(crate) fn verify_partitions(
        &self,
        id: &str,
        producer_id: i64,
        epoch: i16,
        partitions: &[(String, i32)],
    ) -> Result<Vec<PartitionCode>, ErrorCode> {
        let st = self.lock();
        st.placement(id)?;
        let v = st.txns.get(id).ok_or(ErrorCode::InvalidProducerIdMapping)?;
        if v.producer_id != producer_id {
            return Err(ErrorCode::InvalidProducerIdMapping);
        }
        if v.producer_epoch != epoch {
            return Err(ErrorCode::ProducerFenced);
        }
        Ok(partitions
            .iter()
            .map(|p| {
                let open = v.state == TxnState::Ongoing && v.partitions.contains(p);
                (p.clone(), if open { ErrorCode::None } else { ErrorCode::InvalidTxnState })
            })
            .collect())
    }

    /// EndTxn: stores the Prepare state (then answers) and writes the markers in the
    /// background; a retry of a finished EndTxn is answered at once.
    pub(crate) async fn end_txn(
        self: &Arc<Self>,
        id: &str,
        producer_id: i64,
        epoch: i16,
        commit: bool,
    ) -> Result<(), ErrorCode> {
        let now = now_ms();
        let stored = self
            .transition(id, |cur| {
                let v = cur.ok_or(ErrorCode::InvalidProducerIdMapping)?;
                match metadata::end_txn(v, producer_id, epoch, commit, now)? {
                    EndDecision::Prepare(next) => Ok(Some(next)),
                    EndDecision::AlreadyDone => Ok(None),
                }
            })
            .await?;
        if stored.is_some() {
            self.spawn_markers(id.to_string());
        }
        Ok(())
    }

    /// DescribeTransactions: `Err(TRANSACTIONAL_ID_NOT_FOUND)` for an unknown id.
    pub(crate) fn describe(&self, id: &str) -> Result<TxnDescription, ErrorCode> {
        let st = self.lock();
        st.placement(id)?;
        let v = st.txns.get(id).ok_or(ErrorCode::TransactionalIdNotFound)?;
        Ok(TxnDescription { transactional_id: id.to_string(), value: v.clone() })
    }

    /// ListTransactions: every id coordinated here, filtered by states and producer ids (empty
    /// filters match all); LOAD_IN_PROGRESS while a partition loads.
    pub(crate) fn list(
        &self,
        states: &BTreeSet<TxnState>,
        producer_ids: &BTreeSet<i64>,
        duration_filter_ms: i64,
    ) -> (ErrorCode, Vec<TxnDescription>) {
        let st = self.lock();
        let now = now_ms();
        let code = if st.shards.loading() {
            ErrorCode::CoordinatorLoadInProgress
        } else {
            ErrorCode::None
        };
        let out = st
            .txns
            .iter()
            .filter(|(_, v)| states.is_empty() || states.contains(&v.state))
            .filter(|(_, v)| producer_ids.is_empty() || producer_ids.contains(&v.producer_id))
            .filter(|(_, v)| {
                duration_filter_ms < 0 || (v.start_ms >= 0 && now - v.start_ms > duration_filter_ms)
            })
            .map(|(id, v)| TxnDescription { transactional_id: id.clone(), value: v.clone() })
            .collect();
        (code, out)
    }

    /// Follows leadership of `__transaction_state`: loads the ids of partitions this broker now
    /// leads (finishing every transaction it finds in a Prepare state), drops the others.
    pub(crate) fn on_metadata(self: &Arc<Self>) {
        let image = self.metadata.image();
        let count = image.topic(TRANSACTION_STATE_TOPIC).map_or(0, |t| t.partitions.len() as i32);
        let led = self.topic.led_partitions(count);
        let mut st = self.lock();
        let change = st.shards.follow(count, &led);
        for p in change.lost {
            st.txns.retain(|id, _| partition_for(id, count.max(1)) != p);
            tracing::info!(
                partition = p,
                "no longer the transaction coordinator for this partition"
            );
        }
        drop(st);
        for at in change.gained {
            let coordinator = self.clone();
            self.topic.load(at, move |stored, elapsed| {
                let n = stored.len();
                let txns = replay(stored);
                let preparing: Vec<String> = txns
                    .iter()
                    .filter(|(_, v)| v.state.is_preparing())
                    .map(|(id, _)| id.clone())
                    .collect();
                let count = txns.len();
                if !coordinator.install(at, txns) {
                    return;
                }
                if n > 0 {
                    tracing::info!(partition = at.partition, epoch = %at.epoch, ids = count,
                        records = n, elapsed_ms = elapsed.as_millis() as u64,
                        "loaded transactional ids; now their coordinator");
                }
                for id in preparing {
                    coordinator.spawn_markers(id);
                }
            });
        }
    }

    fn install(&self, at: Placement, txns: HashMap<String, TxnValue>) -> bool {
        let mut st = self.lock();
        if !st.shards.finish_load(at) {
            return false;
        }
        st.txns.extend(txns);
        true
    }

    /// Drops every id (shutdown).
    pub(crate) fn unload_all(&self) {
        let mut st = self.lock();
        st.shards.clear();
        st.txns.clear();
        st.writing.clear();
    }

    /// `__transaction_state` as it is created on first use (Kafka's settings: compacted,
    /// `transaction.state.log.*`).
    pub(crate) fn topic_spec(&self, live_brokers: usize) -> TopicSpec {
        let rf =
            (self.config.state_log_replication_factor as usize).min(live_brokers.max(1)) as i16;
        let min_isr = self.config.state_log_min_isr.min(i32::from(rf));
        TopicSpec {
            name: TRANSACTION_STATE_TOPIC.to_string(),
            num_partitions: self.config.state_log_num_partitions,
            replication_factor: rf,
            assignments: Default::default(),
            configs: [
                ("cleanup.policy".to_string(), "compact".to_string()),
                ("min.insync.replicas".to_string(), min_isr.to_string()),
                ("segment.bytes".to_string(), self.config.state_log_segment_bytes.to_string()),
                ("unclean.leader.election.enable".to_string(), "false".to_string()),
            ]
            .into_iter()
            .collect(),
        }
    }
}

/// The ids one partition's records describe: the last value of each key, tombstones remove.
fn replay(stored: Vec<StoredRecord>) -> HashMap<String, TxnValue> {
    let mut out = HashMap::new();
    for s in stored.into_iter().filter(|s| s.marker.is_none()) {
        let id = match records::decode_key(s.key) {
            Ok(id) => id,
            Err(e) => {
                tracing::warn!(offset = s.offset, error = %e, "skipping a transaction record of unknown format");
                continue;
            }
        };
        match s.value.map(TxnValue::decode).transpose() {
            Ok(Some(v)) => {
                out.insert(id, v);
            }
            Ok(None) => {
                out.remove(&id);
            }
            Err(e) => tracing::warn!(transactional_id = %id, error = %e,
                "skipping an unreadable transaction record"),
        }
    }
    out
}
