//! What each command does, as functions that return an exit code: `main` only
//! parses arguments and calls these, and tests can call them directly.

use std::collections::{BTreeMap, BTreeSet};
use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::path::PathBuf;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use libtest_mimic::{Arguments, Completion, Failed, Trial};
use serde_json::{Map, Value};

use crate::auth::Auth;
use crate::capability::Capabilities;
use crate::cli::{
    Color, CompareArgs, CompareFormat, Partition, PathArgs, RunArgs, ServeArgs, VerifyArgs,
    pairs_to_map,
};
use crate::compare::{self, Comparison};
use crate::diag::Diagnostic;
use crate::evidence::{self, SignatureCheck};
use crate::exit;
use crate::http::{HttpClient, HttpSettings};
use crate::interrupt::Interrupt;
use crate::record::{
    FileKind, InputFile, RunRecord, SCHEMA_VERSION, ScenarioRecord, TargetInfo, Verdict,
};
use crate::redact::Redactor;
use crate::report::{self, ReportPaths};
use crate::runner::{Runner, TargetSettings};
use crate::sandbox;
use crate::scenario::load::display_path;
use crate::scenario::{LoadOptions, Scenario, SuiteFile, load};
use crate::spill::Spill;
use crate::target::{self, Resolved, TargetFile};
use crate::template::{SlotClock, Templates, fhir_instant};

const DEFAULT_SCENARIOS: &str = "scenarios";

fn default_paths(paths: &[PathBuf]) -> Vec<PathBuf> {
    if paths.is_empty() {
        vec![PathBuf::from(DEFAULT_SCENARIOS)]
    } else {
        paths.to_vec()
    }
}

fn print_diagnostics(diags: &[Diagnostic]) {
    for d in diags {
        eprintln!("{d}\n");
    }
    let n = diags.len();
    eprintln!(
        "error: {n} problem{} in scenario files; nothing was run",
        if n == 1 { "" } else { "s" }
    );
}

fn load_or_report(paths: &[PathBuf], opts: &LoadOptions) -> Result<Vec<SuiteFile>, u8> {
    load(&default_paths(paths), opts).map_err(|diags| {
        print_diagnostics(&diags);
        exit::INVALID
    })
}

/// `fhirconf check`: exit 0 when every file is valid, 2 otherwise.
pub fn check(args: &PathArgs) -> u8 {
    match load_or_report(&args.paths, &LoadOptions::default()) {
        Ok(suites) => {
            let n: usize = suites.iter().map(|s| s.scenarios.len()).sum();
            println!("{} files, {n} scenarios: no problems found", suites.len());
            exit::SUCCESS
        }
        Err(code) => code,
    }
}

/// `fhirconf list`: one block per scenario with its id, source and tags.
pub fn list(args: &PathArgs) -> u8 {
    match load_or_report(&args.paths, &LoadOptions::default()) {
        Ok(suites) => {
            for s in suites.iter().flat_map(|f| &f.scenarios) {
                println!("{}", s.id);
                println!("    source:   {}", s.source.as_deref().unwrap_or("-"));
                println!(
                    "    tags:     {}",
                    if s.tags.is_empty() {
                        "-".to_owned()
                    } else {
                        s.tags.join(", ")
                    }
                );
                if !s.requires.is_empty() {
                    println!(
                        "    requires: {}",
                        s.requires
                            .iter()
                            .map(ToString::to_string)
                            .collect::<Vec<_>>()
                            .join(", ")
                    );
                }
            }
            exit::SUCCESS
        }
        Err(code) => code,
    }
}

fn sandbox_config(
    features: BTreeMap<String, String>,
    defects: &[String],
) -> Result<sandbox::SandboxConfig, String> {
    let config = sandbox::SandboxConfig {
        features,
        defects: defects.iter().cloned().collect(),
        ..sandbox::SandboxConfig::default()
    };
    config.validate()?;
    Ok(config)
}

fn runtime() -> Result<tokio::runtime::Runtime, String> {
    tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .map_err(|e| format!("cannot start the async runtime: {e}"))
}

