//! HL7 TestScript: run as it is (`fhirconf run SCRIPT.json`), imported to YAML
//! (`fhirconf import testscript`), and refused element by element when it uses what
//! fhirconf does not support. The scripts run against the built-in sandbox.

use serde_json::Value;

use crate::common::*;

const CRUD: &str = "tests/cases/testscript/patient-crud.json";

/// `CRUD` with `edit` applied, written into `dir` beside a copy of its fixture.
fn edited_crud(dir: &std::path::Path, edit: impl FnOnce(&mut Value)) -> String {
    let mut script: Value =
        serde_json::from_str(&std::fs::read_to_string(root().join(CRUD)).unwrap()).unwrap();
    edit(&mut script);
    std::fs::copy(
        root().join("tests/cases/testscript/Patient-chalmers.json"),
        dir.join("Patient-chalmers.json"),
    )
    .unwrap();
    write_file(dir, "script.json", &script.to_string())
}

/// Runs `script` natively and as imported YAML; both verdict lists.
fn native_and_imported(dir: &std::path::Path, script: &str) -> (Value, Value) {
    let native = dir.join("native");
    let imported = dir.join("imported");
    let yaml_dir = dir.join("yaml");
    for d in [&native, &imported] {
        std::fs::create_dir_all(d).unwrap();
    }
    Fhirconf::new().args(["run", script]).reports(&native).run();
    Fhirconf::new()
        .args(["import", "testscript", script, "--out"])
        .arg(&yaml_dir)
        .run()
        .expect_code(0);
    let stem = std::path::Path::new(script)
        .file_stem()
        .unwrap()
        .to_str()
        .unwrap();
    let yaml = yaml_dir.join(format!("{stem}.yaml"));
    Fhirconf::new()
        .arg("run")
        .arg(&yaml)
        .reports(&imported)
        .run();
    (run_record(&native), run_record(&imported))
}

#[test]
fn a_testscript_runs_natively_against_the_sandbox_and_passes() {
    let dir = scratch("testscript-native");
    Fhirconf::new()
        .args(["run", CRUD])
        .reports(&dir)
        .run()
        .expect_code(0);
    let record = run_record(&dir);
    assert_eq!(
        named_verdicts(&record),
        [
            ("read it back".to_owned(), "passed".to_owned()),
            ("search it by _id".to_owned(), "passed".to_owned())
        ]
    );
    // The file's digest is the TestScript's own bytes.
    let bytes = std::fs::read(root().join(CRUD)).unwrap();
    let sha = record["files"][0]["sha256"].as_str().unwrap_or_default();
    assert_eq!(sha.len(), 64, "{}", record["files"]);
    use sha2::Digest;
    let expected: String = sha2::Sha256::digest(&bytes)
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect();
    assert_eq!(sha, expected);
}

#[test]
fn the_imported_yaml_gives_the_verdicts_the_script_gives_passing_or_failing() {
    let dir = scratch("testscript-same-verdicts");
    let passing = edited_crud(&dir, |_| {});
    let (native, imported) = native_and_imported(&dir.join("pass"), &passing);
    assert_eq!(named_verdicts(&native), named_verdicts(&imported));
    assert!(
        named_verdicts(&native).iter().all(|(_, v)| v == "passed"),
        "{native}"
    );

    // The read's family name expected wrong: that test fails, the search still passes.
    let failing_dir = dir.join("fail");
    std::fs::create_dir_all(&failing_dir).unwrap();
    let failing = edited_crud(&failing_dir, |s| {
        s["test"][0]["action"][4]["assert"]["value"] = Value::from("Smith");
    });
    let (native, imported) = native_and_imported(&failing_dir, &failing);
    assert_eq!(named_verdicts(&native), named_verdicts(&imported));
    assert_eq!(
        named_verdicts(&native),
        [
            ("read it back".to_owned(), "failed".to_owned()),
            ("search it by _id".to_owned(), "passed".to_owned())
        ]
    );
    let read = &native["scenarios"][0]["steps"][1];
    let message = read["message"].as_str().unwrap_or_default();
    assert!(message.contains("Smith"), "{read}");
}

