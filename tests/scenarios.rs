//! Proves the built-in suites: every scenario under `scenarios/` passes against the
//! sandbox in the feature configuration it requires (one libtest-mimic trial each),
//! every rule id in scenarios/RULES.md has a scenario, and every sandbox defect makes at
//! least one scenario sourced to its rule fail. The defect → failing scenarios matrix
//! is compared with `scenarios/COVERAGE.md` (`FHIRCONF_BLESS=1` rewrites it).
//!
//! Scenarios with a `valid` expectation need offline validation (the cargo feature
//! `validation`). A build with it runs and compares everything. A build without it
//! expects them skipped, and takes what only they can show from the committed
//! `scenarios/COVERAGE.md` as it is: the rows of defects whose rule's scenarios all
//! validate, and such scenarios where other rows list them.

use std::collections::{BTreeMap, BTreeSet};
use std::path::PathBuf;
use std::sync::{Arc, OnceLock};

use fhirconf::pipeline::{self, Connection, Offer, Selector};
use fhirconf::record::{ScenarioRecord, Verdict};
use fhirconf::runner::{Runner, RunnerConfig};
use fhirconf::scenario::model::Requirement;
use fhirconf::scenario::{LoadOptions, Scenario, load};
use fhirconf::validation::{Mode, Settings, Validation};
use libtest_mimic::{Arguments, Failed, Trial};

type Features = BTreeMap<String, String>;

/// Whether this build runs `valid` expectations; without the feature, the scenarios
/// that have one are skipped.
const VALIDATES: bool = cfg!(feature = "validation");

fn root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

/// The project's rule catalogue.
fn requirements_file() -> PathBuf {
    root().join("scenarios/RULES.md")
}

/// The rule ids of scenarios/RULES.md, in order.
fn rule_ids() -> Vec<String> {
    let text =
        std::fs::read_to_string(requirements_file()).expect("scenarios/RULES.md is readable");
    let id = regex::Regex::new(r"^\|\s*([A-Z][A-Z0-9]*(?:-[A-Z0-9]+)+)\s*\|").unwrap();
    text.lines()
        .filter_map(|l| id.captures(l).map(|c| c[1].to_owned()))
        .collect()
}

/// The rule id a scenario's `source` starts with.
fn rule_of(s: &Scenario) -> Option<String> {
    let id = regex::Regex::new(r"^([A-Z][A-Z0-9]*(?:-[A-Z0-9]+)+)").unwrap();
    s.source
        .as_deref()
        .and_then(|src| id.captures(src.trim()).map(|c| c[1].to_owned()))
}

/// The sandbox features a scenario's `requires` asks for: its configuration.
fn features_of(s: &Scenario) -> Features {
    s.requires
        .iter()
        .filter_map(|r| match r {
            Requirement::Feature { name, value } => {
                let value = value.clone().unwrap_or_else(|| match name.as_str() {
                    "rate_limit" => "10".to_owned(),
                    "auth" => "on".to_owned(),
                    _ => "true".to_owned(),
                });
                Some((name.clone(), value))
            }
            Requirement::Interaction { .. } => None,
        })
        .collect()
}

/// The ids of the scenarios that validate (a `valid` expectation in a step, a cleanup
/// step or a `retry.until`): a build without the validation feature skips them.
fn validating(scenarios: &[Arc<Scenario>]) -> BTreeSet<String> {
    scenarios
        .iter()
        .filter(|s| s.valid_rules().next().is_some())
        .map(|s| s.id.clone())
        .collect()
}

/// The run's validation, loaded once: `--validate off`, so only `valid` expectations
/// validate (whether every response of the sandbox is valid is a test of its own).
fn validation() -> Arc<Validation> {
    static LOADED: OnceLock<Arc<Validation>> = OnceLock::new();
    Arc::clone(LOADED.get_or_init(|| {
        let settings = Settings {
            mode: Mode::Off,
            ..Settings::default()
        };
        Arc::new(Validation::load(&settings, true).expect("the built-in profiles load"))
    }))
}

fn describe(features: &Features) -> String {
    if features.is_empty() {
        "default".to_owned()
    } else {
        features
            .iter()
            .map(|(k, v)| format!("{k}={v}"))
            .collect::<Vec<_>>()
            .join(", ")
    }
}

