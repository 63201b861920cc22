//! Hostile input: a corpus of broken scenario and target files (in `tests/hostile/`,
//! plus huge, deeply nested, binary and looping ones generated here). Each must give
//! exit code 2 and a message that points at `file:line:col`, never a panic, and no
//! report.

use std::path::{Path, PathBuf};

use crate::common::*;

fn files(dir: &Path) -> Vec<PathBuf> {
    let mut out: Vec<PathBuf> = std::fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|e| e == "yaml"))
        .collect();
    out.sort();
    out
}

/// The message names the file with a line and column, and nothing panicked.
fn assert_located(out: &std::process::Output, file: &str) {
    let stderr = text(&out.stderr);
    assert_eq!(out.status.code(), Some(2), "{file}: {stderr}");
    assert!(!stderr.contains("panicked"), "{file}: {stderr}");
    let located = regex::Regex::new(&format!(r"--> {}:\d+:\d+", regex::escape(file))).unwrap();
    assert!(
        located.is_match(&stderr),
        "{file}: no file:line:col in\n{stderr}"
    );
}

fn assert_no_reports(reports: &Path, file: &str) {
    assert_eq!(
        std::fs::read_dir(reports).unwrap().count(),
        0,
        "{file}: a report was written"
    );
}

/// Files made here rather than committed: too big, too deep, or not text.
fn generated(dir: &Path) -> Vec<PathBuf> {
    let mut out = Vec::new();
    let mut add = |name: &str, bytes: Vec<u8>| {
        let p = dir.join(name);
        std::fs::write(&p, bytes).unwrap();
        out.push(p);
    };
    let mut huge = b"name: huge\nsteps:\n  - request: { method: GET, path: /x }\n".to_vec();
    while huge.len() <= 4 * 1024 * 1024 {
        huge.extend_from_slice(b"# padding padding padding padding padding padding padding\n");
    }
    add("huge.yaml", huge);
    let depth = 100_000;
    add(
        "deep-lists.yaml",
        format!(
            "name: deep\nvars:\n  v: {}{}\nsteps:\n  - request: {{ method: GET, path: /x }}\n",
            "[".repeat(depth),
            "]".repeat(depth)
        )
        .into_bytes(),
    );
    add(
        "deep-maps.yaml",
        format!(
            "name: deep\nvars:\n  v: {}1{}\nsteps:\n  - request: {{ method: GET, path: /x }}\n",
            "{a: ".repeat(depth),
            "}".repeat(depth)
        )
        .into_bytes(),
    );
    // Deterministic garbage with NULs and invalid UTF-8.
    let mut x: u32 = 0x9e37_79b9;
    let garbage: Vec<u8> = (0..4096)
        .map(|_| {
            x ^= x << 13;
            x ^= x >> 17;
            x ^= x << 5;
            (x >> 24) as u8
        })
        .collect();
    add("binary.yaml", garbage);
    add(
        "nul-byte.yaml",
        b"name: a NUL\nsteps:\n  - request: { method: GET, path: \"/x\0\" }\n".to_vec(),
    );
    add(
        "latin1.yaml",
        b"name: caf\xe9\nsteps:\n  - request: { method: GET, path: /x }\n".to_vec(),
    );
    out
}

#[test]
fn broken_scenario_files_are_refused_with_their_location() {
    let dir = scratch("hostile-scenarios");
    let reports = dir.join("reports");
    std::fs::create_dir_all(&reports).unwrap();
    let made = dir.join("made");
    std::fs::create_dir_all(&made).unwrap();
    let mut all: Vec<String> = files(&root().join("tests/hostile/scenarios"))
        .iter()
        .map(|p| {
            format!(
                "tests/hostile/scenarios/{}",
                p.file_name().unwrap().to_string_lossy()
            )
        })
        .collect();
    all.extend(generated(&made).iter().map(|p| p.display().to_string()));
    let targets = files(&root().join("tests/hostile/targets"));
    assert!(
        all.len() + targets.len() >= 40,
        "the corpus has {} files",
        all.len() + targets.len()
    );
    for file in &all {
        assert_located(&fhirconf(&["check", file]), file);
        let out = run_with_reports(&reports, &[file, "--base-url", "http://127.0.0.1:9"]);
        assert_located(&out, file);
        assert_no_reports(&reports, file);
    }
}

#[test]
fn broken_target_files_are_refused_with_their_location() {
    let dir = scratch("hostile-targets");
    for path in files(&root().join("tests/hostile/targets")) {
        let file = format!(
            "tests/hostile/targets/{}",
            path.file_name().unwrap().to_string_lossy()
        );
        let out = run_with_reports(&dir, &["--target", &file, "scenarios/r4-core"]);
        assert_located(&out, &file);
        assert!(!text(&out.stdout).contains("running"), "{file}");
        assert_no_reports(&dir, &file);
    }
}

#[cfg(unix)]
#[test]
fn a_symlink_loop_in_a_folder_is_reported_not_followed() {
    let dir = scratch("hostile-loop");
    let suite = dir.join("suite");
    std::fs::create_dir_all(&suite).unwrap();
    std::fs::write(
        suite.join("ok.yaml"),
        "name: fine\nsteps:\n  - request: { method: GET, path: /x }\n",
    )
    .unwrap();
    std::os::unix::fs::symlink(&suite, suite.join("loop")).unwrap();
    std::os::unix::fs::symlink(suite.join("missing"), suite.join("dangling.yaml")).unwrap();
    let out = fhirconf(&["check", suite.to_str().unwrap()]);
    let stderr = text(&out.stderr);
    assert_eq!(out.status.code(), Some(2), "{stderr}");
    assert!(!stderr.contains("panicked"), "{stderr}");
    assert!(stderr.contains("dangling.yaml"), "{stderr}");
}
