//! `index.html`: one self-contained page (inline CSS and script, no fetches: its
//! Content-Security-Policy forbids them) rendered with minijinja from the run record.
//! Everything from the record is HTML-escaped by the template engine, so a server's
//! `<script>` shows as text and never runs.
//!
//! The page: a header (target, server, harness version, date, counts and a bar), the
//! scenarios (failures first) filterable by verdict, tag, rule id and text, each with
//! its steps and, for a step that did not pass, its checks, coloured diff and
//! transcript; then the requirements view (rule id → scenarios → verdict).

use std::collections::BTreeMap;

use minijinja::{AutoEscape, Environment};
use serde::Serialize;

use crate::record::{Phase, RunRecord, ScenarioRecord, StepRecord, Verdict};

const TEMPLATE: &str = include_str!("html.jinja");

#[derive(Serialize)]
struct Counts {
    total: usize,
    passed: usize,
    failed: usize,
    error: usize,
    skipped: usize,
}

#[derive(Serialize)]
struct DiffLine {
    /// `add`, `del`, `hunk` or `same`.
    kind: &'static str,
    text: String,
}

#[derive(Serialize)]
struct CheckView {
    what: String,
    expected: String,
    actual: String,
    diff: Vec<DiffLine>,
}

#[derive(Serialize)]
struct StepView {
    name: String,
    line: u64,
    cleanup: bool,
    verdict: &'static str,
    method: Option<String>,
    url: Option<String>,
    status: Option<u16>,
    attempts: Option<u32>,
    repeated_unsafe: bool,
    duration_ms: String,
    message: Option<String>,
    checks: Vec<CheckView>,
    /// FHIR validation issues of the response (a table under the step).
    issues: Vec<IssueView>,
    transcript: Option<String>,
}

#[derive(Serialize)]
struct IssueView {
    severity: &'static str,
    location: String,
    message: String,
    profile: Option<String>,
    rule: Option<String>,
    suppressed: bool,
}

#[derive(Serialize)]
struct ScenarioView {
    anchor: String,
    id: String,
    name: String,
    file: String,
    /// Another scenario has the same name: the summary line shows the file too.
    shared_name: bool,
    source: Option<String>,
    tags: Vec<String>,
    rules: Vec<String>,
    verdict: &'static str,
    reason: Option<String>,
    duration_ms: String,
    steps: Vec<StepView>,
}

