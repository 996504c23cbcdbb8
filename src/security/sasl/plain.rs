//! SASL PLAIN (RFC 4616) as Kafka's `PlainSaslServer`: one token, `authzid NUL authcid NUL
//! password`; the authorization id must be empty or the user name; users and passwords come
//! from the listener's JAAS line (`user_<name>="<password>"`).

use std::collections::BTreeMap;
use std::sync::Arc;

use subtle::ConstantTimeEq;

use super::{AuthError, Secret, Step};
use crate::security::jaas;

/// The users a PLAIN listener accepts.
#[derive(Debug, Clone, Default)]
pub struct PlainUsers {
    users: Arc<BTreeMap<String, Secret>>,
}

impl PlainUsers {
    /// Reads the `user_<name>` options of a `PlainLoginModule` JAAS line.
    pub fn from_jaas(line: &str) -> Result<Self, String> {
        let entries = jaas::parse(line)?;
        let [entry] = entries.as_slice() else {
            return Err(format!("expected one login module, found {}", entries.len()));
        };
        if !entry.module.ends_with("PlainLoginModule") {
            return Err(format!(
                "expected org.apache.kafka.common.security.plain.PlainLoginModule, found {}",
                entry.module
            ));
        }
        let users: BTreeMap<String, Secret> = entry
            .options
            .iter()
            .filter_map(|(k, v)| Some((k.strip_prefix("user_")?.to_string(), Secret::new(v))))
            .collect();
        if users.is_empty() {
            return Err("no user_<name>=\"<password>\" options: no client could log in".into());
        }
        Ok(PlainUsers { users: Arc::new(users) })
    }

    pub fn from_pairs<'a>(pairs: impl IntoIterator<Item = (&'a str, &'a str)>) -> Self {
        PlainUsers {
            users: Arc::new(pairs.into_iter().map(|(u, p)| (u.into(), Secret::new(p))).collect()),
        }
    }

    /// Whether `password` is `user`'s, compared in constant time (an unknown user is compared
    /// against a dummy so that it takes the same time).
    fn verify(&self, user: &str, password: &str) -> bool {
        let (expected, known) = match self.users.get(user) {
            Some(p) => (p.expose(), true),
            None => ("\u{0}unknown-user\u{0}", false),
        };
        let same: bool = expected.as_bytes().ct_eq(password.as_bytes()).into();
        same && known
    }
}

/// One PLAIN exchange.
#[derive(Debug)]
pub struct PlainServer {
    users: PlainUsers,
}

impl PlainServer {
    pub fn new(users: PlainUsers) -> Self {
        PlainServer { users }
    }

    pub fn step(&mut self, token: &[u8]) -> Result<Step, AuthError> {
        let malformed = |reason: String| AuthError::Malformed { mechanism: "PLAIN", reason };
        let text = std::str::from_utf8(token).map_err(|_| malformed("not UTF-8".into()))?;
        let parts: Vec<&str> = text.split('\u{0}').collect();
        let [authzid, user, password] = parts.as_slice() else {
            return Err(malformed(format!("expected 3 tokens, got {}", parts.len())));
        };
        if user.is_empty() {
            return Err(AuthError::Refused("username not specified".into()));
        }
        if password.is_empty() {
            return Err(AuthError::Refused("password not specified".into()));
        }
        if !authzid.is_empty() && authzid != user {
            return Err(AuthError::Refused(
                "Client requested an authorization id that is different from username".into(),
            ));
        }
        if !self.users.verify(user, password) {
            return Err(AuthError::BadCredentials);
        }
        Ok(Step::Done { user: user.to_string(), last: Vec::new() })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn server() -> PlainServer {
        PlainServer::new(PlainUsers::from_pairs([("alice", "alice-secret"), ("bob", "b")]))
    }

    #[test]
    fn the_right_password_authenticates_and_nothing_else_does() {
        assert_eq!(
            server().step(b"\0alice\0alice-secret"),
            Ok(Step::Done { user: "alice".into(), last: vec![] })
        );
        assert_eq!(
            server().step(b"alice\0alice\0alice-secret"),
            Ok(Step::Done { user: "alice".into(), last: vec![] })
        );
        assert_eq!(server().step(b"\0alice\0wrong"), Err(AuthError::BadCredentials));
        assert_eq!(server().step(b"\0mallory\0alice-secret"), Err(AuthError::BadCredentials));
        assert_eq!(server().step(b"\0alice\0alice-secre"), Err(AuthError::BadCredentials));
        assert!(matches!(server().step(b"bob\0alice\0alice-secret"), Err(AuthError::Refused(_))));
        assert!(matches!(server().step(b"\0\0x"), Err(AuthError::Refused(_))));
        assert!(matches!(server().step(b"\0alice\0"), Err(AuthError::Refused(_))));
        assert!(matches!(server().step(b"alice-secret"), Err(AuthError::Malformed { .. })));
        assert!(matches!(server().step(&[0, 0xff, 0, 1]), Err(AuthError::Malformed { .. })));
    }

    #[test]
    fn users_come_from_the_jaas_line_and_never_print() {
        let u = PlainUsers::from_jaas(
            r#"org.apache.kafka.common.security.plain.PlainLoginModule required username="admin" password="admin-secret" user_admin="admin-secret";"#,
        )
        .expect("parses");
        assert!(u.verify("admin", "admin-secret"));
        assert!(!u.verify("username", "admin"));
        assert!(!format!("{u:?}").contains("admin-secret"));
        assert!(PlainUsers::from_jaas("x.ScramLoginModule required;").is_err());
    }
}
