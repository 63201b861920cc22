//! Offline FHIR R4 validation for fhirconf, behind a narrow seam.
//!
//! This crate is the only place that touches the helios crates (`helios-fhir-validator`
//! with its R4 schema and terminology packs, and through its FHIRPath evaluator the
//! generated R4 model). Its API takes a [`serde_json::Value`] and returns owned
//! [`Issue`]s, so no helios type or generic crosses into fhirconf, and editing fhirconf
//! never recompiles the model.
//!
//! What it adds on top of the validator (findings of the spike in issue #15):
//! - input that is not an object with a `resourceType` string is an error (the
//!   validator returns no issues for `[]`, `"x"`, `{}` or `null`);
//! - a Bundle is validated entry by entry (paths like `Bundle.entry[3].resource.name`),
//!   and its own invariants on a copy whose entries are reduced to
//!   `resourceType`/`id`/`meta`, which keeps the cost linear in the entry count;
//! - when the resource does not fit the typed model, the flood of "could not be
//!   evaluated" invariant warnings becomes one issue naming the cause;
//! - txt-1/txt-2 (need HTML checks the validator lacks) and dom-3 on resources with
//!   `contained` (cannot be evaluated there) are not run; dom-6 (narrative) is
//!   reported as [`Severity::Information`], a best-practice note;
//! - required bindings are checked against the embedded core value sets;
//! - ids are checked against the R4 id pattern and empty arrays are errors;
//! - no JSON makes it panic: the walk runs under `catch_unwind`, and nesting deeper
//!   than [`MAX_DEPTH`] is reported instead of walked.

use std::collections::{BTreeMap, HashSet};
use std::fmt;
use std::panic::{AssertUnwindSafe, catch_unwind};
use std::sync::{Arc, PoisonError, RwLock};

use helios_fhir::FhirVersion;
use helios_fhir_validator::fhirpath_effects::FhirPathConstraintEvaluator;
use helios_fhir_validator::packs::core_registry;
use helios_fhir_validator::{
    CompositeResolver, ConstraintEvaluator, ConstraintOutcome, CoreTerminology, Deferred,
    DeferredConstraint, SchemaRegistry, SchemaResolver, UnknownProfilePolicy, ValidationError,
    ValidationOptions, converter, core_terminology, dotted_to_fhirpath,
};
use serde_json::{Map, Value};

/// JSON nested deeper than this is reported, not walked (real resources stay far
/// below it; the walk and the typed model recurse).
pub const MAX_DEPTH: usize = 64;

/// Invariants never run: txt-1/txt-2 need the validator's missing HTML checks; tst-5
/// fails wrongly on every valid `assert` with a `responseCode`, because helios-fhirpath
/// 0.2.7 matches element names by prefix (`response` finds `responseCode`; seen on the
/// R4 spec's own TestScript examples, docs/validation.md).
const NOT_RUN: &[&str] = &["txt-1", "txt-2", "tst-5"];
/// Invariants checked on the JSON by [`own_checks`] instead of the FHIRPath evaluator.
/// They sit on every element (ele-1) and every extension (ext-1): evaluated there, each
/// instance costs time in proportion to the whole resource, so a 72 KB
/// CapabilityStatement (1,333 ele-1 instances) took seconds.
const CHECKED_ON_JSON: &[&str] = &["ele-1", "ext-1"];
/// Invariants reported as best practice ([`Severity::Information`]).
const BEST_PRACTICE: &[&str] = &["dom-6"];
/// The evaluator's detail when the resource does not parse into the typed model.
const TYPED_MODEL_FAILURE: &str = "resource does not parse into the typed model";

/// How bad an issue is. Only [`Severity::Error`] makes a resource invalid.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Severity {
    Error,
    Warning,
    /// Best-practice notes and consequences of an error already reported.
    Information,
}

impl Severity {
    pub fn as_str(self) -> &'static str {
        match self {
            Severity::Error => "error",
            Severity::Warning => "warning",
            Severity::Information => "information",
        }
    }
}

impl fmt::Display for Severity {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// One finding about one resource.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Issue {
    pub severity: Severity,
    /// FHIRPath location, rooted at the resource type (`Practitioner.name[0].family`),
    /// or at the entry of a Bundle (`Bundle.entry[3].resource.gender`). Empty when the
    /// input is not a resource at all.
    pub path: String,
    pub message: String,
    /// The profile (canonical URL) whose rule this is; `None` for the base spec.
    pub profile: Option<String>,
    /// The invariant key (`app-3`, `dom-6`) when the issue is an invariant's.
    pub rule: Option<String>,
}

impl Issue {
    fn new(severity: Severity, path: impl Into<String>, message: impl Into<String>) -> Self {
        Issue {
            severity,
            path: path.into(),
            message: message.into(),
            profile: None,
            rule: None,
        }
    }

    pub fn is_error(&self) -> bool {
        self.severity == Severity::Error
    }
}

/// Why profiles or the core definitions could not be loaded.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error("{what} is not a StructureDefinition (resourceType {found})")]
    NotAStructureDefinition { what: String, found: String },
    #[error("{what} cannot be used as a profile: {reason}")]
    Convert { what: String, reason: String },
    #[error("the FHIR R4 core definitions could not be loaded: {0}")]
    Core(String),
}

