//! Evidence for certification and regression: `run --baseline`, `compare`,
//! `run --evidence` and `verify`, with the real binary against the test server.

use std::path::{Path, PathBuf};

use ed25519_dalek::SigningKey;
use ed25519_dalek::pkcs8::{EncodePrivateKey, EncodePublicKey, spki::der::pem::LineEnding};

use crate::common::*;

const SUITE: &str = "tests/cases/baseline";

fn p(path: &Path) -> &str {
    path.to_str().unwrap()
}

/// Runs the baseline suite with the given variables, reports in `dir`.
fn run_suite(dir: &Path, server: &TestServer, extra: &[&str]) -> Ran {
    Fhirconf::new()
        .args(["run", SUITE, "--base-url", &server.base_url, "--jobs", "1"])
        .args(extra)
        .reports(dir)
        .run()
}

/// The baseline: `reads the patient` and `needs an extra input` pass, `always fails`
/// and `fixed later` fail.
fn baseline(server: &TestServer, name: &str) -> PathBuf {
    let dir = scratch(name);
    run_suite(
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
    )
    .expect_code(1);
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
    run_suite(
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
    )
    .expect_code(0)
    .stderr_contains("baseline gate: no regressions, the run passes; 2 known failures tolerated")
    // The last line agrees with the exit code.
    .stderr_contains("failed (2 known from the baseline, 0 regressions)")
    .stderr_contains("; the run passes\n")
    // Known failures still show, one line each: no transcript in the log.
    .stdout_contains("always fails")
    .stdout_contains(
        "known failure (it failed in the baseline too; the reports have its details): ",
    );
    let log = run_suite(
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
    )
    .stdout();
    assert!(!log.contains("\n> GET "), "{log}");
    let summary = std::fs::read_to_string(dir.join("summary.md")).unwrap();
    assert!(summary.contains("| failed (known) |"), "{summary}");
    let run: serde_json::Value = run_record(&dir);
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
    let stderr = run_suite(
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
    )
    .expect_code(1)
    .stderr();
    assert!(
        stderr.contains("Regressions (1): did not fail in the baseline, fail now\n  - tests/cases/baseline/suite.yaml::reads the patient [CORE-READ]\n    passed → failed: step 'step 1: GET /Patient/{{ pid }}' (line 9): status: expected 200, got 404"),
        "{stderr}"
    );
    assert!(
        stderr.contains("baseline gate: 1 regression fails the run; 1 known failure tolerated"),
        "{stderr}"
    );
    assert!(
        stderr.contains("known from the baseline, 1 regression)")
            && stderr.contains("for want of input `extra` (1)")
            && stderr.contains("; the run fails"),
        "{stderr}"
    );
    let summary = std::fs::read_to_string(dir.join("summary.md")).unwrap();
    assert!(
        summary.contains("Regressions:\n\n- `tests/cases/baseline/suite.yaml::reads the patient`"),
        "{summary}"
    );
    let current = dir.join("run.json");

    // `compare` says the same, in text and in Markdown.
    let compare = Fhirconf::new().args(["compare", p(&base), p(&current)]);
    let normalized = |stdout: &str| {
        normalize(stdout, &server.base_url)
            .replace(p(&base), "BASELINE")
            .replace(p(&current), "CURRENT")
    };
    let out = compare.clone().run().expect_code(1);
    assert_golden(
        &normalized(&out.stdout()),
        &root().join("tests/golden/compare-cli.txt"),
    );
    let out = compare.args(["--format", "markdown"]).run().expect_code(1);
    assert_golden(
        &normalized(&out.stdout()),
        &root().join("tests/golden/compare-cli.md"),
    );

    // No change is no regression.
    let out = Fhirconf::new()
        .args(["compare", p(&base), p(&base)])
        .run()
        .expect_code(0);
    assert!(out.stdout().ends_with("\n0 regressions, 0 fixes, 0 new, 0 removed, 0 newly skipped; 2 known failures still failing\n"));
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
        let stderr = Fhirconf::new()
            .args(["compare", p(file), p(file)])
            .run()
            .expect_code(2)
            .stderr();
        assert!(
            stderr.starts_with(&format!("error: {} {says}", p(file))),
            "{stderr}"
        );
    }
    Fhirconf::new()
        .args(["compare", p(&dir.join("missing.json")), p(&old)])
        .run()
        .expect_code(2)
        .stderr_contains("cannot read");

    // An unreadable baseline stops `run` before anything is sent or written.
    let reports = scratch("baseline-bad");
    Fhirconf::new()
        .args(["run", SUITE, "--base-url", "http://127.0.0.1:9"])
        .args(["--baseline", p(&patient)])
        .reports(&reports)
        .run()
        .expect_code(2)
        .stderr_contains("is not a fhirconf run record");
    assert_eq!(std::fs::read_dir(&reports).unwrap().count(), 0);
}

