//! Target files end to end: every kind of authentication against the sandbox, TLS
//! settings against a local HTTPS server, precedence of flags over files, the gentle
//! options (rate cap, Retry-After, --read-only, --strict), and secrets that never
//! reach any output.

use std::path::{Path, PathBuf};
use std::time::Duration;

use fhirconf::auth::Auth;
use fhirconf::redact::Redactor;
use fhirconf::target::ResolvedAuth;

use crate::common::*;

/// A target for an external sandbox: its base URL, its seed variables, and `extra`
/// (more YAML at top level).
fn sandbox_target(base_url: &str, extra: &str) -> String {
    let mut out = format!("base_url: {base_url}\nvars:\n");
    for (k, v) in fhirconf::sandbox::seed_vars() {
        if !extra.contains(&format!("  {k}: ")) {
            out.push_str(&format!("  {k}: {}\n", serde_json::json!(v)));
        }
    }
    out.push_str(extra);
    out
}

fn write(dir: &Path, name: &str, text: &str) -> PathBuf {
    let path = dir.join(name);
    std::fs::write(&path, text).unwrap();
    path
}

fn s(p: &Path) -> &str {
    p.to_str().unwrap()
}

/// `run --target TARGET` with every report in `dir`.
fn with_target(dir: &Path, target: &Path) -> Fhirconf {
    Fhirconf::new()
        .args(["run", "--target", s(target)])
        .reports(dir)
}

/// Exit 2 before any scenario ran, and no report; returns stderr.
#[track_caller]
fn assert_stopped_before_running(out: Ran, dir: &Path) -> String {
    let out = out.expect_code(2);
    assert!(!out.stdout().contains("running"), "{}", out.transcript());
    assert!(
        !dir.join("junit.xml").exists(),
        "no report for a run that did not start"
    );
    out.stderr()
}

const REVOKE_SCENARIO: &str = r#"name: a revoked token is replaced
steps:
  - request: { method: GET, path: "/Patient/{{ patient_id }}" }
    expect: { status: 200 }
  - name: the server revokes every token
    request: { method: POST, path: /_sandbox/revoke-tokens }
    expect: { status: 200 }
  - name: the harness fetches a new one after the 401
    request: { method: GET, path: "/Patient/{{ patient_id }}" }
    expect: { status: 200 }
"#;

#[test]
fn target_file_errors_name_file_line_and_column() {
    let dir = scratch("target-errors");
    let t = write(&dir, "t.yaml", "base_url: http://127.0.0.1:9\ntimeuot: 3\n");
    let err =
        assert_stopped_before_running(with_target(&dir, &t).arg("scenarios/r4-core").run(), &dir);
    assert!(err.contains("t.yaml:2:1"), "{err}");
    assert!(err.contains("did you mean `timeout`"), "{err}");

    let t = write(
        &dir,
        "u.yaml",
        "base_url: http://127.0.0.1:9\nfeatures: [a, b]\n",
    );
    let err =
        assert_stopped_before_running(with_target(&dir, &t).arg("scenarios/r4-core").run(), &dir);
    assert!(err.contains("u.yaml:2:"), "{err}");

    let err = assert_stopped_before_running(
        with_target(&dir, Path::new("no/such/target.yaml")).run(),
        &dir,
    );
    assert!(err.contains("no/such/target.yaml"));
}

#[test]
fn a_bearer_token_comes_from_the_environment_variable_the_target_names() {
    let sbx = start_sandbox(&[("auth", "on")]);
    let token = sbx.token();
    let dir = scratch("bearer");
    let t = write(
        &dir,
        "t.yaml",
        &sandbox_target(
            &sbx.base_url,
            "auth: { type: bearer, token_env: FHIRCONF_TEST_TOKEN }\nfeatures: { auth: \"on\" }\n",
        ),
    );
    with_target(&dir, &t)
        .args(["scenarios/r4-core", "-k", "read"])
        .env("FHIRCONF_TEST_TOKEN", &token)
        .run()
        .expect_code(0)
        .stdout_contains(" passed");
    assert_eq!(sbx.stats()["tokens_issued"], 1, "only the test's own token");

    let dir = scratch("bearer-missing");
    let err =
        assert_stopped_before_running(with_target(&dir, &t).arg("scenarios/r4-core").run(), &dir);
    assert!(
        err.contains("auth.token_env: environment variable `FHIRCONF_TEST_TOKEN` is not set"),
        "{err}"
    );
    assert!(err.contains("t.yaml:"), "{err}");
}

