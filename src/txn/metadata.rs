//! One transactional id's state machine (Kafka's `TransactionMetadata`), pure: each request is
//! a decision over the stored [`TxnValue`] that yields the next value to write (or an error
//! code), never I/O. The coordinator writes the value and applies it once the ISR has it.
//!
//! ```text
//!   Empty ──AddPartitions──▶ Ongoing ──EndTxn(commit)──▶ PrepareCommit ──markers──▶ CompleteCommit
//!     ▲                         │  └────EndTxn(abort)/timeout/fence──▶ PrepareAbort ──▶ CompleteAbort
//!     └──InitProducerId (epoch bump)── Complete* ◀───────────────────────────────────────┘
//! ```
//! A Prepare state is answered CONCURRENT_TRANSACTIONS until its markers are written and the
//! Complete state is stored; a new coordinator that loads a Prepare state finishes it.

use std::collections::BTreeSet;

use super::records::TxnValue;
use crate::error_code::ErrorCode;

/// Kafka's transaction states, with their stored status codes.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub(crate) enum TxnState {
    Empty,
    Ongoing,
    PrepareCommit,
    PrepareAbort,
    CompleteCommit,
    CompleteAbort,
    Dead,
    PrepareEpochFence,
}

impl TxnState {
    pub(crate) fn code(self) -> i8 {
        match self {
            TxnState::Empty => 0,
            TxnState::Ongoing => 1,
            TxnState::PrepareCommit => 2,
            TxnState::PrepareAbort => 3,
            TxnState::CompleteCommit => 4,
            TxnState::CompleteAbort => 5,
            TxnState::Dead => 6,
            TxnState::PrepareEpochFence => 7,
        }
    }

    pub(crate) fn from_code(code: i8) -> Option<Self> {
        Some(match code {
            0 => TxnState::Empty,
            1 => TxnState::Ongoing,
            2 => TxnState::PrepareCommit,
            3 => TxnState::PrepareAbort,
            4 => TxnState::CompleteCommit,
            5 => TxnState::CompleteAbort,
            6 => TxnState::Dead,
            7 => TxnState::PrepareEpochFence,
            _ => return None,
        })
    }

    /// The name DescribeTransactions and ListTransactions use (Kafka's `TransactionState.name`).
    pub(crate) fn name(self) -> &'static str {
        match self {
            TxnState::Empty => "Empty",
            TxnState::Ongoing => "Ongoing",
            TxnState::PrepareCommit => "PrepareCommit",
            TxnState::PrepareAbort => "PrepareAbort",
            TxnState::CompleteCommit => "CompleteCommit",
            TxnState::CompleteAbort => "CompleteAbort",
            TxnState::Dead => "Dead",
            TxnState::PrepareEpochFence => "PrepareEpochFence",
        }
    }

    pub(crate) fn from_name(name: &str) -> Option<Self> {
        (0..=7).filter_map(Self::from_code).find(|s| s.name().eq_ignore_ascii_case(name))
    }

    /// Waiting for markers: every request but a describe gets CONCURRENT_TRANSACTIONS.
    pub(crate) fn is_preparing(self) -> bool {
        matches!(
            self,
            TxnState::PrepareCommit | TxnState::PrepareAbort | TxnState::PrepareEpochFence
        )
    }

    fn is_complete_or_empty(self) -> bool {
        matches!(self, TxnState::Empty | TxnState::CompleteCommit | TxnState::CompleteAbort)
    }
}

/// The largest epoch before a producer id is exhausted and a new one is handed out (Kafka
/// keeps `Short.MaxValue` for markers of a fenced last epoch).
const EPOCH_MAX: i16 = i16::MAX - 1;

/// What InitProducerId decided.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum InitDecision {
    /// Store this value, then answer its producer id and epoch.
    Write(TxnValue),
    /// An open transaction is fenced: store this PrepareAbort (epoch bumped), write its
    /// markers, and answer CONCURRENT_TRANSACTIONS so the producer retries.
    Fence(TxnValue),
}