/// What [`Validator::add_profiles`] loaded.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct Loaded {
    /// Canonical URLs of the profiles loaded, in input order.
    pub profiles: Vec<String>,
    /// Non-fatal remarks of the converter (unmappable discriminators and the like).
    pub warnings: Vec<String>,
    /// Resources inside Bundles that are not StructureDefinitions (skipped).
    pub skipped: usize,
}

/// The R4 validator: core packs loaded once, profiles added on top. Share one per
/// run; [`Validator::validate`] takes `&self` and is safe to call from many threads.
pub struct Validator {
    core: Arc<SchemaRegistry>,
    /// Profile layers, newest first (a later profile with the same URL wins).
    layers: Vec<Arc<SchemaRegistry>>,
    resolver: Arc<CompositeResolver>,
    engine: helios_fhir_validator::Validator,
    terminology: Arc<CoreTerminology>,
    /// Replaced after a panic, since a panic inside it may poison its parse cache.
    evaluator: RwLock<Arc<FhirPathConstraintEvaluator>>,
    profiles: Vec<String>,
}

impl fmt::Debug for Validator {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Validator")
            .field("profiles", &self.profiles)
            .finish_non_exhaustive()
    }
}

impl Validator {
    /// Loads the embedded R4 schema and terminology packs (tens of milliseconds,
    /// once per process: later calls share the parsed packs).
    pub fn new() -> Result<Self, Error> {
        let (core, terminology) = catch_unwind(|| {
            (
                core_registry(FhirVersion::R4),
                core_terminology(FhirVersion::R4),
            )
        })
        .map_err(|panic| Error::Core(panic_text(&panic)))?;
        let resolver = Arc::new(CompositeResolver::new(vec![
            Arc::clone(&core) as Arc<dyn SchemaResolver>
        ]));
        Ok(Validator {
            engine: helios_fhir_validator::Validator::new(
                Arc::clone(&resolver) as Arc<dyn SchemaResolver>
            ),
            core,
            layers: Vec::new(),
            resolver,
            terminology,
            evaluator: RwLock::new(Arc::new(FhirPathConstraintEvaluator::new())),
            profiles: Vec::new(),
        })
    }

    /// Adds StructureDefinitions (profiles, extensions, logical or derived types).
    /// Each value may be a StructureDefinition, an array of values, or a Bundle whose
    /// entries hold them (other resources in a Bundle are skipped and counted).
    /// All or nothing: on an error nothing is added.
    pub fn add_profiles(&mut self, sds: Vec<Value>) -> Result<Loaded, Error> {
        let mut found = Vec::new();
        let mut loaded = Loaded::default();
        for (i, value) in sds.into_iter().enumerate() {
            collect_sds(
                value,
                format!("item {}", i + 1),
                false,
                &mut found,
                &mut loaded,
            )?;
        }
        let mut registry = SchemaRegistry::new();
        for (what, sd) in found {
            let url = sd.get("url").and_then(Value::as_str).map(str::to_owned);
            let what = url.clone().unwrap_or(what);
            let Some(url) = url else {
                return Err(Error::Convert {
                    what,
                    reason: "it has no \"url\"".into(),
                });
            };
            if let Some(version) = sd.get("fhirVersion").and_then(Value::as_str)
                && !version.starts_with("4.0")
            {
                loaded.warnings.push(format!(
                    "{url}: fhirVersion {version} is not R4 (4.0.x); its rules are applied as R4"
                ));
            }
            let conversion = catch_unwind(AssertUnwindSafe(|| converter::convert(&sd)))
                .map_err(|panic| Error::Convert {
                    what: what.clone(),
                    reason: format!("the converter failed: {}", panic_text(&panic)),
                })?
                .map_err(|e| Error::Convert {
                    what: what.clone(),
                    reason: e.to_string(),
                })?;
            loaded.warnings.extend(
                conversion
                    .warnings
                    .into_iter()
                    .map(|w| format!("{url}: {w}")),
            );
            registry.insert_named(url.clone(), conversion.schema);
            loaded.profiles.push(url);
        }
        if !loaded.profiles.is_empty() {
            self.layers.insert(0, Arc::new(registry));
            let mut layers: Vec<Arc<dyn SchemaResolver>> = self
                .layers
                .iter()
                .map(|l| Arc::clone(l) as Arc<dyn SchemaResolver>)
                .collect();
            layers.push(Arc::clone(&self.core) as Arc<dyn SchemaResolver>);
            self.resolver = Arc::new(CompositeResolver::new(layers));
            self.engine = helios_fhir_validator::Validator::new(
                Arc::clone(&self.resolver) as Arc<dyn SchemaResolver>
            );
            self.profiles.extend(loaded.profiles.iter().cloned());
        }
        Ok(loaded)
    }

    /// Canonical URLs of the profiles added so far.
    pub fn profiles(&self) -> &[String] {
        &self.profiles
    }

    /// Whether `url` (a `|version` suffix is ignored) names a loaded profile or a
    /// core definition.
    pub fn has_profile(&self, url: &str) -> bool {
        self.resolver.resolve(strip_version(url)).is_some()
    }

    /// The resource type a profile constrains (`Practitioner` for US Core
    /// Practitioner), when the profile is known.
    pub fn profile_type(&self, url: &str) -> Option<String> {
        self.resolver
            .resolve(strip_version(url))
            .and_then(|s| s.type_.clone())
    }

