//! The plain-text account of a scenario that did not hold: what the terminal prints
//! under a failed test and JUnit puts in `<failure>`.
//!
//! ```text
//! step 'read it back' (line 31): $.status equals "cancelled": expected "cancelled", got "booked"
//!   --> scenarios/canvas/appointment/cancelled.yaml:35
//!   $.status equals "cancelled"
//!     expected: "cancelled"
//!     actual:   "booked"
//! > GET http://127.0.0.1:8080/Appointment/42
//! ...
//! ```

use std::borrow::Cow;
use std::fmt::Write as _;

use crate::record::{Phase, RunRecord, ScenarioRecord, StepRecord, Verdict};

/// How much of a failing step's transcript the terminal, JUnit and the HTML page show;
/// `run.json` has all of it.
pub const SHOWN_TRANSCRIPT_BYTES: usize = 8 * 1024;

/// A transcript cut to [`SHOWN_TRANSCRIPT_BYTES`] (on a char boundary), saying where
/// the rest is. It is already masked, so a cut cannot show part of a secret.
pub fn shown_transcript(text: &str) -> Cow<'_, str> {
    if text.len() <= SHOWN_TRANSCRIPT_BYTES {
        return Cow::Borrowed(text);
    }
    let end = crate::redact::floor_boundary(text, SHOWN_TRANSCRIPT_BYTES);
    Cow::Owned(format!(
        "{}\n… ({} more bytes: the whole exchange is in run.json)",
        &text[..end],
        text.len() - end
    ))
}

/// The rule the scenario enforces, then each step that did not pass: each failed
/// check pointing at its expectation's line, with its diff, and the step's transcript.
/// A failed step right after a write that passed also shows the write (a read-back
/// fails because the write was answered wrongly: a PUT accepted that should not be).
pub fn details(record: &ScenarioRecord) -> String {
    let mut out = String::new();
    if !record.rule_ids.is_empty() {
        let _ = writeln!(out, "rule {}", record.rule_ids.join(", "));
    }
    for (i, step) in record.steps.iter().enumerate() {
        if !matches!(step.verdict, Verdict::Failed | Verdict::Error) {
            continue;
        }
        if let Some(write) = i.checked_sub(1).map(|b| &record.steps[b])
            && write.verdict == Verdict::Passed
            && matches!(
                write.method.as_deref(),
                Some("POST" | "PUT" | "PATCH" | "DELETE")
            )
            && let Some(t) = write.transcript.as_ref().and_then(|t| t.as_text())
        {
            let status = write.status.map(|s| s.to_string()).unwrap_or_default();
            let _ = writeln!(
                out,
                "after step '{}' (line {}), which was answered {status}:\n{}",
                write.name,
                write.line,
                shown_transcript(t)
            );
        }
        step_details(&mut out, &record.file, step);
    }
    out
}

fn step_details(out: &mut String, file: &str, step: &StepRecord) {
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
    let failed: Vec<_> = step.checks.iter().filter(|c| !c.passed).collect();
    if failed.is_empty() {
        let _ = writeln!(out, "  --> {file}:{}", step.line);
    }
    for check in failed {
        let _ = writeln!(
            out,
            "  --> {file}:{}\n  {}\n    expected: {}\n    actual:   {}",
            check.line.unwrap_or(step.line),
            check.what,
            check.expected,
            check.actual
        );
        if let Some(diff) = &check.diff {
            let _ = writeln!(out, "{diff}");
        }
    }
    validation_lines(out, step);
    if let Some(t) = step.transcript.as_ref().and_then(|t| t.as_text()) {
        let _ = writeln!(out, "{}", shown_transcript(t));
    }
}

/// How many validation issues of one step the text reports list (run.json and the
/// HTML report have them all).
const ISSUES_LISTED: usize = 20;

/// A step's validation issues, one per line, under the step.
pub(super) fn validation_lines(out: &mut String, step: &StepRecord) {
    if step.validation.is_empty() {
        return;
    }
    let _ = writeln!(out, "  FHIR validation of the response:");
    for issue in step.validation.iter().take(ISSUES_LISTED) {
        let _ = writeln!(out, "    {}", issue.line());
    }
    if step.validation.len() > ISSUES_LISTED {
        let _ = writeln!(
            out,
            "    (and {} more in run.json)",
            step.validation.len() - ISSUES_LISTED
        );
    }
}

