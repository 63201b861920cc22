//! The official FHIRPath test suite for FHIR R4 (`tests/data/tests-fhir-r4.xml`,
//! from FHIR/fhir-test-cases), run over the JSON forms of its example resources.
//!
//! Every `<test>` is run. The ones fhirconf is known to fail are listed with a
//! reason in `tests/data/known-failures.txt`; the test fails when a test not on the
//! list fails, and when a listed test passes (so the list stays honest).

use std::collections::{BTreeMap, BTreeSet};
use std::path::PathBuf;

use fhirpath::{Expression, Input, Variables};

fn data(name: &str) -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("tests/data")
        .join(name)
}

#[derive(Debug, Default)]
struct Case {
    name: String,
    input: String,
    expression: String,
    invalid: Option<String>,
    predicate: bool,
    outputs: Vec<(String, Option<String>)>,
}

fn unescape(s: &str) -> String {
    let mut out = String::new();
    let mut rest = s;
    while let Some(i) = rest.find('&') {
        out.push_str(&rest[..i]);
        let after = &rest[i + 1..];
        let Some(end) = after.find(';') else {
            out.push_str(&rest[i..]);
            return out;
        };
        let ent = &after[..end];
        let ch = match ent {
            "lt" => Some('<'),
            "gt" => Some('>'),
            "amp" => Some('&'),
            "quot" => Some('"'),
            "apos" => Some('\''),
            _ => ent
                .strip_prefix("#x")
                .and_then(|h| u32::from_str_radix(h, 16).ok())
                .or_else(|| ent.strip_prefix('#').and_then(|d| d.parse().ok()))
                .and_then(char::from_u32),
        };
        match ch {
            Some(c) => out.push(c),
            None => out.push_str(&rest[i..i + 1 + end + 1]),
        }
        rest = &after[end + 1..];
    }
    out.push_str(rest);
    out
}

fn attr(tag: &str, name: &str) -> Option<String> {
    let key = format!("{name}=\"");
    let start = tag
        .match_indices(&key)
        .find(|(i, _)| *i == 0 || tag.as_bytes()[i - 1].is_ascii_whitespace())?
        .0
        + key.len();
    let end = tag[start..].find('"')?;
    Some(unescape(&tag[start..start + end]))
}

/// A small reader for the suite's regular XML: comments removed, then each
/// `<test ...>...</test>` with its `<expression>` and `<output>`s.
fn parse_suite(xml: &str) -> Vec<Case> {
    let mut text = String::new();
    let mut rest = xml;
    while let Some(i) = rest.find("<!--") {
        text.push_str(&rest[..i]);
        let end = rest[i..].find("-->").map_or(rest.len(), |e| i + e + 3);
        rest = &rest[end..];
    }
    text.push_str(rest);
    let mut cases = Vec::new();
    let mut rest = text.as_str();
    while let Some(i) = rest.find("<test ") {
        let body_start = i + rest[i..].find('>').expect("test tag ends") + 1;
        let tag = &rest[i..body_start];
        let end = body_start + rest[body_start..].find("</test>").expect("test ends");
        let body = &rest[body_start..end];
        rest = &rest[end + 7..];
        let mut c = Case {
            name: attr(tag, "name").unwrap_or_default(),
            input: attr(tag, "inputfile").unwrap_or_default(),
            predicate: attr(tag, "predicate").as_deref() == Some("true"),
            invalid: attr(tag, "invalid"),
            ..Case::default()
        };
        if let Some(e) = body.find("<expression") {
            let open_end = e + body[e..].find('>').expect("expression tag ends") + 1;
            let etag = &body[e..open_end];
            let close = open_end
                + body[open_end..]
                    .find("</expression>")
                    .expect("expression ends");
            c.expression = unescape(&body[open_end..close]);
            if let Some(inv) = attr(etag, "invalid") {
                c.invalid = Some(inv);
            }
        }
        let mut orest = body;
        while let Some(o) = orest.find("<output") {
            let open_end = o + orest[o..].find('>').expect("output tag ends") + 1;
            let otag = &orest[o..open_end];
            let ty = attr(otag, "type").unwrap_or_default();
            if otag.ends_with("/>") {
                c.outputs.push((ty, None));
                orest = &orest[open_end..];
                continue;
            }
            let close = open_end + orest[open_end..].find("</output>").expect("output ends");
            c.outputs
                .push((ty, Some(unescape(&orest[open_end..close]))));
            orest = &orest[close..];
        }
        cases.push(c);
    }
    cases
}

