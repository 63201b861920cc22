//! Exit codes, documented in the README; the only place they are defined.

/// Every selected scenario passed (skips allowed).
pub const SUCCESS: u8 = 0;
/// At least one scenario failed: the server answered, wrongly.
pub const FAILED: u8 = 1;
/// The run could not be made: bad arguments, a bad scenario or target file, unusable
/// credentials or TLS. No scenario ran.
pub const INVALID: u8 = 2;
/// At least one step got no answer, and nothing failed outright.
pub const NO_ANSWER: u8 = 3;
/// The run was interrupted (SIGINT or SIGTERM); the reports cover what ran.
pub const INTERRUPTED: u8 = 130;

use crate::record::{RunRecord, Verdict};

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
