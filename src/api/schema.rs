//! The JSON Schema of one manifest document, generated from the resource types.
//!
//! The schema checks the envelope (`apiVersion`, `kind`, `metadata`) and, through one
//! `if kind = X then spec: XSpec` rule per kind, the spec. The same document is what
//! `failover schema` prints, what `schema/failover.schema.json` holds for editors, and
//! what the loader validates every document against.

use std::sync::LazyLock;

use schemars::generate::SchemaSettings;
use serde_json::{Value, json};

use super::Kind;
use super::resources::*;

/// The schema as JSON. Generated once per process.
pub fn schema() -> &'static Value {
    static SCHEMA: LazyLock<Value> = LazyLock::new(generate);
    &SCHEMA
}

/// The schema as the pretty-printed text `failover schema` prints (with a final newline).
pub fn schema_text() -> String {
    let mut text = serde_json::to_string_pretty(schema())
        .expect("a serde_json::Value always serializes to a string");
    text.push('\n');
    text
}

fn generate() -> Value {
    let mut generator = SchemaSettings::draft2020_12().into_generator();
    let rules: Vec<Value> = Kind::ALL
        .iter()
        .map(|kind| {
            let spec = match kind {
                Kind::Account => generator.subschema_for::<AccountSpec>(),
                Kind::SharedState => generator.subschema_for::<SharedStateSpec>(),
                Kind::Pool => generator.subschema_for::<PoolSpec>(),
                Kind::DedicatedSession => generator.subschema_for::<DedicatedSessionSpec>(),
                Kind::Inbox => generator.subschema_for::<InboxSpec>(),
                Kind::AgentProfile => generator.subschema_for::<AgentProfileSpec>(),
                Kind::ControllerConfig => generator.subschema_for::<ControllerConfigSpec>(),
            };
            json!({
                "if": {"properties": {"kind": {"const": kind.as_str()}}, "required": ["kind"]},
                "then": {"properties": {"spec": spec}}
            })
        })
        .collect();
    let defs = generator.take_definitions(true);
    json!({
        "$schema": "https://json-schema.org/draft/2020-12/schema",
        "title": "failover manifest",
        "description": "One document of a failover manifest. Multi-document YAML files hold one per `---`.",
        "type": "object",
        "required": ["apiVersion", "kind", "metadata", "spec"],
        "additionalProperties": false,
        "properties": {
            "apiVersion": {"const": API_VERSION, "description": "The manifest format's version."},
            "kind": {
                "enum": Kind::ALL.iter().map(|k| k.as_str()).collect::<Vec<_>>(),
                "description": "What the document declares."
            },
            "metadata": {
                "type": "object",
                "required": ["name"],
                "additionalProperties": false,
                "properties": {
                    "name": {
                        "type": "string",
                        "minLength": 1,
                        "description": "The object's name, unique per kind. For a DedicatedSession, its tmux session name."
                    }
                }
            },
            "spec": {"type": "object", "description": "What the object should be; its fields depend on `kind`."}
        },
        "allOf": rules,
        "$defs": defs,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn schema_should_match_the_committed_file() {
        let path = concat!(env!("CARGO_MANIFEST_DIR"), "/schema/failover.schema.json");
        let committed = std::fs::read_to_string(path).unwrap_or_default();
        if committed != schema_text() {
            if std::env::var_os("FAILOVER_BLESS").is_some() {
                std::fs::write(path, schema_text()).unwrap();
            } else {
                panic!(
                    "schema/failover.schema.json is not what the code generates: \
                     run `FAILOVER_BLESS=1 cargo test schema_should` or \
                     `cargo run -- schema > schema/failover.schema.json`"
                );
            }
        }
    }

    #[test]
    fn schema_should_compile_as_a_validator() {
        jsonschema::validator_for(schema()).unwrap();
    }
}
