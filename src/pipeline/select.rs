//! The third stage: which scenarios run. Every reason a scenario does not run is
//! decided here, once, and the reports show exactly these reasons: tags, read-only,
//! the partition, the name filters, `ignore:`, unmet `requires` and missing inputs.

use std::collections::BTreeMap;
use std::sync::Arc;

use serde_json::{Map, Value};

use crate::capability::Capabilities;
use crate::cli::{Partition, RunArgs};
use crate::scenario::Scenario;

/// What becomes of one scenario.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Selection {
    Run,
    /// Reported as skipped, with this reason.
    Skip(String),
    /// Reported as skipped: these inputs (variables from the target or `--var`) are
    /// not set.
    NeedsInputs(Vec<String>),
    /// Reported as failed without running: an unmet requirement under `--strict`.
    Fail(String),
    /// Not part of this run: not reported, only counted.
    Out(Out),
}

/// Why a scenario is not part of this run.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum Out {
    /// `--tags` / `--exclude-tags`.
    Tags,
    /// `--read-only` and the scenario writes.
    ReadOnly,
    /// In another shard of `--partition`.
    Partition,
    /// `--filter` / `--skip` / `--exact`.
    Name,
    /// `--ignored` and the scenario is not ignored.
    NotIgnored,
}

impl Out {
    pub fn flag(self) -> &'static str {
        match self {
            Out::Tags => "--tags/--exclude-tags",
            Out::ReadOnly => "--read-only",
            Out::Partition => "--partition",
            Out::Name => "--filter/--skip",
            Out::NotIgnored => "--ignored",
        }
    }
}

/// A scenario with its selection.
#[derive(Debug, Clone)]
pub struct Selected {
    pub scenario: Arc<Scenario>,
    pub selection: Selection,
}

/// What `ignore:` does.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Ignored {
    /// Ignored scenarios are skipped with their reason (the default).
    #[default]
    Skip,
    /// `--ignored`: only ignored scenarios run.
    Only,
    /// `--include-ignored`: they run with the others.
    Include,
}

/// Every selection setting of a run.
#[derive(Debug, Clone, Default)]
pub struct Selector {
    pub tags: Vec<String>,
    pub exclude_tags: Vec<String>,
    pub read_only: bool,
    pub partition: Option<Partition>,
    /// A scenario id runs if it contains this (or equals it, with `exact`).
    pub filter: Option<String>,
    /// A scenario id is left out if it contains one of these (equals, with `exact`).
    pub skip: Vec<String>,
    pub exact: bool,
    pub ignored: Ignored,
    /// Unmet `requires` fail instead of skipping.
    pub strict: bool,
}

impl Selector {
    pub fn from_args(args: &RunArgs) -> Self {
        Selector {
            tags: args.tags.clone(),
            exclude_tags: args.exclude_tags.clone(),
            read_only: args.read_only,
            partition: args.partition,
            filter: args.filter.clone(),
            skip: args.skip.clone(),
            exact: args.exact,
            ignored: if args.ignored {
                Ignored::Only
            } else if args.include_ignored {
                Ignored::Include
            } else {
                Ignored::Skip
            },
            strict: args.strict,
        }
    }
}

/// What the target offers, for `requires` and `inputs`. A listing selects without it.
#[derive(Debug, Clone, Copy)]
pub struct Offer<'a> {
    pub capabilities: &'a Capabilities,
    pub features: &'a BTreeMap<String, String>,
    pub vars: &'a Map<String, Value>,
}

/// Every scenario, in run order, with what becomes of it.
pub fn select(
    scenarios: Vec<Arc<Scenario>>,
    selector: &Selector,
    offer: Option<Offer<'_>>,
) -> Vec<Selected> {
    let mut shard_index = 0u64;
    scenarios
        .into_iter()
        .map(|scenario| {
            let selection = match out_of_run(&scenario, selector, &mut shard_index) {
                Some(out) => Selection::Out(out),
                None => applicable(&scenario, selector, offer),
            };
            Selected {
                scenario,
                selection,
            }
        })
        .collect()
}