/// Why InitProducerId could not decide.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum InitError {
    /// A producer id must be allocated first (then decide again with it).
    NeedProducerId,
    Code(ErrorCode),
}

/// The producer id and epoch a producer claims (InitProducerId v3+, KIP-360; -1 when none).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct ProducerIdAndEpoch {
    pub(crate) producer_id: i64,
    pub(crate) epoch: i16,
}

/// InitProducerId for a transactional id: a new id gets `fresh_producer_id` at epoch 0; a
/// known one gets its epoch bumped (fencing every older producer instance); one with an open
/// transaction has it aborted first.
pub(crate) fn init(
    current: Option<&TxnValue>,
    timeout_ms: i32,
    fresh_producer_id: Option<i64>,
    claimed: ProducerIdAndEpoch,
    now_ms: i64,
) -> Result<InitDecision, InitError> {
    let fresh = |v: Option<&TxnValue>| -> Result<TxnValue, InitError> {
        let producer_id = fresh_producer_id.ok_or(InitError::NeedProducerId)?;
        Ok(TxnValue {
            producer_id,
            producer_epoch: 0,
            timeout_ms,
            state: TxnState::Empty,
            partitions: BTreeSet::new(),
            last_update_ms: now_ms,
            start_ms: v.map_or(-1, |_| -1),
        })
    };
    let Some(v) = current else { return fresh(None).map(InitDecision::Write) };
    if v.state.is_preparing() {
        return Err(InitError::Code(ErrorCode::ConcurrentTransactions));
    }
    if claimed.producer_id >= 0
        && (claimed.producer_id != v.producer_id || claimed.epoch != v.producer_epoch)
    {
        return Err(InitError::Code(ErrorCode::ProducerFenced));
    }
    if v.state == TxnState::Ongoing {
        let mut next = v.clone();
        next.producer_epoch = bumped(v.producer_epoch);
        next.state = TxnState::PrepareAbort;
        next.last_update_ms = now_ms;
        return Ok(InitDecision::Fence(next));
    }
    if v.producer_epoch >= EPOCH_MAX {
        return fresh(Some(v)).map(InitDecision::Write);
    }
    Ok(InitDecision::Write(TxnValue {
        producer_id: v.producer_id,
        producer_epoch: v.producer_epoch + 1,
        timeout_ms,
        state: TxnState::Empty,
        partitions: BTreeSet::new(),
        last_update_ms: now_ms,
        start_ms: -1,
    }))
}

fn bumped(epoch: i16) -> i16 {
    if epoch >= EPOCH_MAX { i16::MAX } else { epoch + 1 }
}

/// The checks every producer request makes: its producer id and epoch are the current ones,
/// and no marker round is in flight.
fn check_producer(v: &TxnValue, producer_id: i64, epoch: i16) -> Result<(), ErrorCode> {
    if producer_id != v.producer_id {
        return Err(ErrorCode::InvalidProducerIdMapping);
    }
    if epoch != v.producer_epoch {
        return Err(ErrorCode::ProducerFenced);
    }
    if v.state.is_preparing() {
        return Err(ErrorCode::ConcurrentTransactions);
    }
    Ok(())
}

/// AddPartitionsToTxn / AddOffsetsToTxn: `None` when every partition is already in the open
/// transaction (nothing to store).
pub(crate) fn add_partitions(
    v: &TxnValue,
    producer_id: i64,
    epoch: i16,
    partitions: &[(String, i32)],
    now_ms: i64,
) -> Result<Option<TxnValue>, ErrorCode> {
    check_producer(v, producer_id, epoch)?;
    if v.state == TxnState::Dead {
        return Err(ErrorCode::InvalidTxnState);
    }
    if v.state == TxnState::Ongoing && partitions.iter().all(|p| v.partitions.contains(p)) {
        return Ok(None);
    }
    let mut next = v.clone();
    if v.state != TxnState::Ongoing {
        next.start_ms = now_ms;
        next.partitions.clear();
    }
    next.state = TxnState::Ongoing;
    next.partitions.extend(partitions.iter().cloned());
    next.last_update_ms = now_ms;
    Ok(Some(next))
}

