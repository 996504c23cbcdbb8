//! Principals, as Kafka names them (`User:alice`), and how a client certificate becomes one:
//! its subject in RFC 2253 form (Java's `X500Principal.getName()`, most specific attribute
//! first: `CN=alice,OU=eng,O=acme,C=US`), then `ssl.principal.mapping.rules` (KIP-371).
//!
//! Rules are Kafka's: a comma-separated list of `DEFAULT` (the whole DN) and
//! `RULE:pattern/replacement/[L|U]`; the first rule whose pattern matches the whole DN gives the
//! name (lower- or upper-cased with `L`/`U`). A DN no rule matches fails authentication.

use std::fmt;

use regex::Regex;

/// An authenticated identity: principal type (always `User` here) and name.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Principal {
    pub kind: String,
    pub name: String,
}

impl Principal {
    pub fn user(name: impl Into<String>) -> Self {
        Principal { kind: "User".into(), name: name.into() }
    }

    /// Kafka's `User:ANONYMOUS`: a PLAINTEXT connection, or TLS without a client certificate.
    pub fn anonymous() -> Self {
        Principal::user("ANONYMOUS")
    }
}

impl fmt::Display for Principal {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}:{}", self.kind, self.name)
    }
}

/// A parsed `ssl.principal.mapping.rules`.
#[derive(Debug, Clone)]
pub struct PrincipalRules {
    rules: Vec<Rule>,
}

#[derive(Debug, Clone)]
enum Rule {
    Default,
    Map { whole: Regex, pattern: Regex, replacement: String, case: Case },
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Case {
    Keep,
    Lower,
    Upper,
}

impl Default for PrincipalRules {
    fn default() -> Self {
        PrincipalRules { rules: vec![Rule::Default] }
    }
}

impl PrincipalRules {
    /// Parses Kafka's rule list.
    pub fn parse(text: &str) -> Result<Self, String> {
        let mut rules = Vec::new();
        for rule in split_rules(text)? {
            if rule == "DEFAULT" {
                rules.push(Rule::Default);
                continue;
            }
            let Some(body) = rule.strip_prefix("RULE:") else {
                return Err(format!(
                    "invalid rule '{rule}': expected DEFAULT or RULE:pattern/replacement/[LU]"
                ));
            };
            let (pattern, rest) =
                split_unescaped_slash(body).ok_or_else(|| format!("invalid rule '{rule}'"))?;
            let (replacement, flags) =
                split_unescaped_slash(rest).ok_or_else(|| format!("invalid rule '{rule}'"))?;
            let case = match flags {
                "" => Case::Keep,
                "L" => Case::Lower,
                "U" => Case::Upper,
                other => {
                    return Err(format!("invalid rule '{rule}': unknown flag '{other}' (L or U)"));
                }
            };
            let compiled = |p: &str| {
                Regex::new(p).map_err(|e| format!("invalid pattern in rule '{rule}': {e}"))
            };
            let pattern_text = pattern.replace("\\/", "/");
            rules.push(Rule::Map {
                whole: compiled(&format!("^(?:{pattern_text})$"))?,
                pattern: compiled(&pattern_text)?,
                replacement: java_replacement(&replacement.replace("\\/", "/")),
                case,
            });
        }
        Ok(PrincipalRules { rules })
    }

