//! The bounds on what a scenario or a server can make the harness do on its own
//! machine: template memory, JSONPath fan-out, the YAML parser's budgets and tags, the
//! request framing a step may not fake, and files `verify` must not read forever.

use std::path::Path;

use crate::common::*;

/// Each check of a scenario failing, with reports written and the run going on.
fn failed_check_messages(dir: &Path) -> Vec<String> {
    let record = run_record(dir);
    let mut out = Vec::new();
    for scenario in record["scenarios"].as_array().unwrap() {
        for step in scenario["steps"].as_array().unwrap() {
            if let Some(m) = step["message"].as_str() {
                out.push(m.to_owned());
            }
            for check in step["checks"].as_array().into_iter().flatten() {
                if check["passed"] == false {
                    out.push(check.to_string());
                }
            }
        }
    }
    out
}

#[test]
fn a_template_that_would_exhaust_memory_fails_its_step_and_the_run_goes_on() {
    let server = start_server();
    let dir = scratch("limits-template-memory");
    let scenario = write_file(
        &dir,
        "hostile.yaml",
        "scenarios:\n\
         \x20 - name: doubling\n\
         \x20   steps:\n\
         \x20     - request: { method: POST, path: /echo, body: \"{% set ns = namespace(s='xx') %}{% for i in range(40) %}{% set ns.s = ns.s ~ ns.s %}{% endfor %}{{ ns.s | length }}\", content_type: text/plain }\n\
         \x20 - name: repeated list\n\
         \x20   steps:\n\
         \x20     - request: { method: GET, path: \"/echo?x={{ (['abcdefgh'] * 100000000) | join }}\" }\n\
         \x20 - name: still fine\n\
         \x20   steps:\n\
         \x20     - request: { method: GET, path: \"/echo?x={{ 'a' ~ 'b' }}\" }\n\
         \x20       expect: { json: [{ path: \"$.query[0][1]\", equals: ab }] }\n",
    );
    let out = run_with_reports(&dir, &[&scenario, "--base-url", &server.base_url]);
    let stderr = text(&out.stderr);
    // 3: steps that could not be sent are errors, not failures.
    assert_eq!(out.status.code(), Some(3), "{stderr}");
    assert!(!stderr.contains("memory allocation"), "{stderr}");
    let verdicts = verdicts(&run_record(&dir));
    assert_eq!(
        verdicts.iter().filter(|v| *v == "passed").count(),
        1,
        "{verdicts:?}"
    );
    let messages = failed_check_messages(&dir).join("\n");
    assert!(
        messages.matches("the template was stopped").count() >= 2,
        "{messages}"
    );
}

#[test]
fn the_template_output_limit_is_settable() {
    let server = start_server();
    let dir = scratch("limits-template-bytes");
    let scenario = write_file(
        &dir,
        "big.yaml",
        "name: big body\nsteps:\n  - request: { method: POST, path: /echo, body: \"{{ 'x' * 3000 }}\", content_type: text/plain }\n",
    );
    let out = run_with_reports(&dir, &[&scenario, "--base-url", &server.base_url]);
    assert_eq!(out.status.code(), Some(0), "{}", text(&out.stderr));
    let out = run_with_reports(
        &dir,
        &[
            &scenario,
            "--base-url",
            &server.base_url,
            "--max-template-bytes",
            "2000",
        ],
    );
    assert_eq!(out.status.code(), Some(3), "{}", text(&out.stderr));
    let messages = failed_check_messages(&dir).join("\n");
    assert!(messages.contains("2000-byte limit"), "{messages}");
    assert!(messages.contains("--max-template-bytes"), "{messages}");
    let zero = run_with_reports(&dir, &[&scenario, "--max-template-bytes", "0"]);
    assert_eq!(zero.status.code(), Some(2));
}

#[test]
fn a_jsonpath_query_over_its_node_budget_fails_its_check_with_the_figures() {
    let server = start_server();
    let dir = scratch("limits-jsonpath");
    // /big is one member holding 200,000 characters: a flat body, so `$..*..*` is cheap
    // there; the budget is lowered to show the check failing and naming it.
    let scenario = write_file(
        &dir,
        "fanout.yaml",
        "name: fan-out\nsteps:\n  - request: { method: GET, path: /echo }\n    expect: { json: [{ path: \"$..*..*..*\", exists: true }] }\n",
    );
    let out = run_with_reports(
        &dir,
        &[
            &scenario,
            "--base-url",
            &server.base_url,
            "--max-jsonpath-nodes",
            "10",
        ],
    );
    assert_eq!(out.status.code(), Some(1), "{}", text(&out.stderr));
    let messages = failed_check_messages(&dir).join("\n");
    assert!(messages.contains("could visit up to"), "{messages}");
    assert!(messages.contains("--max-jsonpath-nodes"), "{messages}");
}

