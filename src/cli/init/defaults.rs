//! The ControllerConfig `failover init` writes: every field at the default this build
//! has (`ControllerConfigSpec::default()`, not numbers copied by hand), each under its
//! description from the schema, so that the file says what each knob does.

use serde_json::Value;

use super::compose::{comment, scalar};
use crate::api::ControllerConfigSpec;
use crate::api::reference::{without_default, yaml};
use crate::api::schema::schema;

/// The `spec:` block of a ControllerConfig at its defaults, commented.
pub(crate) fn controller_spec() -> String {
    let defaults = serde_json::to_value(ControllerConfigSpec::default())
        .expect("the controller's defaults serialize: plain fields, string keys");
    let defs = &schema()["$defs"];
    let mut out = String::from("spec:\n");
    write_object(&mut out, defs, &defs["ControllerConfigSpec"], &defaults, 1);
    out
}

/// Each field of `object` (a schema) at its value in `values`, `depth` levels deep.
fn write_object(out: &mut String, defs: &Value, object: &Value, values: &Value, depth: usize) {
    let indent = "  ".repeat(depth);
    let Some(properties) = object["properties"].as_object() else {
        return;
    };
    for (name, field) in properties {
        let target = resolve(defs, field);
        let description = field["description"]
            .as_str()
            .or(target["description"].as_str())
            .unwrap_or_default()
            .replace('\n', " ");
        out.push_str(&comment(&indent, without_default(&description)));
        match values.get(name) {
            Some(value) if target["properties"].is_object() => {
                out.push_str(&format!("{indent}{name}:\n"));
                write_object(out, defs, target, value, depth + 1);
            }
            Some(Value::String(text)) => {
                out.push_str(&format!("{indent}{name}: {}\n", scalar(text)));
            }
            Some(value) => out.push_str(&format!("{indent}{name}: {}\n", yaml(value))),
            None => out.push_str(&format!("{indent}# {name}: unset\n")),
        }
    }
}

/// A schema with its `$ref` followed into `$defs`.
fn resolve<'a>(defs: &'a Value, schema: &'a Value) -> &'a Value {
    match schema["$ref"]
        .as_str()
        .and_then(|r| r.strip_prefix("#/$defs/"))
    {
        Some(name) => &defs[name],
        None => schema,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn document() -> String {
        format!(
            "apiVersion: failover/v1alpha1\nkind: Account\nmetadata:\n  name: a\nspec:\n  home: /a\n---\napiVersion: failover/v1alpha1\nkind: ControllerConfig\nmetadata:\n  name: default\n{}",
            controller_spec()
        )
    }

    #[test]
    fn controller_spec_should_read_back_as_the_codes_defaults() {
        let m = crate::api::load_str("failover.yaml", &document()).expect("valid");
        assert_eq!(m.controller.spec, ControllerConfigSpec::default());
    }

    #[test]
    fn controller_spec_should_spell_out_every_field_with_its_description() {
        let text = controller_spec();
        for line in [
            "  pollInterval: 1s\n",
            "    cooldown: 5m\n",
            "    confirmations: 2\n",
            "    # moveAt: unset\n",
            "    endpoints: []\n",
            "  owner: failover\n",
            "  stateDir: \"\"\n",
        ] {
            assert!(text.contains(line), "no {line:?} in:\n{text}");
        }
        assert!(
            text.contains("  # How often agents' screens are read.\n"),
            "{text}"
        );
        assert!(!text.contains("Default `1s`"), "{text}");
        let defs = &schema()["$defs"];
        for def in [
            "ControllerConfigSpec",
            "QuotaSpec",
            "FleetSpec",
            "MetricsSpec",
        ] {
            for field in defs[def]["properties"]
                .as_object()
                .expect("properties")
                .keys()
            {
                assert!(
                    text.contains(&format!(" {field}:")),
                    "{def}.{field} missing"
                );
            }
        }
    }
}