/// The R4 specification's own example (delete, update-as-create, read, ten asserts,
/// compareToSourceId, XPath paths, a warning-only assert): the same verdicts run as it
/// is and imported (passed with validation built in, skipped for want of it without).
#[test]
fn the_specification_example_gives_the_same_verdicts_imported() {
    let dir = scratch("testscript-spec-example");
    let corpus = root().join("tests/fixtures/testscript/r4-spec");
    for file in ["TestScript-testscript-example.json", "Patient-example.json"] {
        std::fs::copy(corpus.join(file), dir.join(file)).unwrap();
    }
    let script = dir.join("TestScript-testscript-example.json");
    let (native, imported) = native_and_imported(&dir, script.to_str().unwrap());
    assert_eq!(named_verdicts(&native), named_verdicts(&imported));
    let expected = if cfg!(feature = "validation") {
        "passed"
    } else {
        "skipped"
    };
    assert_eq!(
        named_verdicts(&native),
        [("Read Patient".to_owned(), expected.to_owned())]
    );
}

#[test]
fn a_failed_warning_only_assert_is_reported_and_fails_nothing() {
    let dir = scratch("testscript-warning-only");
    let script = edited_crud(&dir, |s| {
        s["test"][0]["action"][10]["assert"]["headerField"] = Value::from("X-Not-Sent");
    });
    Fhirconf::new()
        .args(["run", &script])
        .reports(&dir)
        .run()
        .expect_code(0);
    let record = run_record(&dir);
    let read = &record["scenarios"][0]["steps"][1];
    assert_eq!(read["verdict"], "passed", "{read}");
    let message = read["message"].as_str().unwrap_or_default();
    assert!(
        message.starts_with("warning: header x-not-sent"),
        "{message}"
    );
    let warned = read["checks"]
        .as_array()
        .unwrap()
        .iter()
        .any(|c| c["warning"] == true && c["passed"] == false);
    assert!(warned, "{read}");
}

#[test]
fn what_is_not_supported_is_refused_by_check_element_by_element() {
    let dir = scratch("testscript-refused");
    let script = edited_crud(&dir, |s| {
        s["destination"] = serde_json::json!([{ "index": 1 }, { "index": 2 }]);
        s["setup"]["action"][0]["operation"]["contentType"] = Value::from("text/turtle");
        s["test"][0]["action"][1]["assert"]["direction"] = Value::from("request");
        s["test"][1]["action"][0]["operation"]["type"]["code"] = Value::from("$everything");
        s["test"][1]["action"][4]["assert"]["operator"] = Value::from("greaterThan");
    });
    let ran = Fhirconf::new()
        .args(["check", &script])
        .run()
        .expect_code(2);
    let stderr = ran.stderr();
    for element in [
        "TestScript.destination: more than one destination",
        "TestScript.setup.action[0].operation.contentType: `text/turtle`: fhirconf sends bodies as FHIR JSON or XML only",
        "TestScript.test[0].action[1].assert.response: on the request (direction: request), only",
        "TestScript.test[1].action[0].operation.type: operation type `$everything`",
        "TestScript.test[1].action[4].assert.operator: `greaterThan`",
    ] {
        assert!(stderr.contains(element), "no `{element}` in:\n{stderr}");
    }
    assert!(stderr.contains("5 problems"), "{stderr}");
}

#[test]
fn a_folder_runs_its_testscripts_and_leaves_other_json_alone() {
    let dir = scratch("testscript-folder");
    edited_crud(&dir, |_| {});
    // The fixture (Patient-chalmers.json) is JSON beside the script: not a scenario.
    let reports = dir.join("reports");
    std::fs::create_dir_all(&reports).unwrap();
    Fhirconf::new()
        .arg("run")
        .arg(&dir)
        .reports(&reports)
        .run()
        .expect_code(0);
    assert_eq!(verdicts(&run_record(&reports)), ["passed", "passed"]);
    // Named explicitly, a JSON file that is not a TestScript is an error.
    let fixture = dir.join("Patient-chalmers.json");
    Fhirconf::new()
        .arg("check")
        .arg(&fixture)
        .run()
        .expect_code(2)
        .stderr_contains("neither a scenario file (.yaml) nor a TestScript resource");
}

