//! The corpus in `tests/corpus/`: every valid resource passes without errors or
//! warnings, and each invalid one gets the issue of its class, at its FHIRPath
//! location, without a flood of follow-on issues.

use std::path::Path;
use std::sync::OnceLock;

use fhir_check::{Issue, Severity, Validator};
use serde_json::{Value, json};

fn validator() -> &'static Validator {
    static V: OnceLock<Validator> = OnceLock::new();
    V.get_or_init(|| Validator::new().expect("the R4 packs load"))
}

fn corpus(name: &str) -> Value {
    let path = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/corpus")
        .join(name);
    serde_json::from_str(&std::fs::read_to_string(&path).unwrap()).unwrap()
}

fn issues(name: &str) -> Vec<Issue> {
    validator().validate(&corpus(name), None)
}

fn errors(issues: &[Issue]) -> Vec<&Issue> {
    issues.iter().filter(|i| i.is_error()).collect()
}

/// The one error at `path` whose message contains `text`; the list on failure.
#[track_caller]
fn has_error(issues: &[Issue], path: &str, text: &str) {
    assert!(
        issues
            .iter()
            .any(|i| i.is_error() && i.path == path && i.message.contains(text)),
        "no error at {path} containing {text:?} in {issues:#?}"
    );
}

#[test]
fn valid_resources_have_no_errors_or_warnings() {
    for name in [
        "valid/practitioner.json",
        "valid/appointment.json",
        "valid/patient.json",
        "valid/bundle-searchset.json",
    ] {
        let found = issues(name);
        let bad: Vec<_> = found
            .iter()
            .filter(|i| i.severity != Severity::Information)
            .collect();
        assert!(bad.is_empty(), "{name}: {bad:#?}");
    }
}

#[test]
fn a_string_where_a_boolean_belongs_is_an_error() {
    let found = issues("invalid/wrong-type.json");
    has_error(&found, "Practitioner.active", "boolean");
}

#[test]
fn a_name_that_is_not_an_array_is_an_error_and_no_invariant_flood() {
    let found = issues("invalid/name-not-array.json");
    has_error(&found, "Practitioner.name", "not array");
    // The invariants cannot run on a resource the typed model cannot read: one note,
    // not one warning per invariant.
    let not_evaluated: Vec<_> = found
        .iter()
        .filter(|i| {
            i.message.contains("not evaluated") || i.message.contains("could not be evaluated")
        })
        .collect();
    assert!(not_evaluated.len() <= 1, "{found:#?}");
    assert!(
        not_evaluated
            .iter()
            .all(|i| i.severity == Severity::Information),
        "{found:#?}"
    );
}

#[test]
fn gender_m_fails_the_required_binding() {
    let found = issues("invalid/gender-m.json");
    has_error(&found, "Practitioner.gender", "administrative-gender");
    assert_eq!(errors(&found).len(), 1, "{found:#?}");
}

#[test]
fn an_appointment_without_status_is_an_error() {
    let found = issues("invalid/appointment-no-status.json");
    has_error(&found, "Appointment.status", "status is required");
}

#[test]
fn app_3_an_appointment_booked_without_start_and_end() {
    let found = issues("invalid/appointment-app-3.json");
    let app3: Vec<_> = found
        .iter()
        .filter(|i| i.rule.as_deref() == Some("app-3"))
        .collect();
    assert_eq!(app3.len(), 1, "{found:#?}");
    assert!(app3[0].is_error());
    assert_eq!(app3[0].path, "Appointment");
}

#[test]
fn an_id_with_a_space_is_an_error() {
    let found = issues("invalid/bad-id.json");
    has_error(&found, "Practitioner.id", "id pattern");
}

#[test]
fn an_empty_array_is_an_error() {
    let found = issues("invalid/empty-array.json");
    has_error(&found, "Practitioner.telecom", "empty array");
}

#[test]
fn an_unknown_element_is_an_error() {
    let found = issues("invalid/unknown-element.json");
    has_error(&found, "Practitioner.favouriteColour", "unknown");
}

