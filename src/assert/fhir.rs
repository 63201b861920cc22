//! FHIR-aware expectations: an OperationOutcome with a matching issue, and the
//! shape of a Bundle.

use serde_json::Value;

use super::check::{Check, Render, json_eq};
use crate::record::{FoundIssue, IssueSeverity};
use crate::scenario::schema::{BundleExpect, OutcomeExpect, ValidExpect};
use crate::template::value_to_text;
use crate::validation::Validated;

fn issue_text(issue: &Value) -> Vec<&str> {
    [issue.pointer("/details/text"), issue.get("diagnostics")]
        .into_iter()
        .flatten()
        .filter_map(Value::as_str)
        .collect()
}

fn describe_issues(body: &Value) -> String {
    let issues = body
        .get("issue")
        .and_then(Value::as_array)
        .map(Vec::as_slice)
        .unwrap_or_default();
    if issues.is_empty() {
        return "an OperationOutcome with no issue".to_owned();
    }
    let shown: Vec<String> = issues
        .iter()
        .map(|i| {
            let sev = i.get("severity").and_then(Value::as_str).unwrap_or("?");
            let code = i.get("code").and_then(Value::as_str).unwrap_or("?");
            match issue_text(i).first() {
                Some(t) => format!("{sev}/{code} {t:?}"),
                None => format!("{sev}/{code}"),
            }
        })
        .collect();
    format!("issues [{}]", shown.join("; "))
}

/// Passes when the body is an OperationOutcome with at least one issue matching every
/// given field (`text` against `details.text` or `diagnostics`).
pub(crate) fn outcome_check(expect: &OutcomeExpect, body: &Value, render: Render<'_>) -> Check {
    let render_opt =
        |t: &Option<String>| -> Result<Option<String>, crate::template::TemplateError> {
            t.as_ref()
                .map(|t| render(&Value::String(t.clone())).map(|v| value_to_text(&v)))
                .transpose()
        };
    let (text, text_contains) = match (render_opt(&expect.text), render_opt(&expect.text_contains))
    {
        (Ok(a), Ok(b)) => (a, b),
        (Err(e), _) | (_, Err(e)) => {
            return Check::new(
                "OperationOutcome",
                false,
                format!("an outcome (template error: {e})"),
                "not compared",
            );
        }
    };
    let mut wanted = Vec::new();
    if let Some(s) = &expect.severity {
        wanted.push(format!("severity {s}"));
    }
    if let Some(c) = &expect.code {
        wanted.push(format!("code {c}"));
    }
    if let Some(t) = &text {
        wanted.push(format!("text {t:?}"));
    }
    if let Some(t) = &text_contains {
        wanted.push(format!("text containing {t:?}"));
    }
    let expected = format!("an OperationOutcome issue with {}", wanted.join(", "));
    let rt = body
        .get("resourceType")
        .and_then(Value::as_str)
        .unwrap_or("no resourceType");
    if rt != "OperationOutcome" {
        return Check::new("OperationOutcome", false, expected, format!("a {rt}"));
    }
    let issues = body
        .get("issue")
        .and_then(Value::as_array)
        .map(Vec::as_slice)
        .unwrap_or_default();
    let ok = issues.iter().any(|i| {
        let field = |k: &str| i.get(k).and_then(Value::as_str);
        expect
            .severity
            .as_deref()
            .is_none_or(|s| field("severity") == Some(s))
            && expect
                .code
                .as_deref()
                .is_none_or(|c| field("code") == Some(c))
            && text.as_deref().is_none_or(|t| issue_text(i).contains(&t))
            && text_contains
                .as_deref()
                .is_none_or(|t| issue_text(i).iter().any(|x| x.contains(t)))
    });
    Check::new("OperationOutcome", ok, expected, describe_issues(body))
}

