//! Voter admission (KIP-853): a voter is a node id *and* a data directory. A voter whose disk was
//! wiped comes back with a new `directory.id` and no memory of the votes it cast; if it voted
//! again in a term it already voted in, two candidates could both win that term. So a node may
//! vote and campaign only while it is *admitted*: a voter of the membership it knows, under its
//! own directory id (or under none, for voters listed by `controller.quorum.voters` before
//! their first start recorded one). Otherwise it only replicates, until an operator removes the
//! old voter and adds it again under its new directory id (RemoveRaftVoter / AddRaftVoter).
//!
//! A fresh directory must also not bootstrap a quorum of its own: [`bootstrap_decision`] has a
//! new voter initialize the membership only once a majority of the configured voters answered
//! that they hold no metadata entries either (then no committed state can exist anywhere); if
//! any voter holds entries (a leader was elected once), the node joins what exists.
//!
//! Invariants: votes are refused and elections disabled whenever the node is not admitted, from
//! before its first metrics update on; admission is recomputed on every membership change.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use openraft::Membership;
use serde::{Deserialize, Serialize};

use super::pb::Payload;
use super::pb::raft_client::RaftClient;
use super::{MetadataRaft, RaftNode, RaftNodeId};

/// How long a fresh voter keeps asking the other voters whether a quorum exists.
pub(crate) const BOOTSTRAP_PROBE_WAIT: Duration = Duration::from_secs(120);
/// Pause between rounds of asking.
const PROBE_INTERVAL: Duration = Duration::from_millis(300);
/// How long one peer may take to answer.
const PROBE_TIMEOUT: Duration = Duration::from_secs(2);

/// What a node tells a fresh voter about its metadata log.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub(crate) struct PeerStatus {
    /// It holds entries past the initial membership: a leader was elected, the quorum exists
    /// (a voter that only initialized the membership still needs the others' votes).
    pub initialized: bool,
}

/// Whether `me` with directory `dir` is a voter of `membership` under that directory.
pub(crate) fn admitted(
    membership: &Membership<RaftNodeId, RaftNode>,
    me: RaftNodeId,
    dir: uuid::Uuid,
) -> bool {
    membership.voter_ids().any(|v| v == me)
        && membership.get_node(&me).is_none_or(|n| n.directory_id.is_none_or(|d| d == dir))
}

/// This node's admission, shared by the vote RPC and the election switch.
#[derive(Debug)]
pub(crate) struct Admission {
    me: RaftNodeId,
    directory: uuid::Uuid,
    admitted: AtomicBool,
}

impl Admission {
    pub(crate) fn new(me: RaftNodeId, directory: uuid::Uuid) -> Arc<Self> {
        Arc::new(Admission { me, directory, admitted: AtomicBool::new(false) })
    }

    /// Whether this node may grant votes now.
    pub(crate) fn allows_votes(&self) -> bool {
        self.admitted.load(Ordering::SeqCst)
    }

    /// Keeps admission (and openraft's election switch) in line with the membership until the
    /// raft stops.
    pub(crate) fn follow(self: Arc<Self>, raft: MetadataRaft) {
        raft.runtime_config().elect(false);
        tokio::spawn(async move {
            let mut metrics = raft.metrics();
            // What was last logged: nothing yet, admitted, or refused under a known membership.
            let mut told: Option<bool> = None;
            loop {
                let (now, known) = {
                    let m = metrics.borrow_and_update();
                    let membership = m.membership_config.membership();
                    let known = membership.voter_ids().next().is_some();
                    (admitted(membership, self.me, self.directory), known)
                };
                let before = self.admitted.swap(now, Ordering::SeqCst);
                if before != now {
                    raft.runtime_config().elect(now);
                }
                if (known || now) && told != Some(now) {
                    told = Some(now);
                    if now {
                        tracing::info!("admitted as a metadata voter: voting and campaigning");
                    } else {
                        tracing::warn!(
                            directory_id = %crate::types::uuid_text(&self.directory),
                            "not an admitted metadata voter (the quorum knows this node under another directory id, or not as a voter): replicating only, never voting; remove and add the voter again to admit this directory"
                        );
                    }
                }
                if metrics.changed().await.is_err() {
                    return;
                }
            }
        });
    }
}

/// What a fresh voter should do with the quorum.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Bootstrap {
    /// A majority holds no metadata log: initialize the membership from the configuration.
    Initialize,
    /// Some voter holds a metadata log: join it (the leader replicates to this node).
    Join,
}

