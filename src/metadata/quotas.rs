//! Client quotas as the metadata log stores them (KIP-546's DescribeClientQuotas and
//! AlterClientQuotas): entities of a user, a client id or both, each part a name or the default,
//! with `producer_byte_rate`, `consumer_byte_rate` and `request_percentage` values. Pure: the
//! controller decides with [`alter`], brokers answer with [`describe`] and resolve a
//! connection's quotas with [`resolve`] (enforced by `crate::quota`).
//!
//! Invariants: a stored entity has a user part, a client-id part or both, and only the keys of
//! [`QUOTA_KEYS`] with values > 0 (integral for the byte rates); an entity left without values
//! is removed.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

use crate::error_code::{ApiError, ErrorCode};

/// Bytes a client may produce per second.
pub const PRODUCER_BYTE_RATE: &str = "producer_byte_rate";
/// Bytes a client may fetch per second.
pub const CONSUMER_BYTE_RATE: &str = "consumer_byte_rate";
/// Percent of one request-handling thread's time a client may use, per quota window.
pub const REQUEST_PERCENTAGE: &str = "request_percentage";

/// The quota keys samsa stores and enforces, and whether each must be integral.
pub const QUOTA_KEYS: &[(&str, bool)] =
    &[(PRODUCER_BYTE_RATE, true), (CONSUMER_BYTE_RATE, true), (REQUEST_PERCENTAGE, false)];

pub const ENTITY_USER: &str = "user";
pub const ENTITY_CLIENT_ID: &str = "client-id";
pub const ENTITY_IP: &str = "ip";

/// One part of an entity: a name, or the default for every name without its own entry.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
pub enum EntityName {
    Default,
    Named(String),
}

impl EntityName {
    /// From the wire: a null name is the default.
    pub fn from_wire(name: Option<&str>) -> Self {
        name.map_or(EntityName::Default, |n| EntityName::Named(n.to_string()))
    }

    pub fn to_wire(&self) -> Option<&str> {
        match self {
            EntityName::Default => None,
            EntityName::Named(n) => Some(n),
        }
    }
}

/// A quota entity: a user, a client id, or a user's client id.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
pub struct QuotaEntity {
    pub user: Option<EntityName>,
    pub client_id: Option<EntityName>,
}

/// A quota value. Compared by its bits so the image stays `Eq`.
#[derive(Debug, Clone, Copy, Serialize, Deserialize)]
#[serde(transparent)]
pub struct QuotaValue(pub f64);

impl PartialEq for QuotaValue {
    fn eq(&self, other: &Self) -> bool {
        self.0.to_bits() == other.0.to_bits()
    }
}
impl Eq for QuotaValue {}

/// An entity's values by key.
pub type QuotaValues = BTreeMap<String, QuotaValue>;

/// Serializes the entity map as a list of pairs (JSON map keys must be strings).
pub mod by_entity {
    use super::*;

    pub fn serialize<S: serde::Serializer>(
        map: &BTreeMap<QuotaEntity, QuotaValues>,
        s: S,
    ) -> Result<S::Ok, S::Error> {
        s.collect_seq(map.iter())
    }

    pub fn deserialize<'de, D: serde::Deserializer<'de>>(
        d: D,
    ) -> Result<BTreeMap<QuotaEntity, QuotaValues>, D::Error> {
        let pairs: Vec<(QuotaEntity, QuotaValues)> = Deserialize::deserialize(d)?;
        Ok(pairs.into_iter().collect())
    }
}

fn invalid(message: impl Into<String>) -> ApiError {
    ApiError::new(ErrorCode::InvalidRequest, message)
}

