//! Keeping secrets from the model: every text sent to a provider passes through a
//! [`Redactor`], which replaces the values of the cluster's secret config properties (every
//! version of them, service layer and host overrides), the providers' keys, and anything
//! shaped like one of bigmgr's own secrets (`bmt_`, `bmj_`, `bma_` followed by hex
//! digits) with [`REDACTED`]. Log lines and tool answers are redacted like everything else.

use crate::model::ServiceConfigs;
use crate::stack::ServiceDef;
use serde_json::Value;

/// What a secret reads as in anything sent to a model.
pub const REDACTED: &str = "[redacted]";

/// The shortest secret value replaced wherever it appears: a shorter one would blank out
/// ordinary words; such values are still masked where configs are shown.
pub const MIN_SECRET_LEN: usize = 4;

/// The prefixes of bigmgr's own random secrets (API tokens, join tokens, agent credentials).
const TOKEN_PREFIXES: &[&str] = &["bmt_", "bmj_", "bma_"];

/// Replaces known secret values, and token-shaped text, in texts.
#[derive(Debug, Clone, Default)]
pub struct Redactor {
    secrets: Vec<String>,
}

impl Redactor {
    /// A redactor of these values (short and empty ones are left out).
    pub fn new(values: impl IntoIterator<Item = String>) -> Redactor {
        let mut r = Redactor::default();
        r.extend(values);
        r
    }

    /// Adds values.
    pub fn extend(&mut self, values: impl IntoIterator<Item = String>) {
        self.secrets
            .extend(values.into_iter().filter(|v| v.len() >= MIN_SECRET_LEN));
        // Longest first, so a secret containing another is replaced whole.
        self.secrets
            .sort_by(|a, b| b.len().cmp(&a.len()).then(a.cmp(b)));
        self.secrets.dedup();
    }

    /// Adds every value `other` replaces (to redact for several clusters at once).
    pub fn absorb(&mut self, other: &Redactor) {
        self.extend(other.secrets.iter().cloned());
    }

    /// Adds the values of `def`'s secret properties in `configs`.
    pub fn add_configs(&mut self, def: &ServiceDef, configs: &ServiceConfigs) {
        let mut found = Vec::new();
        for ct in &def.configs {
            let Some(values) = configs.get(&ct.name) else {
                continue;
            };
            for p in ct.properties.iter().filter(|p| p.secret) {
                if let Some(v) = values.get(&p.name) {
                    found.push(match v {
                        Value::String(s) => s.clone(),
                        other => other.to_string(),
                    });
                }
            }
        }
        self.extend(found);
    }

    /// How many values it replaces.
    pub fn len(&self) -> usize {
        self.secrets.len()
    }

    /// Whether it replaces no value (token-shaped text is replaced all the same).
    pub fn is_empty(&self) -> bool {
        self.secrets.is_empty()
    }

    /// `text` with every secret replaced.
    pub fn redact(&self, text: &str) -> String {
        let mut out = text.to_string();
        for s in &self.secrets {
            if out.contains(s.as_str()) {
                out = out.replace(s.as_str(), REDACTED);
            }
        }
        redact_tokens(&out)
    }

    /// Every string in a JSON value redacted (keys too).
    pub fn redact_json(&self, v: &Value) -> Value {
        match v {
            Value::String(s) => Value::String(self.redact(s)),
            Value::Array(a) => Value::Array(a.iter().map(|v| self.redact_json(v)).collect()),
            Value::Object(o) => Value::Object(
                o.iter()
                    .map(|(k, v)| (self.redact(k), self.redact_json(v)))
                    .collect(),
            ),
            other => other.clone(),
        }
    }
}

/// `text` with every token-shaped word (a prefix of [`TOKEN_PREFIXES`] and 64 hex digits)
/// replaced.
fn redact_tokens(text: &str) -> String {
    if !TOKEN_PREFIXES.iter().any(|p| text.contains(p)) {
        return text.to_string();
    }
    let mut out = String::with_capacity(text.len());
    let mut rest = text;
    'scan: while !rest.is_empty() {
        for p in TOKEN_PREFIXES {
            if let Some(tail) = rest.strip_prefix(p) {
                let hex = tail.bytes().take_while(u8::is_ascii_hexdigit).count();
                if hex >= 32 {
                    out.push_str(REDACTED);
                    rest = &tail[hex..];
                    continue 'scan;
                }
            }
        }
        let c = rest.chars().next().unwrap_or_default();
        out.push(c);
        rest = &rest[c.len_utf8()..];
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn secrets_and_tokens_are_replaced_everywhere() {
        let r = Redactor::new(["hunter22".to_string(), "ab".to_string(), "hunter2".into()]);
        assert_eq!(r.len(), 2, "short values are left out");
        assert_eq!(
            r.redact("AUTH hunter22 failed; hunter2 too"),
            "AUTH [redacted] failed; [redacted] too"
        );
        let token = format!("bmt_{}", "a1".repeat(32));
        assert_eq!(
            r.redact(&format!("token={token}, ok")),
            "token=[redacted], ok"
        );
        assert_eq!(r.redact("bmt_short stays"), "bmt_short stays");
        let v = r.redact_json(&json!({"log": ["x hunter22 y"], "n": 1, "hunter22": true}));
        assert_eq!(
            v,
            json!({"log": ["x [redacted] y"], "n": 1, "[redacted]": true})
        );
        assert_eq!(r.redact("héllo wörld"), "héllo wörld");
        let mut all = Redactor::new(["other-secret".to_string()]);
        all.absorb(&r);
        assert_eq!(all.redact("hunter22 other-secret"), "[redacted] [redacted]");
    }
}