/// `fhirconf serve`: runs the sandbox until Ctrl-C.
pub fn serve(args: &ServeArgs) -> u8 {
    if args.list_defects {
        for d in sandbox::DEFECTS {
            println!("{:<30} {}", d.id, d.description);
        }
        return exit::SUCCESS;
    }
    if args.list_features {
        for f in sandbox::FEATURES {
            println!(
                "{:<16} {:<28} default {:<10} {}",
                f.name, f.values, f.default, f.description
            );
        }
        return exit::SUCCESS;
    }
    let config = match sandbox_config(pairs_to_map(&args.features), &args.defects) {
        Ok(c) => c,
        Err(e) => return invalid(e),
    };
    let rt = match runtime() {
        Ok(rt) => rt,
        Err(e) => return invalid(e),
    };
    rt.block_on(async {
        let server = match sandbox::start(config, SocketAddr::new(args.bind, args.port)).await {
            Ok(s) => s,
            Err(e) => {
                return invalid(format!("cannot listen on {}:{}: {e}", args.bind, args.port));
            }
        };
        println!("fhirconf sandbox listening on {}", server.base_url());
        println!("press Ctrl-C to stop");
        let _ = tokio::signal::ctrl_c().await;
        server.stop().await;
        exit::SUCCESS
    })
}

/// Everything `run` needs before it starts a server or sends a request.
struct Plan {
    suites: Vec<SuiteFile>,
    target: TargetFile,
    resolved: Resolved,
    settings: HttpSettings,
    vars: Map<String, Value>,
    secrets: Vec<String>,
    paths: ReportPaths,
    baseline: Option<Baseline>,
    evidence_key: Option<ed25519_dalek::SigningKey>,
}

/// The run record given to `--baseline`, read before anything is sent.
struct Baseline {
    file: InputFile,
    record: RunRecord,
}

/// Reads `--baseline`, checks `--evidence` and reads `--evidence-key`: a problem with
/// any of them stops the run before anything is sent.
fn plan_baseline_and_evidence(
    args: &RunArgs,
) -> Result<(Option<Baseline>, Option<ed25519_dalek::SigningKey>), String> {
    let baseline = match &args.baseline {
        None => None,
        Some(path) => Some(Baseline {
            file: InputFile::read(path, FileKind::Baseline)?,
            record: RunRecord::read(path)?,
        }),
    };
    if let Some(dir) = &args.evidence {
        evidence::check_destination(dir)?;
    }
    let key = match &args.evidence_key {
        None => None,
        Some(path) => Some(evidence::load_signing_key(path)?),
    };
    Ok((baseline, key))
}

/// Every file the run reads, for the run record and the evidence folder: the target
/// file, each scenario file, its fixtures, and the baseline.
fn input_files(
    suites: &[SuiteFile],
    target: &TargetFile,
    baseline: Option<&Baseline>,
) -> Vec<InputFile> {
    let mut files: Vec<InputFile> = Vec::new();
    if let (Some(sha256), Some(_)) = (&target.sha256, &target.path) {
        files.push(InputFile {
            path: target.display.clone(),
            kind: FileKind::Target,
            sha256: sha256.clone(),
        });
    }
    for suite in suites {
        files.push(InputFile {
            path: suite.display.clone(),
            kind: FileKind::Scenario,
            sha256: suite.sha256.clone(),
        });
        for fixture in &suite.fixtures {
            if !files.iter().any(|f| f.path == fixture.display) {
                files.push(InputFile {
                    path: fixture.display.clone(),
                    kind: FileKind::Fixture,
                    sha256: fixture.sha256.clone(),
                });
            }
        }
    }
    files.extend(baseline.map(|b| b.file.clone()));
    files
}

/// Says `error: {msg}` and gives the exit code of a run that could not be made.
fn invalid(msg: impl std::fmt::Display) -> u8 {
    eprintln!("error: {msg}");
    exit::INVALID
}

fn print_errors(errors: &[String]) -> u8 {
    for e in errors {
        eprintln!("error: {e}");
    }
    eprintln!("error: the target is not usable; nothing was run");
    exit::INVALID
}

