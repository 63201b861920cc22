//! The command line: `run`, `check`, `list`, `serve`, `compare`, `verify`, `inputs`,
//! `init`, `schema`, `validate`, `import`. Thin: it parses flags and calls the library.

use std::collections::BTreeMap;
use std::path::PathBuf;

use clap::{Args, Parser, Subcommand, ValueEnum};

#[derive(Debug, Parser)]
#[command(
    name = "fhirconf",
    version,
    about = "Conformance test harness for FHIR REST endpoints"
)]
pub struct Cli {
    #[command(subcommand)]
    pub command: Command,
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Run scenarios against a server (default: the built-in sandbox) and write reports.
    Run(Box<RunArgs>),
    /// Validate scenario files without sending anything.
    Check(PathArgs),
    /// List scenarios with their tags and sources.
    List(PathArgs),
    /// Run the built-in sandbox FHIR server alone.
    Serve(ServeArgs),
    /// Show what changed between two run records: regressions, fixes, new, removed and
    /// newly skipped scenarios (exit 1 on any regression).
    Compare(CompareArgs),
    /// Check an evidence folder against its manifest and, with --key, its signature.
    Verify(VerifyArgs),
    /// List the variables the scenarios take from the target or --var, which scenarios
    /// need each, and which the target leaves unset (nothing is sent).
    Inputs(InputsArgs),
    /// Write a starter target file from what a server advertises (its
    /// CapabilityStatement and SMART configuration), with every input the suites need.
    Init(InitArgs),
    /// Print the JSON Schema of scenario or target files, for editors (the same as
    /// schemas/scenario.schema.json and schemas/target.schema.json).
    Schema(SchemaArgs),
    /// Validate local FHIR JSON resources or Bundles offline against FHIR R4 and
    /// profiles (needs a build with `--features validation`).
    Validate(ValidateArgs),
    /// Write the capability suite (`run --suite capability`) as YAML scenario files: one
    /// per resource type a CapabilityStatement declares, each of its claims tested.
    Generate(GenerateArgs),
    /// Turn HL7 TestScript resources (JSON or XML) into editable YAML scenario files,
    /// one per script, with their fixtures as JSON files beside them.
    Import(ImportArgs),
}

#[derive(Debug, Args)]
pub struct GenerateArgs {
    /// The folder to write into (created if missing).
    #[arg(long, value_name = "DIR")]
    pub out: PathBuf,
    /// Generate from this CapabilityStatement (a JSON file) instead of a server's.
    #[arg(long, value_name = "FILE", conflicts_with = "base_url")]
    pub from: Option<PathBuf>,
    /// Read the CapabilityStatement from this server's /metadata [default: the built-in
    /// sandbox].
    #[arg(long, value_name = "URL")]
    pub base_url: Option<String>,
    /// An interaction the statement does not declare is expected to be refused (405 or
    /// 501) instead of skipped.
    #[arg(long)]
    pub strict: bool,
    /// Overwrite files that already exist.
    #[arg(long)]
    pub force: bool,
    /// Instead of writing, print the median time to generate the suite and to load it
    /// over this many rounds (docs/performance.md).
    #[arg(long, value_name = "ROUNDS")]
    pub bench: Option<usize>,
}

/// Suites that are generated rather than read from files.
#[derive(
    Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum, serde::Deserialize, schemars::JsonSchema,
)]
#[serde(rename_all = "lowercase")]
pub enum Suite {
    /// Generated from the server's CapabilityStatement when the run starts: every
    /// declared resource type, interaction and search parameter tested.
    Capability,
}

