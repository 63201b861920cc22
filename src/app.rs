//! What each command does: parse nothing, decide nothing, call the stages
//! ([`crate::pipeline`]), print what they return, and ask [`crate::exit`] for the
//! code. `main` only parses the arguments and calls these.

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Instant;

use crate::cli::{
    CompareArgs, CompareFormat, InitArgs, InputsArgs, PathArgs, RunArgs, SchemaArgs, SchemaKind,
    ServeArgs, ValidateArgs, VerifyArgs,
};
use crate::compare;
use crate::evidence;
use crate::exit;
use crate::files::display_path;
use crate::interrupt::Interrupt;
use crate::pipeline::{
    self, ConnectError, Connection, Finished, KnownFailures, Offer, Plan, PlanError, Ran, RunError,
    Selected, Selection, Selector, Terminal, Timing,
};
use crate::record::RunRecord;
use crate::report;
use crate::runner::{Runner, RunnerConfig};
use crate::sandbox;
use crate::scenario::{LoadOptions, Scenario, SuiteFile, load};
use crate::spill::Spill;
use crate::template::fhir_instant;

/// Prints a plan error: each located problem of a scenario or target file first, then
/// the error itself; returns its exit code.
fn say_plan_error(e: &PlanError) -> u8 {
    if let PlanError::Scenarios(diags) | PlanError::Target(diags) = e {
        for d in diags {
            eprintln!("{d}\n");
        }
    }
    eprintln!("error: {e}");
    exit::for_plan_error(e)
}

/// Loads scenario files for `check` and `list`, printing every problem.
fn load_or_report(args: &PathArgs) -> Result<Vec<SuiteFile>, u8> {
    let opts = LoadOptions {
        cache: crate::scenario::cache::ModelCache::from_env(),
        ..LoadOptions::default()
    };
    load(&pipeline::scenario_paths(&args.paths), &opts)
        .map_err(|diags| say_plan_error(&PlanError::Scenarios(diags)))
}

/// The JSON Schema of scenario or target files, as committed in `schemas/`.
pub fn schema_text(kind: SchemaKind) -> String {
    crate::jschema::render(&match kind {
        SchemaKind::Scenario => crate::scenario::schema::json_schema(),
        SchemaKind::Target => crate::target::json_schema(),
    })
}

/// `fhirconf schema scenario|target`: prints the schema.
pub fn schema(args: &SchemaArgs) -> u8 {
    print!("{}", schema_text(args.kind));
    exit::SUCCESS
}

/// `fhirconf check`: exit 0 when every file is valid, 2 otherwise. FHIRPath names the
/// R4 model does not know (`Patient.birth`) are warnings: they still evaluate.
pub fn check(args: &PathArgs) -> u8 {
    match load_or_report(args) {
        Ok(suites) => {
            let warnings = fhirpath_warnings(&suites);
            for warning in &warnings {
                eprintln!("warning: {warning}");
            }
            let n: usize = suites.iter().map(|s| s.scenarios.len()).sum();
            if !warnings.is_empty() {
                println!(
                    "{} files, {n} scenarios: no errors, {} warnings",
                    suites.len(),
                    warnings.len()
                );
                return exit::SUCCESS;
            }
            println!("{} files, {n} scenarios: no problems found", suites.len());
            exit::SUCCESS
        }
        Err(code) => code,
    }
}

/// `file:line: message` for every FHIRPath path name no R4 type has there, in the
/// YAML scenario files (a TestScript's expressions are its author's).
fn fhirpath_warnings(suites: &[SuiteFile]) -> Vec<String> {
    use crate::scenario::model::{CaptureSource, Expect};
    let mut out = std::collections::BTreeSet::new();
    for suite in suites.iter().filter(|s| s.testscript.is_none()) {
        for scenario in &suite.scenarios {
            for step in scenario.steps.iter().chain(scenario.cleanup.iter()) {
                let expects: Vec<&Expect> = std::iter::once(&step.expect)
                    .chain(step.warn.as_deref())
                    .chain(step.retry.as_ref().map(|r| &r.until))
                    .collect();
                let rules = expects
                    .iter()
                    .flat_map(|e| e.fhirpath.iter().map(|r| (r.line, &r.value.expr)));
                let captures = step.capture.iter().filter_map(|(_, c)| match &c.source {
                    CaptureSource::FhirPath(expr) => Some((step.line, expr)),
                    _ => None,
                });
                for (line, expr) in rules.chain(captures) {
                    for w in expr.0.model_warnings(None) {
                        out.insert(format!("{}:{line}: {w}", suite.display));
                    }
                }
            }
        }
    }
    out.into_iter().collect()
}