fn plan(args: &RunArgs) -> Result<Plan, u8> {
    if args.jobs == 0 {
        return Err(invalid("--jobs must be at least 1".to_owned()));
    }
    if let Some(t) = args.timeout
        && !(t.is_finite() && t > 0.0 && t <= 86_400.0)
    {
        return Err(invalid(format!(
            "--timeout must be between 0 and 86400 seconds, found {t}"
        )));
    }
    if let Some(url) = &args.base_url {
        match reqwest::Url::parse(url) {
            Ok(u) if matches!(u.scheme(), "http" | "https") && u.host().is_some() => {}
            _ => return Err(invalid(format!("--base-url `{url}` is not an http(s) URL"))),
        }
    }
    let mut target = match &args.target {
        Some(path) => target::load(path).map_err(|diags| {
            for d in &diags {
                eprintln!("{d}\n");
            }
            eprintln!("error: the target file is invalid; nothing was run");
            exit::INVALID
        })?,
        None if args.base_url.is_some() => TargetFile::external(),
        None => target::builtin_sandbox(),
    };
    if let Some(url) = &args.base_url {
        target.base_url = Some(url.trim_end_matches('/').to_owned());
    }
    if target.base_url.is_some() && !(args.features.is_empty() && args.defects.is_empty()) {
        return Err(invalid(
            "--feature and --defect configure the built-in sandbox; they cannot be used with an external server (declare its features in the target file)".to_owned(),
        ));
    }
    if target.tls.insecure {
        eprintln!(
            "warning: {}: tls.insecure is set: server certificates are not checked",
            target.display
        );
    }
    let (baseline, evidence_key) = plan_baseline_and_evidence(args).map_err(invalid)?;
    // Variables: for a sandbox target its seed data's, then the target's, then the
    // command line's (which win).
    let mut vars = Map::new();
    if target.base_url.is_none() {
        for (k, v) in sandbox::seed_vars() {
            vars.insert(k.to_owned(), Value::String(v));
        }
    }
    vars.extend(target.vars.clone());
    let mut known: BTreeSet<String> = vars.keys().cloned().collect();
    known.extend(target.secret_vars.iter().map(|(k, _)| k.clone()));
    known.extend(
        args.vars
            .iter()
            .chain(&args.secret_vars)
            .map(|(k, _)| k.clone()),
    );
    let opts = LoadOptions { known_vars: known };
    let suites = load_or_report(&args.paths, &opts)?;

    // Only now read secrets: a scenario error should not need them.
    let base_for_urls = target
        .base_url
        .clone()
        .unwrap_or_else(|| "http://127.0.0.1".to_owned());
    let resolved = target
        .resolve(&base_for_urls, &|name| std::env::var(name).ok())
        .map_err(|e| print_errors(&e))?;
    let mut secrets = resolved.secrets.clone();
    for (k, v) in &resolved.secret_vars {
        vars.insert(k.clone(), Value::String(v.clone()));
    }
    for (k, v) in &args.vars {
        vars.insert(k.clone(), Value::String(v.clone()));
    }
    for (k, v) in &args.secret_vars {
        vars.insert(k.clone(), Value::String(v.clone()));
        secrets.push(v.clone());
    }
    let mut default_headers = vec![("Accept".to_owned(), "application/fhir+json".to_owned())];
    for (name, value) in &target.headers {
        default_headers.retain(|(n, _)| !n.eq_ignore_ascii_case(name));
        default_headers.push((name.clone(), value.clone()));
    }
    let settings = HttpSettings {
        timeout: Duration::from_secs_f64(args.timeout.or(target.timeout_secs).unwrap_or(30.0)),
        max_body_bytes: args.max_body,
        default_headers,
        rate_limit: target.rate_limit,
        ca_pem: resolved.ca_pem.clone(),
        identity_pem: resolved.identity_pem.clone(),
        insecure: target.tls.insecure,
    };
    let paths = ReportPaths {
        junit: args.junit.clone(),
        json: args.json.clone(),
        markdown: args.markdown.clone(),
        html: args.html.clone().unwrap_or_else(|| {
            args.junit
                .parent()
                .unwrap_or(std::path::Path::new(""))
                .join("index.html")
        }),
    };
    Ok(Plan {
        suites,
        target,
        resolved,
        settings,
        vars,
        secrets,
        paths,
        baseline,
        evidence_key,
    })
}