/// What EndTxn decided.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum EndDecision {
    /// Store this Prepare state, answer, then write the markers.
    Prepare(TxnValue),
    /// A retry of an EndTxn that already completed the same way.
    AlreadyDone,
}

pub(crate) fn end_txn(
    v: &TxnValue,
    producer_id: i64,
    epoch: i16,
    commit: bool,
    now_ms: i64,
) -> Result<EndDecision, ErrorCode> {
    if producer_id != v.producer_id {
        return Err(ErrorCode::InvalidProducerIdMapping);
    }
    if epoch != v.producer_epoch {
        return Err(ErrorCode::ProducerFenced);
    }
    match (v.state, commit) {
        (TxnState::Ongoing, _) => {
            let mut next = v.clone();
            next.state = if commit { TxnState::PrepareCommit } else { TxnState::PrepareAbort };
            next.last_update_ms = now_ms;
            Ok(EndDecision::Prepare(next))
        }
        (TxnState::CompleteCommit, true) | (TxnState::CompleteAbort, false) => {
            Ok(EndDecision::AlreadyDone)
        }
        (TxnState::PrepareCommit, true) | (TxnState::PrepareAbort, false) => {
            Err(ErrorCode::ConcurrentTransactions)
        }
        _ => Err(ErrorCode::InvalidTxnState),
    }
}

/// The Complete state that follows a Prepare state once its markers are written.
pub(crate) fn complete(v: &TxnValue, now_ms: i64) -> Option<TxnValue> {
    let state = match v.state {
        TxnState::PrepareCommit => TxnState::CompleteCommit,
        TxnState::PrepareAbort | TxnState::PrepareEpochFence => TxnState::CompleteAbort,
        _ => return None,
    };
    let mut next = v.clone();
    next.state = state;
    next.partitions.clear();
    next.last_update_ms = now_ms;
    Some(next)
}

/// An open transaction past its timeout is aborted, with the epoch bumped so the producer that
/// left it is fenced (Kafka's `abortTimedOutTransactions`).
pub(crate) fn abort_if_timed_out(v: &TxnValue, now_ms: i64) -> Option<TxnValue> {
    if v.state != TxnState::Ongoing || now_ms.saturating_sub(v.start_ms) <= i64::from(v.timeout_ms)
    {
        return None;
    }
    let mut next = v.clone();
    next.producer_epoch = bumped(v.producer_epoch);
    next.state = TxnState::PrepareAbort;
    next.last_update_ms = now_ms;
    Some(next)
}

/// Whether an idle id is forgotten (`transactional.id.expiration.ms`).
pub(crate) fn expired(v: &TxnValue, now_ms: i64, expiration_ms: i64) -> bool {
    v.state.is_complete_or_empty() && now_ms.saturating_sub(v.last_update_ms) > expiration_ms
}

#[cfg(test)]
mod tests {
    use super::*;

    const NONE: ProducerIdAndEpoch = ProducerIdAndEpoch { producer_id: -1, epoch: -1 };

    fn written(d: Result<InitDecision, InitError>) -> TxnValue {
        match d {
            Ok(InitDecision::Write(v)) => v,
            other => panic!("expected a write, got {other:?}"),
        }
    }

    #[test]
    fn a_new_id_needs_a_producer_id_and_starts_at_epoch_zero_then_each_init_fences() {
        assert_eq!(init(None, 60_000, None, NONE, 1), Err(InitError::NeedProducerId));
        let v = written(init(None, 60_000, Some(7), NONE, 1));
        assert_eq!((v.producer_id, v.producer_epoch, v.state), (7, 0, TxnState::Empty));
        let v2 = written(init(Some(&v), 60_000, None, NONE, 2));
        assert_eq!((v2.producer_id, v2.producer_epoch), (7, 1));
        // The older instance is fenced everywhere.
        assert_eq!(
            add_partitions(&v2, 7, 0, &[("t".into(), 0)], 3),
            Err(ErrorCode::ProducerFenced)
        );
    }

