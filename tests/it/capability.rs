//! The capability suite (`run --suite capability`): generated from the sandbox's own
//! CapabilityStatement, run against it clean and with generic FHIR defects switched
//! on, through the pipeline's stages.

use std::collections::BTreeSet;
use std::sync::Arc;

use fhirconf::generate::{self, Options};
use fhirconf::pipeline::{self, Connection, Offer, Selector};
use fhirconf::record::{ScenarioRecord, Verdict};
use fhirconf::runner::{Runner, RunnerConfig};
use fhirconf::scenario::{LoadOptions, Scenario};
use fhirconf::validation::{Mode, Settings, Validation};
use serde_json::{Value, json};

/// Generates the suite from the sandbox's statement and runs it (or the scenarios of
/// `only` files), with `defects` on.
async fn run(defects: &[&str], only: &[&str]) -> Vec<ScenarioRecord> {
    run_from(defects, only, None).await
}

/// [`run`], generating from `statement` instead of the sandbox's own.
async fn run_from(
    defects: &[&str],
    only: &[&str],
    statement: Option<Value>,
) -> Vec<ScenarioRecord> {
    let defects: Vec<String> = defects.iter().map(|d| (*d).to_owned()).collect();
    let config = pipeline::sandbox_config(Default::default(), &defects).unwrap();
    let mut connection = Connection::to_sandbox(config).await.unwrap();
    let statement = statement.map(Arc::new).unwrap_or_else(|| {
        connection
            .capabilities
            .statement
            .clone()
            .expect("the sandbox has a statement")
    });
    let validate = fhirconf::validation::BUILT_IN;
    let opts = Options {
        strict: false,
        validate,
    };
    let files: Vec<_> = generate::generate(&statement, &opts)
        .unwrap()
        .into_iter()
        .filter(|f| only.is_empty() || only.iter().any(|o| f.name.ends_with(&format!("/{o}.yaml"))))
        .collect();
    let suites = generate::load(&files, &LoadOptions::default()).expect("generated files load");
    let scenarios: Vec<Arc<Scenario>> = suites
        .into_iter()
        .flat_map(|s| s.scenarios)
        .map(Arc::new)
        .collect();
    let offer = Offer {
        capabilities: &connection.capabilities,
        features: &connection.features,
        vars: &connection.vars,
    };
    let selected = pipeline::select(scenarios, &Selector::default(), Some(offer));
    let mut config = RunnerConfig::new(&connection);
    if validate {
        let settings = Settings {
            mode: Mode::Off,
            ..Settings::default()
        };
        config.validation = Arc::new(Validation::load(&settings, true).expect("R4 loads"));
    }
    let runner = Arc::new(Runner::new(config));
    // 16 in flight, as `--jobs 16` would: enough to keep the in-process sandbox busy.
    let records = pipeline::execute_quietly(&runner, &selected, 16).await;
    connection.stop_sandbox().await;
    records
}

fn failing(records: &[ScenarioRecord]) -> BTreeSet<String> {
    records
        .iter()
        .filter(|r| matches!(r.verdict, Verdict::Failed | Verdict::Error))
        .map(|r| r.id.clone())
        .collect()
}

