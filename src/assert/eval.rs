use serde_json::{Map, Value};

use super::check::{Check, Render, json_eq};
use super::diff::{pretty, unified_diff};
use super::fhir;
use super::json::{is_subset, project, remove_paths};
use crate::fhirpath_expr::{Evaluation, type_is};
use crate::http::{PreparedRequest, Response};
use crate::scenario::model::{
    Expect, FhirPathRule, HeaderOp, HeaderRule, JsonOp, JsonPathExpr, JsonRule, JsonType,
    RequestRule,
};
use crate::template::TemplateError;
use crate::template::value_to_text;
use crate::validation::Validated;

fn show(v: &Value) -> String {
    let text = v.to_string();
    if text.len() > 300 {
        format!(
            "{}…",
            &text[..text.char_indices().nth(300).map_or(text.len(), |(i, _)| i)]
        )
    } else {
        text
    }
}

fn nodes_value(nodes: &[&Value]) -> Value {
    match nodes {
        [one] => (*one).clone(),
        many => Value::Array(many.iter().map(|v| (*v).clone()).collect()),
    }
}

fn at(line: u64, mut check: Check) -> Check {
    check.line = Some(line);
    check
}

/// What a step's expectations are judged with besides the response.
pub struct Judging<'a> {
    /// Renders `{{ }}` templates in expected values.
    pub render: Render<'a>,
    /// The scenario's variables: `%name` in FHIRPath.
    pub vars: &'a Map<String, Value>,
    /// What FHIR validation found in this response (the runner validates once per
    /// response).
    pub validated: Option<&'a Validated>,
    /// The request as it was sent, for `expect.request`.
    pub request: Option<&'a PreparedRequest>,
}

/// Judges `response` against every expectation of `expect`, in a fixed order:
/// status, headers, JSON assertions, FHIRPath assertions, subset, OperationOutcome,
/// Bundle, validity. Each check carries the line of its expectation.
pub fn evaluate(expect: &Expect, response: &Response, with: &Judging<'_>) -> Vec<Check> {
    let (render, validated) = (with.render, with.validated);
    let mut checks = Vec::new();
    head_checks(expect, response, render, &mut checks);
    body_checks(expect, response, with, &mut checks);
    if let Some(valid) = &expect.valid {
        checks.push(at(valid.line, fhir::valid_check(&valid.value, validated)));
    }
    if let Some(rule) = &expect.request {
        let line = rule.line;
        checks.extend(
            request_checks(&rule.value, with.request, render)
                .into_iter()
                .map(|c| at(line, c)),
        );
    }
    // Kept in the step's record for the rest of the run.
    checks.shrink_to_fit();
    checks
}

fn head_checks(expect: &Expect, response: &Response, render: Render<'_>, checks: &mut Vec<Check>) {
    if let Some(status) = &expect.status {
        let ok = status.value.matches(response.status);
        checks.push(at(
            status.line,
            Check::new(
                "status",
                ok,
                status.value.to_string(),
                response.status.to_string(),
            ),
        ));
    }
    for rule in &expect.headers {
        checks.push(at(rule.line, header_check(&rule.value, response, render)));
    }
}

fn body_checks(expect: &Expect, response: &Response, with: &Judging<'_>, checks: &mut Vec<Check>) {
    let render = with.render;
    let needs_body = !expect.json.is_empty()
        || !expect.fhirpath.is_empty()
        || expect.json_subset.is_some()
        || expect.operation_outcome.is_some()
        || expect.bundle.is_some();
    if !needs_body {
        return;
    }
    let body = match response.json() {
        Ok(b) => b,
        Err(why) => {
            let line = first_body_line(expect);
            checks.push(at(
                line,
                Check::new("response body", false, "a JSON document", why),
            ));
            return;
        }
    };
    for a in &expect.json {
        checks.push(at(a.line, json_check(&a.value, body, render)));
    }
    if !expect.fhirpath.is_empty() {
        // The body is prepared once for every expression of the step.
        let input = Evaluation::new(body, with.vars);
        for a in &expect.fhirpath {
            checks.push(at(a.line, fhirpath_check(&a.value, &input, render)));
        }
    }
    if let Some(sub) = &expect.json_subset {
        let check = subset_check(&sub.value.value, &sub.value.ignore, body, render);
        checks.push(at(sub.line, check));
    }
    if let Some(oo) = &expect.operation_outcome {
        checks.push(at(oo.line, fhir::outcome_check(&oo.value, body, render)));
    }
    if let Some(b) = &expect.bundle {
        let line = b.line;
        checks.extend(
            fhir::bundle_checks(&b.value, body, render)
                .into_iter()
                .map(|c| at(line, c)),
        );
    }
}

