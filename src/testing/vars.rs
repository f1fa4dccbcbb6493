//! Variables: `{{name}}` in any string of a step, filled from (later wins) the suite's
//! `variables`, `--var k=v`, and the captures of earlier steps; `{{env.NAME}}` reads the
//! environment. A value written `vault:NAME` is a vault reference: the caller resolves it
//! before the run ([`vault_references`]) and hands the values in as secrets, which every
//! result text passes through [`Vars::redact`] to hide.

use std::collections::BTreeMap;

/// Where a `vault:NAME` value points.
pub const VAULT_PREFIX: &str = "vault:";

#[derive(Clone, Default)]
pub struct Vars {
    values: BTreeMap<String, String>,
    /// Secret values (resolved vault references), longest first so a secret containing
    /// another is hidden whole.
    secrets: Vec<String>,
}

impl std::fmt::Debug for Vars {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Vars")
            .field("names", &self.values.keys().collect::<Vec<_>>())
            .field("secrets", &self.secrets.len())
            .finish()
    }
}

/// The vault names `values` refer to (`vault:NAME`), each once.
pub fn vault_references<'a>(values: impl IntoIterator<Item = &'a String>) -> Vec<String> {
    let mut names: Vec<String> = values
        .into_iter()
        .filter_map(|v| v.strip_prefix(VAULT_PREFIX))
        .map(|n| n.trim().to_string())
        .collect();
    names.sort();
    names.dedup();
    names
}

impl Vars {
    /// `values` as given (suite variables overridden by `--var`); each `vault:NAME` value is
    /// replaced by `secrets[NAME]`, which must be there.
    pub fn new(
        values: BTreeMap<String, String>,
        secrets: &BTreeMap<String, String>,
    ) -> Result<Vars, String> {
        let mut out = Vars::default();
        for (k, v) in values {
            let v = match v.strip_prefix(VAULT_PREFIX) {
                Some(name) => {
                    let name = name.trim();
                    let s = secrets.get(name).ok_or_else(|| {
                        format!("variable `{k}`: vault secret `{name}` was not resolved")
                    })?;
                    out.add_secret(s);
                    s.clone()
                }
                None => v,
            };
            out.values.insert(k, v);
        }
        Ok(out)
    }

    fn add_secret(&mut self, s: &str) {
        if !s.is_empty() && !self.secrets.iter().any(|x| x == s) {
            self.secrets.push(s.to_string());
            self.secrets.sort_by_key(|x| std::cmp::Reverse(x.len()));
        }
    }

    pub fn set(&mut self, name: &str, value: String) {
        // A capture that carries a secret stays hidden too.
        if self.secrets.iter().any(|s| value.contains(s.as_str())) {
            self.add_secret(&value);
        }
        self.values.insert(name.to_string(), value);
    }

    pub fn get(&self, name: &str) -> Option<&str> {
        self.values.get(name).map(String::as_str)
    }

    /// `text` with every `{{name}}` filled; an unknown name is an error naming it.
    pub fn fill(&self, text: &str) -> Result<String, String> {
        let mut out = String::with_capacity(text.len());
        let mut rest = text;
        while let Some(i) = rest.find("{{") {
            out.push_str(&rest[..i]);
            let after = &rest[i + 2..];
            let j = after
                .find("}}")
                .ok_or_else(|| format!("unclosed `{{{{` in `{}`", self.redact(text)))?;
            let name = after[..j].trim();
            let value = match name.strip_prefix("env.") {
                Some(env) => std::env::var(env)
                    .map_err(|_| format!("environment variable `{env}` is not set"))?,
                None => self
                    .get(name)
                    .ok_or_else(|| format!("unknown variable `{name}`"))?
                    .to_string(),
            };
            out.push_str(&value);
            rest = &after[j + 2..];
        }
        out.push_str(rest);
        Ok(out)
    }

    /// Fills every string inside a JSON value.
    pub fn fill_json(&self, v: &serde_json::Value) -> Result<serde_json::Value, String> {
        use serde_json::Value;
        Ok(match v {
            Value::String(s) => Value::String(self.fill(s)?),
            Value::Array(a) => Value::Array(
                a.iter()
                    .map(|x| self.fill_json(x))
                    .collect::<Result<_, _>>()?,
            ),
            Value::Object(o) => Value::Object(
                o.iter()
                    .map(|(k, x)| Ok((k.clone(), self.fill_json(x)?)))
                    .collect::<Result<_, String>>()?,
            ),
            other => other.clone(),
        })
    }

    /// `text` with every secret value replaced by `[redacted]`.
    pub fn redact(&self, text: &str) -> String {
        let mut t = text.to_string();
        for s in &self.secrets {
            if t.contains(s.as_str()) {
                t = t.replace(s.as_str(), "[redacted]");
            }
        }
        t
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn variables_fill_and_unknown_ones_are_named() {
        let v = Vars::new(
            BTreeMap::from([("a".into(), "1".into()), ("b".into(), "x".into())]),
            &BTreeMap::new(),
        )
        .unwrap();
        assert_eq!(v.fill("{{a}}-{{ b }}").unwrap(), "1-x");
        assert_eq!(v.fill("{{nope}}").unwrap_err(), "unknown variable `nope`");
        assert!(v.fill("{{a").is_err());
    }

    #[test]
    fn vault_values_are_redacted_wherever_they_land() {
        let values = BTreeMap::from([("key".into(), "vault:API_KEY".into())]);
        assert_eq!(vault_references(values.values()), vec!["API_KEY"]);
        let secrets = BTreeMap::from([("API_KEY".into(), "s3cr3t-value".into())]);
        let mut v = Vars::new(values.clone(), &secrets).unwrap();
        assert_eq!(v.fill("Bearer {{key}}").unwrap(), "Bearer s3cr3t-value");
        assert_eq!(v.redact("got s3cr3t-value back"), "got [redacted] back");
        v.set("echo", "prefix s3cr3t-value".into());
        assert_eq!(v.redact("prefix s3cr3t-value"), "[redacted]");
        assert!(Vars::new(values, &BTreeMap::new()).is_err());
        assert!(!format!("{v:?}").contains("s3cr3t"));
    }
}