#[test]
fn run_json_and_summary_md_match_their_goldens() {
    let server = start_server();
    let base = baseline(&server, "golden-baseline");
    let dir = scratch("golden-run");
    run_suite(
        &dir,
        &server,
        &[
            "--var",
            "pid=wrong-status",
            "--var",
            "fixed=good",
            "--baseline",
            p(&base),
            // The same record with and without the validation feature.
            "--validate",
            "off",
        ],
    )
    .expect_code(1);
    let fix = |t: &str| {
        normalize(t, &server.base_url)
            .replace(p(&base), "BASELINE")
            .replace(
                &format!("\"built_in\": {}", cfg!(feature = "validation")),
                "\"built_in\": BUILT",
            )
    };
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
    Fhirconf::new()
        .args(["run", SUITE, "--base-url", &server.base_url])
        .args(["-k", "always fails"])
        .args([
            "--junit",
            p(&junit),
            "--json",
            p(&json),
            "--markdown",
            p(&md),
        ])
        .args(["--html", p(&dir.join("index.html"))])
        .env("GITHUB_STEP_SUMMARY", &step_summary)
        .run()
        .expect_code(1);
    let appended = std::fs::read_to_string(&step_summary).unwrap();
    let summary = std::fs::read_to_string(&md).unwrap();
    assert_eq!(appended, format!("earlier step\n{summary}\n"));
    assert!(
        summary.contains("| `CORE-READ-404` | failed | ✘ always fails |"),
        "{summary}"
    );
}

/// A fixed key pair in the PEM forms openssl writes.
fn keys(dir: &Path) -> (PathBuf, PathBuf, PathBuf) {
    let write = |name: &str, key: &SigningKey, public: bool| {
        let path = dir.join(name);
        let pem = if public {
            key.verifying_key()
                .to_public_key_pem(LineEnding::LF)
                .unwrap()
        } else {
            key.to_pkcs8_pem(LineEnding::LF).unwrap().to_string()
        };
        std::fs::write(&path, pem).unwrap();
        path
    };
    let key = SigningKey::from_bytes(&[7; 32]);
    let other = SigningKey::from_bytes(&[8; 32]);
    (
        write("key.pem", &key, false),
        write("pub.pem", &key, true),
        write("other-pub.pem", &other, true),
    )
}

fn verify(dir: &Path, key: Option<&Path>) -> (Option<i32>, String) {
    let mut args = vec!["verify", p(dir)];
    if let Some(k) = key {
        args.extend(["--key", p(k)]);
    }
    let out = Fhirconf::new().args(args).run();
    (out.code(), out.stdout() + &out.stderr())
}

#[test]
fn evidence_folder_is_complete_signed_and_verify_names_what_was_altered() {
    let server = start_server();
    let work = scratch("evidence");
    let (key, public, other) = keys(&work);
    let evidence = work.join("evidence");
    let reports = work.join("reports");
    std::fs::create_dir_all(&reports).unwrap();
    Fhirconf::new()
        .args(["run", "tests/cases/passing", "--base-url", &server.base_url])
        .args(["--var", "tenant=acme"])
        .args(["--evidence", p(&evidence), "--evidence-key", p(&key)])
        .reports(&reports)
        .run()
        .expect_code(0)
        .stderr_contains("evidence: ");

    // The reports are the same bytes as in reports/; every input file is copied.
    for name in ["run.json", "junit.xml", "summary.md"] {
        assert_eq!(
            std::fs::read(evidence.join(name)).unwrap(),
            std::fs::read(reports.join(name)).unwrap(),
            "{name}"
        );
    }
    for copied in [
        "files/tests/cases/passing/json-assertions.yaml",
        "files/tests/cases/passing/fixtures/patient.json",
    ] {
        let original = copied.strip_prefix("files/").unwrap();
        assert_eq!(
            std::fs::read(evidence.join(copied)).unwrap(),
            std::fs::read(root().join(original)).unwrap(),
            "{copied}"
        );
    }
    let manifest: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(evidence.join("manifest.json")).unwrap())
            .unwrap();
    let listed: Vec<&str> = manifest["files"]
        .as_array()
        .unwrap()
        .iter()
        .map(|f| f["path"].as_str().unwrap())
        .collect();
    assert!(
        listed.contains(&"run.json") && listed.contains(&"junit.xml"),
        "{listed:?}"
    );
    assert_eq!(
        std::fs::read(evidence.join("manifest.sig")).unwrap().len(),
        64
    );

    let (code, said) = verify(&evidence, None);
    assert_eq!(code, Some(0), "{said}");
    assert!(said.contains("signed, signature not checked"), "{said}");
    let (code, said) = verify(&evidence, Some(&public));
    assert_eq!(code, Some(0), "{said}");
    assert!(
        said.contains("ok: every file matches the manifest; signature valid"),
        "{said}"
    );
    let (code, said) = verify(&evidence, Some(&key));
    assert_eq!(code, Some(0), "the private key also verifies: {said}");
    let (code, said) = verify(&evidence, Some(&other));
    assert_eq!(code, Some(1), "{said}");
    assert!(
        said.contains("the signature does not match this key"),
        "{said}"
    );

    // openssl checks the same signature, when it is here.
    let openssl = std::process::Command::new("openssl")
        .args([
            "pkeyutl",
            "-verify",
            "-pubin",
            "-inkey",
            p(&public),
            "-rawin",
            "-in",
        ])
        .arg(evidence.join("manifest.json"))
        .arg("-sigfile")
        .arg(evidence.join("manifest.sig"))
        .output();
    if let Ok(o) = openssl {
        assert!(
            o.status.success(),
            "openssl: {}",
            text(&o.stdout) + &text(&o.stderr)
        );
    }

    // Alter one file, delete another, add a third.
    let altered = "files/tests/cases/passing/json-assertions.yaml";
    let mut bytes = std::fs::read(evidence.join(altered)).unwrap();
    bytes.extend_from_slice(b"# edited\n");
    std::fs::write(evidence.join(altered), bytes).unwrap();
    std::fs::remove_file(evidence.join("junit.xml")).unwrap();
    std::fs::write(evidence.join("files/notes.txt"), "added later").unwrap();
    let (code, said) = verify(&evidence, Some(&public));
    assert_eq!(code, Some(1), "{said}");
    for line in [
        format!("altered: {altered} (its SHA-256 differs from the manifest)"),
        "missing: junit.xml".to_owned(),
        "extra:   files/notes.txt (not in the manifest)".to_owned(),
        "FAILED: 3 problems found; signature valid".to_owned(),
    ] {
        assert!(said.contains(&line), "no `{line}` in\n{said}");
    }

    // A manifest edited to match is caught by the signature.
    let manifest_path = evidence.join("manifest.json");
    let edited = std::fs::read_to_string(&manifest_path)
        .unwrap()
        .replace("\"summary.md\"", "\"summary.md\" ");
    std::fs::write(&manifest_path, edited).unwrap();
    let (code, said) = verify(&evidence, Some(&public));
    assert_eq!(code, Some(1), "{said}");
    assert!(
        said.contains("altered: manifest.json or manifest.sig"),
        "{said}"
    );
}

