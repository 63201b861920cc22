//! `summary.md`, fit for a CI job summary (`$GITHUB_STEP_SUMMARY`): totals, the
//! server, the comparison with a baseline, one line per failure with its reason, a
//! requirements table (rule id → scenarios → verdict), and the skips.

use std::collections::BTreeMap;
use std::fmt::Write;

use crate::record::{RunRecord, ScenarioRecord, Verdict};

/// Text fit for one Markdown table cell: one line, pipes escaped.
pub(super) fn cell(text: &str) -> String {
    text.split_whitespace()
        .collect::<Vec<_>>()
        .join(" ")
        .replace('|', "\\|")
}

fn mark(verdict: Verdict) -> &'static str {
    match verdict {
        Verdict::Passed => "✔",
        Verdict::Failed => "✘",
        Verdict::Error => "!",
        Verdict::Skipped => "–",
    }
}

/// A rule holds when its scenarios pass: it is failed if any failed, error if any got
/// no answer, passed if any passed, and skipped when none ran.
fn rule_verdict(scenarios: &[&ScenarioRecord]) -> Verdict {
    let any = |v: Verdict| scenarios.iter().any(|s| s.verdict == v);
    if any(Verdict::Failed) {
        Verdict::Failed
    } else if any(Verdict::Error) {
        Verdict::Error
    } else if any(Verdict::Passed) {
        Verdict::Passed
    } else {
        Verdict::Skipped
    }
}

fn baseline_section(out: &mut String, record: &RunRecord) {
    let Some(b) = &record.baseline else { return };
    let n = |count: usize, one: &str, many: &str| {
        format!("{count} {}", if count == 1 { one } else { many })
    };
    let _ = writeln!(
        out,
        "## Against the baseline\n\nBaseline `{}`: **{}**, **{}** tolerated, {}, {} new, {} removed, {} newly skipped. Only regressions fail the gate.\n",
        cell(&b.path),
        n(b.regressions.len(), "regression", "regressions"),
        n(b.known_failures.len(), "known failure", "known failures"),
        n(b.fixes.len(), "fix", "fixes"),
        b.new.len(),
        b.removed.len(),
        b.newly_skipped.len()
    );
    for (title, ids) in [
        ("Regressions", &b.regressions),
        ("Newly skipped", &b.newly_skipped),
        ("Removed", &b.removed),
    ] {
        if ids.is_empty() {
            continue;
        }
        let _ = writeln!(out, "{title}:\n");
        for id in ids {
            let _ = writeln!(out, "- `{}`", cell(id));
        }
        out.push('\n');
    }
}

fn failures_section(out: &mut String, record: &RunRecord) {
    let problems: Vec<_> = record
        .scenarios
        .iter()
        .filter(|s| s.verdict.is_failure())
        .collect();
    if problems.is_empty() {
        return;
    }
    let known = |id: &str| {
        record
            .baseline
            .as_ref()
            .is_some_and(|b| b.known_failures.iter().any(|k| k == id))
    };
    let _ = writeln!(
        out,
        "## Failures and errors\n\n| verdict | scenario | rule | reason |\n|---|---|---|---|"
    );
    for s in problems {
        let _ = writeln!(
            out,
            "| {}{} | `{}` | {} | {} |",
            s.verdict.as_str(),
            if known(&s.id) { " (known)" } else { "" },
            cell(&s.id),
            cell(&s.rule_ids.join(", ")),
            cell(s.reason.as_deref().unwrap_or(""))
        );
    }
    out.push('\n');
}

