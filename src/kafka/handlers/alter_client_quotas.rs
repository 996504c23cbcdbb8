//! AlterClientQuotas (key 49, KIP-546): sets and removes `producer_byte_rate`,
//! `consumer_byte_rate` and `request_percentage` for users, client ids, a user's client id, or
//! the defaults (a null entity name), decided by the controller (`metadata::quotas::alter`) and
//! stored in the metadata log. Needs ALTER_CONFIGS on the cluster. One result per entry.

use std::sync::Arc;

use kafka_protocol::messages::alter_client_quotas_response::{EntityData, EntryData};
use kafka_protocol::messages::{AlterClientQuotasRequest, AlterClientQuotasResponse};

use super::{Authz, sb};
use crate::broker::Broker;
use crate::controller::{ControllerReply, ControllerRequest};
use crate::error_code::{ApiError, ErrorCode};
use crate::kafka::router::{RequestContext, Versions};
use crate::metadata::quotas::{QuotaAlteration, QuotaValue};
use crate::security::acl::Operation;

pub(crate) const VERSIONS: Versions = Versions::new(0, 1);

pub(crate) async fn handle(
    broker: &Arc<Broker>,
    ctx: &RequestContext,
    _version: i16,
    request: AlterClientQuotasRequest,
) -> Option<AlterClientQuotasResponse> {
    let alterations: Vec<QuotaAlteration> = request
        .entries
        .iter()
        .map(|e| QuotaAlteration {
            entity: e
                .entity
                .iter()
                .map(|p| (p.entity_type.to_string(), p.entity_name.as_ref().map(|n| n.to_string())))
                .collect(),
            ops: e
                .ops
                .iter()
                .map(|op| (op.key.to_string(), (!op.remove).then_some(QuotaValue(op.value))))
                .collect(),
        })
        .collect();
    let results: Vec<Option<ApiError>> = if !Authz::new(broker, ctx)
        .allows_cluster(Operation::AlterConfigs)
    {
        let denied =
            ApiError::new(ErrorCode::ClusterAuthorizationFailed, "Cluster authorization failed.");
        vec![Some(denied); alterations.len()]
    } else {
        let count = alterations.len();
        let req = ControllerRequest::AlterClientQuotas {
            alterations,
            validate_only: request.validate_only,
        };
        match broker.controller.execute(req).await {
            Ok(ControllerReply::QuotaResults { results }) => results,
            Ok(other) => {
                let e = ApiError::new(
                    ErrorCode::UnknownServerError,
                    format!("unexpected controller reply {other:?}"),
                );
                vec![Some(e); count]
            }
            Err(e) => vec![Some(e); count],
        }
    };
    let mut response = AlterClientQuotasResponse::default();
    for (entry, result) in request.entries.iter().zip(results) {
        let mut out = EntryData::default();
        out.entity = entry
            .entity
            .iter()
            .map(|p| {
                let mut d = EntityData::default();
                d.entity_type = p.entity_type.clone();
                d.entity_name = p.entity_name.clone();
                d
            })
            .collect();
        if let Some(e) = result {
            out.error_code = e.code.code();
            out.error_message = Some(sb(e.message));
        }
        response.entries.push(out);
    }
    Some(response)
}
