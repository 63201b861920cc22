//! Exit codes, documented in the README; the only place they are defined and the only
//! place a run's outcome or error is turned into one.

use crate::compare::Comparison;
use crate::evidence::Verification;
use crate::pipeline::{Finished, PlanError, RunError};
use crate::record::{RunRecord, Verdict};

/// Every selected scenario passed (skips allowed).
pub const SUCCESS: u8 = 0;
/// At least one scenario failed: the server answered, wrongly.
pub const FAILED: u8 = 1;
/// The run could not be made: bad arguments, a bad scenario or target file, unusable
/// credentials or TLS. Nothing was sent but, at most, the token request and
/// `/metadata`.
pub const INVALID: u8 = 2;
/// At least one step got no answer, and nothing failed outright.
pub const NO_ANSWER: u8 = 3;
/// The selection left no scenario to run (`--allow-empty` makes that a success).
pub const NOTHING_SELECTED: u8 = 4;
/// The run was made, but a report or the evidence folder could not be written.
pub const REPORT_FAILED: u8 = 5;
/// The run was interrupted (SIGINT or SIGTERM): the reports cover what finished, or,
/// when the signal came before the first scenario, no scenario ran and no report was
/// written.
pub const INTERRUPTED: u8 = 130;
/// Standard output was closed before everything was printed (`fhirconf list | head`):
/// the code a shell reports for a process killed by SIGPIPE, with no message.
pub const CLOSED_PIPE: u8 = 141;

/// Set while a run prints its progress: a closed stdout then stops the printing but
/// not the run, whose reports are still written (see `main.rs`).
pub static PRINTING_PROGRESS: std::sync::atomic::AtomicBool =
    std::sync::atomic::AtomicBool::new(false);

/// The exit code of a run. With a baseline only its regressions count: a scenario
/// that failed in the baseline too is a known failure and does not fail the run.
pub fn for_record(record: &RunRecord) -> u8 {
    let count = |verdict: Verdict| match &record.baseline {
        None => record.count(verdict),
        Some(b) => b
            .regressions
            .iter()
            .filter(|id| record.scenario(id).is_some_and(|s| s.verdict == verdict))
            .count(),
    };
    if count(Verdict::Failed) > 0 {
        FAILED
    } else if count(Verdict::Error) > 0 {
        NO_ANSWER
    } else {
        SUCCESS
    }
}

/// The exit code of `fhirconf run`.
pub fn for_run(result: &Result<Finished, RunError>) -> u8 {
    match result {
        Ok(Finished::Listed) => SUCCESS,
        Ok(Finished::Ran(ran)) if ran.interrupted => INTERRUPTED,
        Ok(Finished::Ran(ran)) => for_record(&ran.record),
        Err(e) => for_run_error(e),
    }
}

pub fn for_run_error(e: &RunError) -> u8 {
    match e {
        RunError::Plan(p) => for_plan_error(p),
        RunError::Connect(_)
        | RunError::Generate(_)
        | RunError::Runtime(_)
        | RunError::Serve { .. } => INVALID,
        RunError::NothingSelected(_) => NOTHING_SELECTED,
        RunError::Report { .. } => REPORT_FAILED,
        RunError::Interrupted { .. } => INTERRUPTED,
    }
}

pub fn for_plan_error(_: &PlanError) -> u8 {
    INVALID
}

/// `fhirconf compare`: failed when the current run has regressions.
pub fn for_comparison(cmp: &Comparison) -> u8 {
    if cmp.has_regressions() {
        FAILED
    } else {
        SUCCESS
    }
}

/// `fhirconf verify`: failed when any file does not match the manifest.
pub fn for_verification(v: &Verification) -> u8 {
    if v.problems.is_empty() {
        SUCCESS
    } else {
        FAILED
    }
}

/// `fhirconf validate`: invalid when a file could not be read or a profile could not
/// be loaded, failed when any resource has an error issue.
pub fn for_validation(unreadable: bool, errors: usize) -> u8 {
    if unreadable {
        INVALID
    } else if errors > 0 {
        FAILED
    } else {
        SUCCESS
    }
}

/// `fhirconf validate` in a build without the `validation` feature.
pub const VALIDATION_NOT_BUILT: u8 = INVALID;