    /// The principal name for certificate subject `dn`, or `None` when no rule matches.
    pub fn name_for(&self, dn: &str) -> Option<String> {
        self.rules.iter().find_map(|rule| match rule {
            Rule::Default => Some(dn.to_string()),
            Rule::Map { whole, pattern, replacement, case } => {
                if !whole.is_match(dn) {
                    return None;
                }
                let name = pattern.replace_all(dn, replacement.as_str()).into_owned();
                Some(match case {
                    Case::Keep => name,
                    Case::Lower => name.to_lowercase(),
                    Case::Upper => name.to_uppercase(),
                })
            }
        })
    }
}

/// Splits the rule list at the commas between rules (a pattern may hold commas: the split
/// follows each rule's `RULE:pattern/replacement/flags` shape, as Kafka's splitter does).
fn split_rules(text: &str) -> Result<Vec<String>, String> {
    let mut out = Vec::new();
    let mut rest = text.trim();
    while !rest.is_empty() {
        let end = if let Some(body) = rest.strip_prefix("RULE:") {
            let (_, after_pattern) = split_unescaped_slash(body).ok_or_else(|| {
                format!("invalid rule '{rest}': expected RULE:pattern/replacement/[LU]")
            })?;
            let (_, flags_and_more) = split_unescaped_slash(after_pattern).ok_or_else(|| {
                format!("invalid rule '{rest}': expected RULE:pattern/replacement/[LU]")
            })?;
            let flags_at = rest.len() - flags_and_more.len();
            flags_at + flags_and_more.find(',').unwrap_or(flags_and_more.len())
        } else {
            rest.find(',').unwrap_or(rest.len())
        };
        let rule = rest[..end].trim();
        if !rule.is_empty() {
            out.push(rule.to_string());
        }
        rest = rest[end..].trim_start_matches(',').trim_start();
    }
    Ok(out)
}

/// Splits at the first `/` not preceded by a backslash.
fn split_unescaped_slash(s: &str) -> Option<(&str, &str)> {
    let bytes = s.as_bytes();
    let mut i = 0;
    while i < bytes.len() {
        match bytes[i] {
            b'\\' => i += 2,
            b'/' => return Some((&s[..i], &s[i + 1..])),
            _ => i += 1,
        }
    }
    None
}

/// Java's replacement syntax (`$1`, `\$` for a literal dollar) in the regex crate's (`${1}`,
/// `$$`).
fn java_replacement(java: &str) -> String {
    let mut out = String::new();
    let mut chars = java.chars().peekable();
    while let Some(c) = chars.next() {
        match c {
            '\\' => match chars.next() {
                Some('$') => out.push_str("$$"),
                Some(other) => out.push(other),
                None => {}
            },
            '$' if chars.peek().is_some_and(char::is_ascii_digit) => {
                let mut n = String::new();
                while let Some(d) = chars.peek().copied().filter(char::is_ascii_digit) {
                    n.push(d);
                    chars.next();
                }
                out.push_str(&format!("${{{n}}}"));
            }
            '$' => out.push_str("$$"),
            other => out.push(other),
        }
    }
    out
}

/// The principal a TLS peer's first certificate maps to through `rules` (`User:ANONYMOUS`
/// without a certificate), or why no rule maps it.
pub fn certificate_principal(
    cert: Option<&[u8]>,
    rules: &PrincipalRules,
) -> Result<Principal, String> {
    let Some(cert) = cert else { return Ok(Principal::anonymous()) };
    let dn = subject_dn(cert).unwrap_or_default();
    rules.name_for(&dn).map(Principal::user).ok_or_else(|| {
        format!("no ssl.principal.mapping.rules rule matches the client certificate subject {dn}")
    })
}

/// The subject of DER certificate `cert` in RFC 2253 form, as Java prints it.
pub fn subject_dn(cert: &[u8]) -> Option<String> {
    let (_, cert) = x509_parser::parse_x509_certificate(cert).ok()?;
    let rdns: Vec<String> = cert
        .subject()
        .iter()
        .map(|rdn| {
            rdn.iter()
                .map(|atv| {
                    let oid = atv.attr_type().to_id_string();
                    let value = atv.as_str().map(escape_value);
                    match (keyword(&oid), value) {
                        (Some(k), Ok(v)) => format!("{k}={v}"),
                        (None, Ok(v)) => format!("{oid}={v}"),
                        (k, Err(_)) => {
                            let hex: String =
                                atv.attr_value().data.iter().map(|b| format!("{b:02x}")).collect();
                            format!("{}=#{hex}", k.unwrap_or(&oid))
                        }
                    }
                })
                .collect::<Vec<_>>()
                .join("+")
        })
        .collect();
    Some(rdns.into_iter().rev().collect::<Vec<_>>().join(","))
}

/// The attribute keywords RFC 2253 (and Java) print by name.
fn keyword(oid: &str) -> Option<&'static str> {
    Some(match oid {
        "2.5.4.3" => "CN",
        "2.5.4.6" => "C",
        "2.5.4.7" => "L",
        "2.5.4.8" => "ST",
        "2.5.4.9" => "STREET",
        "2.5.4.10" => "O",
        "2.5.4.11" => "OU",
        "0.9.2342.19200300.100.1.25" => "DC",
        "0.9.2342.19200300.100.1.1" => "UID",
        _ => return None,
    })
}

/// RFC 2253 escaping of an attribute value.
fn escape_value(v: &str) -> String {
    let mut out = String::with_capacity(v.len());
    let last = v.chars().count().saturating_sub(1);
    for (i, c) in v.chars().enumerate() {
        let special = matches!(c, ',' | '+' | '"' | '\\' | '<' | '>' | ';')
            || (i == 0 && (c == '#' || c == ' '))
            || (i == last && c == ' ');
        if special {
            out.push('\\');
        }
        out.push(c);
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Kafka's own examples (SslPrincipalMapperTest, the `ssl.principal.mapping.rules` docs).
    #[test]
    fn rules_map_subjects_as_kafka_does() {
        let rules = PrincipalRules::parse(
            "RULE:^CN=(.*?),OU=ServiceUsers.*$/$1/, RULE:^CN=(.*?),OU=(.*?),O=(.*?),L=(.*?),ST=(.*?),C=(.*?)$/$1@$2/L, RULE:^.*[Cc][Nn]=([a-zA-Z0-9.]*).*$/$1/U, DEFAULT",
        )
        .expect("parses");
        assert_eq!(
            rules.name_for("CN=kafka-server1,OU=ServiceUsers,O=Org,C=US").as_deref(),
            Some("kafka-server1")
        );
        assert_eq!(
            rules
                .name_for("CN=Duke,OU=JavaSoft,O=Sun Microsystems,L=Palo Alto,ST=CA,C=US")
                .as_deref(),
            Some("duke@javasoft")
        );
        assert_eq!(rules.name_for("OU=x,cn=alice.b,O=y").as_deref(), Some("ALICE.B"));
        assert_eq!(rules.name_for("O=nobody").as_deref(), Some("O=nobody"));
        let strict = PrincipalRules::parse("RULE:^CN=([^,]*),O=acme$/$1/").expect("parses");
        assert_eq!(strict.name_for("CN=bob,O=acme").as_deref(), Some("bob"));
        assert_eq!(strict.name_for("CN=bob,O=other"), None);
        assert_eq!(PrincipalRules::default().name_for("CN=x").as_deref(), Some("CN=x"));
    }

    #[test]
    fn malformed_rules_are_refused() {
        for bad in ["RULE:^CN=(.*)$", "RULE:^CN=(.*)$/$1/X", "RULE:(/$1/", "NOPE"] {
            assert!(PrincipalRules::parse(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn values_are_escaped_as_rfc_2253_says() {
        assert_eq!(escape_value("a,b+c"), "a\\,b\\+c");
        assert_eq!(escape_value("#x "), "\\#x\\ ");
        assert_eq!(java_replacement("$1@$2\\$"), "${1}@${2}$$");
    }
}