#[test]
fn import_refuses_to_overwrite_unless_forced() {
    let dir = scratch("testscript-import-force");
    let out = dir.join("out");
    let import = |force: bool| {
        let mut f = Fhirconf::new()
            .args(["import", "testscript", CRUD, "--out"])
            .arg(&out);
        if force {
            f = f.arg("--force");
        }
        f.run()
    };
    import(false).expect_code(0);
    let yaml = std::fs::read_to_string(out.join("patient-crud.yaml")).unwrap();
    assert!(
        yaml.contains("# TestScript.test[0].action[4].assert"),
        "{yaml}"
    );
    assert!(
        yaml.contains("source: \"TestScript http://fhirconf.example/TestScript/patient-crud\""),
        "{yaml}"
    );
    assert!(out.join("patient-crud.fixtures/patient.json").is_file());
    import(false)
        .expect_code(2)
        .stderr_contains("already exists (--force overwrites)");
    import(true).expect_code(0);
}

/// Every TestScript of the corpus (tests/fixtures/testscript: the R4 specification's
/// and fhir-crucible's) loads, or `check` refuses it with each problem at a
/// TestScript element (or the file itself); the scripts that load are listed in
/// `LOADS.txt`, so a change in what loads is seen.
#[test]
fn the_corpus_loads_or_is_refused_element_by_element() {
    let corpus = root().join("tests/fixtures/testscript");
    let mut scripts = Vec::new();
    let mut stack = vec![corpus.clone()];
    while let Some(dir) = stack.pop() {
        for entry in std::fs::read_dir(&dir).unwrap() {
            let path = entry.unwrap().path();
            if path.is_dir() {
                stack.push(path);
                continue;
            }
            let text = std::fs::read_to_string(&path).unwrap_or_default();
            let json = path.extension().is_some_and(|e| e == "json")
                && text.contains("\"resourceType\"")
                && text.contains("\"TestScript\"");
            let xml = path.extension().is_some_and(|e| e == "xml") && text.contains("<TestScript");
            if json || xml {
                scripts.push(path);
            }
        }
    }
    scripts.sort();
    assert!(scripts.len() >= 60, "{} scripts", scripts.len());
    let mut loads = Vec::new();
    for script in &scripts {
        let ran = Fhirconf::new().arg("check").arg(script).run();
        let name = script.strip_prefix(&corpus).unwrap().display().to_string();
        match ran.code() {
            Some(0) => loads.push(name),
            Some(2) => {
                let stderr = ran.stderr();
                for line in stderr.lines().filter(|l| l.starts_with("error: ")) {
                    let located = line.starts_with("error: TestScript")
                        || line.contains("problem")
                        || line.contains("not JSON")
                        || line.contains("neither a scenario file");
                    assert!(located, "{name}: an error not at an element: {line}");
                }
            }
            other => panic!("{name}: exit {other:?}\n{}", ran.stderr()),
        }
    }
    let listed = std::fs::read_to_string(corpus.join("LOADS.txt")).unwrap();
    let listed: Vec<&str> = listed
        .lines()
        .filter(|l| !l.starts_with('#') && !l.trim().is_empty())
        .collect();
    assert_eq!(
        loads, listed,
        "tests/fixtures/testscript/LOADS.txt is out of date"
    );
}

