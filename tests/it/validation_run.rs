//! FHIR validation in a run: `expect.valid`, `--validate off|warn|error`, the target's
//! `validate`, `validation.ignore` and `profiles`, and how the reports show issues.
//! A test server's `/mirror` answers with the body it was sent, so each scenario
//! chooses the resource it gets back.

use crate::common::*;

/// One scenario that POSTs `resource` to `/mirror`, with `expect` under the step.
fn mirror_suite(dir: &std::path::Path, resource: &str, expect: &str) -> String {
    write_file(
        dir,
        "suite.yaml",
        &format!(
            "scenarios:\n  - name: mirrored\n    steps:\n      - request: {{ method: POST, path: /mirror, json: {resource} }}\n        expect:\n          status: 200\n{expect}"
        ),
    )
}

fn target(dir: &std::path::Path, server: &TestServer, extra: &str) -> String {
    write_file(
        dir,
        "target.yaml",
        &format!("base_url: {}\n{extra}", server.base_url),
    )
}

/// `run --target TARGET SUITE` with every report in `dir`.
fn run_suite(target: &str, suite: &str, dir: &std::path::Path) -> Fhirconf {
    Fhirconf::new()
        .args(["run", "--target", target, suite])
        .reports(dir)
}

const GENDER_M: &str = r#"{ resourceType: Practitioner, id: p1, gender: M }"#;

#[cfg(not(feature = "validation"))]
mod without_the_feature {
    use super::*;

    #[test]
    fn a_scenario_with_valid_is_skipped_saying_how_to_get_validation() {
        let server = start_server();
        let dir = scratch("valid-without-feature");
        let suite = mirror_suite(&dir, GENDER_M, "          valid: true\n");
        let t = target(&dir, &server, "");
        run_suite(&t, &suite, &dir).run().expect_code(0);
        let record = run_record(&dir);
        assert_eq!(verdicts(&record), ["skipped"]);
        let reason = record["scenarios"][0]["reason"].as_str().unwrap();
        assert!(reason.contains("--features validation"), "{reason}");
        assert_eq!(record["validation"]["built_in"], false);
        assert_eq!(record["validation"]["mode"], "off");
    }

    #[test]
    fn validate_error_is_refused_before_anything_is_sent() {
        let server = start_server();
        let dir = scratch("validate-error-without-feature");
        let suite = mirror_suite(&dir, GENDER_M, "");
        for (args, from) in [
            (vec!["--validate", "error"], "--validate error"),
            (vec![], "target.yaml: `validate` error"),
        ] {
            let extra = if args.is_empty() {
                "validate: error\n"
            } else {
                ""
            };
            let t = target(&dir, &server, extra);
            run_suite(&t, &suite, &dir)
                .args(args)
                .run()
                .expect_code(2)
                .stderr_contains(from)
                .stderr_contains("--features validation");
            assert!(!dir.join("run.json").exists());
        }
    }
}

#[cfg(feature = "validation")]
mod with_the_feature {
    use super::*;

    const US_CORE_URL: &str =
        "http://hl7.org/fhir/us/core/StructureDefinition/us-core-practitioner";

    #[test]
    fn warn_shows_issues_in_every_report_and_fails_nothing() {
        let server = start_server();
        let dir = scratch("validate-warn");
        let suite = mirror_suite(&dir, GENDER_M, "");
        let t = target(&dir, &server, "");
        run_suite(&t, &suite, &dir)
            .run()
            .expect_code(0)
            .stderr_contains("validation (--validate warn): 1 error, 0 warnings in 1 response");
        let record = run_record(&dir);
        assert_eq!(verdicts(&record), ["passed"]);
        assert_eq!(record["validation"]["mode"], "warn");
        let issues = &record["scenarios"][0]["steps"][0]["validation"];
        assert_eq!(issues[0]["severity"], "error", "{issues}");
        assert_eq!(issues[0]["location"], "Practitioner.gender", "{issues}");
        let summary = std::fs::read_to_string(dir.join("summary.md")).unwrap();
        assert!(summary.contains("| 1 | 0 | 0 | 1 |"), "{summary}");
        let junit = std::fs::read_to_string(dir.join("junit.xml")).unwrap();
        assert!(junit.contains("error Practitioner.gender: "), "{junit}");
        let html = std::fs::read_to_string(dir.join("index.html")).unwrap();
        assert!(html.contains("<code>Practitioner.gender</code>"));
    }