/// `fhirconf list`: one block per scenario with its id, source and tags.
pub fn list(args: &PathArgs) -> u8 {
    match load_or_report(args) {
        Ok(suites) => {
            let scenarios: Vec<&Scenario> = suites.iter().flat_map(|f| &f.scenarios).collect();
            print!("{}", report::scenario_list(&scenarios));
            exit::SUCCESS
        }
        Err(code) => code,
    }
}

fn runtime() -> Result<tokio::runtime::Runtime, RunError> {
    tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .map_err(RunError::Runtime)
}

/// `fhirconf serve`: runs the sandbox until Ctrl-C.
pub fn serve(args: &ServeArgs) -> u8 {
    if args.list_defects || args.list_features {
        print!(
            "{}",
            report::sandbox_switches(args.list_defects, args.list_features)
        );
        return exit::SUCCESS;
    }
    let served = pipeline::sandbox_config(crate::cli::pairs_to_map(&args.features), &args.defects)
        .map_err(|e| RunError::Plan(PlanError::Sandbox(e)))
        .and_then(|config| {
            let rt = runtime()?;
            rt.block_on(async {
                let bind = SocketAddr::new(args.bind, args.port);
                let server = sandbox::start(config, bind)
                    .await
                    .map_err(|e| RunError::Serve { bind, source: e })?;
                println!("fhirconf sandbox listening on {}", server.base_url());
                println!("press Ctrl-C to stop");
                let _ = tokio::signal::ctrl_c().await;
                server.stop().await;
                Ok(())
            })
        });
    match served {
        Ok(()) => exit::SUCCESS,
        Err(e) => {
            eprintln!("error: {e}");
            exit::for_run_error(&e)
        }
    }
}

/// `fhirconf run`.
pub fn run(args: &RunArgs) -> u8 {
    let result = run_stages(args);
    match &result {
        Ok(finished) => say_finished(finished),
        Err(e) => say_error(e),
    }
    exit::for_run(&result)
}

/// plan → connect → select → execute → assemble → publish.
fn run_stages(args: &RunArgs) -> Result<Finished, RunError> {
    let mut plan = pipeline::plan(args)?;
    let scenarios: Vec<Arc<Scenario>> = plan
        .suites
        .iter_mut()
        .flat_map(|f| std::mem::take(&mut f.scenarios))
        .map(Arc::new)
        .collect();
    let selector = Selector::from_args(args);
    let terminal = Terminal::from_args(args);
    if args.list {
        if !plan.generated.is_empty() {
            eprintln!(
                "note: the capability suite is generated from the server's CapabilityStatement when a run starts, so it is not listed here; `fhirconf generate --out DIR` writes it"
            );
        }
        pipeline::list(&pipeline::select(scenarios, &selector, None), &terminal);
        return Ok(Finished::Listed);
    }
    let rt = runtime()?;
    let interrupt = Interrupt::default();
    interrupt.listen(rt.handle(), plan.cleanup_budget);
    let result = run_on(&rt, args, &plan, scenarios, &interrupt);
    if interrupt.is_set() {
        // A request the signal abandoned may still hold a blocking thread (a DNS
        // lookup): the run does not wait for it.
        rt.shutdown_background();
    }
    result
}

