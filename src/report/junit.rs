//! `junit.xml`. One scenario file is one `<testsuite>`; one scenario is one
//! `<testcase>`, whose classname is the file:
//!
//! ```xml
//! <testsuite id="0" name="scenarios/canvas/appointment/cancelled-final.yaml" tests="1" errors="0" failures="1" ...>
//!   <testcase name="a cancelled appointment is final" classname="scenarios/canvas/appointment/cancelled-final.yaml" time="0.25">
//!     <failure type="failure" message="step 'it is still cancelled' (line 40): $.status equals &quot;cancelled&quot;: ..."><![CDATA[
//! step 'it is still cancelled' (line 40): ...
//!   expected: "cancelled"
//!   actual:   "booked"
//! > GET http://127.0.0.1:8080/Appointment/a1
//! < 200 ...]]></failure>
//!     <system-out><![CDATA[✔ create ... ✘ it is still cancelled ...]]></system-out>
//!   </testcase>
//! </testsuite>
//! ```
//!
//! `<failure>`: the server answered wrongly; `<error>`: it did not answer;
//! `<skipped>`: the scenario did not apply, with the reason.

use std::fmt::Write;

use junit_report::{Duration, OffsetDateTime, ReportBuilder, TestCase, TestSuiteBuilder};

use crate::record::{Phase, RunRecord, ScenarioRecord, Verdict};

/// Keeps only characters XML 1.0 allows and breaks up CDATA terminators, so no server
/// body can make the report unreadable.
fn xml_safe(text: &str) -> String {
    text.chars()
        .filter(|&c| matches!(c, '\t' | '\n' | '\r' | '\u{20}'..='\u{D7FF}' | '\u{E000}'..='\u{FFFD}' | '\u{10000}'..='\u{10FFFF}'))
        .collect::<String>()
        .replace("]]>", "]] >")
}

fn duration(secs: f64) -> Duration {
    Duration::seconds_f64(if secs.is_finite() && secs >= 0.0 {
        secs
    } else {
        0.0
    })
}

fn mark(verdict: Verdict) -> &'static str {
    match verdict {
        Verdict::Passed => "✔",
        Verdict::Failed => "✘",
        Verdict::Error => "!",
        Verdict::Skipped => "-",
    }
}

/// One line per step: the log a CI viewer shows under the test case.
fn step_log(s: &ScenarioRecord) -> String {
    let mut out = String::new();
    for step in &s.steps {
        let phase = if step.phase == Phase::Cleanup {
            "cleanup: "
        } else {
            ""
        };
        let _ = write!(out, "{} {phase}{}", mark(step.verdict), step.name);
        if let (Some(m), Some(u)) = (&step.method, &step.url) {
            let _ = write!(out, " — {m} {u}");
        }
        if let Some(status) = step.status {
            let _ = write!(out, " → {status}");
        }
        let _ = writeln!(out, " ({:.0} ms)", step.duration_secs * 1000.0);
        if step.verdict != Verdict::Passed
            && let Some(m) = &step.message
        {
            let _ = writeln!(out, "    {m}");
        }
    }
    out
}

fn testcase(s: &ScenarioRecord) -> TestCase {
    let name = xml_safe(&s.name);
    let time = duration(s.duration_secs);
    let reason = xml_safe(s.reason.as_deref().unwrap_or(""));
    let mut case = match s.verdict {
        Verdict::Passed => TestCase::success(&name, time),
        Verdict::Failed => TestCase::failure(&name, time, "failure", &reason),
        Verdict::Error => TestCase::error(&name, time, "error", &reason),
        Verdict::Skipped => TestCase::skipped_with_cause(&name, "skipped", &reason),
    };
    if let junit_report::TestResult::Failure { cause, .. }
    | junit_report::TestResult::Error { cause, .. } = &mut case.result
    {
        *cause = Some(xml_safe(&s.details()));
    }
    if let junit_report::TestResult::SkippedWithCause { cause, .. } = &mut case.result {
        *cause = None;
    }
    case.set_classname(&xml_safe(&s.file));
    if !s.steps.is_empty() {
        case.set_system_out(&xml_safe(&step_log(s)));
    }
    case
}

pub fn render(record: &RunRecord) -> String {
    let timestamp = record
        .started_at
        .parse::<jiff::Timestamp>()
        .ok()
        .and_then(|t| OffsetDateTime::from_unix_timestamp(t.as_second()).ok())
        .unwrap_or(OffsetDateTime::UNIX_EPOCH);
    let mut files: Vec<&str> = Vec::new();
    for s in &record.scenarios {
        if !files.contains(&s.file.as_str()) {
            files.push(&s.file);
        }
    }
    let mut report = ReportBuilder::new();
    for file in files {
        let mut suite = TestSuiteBuilder::new(&xml_safe(file));
        suite.set_timestamp(timestamp);
        suite.add_testcases(
            record
                .scenarios
                .iter()
                .filter(|s| s.file == file)
                .map(testcase),
        );
        report.add_testsuite(suite.build());
    }
    let mut out = Vec::new();
    match report.build().write_xml(&mut out) {
        Ok(()) => String::from_utf8_lossy(&out).into_owned(),
        Err(e) => format!(
            "<?xml version=\"1.0\" encoding=\"utf-8\"?>\n<testsuites><!-- {} --></testsuites>\n",
            xml_safe(&e.to_string()).replace("--", "- -")
        ),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn matches_golden() {
        let xml = render(&crate::report::fixtures::record());
        let golden = include_str!("../../tests/golden/junit-fixture.xml");
        if std::env::var_os("FHIRCONF_BLESS").is_some() {
            std::fs::write(
                concat!(
                    env!("CARGO_MANIFEST_DIR"),
                    "/tests/golden/junit-fixture.xml"
                ),
                &xml,
            )
            .unwrap();
        }
        assert_eq!(xml, golden);
    }

    #[test]
    fn strips_what_xml_cannot_hold() {
        assert_eq!(xml_safe("a\u{1}b]]>c\u{FFFF}\n"), "ab]] >c\n");
    }
}