/// Whether a failed connection failed in TLS (an untrusted or wrong certificate):
/// a setting to fix before anything can run, not a server to judge.
fn is_tls_failure(error: &str) -> bool {
    let e = error.to_ascii_lowercase();
    ["certificate", "tls", "handshake", "ssl"]
        .iter()
        .any(|w| e.contains(w))
        || closed_after_handshake(error)
}

/// hyper's words for a connection that closed before the first request could be
/// sent. Over HTTPS that is a server refusing the handshake after the client thinks it
/// is done: with TLS 1.3 a server that requires a client certificate rejects a client
/// without one only then, and whether the client sees the alert or just the close is a
/// race.
fn closed_after_handshake(error: &str) -> bool {
    error.contains("connection was not ready")
}

/// The scenarios of one shard, in run order. Every scenario lands in exactly one shard
/// for a given selection, whatever machine computes it.
fn in_shard(scenarios: Vec<Arc<Scenario>>, partition: Partition) -> Vec<Arc<Scenario>> {
    scenarios
        .into_iter()
        .enumerate()
        .filter(|(i, s)| match partition {
            Partition::Slice { shard, total } => *i as u64 % total == shard - 1,
            Partition::Hash { shard, total } => {
                let digest = crate::record::sha256_hex(s.id.as_bytes());
                let h = u64::from_str_radix(&digest[..16], 16).unwrap_or(0);
                h % total == shard - 1
            }
        })
        .map(|(_, s)| s)
        .collect()
}

fn selected_by_tags(s: &Scenario, args: &RunArgs) -> bool {
    (args.tags.is_empty() || s.tags.iter().any(|t| args.tags.contains(t)))
        && !s.tags.iter().any(|t| args.exclude_tags.contains(t))
}

fn libtest_arguments(args: &RunArgs) -> Arguments {
    Arguments {
        filter: args.filter.clone(),
        exact: args.exact,
        skip: args.skip.clone(),
        include_ignored: args.include_ignored,
        ignored: args.ignored,
        list: args.list,
        test_threads: Some(args.jobs),
        quiet: args.quiet,
        color: Some(match args.color {
            Color::Auto => libtest_mimic::ColorSetting::Auto,
            Color::Always => libtest_mimic::ColorSetting::Always,
            Color::Never => libtest_mimic::ColorSetting::Never,
        }),
        ..Arguments::default()
    }
}