#[test]
fn a_bad_entry_in_a_bundle_names_its_entry_and_nothing_else_fails() {
    let found = issues("invalid/bundle-bad-entry.json");
    has_error(&found, "Bundle.entry[3].resource.name", "not array");
    let errs = errors(&found);
    assert!(
        errs.iter()
            .all(|i| i.path.starts_with("Bundle.entry[3].resource")),
        "{found:#?}"
    );
    // One bad entry of five: a few issues, not hundreds (dom-6 notes aside, one per
    // entry).
    let others: Vec<_> = found
        .iter()
        .filter(|i| i.rule.as_deref() != Some("dom-6"))
        .collect();
    assert!(others.len() <= 3, "{found:#?}");
}

#[test]
fn bundle_invariants_are_checked_apart_from_the_entries() {
    let found = issues("invalid/bundle-total-not-search.json");
    let rules: Vec<_> = found.iter().filter_map(|i| i.rule.as_deref()).collect();
    assert!(rules.contains(&"bdl-1"), "{found:#?}");
    has_error(
        &found,
        "Bundle.entry[1].resource.gender",
        "administrative-gender",
    );
}

#[test]
fn input_that_is_not_a_resource_is_an_error() {
    for value in [
        json!([]),
        json!("x"),
        json!(null),
        json!(42),
        json!({}),
        json!({"resourceType": 7}),
        json!({"resourceType": ""}),
    ] {
        let found = validator().validate(&value, None);
        assert_eq!(found.len(), 1, "{value}: {found:#?}");
        assert!(found[0].is_error(), "{value}: {found:#?}");
        assert!(
            found[0].message.contains("not a FHIR resource"),
            "{found:#?}"
        );
    }
}

#[test]
fn a_bundle_entry_that_is_not_a_resource_names_the_entry() {
    let bundle = json!({
        "resourceType": "Bundle", "type": "collection",
        "entry": [{"resource": {"resourceType": "Basic", "code": {"text": "x"}}}, {"resource": "oops"}]
    });
    let found = validator().validate(&bundle, None);
    has_error(&found, "Bundle.entry[1].resource", "not a FHIR resource");
}

#[test]
fn an_unknown_resource_type_is_an_error() {
    let found = validator().validate(&json!({"resourceType": "Banana", "id": "b"}), None);
    assert!(!errors(&found).is_empty(), "{found:#?}");
}

#[test]
fn deep_nesting_is_reported_not_walked() {
    let mut value = json!("leaf");
    for _ in 0..200 {
        value = json!({ "extension": [{ "url": "x", "valueString": "y", "extension": [value] }] });
    }
    let mut resource = value.as_object().unwrap().clone();
    resource.insert("resourceType".into(), json!("Patient"));
    let found = validator().validate(&Value::Object(resource), None);
    assert_eq!(found.len(), 1, "{found:#?}");
    assert!(found[0].message.contains("levels deep"));
}

#[test]
fn dom_6_is_a_best_practice_note_and_txt_invariants_do_not_run() {
    let mut p = corpus("valid/practitioner.json");
    p["text"] = json!({"status": "generated", "div": "<div xmlns=\"http://www.w3.org/1999/xhtml\">x</div>"});
    let found = validator().validate(&p, None);
    assert!(
        found
            .iter()
            .all(|i| !matches!(i.rule.as_deref(), Some("txt-1" | "txt-2"))),
        "{found:#?}"
    );
    let plain = validator().validate(&corpus("valid/practitioner.json"), None);
    for i in plain.iter().filter(|i| i.rule.as_deref() == Some("dom-6")) {
        assert_eq!(i.severity, Severity::Information, "{i:#?}");
    }
}