fn requirements_section(out: &mut String, record: &RunRecord) {
    let mut rules: BTreeMap<&str, Vec<&ScenarioRecord>> = BTreeMap::new();
    let mut unruled = Vec::new();
    for s in &record.scenarios {
        if s.rule_ids.is_empty() {
            unruled.push(s);
        }
        for id in &s.rule_ids {
            rules.entry(id).or_default().push(s);
        }
    }
    if rules.is_empty() && unruled.is_empty() {
        return;
    }
    let _ = writeln!(
        out,
        "## Requirements\n\n| rule | verdict | scenarios |\n|---|---|---|"
    );
    let rows = rules
        .iter()
        .map(|(id, list)| (format!("`{id}`"), list))
        .chain((!unruled.is_empty()).then(|| ("(no rule id)".to_owned(), &unruled)));
    for (rule, list) in rows {
        let scenarios: Vec<String> = list
            .iter()
            .map(|s| format!("{} {}", mark(s.verdict), cell(&s.name)))
            .collect();
        let _ = writeln!(
            out,
            "| {rule} | {} | {} |",
            rule_verdict(list).as_str(),
            scenarios.join("<br>")
        );
    }
    let _ = writeln!(
        out,
        "\n✔ passed, ✘ failed, ! error (no answer), – skipped.\n"
    );
}

/// Validation issues by scenario file and severity, when responses were validated.
fn validation_section(out: &mut String, record: &RunRecord) {
    let v = &record.validation;
    let by_file = record.issues_by_file();
    if v.mode == "off" && by_file.is_empty() {
        return;
    }
    let _ = writeln!(
        out,
        "## FHIR validation
"
    );
    let what = match v.mode.as_str() {
        "error" => "an error issue fails its step",
        "warn" => "issues are shown, nothing fails for them",
        _ => "only the steps' own `valid` checks",
    };
    let _ = write!(out, "Mode `{}`: {what}.", v.mode);
    if !v.profiles.is_empty() {
        let list: Vec<String> = v
            .profiles
            .iter()
            .map(|p| format!("`{}`", cell(p)))
            .collect();
        let _ = write!(out, " Profiles: {}.", list.join(", "));
    }
    if v.ignore_rules > 0 {
        let _ = write!(out, " {} ignore rule(s) in the target.", v.ignore_rules);
    }
    out.push_str("\n\n");
    if by_file.is_empty() {
        let _ = writeln!(out, "No issue in any response.\n");
        return;
    }
    let _ = writeln!(
        out,
        "| scenario file | errors | warnings | suppressed | responses with issues |\n|---|---|---|---|---|"
    );
    for (file, c) in by_file {
        let _ = writeln!(
            out,
            "| `{}` | {} | {} | {} | {} |",
            cell(file),
            c.errors,
            c.warnings,
            c.suppressed,
            c.responses
        );
    }
    out.push('\n');
}

fn skipped_section(out: &mut String, record: &RunRecord) {
    let skipped: Vec<_> = record
        .scenarios
        .iter()
        .filter(|s| s.verdict == Verdict::Skipped)
        .collect();
    if skipped.is_empty() {
        return;
    }
    let _ = writeln!(out, "## Skipped\n\n| scenario | reason |\n|---|---|");
    for s in skipped {
        let _ = writeln!(
            out,
            "| `{}` | {} |",
            cell(&s.id),
            cell(s.reason.as_deref().unwrap_or(""))
        );
    }
}

/// Records scenarios left on the server because their cleanup could not remove them.
fn left_behind_section(out: &mut String, record: &RunRecord) {
    let with: Vec<_> = record
        .scenarios
        .iter()
        .filter(|s| !s.left_behind.is_empty())
        .collect();
    if with.is_empty() {
        return;
    }
    let _ = writeln!(
        out,
        "## Left on the server

Records these scenarios created and their cleanup cannot remove (`leaves_behind`; the capability suite lists those of types the server cannot delete).

| scenario | records |
|---|---|"
    );
    for s in with {
        let _ = writeln!(
            out,
            "| `{}` | {} |",
            cell(&s.id),
            cell(&s.left_behind.join(", "))
        );
    }
    out.push('\n');
}