    #[test]
    fn error_fails_the_step_with_the_issue_in_the_junit_failure() {
        let server = start_server();
        let dir = scratch("validate-error");
        let suite = mirror_suite(&dir, GENDER_M, "");
        let t = target(&dir, &server, "validate: error\n");
        run_suite(&t, &suite, &dir).run().expect_code(1);
        let record = run_record(&dir);
        assert_eq!(verdicts(&record), ["failed"]);
        let reason = record["scenarios"][0]["reason"].as_str().unwrap();
        assert!(
            reason.contains("FHIR R4 validation (--validate error)")
                && reason.contains("Practitioner.gender"),
            "{reason}"
        );
        assert_schema_valid(&dir.join("junit.xml"));
        // --validate off wins over the target.
        run_suite(&t, &suite, &dir)
            .args(["--validate", "off"])
            .run()
            .expect_code(0);
        let record = run_record(&dir);
        assert!(record["scenarios"][0]["steps"][0]["validation"].is_null());
    }

    #[test]
    fn a_secret_an_issue_quotes_is_masked_in_every_output() {
        let server = start_server();
        let dir = scratch("validate-secret");
        let secret = "Sup3rSecretGenderValue";
        let suite = mirror_suite(
            &dir,
            r#"{ resourceType: Practitioner, id: p1, gender: "{{ code }}" }"#,
            "",
        );
        let t = target(&dir, &server, "validate: error\n");
        let out = run_with_reports(
            &dir,
            &[
                "--target",
                &t,
                "--secret-var",
                &format!("code={secret}"),
                &suite,
            ],
        );
        assert_eq!(out.status.code(), Some(1), "{}", text(&out.stderr));
        let record = run_record(&dir);
        let message = record["scenarios"][0]["steps"][0]["validation"][0]["message"]
            .as_str()
            .unwrap();
        assert!(
            message.contains("is not in the required value set"),
            "{message}"
        );
        for (name, content) in every_output(&out, &dir) {
            assert!(!content.contains(secret), "{name} shows the secret");
        }
    }

    #[test]
    fn ignored_issues_are_suppressed_and_counted_not_dropped() {
        let server = start_server();
        let dir = scratch("validate-ignore");
        let suite = mirror_suite(&dir, GENDER_M, "");
        let t = target(
            &dir,
            &server,
            "validate: error\nvalidation:\n  ignore:\n    - { path: 'gender$', message: required value set }\n",
        );
        run_suite(&t, &suite, &dir)
            .run()
            .expect_code(0)
            .stderr_contains("0 errors, 0 warnings, 1 suppressed in 1 response");
        let record = run_record(&dir);
        assert_eq!(
            record["scenarios"][0]["steps"][0]["validation"][0]["suppressed"],
            true
        );
        assert_eq!(record["validation"]["ignore_rules"], 1);
    }

    #[test]
    fn an_empty_ignore_rule_is_a_located_target_error() {
        let server = start_server();
        let dir = scratch("validate-ignore-empty");
        let suite = mirror_suite(&dir, GENDER_M, "");
        let t = target(&dir, &server, "validation:\n  ignore:\n    - {}\n");
        run_suite(&t, &suite, &dir)
            .run()
            .expect_code(2)
            .stderr_contains("target.yaml:4:7")
            .stderr_contains("needs at least one of message, path, profile");
    }

    #[test]
    fn valid_with_the_built_in_us_core_profile_fails_an_incomplete_practitioner() {
        let server = start_server();
        let dir = scratch("valid-us-core");
        let t = target(&dir, &server, "validate: off\n");
        let expect = format!("          valid: {{ profile: \"{US_CORE_URL}\" }}\n");
        let complete = r#"{ resourceType: Practitioner, id: p1, identifier: [{ system: "http://hl7.org/fhir/sid/us-npi", value: "1234567893" }], name: [{ family: Kildare }] }"#;
        let suite = mirror_suite(&dir, complete, &expect);
        run_suite(&t, &suite, &dir).run().expect_code(0);
        let bare = r#"{ resourceType: Practitioner, id: p1, name: [{ given: [James] }] }"#;
        let suite = mirror_suite(&dir, bare, &expect);
        run_suite(&t, &suite, &dir).run().expect_code(1);
        let record = run_record(&dir);
        let check = &record["scenarios"][0]["steps"][0]["checks"][1];
        assert_eq!(check["what"], format!("valid against {US_CORE_URL}"));
        assert_eq!(check["passed"], false);
        let actual = check["actual"].as_str().unwrap();
        assert!(actual.contains("identifier"), "{actual}");
        assert!(actual.contains("family"), "{actual}");
        assert_eq!(check["line"], 7);
    }