    /// Validates one resource (or Bundle, entry by entry) against R4, the profiles it
    /// claims in `meta.profile` and `profile` if given. For a Bundle, a `profile` of
    /// another type applies to the entries of that type. Never panics.
    pub fn validate(&self, resource: &Value, profile: Option<&str>) -> Vec<Issue> {
        let run = catch_unwind(AssertUnwindSafe(|| {
            let mut out = Vec::new();
            self.check_value(resource, profile, None, &mut out);
            out
        }));
        match run {
            Ok(issues) => issues,
            Err(panic) => {
                // The evaluator's parse cache sits behind a mutex a panic may poison.
                *self
                    .evaluator
                    .write()
                    .unwrap_or_else(PoisonError::into_inner) =
                    Arc::new(FhirPathConstraintEvaluator::new());
                vec![Issue::new(
                    Severity::Error,
                    root_name(resource),
                    format!(
                        "the validator failed on this resource ({}); it is not judged",
                        panic_text(&panic)
                    ),
                )]
            }
        }
    }

    /// One value that should be a resource; `prefix` is its place in a Bundle.
    fn check_value(
        &self,
        value: &Value,
        profile: Option<&str>,
        prefix: Option<&str>,
        out: &mut Vec<Issue>,
    ) {
        let here = prefix.unwrap_or("");
        let Some(object) = value.as_object() else {
            out.push(Issue::new(
                Severity::Error,
                here,
                format!(
                    "not a FHIR resource: expected a JSON object with a \"resourceType\", got {}",
                    json_type(value)
                ),
            ));
            return;
        };
        let resource_type = match object.get("resourceType") {
            Some(Value::String(t)) if !t.is_empty() => t.as_str(),
            Some(other) => {
                out.push(Issue::new(
                    Severity::Error,
                    here,
                    format!(
                        "not a FHIR resource: \"resourceType\" must be a non-empty string, got {}",
                        json_type(other)
                    ),
                ));
                return;
            }
            None => {
                out.push(Issue::new(
                    Severity::Error,
                    here,
                    "not a FHIR resource: the object has no \"resourceType\"",
                ));
                return;
            }
        };
        if depth(value) > MAX_DEPTH {
            out.push(Issue::new(
                Severity::Error,
                prefix.unwrap_or(resource_type),
                format!("nested more than {MAX_DEPTH} levels deep; not validated"),
            ));
            return;
        }
        if resource_type == "Bundle" {
            self.check_bundle(object, profile, prefix, out);
        } else {
            let issues = self.check_one(value, profile);
            out.extend(issues.into_iter().map(|i| rebase(i, prefix)));
        }
    }

    fn check_bundle(
        &self,
        bundle: &Map<String, Value>,
        profile: Option<&str>,
        prefix: Option<&str>,
        out: &mut Vec<Issue>,
    ) {
        // A profile on another type than Bundle applies to the entries of that type.
        let entry_type = profile
            .and_then(|p| self.profile_type(p))
            .filter(|t| t != "Bundle");
        let (bundle_profile, entry_profile) = match entry_type {
            Some(t) => (None, profile.map(|p| (p, t))),
            None => (profile, None),
        };

        // Bundle-level checks, on a copy whose entry resources are reduced to what the
        // Bundle invariants read (type, id, meta): linear cost, and a bad entry does
        // not stop the Bundle's own invariants from running.
        let entries = bundle.get("entry").and_then(Value::as_array);
        let mut reduced = bundle.clone();
        if let Some(Value::Array(list)) = reduced.get_mut("entry") {
            for entry in list.iter_mut() {
                if let Some(Value::Object(e)) = Some(entry)
                    && let Some(Value::Object(r)) = e.get("resource")
                {
                    let stub: Map<String, Value> = ["resourceType", "id", "meta"]
                        .iter()
                        .filter_map(|k| r.get(*k).map(|v| (k.to_string(), v.clone())))
                        .collect();
                    e.insert("resource".into(), Value::Object(stub));
                }
            }
        }
        let reduced = Value::Object(reduced);
        let own = self.check_one(&reduced, bundle_profile);
        out.extend(
            own.into_iter()
                .filter(|i| !is_under_entry_resource(&i.path))
                .map(|i| rebase(i, prefix)),
        );

        for (index, entry) in entries.into_iter().flatten().enumerate() {
            let Some(resource) = entry.get("resource") else {
                continue;
            };
            let at = format!("{}.entry[{index}].resource", prefix.unwrap_or("Bundle"));
            let entry_profile = entry_profile.as_ref().and_then(|(p, t)| {
                (resource.get("resourceType").and_then(Value::as_str) == Some(t)).then_some(*p)
            });
            self.check_value(resource, entry_profile, Some(&at), out);
        }
    }

