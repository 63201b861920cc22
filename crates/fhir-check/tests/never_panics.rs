//! No JSON makes the validator panic (or report that it failed internally): arbitrary
//! values, and resource-shaped objects with arbitrary fields.

use std::sync::OnceLock;

use fhir_check::{Issue, Severity, Validator};
use proptest::prelude::*;
use serde_json::{Map, Value, json};

fn validator() -> &'static Validator {
    static V: OnceLock<Validator> = OnceLock::new();
    V.get_or_init(|| Validator::new().unwrap())
}

const TYPES: &[&str] = &[
    "Patient",
    "Practitioner",
    "Appointment",
    "Bundle",
    "Observation",
    "Basic",
    "Nope",
];
const KEYS: &[&str] = &[
    "id",
    "meta",
    "name",
    "gender",
    "status",
    "entry",
    "resource",
    "identifier",
    "text",
    "contained",
    "extension",
    "value",
    "valueString",
    "active",
    "participant",
    "type",
    "total",
    "start",
    "end",
    "resourceType",
    "family",
    "given",
    "system",
    "code",
    "x",
];

fn json() -> impl Strategy<Value = Value> {
    let leaf = prop_oneof![
        Just(Value::Null),
        any::<bool>().prop_map(Value::Bool),
        any::<i64>().prop_map(Value::from),
        any::<f64>()
            .prop_filter("finite", |f| f.is_finite())
            .prop_map(Value::from),
        "[a-zA-Z0-9 <>#/.:-]{0,12}".prop_map(Value::String),
        proptest::sample::select(TYPES).prop_map(|t| Value::String(t.to_owned())),
    ];
    leaf.prop_recursive(6, 64, 6, |inner| {
        prop_oneof![
            prop::collection::vec(inner.clone(), 0..4).prop_map(Value::Array),
            prop::collection::vec((proptest::sample::select(KEYS), inner), 0..6).prop_map(
                |pairs| Value::Object(
                    pairs
                        .into_iter()
                        .map(|(k, v)| (k.to_owned(), v))
                        .collect::<Map<_, _>>()
                )
            ),
        ]
    })
}

fn resource() -> impl Strategy<Value = Value> {
    (
        proptest::sample::select(TYPES),
        prop::collection::vec((proptest::sample::select(KEYS), json()), 0..8),
    )
        .prop_map(|(t, fields)| {
            let mut m: Map<String, Value> =
                fields.into_iter().map(|(k, v)| (k.to_owned(), v)).collect();
            m.insert("resourceType".into(), Value::String(t.to_owned()));
            Value::Object(m)
        })
}

fn check(value: &Value) {
    let issues = validator().validate(value, None);
    assert!(
        issues
            .iter()
            .all(|i| !i.message.contains("the validator failed")),
        "{value}: {issues:#?}"
    );
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 256, ..ProptestConfig::default() })]

    #[test]
    fn any_json_value(value in json()) {
        check(&value);
    }

    #[test]
    fn any_resource_shaped_object(value in resource()) {
        check(&value);
    }

    #[test]
    fn any_bundle_of_them(entries in prop::collection::vec(resource(), 0..4)) {
        let bundle = serde_json::json!({
            "resourceType": "Bundle", "type": "searchset",
            "entry": entries.into_iter().map(|r| serde_json::json!({"resource": r})).collect::<Vec<_>>()
        });
        check(&bundle);
    }
}

/// A hostile resource (many repeats, each breaking an invariant) costs time and memory
/// in proportion to its size, not its square, and still gets its issues: the first
/// repeats one by one, the others together.
#[test]
fn many_repeats_breaking_an_invariant_are_judged_in_linear_time() {
    let validator = Validator::new().unwrap();
    let telecom: Vec<Value> = (0..3000).map(|i| json!({"value": i.to_string()})).collect();
    let issues = validator.validate(
        &json!({"resourceType": "Patient", "id": "p1", "telecom": telecom}),
        None,
    );
    let cpt2: Vec<&Issue> = issues
        .iter()
        .filter(|i| i.rule.as_deref() == Some("cpt-2"))
        .collect();
    assert_eq!(cpt2.len(), 21, "{issues:#?}");
    assert!(
        cpt2.iter().any(|i| i.path == "Patient.telecom[19]"),
        "{cpt2:#?}"
    );
    let together = cpt2.iter().find(|i| i.path == "Patient.telecom").unwrap();
    assert!(
        together.message.contains("at least one of 3000 elements"),
        "{together:?}"
    );
}

/// Past the size limits, a resource gets the JSON checks and one warning saying what
/// was not checked.
#[test]
fn a_resource_too_large_for_the_validator_says_what_was_not_checked() {
    let validator = Validator::new().unwrap();
    let telecom: Vec<Value> = (0..fhir_check::MAX_VALIDATED_NODES / 2)
        .map(|i| json!({"system": "phone", "value": i.to_string()}))
        .chain([json!({"id": "only-an-id"})])
        .collect();
    let issues = validator.validate(
        &json!({"resourceType": "Patient", "id": "p1", "telecom": telecom}),
        None,
    );
    assert!(
        issues.iter().any(|i| i.severity == Severity::Warning
            && i.message.contains("not validated against R4 or profiles")),
        "{issues:#?}"
    );
    let last = format!("Patient.telecom[{}]", fhir_check::MAX_VALIDATED_NODES / 2);
    assert!(
        issues
            .iter()
            .any(|i| i.rule.as_deref() == Some("ele-1") && i.path == last),
        "{issues:#?}"
    );
}