    #[test]
    fn valid_on_a_body_that_is_not_a_resource_fails_saying_so() {
        let server = start_server();
        let dir = scratch("valid-not-fhir");
        let t = target(&dir, &server, "");
        let suite = mirror_suite(&dir, "{ hello: world }", "          valid: true\n");
        run_suite(&t, &suite, &dir).run().expect_code(1);
        let record = run_record(&dir);
        let reason = record["scenarios"][0]["reason"].as_str().unwrap();
        assert!(
            reason.contains("not validated: a JSON body that is not a FHIR resource"),
            "{reason}"
        );
    }

    #[test]
    fn a_profile_no_file_defines_is_exit_2_naming_the_scenario_line() {
        let server = start_server();
        let dir = scratch("valid-unknown-profile");
        let t = target(&dir, &server, "");
        let suite = mirror_suite(
            &dir,
            GENDER_M,
            "          valid: { profile: \"http://example.org/StructureDefinition/nope\" }\n",
        );
        run_suite(&t, &suite, &dir)
            .run()
            .expect_code(2)
            .stderr_contains("suite.yaml:7: `valid.profile` names http://example.org/StructureDefinition/nope, which no loaded profile defines")
            .stderr_contains("`profiles:`");
        assert!(!dir.join("run.json").exists());
    }

    #[test]
    fn a_target_profile_that_does_not_load_is_exit_2_naming_the_file() {
        let server = start_server();
        let dir = scratch("profiles-bad");
        let suite = mirror_suite(&dir, GENDER_M, "");
        write_file(&dir, "not-a-profile.json", r#"{"resourceType": "Patient"}"#);
        let t = target(&dir, &server, "profiles: [not-a-profile.json]\n");
        run_suite(&t, &suite, &dir)
            .run()
            .expect_code(2)
            .stderr_contains("a profile cannot be loaded: ")
            .stderr_contains("not-a-profile.json");
        assert!(!dir.join("run.json").exists());
    }

    #[test]
    fn a_profile_from_an_npm_package_tarball_is_applied() {
        let server = start_server();
        let dir = scratch("profiles-tgz");
        // A package in the form IGs publish: package/package.json and the resources.
        let package = dir.join("pkg/package");
        std::fs::create_dir_all(&package).unwrap();
        let mut sd: serde_json::Value = serde_json::from_str(
            &std::fs::read_to_string(
                root().join("profiles/us-core-3.1.1/StructureDefinition-us-core-practitioner.json"),
            )
            .unwrap(),
        )
        .unwrap();
        sd["url"] = "http://example.org/StructureDefinition/my-practitioner".into();
        std::fs::write(
            package.join("StructureDefinition-mine.json"),
            sd.to_string(),
        )
        .unwrap();
        std::fs::write(
            package.join("package.json"),
            r#"{"name": "example.mine", "version": "1.0.0"}"#,
        )
        .unwrap();
        let made = std::process::Command::new("tar")
            .args(["czf", "mine.tgz", "-C", "pkg", "package"])
            .current_dir(&dir)
            .status()
            .unwrap();
        assert!(made.success());
        let t = target(&dir, &server, "validate: off\nprofiles: [mine.tgz]\n");
        let suite = mirror_suite(
            &dir,
            r#"{ resourceType: Practitioner, id: p1 }"#,
            "          valid: { profile: \"http://example.org/StructureDefinition/my-practitioner\" }\n",
        );
        run_suite(&t, &suite, &dir).run().expect_code(1);
        let record = run_record(&dir);
        assert!(
            record["validation"]["profiles"]
                .as_array()
                .unwrap()
                .iter()
                .any(|p| p == "http://example.org/StructureDefinition/my-practitioner"),
            "{}",
            record["validation"]
        );
        let reason = record["scenarios"][0]["reason"].as_str().unwrap();
        assert!(reason.contains("identifier"), "{reason}");
    }
}

/// Every response of the built-in sandbox is valid R4: the whole built-in suite under
/// `--validate error` passes (CORE-VALID-RESOURCE and PRAC-USCORE-PROFILE hold for
/// the sandbox itself, not only for the scenarios that check them).
#[cfg(feature = "validation")]
#[test]
fn the_built_in_suites_pass_against_the_sandbox_under_validate_error() {
    let dir = scratch("sandbox-validate-error");
    let ran = Fhirconf::new()
        .args(["run", "--validate", "error"])
        .reports(&dir)
        .run();
    let record = run_record(&dir);
    let failed: Vec<String> = record["scenarios"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|s| s["verdict"] != "passed" && s["verdict"] != "skipped")
        .map(|s| format!("{}: {}", s["id"], s["reason"]))
        .collect();
    assert!(
        failed.is_empty(),
        "{}\n{}",
        failed.join("\n"),
        ran.transcript()
    );
    assert_eq!(record["validation"]["mode"], "error");
    ran.expect_code(0)
        .stderr_contains("validation (--validate error): no issue in any response");
}