    /// One resource that is an object with a resourceType; paths rooted at its type.
    fn check_one(&self, resource: &Value, explicit: Option<&str>) -> Vec<Issue> {
        let root = root_name(resource);
        let mut issues = Vec::new();
        own_checks(resource, &root, &mut issues);

        // The profiles in play: the one asked for, then those the resource claims.
        let mut profiles: Vec<String> = Vec::new();
        if let Some(p) = explicit {
            if self.has_profile(p) {
                profiles.push(strip_version(p).to_owned());
            } else {
                issues.push(Issue::new(
                    Severity::Error,
                    root.clone(),
                    format!("profile {p} is not loaded; the resource was not checked against it"),
                ));
            }
        }
        let claimed = resource
            .pointer("/meta/profile")
            .and_then(Value::as_array)
            .into_iter()
            .flatten()
            .filter_map(Value::as_str);
        for p in claimed {
            let p_bare = strip_version(p);
            if profiles.iter().any(|q| q == p_bare) {
                continue;
            }
            if self.has_profile(p) {
                profiles.push(p_bare.to_owned());
            } else {
                issues.push(Issue::new(
                    Severity::Warning,
                    format!("{root}.meta.profile"),
                    format!(
                        "claims profile {p}, which is not loaded; checked against the base specification only"
                    ),
                ));
            }
        }

        let opts = |profiles: Vec<String>| ValidationOptions {
            profiles,
            use_meta_profiles: false,
            unknown_profile: UnknownProfilePolicy::Ignore,
            check_extension_context: false,
        };
        // helios keeps a record per element and invariant (about 1.2 KB per JSON value
        // measured): past a size, only the checks above run.
        if node_count(resource, MAX_VALIDATED_NODES + 1) > MAX_VALIDATED_NODES {
            issues.push(Issue::new(
                Severity::Warning,
                root.clone(),
                format!(
                    "not validated against R4 or profiles: the resource has more than {MAX_VALIDATED_NODES} JSON values, the most fhirconf validates in one resource (only its ids, empty arrays, ele-1 and ext-1 were checked)"
                ),
            ));
            return as_fhirpath(issues, &root);
        }
        let base = self.engine.validate_sync(resource, &opts(Vec::new()));
        let structural_errors = base
            .errors
            .iter()
            .any(|e| e.severity == helios_fhir_validator::Severity::Error);
        let mut structural: Vec<(ValidationError, Option<String>)> =
            base.errors.into_iter().map(|e| (e, None)).collect();
        let mut deferred: Vec<(Deferred, Option<String>)> =
            base.deferred.into_iter().map(|d| (d, None)).collect();
        let mut any_profile_errors = false;
        for p in &profiles {
            let with = self.engine.validate_sync(resource, &opts(vec![p.clone()]));
            for e in with.errors {
                if !structural.iter().any(|(s, _)| same_error(s, &e)) {
                    any_profile_errors |= e.severity == helios_fhir_validator::Severity::Error;
                    structural.push((e, Some(p.clone())));
                }
            }
            for d in with.deferred {
                if !deferred.iter().any(|(s, _)| same_deferred(s, &d)) {
                    deferred.push((d, Some(p.clone())));
                }
            }
        }

        for (e, profile) in structural {
            issues.push(Issue {
                severity: match e.severity {
                    helios_fhir_validator::Severity::Error => Severity::Error,
                    helios_fhir_validator::Severity::Warning => Severity::Warning,
                },
                path: e.path,
                message: e.message,
                profile,
                rule: None,
            });
        }
        self.check_invariants(
            resource,
            &root,
            &deferred,
            structural_errors || any_profile_errors,
            &mut issues,
        );
        self.check_bindings(&deferred, &mut issues);

        as_fhirpath(issues, &root)
    }