/// Runs `scenarios` against a fresh sandbox with `features` and `defects`, through the
/// pipeline's own stages: connect, select, execute.
async fn run_against_sandbox(
    features: &Features,
    defects: &[&str],
    scenarios: &[Arc<Scenario>],
) -> Vec<ScenarioRecord> {
    let defects: Vec<String> = defects.iter().map(|d| (*d).to_owned()).collect();
    let config =
        pipeline::sandbox_config(features.clone(), &defects).expect("valid sandbox configuration");
    let mut connection = Connection::to_sandbox(config)
        .await
        .expect("sandbox starts");
    let offer = Offer {
        capabilities: &connection.capabilities,
        features: &connection.features,
        vars: &connection.vars,
    };
    let selected = pipeline::select(scenarios.to_vec(), &Selector::default(), Some(offer));
    let runner = Arc::new(Runner::new(RunnerConfig {
        validation: validation(),
        ..RunnerConfig::new(&connection)
    }));
    // 8 in flight, as `--jobs 8` would.
    let records = pipeline::execute_quietly(&runner, &selected, 8).await;
    connection.stop_sandbox().await;
    records
}

fn short(id: &str) -> &str {
    id.strip_prefix("scenarios/").unwrap_or(id)
}

fn main() -> std::process::ExitCode {
    let args = Arguments::from_args();
    let suites =
        load(&[PathBuf::from("scenarios")], &LoadOptions::default()).unwrap_or_else(|diags| {
            for d in diags {
                eprintln!("{d}");
            }
            panic!("the built-in scenarios do not load");
        });
    let scenarios: Vec<Arc<Scenario>> = suites
        .into_iter()
        .flat_map(|f| f.scenarios)
        .map(Arc::new)
        .collect();
    let mut partitions: BTreeMap<Features, Vec<Arc<Scenario>>> = BTreeMap::new();
    for s in &scenarios {
        partitions
            .entry(features_of(s))
            .or_default()
            .push(Arc::clone(s));
    }
    let validating = Arc::new(validating(&scenarios));
    let rt = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .unwrap();

    // Every partition once, against a correct sandbox; one trial per scenario reads its verdict.
    let mut trials = Vec::new();
    for (features, members) in &partitions {
        let records = rt.block_on(run_against_sandbox(features, &[], members));
        for record in records {
            let config = describe(features);
            // Without the validation feature, a scenario that validates is skipped.
            let skipped = !VALIDATES && validating.contains(&record.id);
            trials.push(Trial::test(
                format!("suite::{}", short(&record.id)),
                move || match record.verdict {
                    Verdict::Passed if !skipped => Ok(()),
                    Verdict::Skipped if skipped => Ok(()),
                    v => Err(Failed::from(format!(
                        "{} against the sandbox ({config}){}: {}\n{}",
                        v.as_str(),
                        if skipped {
                            ", built without the validation feature (expected: skipped)"
                        } else {
                            ""
                        },
                        record.reason.clone().unwrap_or_default(),
                        fhirconf::report::details(&record)
                    ))),
                },
            ));
        }
    }

    let rules = rule_ids();
    let by_rule: BTreeMap<String, Vec<Arc<Scenario>>> =
        scenarios.iter().fold(BTreeMap::new(), |mut m, s| {
            if let Some(r) = rule_of(s) {
                m.entry(r).or_default().push(Arc::clone(s));
            }
            m
        });
    {
        let (rules, by_rule) = (rules.clone(), by_rule.clone());
        trials.push(Trial::test("coverage::every rule id has a scenario", move || {
            let missing: Vec<&String> = rules.iter().filter(|r| !by_rule.contains_key(*r)).collect();
            let unknown: Vec<&String> = by_rule.keys().filter(|k| !rules.contains(k)).collect();
            if missing.is_empty() && unknown.is_empty() {
                Ok(())
            } else {
                Err(format!("rules without a scenario: {missing:?}; scenario sources naming no known rule: {unknown:?}").into())
            }
        }));
    }
    {
        let handle = rt.handle().clone();
        trials.push(Trial::test(
            "coverage::every defect is caught by a scenario of its rule (scenarios/COVERAGE.md)",
            move || defect_matrix(&handle, &rules, &by_rule, &partitions, &validating),
        ));
    }
    libtest_mimic::run(&args, trials).exit_code()
}

