//! The scenario file a translation writes: YAML with a comment on every step naming
//! the TestScript element it came from.

use serde_json::{Map, Value};

use crate::scenario::model::Section;

/// Where an assert's expectation went in its step, to find its line once loaded.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Target {
    Status,
    /// By header name, lower-case.
    Header(String),
    Json(usize),
    FhirPath(usize),
    Subset,
    Valid,
    Request,
}

/// An assert folded into a step, and what it became.
#[derive(Debug, Clone)]
pub struct PlannedAssert {
    pub path: String,
    pub targets: Vec<Target>,
    pub warning: bool,
}

/// A step being built: the request and expectations as the YAML will say them.
#[derive(Debug, Clone, Default)]
pub struct Step {
    /// The element the step came from (`TestScript.test[0].action[1].operation`).
    pub comment: String,
    /// One line per assert folded into it.
    pub comments: Vec<String>,
    pub name: String,
    pub request: Value,
    pub expect: Expectations,
    /// From `warningOnly` asserts.
    pub warn: Expectations,
    pub capture: Vec<(String, Value)>,
    /// The operation's `responseId`, which an assert's `sourceId` may name.
    pub response_id: Option<String>,
    pub section: Option<Section>,
    pub asserts: Vec<PlannedAssert>,
}

/// An `expect:` (or `warn:`) block being built.
#[derive(Debug, Clone, Default)]
pub struct Expectations {
    /// `status`, `valid`, `json_subset`.
    pub single: Map<String, Value>,
    pub headers: Map<String, Value>,
    pub json: Vec<Value>,
    pub fhirpath: Vec<Value>,
}

impl Expectations {
    /// What `self` has beyond `before`: the expectations an assert added.
    pub fn added_since(&self, before: &Expectations) -> Vec<Target> {
        let mut out = Vec::new();
        if self.single.contains_key("status") && !before.single.contains_key("status") {
            out.push(Target::Status);
        }
        for name in self
            .headers
            .keys()
            .filter(|k| !before.headers.contains_key(*k))
        {
            out.push(Target::Header(name.clone()));
        }
        out.extend((before.json.len()..self.json.len()).map(Target::Json));
        out.extend((before.fhirpath.len()..self.fhirpath.len()).map(Target::FhirPath));
        if self.single.contains_key("json_subset") && !before.single.contains_key("json_subset") {
            out.push(Target::Subset);
        }
        if self.single.contains_key("valid") && !before.single.contains_key("valid") {
            out.push(Target::Valid);
        }
        if self.single.get("request") != before.single.get("request") {
            out.push(Target::Request);
        }
        out
    }

    fn to_value(&self) -> Option<Value> {
        let mut expect = Map::new();
        if let Some(s) = self.single.get("status") {
            expect.insert("status".into(), s.clone());
        }
        if !self.headers.is_empty() {
            expect.insert("headers".into(), Value::Object(self.headers.clone()));
        }
        if !self.json.is_empty() {
            expect.insert("json".into(), Value::Array(self.json.clone()));
        }
        if !self.fhirpath.is_empty() {
            expect.insert("fhirpath".into(), Value::Array(self.fhirpath.clone()));
        }
        for key in ["json_subset", "valid", "request"] {
            if let Some(v) = self.single.get(key) {
                expect.insert(key.into(), v.clone());
            }
        }
        (!expect.is_empty()).then_some(Value::Object(expect))
    }
}

impl Step {
    pub fn new(comment: String, name: String) -> Step {
        Step {
            comment,
            name,
            ..Step::default()
        }
    }

    fn to_value(&self) -> Value {
        let mut step = Map::new();
        step.insert("name".into(), Value::String(self.name.clone()));
        step.insert("request".into(), self.request.clone());
        if let Some(expect) = self.expect.to_value() {
            step.insert("expect".into(), expect);
        }
        if let Some(warn) = self.warn.to_value() {
            step.insert("warn".into(), warn);
        }
        if !self.capture.is_empty() {
            let capture: Map<String, Value> = self.capture.iter().cloned().collect();
            step.insert("capture".into(), Value::Object(capture));
        }
        Value::Object(step)
    }
}

/// One test of the script.
#[derive(Debug)]
pub struct Scenario {
    pub comment: String,
    pub name: String,
    pub description: Option<String>,
    pub steps: Vec<Step>,
    pub cleanup: Vec<Step>,
}

