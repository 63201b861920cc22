//! Regression checks: `run --baseline` and `compare`, with the real binary against the
//! test server.

mod common;

use std::path::{Path, PathBuf};

use common::*;

const SUITE: &str = "tests/cases/baseline";

fn p(path: &Path) -> &str {
    path.to_str().unwrap()
}

/// Runs the baseline suite with the given variables, reports in `dir`.
fn run_suite(dir: &Path, server: &TestServer, extra: &[&str]) -> std::process::Output {
    let mut args = vec![SUITE, "--base-url", &server.base_url, "--jobs", "1"];
    args.extend_from_slice(extra);
    run_with_reports(dir, &args)
}

fn output(out: &std::process::Output) -> String {
    format!(
        "status {:?}\nstdout:\n{}\nstderr:\n{}",
        out.status.code(),
        text(&out.stdout),
        text(&out.stderr)
    )
}

/// The baseline: `reads the patient` and `needs an extra input` pass, `always fails`
/// and `fixed later` fail.
fn baseline(server: &TestServer, name: &str) -> PathBuf {
    let dir = scratch(name);
    let out = run_suite(
        &dir,
        server,
        &[
            "--var",
            "pid=good",
            "--var",
            "fixed=nope",
            "--var",
            "extra=good",
        ],
    );
    assert_eq!(out.status.code(), Some(1), "{}", output(&out));
    let saved = dir.join("baseline.json");
    std::fs::rename(dir.join("run.json"), &saved).unwrap();
    saved
}

#[test]
fn baseline_tolerates_known_failures_and_fails_on_regressions() {
    let server = start_server();
    let base = baseline(&server, "baseline-gate");

    // The same failures as the baseline: known, tolerated, still reported.
    let dir = scratch("baseline-same");
    let out = run_suite(
        &dir,
        &server,
        &[
            "--var",
            "pid=good",
            "--var",
            "fixed=nope",
            "--var",
            "extra=good",
            "--baseline",
            p(&base),
        ],
    );
    assert_eq!(out.status.code(), Some(0), "{}", output(&out));
    let stderr = text(&out.stderr);
    assert!(
        stderr
            .contains("baseline gate: no regressions, the run passes; 2 known failures tolerated"),
        "{stderr}"
    );
    assert!(
        text(&out.stdout).contains("always fails"),
        "known failures still show"
    );
    let summary = std::fs::read_to_string(dir.join("summary.md")).unwrap();
    assert!(summary.contains("| failed (known) |"), "{summary}");
    let run: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(dir.join("run.json")).unwrap()).unwrap();
    assert_eq!(
        run["baseline"]["known_failures"].as_array().unwrap().len(),
        2
    );
    assert_eq!(
        run["files"].as_array().unwrap().last().unwrap()["kind"],
        "baseline"
    );

    // `reads the patient` now fails: a regression; `fixed later` passes; `needs an
    // extra input` is skipped.
    let dir = scratch("baseline-regressed");
    let out = run_suite(
        &dir,
        &server,
        &[
            "--var",
            "pid=wrong-status",
            "--var",
            "fixed=good",
            "--baseline",
            p(&base),
        ],
    );
    assert_eq!(out.status.code(), Some(1), "{}", output(&out));
    let stderr = text(&out.stderr);
    assert!(
        stderr.contains("Regressions (1): did not fail in the baseline, fail now\n  - tests/cases/baseline/suite.yaml::reads the patient [CORE-READ]\n    passed → failed: step 'step 1: GET /Patient/{{ pid }}' (line 9): status: expected 200, got 404"),
        "{stderr}"
    );
    assert!(
        stderr.contains("baseline gate: 1 regression fails the run; 1 known failure tolerated"),
        "{stderr}"
    );
    let summary = std::fs::read_to_string(dir.join("summary.md")).unwrap();
    assert!(
        summary.contains("Regressions:\n\n- `tests/cases/baseline/suite.yaml::reads the patient`"),
        "{summary}"
    );
    let current = dir.join("run.json");

    // `compare` says the same, in text and in Markdown.
    let out = fhirconf(&["compare", p(&base), p(&current)]);
    assert_eq!(out.status.code(), Some(1), "{}", output(&out));
    let normalized = normalize(&text(&out.stdout), &server.base_url)
        .replace(p(&base), "BASELINE")
        .replace(p(&current), "CURRENT");
    assert_golden(&normalized, &root().join("tests/golden/compare-cli.txt"));
    let out = fhirconf(&["compare", p(&base), p(&current), "--format", "markdown"]);
    assert_eq!(out.status.code(), Some(1));
    let normalized = normalize(&text(&out.stdout), &server.base_url)
        .replace(p(&base), "BASELINE")
        .replace(p(&current), "CURRENT");
    assert_golden(&normalized, &root().join("tests/golden/compare-cli.md"));

    // No change is no regression.
    let out = fhirconf(&["compare", p(&base), p(&base)]);
    assert_eq!(out.status.code(), Some(0), "{}", output(&out));
    assert!(text(&out.stdout).ends_with("\n0 regressions, 0 fixes, 0 new, 0 removed, 0 newly skipped; 2 known failures still failing\n"));
}

