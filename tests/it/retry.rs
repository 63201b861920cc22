//! `retry:` on a step: polling until `until` holds, within the attempts and the retry
//! budget, every attempt in the transcript, and non-idempotent requests repeated only
//! when the file says so.

use std::path::Path;

use serde_json::Value;

use crate::common::*;

fn first_step(dir: &Path) -> Value {
    run_record(dir)["scenarios"][0]["steps"][0].clone()
}

#[test]
fn a_step_is_polled_until_its_condition_holds() {
    let server = start_server();
    let dir = scratch("retry-until");
    // 202 twice, then 200.
    let scenario = write_file(
        &dir,
        "poll.yaml",
        "name: export done\nsteps:\n  - request: { method: GET, path: /busy/export/202/2/none }\n    retry: { until: { status: 200 }, times: 5, interval: 10ms, backoff: 2 }\n    expect: { status: 200, json: [{ path: $.id, equals: export }] }\n",
    );
    let out = run_with_reports(&dir, &[&scenario, "--base-url", &server.base_url]);
    assert_eq!(out.status.code(), Some(0), "{}", text(&out.stderr));
    assert_eq!(server.hits.get("export"), 3);
    let step = first_step(&dir);
    assert_eq!(step["attempts"], 3, "{step}");
    let transcript = step["transcript"].as_str().unwrap_or_default().to_owned();
    let transcript = if transcript.is_empty() {
        std::fs::read_to_string(dir.join("run.json")).unwrap()
    } else {
        transcript
    };
    assert!(transcript.contains("# attempt 1 of 5"), "{transcript}");
    assert!(transcript.contains("# attempt 2 of 5"), "{transcript}");
    assert!(transcript.contains("# the last attempt"), "{transcript}");
    let junit = std::fs::read_to_string(dir.join("junit.xml")).unwrap();
    assert!(junit.contains("after 3 attempts"), "{junit}");
}

#[test]
fn a_condition_that_never_holds_fails_after_the_attempts() {
    let server = start_server();
    let dir = scratch("retry-never");
    let scenario = write_file(
        &dir,
        "never.yaml",
        "name: never done\nsteps:\n  - request: { method: GET, path: /busy/never/202/100/none }\n    retry: { until: { status: 200 }, times: 3, interval: 0 }\n",
    );
    let out = run_with_reports(&dir, &[&scenario, "--base-url", &server.base_url]);
    assert_eq!(out.status.code(), Some(1), "{}", text(&out.stderr));
    assert_eq!(server.hits.get("never"), 3);
    let step = first_step(&dir);
    let message = step["message"].as_str().unwrap();
    assert!(
        message.contains("`until` did not hold after 3 attempts"),
        "{message}"
    );
    assert!(message.contains("status"), "{message}");
    assert_eq!(
        step["checks"][0]["what"]
            .as_str()
            .unwrap()
            .split(':')
            .next(),
        Some("retry.until")
    );
}

#[test]
fn polling_stops_at_the_retry_budget() {
    let server = start_server();
    let dir = scratch("retry-budget");
    let target = write_file(
        &dir,
        "target.yaml",
        &format!("base_url: {}\nretry_budget: 0.2\n", server.base_url),
    );
    let scenario = write_file(
        &dir,
        "slow.yaml",
        "name: slow poll\nsteps:\n  - request: { method: GET, path: /busy/slow/202/100/none }\n    retry: { until: { status: 200 }, times: 50, interval: 1s }\n",
    );
    let started = std::time::Instant::now();
    let out = run_with_reports(&dir, &[&scenario, "--target", &target]);
    assert_eq!(out.status.code(), Some(1), "{}", text(&out.stderr));
    // One attempt: the first wait (1 s) would already pass the 0.2 s budget.
    assert_eq!(server.hits.get("slow"), 1);
    assert!(started.elapsed() < std::time::Duration::from_secs(20));
    let message = first_step(&dir)["message"].as_str().unwrap().to_owned();
    assert!(message.contains("retry budget of 0.2 s"), "{message}");
}

#[test]
fn a_post_is_repeated_only_with_unsafe_and_the_reports_mark_it() {
    let server = start_server();
    let dir = scratch("retry-unsafe");
    let refused = write_file(
        &dir,
        "post.yaml",
        "name: post poll\nsteps:\n  - request: { method: POST, path: /busy/post/202/1/none, json: {} }\n    retry: { until: { status: 200 }, times: 3, interval: 0 }\n",
    );
    let out = fhirconf(&["check", &refused]);
    let stderr = text(&out.stderr);
    assert_eq!(out.status.code(), Some(2), "{stderr}");
    assert!(stderr.contains("POST is not idempotent"), "{stderr}");
    assert!(stderr.contains("post.yaml:4:"), "{stderr}");
    let allowed = write_file(
        &dir,
        "post-unsafe.yaml",
        "name: post poll\nsteps:\n  - request: { method: POST, path: /busy/post/202/1/none, json: {} }\n    retry: { until: { status: 200 }, times: 3, interval: 0, unsafe: true }\n",
    );
    let out = run_with_reports(&dir, &[&allowed, "--base-url", &server.base_url]);
    assert_eq!(out.status.code(), Some(0), "{}", text(&out.stderr));
    assert_eq!(server.hits.get("post"), 2);
    let step = first_step(&dir);
    assert_eq!(step["repeated_unsafe"], true, "{step}");
    let junit = std::fs::read_to_string(dir.join("junit.xml")).unwrap();
    assert!(junit.contains("non-idempotent, repeated"), "{junit}");
}

#[test]
fn retry_settings_out_of_range_are_refused_at_their_position() {
    let dir = scratch("retry-invalid");
    for (name, retry, wanted) in [
        (
            "times.yaml",
            "{ until: { status: 200 }, times: 0 }",
            "`times` must be from 1 to 1000",
        ),
        (
            "backoff.yaml",
            "{ until: { status: 200 }, times: 2, backoff: 0.5 }",
            "`backoff` must be from 1 to 10",
        ),
        (
            "interval.yaml",
            "{ until: { status: 200 }, times: 2, interval: soon }",
            "expected a duration",
        ),
        ("until.yaml", "{ until: { staus: 200 }, times: 2 }", "staus"),
    ] {
        let file = write_file(
            &dir,
            name,
            &format!(
                "name: bad\nsteps:\n  - request: {{ method: GET, path: /x }}\n    retry: {retry}\n"
            ),
        );
        let out = fhirconf(&["check", &file]);
        let stderr = text(&out.stderr);
        assert_eq!(out.status.code(), Some(2), "{name}: {stderr}");
        assert!(stderr.contains(wanted), "{name}: {stderr}");
        assert!(stderr.contains(&format!("{name}:4:")), "{name}: {stderr}");
    }
}