/// The line of the first expectation that needs a body.
fn first_body_line(expect: &Expect) -> u64 {
    let lines = [
        expect.json.first().map(|j| j.line),
        expect.fhirpath.first().map(|j| j.line),
        expect.json_subset.as_ref().map(|s| s.line),
        expect.operation_outcome.as_ref().map(|o| o.line),
        expect.bundle.as_ref().map(|b| b.line),
    ];
    lines.into_iter().flatten().min().unwrap_or(0)
}

fn render_text(text: &str, render: Render<'_>) -> Result<String, TemplateError> {
    render(&Value::String(text.to_owned())).map(|v| value_to_text(&v))
}

fn header_check(rule: &HeaderRule, response: &Response, render: Render<'_>) -> Check {
    let what = format!("header {}", rule.name.to_ascii_lowercase());
    text_check(what, response.header(&rule.name), &rule.op, render)
}

/// `expect.request`: the method, URL and headers the request went with.
fn request_checks(
    rule: &RequestRule,
    sent: Option<&PreparedRequest>,
    render: Render<'_>,
) -> Vec<Check> {
    let Some(sent) = sent else {
        return vec![Check::new("request", false, "the request sent", "none")];
    };
    let mut checks = Vec::new();
    if let Some(method) = &rule.method {
        checks.push(Check::new(
            "request method",
            method.eq_ignore_ascii_case(&sent.method),
            method.to_ascii_uppercase(),
            sent.method.clone(),
        ));
    }
    if let Some(op) = &rule.url {
        checks.push(text_check(
            "request url".to_owned(),
            Some(sent.url.clone()),
            op,
            render,
        ));
    }
    for h in &rule.headers {
        let values: Vec<&str> = sent
            .headers
            .iter()
            .filter(|(n, _)| n.eq_ignore_ascii_case(&h.name))
            .map(|(_, v)| v.as_str())
            .collect();
        let actual = (!values.is_empty()).then(|| values.join(", "));
        let what = format!("request header {}", h.name.to_ascii_lowercase());
        checks.push(text_check(what, actual, &h.op, render));
    }
    checks
}

/// One text (a header's value, a URL) against one operation.
fn text_check(what: String, actual: Option<String>, op: &HeaderOp, render: Render<'_>) -> Check {
    let shown = actual
        .clone()
        .unwrap_or_else(|| "no such header".to_owned());
    let (text, contains) = match op {
        HeaderOp::Present => return Check::new(what, actual.is_some(), "present", shown),
        HeaderOp::Absent => return Check::new(what, actual.is_none(), "absent", shown),
        HeaderOp::Matches(re) => {
            let ok = actual.as_deref().is_some_and(|v| re.0.is_match(v));
            return Check::new(
                what,
                ok,
                format!("a value matching /{}/", re.0.as_str()),
                shown,
            );
        }
        HeaderOp::Equals(e) => (e, false),
        HeaderOp::Contains(c) => (c, true),
    };
    let expected = match render_text(text, render) {
        Ok(t) => t,
        Err(e) => return Check::new(what, false, format!("a value (template error: {e})"), shown),
    };
    let ok = actual.as_deref().is_some_and(|v| {
        if contains {
            v.contains(&expected)
        } else {
            v == expected
        }
    });
    let expected = if contains {
        format!("a value containing {expected:?}")
    } else {
        format!("{expected:?}")
    };
    Check::new(
        what,
        ok,
        expected,
        actual.map_or(shown, |v| format!("{v:?}")),
    )
}