    fn check_invariants(
        &self,
        resource: &Value,
        root: &str,
        deferred: &[(Deferred, Option<String>)],
        structural_errors: bool,
        issues: &mut Vec<Issue>,
    ) {
        let has_contained = resource.get("contained").is_some();
        struct Selected<'a> {
            path: &'a str,
            id: &'a str,
            expression: &'a str,
            human: Option<&'a str>,
            severity: Severity,
            profile: &'a Option<String>,
        }
        let mut selected: Vec<Selected<'_>> = Vec::new();
        let mut seen = HashSet::new();
        for (d, profile) in deferred {
            let Deferred::Constraint {
                path,
                id,
                expression,
                human,
                severity,
            } = d
            else {
                continue;
            };
            let severity = match severity.as_deref() {
                None | Some("error") => Severity::Error,
                Some("warning") => Severity::Warning,
                _ => continue, // guideline: not evaluated
            };
            if NOT_RUN.contains(&id.as_str())
                || CHECKED_ON_JSON.contains(&id.as_str())
                || (id == "dom-3" && has_contained)
            {
                continue;
            }
            let severity = if BEST_PRACTICE.contains(&id.as_str()) {
                Severity::Information
            } else {
                severity
            };
            if !seen.insert((path.as_str(), id.as_str())) {
                continue;
            }
            selected.push(Selected {
                path,
                id,
                expression,
                human: human.as_deref(),
                severity,
                profile,
            });
        }
        if selected.is_empty() {
            return;
        }
        // The evaluator holds the resource as helios' typed model and converts what it
        // walks into FHIRPath values: its time and memory grow with the resource (a
        // 2.4 MB Patient took 700 MB). Past a size, invariants are not evaluated.
        let nodes = node_count(resource, MAX_INVARIANT_NODES + 1);
        if nodes > MAX_INVARIANT_NODES {
            issues.push(Issue::new(
                Severity::Warning,
                root,
                format!(
                    "{} invariants not evaluated: the resource has more than {MAX_INVARIANT_NODES} JSON values, the most the invariant evaluator is given; its structure, cardinality, types, bindings and profiles were checked",
                    selected.len()
                ),
            ));
            return;
        }
        let evaluator = Arc::clone(
            &self
                .evaluator
                .read()
                .unwrap_or_else(PoisonError::into_inner),
        );
        // Each evaluation costs time in proportion to the whole resource, so in a
        // Bundle the invariants of one entry (bdl-5, bdl-8, ...) are evaluated on a
        // Bundle holding that entry alone: linear in the entry count, not quadratic.
        // Bundle invariants of the form `entry.all(...)` (bdl-3, bdl-4) hold when they
        // hold on each one-entry Bundle, so they are evaluated there too.
        let entries = resource
            .get("entry")
            .and_then(Value::as_array)
            .map_or(0, Vec::len);
        let per_entry = |s: &Selected<'_>| {
            root == "Bundle"
                && s.path == "Bundle"
                && s.expression.starts_with("entry.all(")
                && !s.expression.contains("resource.entry")
        };
        let mut scopes: BTreeMap<Option<usize>, Vec<usize>> = BTreeMap::new();
        for (i, s) in selected.iter().enumerate() {
            if per_entry(s) {
                for n in 0..entries {
                    scopes.entry(Some(n)).or_default().push(i);
                }
            } else {
                scopes
                    .entry(entry_scope(resource, s.path))
                    .or_default()
                    .push(i);
            }
        }
        let mut outcomes: Vec<ConstraintOutcome> = vec![ConstraintOutcome::Passed; selected.len()];
        for (scope, members) in scopes {
            let (focus, paths): (std::borrow::Cow<'_, Value>, Vec<String>) = match scope {
                None => (
                    std::borrow::Cow::Borrowed(resource),
                    members
                        .iter()
                        .map(|&i| selected[i].path.to_owned())
                        .collect(),
                ),
                Some(n) => (
                    std::borrow::Cow::Owned(one_entry_bundle(resource, n)),
                    members
                        .iter()
                        .map(|&i| {
                            let path = selected[i].path;
                            match path.strip_prefix(&format!("Bundle.entry.{n}")) {
                                Some(rest) => format!("Bundle.entry.0{rest}"),
                                None => path.to_owned(),
                            }
                        })
                        .collect(),
                ),
            };
            let refs: Vec<DeferredConstraint<'_>> = members
                .iter()
                .zip(&paths)
                .map(|(&i, path)| DeferredConstraint {
                    path,
                    id: selected[i].id,
                    expression: selected[i].expression,
                })
                .collect();
            let (results, unjudged) = evaluate_grouped(&evaluator, &focus, &refs);
            for rest in unjudged {
                let first = &selected[members[rest.first]];
                let text = first.human.map_or_else(
                    || format!("invariant not satisfied: {}", first.expression),
                    str::to_owned,
                );
                issues.push(Issue {
                    severity: first.severity,
                    path: unindexed(first.path),
                    message: format!(
                        "{text} (on at least one of {} elements: the first {EACH_AT_MOST} were judged one by one and are reported on their own, the other {} together)",
                        rest.of, rest.count
                    ),
                    profile: first.profile.clone(),
                    rule: Some(first.id.to_owned()),
                });
            }
            for (&i, outcome) in members.iter().zip(results) {
                // Over several scopes: failed, else not evaluable, else passed.
                let worse = match (&outcomes[i], &outcome) {
                    (ConstraintOutcome::Failed, _) => false,
                    (_, ConstraintOutcome::Failed) => true,
                    (ConstraintOutcome::Passed, ConstraintOutcome::NotEvaluable(_)) => true,
                    _ => false,
                };
                if worse {
                    outcomes[i] = outcome;
                }
            }
        }

        // The resource does not fit the typed model: every invariant fails the same
        // way. One issue, pointing at the cause.
        let typed_failure = |o: &ConstraintOutcome| matches!(o, ConstraintOutcome::NotEvaluable(d) if d.starts_with(TYPED_MODEL_FAILURE));
        if let Some(ConstraintOutcome::NotEvaluable(detail)) = outcomes.first()
            && outcomes.iter().all(typed_failure)
        {
            let cause = detail
                .strip_prefix(TYPED_MODEL_FAILURE)
                .unwrap_or(detail)
                .trim_start_matches(':')
                .trim();
            let (severity, message) = if structural_errors {
                (
                    Severity::Information,
                    format!(
                        "{} invariants not evaluated: the errors above keep the resource from being read as R4 ({cause})",
                        outcomes.len()
                    ),
                )
            } else {
                (
                    Severity::Warning,
                    format!(
                        "{} invariants not evaluated: the validator could not read the resource as R4 ({cause})",
                        outcomes.len()
                    ),
                )
            };
            issues.push(Issue::new(severity, root, message));
            return;
        }

        for (s, outcome) in selected.iter().zip(outcomes) {
            let (severity, message) = match outcome {
                ConstraintOutcome::Passed => continue,
                ConstraintOutcome::Failed => {
                    let text = match s.human {
                        Some(h) => h.to_owned(),
                        None => format!("invariant not satisfied: {}", s.expression),
                    };
                    let text = if s.severity == Severity::Information {
                        format!("best practice: {text}")
                    } else {
                        text
                    };
                    (s.severity, text)
                }
                ConstraintOutcome::NotEvaluable(detail) => (
                    Severity::Warning,
                    format!("invariant could not be evaluated: {detail}"),
                ),
            };
            issues.push(Issue {
                severity,
                path: s.path.to_owned(),
                message,
                profile: s.profile.clone(),
                rule: Some(s.id.to_owned()),
            });
        }
    }

    fn check_bindings(&self, deferred: &[(Deferred, Option<String>)], issues: &mut Vec<Issue>) {
        for (d, profile) in deferred {
            let Deferred::Binding { binding, value, .. } = d else {
                continue;
            };
            for e in self
                .terminology
                .required_binding_errors(std::slice::from_ref(d))
            {
                issues.push(Issue {
                    severity: Severity::Error,
                    path: e.path,
                    message: format!(
                        "{} is not in the required value set {}",
                        short_json(value),
                        strip_version(&binding.value_set)
                    ),
                    profile: profile.clone(),
                    rule: None,
                });
            }
        }
    }
}