/// An entity as a request names it: (entity type, name or null for the default) pairs.
pub fn entity_of(parts: &[(String, Option<String>)]) -> Result<QuotaEntity, ApiError> {
    if parts.is_empty() {
        return Err(invalid("Invalid empty client quota entity"));
    }
    let mut entity = QuotaEntity { user: None, client_id: None };
    for (kind, name) in parts {
        let slot = match kind.as_str() {
            ENTITY_USER => &mut entity.user,
            ENTITY_CLIENT_ID => &mut entity.client_id,
            ENTITY_IP => {
                return Err(invalid(
                    "ip quotas (connection_creation_rate) are not supported by samsa; quota users and client ids",
                ));
            }
            other => return Err(invalid(format!("Unhandled client quota entity type: {other}"))),
        };
        if slot.is_some() {
            return Err(invalid(format!(
                "Invalid client quota entity, duplicate entity entry {kind}"
            )));
        }
        *slot = Some(EntityName::from_wire(name.as_deref()));
    }
    Ok(entity)
}

/// Checks one quota value (KRaft's ClientQuotaControlManager rules).
fn validate_value(key: &str, value: f64) -> Result<(), ApiError> {
    let Some((_, integral)) = QUOTA_KEYS.iter().find(|(k, _)| *k == key) else {
        return Err(invalid(format!(
            "Invalid configuration key {key}; samsa enforces producer_byte_rate, consumer_byte_rate and request_percentage"
        )));
    };
    if value.is_nan() || value <= 0.0 || value.is_infinite() {
        return Err(invalid(format!("Quota {key} must be greater than 0")));
    }
    if *integral && value.fract() != 0.0 {
        return Err(invalid(format!("{key} must be an integer, not {value}")));
    }
    Ok(())
}

/// One entry of an AlterClientQuotas: the entity and its operations (a `None` value removes
/// the key).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct QuotaAlteration {
    pub entity: Vec<(String, Option<String>)>,
    pub ops: Vec<(String, Option<QuotaValue>)>,
}

/// Decides an AlterClientQuotas: the commands and, per entry, the error if it was refused.
/// Entries are applied in order, each to the result of the ones before.
pub fn alter(
    current: &BTreeMap<QuotaEntity, QuotaValues>,
    alterations: &[QuotaAlteration],
) -> (Vec<super::commands::MetadataCommand>, Vec<Option<ApiError>>) {
    let mut working = current.clone();
    let mut touched: Vec<QuotaEntity> = Vec::new();
    let mut results = Vec::new();
    for a in alterations {
        let decided = entity_of(&a.entity).and_then(|entity| {
            let mut values = working.get(&entity).cloned().unwrap_or_default();
            for (key, value) in &a.ops {
                match value {
                    Some(v) => {
                        validate_value(key, v.0)?;
                        values.insert(key.clone(), *v);
                    }
                    None => {
                        values.remove(key);
                    }
                }
            }
            Ok((entity, values))
        });
        match decided {
            Ok((entity, values)) => {
                if working.get(&entity).cloned().unwrap_or_default() != values {
                    if !touched.contains(&entity) {
                        touched.push(entity.clone());
                    }
                    working.insert(entity, values);
                }
                results.push(None);
            }
            Err(e) => results.push(Some(e)),
        }
    }
    let cmds = touched
        .into_iter()
        .map(|entity| {
            let values = working.get(&entity).cloned().unwrap_or_default();
            super::commands::MetadataCommand::SetClientQuotas { entity, values }
        })
        .collect();
    (cmds, results)
}

/// How a DescribeClientQuotas filter component matches a part.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum MatchPart {
    /// This name exactly (match type 0).
    Exact(String),
    /// The default (match type 1).
    Default,
    /// Any name or the default (match type 2).
    Any,
}