fn json_check(rule: &JsonRule, body: &Value, render: Render<'_>) -> Check {
    let path = rule.path.0.as_str();
    match rule.path.select(body) {
        Ok(nodes) => op_check(path, &rule.op, &nodes, &[], render),
        Err(e) => Check::new(path, false, "a query that runs", format!("an error: {e}")),
    }
}

/// A FHIRPath assertion: the expression's items judged like a JSONPath's nodes. An
/// expression that does not evaluate fails with the reason, whatever the operation
/// (`absent` included): it never passes vacuously.
fn fhirpath_check(rule: &FhirPathRule, input: &Evaluation<'_>, render: Render<'_>) -> Check {
    let expr = rule.expr.text();
    match rule.expr.evaluate(input) {
        Ok(items) => {
            // A FHIRPath item is never a list, so a list expected is the whole
            // collection, in order.
            if let JsonOp::Equals(expected) = &rule.op
                && let Ok(Value::Array(expected)) = render(expected)
            {
                let actual = Value::Array(items.values);
                let ok = json_eq(&Value::Array(expected.clone()), &actual);
                let expected = Value::Array(expected);
                return Check::new(
                    format!("{expr} equals {}", show(&expected)),
                    ok,
                    show(&expected),
                    show(&actual),
                );
            }
            let nodes: Vec<&Value> = items.values.iter().collect();
            op_check(expr, &rule.op, &nodes, &items.types, render)
        }
        Err(e) => Check::new(expr, false, "an expression that evaluates", e),
    }
}

/// One operation on the values a query selected (`types`: their FHIRPath types,
/// for FHIRPath's `type`).
fn op_check(
    path: &str,
    op: &JsonOp,
    nodes: &[&Value],
    types: &[String],
    render: Render<'_>,
) -> Check {
    let found = || {
        if nodes.is_empty() {
            "nothing".to_owned()
        } else {
            show(&nodes_value(nodes))
        }
    };
    let template_error = |what: String, e: TemplateError| {
        Check::new(
            what,
            false,
            format!("a value (template error: {e})"),
            found(),
        )
    };
    match op {
        JsonOp::Exists => Check::new(
            format!("{path} exists"),
            !nodes.is_empty(),
            "a value",
            found(),
        ),
        JsonOp::Absent => Check::new(
            format!("{path} is absent"),
            nodes.is_empty(),
            "nothing",
            found(),
        ),
        JsonOp::Count(count) => Check::new(
            format!("{path} count"),
            nodes.len() == *count,
            count.to_string(),
            nodes.len().to_string(),
        ),
        JsonOp::Equals(expected) => match render(expected) {
            Ok(expected) => equals_check(path, &expected, nodes, found()),
            Err(e) => template_error(format!("{path} equals"), e),
        },
        JsonOp::Matches(re) => {
            let ok = !nodes.is_empty()
                && nodes.iter().all(|n| {
                    matches!(n, Value::String(_) | Value::Number(_) | Value::Bool(_))
                        && re.0.is_match(&value_to_text(n))
                });
            let re = re.0.as_str();
            Check::new(
                format!("{path} matches /{re}/"),
                ok,
                format!("a value matching /{re}/"),
                found(),
            )
        }
        JsonOp::Type(t) => type_check(path, *t, nodes),
        JsonOp::FhirType(t) => {
            let ok = !types.is_empty() && types.iter().all(|actual| type_is(actual, t));
            let mut kinds = types.to_vec();
            kinds.dedup();
            let actual = if kinds.is_empty() {
                "nothing".to_owned()
            } else {
                kinds.join(", ")
            };
            Check::new(format!("{path} type"), ok, t.as_str(), actual)
        }
        JsonOp::OneOf(options) => match render(&Value::Array(options.clone())) {
            Ok(Value::Array(options)) => one_of_check(path, &options, nodes, found()),
            Ok(_) | Err(_) => Check::new(
                format!("{path} one of"),
                false,
                "a list (template error)",
                found(),
            ),
        },
        JsonOp::Contains(expected) => match render(expected) {
            Ok(expected) => contains_check(path, &expected, nodes, found()),
            Err(e) => template_error(format!("{path} contains"), e),
        },
        JsonOp::NotEquals(expected) => match render(expected) {
            Ok(expected) => {
                let ok = !nodes.is_empty() && nodes.iter().all(|n| !json_eq(&expected, n));
                let shown = show(&expected);
                Check::new(
                    format!("{path} not equals {shown}"),
                    ok,
                    format!("a value other than {shown}"),
                    found(),
                )
            }
            Err(e) => template_error(format!("{path} not equals"), e),
        },
        JsonOp::NoneOf(options) => match render(&Value::Array(options.clone())) {
            Ok(Value::Array(options)) => {
                let ok = !nodes.is_empty()
                    && nodes.iter().all(|n| !options.iter().any(|o| json_eq(o, n)));
                let shown = show(&Value::Array(options));
                Check::new(
                    format!("{path} is none of {shown}"),
                    ok,
                    format!("none of {shown}"),
                    found(),
                )
            }
            Ok(_) | Err(_) => Check::new(
                format!("{path} none of"),
                false,
                "a list (template error)",
                found(),
            ),
        },
        JsonOp::NotContains(expected) => match render(expected) {
            Ok(expected) => {
                let mut check = contains_check(path, &expected, nodes, found());
                let shown = show(&expected);
                check.passed = !nodes.is_empty() && !check.passed;
                check.what = format!("{path} does not contain {shown}");
                check.expected = format!("something without {shown}");
                check
            }
            Err(e) => template_error(format!("{path} not contains"), e),
        },
        JsonOp::GreaterThan(bound) | JsonOp::LessThan(bound) => {
            let greater = matches!(op, JsonOp::GreaterThan(_));
            let word = if greater { "greater than" } else { "less than" };
            match render(bound) {
                Ok(bound) => {
                    let wanted = if greater {
                        std::cmp::Ordering::Greater
                    } else {
                        std::cmp::Ordering::Less
                    };
                    let ok = !nodes.is_empty()
                        && nodes.iter().all(|n| compare(n, &bound) == Some(wanted));
                    let shown = show(&bound);
                    Check::new(
                        format!("{path} {word} {shown}"),
                        ok,
                        format!("a value {word} {shown}"),
                        found(),
                    )
                }
                Err(e) => template_error(format!("{path} {word}"), e),
            }
        }
    }
}