    #[test]
    fn a_full_commit_goes_ongoing_prepare_complete_and_a_retry_is_already_done() {
        let v = written(init(None, 60_000, Some(7), NONE, 1));
        let v = add_partitions(&v, 7, 0, &[("t".into(), 0)], 5).expect("ok").expect("write");
        assert_eq!((v.state, v.start_ms), (TxnState::Ongoing, 5));
        assert_eq!(add_partitions(&v, 7, 0, &[("t".into(), 0)], 6), Ok(None));
        let EndDecision::Prepare(p) = end_txn(&v, 7, 0, true, 7).expect("ok") else {
            panic!("prepare")
        };
        assert_eq!(p.state, TxnState::PrepareCommit);
        assert_eq!(end_txn(&p, 7, 0, true, 8), Err(ErrorCode::ConcurrentTransactions));
        assert_eq!(
            add_partitions(&p, 7, 0, &[("t".into(), 1)], 8),
            Err(ErrorCode::ConcurrentTransactions)
        );
        let c = complete(&p, 9).expect("complete");
        assert_eq!(c.state, TxnState::CompleteCommit);
        assert!(c.partitions.is_empty());
        assert_eq!(end_txn(&c, 7, 0, true, 10), Ok(EndDecision::AlreadyDone));
        assert_eq!(end_txn(&c, 7, 0, false, 10), Err(ErrorCode::InvalidTxnState));
    }

    #[test]
    fn init_during_an_open_transaction_fences_it_with_a_bumped_epoch() {
        let v = written(init(None, 60_000, Some(7), NONE, 1));
        let v = add_partitions(&v, 7, 0, &[("t".into(), 0)], 5).expect("ok").expect("write");
        let Ok(InitDecision::Fence(f)) = init(Some(&v), 60_000, None, NONE, 6) else {
            panic!("fence")
        };
        assert_eq!((f.state, f.producer_epoch), (TxnState::PrepareAbort, 1));
        assert_eq!(
            init(Some(&f), 60_000, None, NONE, 7),
            Err(InitError::Code(ErrorCode::ConcurrentTransactions))
        );
        let done = complete(&f, 8).expect("complete");
        let again = written(init(Some(&done), 60_000, None, NONE, 9));
        assert_eq!(again.producer_epoch, 2);
    }

    #[test]
    fn a_timed_out_transaction_is_aborted_and_an_idle_id_expires() {
        let v = written(init(None, 1_000, Some(7), NONE, 0));
        let v = add_partitions(&v, 7, 0, &[("t".into(), 0)], 10).expect("ok").expect("write");
        assert_eq!(abort_if_timed_out(&v, 1_010), None);
        let a = abort_if_timed_out(&v, 1_011).expect("abort");
        assert_eq!((a.state, a.producer_epoch), (TxnState::PrepareAbort, 1));
        assert!(!expired(&v, i64::MAX, 1), "an open transaction never expires");
        let c = complete(&a, 2_000).expect("complete");
        assert!(!expired(&c, 2_500, 1_000));
        assert!(expired(&c, 3_001, 1_000));
    }

    #[test]
    fn a_claimed_producer_id_and_epoch_must_match_kip_360() {
        let v = written(init(None, 60_000, Some(7), NONE, 1));
        let claim = ProducerIdAndEpoch { producer_id: 7, epoch: 0 };
        assert_eq!(written(init(Some(&v), 60_000, None, claim, 2)).producer_epoch, 1);
        let stale = ProducerIdAndEpoch { producer_id: 7, epoch: 5 };
        assert_eq!(
            init(Some(&v), 60_000, None, stale, 2),
            Err(InitError::Code(ErrorCode::ProducerFenced))
        );
    }

    #[test]
    fn states_keep_kafkas_codes_and_names() {
        for code in 0..=7 {
            let s = TxnState::from_code(code).expect("known");
            assert_eq!(s.code(), code);
            assert_eq!(TxnState::from_name(s.name()), Some(s));
        }
        assert_eq!(TxnState::from_code(8), None);
    }
}