/// Decides from the answers so far: `known` maps each voter that answered to whether it holds
/// a metadata log; this node (fresh) counts as one without.
pub(crate) fn decide(voters: usize, known: &BTreeMap<RaftNodeId, bool>) -> Option<Bootstrap> {
    if known.values().any(|initialized| *initialized) {
        return Some(Bootstrap::Join);
    }
    let empty = 1 + known.values().filter(|i| !**i).count();
    (empty * 2 > voters).then_some(Bootstrap::Initialize)
}

/// Asks the other voters (`peers`: id → controller address) until [`decide`] can answer;
/// fails after [`BOOTSTRAP_PROBE_WAIT`] naming who never answered.
pub(crate) async fn bootstrap_decision(
    me: RaftNodeId,
    peers: &BTreeMap<RaftNodeId, String>,
    dialer: &super::network::Dialer,
) -> anyhow::Result<Bootstrap> {
    let voters = peers.len() + usize::from(!peers.contains_key(&me));
    let others: Vec<(RaftNodeId, String)> =
        peers.iter().filter(|(id, _)| **id != me).map(|(id, a)| (*id, a.clone())).collect();
    let mut known: BTreeMap<RaftNodeId, bool> = BTreeMap::new();
    let deadline = tokio::time::Instant::now() + BOOTSTRAP_PROBE_WAIT;
    loop {
        if let Some(d) = decide(voters, &known) {
            return Ok(d);
        }
        for (id, addr) in &others {
            if let Some(initialized) = ask(dialer, addr).await {
                known.insert(*id, initialized);
            }
        }
        if let Some(d) = decide(voters, &known) {
            return Ok(d);
        }
        if tokio::time::Instant::now() >= deadline {
            let silent: Vec<RaftNodeId> =
                others.iter().map(|(id, _)| *id).filter(|id| !known.contains_key(id)).collect();
            anyhow::bail!(
                "this voter's data directory is new, and too few voters answered to tell a new cluster from an existing one (no answer from {silent:?}); start the other voters"
            );
        }
        tokio::time::sleep(PROBE_INTERVAL).await;
    }
}

async fn ask(dialer: &super::network::Dialer, addr: &str) -> Option<bool> {
    let channel = dialer.channel(addr).ok()?;
    let mut client = RaftClient::new(channel);
    let mut req = tonic::Request::new(Payload { json: b"{}".to_vec() });
    req.set_timeout(PROBE_TIMEOUT);
    let resp = tokio::time::timeout(PROBE_TIMEOUT, client.status(req)).await.ok()?.ok()?;
    let status: PeerStatus = serde_json::from_slice(&resp.into_inner().json).ok()?;
    Some(status.initialized)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn membership(dirs: &[(u64, Option<u128>)]) -> Membership<RaftNodeId, RaftNode> {
        let voters = dirs.iter().map(|(id, _)| *id).collect::<std::collections::BTreeSet<_>>();
        let nodes = dirs
            .iter()
            .map(|(id, d)| {
                let node =
                    RaftNode { addr: "a".into(), directory_id: d.map(uuid::Uuid::from_u128) };
                (*id, node)
            })
            .collect::<BTreeMap<_, _>>();
        Membership::new(vec![voters], nodes)
    }

    #[test]
    fn a_voter_is_admitted_only_under_its_own_directory_or_none_recorded() {
        let mine = uuid::Uuid::from_u128(7);
        assert!(admitted(&membership(&[(1, None), (2, None)]), 2, mine));
        assert!(admitted(&membership(&[(1, None), (2, Some(7))]), 2, mine));
        assert!(!admitted(&membership(&[(1, None), (2, Some(8))]), 2, mine), "a wiped disk");
        assert!(!admitted(&membership(&[(1, None)]), 2, mine), "not a voter");
    }

    #[test]
    fn a_fresh_voter_initializes_only_with_a_majority_of_empty_voters() {
        let known = |pairs: &[(u64, bool)]| pairs.iter().copied().collect::<BTreeMap<_, _>>();
        assert_eq!(decide(1, &known(&[])), Some(Bootstrap::Initialize), "a single node");
        assert_eq!(decide(3, &known(&[])), None, "nobody answered yet");
        assert_eq!(decide(3, &known(&[(2, false)])), Some(Bootstrap::Initialize));
        assert_eq!(decide(3, &known(&[(2, true)])), Some(Bootstrap::Join));
        assert_eq!(decide(5, &known(&[(2, false)])), None);
        assert_eq!(decide(5, &known(&[(2, false), (3, false), (4, true)])), Some(Bootstrap::Join));
    }
}
