//! The files beside the spec code: the committed JSON Schema (`docs/spec.schema.json`) is the
//! one the types generate.

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