/// `--testreport DIR`: one R4 TestReport per script, each action's result from the
/// step and checks it became, and valid R4 (checked by the validator in a build with
/// it; by its required elements and codes in every build).
#[test]
fn testreport_gives_each_operation_and_assert_its_result() {
    let dir = scratch("testscript-testreport");
    let script = edited_crud(&dir, |s| {
        s["test"][0]["action"][4]["assert"]["value"] = Value::from("Smith");
        s["test"][0]["action"][10]["assert"]["headerField"] = Value::from("X-Not-Sent");
    });
    let reports = dir.join("reports");
    std::fs::create_dir_all(&reports).unwrap();
    let out = dir.join("testreports");
    Fhirconf::new()
        .args(["run", &script, "--testreport"])
        .arg(&out)
        .reports(&reports)
        .run()
        .expect_code(1);
    let path = out.join("script.testreport.json");
    let report: Value = serde_json::from_str(&std::fs::read_to_string(&path).unwrap()).unwrap();
    assert_eq!(report["resourceType"], "TestReport");
    assert_eq!(report["status"], "completed");
    assert_eq!(report["result"], "fail");
    assert_eq!(report["score"], 50.0);
    assert_eq!(
        report["testScript"]["reference"],
        "http://fhirconf.example/TestScript/patient-crud"
    );
    let results = |actions: &Value| -> Vec<String> {
        actions
            .as_array()
            .unwrap()
            .iter()
            .map(|a| {
                let (kind, inner) = match (a.get("operation"), a.get("assert")) {
                    (Some(op), None) => ("operation", op),
                    (None, Some(asrt)) => ("assert", asrt),
                    other => panic!("an action is an operation or an assert: {other:?}"),
                };
                format!("{kind} {}", inner["result"].as_str().unwrap())
            })
            .collect()
    };
    assert_eq!(
        results(&report["setup"]["action"]),
        ["operation pass", "assert pass", "assert pass"]
    );
    let read = results(&report["test"][0]["action"]);
    assert_eq!(read.len(), 11, "{read:?}");
    assert_eq!(read[0], "operation pass");
    assert_eq!(
        read[4], "assert fail",
        "the family asserted wrong: {read:?}"
    );
    assert_eq!(read[10], "assert warning", "warningOnly: {read:?}");
    let passing = read.iter().filter(|r| *r == "assert pass").count();
    assert_eq!(passing, 8, "{read:?}");
    let message = report["test"][0]["action"][4]["assert"]["message"]
        .as_str()
        .unwrap();
    assert!(message.contains("Smith"), "{message}");
    assert!(
        results(&report["test"][1]["action"])
            .iter()
            .all(|r| r.ends_with("pass"))
    );
    assert_eq!(results(&report["teardown"]["action"]), ["operation pass"]);
    #[cfg(feature = "validation")]
    Fhirconf::new()
        .arg("validate")
        .arg(&path)
        .run()
        .expect_code(0)
        .stdout_contains("0 errors");
}

/// `contentType: xml` sends the fixture as FHIR XML (written from its JSON); the
/// sandbox serves JSON only and answers 415, which the step reports as sent (the
/// target's `features` claims XML, so `format=xml` does not skip the test).
#[test]
fn an_xml_content_type_sends_the_fixture_as_fhir_xml() {
    let sandbox = start_sandbox(&[]);
    let dir = scratch("testscript-xml-body");
    let script = edited_crud(&dir, |s| {
        s["setup"]["action"][0]["operation"]["contentType"] = Value::from("xml");
    });
    let target = write_file(
        &dir,
        "target.yaml",
        &format!(
            "base_url: {}\nfeatures: {{ format: xml }}\n",
            sandbox.base_url
        ),
    );
    let reports = dir.join("reports");
    std::fs::create_dir_all(&reports).unwrap();
    Fhirconf::new()
        .args(["run", "--target", &target, &script])
        .reports(&reports)
        .run()
        .expect_code(1);
    let record = run_record(&reports);
    let create = &record["scenarios"][0]["steps"][0];
    assert_eq!(create["status"], 415, "{create}");
    let transcript = create["transcript"].as_str().unwrap();
    assert!(
        transcript.contains("> Content-Type: application/fhir+xml"),
        "{transcript}"
    );
    assert!(
        transcript.contains("<Patient xmlns=\"http://hl7.org/fhir\"><id value=\"chalmers\"/>"),
        "{transcript}"
    );
}

/// A script that asks for XML requires `format=xml`: the sandbox's CapabilityStatement
/// lists JSON only, so its tests are skipped with that reason, not failed with a 406.
#[test]
fn a_script_asking_for_xml_is_skipped_by_a_json_only_server() {
    let dir = scratch("testscript-format");
    let script = edited_crud(&dir, |s| {
        s["test"][1]["action"][0]["operation"]["accept"] = Value::from("xml");
    });
    let reports = dir.join("reports");
    std::fs::create_dir_all(&reports).unwrap();
    Fhirconf::new()
        .args(["run", &script])
        .reports(&reports)
        .run()
        .expect_code(0);
    let record = run_record(&reports);
    assert_eq!(verdicts(&record), ["skipped", "skipped"]);
    let reason = record["scenarios"][0]["reason"].as_str().unwrap();
    assert!(
        reason.starts_with("format=xml not in CapabilityStatement (format: "),
        "{reason}"
    );
}