fn input_for(file: &str) -> serde_json::Value {
    let json_name = if file.is_empty() {
        "patient-example.json".to_string()
    } else {
        file.replace(".xml", ".json")
    };
    let text = std::fs::read_to_string(data(&json_name))
        .unwrap_or_else(|e| panic!("input file {json_name}: {e}"));
    serde_json::from_str(&text).expect("input JSON")
}

/// The item as the suite writes it.
fn render(v: &serde_json::Value, ty: &str) -> String {
    match v {
        serde_json::Value::String(s) => s.clone(),
        serde_json::Value::Object(o) if ty.ends_with("Quantity") => {
            let unit = o.get("unit").and_then(|u| u.as_str()).unwrap_or("");
            format!(
                "{} '{unit}'",
                o.get("value").map(|v| v.to_string()).unwrap_or_default()
            )
        }
        other => other.to_string(),
    }
}

fn same_value(expected: &str, actual: &str, ty: &str) -> bool {
    let e = expected.trim();
    let e = e
        .strip_prefix("@T")
        .or_else(|| e.strip_prefix('@'))
        .unwrap_or(e);
    if e == actual {
        return true;
    }
    // JSON numbers do not keep trailing zeros (`1.50` is 1.5): numbers compare as
    // numbers where the output is a number or untyped.
    if (ty.is_empty() || ty.eq_ignore_ascii_case("decimal") || ty.eq_ignore_ascii_case("integer"))
        && let (Ok(a), Ok(b)) = (e.parse::<f64>(), actual.parse::<f64>())
    {
        return (a - b).abs() < 1e-9;
    }
    if ty.is_empty() || ty.eq_ignore_ascii_case("quantity") {
        // `4 'g'` against `4 'g'`, numbers compared as numbers.
        let split = |s: &str| -> Option<(f64, String)> {
            let (n, u) = s.split_once(' ')?;
            Some((n.parse().ok()?, u.trim_matches('\'').to_string()))
        };
        if let (Some(a), Some(b)) = (split(e), split(actual)) {
            return (a.0 - b.0).abs() < 1e-9 && a.1 == b.1;
        }
    }
    false
}

fn same_type(expected: &str, actual: &str) -> bool {
    let a = actual
        .strip_prefix("FHIR.")
        .or_else(|| actual.strip_prefix("System."))
        .unwrap_or(actual);
    a.eq_ignore_ascii_case(expected)
}

