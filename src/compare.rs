//! What changed between two run records: the regression check after an upgrade, and
//! the gate of `run --baseline`. Scenarios are matched by id (`file::name`).
//!
//! ```text
//! Regressions (1): did not fail in the baseline, fail now
//!   - scenarios/canvas/appointment/cancelled-final.yaml::a cancelled appointment is final [APPT-CANCELLED-FINAL]
//!     passed → failed: step 'it is still cancelled' (line 40): $.status equals "cancelled": ...
//! ```
//!
//! This module only computes: [`crate::report::comparison`] renders a comparison,
//! and reading files and exit codes are the caller's.

use crate::record::{BaselineInfo, RunRecord, ServerInfo, Verdict};

/// One scenario's verdict in each run (`None`: not in that run).
#[derive(Debug, Clone, PartialEq)]
pub struct Change {
    pub id: String,
    pub rule_ids: Vec<String>,
    pub before: Option<Verdict>,
    pub after: Option<Verdict>,
    /// The current run's reason (the baseline's for a removed scenario).
    pub reason: Option<String>,
}

/// Enough of one run to say which run it was.
#[derive(Debug, Clone)]
pub struct RunSummary {
    /// The file it was read from, or a label such as `this run`.
    pub label: String,
    pub started_at: String,
    pub base_url: String,
    pub server: Option<ServerInfo>,
    pub harness_version: String,
    /// passed, failed, errors, skipped.
    pub counts: [usize; 4],
}

impl RunSummary {
    pub fn of(label: &str, record: &RunRecord) -> RunSummary {
        RunSummary {
            label: label.to_owned(),
            started_at: record.started_at.clone(),
            base_url: record.target.base_url.clone(),
            server: record.server.clone(),
            harness_version: record.harness_version.clone(),
            counts: [
                record.count(Verdict::Passed),
                record.count(Verdict::Failed),
                record.count(Verdict::Error),
                record.count(Verdict::Skipped),
            ],
        }
    }

    pub fn server_text(&self) -> String {
        self.server
            .as_ref()
            .map_or_else(|| "unknown".to_owned(), ToString::to_string)
    }
}

#[derive(Debug, Clone)]
pub struct Comparison {
    pub baseline: RunSummary,
    pub current: RunSummary,
    /// Failed or errored now, and did not in the baseline (passed, skipped, or absent).
    pub regressions: Vec<Change>,
    /// Failed or errored in the baseline, passed now.
    pub fixes: Vec<Change>,
    /// Not in the baseline (with whatever verdict they got now).
    pub new: Vec<Change>,
    /// In the baseline, not in this run.
    pub removed: Vec<Change>,
    /// Skipped now, and were run (not skipped) in the baseline.
    pub newly_skipped: Vec<Change>,
    /// Failed or errored in both runs: known, and tolerated by `--baseline`.
    pub known_failures: Vec<Change>,
}

impl Comparison {
    pub fn has_regressions(&self) -> bool {
        !self.regressions.is_empty()
    }

    /// The ids, as kept in the current run's record.
    pub fn to_baseline_info(&self, path: String, sha256: String) -> BaselineInfo {
        let ids = |list: &[Change]| list.iter().map(|c| c.id.clone()).collect();
        BaselineInfo {
            path,
            sha256,
            regressions: ids(&self.regressions),
            known_failures: ids(&self.known_failures),
            fixes: ids(&self.fixes),
            new: ids(&self.new),
            removed: ids(&self.removed),
            newly_skipped: ids(&self.newly_skipped),
        }
    }
}

