use serde::{Deserialize, Serialize};
use serde_json::Value;

use super::diff::{pretty, unified_diff};
use super::fhir;
use super::json::{is_subset, project, remove_paths};
use crate::http::Response;
use crate::scenario::schema::{Expect, HeaderExpect, JsonAssert, JsonType};
use crate::template::value_to_text;

/// The verdict of one expectation.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Check {
    /// What was checked, e.g. `status` or `$.status equals "cancelled"`.
    pub what: String,
    pub passed: bool,
    pub expected: String,
    pub actual: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub diff: Option<String>,
    /// The line of the expectation in the scenario file, where a failure points.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub line: Option<u64>,
}

impl Check {
    pub(crate) fn new(
        what: impl Into<String>,
        passed: bool,
        expected: impl Into<String>,
        actual: impl Into<String>,
    ) -> Self {
        Check {
            what: what.into(),
            passed,
            expected: expected.into(),
            actual: actual.into(),
            diff: None,
            line: None,
        }
    }

    /// One line: `status: expected 201, got 422`.
    pub fn summary(&self) -> String {
        format!(
            "{}: expected {}, got {}",
            self.what, self.expected, self.actual
        )
    }
}

/// Renders the templates inside an expected value.
pub type Render<'a> = &'a dyn Fn(&Value) -> Result<Value, String>;

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

pub(crate) fn json_eq(a: &Value, b: &Value) -> bool {
    is_subset(a, b) && is_subset(b, a)
}

/// Judges `response` against every expectation of `expect`, in a fixed order:
/// status, headers, JSON assertions, subset, OperationOutcome, Bundle.
pub fn evaluate(expect: &Expect, response: &Response, render: Render<'_>) -> Vec<Check> {
    let mut checks = Vec::new();
    if let Some(status) = &expect.status {
        let ok = status.value.matches(response.status);
        checks.push(Check::new(
            "status",
            ok,
            status.value.to_string(),
            response.status.to_string(),
        ));
    }
    for (name, rule) in &expect.headers {
        checks.push(header_check(name, &rule.value, response, render));
    }
    let needs_body = !expect.json.is_empty()
        || expect.json_subset.is_some()
        || expect.operation_outcome.is_some()
        || expect.bundle.is_some();
    if !needs_body {
        return checks;
    }
    let body = match response.json() {
        Ok(b) => b,
        Err(why) => {
            checks.push(Check::new("response body", false, "a JSON document", why));
            return checks;
        }
    };
    for a in &expect.json {
        checks.push(json_check(&a.value, body, render));
    }
    if let Some(sub) = &expect.json_subset {
        checks.push(subset_check(
            &sub.value.value,
            &sub.value.ignore,
            body,
            render,
        ));
    }
    if let Some(oo) = &expect.operation_outcome {
        checks.push(fhir::outcome_check(&oo.value, body, render));
    }
    if let Some(b) = &expect.bundle {
        checks.extend(fhir::bundle_checks(&b.value, body, render));
    }
    // Kept in the step's record for the rest of the run.
    checks.shrink_to_fit();
    checks
}

fn render_text(text: &str, render: Render<'_>) -> Result<String, String> {
    render(&Value::String(text.to_owned())).map(|v| value_to_text(&v))
}

