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

/// Whether `text` (a `.json` or `.xml` file's content) is a TestScript resource.
pub fn is_testscript(text: &str, xml: bool) -> bool {
    if xml {
        return root_element(text) == Some("TestScript");
    }
    // A cheap look first: most JSON files beside scenarios are fixtures.
    text.contains("\"TestScript\"")
        && serde_json::from_str::<Value>(text)
            .ok()
            .is_some_and(|v| v.get("resourceType") == Some(&Value::from("TestScript")))
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
