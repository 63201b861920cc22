//! The real `fhirconf` binary against a test server on 127.0.0.1, grouped by the
//! verdict each case must get: passing, failing, errors (no answer), invalid files.

use std::path::Path;

use serde_json::Value;

use crate::common::*;

fn verdicts(dir: &Path) -> Vec<(String, String)> {
    named_verdicts(&run_record(dir))
}

fn reason(dir: &Path, name: &str) -> String {
    let run: Value = run_record(dir);
    let s = run["scenarios"]
        .as_array()
        .unwrap()
        .iter()
        .find(|s| s["name"] == name)
        .unwrap();
    s["reason"].as_str().unwrap_or("").to_owned()
}

#[test]
fn passing_cases_pass_and_run_cleanup() {
    let server = start_server();
    let dir = scratch("passing");
    Fhirconf::new()
        .args(["run", "tests/cases/passing", "--base-url", &server.base_url])
        .args(["--var", "tenant=acme"])
        .reports(&dir)
        .run()
        .expect_code(0)
        .stdout_contains("test result: ok. 6 passed; 0 failed");
    let v = verdicts(&dir);
    assert_eq!(v.len(), 6);
    assert!(v.iter().all(|(_, verdict)| verdict == "passed"), "{v:?}");
    assert_eq!(server.hits.get("cleanup-pass-acme"), 1);
    assert_schema_valid(&dir.join("junit.xml"));
}

#[test]
fn failing_cases_fail_with_readable_reasons() {
    let server = start_server();
    let dir = scratch("failing");
    Fhirconf::new()
        .args(["run", "tests/cases/failing", "--base-url", &server.base_url])
        // The same reports with and without the validation feature (the test server's
        // Basic has no `code`).
        .args(["--jobs", "1", "--validate", "off"])
        .reports(&dir)
        .run()
        .expect_code(1);
    let v = verdicts(&dir);
    assert!(v.iter().all(|(_, verdict)| verdict == "failed"), "{v:?}");
    assert_eq!(v.len(), 8);
    // The first failing step stops the scenario; cleanup still runs.
    assert_eq!(server.hits.get("never-reached"), 0);
    assert_eq!(server.hits.get("cleanup-after-failure"), 1);
    let expected_reasons = [
        (
            "status mismatch",
            "step 'step 1: GET /Patient/wrong-status' (line 6): status: expected 200, got 404",
        ),
        (
            "header mismatch",
            "step 'step 1: GET /Patient/wrong' (line 10): header content-type: expected a value matching /^application/fhir\\+json/, got application/json",
        ),
        (
            "json value mismatch stops the scenario",
            "step 'read the wrong patient' (line 17): $.active equals true: expected true, got false",
        ),
        (
            "capture that finds nothing",
            "step 'step 1: GET /Patient/good' (line 42): capture `missing`: $.birthDate selects nothing",
        ),
    ];
    for (name, want) in expected_reasons {
        assert_eq!(reason(&dir, name), want);
    }
    assert!(
        reason(&dir, "body that is not JSON")
            .contains("response body: expected a JSON document, got a body that is not JSON")
    );
    let junit = std::fs::read_to_string(dir.join("junit.xml")).unwrap();
    assert_golden(
        &normalize(&junit, &server.base_url),
        &root().join("tests/golden/failing-junit.xml"),
    );
    assert_schema_valid(&dir.join("junit.xml"));
    let summary = std::fs::read_to_string(dir.join("summary.md")).unwrap();
    assert!(summary.contains("**0** passed, **8** failed"), "{summary}");
}

#[test]
fn no_answer_is_an_error_not_a_failure() {
    let server = start_server();
    let dir = scratch("errors");
    Fhirconf::new()
        .args(["run", "tests/cases/errors", "--base-url", &server.base_url])
        .args(["--timeout", "1", "--max-body", "1000"])
        .reports(&dir)
        .run()
        .expect_code(3)
        // The terminal says what the reports say: an error, not a failure.
        .stdout_contains("ERROR, not a failure: the server gave no answer to judge")
        .stderr_contains(", 0 failed, 2 errors, ");
    assert_eq!(
        reason(&dir, "timeout"),
        "step 'step 1: GET /slow' (line 5): no answer: no response within 1s"
    );
    assert_eq!(
        reason(&dir, "body over the cap"),
        "step 'step 1: GET /big' (line 9): no answer: response body is larger than the 1000-byte cap (raise it with --max-body)"
    );
    let junit = std::fs::read_to_string(dir.join("junit.xml")).unwrap();
    assert_eq!(junit.matches("<error type=\"error\"").count(), 2, "{junit}");
    assert_schema_valid(&dir.join("junit.xml"));
}