/// The stages from connect on, on `rt`. A signal before the first scenario ends the run
/// there ([`RunError::Interrupted`]); after it, the scenarios stop as
/// [`crate::interrupt`] says and the reports cover what finished.
fn run_on(
    rt: &tokio::runtime::Runtime,
    args: &RunArgs,
    plan: &Plan,
    scenarios: Vec<Arc<Scenario>>,
    interrupt: &Interrupt,
) -> Result<Finished, RunError> {
    let (selector, terminal) = (&Selector::from_args(args), &Terminal::from_args(args));
    let started_at = fhir_instant(jiff::Timestamp::now());
    let clock = Instant::now();
    let mut connection = rt
        .block_on(before_scenarios(interrupt, pipeline::connect(plan)))?
        .map_err(RunError::Connect)?;
    match rt.block_on(before_scenarios(interrupt, connection.handshake())) {
        Ok(Ok(())) => {}
        Ok(Err(e)) => {
            rt.block_on(connection.stop_sandbox());
            return Err(e.into());
        }
        // Dropping the connection tells the sandbox to stop, without waiting for it.
        Err(interrupted) => return Err(interrupted),
    }
    if let Some(e) = &connection.capabilities.error {
        eprintln!(
            "warning: cannot read the CapabilityStatement ({}); only the target's features count as declared, and scenarios that require interactions will be skipped",
            connection.redactor.text(&e.to_string())
        );
    }
    let mut scenarios = scenarios;
    match pipeline::generated(plan, &connection, args.strict) {
        Ok(more) => scenarios.extend(more),
        Err(e) => {
            rt.block_on(connection.stop_sandbox());
            return Err(e.into());
        }
    }
    let selected = pipeline::select(scenarios, selector, Some(offer(&connection)));
    say_left_out(&selected, selector);
    let nothing = selected
        .iter()
        .all(|s| matches!(s.selection, Selection::Out(_)));
    if nothing && !args.allow_empty {
        rt.block_on(connection.stop_sandbox());
        return Err(RunError::NothingSelected(pipeline::left_out(&selected)));
    }
    if !interrupt.start_scenarios() {
        return Err(interrupted(interrupt));
    }
    let spill = Spill::new()
        .inspect_err(|e| eprintln!("warning: no temporary file for transcripts ({e}); they stay in memory until the reports are written"))
        .ok();
    let runner = Arc::new(Runner::new(RunnerConfig {
        interrupt: interrupt.clone(),
        spill: spill.clone(),
        retry_budget: plan.retry_budget,
        cleanup_budget: plan.cleanup_budget,
        validation: Arc::clone(&plan.validation),
        ..RunnerConfig::new(&connection)
    }));
    let known: Arc<KnownFailures> = Arc::new(
        plan.baseline
            .iter()
            .flat_map(|b| &b.record.scenarios)
            .filter(|s| s.verdict.is_failure())
            .map(|s| s.id.clone())
            .collect(),
    );
    let records = pipeline::execute(&runner, &selected, terminal, &known, rt.handle());
    // The loaded scenarios are not needed for the reports: free them first (they are
    // as large as the records for a long suite).
    drop((selected, runner));
    if interrupt.is_abandoned() {
        // The reports come first: the sandbox is told to stop and not waited for.
        drop(connection.sandbox.take());
    } else {
        rt.block_on(connection.stop_sandbox());
    }
    let timing = Timing {
        started_at,
        finished_at: fhir_instant(jiff::Timestamp::now()),
        duration_secs: clock.elapsed().as_secs_f64(),
    };
    finish(plan, &connection, records, timing, spill, interrupt)
}

/// `stage`, unless a signal comes first: then the run ends before any scenario.
async fn before_scenarios<T>(
    interrupt: &Interrupt,
    stage: impl Future<Output = T>,
) -> Result<T, RunError> {
    tokio::select! {
        biased;
        () = interrupt.wait() => Err(interrupted(interrupt)),
        done = stage => Ok(done),
    }
}

fn interrupted(interrupt: &Interrupt) -> RunError {
    RunError::Interrupted {
        signal: interrupt.signal().unwrap_or("interrupted"),
    }
}

fn offer(connection: &Connection) -> Offer<'_> {
    Offer {
        capabilities: &connection.capabilities,
        features: &connection.features,
        vars: &connection.vars,
    }
}

/// Assembles the record, writes the reports and evidence.
fn finish(
    plan: &Plan,
    connection: &Connection,
    records: Vec<crate::record::ScenarioRecord>,
    timing: Timing,
    spill: Option<Arc<Spill>>,
    interrupt: &Interrupt,
) -> Result<Finished, RunError> {
    let (record, comparison) = pipeline::assemble(plan, connection, records, timing);
    match pipeline::publish(plan, &record, spill.as_ref()) {
        Ok(published) => Ok(Finished::Ran(Box::new(Ran {
            reports: plan.reports.clone(),
            record,
            comparison,
            published,
            interrupted: interrupt.is_set(),
        }))),
        Err(error) => Err(RunError::Report {
            error,
            record: Box::new(record),
        }),
    }
}

