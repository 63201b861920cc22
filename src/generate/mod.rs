//! The capability suite: scenarios generated from a server's CapabilityStatement, one
//! file per declared resource type, each claim the statement makes tested. The
//! generated files are YAML scenario files, loaded by [`crate::scenario::load`] like
//! any other (in memory for `run --suite capability`, written by `fhirconf generate`),
//! so selection, reports, baselines and evidence apply unchanged.
//!
//! docs/capability-suite.md lists what is generated for each declaration, and why a
//! scenario is skipped.

pub mod instance;
pub mod search;

use std::collections::BTreeSet;
use std::path::Path;

use serde_json::{Map, Value, json};

use crate::diag::Diagnostic;
use crate::scenario::load::parallel;
use crate::scenario::{LoadOptions, SuiteFile};
use instance::{Builder, Prerequisite, SYSTEM};

/// The folder name generated files are shown under.
pub const FOLDER: &str = "capability";

/// How to generate.
#[derive(Debug, Clone, Copy, Default)]
pub struct Options {
    /// An interaction the server does not declare is expected to be refused (405 or
    /// 501) rather than skipped.
    pub strict: bool,
    /// Add `valid: {}` to every step that reads a resource (builds with validation).
    pub validate: bool,
}

/// One generated scenario file.
#[derive(Debug, Clone)]
pub struct GeneratedFile {
    /// `capability/Patient.yaml`.
    pub name: String,
    pub yaml: String,
}

/// What one resource type of the statement declares.
#[derive(Debug, Default)]
struct Declared {
    resource_type: String,
    interactions: BTreeSet<String>,
    /// `(name, type)` of each `searchParam`.
    search_params: Vec<(String, String)>,
    versioned: bool,
    conditional_create: bool,
    conditional_update: bool,
    conditional_delete: bool,
    /// `searchInclude` (`Observation:subject`).
    includes: Vec<String>,
    /// `searchRevInclude` (`Observation:subject`, on the type referred to).
    revincludes: Vec<String>,
}

/// Why no suite can be generated.
#[derive(Debug, thiserror::Error)]
pub enum GenerateError {
    #[error("the CapabilityStatement declares no server resource")]
    Empty,
    #[error("not a CapabilityStatement (resourceType is {0})")]
    NotAStatement(String),
}

/// The interactions the generator tests, in the order it reports them.
const INTERACTIONS: &[&str] = &[
    "create",
    "read",
    "vread",
    "update",
    "delete",
    "history-instance",
    "search-type",
];

/// The scenario files for `statement`, in the order of its resources.
pub fn generate(statement: &Value, opts: &Options) -> Result<Vec<GeneratedFile>, GenerateError> {
    let kind = statement
        .get("resourceType")
        .and_then(Value::as_str)
        .unwrap_or("none");
    if kind != "CapabilityStatement" {
        return Err(GenerateError::NotAStatement(kind.to_owned()));
    }
    let declared = declarations(statement);
    if declared.is_empty() {
        return Err(GenerateError::Empty);
    }
    let model = r4_model::r4();
    let creatable: BTreeSet<String> = declared
        .iter()
        .filter(|d| d.interactions.contains("create"))
        .map(|d| d.resource_type.clone())
        .collect();
    let deletable: BTreeSet<String> = declared
        .iter()
        .filter(|d| d.interactions.contains("delete"))
        .map(|d| d.resource_type.clone())
        .collect();
    let ctx = Context {
        model,
        creatable: &creatable,
        deletable: &deletable,
        opts: *opts,
    };
    let declared: Vec<&Declared> = declared
        .iter()
        .filter(|d| model.is_resource(&d.resource_type))
        .collect();
    // One file per type, on as many threads as there are CPUs.
    Ok(parallel(&declared, |d| GeneratedFile {
        name: format!("{FOLDER}/{}.yaml", d.resource_type),
        yaml: ctx.file(d),
    }))
}

/// The generated files loaded as suites (a problem in one is a generator bug).
pub fn load(
    files: &[GeneratedFile],
    opts: &LoadOptions,
) -> Result<Vec<SuiteFile>, Vec<Diagnostic>> {
    let mut suites = Vec::new();
    let mut errors = Vec::new();
    let loaded = parallel(files, |f| {
        crate::scenario::load::load_str(&f.name, &f.yaml, Path::new("."), opts)
    });
    for l in loaded {
        match l {
            Ok(s) => suites.push(s),
            Err(mut e) => errors.append(&mut e),
        }
    }
    if errors.is_empty() {
        Ok(suites)
    } else {
        Err(errors)
    }
}

/// What a search parameter's name can be: letters, digits, `_`, `-`, `.`, `:`.
fn is_param_name(name: &str) -> bool {
    !name.is_empty()
        && name.len() <= 64
        && name
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '_' | '-' | '.' | ':'))
}

/// `items` without repeats, in their order.
fn unique(items: Vec<String>) -> Vec<String> {
    let mut seen = BTreeSet::new();
    items
        .into_iter()
        .filter(|i| seen.insert(i.clone()))
        .collect()
}

/// The strings of a JSON array.
fn strings(v: Option<&Value>) -> Vec<String> {
    v.and_then(Value::as_array)
        .map(|a| {
            a.iter()
                .filter_map(Value::as_str)
                .map(str::to_owned)
                .collect()
        })
        .unwrap_or_default()
}