fn client_credentials(secret_env: &str) -> String {
    format!(
        "auth:\n  type: client_credentials\n  token_url: auth/token\n  client_id: fhirconf-sandbox\n  client_secret_env: {secret_env}\nfeatures: {{ auth: \"on\" }}\n"
    )
}

#[test]
fn client_credentials_are_fetched_once_and_renewed_after_a_401() {
    let sbx = start_sandbox(&[("auth", "on")]);
    let dir = scratch("client-credentials");
    let t = write(
        &dir,
        "t.yaml",
        &sandbox_target(&sbx.base_url, &client_credentials("FHIRCONF_TEST_SECRET")),
    );
    let secret = with_target(&dir, &t).env("FHIRCONF_TEST_SECRET", "sandbox-secret");
    secret.clone().arg("scenarios/r4-core").run().expect_code(0);
    assert_eq!(
        sbx.stats()["tokens_issued"],
        1,
        "one token for every scenario in flight"
    );

    let scenario = write(&dir, "revoke.yaml", REVOKE_SCENARIO);
    secret.arg(&scenario).run().expect_code(0);
    assert_eq!(
        sbx.stats()["tokens_issued"],
        3,
        "a second token after the 401"
    );

    let dir = scratch("client-credentials-refused");
    let err = assert_stopped_before_running(
        with_target(&dir, &t)
            .arg("scenarios/r4-core")
            .env("FHIRCONF_TEST_SECRET", "not-the-secret")
            .run(),
        &dir,
    );
    assert!(
        err.contains("auth: the token endpoint refused the credentials: invalid_client"),
        "{err}"
    );
    assert!(!err.contains("not-the-secret"), "{err}");
}

#[test]
fn a_token_is_replaced_before_it_expires() {
    let sbx = start_sandbox(&[("auth", "on"), ("token_lifetime", "2")]);
    let rt = tokio::runtime::Runtime::new().unwrap();
    let auth = Auth::new(
        ResolvedAuth::ClientCredentials {
            token_url: format!("{}/auth/token", sbx.base_url),
            client_id: "fhirconf-sandbox".into(),
            client_secret: "sandbox-secret".into(),
            scope: None,
        },
        reqwest::Client::new(),
        Redactor::default(),
    );
    let first = rt.block_on(auth.header()).unwrap().unwrap();
    assert_eq!(
        rt.block_on(auth.header()).unwrap().unwrap(),
        first,
        "cached"
    );
    // A 2 s token is replaced half-way through its life.
    std::thread::sleep(Duration::from_millis(1200));
    let second = rt.block_on(auth.header()).unwrap().unwrap();
    assert_ne!(second, first);
    assert_eq!(sbx.stats()["tokens_issued"], 2);
}

fn smart(key: &str, algorithm: &str, kid: &str) -> String {
    let key = root().join("targets/keys").join(key);
    format!(
        "auth:\n  type: smart_backend\n  token_url: auth/token\n  client_id: fhirconf-backend\n  private_key_file: {}\n  algorithm: {algorithm}\n  kid: {kid}\n  scope: system/*.read system/*.write\n  jku: https://example.org/jwks.json\nfeatures: {{ auth: \"on\" }}\n",
        key.display()
    )
}