/// What `--read-only` and `--partition` left out, as before the run.
fn say_left_out(selected: &[Selected], selector: &Selector) {
    let counts = pipeline::left_out(selected);
    let total = selected.len();
    let tagged = total - counts.get(&pipeline::Out::Tags).copied().unwrap_or(0);
    if selector.read_only {
        let n = counts.get(&pipeline::Out::ReadOnly).copied().unwrap_or(0);
        eprintln!(
            "--read-only: {n} scenarios that write left out, {} remain",
            tagged - n
        );
    }
    if selector.partition.is_some() {
        let seen = tagged - counts.get(&pipeline::Out::ReadOnly).copied().unwrap_or(0);
        let n = counts.get(&pipeline::Out::Partition).copied().unwrap_or(0);
        eprintln!(
            "--partition: {} of {seen} scenarios in this shard",
            seen - n
        );
    }
}

fn say_finished(finished: &Finished) {
    let Finished::Ran(ran) = finished else {
        return;
    };
    let Ran {
        reports,
        comparison,
        published,
        interrupted,
        ..
    } = ran.as_ref();
    if let Some(path) = &published.step_summary {
        eprintln!("summary appended to {}", path.display());
    }
    if let Some(e) = &published.step_summary_error {
        eprintln!("warning: {e}");
    }
    eprintln!(
        "reports: {}, {}, {}, {}",
        reports.junit.display(),
        reports.json.display(),
        reports.markdown.display(),
        reports.html.display()
    );
    if let Some((dir, n)) = &published.evidence {
        eprintln!(
            "evidence: {} ({n} files{}; check it with `fhirconf verify {}`)",
            dir.display(),
            if published.signed { ", signed" } else { "" },
            dir.display()
        );
    }
    if let Some(cmp) = comparison {
        eprint!("\n{}", report::comparison(cmp, report::CompareFormat::Text));
        eprintln!("{}", report::baseline_gate(cmp));
    }
    if let Some(line) = report::validation_line(&ran.record) {
        eprintln!("{line}");
    }
    if let Some(line) = report::left_behind_line(&ran.record) {
        eprintln!("{line}");
    }
    eprintln!("{}", report::verdict_line(&ran.record));
    if *interrupted {
        eprintln!("the run was interrupted: the reports cover what ran");
    }
}

fn say_error(e: &RunError) {
    match e {
        RunError::Plan(p) => {
            say_plan_error(p);
        }
        RunError::Connect(c @ ConnectError::Resolve(errors)) => {
            for e in errors {
                eprintln!("error: {e}");
            }
            eprintln!("error: {c}");
        }
        RunError::Connect(c) => {
            eprintln!("error: {c}");
            eprintln!("error: the target is not usable; nothing was run");
        }
        // One line, on a line of its own after the terminal's `^C`.
        RunError::Interrupted { .. } => eprintln!("\n{e}"),
        other => eprintln!("error: {other}"),
    }
}

/// `fhirconf compare`: exit 1 when the current run has regressions, 2 when a file
/// cannot be read as a run record.
pub fn compare(args: &CompareArgs) -> u8 {
    let records = RunRecord::read(&args.baseline)
        .and_then(|b| RunRecord::read(&args.current).map(|c| (b, c)));
    let (baseline, current) = match records {
        Ok(pair) => pair,
        Err(e) => {
            eprintln!("error: {e}");
            return exit::INVALID;
        }
    };
    let cmp = compare::compare(
        &baseline,
        &display_path(&args.baseline),
        &current,
        &display_path(&args.current),
    );
    let format = match args.format {
        CompareFormat::Text => report::CompareFormat::Text,
        CompareFormat::Markdown => report::CompareFormat::Markdown,
    };
    print!("{}", report::comparison(&cmp, format));
    exit::for_comparison(&cmp)
}

/// `fhirconf verify`: exit 0 when every file matches the manifest (and the signature
/// holds, with `--key`), 1 naming each problem, 2 when the folder or key is unusable.
/// `fhirconf validate`: local FHIR JSON checked offline ([`crate::validation::command`]).
pub fn validate(args: &ValidateArgs) -> u8 {
    crate::validation::command::run(args)
}

