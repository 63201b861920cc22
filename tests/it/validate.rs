//! `fhirconf validate`: local FHIR JSON checked offline. With the `validation` feature
//! it validates (exit 0/1/2); without it, it says in one line how to get it (exit 2).

use crate::common::*;

#[cfg(not(feature = "validation"))]
#[test]
fn without_the_feature_it_says_how_to_build_with_validation() {
    let ran = Fhirconf::new()
        .args([
            "validate",
            "crates/fhir-check/tests/corpus/valid/patient.json",
        ])
        .run()
        .expect_code(2)
        .stderr_contains("--features validation");
    assert_eq!(ran.stderr().lines().count(), 1, "{}", ran.transcript());
    assert!(ran.stdout().is_empty(), "{}", ran.transcript());
}

#[cfg(feature = "validation")]
mod with_validation {
    use super::*;

    const CORPUS: &str = "crates/fhir-check/tests/corpus";
    const US_CORE: &str = "profiles/us-core-3.1.1/StructureDefinition-us-core-practitioner.json";
    const US_CORE_URL: &str =
        "http://hl7.org/fhir/us/core/StructureDefinition/us-core-practitioner";

    #[test]
    fn valid_files_exit_0() {
        Fhirconf::new()
            .arg("validate")
            .args(
                ["patient", "practitioner", "appointment", "bundle-searchset"]
                    .map(|f| format!("{CORPUS}/valid/{f}.json")),
            )
            .run()
            .expect_code(0)
            .stdout_contains("validate: 4 files, 0 with errors: 0 errors, 0 warnings");
    }

    #[test]
    fn an_invalid_file_prints_rustc_style_issues_and_exits_1() {
        Fhirconf::new()
            .args(["validate", &format!("{CORPUS}/invalid/gender-m.json")])
            .args([format!("{CORPUS}/valid/patient.json")])
            .run()
            .expect_code(1)
            .stdout_contains(
                "error: \"M\" is not in the required value set http://hl7.org/fhir/ValueSet/administrative-gender\n  --> crates/fhir-check/tests/corpus/invalid/gender-m.json: Practitioner.gender",
            )
            .stdout_contains("validate: 2 files, 1 with errors: 1 error, 0 warnings");
    }

    #[test]
    fn a_bad_bundle_entry_is_named_by_its_index() {
        Fhirconf::new()
            .args([
                "validate",
                &format!("{CORPUS}/invalid/bundle-bad-entry.json"),
            ])
            .run()
            .expect_code(1)
            .stdout_contains("bundle-bad-entry.json: Bundle.entry[3].resource.name");
    }

    #[test]
    fn an_invariant_names_its_rule() {
        Fhirconf::new()
            .args([
                "validate",
                &format!("{CORPUS}/invalid/appointment-app-3.json"),
            ])
            .run()
            .expect_code(1)
            .stdout_contains("error[app-3]: ");
    }

    #[test]
    fn a_missing_file_exits_2_and_the_others_are_still_checked() {
        Fhirconf::new()
            .args([
                "validate",
                "no/such/file.json",
                &format!("{CORPUS}/invalid/gender-m.json"),
            ])
            .run()
            .expect_code(2)
            .stderr_contains("cannot read no/such/file.json: no such file or folder")
            .stdout_contains("Practitioner.gender");
    }

    #[test]
    fn text_that_is_not_json_is_an_error_with_its_position() {
        Fhirconf::new()
            .args(["validate", "README.md"])
            .run()
            .expect_code(1)
            .stdout_contains("error: not JSON: ")
            .stdout_contains("--> README.md:1:1");
    }

    #[test]
    fn a_us_core_profile_from_a_package_is_applied() {
        let dir = scratch("validate-us-core");
        let bare = dir.join("practitioner.json");
        std::fs::write(
            &bare,
            r#"{"resourceType": "Practitioner", "id": "p1", "gender": "female"}"#,
        )
        .unwrap();
        Fhirconf::new()
            .args(["validate", "--package", US_CORE, "--profile", US_CORE_URL])
            .arg(&bare)
            .arg(format!("{CORPUS}/valid/practitioner.json"))
            .run()
            .expect_code(1)
            .stdout_contains("identifier is required")
            .stdout_contains(&format!("   = profile: {US_CORE_URL}"))
            .stdout_contains("2 files, 1 with errors");
    }

    #[test]
    fn a_profile_that_is_not_loaded_is_exit_2() {
        Fhirconf::new()
            .args([
                "validate",
                "--profile",
                "http://example.org/StructureDefinition/nope",
            ])
            .arg(format!("{CORPUS}/valid/practitioner.json"))
            .run()
            .expect_code(2)
            .stderr_contains("is not loaded");
    }

    #[test]
    fn us_core_practitioner_is_built_in() {
        Fhirconf::new()
            .args(["validate", "--profile", US_CORE_URL])
            .arg(format!("{CORPUS}/valid/practitioner.json"))
            .run()
            .expect_code(0);
        let dir = scratch("validate-built-in-us-core");
        let bare = write_file(
            &dir,
            "bare.json",
            r#"{"resourceType": "Practitioner", "id": "p1", "name": [{"family": "Doe"}]}"#,
        );
        Fhirconf::new()
            .args(["validate", "--profile", US_CORE_URL, &bare])
            .run()
            .expect_code(1)
            .stdout_contains("identifier is required")
            .stdout_contains(&format!("   = profile: {US_CORE_URL}"));
    }

    #[test]
    fn a_package_that_is_not_a_structure_definition_is_exit_2_naming_it() {
        let patient = format!("{CORPUS}/valid/patient.json");
        Fhirconf::new()
            .args(["validate", "--package", &patient, &patient])
            .run()
            .expect_code(2)
            .stderr_contains("patient.json: item 1 is not a StructureDefinition");
    }
}