#[test]
fn smart_backend_services_with_rs384_and_es384() {
    for (key, alg, kid) in [
        ("sandbox-backend-rs384.pem", "RS384", "sandbox-rs384"),
        ("sandbox-backend-es384.pem", "ES384", "sandbox-es384"),
    ] {
        let sbx = start_sandbox(&[("auth", "on")]);
        let dir = scratch(&format!("smart-{alg}"));
        let t = write(
            &dir,
            "t.yaml",
            &sandbox_target(&sbx.base_url, &smart(key, alg, kid)),
        );
        with_target(&dir, &t)
            .arg("scenarios/r4-core")
            .run()
            .expect_code(0);
        assert_eq!(sbx.stats()["tokens_issued"], 1, "{alg}");
    }
    // The ES384 key presented under the RS384 key's kid does not verify.
    let sbx = start_sandbox(&[("auth", "on")]);
    let dir = scratch("smart-wrong-kid");
    let t = write(
        &dir,
        "t.yaml",
        &sandbox_target(
            &sbx.base_url,
            &smart("sandbox-backend-es384.pem", "ES384", "sandbox-rs384"),
        ),
    );
    let err =
        assert_stopped_before_running(with_target(&dir, &t).arg("scenarios/r4-core").run(), &dir);
    assert!(
        err.contains("refused the credentials: invalid_client"),
        "{err}"
    );

    let t = write(
        &dir,
        "missing-key.yaml",
        &sandbox_target(&sbx.base_url, &smart("nope.pem", "ES384", "sandbox-es384")),
    );
    let err =
        assert_stopped_before_running(with_target(&dir, &t).arg("scenarios/r4-core").run(), &dir);
    assert!(err.contains("auth.private_key_file: cannot read"), "{err}");
    assert!(err.contains("missing-key.yaml:"), "{err}");
}

/// A secret as it is, and as it looks percent-encoded, JSON-escaped, HTML-escaped and
/// in base64: written here independently of the harness's own list.
fn encoded_forms(secret: &str) -> Vec<(&'static str, String)> {
    use base64::Engine as _;
    let percent: String = secret
        .bytes()
        .map(|b| match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'.' | b'_' | b'*' => {
                (b as char).to_string()
            }
            b' ' => "+".to_owned(),
            _ => format!("%{b:02X}"),
        })
        .collect();
    let json = serde_json::to_string(secret).unwrap();
    let html = secret
        .replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
        .replace('"', "&quot;")
        .replace('\'', "&#x27;")
        .replace('/', "&#x2f;");
    vec![
        ("as is", secret.to_owned()),
        ("percent-encoded", percent.clone()),
        ("percent-encoded, %20", percent.replace('+', "%20")),
        ("JSON-escaped", json[1..json.len() - 1].to_owned()),
        ("HTML-escaped", html),
        (
            "base64",
            base64::engine::general_purpose::STANDARD.encode(secret),
        ),
    ]
}

/// Every output of a run with authentication and secret variables, searched for every
/// secret value in every encoding: none may appear.
#[test]
fn secrets_never_reach_any_output() {
    let sbx = start_sandbox(&[("auth", "on")]);
    let echo = start_server();
    let dir = scratch("target-secrets");
    let extra = format!(
        "{}secret_vars:\n  auth_client_secret: FHIRCONF_TEST_SECRET\n  auth_limited_client_secret: FHIRCONF_TEST_LIMITED\n",
        client_credentials("FHIRCONF_TEST_SECRET")
    );
    let t = write(&dir, "t.yaml", &sandbox_target(&sbx.base_url, &extra));
    // Fails on purpose, so the secrets it sends and gets back land in transcripts.
    let leaky = write(
        &dir,
        "leaky.yaml",
        &format!(
            r#"name: secrets echoed back
steps:
  - request:
      method: POST
      url: "{}/echo?key={{{{ api_key }}}}"
      headers: {{ X-Api-Key: "{{{{ api_key }}}}", Cookie: "session=cookie-value-1234" }}
      json: {{ secret: "{{{{ api_key }}}}", client: "{{{{ auth_client_secret }}}}" }}
    expect:
      status: 500
  - request:
      method: POST
      url: "{}/echo"
      form: {{ key: "{{{{ api_key }}}}" }}
    expect:
      status: 500
  - request: {{ method: GET, path: "/Patient/{{{{ patient_id }}}}" }}
"#,
            echo.base_url, echo.base_url
        ),
    );
    // Every character that one encoding or another changes.
    let api_key = "hunter2 \"api\"/key&<0042>'";
    let out = with_target(&dir, &t)
        .args(["--secret-var", &format!("api_key={api_key}")])
        .args(["scenarios", s(&leaky)])
        .env("FHIRCONF_TEST_SECRET", "sandbox-secret")
        .env("FHIRCONF_TEST_LIMITED", "limited-secret")
        .run()
        .expect_code(1)
        .stdout_contains("secrets echoed back");
    let outputs = every_output(out.output(), &dir);
    let token = regex::Regex::new(r"sbx-[0-9a-f]{32}").unwrap();
    for (name, content) in &outputs {
        for secret in [
            api_key,
            "sandbox-secret",
            "limited-secret",
            "cookie-value-1234",
        ] {
            for (form, encoded) in encoded_forms(secret) {
                assert!(
                    !content.contains(&encoded),
                    "{secret} ({form}: {encoded}) in {name}"
                );
            }
        }
        assert!(!token.is_match(content), "a sandbox token in {name}");
    }
    // The redacted transcript is there, so the search above looked at real content.
    let junit = std::fs::read_to_string(dir.join("junit.xml")).unwrap();
    assert!(junit.contains("X-Api-Key: [redacted]"), "{junit}");
}