#[derive(Debug, Args)]
pub struct ImportArgs {
    /// What the files are.
    #[arg(value_enum)]
    pub kind: ImportKind,
    /// TestScript files (`.json` or `.xml`).
    #[arg(required = true, value_name = "FILES")]
    pub files: Vec<PathBuf>,
    /// The folder to write into (created if missing).
    #[arg(long, value_name = "DIR")]
    pub out: PathBuf,
    /// Overwrite files that already exist.
    #[arg(long)]
    pub force: bool,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum ImportKind {
    /// HL7 FHIR R4 TestScript resources.
    Testscript,
}

#[derive(Debug, Args)]
pub struct ValidateArgs {
    /// FHIR JSON files: resources or Bundles (a Bundle is checked entry by entry).
    #[arg(required = true, value_name = "FILES")]
    pub files: Vec<PathBuf>,
    /// Also check each resource against this profile (canonical URL). On a Bundle, a
    /// profile of another type applies to the entries of that type.
    #[arg(long, value_name = "URL")]
    pub profile: Option<String>,
    /// StructureDefinitions to load as profiles: a JSON file (a StructureDefinition,
    /// an array or a Bundle of them), a folder of such files, or a FHIR NPM package
    /// (`.tgz`). Repeatable. US Core STU3.1.1 Practitioner is built in.
    #[arg(long, value_name = "PATH")]
    pub package: Vec<PathBuf>,
    /// Also print information issues (best-practice notes).
    #[arg(long, short)]
    pub verbose: bool,
    /// Instead of the issues, print how long loading the R4 packs took and the median
    /// time to validate each file over this many rounds (docs/performance.md).
    #[arg(long, value_name = "ROUNDS", hide = true)]
    pub bench: Option<u32>,
}

#[derive(Debug, Args)]
pub struct SchemaArgs {
    /// Which file's schema to print.
    #[arg(value_enum)]
    pub kind: SchemaKind,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum SchemaKind {
    /// Scenario files (`scenarios/**/*.yaml`).
    Scenario,
    /// Target files (`targets/*.yaml`).
    Target,
}

#[derive(Debug, Args)]
pub struct InitArgs {
    /// The server's FHIR base URL.
    #[arg(long, value_name = "URL")]
    pub base_url: String,
    /// Write the target here (refused if it exists) [default: standard output].
    #[arg(long, short, value_name = "FILE")]
    pub out: Option<PathBuf>,
    /// Scenario files or folders whose inputs to list [default: scenarios]
    pub paths: Vec<PathBuf>,
}

#[derive(Debug, Args)]
pub struct InputsArgs {
    /// Scenario files or folders [default: scenarios]
    pub paths: Vec<PathBuf>,
    /// The target file to hold the inputs against [default: the built-in sandbox].
    #[arg(long, env = "FHIRCONF_TARGET", value_name = "FILE")]
    pub target: Option<PathBuf>,
    /// Also list, under each input, the scenarios that need it.
    #[arg(long, short)]
    pub verbose: bool,
}

#[derive(Debug, Args)]
pub struct PathArgs {
    /// Scenario files or folders [default: scenarios]
    pub paths: Vec<PathBuf>,
}

#[derive(Debug, Clone, Copy, ValueEnum)]
pub enum Color {
    Auto,
    Always,
    Never,
}

#[derive(Debug, Args)]
pub struct RunArgs {
    /// Scenario files or folders [default: scenarios]
    pub paths: Vec<PathBuf>,
    /// A target file: base URL, auth, headers, variables, features, TLS
    /// [default: the built-in sandbox, targets/sandbox.yaml].
    #[arg(long, env = "FHIRCONF_TARGET", value_name = "FILE")]
    pub target: Option<PathBuf>,
    /// The FHIR server to test (wins over the target's `base_url`); without either,
    /// the built-in sandbox is started on loopback.
    #[arg(long, value_name = "URL")]
    pub base_url: Option<String>,
    /// Set a variable (wins over `vars:` in scenario files).
    #[arg(long = "var", value_name = "NAME=VALUE", value_parser = parse_var)]
    pub vars: Vec<(String, String)>,
    /// Like --var, and the value is masked in every output.
    #[arg(long = "secret-var", value_name = "NAME=VALUE", value_parser = parse_var)]
    pub secret_vars: Vec<(String, String)>,
    /// Built-in sandbox only: configure a feature (see `fhirconf serve --list-features`).
    #[arg(long = "feature", value_name = "NAME=VALUE", value_parser = parse_pair)]
    pub features: Vec<(String, String)>,
    /// Built-in sandbox only: break one documented rule (see `fhirconf serve --list-defects`).
    #[arg(long = "defect", value_name = "RULE-ID")]
    pub defects: Vec<String>,
    /// Run only scenarios whose id (`file::name`) contains this text.
    #[arg(short = 'k', long, value_name = "TEXT")]
    pub filter: Option<String>,
    /// --filter and --skip match whole ids.
    #[arg(long)]
    pub exact: bool,
    /// Leave out scenarios whose id contains this text.
    #[arg(long, value_name = "TEXT")]
    pub skip: Vec<String>,
    /// Run only scenarios with at least one of these tags.
    #[arg(long, value_delimiter = ',', value_name = "TAG,...")]
    pub tags: Vec<String>,
    /// Leave out scenarios with any of these tags.
    #[arg(long, value_delimiter = ',', value_name = "TAG,...")]
    pub exclude_tags: Vec<String>,
    /// Also run scenarios marked `ignore:`.
    #[arg(long)]
    pub include_ignored: bool,
    /// Run only scenarios marked `ignore:`.
    #[arg(long)]
    pub ignored: bool,
    /// Scenarios in flight at once.
    #[arg(
        short = 'j',
        long,
        visible_alias = "test-threads",
        default_value_t = 8,
        value_name = "N"
    )]
    pub jobs: usize,
    /// List the selected scenarios instead of running them.
    #[arg(long)]
    pub list: bool,
    /// Exit 0 when the selection leaves no scenario to run (by default that is exit 4:
    /// a filter that matches nothing is usually a typo).
    #[arg(long)]
    pub allow_empty: bool,
    /// Per-request timeout in seconds [default: the target's `timeout`, else 30].
    #[arg(long, value_name = "SECS")]
    pub timeout: Option<f64>,
    /// After Ctrl-C or SIGTERM, how many seconds the cleanups of started scenarios may
    /// take, counted from the signal (cleanups already in flight included).
    #[arg(long, default_value_t = 10.0, value_name = "SECS")]
    pub cleanup_budget: f64,
    /// Run one shard of the selected scenarios: `slice:M/N` (every Nth, starting at the
    /// Mth) or `hash:M/N` (by a hash of the scenario id, stable as the suite grows).
    #[arg(long, value_name = "slice:M/N|hash:M/N", value_parser = parse_partition)]
    pub partition: Option<Partition>,
    /// Run only scenarios that send no write request (POST/PUT/PATCH/DELETE other than
    /// a search); says how many were left out.
    #[arg(long)]
    pub read_only: bool,
    /// A scenario whose `requires` the target does not meet fails instead of being
    /// skipped (for certification runs); in the capability suite, an interaction the
    /// server does not declare must be refused (405 or 501).
    #[arg(long)]
    pub strict: bool,
    /// Also run a generated suite: `capability` tests every claim of the server's
    /// CapabilityStatement (without scenario paths, it runs alone) [default: the
    /// target's `suites`].
    #[arg(long = "suite", value_enum, value_name = "capability")]
    pub suites: Vec<Suite>,
    /// FHIR R4 validation of every FHIR resource a step receives: `warn` shows the
    /// issues in every report and fails nothing; `error` fails a step whose response
    /// has an error issue (for certification runs, with --strict) [default: the
    /// target's `validate`, else warn]. Needs a build with the `validation` feature.
    #[arg(long, value_enum, value_name = "off|warn|error")]
    pub validate: Option<crate::validation::Mode>,
    /// Response bodies larger than this many bytes fail the step.
    #[arg(long, default_value_t = 8 * 1024 * 1024, value_name = "BYTES")]
    pub max_body: usize,
    /// The most bytes one template may produce (a rendered value or a string in one);
    /// a step whose template would make more fails.
    #[arg(long, env = "FHIRCONF_MAX_TEMPLATE_BYTES", default_value_t = crate::limits::DEFAULT_TEMPLATE_BYTES, value_name = "BYTES")]
    pub max_template_bytes: usize,
    /// The most nodes one JSONPath query may visit in a body, bounded before it runs;
    /// a check whose query could visit more fails.
    #[arg(long, env = "FHIRCONF_MAX_JSONPATH_NODES", default_value_t = crate::limits::DEFAULT_JSONPATH_NODES, value_name = "N")]
    pub max_jsonpath_nodes: usize,
    #[arg(long, default_value = "reports/junit.xml", value_name = "PATH")]
    pub junit: PathBuf,
    #[arg(long, default_value = "reports/run.json", value_name = "PATH")]
    pub json: PathBuf,
    #[arg(long, default_value = "reports/summary.md", value_name = "PATH")]
    pub markdown: PathBuf,
    /// The HTML report: one self-contained page [default: index.html beside the JUnit
    /// report].
    #[arg(long, value_name = "PATH")]
    pub html: Option<PathBuf>,
    /// Also write one FHIR R4 TestReport (JSON) per TestScript run into this folder,
    /// `<script>.testreport.json`.
    #[arg(long, value_name = "DIR")]
    pub testreport: Option<PathBuf>,
    /// An earlier run.json: only regressions against it (scenarios that did not fail
    /// there and fail now) fail the run; known failures stay in the reports.
    #[arg(long, value_name = "RUN_JSON")]
    pub baseline: Option<PathBuf>,
    /// Also write a self-contained evidence folder: the reports, copies of every input
    /// file, and a manifest of SHA-256 digests (see `fhirconf verify`).
    #[arg(long, value_name = "DIR")]
    pub evidence: Option<PathBuf>,
    /// Sign the evidence manifest with this Ed25519 private key (PKCS#8 PEM, as
    /// `openssl genpkey -algorithm ed25519` writes).
    #[arg(long, value_name = "KEY_PEM", requires = "evidence")]
    pub evidence_key: Option<PathBuf>,
    /// One character per scenario.
    #[arg(short, long)]
    pub quiet: bool,
    #[arg(long, value_enum, default_value_t = Color::Auto)]
    pub color: Color,
}