/// The entities a DescribeClientQuotas filter selects, with their values. `strict`: the entity
/// has no part of a type the filter does not name.
pub fn describe(
    quotas: &BTreeMap<QuotaEntity, QuotaValues>,
    components: &[(String, i8, Option<String>)],
    strict: bool,
) -> Result<Vec<(QuotaEntity, QuotaValues)>, ApiError> {
    let mut user: Option<MatchPart> = None;
    let mut client: Option<MatchPart> = None;
    for (kind, match_type, name) in components {
        let part = match (match_type, name) {
            (0, Some(n)) => MatchPart::Exact(n.clone()),
            (0, None) => return Err(invalid("an EXACT match needs an entity name")),
            (1, _) => MatchPart::Default,
            (2, _) => MatchPart::Any,
            (other, _) => return Err(invalid(format!("unknown match type {other}"))),
        };
        let slot = match kind.as_str() {
            ENTITY_USER => &mut user,
            ENTITY_CLIENT_ID => &mut client,
            // No ip entity is ever stored: nothing matches.
            ENTITY_IP => return Ok(Vec::new()),
            other => return Err(invalid(format!("Custom entity type '{other}' not supported"))),
        };
        if slot.replace(part).is_some() {
            return Err(invalid(format!("Duplicate {kind} filter component entity type")));
        }
    }
    let fits = |want: &Option<MatchPart>, have: &Option<EntityName>| match (want, have) {
        (None, None) => true,
        (None, Some(_)) => !strict,
        (Some(_), None) => false,
        (Some(MatchPart::Any), Some(_)) => true,
        (Some(MatchPart::Default), Some(h)) => *h == EntityName::Default,
        (Some(MatchPart::Exact(n)), Some(h)) => *h == EntityName::Named(n.clone()),
    };
    Ok(quotas
        .iter()
        .filter(|(e, _)| fits(&user, &e.user) && fits(&client, &e.client_id))
        .map(|(e, v)| (e.clone(), v.clone()))
        .collect())
}

/// The entity parts usage is counted under: the user, the client id, or both.
pub type CountedAs = (Option<String>, Option<String>);