#[test]
fn smart_assertions_and_keys_never_reach_any_output() {
    let sbx = start_sandbox(&[("auth", "on")]);
    let dir = scratch("smart-secrets");
    let t = write(
        &dir,
        "t.yaml",
        &sandbox_target(
            &sbx.base_url,
            &smart("sandbox-backend-rs384.pem", "RS384", "sandbox-rs384"),
        ),
    );
    let out = with_target(&dir, &t)
        .arg("scenarios/r4-core")
        .run()
        .expect_code(0);
    let key =
        std::fs::read_to_string(root().join("targets/keys/sandbox-backend-rs384.pem")).unwrap();
    let key_lines: Vec<&str> = key.lines().filter(|l| !l.starts_with("-----")).collect();
    for (name, content) in &every_output(out.output(), &dir) {
        assert!(!content.contains("eyJ"), "a JWT in {name}");
        for line in &key_lines {
            assert!(
                !content.contains(line),
                "a line of the private key in {name}"
            );
        }
    }
}

#[test]
fn flags_win_over_the_file_and_the_file_is_found_through_the_environment() {
    let server = start_server();
    let dir = scratch("precedence");
    let scenario = write(
        &dir,
        "s.yaml",
        "name: reads the patient the target names\nsteps:\n  - request: { method: GET, path: \"/Patient/{{ patient_id }}\" }\n    expect: { status: 200 }\n",
    );
    // The file points at a closed port and a patient that does not exist.
    let t = write(
        &dir,
        "t.yaml",
        &format!(
            "base_url: {}\nvars: {{ patient_id: missing }}\ntimeout: 5\n",
            closed_port_url()
        ),
    );
    // No answer.
    with_target(&dir, &t).arg(&scenario).run().expect_code(3);
    Fhirconf::new()
        .args([
            "run",
            "--base-url",
            &server.base_url,
            "--var",
            "patient_id=good",
        ])
        .arg(&scenario)
        .env("FHIRCONF_TARGET", &t)
        .reports(&dir)
        .run()
        .expect_code(0);
    let run: serde_json::Value = run_record(&dir);
    assert_eq!(run["target"]["base_url"], server.base_url.as_str());

    with_target(&dir, &t)
        .args(["--feature", "auth=on", s(&scenario)])
        .run()
        .expect_code(2)
        .stderr_contains("external server");
}

#[test]
fn read_only_leaves_out_every_scenario_that_writes() {
    let sbx = start_sandbox(&[]);
    let dir = scratch("read-only");
    let t = write(&dir, "t.yaml", &sandbox_target(&sbx.base_url, ""));
    let err = with_target(&dir, &t)
        .args(["--read-only", "scenarios"])
        .run()
        .expect_code(0)
        .stderr();
    let counted =
        regex::Regex::new(r"--read-only: (\d+) scenarios that write left out, (\d+) remain")
            .unwrap();
    let caps = counted.captures(&err).unwrap_or_else(|| panic!("{err}"));
    assert!(caps[1].parse::<u32>().unwrap() > 10, "{err}");
    assert!(caps[2].parse::<u32>().unwrap() > 10, "{err}");
    let stats = sbx.stats();
    assert_eq!(stats["created"]["Appointment"], 0, "{stats}");
    assert_eq!(stats["created"]["Practitioner"], 0, "{stats}");
}