/// Runs one case: `Ok` when it passes, `Err(why)` when not.
fn run(c: &Case, inputs: &mut BTreeMap<String, serde_json::Value>) -> Result<(), String> {
    let root = inputs
        .entry(c.input.clone())
        .or_insert_with(|| input_for(&c.input))
        .clone();
    let parsed = Expression::parse(&c.expression);
    if let Some(kind) = &c.invalid {
        return match (kind.as_str(), parsed) {
            ("syntax", Err(_)) => Ok(()),
            ("syntax", Ok(_)) => Err("expected a syntax error".into()),
            (_, Err(e)) if kind != "execution" => {
                let _ = e;
                Ok(())
            }
            (_, Err(e)) => Err(format!(
                "expected an execution error, got the parse error {e}"
            )),
            (_, Ok(expr)) => {
                let input = Input::new(&root);
                match expr.evaluate(&input, &Variables::default()) {
                    Err(_) => Ok(()),
                    Ok(out) => Err(format!("expected a {kind} error, got {:?}", out.to_json())),
                }
            }
        };
    }
    let expr = parsed.map_err(|e| format!("parse error: {e}"))?;
    let input = Input::new(&root);
    let out = expr
        .evaluate(&input, &Variables::default())
        .map_err(|e| format!("evaluation error: {e}"))?;
    let (values, types) = if c.predicate {
        (
            vec![serde_json::Value::Bool(!out.is_empty())],
            vec!["System.Boolean".to_string()],
        )
    } else {
        (out.to_json(), out.type_names())
    };
    if values.len() != c.outputs.len() {
        return Err(format!(
            "expected {} item(s) {:?}, got {:?} ({types:?})",
            c.outputs.len(),
            c.outputs,
            values
        ));
    }
    for ((ety, evalue), (v, t)) in c.outputs.iter().zip(values.iter().zip(&types)) {
        if !ety.is_empty() && !same_type(ety, t) {
            return Err(format!("expected type {ety}, got {t} ({v})"));
        }
        if let Some(ev) = evalue {
            let actual = render(v, t);
            if !same_value(ev, &actual, ety) {
                return Err(format!("expected {ev}, got {actual}"));
            }
        }
    }
    Ok(())
}

#[test]
fn official_fhirpath_r4_suite() {
    let xml = std::fs::read_to_string(data("tests-fhir-r4.xml")).expect("suite");
    let cases = parse_suite(&xml);
    assert!(cases.len() > 900, "only {} cases read", cases.len());
    let known_text = std::fs::read_to_string(data("known-failures.txt")).expect("list");
    let known: BTreeMap<&str, &str> = known_text
        .lines()
        .map(str::trim)
        .filter(|l| !l.is_empty() && !l.starts_with('#'))
        .map(|l| l.split_once(char::is_whitespace).unwrap_or((l, "")))
        .collect();
    let mut inputs = BTreeMap::new();
    let mut unexpected = Vec::new();
    let mut failed_names = BTreeSet::new();
    let mut passed = 0;
    for c in &cases {
        let outcome =
            std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| run(c, &mut inputs)))
                .unwrap_or_else(|_| Err("panicked".into()));
        match outcome {
            Ok(()) => {
                passed += 1;
                if known.contains_key(c.name.as_str()) {
                    unexpected.push(format!(
                        "{}: passes but is listed as a known failure",
                        c.name
                    ));
                }
            }
            Err(why) => {
                failed_names.insert(c.name.clone());
                if !known.contains_key(c.name.as_str()) {
                    unexpected.push(format!("{}: `{}`: {why}", c.name, c.expression.trim()));
                }
            }
        }
    }
    for name in known.keys() {
        if !cases.iter().any(|c| c.name == *name) {
            unexpected.push(format!("{name}: listed, but no such test"));
        }
    }
    eprintln!(
        "official suite: {passed} passed, {} failed (listed), {} total",
        failed_names.len(),
        cases.len()
    );
    assert!(
        unexpected.is_empty(),
        "{} unexpected outcome(s):\n{}",
        unexpected.len(),
        unexpected.join("\n")
    );
}

/// `model_warnings` on the suite's valid expressions, with each input's resource
/// type: the only warnings are for the tests that are about wrong names.
#[test]
fn model_warnings_on_the_suite() {
    let xml = std::fs::read_to_string(data("tests-fhir-r4.xml")).expect("suite");
    let mut warned = Vec::new();
    for c in parse_suite(&xml) {
        let Ok(expr) = Expression::parse(&c.expression) else {
            continue;
        };
        let root = input_for(&c.input);
        let rt = root.get("resourceType").and_then(|v| v.as_str());
        for w in expr.model_warnings(rt) {
            warned.push(format!("{}: {w}", c.name));
        }
    }
    let expected = [
        "testSimpleFail: `given1` is not an element of HumanName (did you mean `given`?)",
        "testSimpleWithWrongContext: `Encounter` does not match the type of the context (Patient)",
        "testPolymorphismAsB: `unit` is not an element of Period",
    ];
    assert_eq!(warned, expected);
}