/// The quota that applies to `user`'s connection with `client_id` for `key`, and the entity the
/// usage is counted under (Kafka's default quota callback): the most specific entity that sets
/// `key`, in the order user+client, user+default client, user, default user+client, default
/// user+default client, default user, client, default client. Usage is counted per the parts
/// the matched entity has: a user quota is shared by all of that user's client ids.
pub fn resolve(
    quotas: &BTreeMap<QuotaEntity, QuotaValues>,
    user: &str,
    client_id: &str,
    key: &str,
) -> Option<(f64, CountedAs)> {
    use EntityName::{Default, Named};
    if quotas.is_empty() {
        return None;
    }
    let u = || Some(Named(user.to_string()));
    let c = || Some(Named(client_id.to_string()));
    let order = [
        (u(), c()),
        (u(), Some(Default)),
        (u(), None),
        (Some(Default), c()),
        (Some(Default), Some(Default)),
        (Some(Default), None),
        (None, c()),
        (None, Some(Default)),
    ];
    order.into_iter().find_map(|(user_part, client_part)| {
        let counted = (
            user_part.as_ref().map(|_| user.to_string()),
            client_part.as_ref().map(|_| client_id.to_string()),
        );
        let entity = QuotaEntity { user: user_part, client_id: client_part };
        quotas.get(&entity).and_then(|v| v.get(key)).map(|v| (v.0, counted))
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::metadata::commands::apply;
    use crate::metadata::image::MetadataImage;

    fn alteration(entity: &[(&str, Option<&str>)], ops: &[(&str, Option<f64>)]) -> QuotaAlteration {
        QuotaAlteration {
            entity: entity.iter().map(|(k, n)| (k.to_string(), n.map(String::from))).collect(),
            ops: ops.iter().map(|(k, v)| (k.to_string(), v.map(QuotaValue))).collect(),
        }
    }

    fn image_after(alterations: &[QuotaAlteration]) -> (MetadataImage, Vec<Option<ApiError>>) {
        let mut img = MetadataImage::default();
        let (cmds, results) = alter(&img.client_quotas, alterations);
        cmds.iter().for_each(|c| apply(&mut img, c));
        (img, results)
    }

    #[test]
    fn the_most_specific_entity_wins_and_usage_is_counted_by_its_parts() {
        let (img, results) = image_after(&[
            alteration(&[("user", None)], &[(PRODUCER_BYTE_RATE, Some(100.0))]),
            alteration(&[("user", Some("alice"))], &[(PRODUCER_BYTE_RATE, Some(200.0))]),
            alteration(
                &[("user", Some("alice")), ("client-id", Some("etl"))],
                &[(PRODUCER_BYTE_RATE, Some(300.0))],
            ),
            alteration(&[("client-id", None)], &[(CONSUMER_BYTE_RATE, Some(50.0))]),
        ]);
        assert!(results.iter().all(Option::is_none), "{results:?}");
        let q = &img.client_quotas;
        assert_eq!(
            resolve(q, "alice", "etl", PRODUCER_BYTE_RATE),
            Some((300.0, (Some("alice".into()), Some("etl".into()))))
        );
        assert_eq!(
            resolve(q, "alice", "web", PRODUCER_BYTE_RATE),
            Some((200.0, (Some("alice".into()), None)))
        );
        assert_eq!(
            resolve(q, "bob", "web", PRODUCER_BYTE_RATE),
            Some((100.0, (Some("bob".into()), None)))
        );
        assert_eq!(
            resolve(q, "bob", "web", CONSUMER_BYTE_RATE),
            Some((50.0, (None, Some("web".into()))))
        );
        assert_eq!(resolve(q, "bob", "web", REQUEST_PERCENTAGE), None);
        let json = serde_json::to_vec(&img).expect("encode");
        let back: MetadataImage = serde_json::from_slice(&json).expect("decode");
        assert_eq!(back.client_quotas, img.client_quotas);
    }

    #[test]
    fn removing_the_last_value_removes_the_entity_and_bad_entries_are_refused_alone() {
        let (mut img, _) = image_after(&[alteration(
            &[("client-id", Some("x"))],
            &[(REQUEST_PERCENTAGE, Some(25.0))],
        )]);
        let (cmds, results) = alter(
            &img.client_quotas,
            &[
                alteration(&[("client-id", Some("x"))], &[(REQUEST_PERCENTAGE, None)]),
                alteration(&[("user", Some("a"))], &[(PRODUCER_BYTE_RATE, Some(1.5))]),
                alteration(&[("user", Some("a"))], &[(PRODUCER_BYTE_RATE, Some(0.0))]),
                alteration(&[("user", Some("a"))], &[("controller_mutation_rate", Some(1.0))]),
                alteration(&[("ip", Some("1.2.3.4"))], &[("connection_creation_rate", Some(1.0))]),
                alteration(&[("user", None), ("user", Some("b"))], &[]),
                alteration(&[], &[]),
            ],
        );
        cmds.iter().for_each(|c| apply(&mut img, c));
        assert!(img.client_quotas.is_empty());
        assert!(results[0].is_none());
        for r in &results[1..] {
            assert_eq!(r.as_ref().map(|e| e.code), Some(ErrorCode::InvalidRequest), "{r:?}");
        }
    }

    #[test]
    fn describe_filters_match_exact_default_and_any_strictly_or_not() {
        let (img, _) = image_after(&[
            alteration(&[("user", Some("alice"))], &[(PRODUCER_BYTE_RATE, Some(1.0))]),
            alteration(&[("user", None)], &[(PRODUCER_BYTE_RATE, Some(2.0))]),
            alteration(
                &[("user", Some("alice")), ("client-id", Some("c"))],
                &[(PRODUCER_BYTE_RATE, Some(3.0))],
            ),
        ]);
        let q = &img.client_quotas;
        let count = |c: &[(&str, i8, Option<&str>)], strict| {
            let comps: Vec<(String, i8, Option<String>)> =
                c.iter().map(|(k, m, n)| (k.to_string(), *m, n.map(String::from))).collect();
            describe(q, &comps, strict).map(|v| v.len())
        };
        assert_eq!(count(&[("user", 0, Some("alice"))], false), Ok(2));
        assert_eq!(count(&[("user", 0, Some("alice"))], true), Ok(1));
        assert_eq!(count(&[("user", 1, None)], false), Ok(1));
        assert_eq!(count(&[("user", 2, None)], true), Ok(2));
        assert_eq!(count(&[], false), Ok(3));
        assert!(count(&[("user", 0, None)], false).is_err());
        assert!(count(&[("user", 2, None), ("user", 1, None)], false).is_err());
    }
}