/// Values (and the top level of arrays, Bundles of) that are StructureDefinitions.
fn collect_sds(
    value: Value,
    what: String,
    in_bundle: bool,
    found: &mut Vec<(String, Value)>,
    loaded: &mut Loaded,
) -> Result<(), Error> {
    match value {
        Value::Array(items) => {
            for (i, item) in items.into_iter().enumerate() {
                collect_sds(item, format!("{what}[{i}]"), in_bundle, found, loaded)?;
            }
            Ok(())
        }
        Value::Object(mut object) => {
            let resource_type = object
                .get("resourceType")
                .and_then(Value::as_str)
                .unwrap_or("")
                .to_owned();
            match resource_type.as_str() {
                "StructureDefinition" => {
                    found.push((what, Value::Object(object)));
                    Ok(())
                }
                "Bundle" => {
                    let entries = match object.remove("entry") {
                        Some(Value::Array(entries)) => entries,
                        _ => Vec::new(),
                    };
                    for (i, mut entry) in entries.into_iter().enumerate() {
                        if let Some(resource) = entry.get_mut("resource").map(Value::take) {
                            collect_sds(
                                resource,
                                format!("{what} entry {i}"),
                                true,
                                found,
                                loaded,
                            )?;
                        }
                    }
                    Ok(())
                }
                _ if in_bundle => {
                    loaded.skipped += 1;
                    Ok(())
                }
                "" => Err(Error::NotAStructureDefinition {
                    what,
                    found: "missing".into(),
                }),
                other => Err(Error::NotAStructureDefinition {
                    what,
                    found: other.into(),
                }),
            }
        }
        other => Err(Error::NotAStructureDefinition {
            what,
            found: format!("missing: the value is {}", json_type(&other)),
        }),
    }
}

