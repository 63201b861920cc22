//! The run record: everything a run found, in one value that every reporter reads.
//! No reporter re-runs or re-derives anything.

use std::collections::BTreeMap;

use serde::Serialize;
use serde_json::Value;

use crate::assert::Check;

/// Bumped whenever a field changes meaning or disappears.
pub const SCHEMA_VERSION: u32 = 1;

#[derive(Debug, Clone, Serialize)]
pub struct RunRecord {
    pub schema_version: u32,
    pub harness: String,
    pub harness_version: String,
    pub target: TargetInfo,
    pub started_at: String,
    pub finished_at: String,
    pub duration_secs: f64,
    pub scenarios: Vec<ScenarioRecord>,
}

#[derive(Debug, Clone, Serialize)]
pub struct TargetInfo {
    pub base_url: String,
    /// True when the run started the built-in sandbox.
    pub sandbox: bool,
    pub features: BTreeMap<String, String>,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub defects: Vec<String>,
    /// Why the CapabilityStatement could not be read, if it could not.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub metadata_error: Option<String>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
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
}

#[derive(Debug, Clone, Serialize)]
pub struct ScenarioRecord {
    pub id: String,
    pub file: String,
    pub name: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub source: Option<String>,
    pub tags: Vec<String>,
    pub verdict: Verdict,
    /// One line: why it failed, errored or was skipped.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub reason: Option<String>,
    pub duration_secs: f64,
    pub steps: Vec<StepRecord>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Phase {
    Step,
    Cleanup,
}

#[derive(Debug, Clone, Serialize)]
pub struct StepRecord {
    pub name: String,
    /// Line of the step's `request` in the scenario file.
    pub line: u64,
    pub phase: Phase,
    pub verdict: Verdict,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub message: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub method: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub url: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub status: Option<u16>,
    pub duration_secs: f64,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub checks: Vec<Check>,
    #[serde(skip_serializing_if = "BTreeMap::is_empty")]
    pub captures: BTreeMap<String, Value>,
    /// Kept for steps that did not pass (bounded in size): what was sent and received.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub transcript: Option<String>,
}

impl ScenarioRecord {
    /// Each step that did not pass, its failed checks with diffs, and its transcript:
    /// the text under a JUnit `<failure>` and in the terminal.
    pub fn details(&self) -> String {
        use std::fmt::Write;
        let mut out = String::new();
        for step in self
            .steps
            .iter()
            .filter(|s| matches!(s.verdict, Verdict::Failed | Verdict::Error))
        {
            let phase = if step.phase == Phase::Cleanup {
                "cleanup "
            } else {
                ""
            };
            let _ = writeln!(
                out,
                "{phase}step '{}' (line {}): {}",
                step.name,
                step.line,
                step.message.as_deref().unwrap_or("")
            );
            let _ = writeln!(out, "  --> {}:{}", self.file, step.line);
            for check in step.checks.iter().filter(|c| !c.passed) {
                let _ = writeln!(
                    out,
                    "  {}\n    expected: {}\n    actual:   {}",
                    check.what, check.expected, check.actual
                );
                if let Some(diff) = &check.diff {
                    let _ = writeln!(out, "{diff}");
                }
            }
            if let Some(t) = &step.transcript {
                let _ = writeln!(out, "{t}");
            }
        }
        out
    }
}

impl RunRecord {
    pub fn count(&self, verdict: Verdict) -> usize {
        self.scenarios
            .iter()
            .filter(|s| s.verdict == verdict)
            .count()
    }
}
