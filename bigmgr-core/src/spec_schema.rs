//! The JSON Schema of a cluster spec file (`docs/spec.schema.json`), for editors that check
//! TOML against a schema (taplo, "Even Better TOML"): generated from the spec's own types
//! ([`Spec`], [`crate::spec::SpecService`], [`crate::spec::SpecPolicy`],
//! [`crate::spec::SpecRelation`], [`crate::placement::Placement`]) through their
//! `utoipa::ToSchema` derives, so it follows them, and completed with what the types leave
//! open: config values (a string, number or boolean, or a secret reference), and the name
//! rules of clusters, hosts, services, components and properties.
//!
//! The schema says what an editor can know without the stacks: which keys exist and the shape
//! of their values. Whether a stack, service, component, config type or property exists, and
//! a property's type, is checked by [`crate::spec::Parsed::check`] against the stacks.

use crate::spec::Spec;
use serde_json::{Map, Value, json};
use utoipa::{PartialSchema, ToSchema};

/// The JSON Schema dialect of the document: draft 2020-12.
pub const DIALECT: &str = "https://json-schema.org/draft/2020-12/schema";

/// Where utoipa points its references; the standalone document keeps them under `$defs`.
const COMPONENTS: &str = "#/components/schemas/";

/// The schema as JSON: draft 2020-12, its named parts under `$defs`.
///
/// # Panics
///
/// If the spec's types no longer have the fields this module completes (`configs` and
/// `host_overrides` of a service, the `hosts` and `services` tables): a change of those types
/// must change this module too, and the schema's test fails until it does.
pub fn json_schema() -> Value {
    let mut parts = Vec::new();
    <Spec as ToSchema>::schemas(&mut parts);
    let mut defs: Map<String, Value> = parts
        .into_iter()
        .map(|(name, schema)| (name, to_json(&schema)))
        .collect();
    let mut root = to_json(&Spec::schema());

    // Names an operator gives (crate::name), and the identifiers of stacks.
    defs.insert("Name".into(), to_json(&crate::name::name_schema()));
    set(
        &mut root,
        "cluster",
        json!({ "$ref": "#/$defs/Name", "description": "The cluster's name." }),
    );
    keys(&mut root, "hosts", json!({ "$ref": "#/$defs/Name" }));
    keys(&mut root, "services", json!({ "$ref": "#/$defs/Name" }));
    let service = defs
        .get_mut("SpecService")
        .expect("SpecService is among the spec's schemas");
    keys(
        service,
        "placement",
        json!({ "pattern": crate::name::IDENTIFIER_PATTERN }),
    );

    // Config values: the types hold any JSON value (`serde_json::Value`); a spec's are scalars
    // (no property type is a list or a table) or a secret reference (`spec/secrets.rs`).
    set(
        service,
        "configs",
        json!({ "type": "object", "additionalProperties": { "$ref": "#/$defs/ConfigType" } }),
    );
    set(
        service,
        "host_overrides",
        json!({
            "type": "object",
            "propertyNames": { "$ref": "#/$defs/Name" },
            "additionalProperties": {
                "type": "object",
                "description": "A host's values: config type → property → value.",
                "additionalProperties": { "$ref": "#/$defs/ConfigType" },
            },
        }),
    );
    defs.insert(
        "ConfigType".into(),
        json!({
            "description": "The values of one config type (`zoo.cfg`): property → value.",
            "type": "object",
            "propertyNames": { "pattern": crate::name::PROPERTY_PATTERN },
            "additionalProperties": { "$ref": "#/$defs/ConfigValue" },
        }),
    );
    defs.insert(
        "ConfigValue".into(),
        json!({
            "description": "A property's value: a string, a number or a boolean, as the \
                            property's type in the stack says, or a secret given by reference.",
            "anyOf": [
                { "type": ["string", "number", "boolean"] },
                { "$ref": "#/$defs/SecretReference" },
            ],
        }),
    );
    defs.insert(
        "SecretReference".into(),
        json!({
            "description": "A secret given by reference, read where `bigmgr plan` or \
                            `bigmgr apply` runs and sent beside the spec: an environment \
                            variable, or a file (relative to the spec's directory; one \
                            trailing newline dropped; at most 64 KiB).",
            "oneOf": [
                {
                    "type": "object",
                    "properties": {
                        "env": {
                            "description": "The environment variable holding the secret.",
                            "type": "string",
                            "pattern": "^[A-Za-z_][A-Za-z0-9_]{0,127}$",
                        },
                    },
                    "required": ["env"],
                    "additionalProperties": false,
                },
                {
                    "type": "object",
                    "properties": {
                        "file": {
                            "description": "The file holding the secret.",
                            "type": "string",
                            "minLength": 1,
                            "maxLength": 4096,
                        },
                    },
                    "required": ["file"],
                    "additionalProperties": false,
                },
            ],
        }),
    );

    let mut doc = Map::new();
    doc.insert("$schema".into(), DIALECT.into());
    doc.insert("title".into(), "bigmgr cluster spec".into());
    let Value::Object(root) = root else {
        unreachable!("Spec's schema is an object")
    };
    doc.extend(root);
    doc.insert("$defs".into(), Value::Object(defs));
    let mut doc = Value::Object(doc);
    tidy(&mut doc);
    doc
}

