//! Deciding AlterUserScramCredentials against the image, as Kafka's `ScramControlManager`:
//! each user's alterations succeed or fail together; a (user, mechanism) pair named twice in
//! one request fails that user with DUPLICATE_RESOURCE; deleting a credential that does not
//! exist is RESOURCE_NOT_FOUND; iterations outside 4096..=16384 or an empty salt, user or
//! salted password is UNACCEPTABLE_CREDENTIAL; an unknown mechanism is
//! UNSUPPORTED_SASL_MECHANISM.

use std::sync::Arc;

use serde::{Deserialize, Serialize};

use super::MetadataLog;
use super::commands::MetadataCommand;
use super::image::MetadataImage;
use crate::error_code::ErrorCode;
use crate::security::sasl::scram::{
    CredentialStore, ITERATIONS_MAX, ITERATIONS_MIN, ScramCredential, ScramMechanism,
};

/// SCRAM logins read credentials from the node's current image: a change committed to the
/// metadata log is used by the next exchange, on every node.
pub struct ImageCredentials(pub Arc<dyn MetadataLog>);

impl CredentialStore for ImageCredentials {
    fn credential(&self, user: &str, mechanism: ScramMechanism) -> Option<ScramCredential> {
        self.0.image().scram_credentials.get(user)?.get(&mechanism).cloned()
    }
}

/// One credential change of an AlterUserScramCredentials request (`mechanism` as on the wire,
/// so an unknown one is answered, not dropped).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub enum ScramAlteration {
    Delete { user: String, mechanism: i8 },
    Upsert { user: String, mechanism: i8, credential: ScramCredential },
}

impl ScramAlteration {
    pub fn user(&self) -> &str {
        match self {
            ScramAlteration::Delete { user, .. } | ScramAlteration::Upsert { user, .. } => user,
        }
    }

    fn mechanism(&self) -> i8 {
        match self {
            ScramAlteration::Delete { mechanism, .. }
            | ScramAlteration::Upsert { mechanism, .. } => *mechanism,
        }
    }
}

/// One user's outcome: its error code (NONE on success) and message.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ScramResult {
    pub user: String,
    pub code: ErrorCode,
    pub message: String,
}

/// The commands for `alterations` and one result per user, in the order users first appear.
pub fn alter_credentials(
    image: &MetadataImage,
    alterations: &[ScramAlteration],
) -> (Vec<MetadataCommand>, Vec<ScramResult>) {
    let mut users: Vec<&str> = Vec::new();
    for a in alterations {
        if !users.contains(&a.user()) {
            users.push(a.user());
        }
    }
    let mut commands = Vec::new();
    let mut results = Vec::new();
    for user in users {
        let mine: Vec<&ScramAlteration> = alterations.iter().filter(|a| a.user() == user).collect();
        match decide_user(image, user, &mine) {
            Ok(cmds) => {
                commands.extend(cmds);
                results.push(ScramResult {
                    user: user.into(),
                    code: ErrorCode::None,
                    message: String::new(),
                });
            }
            Err((code, message)) => {
                results.push(ScramResult { user: user.into(), code, message: message.into() })
            }
        }
    }
    (commands, results)
}

fn decide_user(
    image: &MetadataImage,
    user: &str,
    alterations: &[&ScramAlteration],
) -> Result<Vec<MetadataCommand>, (ErrorCode, &'static str)> {
    if user.is_empty() {
        return Err((ErrorCode::UnacceptableCredential, "Username must not be empty"));
    }
    let mut seen = Vec::new();
    for a in alterations {
        if seen.contains(&a.mechanism()) {
            return Err((
                ErrorCode::DuplicateResource,
                "A user credential cannot be altered twice in the same request",
            ));
        }
        seen.push(a.mechanism());
    }
    let mut commands = Vec::new();
    for a in alterations {
        let mechanism = ScramMechanism::from_wire(a.mechanism())
            .ok_or((ErrorCode::UnsupportedSaslMechanism, "Unknown SCRAM mechanism"))?;
        match a {
            ScramAlteration::Delete { .. } => {
                let exists = image
                    .scram_credentials
                    .get(user)
                    .is_some_and(|creds| creds.contains_key(&mechanism));
                if !exists {
                    return Err((
                        ErrorCode::ResourceNotFound,
                        "Attempt to delete a user credential that does not exist",
                    ));
                }
                commands
                    .push(MetadataCommand::DeleteScramCredential { user: user.into(), mechanism });
            }
            ScramAlteration::Upsert { credential, .. } => {
                if credential.iterations < ITERATIONS_MIN {
                    return Err((ErrorCode::UnacceptableCredential, "Too few iterations"));
                }
                if credential.iterations > ITERATIONS_MAX {
                    return Err((ErrorCode::UnacceptableCredential, "Too many iterations"));
                }
                if credential.salt.is_empty() || credential.stored_key.is_empty() {
                    return Err((
                        ErrorCode::UnacceptableCredential,
                        "The salt and the salted password must not be empty",
                    ));
                }
                commands.push(MetadataCommand::UpsertScramCredential {
                    user: user.into(),
                    mechanism,
                    credential: credential.clone(),
                });
            }
        }
    }
    Ok(commands)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::metadata::commands::apply;

    fn upsert(user: &str, mechanism: i8, iterations: i32) -> ScramAlteration {
        let mut credential = ScramCredential::from_password(ScramMechanism::Sha256, "pw", 4096);
        credential.iterations = iterations;
        ScramAlteration::Upsert { user: user.into(), mechanism, credential }
    }

    #[test]
    fn each_user_succeeds_or_fails_as_a_whole_with_kafkas_codes() {
        let mut image = MetadataImage::default();
        let (cmds, results) = alter_credentials(
            &image,
            &[
                upsert("alice", 1, 8192),
                upsert("bob", 1, 4096),
                upsert("bob", 1, 4096),
                upsert("carol", 2, 100),
                upsert("dave", 7, 4096),
                ScramAlteration::Delete { user: "erin".into(), mechanism: 1 },
                upsert("frank", 2, 20000),
                upsert("", 1, 4096),
                upsert("alice", 2, 4096),
            ],
        );
        let codes: Vec<(&str, ErrorCode)> =
            results.iter().map(|r| (r.user.as_str(), r.code)).collect();
        assert_eq!(
            codes,
            vec![
                ("alice", ErrorCode::None),
                ("bob", ErrorCode::DuplicateResource),
                ("carol", ErrorCode::UnacceptableCredential),
                ("dave", ErrorCode::UnsupportedSaslMechanism),
                ("erin", ErrorCode::ResourceNotFound),
                ("frank", ErrorCode::UnacceptableCredential),
                ("", ErrorCode::UnacceptableCredential),
            ]
        );
        assert_eq!(cmds.len(), 2, "both of alice's credentials, nothing else");
        cmds.iter().for_each(|c| apply(&mut image, c));
        let (cmds, results) = alter_credentials(
            &image,
            &[ScramAlteration::Delete { user: "alice".into(), mechanism: 1 }],
        );
        assert_eq!(results[0].code, ErrorCode::None);
        cmds.iter().for_each(|c| apply(&mut image, c));
        assert_eq!(image.scram_credentials["alice"].len(), 1);
    }
}