#[test]
fn unreachable_server_errors_every_scenario_and_still_reports() {
    let dir = scratch("refused");
    let url = closed_port_url();
    Fhirconf::new()
        .args(["run", "tests/cases/passing", "--base-url", &url])
        .args(["--var", "tenant=acme"])
        .reports(&dir)
        .run()
        .expect_code(3)
        .stderr_contains("warning: cannot read the CapabilityStatement");
    let v = verdicts(&dir);
    // The bundle scenario requires Patient.search, which cannot be confirmed.
    assert_eq!(v.iter().filter(|(_, x)| x == "skipped").count(), 1, "{v:?}");
    assert_eq!(v.iter().filter(|(_, x)| x == "error").count(), 5, "{v:?}");
    assert!(
        reason(&dir, "exact status, class and any_of").contains("no answer: could not connect")
    );
    assert_schema_valid(&dir.join("junit.xml"));
}

#[test]
fn invalid_files_exit_2_with_located_messages_and_write_nothing() {
    let dir = root().join("tests/cases/invalid");
    let mut names: Vec<_> = std::fs::read_dir(&dir)
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|e| e == "yaml"))
        .collect();
    names.sort();
    assert!(names.len() >= 15);
    let reports = scratch("invalid");
    for path in names {
        let rel = format!(
            "tests/cases/invalid/{}",
            path.file_name().unwrap().to_string_lossy()
        );
        let stderr = Fhirconf::new()
            .args(["check", &rel])
            .run()
            .expect_code(2)
            .stderr_contains(&format!("--> {rel}:"))
            .stderr();
        assert_golden(&stderr, &path.with_extension("err"));
        Fhirconf::new()
            .args(["run", &rel, "--base-url", "http://127.0.0.1:9"])
            .reports(&reports)
            .run()
            .expect_code(2);
        assert_eq!(
            std::fs::read_dir(&reports).unwrap().count(),
            0,
            "{rel}: a report was written"
        );
    }
}

#[test]
fn selection_by_filter_tags_and_missing_inputs() {
    let server = start_server();
    let dir = scratch("select");
    let passing = Fhirconf::new()
        .args(["run", "tests/cases/passing", "--base-url", &server.base_url])
        .reports(&dir);
    passing
        .clone()
        .args(["--tags", "fhir"])
        .run()
        .expect_code(0);
    assert_eq!(verdicts(&dir).len(), 2);

    passing
        .clone()
        .args(["--exclude-tags", "fhir", "-k", "every JSONPath"])
        .run()
        .expect_code(0);
    assert_eq!(
        verdicts(&dir),
        vec![("every JSONPath operation".to_owned(), "passed".to_owned())]
    );

    let id = "tests/cases/passing/fhir-helpers.yaml::operation outcome on 404 and 422";
    passing
        .clone()
        .args(["-k", id, "--exact"])
        .run()
        .expect_code(0);
    assert_eq!(verdicts(&dir).len(), 1);

    // Without --var tenant, the scenario that needs it is skipped with the reason.
    passing
        .args(["-k", "bodies"])
        .run()
        .expect_code(0)
        .stdout_contains("ignored (needs input `tenant`");
    assert_eq!(
        reason(&dir, "bodies, query, headers, captures and templates"),
        "needs input `tenant` (set it with --var NAME=VALUE or in the target's vars)"
    );
}

