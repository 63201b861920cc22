//! Reports are pure functions of the [`RunRecord`]: each writer builds its own
//! output from the same record and never reaches back into the runner.

mod compare;
mod html;
mod json;
mod junit;
mod markdown;
pub mod testreport;
mod text;

use std::io::Write as _;
use std::path::{Path, PathBuf};

pub use compare::{Format as CompareFormat, baseline_gate, comparison};
pub use json::render as json;
pub use junit::render as junit;
pub use markdown::render as markdown;
pub use text::{
    InputSources, SHOWN_TRANSCRIPT_BYTES, details, inputs, left_behind_line, sandbox_switches,
    scenario_list, shown_transcript, validation_line, verdict_line, verification,
};

use crate::record::RunRecord;

/// Where each report goes.
#[derive(Debug, Clone)]
pub struct ReportPaths {
    pub junit: PathBuf,
    pub json: PathBuf,
    pub markdown: PathBuf,
    pub html: PathBuf,
    /// `--testreport DIR`: a TestReport per TestScript run.
    pub testreport: Option<PathBuf>,
}

/// Writes `bytes` atomically (see [`crate::files::write_atomic`]).
pub fn write_atomic(path: &Path, bytes: &[u8]) -> std::io::Result<()> {
    crate::files::write_atomic(path, |w| w.write_all(bytes))
}

/// Why a report, the step summary or the evidence folder could not be written.
#[derive(Debug, thiserror::Error)]
pub enum ReportError {
    #[error("cannot write {}: {source}", path.display())]
    Write {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("cannot append to ${STEP_SUMMARY_VAR} ({}): {source}", path.display())]
    StepSummary {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
}

/// Writes every report: `run.json`, the largest, on a thread of its own and straight
/// into its file (never held as text; passing steps' transcripts read back from
/// `spill`), the others one after the other meanwhile. Each is written even if another
/// fails; the first failure, in the order JUnit, JSON, Markdown, HTML, is returned with
/// the path it concerns.
pub fn write_all(
    record: &RunRecord,
    paths: &ReportPaths,
    spill: Option<&std::sync::Arc<crate::spill::Spill>>,
) -> Result<(), ReportError> {
    fn named(path: &Path, written: std::io::Result<()>) -> Result<(), ReportError> {
        written.map_err(|source| ReportError::Write {
            path: path.to_path_buf(),
            source,
        })
    }
    std::thread::scope(|scope| {
        let json = scope.spawn(|| {
            crate::spill::reading(spill, || {
                named(
                    &paths.json,
                    crate::files::write_atomic(&paths.json, |w| json::write(record, w)),
                )
            })
        });
        let junit = named(
            &paths.junit,
            write_atomic(&paths.junit, junit(record).as_bytes()),
        );
        let markdown = named(
            &paths.markdown,
            write_atomic(&paths.markdown, markdown(record).as_bytes()),
        );
        let html = named(
            &paths.html,
            crate::files::write_atomic(&paths.html, |w| html::write(record, w)),
        );
        let json = json
            .join()
            .unwrap_or_else(|panic| std::panic::resume_unwind(panic));
        junit.and(json).and(markdown).and(html)
    })
}

/// The variable GitHub Actions sets to the file that becomes the job's summary page.
pub const STEP_SUMMARY_VAR: &str = "GITHUB_STEP_SUMMARY";

/// Appends the Markdown summary to `$GITHUB_STEP_SUMMARY` when that variable names a
/// file; returns the path appended to.
pub fn append_step_summary(record: &RunRecord) -> Result<Option<PathBuf>, ReportError> {
    let Some(path) = std::env::var_os(STEP_SUMMARY_VAR).filter(|p| !p.is_empty()) else {
        return Ok(None);
    };
    let markdown = markdown(record);
    let path = PathBuf::from(path);
    use std::io::Write;
    std::fs::OpenOptions::new()
        .create(true)
        .append(true)
        .open(&path)
        .and_then(|mut f| f.write_all(format!("{markdown}\n").as_bytes()))
        .map_err(|source| ReportError::StepSummary {
            path: path.clone(),
            source,
        })?;
    Ok(Some(path))
}

#[cfg(test)]
pub(crate) mod fixtures {
    //! A small run record with one scenario of each verdict, shared by report tests.
    use std::collections::BTreeMap;

    use crate::assert::Check;
    use crate::record::*;

    fn step(name: &str, verdict: Verdict, message: Option<&str>) -> StepRecord {
        StepRecord {
            name: name.into(),
            line: 7,
            phase: Phase::Step,
            verdict,
            message: message.map(Into::into),
            method: Some("GET".into()),
            url: Some("http://127.0.0.1:1/Appointment/a1".into()),
            status: (verdict != Verdict::Error).then_some(200),
            attempts: None,
            repeated_unsafe: false,
            duration_secs: 0.012,
            checks: Vec::new(),
            validation: Vec::new(),
            captures: Default::default(),
            transcript: None,
        }
    }

    fn scenario(
        file: &str,
        name: &str,
        verdict: Verdict,
        reason: Option<&str>,
        steps: Vec<StepRecord>,
    ) -> ScenarioRecord {
        ScenarioRecord {
            id: format!("{file}::{name}"),
            file: file.into(),
            name: name.into(),
            source: Some("APPT-CANCELLED-FINAL — 004: 'cannot be changed'".into()),
            rule_ids: vec!["APPT-CANCELLED-FINAL".into()],
            tags: vec!["canvas".into()],
            verdict,
            reason: reason.map(Into::into),
            missing_inputs: Vec::new(),
            left_behind: Vec::new(),
            duration_secs: 0.25,
            steps,
        }
    }