/// `fhirconf run`.
pub fn run(args: &RunArgs) -> u8 {
    let plan = match plan(args) {
        Ok(p) => p,
        Err(code) => return code,
    };
    let sandbox_cfg = match &plan.target.base_url {
        Some(_) => None,
        None => {
            let mut features = plan.target.features.clone();
            features.extend(pairs_to_map(&args.features));
            match sandbox_config(features, &args.defects) {
                Ok(c) => Some(c),
                Err(e) => return invalid(e),
            }
        }
    };
    let rt = match runtime() {
        Ok(rt) => rt,
        Err(e) => return invalid(e),
    };
    let started_at = fhir_instant(jiff::Timestamp::now());
    let clock = Instant::now();

    // The target: an external server, or the built-in sandbox on a free loopback port.
    let (base_url, features, server) = match sandbox_cfg {
        None => (
            plan.target.base_url.clone().unwrap_or_default(),
            plan.target.features.clone(),
            None,
        ),
        Some(cfg) => {
            let features = cfg.declared_features();
            let loopback = SocketAddr::new(IpAddr::V4(Ipv4Addr::LOCALHOST), 0);
            match rt.block_on(sandbox::start(cfg, loopback)) {
                Ok(server) => (server.base_url().to_owned(), features, Some(server)),
                Err(e) => return invalid(format!("cannot start the built-in sandbox: {e}")),
            }
        }
    };
    let stop = |server: Option<sandbox::RunningSandbox>| {
        if let Some(server) = server {
            rt.block_on(server.stop());
        }
    };

    let client = match HttpClient::new(plan.settings.clone()) {
        Ok(c) => c,
        Err(e) => {
            stop(server);
            return print_errors(&[e]);
        }
    };
    let redactor = Redactor::new(plan.secrets.clone());
    let auth_method = match plan.resolved.auth.clone().absolute(&base_url) {
        Ok(a) => a,
        Err(e) => {
            stop(server);
            return print_errors(&[format!("auth.token_url: {e}")]);
        }
    };
    let auth = Arc::new(Auth::new(
        auth_method,
        client.reqwest().clone(),
        redactor.clone(),
    ));
    let capabilities = if args.list {
        Capabilities::default()
    } else {
        // Credentials first: a refused client stops the run before any scenario.
        if let Err(e) = rt.block_on(auth.header()) {
            stop(server);
            return print_errors(&[format!("auth: {e}")]);
        }
        rt.block_on(Capabilities::fetch(&client, &base_url))
    };
    if let Some(e) = &capabilities.error {
        if base_url.starts_with("https:") && is_tls_failure(e) {
            stop(server);
            let hint = if closed_after_handshake(e) {
                "the server closed the connection after the TLS handshake; if it requires a client certificate, set `tls.client_cert` and `tls.client_key` in the target"
            } else {
                "trust its CA with `tls.ca_file` in the target"
            };
            return print_errors(&[format!(
                "tls: cannot connect to {base_url}: {} ({hint})",
                redactor.text(e)
            )]);
        }
        eprintln!(
            "warning: cannot read the CapabilityStatement ({}); only the target's features count as declared, and scenarios that require interactions will be skipped",
            redactor.text(e)
        );
    }
    let metadata_error = capabilities.error.clone();
    let server_info = capabilities.server.clone();
    let target = TargetSettings {
        base_url: base_url.clone(),
        vars: plan.vars.clone(),
        features: features.clone(),
    };
    let templates = Templates::new(Arc::new(SlotClock::random()));
    let mut runner = Runner::new(
        client,
        templates,
        target,
        capabilities,
        redactor,
        Arc::clone(&auth),
    );
    runner.strict = args.strict;
    runner.spill = match Spill::new() {
        Ok(spill) => Some(spill),
        Err(e) => {
            eprintln!(
                "warning: no temporary file for transcripts ({e}); they stay in memory until the reports are written"
            );
            None
        }
    };
    let interrupt = Interrupt::default();
    interrupt.listen(rt.handle());
    runner.interrupt = interrupt.clone();
    runner.retry_budget = Duration::from_secs_f64(
        plan.target
            .retry_budget_secs
            .unwrap_or(target::DEFAULT_RETRY_BUDGET_SECS),
    );
    let runner = Arc::new(runner);

    let files = input_files(&plan.suites, &plan.target, plan.baseline.as_ref());
    let mut scenarios: Vec<Arc<Scenario>> = plan
        .suites
        .into_iter()
        .flat_map(|f| f.scenarios)
        .filter(|s| selected_by_tags(s, args))
        .map(Arc::new)
        .collect();
    if args.read_only {
        let before = scenarios.len();
        scenarios.retain(|s| !s.writes());
        eprintln!(
            "--read-only: {} scenarios that write left out, {} remain",
            before - scenarios.len(),
            scenarios.len()
        );
    }
    if let Some(partition) = args.partition {
        let before = scenarios.len();
        scenarios = in_shard(scenarios, partition);
        eprintln!(
            "--partition: {} of {before} scenarios in this shard",
            scenarios.len()
        );
    }
    let results: Arc<Mutex<BTreeMap<String, ScenarioRecord>>> = Arc::default();
    let handle = rt.handle().clone();
    let largs = libtest_arguments(args);
    let mut trials = Vec::new();
    let mut selected = Vec::new();
    for sc in &scenarios {
        let (sc2, runner2, results2, handle2) = (
            Arc::clone(sc),
            Arc::clone(&runner),
            Arc::clone(&results),
            handle.clone(),
        );
        let trial = Trial::ignorable_test(sc.id.clone(), move || {
            let record = if runner2.interrupt.is_set() {
                Runner::skipped(&sc2, "not run: the run was interrupted".to_owned())
            } else {
                // The scenario runs as a task on the runtime, beside its connection
                // tasks: a request then needs no hand-over between threads (see
                // docs/performance.md). This thread only waits for the result.
                runner2.precheck(&sc2).unwrap_or_else(|| {
                    let (runner3, sc3) = (Arc::clone(&runner2), Arc::clone(&sc2));
                    handle2
                        .block_on(handle2.spawn(async move { runner3.run(&sc3).await }))
                        .unwrap_or_else(|e| {
                            let mut record = Runner::skipped(&sc2, String::new());
                            record.verdict = Verdict::Error;
                            record.reason = Some(format!("the scenario's task failed: {e}"));
                            record
                        })
                })
            };
            let outcome = match record.verdict {
                Verdict::Passed => Ok(Completion::Completed),
                Verdict::Skipped => Ok(Completion::ignored_with(
                    record.reason.clone().unwrap_or_default(),
                )),
                Verdict::Failed | Verdict::Error => {
                    let details = record.details();
                    Err(Failed::from(if details.is_empty() {
                        record.reason.clone().unwrap_or_default()
                    } else {
                        details
                    }))
                }
            };
            if let Ok(mut map) = results2.lock() {
                map.insert(sc2.id.clone(), record);
            }
            outcome
        })
        .with_ignored_flag(sc.ignore.is_some());
        if !largs.is_filtered_out(&trial) {
            selected.push(Arc::clone(sc));
        }
        trials.push(trial);
    }
    let _conclusion = libtest_mimic::run(&largs, trials);
    stop(server);
    if args.list {
        return exit::SUCCESS;
    }

    let mut done = results
        .lock()
        .map(|mut m| std::mem::take(&mut *m))
        .unwrap_or_default();
    let records = selected
        .iter()
        .map(|sc| {
            done.remove(&sc.id).unwrap_or_else(|| {
                Runner::skipped(
                    sc,
                    format!("ignored: {}", sc.ignore.as_deref().unwrap_or("not run")),
                )
            })
        })
        .collect();
    // The loaded scenarios are not needed for the reports: free them first (they are
    // as large as the records for a long suite).
    drop((selected, scenarios));
    let mut record = RunRecord {
        schema_version: SCHEMA_VERSION,
        harness: "fhirconf".to_owned(),
        harness_version: env!("CARGO_PKG_VERSION").to_owned(),
        target: TargetInfo {
            base_url,
            sandbox: plan.target.base_url.is_none(),
            features,
            defects: args.defects.clone(),
            metadata_error,
        },
        server: server_info,
        files,
        baseline: None,
        started_at,
        finished_at: fhir_instant(jiff::Timestamp::now()),
        duration_secs: clock.elapsed().as_secs_f64(),
        scenarios: records,
    };
    let comparison = plan.baseline.as_ref().map(|b| {
        let cmp = compare::compare(&b.record, &b.file.path, &record, "this run");
        record.baseline = Some(cmp.to_baseline_info(b.file.path.clone(), b.file.sha256.clone()));
        cmp
    });
    let code = finish(
        args,
        &plan.paths,
        plan.evidence_key.as_ref(),
        &record,
        comparison.as_ref(),
    );
    if interrupt.is_set() && code != exit::INVALID {
        eprintln!("the run was interrupted: the reports cover what ran");
        return exit::INTERRUPTED;
    }
    code
}