#[test]
fn contained_resources_do_not_break_dom_3() {
    let mut p = corpus("valid/practitioner.json");
    p["contained"] = json!([{"resourceType": "Organization", "id": "org1", "name": "Acme"}]);
    p["extension"] =
        json!([{"url": "http://example.org/employer", "valueReference": {"reference": "#org1"}}]);
    let found = validator().validate(&p, None);
    assert!(
        found.iter().all(|i| i.rule.as_deref() != Some("dom-3")),
        "{found:#?}"
    );
    assert!(errors(&found).is_empty(), "{found:#?}");
}

/// ele-1 and ext-1 are checked on the JSON (not by the FHIRPath evaluator, where each
/// instance costs the whole resource): same verdicts, one issue each, rule named.
#[test]
fn ele_1_and_ext_1_are_checked_on_the_json() {
    let found = validator().validate(
        &json!({
            "resourceType": "Patient",
            "id": "p1",
            "name": [{"id": "n1"}],
            "extension": [
                {"url": "http://x/both", "valueString": "a",
                 "extension": [{"url": "inner", "valueBoolean": true}]},
                {"url": "http://x/neither"},
                {"url": "http://x/fine", "valueCode": "ok"}
            ],
            "_birthDate": {"extension": [{"url": "http://x/ok", "valueString": "b"}]},
            "telecom": [{"system": "phone", "value": "1", "extension": [
                // A value with only extensions is a value: ext-1 holds (the R4
                // examples' CodeSystem-v2-0207 has such translations).
                {"url": "http://x/primitive-only", "_valueString": {"extension": [
                    {"url": "http://x/t", "valueCode": "nl"}
                ]}}
            ]}]
        }),
        None,
    );
    let rule = |r: &str| -> Vec<&str> {
        found
            .iter()
            .filter(|i| i.rule.as_deref() == Some(r))
            .map(|i| i.path.as_str())
            .collect()
    };
    assert_eq!(rule("ele-1"), ["Patient.name[0]"], "{found:#?}");
    assert_eq!(
        rule("ext-1"),
        ["Patient.extension[0]", "Patient.extension[1]"],
        "{found:#?}"
    );
    assert!(
        found
            .iter()
            .filter(|i| matches!(i.rule.as_deref(), Some("ele-1" | "ext-1")))
            .all(Issue::is_error)
    );
}

/// An element whose only member is an empty array gets the empty-array error, its
/// cause, and not ele-1 as well.
#[test]
fn an_element_emptied_by_an_empty_array_is_one_error() {
    let found = validator().validate(
        &json!({
            "resourceType": "Appointment", "id": "a1", "status": "proposed",
            "participant": [{"status": "accepted", "actor": {"display": "x"}}],
            "appointmentType": {"coding": []}
        }),
        None,
    );
    let errors = errors(&found);
    assert_eq!(errors.len(), 1, "{errors:#?}");
    assert_eq!(errors[0].path, "Appointment.appointmentType.coding");
}

/// An invariant on a repeating element is first judged on all the elements at once;
/// when one element breaks it, the issue still names that element.
#[test]
fn a_broken_invariant_on_one_of_many_repeats_names_that_repeat() {
    let telecom: Vec<Value> = (0..12)
        .map(|i| json!({"system": "phone", "value": format!("555-01{i:02}")}))
        .chain([json!({"use": "work"})]) // cpt-2: a value needs a system
        .collect();
    let mut bad = telecom.clone();
    bad[12] = json!({"value": "555-0199"});
    let resource = |t: Vec<Value>| json!({"resourceType": "Patient", "id": "p1", "telecom": t});
    let found = validator().validate(&resource(bad), None);
    let cpt2: Vec<&str> = found
        .iter()
        .filter(|i| i.rule.as_deref() == Some("cpt-2"))
        .map(|i| i.path.as_str())
        .collect();
    assert_eq!(cpt2, ["Patient.telecom[12]"], "{found:#?}");
    let fine = validator().validate(&resource(telecom), None);
    assert!(
        fine.iter().all(|i| i.rule.as_deref() != Some("cpt-2")),
        "{fine:#?}"
    );
}
