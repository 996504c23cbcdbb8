//! JAAS configuration lines as Kafka takes them in `sasl.jaas.config`:
//! `<LoginModule class> <required|requisite|sufficient|optional> key="value" ... ;`
//! (values quoted with `"`, backslash escapes inside; unquoted values are single tokens).
//!
//! Invariant: parse errors name the position and what was expected, never a value (a JAAS line
//! holds passwords).

use std::collections::BTreeMap;
use std::fmt;

/// One login module entry of a JAAS line.
#[derive(Clone, PartialEq, Eq)]
pub struct JaasEntry {
    pub module: String,
    pub flag: String,
    pub options: BTreeMap<String, String>,
}

impl fmt::Debug for JaasEntry {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("JaasEntry")
            .field("module", &self.module)
            .field("flag", &self.flag)
            .field("options", &self.options.keys().collect::<Vec<_>>())
            .finish()
    }
}

const FLAGS: &[&str] = &["required", "requisite", "sufficient", "optional"];

/// Parses a JAAS line into its entries (Kafka allows exactly one; more are refused by callers).
pub fn parse(text: &str) -> Result<Vec<JaasEntry>, String> {
    let mut tokens = Tokens { chars: text.chars().collect(), at: 0 };
    let mut entries = Vec::new();
    loop {
        tokens.skip_space();
        if tokens.done() {
            break;
        }
        let module = tokens.word().ok_or_else(|| tokens.expected("a login module class name"))?;
        tokens.skip_space();
        let flag = tokens
            .word()
            .filter(|f| FLAGS.contains(&f.to_lowercase().as_str()))
            .ok_or_else(|| tokens.expected("required, requisite, sufficient or optional"))?;
        let mut options = BTreeMap::new();
        loop {
            tokens.skip_space();
            if tokens.eat(';') {
                break;
            }
            let key = tokens.word().ok_or_else(|| tokens.expected("an option name or ';'"))?;
            tokens.skip_space();
            if !tokens.eat('=') {
                return Err(tokens.expected("'=' after an option name"));
            }
            tokens.skip_space();
            let value = tokens.value().ok_or_else(|| tokens.expected("an option value"))?;
            options.insert(key, value);
        }
        entries.push(JaasEntry { module, flag: flag.to_lowercase(), options });
    }
    if entries.is_empty() {
        return Err("the JAAS line holds no login module".into());
    }
    Ok(entries)
}

struct Tokens {
    chars: Vec<char>,
    at: usize,
}

impl Tokens {
    fn done(&self) -> bool {
        self.at >= self.chars.len()
    }

    fn skip_space(&mut self) {
        while self.chars.get(self.at).is_some_and(|c| c.is_whitespace()) {
            self.at += 1;
        }
    }

    fn eat(&mut self, c: char) -> bool {
        if self.chars.get(self.at) == Some(&c) {
            self.at += 1;
            true
        } else {
            false
        }
    }

    fn word(&mut self) -> Option<String> {
        let start = self.at;
        while self
            .chars
            .get(self.at)
            .is_some_and(|c| c.is_alphanumeric() || matches!(c, '.' | '_' | '-' | '$'))
        {
            self.at += 1;
        }
        (self.at > start).then(|| self.chars[start..self.at].iter().collect())
    }

    fn value(&mut self) -> Option<String> {
        if !self.eat('"') {
            return self.word();
        }
        let mut out = String::new();
        loop {
            match self.chars.get(self.at).copied() {
                None => return None,
                Some('"') => {
                    self.at += 1;
                    return Some(out);
                }
                Some('\\') => {
                    out.push(*self.chars.get(self.at + 1)?);
                    self.at += 2;
                }
                Some(c) => {
                    out.push(c);
                    self.at += 1;
                }
            }
        }
    }

    fn expected(&self, what: &str) -> String {
        format!("malformed JAAS line at character {}: expected {what}", self.at + 1)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn kafkas_plain_server_line_parses() {
        let line = r#"org.apache.kafka.common.security.plain.PlainLoginModule required
            username="admin" password="admin-secret" user_admin="admin-secret" user_alice="al\"ice";"#;
        let e = parse(line).expect("parses");
        assert_eq!(e.len(), 1);
        assert_eq!(e[0].module, "org.apache.kafka.common.security.plain.PlainLoginModule");
        assert_eq!(e[0].options["user_alice"], "al\"ice");
        assert_eq!(e[0].options["username"], "admin");
    }

    #[test]
    fn malformed_lines_say_where_without_the_values() {
        for bad in [
            "",
            "Module",
            "Module maybe a=\"b\";",
            "M required a=\"unterminated",
            "M required a b;",
        ] {
            let err = parse(bad).expect_err(bad);
            assert!(!err.contains("unterminated"), "{err}");
        }
    }
}