pub fn verify(args: &VerifyArgs) -> u8 {
    let checked = args
        .key
        .as_deref()
        .map(evidence::load_verifying_key)
        .transpose()
        .and_then(|key| evidence::verify(&args.dir, key.as_ref()));
    match checked {
        Ok(v) => {
            print!("{}", report::verification(&display_path(&args.dir), &v));
            exit::for_verification(&v)
        }
        Err(e) => {
            eprintln!("error: {e}");
            exit::INVALID
        }
    }
}

/// `fhirconf inputs`: every variable the scenarios take from outside, which scenarios
/// need it, and what the target gives for it; exit 0, or 2 when a file is invalid.
pub fn inputs(args: &InputsArgs) -> u8 {
    let target = match &args.target {
        Some(path) => match crate::target::load(path) {
            Ok(t) => t,
            Err(diags) => {
                return say_plan_error(&PlanError::Target(diags));
            }
        },
        None => crate::target::builtin_sandbox(),
    };
    let suites = match load_or_report(&PathArgs {
        paths: args.paths.clone(),
    }) {
        Ok(suites) => suites,
        Err(code) => return code,
    };
    let scenarios: Vec<&Scenario> = suites.iter().flat_map(|f| &f.scenarios).collect();
    let sources = report::InputSources::of(&target, |name| std::env::var_os(name).is_some());
    print!("{}", report::inputs(&scenarios, &sources, args.verbose));
    exit::SUCCESS
}

/// `fhirconf init`: a starter target from what the server advertises; exit 0, or 2
/// when the URL, a scenario file or the output file is unusable.
pub fn init(args: &InitArgs) -> u8 {
    let fail = |e: &dyn std::fmt::Display| {
        eprintln!("error: {e}");
        exit::INVALID
    };
    let base = match crate::http::BaseUrl::parse(&args.base_url) {
        Ok(b) => b,
        Err(e) => return fail(&format_args!("--base-url {e}")),
    };
    if let Some(out) = args.out.as_deref().filter(|p| p.exists()) {
        return fail(&format_args!(
            "{} exists; name a new file",
            display_path(out)
        ));
    }
    let suites = match load_or_report(&PathArgs {
        paths: args.paths.clone(),
    }) {
        Ok(suites) => suites,
        Err(code) => return code,
    };
    let mut needed = std::collections::BTreeMap::new();
    for input in suites
        .iter()
        .flat_map(|f| &f.scenarios)
        .flat_map(|s| &s.inputs)
    {
        *needed.entry(input.clone()).or_insert(0) += 1;
    }
    let advertised = runtime().map_err(|e| e.to_string()).and_then(|rt| {
        let client = crate::http::HttpClient::new(crate::http::HttpSettings::default())
            .map_err(|e| e.to_string())?;
        Ok(rt.block_on(crate::init::fetch(&client, &base)))
    });
    let advertised = match advertised {
        Ok(a) => a,
        Err(e) => return fail(&e),
    };
    if advertised.metadata.is_none() {
        eprintln!(
            "warning: {} could not be read; the target says so",
            base.join("metadata")
        );
    }
    let text = crate::init::starter_target(&base, &advertised, &needed);
    match &args.out {
        None => print!("{text}"),
        Some(path) => {
            if let Err(e) =
                crate::files::write_atomic(path, |w| std::io::Write::write_all(w, text.as_bytes()))
            {
                return fail(&format_args!("cannot write {}: {e}", display_path(path)));
            }
            eprintln!(
                "wrote {}: check it, then `fhirconf inputs --target {}`",
                display_path(path),
                display_path(path)
            );
        }
    }
    exit::SUCCESS
}

