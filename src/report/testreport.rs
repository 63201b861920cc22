//! `--testreport DIR`: one R4 TestReport per TestScript run, as Touchstone users expect.
//!
//! Each operation's result is its step's (answered: `pass`; no answer: `error`; not
//! run: `skip`); each assert's result is its checks' (found by the line of the
//! expectation it became): `pass`, `fail`, `warning` for a `warningOnly` one, `skip`
//! when it was not evaluated. Messages come from the run record, already redacted.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use serde_json::{Map, Value, json};

use super::ReportError;
use crate::assert::Check;
use crate::record::{RunRecord, ScenarioRecord, StepRecord, Verdict};
use crate::scenario::model::{ScriptOrigin, Section, StepOrigin, SuiteFile};

/// Writes a TestReport for every suite of `suites` that is a TestScript; the files
/// written.
pub fn write_all(
    dir: &Path,
    record: &RunRecord,
    suites: &[SuiteFile],
) -> Result<Vec<PathBuf>, ReportError> {
    let mut written = Vec::new();
    let mut names = BTreeMap::<String, usize>::new();
    for suite in suites {
        let Some(origin) = &suite.testscript else {
            continue;
        };
        let stem = Path::new(&suite.display)
            .file_stem()
            .and_then(|s| s.to_str())
            .unwrap_or("testscript")
            .to_owned();
        let n = names.entry(stem.clone()).or_default();
        *n += 1;
        let file = if *n == 1 {
            format!("{stem}.testreport.json")
        } else {
            format!("{stem}-{n}.testreport.json")
        };
        let path = dir.join(file);
        let report = testreport(origin, &suite.display, record);
        let text = serde_json::to_string_pretty(&report).unwrap_or_default() + "\n";
        std::fs::create_dir_all(dir)
            .and_then(|()| super::write_atomic(&path, text.as_bytes()))
            .map_err(|source| ReportError::Write {
                path: path.clone(),
                source,
            })?;
        written.push(path);
    }
    Ok(written)
}

/// The TestReport of one script's run.
pub fn testreport(origin: &ScriptOrigin, file: &str, record: &RunRecord) -> Value {
    let scenarios: Vec<Option<&ScenarioRecord>> = origin
        .tests
        .iter()
        .map(|name| {
            record
                .scenarios
                .iter()
                .find(|s| s.file == file && &s.name == name)
        })
        .collect();
    let mut setup = Vec::new();
    let mut teardown = Vec::new();
    let mut tests: Vec<Vec<Value>> = vec![Vec::new(); origin.tests.len()];
    for (line, step) in &origin.steps {
        let ran = scenarios
            .get(step.scenario)
            .copied()
            .flatten()
            .and_then(|s| s.steps.iter().find(|r| r.line == *line));
        let actions = action_results(step, ran);
        match step.section {
            // Setup and teardown run with every test; the report gives the first's.
            Section::Setup if step.scenario == 0 => setup.extend(actions),
            Section::Teardown if step.scenario == 0 => teardown.extend(actions),
            Section::Test(i) => {
                if let Some(t) = tests.get_mut(i) {
                    t.extend(actions);
                }
            }
            Section::Setup | Section::Teardown => {}
        }
    }
    let verdicts: Vec<Verdict> = scenarios
        .iter()
        .map(|s| s.map_or(Verdict::Skipped, |s| s.verdict))
        .collect();
    let passed = verdicts.iter().filter(|v| **v == Verdict::Passed).count();
    let result = if verdicts
        .iter()
        .any(|v| matches!(v, Verdict::Failed | Verdict::Error))
    {
        "fail"
    } else if passed > 0 {
        "pass"
    } else {
        "pending"
    };
    let score = if verdicts.is_empty() {
        0.0
    } else {
        (passed as f64 * 100.0 / verdicts.len() as f64 * 100.0).round() / 100.0
    };
    let mut report = Map::new();
    report.insert("resourceType".into(), json!("TestReport"));
    report.insert("id".into(), json!(fhir_id(&origin.name)));
    report.insert("name".into(), json!(origin.name));
    report.insert("status".into(), json!("completed"));
    report.insert(
        "testScript".into(),
        match &origin.url {
            Some(url) => json!({ "reference": url, "display": origin.name }),
            None => json!({ "display": origin.name }),
        },
    );
    report.insert("result".into(), json!(result));
    report.insert("score".into(), json!(score));
    report.insert("tester".into(), json!("fhirconf"));
    report.insert("issued".into(), json!(record.finished_at));
    report.insert(
        "participant".into(),
        json!([
            { "type": "test-engine", "uri": format!("urn:fhirconf:{}", record.harness_version), "display": "fhirconf" },
            { "type": "server", "uri": record.target.base_url },
        ]),
    );
    if !setup.is_empty() {
        report.insert("setup".into(), json!({ "action": setup }));
    }
    let tests: Vec<Value> = origin
        .tests
        .iter()
        .zip(tests)
        .zip(&scenarios)
        .map(|((name, actions), scenario)| {
            let mut t = Map::new();
            t.insert("name".into(), json!(name));
            if let Some(reason) = scenario.and_then(|s| s.reason.as_deref()) {
                t.insert("description".into(), json!(reason));
            }
            let actions = if actions.is_empty() {
                // A test of asserts only has them in the setup's last step; the
                // TestReport still needs an action per test.
                vec![json!({ "assert": { "result": result_of_scenario(*scenario), "message": "the test's asserts judge the setup's last response" } })]
            } else {
                actions
            };
            t.insert("action".into(), Value::Array(actions));
            Value::Object(t)
        })
        .collect();
    if !tests.is_empty() {
        report.insert("test".into(), Value::Array(tests));
    }
    if !teardown.is_empty() {
        let ops: Vec<Value> = teardown
            .into_iter()
            .filter(|a| a.get("operation").is_some())
            .collect();
        if !ops.is_empty() {
            report.insert("teardown".into(), json!({ "action": ops }));
        }
    }
    Value::Object(report)
}

