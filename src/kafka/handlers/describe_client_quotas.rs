//! DescribeClientQuotas (key 48, KIP-546): the quota entities a filter selects (each component
//! an exact name, the default, or any; `strict` excludes entities with other parts), answered
//! from this broker's metadata image (`metadata::quotas::describe`). Needs DESCRIBE_CONFIGS on
//! the cluster.

use std::sync::Arc;

use kafka_protocol::messages::describe_client_quotas_response::{EntityData, EntryData, ValueData};
use kafka_protocol::messages::{DescribeClientQuotasRequest, DescribeClientQuotasResponse};

use super::{Authz, sb};
use crate::broker::Broker;
use crate::error_code::ErrorCode;
use crate::kafka::router::{RequestContext, Versions};
use crate::metadata::quotas::{ENTITY_CLIENT_ID, ENTITY_USER, EntityName, describe};
use crate::security::acl::Operation;

pub(crate) const VERSIONS: Versions = Versions::new(0, 1);

fn entity_part(kind: &str, name: &EntityName) -> EntityData {
    let mut d = EntityData::default();
    d.entity_type = sb(kind);
    d.entity_name = name.to_wire().map(sb);
    d
}

pub(crate) async fn handle(
    broker: &Arc<Broker>,
    ctx: &RequestContext,
    _version: i16,
    request: DescribeClientQuotasRequest,
) -> Option<DescribeClientQuotasResponse> {
    let mut response = DescribeClientQuotasResponse::default();
    if !Authz::new(broker, ctx).allows_cluster(Operation::DescribeConfigs) {
        response.error_code = ErrorCode::ClusterAuthorizationFailed.code();
        response.error_message = Some(sb("Cluster authorization failed."));
        return Some(response);
    }
    let components: Vec<(String, i8, Option<String>)> = request
        .components
        .iter()
        .map(|c| {
            (c.entity_type.to_string(), c.match_type, c._match.as_ref().map(|m| m.to_string()))
        })
        .collect();
    let image = broker.metadata.image();
    match describe(&image.client_quotas, &components, request.strict) {
        Ok(found) => {
            let entries = found
                .into_iter()
                .map(|(entity, values)| {
                    let mut e = EntryData::default();
                    if let Some(u) = &entity.user {
                        e.entity.push(entity_part(ENTITY_USER, u));
                    }
                    if let Some(c) = &entity.client_id {
                        e.entity.push(entity_part(ENTITY_CLIENT_ID, c));
                    }
                    e.values = values
                        .into_iter()
                        .map(|(key, value)| {
                            let mut v = ValueData::default();
                            v.key = sb(key);
                            v.value = value.0;
                            v
                        })
                        .collect();
                    e
                })
                .collect();
            response.entries = Some(entries);
        }
        Err(e) => {
            response.error_code = e.code.code();
            response.error_message = Some(sb(e.message));
        }
    }
    Some(response)
}
