//! The first stage: arguments, the target file and the scenario files, checked and
//! read. It needs no secret and starts no server, so `run --list` works without
//! credentials and a bad file is reported before anything else happens.

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use serde_json::{Map, Value};

use crate::cli::{RunArgs, pairs_to_map};
use crate::diag::Diagnostic;
use crate::evidence::{self, EvidenceError};
use crate::http::{BaseUrl, HttpSettings, NotABaseUrl};
use crate::record::{FileKind, InputFile, ReadError, RunRecord};
use crate::report::ReportPaths;
use crate::sandbox::{self, ConfigError, SandboxConfig};
use crate::scenario::cache::ModelCache;
use crate::scenario::{LoadOptions, SuiteFile, load};
use crate::target::{self, TargetFile};
use crate::validation::Validation;

/// Scenario files or folders run when none are given.
pub const DEFAULT_SCENARIOS: &str = "scenarios";

/// Where the scenarios will run.
#[derive(Debug)]
pub enum TargetKind {
    /// The built-in sandbox, started on a free loopback port by [`super::connect`].
    Sandbox(SandboxConfig),
    External(BaseUrl),
}

/// Everything a run needs before it reads a secret, starts a server or sends a request.
#[derive(Debug)]
pub struct Plan {
    pub suites: Vec<SuiteFile>,
    pub target: TargetFile,
    pub kind: TargetKind,
    /// Variables without secrets: the sandbox's seed data, then the target's, then
    /// `--var` (which win). Secret ones are added by [`super::connect`].
    pub vars: Map<String, Value>,
    /// `--var` values, which win over the target's secret variables too.
    pub var_args: Vec<(String, String)>,
    /// `--secret-var` values: given on the command line, masked everywhere.
    pub secret_args: Vec<(String, String)>,
    /// The HTTP client's settings, without the TLS material `connect` reads.
    pub http: HttpSettings,
    pub retry_budget: Duration,
    /// After a signal, how long the cleanups of started scenarios may take.
    pub cleanup_budget: Duration,
    pub reports: ReportPaths,
    pub baseline: Option<Baseline>,
    pub evidence: Option<EvidencePlan>,
    /// Every file the run reads, hashed, for the run record and the evidence folder.
    pub files: Vec<InputFile>,
    /// FHIR validation: the mode, the target's ignore rules, the profiles loaded.
    pub validation: Arc<Validation>,
    /// Suites generated once the server is known (`--suite`, else the target's).
    pub generated: Vec<crate::cli::Suite>,
    /// The variables the scenario files were loaded knowing (generated ones too).
    pub load_options: LoadOptions,
}

/// The run record given to `--baseline`, read before anything is sent.
#[derive(Debug)]
pub struct Baseline {
    pub file: InputFile,
    pub record: RunRecord,
}

/// `--evidence DIR` and its signing key.
pub struct EvidencePlan {
    pub dir: PathBuf,
    pub key: Option<ed25519_dalek::SigningKey>,
}

impl std::fmt::Debug for EvidencePlan {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        // Never the key.
        f.debug_struct("EvidencePlan")
            .field("dir", &self.dir)
            .field("signed", &self.key.is_some())
            .finish()
    }
}

