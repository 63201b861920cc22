//! Shared by the integration tests: a FHIR-ish server on 127.0.0.1 that answers
//! correctly on some routes and wrongly on purpose on others, and helpers to run the
//! real `fhirconf` binary.

mod command;
pub mod faults;
pub mod sandbox_client;
pub mod tls;

pub use command::{Fhirconf, Ran};

use std::collections::{BTreeSet, HashMap};
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::Output;
use std::sync::{Arc, Mutex, PoisonError};
use std::time::{Duration, Instant};

use axum::Router;
use axum::body::Bytes;
use axum::extract::{Path as UrlPath, Query, State};
use axum::http::{HeaderMap, HeaderValue, Method, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::{any, get, post};
use serde_json::{Value, json};

pub const FHIR: &str = "application/fhir+json";

/// A body that would mark the page if a report ever let it run.
pub const HOSTILE_BODY: &str = "<script>document.documentElement.setAttribute('data-pwned','script')</script><img src=x onerror=\"document.documentElement.setAttribute('data-pwned','img')\">";

/// When each request reached a keyed route.
#[derive(Clone, Default)]
pub struct Hits(Arc<Mutex<HashMap<String, Vec<Instant>>>>);

impl Hits {
    pub fn get(&self, key: &str) -> usize {
        self.0.lock().unwrap().get(key).map_or(0, Vec::len)
    }

    pub fn times(&self, key: &str) -> Vec<Instant> {
        self.0.lock().unwrap().get(key).cloned().unwrap_or_default()
    }

    /// The most requests to `/held/{key}` that were in flight at once.
    pub fn most_held(&self, key: &str) -> usize {
        let (ins, outs) = (self.times(key), self.times(&format!("{key}/out")));
        ins.iter()
            .map(|t| {
                let started = ins.iter().filter(|a| *a <= t).count();
                started - outs.iter().filter(|b| *b <= t).count().min(started)
            })
            .max()
            .unwrap_or(0)
    }

    /// Records a hit; returns how many there were before it.
    fn record(&self, key: &str) -> usize {
        let mut map = self.0.lock().unwrap();
        let times = map.entry(key.to_owned()).or_default();
        times.push(Instant::now());
        times.len() - 1
    }
}

fn fhir(status: StatusCode, body: Value) -> Response {
    (status, [(header::CONTENT_TYPE, FHIR)], body.to_string()).into_response()
}

fn patient(id: &str, family: &str, active: bool) -> Value {
    json!({"resourceType": "Patient", "id": id, "meta": {"versionId": "1"}, "active": active,
           "name": [{"family": family, "given": ["Jo"]}], "telecom": [{"system": "email", "value": "jo@example.org", "rank": 1}]})
}

fn outcome(severity: &str, code: &str, text: &str) -> Value {
    json!({"resourceType": "OperationOutcome", "issue": [{"severity": severity, "code": code, "details": {"text": text}}]})
}

async fn read_patient(UrlPath(id): UrlPath<String>) -> Response {
    match id.as_str() {
        "good" => {
            let mut r = fhir(StatusCode::OK, patient("good", "Doe", true));
            r.headers_mut()
                .insert(header::ETAG, HeaderValue::from_static("W/\"1\""));
            r
        }
        // Wrong on purpose: the wrong family, inactive, and application/json.
        "wrong" => (
            StatusCode::OK,
            [(header::CONTENT_TYPE, "application/json")],
            patient("wrong", "Roe", false).to_string(),
        )
            .into_response(),
        _ => fhir(
            StatusCode::NOT_FOUND,
            outcome("error", "not-found", &format!("Patient/{id} is not known")),
        ),
    }
}

async fn create_patient(body: Bytes) -> Response {
    let Ok(mut doc) = serde_json::from_slice::<Value>(&body) else {
        return fhir(
            StatusCode::BAD_REQUEST,
            outcome("error", "invalid", "body is not JSON"),
        );
    };
    let id = format!("p-{}", uuid::Uuid::new_v4().simple());
    doc["id"] = json!(id);
    let mut r = fhir(StatusCode::CREATED, doc);
    let location = format!("http://127.0.0.1/Patient/{id}/_history/1");
    r.headers_mut()
        .insert(header::LOCATION, HeaderValue::from_str(&location).unwrap());
    r
}

async fn search_patient(Query(q): Query<Vec<(String, String)>>) -> Response {
    let name = q
        .iter()
        .find(|(k, _)| k == "name")
        .map(|(_, v)| v.clone())
        .unwrap_or_default();
    let entries: Vec<Value> = if name == "Doe" {
        vec![
            json!({"resource": patient("good", "Doe", true), "search": {"mode": "match"}}),
            json!({"resource": {"resourceType": "Organization", "id": "o1"}, "search": {"mode": "include"}}),
        ]
    } else {
        vec![]
    };
    let matches = entries
        .iter()
        .filter(|e| e["search"]["mode"] == "match")
        .count();
    fhir(
        StatusCode::OK,
        json!({"resourceType": "Bundle", "type": "searchset", "total": matches, "entry": entries}),
    )
}

/// Echoes what it received, so scenarios can assert on the request they sent.
async fn echo(
    method: Method,
    headers: HeaderMap,
    Query(q): Query<Vec<(String, String)>>,
    body: Bytes,
) -> Response {
    let headers: serde_json::Map<String, Value> = headers
        .iter()
        .map(|(k, v)| (k.as_str().to_owned(), json!(v.to_str().unwrap_or(""))))
        .collect();
    let query: Vec<Value> = q.iter().map(|(k, v)| json!([k, v])).collect();
    let body_text = String::from_utf8_lossy(&body).into_owned();
    let body_json = serde_json::from_slice::<Value>(&body).unwrap_or(Value::Null);
    fhir(
        StatusCode::OK,
        json!({"method": method.as_str(), "headers": headers, "query": query, "body": body_text, "json": body_json}),
    )
}

async fn hit(State(hits): State<Hits>, UrlPath(key): UrlPath<String>) -> Response {
    hits.record(&key);
    fhir(StatusCode::OK, json!({"resourceType": "Basic", "id": key}))
}

/// `/hang/{key}`: records the hit, then answers only after two minutes (a cleanup or a
/// token endpoint that hangs; a test's own bounds end it long before).
async fn hang(State(hits): State<Hits>, UrlPath(key): UrlPath<String>) -> Response {
    hits.record(&key);
    tokio::time::sleep(Duration::from_secs(120)).await;
    fhir(StatusCode::OK, json!({"resourceType": "Basic", "id": key}))
}

/// `/held/{key}`: records the hit under `key`, holds the request 100 ms, records its
/// end under `key/out` and answers: how many were in flight at once can be read back.
async fn held(State(hits): State<Hits>, UrlPath(key): UrlPath<String>) -> Response {
    hits.record(&key);
    tokio::time::sleep(Duration::from_millis(100)).await;
    hits.record(&format!("{key}/out"));
    fhir(StatusCode::OK, json!({"resourceType": "Basic", "id": key}))
}

/// `/busy/{key}/{status}/{n}/{retry_after}`: the first `n` requests get `status` (429
/// or 503) with `Retry-After: retry_after` (`none`: no header), later ones 200.
async fn busy(
    State(hits): State<Hits>,
    UrlPath((key, status, n, retry_after)): UrlPath<(String, u16, usize, String)>,
) -> Response {
    if hits.record(&key) >= n {
        return fhir(StatusCode::OK, json!({"resourceType": "Basic", "id": key}));
    }
    let status = StatusCode::from_u16(status).unwrap_or(StatusCode::TOO_MANY_REQUESTS);
    let mut r = fhir(status, outcome("error", "throttled", "Too Many Requests"));
    if retry_after != "none" {
        r.headers_mut().insert(
            header::RETRY_AFTER,
            HeaderValue::from_str(&retry_after).unwrap(),
        );
    }
    r
}

async fn metadata() -> Response {
    fhir(
        StatusCode::OK,
        json!({"resourceType": "CapabilityStatement", "status": "active", "fhirVersion": "4.0.1", "kind": "instance",
        "rest": [{"mode": "server", "resource": [{"type": "Patient", "interaction": [{"code": "read"}, {"code": "create"}, {"code": "search-type"}]}]}]}),
    )
}

pub fn app(hits: Hits) -> Router {
    Router::new()
        .route("/metadata", get(metadata))
        .route("/Patient", get(search_patient).post(create_patient))
        .route("/Patient/{id}", get(read_patient))
        .route("/echo", any(echo))
        // The request body back as the response, as FHIR JSON (for validation).
        .route(
            "/mirror",
            post(|body: Bytes| async move {
                (StatusCode::OK, [(header::CONTENT_TYPE, FHIR)], body).into_response()
            }),
        )
        .route("/hit/{key}", any(hit))
        .route("/hang/{key}", any(hang))
        .route("/held/{key}", any(held))
        .route("/busy/{key}/{status}/{n}/{retry_after}", any(busy))
        .route(
            "/hostile",
            get(|| async {
                (
                    StatusCode::OK,
                    [(header::CONTENT_TYPE, "text/html")],
                    HOSTILE_BODY,
                )
                    .into_response()
            }),
        )
        .route(
            "/unprocessable",
            any(|| async {
                fhir(
                    StatusCode::UNPROCESSABLE_ENTITY,
                    outcome(
                        "error",
                        "business-rule",
                        "This appointment time is no longer available.",
                    ),
                )
            }),
        )
        .route(
            "/html",
            get(|| async {
                (
                    StatusCode::OK,
                    [(header::CONTENT_TYPE, FHIR)],
                    "<html>oops</html>",
                )
                    .into_response()
            }),
        )
        .route(
            "/slow",
            get(|| async {
                tokio::time::sleep(Duration::from_secs(5)).await;
                fhir(StatusCode::OK, json!({}))
            }),
        )
        .route(
            "/big",
            get(|| async { fhir(StatusCode::OK, json!({"data": "x".repeat(200_000)})) }),
        )
        .with_state(hits)
}

/// A running test server; stops when dropped (its runtime is dropped with it).
pub struct TestServer {
    pub base_url: String,
    pub hits: Hits,
    _runtime: tokio::runtime::Runtime,
}

pub fn start_server() -> TestServer {
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap();
    let hits = Hits::default();
    let listener = runtime
        .block_on(tokio::net::TcpListener::bind(SocketAddr::from((
            [127, 0, 0, 1],
            0,
        ))))
        .unwrap();
    let addr = listener.local_addr().unwrap();
    let app = app(hits.clone());
    runtime.spawn(async move { axum::serve(listener, app).await.ok() });
    TestServer {
        base_url: format!("http://{addr}"),
        hits,
        _runtime: runtime,
    }
}

/// A port on 127.0.0.1 where nothing listens.
pub fn closed_port_url() -> String {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = listener.local_addr().unwrap();
    drop(listener);
    format!("http://{addr}")
}

pub fn root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

/// A fresh, empty folder for one test's reports. Every test of this binary runs in the
/// same process, so a name given twice would be one folder for two tests: refused.
pub fn scratch(name: &str) -> PathBuf {
    static TAKEN: Mutex<BTreeSet<String>> = Mutex::new(BTreeSet::new());
    let fresh = TAKEN
        .lock()
        .unwrap_or_else(PoisonError::into_inner)
        .insert(name.to_owned());
    assert!(
        fresh,
        "scratch(\"{name}\") is already taken by another test"
    );
    let dir = std::env::temp_dir().join(format!("fhirconf-test-{}-{name}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

/// Runs the binary with `args`, as [`Fhirconf`] does.
pub fn fhirconf(args: &[&str]) -> Output {
    Fhirconf::new().args(args).command().output().unwrap()
}

/// The built-in sandbox on a free loopback port, for tests that need to look at its
/// state (`/_sandbox/stats`) after a run; stops when dropped.
pub struct SandboxServer {
    pub base_url: String,
    pub runtime: tokio::runtime::Runtime,
}

pub fn start_sandbox(features: &[(&str, &str)]) -> SandboxServer {
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap();
    let config = fhirconf::sandbox::SandboxConfig {
        features: features
            .iter()
            .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
            .collect(),
        ..Default::default()
    };
    config.validate().unwrap();
    let server = runtime
        .block_on(fhirconf::sandbox::start(
            config,
            SocketAddr::from(([127, 0, 0, 1], 0)),
        ))
        .unwrap();
    let base_url = server.base_url().to_owned();
    // Keep it running for the runtime's life.
    std::mem::forget(server);
    SandboxServer { base_url, runtime }
}

impl SandboxServer {
    pub fn stats(&self) -> Value {
        self.get_json("/_sandbox/stats")
    }

    pub fn get_json(&self, path: &str) -> Value {
        let url = format!("{}{path}", self.base_url);
        self.runtime
            .block_on(async { reqwest::get(url).await.unwrap().json().await.unwrap() })
    }

    /// A token from the sandbox's own client-credentials endpoint.
    pub fn token(&self) -> String {
        let url = format!("{}/auth/token", self.base_url);
        self.runtime.block_on(async {
            let r: Value = reqwest::Client::new()
                .post(url)
                .header("content-type", "application/x-www-form-urlencoded")
                .body("grant_type=client_credentials&client_id=fhirconf-sandbox&client_secret=sandbox-secret")
                .send()
                .await
                .unwrap()
                .json()
                .await
                .unwrap();
            r["access_token"].as_str().unwrap().to_owned()
        })
    }
}

/// `run` with every report in `dir`, as [`Fhirconf::reports`] adds them; returns the
/// output.
pub fn run_with_reports(dir: &Path, args: &[&str]) -> Output {
    Fhirconf::new()
        .arg("run")
        .args(args)
        .reports(dir)
        .command()
        .output()
        .unwrap()
}

/// Writes `text` to `dir/name` and returns the path as an argument.
pub fn write_file(dir: &Path, name: &str, text: &str) -> String {
    let path = dir.join(name);
    std::fs::write(&path, text).unwrap();
    path.display().to_string()
}

/// Each scenario's verdict in a run record, in order.
pub fn verdicts(record: &Value) -> Vec<String> {
    record["scenarios"]
        .as_array()
        .unwrap()
        .iter()
        .map(|s| s["verdict"].as_str().unwrap().to_owned())
        .collect()
}

/// Each scenario's name and verdict in a run record, in order.
pub fn named_verdicts(record: &Value) -> Vec<(String, String)> {
    record["scenarios"]
        .as_array()
        .unwrap()
        .iter()
        .map(|s| {
            (
                s["name"].as_str().unwrap().to_owned(),
                s["verdict"].as_str().unwrap().to_owned(),
            )
        })
        .collect()
}

/// The run record a run wrote into `dir`.
pub fn run_record(dir: &Path) -> Value {
    serde_json::from_str(&std::fs::read_to_string(dir.join("run.json")).unwrap()).unwrap()
}

/// Everything a run showed anyone, to search for secrets: its stdout and stderr and
/// every file it wrote into `dir` (each report; the `.yaml` inputs are left out).
pub fn every_output(out: &Output, dir: &Path) -> Vec<(String, String)> {
    let mut outputs = vec![
        ("stdout".to_owned(), text(&out.stdout)),
        ("stderr".to_owned(), text(&out.stderr)),
    ];
    let mut files: Vec<PathBuf> = std::fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.is_file() && p.extension().is_none_or(|e| e != "yaml"))
        .collect();
    files.sort();
    for path in files {
        let content = String::from_utf8_lossy(&std::fs::read(&path).unwrap()).into_owned();
        outputs.push((path.display().to_string(), content));
    }
    for report in ["junit.xml", "run.json", "summary.md", "index.html"] {
        assert!(
            outputs.iter().any(|(name, _)| name.ends_with(report)),
            "{report} was not written"
        );
    }
    outputs
}

pub fn text(bytes: &[u8]) -> String {
    String::from_utf8_lossy(bytes).into_owned()
}

/// Replaces what changes between runs (ports, durations, timestamps, generated ids,
/// the harness version).
pub fn normalize(text: &str, base_url: &str) -> String {
    let mut out = text.replace(base_url, "http://SERVER");
    for (pattern, with) in [
        (r#"time="[0-9.e-]+""#, r#"time="T""#),
        (r"\(\d+ ms\)", "(T ms)"),
        (r#"timestamp="[^"]+""#, r#"timestamp="TS""#),
        (r"p-[0-9a-f]{32}", "p-ID"),
        (r"127\.0\.0\.1:\d+", "127.0.0.1:PORT"),
        (
            r#""(started_at|finished_at|created_at)": "[^"]+""#,
            r#""$1": "TS""#,
        ),
        (r#""duration_secs": [0-9.e-]+"#, r#""duration_secs": 0"#),
        (r" in \d+\.\d s \(fhirconf ", " in T s (fhirconf "),
        (r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d(\.\d+)?Z", "TS"),
    ] {
        out = regex::Regex::new(pattern)
            .unwrap()
            .replace_all(&out, with)
            .into_owned();
    }
    out.replace(env!("CARGO_PKG_VERSION"), "VERSION")
}

/// Compares with a golden file; `FHIRCONF_BLESS=1` rewrites it instead.
pub fn assert_golden(actual: &str, golden: &Path) {
    if std::env::var_os("FHIRCONF_BLESS").is_some() {
        std::fs::write(golden, actual).unwrap();
        return;
    }
    let expected = std::fs::read_to_string(golden).unwrap_or_else(|_| {
        panic!(
            "missing golden {}; run with FHIRCONF_BLESS=1",
            golden.display()
        )
    });
    if expected != actual {
        panic!(
            "{} differs from the output (FHIRCONF_BLESS=1 rewrites it):\n{}",
            golden.display(),
            similar::TextDiff::from_lines(expected.as_str(), actual)
                .unified_diff()
                .header("golden", "actual")
        );
    }
}

/// Validates with xmllint against the Jenkins xUnit schema when xmllint is installed
/// (`.ci/run` installs it, so CI always checks).
pub fn assert_schema_valid(junit: &Path) {
    let xsd = root().join("schemas/junit-10.xsd");
    assert!(xsd.is_file(), "{} is part of the repository", xsd.display());
    if std::process::Command::new("xmllint")
        .arg("--version")
        .output()
        .is_err()
    {
        missing_tool("xmllint", "apt-get install libxml2-utils");
        return;
    }
    let out = std::process::Command::new("xmllint")
        .arg("--noout")
        .arg("--schema")
        .arg(&xsd)
        .arg(junit)
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", text(&out.stderr));
}

/// A check that needs a tool which is not installed fails, naming the tool, unless
/// `FHIRCONF_ALLOW_MISSING_TOOLS=1` says skipping it is wanted (`.ci/run` never sets
/// it): a test that cannot run must not pass silently.
pub fn missing_tool(tool: &str, install: &str) {
    if std::env::var("FHIRCONF_ALLOW_MISSING_TOOLS").as_deref() == Ok("1") {
        eprintln!("{tool} is not installed: check skipped (FHIRCONF_ALLOW_MISSING_TOOLS=1)");
        return;
    }
    panic!(
        "{tool} is not installed, and this check needs it: `{install}`, or set FHIRCONF_ALLOW_MISSING_TOOLS=1 to skip the checks that need it"
    );
}