#[derive(Debug, Args)]
pub struct ServeArgs {
    /// Address to listen on (loopback by default).
    #[arg(long, default_value = "127.0.0.1")]
    pub bind: std::net::IpAddr,
    /// Port (0 picks a free one).
    #[arg(long, default_value_t = 8080)]
    pub port: u16,
    #[arg(long = "feature", value_name = "NAME=VALUE", value_parser = parse_pair)]
    pub features: Vec<(String, String)>,
    #[arg(long = "defect", value_name = "RULE-ID")]
    pub defects: Vec<String>,
    /// List every defect with a one-line description, then exit.
    #[arg(long)]
    pub list_defects: bool,
    /// List every feature with its values, then exit.
    #[arg(long)]
    pub list_features: bool,
}

#[derive(Debug, Clone, Copy, ValueEnum)]
pub enum CompareFormat {
    Text,
    Markdown,
}

#[derive(Debug, Args)]
pub struct CompareArgs {
    /// The earlier run.json (before the upgrade).
    #[arg(value_name = "BASELINE")]
    pub baseline: PathBuf,
    /// The later run.json.
    #[arg(value_name = "CURRENT")]
    pub current: PathBuf,
    /// Plain text for a terminal, or Markdown for a pull request or job summary.
    #[arg(long, value_enum, default_value_t = CompareFormat::Text)]
    pub format: CompareFormat,
}