/// Why the scenario is not part of this run, if it is not. `shard_index` counts the
/// scenarios the partition sees (those left by tags and `--read-only`), so every
/// scenario lands in exactly one shard whatever machine computes it.
pub(crate) fn out_of_run(s: &Scenario, selector: &Selector, shard_index: &mut u64) -> Option<Out> {
    let tagged = selector.tags.is_empty() || s.tags.iter().any(|t| selector.tags.contains(t));
    if !tagged || s.tags.iter().any(|t| selector.exclude_tags.contains(t)) {
        return Some(Out::Tags);
    }
    if selector.read_only && s.writes() {
        return Some(Out::ReadOnly);
    }
    if let Some(partition) = selector.partition {
        let index = *shard_index;
        *shard_index += 1;
        if !in_shard(partition, index, &s.id) {
            return Some(Out::Partition);
        }
    }
    if !names_match(selector, &s.id) {
        return Some(Out::Name);
    }
    if selector.ignored == Ignored::Only && s.ignore.is_none() {
        return Some(Out::NotIgnored);
    }
    None
}

fn in_shard(partition: Partition, index: u64, id: &str) -> bool {
    match partition {
        Partition::Slice { shard, total } => index % total == shard - 1,
        Partition::Hash { shard, total } => {
            let digest = crate::files::sha256_hex(id.as_bytes());
            let h = u64::from_str_radix(&digest[..16], 16).unwrap_or(0);
            h % total == shard - 1
        }
    }
}

/// libtest's rules: `--filter` keeps ids containing it, `--skip` drops ids containing
/// any of its values; with `--exact` both compare whole ids, given as `run --list`
/// prints them (`ID: test`) or bare.
fn names_match(selector: &Selector, id: &str) -> bool {
    let hit = |pattern: &str| {
        if selector.exact {
            pattern.strip_suffix(": test").unwrap_or(pattern) == id
        } else {
            id.contains(pattern)
        }
    };
    selector.filter.as_deref().is_none_or(hit) && !selector.skip.iter().any(|p| hit(p))
}

/// A scenario of the run: ignored, not applicable to the target, or to run.
fn applicable(s: &Scenario, selector: &Selector, offer: Option<Offer<'_>>) -> Selection {
    if let Some(reason) = &s.ignore
        && selector.ignored == Ignored::Skip
    {
        return Selection::Skip(format!("ignored: {reason}"));
    }
    let Some(offer) = offer else {
        return Selection::Run;
    };
    if !crate::validation::BUILT_IN && s.valid_rules().next().is_some() {
        let reason = "needs FHIR validation (`expect.valid`), which this build leaves out (build with --features validation)";
        return if selector.strict {
            Selection::Fail(format!("not applicable under --strict: {reason}"))
        } else {
            Selection::Skip(reason.to_owned())
        };
    }
    let unmet: Vec<String> = s
        .requires
        .iter()
        .filter_map(|r| offer.capabilities.unmet(r, offer.features))
        .collect();
    if !unmet.is_empty() {
        let reason = unmet.join("; ");
        return if selector.strict {
            Selection::Fail(format!("not applicable under --strict: {reason}"))
        } else {
            Selection::Skip(reason)
        };
    }
    let missing: Vec<String> = s
        .inputs
        .iter()
        .filter(|i| !offer.vars.contains_key(*i))
        .cloned()
        .collect();
    if !missing.is_empty() {
        return Selection::NeedsInputs(missing);
    }
    Selection::Run
}

/// Why a scenario is skipped for want of `inputs`, as the reports say it.
pub fn needs_inputs_reason(missing: &[String]) -> String {
    let names: Vec<String> = missing.iter().map(|m| format!("`{m}`")).collect();
    format!(
        "needs input {} (set it with --var NAME=VALUE or in the target's vars)",
        names.join(", ")
    )
}

/// How many scenarios each [`Out`] reason left out.
pub fn left_out(selected: &[Selected]) -> BTreeMap<Out, usize> {
    let mut counts = BTreeMap::new();
    for s in selected {
        if let Selection::Out(out) = s.selection {
            *counts.entry(out).or_insert(0) += 1;
        }
    }
    counts
}