/// How `value` compares with `bound`: numbers by value, strings by text (ISO dates
/// and times order by text at one precision); `None` for anything else.
fn compare(value: &Value, bound: &Value) -> Option<std::cmp::Ordering> {
    match (value, bound) {
        (Value::Number(a), Value::Number(b)) => a.as_f64()?.partial_cmp(&b.as_f64()?),
        (Value::String(a), Value::String(b)) => Some(a.as_str().cmp(b.as_str())),
        // A number written as text on one side (a rendered template): by value.
        (Value::Number(a), Value::String(b)) => a.as_f64()?.partial_cmp(&b.trim().parse().ok()?),
        (Value::String(a), Value::Number(b)) => {
            a.trim().parse::<f64>().ok()?.partial_cmp(&b.as_f64()?)
        }
        _ => None,
    }
}

fn one_of_check(path: &str, options: &[Value], nodes: &[&Value], found: String) -> Check {
    let ok = !nodes.is_empty() && nodes.iter().all(|n| options.iter().any(|o| json_eq(o, n)));
    let shown = show(&Value::Array(options.to_vec()));
    Check::new(
        format!("{path} is one of {shown}"),
        ok,
        format!("one of {shown}"),
        found,
    )
}

/// A string containing the text, an array holding the value, or any node equal to it.
fn contains_check(path: &str, expected: &Value, nodes: &[&Value], found: String) -> Check {
    let ok = match nodes {
        [Value::String(s)] => expected.as_str().is_some_and(|e| s.contains(e)),
        [Value::Array(items)] => items.iter().any(|i| json_eq(expected, i)),
        many => many.iter().any(|n| json_eq(expected, n)),
    };
    Check::new(
        format!("{path} contains {}", show(expected)),
        ok,
        format!("something containing {}", show(expected)),
        found,
    )
}

