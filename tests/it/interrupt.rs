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

/// A `fhirconf` started for a test: its stderr read as it comes, killed if the test
/// ends (or panics) before it does.
struct Running {
    child: std::process::Child,
    stderr: std::sync::Arc<std::sync::Mutex<String>>,
}

impl Running {
    fn spawn(fhirconf: Fhirconf) -> Self {
        let mut child = fhirconf
            .command()
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap();
        let stderr = std::sync::Arc::new(std::sync::Mutex::new(String::new()));
        let mut pipe = child.stderr.take().unwrap();
        let sink = std::sync::Arc::clone(&stderr);
        std::thread::spawn(move || {
            let mut buf = [0u8; 4096];
            // Ends when the child's stderr closes: when it exits or is killed.
            while let Ok(n @ 1..) = std::io::Read::read(&mut pipe, &mut buf) {
                sink.lock()
                    .unwrap()
                    .push_str(&String::from_utf8_lossy(&buf[..n]));
            }
        });
        Running { child, stderr }
    }

    fn signal(&self, signal: &str) {
        let kill = Command::new("kill")
            .args([&format!("-{signal}"), &self.child.id().to_string()])
            .status()
            .unwrap();
        assert!(kill.success());
    }

    fn stderr(&self) -> String {
        self.stderr.lock().unwrap().clone()
    }

    /// The exit code, once the child ended within `limit`.
    fn wait(&mut self, limit: Duration) -> Option<i32> {
        let mut status = None;
        wait_until("the run to end", limit, || {
            status = self.child.try_wait().unwrap();
            status.is_some()
        });
        // What the child wrote last reaches the reader thread.
        std::thread::sleep(Duration::from_millis(100));
        status.unwrap().code()
    }
}

