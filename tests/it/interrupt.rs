//! Ctrl-C and SIGTERM during a real run: cleanups still reach the server, every report
//! is written with the unfinished scenarios marked, and the exit code is 130.
#![cfg(unix)]

use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use crate::common::*;

const SCENARIOS: &str = r#"scenarios:
  - name: interrupted while the server is slow
    steps:
      - request: { method: POST, path: /hit/started-KEY }
      - request: { method: GET, path: /slow }
      - request: { method: GET, path: /hit/never-KEY }
    cleanup:
      - request: { method: DELETE, path: /hit/cleanup-KEY }
  - name: not started when the signal came
    steps:
      - request: { method: GET, path: /hit/second-KEY }
"#;

fn wait_until(what: &str, limit: Duration, mut done: impl FnMut() -> bool) {
    let start = Instant::now();
    while !done() {
        assert!(start.elapsed() < limit, "gave up waiting for {what}");
        std::thread::sleep(Duration::from_millis(20));
    }
}

#[test]
fn a_signal_runs_the_cleanups_writes_the_reports_and_exits_130() {
    for signal in ["INT", "TERM"] {
        let server = start_server();
        let dir = scratch(&format!("interrupt-{signal}"));
        let file = dir.join("s.yaml");
        std::fs::write(&file, SCENARIOS.replace("KEY", signal)).unwrap();
        let junit = dir.join("junit.xml");
        let json = dir.join("run.json");
        let md = dir.join("summary.md");
        let mut child = Fhirconf::new()
            .args(["run", "-j", "1", "--base-url", &server.base_url])
            .arg(&file)
            .reports(&dir)
            .command()
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap();
        let started = format!("started-{signal}");
        wait_until("the first step", Duration::from_secs(30), || {
            server.hits.get(&started) == 1
        });
        // The second step (5 s) is now in flight.
        std::thread::sleep(Duration::from_millis(300));
        let kill = Command::new("kill")
            .args([&format!("-{signal}"), &child.id().to_string()])
            .status()
            .unwrap();
        assert!(kill.success());
        let mut status = None;
        wait_until("the run to end", Duration::from_secs(30), || {
            status = child.try_wait().unwrap();
            status.is_some()
        });
        let out = child.wait_with_output().unwrap();
        let stderr = text(&out.stderr);
        assert_eq!(status.unwrap().code(), Some(130), "{signal}: {stderr}");
        assert!(stderr.contains("no new steps start"), "{stderr}");
        assert_eq!(
            server.hits.get(&format!("cleanup-{signal}")),
            1,
            "the cleanup ran"
        );
        assert_eq!(server.hits.get(&format!("never-{signal}")), 0);
        assert_eq!(server.hits.get(&format!("second-{signal}")), 0);

        let run: serde_json::Value =
            serde_json::from_str(&std::fs::read_to_string(&json).unwrap()).unwrap();
        let scenarios = run["scenarios"].as_array().unwrap();
        assert_eq!(scenarios[0]["verdict"], "error");
        // Usually the slow step is in flight when the signal comes; on a loaded
        // machine it may not have started yet. Either way the scenario is unfinished.
        let reason = scenarios[0]["reason"].as_str().unwrap();
        assert!(
            reason.contains("interrupted while waiting for the answer")
                || reason.contains("interrupted before step"),
            "{reason}"
        );
        assert_eq!(scenarios[1]["verdict"], "skipped");
        assert_eq!(scenarios[1]["reason"], "not run: the run was interrupted");
        let xml = std::fs::read_to_string(&junit).unwrap();
        assert!(xml.contains("<error"), "{xml}");
        assert_schema_valid(&junit);
        assert!(md.exists());
    }
}