/// Writes the reports (and the evidence folder), says where they are and how the run
/// compares with its baseline, and returns the exit code.
fn finish(
    args: &RunArgs,
    paths: &ReportPaths,
    evidence_key: Option<&ed25519_dalek::SigningKey>,
    record: &RunRecord,
    comparison: Option<&Comparison>,
) -> u8 {
    if let Err(e) = report::write_all(record, paths) {
        return invalid(e);
    }
    match report::append_step_summary(record) {
        Ok(Some(path)) => eprintln!("summary appended to {}", path.display()),
        Ok(None) => {}
        Err(e) => eprintln!("warning: {e}"),
    }
    eprintln!(
        "reports: {}, {}, {}, {}",
        paths.junit.display(),
        paths.json.display(),
        paths.markdown.display(),
        paths.html.display()
    );
    if let Some(dir) = &args.evidence {
        let evidence = evidence::Evidence {
            reports: paths,
            files: &record.files,
            harness_version: &record.harness_version,
            created_at: &record.finished_at,
        };
        match evidence::write(dir, &evidence, evidence_key) {
            Ok(n) => eprintln!(
                "evidence: {} ({n} files{}; check it with `fhirconf verify {}`)",
                dir.display(),
                if evidence_key.is_some() {
                    ", signed"
                } else {
                    ""
                },
                dir.display()
            ),
            Err(e) => return invalid(format!("evidence not written: {e}")),
        }
    }
    if let Some(cmp) = comparison {
        eprint!("\n{}", compare::render(cmp, compare::Format::Text));
        let code = exit::for_record(record);
        eprintln!(
            "baseline gate: {}; {} tolerated (they failed in the baseline too)",
            match cmp.regressions.len() {
                0 => "no regressions, the run passes".to_owned(),
                1 => "1 regression fails the run".to_owned(),
                n => format!("{n} regressions fail the run"),
            },
            match cmp.known_failures.len() {
                1 => "1 known failure".to_owned(),
                n => format!("{n} known failures"),
            }
        );
        return code;
    }
    exit::for_record(record)
}

