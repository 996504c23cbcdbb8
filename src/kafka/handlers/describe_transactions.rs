//! DescribeTransactions (key 65, KIP-664): the state of each transactional id this broker
//! coordinates; an id coordinated elsewhere gets NOT_COORDINATOR, an unknown one
//! TRANSACTIONAL_ID_NOT_FOUND.

use std::sync::Arc;

use kafka_protocol::messages::describe_transactions_response::{TopicData, TransactionState};
use kafka_protocol::messages::{
    DescribeTransactionsRequest, DescribeTransactionsResponse, ProducerId,
};

use super::{sb, topic_name};
use crate::broker::Broker;
use crate::error_code::ErrorCode;
use crate::kafka::handlers::Authz;
use crate::kafka::router::{RequestContext, Versions};
use crate::security::acl::{Operation, ResourceType};

pub(crate) const VERSIONS: Versions = Versions::new(0, 0);

pub(crate) async fn handle(
    broker: &Arc<Broker>,
    ctx: &RequestContext,
    _version: i16,
    request: DescribeTransactionsRequest,
) -> Option<DescribeTransactionsResponse> {
    let mut r = DescribeTransactionsResponse::default();
    for id in &request.transactional_ids {
        let mut s = TransactionState::default();
        s.transactional_id = id.clone();
        s.producer_id = ProducerId(-1);
        s.producer_epoch = -1;
        s.transaction_start_time_ms = -1;
        if !Authz::new(broker, ctx).allows(
            Operation::Describe,
            ResourceType::TransactionalId,
            &id.0,
        ) {
            s.error_code = ErrorCode::TransactionalIdAuthorizationFailed.code();
            r.transaction_states.push(s);
            continue;
        }
        match broker.txns.describe(&id.0) {
            Ok(d) => {
                s.transaction_state = sb(d.value.state.name());
                s.transaction_timeout_ms = d.value.timeout_ms;
                s.transaction_start_time_ms = d.value.start_ms;
                s.producer_id = ProducerId(d.value.producer_id);
                s.producer_epoch = d.value.producer_epoch;
                let mut topics: Vec<TopicData> = Vec::new();
                for (t, p) in &d.value.partitions {
                    match topics.iter_mut().find(|x| x.topic.0.as_str() == t) {
                        Some(x) => x.partitions.push(*p),
                        None => {
                            let mut x = TopicData::default();
                            x.topic = topic_name(t);
                            x.partitions.push(*p);
                            topics.push(x);
                        }
                    }
                }
                s.topics = topics;
            }
            Err(code) => s.error_code = code.code(),
        }
        r.transaction_states.push(s);
    }
    Some(r)
}