#[test]
fn strict_turns_unmet_requirements_into_failures() {
    let server = start_server();
    let dir = scratch("strict");
    let scenario = write(
        &dir,
        "s.yaml",
        "name: needs appointment updates\nrequires: [Appointment.update]\nsteps:\n  - request: { method: GET, path: /metadata }\n",
    );
    let run = Fhirconf::new()
        .args(["run", "--base-url", &server.base_url])
        .reports(&dir);
    run.clone()
        .arg(&scenario)
        .run()
        .expect_code(0)
        .stdout_contains("Appointment.update not in CapabilityStatement");
    run.args(["--strict", s(&scenario)]).run().expect_code(1);
    let junit = std::fs::read_to_string(dir.join("junit.xml")).unwrap();
    assert!(junit.contains("<failure"), "{junit}");
    assert!(
        junit.contains(
            "not applicable under --strict: Appointment.update not in CapabilityStatement"
        ),
        "{junit}"
    );
}

fn step(path: &str, status: &str) -> String {
    format!(
        "  - request: {{ method: GET, path: \"{path}\" }}\n    expect: {{ status: {status} }}\n"
    )
}

#[test]
fn retry_after_is_waited_out_within_the_budget() {
    let server = start_server();
    let dir = scratch("retry-after");
    let t = write(
        &dir,
        "t.yaml",
        &format!("base_url: {}\nretry_budget: 3\n", server.base_url),
    );
    let scenario = write(
        &dir,
        "s.yaml",
        &format!(
            "scenarios:\n  - name: waits out two 429s\n    steps:\n{}  - name: waits out a 503\n    steps:\n{}  - name: a 429 without Retry-After is judged as it is\n    steps:\n{}  - name: a Retry-After beyond the budget is an error\n    steps:\n{}  - name: an expected 429 is not waited out\n    steps:\n{}",
            step("/busy/a/429/2/1", "200"),
            step("/busy/b/503/1/1", "200"),
            step("/busy/c/429/5/none", "200"),
            step("/busy/d/429/1/30", "200"),
            step("/busy/e/429/1/1", "429"),
        )
        .replace("\n  - request", "\n      - request")
        .replace("\n    expect", "\n        expect"),
    );
    let out = with_target(&dir, &t).arg(&scenario).run().expect_code(1);
    assert_eq!(server.hits.get("a"), 3);
    assert_eq!(server.hits.get("b"), 2);
    assert_eq!(server.hits.get("c"), 1);
    assert_eq!(server.hits.get("d"), 1);
    assert_eq!(server.hits.get("e"), 1);
    let run: serde_json::Value = run_record(&dir);
    let verdicts: Vec<(&str, &str)> = run["scenarios"]
        .as_array()
        .unwrap()
        .iter()
        .map(|s| (s["name"].as_str().unwrap(), s["verdict"].as_str().unwrap()))
        .collect();
    assert_eq!(
        verdicts,
        [
            ("waits out two 429s", "passed"),
            ("waits out a 503", "passed"),
            ("a 429 without Retry-After is judged as it is", "failed"),
            ("a Retry-After beyond the budget is an error", "error"),
            ("an expected 429 is not waited out", "passed"),
        ]
    );
    out.stdout_contains(
        "429 kept coming after waiting 0 s of Retry-After (the retry budget is 3 s)",
    );
}

#[test]
fn the_rate_cap_spaces_requests_across_scenarios() {
    let server = start_server();
    let dir = scratch("rate-limit");
    let t = write(
        &dir,
        "t.yaml",
        &format!("base_url: {}\nrate_limit: 10\n", server.base_url),
    );
    let mut yaml = String::from("scenarios:\n");
    for i in 0..3 {
        yaml.push_str(&format!("  - name: burst {i}\n    steps:\n"));
        for _ in 0..3 {
            yaml.push_str("      - request: { method: GET, path: /hit/paced }\n");
        }
    }
    let scenario = write(&dir, "s.yaml", &yaml);
    with_target(&dir, &t)
        .args(["-j", "3", s(&scenario)])
        .run()
        .expect_code(0);
    let times = server.hits.times("paced");
    assert_eq!(times.len(), 9);
    // Arrivals may bunch up by network jitter, never by the harness starting early:
    // nine requests at 10 per second span at least 0.8 s.
    let span = *times.last().unwrap() - times[0];
    assert!(span >= Duration::from_millis(750), "{span:?}");
}

const READ_GOOD: &str = "name: reads over TLS\nrequires: [Patient.read]\nsteps:\n  - request: { method: GET, path: /Patient/good }\n    expect: { status: 200, json: [{ path: $.id, equals: good }] }\n";

