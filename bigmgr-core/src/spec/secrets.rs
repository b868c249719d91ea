//! Secrets in a spec given by reference — `password = { env = "ZK_PASSWORD" }` or
//! `{ file = "secrets/zk" }` — so the file never needs them in clear. The frontend that reads
//! the file resolves them where the operator runs it ([`Parsed::local_secrets`]) and sends the
//! values beside the text; core puts them in place ([`Parsed::resolve`]) before checking.

use super::{Parsed, Problem, SpecService};
use serde_json::Value;
use std::collections::BTreeMap;
use std::path::Path;

/// The most a referenced secret may hold.
pub const MAX_SECRET_BYTES: usize = 64 * 1024;

/// The most secrets one request may carry.
pub const MAX_SECRETS: usize = 1000;

/// Where a secret comes from.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
pub enum Reference {
    /// An environment variable of whoever applies the spec.
    Env(String),
    /// A file, relative to the spec's directory unless absolute; one trailing newline is
    /// dropped.
    File(String),
}

impl Reference {
    /// The reference a config value is, if it is one: a table with one key, `env` or
    /// `file`, naming a string. (No property type is a table, so nothing else is one.)
    pub fn of(v: &Value) -> Option<Reference> {
        let map = v.as_object()?;
        if map.len() != 1 {
            return None;
        }
        let (k, v) = map.iter().next()?;
        let v = v.as_str()?.to_string();
        match k.as_str() {
            "env" => Some(Reference::Env(v)),
            "file" => Some(Reference::File(v)),
            _ => None,
        }
    }

    /// The key of its value in a request's secrets: `env:NAME` or `file:PATH`.
    pub fn key(&self) -> String {
        match self {
            Reference::Env(n) => format!("env:{n}"),
            Reference::File(p) => format!("file:{p}"),
        }
    }

    /// The value as a spec writes it.
    pub fn to_value(&self) -> Value {
        match self {
            Reference::Env(n) => serde_json::json!({ "env": n }),
            Reference::File(p) => serde_json::json!({ "file": p }),
        }
    }

    /// What is wrong with the reference itself, if anything.
    fn check(&self) -> Result<(), String> {
        match self {
            Reference::Env(n) => {
                let ok = !n.is_empty()
                    && n.len() <= 128
                    && !n.starts_with(|c: char| c.is_ascii_digit())
                    && n.chars().all(|c| c.is_ascii_alphanumeric() || c == '_');
                if ok {
                    Ok(())
                } else {
                    Err(format!(
                        "'{n}' is not an environment variable name: letters, digits and _, \
                         not starting with a digit, at most 128"
                    ))
                }
            }
            Reference::File(p) => {
                if p.is_empty() || p.len() > 4096 || p.contains('\0') {
                    Err("a secret file's path must be 1 to 4096 characters, without NUL".into())
                } else {
                    Ok(())
                }
            }
        }
    }

    /// Reads the value where the spec is applied from: the environment, or the file
    /// (relative to `base`).
    pub fn read_locally(&self, base: &Path) -> Result<String, String> {
        match self {
            Reference::Env(n) => std::env::var(n).map_err(|_| {
                format!(
                    "the environment variable {n} is not set (or not UTF-8): set it to the secret"
                )
            }),
            Reference::File(p) => {
                let path = base.join(p);
                let meta = std::fs::metadata(&path)
                    .map_err(|e| format!("cannot read secret file {}: {e}", path.display()))?;
                if meta.len() > MAX_SECRET_BYTES as u64 {
                    return Err(format!(
                        "secret file {} holds {} bytes; at most {MAX_SECRET_BYTES}",
                        path.display(),
                        meta.len()
                    ));
                }
                let text = std::fs::read_to_string(&path)
                    .map_err(|e| format!("cannot read secret file {}: {e}", path.display()))?;
                let text = text.strip_suffix('\n').unwrap_or(&text);
                Ok(text.strip_suffix('\r').unwrap_or(text).to_string())
            }
        }
    }
}