/// The committed form of [`json_schema`]: pretty-printed, one trailing newline.
pub fn json_schema_text() -> String {
    let mut text = serde_json::to_string_pretty(&json_schema()).expect("JSON serialises");
    text.push('\n');
    text
}

fn to_json<T: serde::Serialize>(schema: &T) -> Value {
    serde_json::to_value(schema).expect("a schema serialises")
}

/// The schema of property `name` of the object schema `schema`.
fn property<'a>(schema: &'a mut Value, name: &str) -> &'a mut Map<String, Value> {
    schema
        .pointer_mut(&format!("/properties/{name}"))
        .and_then(Value::as_object_mut)
        .unwrap_or_else(|| panic!("the spec's schema has no property '{name}'"))
}

/// Replaces property `name`'s schema, keeping its description (the field's doc comment).
fn set(schema: &mut Value, name: &str, new: Value) {
    let old = property(schema, name);
    let description = old.get("description").cloned();
    let Value::Object(mut new) = new else {
        unreachable!("a schema is an object")
    };
    if let Some(d) = description {
        new.insert("description".into(), d);
    }
    *old = new;
}

/// Constrains the keys of the table property `name`.
fn keys(schema: &mut Value, name: &str, names: Value) {
    let table = property(schema, name);
    assert!(
        table.contains_key("propertyNames"),
        "the spec's property '{name}' is not a table"
    );
    table.insert("propertyNames".into(), names);
}

/// Points references at `$defs`, and drops `null` from optional values (from a `type` list,
/// or as an alternative of `oneOf` / `anyOf`): TOML has no null, an optional value is left
/// out.
fn tidy(v: &mut Value) {
    match v {
        Value::Object(map) => {
            for key in ["oneOf", "anyOf"] {
                let Some(Value::Array(alternatives)) = map.get_mut(key) else {
                    continue;
                };
                alternatives.retain(|a| *a != json!({ "type": "null" }));
                if let [Value::Object(only)] = alternatives.as_slice() {
                    let only = only.clone();
                    map.remove(key);
                    for (k, v) in only {
                        map.entry(k).or_insert(v);
                    }
                }
            }
            if let Some(Value::String(r)) = map.get_mut("$ref")
                && let Some(name) = r.strip_prefix(COMPONENTS)
            {
                *r = format!("#/$defs/{name}");
            }
            if let Some(Value::Array(types)) = map.get_mut("type") {
                types.retain(|t| t != "null");
                if let [only] = types.as_slice() {
                    let only = only.clone();
                    map.insert("type".into(), only);
                }
            }
            map.values_mut().for_each(tidy);
        }
        Value::Array(items) => items.iter_mut().for_each(tidy),
        _ => {}
    }
}
