//! DescribeUserScramCredentials (key 50, KIP-554): which SCRAM mechanisms each user has, with
//! their iteration counts (never a salt or key). No users asked: every user with a credential.
//! A user asked for twice gets DUPLICATE_RESOURCE; one without credentials RESOURCE_NOT_FOUND.

use std::sync::Arc;

use kafka_protocol::messages::describe_user_scram_credentials_response::{
    CredentialInfo, DescribeUserScramCredentialsResult,
};
use kafka_protocol::messages::{
    DescribeUserScramCredentialsRequest, DescribeUserScramCredentialsResponse,
};

use super::{Authz, sb};
use crate::broker::Broker;
use crate::error_code::ErrorCode;
use crate::kafka::router::{RequestContext, Versions};
use crate::security::acl::Operation;

pub(crate) const VERSIONS: Versions = Versions::new(0, 0);

pub(crate) async fn handle(
    broker: &Arc<Broker>,
    ctx: &RequestContext,
    _version: i16,
    request: DescribeUserScramCredentialsRequest,
) -> Option<DescribeUserScramCredentialsResponse> {
    if !Authz::new(broker, ctx).allows_cluster(Operation::Describe) {
        let mut refused = DescribeUserScramCredentialsResponse::default();
        refused.error_code = ErrorCode::ClusterAuthorizationFailed.code();
        refused.error_message = Some(sb("Cluster authorization failed."));
        return Some(refused);
    }
    let image = broker.metadata.image();
    let asked: Vec<String> = match &request.users {
        Some(users) if !users.is_empty() => users.iter().map(|u| u.name.to_string()).collect(),
        _ => image.scram_credentials.keys().cloned().collect(),
    };
    let mut response = DescribeUserScramCredentialsResponse::default();
    for (i, user) in asked.iter().enumerate() {
        let mut r = DescribeUserScramCredentialsResult::default();
        r.user = sb(user.clone());
        if asked[..i].contains(user) {
            continue; // answered once, below, as a duplicate
        }
        if asked[i + 1..].contains(user) {
            r.error_code = ErrorCode::DuplicateResource.code();
            r.error_message = Some(sb(format!(
                "Cannot describe SCRAM credentials for the same user twice in a single request: {user}"
            )));
        } else if let Some(creds) = image.scram_credentials.get(user) {
            for (mechanism, credential) in creds {
                let mut info = CredentialInfo::default();
                info.mechanism = mechanism.wire();
                info.iterations = credential.iterations;
                r.credential_infos.push(info);
            }
        } else {
            r.error_code = ErrorCode::ResourceNotFound.code();
            r.error_message = Some(sb(format!(
                "Attempt to describe a user credential that does not exist: {user}"
            )));
        }
        response.results.push(r);
    }
    Some(response)
}
