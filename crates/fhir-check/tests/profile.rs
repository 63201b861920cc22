//! US Core STU3.1.1 Practitioner (`profiles/us-core-3.1.1/` at the repository root, CC0): a Practitioner
//! missing what the profile requires fails it, a complete one passes.

use std::path::Path;

use fhir_check::{Issue, Validator};
use serde_json::{Value, json};

const US_CORE_PRACTITIONER: &str =
    "http://hl7.org/fhir/us/core/StructureDefinition/us-core-practitioner";

fn us_core() -> Validator {
    let path = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../../profiles/us-core-3.1.1/StructureDefinition-us-core-practitioner.json");
    let sd: Value = serde_json::from_str(&std::fs::read_to_string(path).unwrap()).unwrap();
    let mut v = Validator::new().unwrap();
    let loaded = v.add_profiles(vec![sd]).unwrap();
    assert_eq!(loaded.profiles, [US_CORE_PRACTITIONER]);
    assert!(v.has_profile(US_CORE_PRACTITIONER));
    assert!(v.has_profile(&format!("{US_CORE_PRACTITIONER}|3.1.1")));
    assert_eq!(
        v.profile_type(US_CORE_PRACTITIONER).as_deref(),
        Some("Practitioner")
    );
    v
}

fn complete() -> Value {
    json!({
        "resourceType": "Practitioner", "id": "p1",
        "identifier": [{"system": "http://hl7.org/fhir/sid/us-npi", "value": "9941339108"}],
        "name": [{"family": "Smith", "given": ["Jane"]}],
        "gender": "female"
    })
}

fn profile_errors(issues: &[Issue]) -> Vec<&Issue> {
    issues
        .iter()
        .filter(|i| i.is_error() && i.profile.as_deref() == Some(US_CORE_PRACTITIONER))
        .collect()
}

#[test]
fn a_complete_practitioner_passes_us_core() {
    let v = us_core();
    let issues = v.validate(&complete(), Some(US_CORE_PRACTITIONER));
    assert!(issues.iter().all(|i| !i.is_error()), "{issues:#?}");
}

#[test]
fn a_practitioner_without_identifier_and_name_fails_us_core_but_not_r4() {
    let v = us_core();
    let mut p = complete();
    let p_obj = p.as_object_mut().unwrap();
    p_obj.remove("identifier");
    p_obj.remove("name");
    // Valid R4: both are optional in the base specification.
    let base = v.validate(&p, None);
    assert!(base.iter().all(|i| !i.is_error()), "{base:#?}");
    let issues = v.validate(&p, Some(US_CORE_PRACTITIONER));
    let errors = profile_errors(&issues);
    assert!(
        errors.iter().any(|i| i.message.contains("identifier")),
        "{issues:#?}"
    );
    assert!(
        errors.iter().any(|i| i.message.contains("name")),
        "{issues:#?}"
    );
}

#[test]
fn a_name_without_family_and_an_identifier_without_value_fail_us_core() {
    let v = us_core();
    let mut p = complete();
    p["name"] = json!([{"given": ["Jane"]}]);
    p["identifier"] = json!([{"system": "http://example.org/ids"}]);
    let issues = v.validate(&p, Some(US_CORE_PRACTITIONER));
    let errors = profile_errors(&issues);
    assert!(
        errors
            .iter()
            .any(|i| i.path.starts_with("Practitioner.name") && i.message.contains("family")),
        "{issues:#?}"
    );
    assert!(
        errors
            .iter()
            .any(|i| i.path.starts_with("Practitioner.identifier") && i.message.contains("value")),
        "{issues:#?}"
    );
}

#[test]
fn a_claimed_profile_is_applied_and_an_unknown_one_is_a_warning() {
    let v = us_core();
    let mut p = complete();
    p.as_object_mut().unwrap().remove("name");
    p["meta"] = json!({"profile": [US_CORE_PRACTITIONER]});
    let issues = v.validate(&p, None);
    assert!(!profile_errors(&issues).is_empty(), "{issues:#?}");

    let mut q = complete();
    q["meta"] = json!({"profile": ["http://example.org/StructureDefinition/not-loaded"]});
    let issues = v.validate(&q, None);
    assert!(issues.iter().all(|i| !i.is_error()), "{issues:#?}");
    assert!(
        issues
            .iter()
            .any(|i| i.message.contains("not loaded") && i.path == "Practitioner.meta.profile"),
        "{issues:#?}"
    );
}

#[test]
fn a_practitioner_profile_on_a_searchset_applies_to_its_practitioners() {
    let v = us_core();
    let mut bad = complete();
    bad.as_object_mut().unwrap().remove("identifier");
    let bundle = json!({
        "resourceType": "Bundle", "type": "searchset", "total": 2,
        "entry": [
            {"fullUrl": "http://example.org/fhir/Practitioner/p1", "resource": complete(), "search": {"mode": "match"}},
            {"fullUrl": "http://example.org/fhir/Practitioner/p2", "resource": bad, "search": {"mode": "match"}}
        ]
    });
    let issues = v.validate(&bundle, Some(US_CORE_PRACTITIONER));
    let errors = profile_errors(&issues);
    assert!(!errors.is_empty(), "{issues:#?}");
    assert!(
        errors
            .iter()
            .all(|i| i.path.starts_with("Bundle.entry[1].resource")),
        "{issues:#?}"
    );
}

#[test]
fn an_unknown_explicit_profile_is_an_error() {
    let v = Validator::new().unwrap();
    let issues = v.validate(&complete(), Some("http://example.org/nope"));
    assert!(
        issues
            .iter()
            .any(|i| i.is_error() && i.message.contains("not loaded")),
        "{issues:#?}"
    );
}

#[test]
fn profiles_are_unwrapped_from_bundles_and_arrays_and_bad_ones_refused() {
    let path = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../../profiles/us-core-3.1.1/StructureDefinition-us-core-practitioner.json");
    let sd: Value = serde_json::from_str(&std::fs::read_to_string(path).unwrap()).unwrap();
    let bundle = json!({
        "resourceType": "Bundle", "type": "collection",
        "entry": [{"resource": {"resourceType": "ValueSet", "status": "active"}}, {"resource": [sd]}]
    });
    let mut v = Validator::new().unwrap();
    let loaded = v.add_profiles(vec![bundle]).unwrap();
    assert_eq!(loaded.profiles, [US_CORE_PRACTITIONER]);
    assert_eq!(loaded.skipped, 1);

    let mut v = Validator::new().unwrap();
    assert!(
        v.add_profiles(vec![json!({"resourceType": "Patient"})])
            .is_err()
    );
    assert!(v.add_profiles(vec![json!("x")]).is_err());
    assert!(
        v.add_profiles(vec![json!({"resourceType": "StructureDefinition"})])
            .is_err()
    );
    assert!(v.profiles().is_empty());
}