#[test]
fn what_run_list_prints_pastes_back_into_filter_exact() {
    let listed = Fhirconf::new()
        .args(["run", "--list", "scenarios/r4-core"])
        .run()
        .expect_code(0)
        .stdout();
    let lines: Vec<&str> = listed.lines().filter(|l| l.ends_with(": test")).collect();
    assert!(lines.len() > 5, "{listed}");
    for line in lines {
        let again = Fhirconf::new()
            .args([
                "run",
                "--list",
                "scenarios/r4-core",
                "--exact",
                "--filter",
                line,
            ])
            .run()
            .expect_code(0)
            .stdout();
        let selected: Vec<&str> = again.lines().filter(|l| l.ends_with(": test")).collect();
        assert_eq!(selected, [line], "pasting {line:?} back");
    }
}

#[test]
fn list_commands_print_ids_and_send_nothing() {
    Fhirconf::new()
        .args(["list", "tests/cases/passing"])
        .run()
        .expect_code(0)
        .stdout_contains("tests/cases/passing/fhir-helpers.yaml::searchset bundle with match and include\n    source:   -\n    tags:     core, fhir\n    requires: Patient.search-type\n");
    let dir = scratch("list");
    Fhirconf::new()
        .args([
            "run",
            "tests/cases/passing",
            "--base-url",
            "http://127.0.0.1:9",
        ])
        .arg("--list")
        .reports(&dir)
        .run()
        .expect_code(0)
        .stdout_contains(
            "tests/cases/passing/json-assertions.yaml::every JSONPath operation: test",
        );
    assert_eq!(std::fs::read_dir(&dir).unwrap().count(), 0);
}

#[test]
fn secret_values_never_reach_any_output() {
    let server = start_server();
    let dir = scratch("secrets");
    let secret = "s3cr3t-tenant-value";
    // The echo route sends the secret back; a failing check keeps the transcript.
    let scenario = dir.join("leak.yaml");
    std::fs::write(&scenario, "name: leak\ninputs: [tenant]\nsteps:\n  - request: { method: POST, path: \"/echo?t={{ tenant }}\", headers: { Authorization: \"Bearer {{ tenant }}\" }, json: { t: \"{{ tenant }}\" } }\n    expect:\n      json:\n        - { path: \"$.json.t\", equals: nope }\n").unwrap();
    let out = Fhirconf::new()
        .args([
            "run",
            scenario.to_str().unwrap(),
            "--base-url",
            &server.base_url,
        ])
        .args(["--secret-var", &format!("tenant={secret}")])
        .reports(&dir)
        .run()
        .expect_code(1);
    let outputs = every_output(out.output(), &dir);
    for (name, content) in &outputs {
        assert!(
            !content.contains(secret),
            "secret leaked in {name}:\n{content}"
        );
    }
    assert!(outputs.iter().any(|(_, c)| c.contains("[redacted]")));
}

#[test]
fn bad_arguments_exit_2() {
    for args in [
        vec!["run", "--base-url", "not a url"],
        vec![
            "run",
            "--base-url",
            "http://127.0.0.1:9",
            "--defect",
            "APPT-CANCELLED-FINAL",
        ],
        vec!["run", "--jobs", "0"],
        vec!["run", "--var", "novalue"],
        vec!["run", "no/such/folder", "--base-url", "http://127.0.0.1:9"],
    ] {
        Fhirconf::new()
            .args(args)
            .run()
            .expect_code(2)
            .stderr_contains("error");
    }
}

