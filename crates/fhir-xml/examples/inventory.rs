//! Writes `tests/fixtures/testscript/INVENTORY.md`: every TestScript of the corpus
//! with its format, tests and actions, operation types and assert kinds, then
//! elements, operation types and assert kinds ranked by how many scripts use them,
//! and the XML files `fhir_xml::to_json` fails on.
//!
//! `cargo run -p fhir-xml --example inventory > tests/fixtures/testscript/INVENTORY.md`
//! (from the workspace root; an argument overrides the corpus folder).

use std::collections::{BTreeMap, BTreeSet};
use std::fmt::Write as _;
use std::path::{Path, PathBuf};

use serde_json::Value;

/// What one script uses.
#[derive(Default)]
struct Script {
    path: String,
    format: &'static str,
    tests: usize,
    setup_actions: usize,
    test_actions: usize,
    teardown_actions: usize,
    operations: BTreeSet<String>,
    asserts: BTreeSet<String>,
    elements: BTreeSet<String>,
}

/// The assert elements that say what is checked (the others qualify the check).
const ASSERT_KINDS: &[&str] = &[
    "compareToSourceExpression",
    "compareToSourceId",
    "compareToSourcePath",
    "contentType",
    "expression",
    "headerField",
    "minimumId",
    "navigationLinks",
    "path",
    "requestMethod",
    "requestURL",
    "resource",
    "response",
    "responseCode",
    "validateProfileId",
];

fn files(dir: &Path, out: &mut Vec<PathBuf>) {
    let Ok(entries) = std::fs::read_dir(dir) else {
        return;
    };
    for entry in entries.flatten() {
        let path = entry.path();
        if path.is_dir() {
            files(&path, out);
        } else if path.extension().is_some_and(|e| e == "json" || e == "xml") {
            out.push(path);
        }
    }
}

/// Every element path under `value` (`setup.action.operation.type`), without
/// array indices, primitive twins' underscores, or the narrative.
fn element_paths(value: &Value, path: &str, out: &mut BTreeSet<String>) {
    match value {
        Value::Object(map) => {
            for (key, v) in map {
                if key == "resourceType" || (key == "div" && path == "text") {
                    continue;
                }
                let key = key.strip_prefix('_').unwrap_or(key);
                let here = if path.is_empty() {
                    key.to_owned()
                } else {
                    format!("{path}.{key}")
                };
                out.insert(here.clone());
                element_paths(v, &here, out);
            }
        }
        Value::Array(items) => items.iter().for_each(|v| element_paths(v, path, out)),
        _ => {}
    }
}

fn actions(script: &mut Script, actions: &Value) -> usize {
    let Some(list) = actions.as_array() else {
        return 0;
    };
    for action in list {
        if let Some(op) = action.get("operation") {
            let kind = op
                .pointer("/type/code")
                .and_then(Value::as_str)
                .map(str::to_owned)
                .or_else(|| {
                    op.get("method")
                        .and_then(Value::as_str)
                        .map(|m| format!("(method {m})"))
                })
                .unwrap_or_else(|| "(no type)".to_owned());
            script.operations.insert(kind);
        }
        if let Some(Value::Object(assert)) = action.get("assert") {
            for kind in ASSERT_KINDS {
                if assert.contains_key(*kind) {
                    script.asserts.insert((*kind).to_owned());
                }
            }
        }
    }
    list.len()
}