    /// Validates with xmllint against the Jenkins xUnit schema CI uses, when both are
    /// here (`.ci/run` installs xmllint, so CI always checks).
    pub(crate) fn assert_junit_schema_valid(path: &std::path::Path) {
        let xsd = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("schemas/junit-10.xsd");
        let xmllint = std::process::Command::new("xmllint")
            .arg("--noout")
            .arg("--schema")
            .arg(&xsd)
            .arg(path)
            .output();
        assert!(xsd.is_file(), "{} is part of the repository", xsd.display());
        match xmllint {
            Ok(out) => assert!(
                out.status.success(),
                "{}",
                String::from_utf8_lossy(&out.stderr)
            ),
            // A check that cannot run fails unless skipping is asked for (never in CI).
            Err(_) if std::env::var("FHIRCONF_ALLOW_MISSING_TOOLS").as_deref() == Ok("1") => {
                eprintln!(
                    "xmllint is not installed: check skipped (FHIRCONF_ALLOW_MISSING_TOOLS=1)"
                )
            }
            Err(e) => panic!(
                "xmllint is not installed ({e}), and this check needs it: `apt-get install libxml2-utils`, or set FHIRCONF_ALLOW_MISSING_TOOLS=1 to skip it"
            ),
        }
    }

    pub(crate) fn record() -> RunRecord {
        RunRecord {
            schema_version: SCHEMA_VERSION,
            harness: "fhirconf".into(),
            harness_version: "0.1.0".into(),
            target: TargetInfo {
                base_url: "http://127.0.0.1:1".into(),
                sandbox: false,
                features: BTreeMap::new(),
                defects: vec![],
                metadata_error: None,
            },
            server: Some(ServerInfo {
                software_name: Some("Acme FHIR".into()),
                software_version: Some("7.2.0".into()),
                fhir_version: Some("4.0.1".into()),
            }),
            files: vec![
                InputFile {
                    path: "s/a.yaml".into(),
                    kind: FileKind::Scenario,
                    sha256: sha256_hex(b"a"),
                },
                InputFile {
                    path: "s/b.yaml".into(),
                    kind: FileKind::Scenario,
                    sha256: sha256_hex(b"b"),
                },
            ],
            baseline: None,
            validation: ValidationInfo::default(),
            started_at: "2026-11-21T10:00:00Z".into(),
            finished_at: "2026-11-21T10:00:01Z".into(),
            duration_secs: 1.0,
            scenarios: scenarios(),
        }
    }

    /// Passed, failed, error and skipped, in that order.
    fn scenarios() -> Vec<ScenarioRecord> {
        let mut scenarios = vec![
            scenario(
                "s/a.yaml",
                "passes",
                Verdict::Passed,
                None,
                vec![step("read", Verdict::Passed, None)],
            ),
            scenario(
                "s/a.yaml",
                "fails <&>",
                Verdict::Failed,
                Some(
                    "step 'it is still cancelled' (line 7): $.status equals \"cancelled\": expected \"cancelled\", got \"booked\"",
                ),
                vec![step("create", Verdict::Passed, None), failing_step()],
            ),
            scenario(
                "s/b.yaml",
                "errors",
                Verdict::Error,
                Some("step 'read it' (line 7): no answer: could not connect: connection refused"),
                vec![step(
                    "read it",
                    Verdict::Error,
                    Some("no answer: could not connect: connection refused"),
                )],
            ),
            scenario(
                "s/b.yaml",
                "skips",
                Verdict::Skipped,
                Some("needs feature double_booking=forbidden, which the target does not declare"),
                vec![],
            ),
        ];
        // One more rule, and a scenario that names none.
        scenarios[2].source = Some("CORE-READ-404 — http.html".into());
        scenarios[2].rule_ids = vec!["CORE-READ-404".into()];
        scenarios[3].source = None;
        scenarios[3].rule_ids = Vec::new();
        scenarios
    }

    /// A failed check with a diff that XML must escape, and a transcript.
    fn failing_step() -> StepRecord {
        let mut failing = step(
            "it is still cancelled",
            Verdict::Failed,
            Some("$.status equals \"cancelled\": expected \"cancelled\", got \"booked\""),
        );
        failing.checks = vec![Check {
            what: "$.status equals \"cancelled\"".into(),
            passed: false,
            expected: "\"cancelled\"".into(),
            actual: "\"booked\"".into(),
            diff: Some("--- expected\n+++ actual\n-a ]]> \u{1}\n+b\n".into()),
            line: Some(12),
            warning: false,
        }];
        failing.transcript = Some(
            "> GET http://127.0.0.1:1/Appointment/a1\n< 200\n< \n< {\"status\": \"booked\"}".into(),
        );
        failing
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn atomic_write_replaces_whole_file_and_leaves_no_temp() {
        let dir = std::env::temp_dir().join(format!("fhirconf-atomic-{}", std::process::id()));
        let path = dir.join("nested/out.xml");
        write_atomic(&path, b"first").unwrap();
        write_atomic(&path, b"second").unwrap();
        assert_eq!(std::fs::read_to_string(&path).unwrap(), "second");
        let names: Vec<_> = std::fs::read_dir(path.parent().unwrap())
            .unwrap()
            .map(|e| e.unwrap().file_name())
            .collect();
        assert_eq!(names, vec![std::ffi::OsString::from("out.xml")]);
        std::fs::remove_dir_all(dir).unwrap();
    }
}
