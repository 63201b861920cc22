//! `--partition`: the shards of a suite are disjoint and together are the full run.

use std::collections::BTreeSet;

use crate::common::*;

/// `(file, name, outcome)` of every test case in a JUnit report.
fn cases(junit: &str) -> Vec<(String, String, &'static str)> {
    let attr = |chunk: &str, name: &str| {
        let re = regex::Regex::new(&format!(r#"\b{name}="([^"]*)""#)).unwrap();
        re.captures(chunk)
            .map(|c| c[1].to_owned())
            .unwrap_or_default()
    };
    junit
        .split("<testcase ")
        .skip(1)
        .map(|chunk| {
            let body = chunk.split("</testcase>").next().unwrap_or(chunk);
            let outcome = if body.contains("<failure") {
                "failure"
            } else if body.contains("<error") {
                "error"
            } else if body.contains("<skipped") {
                "skipped"
            } else {
                "passed"
            };
            (attr(chunk, "classname"), attr(chunk, "name"), outcome)
        })
        .collect()
}

fn run_shard(name: &str, partition: Option<&str>) -> Vec<(String, String, &'static str)> {
    let dir = scratch(name);
    let mut args = vec!["scenarios"];
    if let Some(p) = partition {
        args.extend(["--partition", p]);
    }
    let out = run_with_reports(&dir, &args);
    assert_eq!(out.status.code(), Some(0), "{}", text(&out.stderr));
    if partition.is_some() {
        assert!(text(&out.stderr).contains("scenarios in this shard"));
    }
    cases(&std::fs::read_to_string(dir.join("junit.xml")).unwrap())
}

#[test]
fn shards_are_disjoint_and_together_are_the_full_run() {
    let full: BTreeSet<_> = run_shard("partition-full", None).into_iter().collect();
    assert!(full.len() > 100);
    for (kind, n) in [("slice", 3), ("hash", 2)] {
        let mut union = BTreeSet::new();
        let mut sizes = Vec::new();
        for m in 1..=n {
            let shard = run_shard(
                &format!("partition-{kind}-{m}"),
                Some(&format!("{kind}:{m}/{n}")),
            );
            sizes.push(shard.len());
            for case in shard {
                assert!(union.insert(case.clone()), "{case:?} is in two shards");
            }
        }
        assert_eq!(union, full, "{kind}: the shards differ from the full run");
        assert!(sizes.iter().all(|s| *s > 0), "{kind}: {sizes:?}");
    }
    // The same shard twice is the same scenarios.
    let a = run_shard("partition-again-1", Some("hash:1/2"));
    let b = run_shard("partition-again-2", Some("hash:1/2"));
    let names = |v: &[(String, String, &str)]| v.iter().map(|c| c.1.clone()).collect::<Vec<_>>();
    assert_eq!(names(&a), names(&b));
}

#[test]
fn a_bad_partition_is_refused() {
    let out = fhirconf(&["run", "--partition", "slice:4/3"]);
    assert_eq!(out.status.code(), Some(2));
    assert!(
        text(&out.stderr).contains("slice:M/N or hash:M/N"),
        "{}",
        text(&out.stderr)
    );
}