fn defect_matrix(
    handle: &tokio::runtime::Handle,
    rules: &[String],
    by_rule: &BTreeMap<String, Vec<Arc<Scenario>>>,
    partitions: &BTreeMap<Features, Vec<Arc<Scenario>>>,
    validating: &BTreeSet<String>,
) -> Result<(), Failed> {
    let mut table = String::from(
        "# What the built-in suites detect\n\n\
         Generated by `cargo test --test scenarios` and compared with this file in CI\n\
         (`FHIRCONF_BLESS=1 cargo test --test scenarios` rewrites it after an intended change).\n\n\
         For every sandbox defect (one per rule id in `RULES.md`), the scenarios that fail\n\
         when it is switched on, in the sandbox configuration the rule's scenarios require.\n\
         Scenario ids are relative to `scenarios/`.\n\n\
         Scenarios with a `valid` expectation run only in a build with offline validation:\n\
         `cargo test --features validation --test scenarios` compares (and, blessed,\n\
         rewrites) the whole file. A build without the feature skips them and leaves out of\n\
         its comparison what only they show: the rows of defects whose rule's scenarios all\n\
         validate, and those scenarios in other rows; blessed, it keeps them as they are.\n\n\
         | defect | sandbox features | scenarios of the rule that fail | other scenarios that fail |\n\
         |---|---|---|---|\n",
    );
    let path = root().join("scenarios/COVERAGE.md");
    let committed = std::fs::read_to_string(&path).unwrap_or_default();
    // A committed row, as a build without the validation feature takes it.
    let committed_row = |rule: &str| {
        committed
            .lines()
            .find(|l| l.starts_with(&format!("| {rule} |")))
            .map(str::to_owned)
    };
    let mut undetected = Vec::new();
    for rule in rules {
        let own = by_rule.get(rule).cloned().unwrap_or_default();
        let configs: BTreeSet<Features> = own.iter().map(|s| features_of(s)).collect();
        if !VALIDATES && !own.is_empty() && own.iter().all(|s| validating.contains(&s.id)) {
            // Only a build with the validation feature can run this rule's scenarios.
            // A rule the file has no row for yet gets one that cannot pass the comparison.
            let row = committed_row(rule).unwrap_or_else(|| {
                format!("| {rule} | — | not run: bless with `--features validation` | — |")
            });
            table.push_str(&row);
            table.push('\n');
            continue;
        }
        let mut failing: BTreeSet<String> = BTreeSet::new();
        for features in &configs {
            let members = &partitions[features];
            let records = handle.block_on(run_against_sandbox(features, &[rule.as_str()], members));
            failing.extend(
                records
                    .into_iter()
                    .filter(|r| r.verdict == Verdict::Failed || r.verdict == Verdict::Error)
                    .map(|r| r.id),
            );
        }
        if !VALIDATES && let Some(row) = committed_row(rule) {
            // What the skipped scenarios that validate showed, as the committed row lists it.
            failing.extend(
                validating
                    .iter()
                    .filter(|id| row.contains(&format!("`{}`", short(id))))
                    .cloned(),
            );
        }
        let own_ids: BTreeSet<String> = own.iter().map(|s| s.id.clone()).collect();
        let caught: Vec<&str> = failing
            .iter()
            .filter(|id| own_ids.contains(*id))
            .map(|id| short(id))
            .collect();
        let others: Vec<&str> = failing
            .iter()
            .filter(|id| !own_ids.contains(*id))
            .map(|id| short(id))
            .collect();
        if caught.is_empty() {
            undetected.push(rule.clone());
        }
        let list = |ids: &[&str]| {
            if ids.is_empty() {
                "—".to_owned()
            } else {
                ids.iter()
                    .map(|i| format!("`{i}`"))
                    .collect::<Vec<_>>()
                    .join("<br>")
            }
        };
        let config = configs.iter().map(describe).collect::<Vec<_>>().join(" / ");
        table.push_str(&format!(
            "| {rule} | {} | {} | {} |\n",
            if config.is_empty() {
                "—".to_owned()
            } else {
                config
            },
            list(&caught),
            list(&others)
        ));
    }
    let committed = if std::env::var_os("FHIRCONF_BLESS").is_some() {
        std::fs::write(&path, &table).map_err(|e| e.to_string())?;
        table.clone()
    } else {
        committed
    };
    if !undetected.is_empty() {
        return Err(format!("defects no scenario of their rule detects: {undetected:?}").into());
    }
    if committed != table {
        let diff = similar::TextDiff::from_lines(committed.as_str(), table.as_str())
            .unified_diff()
            .header("scenarios/COVERAGE.md", "this run")
            .to_string();
        return Err(format!("what the suites detect changed; review, then FHIRCONF_BLESS=1 cargo test --test scenarios:\n{diff}").into());
    }
    Ok(())
}