#[tokio::test(flavor = "multi_thread")]
async fn against_the_clean_sandbox_only_its_canvas_rules_fail() {
    let records = run(&[], &[]).await;
    let passed = records
        .iter()
        .filter(|r| r.verdict == Verdict::Passed)
        .count();
    assert!(passed > 1000, "only {passed} passed");
    // The sandbox's Practitioner needs a telecom and its Appointment a Practitioner
    // participant (the Canvas rules): R4's minimal instances are refused, rightly.
    let unexpected: Vec<String> = records
        .iter()
        .filter(|r| matches!(r.verdict, Verdict::Failed | Verdict::Error))
        .filter_map(|r| {
            let first = r
                .steps
                .iter()
                .find(|s| matches!(s.verdict, Verdict::Failed | Verdict::Error))?;
            let canvas = first.name == "create a Practitioner"
                || first.name == "create a Appointment"
                || first.name.starts_with("create the Practitioner")
                || first.name.starts_with("create the Appointment");
            (!canvas).then(|| {
                format!(
                    "{} failed at `{}`: {}",
                    r.id,
                    first.name,
                    r.reason.clone().unwrap_or_default()
                )
            })
        })
        .collect();
    assert!(
        unexpected.is_empty(),
        "{} unexpected failures:\n{}",
        unexpected.len(),
        unexpected.join("\n")
    );
    // Skipped ones say why.
    let skipped: Vec<&ScenarioRecord> = records
        .iter()
        .filter(|r| r.verdict == Verdict::Skipped)
        .collect();
    assert!(skipped.iter().any(|r| {
        r.reason
            .as_deref()
            .unwrap_or("")
            .contains("does not declare Practitioner.history-instance")
    }));
    assert!(
        skipped
            .iter()
            .all(|r| r.reason.as_deref().is_some_and(|w| !w.is_empty()))
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn generic_defects_are_caught() {
    let clean = failing(&run(&[], &["Patient", "Observation"]).await);
    assert!(clean.is_empty(), "{clean:?}");
    for (defect, scenario) in [
        (
            "CORE-READ-404",
            "capability/Patient.yaml::Patient read of an unknown id is 404",
        ),
        (
            "CORE-UPDATE",
            "capability/Patient.yaml::Patient update, read back",
        ),
        (
            "CORE-CREATE",
            "capability/Observation.yaml::Observation create, read back",
        ),
        (
            "CORE-SEARCHSET",
            "capability/Observation.yaml::Observation search by _id",
        ),
    ] {
        let failed = failing(&run(&[defect], &["Patient", "Observation"]).await);
        assert!(
            failed.contains(scenario),
            "{defect}: {scenario} passed; failing: {failed:?}"
        );
    }
}

fn statement(resource: Value) -> Value {
    json!({ "resourceType": "CapabilityStatement", "rest": [{ "mode": "server", "resource": [resource] }] })
}

fn scenario_names(statement: &Value, strict: bool) -> Vec<(String, Option<String>)> {
    let files = generate::generate(
        statement,
        &Options {
            strict,
            validate: false,
        },
    )
    .unwrap();
    let suites = generate::load(&files, &LoadOptions::default()).unwrap();
    suites
        .into_iter()
        .flat_map(|s| s.scenarios)
        .map(|s| (s.name.clone(), s.ignore.clone()))
        .collect()
}

#[test]
fn an_undeclared_interaction_is_skipped_or_under_strict_expected_refused() {
    let st = statement(json!({
        "type": "Patient",
        "interaction": [{ "code": "create" }, { "code": "read" }],
        "searchParam": [{ "name": "family", "type": "string" }, { "name": "deceased", "type": "token" }, { "name": "npi", "type": "token" }],
    }));
    let lenient = scenario_names(&st, false);
    let delete = lenient
        .iter()
        .find(|(n, _)| n == "Patient delete is not declared")
        .unwrap();
    assert_eq!(
        delete.1.as_deref(),
        Some("the CapabilityStatement does not declare Patient.delete")
    );
    let strict = scenario_names(&st, true);
    assert!(
        strict
            .iter()
            .any(|(n, i)| n == "Patient delete is not declared, so it is refused" && i.is_none())
    );
    // Search is not declared, so no search scenario runs; declared ones are generated.
    assert!(
        lenient
            .iter()
            .all(|(n, i)| !n.starts_with("Patient search by") || i.is_some())
    );
    let st = statement(json!({
        "type": "Patient",
        "interaction": [{ "code": "create" }, { "code": "search-type" }],
        "searchParam": [{ "name": "family", "type": "string" }, { "name": "deceased", "type": "token" }, { "name": "npi", "type": "token" }],
    }));
    let names = scenario_names(&st, false);
    let find = |n: &str| names.iter().find(|(x, _)| x == n).unwrap().1.clone();
    assert_eq!(find("Patient search by family"), None);
    assert!(
        find("Patient search by deceased")
            .unwrap()
            .contains("expression")
    );
    assert!(
        find("Patient search by npi")
            .unwrap()
            .contains("not an R4 SearchParameter")
    );
    // A value other records share (a bound code) is searched only with `_id`.
    let st = statement(json!({
        "type": "Patient",
        "interaction": [{ "code": "create" }, { "code": "search-type" }],
        "searchParam": [{ "name": "gender", "type": "token" }],
    }));
    let names = scenario_names(&st, false);
    let gender = names
        .iter()
        .find(|(n, _)| n == "Patient search by gender")
        .unwrap();
    assert!(gender.1.as_deref().unwrap().contains("`_id`"), "{gender:?}");
}

#[test]
fn what_is_not_a_statement_is_refused() {
    let e =
        generate::generate(&json!({ "resourceType": "Patient" }), &Options::default()).unwrap_err();
    assert!(e.to_string().contains("not a CapabilityStatement"), "{e}");
    let e = generate::generate(
        &json!({ "resourceType": "CapabilityStatement" }),
        &Options::default(),
    )
    .unwrap_err();
    assert!(e.to_string().contains("declares no server resource"), "{e}");
}

#[tokio::test(flavor = "multi_thread")]
async fn records_a_server_cannot_delete_are_listed() {
    // A statement that declares create and read of Patient, and no delete.
    let st = statement(json!({
        "type": "Patient",
        "interaction": [{ "code": "create" }, { "code": "read" }],
    }));
    let records = run_from(&[], &[], Some(st)).await;
    let created = records
        .iter()
        .find(|r| r.name == "Patient create, read back")
        .unwrap();
    assert_eq!(
        created.verdict,
        Verdict::Passed,
        "{}",
        fhirconf::report::details(created)
    );
    assert_eq!(created.left_behind.len(), 1, "{:?}", created.left_behind);
    assert!(
        created.left_behind[0].starts_with("Patient/") && !created.left_behind[0].contains("{{")
    );
    // No cleanup step was sent for it.
    assert!(
        created
            .steps
            .iter()
            .all(|s| s.method.as_deref() != Some("DELETE"))
    );
    // A scenario that never created its record leaves nothing.
    let unknown = records
        .iter()
        .find(|r| r.name == "Patient read of an unknown id is 404")
        .unwrap();
    assert!(unknown.left_behind.is_empty());
}

#[test]
fn declared_includes_and_revincludes_are_generated() {
    let st = json!({ "resourceType": "CapabilityStatement", "rest": [{ "mode": "server", "resource": [
        {
            "type": "Observation",
            "interaction": [{ "code": "create" }, { "code": "search-type" }],
            "searchParam": [{ "name": "_id", "type": "token" }],
            "searchInclude": ["Observation:subject", "Observation:nonsense"],
        },
        {
            "type": "Patient",
            "interaction": [{ "code": "create" }, { "code": "search-type" }],
            "searchParam": [{ "name": "_id", "type": "token" }],
            "searchRevInclude": ["Observation:performer", "Observation:subject"],
        },
    ] }] });
    let names = scenario_names(&st, false);
    let find = |n: &str| names.iter().find(|(x, _)| x == n).map(|x| x.1.clone());
    assert_eq!(
        find("Observation search with _include=Observation:subject"),
        Some(None)
    );
    assert!(
        find("Observation search with _include=Observation:nonsense")
            .unwrap()
            .unwrap()
            .contains("not an R4 reference parameter")
    );
    // Observation:performer can point at a Patient too: the first that can is used.
    assert_eq!(
        find("Patient search with _revinclude=Observation:performer"),
        Some(None)
    );
    assert_eq!(
        find("Patient search with _revinclude=Observation:subject"),
        None
    );
}

/// A statement that repeats itself or names odd things generates a suite that loads.
#[test]
fn an_odd_statement_still_generates_a_suite_that_loads() {
    let st = json!({ "resourceType": "CapabilityStatement", "rest": [
        { "mode": "server", "resource": [
            {
                "type": "Patient",
                "interaction": [{ "code": "create" }, { "code": "create" }, { "code": "search-type" }, { "code": 7 }],
                "searchParam": [
                    { "name": "family", "type": "string" },
                    { "name": "family", "type": "string" },
                    { "name": "{{ evil }}", "type": "token" },
                    { "name": "a b", "type": "token" },
                    { "type": "token" },
                ],
                "searchInclude": ["Patient:organization", "Patient:organization", "{{ x }}", "Patient:{{ y }}"],
                "searchRevInclude": ["Observation:subject", "Observation:subject"],
            },
            { "type": "Patient", "interaction": [{ "code": "delete" }] },
            { "type": "NotAType", "interaction": [{ "code": "read" }] },
            { "interaction": [{ "code": "read" }] },
            "not an object",
        ] },
        { "mode": "client", "resource": [{ "type": "Observation", "interaction": [{ "code": "create" }] }] },
        "junk",
    ] });
    let names = scenario_names(&st, false);
    let family = names
        .iter()
        .filter(|(n, _)| n == "Patient search by family")
        .count();
    assert_eq!(family, 1);
    assert!(
        names
            .iter()
            .all(|(n, _)| !n.contains("evil") && !n.contains("a b"))
    );
    assert!(
        names.iter().all(|(n, _)| !n.starts_with("Observation")),
        "client resources are not the server's"
    );
}