fn result_of_scenario(s: Option<&ScenarioRecord>) -> &'static str {
    match s.map(|s| s.verdict) {
        Some(Verdict::Passed) => "pass",
        Some(Verdict::Failed) => "fail",
        Some(Verdict::Error) => "error",
        Some(Verdict::Skipped) | None => "skip",
    }
}

/// An operation's action and one per assert.
fn action_results(step: &StepOrigin, ran: Option<&StepRecord>) -> Vec<Value> {
    let mut out = Vec::new();
    let operation = match ran {
        None => json!({ "result": "skip", "message": "not run" }),
        Some(r) => {
            let request = match (&r.method, &r.url) {
                (Some(m), Some(u)) => format!("{m} {u}"),
                _ => r.name.clone(),
            };
            match r.status {
                Some(status) => {
                    json!({ "result": "pass", "message": format!("{request}: {status}") })
                }
                None => json!({
                    "result": if r.verdict == Verdict::Skipped { "skip" } else { "error" },
                    "message": format!("{request}: {}", r.message.as_deref().unwrap_or("no answer")),
                }),
            }
        }
    };
    out.push(json!({ "operation": operation }));
    for a in &step.asserts {
        let (result, message) = match ran {
            None => ("skip", "not run".to_owned()),
            Some(r) => {
                let checks: Vec<&Check> = r
                    .checks
                    .iter()
                    .filter(|c| {
                        c.line.is_some_and(|l| a.lines.contains(&l)) && c.warning == a.warning
                    })
                    .collect();
                let failed: Vec<String> = checks
                    .iter()
                    .filter(|c| !c.passed)
                    .map(|c| c.summary())
                    .collect();
                if !failed.is_empty() {
                    (
                        if a.warning { "warning" } else { "fail" },
                        failed.join("; "),
                    )
                } else if checks.is_empty() {
                    ("skip", "not evaluated".to_owned())
                } else {
                    let what: Vec<&str> = checks.iter().map(|c| c.what.as_str()).collect();
                    ("pass", what.join("; "))
                }
            }
        };
        out.push(json!({ "assert": { "result": result, "message": message } }));
    }
    out
}

/// A FHIR id from a name: letters, digits, `-` and `.`, at most 64.
fn fhir_id(name: &str) -> String {
    let id: String = name
        .chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || c == '-' || c == '.' {
                c
            } else {
                '-'
            }
        })
        .take(64)
        .collect();
    if id.is_empty() {
        "testreport".into()
    } else {
        id
    }
}