fn header_check(name: &str, rule: &HeaderExpect, response: &Response, render: Render<'_>) -> Check {
    let actual = response.header(name);
    let shown = actual
        .clone()
        .unwrap_or_else(|| "no such header".to_owned());
    let what = format!("header {}", name.to_ascii_lowercase());
    if let Some(present) = rule.present.or(rule.absent.map(|a| !a)) {
        let expected = if present { "present" } else { "absent" };
        return Check::new(what, actual.is_some() == present, expected, shown);
    }
    if let Some(re) = &rule.matches {
        let ok = actual.as_deref().is_some_and(|v| re.0.is_match(v));
        return Check::new(
            what,
            ok,
            format!("a value matching /{}/", re.0.as_str()),
            shown,
        );
    }
    let (text, contains) = match (&rule.equals, &rule.contains) {
        (Some(e), _) => (e, false),
        (None, Some(c)) => (c, true),
        (None, None) => return Check::new(what, true, "anything", shown),
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

fn json_check(a: &JsonAssert, body: &Value, render: Render<'_>) -> Check {
    let path = a.path.0.as_str();
    let nodes = match a.path.select(body) {
        Ok(n) => n,
        Err(e) => return Check::new(path, false, "a query that runs", format!("an error: {e}")),
    };
    let found = || {
        if nodes.is_empty() {
            "nothing".to_owned()
        } else {
            show(&nodes_value(&nodes))
        }
    };
    if let Some(exists) = a.exists.or(a.absent.map(|x| !x)) {
        let what = format!("{path} {}", if exists { "exists" } else { "is absent" });
        return Check::new(
            what,
            nodes.is_empty() != exists,
            if exists { "a value" } else { "nothing" },
            found(),
        );
    }
    if let Some(count) = a.count {
        return Check::new(
            format!("{path} count"),
            nodes.len() == count,
            count.to_string(),
            nodes.len().to_string(),
        );
    }
    let rendered = |v: &Value| render(v);
    if let Some(expected) = &a.equals {
        let expected = match rendered(expected) {
            Ok(v) => v,
            Err(e) => {
                return Check::new(
                    format!("{path} equals"),
                    false,
                    format!("a value (template error: {e})"),
                    found(),
                );
            }
        };
        let ok = !nodes.is_empty() && nodes.iter().all(|n| json_eq(&expected, n));
        let mut check = Check::new(
            format!("{path} equals {}", show(&expected)),
            ok,
            show(&expected),
            found(),
        );
        if !ok && (expected.is_object() || expected.is_array()) && !nodes.is_empty() {
            check.diff = Some(unified_diff(
                &pretty(&expected),
                &pretty(&nodes_value(&nodes)),
            ));
        }
        return check;
    }
    if let Some(re) = &a.matches {
        let ok = !nodes.is_empty()
            && nodes.iter().all(|n| {
                matches!(n, Value::String(_) | Value::Number(_) | Value::Bool(_))
                    && re.0.is_match(&value_to_text(n))
            });
        return Check::new(
            format!("{path} matches /{}/", re.0.as_str()),
            ok,
            format!("a value matching /{}/", re.0.as_str()),
            found(),
        );
    }
    if let Some(t) = a.type_ {
        let ok = !nodes.is_empty() && nodes.iter().all(|n| t.accepts(n));
        let actual = if nodes.is_empty() {
            "nothing".to_owned()
        } else {
            let mut kinds: Vec<&str> = nodes.iter().map(|n| JsonType::of(n)).collect();
            kinds.dedup();
            kinds.join(", ")
        };
        return Check::new(format!("{path} type"), ok, t.name(), actual);
    }
    if let Some(options) = &a.one_of {
        let options = match rendered(&Value::Array(options.clone())) {
            Ok(Value::Array(o)) => o,
            Ok(_) | Err(_) => {
                return Check::new(
                    format!("{path} one of"),
                    false,
                    "a list (template error)",
                    found(),
                );
            }
        };
        let ok = !nodes.is_empty() && nodes.iter().all(|n| options.iter().any(|o| json_eq(o, n)));
        return Check::new(
            format!("{path} is one of {}", show(&Value::Array(options.clone()))),
            ok,
            format!("one of {}", show(&Value::Array(options))),
            found(),
        );
    }
    if let Some(expected) = &a.contains {
        let expected = match rendered(expected) {
            Ok(v) => v,
            Err(e) => {
                return Check::new(
                    format!("{path} contains"),
                    false,
                    format!("a value (template error: {e})"),
                    found(),
                );
            }
        };
        let ok = match nodes.as_slice() {
            [Value::String(s)] => expected.as_str().is_some_and(|e| s.contains(e)),
            [Value::Array(items)] => items.iter().any(|i| json_eq(&expected, i)),
            many => many.iter().any(|n| json_eq(&expected, n)),
        };
        return Check::new(
            format!("{path} contains {}", show(&expected)),
            ok,
            format!("something containing {}", show(&expected)),
            found(),
        );
    }
    Check::new(path, false, "an assertion", "none given")
}

fn subset_check(
    expected: &Value,
    ignore: &[crate::scenario::schema::JsonPathExpr],
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
        remove_paths(&mut expected, &path.0);
        remove_paths(&mut actual, &path.0);
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
    use crate::scenario::schema::Expect;

    fn expect(yaml: &str) -> Expect {
        serde_saphyr::from_str(yaml).unwrap()
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

    fn identity(v: &Value) -> Result<Value, String> {
        Ok(v.clone())
    }

    fn run(yaml: &str, status: u16, body: &str) -> Vec<Check> {
        evaluate(&expect(yaml), &response(status, body), &identity)
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
        let render = |v: &Value| -> Result<Value, String> {
            Ok(if v == &Value::String("{{ id }}".into()) {
                Value::String("p1".into())
            } else {
                v.clone()
            })
        };
        let e = expect("json:\n  - { path: '$.id', equals: '{{ id }}' }\n");
        let c = evaluate(&e, &response(200, r#"{"id":"p1"}"#), &render);
        assert!(c[0].passed, "{:?}", c[0]);
    }
}