/// The line after the reports when responses were validated: the mode and what it
/// found, or nothing when validation was off and found nothing.
///
/// ```text
/// validation (--validate warn): 3 errors, 1 warning in 2 responses; warn fails nothing (see summary.md)
/// ```
/// The records scenarios left on the server (their cleanup could not remove them), in
/// one line for the terminal; `None` when there are none.
pub fn left_behind_line(record: &RunRecord) -> Option<String> {
    let left: Vec<&str> = record
        .scenarios
        .iter()
        .flat_map(|s| &s.left_behind)
        .map(String::as_str)
        .collect();
    if left.is_empty() {
        return None;
    }
    const SHOWN: usize = 20;
    let mut line = format!(
        "left on the server (their cleanup cannot remove them; run.json lists them by scenario): {} record{}: {}",
        left.len(),
        if left.len() == 1 { "" } else { "s" },
        left.iter()
            .take(SHOWN)
            .copied()
            .collect::<Vec<_>>()
            .join(", ")
    );
    if left.len() > SHOWN {
        let _ = write!(line, " and {} more", left.len() - SHOWN);
    }
    Some(line)
}

pub fn validation_line(record: &RunRecord) -> Option<String> {
    let totals = record.issue_totals();
    let mode = record.validation.mode.as_str();
    if mode == "off" && totals.is_empty() {
        return None;
    }
    let mut out = format!("validation (--validate {mode}): ");
    if totals.is_empty() {
        out.push_str("no issue in any response");
    } else {
        let _ = write!(
            out,
            "{totals} in {} response{}",
            totals.responses,
            if totals.responses == 1 { "" } else { "s" }
        );
        if mode == "warn" && totals.errors > 0 {
            out.push_str("; warn fails nothing (--validate error would)");
        }
    }
    Some(out)
}

/// `fhirconf list`: one block per scenario with its id, source, tags and requirements.
pub fn scenario_list(scenarios: &[&crate::scenario::Scenario]) -> String {
    let mut out = String::new();
    for s in scenarios {
        let _ = writeln!(out, "{}", s.id);
        let _ = writeln!(out, "    source:   {}", s.source.as_deref().unwrap_or("-"));
        let tags = if s.tags.is_empty() {
            "-".to_owned()
        } else {
            s.tags.join(", ")
        };
        let _ = writeln!(out, "    tags:     {tags}");
        if !s.requires.is_empty() {
            let requires: Vec<String> = s.requires.iter().map(ToString::to_string).collect();
            let _ = writeln!(out, "    requires: {}", requires.join(", "));
        }
    }
    out
}

/// `fhirconf serve --list-defects` / `--list-features`.
pub fn sandbox_switches(defects: bool, features: bool) -> String {
    let mut out = String::new();
    if defects {
        for d in crate::sandbox::DEFECTS {
            let _ = writeln!(out, "{:<30} {}", d.id, d.description);
        }
    }
    if features {
        for f in crate::sandbox::FEATURES {
            let _ = writeln!(
                out,
                "{:<16} {:<28} default {:<10} {}",
                f.name, f.values, f.default, f.description
            );
        }
    }
    out
}

/// `fhirconf verify`: what the folder is, each problem, and the verdict.
pub fn verification(dir: &str, v: &crate::evidence::Verification) -> String {
    use crate::evidence::SignatureCheck;
    let mut out = String::new();
    let _ = writeln!(
        out,
        "{dir}: evidence written by fhirconf {} at {}; {} files in the manifest",
        v.harness_version, v.created_at, v.listed
    );
    for p in &v.problems {
        let _ = writeln!(out, "{p}");
    }
    let signature = match v.signature {
        SignatureCheck::Valid => "signature valid",
        SignatureCheck::Invalid => "signature NOT valid",
        SignatureCheck::NotChecked => "signed, signature not checked (give --key PUBLIC.pem)",
        SignatureCheck::Unsigned => "not signed",
    };
    let n = v.problems.len();
    if n == 0 {
        let _ = writeln!(out, "ok: every file matches the manifest; {signature}");
    } else {
        let _ = writeln!(
            out,
            "FAILED: {n} problem{} found; {signature}",
            if n == 1 { "" } else { "s" }
        );
    }
    out
}