/// `fhirconf compare`: exit 1 when the current run has regressions, 2 when a file
/// cannot be read as a run record.
pub fn compare(args: &CompareArgs) -> u8 {
    let records = RunRecord::read(&args.baseline)
        .and_then(|b| RunRecord::read(&args.current).map(|c| (b, c)));
    let (baseline, current) = match records {
        Ok(pair) => pair,
        Err(e) => return invalid(e),
    };
    let cmp = compare::compare(
        &baseline,
        &display_path(&args.baseline),
        &current,
        &display_path(&args.current),
    );
    let format = match args.format {
        CompareFormat::Text => compare::Format::Text,
        CompareFormat::Markdown => compare::Format::Markdown,
    };
    print!("{}", compare::render(&cmp, format));
    if cmp.has_regressions() {
        exit::FAILED
    } else {
        exit::SUCCESS
    }
}

/// `fhirconf verify`: exit 0 when every file matches the manifest (and the signature
/// holds, with `--key`), 1 naming each problem, 2 when the folder or key is unusable.
pub fn verify(args: &VerifyArgs) -> u8 {
    let key = match args.key.as_deref().map(evidence::load_verifying_key) {
        None => None,
        Some(Ok(k)) => Some(k),
        Some(Err(e)) => return invalid(e),
    };
    let v = match evidence::verify(&args.dir, key.as_ref()) {
        Ok(v) => v,
        Err(e) => return invalid(e),
    };
    let dir = display_path(&args.dir);
    println!(
        "{dir}: evidence written by fhirconf {} at {}; {} files in the manifest",
        v.harness_version, v.created_at, v.listed
    );
    for p in &v.problems {
        println!("{p}");
    }
    let signature = match v.signature {
        SignatureCheck::Valid => "signature valid",
        SignatureCheck::Invalid => "signature NOT valid",
        SignatureCheck::NotChecked => "signed, signature not checked (give --key PUBLIC.pem)",
        SignatureCheck::Unsigned => "not signed",
    };
    if v.problems.is_empty() {
        println!("ok: every file matches the manifest; {signature}");
        exit::SUCCESS
    } else {
        let n = v.problems.len();
        println!(
            "FAILED: {n} problem{} found; {signature}",
            if n == 1 { "" } else { "s" }
        );
        exit::FAILED
    }
}