#[test]
fn yaml_tags_and_parser_limits_are_named_at_their_location() {
    let dir = scratch("limits-yaml");
    let aliases: String = (0..20_000).map(|_| "  - *a\n").collect();
    let cases = [
        (
            "env-tag.yaml",
            "name: t\nsteps:\n  - request: { method: GET, path: !Env HOME }\n".to_owned(),
            "tag",
        ),
        (
            "binary-tag.yaml",
            "name: t\nvars:\n  v: !!binary aGVsbG8=\nsteps:\n  - request: { method: GET, path: /x }\n"
                .to_owned(),
            "tag",
        ),
        (
            "deep.yaml",
            format!(
                "name: deep\nvars:\n  v: {}1{}\nsteps:\n  - request: {{ method: GET, path: /x }}\n",
                "{a: ".repeat(80),
                "}".repeat(80)
            ),
            "deeper than 64 levels",
        ),
        (
            "aliases.yaml",
            format!(
                "name: aliases\nvars:\n  a: &a x\n  list:\n{aliases}steps:\n  - request: {{ method: GET, path: /x }}\n"
            ),
            "10000 times",
        ),
    ];
    for (name, yaml, wanted) in cases {
        let file = write_file(&dir, name, &yaml);
        let out = fhirconf(&["check", &file]);
        let stderr = text(&out.stderr);
        assert_eq!(out.status.code(), Some(2), "{name}: {stderr}");
        assert!(stderr.contains(wanted), "{name}: {stderr}");
        assert!(stderr.contains(&format!("{file}:")), "{name}: {stderr}");
        assert!(!stderr.contains("panicked"), "{name}: {stderr}");
    }
}

#[test]
fn a_hundred_thousand_step_file_under_the_size_cap_loads() {
    let dir = scratch("limits-steps");
    let mut yaml = String::from("name: long\nsteps:\n");
    for _ in 0..100_000 {
        yaml.push_str("- request: {method: GET, path: /m}\n");
    }
    assert!(yaml.len() < 4 * 1024 * 1024);
    let file = write_file(&dir, "long.yaml", &yaml);
    let out = fhirconf(&["check", &file]);
    assert_eq!(out.status.code(), Some(0), "{}", text(&out.stderr));
}

#[test]
fn a_content_length_the_step_sets_is_replaced_by_the_real_one() {
    let server = start_server();
    let dir = scratch("limits-content-length");
    let scenario = write_file(
        &dir,
        "length.yaml",
        "name: own length\nsteps:\n  - request: { method: POST, path: /echo, headers: { Content-Length: \"3\" }, json: { a: hello } }\n    expect:\n      json:\n        - { path: \"$.json.a\", equals: hello }\n        - { path: \"$.headers['content-length']\", equals: \"13\" }\n",
    );
    let out = run_with_reports(&dir, &[&scenario, "--base-url", &server.base_url]);
    assert_eq!(out.status.code(), Some(0), "{}", text(&out.stderr));
    let record = std::fs::read_to_string(dir.join("run.json")).unwrap();
    assert!(record.contains("Content-Length: 13"), "{record}");
    assert!(!record.contains("Content-Length: 3"), "{record}");
}

#[cfg(unix)]
#[test]
fn verify_does_not_read_a_fifo_the_manifest_lists() {
    let server = start_server();
    let dir = scratch("limits-verify-fifo");
    let evidence = dir.join("evidence");
    let scenario = write_file(
        &dir,
        "ok.yaml",
        "name: ok\nsteps:\n  - request: { method: GET, path: /echo }\n",
    );
    let out = run_with_reports(
        &dir,
        &[
            &scenario,
            "--base-url",
            &server.base_url,
            "--evidence",
            evidence.to_str().unwrap(),
        ],
    );
    assert_eq!(out.status.code(), Some(0), "{}", text(&out.stderr));
    let junit = evidence.join("reports").join("junit.xml");
    let listed = if junit.exists() {
        junit
    } else {
        // Wherever the evidence keeps its JUnit copy.
        let manifest: serde_json::Value =
            serde_json::from_str(&std::fs::read_to_string(evidence.join("manifest.json")).unwrap())
                .unwrap();
        evidence.join(manifest["files"][0]["path"].as_str().unwrap())
    };
    std::fs::remove_file(&listed).unwrap();
    let status = std::process::Command::new("mkfifo")
        .arg(&listed)
        .status()
        .unwrap();
    assert!(status.success());
    let mut child = Fhirconf::new()
        .args(["verify", evidence.to_str().unwrap()])
        .command()
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    let started = std::time::Instant::now();
    let code = loop {
        if let Some(status) = child.try_wait().unwrap() {
            break status.code();
        }
        if started.elapsed() > std::time::Duration::from_secs(30) {
            let _ = child.kill();
            panic!("verify hung on a FIFO");
        }
        std::thread::sleep(std::time::Duration::from_millis(50));
    };
    let out = child.wait_with_output().unwrap();
    assert_eq!(code, Some(1), "{}", text(&out.stdout));
}
