//! AlterUserScramCredentials (key 51, KIP-554): creates, replaces and deletes users' SCRAM
//! credentials. The client sends a salted password, never the password; this broker turns it
//! into the stored key and server key before it goes to the controller, so the salted password
//! is not written anywhere. One result per user, with Kafka's codes (see `metadata::scram`).

use std::sync::Arc;

use kafka_protocol::messages::alter_user_scram_credentials_response::AlterUserScramCredentialsResult;
use kafka_protocol::messages::{
    AlterUserScramCredentialsRequest, AlterUserScramCredentialsResponse,
};

use super::{Authz, sb};
use crate::broker::Broker;
use crate::controller::{ControllerReply, ControllerRequest};
use crate::kafka::router::{RequestContext, Versions};
use crate::metadata::scram::ScramAlteration;
use crate::security::acl::Operation;
use crate::security::sasl::scram::{ScramCredential, ScramMechanism};

pub(crate) const VERSIONS: Versions = Versions::new(0, 0);

pub(crate) async fn handle(
    broker: &Arc<Broker>,
    ctx: &RequestContext,
    _version: i16,
    request: AlterUserScramCredentialsRequest,
) -> Option<AlterUserScramCredentialsResponse> {
    let mut alterations = Vec::new();
    for d in &request.deletions {
        alterations
            .push(ScramAlteration::Delete { user: d.name.to_string(), mechanism: d.mechanism });
    }
    for u in &request.upsertions {
        // An unknown mechanism still travels (as SHA-256 keys) so the controller answers it.
        let hash = ScramMechanism::from_wire(u.mechanism).unwrap_or(ScramMechanism::Sha256);
        let credential = if u.salted_password.is_empty() {
            ScramCredential {
                salt: u.salt.to_vec(),
                stored_key: Vec::new(),
                server_key: Vec::new(),
                iterations: u.iterations,
            }
        } else {
            ScramCredential::from_salted_password(hash, &u.salt, &u.salted_password, u.iterations)
        };
        alterations.push(ScramAlteration::Upsert {
            user: u.name.to_string(),
            mechanism: u.mechanism,
            credential,
        });
    }
    let users: Vec<String> = {
        let mut seen: Vec<String> = Vec::new();
        for a in &alterations {
            if !seen.iter().any(|u| u == a.user()) {
                seen.push(a.user().to_string());
            }
        }
        seen
    };
    let mut response = AlterUserScramCredentialsResponse::default();
    if !Authz::new(broker, ctx).allows_cluster(Operation::Alter) {
        for user in users {
            let mut out = AlterUserScramCredentialsResult::default();
            out.user = sb(user);
            out.error_code = crate::error_code::ErrorCode::ClusterAuthorizationFailed.code();
            out.error_message = Some(sb("Cluster authorization failed."));
            response.results.push(out);
        }
        return Some(response);
    }
    match broker.controller.execute(ControllerRequest::AlterScramCredentials { alterations }).await
    {
        Ok(ControllerReply::ScramAltered { results }) => {
            for r in results {
                let mut out = AlterUserScramCredentialsResult::default();
                out.user = sb(r.user);
                out.error_code = r.code.code();
                out.error_message = (!r.message.is_empty()).then(|| sb(r.message));
                response.results.push(out);
            }
        }
        other => {
            let (code, message) = match other {
                Err(e) => (e.code.code(), e.message),
                Ok(reply) => (
                    crate::error_code::ErrorCode::UnknownServerError.code(),
                    format!("unexpected controller reply {reply:?}"),
                ),
            };
            for user in users {
                let mut out = AlterUserScramCredentialsResult::default();
                out.user = sb(user);
                out.error_code = code;
                out.error_message = Some(sb(message.clone()));
                response.results.push(out);
            }
        }
    }
    Some(response)
}