pub fn render(record: &RunRecord) -> String {
    let mut out = String::new();
    let _ = writeln!(out, "# fhirconf run against {}\n", record.target.base_url);
    let _ = writeln!(
        out,
        "**{}** passed, **{}** failed, **{}** errors, **{}** skipped — {} scenarios in {:.1} s (fhirconf {}).\n",
        record.count(Verdict::Passed),
        record.count(Verdict::Failed),
        record.count(Verdict::Error),
        record.count(Verdict::Skipped),
        record.scenarios.len(),
        record.duration_secs,
        record.harness_version
    );
    if let Some(server) = &record.server {
        let _ = writeln!(out, "Server: {}.\n", cell(&server.to_string()));
    }
    if let Some(e) = &record.target.metadata_error {
        let _ = writeln!(out, "> CapabilityStatement unavailable: {}\n", cell(e));
    }
    baseline_section(&mut out, record);
    failures_section(&mut out, record);
    requirements_section(&mut out, record);
    validation_section(&mut out, record);
    left_behind_section(&mut out, record);
    skipped_section(&mut out, record);
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn counts_validation_issues_by_file_and_severity() {
        use crate::record::{FoundIssue, IssueSeverity};
        let mut record = crate::report::fixtures::record();
        record.validation.mode = "warn".to_owned();
        let issue = |severity, suppressed| FoundIssue {
            severity,
            location: "Practitioner.gender".into(),
            message: "bad".into(),
            profile: None,
            rule: None,
            suppressed,
        };
        record.scenarios[0].steps[0].validation = vec![
            issue(IssueSeverity::Error, false),
            issue(IssueSeverity::Warning, false),
            issue(IssueSeverity::Error, true),
        ];
        let md = render(&record);
        assert!(
            md.contains("Mode `warn`: issues are shown, nothing fails for them."),
            "{md}"
        );
        let file = &record.scenarios[0].file;
        assert!(
            md.contains(&format!("| `{file}` | 1 | 1 | 1 | 1 |")),
            "{md}"
        );
        record.validation.mode = "off".to_owned();
        for s in &mut record.scenarios {
            for st in &mut s.steps {
                st.validation.clear();
            }
        }
        assert!(!render(&record).contains("FHIR validation"));
    }

    #[test]
    fn lists_totals_failures_and_skips() {
        let md = render(&crate::report::fixtures::record());
        assert!(
            md.contains("**1** passed, **1** failed, **1** errors, **1** skipped"),
            "{md}"
        );
        assert!(md.contains("| failed | `s/a.yaml::fails <&>` | APPT-CANCELLED-FINAL | step 'it is still cancelled' (line 7)"), "{md}");
        assert!(
            md.contains("| `s/b.yaml::skips` | needs feature double_booking=forbidden"),
            "{md}"
        );
        assert!(
            md.contains("| `APPT-CANCELLED-FINAL` | failed | ✔ passes<br>✘ fails <&> |\n| `CORE-READ-404` | error | ! errors |\n| (no rule id) | skipped | – skips |"),
            "{md}"
        );
    }

    #[test]
    fn marks_known_failures_and_lists_regressions_against_a_baseline() {
        let mut record = crate::report::fixtures::record();
        record.baseline = Some(crate::record::BaselineInfo {
            path: "base.json".into(),
            sha256: "00".into(),
            regressions: vec!["s/b.yaml::errors".into()],
            known_failures: vec!["s/a.yaml::fails <&>".into()],
            ..Default::default()
        });
        let md = render(&record);
        assert!(md.contains("Baseline `base.json`: **1 regression**, **1 known failure** tolerated, 0 fixes, 0 new"), "{md}");
        assert!(
            md.contains("Regressions:\n\n- `s/b.yaml::errors`\n"),
            "{md}"
        );
        assert!(
            md.contains("| failed (known) | `s/a.yaml::fails <&>` |"),
            "{md}"
        );
        assert!(md.contains("| error | `s/b.yaml::errors` |"), "{md}");
    }

    #[test]
    fn matches_golden() {
        let md = render(&crate::report::fixtures::record());
        let path = concat!(
            env!("CARGO_MANIFEST_DIR"),
            "/tests/golden/summary-fixture.md"
        );
        if std::env::var_os("FHIRCONF_BLESS").is_some() {
            std::fs::write(path, &md).unwrap();
        }
        assert_eq!(md, std::fs::read_to_string(path).unwrap_or_default());
    }
}
