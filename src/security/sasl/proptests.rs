//! Property tests of the SASL servers and the JAAS parser on arbitrary input: bytes from the
//! network (or a config value) get an error, never a panic, and a well-behaved SCRAM client
//! with any user name and password authenticates.

use std::sync::Arc;

use proptest::prelude::*;

use super::Step;
use super::plain::{PlainServer, PlainUsers};
use super::scram::{CredentialStore, ScramClient, ScramCredential, ScramMechanism, ScramServer};
use crate::security::jaas;

/// SCRAM iterations for these tests: the minimum, so a case stays fast.
const ITERATIONS: i32 = 4096;

struct One(String, ScramMechanism, ScramCredential);

impl CredentialStore for One {
    fn credential(&self, user: &str, m: ScramMechanism) -> Option<ScramCredential> {
        (user == self.0 && m == self.1).then(|| self.2.clone())
    }
}

fn store(user: &str, password: &str) -> Arc<One> {
    let m = ScramMechanism::Sha256;
    let salt = b"proptest-salt";
    let salted = m.salted_password(password.as_bytes(), salt, ITERATIONS);
    Arc::new(One(
        user.to_string(),
        m,
        ScramCredential::from_salted_password(m, salt, &salted, ITERATIONS),
    ))
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(64))]

    #[test]
    fn scram_first_messages_never_panic(token in proptest::collection::vec(any::<u8>(), 0..256)) {
        let mut server = ScramServer::new(ScramMechanism::Sha256, store("alice", "pw"));
        let _ = server.step(&token);
    }

    #[test]
    fn scram_final_messages_never_panic(token in proptest::collection::vec(any::<u8>(), 0..256),
                                        text in "[a-z=,0-9+/]{0,120}") {
        for bytes in [token, text.into_bytes()] {
            let mut server = ScramServer::new(ScramMechanism::Sha256, store("alice", "pw"));
            let client = ScramClient::new(ScramMechanism::Sha256, "alice", "pw");
            prop_assert!(matches!(server.step(&client.first()), Ok(Step::Challenge(_))));
            let _ = server.step(&bytes);
        }
    }

    #[test]
    fn a_scram_client_with_any_name_and_password_authenticates(user in "\\PC{1,24}",
                                                              password in "\\PC{1,24}") {
        let mut server = ScramServer::new(ScramMechanism::Sha256, store(&user, &password));
        let mut client = ScramClient::new(ScramMechanism::Sha256, &user, &password);
        let Ok(Step::Challenge(server_first)) = server.step(&client.first()) else {
            return Err(TestCaseError::fail("no challenge"));
        };
        let last = client.respond(&server_first).map_err(TestCaseError::fail)?;
        match server.step(&last) {
            Ok(Step::Done { user: who, last }) => {
                prop_assert_eq!(&who, &user);
                prop_assert!(client.verify(&last).is_ok());
            }
            other => return Err(TestCaseError::fail(format!("{other:?}"))),
        }
        // The wrong password is refused.
        let mut server = ScramServer::new(ScramMechanism::Sha256, store(&user, &password));
        let mut client = ScramClient::new(ScramMechanism::Sha256, &user, &format!("{password}x"));
        let Ok(Step::Challenge(server_first)) = server.step(&client.first()) else {
            return Err(TestCaseError::fail("no challenge"));
        };
        let last = client.respond(&server_first).map_err(TestCaseError::fail)?;
        prop_assert!(server.step(&last).is_err());
    }

    #[test]
    fn plain_tokens_never_panic(token in proptest::collection::vec(any::<u8>(), 0..256)) {
        let mut server = PlainServer::new(PlainUsers::from_pairs([("alice", "pw")]));
        let _ = server.step(&token);
    }

    #[test]
    fn jaas_lines_never_panic(text in "\\PC{0,200}", near in "[A-Za-z.]{1,20} (required|optional) [a-z_]{1,8}=\"[^\"]{0,10}\\\\?\"?;?") {
        let _ = jaas::parse(&text);
        let _ = jaas::parse(&near);
    }
}
