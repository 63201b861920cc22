//! `summary.md`: totals and one line per scenario that did not pass, fit for a CI
//! job summary.

use std::fmt::Write;

use crate::record::{RunRecord, Verdict};

fn cell(text: &str) -> String {
    text.replace('|', "\\|").replace('\n', " ")
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
    if let Some(e) = &record.target.metadata_error {
        let _ = writeln!(out, "> CapabilityStatement unavailable: {}\n", cell(e));
    }
    let problems: Vec<_> = record
        .scenarios
        .iter()
        .filter(|s| matches!(s.verdict, Verdict::Failed | Verdict::Error))
        .collect();
    if !problems.is_empty() {
        let _ = writeln!(
            out,
            "## Failures and errors\n\n| verdict | scenario | rule | reason |\n|---|---|---|---|"
        );
        for s in problems {
            let _ = writeln!(
                out,
                "| {} | `{}` | {} | {} |",
                s.verdict.as_str(),
                cell(&s.id),
                cell(s.source.as_deref().unwrap_or("")),
                cell(s.reason.as_deref().unwrap_or(""))
            );
        }
        out.push('\n');
    }
    let skipped: Vec<_> = record
        .scenarios
        .iter()
        .filter(|s| s.verdict == Verdict::Skipped)
        .collect();
    if !skipped.is_empty() {
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
    out
}

#[cfg(test)]
mod tests {
    use super::*;

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
    }
}