#[test]
fn without_base_url_the_sandbox_runs_the_built_in_suites_and_a_defect_is_caught() {
    let dir = scratch("sandbox");
    let sandbox = Fhirconf::new().arg("run").reports(&dir);
    sandbox.clone().arg("-q").run().expect_code(0);
    let v = verdicts(&dir);
    assert!(v.len() > 50, "{}", v.len());
    assert!(
        v.iter().all(|(_, x)| x == "passed" || x == "skipped"),
        "{v:?}"
    );
    let run: Value = run_record(&dir);
    assert_eq!(run["target"]["sandbox"], true);
    // Every step keeps its own exchange as evidence: passing steps' transcripts wait
    // in a file while scenarios run in parallel, and must come back to the right step.
    let mut steps = 0;
    for step in run["scenarios"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|s| s["verdict"] == "passed")
        .flat_map(|s| s["steps"].as_array().unwrap())
    {
        let transcript = step["transcript"].as_str().unwrap_or_default();
        let first = format!(
            "> {} {}\n",
            step["method"].as_str().unwrap(),
            step["url"].as_str().unwrap()
        );
        assert!(transcript.starts_with(&first), "{step:#}");
        assert!(
            transcript.contains(&format!("\n< {}\n", step["status"])),
            "{step:#}"
        );
        steps += 1;
    }
    assert!(steps > 200, "{steps} steps");
    let skipped: Vec<&Value> = run["scenarios"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|s| s["verdict"] == "skipped")
        .collect();
    // Skipped only for a sandbox feature the default configuration leaves off, or, in
    // a build without validation, for a `valid` expectation.
    assert!(
        skipped.iter().all(|s| {
            let reason = s["reason"].as_str().unwrap();
            reason.contains("needs feature")
                || (!cfg!(feature = "validation") && reason.contains("needs FHIR validation"))
        }),
        "{skipped:?}"
    );

    sandbox
        .clone()
        .args(["--defect", "APPT-CANCELLED-FINAL", "-k", "cancelled"])
        .run()
        .expect_code(1)
        .stdout_contains("scenarios/canvas/appointment/cancelled-final.yaml::");

    sandbox
        .args(["--feature", "double_booking=forbidden", "-k", "double-book"])
        .run()
        .expect_code(0);
    let v = verdicts(&dir);
    assert!(
        v.iter().any(|(n, x)| n.contains("422") && x == "passed"),
        "{v:?}"
    );
}

#[test]
fn serve_lists_one_defect_per_rule_and_rejects_unknown_ones() {
    let listed = Fhirconf::new()
        .args(["serve", "--list-defects"])
        .run()
        .expect_code(0)
        .stdout_contains("APPT-CANCELLED-FINAL")
        .stdout();
    assert_eq!(listed.lines().count(), fhirconf::sandbox::DEFECTS.len());
    Fhirconf::new()
        .args(["serve", "--defect", "NOT-A-RULE", "--port", "0"])
        .run()
        .expect_code(2)
        .stderr_contains("unknown defect `NOT-A-RULE`");
}

#[test]
fn ignored_scenarios_are_skipped_unless_included() {
    let server = start_server();
    let dir = scratch("ignored");
    let file = dir.join("ignored.yaml");
    std::fs::write(&file, "scenarios:\n  - name: parked\n    ignore: waiting for the vendor fix\n    steps:\n      - request: { method: GET, path: /Patient/good }\n        expect: { status: 200 }\n  - name: active\n    steps:\n      - request: { method: GET, path: /Patient/good }\n        expect: { status: 200 }\n").unwrap();
    let path = file.to_str().unwrap();
    let ignored = Fhirconf::new()
        .args(["run", path, "--base-url", &server.base_url])
        .reports(&dir);
    ignored.clone().run().expect_code(0);
    assert_eq!(
        verdicts(&dir),
        vec![
            ("parked".to_owned(), "skipped".to_owned()),
            ("active".to_owned(), "passed".to_owned())
        ]
    );
    assert_eq!(
        reason(&dir, "parked"),
        "ignored: waiting for the vendor fix"
    );
    ignored
        .clone()
        .arg("--include-ignored")
        .run()
        .expect_code(0);
    assert_eq!(
        verdicts(&dir),
        vec![
            ("parked".to_owned(), "passed".to_owned()),
            ("active".to_owned(), "passed".to_owned())
        ]
    );
    ignored.arg("--ignored").run().expect_code(0);
    // As with libtest, --ignored filters the others out: they are not in the report.
    assert_eq!(
        verdicts(&dir),
        vec![("parked".to_owned(), "passed".to_owned())]
    );
}