/// Why the run cannot be planned; nothing was sent.
#[derive(Debug, thiserror::Error)]
pub enum PlanError {
    #[error("{flag} {problem}")]
    Argument { flag: &'static str, problem: String },
    #[error("--base-url {0}")]
    BaseUrl(#[from] NotABaseUrl),
    #[error(
        "--feature and --defect configure the built-in sandbox; they cannot be used with an external server (declare its features in the target file)"
    )]
    SandboxFlagsWithExternal,
    #[error("{0}")]
    Sandbox(#[from] ConfigError),
    /// Located problems in the target file.
    #[error("the target file is invalid; nothing was run")]
    Target(Vec<Diagnostic>),
    /// Located problems in the scenario files.
    #[error("{} problem{} in scenario files; nothing was run", .0.len(), if .0.len() == 1 { "" } else { "s" })]
    Scenarios(Vec<Diagnostic>),
    #[error("--baseline: {0}")]
    Baseline(#[from] ReadError),
    #[error("{0}")]
    Evidence(#[from] EvidenceError),
    /// A report would overwrite an input, another report, or cannot be written where
    /// it is asked for.
    #[error("{0}")]
    Output(String),
    /// Validation was asked for and cannot be had: a profile that does not load, a
    /// profile no file defines, or a build without validation.
    #[error("{0}")]
    Validation(String),
}

/// Checks the arguments, loads the target and the scenario files, and reads the
/// baseline and evidence key.
pub fn plan(args: &RunArgs) -> Result<Plan, PlanError> {
    check_numbers(args)?;
    crate::limits::set(args.max_template_bytes, args.max_jsonpath_nodes);
    let target = load_target(args)?;
    let kind = target_kind(args, &target)?;
    if target.tls.insecure {
        eprintln!(
            "warning: {}: tls.insecure is set: server certificates are not checked",
            target.display
        );
    }
    let baseline = match &args.baseline {
        None => None,
        Some(path) => {
            let (record, file) = RunRecord::read_as_input(path, FileKind::Baseline)?;
            Some(Baseline { file, record })
        }
    };
    let evidence = match &args.evidence {
        None => None,
        Some(dir) => {
            evidence::check_destination(dir)?;
            let key = match &args.evidence_key {
                None => None,
                Some(path) => Some(evidence::load_signing_key(path)?),
            };
            Some(EvidencePlan {
                dir: dir.clone(),
                key,
            })
        }
    };
    let vars = plain_vars(args, &target, &kind);
    let generated = if args.suites.is_empty() {
        target.suites.clone()
    } else {
        args.suites.clone()
    };
    let load_options = load_options(args, &target, &vars);
    let suites = if args.paths.is_empty() && !generated.is_empty() {
        Vec::new()
    } else {
        load(&scenario_paths(&args.paths), &load_options).map_err(PlanError::Scenarios)?
    };
    let validation = Arc::new(load_validation(args, &target, &suites)?);
    let files = input_files(&suites, &target, baseline.as_ref());
    let reports = report_paths(args);
    check_outputs(&reports, &inputs_on_disk(args, &suites))?;
    Ok(Plan {
        http: http_settings(args, &target),
        retry_budget: Duration::from_secs_f64(
            target
                .retry_budget_secs
                .unwrap_or(target::DEFAULT_RETRY_BUDGET_SECS),
        ),
        cleanup_budget: Duration::from_secs_f64(args.cleanup_budget),
        reports,
        var_args: args.vars.clone(),
        secret_args: args.secret_vars.clone(),
        suites,
        target,
        kind,
        vars,
        baseline,
        evidence,
        files,
        validation,
        generated,
        load_options,
    })
}

/// The run's validation: `--validate`, else the target's `validate:`, else `warn`;
/// the R4 definitions and profiles loaded when anything is to be validated. Every
/// profile a scenario's `expect.valid` names must be loaded.
fn load_validation(
    args: &RunArgs,
    target: &TargetFile,
    suites: &[SuiteFile],
) -> Result<Validation, PlanError> {
    use crate::validation::{BUILT_IN, HOW_TO_ENABLE, Mode, Settings};
    let (mode, explicit, from) = match (args.validate, target.validate) {
        (Some(mode), _) => (mode, true, "--validate".to_owned()),
        (None, Some(mode)) => (mode, true, format!("{}: `validate`", target.display)),
        (None, None) => (Mode::default(), false, String::new()),
    };
    if !BUILT_IN {
        match mode {
            Mode::Error if explicit => {
                return Err(PlanError::Validation(format!(
                    "{from} {}: {HOW_TO_ENABLE}",
                    mode.as_str()
                )));
            }
            Mode::Warn if explicit => {
                eprintln!("warning: {from} warn: responses are not validated: {HOW_TO_ENABLE}")
            }
            _ => {}
        }
        if let Some(p) = target.profiles.first() {
            eprintln!(
                "warning: {}: `profiles` are not loaded: {HOW_TO_ENABLE}",
                p.at
            );
        }
    }
    // `--list` runs nothing. Otherwise only scenarios the run may reach count: the
    // name, tag, read-only and partition filters leave some out (the target's
    // capabilities are not known yet: a scenario they would skip still counts).
    if args.list {
        return Ok(Validation::off());
    }
    let selector = super::Selector::from_args(args);
    let mut shard_index = 0;
    let reachable: Vec<&crate::scenario::Scenario> = suites
        .iter()
        .flat_map(|suite| &suite.scenarios)
        .filter(|s| super::select::out_of_run(s, &selector, &mut shard_index).is_none())
        .collect();
    let named: Vec<(String, u64, &str)> = reachable
        .iter()
        .flat_map(|s| {
            s.valid_rules()
                .filter_map(|rule| {
                    let profile = rule.value.profile.as_deref()?;
                    Some((s.file.clone(), rule.line, profile))
                })
                .collect::<Vec<_>>()
        })
        .collect();
    let needed = reachable.iter().any(|s| s.valid_rules().next().is_some());
    let settings = Settings {
        mode,
        explicit,
        ignore: target.validation_ignore.clone(),
        profiles: target.profiles.iter().map(|p| p.value.clone()).collect(),
    };
    let validation = Validation::load(&settings, needed)
        .map_err(|e| PlanError::Validation(format!("a profile cannot be loaded: {e}")))?;
    if BUILT_IN && needed {
        let unknown: Vec<String> = named
            .iter()
            .filter(|(_, _, url)| !validation.has_profile(url))
            .map(|(file, line, url)| {
                format!(
                    "{file}:{line}: `valid.profile` names {url}, which no loaded profile defines"
                )
            })
            .collect();
        if !unknown.is_empty() {
            return Err(PlanError::Validation(format!(
                "{}\n  = help: give its StructureDefinition (a JSON file, a folder or a .tgz package) in the target's `profiles:`; loaded: {}",
                unknown.join("\n"),
                validation.profiles().join(", ")
            )));
        }
    }
    Ok(validation)
}

fn check_numbers(args: &RunArgs) -> Result<(), PlanError> {
    if args.jobs == 0 {
        return Err(PlanError::Argument {
            flag: "--jobs",
            problem: "must be at least 1".to_owned(),
        });
    }
    if let Some((name, _)) = args
        .secret_vars
        .iter()
        .find(|(_, v)| crate::redact::too_short(v))
    {
        return Err(PlanError::Argument {
            flag: "--secret-var",
            problem: format!(
                "`{name}` is shorter than {} characters: a secret that short cannot be masked in the reports without masking ordinary text",
                crate::redact::MIN_SECRET_LEN
            ),
        });
    }
    for (flag, value) in [
        ("--max-template-bytes", args.max_template_bytes),
        ("--max-jsonpath-nodes", args.max_jsonpath_nodes),
    ] {
        if value == 0 {
            return Err(PlanError::Argument {
                flag,
                problem: "must be at least 1".to_owned(),
            });
        }
    }
    if let Some(t) = args.timeout
        && !(t.is_finite() && (0.001..=86_400.0).contains(&t))
    {
        return Err(PlanError::Argument {
            flag: "--timeout",
            problem: format!("must be from 0.001 to 86400 seconds, found {t}"),
        });
    }
    if !(args.cleanup_budget.is_finite() && (0.0..=86_400.0).contains(&args.cleanup_budget)) {
        return Err(PlanError::Argument {
            flag: "--cleanup-budget",
            problem: format!(
                "must be from 0 to 86400 seconds, found {}",
                args.cleanup_budget
            ),
        });
    }
    Ok(())
}

fn load_target(args: &RunArgs) -> Result<TargetFile, PlanError> {
    let mut target = match &args.target {
        Some(path) => target::load(path).map_err(PlanError::Target)?,
        None if args.base_url.is_some() => TargetFile::external(),
        None => target::builtin_sandbox(),
    };
    if let Some(url) = &args.base_url {
        target.base_url = Some(BaseUrl::parse(url)?.as_str().to_owned());
    }
    Ok(target)
}

fn target_kind(args: &RunArgs, target: &TargetFile) -> Result<TargetKind, PlanError> {
    if let Some(url) = &target.base_url {
        if !(args.features.is_empty() && args.defects.is_empty()) {
            return Err(PlanError::SandboxFlagsWithExternal);
        }
        return Ok(TargetKind::External(BaseUrl::parse(url)?));
    }
    let mut features = target.features.clone();
    features.extend(pairs_to_map(&args.features));
    let config = sandbox_config(features, &args.defects)?;
    Ok(TargetKind::Sandbox(config))
}

/// A sandbox configuration with its features and defects checked.
pub fn sandbox_config(
    features: BTreeMap<String, String>,
    defects: &[String],
) -> Result<SandboxConfig, ConfigError> {
    let config = SandboxConfig {
        features,
        defects: defects.iter().cloned().collect(),
        ..SandboxConfig::default()
    };
    config.validate()?;
    Ok(config)
}

fn plain_vars(args: &RunArgs, target: &TargetFile, kind: &TargetKind) -> Map<String, Value> {
    let mut vars = Map::new();
    if let TargetKind::Sandbox(_) = kind {
        for (k, v) in sandbox::seed_vars() {
            vars.insert(k.to_owned(), Value::String(v));
        }
    }
    vars.extend(target.vars.clone());
    for (k, v) in &args.vars {
        vars.insert(k.clone(), Value::String(v.clone()));
    }
    vars
}

/// What the loader is told: every variable the run will supply (secret ones by name
/// only).
fn load_options(args: &RunArgs, target: &TargetFile, vars: &Map<String, Value>) -> LoadOptions {
    let mut known: BTreeSet<String> = vars.keys().cloned().collect();
    known.extend(target.secret_vars.iter().map(|(k, _)| k.clone()));
    known.extend(args.secret_vars.iter().map(|(k, _)| k.clone()));
    LoadOptions {
        known_vars: known,
        cache: ModelCache::from_env(),
    }
}

/// The paths given, or the default folder.
pub fn scenario_paths(paths: &[PathBuf]) -> Vec<PathBuf> {
    if paths.is_empty() {
        vec![PathBuf::from(DEFAULT_SCENARIOS)]
    } else {
        paths.to_vec()
    }
}

fn http_settings(args: &RunArgs, target: &TargetFile) -> HttpSettings {
    let mut default_headers = vec![("Accept".to_owned(), "application/fhir+json".to_owned())];
    for (name, value) in &target.headers {
        default_headers.retain(|(n, _)| !n.eq_ignore_ascii_case(name));
        default_headers.push((name.clone(), value.clone()));
    }
    HttpSettings {
        timeout: Duration::from_secs_f64(args.timeout.or(target.timeout_secs).unwrap_or(30.0)),
        max_body_bytes: args.max_body,
        default_headers,
        rate_limit: target.rate_limit,
        ca_pem: None,
        identity_pem: None,
        insecure: target.tls.insecure,
    }
}

fn report_paths(args: &RunArgs) -> ReportPaths {
    ReportPaths {
        junit: args.junit.clone(),
        json: args.json.clone(),
        markdown: args.markdown.clone(),
        html: args.html.clone().unwrap_or_else(|| {
            args.junit
                .parent()
                .unwrap_or(Path::new(""))
                .join("index.html")
        }),
        testreport: args.testreport.clone(),
    }
}

/// Where each input file is on disk: the target, each scenario file, its fixtures, the
/// baseline and the evidence signing key.
fn inputs_on_disk(args: &RunArgs, suites: &[SuiteFile]) -> Vec<PathBuf> {
    let mut paths: Vec<PathBuf> = args
        .target
        .iter()
        .chain(&args.baseline)
        .chain(&args.evidence_key)
        .cloned()
        .collect();
    for suite in suites {
        paths.push(PathBuf::from(&suite.display));
        paths.extend(suite.fixtures.iter().map(|f| PathBuf::from(&f.display)));
    }
    paths
}

/// `path` made absolute with its symlinks resolved as far as it exists, so that two
/// names of one file compare equal before either is written.
fn resolved(path: &Path) -> PathBuf {
    if let Ok(p) = std::fs::canonicalize(path) {
        return p;
    }
    match (path.parent(), path.file_name()) {
        (Some(parent), Some(name)) if !parent.as_os_str().is_empty() => resolved(parent).join(name),
        _ => std::env::current_dir().unwrap_or_default().join(path),
    }
}

/// Refuses, before anything is sent, reports that would overwrite an input file or
/// each other, that name a folder, or whose folder cannot be made.
fn check_outputs(reports: &ReportPaths, inputs: &[PathBuf]) -> Result<(), PlanError> {
    let named = [
        ("--junit", &reports.junit),
        ("--json", &reports.json),
        ("--markdown", &reports.markdown),
        ("--html", &reports.html),
    ];
    let inputs: Vec<(PathBuf, &PathBuf)> = inputs.iter().map(|p| (resolved(p), p)).collect();
    for (i, (flag, path)) in named.iter().enumerate() {
        let at = resolved(path);
        if let Some((_, input)) = inputs.iter().find(|(p, _)| *p == at) {
            return Err(PlanError::Output(format!(
                "{flag} {} is {}, an input of this run: a report would overwrite it",
                path.display(),
                input.display()
            )));
        }
        if let Some((other, _)) = named[..i].iter().find(|(_, p)| resolved(p) == at) {
            return Err(PlanError::Output(format!(
                "{flag} and {other} both name {}: one report would overwrite the other",
                path.display()
            )));
        }
        if path.is_dir() {
            return Err(PlanError::Output(format!(
                "{flag} {} is a folder; name the report file",
                path.display()
            )));
        }
        let folder = at.ancestors().skip(1).find(|a| a.exists());
        if let Some(folder) = folder.filter(|f| !f.is_dir()) {
            return Err(PlanError::Output(format!(
                "{flag} {}: {} is not a folder, so the report cannot be written there",
                path.display(),
                folder.display()
            )));
        }
    }
    Ok(())
}

/// Every file the run reads: the target file, each scenario file, its fixtures, and
/// the baseline.
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