#[test]
fn evidence_goes_only_to_new_empty_or_earlier_evidence_folders() {
    let server = start_server();
    let work = scratch("evidence-dest");
    let reports = work.join("reports");
    std::fs::create_dir_all(&reports).unwrap();
    let evidence = work.join("evidence");
    let with_evidence = |dir: &Path| {
        Fhirconf::new()
            .args(["run", "tests/cases/passing", "--base-url", &server.base_url])
            .args(["-k", "every JSONPath", "--evidence", p(dir)])
            .reports(&reports)
    };
    with_evidence(&evidence).run().expect_code(0);
    // An earlier evidence folder is replaced whole.
    with_evidence(&evidence).run().expect_code(0);
    assert_eq!(verify(&evidence, None).0, Some(0));

    // A folder with other files is refused before anything runs.
    std::fs::write(evidence.join("mine.txt"), "keep me").unwrap();
    std::fs::remove_file(reports.join("run.json")).unwrap();
    with_evidence(&evidence)
        .run()
        .expect_code(2)
        .stderr_contains("it is not empty and not an earlier evidence folder");
    assert!(!reports.join("run.json").exists(), "nothing ran");
    assert_eq!(
        std::fs::read_to_string(evidence.join("mine.txt")).unwrap(),
        "keep me"
    );

    // A bad signing key is refused before anything runs.
    let bad_key = work.join("bad.pem");
    std::fs::write(&bad_key, "not a key").unwrap();
    let fresh = work.join("fresh");
    with_evidence(&fresh)
        .args(["--evidence-key", p(&bad_key)])
        .run()
        .expect_code(2)
        .stderr_contains("is not an Ed25519 private key in PKCS#8 PEM");
    assert!(!fresh.exists());

    // verify: a folder without a manifest, or a key that is not one, is unusable input.
    let (code, said) = verify(&reports, None);
    assert_eq!(code, Some(2), "{said}");
    assert!(said.contains("manifest.json is missing"), "{said}");
    let (code, said) = verify(&evidence, Some(&bad_key));
    assert_eq!(code, Some(2), "{said}");
    assert!(said.contains("is not an Ed25519 public key"), "{said}");
}

#[test]
fn no_report_overwrites_the_baseline_or_the_signing_key() {
    let server = start_server();
    let base = baseline(&server, "guard-inputs");
    let before = std::fs::read(&base).unwrap();
    let dir = scratch("guard-inputs-run");
    let (key, _, _) = keys(&dir);
    let key_before = std::fs::read(&key).unwrap();
    for (flag, target) in [("--json", &base), ("--markdown", &key)] {
        Fhirconf::new()
            .args([
                "run",
                "tests/cases/baseline",
                "--base-url",
                &server.base_url,
            ])
            .args(["--baseline", p(&base), "--evidence", p(&dir.join("ev"))])
            .args(["--evidence-key", p(&key)])
            .reports(&dir)
            .args([flag, p(target)])
            .run()
            .expect_code(2)
            .stderr_contains("an input of this run: a report would overwrite it");
    }
    assert_eq!(std::fs::read(&base).unwrap(), before);
    assert_eq!(std::fs::read(&key).unwrap(), key_before);
}