/// Every config value of a service (service layer and host overrides) with its path.
fn values_mut(s: &mut SpecService) -> impl Iterator<Item = (Vec<String>, &mut Value)> {
    let layer = s.configs.iter_mut().flat_map(|(ty, props)| {
        props
            .iter_mut()
            .map(move |(p, v)| (vec!["configs".to_string(), ty.clone(), p.clone()], v))
    });
    let hosts = s.host_overrides.iter_mut().flat_map(|(h, layer)| {
        layer.iter_mut().flat_map(move |(ty, props)| {
            let h = h.clone();
            props.iter_mut().map(move |(p, v)| {
                let path = vec!["host_overrides".into(), h.clone(), ty.clone(), p.clone()];
                (path, v)
            })
        })
    });
    layer.chain(hosts)
}

impl Parsed {
    /// Every secret reference of the spec, with the path of its value
    /// (`services.zk.configs.zoo.cfg.password`) and its line.
    pub fn references(&self) -> Vec<(Problem, Reference)> {
        let mut spec = self.spec.clone();
        let mut out = Vec::new();
        for (name, s) in spec.services.iter_mut() {
            for (path, v) in values_mut(s) {
                if let Some(r) = Reference::of(v) {
                    let mut at = vec!["services", name.as_str()];
                    at.extend(path.iter().map(String::as_str));
                    out.push((self.problem(&at, ""), r));
                }
            }
        }
        out
    }

    /// The values of the spec's references, read where it is applied from (`base`: the
    /// spec file's directory): for a frontend to send beside the text. Every reference that
    /// cannot be read is a problem with its line.
    pub fn local_secrets(&self, base: &Path) -> Result<BTreeMap<String, String>, Vec<Problem>> {
        let mut values = BTreeMap::new();
        let mut problems = Vec::new();
        for (mut at, r) in self.references() {
            if values.contains_key(&r.key()) {
                continue;
            }
            match r.check().and_then(|()| r.read_locally(base)) {
                Ok(v) => {
                    values.insert(r.key(), v);
                }
                Err(m) => {
                    at.message = m;
                    problems.push(at);
                }
            }
        }
        if problems.is_empty() {
            Ok(values)
        } else {
            Err(problems)
        }
    }

