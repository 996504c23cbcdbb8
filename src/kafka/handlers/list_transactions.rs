//! ListTransactions (key 66, KIP-664): the transactional ids this broker coordinates, filtered
//! by state names and producer ids (v1: also by how long the transaction has been open).
//! State names Kafka does not know are echoed in `unknown_state_filters`.

use std::collections::BTreeSet;
use std::sync::Arc;

use kafka_protocol::messages::list_transactions_response::TransactionState;
use kafka_protocol::messages::{
    ListTransactionsRequest, ListTransactionsResponse, ProducerId, TransactionalId,
};

use super::sb;
use crate::broker::Broker;
use crate::kafka::handlers::Authz;
use crate::kafka::router::{RequestContext, Versions};
use crate::security::acl::{Operation, ResourceType};
use crate::txn::metadata::TxnState;

pub(crate) const VERSIONS: Versions = Versions::new(0, 1);

pub(crate) async fn handle(
    broker: &Arc<Broker>,
    ctx: &RequestContext,
    version: i16,
    request: ListTransactionsRequest,
) -> Option<ListTransactionsResponse> {
    let mut r = ListTransactionsResponse::default();
    let mut states = BTreeSet::new();
    for name in &request.state_filters {
        match TxnState::from_name(name) {
            Some(s) => {
                states.insert(s);
            }
            None => r.unknown_state_filters.push(name.clone()),
        }
    }
    if !r.unknown_state_filters.is_empty() && states.is_empty() {
        return Some(r); // only unknown states asked for: nothing matches
    }
    let pids: BTreeSet<i64> = request.producer_id_filters.iter().map(|p| p.0).collect();
    let duration = if version >= 1 { request.duration_filter } else { -1 };
    let (code, txns) = broker.txns.list(&states, &pids, duration);
    // Only the transactional ids the principal may DESCRIBE are listed.
    let authz = Authz::new(broker, ctx);
    let txns: Vec<_> = txns
        .into_iter()
        .filter(|t| {
            authz.allows(Operation::Describe, ResourceType::TransactionalId, &t.transactional_id)
        })
        .collect();
    r.error_code = code.code();
    for t in txns {
        let mut s = TransactionState::default();
        s.transactional_id = TransactionalId(sb(t.transactional_id));
        s.producer_id = ProducerId(t.value.producer_id);
        s.transaction_state = sb(t.value.state.name());
        r.transaction_states.push(s);
    }
    Some(r)
}
