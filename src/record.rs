//! The run record: everything a run found, in one value that every reporter reads.
//! No reporter re-runs or re-derives anything.
//!
//! Written as `run.json`; its fields are documented in `docs/run-record.md`. Records are
//! read back by `fhirconf compare` and `run --baseline`, so every type here is both
//! serialized and deserialized.

use std::collections::BTreeMap;
use std::path::Path;

use serde::{Deserialize, Serialize};
use serde_json::Value;

use crate::assert::Check;

/// Bumped whenever a field changes meaning or disappears. Version 2 added `files`,
/// `server`, `baseline`, each scenario's `rule_ids`, and a transcript for every step.
pub const SCHEMA_VERSION: u32 = 2;

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct RunRecord {
    pub schema_version: u32,
    pub harness: String,
    pub harness_version: String,
    pub target: TargetInfo,
    /// What the server says it is, from its CapabilityStatement; `None` when that
    /// could not be read (see `target.metadata_error`).
    pub server: Option<ServerInfo>,
    /// Every file the run read, with the SHA-256 of the exact bytes read.
    pub files: Vec<InputFile>,
    /// Set by `run --baseline`: how this run compares with an earlier one.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub baseline: Option<BaselineInfo>,
    /// How responses were validated against FHIR R4.
    #[serde(default)]
    pub validation: ValidationInfo,
    pub started_at: String,
    pub finished_at: String,
    pub duration_secs: f64,
    pub scenarios: Vec<ScenarioRecord>,
}

/// The run's validation settings, as the reports show them.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ValidationInfo {
    /// `off`, `warn` or `error` (`off` in a build without validation).
    pub mode: String,
    /// Whether this fhirconf was built with validation (the `validation` feature).
    pub built_in: bool,
    /// Canonical URLs of the profiles loaded.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub profiles: Vec<String>,
    /// How many `validation.ignore` rules the target has.
    #[serde(default, skip_serializing_if = "is_zero")]
    pub ignore_rules: usize,
}

impl Default for ValidationInfo {
    /// A record written before validation existed: nothing was validated.
    fn default() -> Self {
        ValidationInfo {
            mode: "off".to_owned(),
            built_in: false,
            profiles: Vec::new(),
            ignore_rules: 0,
        }
    }
}

fn is_zero(n: &usize) -> bool {
    *n == 0
}

/// How bad a validation issue is: an error makes the resource invalid.
#[derive(
    Debug, Clone, Copy, Default, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize,
)]
#[serde(rename_all = "lowercase")]
pub enum IssueSeverity {
    #[default]
    Error,
    Warning,
}

impl IssueSeverity {
    pub fn as_str(self) -> &'static str {
        match self {
            IssueSeverity::Error => "error",
            IssueSeverity::Warning => "warning",
        }
    }
}

/// One validation issue of one response.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct FoundIssue {
    pub severity: IssueSeverity,
    /// FHIRPath location: `Practitioner.gender`, `Bundle.entry[3].resource.name`.
    pub location: String,
    pub message: String,
    /// The profile whose rule it is; absent for the R4 base specification.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub profile: Option<String>,
    /// The invariant's key (`app-3`), when it is an invariant's.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub rule: Option<String>,
    /// Matched a `validation.ignore` rule of the target: shown and counted, never
    /// failing.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub suppressed: bool,
}

/// Validation issues counted by severity (suppressed ones apart).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct IssueCounts {
    pub errors: usize,
    pub warnings: usize,
    pub suppressed: usize,
    /// Steps whose response had at least one issue.
    pub responses: usize,
}

impl IssueCounts {
    pub fn add(&mut self, issues: &[FoundIssue]) {
        if issues.is_empty() {
            return;
        }
        self.responses += 1;
        for i in issues {
            match (i.suppressed, i.severity) {
                (true, _) => self.suppressed += 1,
                (false, IssueSeverity::Error) => self.errors += 1,
                (false, IssueSeverity::Warning) => self.warnings += 1,
            }
        }
    }

    pub fn is_empty(&self) -> bool {
        self.responses == 0
    }
}

