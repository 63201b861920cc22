//! The JSON Schemas of scenario and target files (`schemas/*.schema.json`): the
//! committed files are what the binary generates, every built-in file validates, and
//! the schema and the loader give the same verdict on broken files.

use std::path::{Path, PathBuf};

use serde_json::Value;

use crate::common::*;

fn root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

/// Every `.yaml` file under `dir`, recursively, sorted.
fn yaml_files(dir: &Path) -> Vec<PathBuf> {
    let mut out = Vec::new();
    let mut todo = vec![dir.to_path_buf()];
    while let Some(d) = todo.pop() {
        for entry in std::fs::read_dir(&d).unwrap() {
            let p = entry.unwrap().path();
            if p.is_dir() {
                todo.push(p);
            } else if p.extension().is_some_and(|e| e == "yaml") {
                out.push(p);
            }
        }
    }
    out.sort();
    out
}

fn committed(name: &str) -> String {
    std::fs::read_to_string(root().join("schemas").join(name)).unwrap()
}

fn validator(name: &str) -> jsonschema::Validator {
    let schema: Value = serde_json::from_str(&committed(name)).unwrap();
    jsonschema::validator_for(&schema).unwrap()
}

/// The schema's verdict on a file: `Err` with the validator's messages when the file
/// is not YAML or does not validate.
fn schema_verdict(validator: &jsonschema::Validator, path: &Path) -> Result<(), String> {
    let bytes = std::fs::read(path).unwrap();
    let text = String::from_utf8(bytes).map_err(|e| e.to_string())?;
    let doc: Value = serde_saphyr::from_str(&text).map_err(|e| format!("not YAML: {e}"))?;
    let errors: Vec<String> = validator
        .iter_errors(&doc)
        .map(|e| format!("{} at {}", e, e.instance_path()))
        .collect();
    if errors.is_empty() {
        Ok(())
    } else {
        Err(errors.join("\n"))
    }
}

fn load_scenario(path: &Path) -> Result<(), String> {
    fhirconf::scenario::load::load_file(path, &fhirconf::scenario::LoadOptions::default())
        .map(drop)
        .map_err(|d| format!("{d:?}"))
}

fn load_target(path: &Path) -> Result<(), String> {
    fhirconf::target::load(path)
        .map(drop)
        .map_err(|d| format!("{d:?}"))
}

#[test]
fn committed_schemas_are_what_the_binary_prints() {
    for (kind, file) in [
        ("scenario", "scenario.schema.json"),
        ("target", "target.schema.json"),
    ] {
        let out = fhirconf(&["schema", kind]);
        assert_eq!(out.status.code(), Some(0), "{}", text(&out.stderr));
        assert!(
            text(&out.stdout) == committed(file),
            "schemas/{file} is not what `fhirconf schema {kind}` prints: \
             run `cargo run -- schema {kind} > schemas/{file}`"
        );
    }
}

#[test]
fn every_built_in_file_names_its_schema_and_validates() {
    let scenarios = validator("scenario.schema.json");
    let targets = validator("target.schema.json");
    let mut checked = 0;
    for (dirs, validator, schema, load) in [
        (
            &[
                "scenarios",
                "examples",
                "tests/cases/passing",
                "tests/cases/failing",
                "tests/cases/errors",
                "tests/cases/baseline",
            ][..],
            &scenarios,
            "scenario.schema.json",
            load_scenario as fn(&Path) -> Result<(), String>,
        ),
        (
            &["targets"][..],
            &targets,
            "target.schema.json",
            load_target,
        ),
    ] {
        for dir in dirs {
            for path in yaml_files(&root().join(dir)) {
                let shown = path.strip_prefix(root()).unwrap().display().to_string();
                load(&path).unwrap_or_else(|e| panic!("{shown}: the loader refuses it: {e}"));
                if let Err(e) = schema_verdict(validator, &path) {
                    panic!("{shown}: the loader accepts it, the schema does not:\n{e}");
                }
                // Built-in files (not the test cases) point editors at the schema.
                if !shown.starts_with("tests/") {
                    let depth = shown.matches('/').count();
                    let expected = format!(
                        "# yaml-language-server: $schema={}schemas/{schema}",
                        "../".repeat(depth)
                    );
                    let first = std::fs::read_to_string(&path).unwrap();
                    let first = first.lines().next().unwrap_or_default().to_owned();
                    assert_eq!(first, expected, "{shown}: first line");
                }
                checked += 1;
            }
        }
    }
    assert!(checked > 50, "only {checked} files");
}

