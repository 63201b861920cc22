//! HL7 TestScript (R4), run as it is and imported to YAML.
//!
//! A TestScript is translated into a scenario file: its `test`s become scenarios,
//! `setup` runs before each, `teardown` and `autodelete` fixtures become cleanup,
//! each `operation` a step and the `assert`s after it that step's expectations. Both
//! uses go through the one translation: `fhirconf run` loads the generated YAML in
//! memory (fixtures inline), `fhirconf import testscript` writes it (fixtures as
//! files beside it), so an imported file gives the verdicts the script gives.
//!
//! What is not supported is refused with the element's location
//! (`TestScript.test[2].action[0].operation.origin`), every such element at once,
//! never skipped: a script either runs whole or does not load.

mod import;
mod translate;
mod yaml;

use std::path::Path;

use serde_json::Value;

use crate::diag::Diagnostic;

pub use import::import;
pub use translate::{Fixtures, Translated, translate};
pub(crate) use yaml::yaml as to_yaml;

use crate::scenario::model::{AssertOrigin, Expect, ScriptOrigin, Step, StepOrigin, SuiteFile};
use yaml::Target;

/// Where each step and check of `suite` (loaded from `translated`) came from: the
/// expectations' lines in the loaded model, by the places the translation put them.
pub fn origin(translated: &Translated, suite: &SuiteFile) -> ScriptOrigin {
    let mut steps = std::collections::BTreeMap::new();
    for (i, (scenario, plans)) in suite.scenarios.iter().zip(&translated.origins).enumerate() {
        let loaded = scenario.steps.iter().chain(scenario.cleanup.iter());
        for (step, plan) in loaded.zip(plans) {
            let asserts = plan
                .asserts
                .iter()
                .map(|a| AssertOrigin {
                    path: a.path.clone(),
                    lines: a
                        .targets
                        .iter()
                        .filter_map(|t| line_of(step, t, a.warning))
                        .collect(),
                    warning: a.warning,
                })
                .collect();
            steps.insert(
                step.line,
                StepOrigin {
                    section: plan.section,
                    scenario: i,
                    operation: plan.operation.clone(),
                    asserts,
                },
            );
        }
    }
    ScriptOrigin {
        name: translated.name.clone(),
        url: translated.url.clone(),
        tests: translated.tests.clone(),
        steps,
    }
}

/// The line of the expectation `target` became in `step` (its `warn:` block for a
/// warning-only assert).
fn line_of(step: &Step, target: &Target, warning: bool) -> Option<u64> {
    let e: &Expect = if warning {
        step.warn.as_deref()?
    } else {
        &step.expect
    };
    match target {
        Target::Status => e.status.as_ref().map(|s| s.line),
        Target::Header(name) => e
            .headers
            .iter()
            .find(|h| h.value.name.eq_ignore_ascii_case(name))
            .map(|h| h.line),
        Target::Json(k) => e.json.get(*k).map(|j| j.line),
        Target::FhirPath(k) => e.fhirpath.get(*k).map(|f| f.line),
        Target::Subset => e.json_subset.as_ref().map(|s| s.line),
        Target::Valid => e.valid.as_ref().map(|v| v.line),
        Target::Request => e.request.as_ref().map(|r| r.line),
    }
}

/// Whether `text` (a `.json` or `.xml` file's content) is a TestScript resource.
pub fn is_testscript(text: &str, xml: bool) -> bool {
    if xml {
        return root_element(text) == Some("TestScript");
    }
    json_script(text).is_some()
}

/// A JSON file's TestScript, or `None` when it is not one (or not JSON).
fn json_script(text: &str) -> Option<Value> {
    // A cheap look first: most JSON files beside scenarios are fixtures.
    if !text.contains("\"TestScript\"") {
        return None;
    }
    serde_json::from_str::<Value>(text)
        .ok()
        .filter(|v| v.get("resourceType") == Some(&Value::from("TestScript")))
}

/// The name of an XML document's first element, without a namespace prefix.
fn root_element(text: &str) -> Option<&str> {
    let mut rest = text;
    loop {
        let start = rest.find('<')?;
        rest = &rest[start + 1..];
        if rest.starts_with('?') || rest.starts_with('!') {
            continue;
        }
        let end = rest
            .find(|c: char| c.is_whitespace() || c == '>' || c == '/')
            .unwrap_or(rest.len());
        let name = &rest[..end];
        return Some(name.rsplit(':').next().unwrap_or(name));
    }
}

/// A file's TestScript, read once: `None` when the file is not one (for a JSON file,
/// also when it is not JSON at all), an error when an XML TestScript does not read.
pub fn read_script(display: &str, text: &str, xml: bool) -> Result<Option<Value>, Diagnostic> {
    if xml {
        if root_element(text) != Some("TestScript") {
            return Ok(None);
        }
        return read(display, text, true).map(Some);
    }
    Ok(json_script(text))
}

/// A TestScript file read as JSON (an XML one through the FHIR XML reader).
pub fn read(display: &str, text: &str, xml: bool) -> Result<Value, Diagnostic> {
    if xml {
        let json = fhir_xml::to_json(text).map_err(|e| Diagnostic {
            line: e.line as u64,
            column: e.column as u64,
            ..Diagnostic::file(display, format!("not FHIR XML: {}", e.message))
        })?;
        return serde_json::from_str(&json).map_err(|e| {
            Diagnostic::whole_file(display, format!("the FHIR XML reader gave no JSON: {e}"))
        });
    }
    serde_json::from_str(text).map_err(|e| Diagnostic {
        line: e.line() as u64,
        column: e.column() as u64,
        ..Diagnostic::file(display, format!("not JSON: {e}"))
    })
}

/// Whether a path names a file that may be a TestScript (`.json` or `.xml`), and if
/// so whether it is XML.
pub fn format_of(path: &Path) -> Option<bool> {
    match path.extension().and_then(|e| e.to_str()) {
        Some("json") => Some(false),
        Some("xml") => Some(true),
        _ => None,
    }
}