/// One check per field given, or a single failed one when the body is not a Bundle.
pub(crate) fn bundle_checks(expect: &BundleExpect, body: &Value, render: Render<'_>) -> Vec<Check> {
    let rt = body
        .get("resourceType")
        .and_then(Value::as_str)
        .unwrap_or("no resourceType");
    if rt != "Bundle" {
        return vec![Check::new("Bundle", false, "a Bundle", format!("a {rt}"))];
    }
    let entries = body
        .get("entry")
        .and_then(Value::as_array)
        .map(Vec::as_slice)
        .unwrap_or_default();
    let mut checks = Vec::new();
    if let Some(t) = &expect.type_ {
        let actual = body.get("type").and_then(Value::as_str).unwrap_or("none");
        checks.push(Check::new("Bundle.type", actual == t, t.clone(), actual));
    }
    if let Some(total) = &expect.total {
        checks.push(count_check(
            "Bundle.total",
            total,
            body.get("total"),
            render,
        ));
    }
    if let Some(n) = &expect.entries {
        let actual = Value::from(entries.len());
        checks.push(count_check("Bundle entries", n, Some(&actual), render));
    }
    if let Some(min) = expect.min_entries {
        checks.push(Check::new(
            "Bundle entries",
            entries.len() >= min,
            format!("at least {min}"),
            entries.len().to_string(),
        ));
    }
    if let Some(types) = &expect.resource_types {
        let actual = entry_values(entries, "/resource/resourceType");
        checks.push(only_check("Bundle entry resource types", types, actual));
    }
    if let Some(modes) = &expect.search_modes {
        let actual = entry_values(entries, "/search/mode");
        checks.push(only_check("Bundle entry search modes", modes, actual));
    }
    checks
}

/// A count compared as JSON; a templated count renders to text, so a number in it is
/// read as one.
fn count_check(what: &str, expected: &Value, actual: Option<&Value>, render: Render<'_>) -> Check {
    let shown = actual.map_or_else(|| "none".to_owned(), Value::to_string);
    match render(expected) {
        Ok(e) => {
            let e = match &e {
                Value::String(s) => s.parse::<u64>().map(Value::from).unwrap_or(e.clone()),
                _ => e,
            };
            Check::new(
                what,
                actual.is_some_and(|a| json_eq(&e, a)),
                e.to_string(),
                shown,
            )
        }
        Err(err) => Check::new(
            what,
            false,
            format!("a number (template error: {err})"),
            shown,
        ),
    }
}

/// Passes when every entry's value is one of `allowed`.
fn only_check(what: &str, allowed: &[String], actual: Vec<String>) -> Check {
    let ok = actual.iter().all(|a| allowed.contains(a));
    Check::new(
        what,
        ok,
        format!("only {}", allowed.join(", ")),
        format!("[{}]", actual.join(", ")),
    )
}

/// The text at `pointer` in each entry, `none` where there is none.
fn entry_values(entries: &[Value], pointer: &str) -> Vec<String> {
    entries
        .iter()
        .map(|e| {
            e.pointer(pointer)
                .and_then(Value::as_str)
                .unwrap_or("none")
                .to_owned()
        })
        .collect()
}

/// `valid`: passes when validation found no issue at `fails_at` or worse that the
/// target does not suppress. Without a validation (a build without it, which skips
/// such scenarios before they run) it fails, never passes vacuously.
pub(crate) fn valid_check(spec: &ValidExpect, validated: Option<&Validated>) -> Check {
    let what = match &spec.profile {
        Some(p) => format!("valid against {p}"),
        None => "valid".to_owned(),
    };
    let severity = match spec.fails_at {
        IssueSeverity::Error => "no error",
        IssueSeverity::Warning => "no error or warning",
    };
    let against = match &spec.profile {
        Some(p) => format!("FHIR R4, the profiles it claims and {p}"),
        None => "FHIR R4 and the profiles it claims".to_owned(),
    };
    let expected = format!("{severity} against {against}");
    let Some(validated) = validated else {
        return Check::new(
            what,
            false,
            expected,
            "not validated: this build has no FHIR validation",
        );
    };
    if let Some(why) = &validated.not_validated {
        return Check::new(what, false, expected, format!("not validated: {why}"));
    }
    let failing: Vec<&FoundIssue> = validated.failing(spec.fails_at).collect();
    let suppressed = validated.issues.iter().filter(|i| i.suppressed).count();
    let warnings = validated
        .issues
        .iter()
        .filter(|i| !i.suppressed && i.severity == IssueSeverity::Warning)
        .count();
    let mut actual = if failing.is_empty() {
        let mut parts = vec!["valid".to_owned()];
        if warnings > 0 {
            parts.push(plural(warnings, "warning"));
        }
        parts.join(", ")
    } else {
        let listed = FoundIssue::in_one_line(&failing, |i| {
            format!("{} {}", i.severity.as_str(), i.summary())
        });
        format!("{}: {listed}", plural(failing.len(), "issue"))
    };
    if suppressed > 0 {
        actual.push_str(&format!(
            " ({suppressed} suppressed by the target's validation.ignore)"
        ));
    }
    Check::new(what, failing.is_empty(), expected, actual)
}