#[derive(Debug, Args)]
pub struct VerifyArgs {
    /// The evidence folder written by `run --evidence`.
    #[arg(value_name = "DIR")]
    pub dir: PathBuf,
    /// Also check manifest.sig with this Ed25519 public key (PEM, as
    /// `openssl pkey -pubout` writes).
    #[arg(long, value_name = "PUBLIC_PEM")]
    pub key: Option<PathBuf>,
}

/// One shard of a suite split across CI machines.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Partition {
    /// Scenario number `i` (0-based, in run order) goes to shard `i % total + 1`.
    Slice { shard: u64, total: u64 },
    /// A scenario goes to shard `h % total + 1`, `h` from the SHA-256 of its id.
    Hash { shard: u64, total: u64 },
}

fn parse_partition(text: &str) -> Result<Partition, String> {
    let expected = || format!("expected slice:M/N or hash:M/N with 1 <= M <= N, found `{text}`");
    let (kind, rest) = text.split_once(':').ok_or_else(expected)?;
    let (m, n) = rest.split_once('/').ok_or_else(expected)?;
    let (shard, total) = match (m.parse::<u64>(), n.parse::<u64>()) {
        (Ok(m), Ok(n)) if m >= 1 && m <= n => (m, n),
        _ => return Err(expected()),
    };
    match kind {
        "slice" => Ok(Partition::Slice { shard, total }),
        "hash" => Ok(Partition::Hash { shard, total }),
        _ => Err(expected()),
    }
}