/// Broken files the schema cannot reject, because what is wrong with them is more than
/// their shape; the loader does, at `fhirconf check`.
const LOADER_ONLY: &[(&str, &str)] = &[
    ("tests/cases/invalid/bad-jsonpath.yaml", "JSONPath syntax"),
    ("tests/cases/invalid/bad-regex.yaml", "regex syntax"),
    (
        "tests/cases/invalid/missing-fixture.yaml",
        "a file that does not exist",
    ),
    (
        "tests/cases/invalid/template-syntax.yaml",
        "template syntax",
    ),
    (
        "tests/cases/invalid/template-in-body.yaml",
        "template syntax",
    ),
    (
        "tests/cases/invalid/undefined-variable.yaml",
        "variables defined before use",
    ),
    (
        "tests/hostile/scenarios/fixture-escape.yaml",
        "a file outside the scenario's folder",
    ),
    (
        "tests/hostile/scenarios/jsonpath-no-root.yaml",
        "JSONPath syntax",
    ),
    (
        "tests/hostile/scenarios/jsonpath-unclosed.yaml",
        "JSONPath syntax",
    ),
    (
        "tests/hostile/scenarios/regex-unclosed.yaml",
        "regex syntax",
    ),
    (
        "tests/hostile/scenarios/template-block.yaml",
        "template syntax",
    ),
    (
        "tests/hostile/scenarios/template-unclosed.yaml",
        "template syntax",
    ),
    (
        "tests/hostile/scenarios/undefined-in-body.yaml",
        "variables defined before use",
    ),
    (
        "tests/hostile/scenarios/undefined-in-expect.yaml",
        "variables defined before use",
    ),
];

#[test]
fn the_schema_and_the_loader_refuse_the_same_broken_files() {
    let scenarios = validator("scenario.schema.json");
    let targets = validator("target.schema.json");
    let mut disagree = Vec::new();
    let mut refused_by_both = 0;
    for (dir, validator, load) in [
        (
            "tests/cases/invalid",
            &scenarios,
            load_scenario as fn(&Path) -> Result<(), String>,
        ),
        ("tests/hostile/scenarios", &scenarios, load_scenario),
        ("tests/hostile/targets", &targets, load_target),
        // Broken in ways the corpora above do not cover (retry, each, header rules).
        ("tests/schema/scenarios", &scenarios, load_scenario),
        ("tests/schema/targets", &targets, load_target),
    ] {
        for path in yaml_files(&root().join(dir)) {
            let shown = path.strip_prefix(root()).unwrap().display().to_string();
            let loader = load(&path);
            let schema = schema_verdict(validator, &path);
            let loader_only = LOADER_ONLY.iter().any(|(f, _)| *f == shown);
            match (loader.is_ok(), schema.is_ok(), loader_only) {
                (false, false, false) => refused_by_both += 1,
                // Resolved later (environment variables, key files): only hostile ones.
                (true, true, false) if !shown.starts_with("tests/schema/") => {}
                (false, true, true) => {}
                _ => disagree.push(format!(
                    "{shown}: loader {:?}, schema {:?}, listed as loader-only: {loader_only}",
                    loader.err(),
                    schema.err()
                )),
            }
        }
    }
    assert!(disagree.is_empty(), "{}", disagree.join("\n\n"));
    assert!(refused_by_both >= 40, "only {refused_by_both}");
}

/// The README's tables of scenario and step keys are the schema's descriptions.
#[test]
fn key_descriptions_are_the_readme_text() {
    let readme = std::fs::read_to_string(root().join("README.md")).unwrap();
    let schema: Value = serde_json::from_str(&committed("scenario.schema.json")).unwrap();
    let link = regex::Regex::new(r"\[([^\]]*)\]\([^)]*\)").unwrap();
    for (heading, props) in [
        ("### Scenario keys", &schema["properties"]),
        (
            "### Step keys",
            &schema["definitions"]["Step"]["properties"],
        ),
    ] {
        let section = readme
            .split(heading)
            .nth(1)
            .unwrap_or_else(|| panic!("{heading}"));
        let mut rows = 0;
        for line in section
            .lines()
            .skip_while(|l| !l.starts_with('|'))
            .take_while(|l| l.starts_with('|'))
            .skip(2)
        {
            let cells: Vec<&str> = line.trim_matches('|').split(" | ").map(str::trim).collect();
            let key = cells[0].trim_matches('`');
            let text = link.replace_all(cells[1], "$1");
            assert_eq!(
                props[key]["description"].as_str(),
                Some(&*text),
                "{heading}: `{key}`"
            );
            rows += 1;
        }
        let keys = props.as_object().unwrap().len();
        assert_eq!(rows, keys, "{heading}: every key has a row");
    }
}
