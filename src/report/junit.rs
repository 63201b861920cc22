//! `junit.xml`. One scenario file is one `<testsuite>`; one scenario is one
//! `<testcase>`, whose classname is the file. The suite's `<properties>` trace each
//! test case to its rule ids, tags and file: the schema CI validates against (Jenkins
//! xUnit, `junit-10.xsd`) allows `<properties>` on `<testsuite>` only, so each
//! property's name starts with the test case's name.
//!
//! ```xml
//! <testsuite id="0" name="scenarios/canvas/appointment/cancelled-final.yaml" tests="1" failures="1" errors="0" ...>
//!   <properties>
//!     <property name="a cancelled appointment is final :: rule" value="APPT-CANCELLED-FINAL"/>
//!     <property name="a cancelled appointment is final :: tags" value="canvas,appointment,writes"/>
//!     <property name="a cancelled appointment is final :: file" value="scenarios/canvas/appointment/cancelled-final.yaml"/>
//!   </properties>
//!   <testcase name="a cancelled appointment is final" classname="scenarios/canvas/appointment/cancelled-final.yaml" time="0.250">
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
//!
//! junit-report writes the document; it has no properties, so a streaming pass with
//! quick-xml (the XML library junit-report itself uses) adds each suite's `<properties>`
//! right after its start tag, leaving everything else byte for byte.

use std::fmt::Write;

use junit_report::{Duration, OffsetDateTime, ReportBuilder, TestCase, TestSuiteBuilder};
use quick_xml::events::{BytesEnd, BytesStart, Event};

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
        if let Some(n) = step.attempts {
            let _ = write!(out, " after {n} attempt{}", if n == 1 { "" } else { "s" });
        }
        if step.repeated_unsafe {
            let _ = write!(out, " (non-idempotent, repeated: retry.unsafe)");
        }
        let _ = writeln!(out, " ({:.0} ms)", step.duration_secs * 1000.0);
        if step.verdict != Verdict::Passed
            && let Some(m) = &step.message
        {
            let _ = writeln!(out, "    {m}");
        }
        super::text::validation_lines(&mut out, step);
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
        *cause = Some(xml_safe(&super::text::details(s)));
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

/// The `(name, value)` properties that trace one test case to its rules, tags and
/// file. The schema allows `<properties>` only on `<testsuite>`, so each name starts
/// with the test case's name: `a cancelled appointment is final :: rule`.
fn properties(s: &ScenarioRecord) -> Vec<(String, String)> {
    let name = |what: &str| xml_safe(&format!("{} :: {what}", s.name));
    let mut out: Vec<(String, String)> = s
        .rule_ids
        .iter()
        .map(|id| (name("rule"), xml_safe(id)))
        .collect();
    if !s.tags.is_empty() {
        out.push((name("tags"), xml_safe(&s.tags.join(","))));
    }
    out.push((name("file"), xml_safe(&s.file)));
    out
}