/// The whole file.
pub fn write(
    header: &[String],
    source: Option<&str>,
    requires: &[String],
    inputs: &[String],
    vars: &Map<String, Value>,
    scenarios: &[Scenario],
) -> String {
    let mut out = String::new();
    for line in header {
        comment(&mut out, "", line);
    }
    let mut top = Map::new();
    top.insert("tags".into(), serde_json::json!(["testscript"]));
    if !requires.is_empty() {
        top.insert("requires".into(), serde_json::json!(requires));
    }
    if !inputs.is_empty() {
        top.insert("inputs".into(), serde_json::json!(inputs));
    }
    if !vars.is_empty() {
        top.insert("vars".into(), Value::Object(vars.clone()));
    }
    out.push_str(&yaml(&Value::Object(top)));
    out.push_str("scenarios:\n");
    for s in scenarios {
        comment(&mut out, "  ", &s.comment);
        let mut head = Map::new();
        head.insert("name".into(), Value::String(s.name.clone()));
        if let Some(d) = &s.description {
            head.insert("description".into(), Value::String(d.clone()));
        }
        if let Some(src) = source {
            head.insert("source".into(), Value::String(src.to_owned()));
        }
        push_indented(&mut out, "  - ", "    ", &yaml(&Value::Object(head)));
        for (key, steps) in [("steps", &s.steps), ("cleanup", &s.cleanup)] {
            if steps.is_empty() {
                continue;
            }
            out.push_str(&format!("    {key}:\n"));
            for step in steps {
                comment(&mut out, "      ", &step.comment);
                for c in &step.comments {
                    comment(&mut out, "      ", c);
                }
                push_indented(&mut out, "      - ", "        ", &yaml(&step.to_value()));
            }
        }
    }
    out
}

/// A value as block YAML: mappings and sequences as blocks, every scalar as its JSON
/// text (JSON strings are YAML double-quoted scalars). Written here rather than by a
/// YAML serializer so that numbers are written as numbers whatever serde_json's
/// features (`arbitrary_precision`, which the validation feature's crates turn on,
/// makes a number a map to a generic serializer).
pub(crate) fn yaml(value: &Value) -> String {
    let mut out = String::new();
    block(&mut out, value, 0);
    out
}

fn block(out: &mut String, value: &Value, indent: usize) {
    match value {
        Value::Object(map) if !map.is_empty() => {
            for (key, v) in map {
                pad(out, indent);
                write_str(out, key);
                out.push(':');
                nested(out, v, indent);
            }
        }
        Value::Array(items) if !items.is_empty() => {
            for v in items {
                pad(out, indent);
                out.push('-');
                nested(out, v, indent);
            }
        }
        other => {
            pad(out, indent);
            scalar(out, other);
            out.push('\n');
        }
    }
}

fn pad(out: &mut String, indent: usize) {
    out.extend(std::iter::repeat_n(' ', indent));
}

/// What follows `key:` or `-`: a scalar on the same line, a collection below it.
fn nested(out: &mut String, v: &Value, indent: usize) {
    match v {
        Value::Object(m) if !m.is_empty() => {
            out.push('\n');
            block(out, v, indent + 2);
        }
        Value::Array(a) if !a.is_empty() => {
            out.push('\n');
            block(out, v, indent + 2);
        }
        _ => {
            out.push(' ');
            scalar(out, v);
            out.push('\n');
        }
    }
}

/// A scalar (or an empty collection) as YAML: plain when that reads back the same,
/// else JSON.
fn scalar(out: &mut String, v: &Value) {
    match v {
        Value::String(s) => write_str(out, s),
        Value::Object(_) => out.push_str("{}"),
        Value::Array(_) => out.push_str("[]"),
        other => {
            use std::fmt::Write;
            let _ = write!(out, "{other}");
        }
    }
}

/// A string, plain when safe, else as a JSON (double-quoted YAML) string.
fn write_str(out: &mut String, s: &str) {
    if plain_is_safe(s) {
        out.push_str(s);
    } else {
        use std::fmt::Write;
        let _ = write!(out, "{}", Value::String(s.to_owned()));
    }
}

/// Whether a string can be written plain (unquoted) and read back as the same string.
fn plain_is_safe(s: &str) -> bool {
    let first_ok = s
        .chars()
        .next()
        .is_some_and(|c| c.is_ascii_alphabetic() || c == '/' || c == '_');
    let reserved = matches!(
        s.to_ascii_lowercase().as_str(),
        "true" | "false" | "null" | "yes" | "no" | "on" | "off" | "y" | "n" | "~"
    );
    first_ok
        && !reserved
        && s.chars().all(|c| {
            c.is_ascii_alphanumeric()
                || matches!(
                    c,
                    '/' | '_' | '-' | '.' | '$' | ' ' | '(' | ')' | ',' | '=' | '?' | '&' | '+'
                )
        })
        && !s.ends_with(' ')
        && !s.contains(" #")
        && !s.contains(": ")
}

/// `text` as comment lines (a description may span several).
fn comment(out: &mut String, indent: &str, text: &str) {
    for line in text.lines() {
        out.push_str(indent);
        out.push_str("# ");
        out.push_str(line.trim_end());
        out.push('\n');
    }
}

/// A YAML block as a list item: its first line after `first`, the rest after `rest`.
fn push_indented(out: &mut String, first: &str, rest: &str, block: &str) {
    for (i, line) in block.lines().enumerate() {
        out.push_str(if i == 0 { first } else { rest });
        out.push_str(line);
        out.push('\n');
    }
}
