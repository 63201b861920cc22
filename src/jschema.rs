//! JSON Schema for the YAML input files, generated (with `schemars`) from the serde
//! types the loaders read them into, so the schema cannot drift from the loader.
//! `schemas/scenario.schema.json` and `schemas/target.schema.json` are its output,
//! kept in sync by a test; `fhirconf schema scenario|target` prints it.
//!
//! The schema is draft-07, the draft editors' YAML language servers know best. It says
//! what the loader checks while reading a file (keys, types, "exactly one of", value
//! patterns); what needs more than the file's shape (variables defined before use,
//! fixture files that exist, valid JSONPath and regex syntax) is left to `fhirconf
//! check`.

use schemars::generate::SchemaSettings;
use schemars::{JsonSchema, Schema, json_schema};
use serde_json::{Value, json};

/// A variable or environment variable name: letters, digits and `_`, not starting with
/// a digit.
pub const IDENTIFIER: &str = "^[A-Za-z_][A-Za-z0-9_]*$";

/// The root schema of `T` (whose container attributes give its title).
pub fn root_for<T: JsonSchema>() -> Schema {
    SchemaSettings::draft07()
        .into_generator()
        .into_root_schema_for::<T>()
}

/// The schema as the committed file holds it: pretty JSON and a final newline.
pub fn render(schema: &Schema) -> String {
    let mut text = serde_json::to_string_pretty(schema).unwrap_or_default();
    text.push('\n');
    text
}

/// `key` is given, and not null (the loader reads `key: ~` as absent).
pub fn present(key: &str) -> Value {
    json!({ "required": [key], "properties": { key: { "not": { "type": "null" } } } })
}

/// Exactly one of `keys` is given.
pub fn exactly_one_of(keys: &[&str]) -> Value {
    json!({ "oneOf": keys.iter().map(|k| present(k)).collect::<Vec<_>>() })
}

/// At most one of `keys` is given: no two of them together.
pub fn at_most_one_of(keys: &[&str]) -> Value {
    let mut pairs = Vec::new();
    for (i, a) in keys.iter().enumerate() {
        for b in &keys[i + 1..] {
            pairs.push(json!({ "allOf": [present(a), present(b)] }));
        }
    }
    json!({ "not": { "anyOf": pairs } })
}

/// Adds `rule` to the schema's `allOf`.
pub fn add_rule(schema: &mut Schema, rule: Value) {
    let object = schema.ensure_object();
    match object.get_mut("allOf").and_then(Value::as_array_mut) {
        Some(all) => all.push(rule),
        None => {
            object.insert("allOf".to_owned(), json!([rule]));
        }
    }
}

/// Sets `keyword` on the schema of property `key`.
pub fn set_on_property(schema: &mut Schema, key: &str, keyword: &str, value: Value) {
    if let Some(prop) = schema
        .get_mut("properties")
        .and_then(|p| p.get_mut(key))
        .and_then(Value::as_object_mut)
    {
        prop.insert(keyword.to_owned(), value);
    }
}

/// A string of this pattern, with a description.
pub fn pattern_string(pattern: &str, description: &str) -> Schema {
    json_schema!({ "type": "string", "pattern": pattern, "description": description })
}