#[test]
fn unusable_run_records_are_refused_with_the_file_named() {
    let dir = scratch("compare-bad");
    let not_json = dir.join("notes.txt");
    std::fs::write(&not_json, "hello").unwrap();
    let patient = dir.join("patient.json");
    std::fs::write(&patient, r#"{"resourceType": "Patient"}"#).unwrap();
    let old = dir.join("old.json");
    std::fs::write(
        &old,
        r#"{"schema_version": 1, "harness": "fhirconf", "scenarios": []}"#,
    )
    .unwrap();
    for (file, says) in [
        (&not_json, "is not JSON"),
        (&patient, "is not a fhirconf run record"),
        (
            &old,
            "is a run record of schema version 1; this fhirconf reads version 2",
        ),
    ] {
        let out = fhirconf(&["compare", p(file), p(file)]);
        assert_eq!(out.status.code(), Some(2), "{}", output(&out));
        let stderr = text(&out.stderr);
        assert!(
            stderr.starts_with(&format!("error: {} {says}", p(file))),
            "{stderr}"
        );
    }
    let out = fhirconf(&["compare", p(&dir.join("missing.json")), p(&old)]);
    assert_eq!(out.status.code(), Some(2));
    assert!(
        text(&out.stderr).contains("cannot read"),
        "{}",
        output(&out)
    );

    // An unreadable baseline stops `run` before anything is sent or written.
    let reports = scratch("baseline-bad");
    let out = run_with_reports(
        &reports,
        &[
            SUITE,
            "--base-url",
            "http://127.0.0.1:9",
            "--baseline",
            p(&patient),
        ],
    );
    assert_eq!(out.status.code(), Some(2), "{}", output(&out));
    assert!(text(&out.stderr).contains("is not a fhirconf run record"));
    assert_eq!(std::fs::read_dir(&reports).unwrap().count(), 0);
}

#[test]
fn run_json_and_summary_md_match_their_goldens() {
    let server = start_server();
    let base = baseline(&server, "golden-baseline");
    let dir = scratch("golden-run");
    let out = run_suite(
        &dir,
        &server,
        &[
            "--var",
            "pid=wrong-status",
            "--var",
            "fixed=good",
            "--baseline",
            p(&base),
        ],
    );
    assert_eq!(out.status.code(), Some(1), "{}", output(&out));
    let fix = |t: &str| normalize(t, &server.base_url).replace(p(&base), "BASELINE");
    let run = std::fs::read_to_string(dir.join("run.json")).unwrap();
    // The baseline's digest changes with its times: normalize it too.
    let base_sha = fhirconf::record::sha256_hex(&std::fs::read(&base).unwrap());
    assert_golden(
        &fix(&run).replace(&base_sha, "BASELINE-SHA256"),
        &root().join("tests/golden/baseline-run.json"),
    );
    assert_golden(
        &fix(&std::fs::read_to_string(dir.join("summary.md")).unwrap()),
        &root().join("tests/golden/baseline-summary.md"),
    );
}

#[test]
fn summary_is_appended_to_the_github_step_summary() {
    let server = start_server();
    let dir = scratch("step-summary");
    let step_summary = dir.join("step-summary.md");
    std::fs::write(&step_summary, "earlier step\n").unwrap();
    let junit = dir.join("junit.xml");
    let json = dir.join("run.json");
    let md = dir.join("summary.md");
    let out = fhirconf_command(&[
        "run",
        SUITE,
        "--base-url",
        &server.base_url,
        "-k",
        "always fails",
        "--junit",
        p(&junit),
        "--json",
        p(&json),
        "--markdown",
        p(&md),
    ])
    .env("GITHUB_STEP_SUMMARY", &step_summary)
    .output()
    .unwrap();
    assert_eq!(out.status.code(), Some(1), "{}", output(&out));
    let appended = std::fs::read_to_string(&step_summary).unwrap();
    let summary = std::fs::read_to_string(&md).unwrap();
    assert_eq!(appended, format!("earlier step\n{summary}\n"));
    assert!(
        summary.contains("| `CORE-READ-404` | failed | ✘ always fails |"),
        "{summary}"
    );
}