/// Evaluates `refs` on `focus`, each instance of one invariant on one repeating path
/// (cpb-12 on every `CapabilityStatement.rest.0.resource.N`, cpt-2 on every
/// ContactPoint) first as a single instance on the path without its indexes: the
/// evaluator starts every instance from the root of the whole resource, so 146
/// instances cost 146 walks of it. The path without indexes selects every element the
/// instances sit on, and the invariant is judged on each, so when it passes every
/// instance passes; otherwise the group's instances are evaluated one by one, to say
/// which element fails.
///
/// At most [`EACH_AT_MOST`] instances of a group are evaluated one by one (each walks
/// the whole resource, so all of them would be quadratic: a hostile body with 100,000
/// ContactPoints would take hours); when the group is larger, the others are judged
/// together, returned as [`Unjudged`] (their outcomes say passed) and reported as one
/// issue on the path without indexes.
fn evaluate_grouped(
    evaluator: &FhirPathConstraintEvaluator,
    focus: &Value,
    refs: &[DeferredConstraint<'_>],
) -> (Vec<ConstraintOutcome>, Vec<Unjudged>) {
    let mut groups: BTreeMap<(&str, &str, String), Vec<usize>> = BTreeMap::new();
    for (k, r) in refs.iter().enumerate() {
        groups
            .entry((r.id, r.expression, unindexed(r.path)))
            .or_default()
            .push(k);
    }
    let mut first: Vec<DeferredConstraint<'_>> = Vec::with_capacity(groups.len());
    for ((id, expression, path), members) in &groups {
        first.push(match members.as_slice() {
            [one] => DeferredConstraint {
                path: refs[*one].path,
                id,
                expression,
            },
            _ => DeferredConstraint {
                path,
                id,
                expression,
            },
        });
    }
    let mut out = vec![ConstraintOutcome::Passed; refs.len()];
    let mut again: Vec<usize> = Vec::new();
    let mut unjudged = Vec::new();
    let results = evaluator.evaluate_all(focus, FhirVersion::R4, &first);
    for (members, outcome) in groups.values().zip(results) {
        match (members.as_slice(), outcome) {
            ([one], outcome) => out[*one] = outcome,
            (_, ConstraintOutcome::Passed) => {}
            (many, _) => {
                again.extend_from_slice(&many[..many.len().min(EACH_AT_MOST)]);
                if many.len() > EACH_AT_MOST {
                    unjudged.push(Unjudged {
                        first: many[0],
                        count: many.len() - EACH_AT_MOST,
                        of: many.len(),
                    });
                }
            }
        }
    }
    if !again.is_empty() {
        let each: Vec<DeferredConstraint<'_>> = again
            .iter()
            .map(|&k| DeferredConstraint {
                path: refs[k].path,
                id: refs[k].id,
                expression: refs[k].expression,
            })
            .collect();
        let results = evaluator.evaluate_all(focus, FhirVersion::R4, &each);
        for (&k, outcome) in again.iter().zip(results) {
            out[k] = outcome;
        }
    }
    (out, unjudged)
}

/// A dotted path without its index segments: `Patient.telecom.3.period` →
/// `Patient.telecom.period`.
fn unindexed(path: &str) -> String {
    path.split('.')
        .filter(|segment| segment.is_empty() || !segment.bytes().all(|b| b.is_ascii_digit()))
        .collect::<Vec<_>>()
        .join(".")
}

/// At most this many instances of one invariant on one repeating path are evaluated
/// one by one (see [`evaluate_grouped`]).
const EACH_AT_MOST: usize = 20;

/// Instances of a failing group past the first [`EACH_AT_MOST`]: judged together.
struct Unjudged {
    /// The group's first instance, an index into the evaluated constraints.
    first: usize,
    /// How many were not judged one by one.
    count: usize,
    /// The group's size.
    of: usize,
}

/// Checks the validator does not make (issue #15 spike): the R4 `id` pattern, and
/// empty arrays anywhere (FHIR JSON never has them); and the invariants
/// [`CHECKED_ON_JSON`]: ele-1 (an element has a value or children other than `id`; one
/// whose only children are empty arrays is left to the empty-array error, its cause)
/// and ext-1 (an extension has `extension` or `value[x]`, not both). Dotted paths, like
/// the engine's.
fn own_checks(resource: &Value, root: &str, issues: &mut Vec<Issue>) {
    if let Some(id) = resource.get("id").and_then(Value::as_str)
        && !valid_id(id)
    {
        issues.push(Issue::new(
            Severity::Error,
            format!("{root}.id"),
            format!("id {id:?} does not match the R4 id pattern [A-Za-z0-9-.]{{1,64}}"),
        ));
    }
    fn invariant(path: &str, rule: &str, message: &str) -> Issue {
        Issue {
            rule: Some(rule.to_owned()),
            ..Issue::new(Severity::Error, path, message)
        }
    }
    fn walk(
        value: &Value,
        path: &mut String,
        issues: &mut Vec<Issue>,
        depth: usize,
        in_extension_list: bool,
    ) {
        if depth > MAX_DEPTH {
            return;
        }
        match value {
            Value::Object(map) => {
                let element = depth > 0 && !map.contains_key("resourceType");
                if element && map.keys().all(|k| k == "id") {
                    issues.push(invariant(
                        path,
                        "ele-1",
                        "All FHIR elements must have a @value or children",
                    ));
                }
                if in_extension_list {
                    let nested = map
                        .get("extension")
                        .is_some_and(|e| !matches!(e, Value::Array(a) if a.is_empty()));
                    // `_valueString` alone (a primitive with only extensions) is a value
                    // element too: FHIRPath's `value.exists()` is true for it.
                    let valued = map
                        .keys()
                        .any(|k| k.strip_prefix('_').unwrap_or(k).starts_with("value"));
                    if nested == valued {
                        issues.push(invariant(
                            path,
                            "ext-1",
                            "Must have either extensions or value[x], not both",
                        ));
                    }
                }
                for (key, child) in map {
                    let len = path.len();
                    path.push('.');
                    path.push_str(key);
                    if matches!(child, Value::Array(a) if a.is_empty()) {
                        issues.push(Issue::new(
                            Severity::Error,
                            path.clone(),
                            format!("{key} is an empty array; FHIR JSON leaves out empty elements"),
                        ));
                    } else if let Value::Array(items) = child {
                        let extensions = key == "extension" || key == "modifierExtension";
                        for (i, item) in items.iter().enumerate() {
                            let len = path.len();
                            path.push('.');
                            path.push_str(&i.to_string());
                            walk(item, path, issues, depth + 2, extensions);
                            path.truncate(len);
                        }
                    } else {
                        walk(child, path, issues, depth + 1, false);
                    }
                    path.truncate(len);
                }
            }
            Value::Array(items) => {
                for (i, child) in items.iter().enumerate() {
                    let len = path.len();
                    path.push('.');
                    path.push_str(&i.to_string());
                    walk(child, path, issues, depth + 1, false);
                    path.truncate(len);
                }
            }
            _ => {}
        }
    }
    let mut path = root.to_owned();
    walk(resource, &mut path, issues, 0, false);
}

fn valid_id(id: &str) -> bool {
    (1..=64).contains(&id.len())
        && id
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'.')
}

fn same_error(a: &ValidationError, b: &ValidationError) -> bool {
    a.kind == b.kind && a.path == b.path && a.message == b.message
}

fn same_deferred(a: &Deferred, b: &Deferred) -> bool {
    match (a, b) {
        (
            Deferred::Constraint { path, id, .. },
            Deferred::Constraint {
                path: p2, id: i2, ..
            },
        ) => path == p2 && id == i2,
        (
            Deferred::Binding { path, binding, .. },
            Deferred::Binding {
                path: p2,
                binding: b2,
                ..
            },
        ) => path == p2 && binding.value_set == b2.value_set,
        _ => false,
    }
}

/// The entry a Bundle invariant's dotted path (`Bundle.entry.3.search`) sits in.
fn entry_scope(resource: &Value, path: &str) -> Option<usize> {
    if resource.get("resourceType").and_then(Value::as_str) != Some("Bundle") {
        return None;
    }
    let rest = path.strip_prefix("Bundle.entry.")?;
    let digits = rest.split('.').next()?;
    digits.parse().ok()
}

/// The Bundle with only its entry `n` (everything else kept).
fn one_entry_bundle(bundle: &Value, n: usize) -> Value {
    let mut copy = Map::new();
    if let Some(object) = bundle.as_object() {
        for (k, v) in object {
            if k == "entry" {
                let one = v.get(n).cloned().map(|e| vec![e]).unwrap_or_default();
                copy.insert(k.clone(), Value::Array(one));
            } else {
                copy.insert(k.clone(), v.clone());
            }
        }
    }
    Value::Object(copy)
}