/// The last line of a run in the terminal, which agrees with the exit code: the counts,
/// with `--baseline` how many failures were known and how many regressed, and how many
/// scenarios were skipped for want of which input.
///
/// ```text
/// fhirconf: 108 scenarios: 45 passed, 52 failed (52 known from the baseline, 0 regressions), 0 errors, 11 skipped; the run passes
/// ```
pub fn verdict_line(record: &RunRecord) -> String {
    let n = |v: Verdict| record.count(v);
    let (failed, errors) = (n(Verdict::Failed), n(Verdict::Error));
    let mut out = format!(
        "fhirconf: {} scenario{}: {} passed, {failed} failed",
        record.scenarios.len(),
        if record.scenarios.len() == 1 { "" } else { "s" },
        n(Verdict::Passed)
    );
    let regressions = match &record.baseline {
        Some(b) => {
            let known = b.known_failures.len();
            let _ = write!(
                out,
                " ({known} known from the baseline, {} regression{})",
                b.regressions.len(),
                if b.regressions.len() == 1 { "" } else { "s" }
            );
            b.regressions.len()
        }
        None => failed + errors,
    };
    let _ = write!(out, ", {errors} errors, {} skipped", n(Verdict::Skipped));
    let inputs = missing_inputs(record);
    if !inputs.is_empty() {
        let list: Vec<String> = inputs
            .iter()
            .map(|(name, count)| format!("`{name}` ({count})"))
            .collect();
        let _ = write!(out, " (for want of input {})", list.join(", "));
    }
    out.push_str(if regressions == 0 {
        "; the run passes"
    } else {
        "; the run fails"
    });
    out
}

/// Each input that skipped scenarios, with how many it skipped.
fn missing_inputs(record: &RunRecord) -> std::collections::BTreeMap<&str, usize> {
    let mut counts = std::collections::BTreeMap::new();
    for s in &record.scenarios {
        for name in &s.missing_inputs {
            *counts.entry(name.as_str()).or_insert(0) += 1;
        }
    }
    counts
}

/// Where a run would take each variable from: the target's plain variables (and, for
/// the built-in sandbox, its seed data), and its secret variables with whether their
/// environment variable is set now.
#[derive(Debug, Default)]
pub struct InputSources {
    pub plain: std::collections::BTreeSet<String>,
    /// Variable name → (environment variable, set now).
    pub secret: std::collections::BTreeMap<String, (String, bool)>,
    /// How the target is named in the output.
    pub target: String,
}

impl InputSources {
    pub fn of(target: &crate::target::TargetFile, env_set: impl Fn(&str) -> bool) -> Self {
        let mut plain: std::collections::BTreeSet<String> = target.vars.keys().cloned().collect();
        if target.base_url.is_none() {
            plain.extend(
                crate::sandbox::seed_vars()
                    .into_iter()
                    .map(|(k, _)| k.to_owned()),
            );
        }
        let secret = target
            .secret_vars
            .iter()
            .map(|(name, s)| (name.clone(), (s.value.clone(), env_set(&s.value))))
            .collect();
        InputSources {
            plain,
            secret,
            target: target.display.clone(),
        }
    }
}

/// `fhirconf inputs`: one line per input (what the target gives for it, how many
/// scenarios need it), then the scenario ids with `verbose`, then a summary.
///
/// ```text
/// ppr_issuer        5 scenarios  UNSET: set it in the target's vars or with --var ppr_issuer=...
/// ```
pub fn inputs(
    scenarios: &[&crate::scenario::Scenario],
    sources: &InputSources,
    verbose: bool,
) -> String {
    let mut needed: std::collections::BTreeMap<&str, Vec<&str>> = Default::default();
    for s in scenarios {
        for input in &s.inputs {
            needed.entry(input).or_default().push(&s.id);
        }
    }
    let width = needed.keys().map(|k| k.len()).max().unwrap_or(0);
    let mut out = String::new();
    let mut unset = 0;
    for (name, ids) in &needed {
        let given = if sources.plain.contains(*name) {
            format!("set in {}", sources.target)
        } else if let Some((env, set)) = sources.secret.get(*name) {
            if *set {
                format!("secret, from ${env}")
            } else {
                unset += 1;
                format!(
                    "UNSET: ${env} is not set (secret_vars in {})",
                    sources.target
                )
            }
        } else {
            unset += 1;
            format!("UNSET: set it in the target's vars or with --var {name}=...")
        };
        let n = ids.len();
        let _ = writeln!(
            out,
            "{name:<width$}  {n:>3} scenario{}  {given}",
            if n == 1 { " " } else { "s" }
        );
        if verbose {
            for id in ids {
                let _ = writeln!(out, "    {id}");
            }
        }
    }
    let _ = writeln!(
        out,
        "{} input{}, {unset} unset: the scenarios that need an unset input are skipped with that reason",
        needed.len(),
        if needed.len() == 1 { "" } else { "s" }
    );
    out
}