fn main() {
    let root = std::env::args()
        .nth(1)
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from("tests/fixtures/testscript"));
    let mut paths = Vec::new();
    files(&root, &mut paths);
    paths.sort();

    let mut scripts = Vec::new();
    let mut other = BTreeMap::<String, usize>::new();
    let mut xml_failures = Vec::new();
    let mut xml_ok = 0;
    let mut unreadable = Vec::new();
    for path in &paths {
        let rel = path
            .strip_prefix(&root)
            .unwrap_or(path)
            .to_string_lossy()
            .into_owned();
        let text = std::fs::read_to_string(path).unwrap_or_default();
        let is_xml = path.extension().is_some_and(|e| e == "xml");
        let json = if is_xml {
            match fhir_xml::to_json(&text) {
                Ok(json) => {
                    xml_ok += 1;
                    json
                }
                Err(e) => {
                    xml_failures.push(format!("`{rel}`: {e}"));
                    continue;
                }
            }
        } else {
            text
        };
        let value: Value = match serde_json::from_str(json.trim_start_matches('\u{feff}')) {
            Ok(v) => v,
            Err(e) => {
                unreadable.push(format!("`{rel}`: not JSON ({e})"));
                continue;
            }
        };
        let kind = value["resourceType"]
            .as_str()
            .unwrap_or("(no resourceType)");
        if kind != "TestScript" {
            *other.entry(kind.to_owned()).or_default() += 1;
            continue;
        }
        let mut script = Script {
            path: rel,
            format: if is_xml { "XML" } else { "JSON" },
            ..Script::default()
        };
        script.setup_actions = actions(&mut script, &value["setup"]["action"]);
        if let Some(tests) = value["test"].as_array() {
            script.tests = tests.len();
            for test in tests {
                script.test_actions += actions(&mut script, &test["action"]);
            }
        }
        script.teardown_actions = actions(&mut script, &value["teardown"]["action"]);
        element_paths(&value, "", &mut script.elements);
        scripts.push(script);
    }

    let mut out = String::new();
    let xml_scripts = scripts.iter().filter(|s| s.format == "XML").count();
    writeln!(out, "# TestScript corpus inventory\n").unwrap();
    writeln!(
        out,
        "Generated by `cargo run -p fhir-xml --example inventory > tests/fixtures/testscript/INVENTORY.md`; do not edit by hand. \
         Sources and licenses: LICENSES.md. XML files are read with `fhir_xml::to_json`.\n"
    )
    .unwrap();
    writeln!(
        out,
        "{} TestScripts ({} JSON, {} XML) in {} files; the other files are fixtures and profiles: {}.\n",
        scripts.len(),
        scripts.len() - xml_scripts,
        xml_scripts,
        paths.len(),
        other
            .iter()
            .map(|(k, n)| format!("{n} {k}"))
            .collect::<Vec<_>>()
            .join(", ")
    )
    .unwrap();

    writeln!(
        out,
        "`r4-spec/xml/` holds the six R4 specification scripts of `r4-spec/` again, in XML \
         (same content, another build's narrative): the counts below include both forms.\n"
    )
    .unwrap();
    writeln!(out, "## XML conversion\n").unwrap();
    writeln!(
        out,
        "{xml_ok} of {} XML files convert with `fhir_xml::to_json`.",
        xml_ok + xml_failures.len()
    )
    .unwrap();
    if xml_failures.is_empty() {
        writeln!(out, "No failures.\n").unwrap();
    } else {
        writeln!(out, "Failures:\n").unwrap();
        for f in &xml_failures {
            writeln!(out, "- {f}").unwrap();
        }
        writeln!(out).unwrap();
    }
    if !unreadable.is_empty() {
        writeln!(
            out,
            "Files that are not FHIR JSON (kept: the engine's own tests use them):\n"
        )
        .unwrap();
        for f in &unreadable {
            writeln!(out, "- {f}").unwrap();
        }
        writeln!(out).unwrap();
    }

    writeln!(out, "## Scripts\n").unwrap();
    writeln!(
        out,
        "Actions are setup + test + teardown. Operation types are `operation.type.code` \
         (`(no type)` when the operation has none). Assert kinds are the assert elements \
         that say what is checked.\n"
    )
    .unwrap();
    writeln!(
        out,
        "| script | format | tests | actions | operation types | assert kinds | fixtures, variables, profiles |"
    )
    .unwrap();
    writeln!(out, "|---|---|---:|---|---|---|---|").unwrap();
    for s in &scripts {
        let features: Vec<&str> = [
            "fixture",
            "fixture.autocreate",
            "fixture.autodelete",
            "variable",
            "variable.expression",
            "variable.path",
            "variable.headerField",
            "profile",
            "origin",
            "destination",
            "setup",
            "teardown",
        ]
        .into_iter()
        .filter(|e| s.elements.contains(*e))
        .collect();
        writeln!(
            out,
            "| `{}` | {} | {} | {} + {} + {} | {} | {} | {} |",
            s.path,
            s.format,
            s.tests,
            s.setup_actions,
            s.test_actions,
            s.teardown_actions,
            s.operations.iter().cloned().collect::<Vec<_>>().join(", "),
            s.asserts.iter().cloned().collect::<Vec<_>>().join(", "),
            features.join(", ")
        )
        .unwrap();
    }
    writeln!(out).unwrap();

    let rank = |out: &mut String, title: &str, what: &dyn Fn(&Script) -> &BTreeSet<String>| {
        let mut counts = BTreeMap::<&str, usize>::new();
        for s in &scripts {
            for item in what(s) {
                *counts.entry(item.as_str()).or_default() += 1;
            }
        }
        let mut ranked: Vec<_> = counts.into_iter().collect();
        ranked.sort_by(|a, b| b.1.cmp(&a.1).then(a.0.cmp(b.0)));
        writeln!(out, "## {title}\n").unwrap();
        writeln!(out, "| rank | {} | scripts |", title.to_lowercase()).unwrap();
        writeln!(out, "|---:|---|---:|").unwrap();
        for (i, (item, n)) in ranked.iter().enumerate() {
            writeln!(out, "| {} | `{item}` | {n} |", i + 1).unwrap();
        }
        writeln!(out).unwrap();
    };
    rank(&mut out, "Operation types", &|s| &s.operations);
    rank(&mut out, "Assert kinds", &|s| &s.asserts);
    rank(&mut out, "Elements", &|s| &s.elements);
    print!("{out}");
}