/// `Bundle.entry[3].resource` or below it (checked per entry, not at Bundle level).
fn is_under_entry_resource(path: &str) -> bool {
    let Some(rest) = path.strip_prefix("Bundle.entry[") else {
        return false;
    };
    let Some(close) = rest.find(']') else {
        return false;
    };
    let after = &rest[close + 1..];
    after == ".resource" || after.starts_with(".resource.") || after.starts_with(".resource[")
}

/// Moves an issue of an entry's resource under the entry's place in the Bundle.
fn rebase(mut issue: Issue, prefix: Option<&str>) -> Issue {
    if let Some(prefix) = prefix {
        let rest = issue
            .path
            .find(['.', '['])
            .map(|i| &issue.path[i..])
            .unwrap_or("");
        issue.path = format!("{prefix}{rest}");
    }
    issue
}

fn root_name(value: &Value) -> String {
    value
        .get("resourceType")
        .and_then(Value::as_str)
        .unwrap_or("")
        .to_owned()
}

fn strip_version(url: &str) -> &str {
    url.split('|').next().unwrap_or(url)
}

fn json_type(value: &Value) -> &'static str {
    match value {
        Value::Null => "null",
        Value::Bool(_) => "a boolean",
        Value::Number(_) => "a number",
        Value::String(_) => "a string",
        Value::Array(_) => "an array",
        Value::Object(_) => "an object",
    }
}

fn short_json(value: &Value) -> String {
    let text = value.to_string();
    if text.chars().count() > 80 {
        let cut: String = text.chars().take(77).collect();
        format!("{cut}...")
    } else {
        text
    }
}

/// Nesting depth, without recursion (so no input can overflow the stack here).
/// Paths: the engine's dotted form (`Patient.name.0`) as FHIRPath; duplicates out.
fn as_fhirpath(issues: Vec<Issue>, root: &str) -> Vec<Issue> {
    let mut seen = HashSet::new();
    issues
        .into_iter()
        .map(|mut i| {
            if i.path.is_empty() {
                i.path = root.to_owned();
            } else {
                i.path = dotted_to_fhirpath(&i.path);
            }
            i
        })
        .filter(|i| seen.insert((i.severity, i.path.clone(), i.message.clone())))
        .collect()
}

/// Resources with more JSON values than this get no invariant evaluation (see
/// `check_invariants`); a Bundle's entries are counted one by one.
pub const MAX_INVARIANT_NODES: usize = 50_000;

/// Resources with more JSON values than this are not given to helios at all (about
/// 120 MB of its memory at the limit); a Bundle's entries are counted one by one.
pub const MAX_VALIDATED_NODES: usize = 100_000;

/// The JSON values in `value`, counting stopped past `stop`.
fn node_count(value: &Value, stop: usize) -> usize {
    let mut count = 0;
    let mut stack = vec![value];
    while let Some(v) = stack.pop() {
        count += 1;
        if count > stop {
            break;
        }
        match v {
            Value::Array(items) => stack.extend(items),
            Value::Object(map) => stack.extend(map.values()),
            _ => {}
        }
    }
    count
}

fn depth(value: &Value) -> usize {
    let mut deepest = 0;
    let mut stack = vec![(value, 1usize)];
    while let Some((v, d)) = stack.pop() {
        deepest = deepest.max(d);
        match v {
            Value::Array(items) => stack.extend(items.iter().map(|c| (c, d + 1))),
            Value::Object(map) => stack.extend(map.values().map(|c| (c, d + 1))),
            _ => {}
        }
    }
    deepest
}

fn panic_text(panic: &(dyn std::any::Any + Send)) -> String {
    panic
        .downcast_ref::<&str>()
        .map(|s| (*s).to_owned())
        .or_else(|| panic.downcast_ref::<String>().cloned())
        .unwrap_or_else(|| "panic".to_owned())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn entry_resource_paths_are_recognised() {
        assert!(is_under_entry_resource("Bundle.entry[3].resource"));
        assert!(is_under_entry_resource("Bundle.entry[3].resource.name[0]"));
        assert!(!is_under_entry_resource("Bundle.entry[3].fullUrl"));
        assert!(!is_under_entry_resource("Bundle.total"));
    }

    #[test]
    fn rebase_moves_a_path_under_its_entry() {
        let issue = Issue::new(Severity::Error, "Practitioner.name[0]", "x");
        let moved = rebase(issue, Some("Bundle.entry[3].resource"));
        assert_eq!(moved.path, "Bundle.entry[3].resource.name[0]");
        let root = Issue::new(Severity::Error, "Practitioner", "x");
        assert_eq!(
            rebase(root, Some("Bundle.entry[0].resource")).path,
            "Bundle.entry[0].resource"
        );
    }

    #[test]
    fn ids_follow_the_r4_pattern() {
        assert!(valid_id("abc-1.2"));
        assert!(!valid_id("has space"));
        assert!(!valid_id(""));
        assert!(!valid_id(&"a".repeat(65)));
    }

    #[test]
    fn depth_counts_levels() {
        assert_eq!(depth(&serde_json::json!(1)), 1);
        assert_eq!(depth(&serde_json::json!({"a": [1]})), 3);
    }
}