fn parse_pair(text: &str) -> Result<(String, String), String> {
    match text.split_once('=') {
        Some((k, v)) if !k.trim().is_empty() => Ok((k.trim().to_owned(), v.to_owned())),
        _ => Err(format!("expected NAME=VALUE, found `{text}`")),
    }
}

/// `NAME=VALUE` where NAME follows the rule of `vars:` in files: letters, digits and
/// `_`, not starting with a digit.
fn parse_var(text: &str) -> Result<(String, String), String> {
    let (name, value) = parse_pair(text)?;
    let mut chars = name.chars();
    let ok = chars
        .next()
        .is_some_and(|c| c.is_ascii_alphabetic() || c == '_')
        && chars.all(|c| c.is_ascii_alphanumeric() || c == '_');
    if ok {
        Ok((name, value))
    } else {
        Err(format!(
            "`{name}` is not a variable name (letters, digits and _, not starting with a digit), as in `vars:`"
        ))
    }
}

pub fn pairs_to_map(pairs: &[(String, String)]) -> BTreeMap<String, String> {
    pairs.iter().cloned().collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_pairs_and_rejects_bare_names() {
        assert_eq!(parse_pair("a=b=c").unwrap(), ("a".into(), "b=c".into()));
        assert_eq!(parse_pair("a=").unwrap(), ("a".into(), String::new()));
        assert!(parse_pair("a").unwrap_err().contains("NAME=VALUE"));
        assert!(parse_pair("=b").is_err());
        assert_eq!(parse_var("a_1=x").unwrap(), ("a_1".into(), "x".into()));
        for bad in ["1a=x", "a-b=x", "a.b=x", "a b=x"] {
            assert!(
                parse_var(bad).unwrap_err().contains("not a variable name"),
                "{bad}"
            );
        }
    }

    #[test]
    fn parses_partitions() {
        assert_eq!(
            parse_partition("slice:2/3"),
            Ok(Partition::Slice { shard: 2, total: 3 })
        );
        assert_eq!(
            parse_partition("hash:1/1"),
            Ok(Partition::Hash { shard: 1, total: 1 })
        );
        for bad in [
            "slice:0/3",
            "slice:4/3",
            "hash:1",
            "count:1/2",
            "slice:a/b",
            "1/2",
        ] {
            assert!(parse_partition(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn clap_definition_is_consistent() {
        use clap::CommandFactory;
        Cli::command().debug_assert();
    }
}