impl Drop for Running {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// The first scenario's cleanup hangs (`/hang`) until a signal cuts it; the second
/// scenario has not started then.
const CLEANUP_HANGS: &str = r#"scenarios:
  - name: its cleanup hangs
    steps:
      - request: { method: POST, path: /hit/started-KEY }
    cleanup:
      - request: { method: DELETE, path: /hang/cleanup-KEY }
      - request: { method: DELETE, path: /hit/after-KEY }
  - name: not started when the signal came
    steps:
      - request: { method: GET, path: /hit/second-KEY }
"#;

/// A run of [`CLEANUP_HANGS`] with every report in a fresh folder, stopped once its
/// first cleanup is in flight; the request timeout (60 s) is never what ends it.
fn run_until_the_cleanup_hangs(
    server: &TestServer,
    key: &str,
    cleanup_budget: &str,
) -> (Running, std::path::PathBuf) {
    let dir = scratch(&format!("interrupt-cleanup-{key}"));
    let file = dir.join("s.yaml");
    std::fs::write(&file, CLEANUP_HANGS.replace("KEY", key)).unwrap();
    let running = Running::spawn(
        Fhirconf::new()
            .args(["run", "-j", "1", "--timeout", "60", "--cleanup-budget"])
            .arg(cleanup_budget)
            .args(["--base-url", &server.base_url])
            .arg(&file)
            .reports(&dir),
    );
    let cleanup = format!("cleanup-{key}");
    wait_until(
        "the cleanup to be in flight",
        Duration::from_secs(30),
        || server.hits.get(&cleanup) == 1,
    );
    (running, dir)
}

#[test]
fn a_cleanup_in_flight_at_the_signal_is_cut_at_the_budget() {
    let server = start_server();
    let (mut running, dir) = run_until_the_cleanup_hangs(&server, "budget", "1");
    let signalled = Instant::now();
    running.signal("INT");
    let code = running.wait(Duration::from_secs(30));
    let took = signalled.elapsed();
    let stderr = running.stderr();
    assert_eq!(code, Some(130), "{stderr}");
    assert!(
        took >= Duration::from_millis(900) && took < Duration::from_secs(20),
        "the cleanup had 1 s from the signal, the run took {took:?}: {stderr}"
    );
    assert!(
        stderr.contains("the cleanups of started scenarios have 1 s"),
        "{stderr}"
    );

    let run = run_record(&dir);
    let first = &run["scenarios"][0];
    assert_eq!(first["verdict"], "error", "{first}");
    let cut = "interrupted: the cleanup did not finish within 1 s of the signal";
    assert_eq!(
        first["reason"],
        format!("cleanup step 'step 1: DELETE /hang/cleanup-budget' (line 6): {cut}"),
        "{first}"
    );
    let steps = first["steps"].as_array().unwrap();
    assert_eq!(steps[0]["verdict"], "passed");
    assert_eq!(steps[1]["message"], cut);
    assert_eq!(
        steps[2]["message"],
        "interrupted: not run, the 1 s after the signal were spent"
    );
    assert_eq!(server.hits.get("after-budget"), 0);
    assert_eq!(
        run["scenarios"][1]["reason"],
        "not run: the run was interrupted"
    );
    assert_eq!(server.hits.get("second-budget"), 0);
    assert!(
        std::fs::read_to_string(dir.join("junit.xml"))
            .unwrap()
            .contains(cut)
    );
}

#[test]
fn a_second_signal_abandons_the_cleanups_and_still_writes_every_report() {
    let server = start_server();
    // A budget far longer than the test waits: only the second signal can end it.
    let (mut running, dir) = run_until_the_cleanup_hangs(&server, "twice", "600");
    running.signal("INT");
    wait_until(
        "the first signal to be seen",
        Duration::from_secs(30),
        || running.stderr().contains("no new steps start"),
    );
    let again = Instant::now();
    running.signal("INT");
    let code = running.wait(Duration::from_secs(30));
    let stderr = running.stderr();
    assert_eq!(code, Some(130), "{stderr}");
    assert!(
        again.elapsed() < Duration::from_secs(20),
        "{:?}: {stderr}",
        again.elapsed()
    );
    assert!(
        stderr.contains(
            "interrupted (SIGINT) again: abandoning cleanups, writing the reports of what finished"
        ),
        "{stderr}"
    );
    assert!(!stderr.contains("were not written"), "{stderr}");
    assert!(
        stderr.contains("the run was interrupted: the reports cover what ran"),
        "{stderr}"
    );

    let run = run_record(&dir);
    let first = &run["scenarios"][0];
    assert_eq!(first["verdict"], "error", "{first}");
    let steps = first["steps"].as_array().unwrap();
    assert_eq!(
        steps[1]["message"],
        "interrupted again: the cleanup was abandoned before it finished"
    );
    assert_eq!(
        steps[2]["message"],
        "interrupted again: not run, the cleanups were abandoned"
    );
    assert_eq!(run["scenarios"][1]["verdict"], "skipped");
    assert_eq!(
        run["scenarios"][1]["reason"],
        "not run: the run was interrupted"
    );
    let junit = dir.join("junit.xml");
    let xml = std::fs::read_to_string(&junit).unwrap();
    assert!(xml.contains("the cleanup was abandoned"), "{xml}");
    assert_schema_valid(&junit);
    assert!(dir.join("summary.md").is_file());
    assert!(dir.join("index.html").is_file());
}

/// A signal while the token is fetched or `/metadata` is read: one line, exit 130, no
/// report.
fn assert_stopped_before_the_scenarios(mut running: Running, dir: &std::path::Path) {
    let signalled = Instant::now();
    running.signal("INT");
    let code = running.wait(Duration::from_secs(30));
    let stderr = running.stderr();
    assert_eq!(code, Some(130), "{stderr}");
    assert!(signalled.elapsed() < Duration::from_secs(20), "{stderr}");
    let lines: Vec<&str> = stderr.lines().filter(|l| !l.trim().is_empty()).collect();
    assert_eq!(
        lines,
        [
            "interrupted (SIGINT) before the first scenario: no scenario ran and no report was written"
        ],
        "{stderr}"
    );
    for report in ["junit.xml", "run.json", "summary.md", "index.html"] {
        assert!(!dir.join(report).exists(), "{report} was written");
    }
}

#[test]
fn a_signal_during_the_token_fetch_says_nothing_ran_in_one_line() {
    let server = start_server();
    let dir = scratch("interrupt-token");
    let target = dir.join("t.yaml");
    std::fs::write(
        &target,
        format!(
            "base_url: {}\nauth:\n  type: client_credentials\n  token_url: {}/hang/token\n  client_id: c\n  client_secret_env: FHIRCONF_TEST_HANG_SECRET\n",
            server.base_url, server.base_url
        ),
    )
    .unwrap();
    let file = dir.join("s.yaml");
    std::fs::write(&file, SCENARIOS.replace("KEY", "token")).unwrap();
    let running = Running::spawn(
        Fhirconf::new()
            .args(["run", "--timeout", "60", "--target"])
            .arg(&target)
            .arg(&file)
            .env("FHIRCONF_TEST_HANG_SECRET", "a-client-secret")
            .reports(&dir),
    );
    wait_until("the token request", Duration::from_secs(30), || {
        server.hits.get("token") == 1
    });
    assert_stopped_before_the_scenarios(running, &dir);
    assert_eq!(server.hits.get("started-token"), 0);
}

#[test]
fn a_signal_while_metadata_is_read_says_nothing_ran_in_one_line() {
    // A server that accepts the connection and never answers.
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    listener.set_nonblocking(true).unwrap();
    let base_url = format!("http://{}", listener.local_addr().unwrap());
    let dir = scratch("interrupt-metadata");
    let file = dir.join("s.yaml");
    std::fs::write(&file, SCENARIOS.replace("KEY", "metadata")).unwrap();
    let running = Running::spawn(
        Fhirconf::new()
            .args(["run", "--timeout", "60", "--base-url", &base_url])
            .arg(&file)
            .reports(&dir),
    );
    let mut held = None;
    wait_until("the /metadata request", Duration::from_secs(30), || {
        held = listener.accept().ok();
        held.is_some()
    });
    assert_stopped_before_the_scenarios(running, &dir);
}