#[test]
fn tls_trusts_only_what_the_target_says() {
    let server = tls::start("server.pem", "server.key", None);
    let dir = scratch("tls");
    let scenario = write(&dir, "s.yaml", READ_GOOD);

    let plain = write(
        &dir,
        "plain.yaml",
        &format!("base_url: {}\n", server.base_url),
    );
    let err = assert_stopped_before_running(with_target(&dir, &plain).arg(&scenario).run(), &dir);
    assert!(
        err.contains("error: tls: cannot connect to https://127.0.0.1:"),
        "{err}"
    );
    assert!(err.contains("tls.ca_file"), "{err}");

    let trusted = write(
        &dir,
        "trusted.yaml",
        &format!(
            "base_url: {}\ntls: {{ ca_file: {} }}\n",
            server.base_url,
            tls::fixture("ca.pem").display()
        ),
    );
    with_target(&dir, &trusted)
        .arg(&scenario)
        .run()
        .expect_code(0)
        .stdout_contains("1 passed");

    let missing_ca = write(
        &dir,
        "missing-ca.yaml",
        &format!(
            "base_url: {}\ntls: {{ ca_file: nope.pem }}\n",
            server.base_url
        ),
    );
    let dir2 = scratch("tls-missing-ca");
    let err =
        assert_stopped_before_running(with_target(&dir2, &missing_ca).arg(&scenario).run(), &dir2);
    assert!(err.contains("tls.ca_file: cannot read"), "{err}");
}

#[test]
fn insecure_accepts_an_untrusted_certificate_with_a_warning() {
    let server = tls::start("untrusted.pem", "untrusted.key", None);
    let dir = scratch("tls-insecure");
    let scenario = write(&dir, "s.yaml", READ_GOOD);
    let t = write(
        &dir,
        "t.yaml",
        &format!("base_url: {}\ntls: {{ insecure: true }}\n", server.base_url),
    );
    with_target(&dir, &t)
        .arg(&scenario)
        .run()
        .expect_code(0)
        .stderr_contains("warning: ")
        .stderr_contains("tls.insecure");
}

#[test]
fn mutual_tls_presents_the_client_certificate() {
    let server = tls::start("server.pem", "server.key", Some("ca.pem"));
    let dir = scratch("mtls");
    let scenario = write(&dir, "s.yaml", READ_GOOD);
    let ca = tls::fixture("ca.pem");
    let with_cert = write(
        &dir,
        "with.yaml",
        &format!(
            "base_url: {}\ntls:\n  ca_file: {}\n  client_cert: {}\n  client_key: {}\n",
            server.base_url,
            ca.display(),
            tls::fixture("client.pem").display(),
            tls::fixture("client.key").display()
        ),
    );
    with_target(&dir, &with_cert)
        .arg(&scenario)
        .run()
        .expect_code(0);

    let without = write(
        &dir,
        "without.yaml",
        &format!(
            "base_url: {}\ntls: {{ ca_file: {} }}\n",
            server.base_url,
            ca.display()
        ),
    );
    let dir2 = scratch("mtls-without");
    let err =
        assert_stopped_before_running(with_target(&dir2, &without).arg(&scenario).run(), &dir2);
    assert!(err.contains("error: tls:"), "{err}");
}

#[test]
fn listing_needs_no_credentials_and_sends_nothing() {
    let dir = scratch("list-without-secrets");
    // A closed port and an unset token variable: a run would stop at both.
    let t = write(
        &dir,
        "t.yaml",
        &format!(
            "base_url: {}\nauth: {{ type: bearer, token_env: FHIRCONF_TEST_UNSET_TOKEN }}\n",
            closed_port_url()
        ),
    );
    let out = with_target(&dir, &t)
        .args(["--list", "scenarios/r4-core"])
        .run()
        .expect_code(0);
    assert!(
        out.stdout().contains("scenarios/r4-core/metadata.yaml::"),
        "{}",
        out.transcript()
    );
    assert!(
        !dir.join("junit.xml").exists(),
        "a listing writes no report"
    );
    // The same target cannot run: the missing secret is named before anything is sent.
    let err =
        assert_stopped_before_running(with_target(&dir, &t).arg("scenarios/r4-core").run(), &dir);
    assert!(err.contains("FHIRCONF_TEST_UNSET_TOKEN"), "{err}");
}

