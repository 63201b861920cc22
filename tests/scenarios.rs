//! Proves the built-in suites: every scenario under `scenarios/` passes against the
//! sandbox in the feature configuration it requires (one libtest-mimic trial each),
//! every rule id in scenarios/RULES.md has a scenario, and every sandbox defect makes at
//! least one scenario sourced to its rule fail. The defect → failing scenarios matrix
//! is compared with `scenarios/COVERAGE.md` (`FHIRCONF_BLESS=1` rewrites it).

use std::collections::{BTreeMap, BTreeSet};
use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::Arc;

use fhirconf::auth::Auth;
use fhirconf::capability::Capabilities;
use fhirconf::http::{HttpClient, HttpSettings};
use fhirconf::record::{ScenarioRecord, Verdict};
use fhirconf::redact::Redactor;
use fhirconf::runner::{Runner, TargetSettings};
use fhirconf::sandbox::{self, SandboxConfig};
use fhirconf::scenario::model::Requirement;
use fhirconf::scenario::{LoadOptions, Scenario, load};
use fhirconf::target::ResolvedAuth;
use fhirconf::template::{SlotClock, Templates};
use libtest_mimic::{Arguments, Failed, Trial};
use serde_json::{Map, Value};

type Features = BTreeMap<String, String>;

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

/// Runs `scenarios` against a fresh sandbox with `features` and `defects`.
async fn run_against_sandbox(
    features: &Features,
    defects: &[&str],
    scenarios: &[Arc<Scenario>],
) -> Vec<ScenarioRecord> {
    let config = SandboxConfig {
        features: features.clone(),
        defects: defects.iter().map(|d| (*d).to_owned()).collect(),
        ..SandboxConfig::default()
    };
    config.validate().expect("valid sandbox configuration");
    let declared = config.declared_features();
    let server = sandbox::start(config, SocketAddr::from(([127, 0, 0, 1], 0)))
        .await
        .expect("sandbox starts");
    let base_url = server.base_url().to_owned();
    let client = HttpClient::new(HttpSettings {
        default_headers: vec![("Accept".to_owned(), "application/fhir+json".to_owned())],
        ..HttpSettings::default()
    })
    .unwrap();
    let capabilities = Capabilities::fetch(&client, &base_url).await;
    let vars: Map<String, Value> = sandbox::seed_vars()
        .into_iter()
        .map(|(k, v)| (k.to_owned(), Value::String(v)))
        .collect();
    let target = TargetSettings {
        base_url,
        vars,
        features: declared,
    };
    let auth = Arc::new(Auth::new(
        ResolvedAuth::None,
        client.reqwest().clone(),
        Redactor::default(),
    ));
    let runner = Arc::new(Runner::new(
        client,
        Templates::new(Arc::new(SlotClock::random())),
        target,
        capabilities,
        Redactor::default(),
        auth,
    ));
    let mut tasks = tokio::task::JoinSet::new();
    for (i, s) in scenarios.iter().enumerate() {
        let (runner, s) = (Arc::clone(&runner), Arc::clone(s));
        tasks.spawn(async move {
            let record = match runner.precheck(&s) {
                Some(record) => record,
                None => runner.run(&s).await,
            };
            (i, record)
        });
    }
    let mut records: Vec<(usize, ScenarioRecord)> = tasks.join_all().await;
    records.sort_by_key(|(i, _)| *i);
    server.stop().await;
    records.into_iter().map(|(_, r)| r).collect()
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
            trials.push(Trial::test(
                format!("suite::{}", short(&record.id)),
                move || match record.verdict {
                    Verdict::Passed => Ok(()),
                    v => Err(Failed::from(format!(
                        "{} against the sandbox ({config}): {}\n{}",
                        v.as_str(),
                        record.reason.clone().unwrap_or_default(),
                        record.details()
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
            move || defect_matrix(&handle, &rules, &by_rule, &partitions),
        ));
    }
    libtest_mimic::run(&args, trials).exit_code()
}

fn defect_matrix(
    handle: &tokio::runtime::Handle,
    rules: &[String],
    by_rule: &BTreeMap<String, Vec<Arc<Scenario>>>,
    partitions: &BTreeMap<Features, Vec<Arc<Scenario>>>,
) -> Result<(), Failed> {
    let mut table = String::from(
        "# What the built-in suites detect\n\n\
         Generated by `cargo test --test scenarios` and compared with this file in CI\n\
         (`FHIRCONF_BLESS=1 cargo test --test scenarios` rewrites it after an intended change).\n\n\
         For every sandbox defect (one per rule id in `RULES.md`), the scenarios that fail\n\
         when it is switched on, in the sandbox configuration the rule's scenarios require.\n\
         Scenario ids are relative to `scenarios/`.\n\n\
         | defect | sandbox features | scenarios of the rule that fail | other scenarios that fail |\n\
         |---|---|---|---|\n",
    );
    let mut undetected = Vec::new();
    for rule in rules {
        let own = by_rule.get(rule).cloned().unwrap_or_default();
        let configs: BTreeSet<Features> = own.iter().map(|s| features_of(s)).collect();
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
    let path = root().join("scenarios/COVERAGE.md");
    if std::env::var_os("FHIRCONF_BLESS").is_some() {
        std::fs::write(&path, &table).map_err(|e| e.to_string())?;
    }
    if !undetected.is_empty() {
        return Err(format!("defects no scenario of their rule detects: {undetected:?}").into());
    }
    let committed = std::fs::read_to_string(&path).unwrap_or_default();
    if committed != table {
        let diff = similar::TextDiff::from_lines(committed.as_str(), table.as_str())
            .unified_diff()
            .header("scenarios/COVERAGE.md", "this run")
            .to_string();
        return Err(format!("what the suites detect changed; review, then FHIRCONF_BLESS=1 cargo test --test scenarios:\n{diff}").into());
    }
    Ok(())
}