fn equals_check(path: &str, expected: &Value, nodes: &[&Value], found: String) -> Check {
    let ok = !nodes.is_empty() && nodes.iter().all(|n| json_eq(expected, n));
    let mut check = Check::new(
        format!("{path} equals {}", show(expected)),
        ok,
        show(expected),
        found,
    );
    if !ok && (expected.is_object() || expected.is_array()) && !nodes.is_empty() {
        check.diff = Some(unified_diff(
            &pretty(expected),
            &pretty(&nodes_value(nodes)),
        ));
    }
    check
}

fn type_check(path: &str, t: JsonType, nodes: &[&Value]) -> Check {
    let ok = !nodes.is_empty() && nodes.iter().all(|n| t.accepts(n));
    let actual = if nodes.is_empty() {
        "nothing".to_owned()
    } else {
        let mut kinds: Vec<&str> = nodes.iter().map(|n| JsonType::of(n)).collect();
        kinds.dedup();
        kinds.join(", ")
    };
    Check::new(format!("{path} type"), ok, t.name(), actual)
}

fn subset_check(
    expected: &Value,
    ignore: &[JsonPathExpr],
    body: &Value,
    render: Render<'_>,
) -> Check {
    let mut expected = match render(expected) {
        Ok(v) => v,
        Err(e) => {
            return Check::new(
                "json_subset",
                false,
                format!("a document (template error: {e})"),
                "not compared",
            );
        }
    };
    let mut actual = body.clone();
    for path in ignore {
        let removed =
            remove_paths(&mut expected, path).and_then(|()| remove_paths(&mut actual, path));
        if let Err(e) = removed {
            return Check::new(
                "json_subset",
                false,
                format!("a document with `{}` ignored", path.0),
                format!("an ignore path that does not run: {e}"),
            );
        }
    }
    let ok = is_subset(&expected, &actual);
    let mut check = Check::new(
        "json_subset",
        ok,
        "a response containing the expected document",
        if ok {
            "one"
        } else {
            "one that differs (see diff)"
        },
    );
    if !ok {
        check.diff = Some(unified_diff(
            &pretty(&expected),
            &pretty(&project(&expected, &actual)),
        ));
    }
    check
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The `expect` block `yaml` as the loader builds it, inside a one-step scenario.
    fn expect(yaml: &str) -> Expect {
        let block: Vec<String> = yaml.lines().map(|l| format!("      {l}")).collect();
        let doc = format!(
            "name: t\nsteps:\n  - request: {{ method: GET, path: /x }}\n    expect:\n{}\n",
            block.join("\n")
        );
        let opts = crate::scenario::LoadOptions {
            known_vars: ["id".to_owned()].into(),
            ..Default::default()
        };
        let mut suite =
            crate::scenario::load::load_str("t.yaml", &doc, std::path::Path::new("."), &opts)
                .unwrap_or_else(|d| panic!("{d:?}"));
        let steps = suite.scenarios.remove(0).steps;
        std::sync::Arc::try_unwrap(steps)
            .expect("one owner")
            .remove(0)
            .expect
    }

    fn response(status: u16, body: &str) -> Response {
        Response::new(
            status,
            vec![
                ("content-type".into(), "application/fhir+json".into()),
                (
                    "location".into(),
                    "http://x/Appointment/a-1/_history/1".into(),
                ),
            ],
            body.as_bytes().to_vec(),
        )
    }

    fn identity(v: &Value) -> Result<Value, TemplateError> {
        Ok(v.clone())
    }

    fn run(yaml: &str, status: u16, body: &str) -> Vec<Check> {
        let with = Judging {
            render: &identity,
            vars: &Map::new(),
            validated: None,
            request: None,
        };
        evaluate(&expect(yaml), &response(status, body), &with)
    }

    fn verdicts(checks: &[Check]) -> Vec<bool> {
        checks.iter().map(|c| c.passed).collect()
    }

    #[test]
    fn status_exact_class_and_any_of() {
        assert_eq!(verdicts(&run("status: 201", 201, "")), [true]);
        assert_eq!(
            run("status: 201", 422, "")[0].summary(),
            "status: expected 201, got 422"
        );
        assert_eq!(verdicts(&run("status: 4xx", 422, "")), [true]);
        assert_eq!(verdicts(&run("status: 4xx", 500, "")), [false]);
        assert_eq!(
            verdicts(&run("status: { any_of: [200, 201] }", 201, "")),
            [true]
        );
        assert_eq!(
            run("status: { any_of: [200, 4xx] }", 500, "")[0].expected,
            "one of 200, 4xx"
        );
    }

    #[test]
    fn headers_case_insensitive_with_every_operator() {
        let yaml = "headers:\n  Content-Type: application/fhir+json\n  LOCATION: { matches: 'Appointment/([^/]+)' }\n  etag: { absent: true }\n  location2: { present: false }\n  content-type2: { absent: false }\n";
        // Checked in key order: Content-Type, LOCATION, content-type2, etag, location2.
        assert_eq!(
            verdicts(&run(yaml, 200, "")),
            [true, true, false, true, true]
        );
        let c = run("headers: { location: { contains: '/Patient/' } }", 200, "");
        assert!(!c[0].passed);
        assert_eq!(c[0].actual, "\"http://x/Appointment/a-1/_history/1\"");
    }

    #[test]
    fn json_operators() {
        let body =
            r#"{"status":"booked","n":3,"tags":["a","b"],"entry":[{"m":"match"},{"m":"include"}]}"#;
        let yaml = r#"json:
  - { path: "$.status", equals: booked }
  - { path: "$.status", one_of: [booked, cancelled] }
  - { path: "$.status", matches: "^boo" }
  - { path: "$.n", type: integer }
  - { path: "$.n", type: number }
  - { path: "$.n", equals: 3.0 }
  - { path: "$.missing", absent: true }
  - { path: "$.status", exists: true }
  - { path: "$.tags", contains: b }
  - { path: "$.entry[*].m", contains: include }
  - { path: "$.entry[*]", count: 2 }
  - { path: "$.entry[*].m", equals: match }
  - { path: "$.missing", equals: 1 }
  - { path: "$.status", contains: ook }
"#;
        assert_eq!(
            verdicts(&run(yaml, 200, body)),
            [
                true, true, true, true, true, true, true, true, true, true, true, false, false,
                true
            ]
        );
    }

    #[test]
    fn object_mismatch_carries_a_diff() {
        let c = run(
            "json:\n  - { path: '$.a', equals: { x: 1, y: 2 } }\n",
            200,
            r#"{"a":{"x":1,"y":3}}"#,
        );
        assert!(!c[0].passed);
        assert!(
            c[0].diff
                .as_deref()
                .unwrap()
                .contains("-  \"y\": 2\n+  \"y\": 3"),
            "{:?}",
            c[0].diff
        );
    }

    #[test]
    fn non_json_body_fails_body_checks_once() {
        let c = run(
            "status: 200\njson:\n  - { path: '$.a', exists: true }\n",
            200,
            "<html>",
        );
        assert_eq!(verdicts(&c), [true, false]);
        assert!(
            c[1].actual.starts_with("a body that is not JSON"),
            "{}",
            c[1].actual
        );
        assert_eq!(
            run("json:\n  - { path: '$.a', exists: true }\n", 204, "")[0].actual,
            "no body"
        );
    }

    #[test]
    fn subset_with_ignored_paths_and_diff() {
        let body = r#"{"resourceType":"Practitioner","id":"p1","meta":{"versionId":"2"},"name":[{"family":"Doe","given":["Jo"]}]}"#;
        let ok = run(
            "json_subset:\n  value: { resourceType: Practitioner, id: other, name: [{ family: Doe }] }\n  ignore: ['$.id', '$.meta']\n",
            200,
            body,
        );
        assert!(ok[0].passed, "{:?}", ok[0]);
        let bad = run(
            "json_subset:\n  value: { name: [{ family: Roe }] }\n",
            200,
            body,
        );
        assert!(!bad[0].passed);
        assert_eq!(
            bad[0].diff.as_deref().unwrap(),
            "--- expected\n+++ actual\n@@ -1,7 +1,7 @@\n {\n   \"name\": [\n     {\n-      \"family\": \"Roe\"\n+      \"family\": \"Doe\"\n     }\n   ]\n }\n"
        );
    }

    #[test]
    fn templates_in_expected_values_are_rendered() {
        let render = |v: &Value| -> Result<Value, TemplateError> {
            Ok(if v == &Value::String("{{ id }}".into()) {
                Value::String("p1".into())
            } else {
                v.clone()
            })
        };
        let e = expect("json:\n  - { path: '$.id', equals: '{{ id }}' }\n");
        let with = Judging {
            render: &render,
            vars: &Map::new(),
            validated: None,
            request: None,
        };
        let c = evaluate(&e, &response(200, r#"{"id":"p1"}"#), &with);
        assert!(c[0].passed, "{:?}", c[0]);
    }

    const PATIENT: &str = r#"{"resourceType": "Patient", "id": "p1", "active": "yes", "birthDate": "1974-12-25",
        "name": [{"use": "official", "family": "Chalmers", "given": ["Peter", "James"]}]}"#;

    fn fhirpath(rule: &str, body: &str) -> Check {
        run(&format!("fhirpath:\n  - {rule}\n"), 200, body).remove(0)
    }

    #[test]
    fn fhirpath_assertions_take_the_json_operations() {
        for (rule, passes) in [
            (
                "{ expr: \"name.where(use = 'official').family\", equals: Chalmers }",
                true,
            ),
            (
                "{ expr: \"name.where(use = 'official').family\", equals: Smith }",
                false,
            ),
            ("{ expr: name.given, count: 2 }", true),
            ("{ expr: name.given, contains: James }", true),
            ("{ expr: name.given, one_of: [Peter, James] }", true),
            ("{ expr: name.given, matches: '^[PJ]' }", true),
            ("{ expr: birthDate, type: date }", true),
            ("{ expr: name.given, equals: [Peter, James] }", true),
            ("{ expr: name.family, not_equals: Smith }", true),
            ("{ expr: name.family, not_equals: Chalmers }", false),
            ("{ expr: photo, not_equals: x }", false),
            ("{ expr: name.given, none_of: [Paul, John] }", true),
            ("{ expr: name.given, none_of: [Paul, James] }", false),
            ("{ expr: name.given, not_contains: Paul }", true),
            ("{ expr: name.given, not_contains: James }", false),
            ("{ expr: name.given.count(), greater_than: 1 }", true),
            ("{ expr: name.given.count(), less_than: 2 }", false),
            ("{ expr: birthDate, greater_than: '1970-01-01' }", true),
            ("{ expr: birthDate, less_than: '1970-01-01' }", false),
            ("{ expr: name.family, greater_than: 3 }", false),
            ("{ expr: name.given, equals: [James, Peter] }", false),
            ("{ expr: name.given, equals: [Peter] }", false),
            ("{ expr: birthDate, type: FHIR.date }", true),
            ("{ expr: name, type: HumanName }", true),
            ("{ expr: birthDate, type: string }", false),
            ("{ expr: photo, absent: true }", true),
            ("{ expr: birth, absent: true }", true),
            ("{ expr: birth, exists: true }", false),
            ("{ expr: \"name.given.count() = 2\", equals: true }", true),
            // Not valid R4 and still judged: the value as sent, never a boolean.
            ("{ expr: active, equals: 'yes' }", true),
            ("{ expr: 'active = true', equals: true }", false),
        ] {
            let c = fhirpath(rule, PATIENT);
            assert_eq!(c.passed, passes, "{rule}: {c:?}");
        }
    }

    #[test]
    fn a_fhirpath_that_does_not_evaluate_fails_whatever_the_operation() {
        // matches() on two strings is an error, so even `absent` fails, with the reason.
        let c = fhirpath(
            "{ expr: \"name.given.matches('P')\", absent: true }",
            PATIENT,
        );
        assert!(!c.passed, "{c:?}");
        assert_eq!(c.expected, "an expression that evaluates");
        assert!(c.actual.contains("did not evaluate"), "{c:?}");
        let c = fhirpath("{ expr: name.family, exists: true }", "not json");
        assert!(!c.passed, "{c:?}");
    }

    #[test]
    fn fhirpath_reads_the_scenario_variables() {
        let e = expect("fhirpath:\n  - { expr: \"id = %id\", equals: true }\n");
        let vars: Map<String, Value> = [("id".to_owned(), Value::from("p1"))].into_iter().collect();
        let with = Judging {
            render: &identity,
            vars: &vars,
            validated: None,
            request: None,
        };
        let c = evaluate(&e, &response(200, PATIENT), &with);
        assert!(c[0].passed, "{:?}", c[0]);
        let vars: Map<String, Value> = [("id".to_owned(), Value::from("p2"))].into_iter().collect();
        let with = Judging {
            vars: &vars,
            ..with
        };
        assert!(!evaluate(&e, &response(200, PATIENT), &with)[0].passed);
    }

    #[test]
    fn a_fhirpath_syntax_error_is_the_file_s_error_at_its_line() {
        let doc = "name: t\nsteps:\n  - request: { method: GET, path: /x }\n    expect:\n      fhirpath:\n        - { expr: \"name.where(use = \", exists: true }\n";
        let errors = crate::scenario::load::load_str(
            "t.yaml",
            doc,
            std::path::Path::new("."),
            &Default::default(),
        )
        .expect_err("a syntax error");
        assert_eq!(errors[0].line, 6, "{errors:?}");
        assert!(errors[0].message.contains("invalid FHIRPath"), "{errors:?}");
        let doc = doc.replace("name.where(use = ", "name.wher(use = 'x')");
        let errors = crate::scenario::load::load_str(
            "t.yaml",
            &doc,
            std::path::Path::new("."),
            &Default::default(),
        )
        .expect_err("an unknown function");
        assert!(errors[0].message.contains("wher"), "{errors:?}");
    }

    #[test]
    fn request_expectations_judge_what_was_sent() {
        let sent = PreparedRequest {
            method: "GET".into(),
            url: "http://x/fhir/Patient?family=Chalmers".into(),
            headers: vec![("Accept".into(), "application/fhir+json".into())],
            body: None,
        };
        let judge = |yaml: &str| {
            let with = Judging {
                render: &identity,
                vars: &Map::new(),
                validated: None,
                request: Some(&sent),
            };
            evaluate(&expect(yaml), &response(200, "{}"), &with)
        };
        let ok = judge(
            "request:\n  method: get\n  url: { contains: family= }\n  headers: { accept: { contains: json } }\n",
        );
        assert_eq!(verdicts(&ok), [true, true, true], "{ok:?}");
        let bad = judge(
            "request:\n  method: POST\n  url: http://x/fhir/Patient\n  headers: { accept: { contains: xml }, prefer: { present: true } }\n",
        );
        assert_eq!(verdicts(&bad), [false, false, false, false], "{bad:?}");
        assert_eq!(bad[0].what, "request method");
        assert_eq!(bad[3].what, "request header prefer");
    }

    #[test]
    fn negated_and_ordered_operations_on_json() {
        let body = r#"{"total": 3, "status": "booked", "date": "2024-05-01", "tags": ["a", "b"]}"#;
        for (rule, passes) in [
            ("{ path: $.total, greater_than: 2 }", true),
            ("{ path: $.total, greater_than: 3 }", false),
            ("{ path: $.total, less_than: '10' }", true),
            ("{ path: $.date, less_than: '2024-06' }", true),
            ("{ path: $.status, not_equals: cancelled }", true),
            ("{ path: $.status, not_equals: booked }", false),
            ("{ path: $.missing, not_equals: x }", false),
            ("{ path: $.status, none_of: [cancelled, noshow] }", true),
            ("{ path: $.tags, not_contains: c }", true),
            ("{ path: $.tags, not_contains: a }", false),
            ("{ path: $.status, greater_than: 1 }", false),
        ] {
            let c = run(&format!("json:\n  - {rule}\n"), 200, body).remove(0);
            assert_eq!(c.passed, passes, "{rule}: {c:?}");
        }
    }
}