/// A server whose `GET /make-file` creates a file at `path` (to break, during a run, a
/// place a report or the evidence will need afterwards).
fn file_maker(path: std::path::PathBuf) -> (String, tokio::runtime::Runtime) {
    let rt = tokio::runtime::Runtime::new().unwrap();
    let app = axum::Router::new().route(
        "/make-file",
        axum::routing::get(move || {
            let path = path.clone();
            async move {
                std::fs::write(&path, "made during the run").unwrap();
                ([("content-type", "application/fhir+json")], "{}")
            }
        }),
    );
    let listener = rt
        .block_on(tokio::net::TcpListener::bind("127.0.0.1:0"))
        .unwrap();
    let url = format!("http://{}", listener.local_addr().unwrap());
    rt.spawn(async move {
        let _ = axum::serve(listener, app).await;
    });
    (url, rt)
}

#[test]
fn a_report_that_cannot_be_written_after_the_run_is_exit_5_and_the_others_are_written() {
    let dir = scratch("unwritable-report");
    // The folder run.json goes to does not exist when the run starts, so nothing stops
    // it; during the run a file takes its name.
    let blocker = dir.join("late");
    let bad = blocker.join("run.json");
    let (url, _rt) = file_maker(blocker);
    let scenario = dir.join("s.yaml");
    std::fs::write(
        &scenario,
        "name: makes a file\nsteps:\n  - request: { method: GET, path: /make-file }\n    expect: { status: 200 }\n",
    )
    .unwrap();
    Fhirconf::new()
        .args(["run", scenario.to_str().unwrap(), "--base-url", &url])
        .args(["--json", bad.to_str().unwrap()])
        .reports(&dir)
        .run()
        // The run was made: a report that cannot be written afterwards has its own code.
        .expect_code(5)
        .stderr_contains(&format!("error: cannot write {}", bad.display()));
    for report in ["junit.xml", "summary.md", "index.html"] {
        assert!(dir.join(report).is_file(), "{report} missing");
    }
    assert_schema_valid(&dir.join("junit.xml"));
}

#[test]
fn reports_never_overwrite_inputs_or_each_other_and_bad_places_are_refused_first() {
    let server = start_server();
    let dir = scratch("outputs-guard");
    let scenario = dir.join("s.yaml");
    let text =
        std::fs::read_to_string(root().join("tests/cases/passing/fhir-helpers.yaml")).unwrap();
    std::fs::write(&scenario, &text).unwrap();
    let blocker = dir.join("blocker");
    std::fs::write(&blocker, "a file, not a folder").unwrap();
    let run = |extra: &[&str]| {
        Fhirconf::new()
            .args([
                "run",
                scenario.to_str().unwrap(),
                "--base-url",
                &server.base_url,
            ])
            .reports(&dir)
            .args(extra)
            .run()
            .expect_code(2)
            .stderr()
    };
    let junit = dir.join("junit.xml");
    let under_a_file = blocker.join("run.json");
    let cases = [
        (
            vec!["--json", scenario.to_str().unwrap()],
            "an input of this run: a report would overwrite it",
        ),
        (
            vec!["--markdown", junit.to_str().unwrap()],
            "--markdown and --junit both name",
        ),
        (
            vec!["--html", dir.to_str().unwrap()],
            "is a folder; name the report file",
        ),
        (
            vec!["--json", under_a_file.to_str().unwrap()],
            "is not a folder, so the report cannot be written there",
        ),
    ];
    for (extra, message) in cases {
        let err = run(&extra);
        assert!(err.contains(message), "{extra:?}: {err}");
    }
    // Nothing was run or written, and the scenario file is as it was.
    assert!(!junit.exists());
    assert_eq!(std::fs::read_to_string(&scenario).unwrap(), text);
}