impl std::fmt::Display for IssueCounts {
    /// `2 errors, 1 warning, 3 suppressed`
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let n = |count: usize, word: &str| {
            format!("{count} {word}{}", if count == 1 { "" } else { "s" })
        };
        write!(
            f,
            "{}, {}",
            n(self.errors, "error"),
            n(self.warnings, "warning")
        )?;
        if self.suppressed > 0 {
            write!(f, ", {} suppressed", self.suppressed)?;
        }
        Ok(())
    }
}

impl FoundIssue {
    /// How many issues a check's one-line `actual` names (the step's `validation` list
    /// has them all).
    pub const IN_ONE_LINE: usize = 3;

    /// The first [`Self::IN_ONE_LINE`] issues, each as `show` writes it, on one line:
    /// `a; b; c (and 4 more)`.
    pub fn in_one_line(issues: &[&FoundIssue], show: impl Fn(&FoundIssue) -> String) -> String {
        let shown: Vec<String> = issues
            .iter()
            .take(Self::IN_ONE_LINE)
            .map(|i| show(i))
            .collect();
        let mut text = shown.join("; ");
        if issues.len() > Self::IN_ONE_LINE {
            text.push_str(&format!(" (and {} more)", issues.len() - Self::IN_ONE_LINE));
        }
        text
    }

    /// One line with its severity and profile: `error Practitioner.gender: ... (profile X)`.
    pub fn line(&self) -> String {
        let mut text = format!("{} {}", self.severity.as_str(), self.summary());
        if let Some(rule) = &self.rule {
            text.push_str(&format!(" [{rule}]"));
        }
        if let Some(p) = &self.profile {
            text.push_str(&format!(" (profile {p})"));
        }
        if self.suppressed {
            text.push_str(" (suppressed)");
        }
        text
    }

    /// `Practitioner.gender: "M" is not in the required value set ...`
    pub fn summary(&self) -> String {
        if self.location.is_empty() {
            self.message.clone()
        } else {
            format!("{}: {}", self.location, self.message)
        }
    }
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct TargetInfo {
    pub base_url: String,
    /// True when the run started the built-in sandbox.
    pub sandbox: bool,
    pub features: BTreeMap<String, String>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub defects: Vec<String>,
    /// Why the CapabilityStatement could not be read, if it could not.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub metadata_error: Option<String>,
}

/// `CapabilityStatement.software.name`, `.software.version` and `.fhirVersion`; each
/// `None` when the statement leaves it out.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct ServerInfo {
    pub software_name: Option<String>,
    pub software_version: Option<String>,
    pub fhir_version: Option<String>,
}

impl std::fmt::Display for ServerInfo {
    /// `HAPI FHIR Server 7.2.0 (FHIR 4.0.1)`, saying so where the statement is silent.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match (&self.software_name, &self.software_version) {
            (Some(n), Some(v)) => write!(f, "{n} {v}")?,
            (Some(n), None) => write!(f, "{n} (version not stated)")?,
            (None, Some(v)) => write!(f, "unnamed software {v}")?,
            (None, None) => write!(f, "software not stated")?,
        }
        match &self.fhir_version {
            Some(v) => write!(f, " (FHIR {v})"),
            None => write!(f, " (FHIR version not stated)"),
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum FileKind {
    /// A scenario file given on the command line or found in a folder.
    Scenario,
    /// A `json_file:` or `body_file:` fixture a scenario file names.
    Fixture,
    /// The target file (where and how to reach the server).
    Target,
    /// The run record given to `--baseline`.
    Baseline,
}

impl FileKind {
    pub fn as_str(self) -> &'static str {
        match self {
            FileKind::Scenario => "scenario",
            FileKind::Fixture => "fixture",
            FileKind::Target => "target",
            FileKind::Baseline => "baseline",
        }
    }
}

/// A file the run read. `path` is as the user gave it (forward slashes, no leading
/// `./`); `sha256` is lowercase hex of the exact bytes read.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct InputFile {
    pub path: String,
    pub kind: FileKind,
    pub sha256: String,
}

pub use crate::files::{lower_hex, sha256_hex};

/// What `run --baseline` found: scenario ids by how they changed since the baseline.
/// `regressions` decide the exit code; `known_failures` failed in both runs and are
/// tolerated.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub struct BaselineInfo {
    /// The baseline file as given, and the SHA-256 of its bytes.
    pub path: String,
    pub sha256: String,
    pub regressions: Vec<String>,
    pub known_failures: Vec<String>,
    pub fixes: Vec<String>,
    pub new: Vec<String>,
    pub removed: Vec<String>,
    pub newly_skipped: Vec<String>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Verdict {
    Passed,
    Failed,
    Error,
    Skipped,
}

