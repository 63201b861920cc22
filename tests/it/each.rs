//! `each:` and `each_file:`: a scenario runs once per row, each row its own test case
//! (`file::name[row]`) that selection, sharding and the reports treat like any other.

use crate::common::*;

const STEPS: &str = "steps:\n  - request: { method: GET, path: \"/echo?v={{ v }}\" }\n    expect: { json: [{ path: \"$.query[0][1]\", equals: \"{{ v }}\" }] }\n";

#[test]
fn each_row_is_a_scenario_of_its_own() {
    let server = start_server();
    let dir = scratch("each-inline");
    let scenario = write_file(
        &dir,
        "rows.yaml",
        &format!(
            "name: echo\neach:\n  - {{ name: alpha, v: a }}\n  - {{ name: beta, v: b }}\n  - {{ v: c }}\n{STEPS}"
        ),
    );
    let listed = fhirconf(&["run", &scenario, "--list"]);
    let stdout = text(&listed.stdout);
    for id in ["echo[alpha]", "echo[beta]", "echo[2]"] {
        assert!(
            stdout.contains(&format!("rows.yaml::{id}")),
            "{id}: {stdout}"
        );
    }
    let out = run_with_reports(&dir, &[&scenario, "--base-url", &server.base_url]);
    assert_eq!(out.status.code(), Some(0), "{}", text(&out.stderr));
    let record = run_record(&dir);
    let ids: Vec<&str> = record["scenarios"]
        .as_array()
        .unwrap()
        .iter()
        .map(|s| s["id"].as_str().unwrap())
        .collect();
    assert_eq!(ids.len(), 3, "{ids:?}");
    let junit = std::fs::read_to_string(dir.join("junit.xml")).unwrap();
    assert_eq!(junit.matches("<testcase").count(), 3, "{junit}");
    // A row is selected like any scenario.
    let one = scratch("each-filter");
    let out = run_with_reports(
        &one,
        &[
            &scenario,
            "--base-url",
            &server.base_url,
            "-k",
            "echo[beta]",
        ],
    );
    assert_eq!(out.status.code(), Some(0), "{}", text(&out.stderr));
    assert_eq!(run_record(&one)["scenarios"].as_array().unwrap().len(), 1);
}

#[test]
fn a_failing_row_fails_alone() {
    let server = start_server();
    let dir = scratch("each-one-fails");
    let scenario = write_file(
        &dir,
        "rows.yaml",
        "name: echo\neach:\n  - { v: a, want: a }\n  - { v: b, want: z }\nsteps:\n  - request: { method: GET, path: \"/echo?v={{ v }}\" }\n    expect: { json: [{ path: \"$.query[0][1]\", equals: \"{{ want }}\" }] }\n",
    );
    let out = run_with_reports(&dir, &[&scenario, "--base-url", &server.base_url]);
    assert_eq!(out.status.code(), Some(1), "{}", text(&out.stderr));
    let record = run_record(&dir);
    let verdicts: Vec<(String, String)> = record["scenarios"]
        .as_array()
        .unwrap()
        .iter()
        .map(|s| {
            (
                s["id"].as_str().unwrap().to_owned(),
                s["verdict"].as_str().unwrap().to_owned(),
            )
        })
        .collect();
    assert!(
        verdicts
            .iter()
            .any(|(id, v)| id.ends_with("echo[0]") && v == "passed"),
        "{verdicts:?}"
    );
    assert!(
        verdicts
            .iter()
            .any(|(id, v)| id.ends_with("echo[1]") && v == "failed"),
        "{verdicts:?}"
    );
}

#[test]
fn rows_come_from_csv_and_json_files_beside_the_scenario() {
    let server = start_server();
    let dir = scratch("each-files");
    write_file(&dir, "rows.csv", "name,v\nfirst,x\nsecond,\"y, z\"\n");
    write_file(
        &dir,
        "rows.json",
        r#"[{"name": "one", "v": "p"}, {"name": "two", "v": "q"}]"#,
    );
    for (file, ids) in [
        ("rows.csv", ["echo[first]", "echo[second]"]),
        ("rows.json", ["echo[one]", "echo[two]"]),
    ] {
        let scenario = write_file(
            &dir,
            &format!("from-{file}.yaml"),
            &format!("name: echo\neach_file: {file}\n{STEPS}"),
        );
        let reports = dir.join(format!("reports-{file}"));
        std::fs::create_dir_all(&reports).unwrap();
        let out = run_with_reports(&reports, &[&scenario, "--base-url", &server.base_url]);
        assert_eq!(out.status.code(), Some(0), "{file}: {}", text(&out.stderr));
        let record = run_record(&reports);
        for id in ids {
            assert!(record.to_string().contains(id), "{file}: {id}");
        }
    }
}

#[test]
fn bad_rows_are_refused_at_their_position() {
    let dir = scratch("each-invalid");
    write_file(&dir, "rows.txt", "v\n1\n");
    for (name, rows, wanted) in [
        (
            "missing.yaml",
            "each:\n  - { v: a }\n  - { w: b }\n",
            "row [1] has other fields than the first row (missing: v; extra: w)",
        ),
        (
            "twice.yaml",
            "each:\n  - { name: x, v: a }\n  - { name: x, v: b }\n",
            "two rows are labelled `x`",
        ),
        (
            "field.yaml",
            "each:\n  - { v: a, \"not a name\": 1 }\n",
            "`not a name` is not a variable name",
        ),
        ("empty.yaml", "each: []\n", "`each` has no rows"),
        (
            "both.yaml",
            "each:\n  - { v: a }\neach_file: rows.csv\n",
            "cannot both be given",
        ),
        ("nofile.yaml", "each_file: nowhere.csv\n", "nowhere.csv"),
        (
            "ext.yaml",
            "each_file: rows.txt\n",
            "must end in `.csv` or `.json`",
        ),
        (
            "undefined.yaml",
            "each:\n  - { w: a }\n",
            "undefined variable `v`",
        ),
    ] {
        let file = write_file(&dir, name, &format!("name: echo\n{rows}{STEPS}"));
        let out = fhirconf(&["check", &file]);
        let stderr = text(&out.stderr);
        assert_eq!(out.status.code(), Some(2), "{name}: {stderr}");
        assert!(stderr.contains(wanted), "{name}: {stderr}");
        assert!(
            regex::Regex::new(&format!(r"{}:\d+:\d+", regex::escape(&file)))
                .unwrap()
                .is_match(&stderr),
            "{name}: {stderr}"
        );
    }
}