#[test]
fn a_selection_that_matches_nothing_is_exit_4_unless_allowed() {
    let dir = scratch("empty-selection");
    let out = Fhirconf::new()
        .args(["run", "scenarios/r4-core", "--tags", "no-such-tag"])
        .reports(&dir)
        .run()
        .expect_code(4)
        .stderr_contains("no scenario selected to run");
    assert!(
        out.stderr().contains("left out by --tags/--exclude-tags"),
        "{}",
        out.transcript()
    );
    assert!(!dir.join("junit.xml").exists());
    Fhirconf::new()
        .args(["run", "scenarios/r4-core", "--filter", "no-such-name"])
        .args(["--allow-empty"])
        .reports(&dir)
        .run()
        .expect_code(0);
}

/// A token endpoint at another origin and path than the sandbox's (as an identity
/// provider would be), forwarding to the sandbox's `/auth/token`; counts its calls.
fn token_proxy(sbx: &SandboxServer) -> (String, std::sync::Arc<std::sync::atomic::AtomicUsize>) {
    use axum::routing::post;
    use std::sync::atomic::{AtomicUsize, Ordering};
    let calls = std::sync::Arc::new(AtomicUsize::new(0));
    let upstream = format!("{}/auth/token", sbx.base_url);
    let counted = std::sync::Arc::clone(&calls);
    let app = axum::Router::new().route(
        "/idp/oauth2/v1/token",
        post(
            move |headers: axum::http::HeaderMap, body: axum::body::Bytes| {
                let (upstream, counted) = (upstream.clone(), std::sync::Arc::clone(&counted));
                async move {
                    counted.fetch_add(1, Ordering::SeqCst);
                    let mut request = reqwest::Client::new().post(&upstream).body(body);
                    if let Some(ct) = headers.get("content-type") {
                        request = request.header("content-type", ct.as_bytes());
                    }
                    let answer = request.send().await.unwrap();
                    let status = answer.status().as_u16();
                    let body = answer.bytes().await.unwrap();
                    (
                        axum::http::StatusCode::from_u16(status).unwrap(),
                        [("content-type", "application/json")],
                        body,
                    )
                }
            },
        ),
    );
    let listener = sbx
        .runtime
        .block_on(tokio::net::TcpListener::bind("127.0.0.1:0"))
        .unwrap();
    let url = format!(
        "http://{}/idp/oauth2/v1/token",
        listener.local_addr().unwrap()
    );
    sbx.runtime.spawn(async move {
        let _ = axum::serve(listener, app).await;
    });
    (url, calls)
}

#[test]
fn the_auth_scenarios_use_the_targets_own_token_endpoint() {
    let sbx = start_sandbox(&[("auth", "on")]);
    let (token_url, calls) = token_proxy(&sbx);
    let dir = scratch("token-endpoint-elsewhere");
    let auth = format!(
        "auth:\n  type: client_credentials\n  token_url: {token_url}\n  client_id: fhirconf-sandbox\n  client_secret_env: FHIRCONF_TEST_SECRET\nfeatures: {{ auth: \"on\" }}\n"
    );
    let t = write(&dir, "t.yaml", &sandbox_target(&sbx.base_url, &auth));
    let out = with_target(&dir, &t)
        .env("FHIRCONF_TEST_SECRET", "sandbox-secret")
        .args([
            "scenarios/canvas/practitioner/auth.yaml",
            "scenarios/canvas/appointment/auth.yaml",
            "scenarios/ppr/auth.yaml",
        ])
        .run()
        .expect_code(0);
    assert!(
        out.stdout().contains("8 passed; 0 failed; 0 ignored"),
        "{}",
        out.transcript()
    );
    let n = calls.load(std::sync::atomic::Ordering::SeqCst);
    // The Practitioner and Appointment 403 scenarios fetch two tokens each.
    let (harness, scenarios) = (1, 2 * 2);
    assert!(
        n >= harness + scenarios,
        "{n} calls to the target's token endpoint"
    );
}