impl Verdict {
    pub fn as_str(self) -> &'static str {
        match self {
            Verdict::Passed => "passed",
            Verdict::Failed => "failed",
            Verdict::Error => "error",
            Verdict::Skipped => "skipped",
        }
    }

    /// Failed or error: the scenario did not hold.
    pub fn is_failure(self) -> bool {
        matches!(self, Verdict::Failed | Verdict::Error)
    }
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct ScenarioRecord {
    pub id: String,
    pub file: String,
    pub name: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub source: Option<String>,
    /// The requirement ids `source` starts with (see [`rule_ids`]).
    pub rule_ids: Vec<String>,
    pub tags: Vec<String>,
    pub verdict: Verdict,
    /// One line: why it failed, errored or was skipped.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reason: Option<String>,
    /// Skipped for want of these inputs (variables from the target or `--var`).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub missing_inputs: Vec<String>,
    pub duration_secs: f64,
    pub steps: Vec<StepRecord>,
    /// Records the scenario left on the server (its `leaves_behind`, rendered).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub left_behind: Vec<String>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Phase {
    Step,
    Cleanup,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct StepRecord {
    pub name: String,
    /// Line of the step's `request` in the scenario file.
    pub line: u64,
    pub phase: Phase,
    pub verdict: Verdict,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub message: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub method: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub url: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub status: Option<u16>,
    /// With `retry:`, how many times the request was sent.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub attempts: Option<u32>,
    /// With `retry: { unsafe: true }`, a POST or PATCH sent more than once.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub repeated_unsafe: bool,
    pub duration_secs: f64,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub checks: Vec<Check>,
    /// What FHIR validation found in the response (`--validate`, `expect.valid`):
    /// errors and warnings, suppressed ones included and marked.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub validation: Vec<FoundIssue>,
    #[serde(default, skip_serializing_if = "Captures::is_empty")]
    pub captures: Captures,
    /// What was sent and received, redacted; bodies trimmed to 1 KiB for a step that
    /// passed and whole otherwise. `None` when nothing was sent.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub transcript: Option<Transcript>,
}

/// A step's captured values by name, in name order; a JSON object in `run.json`.
/// Kept in a `Vec`: one capture in a `BTreeMap` costs a whole B-tree node (~1 KiB),
/// and there is one such map per step of a run until the reports are written.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Captures(Vec<(String, Value)>);

impl Captures {
    /// Sets `name` to `value`, replacing an earlier value of the same name.
    pub fn insert(&mut self, name: String, value: Value) {
        match self.0.binary_search_by(|(n, _)| n.as_str().cmp(&name)) {
            Ok(at) => self.0[at].1 = value,
            Err(at) => {
                // Most steps capture one value or none: no spare slots.
                self.0.reserve_exact(1);
                self.0.insert(at, (name, value));
            }
        }
    }

    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }

    pub fn iter(&self) -> impl Iterator<Item = (&str, &Value)> {
        self.0.iter().map(|(n, v)| (n.as_str(), v))
    }
}

impl Serialize for Captures {
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.collect_map(self.iter())
    }
}

impl<'de> Deserialize<'de> for Captures {
    fn deserialize<D: serde::Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let map = BTreeMap::<String, Value>::deserialize(deserializer)?;
        Ok(Captures(map.into_iter().collect()))
    }
}

pub use crate::spill::Transcript;

impl RunRecord {
    /// Validation issues by scenario file, in file order; files without any are left
    /// out.
    pub fn issues_by_file(&self) -> Vec<(&str, IssueCounts)> {
        let mut out: Vec<(&str, IssueCounts)> = Vec::new();
        for s in &self.scenarios {
            let mut counts = IssueCounts::default();
            for step in &s.steps {
                counts.add(&step.validation);
            }
            if counts.is_empty() {
                continue;
            }
            match out.iter_mut().find(|(f, _)| *f == s.file) {
                Some((_, c)) => {
                    c.errors += counts.errors;
                    c.warnings += counts.warnings;
                    c.suppressed += counts.suppressed;
                    c.responses += counts.responses;
                }
                None => out.push((&s.file, counts)),
            }
        }
        out
    }

