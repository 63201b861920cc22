//! The server fault matrix: for each way a server can misbehave, the affected step
//! fails or errors with a readable one-line reason, the other scenario still runs, the
//! exit code says which, and every report is written (JUnit valid against the schema).

use crate::common::*;

const HEALTHY: &str = "  - name: a healthy scenario still runs
    steps:
      - request: { method: GET, path: /fault/ok }
        expect: { status: 200, json: [{ path: $.resourceType, equals: Patient }] }
";

/// A step that wants a Patient from `/fault/{name}`.
fn wants_patient(name: &str) -> String {
    format!(
        "      - request: {{ method: GET, path: /fault/{name} }}\n        expect: {{ status: 200, json: [{{ path: $.resourceType, equals: Patient }}] }}\n"
    )
}

struct Case<'a> {
    name: &'a str,
    /// The faulty scenario's steps (YAML, indented for `steps:`).
    steps: String,
    /// Extra target file lines (the base URL is added).
    target: &'a str,
    args: &'a [&'a str],
    verdict: &'a str,
    reason: &'a str,
    exit: i32,
}

fn check(case: Case<'_>) {
    let server = faults::start();
    let dir = scratch(&format!("fault-{}", case.name));
    let scenario = dir.join("s.yaml");
    std::fs::write(
        &scenario,
        format!(
            "scenarios:\n  - name: the faulty step\n    steps:\n{}{HEALTHY}",
            case.steps
        ),
    )
    .unwrap();
    let target = dir.join("t.yaml");
    std::fs::write(
        &target,
        format!("base_url: {}\n{}", server.base_url, case.target),
    )
    .unwrap();
    let mut args = vec!["--target", target.to_str().unwrap()];
    args.extend_from_slice(case.args);
    args.push(scenario.to_str().unwrap());
    let out = run_with_reports(&dir, &args);
    let stdout = text(&out.stdout);
    assert_eq!(
        out.status.code(),
        Some(case.exit),
        "{}: {stdout}",
        case.name
    );

    let run: serde_json::Value = run_record(&dir);
    let faulty = &run["scenarios"][0];
    assert_eq!(faulty["verdict"], case.verdict, "{}: {faulty}", case.name);
    let reason = faulty["reason"].as_str().unwrap();
    assert!(!reason.contains('\n'), "{}: one line: {reason}", case.name);
    assert!(
        reason.contains(case.reason),
        "{}: `{reason}` lacks `{}`",
        case.name,
        case.reason
    );
    assert_eq!(run["scenarios"][1]["verdict"], "passed", "{}", case.name);
    assert!(
        stdout.contains("a healthy scenario still runs ... ok"),
        "{stdout}"
    );
    assert!(dir.join("summary.md").exists());
    assert_schema_valid(&dir.join("junit.xml"));
}

macro_rules! fault {
    ($test:ident, $name:literal, $verdict:literal, $reason:literal, $exit:literal $(, args = $args:expr)? $(, target = $target:expr)?) => {
        #[test]
        fn $test() {
            #[allow(unused_mut, unused_assignments)]
            let mut args: &[&str] = &[];
            $(args = $args;)?
            #[allow(unused_mut, unused_assignments)]
            let mut target = "";
            $(target = $target;)?
            check(Case {
                name: $name,
                steps: wants_patient($name),
                target,
                args,
                verdict: $verdict,
                reason: $reason,
                exit: $exit,
            });
        }
    };
}

fault!(
    reset_mid_headers,
    "reset-headers",
    "error",
    "no answer: could not read the response",
    3
);
fault!(
    reset_mid_body,
    "reset-body",
    "error",
    "no answer: could not read the response",
    3
);
fault!(
    no_response_ever,
    "never",
    "error",
    "no answer: no response within 1s",
    3,
    args = &["--timeout", "1"]
);
fault!(
    slow_trickle_body,
    "trickle",
    "error",
    "no answer: no response within 1s",
    3,
    args = &["--timeout", "1"]
);
fault!(
    declared_body_over_the_cap,
    "huge-declared",
    "error",
    "larger than the 1000000-byte cap",
    3,
    args = &["--max-body", "1000000"]
);
fault!(
    streamed_body_over_the_cap,
    "huge-chunked",
    "error",
    "larger than the 1000000-byte cap",
    3,
    args = &["--max-body", "1000000"]
);
fault!(
    truncated_chunked_encoding,
    "chunked-truncated",
    "error",
    "no answer: could not read the response",
    3
);
fault!(
    invalid_utf8,
    "invalid-utf8",
    "failed",
    "got a body that is not JSON",
    1
);
fault!(
    html_with_a_json_content_type,
    "html-as-json",
    "failed",
    "got a body that is not JSON",
    1
);
fault!(
    gzip_that_does_not_decompress,
    "bad-gzip",
    "error",
    "no answer: could not read the response",
    3
);
fault!(
    redirect_loop,
    "redirect-loop",
    "failed",
    "expected 200, got 302",
    1
);
fault!(
    status_500_with_a_body,
    "500-body",
    "failed",
    "expected 200, got 500",
    1
);
fault!(
    status_500_without_a_body,
    "500-empty",
    "failed",
    "expected 200, got 500",
    1
);
fault!(
    status_502_with_a_body,
    "502-body",
    "failed",
    "expected 200, got 502",
    1
);
fault!(
    status_502_without_a_body,
    "502-empty",
    "failed",
    "expected 200, got 502",
    1
);
fault!(
    status_503_with_a_body,
    "503-body",
    "failed",
    "expected 200, got 503",
    1
);
fault!(
    status_503_without_a_body,
    "503-empty",
    "failed",
    "expected 200, got 503",
    1
);
fault!(
    storm_of_429_without_retry_after,
    "429",
    "failed",
    "expected 200, got 429",
    1
);
fault!(
    storm_of_429_with_retry_after,
    "429-retry-after",
    "error",
    "429 kept coming after waiting 2 s of Retry-After",
    3,
    target = "retry_budget: 2\n"
);

#[test]
fn connection_refused() {
    check(Case {
        name: "refused",
        steps: format!(
            "      - request: {{ method: GET, url: \"{}/Patient/1\" }}\n",
            closed_port_url()
        ),
        target: "",
        args: &[],
        verdict: "error",
        reason: "no answer: could not connect",
        exit: 3,
    });
}

#[test]
fn json_with_a_non_json_content_type() {
    check(Case {
        name: "json-as-text",
        steps: "      - request: { method: GET, path: /fault/json-as-text }\n        expect:\n          status: 200\n          headers: { content-type: { contains: fhir+json } }\n".to_owned(),
        target: "",
        args: &[],
        verdict: "failed",
        reason: "content-type",
        exit: 1,
    });
}

#[test]
fn tls_with_an_untrusted_certificate() {
    let https = tls::start("untrusted.pem", "untrusted.key", None);
    check(Case {
        name: "tls-untrusted",
        steps: format!(
            "      - request: {{ method: GET, url: \"{}/Patient/good\" }}\n        expect: {{ status: 200 }}\n",
            https.base_url
        ),
        target: "",
        args: &[],
        verdict: "error",
        reason: "certificate",
        exit: 3,
    });
}

#[test]
fn a_location_header_that_is_not_a_url() {
    check(Case {
        name: "location-not-url",
        steps: "      - request: { method: POST, path: /fault/location-not-url, json: { resourceType: Patient } }\n        expect: { status: 201 }\n        capture: { location: { header: location } }\n      - request: { method: GET, url: \"{{ location }}\" }\n".to_owned(),
        target: "",
        args: &[],
        verdict: "error",
        reason: "is not a valid URL",
        exit: 3,
    });
}