/// The server resources of every `rest` whose mode is not `client`.
fn declarations(statement: &Value) -> Vec<Declared> {
    let list = |v: Option<&Value>| v.and_then(Value::as_array).cloned().unwrap_or_default();
    let mut out: Vec<Declared> = Vec::new();
    for rest in list(statement.get("rest")) {
        if rest.get("mode").and_then(Value::as_str) == Some("client") {
            continue;
        }
        for res in list(rest.get("resource")) {
            let Some(ty) = res.get("type").and_then(Value::as_str) else {
                continue;
            };
            if out.iter().any(|d| d.resource_type == ty) {
                continue;
            }
            let flag = |k: &str| res.get(k).and_then(Value::as_bool) == Some(true);
            out.push(Declared {
                resource_type: ty.to_owned(),
                interactions: list(res.get("interaction"))
                    .iter()
                    .filter_map(|i| i.get("code").and_then(Value::as_str).map(str::to_owned))
                    .collect(),
                // A name twice would be two scenarios of one name; a name that is
                // not a parameter name (`{{`, spaces) is nothing R4 defines.
                search_params: {
                    let mut seen = BTreeSet::new();
                    list(res.get("searchParam"))
                        .iter()
                        .filter_map(|p| {
                            let name = p.get("name").and_then(Value::as_str)?;
                            let ty = p.get("type").and_then(Value::as_str).unwrap_or("");
                            Some((name.to_owned(), ty.to_owned()))
                        })
                        .filter(|(name, _)| is_param_name(name) && seen.insert(name.clone()))
                        .collect()
                },
                versioned: matches!(
                    res.get("versioning").and_then(Value::as_str),
                    Some("versioned" | "versioned-update")
                ),
                conditional_create: flag("conditionalCreate"),
                conditional_update: flag("conditionalUpdate"),
                conditional_delete: matches!(
                    res.get("conditionalDelete").and_then(Value::as_str),
                    Some("single" | "multiple")
                ),
                includes: unique(strings(res.get("searchInclude"))),
                revincludes: unique(strings(res.get("searchRevInclude"))),
            });
        }
    }
    out
}

struct Context<'a> {
    model: &'static r4_model::Model,
    creatable: &'a BTreeSet<String>,
    deletable: &'a BTreeSet<String>,
    opts: Options,
}

/// An instance to create: its body and the resources it refers to.
#[derive(Clone)]
struct Instance {
    body: Value,
    prerequisites: Vec<Prerequisite>,
}

/// Elements the server sets whatever the client sent (R4 subscription.html: the server
/// moves a Subscription from `requested` to `active` or `error`).
const SERVER_MANAGED: &[(&str, &str)] = &[("Subscription", "status")];

/// What a read-back need not return as sent: id, meta, the narrative (servers may
/// generate it), and the elements the server manages.
fn ignored_on_read(ty: &str) -> Vec<String> {
    let mut paths: Vec<String> = ["$.id", "$.meta", "$.text"]
        .iter()
        .map(|p| (*p).to_owned())
        .collect();
    paths.extend(
        SERVER_MANAGED
            .iter()
            .filter(|(t, _)| *t == ty)
            .map(|(_, e)| format!("$.{e}")),
    );
    paths
}

impl Instance {
    /// This instance holding a placed search value, with the resources the value refers
    /// to; or the R4 invariant the value would make it break.
    fn carrying(
        &self,
        model: &r4_model::Model,
        ty: &str,
        placed: &search::Placed,
        prereqs: &[Prerequisite],
    ) -> Result<Instance, String> {
        let mut body = self.body.clone();
        instance::place_value(model, ty, &mut body, &placed.patch);
        instance::broken_invariant(model, ty, &body)?;
        let mut prerequisites = self.prerequisites.clone();
        for p in prereqs {
            if !prerequisites.iter().any(|x| x.var == p.var) {
                prerequisites.push(p.clone());
            }
        }
        Ok(Instance {
            body,
            prerequisites,
        })
    }
}

impl Declared {
    /// Whether the statement declares `_id` for the type: a record can be told apart
    /// from others holding the same value.
    fn searches_by_id(&self) -> bool {
        self.search_params.iter().any(|(n, _)| n == "_id")
    }
}

/// The location regex that captures a new id of `ty`.
fn id_regex(ty: &str) -> String {
    format!("{ty}/([^/?#]+)")
}

const SPEC: &str = "FHIR R4 RESTful API (http.html)";