    /// Every validation issue of the run, counted.
    pub fn issue_totals(&self) -> IssueCounts {
        let mut total = IssueCounts::default();
        for s in &self.scenarios {
            for step in &s.steps {
                total.add(&step.validation);
            }
        }
        total
    }

    pub fn count(&self, verdict: Verdict) -> usize {
        self.scenarios
            .iter()
            .filter(|s| s.verdict == verdict)
            .count()
    }
}

/// The most a run record read back (`--baseline`, `compare`) may hold.
pub const MAX_RECORD_BYTES: u64 = 1 << 30;

/// Why a file cannot be used as a run record.
#[derive(Debug, thiserror::Error)]
pub enum ReadError {
    #[error("{0}")]
    File(#[from] crate::files::FileError),
    #[error("{file} is not JSON: {detail}")]
    NotJson { file: String, detail: String },
    #[error(
        "{file} is a run record of schema version {version}; this fhirconf reads version {SCHEMA_VERSION} (run the baseline again with this fhirconf)"
    )]
    OtherVersion { file: String, version: u64 },
    #[error(
        "{file} is not a fhirconf run record (no `schema_version` and `harness: \"fhirconf\"`)"
    )]
    NotARecord { file: String },
    #[error("{file} is not a valid run record: {detail}")]
    Invalid { file: String, detail: String },
}

impl RunRecord {
    /// Parses a `run.json`; `file` names it in errors. A record of another schema
    /// version, or a JSON document that is not a run record at all, is refused with a
    /// message saying which.
    pub fn from_json(text: &str, file: &str) -> Result<RunRecord, ReadError> {
        let doc: Value = serde_json::from_str(text).map_err(|e| ReadError::NotJson {
            file: file.to_owned(),
            detail: e.to_string(),
        })?;
        let version = doc.get("schema_version").and_then(Value::as_u64);
        let looks_like_record = doc.get("harness").and_then(Value::as_str) == Some("fhirconf");
        match version {
            Some(v) if v == u64::from(SCHEMA_VERSION) => {}
            Some(version) if looks_like_record => {
                return Err(ReadError::OtherVersion {
                    file: file.to_owned(),
                    version,
                });
            }
            _ => {
                return Err(ReadError::NotARecord {
                    file: file.to_owned(),
                });
            }
        }
        serde_json::from_value(doc).map_err(|e| ReadError::Invalid {
            file: file.to_owned(),
            detail: e.to_string(),
        })
    }

    /// Reads and parses a `run.json` from disk (a regular file of bounded size).
    pub fn read(path: &Path) -> Result<RunRecord, ReadError> {
        Self::read_as_input(path, FileKind::Baseline).map(|(record, _)| record)
    }

    /// Reads a `run.json` once: the record, and the file as an input of this run (with
    /// the SHA-256 of the bytes parsed), as `--baseline` needs both.
    pub fn read_as_input(path: &Path, kind: FileKind) -> Result<(RunRecord, InputFile), ReadError> {
        let bytes = crate::files::read_bytes(path, MAX_RECORD_BYTES)?;
        let display = crate::files::display_path(path);
        let file = InputFile {
            path: display.clone(),
            kind,
            sha256: sha256_hex(&bytes),
        };
        let text = String::from_utf8(bytes).map_err(|_| crate::files::FileError::NotUtf8 {
            path: display.clone(),
        })?;
        Ok((Self::from_json(&text, &display)?, file))
    }

    pub fn scenario(&self, id: &str) -> Option<&ScenarioRecord> {
        self.scenarios.iter().find(|s| s.id == id)
    }
}