#[test]
fn inputs_lists_what_the_suites_need_and_what_the_target_leaves_unset() {
    let dir = scratch("inputs");
    let t = write(
        &dir,
        "t.yaml",
        "base_url: http://127.0.0.1:9\nvars: { patient_id: p1 }\nsecret_vars: { auth_client_secret: FHIRCONF_TEST_INPUTS_UNSET }\n",
    );
    let out = Fhirconf::new()
        .args(["inputs", "--target", s(&t), "-v", "scenarios"])
        .run()
        .expect_code(0)
        .stdout();
    let line = |name: &str| {
        out.lines()
            .find(|l| l.starts_with(&format!("{name} ")))
            .unwrap_or_else(|| panic!("no line for {name}:\n{out}"))
            .to_owned()
    };
    assert!(line("patient_id").contains("set in "), "{out}");
    assert!(
        line("auth_client_secret").contains("UNSET: $FHIRCONF_TEST_INPUTS_UNSET is not set"),
        "{out}"
    );
    assert!(
        line("ppr_issuer")
            .contains("UNSET: set it in the target's vars or with --var ppr_issuer=..."),
        "{out}"
    );
    // -v names the scenarios under each input.
    assert!(out.contains("\n    scenarios/ppr/"), "{out}");
    let last = out.lines().last().unwrap();
    // Only `patient_id` is given (the secret one names an unset variable).
    assert!(last.starts_with("25 inputs, 24 unset"), "{last}");
}

#[test]
fn init_writes_a_target_from_what_the_server_advertises() {
    let sbx = start_sandbox(&[("auth", "on"), ("versioning", "true")]);
    let dir = scratch("init");
    let out = dir.join("t.yaml");
    Fhirconf::new()
        .args(["init", "--base-url", &sbx.base_url, "-o", s(&out)])
        .run()
        .expect_code(0);
    let text = std::fs::read_to_string(&out).unwrap();
    // What the CapabilityStatement says: the token endpoint (oauth-uris), versioning.
    assert!(
        text.contains(&format!("  token_url: {}/auth/token\n", sbx.base_url)),
        "{text}"
    );
    assert!(
        text.contains("  auth: \"on\"") && text.contains("  versioning: true"),
        "{text}"
    );
    // Every input of the suites, commented, with what it is.
    assert!(
        text.contains(
            "  # ppr_shared_value: \"\"   # an identifier value registered under both issuers"
        ),
        "{text}"
    );
    assert!(
        text.contains("  # auth_client_secret: AUTH_CLIENT_SECRET"),
        "{text}"
    );
    // It loads, and the run it describes needs only the credentials the user fills in.
    let err =
        assert_stopped_before_running(with_target(&dir, &out).arg("scenarios/r4-core").run(), &dir);
    assert!(err.contains("FHIRCONF_CLIENT_SECRET"), "{err}");
    // Its auth block reaches the real token endpoint: `CHANGE-ME` is refused there.
    with_target(&dir, &out)
        .env("FHIRCONF_CLIENT_SECRET", "sandbox-secret")
        .arg("scenarios/r4-core")
        .run()
        .expect_code(2)
        .stderr_contains("the token endpoint refused the credentials");
    // An existing file is never overwritten.
    Fhirconf::new()
        .args(["init", "--base-url", &sbx.base_url, "-o", s(&out)])
        .run()
        .expect_code(2)
        .stderr_contains("exists; name a new file");
}

#[test]
fn secrets_too_short_to_mask_are_refused_before_anything_is_sent() {
    let dir = scratch("short-secrets");
    let err = assert_stopped_before_running(
        Fhirconf::new()
            .args(["run", "scenarios/r4-core", "--secret-var", "pin=123"])
            .reports(&dir)
            .run(),
        &dir,
    );
    assert!(
        err.contains("--secret-var `pin` is shorter than 4 characters"),
        "{err}"
    );
    let t = write(
        &dir,
        "t.yaml",
        "base_url: http://127.0.0.1:9\nsecret_vars: { pin: FHIRCONF_TEST_SHORT }\n",
    );
    let err = assert_stopped_before_running(
        with_target(&dir, &t)
            .arg("scenarios/r4-core")
            .env("FHIRCONF_TEST_SHORT", "abc")
            .run(),
        &dir,
    );
    assert!(
        err.contains("secret_vars.pin: environment variable `FHIRCONF_TEST_SHORT` holds fewer than 4 characters"),
        "{err}"
    );
    assert!(err.contains("t.yaml:2:"), "{err}");
}
