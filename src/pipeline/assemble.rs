//! The last stage: the run's records put together into one [`RunRecord`], compared
//! with the baseline, and published (every report, the step summary, the evidence
//! folder). Nothing here renders text: that is [`crate::report`].

use std::path::PathBuf;
use std::sync::Arc;

use super::connect::Connection;
use super::plan::{Plan, TargetKind};
use crate::compare::{self, Comparison};
use crate::evidence;
use crate::record::{RunRecord, SCHEMA_VERSION, ScenarioRecord, TargetInfo, ValidationInfo};
use crate::report::{self, ReportError};
use crate::spill::Spill;

/// When the run started and how long it took.
#[derive(Debug, Clone)]
pub struct Timing {
    pub started_at: String,
    pub finished_at: String,
    pub duration_secs: f64,
}

/// The run record, with its comparison against `--baseline` when there is one.
pub fn assemble(
    plan: &Plan,
    connection: &Connection,
    scenarios: Vec<ScenarioRecord>,
    timing: Timing,
) -> (RunRecord, Option<Comparison>) {
    let defects = match &plan.kind {
        TargetKind::Sandbox(config) => config.defects.iter().cloned().collect(),
        TargetKind::External(_) => Vec::new(),
    };
    let mut record = RunRecord {
        schema_version: SCHEMA_VERSION,
        harness: "fhirconf".to_owned(),
        harness_version: env!("CARGO_PKG_VERSION").to_owned(),
        target: TargetInfo {
            base_url: connection.base_url.to_string(),
            sandbox: matches!(plan.kind, TargetKind::Sandbox(_)),
            features: connection.features.clone(),
            defects,
            metadata_error: connection
                .capabilities
                .error
                .as_ref()
                .map(|e| connection.redactor.text(&e.to_string())),
        },
        server: connection.capabilities.server.clone(),
        files: plan.files.clone(),
        baseline: None,
        validation: ValidationInfo {
            mode: plan.validation.mode().as_str().to_owned(),
            built_in: crate::validation::BUILT_IN,
            profiles: plan.validation.profiles().to_vec(),
            ignore_rules: plan.validation.ignore_rules(),
        },
        started_at: timing.started_at,
        finished_at: timing.finished_at,
        duration_secs: timing.duration_secs,
        scenarios,
    };
    let comparison = plan.baseline.as_ref().map(|b| {
        let cmp = compare::compare(&b.record, &b.file.path, &record, "this run");
        record.baseline = Some(cmp.to_baseline_info(b.file.path.clone(), b.file.sha256.clone()));
        cmp
    });
    (record, comparison)
}

/// Why the run's results could not all be written.
#[derive(Debug, thiserror::Error)]
pub enum PublishError {
    #[error(transparent)]
    Report(#[from] ReportError),
    #[error("evidence not written: {0}")]
    Evidence(evidence::EvidenceError),
}

/// What [`publish`] wrote besides the reports.
#[derive(Debug, Default)]
pub struct Published {
    /// `$GITHUB_STEP_SUMMARY`, when the summary was appended to it.
    pub step_summary: Option<PathBuf>,
    /// A step summary that could not be appended: a warning, not a failure.
    pub step_summary_error: Option<ReportError>,
    /// The evidence folder and how many files it holds.
    pub evidence: Option<(PathBuf, usize)>,
    /// Whether the evidence manifest is signed.
    pub signed: bool,
    /// `--testreport`: the TestReports written.
    pub testreports: Vec<PathBuf>,
}

/// Writes every report (each attempted even if another fails), appends the summary
/// for GitHub Actions, and writes the evidence folder. `spill` holds the passing
/// steps' transcripts `run.json` reads back.
pub fn publish(
    plan: &Plan,
    record: &RunRecord,
    spill: Option<&Arc<Spill>>,
) -> Result<Published, PublishError> {
    report::write_all(record, &plan.reports, spill)?;
    let mut published = Published::default();
    if let Some(dir) = &plan.reports.testreport {
        published.testreports = report::testreport::write_all(dir, record, &plan.suites)?;
    }
    match report::append_step_summary(record) {
        Ok(path) => published.step_summary = path,
        Err(e) => published.step_summary_error = Some(e),
    }
    if let Some(ev) = &plan.evidence {
        let r = &plan.reports;
        let evidence = evidence::Evidence {
            reports: [
                ("run.json", &r.json),
                ("junit.xml", &r.junit),
                ("summary.md", &r.markdown),
            ],
            files: &record.files,
            harness_version: &record.harness_version,
            created_at: &record.finished_at,
        };
        let n =
            evidence::write(&ev.dir, &evidence, ev.key.as_ref()).map_err(PublishError::Evidence)?;
        published.evidence = Some((ev.dir.clone(), n));
        published.signed = ev.key.is_some();
    }
    Ok(published)
}