    /// Puts the values of `secrets` (by [`Reference::key`]) in place of the spec's
    /// references. A reference without a value, a malformed one, or too many or too large
    /// secrets are problems; values nobody references are ignored.
    pub fn resolve(&mut self, secrets: &BTreeMap<String, String>) -> Result<(), Vec<Problem>> {
        let mut problems = Vec::new();
        if secrets.len() > MAX_SECRETS {
            problems.push(Problem {
                line: 0,
                path: "secrets".into(),
                message: format!("{} secrets; at most {MAX_SECRETS}", secrets.len()),
            });
        }
        if let Some((k, _)) = secrets.iter().find(|(_, v)| v.len() > MAX_SECRET_BYTES) {
            problems.push(Problem {
                line: 0,
                path: "secrets".into(),
                message: format!("the secret {k} is longer than {MAX_SECRET_BYTES} bytes"),
            });
        }
        let mut found = Vec::new();
        for (name, s) in self.spec.services.iter_mut() {
            for (path, v) in values_mut(s) {
                let Some(r) = Reference::of(v) else { continue };
                let mut at = vec!["services".to_string(), name.clone()];
                at.extend(path);
                match r.check().and_then(|()| {
                    secrets.get(&r.key()).cloned().ok_or_else(|| {
                        format!(
                            "the secret {} has no value: `bigmgr plan|apply` read it where they \
                             run; through REST give it in `secrets` under \"{}\"",
                            r.key(),
                            r.key()
                        )
                    })
                }) {
                    Ok(value) => *v = Value::String(value),
                    Err(m) => found.push((at, m)),
                }
            }
        }
        for (at, m) in found {
            let at: Vec<&str> = at.iter().map(String::as_str).collect();
            problems.push(self.problem(&at, m));
        }
        problems.sort_by_key(|p| p.line);
        if problems.is_empty() {
            Ok(())
        } else {
            Err(problems)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::spec::parse;

    const SPEC: &str = r#"cluster = "c"

[services.db]
stack = "infra"
service = "mariadb"
configs = { "my.cnf" = { root_password = { env = "DB_ROOT" } } }

[services.db.host_overrides.h2."my.cnf"]
root_password = { file = "secrets/h2" }
"#;

    #[test]
    fn references_are_found_resolved_and_missing_ones_named_by_line() {
        let mut parsed = parse(SPEC).unwrap();
        let refs: Vec<(usize, String)> = parsed
            .references()
            .into_iter()
            .map(|(p, r)| (p.line, r.key()))
            .collect();
        assert_eq!(
            refs,
            [(6, "env:DB_ROOT".into()), (9, "file:secrets/h2".into())]
        );
        let only_env = BTreeMap::from([("env:DB_ROOT".to_string(), "s3cret".to_string())]);
        let problems = parsed.clone().resolve(&only_env).unwrap_err();
        assert_eq!(problems.len(), 1, "{problems:?}");
        assert_eq!(problems[0].line, 9);
        assert_eq!(
            problems[0].path,
            "services.db.host_overrides.h2.my.cnf.root_password"
        );
        assert!(problems[0].message.contains("file:secrets/h2"));
        let mut both = only_env.clone();
        both.insert("file:secrets/h2".into(), "other".into());
        parsed.resolve(&both).unwrap();
        let db = &parsed.spec.services["db"];
        assert_eq!(db.configs["my.cnf"]["root_password"], "s3cret");
        assert_eq!(db.host_overrides["h2"]["my.cnf"]["root_password"], "other");
    }

    #[test]
    fn local_secrets_read_the_environment_and_files_beside_the_spec() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::create_dir(dir.path().join("secrets")).unwrap();
        std::fs::write(dir.path().join("secrets/h2"), "from a file\n").unwrap();
        let parsed = parse(&SPEC.replace("DB_ROOT", "BIGMGR_SPEC_TEST_UNSET_VAR")).unwrap();
        let problems = parsed.local_secrets(dir.path()).unwrap_err();
        assert_eq!(problems.len(), 1, "{problems:?}");
        assert!(
            problems[0]
                .message
                .contains("BIGMGR_SPEC_TEST_UNSET_VAR is not set"),
            "{problems:?}"
        );
        // PATH is set in every test environment.
        let parsed = parse(&SPEC.replace("DB_ROOT", "PATH")).unwrap();
        let values = parsed.local_secrets(dir.path()).unwrap();
        assert_eq!(values["file:secrets/h2"], "from a file");
        assert_eq!(values["env:PATH"], std::env::var("PATH").unwrap());
    }

    #[test]
    fn malformed_references_and_oversized_secrets_are_refused() {
        let mut parsed = parse(&SPEC.replace("DB_ROOT", "1; rm -rf /")).unwrap();
        let secrets = BTreeMap::from([
            ("env:1; rm -rf /".to_string(), "x".to_string()),
            (
                "file:secrets/h2".to_string(),
                "y".repeat(MAX_SECRET_BYTES + 1),
            ),
        ]);
        let problems = parsed.resolve(&secrets).unwrap_err();
        let messages: Vec<&str> = problems.iter().map(|p| p.message.as_str()).collect();
        assert!(
            messages
                .iter()
                .any(|m| m.contains("not an environment variable name")),
            "{messages:?}"
        );
        assert!(
            messages.iter().any(|m| m.contains("longer than")),
            "{messages:?}"
        );
    }

    #[test]
    fn only_one_key_tables_of_env_or_file_are_references() {
        assert!(Reference::of(&serde_json::json!({"env": "A"})).is_some());
        assert!(Reference::of(&serde_json::json!({"env": "A", "file": "b"})).is_none());
        assert!(Reference::of(&serde_json::json!({"vault": "A"})).is_none());
        assert!(Reference::of(&serde_json::json!({"env": 3})).is_none());
        assert!(Reference::of(&serde_json::json!("env")).is_none());
    }
}