#[test]
fn a_failing_step_keeps_its_whole_exchange_in_run_json_and_shows_a_cut_one() {
    let server = start_server();
    let dir = scratch("whole-exchange");
    let big = format!("{}END-OF-BODY", "x".repeat(20_000));
    let step = |expect: u16| {
        format!(
            "  - request: {{ method: POST, path: /echo, body: \"{big}\", content_type: text/plain }}\n    expect: {{ status: {expect} }}\n"
        )
    };
    std::fs::write(
        dir.join("big.yaml"),
        format!(
            "scenarios:\n  - name: passes\n    steps:\n  {}  - name: fails\n    steps:\n  {}",
            step(200).replace("\n    ", "\n      "),
            step(201).replace("\n    ", "\n      ")
        ),
    )
    .unwrap();
    let out = Fhirconf::new()
        .arg("run")
        .arg(dir.join("big.yaml"))
        .args(["--base-url", &server.base_url])
        .reports(&dir)
        .run()
        .expect_code(1);
    let run: Value = run_record(&dir);
    let transcript = |name: &str| {
        run["scenarios"]
            .as_array()
            .unwrap()
            .iter()
            .find(|s| s["name"] == name)
            .unwrap()["steps"][0]["transcript"]
            .as_str()
            .unwrap()
            .to_owned()
    };
    let passed = transcript("passes");
    assert!(passed.contains("more bytes)"), "{passed}");
    assert!(!passed.contains("END-OF-BODY"));
    assert!(passed.len() < 4_000, "{}", passed.len());
    let failed = transcript("fails");
    // The request body and the echo of it, both whole.
    assert_eq!(failed.matches("END-OF-BODY").count(), 2, "{failed}");
    assert!(!failed.contains("more bytes"));
    // What CI shows is cut, and says where the rest is.
    let junit = std::fs::read_to_string(dir.join("junit.xml")).unwrap();
    assert!(junit.contains("the whole exchange is in run.json"));
    assert!(!junit.contains("END-OF-BODY"));
    out.stdout_contains("the whole exchange is in run.json");
}

/// Runs `fhirconf` with its standard output's reader gone before it starts: every
/// write to it is EPIPE (closing the reader after spawning would race the child, which
/// may fill the pipe's buffer first).
fn with_stdout_closed(fhirconf: Fhirconf) -> std::process::Output {
    let (reader, writer) = std::io::pipe().unwrap();
    drop(reader);
    fhirconf
        .command()
        .stdout(writer)
        .stderr(std::process::Stdio::piped())
        .output()
        .unwrap()
}

#[test]
fn a_closed_stdout_ends_listings_quietly_and_runs_still_write_reports() {
    for args in [
        vec!["list", "scenarios"],
        vec!["serve", "--list-defects"],
        vec!["run", "--list", "scenarios"],
    ] {
        let out = with_stdout_closed(Fhirconf::new().args(args.clone()));
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert!(!stderr.contains("panicked"), "{args:?}: {stderr}");
        assert_eq!(out.status.code(), Some(141), "{args:?}: {stderr}");
    }
    let server = start_server();
    let dir = scratch("closed-stdout-run");
    let out = with_stdout_closed(
        Fhirconf::new()
            .args(["run", "tests/cases/passing", "--base-url", &server.base_url])
            .args(["--var", "tenant=acme"])
            .reports(&dir),
    );
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(!stderr.contains("panicked"), "{stderr}");
    // Every scenario still ran (they all pass against this server), and was reported.
    assert_eq!(out.status.code(), Some(0), "{stderr}");
    let record: Value =
        serde_json::from_str(&std::fs::read_to_string(dir.join("run.json")).unwrap()).unwrap();
    let verdicts: Vec<&str> = record["scenarios"]
        .as_array()
        .unwrap()
        .iter()
        .map(|s| s["verdict"].as_str().unwrap())
        .collect();
    assert!(
        !verdicts.is_empty() && verdicts.iter().all(|v| *v == "passed"),
        "{verdicts:?}"
    );
    assert!(dir.join("junit.xml").is_file(), "{stderr}");
    assert!(dir.join("run.json").is_file(), "{stderr}");
}

#[test]
fn with_stdout_closed_the_scenarios_still_run_jobs_at_a_time() {
    // The progress lines cannot be printed, so the scenarios run without them: still
    // no more in flight than `--jobs` says (it once ran them all at once).
    let server = start_server();
    let dir = scratch("closed-stdout-jobs");
    let cases = dir.join("cases");
    std::fs::create_dir_all(&cases).unwrap();
    for n in 0..6 {
        std::fs::write(
            cases.join(format!("s{n}.yaml")),
            format!(
                "name: held {n}\nsteps:\n  - request: {{ method: GET, path: /held/jobs }}\n    expect: {{ status: 200 }}\n"
            ),
        )
        .unwrap();
    }
    let out = with_stdout_closed(
        Fhirconf::new()
            .args([
                "run",
                cases.to_str().unwrap(),
                "--base-url",
                &server.base_url,
            ])
            .args(["--jobs", "2"])
            .reports(&dir.join("reports")),
    );
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(0), "{stderr}");
    assert_eq!(server.hits.get("jobs"), 6, "{stderr}");
    let most = server.hits.most_held("jobs");
    assert!(
        (1..=2).contains(&most),
        "{most} requests in flight at once with --jobs 2"
    );
}