/// `fhirconf generate --out DIR`: the capability suite as YAML files, one per resource
/// type, each loaded back before the command says it is done.
pub fn generate(args: &crate::cli::GenerateArgs) -> u8 {
    let fail = |e: &dyn std::fmt::Display| {
        eprintln!("error: {e}");
        exit::INVALID
    };
    let statement = match statement_for(args) {
        Ok(s) => s,
        Err(e) => return fail(&e),
    };
    let opts = crate::generate::Options {
        strict: args.strict,
        validate: crate::validation::BUILT_IN,
    };
    let files = match crate::generate::generate(&statement, &opts) {
        Ok(f) => f,
        Err(e) => return fail(&e),
    };
    if let Some(rounds) = args.bench {
        return generate_bench(&statement, &opts, rounds.max(1));
    }
    let mut written = Vec::new();
    for f in &files {
        let name = f
            .name
            .trim_start_matches(crate::generate::FOLDER)
            .trim_start_matches('/');
        let path = args.out.join(name);
        if path.exists() && !args.force {
            return fail(&format_args!(
                "{} exists; --force overwrites it",
                display_path(&path)
            ));
        }
        written.push((path, &f.yaml));
    }
    for (path, yaml) in &written {
        if let Err(e) =
            crate::files::write_atomic(path, |w| std::io::Write::write_all(w, yaml.as_bytes()))
        {
            return fail(&format_args!("cannot write {}: {e}", display_path(path)));
        }
    }
    let paths: Vec<std::path::PathBuf> = written.iter().map(|(p, _)| p.clone()).collect();
    match crate::scenario::load(&paths, &crate::scenario::LoadOptions::default()) {
        Ok(suites) => {
            let all: Vec<&Scenario> = suites.iter().flat_map(|s| &s.scenarios).collect();
            let skipped = all.iter().filter(|s| s.ignore.is_some()).count();
            println!(
                "{} scenario files ({} scenarios, {} of them skipped with the reason in `ignore:`) written to {}",
                paths.len(),
                all.len(),
                skipped,
                display_path(&args.out)
            );
            exit::SUCCESS
        }
        Err(errors) => {
            for d in &errors {
                eprintln!("{d}\n");
            }
            fail(&"a generated file does not load back (a fhirconf bug, please report it)")
        }
    }
}

/// `generate --bench N`: the median time to generate the suite, and to load it as `run`
/// does, over N rounds.
fn generate_bench(
    statement: &serde_json::Value,
    opts: &crate::generate::Options,
    rounds: usize,
) -> u8 {
    let median = |mut v: Vec<f64>| {
        v.sort_by(f64::total_cmp);
        v[v.len() / 2]
    };
    let (mut generated, mut loaded) = (Vec::new(), Vec::new());
    let mut counts = (0, 0);
    for _ in 0..rounds {
        let t = Instant::now();
        let files = crate::generate::generate(statement, opts).unwrap_or_default();
        generated.push(t.elapsed().as_secs_f64() * 1e3);
        let t = Instant::now();
        let suites = crate::generate::load(&files, &crate::scenario::LoadOptions::default())
            .unwrap_or_default();
        loaded.push(t.elapsed().as_secs_f64() * 1e3);
        counts = (files.len(), suites.iter().map(|s| s.scenarios.len()).sum());
    }
    println!(
        "{} files, {} scenarios; median of {rounds}: generate {:.1} ms, load {:.1} ms",
        counts.0,
        counts.1,
        median(generated),
        median(loaded)
    );
    exit::SUCCESS
}

/// The CapabilityStatement `generate` works from: a file, a server's, or the sandbox's.
fn statement_for(args: &crate::cli::GenerateArgs) -> Result<serde_json::Value, String> {
    if let Some(file) = &args.from {
        let text = crate::files::read_string(file, crate::files::MAX_INPUT_BYTES)
            .map_err(|e| format!("{}: {e}", display_path(file)))?;
        return serde_json::from_str(&text)
            .map_err(|e| format!("{}: not JSON: {e}", display_path(file)));
    }
    let rt = runtime().map_err(|e| e.to_string())?;
    rt.block_on(async {
        let mut sandbox = None;
        let base = match &args.base_url {
            Some(url) => crate::http::BaseUrl::parse(url).map_err(|e| format!("--base-url {e}"))?,
            None => {
                let conn =
                    pipeline::Connection::to_sandbox(crate::sandbox::SandboxConfig::default())
                        .await
                        .map_err(|e| e.to_string())?;
                let base = conn.base_url.clone();
                sandbox = Some(conn);
                base
            }
        };
        let client = crate::http::HttpClient::new(crate::http::HttpSettings::default())
            .map_err(|e| e.to_string())?;
        let caps = crate::capability::Capabilities::fetch(&client, &base).await;
        if let Some(mut conn) = sandbox {
            conn.stop_sandbox().await;
        }
        match (caps.statement, caps.error) {
            (Some(s), _) => Ok(serde_json::Value::clone(&s)),
            (None, Some(e)) => Err(format!("{}metadata: {e}", base.as_str())),
            (None, None) => Err(format!("{}metadata: no CapabilityStatement", base.as_str())),
        }
    })
}
