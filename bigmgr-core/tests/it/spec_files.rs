//! The files beside the spec code: the committed JSON Schema (`docs/spec.schema.json`) is the
//! one the types generate, and every example spec (`examples/specs/*.toml`) parses and passes
//! the whole check against the repository's stacks. (bigmgr-py's `test_spec_schema.py`
//! validates the examples against the schema with a JSON Schema implementation.)

use bigmgr_core::spec::{self, Reference};
use bigmgr_core::stack::DirStackProvider;
use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};

fn repo() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("..")
}

/// Set to 1 to rewrite `docs/spec.schema.json` from the types instead of comparing.
const UPDATE: &str = "BIGMGR_UPDATE_SCHEMA";

#[test]
fn the_committed_schema_is_the_one_the_spec_types_generate() {
    let path = repo().join("docs/spec.schema.json");
    let generated = bigmgr_core::spec_schema::json_schema_text();
    if std::env::var(UPDATE).is_ok_and(|v| v == "1") {
        std::fs::write(&path, &generated).unwrap();
        return;
    }
    let committed = std::fs::read_to_string(&path).unwrap_or_default();
    if committed != generated {
        let line = committed
            .lines()
            .zip(generated.lines())
            .position(|(a, b)| a != b)
            .unwrap_or_else(|| committed.lines().count().min(generated.lines().count()));
        panic!(
            "docs/spec.schema.json differs from the schema the spec's types generate (first at \
             line {}): rewrite it with\n\n    {UPDATE}=1 cargo test -p bigmgr-core --test it \
             spec_files::the_committed_schema\n\nand commit it with the change of the types",
            line + 1
        );
    }
}

#[test]
fn the_schema_is_a_draft_2020_12_document_with_its_references_resolved() {
    let schema = bigmgr_core::spec_schema::json_schema();
    assert_eq!(schema["$schema"], bigmgr_core::spec_schema::DIALECT);
    assert_eq!(
        schema["additionalProperties"], false,
        "unknown keys are refused"
    );
    let defs = schema["$defs"].as_object().unwrap();
    for name in [
        "SpecService",
        "SpecRelation",
        "SpecPolicy",
        "SpecHealing",
        "CountRule",
    ] {
        assert_eq!(
            defs[name]["additionalProperties"], false,
            "{name} denies unknown fields"
        );
    }
    // Every reference points into $defs, and nothing is left of OpenAPI's components.
    let text = schema.to_string();
    assert!(!text.contains("#/components/"), "{text}");
    let mut refs = Vec::new();
    collect_refs(&schema, &mut refs);
    assert!(refs.len() >= 8, "{refs:?}");
    for r in refs {
        let name = r.strip_prefix("#/$defs/").unwrap_or_else(|| panic!("{r}"));
        assert!(defs.contains_key(name), "{r} points at nothing");
    }
    // TOML has no null: no optional value admits one.
    assert!(!text.contains("\"null\""), "{text}");
}

fn collect_refs(v: &serde_json::Value, out: &mut Vec<String>) {
    match v {
        serde_json::Value::Object(m) => {
            if let Some(serde_json::Value::String(r)) = m.get("$ref") {
                out.push(r.clone());
            }
            m.values().for_each(|v| collect_refs(v, out));
        }
        serde_json::Value::Array(a) => a.iter().for_each(|v| collect_refs(v, out)),
        _ => {}
    }
}

/// The example specs, by file name.
fn examples() -> BTreeMap<String, String> {
    let dir = repo().join("examples/specs");
    std::fs::read_dir(&dir)
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|x| x == "toml"))
        .map(|p| {
            let name = p.file_name().unwrap().to_string_lossy().into_owned();
            (name, std::fs::read_to_string(&p).unwrap())
        })
        .collect()
}

#[tokio::test]
async fn every_example_spec_passes_the_check_against_the_shipped_stacks() {
    let stacks = DirStackProvider::new([bigmgr_test_support::stacks_dir()]);
    let examples = examples();
    // One per shipped stack, each with that stack's services.
    let shipped: BTreeSet<String> = std::fs::read_dir(bigmgr_test_support::stacks_dir())
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    let named: BTreeSet<String> = examples
        .keys()
        .map(|n| n.trim_end_matches(".toml").to_string())
        .collect();
    assert_eq!(named, shipped, "one example spec per stack, named after it");

    for (name, text) in &examples {
        let mut parsed = spec::parse(text).unwrap_or_else(|p| panic!("{name}: {p:?}"));
        let stack = name.trim_end_matches(".toml");
        assert!(
            parsed.spec.services.values().any(|s| s.stack == stack),
            "{name} has no service of the {stack} stack"
        );
        let s = &parsed.spec;
        assert_eq!(
            s.hosts.values().map(String::as_str).collect::<Vec<_>>(),
            ["127.0.0.2", "127.0.0.3", "127.0.0.4"],
            "{name}: hosts h1-h3 on 127.0.0.2-4"
        );
        let relations = s.relations.len();
        assert!(relations > 0, "{name} has no relation");
        assert!(
            s.services.values().any(|s| !s.host_overrides.is_empty()),
            "{name} has no host override"
        );

        // Secrets by reference, resolved from a map as a frontend would send them.
        let secrets: BTreeMap<String, String> = parsed
            .references()
            .into_iter()
            .map(|(_, r)| (r.key(), format!("secret-of-{}", r.key().replace(':', "-"))))
            .collect();
        parsed
            .resolve(&secrets)
            .unwrap_or_else(|p| panic!("{name}: {p:?}"));
        let checked = parsed
            .check(&stacks, &BTreeSet::new())
            .await
            .unwrap_or_else(|p| {
                panic!(
                    "{name} fails the check:\n{}",
                    p.iter()
                        .map(ToString::to_string)
                        .collect::<Vec<_>>()
                        .join("\n")
                )
            });
        assert_eq!(checked.relations.len(), relations, "{name}");
    }
}

/// The stacks with a secret property give it by reference in their example, and without
/// its value the check refuses the example (so the references are real).
#[tokio::test]
async fn example_secrets_are_given_by_reference() {
    let examples = examples();
    for name in ["extra.toml", "infra.toml"] {
        let parsed = spec::parse(&examples[name]).unwrap();
        let refs = parsed.references();
        assert!(!refs.is_empty(), "{name} gives no secret by reference");
        let problems = parsed.clone().resolve(&BTreeMap::new()).unwrap_err();
        assert_eq!(problems.len(), refs.len(), "{name}: {problems:?}");
        assert!(problems.iter().all(|p| p.line > 0), "{problems:?}");
    }
    // Both kinds of reference are shown.
    let kinds: BTreeSet<&str> = examples
        .values()
        .flat_map(|t| spec::parse(t).unwrap().references())
        .map(|(_, r)| match r {
            Reference::Env(_) => "env",
            Reference::File(_) => "file",
        })
        .collect();
    assert_eq!(kinds, BTreeSet::from(["env", "file"]));
}