#[test]
fn a_failure_names_its_rule_and_shows_the_write_that_was_answered_wrongly() {
    let dir = scratch("write-before-read-back");
    let out = Fhirconf::new()
        .args(["run", "scenarios/canvas/appointment/cancelled-final.yaml"])
        .args(["--defect", "APPT-CANCELLED-FINAL"])
        .reports(&dir)
        .run()
        .expect_code(1)
        .stdout_contains("rule APPT-CANCELLED-FINAL")
        .stdout_contains("after step 'an update asking for booked' (line ");
    // The PUT that was wrongly accepted, with its answer, is in the terminal and JUnit.
    let junit = std::fs::read_to_string(dir.join("junit.xml")).unwrap();
    for text in [&out.stdout(), &junit] {
        let at = text
            .find("which was answered 200:")
            .expect("the write is shown");
        assert!(text[at..].contains("> PUT "), "{text}");
    }
}

#[test]
fn the_readme_first_scenario_passes_and_its_edit_fails_with_a_diff() {
    let dir = scratch("first-scenario");
    Fhirconf::new()
        .args(["run", "examples/first-scenario.yaml"])
        .reports(&dir)
        .run()
        .expect_code(0);
    // The edit the README asks for, in a copy.
    let text = std::fs::read_to_string(root().join("examples/first-scenario.yaml")).unwrap();
    let edited = text.replace(
        "value: { name: [{ family: Chalmers, given: [Peter, James] }] }",
        "value: { name: [{ family: Chalmers, given: [Peter, Jim] }] }",
    );
    assert_ne!(edited, text, "the README's edit applies to the example");
    let copy = dir.join("first-scenario.yaml");
    std::fs::write(&copy, edited).unwrap();
    Fhirconf::new()
        .args(["run", copy.to_str().unwrap()])
        .reports(&dir)
        .run()
        .expect_code(1)
        .stdout_contains("first-scenario.yaml:32\n  json_subset")
        .stdout_contains("-        \"Jim\"\n+        \"James\"");
}

#[test]
fn check_warns_of_fhirpath_names_the_r4_model_does_not_have() {
    let dir = scratch("check-fhirpath-warnings");
    let file = write_file(
        &dir,
        "s.yaml",
        "name: warns\nsteps:\n  - request: { method: GET, path: /Patient/1 }\n    expect:\n      fhirpath:\n        - { expr: \"Patient.birth\", absent: true }\n        - { expr: \"Patient.birthDate\", exists: true }\n",
    );
    Fhirconf::new()
        .args(["check", &file])
        .run()
        .expect_code(0)
        .stdout_contains("no errors, 1 warnings")
        .stderr_contains(
            "s.yaml:6: `birth` is not an element of Patient (did you mean `birthDate`?)",
        );
}

#[test]
fn the_model_cache_is_in_the_user_cache_folder_unless_turned_off() {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("s.yaml");
    std::fs::write(
        &file,
        "name: one\nsteps:\n  - request: { method: GET, path: /metadata }\n",
    )
    .unwrap();
    let xdg = dir.path().join("xdg");
    let models = xdg.join("fhirconf/models");
    let check = |cache: &str| {
        Fhirconf::new()
            .arg("check")
            .arg(&file)
            .env("XDG_CACHE_HOME", &xdg)
            .env("FHIRCONF_CACHE", cache)
            .run()
            .expect_code(0);
    };
    check("off");
    assert!(!xdg.exists(), "FHIRCONF_CACHE=off writes nothing");
    // Empty: the default place.
    check("");
    check("");
    assert_eq!(std::fs::read_dir(&models).unwrap().count(), 1);
}
