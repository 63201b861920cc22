//! `fhirconf compare` and the baseline gate of `run --baseline`, as text or Markdown.
//!
//! ```text
//! Regressions (1): did not fail in the baseline, fail now
//!   - scenarios/canvas/appointment/cancelled-final.yaml::a cancelled appointment is final [APPT-CANCELLED-FINAL]
//!     passed → failed: step 'it is still cancelled' (line 40): $.status equals "cancelled": ...
//! ```

use std::fmt::Write;

use crate::compare::{Change, Comparison};
use crate::record::Verdict;

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

/// A comparison as text (the terminal) or Markdown (a CI summary).
pub fn comparison(cmp: &Comparison, format: Format) -> String {
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

fn render_markdown(cmp: &Comparison) -> String {
    let mut out = String::new();
    let _ = writeln!(out, "# fhirconf compare\n");
    let _ = writeln!(out, "| | baseline | current |\n|---|---|---|");
    let (b, c) = (&cmp.baseline, &cmp.current);
    let rows: [(&str, String, String); 6] = [
        (
            "run record",
            format!("`{}`", super::markdown::cell(&b.label)),
            format!("`{}`", super::markdown::cell(&c.label)),
        ),
        ("started", b.started_at.clone(), c.started_at.clone()),
        (
            "target",
            super::markdown::cell(&b.base_url),
            super::markdown::cell(&c.base_url),
        ),
        (
            "server",
            super::markdown::cell(&b.server_text()),
            super::markdown::cell(&c.server_text()),
        ),
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
                .map(super::markdown::cell)
                .unwrap_or_default();
            let _ = writeln!(
                out,
                "| `{}` | {} | {} | {} | {reason} |",
                super::markdown::cell(&c.id),
                c.rule_ids.join(", "),
                verdict(c.before),
                verdict(c.after)
            );
        }
    }
    out
}

/// The one line `run --baseline` ends with: what decides the exit code.
pub fn baseline_gate(cmp: &Comparison) -> String {
    format!(
        "baseline gate: {}; {} tolerated (they failed in the baseline too)",
        match cmp.regressions.len() {
            0 => "no regressions, the run passes".to_owned(),
            1 => "1 regression fails the run".to_owned(),
            n => format!("{n} regressions fail the run"),
        },
        match cmp.known_failures.len() {
            1 => "1 known failure".to_owned(),
            n => format!("{n} known failures"),
        }
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::compare::compare;
    use crate::compare::tests::pair;

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
        golden("compare.txt", &comparison(&cmp, Format::Text));
        golden("compare.md", &comparison(&cmp, Format::Markdown));
    }
}