/// The requirement ids a scenario's `source` starts with.
///
/// `"APPT-CANCELLED-FINAL — 004: 'Once ...'"` gives `["APPT-CANCELLED-FINAL"]`;
/// `"PRAC-READ, PRAC-AUTH — ..."` and `"PRAC-READ/PRAC-AUTH: ..."` give both. An id is
/// upper-case letters and digits in at least two `-`-joined parts (as in
/// `scenarios/RULES.md`); the list must end the source or be followed by a space, `:` or
/// a dash. A source that does not start that way (free text) names no rule.
pub fn rule_ids(source: Option<&str>) -> Vec<String> {
    let Some(source) = source else {
        return Vec::new();
    };
    let mut ids = Vec::new();
    let mut rest = source.trim_start();
    loop {
        let len = rest
            .find(|c: char| !(c.is_ascii_uppercase() || c.is_ascii_digit() || c == '-'))
            .unwrap_or(rest.len());
        let token = &rest[..len];
        let well_formed = token.starts_with(|c: char| c.is_ascii_uppercase())
            && token.contains('-')
            && token.split('-').all(|part| !part.is_empty());
        if !well_formed {
            return Vec::new();
        }
        ids.push(token.to_owned());
        let after = rest[len..].trim_start();
        match after.chars().next() {
            Some(',' | '/') => rest = after[1..].trim_start(),
            None | Some(':' | '—' | '–' | '-' | '(' | ';') => break,
            // Followed by more words on the same footing ("FOO-BAR is ..."): only a
            // space may separate the ids from what follows.
            Some(_) if rest[len..].starts_with(char::is_whitespace) => break,
            Some(_) => return Vec::new(),
        }
    }
    ids.dedup();
    ids
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rule_ids_come_from_the_start_of_the_source() {
        let ids = |s: &str| rule_ids(Some(s));
        assert_eq!(
            ids("APPT-CANCELLED-FINAL — 004: 'Once an appointment ...'"),
            ["APPT-CANCELLED-FINAL"]
        );
        assert_eq!(ids("APPT-CANCELLED-FINAL"), ["APPT-CANCELLED-FINAL"]);
        assert_eq!(
            ids("PRAC-READ, PRAC-AUTH — 000: read"),
            ["PRAC-READ", "PRAC-AUTH"]
        );
        assert_eq!(ids("PRAC-READ/PRAC-AUTH: read"), ["PRAC-READ", "PRAC-AUTH"]);
        assert_eq!(ids("  CORE-READ-404 (http.html)"), ["CORE-READ-404"]);
        assert_eq!(ids("CORE-X2 - text"), ["CORE-X2"]);
        assert!(ids("Appointment update: once cancelled").is_empty());
        assert!(ids("FHIR R4 RESTful API").is_empty());
        assert!(ids("TODO: fix").is_empty(), "an id has at least two parts");
        assert!(ids("APPT--X").is_empty());
        assert!(ids("APPT-X, then prose").is_empty());
        assert!(ids("APPT-Xy").is_empty());
        assert!(rule_ids(None).is_empty());
    }

    #[test]
    fn every_built_in_scenario_names_a_rule() {
        let root = std::path::Path::new(env!("CARGO_MANIFEST_DIR"));
        let suites = crate::scenario::load(
            &[root.join("scenarios")],
            &crate::scenario::LoadOptions::default(),
        )
        .unwrap();
        for s in suites.iter().flat_map(|f| &f.scenarios) {
            assert!(
                !rule_ids(s.source.as_deref()).is_empty(),
                "{}: {:?}",
                s.id,
                s.source
            );
        }
    }

    #[test]
    fn reading_refuses_other_versions_and_other_documents() {
        let e = RunRecord::from_json(
            "{\"schema_version\": 1, \"harness\": \"fhirconf\"}",
            "old.json",
        )
        .unwrap_err()
        .to_string();
        assert!(
            e.contains("old.json is a run record of schema version 1"),
            "{e}"
        );
        let e = RunRecord::from_json("{\"resourceType\": \"Patient\"}", "p.json")
            .unwrap_err()
            .to_string();
        assert!(e.contains("p.json is not a fhirconf run record"), "{e}");
        let e = RunRecord::from_json("[1, 2", "x.json")
            .unwrap_err()
            .to_string();
        assert!(e.starts_with("x.json is not JSON"), "{e}");
        let e = RunRecord::from_json(
            "{\"schema_version\": 2, \"harness\": \"fhirconf\"}",
            "half.json",
        )
        .unwrap_err()
        .to_string();
        assert!(
            e.starts_with("half.json is not a valid run record: missing field"),
            "{e}"
        );
    }

    #[test]
    fn sha256_is_lowercase_hex() {
        assert_eq!(
            sha256_hex(b"abc"),
            "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad"
        );
    }
}
