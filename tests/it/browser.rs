//! The HTML report in a real browser: headless Chromium opens it from disk, takes a
//! screenshot into `target/` (`html-report.png` in the tests' temporary folder), and
//! its DOM (after the page's own script ran) must hold the failure details and the
//! requirements table, with a hostile response body shown as text and never run.
//! Without Chromium the test fails, unless FHIRCONF_ALLOW_MISSING_TOOLS=1 says a skip
//! is wanted (`.ci/run` never sets it).

use std::path::Path;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use crate::common::*;

fn chromium() -> Option<&'static str> {
    ["chromium", "chromium-browser", "google-chrome"]
        .into_iter()
        .find(|b| {
            Command::new(b)
                .arg("--version")
                .output()
                .is_ok_and(|o| o.status.success())
        })
}

/// Runs headless Chromium with `args` for at most 90 s; returns its stdout.
fn headless(browser: &str, profile: &Path, args: &[&str]) -> String {
    let mut child = Command::new(browser)
        .args([
            "--headless",
            "--no-sandbox",
            "--disable-gpu",
            "--no-first-run",
            "--disable-background-networking",
            "--disable-dev-shm-usage",
        ])
        .arg(format!("--user-data-dir={}", profile.display()))
        .args(args)
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let start = Instant::now();
    while child.try_wait().unwrap().is_none() {
        if start.elapsed() > Duration::from_secs(90) {
            let _ = child.kill();
            panic!("chromium did not finish within 90 s: {args:?}");
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    text(&child.wait_with_output().unwrap().stdout)
}

const SCENARIOS: &str = r#"scenarios:
  - name: reads the good patient
    steps:
      - request: { method: GET, path: /Patient/good }
        expect: { status: 200 }
  - name: a hostile body is only text
    source: "CORE-READ — a rule for the requirements view"
    tags: [hostile]
    steps:
      - request: { method: GET, path: /hostile }
        expect: { status: 201 }
  - name: nobody answers
    steps:
      - request: { method: GET, url: "CLOSED/Patient/1" }
  - name: needs appointment updates
    requires: [Appointment.update]
    steps:
      - request: { method: GET, path: /metadata }
"#;

#[test]
fn the_html_report_in_headless_chromium() {
    let Some(browser) = chromium() else {
        missing_tool("chromium", "apt-get install chromium");
        return;
    };
    let server = start_server();
    let dir = scratch("browser");
    let file = dir.join("s.yaml");
    std::fs::write(&file, SCENARIOS.replace("CLOSED", &closed_port_url())).unwrap();
    let html = dir.join("index.html");
    let out = run_with_reports(
        &dir,
        &[
            "--base-url",
            &server.base_url,
            "--html",
            html.to_str().unwrap(),
            file.to_str().unwrap(),
        ],
    );
    assert_eq!(out.status.code(), Some(1), "{}", text(&out.stderr));
    let url = format!("file://{}", html.display());
    let profile = dir.join("profile");

    let shot = Path::new(env!("CARGO_TARGET_TMPDIR")).join("html-report.png");
    let _ = std::fs::remove_file(&shot);
    headless(
        browser,
        &profile,
        &[
            "--window-size=1280,1600",
            &format!("--screenshot={}", shot.display()),
            &url,
        ],
    );
    let png = std::fs::read(&shot).expect("a screenshot in target/");
    assert!(
        png.starts_with(b"\x89PNG") && png.len() > 10_000,
        "{} bytes",
        png.len()
    );

    // Preset to failures only through the address, as a user would share it.
    let dom = headless(
        browser,
        &profile,
        &[
            "--virtual-time-budget=3000",
            "--dump-dom",
            &format!("{url}#verdict=failed"),
        ],
    );
    assert!(dom.contains("id=\"requirements\""), "{dom}");
    assert!(
        dom.contains("CORE-READ"),
        "the rule is in the requirements view"
    );
    assert!(
        dom.contains("status: expected 201, got 200"),
        "the failed check is shown"
    );
    // The page's script ran: the filter hid everything but the failure.
    assert!(dom.contains("1 of 4 shown"), "{dom}");
    let rows: Vec<&str> = dom
        .split("<tr class=\"scenario\"")
        .skip(1)
        .map(|r| r.split('>').next().unwrap_or(""))
        .collect();
    assert_eq!(rows.len(), 4);
    assert!(rows[0].contains("data-verdict=\"failed\"") && !rows[0].contains("hidden"));
    assert!(
        rows[1..].iter().all(|r| r.contains("hidden=\"\"")),
        "{rows:?}"
    );
    // The hostile body is text on the page and did nothing.
    assert!(
        dom.contains("&lt;script&gt;document.documentElement.setAttribute"),
        "{dom}"
    );
    let root_tag = dom.split('>').find(|t| t.contains("<html")).unwrap_or("");
    assert!(
        !root_tag.contains("data-pwned"),
        "the hostile body ran: {root_tag}"
    );
    assert!(!dom.contains("data-pwned=\""), "the hostile body ran");
}