#[derive(Serialize)]
struct RuleView {
    id: String,
    verdict: &'static str,
    scenarios: Vec<(String, String, &'static str)>,
}

#[derive(Serialize)]
struct Page {
    base_url: String,
    sandbox: bool,
    server: Option<String>,
    metadata_error: Option<String>,
    harness_version: String,
    started_at: String,
    duration: String,
    counts: Counts,
    /// Percent of the bar per verdict.
    bar: Vec<(&'static str, f64)>,
    scenarios: Vec<ScenarioView>,
    tags: Vec<String>,
    rules: Vec<RuleView>,
    /// The validation line of the terminal, when responses were validated.
    validation: Option<String>,
}

fn ms(secs: f64) -> String {
    format!("{:.0}", (secs * 1000.0).max(0.0))
}

fn diff_lines(diff: &str) -> Vec<DiffLine> {
    diff.lines()
        .map(|l| DiffLine {
            kind: if l.starts_with("+++") || l.starts_with("---") || l.starts_with("@@") {
                "hunk"
            } else if l.starts_with('+') {
                "add"
            } else if l.starts_with('-') {
                "del"
            } else {
                "same"
            },
            text: l.to_owned(),
        })
        .collect()
}

fn step_view(step: &StepRecord) -> StepView {
    let judged = step.verdict != Verdict::Passed;
    StepView {
        name: step.name.clone(),
        line: step.line,
        cleanup: step.phase == Phase::Cleanup,
        verdict: step.verdict.as_str(),
        method: step.method.clone(),
        url: step.url.clone(),
        status: step.status,
        attempts: step.attempts,
        repeated_unsafe: step.repeated_unsafe,
        duration_ms: ms(step.duration_secs),
        message: step.message.clone(),
        checks: step
            .checks
            .iter()
            .filter(|c| !c.passed)
            .map(|c| CheckView {
                what: c.what.clone(),
                expected: c.expected.clone(),
                actual: c.actual.clone(),
                diff: c.diff.as_deref().map(diff_lines).unwrap_or_default(),
            })
            .collect(),
        issues: step
            .validation
            .iter()
            .map(|i| IssueView {
                severity: i.severity.as_str(),
                location: i.location.clone(),
                message: i.message.clone(),
                profile: i.profile.clone(),
                rule: i.rule.clone(),
                suppressed: i.suppressed,
            })
            .collect(),
        transcript: if judged {
            step.transcript
                .as_ref()
                .and_then(|t| t.as_text())
                .map(|t| super::text::shown_transcript(t).into_owned())
        } else {
            None
        },
    }
}

/// Failures first, then errors, then the rest in run order.
fn rank(v: Verdict) -> u8 {
    match v {
        Verdict::Failed => 0,
        Verdict::Error => 1,
        Verdict::Skipped => 2,
        Verdict::Passed => 3,
    }
}

/// The worst verdict among a rule's scenarios: what the rule's row shows.
fn worst(verdicts: impl Iterator<Item = Verdict>) -> Verdict {
    verdicts
        .min_by_key(|v| rank(*v))
        .unwrap_or(Verdict::Skipped)
}

fn scenario_view(i: usize, s: &ScenarioRecord, shared_name: bool) -> ScenarioView {
    ScenarioView {
        anchor: format!("s{i}"),
        id: s.id.clone(),
        name: s.name.clone(),
        file: s.file.clone(),
        shared_name,
        source: s.source.clone(),
        tags: s.tags.clone(),
        rules: s.rule_ids.clone(),
        verdict: s.verdict.as_str(),
        reason: s.reason.clone(),
        duration_ms: ms(s.duration_secs),
        steps: s.steps.iter().map(step_view).collect(),
    }
}

fn page(record: &RunRecord) -> Page {
    let count = |v: Verdict| record.count(v);
    let total = record.scenarios.len();
    let counts = Counts {
        total,
        passed: count(Verdict::Passed),
        failed: count(Verdict::Failed),
        error: count(Verdict::Error),
        skipped: count(Verdict::Skipped),
    };
    let pct = |n: usize| {
        if total == 0 {
            0.0
        } else {
            (n as f64 * 1000.0 / total as f64).round() / 10.0
        }
    };
    let bar = vec![
        ("passed", pct(counts.passed)),
        ("failed", pct(counts.failed)),
        ("error", pct(counts.error)),
        ("skipped", pct(counts.skipped)),
    ];
    let mut order: Vec<usize> = (0..total).collect();
    order.sort_by_key(|&i| rank(record.scenarios[i].verdict));
    let mut names: std::collections::HashMap<&str, usize> = std::collections::HashMap::new();
    for s in &record.scenarios {
        *names.entry(s.name.as_str()).or_default() += 1;
    }
    let scenarios: Vec<ScenarioView> = order
        .iter()
        .map(|&i| {
            let s = &record.scenarios[i];
            scenario_view(i, s, names.get(s.name.as_str()).is_some_and(|n| *n > 1))
        })
        .collect();
    let mut tags: Vec<String> = record
        .scenarios
        .iter()
        .flat_map(|s| s.tags.iter().cloned())
        .collect();
    tags.sort();
    tags.dedup();
    let mut by_rule: BTreeMap<&str, Vec<usize>> = BTreeMap::new();
    for (i, s) in record.scenarios.iter().enumerate() {
        for r in &s.rule_ids {
            by_rule.entry(r).or_default().push(i);
        }
    }
    let rules = by_rule
        .into_iter()
        .map(|(id, idx)| RuleView {
            id: id.to_owned(),
            verdict: worst(idx.iter().map(|&i| record.scenarios[i].verdict)).as_str(),
            scenarios: idx
                .iter()
                .map(|&i| {
                    let s = &record.scenarios[i];
                    (format!("s{i}"), s.id.clone(), s.verdict.as_str())
                })
                .collect(),
        })
        .collect();
    Page {
        base_url: record.target.base_url.clone(),
        sandbox: record.target.sandbox,
        server: record.server.as_ref().map(ToString::to_string),
        metadata_error: record.target.metadata_error.clone(),
        harness_version: record.harness_version.clone(),
        started_at: record.started_at.clone(),
        duration: format!("{:.1} s", record.duration_secs),
        counts,
        bar,
        scenarios,
        tags,
        rules,
        validation: super::text::validation_line(record),
    }
}

/// Renders the page into `out` as it goes (a long run's page is megabytes).
pub fn write(record: &RunRecord, out: &mut impl std::io::Write) -> std::io::Result<()> {
    let mut env = Environment::new();
    env.set_auto_escape_callback(|_| AutoEscape::Html);
    env.set_undefined_behavior(minijinja::UndefinedBehavior::Strict);
    env.template_from_str(TEMPLATE)
        .and_then(|t| {
            t.render_captured_to(minijinja::Value::from_serialize(page(record)), out)
                .map(|_| ())
        })
        // The template is ours and tested; should it ever fail, the run says so.
        .map_err(|e| std::io::Error::other(format!("the HTML report could not be rendered: {e}")))
}

#[cfg(test)]
fn render(record: &RunRecord) -> String {
    let mut bytes = Vec::new();
    write(record, &mut bytes).unwrap();
    String::from_utf8(bytes).unwrap()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn renders_every_verdict_with_failures_first_and_the_requirements() {
        let html = render(&crate::report::fixtures::record());
        assert!(html.starts_with("<!doctype html>"), "{html}");
        // Header: target, server, harness version, counts.
        // minijinja escapes `/` too (`&#x2f;`); a browser shows it as `/`.
        assert!(html.contains("<dd>http:&#x2f;&#x2f;127.0.0.1:1</dd>"));
        assert!(html.contains("Acme FHIR 7.2.0"));
        assert!(html.contains("fhirconf 0.1.0"));
        for (verdict, n) in [("passed", 1), ("failed", 1), ("error", 1), ("skipped", 1)] {
            assert!(
                html.contains(&format!(
                    "<span class=\"count {verdict}\">{n} {verdict}</span>"
                )),
                "{verdict}"
            );
        }
        // One row per scenario, the failed one first, the passing one last.
        let rows: Vec<&str> = html
            .split("<tr class=\"scenario\"")
            .skip(1)
            .map(|r| r.split('>').next().unwrap_or(""))
            .collect();
        assert_eq!(rows.len(), 4);
        assert!(rows[0].contains("data-verdict=\"failed\""), "{rows:?}");
        assert!(rows[1].contains("data-verdict=\"error\""), "{rows:?}");
        assert!(rows[3].contains("data-verdict=\"passed\""), "{rows:?}");
        // The failed step: its check, expected and actual, a coloured diff, the transcript.
        assert!(html.contains("$.status equals &quot;cancelled&quot;"));
        assert!(html.contains("<span class=\"del\">-a ]]&gt; \u{1}</span>"));
        assert!(html.contains("<span class=\"add\">+b</span>"));
        assert!(html.contains("&gt; GET http:&#x2f;&#x2f;127.0.0.1:1&#x2f;Appointment&#x2f;a1"));
        // Names are escaped; the requirements view lists each rule with its scenarios.
        assert!(html.contains("fails &lt;&amp;&gt;"));
        assert!(!html.contains("fails <&>"));
        let requirements = html.split("id=\"requirements\"").nth(1).unwrap();
        assert!(requirements.contains("APPT-CANCELLED-FINAL"));
        assert!(requirements.contains("CORE-READ-404"));
        // Nothing is fetched from anywhere.
        assert!(html.contains("default-src 'none'"));
        for fetch in ["src=\"http", "href=\"http", "@import", "url("] {
            assert!(!html.contains(fetch), "{fetch}");
        }
    }

    #[test]
    fn skip_reasons_show_unexpanded_counts_agree_and_shared_names_show_their_file() {
        let mut record = crate::report::fixtures::record();
        let html = render(&record);
        assert!(html.contains(">4 scenarios<"), "{html}");
        // The skipped scenario's reason is outside its (closed) details.
        let skipped = html
            .split("data-verdict=\"skipped\"")
            .nth(1)
            .and_then(|r| r.split("</tr>").next())
            .unwrap();
        let after_details = skipped.split("</details>").nth(1).unwrap();
        assert!(
            after_details.contains("needs feature double_booking=forbidden"),
            "{skipped}"
        );
        // A transcript ends with its last line, not with blank lines.
        assert!(!html.contains("\n</pre>"), "{html}");
        // Two scenarios of one name in two files: each summary names its file.
        record.scenarios[3].name = record.scenarios[0].name.clone();
        record.scenarios.truncate(1 + 3);
        let html = render(&record);
        assert!(
            html.contains("passes <span class=\"file\">s&#x2f;a.yaml</span></summary>"),
            "{html}"
        );
        record.scenarios.truncate(1);
        assert!(render(&record).contains(">1 scenario<"));
    }

    #[test]
    fn a_hostile_body_is_text() {
        let mut record = crate::report::fixtures::record();
        record.scenarios[1].steps[1].transcript =
            Some("< <script>alert(1)</script><img src=x onerror=alert(2)>".into());
        record.scenarios[1].name = "\"><script>alert(3)</script>".into();
        let html = render(&record);
        assert!(!html.contains("<script>alert"), "{html}");
        assert!(!html.contains("<img src=x"), "{html}");
        assert!(html.contains("&lt;script&gt;alert(1)&lt;&#x2f;script&gt;"));
    }
}