impl Context<'_> {
    fn file(&self, d: &Declared) -> String {
        let ty = d.resource_type.as_str();
        let mut scenarios: Vec<Value> = Vec::new();
        let has = |i: &str| d.interactions.contains(i);
        let mut builder = Builder::new(self.model, self.creatable);
        let minimal = builder.resource(ty).map(|body| Instance {
            body,
            prerequisites: std::mem::take(&mut builder.prerequisites),
        });
        let placed = self.placed_params(d);
        // The create instance: the minimal one with every placeable search value.
        let full = minimal.as_ref().ok().map(|m| {
            let mut full = m.clone();
            for (placed, prereqs) in placed.iter().filter_map(|(_, p)| p.as_ref().ok()) {
                // A value that would break an invariant with the others stays out
                // (its own search scenario carries it alone).
                if let Ok(with) = full.carrying(self.model, ty, placed, prereqs) {
                    full = with;
                }
            }
            full
        });
        let needs_instance = |what: &str| -> Option<String> {
            if !has("create") {
                return Some(format!(
                    "{what} needs an instance to act on, and {ty}.create is not declared"
                ));
            }
            match &minimal {
                Err(why) => Some(format!("no valid {ty} can be generated: {why}")),
                Ok(_) => None,
            }
        };
        for interaction in INTERACTIONS {
            if !has(interaction) {
                scenarios.push(self.undeclared(ty, interaction, minimal.as_ref().ok()));
                continue;
            }
            match *interaction {
                "create" => scenarios.push(match &full {
                    Some(full) => self.create(ty, full, has("read")),
                    None => skipped(
                        &format!("{ty} create, read back"),
                        &needs_instance("create").unwrap_or_default(),
                    ),
                }),
                "read" => {
                    scenarios.push(self.read_unknown(ty));
                    if let Some(why) = needs_instance("read") {
                        scenarios.push(skipped(&format!("{ty} read"), &why));
                    } else if let Ok(m) = &minimal {
                        scenarios.push(self.read(ty, m, d.versioned));
                    }
                }
                "vread" => scenarios.push(match (needs_instance("vread"), &minimal) {
                    (None, Ok(m)) => self.vread(ty, m),
                    (why, _) => skipped(&format!("{ty} vread"), &why.unwrap_or_default()),
                }),
                "update" => scenarios.push(match (needs_instance("update"), &minimal) {
                    (None, Ok(m)) => self.update(ty, m, d.versioned, has("read")),
                    (why, _) => skipped(&format!("{ty} update"), &why.unwrap_or_default()),
                }),
                "delete" => scenarios.push(match (needs_instance("delete"), &minimal) {
                    (None, Ok(m)) => self.delete(ty, m, has("read")),
                    (why, _) => skipped(&format!("{ty} delete"), &why.unwrap_or_default()),
                }),
                "history-instance" => scenarios.push(match (needs_instance("history"), &minimal) {
                    (None, Ok(m)) => self.history(ty, m, has("update")),
                    (why, _) => skipped(&format!("{ty} history"), &why.unwrap_or_default()),
                }),
                "search-type" => {
                    scenarios.push(self.unknown_param(ty));
                    let by_id = d.searches_by_id();
                    for (name, outcome) in &placed {
                        scenarios.push(match (outcome, needs_instance("a search"), &minimal) {
                            // A value other records may hold too is told apart by
                            // `_id`; without it, a large server could page it away.
                            (Ok((p, _)), None, Ok(_))
                                if (!p.unique || name == "_lastUpdated") && !by_id =>
                            {
                                skipped(
                                    &format!("{ty} search by {name}"),
                                    "other records may hold the same value, and the statement declares no `_id` to tell the new one apart",
                                )
                            }
                            (Ok((p, prereqs)), None, Ok(m)) => {
                                self.search(ty, name, m, p, prereqs, d)
                            }
                            (Err(why), _, _) => skipped(&format!("{ty} search by {name}"), why),
                            (_, why, _) => {
                                skipped(&format!("{ty} search by {name}"), &why.unwrap_or_default())
                            }
                        });
                    }
                    match (needs_instance("_count"), &minimal) {
                        (None, Ok(m)) => {
                            scenarios.push(self.count(ty, m));
                            if d.searches_by_id() {
                                scenarios.push(self.elements(ty, m));
                            }
                        }
                        (why, _) => scenarios.push(skipped(
                            &format!("{ty} search with _count"),
                            &why.unwrap_or_default(),
                        )),
                    }
                    if let Ok(m) = &minimal
                        && has("create")
                        && d.searches_by_id()
                    {
                        scenarios.extend(self.includes(d, m));
                    }
                }
                _ => {}
            }
        }
        // Conditional interactions: a unique search value identifies the instance.
        let unique = placed.iter().find_map(|(name, p)| match p {
            Ok((p, prereqs)) if p.unique && !p.finds.is_empty() && !name.starts_with('_') => {
                Some((name.clone(), p.clone(), prereqs.clone()))
            }
            _ => None,
        });
        for (flag, what) in [
            (d.conditional_create && has("create"), "conditional create"),
            (d.conditional_update && has("update"), "conditional update"),
            (
                d.conditional_delete && has("delete") && has("create"),
                "conditional delete",
            ),
        ] {
            if !flag {
                continue;
            }
            scenarios.push(match (&minimal, &unique) {
                (Ok(m), Some((name, p, prereqs))) => self.conditional(ty, what, m, name, p, prereqs, has("search-type")),
                (Err(why), _) => skipped(&format!("{ty} {what}"), &format!("no valid {ty} can be generated: {why}")),
                _ => skipped(
                    &format!("{ty} {what}"),
                    "needs a declared search parameter whose generated value only this record holds (a string, identifier, uri or reference), to name the record in the condition",
                ),
            });
        }
        let mut doc = Map::new();
        doc.insert("tags".into(), json!(["capability", ty]));
        doc.insert(
            "vars".into(),
            json!({ "u": "{{ (uuid() | replace('-', ''))[:12] }}" }),
        );
        doc.insert("scenarios".into(), Value::Array(scenarios));
        format!(
            "# Generated by fhirconf from the server's CapabilityStatement: what it declares\n# for {ty}, each claim tested. docs/capability-suite.md says what each scenario checks.\n{}",
            crate::testscript::to_yaml(&Value::Object(doc))
        )
    }

    /// A scenario per declared `_include` of this type's own reference parameters, and
    /// one for the first declared `_revinclude` another creatable type can meet.
    fn includes(&self, d: &Declared, minimal: &Instance) -> Vec<Value> {
        let ty = d.resource_type.as_str();
        let mut out = Vec::new();
        for include in &d.includes {
            let mut parts = include.split(':');
            let (Some(source), Some(code)) = (parts.next(), parts.next()) else {
                continue;
            };
            if source != ty {
                continue;
            }
            let name = format!("{ty} search with _include={include}");
            let Some(param) = self
                .model
                .search_params(ty)
                .into_iter()
                .find(|p| p.code == code && p.kind == "reference")
            else {
                out.push(skipped(
                    &name,
                    &format!("`{code}` is not an R4 reference parameter of {ty}"),
                ));
                continue;
            };
            let mut builder = Builder::new(self.model, self.creatable);
            if let Some(target) = parts.next() {
                builder.reference_target = Some(target.to_owned());
            }
            match search::place(&mut builder, ty, param) {
                Ok(placed) => {
                    out.push(self.include(ty, include, minimal, &placed, &builder.prerequisites))
                }
                Err(why) => out.push(skipped(&name, &why)),
            }
        }
        for revinclude in &d.revincludes {
            let mut parts = revinclude.split(':');
            let (Some(source), Some(code)) = (parts.next(), parts.next()) else {
                continue;
            };
            if !self.creatable.contains(source) || source == ty {
                continue;
            }
            let Some(param) = self
                .model
                .search_params(source)
                .into_iter()
                .find(|p| p.code == code && p.kind == "reference")
            else {
                continue;
            };
            let mut builder = Builder::new(self.model, self.creatable);
            let Ok(source_minimal) = builder.resource(source) else {
                continue;
            };
            let source_prereqs = std::mem::take(&mut builder.prerequisites);
            builder.reference_target = Some(ty.to_owned());
            builder.prerequisites = source_prereqs;
            let Ok(placed) = search::place(&mut builder, source, param) else {
                continue;
            };
            let source_alone = Instance {
                body: source_minimal,
                prerequisites: Vec::new(),
            };
            let Ok(inst) =
                source_alone.carrying(self.model, source, &placed, &builder.prerequisites)
            else {
                continue;
            };
            let Some(target) = inst
                .prerequisites
                .iter()
                .find(|p| p.resource_type == ty)
                .map(|p| p.var.clone())
            else {
                continue;
            };
            out.push(self.revinclude(ty, revinclude, source, &inst, &target));
            break;
        }
        out
    }

    fn include(
        &self,
        ty: &str,
        include: &str,
        minimal: &Instance,
        placed: &search::Placed,
        prereqs: &[Prerequisite],
    ) -> Value {
        let name = format!("{ty} search with _include={include}");
        let inst = match minimal.carrying(self.model, ty, placed, prereqs) {
            Ok(inst) => inst,
            Err(why) => return skipped(&name, &format!("a {ty} holding the reference: {why}")),
        };
        // The resource referred to: the prerequisite the reference names.
        let target = placed.finds.first().and_then(|r| {
            let (t, _) = r.split_once('/')?;
            inst.prerequisites
                .iter()
                .find(|p| p.resource_type == t)
                .map(|p| p.var.clone())
        });
        let Some(target) = target else {
            return skipped(
                &name,
                "the reference names no resource the scenario creates",
            );
        };
        let mut steps = self.create_steps(ty, &inst, "id", false);
        steps.push(json!({
            "name": "the search includes the resource referred to",
            "request": { "method": "GET", "path": format!("/{ty}"), "query": { "_id": "{{ id }}", "_include": include } },
            "expect": {
                "status": 200,
                "fhirpath": [
                    { "expr": "Bundle.entry.resource.where(id = %id).exists()", "equals": true },
                    { "expr": format!("Bundle.entry.resource.where(id = %{target}).exists()"), "equals": true },
                ],
            },
            "warn": { "fhirpath": [{ "expr": format!("Bundle.entry.where(resource.id = %{target}).search.mode"), "equals": "include" }] },
        }));
        self.scenario(
            name,
            format!("FHIR R4 Search (search.html#include): the statement declares _include={include} for {ty}; the resources the matches refer to are returned too (search.mode include)"),
            steps,
            self.cleanup(ty, &["id"], &inst),
        )
    }

    fn revinclude(
        &self,
        ty: &str,
        revinclude: &str,
        source: &str,
        inst: &Instance,
        target: &str,
    ) -> Value {
        let mut steps = self.create_steps(source, inst, "source", false);
        steps.push(json!({
            "name": format!("the search includes the {source} that refers to it"),
            "request": { "method": "GET", "path": format!("/{ty}"), "query": { "_id": format!("{{{{ {target} }}}}"), "_revinclude": revinclude } },
            "expect": {
                "status": 200,
                "fhirpath": [
                    { "expr": format!("Bundle.entry.resource.where(id = %{target}).exists()"), "equals": true },
                    { "expr": "Bundle.entry.resource.where(id = %source).exists()", "equals": true },
                ],
            },
        }));
        self.scenario(
            format!("{ty} search with _revinclude={revinclude}"),
            format!("FHIR R4 Search (search.html#revinclude): the statement declares _revinclude={revinclude} for {ty}; the resources that refer to the matches are returned too (the first of the declared ones the generator can build)"),
            steps,
            self.cleanup(source, &["source"], inst),
        )
    }

    /// Every declared search parameter with its placed value (and the resources it
    /// refers to), or why it has none.
    #[allow(clippy::type_complexity)]
    fn placed_params(
        &self,
        d: &Declared,
    ) -> Vec<(String, Result<(search::Placed, Vec<Prerequisite>), String>)> {
        let r4 = self.model.search_params(&d.resource_type);
        d.search_params
            .iter()
            .filter(|(name, _)| !matches!(name.as_str(), "_sort" | "_count" | "_include" | "_revinclude" | "_summary" | "_elements"))
            .map(|(name, _)| {
                let outcome = match name.as_str() {
                    "_id" | "_lastUpdated" => Ok((
                        search::Placed {
                            patch: json!({}),
                            finds: Vec::new(),
                            misses: Vec::new(),
                            unique: true,
                        },
                        Vec::new(),
                    )),
                    _ => match r4.iter().find(|p| p.code == name) {
                        None if name.starts_with('_') => Err(format!(
                            "`{name}`: of the parameters whose names start with `_`, the generator tests only _id and _lastUpdated (and _count, _elements, _summary, _include and _revinclude on their own)"
                        )),
                        None => Err(format!(
                            "`{name}` is not an R4 SearchParameter of {}: where its value goes is not known",
                            d.resource_type
                        )),
                        Some(param) if param.expression.is_empty() => Err(format!(
                            "`{name}` has no FHIRPath expression in R4 (a full-text or special parameter): no value is generated for it"
                        )),
                        Some(param)
                            if SERVER_MANAGED.iter().any(|(t, e)| {
                                *t == d.resource_type
                                    && param.expression == format!("{t}.{e}")
                            }) =>
                        {
                            Err(format!(
                                "`{name}` searches {}, which the server manages: the value it holds is not the one sent",
                                param.expression
                            ))
                        }
                        Some(param) => {
                            let mut builder = Builder::new(self.model, self.creatable);
                            search::place(&mut builder, &d.resource_type, param)
                                .map(|p| (p, builder.prerequisites))
                        }
                    },
                };
                (name.clone(), outcome)
            })
            .collect()
    }

    /// Steps that create `inst` (its prerequisites first), capturing its id as `var`.
    fn create_steps(&self, ty: &str, inst: &Instance, var: &str, skip_prereqs: bool) -> Vec<Value> {
        let mut steps = Vec::new();
        if !skip_prereqs {
            for p in &inst.prerequisites {
                steps.push(json!({
                    "name": format!("create the {} it refers to", p.resource_type),
                    "request": { "method": "POST", "path": format!("/{}", p.resource_type), "json": null },
                    "expect": { "status": 201 },
                    "capture": { p.var.clone(): { "header": "location", "regex": id_regex(&p.resource_type) } },
                }));
                set_body(&mut steps, &p.body);
            }
        }
        steps.push(json!({
            "name": format!("create a {ty}"),
            "request": { "method": "POST", "path": format!("/{ty}"), "json": null },
            "expect": {
                "status": 201,
                "headers": { "location": { "matches": format!("(^|/){ty}/[A-Za-z0-9.-]{{1,64}}(/_history/[A-Za-z0-9.-]{{1,64}})?$") } },
            },
            "capture": { var: { "header": "location", "regex": id_regex(ty) } },
        }));
        set_body(&mut steps, &inst.body);
        steps
    }

    /// Deletes what the scenario created, newest first, where the server allows it.
    /// A type the server cannot delete leaves its records: `{ "leaves": "T/{{ v }}" }`
    /// entries, which [`Self::scenario`] turns into `leaves_behind`.
    fn cleanup(&self, ty: &str, vars: &[&str], inst: &Instance) -> Vec<Value> {
        let one = |ty: &str, var: &str| {
            let path = format!("{ty}/{{{{ {var} }}}}");
            if self.deletable.contains(ty) {
                json!({ "request": { "method": "DELETE", "path": format!("/{path}") } })
            } else {
                json!({ "leaves": path })
            }
        };
        let mut steps: Vec<Value> = vars.iter().map(|v| one(ty, v)).collect();
        steps.extend(
            inst.prerequisites
                .iter()
                .rev()
                .map(|p| one(&p.resource_type, &p.var)),
        );
        steps
    }

    fn read_expect(&self, ty: &str) -> Value {
        let mut e = json!({
            "status": 200,
            "json": [
                { "path": "$.resourceType", "equals": ty },
                { "path": "$.id", "equals": "{{ id }}" },
            ],
        });
        if self.opts.validate {
            e["valid"] = json!({});
        }
        e
    }

    fn scenario(
        &self,
        name: String,
        source: String,
        steps: Vec<Value>,
        cleanup: Vec<Value>,
    ) -> Value {
        // Moved in, not through `json!` (which would serialize every step again).
        let mut s = json!({ "name": name, "source": source });
        s["steps"] = Value::Array(steps);
        let (left, cleanup): (Vec<Value>, Vec<Value>) =
            cleanup.into_iter().partition(|c| c.get("leaves").is_some());
        if !cleanup.is_empty() {
            s["cleanup"] = Value::Array(cleanup);
        }
        if !left.is_empty() {
            s["leaves_behind"] = left.into_iter().map(|c| c["leaves"].clone()).collect();
        }
        s
    }

    fn create(&self, ty: &str, inst: &Instance, read: bool) -> Value {
        let mut steps = self.create_steps(ty, inst, "id", false);
        if read {
            let mut expect = self.read_expect(ty);
            expect["json_subset"] = json!({ "value": inst.body, "ignore": ignored_on_read(ty) });
            steps.push(json!({
                "name": "the read returns what was sent",
                "request": { "method": "GET", "path": format!("/{ty}/{{{{ id }}}}") },
                "expect": null,
            }));
            set_last(&mut steps, &["expect"], expect);
        }
        self.scenario(
            format!("{ty} create, read back"),
            format!("{SPEC}, create: 201 Created with a Location naming the new resource; read returns the resource as sent (its required elements and one value per declared search parameter)"),
            steps,
            self.cleanup(ty, &["id"], inst),
        )
    }

    fn read_unknown(&self, ty: &str) -> Value {
        self.scenario(
            format!("{ty} read of an unknown id is 404"),
            format!("{SPEC}, read: a resource that does not exist is 404 Not Found"),
            vec![json!({
                "name": "read an id nothing has",
                "request": { "method": "GET", "path": format!("/{ty}/fhirconf-unknown-{{{{ u }}}}") },
                "expect": { "status": 404 },
            })],
            Vec::new(),
        )
    }

    fn read(&self, ty: &str, inst: &Instance, versioned: bool) -> Value {
        let mut steps = self.create_steps(ty, inst, "id", false);
        let mut expect = self.read_expect(ty);
        if versioned {
            expect["headers"] = json!({ "etag": { "matches": "^W/\"[^\"]+\"$" } });
        }
        steps.push(json!({
            "name": format!("read the {ty}"),
            "request": { "method": "GET", "path": format!("/{ty}/{{{{ id }}}}") },
            "expect": null,
        }));
        set_last(&mut steps, &["expect"], expect);
        let etag = if versioned {
            "; the statement declares versioning, so the answer carries a weak ETag W/\"[versionId]\""
        } else {
            ""
        };
        self.scenario(
            format!("{ty} read"),
            format!("{SPEC}, read: GET [base]/{ty}/[id] is 200 with the resource{etag}"),
            steps,
            self.cleanup(ty, &["id"], inst),
        )
    }

    fn vread(&self, ty: &str, inst: &Instance) -> Value {
        let mut steps = self.create_steps(ty, inst, "id", false);
        steps.push(json!({
            "name": "read its version id",
            "request": { "method": "GET", "path": format!("/{ty}/{{{{ id }}}}") },
            "expect": { "status": 200, "json": [{ "path": "$.meta.versionId", "exists": true }] },
            "capture": { "vid": { "json": "$.meta.versionId" } },
        }));
        let mut expect = self.read_expect(ty);
        push(
            &mut expect["json"],
            json!({ "path": "$.meta.versionId", "equals": "{{ vid }}" }),
        );
        steps.push(json!({
            "name": "read that version",
            "request": { "method": "GET", "path": format!("/{ty}/{{{{ id }}}}/_history/{{{{ vid }}}}") },
            "expect": null,
        }));
        set_last(&mut steps, &["expect"], expect);
        self.scenario(
            format!("{ty} vread"),
            format!("{SPEC}, vread: GET [base]/{ty}/[id]/_history/[vid] is 200 with that version"),
            steps,
            self.cleanup(ty, &["id"], inst),
        )
    }

    /// The body of an update: the instance with its id and a marker extension (on a
    /// DomainResource) the read-back must show.
    fn updated_body(&self, ty: &str, inst: &Instance) -> (Value, bool) {
        let mut body = inst.body.clone();
        body["id"] = json!("{{ id }}");
        let marked = self.model.is_a(ty, "DomainResource");
        if marked {
            body["extension"] =
                json!([{ "url": format!("{SYSTEM}/marker"), "valueString": "updated {{ u }}" }]);
        }
        (body, marked)
    }

    fn update(&self, ty: &str, inst: &Instance, versioned: bool, read: bool) -> Value {
        let mut steps = self.create_steps(ty, inst, "id", false);
        if versioned && read {
            steps.push(json!({
                "name": "its version before",
                "request": { "method": "GET", "path": format!("/{ty}/{{{{ id }}}}") },
                "expect": { "status": 200 },
                "capture": { "vid": { "json": "$.meta.versionId" } },
            }));
        }
        let (body, marked) = self.updated_body(ty, inst);
        steps.push(json!({
            "name": format!("update the {ty}"),
            "request": { "method": "PUT", "path": format!("/{ty}/{{{{ id }}}}"), "json": null },
            "expect": { "status": { "any_of": [200, 201] } },
        }));
        set_last(&mut steps, &["request", "json"], body.clone());
        if read {
            let mut expect = self.read_expect(ty);
            if marked {
                expect["fhirpath"] = json!([{ "expr": format!("extension.where(url = '{SYSTEM}/marker').value"), "equals": "updated {{ u }}" }]);
            }
            if versioned {
                push(
                    &mut expect["json"],
                    json!({ "path": "$.meta.versionId", "not_equals": "{{ vid }}" }),
                );
            }
            steps.push(json!({
                "name": "the read returns the update",
                "request": { "method": "GET", "path": format!("/{ty}/{{{{ id }}}}") },
                "expect": null,
            }));
            set_last(&mut steps, &["expect"], expect);
        }
        self.scenario(
            format!("{ty} update, read back"),
            format!("{SPEC}, update: PUT [base]/{ty}/[id] is 200 OK (or 201), and the resource then holds the new content{}", if versioned { " under a new version id" } else { "" }),
            steps,
            self.cleanup(ty, &["id"], inst),
        )
    }

    fn delete(&self, ty: &str, inst: &Instance, read: bool) -> Value {
        let mut steps = self.create_steps(ty, inst, "id", false);
        steps.push(json!({
            "name": format!("delete the {ty}"),
            "request": { "method": "DELETE", "path": format!("/{ty}/{{{{ id }}}}") },
            "expect": { "status": { "any_of": [200, 202, 204] } },
        }));
        if read {
            steps.push(json!({
                "name": "a read after it is 404 or 410",
                "request": { "method": "GET", "path": format!("/{ty}/{{{{ id }}}}") },
                "expect": { "status": { "any_of": [404, 410] } },
            }));
        }
        let cleanup = self.cleanup(ty, &[], inst);
        self.scenario(
            format!("{ty} delete"),
            format!("{SPEC}, delete: DELETE [base]/{ty}/[id] is 200, 202 or 204, and a later read is 404 Not Found or 410 Gone"),
            steps,
            cleanup,
        )
    }

    fn history(&self, ty: &str, inst: &Instance, update: bool) -> Value {
        let mut steps = self.create_steps(ty, inst, "id", false);
        if update {
            let (body, _) = self.updated_body(ty, inst);
            steps.push(json!({
                "name": "update it, for a second version",
                "request": { "method": "PUT", "path": format!("/{ty}/{{{{ id }}}}"), "json": null },
                "expect": { "status": { "any_of": [200, 201] } },
            }));
            set_last(&mut steps, &["request", "json"], body.clone());
        }
        let versions = if update { 2 } else { 1 };
        steps.push(json!({
            "name": "its history",
            "request": { "method": "GET", "path": format!("/{ty}/{{{{ id }}}}/_history") },
            "expect": {
                "status": 200,
                "fhirpath": [
                    { "expr": "Bundle.type", "equals": "history" },
                    { "expr": "Bundle.entry.count()", "greater_than": versions - 1 },
                    { "expr": "Bundle.entry.resource.where(id != %id).exists()", "equals": false },
                ],
            },
        }));
        self.scenario(
            format!("{ty} history"),
            format!("{SPEC}, history: GET [base]/{ty}/[id]/_history is a Bundle of type history holding every version ({versions} here)"),
            steps,
            self.cleanup(ty, &["id"], inst),
        )
    }

    fn unknown_param(&self, ty: &str) -> Value {
        // R4 asks servers to honour the client's choice of strict handling (a
        // SHOULD): a failure under --strict, a warning otherwise.
        let refused = json!({ "status": 400 });
        let mut step = json!({
            "name": "search with a parameter no server knows",
            "request": {
                "method": "GET",
                "path": format!("/{ty}"),
                "query": { "fhirconf-unknown-parameter": "1" },
                "headers": { "Prefer": "handling=strict" },
            },
        });
        if self.opts.strict {
            step["expect"] = refused;
        } else {
            step["warn"] = refused;
        }
        self.scenario(
            format!("{ty} search with an unknown parameter under handling=strict is 400"),
            format!("FHIR R4 Search (search.html#errors): with `Prefer: handling=strict` the client asks for an error for any unknown or unsupported parameter, which servers SHOULD honour ({})", if self.opts.strict { "--strict: a failure" } else { "a warning; a failure under --strict" }),
            vec![step],
            Vec::new(),
        )
    }

    fn found(&self, found: bool) -> Value {
        let mut e = json!({
            "status": 200,
            "fhirpath": [
                { "expr": "Bundle.type", "equals": "searchset" },
                { "expr": "Bundle.entry.resource.where(id = %id).exists()", "equals": found },
            ],
        });
        if self.opts.validate {
            e["valid"] = json!({});
        }
        e
    }

    fn search(
        &self,
        ty: &str,
        name: &str,
        minimal: &Instance,
        placed: &search::Placed,
        prereqs: &[Prerequisite],
        d: &Declared,
    ) -> Value {
        let inst = match minimal.carrying(self.model, ty, placed, prereqs) {
            Ok(inst) => inst,
            Err(why) => {
                return skipped(
                    &format!("{ty} search by {name}"),
                    &format!("a {ty} holding the value searched for: {why}"),
                );
            }
        };
        let mut steps = self.create_steps(ty, &inst, "id", false);
        let by_id = d.searches_by_id();
        let (finds, misses): (Vec<String>, Vec<String>) = match name {
            "_id" => (
                vec!["{{ id }}".into()],
                vec!["fhirconf-unknown-{{ u }}".into()],
            ),
            "_lastUpdated" => (vec!["gt2000-01-01".into()], vec!["lt2000-01-01".into()]),
            _ => (placed.finds.clone(), placed.misses.clone()),
        };
        let filtered = (!placed.unique || name == "_lastUpdated") && by_id;
        for (values, found) in [(finds, true), (misses, false)] {
            for v in values {
                let mut query = Map::new();
                query.insert(name.to_owned(), json!(v));
                if filtered {
                    query.insert("_id".into(), json!("{{ id }}"));
                }
                steps.push(json!({
                    "name": format!("{name}={v} {}", if found { "finds it" } else { "does not find it" }),
                    "request": { "method": "GET", "path": format!("/{ty}"), "query": query },
                    "expect": null,
                }));
                set_last(&mut steps, &["expect"], self.found(found));
            }
        }
        self.scenario(
            format!("{ty} search by {name}"),
            format!("FHIR R4 Search (search.html): the statement declares `{name}` for {ty}; a search by the value a {ty} holds finds it, and by another value does not{}", if filtered { " (with _id, since other records may hold the same value)" } else { "" }),
            steps,
            self.cleanup(ty, &["id"], &inst),
        )
    }

    fn count(&self, ty: &str, inst: &Instance) -> Value {
        let mut steps = self.create_steps(ty, inst, "id", false);
        steps.extend(self.create_steps(ty, inst, "id2", true));
        steps.push(json!({
            "name": "_count=1 returns at most one match",
            "request": { "method": "GET", "path": format!("/{ty}"), "query": { "_count": "1" } },
            "expect": {
                "status": 200,
                "fhirpath": [
                    { "expr": "Bundle.type", "equals": "searchset" },
                    { "expr": "Bundle.entry.where(search.mode = 'match' or search.mode.empty()).count()", "less_than": 2 },
                ],
            },
        }));
        self.scenario(
            format!("{ty} search with _count"),
            "FHIR R4 Search (search.html#count): the server is not bound to return the number _count asks for, but cannot return more".to_owned(),
            steps,
            self.cleanup(ty, &["id", "id2"], inst),
        )
    }

    fn elements(&self, ty: &str, inst: &Instance) -> Value {
        let mut steps = self.create_steps(ty, inst, "id", false);
        // An element the instance has, which `_elements=id` leaves out.
        let present = inst
            .body
            .as_object()
            .and_then(|m| {
                m.keys()
                    .find(|k| !matches!(k.as_str(), "resourceType" | "id" | "meta"))
            })
            .cloned();
        let mut step = json!({
            "name": "_elements=id",
            "request": { "method": "GET", "path": format!("/{ty}"), "query": { "_id": "{{ id }}", "_elements": "id" } },
            "expect": {
                "status": 200,
                "fhirpath": [{ "expr": "Bundle.entry.resource.where(id = %id).exists()", "equals": true }],
            },
        });
        if let Some(element) = present {
            // A server may ignore _elements; one that leaves elements out marks the
            // resource SUBSETTED.
            push(
                &mut step["expect"]["fhirpath"],
                json!({
                    "expr": format!("Bundle.entry.resource.where(id = %id).all({element}.exists() or meta.tag.where(code = 'SUBSETTED').exists())"),
                    "equals": true,
                }),
            );
        }
        steps.push(step);
        steps.push(json!({
            "name": "_summary=count",
            "request": { "method": "GET", "path": format!("/{ty}"), "query": { "_id": "{{ id }}", "_summary": "count" } },
            "expect": { "status": 200, "fhirpath": [{ "expr": "Bundle.type", "equals": "searchset" }] },
            "warn": { "fhirpath": [{ "expr": "Bundle.total", "equals": 1 }, { "expr": "Bundle.entry.where(search.mode = 'match').exists()", "equals": false }] },
        }));
        self.scenario(
            format!("{ty} search with _elements and _summary"),
            "FHIR R4 Search (search.html#elements, #summary): a server may ignore _elements and _summary, but a resource it returns with elements left out carries the SUBSETTED tag; _summary=count returns the count without the matches (a warning when not: servers may ignore _summary)".to_owned(),
            steps,
            self.cleanup(ty, &["id"], inst),
        )
    }

    #[allow(clippy::too_many_arguments)]
    fn conditional(
        &self,
        ty: &str,
        what: &str,
        inst: &Instance,
        name: &str,
        p: &search::Placed,
        prereqs: &[Prerequisite],
        search: bool,
    ) -> Value {
        let inst = match inst.carrying(self.model, ty, p, prereqs) {
            Ok(inst) => inst,
            Err(why) => {
                return skipped(
                    &format!("{ty} {what}"),
                    &format!("a {ty} holding the value of `{name}`: {why}"),
                );
            }
        };
        let body = inst.body.clone();
        let value = p.finds.first().cloned().unwrap_or_default();
        let condition = format!("{name}={value}");
        // The resources it refers to, created first (a create's steps without its own).
        let mut before = self.create_steps(ty, &inst, "id", false);
        before.pop();
        let search_step = |found_one: bool| {
            json!({
                "name": if found_one { "exactly one record matches" } else { "nothing matches any more" },
                "request": { "method": "GET", "path": format!("/{ty}"), "query": { name: value } },
                "expect": {
                    "status": 200,
                    "fhirpath": [{ "expr": "Bundle.entry.where(search.mode = 'match' or search.mode.empty()).count()", "equals": if found_one { 1 } else { 0 } }],
                },
            })
        };
        let (steps, source, vars): (Vec<Value>, &str, Vec<&str>) = match what {
            "conditional create" => {
                let mut steps = before.clone();
                steps.push(json!({
                    "name": "create under If-None-Exist (no match)",
                    "request": { "method": "POST", "path": format!("/{ty}"), "json": body, "headers": { "If-None-Exist": condition } },
                    "expect": { "status": 201 },
                    "capture": { "id": { "header": "location", "regex": id_regex(ty) } },
                }));
                steps.push(json!({
                    "name": "the same again (one match) is 200 and creates nothing",
                    "request": { "method": "POST", "path": format!("/{ty}"), "json": body, "headers": { "If-None-Exist": condition } },
                    "expect": { "status": 200 },
                }));
                if search {
                    steps.push(search_step(true));
                }
                (
                    steps,
                    "conditional create: If-None-Exist with no match creates (201); with one match the server ignores the post and returns 200 OK",
                    vec!["id"],
                )
            }
            "conditional update" => {
                let (marked, _) = self.updated_body(ty, &inst);
                let mut marked = marked;
                if let Value::Object(m) = &mut marked {
                    m.remove("id");
                }
                let mut steps = before.clone();
                steps.push(json!({
                    "name": "update by search (no match) creates",
                    "request": { "method": "PUT", "path": format!("/{ty}"), "query": { name: value }, "json": null },
                    "expect": { "status": 201 },
                    "capture": { "id": { "header": "location", "regex": id_regex(ty) } },
                }));
                set_last(&mut steps, &["request", "json"], body.clone());
                steps.push(json!({
                    "name": "update by search (one match) updates it",
                    "request": { "method": "PUT", "path": format!("/{ty}"), "query": { name: value }, "json": null },
                    "expect": { "status": 200 },
                }));
                set_last(&mut steps, &["request", "json"], marked.clone());
                if search {
                    steps.push(search_step(true));
                }
                (
                    steps,
                    "conditional update: PUT [base]/[type]?[search] with no match creates the resource (201); with one match it updates that resource (200)",
                    vec!["id"],
                )
            }
            _ => {
                let mut steps = self.create_steps(ty, &inst, "id", false);
                steps.push(json!({
                    "name": "delete by search",
                    "request": { "method": "DELETE", "path": format!("/{ty}"), "query": { name: value } },
                    "expect": { "status": { "any_of": [200, 202, 204] } },
                }));
                if search {
                    steps.push(search_step(false));
                }
                (
                    steps,
                    "conditional delete: DELETE [base]/[type]?[search] deletes the matching resource (200, 202 or 204)",
                    vec![],
                )
            }
        };
        self.scenario(
            format!("{ty} {what}"),
            format!("{SPEC}, {source}; the statement declares it for {ty}"),
            steps,
            self.cleanup(ty, &vars, &inst),
        )
    }

    /// An interaction the statement leaves out: skipped, or under `strict`, expected
    /// to be refused.
    fn undeclared(&self, ty: &str, interaction: &str, minimal: Option<&Instance>) -> Value {
        let name = format!("{ty} {interaction} is not declared");
        if !self.opts.strict {
            return skipped(
                &name,
                &format!("the CapabilityStatement does not declare {ty}.{interaction}"),
            );
        }
        let unknown = format!("/{ty}/fhirconf-unknown-{{{{ u }}}}");
        let body = minimal
            .map(|m| m.body.clone())
            .unwrap_or_else(|| json!({ "resourceType": ty }));
        let mut with_id = body.clone();
        with_id["id"] = json!("fhirconf-unknown-{{ u }}");
        let request = match interaction {
            "create" => json!({ "method": "POST", "path": format!("/{ty}"), "json": body }),
            "read" => json!({ "method": "GET", "path": unknown }),
            "vread" => json!({ "method": "GET", "path": format!("{unknown}/_history/1") }),
            "update" => json!({ "method": "PUT", "path": unknown, "json": with_id }),
            "delete" => json!({ "method": "DELETE", "path": unknown }),
            "history-instance" => json!({ "method": "GET", "path": format!("{unknown}/_history") }),
            _ => json!({ "method": "GET", "path": format!("/{ty}") }),
        };
        self.scenario(
            format!("{name}, so it is refused"),
            format!("{SPEC}: an interaction the server does not support is refused with 405 Method Not Allowed (or 501 Not Implemented); checked under --strict"),
            vec![json!({
                "name": format!("{interaction}, which the statement leaves out"),
                "request": request,
                "expect": { "status": { "any_of": [405, 501] } },
            })],
            Vec::new(),
        )
    }
}

/// Sets `path` in the last step: values are moved (or cloned) in rather than given to
/// `json!`, which would serialize them anew.
fn set_last(steps: &mut [Value], path: &[&str], value: Value) {
    if let Some(mut at) = steps.last_mut() {
        for key in path {
            at = &mut at[*key];
        }
        *at = value;
    }
}

/// The body of the last step's request (a clone: `json!` would serialize it anew).
fn set_body(steps: &mut [Value], body: &Value) {
    if let Some(last) = steps.last_mut() {
        last["request"]["json"] = body.clone();
    }
}

/// Appends to a JSON array (a list of expectations being built).
fn push(list: &mut Value, item: Value) {
    if let Value::Array(a) = list {
        a.push(item);
    }
}

/// A scenario that is not run, with the reason. Run anyway (`--ignored`), its one
/// step fails with the reason as its name.
fn skipped(name: &str, why: &str) -> Value {
    json!({
        "name": name,
        "ignore": why,
        "steps": [{
            "name": format!("not generated: {why}"),
            "request": { "method": "GET", "path": "/metadata" },
            "expect": { "json": [{ "path": "$.fhirconfNotGenerated", "exists": true }] },
        }],
    })
}
