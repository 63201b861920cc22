//! What changed between two run records: the regression check after an upgrade, and
//! the gate of `run --baseline`. Scenarios are matched by id (`file::name`).
//!
//! ```text
//! Regressions (1): did not fail in the baseline, fail now
//!   - scenarios/canvas/appointment/cancelled-final.yaml::a cancelled appointment is final [APPT-CANCELLED-FINAL]
//!     passed → failed: step 'it is still cancelled' (line 40): $.status equals "cancelled": ...
//! ```
//!
//! This module only computes and renders; reading files and exit codes are the
//! caller's.

use std::fmt::Write;

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

    fn server_text(&self) -> String {
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

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Format {
    Text,
    Markdown,
}

fn verdict(v: Option<Verdict>) -> &'static str {
    v.map_or("absent", Verdict::as_str)
}

fn plural(n: usize, one: &str, many: &str) -> String {
    format!("{n} {}", if n == 1 { one } else { many })
}

/// The one-line tally both formats end with.
pub fn tally(cmp: &Comparison) -> String {
    format!(
        "{}, {}, {} new, {} removed, {} newly skipped; {} still failing",
        plural(cmp.regressions.len(), "regression", "regressions"),
        plural(cmp.fixes.len(), "fix", "fixes"),
        cmp.new.len(),
        cmp.removed.len(),
        cmp.newly_skipped.len(),
        plural(cmp.known_failures.len(), "known failure", "known failures"),
    )
}

/// The sections, in the order both formats print them: title, what it means, the list.
fn sections(cmp: &Comparison) -> [(&'static str, &'static str, &[Change]); 5] {
    [
        (
            "Regressions",
            "did not fail in the baseline, fail now",
            &cmp.regressions,
        ),
        ("Fixes", "failed in the baseline, pass now", &cmp.fixes),
        ("New scenarios", "not in the baseline", &cmp.new),
        (
            "Removed scenarios",
            "in the baseline, not run now",
            &cmp.removed,
        ),
        (
            "Newly skipped",
            "ran in the baseline, skipped now",
            &cmp.newly_skipped,
        ),
    ]
}

pub fn render(cmp: &Comparison, format: Format) -> String {
    match format {
        Format::Text => render_text(cmp),
        Format::Markdown => render_markdown(cmp),
    }
}

fn one_line(text: &str) -> String {
    text.split_whitespace().collect::<Vec<_>>().join(" ")
}

fn render_text(cmp: &Comparison) -> String {
    let mut out = String::new();
    for (what, run) in [("baseline", &cmp.baseline), ("current ", &cmp.current)] {
        let [p, f, e, s] = run.counts;
        let _ = writeln!(
            out,
            "{what}: {} ({}, {}, server {}, fhirconf {}): {p} passed, {f} failed, {e} errors, {s} skipped",
            run.label,
            run.started_at,
            run.base_url,
            run.server_text(),
            run.harness_version
        );
    }
    for (title, meaning, list) in sections(cmp) {
        if list.is_empty() {
            continue;
        }
        let _ = writeln!(out, "\n{title} ({}): {meaning}", list.len());
        for c in list {
            let rules = if c.rule_ids.is_empty() {
                String::new()
            } else {
                format!(" [{}]", c.rule_ids.join(", "))
            };
            let _ = writeln!(out, "  - {}{rules}", c.id);
            let reason = c
                .reason
                .as_deref()
                .filter(|_| c.after.is_some_and(|v| v != Verdict::Passed))
                .map(|r| format!(": {}", one_line(r)))
                .unwrap_or_default();
            let _ = writeln!(
                out,
                "    {} → {}{reason}",
                verdict(c.before),
                verdict(c.after)
            );
        }
    }
    let _ = writeln!(out, "\n{}", tally(cmp));
    out
}

fn cell(text: &str) -> String {
    one_line(text).replace('|', "\\|")
}

fn render_markdown(cmp: &Comparison) -> String {
    let mut out = String::new();
    let _ = writeln!(out, "# fhirconf compare\n");
    let _ = writeln!(out, "| | baseline | current |\n|---|---|---|");
    let (b, c) = (&cmp.baseline, &cmp.current);
    let rows: [(&str, String, String); 6] = [
        (
            "run record",
            format!("`{}`", cell(&b.label)),
            format!("`{}`", cell(&c.label)),
        ),
        ("started", b.started_at.clone(), c.started_at.clone()),
        ("target", cell(&b.base_url), cell(&c.base_url)),
        ("server", cell(&b.server_text()), cell(&c.server_text())),
        (
            "fhirconf",
            b.harness_version.clone(),
            c.harness_version.clone(),
        ),
        (
            "passed / failed / errors / skipped",
            b.counts.map(|n| n.to_string()).join(" / "),
            c.counts.map(|n| n.to_string()).join(" / "),
        ),
    ];
    for (name, before, after) in rows {
        let _ = writeln!(out, "| {name} | {before} | {after} |");
    }
    let _ = writeln!(out, "\n**{}**", tally(cmp));
    for (title, meaning, list) in sections(cmp) {
        if list.is_empty() {
            continue;
        }
        let _ = writeln!(
            out,
            "\n## {title} ({})\n\n{}{}.\n\n| scenario | rules | baseline | current | reason |\n|---|---|---|---|---|",
            list.len(),
            meaning[..1].to_uppercase(),
            &meaning[1..]
        );
        for c in list {
            let reason = c
                .reason
                .as_deref()
                .filter(|_| c.after.is_some_and(|v| v != Verdict::Passed))
                .map(cell)
                .unwrap_or_default();
            let _ = writeln!(
                out,
                "| `{}` | {} | {} | {} | {reason} |",
                cell(&c.id),
                c.rule_ids.join(", "),
                verdict(c.before),
                verdict(c.after)
            );
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::report::fixtures;

    /// Baseline: passes, fails <&>, errors, skips (s/a.yaml, s/b.yaml). Current: the
    /// passing one fails, the failing one passes, the erroring one still errors, the
    /// skipped one is gone, and a new one fails.
    fn pair() -> (RunRecord, RunRecord) {
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

    fn golden(name: &str, text: &str) {
        let path = std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
            .join("tests/golden")
            .join(name);
        if std::env::var_os("FHIRCONF_BLESS").is_some() {
            std::fs::write(&path, text).unwrap();
        }
        let expected = std::fs::read_to_string(&path).unwrap_or_default();
        assert_eq!(
            text,
            expected,
            "{} (FHIRCONF_BLESS=1 rewrites it)",
            path.display()
        );
    }

    #[test]
    fn text_and_markdown_match_their_goldens() {
        let (before, after) = pair();
        let cmp = compare(&before, "before.json", &after, "after.json");
        golden("compare.txt", &render(&cmp, Format::Text));
        golden("compare.md", &render(&cmp, Format::Markdown));
    }
}