fn plural(n: usize, word: &str) -> String {
    if n == 1 {
        format!("1 {word}")
    } else {
        format!("{n} {word}s")
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn found(severity: IssueSeverity, suppressed: bool) -> FoundIssue {
        FoundIssue {
            severity,
            location: "Practitioner.gender".to_owned(),
            message: "\"M\" is not in the required value set".to_owned(),
            profile: None,
            rule: None,
            suppressed,
        }
    }

    #[test]
    fn valid_fails_on_an_error_and_never_passes_unvalidated() {
        let spec = ValidExpect::default();
        let clean = Validated::default();
        assert!(valid_check(&spec, Some(&clean)).passed);
        let bad = Validated {
            not_validated: None,
            issues: vec![found(IssueSeverity::Error, false)],
        };
        let c = valid_check(&spec, Some(&bad));
        assert!(!c.passed);
        assert!(
            c.actual.contains("1 issue: error Practitioner.gender"),
            "{c:?}"
        );
        assert!(!valid_check(&spec, None).passed);
        let no_body = Validated {
            not_validated: Some("no body".to_owned()),
            issues: Vec::new(),
        };
        let c = valid_check(&spec, Some(&no_body));
        assert!(!c.passed && c.actual == "not validated: no body", "{c:?}");
    }

    #[test]
    fn valid_counts_warnings_only_when_asked_and_never_suppressed_issues() {
        let warned = Validated {
            not_validated: None,
            issues: vec![
                found(IssueSeverity::Warning, false),
                found(IssueSeverity::Error, true),
            ],
        };
        let c = valid_check(&ValidExpect::default(), Some(&warned));
        assert!(c.passed, "{c:?}");
        assert!(
            c.actual.contains("1 warning") && c.actual.contains("1 suppressed"),
            "{c:?}"
        );
        let strict = ValidExpect {
            profile: Some("http://x/p".to_owned()),
            fails_at: IssueSeverity::Warning,
        };
        let c = valid_check(&strict, Some(&warned));
        assert!(!c.passed);
        assert_eq!(c.what, "valid against http://x/p");
    }

    fn id(v: &Value) -> Result<Value, crate::template::TemplateError> {
        Ok(v.clone())
    }

    fn oo(yaml: &str, body: Value) -> Check {
        outcome_check(&serde_saphyr::from_str(yaml).unwrap(), &body, &id)
    }

    #[test]
    fn outcome_matches_any_issue_on_all_given_fields() {
        let body = json!({"resourceType": "OperationOutcome", "issue": [
            {"severity": "warning", "code": "informational"},
            {"severity": "error", "code": "processing", "details": {"text": "Appointment Create Error: Appointment type must be scheduleable"}}]});
        assert!(oo("{ severity: error, code: processing }", body.clone()).passed);
        assert!(
            oo(
                "{ text: 'Appointment Create Error: Appointment type must be scheduleable' }",
                body.clone()
            )
            .passed
        );
        assert!(
            oo(
                "{ text_contains: must be scheduleable, severity: error }",
                body.clone()
            )
            .passed
        );
        let c = oo("{ severity: warning, code: processing }", body);
        assert!(!c.passed);
        assert_eq!(
            c.actual,
            "issues [warning/informational; error/processing \"Appointment Create Error: Appointment type must be scheduleable\"]"
        );
        assert_eq!(
            oo("{ severity: error }", json!({"resourceType": "Patient"})).actual,
            "a Patient"
        );
    }

    #[test]
    fn bundle_shape() {
        let body = json!({"resourceType": "Bundle", "type": "searchset", "total": 2, "entry": [
            {"resource": {"resourceType": "Practitioner"}, "search": {"mode": "match"}},
            {"resource": {"resourceType": "Location"}, "search": {"mode": "include"}}]});
        let e: BundleExpect = serde_saphyr::from_str("{ type: searchset, total: 2, entries: 2, min_entries: 1, resource_types: [Practitioner, Location], search_modes: [match, include] }").unwrap();
        assert!(bundle_checks(&e, &body, &id).iter().all(|c| c.passed));
        let e: BundleExpect =
            serde_saphyr::from_str("{ type: batch, total: '3', search_modes: [match] }").unwrap();
        let c = bundle_checks(&e, &body, &id);
        assert_eq!(
            c.iter().map(|c| c.passed).collect::<Vec<_>>(),
            [false, false, false]
        );
        assert_eq!(c[2].actual, "[match, include]");
    }
}
