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
//! Written here rather than with `junit-report`, which cannot write properties.

use std::fmt::Write;

use crate::record::{Phase, RunRecord, ScenarioRecord, Verdict};

/// Keeps only characters XML 1.0 allows and breaks up CDATA terminators, so no server
/// body can make the report unreadable.
fn xml_safe(text: &str) -> String {
    text.chars()
        .filter(|&c| matches!(c, '\t' | '\n' | '\r' | '\u{20}'..='\u{D7FF}' | '\u{E000}'..='\u{FFFD}' | '\u{10000}'..='\u{10FFFF}'))
        .collect::<String>()
        .replace("]]>", "]] >")
}

/// An attribute value: XML-safe, markup escaped, and line breaks kept as character
/// references (a parser would otherwise turn them into spaces).
fn attr(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for c in xml_safe(text).chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&apos;"),
            '\n' => out.push_str("&#10;"),
            '\r' => out.push_str("&#13;"),
            '\t' => out.push_str("&#9;"),
            c => out.push(c),
        }
    }
    out
}

/// Seconds with millisecond precision, in the form the schema's `SUREFIRE_TIME` allows.
fn seconds(secs: f64) -> String {
    format!(
        "{:.3}",
        if secs.is_finite() && secs >= 0.0 {
            secs
        } else {
            0.0
        }
    )
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

/// The `<property>` elements that trace one test case to its rules, tags and file.
/// The schema allows `<properties>` only on `<testsuite>`, so each name starts with the
/// test case's name: `a cancelled appointment is final :: rule`.
fn properties(out: &mut String, s: &ScenarioRecord) {
    let mut property = |what: &str, value: &str| {
        let _ = writeln!(
            out,
            "      <property name=\"{}\" value=\"{}\"/>",
            attr(&format!("{} :: {what}", s.name)),
            attr(value)
        );
    };
    for id in &s.rule_ids {
        property("rule", id);
    }
    if !s.tags.is_empty() {
        property("tags", &s.tags.join(","));
    }
    property("file", &s.file);
}

fn testcase(out: &mut String, s: &ScenarioRecord) {
    let _ = writeln!(
        out,
        "    <testcase name=\"{}\" classname=\"{}\" time=\"{}\">",
        attr(&s.name),
        attr(&s.file),
        seconds(s.duration_secs)
    );
    let reason = attr(s.reason.as_deref().unwrap_or(""));
    match s.verdict {
        Verdict::Passed => {}
        Verdict::Failed | Verdict::Error => {
            let element = if s.verdict == Verdict::Failed {
                "failure"
            } else {
                "error"
            };
            let _ = writeln!(
                out,
                "      <{element} type=\"{element}\" message=\"{reason}\"><![CDATA[{}]]></{element}>",
                xml_safe(&s.details())
            );
        }
        Verdict::Skipped => {
            let _ = writeln!(
                out,
                "      <skipped type=\"skipped\" message=\"{reason}\"/>"
            );
        }
    }
    if !s.steps.is_empty() {
        let _ = writeln!(
            out,
            "      <system-out><![CDATA[{}]]></system-out>",
            xml_safe(&step_log(s))
        );
    }
    out.push_str("    </testcase>\n");
}

pub fn render(record: &RunRecord) -> String {
    let mut files: Vec<&str> = Vec::new();
    for s in &record.scenarios {
        if !files.contains(&s.file.as_str()) {
            files.push(&s.file);
        }
    }
    let total = |v: Verdict| record.count(v);
    let mut out = String::from("<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n");
    let _ = writeln!(
        out,
        "<testsuites name=\"fhirconf\" tests=\"{}\" failures=\"{}\" errors=\"{}\" time=\"{}\">",
        record.scenarios.len(),
        total(Verdict::Failed),
        total(Verdict::Error),
        seconds(record.duration_secs)
    );
    for (id, file) in files.into_iter().enumerate() {
        let cases: Vec<&ScenarioRecord> =
            record.scenarios.iter().filter(|s| s.file == file).collect();
        let count = |v: Verdict| cases.iter().filter(|s| s.verdict == v).count();
        let _ = writeln!(
            out,
            "  <testsuite id=\"{id}\" name=\"{}\" tests=\"{}\" failures=\"{}\" errors=\"{}\" skipped=\"{}\" time=\"{}\" timestamp=\"{}\">",
            attr(file),
            cases.len(),
            count(Verdict::Failed),
            count(Verdict::Error),
            count(Verdict::Skipped),
            seconds(cases.iter().map(|s| s.duration_secs).sum()),
            attr(&record.started_at)
        );
        out.push_str("    <properties>\n");
        for s in &cases {
            properties(&mut out, s);
        }
        out.push_str("    </properties>\n");
        for s in cases {
            testcase(&mut out, s);
        }
        out.push_str("  </testsuite>\n");
    }
    out.push_str("</testsuites>\n");
    out
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
        assert_eq!(
            attr("<a & 'b'>\n\"c\"\u{1}"),
            "&lt;a &amp; &apos;b&apos;&gt;&#10;&quot;c&quot;"
        );
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