/// What junit-report does not write: each suite's properties and skipped count, and
/// the run's totals on `<testsuites>` (the schema has no `skipped` there).
struct Extras {
    suites: Vec<(Vec<(String, String)>, usize)>,
    totals: [(&'static str, String); 5],
}

impl Extras {
    fn of(record: &RunRecord, suites: Vec<(Vec<(String, String)>, usize)>) -> Self {
        let count = |v: Verdict| record.count(v).to_string();
        Extras {
            suites,
            totals: [
                ("name", "fhirconf".to_owned()),
                ("tests", record.scenarios.len().to_string()),
                ("failures", count(Verdict::Failed)),
                ("errors", count(Verdict::Error)),
                ("time", format!("{:.3}", record.duration_secs.max(0.0))),
            ],
        }
    }
}

/// Copies `xml`, adding the totals to `<testsuites>`, and to the `i`th `<testsuite>`
/// its skipped count and, right after the tag, its properties.
fn with_extras(xml: &str, extras: &Extras) -> Result<String, String> {
    let mut reader = quick_xml::Reader::from_str(xml);
    let mut writer = quick_xml::Writer::new_with_indent(Vec::new(), b' ', 2);
    let mut next = extras.suites.iter();
    let err = |e: &dyn std::fmt::Display| e.to_string();
    loop {
        match reader.read_event().map_err(|e| err(&e))? {
            Event::Eof => break,
            Event::Start(tag) if tag.name().as_ref() == b"testsuites" => {
                let mut tag = tag.into_owned();
                for (name, value) in &extras.totals {
                    tag.push_attribute((*name, value.as_str()));
                }
                writer.write_event(Event::Start(tag)).map_err(|e| err(&e))?;
            }
            Event::Empty(tag) if tag.name().as_ref() == b"testsuites" => {
                let mut tag = tag.into_owned();
                for (name, value) in &extras.totals {
                    tag.push_attribute((*name, value.as_str()));
                }
                writer.write_event(Event::Empty(tag)).map_err(|e| err(&e))?;
            }
            Event::Start(tag) if tag.name().as_ref() == b"testsuite" => {
                let (props, skipped) = next
                    .next()
                    .map(|(p, s)| (p.as_slice(), *s))
                    .unwrap_or_default();
                let mut tag = tag.into_owned();
                tag.push_attribute(("skipped", skipped.to_string().as_str()));
                writer.write_event(Event::Start(tag)).map_err(|e| err(&e))?;
                writer
                    .write_event(Event::Start(BytesStart::new("properties")))
                    .map_err(|e| err(&e))?;
                for (name, value) in props {
                    let mut p = BytesStart::new("property");
                    p.push_attribute(("name", name.as_str()));
                    p.push_attribute(("value", value.as_str()));
                    writer.write_event(Event::Empty(p)).map_err(|e| err(&e))?;
                }
                writer
                    .write_event(Event::End(BytesEnd::new("properties")))
                    .map_err(|e| err(&e))?;
            }
            other => writer.write_event(other).map_err(|e| err(&e))?,
        }
    }
    String::from_utf8(writer.into_inner()).map_err(|e| err(&e))
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
    let mut suite_properties = Vec::new();
    for file in files {
        let cases: Vec<&ScenarioRecord> =
            record.scenarios.iter().filter(|s| s.file == file).collect();
        let skipped = cases
            .iter()
            .filter(|s| s.verdict == Verdict::Skipped)
            .count();
        suite_properties.push((cases.iter().flat_map(|s| properties(s)).collect(), skipped));
        let mut suite = TestSuiteBuilder::new(&xml_safe(file));
        suite.set_timestamp(timestamp);
        suite.add_testcases(cases.into_iter().map(testcase));
        report.add_testsuite(suite.build());
    }
    let mut out = Vec::new();
    let written = report
        .build()
        .write_xml(&mut out)
        .map_err(|e| e.to_string())
        .and_then(|()| {
            let extras = Extras::of(record, suite_properties);
            with_extras(&String::from_utf8_lossy(&out), &extras)
        });
    match written {
        Ok(xml) => xml,
        Err(e) => format!(
            "<?xml version=\"1.0\" encoding=\"utf-8\"?>\n<testsuites><!-- {} --></testsuites>\n",
            xml_safe(&e).replace("--", "- -")
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

    #[test]
    fn properties_name_each_test_case_with_its_rules_tags_and_file() {
        let xml = render(&crate::report::fixtures::record());
        assert!(xml.contains(
            "<property name=\"fails &lt;&amp;&gt; :: rule\" value=\"APPT-CANCELLED-FINAL\"/>"
        ));
        assert!(xml.contains("<property name=\"passes :: tags\" value=\"canvas\"/>"));
        assert!(xml.contains("<property name=\"skips :: file\" value=\"s/b.yaml\"/>"));
        assert_eq!(xml.matches("<properties>").count(), 2);
    }

    #[test]
    fn validates_against_the_xunit_schema() {
        let dir = std::env::temp_dir().join(format!("fhirconf-junit-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let path = dir.join("junit.xml");
        std::fs::write(&path, render(&crate::report::fixtures::record())).unwrap();
        crate::report::fixtures::assert_junit_schema_valid(&path);
        std::fs::remove_dir_all(dir).unwrap();
    }
}