/// Compares `current` with `baseline`; lists keep the current run's order (removed
/// scenarios the baseline's).
pub fn compare(
    baseline: &RunRecord,
    baseline_label: &str,
    current: &RunRecord,
    current_label: &str,
) -> Comparison {
    let mut cmp = Comparison {
        baseline: RunSummary::of(baseline_label, baseline),
        current: RunSummary::of(current_label, current),
        regressions: Vec::new(),
        fixes: Vec::new(),
        new: Vec::new(),
        removed: Vec::new(),
        newly_skipped: Vec::new(),
        known_failures: Vec::new(),
    };
    for now in &current.scenarios {
        let before = baseline.scenario(&now.id).map(|s| s.verdict);
        let change = Change {
            id: now.id.clone(),
            rule_ids: now.rule_ids.clone(),
            before,
            after: Some(now.verdict),
            reason: now.reason.clone(),
        };
        let failed_before = before.is_some_and(Verdict::is_failure);
        if now.verdict.is_failure() && !failed_before {
            cmp.regressions.push(change.clone());
        }
        if now.verdict.is_failure() && failed_before {
            cmp.known_failures.push(change.clone());
        }
        if now.verdict == Verdict::Passed && failed_before {
            cmp.fixes.push(change.clone());
        }
        if now.verdict == Verdict::Skipped && before.is_some_and(|b| b != Verdict::Skipped) {
            cmp.newly_skipped.push(change.clone());
        }
        if before.is_none() {
            cmp.new.push(change);
        }
    }
    for old in &baseline.scenarios {
        if current.scenario(&old.id).is_none() {
            cmp.removed.push(Change {
                id: old.id.clone(),
                rule_ids: old.rule_ids.clone(),
                before: Some(old.verdict),
                after: None,
                reason: old.reason.clone(),
            });
        }
    }
    cmp
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;
    use crate::report::fixtures;

    /// Baseline: passes, fails <&>, errors, skips (s/a.yaml, s/b.yaml). Current: the
    /// passing one fails, the failing one passes, the erroring one still errors, the
    /// skipped one is gone, and a new one fails.
    pub(crate) fn pair() -> (RunRecord, RunRecord) {
        let before = fixtures::record();
        let mut after = fixtures::record();
        after.scenarios[0].verdict = Verdict::Failed;
        after.scenarios[0].reason =
            Some("step 'read' (line 7): status: expected 200, got 500".into());
        after.scenarios[1].verdict = Verdict::Passed;
        after.scenarios[1].reason = None;
        let mut new = after.scenarios[3].clone();
        after.scenarios.remove(3);
        new.id = "s/c.yaml::new one".into();
        new.verdict = Verdict::Failed;
        new.reason = Some("step 'x' (line 3): status: expected 201, got 400".into());
        after.scenarios.push(new);
        (before, after)
    }

    #[test]
    fn sorts_changes_into_regressions_fixes_new_removed_and_known() {
        let (before, after) = pair();
        let cmp = compare(&before, "before.json", &after, "after.json");
        let ids = |l: &[Change]| l.iter().map(|c| c.id.clone()).collect::<Vec<_>>();
        assert_eq!(
            ids(&cmp.regressions),
            ["s/a.yaml::passes", "s/c.yaml::new one"]
        );
        assert_eq!(ids(&cmp.fixes), ["s/a.yaml::fails <&>"]);
        assert_eq!(ids(&cmp.new), ["s/c.yaml::new one"]);
        assert_eq!(ids(&cmp.removed), ["s/b.yaml::skips"]);
        assert_eq!(ids(&cmp.known_failures), ["s/b.yaml::errors"]);
        assert!(cmp.newly_skipped.is_empty());
        assert!(cmp.has_regressions());

        let same = compare(&before, "a", &before, "b");
        assert!(!same.has_regressions());
        assert_eq!(ids(&same.known_failures).len(), 2);
        assert!(same.fixes.is_empty() && same.new.is_empty() && same.removed.is_empty());
    }

    #[test]
    fn a_scenario_skipped_in_the_baseline_that_fails_now_is_a_regression() {
        let before = fixtures::record();
        let mut after = fixtures::record();
        after.scenarios[3].verdict = Verdict::Failed;
        after.scenarios[0].verdict = Verdict::Skipped;
        let cmp = compare(&before, "a", &after, "b");
        assert_eq!(cmp.regressions.len(), 1);
        assert_eq!(cmp.regressions[0].id, "s/b.yaml::skips");
        assert_eq!(cmp.newly_skipped.len(), 1);
        assert_eq!(cmp.newly_skipped[0].id, "s/a.yaml::passes");
    }
}
