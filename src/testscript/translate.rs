//! One TestScript → one scenario file (as YAML text), or every element that stops it.

use std::collections::{BTreeMap, BTreeSet};
use std::path::Path;

use serde_json::{Map, Value, json};

use super::yaml::{Expectations, PlannedAssert, Scenario, Step, Target, write};
use crate::diag::Diagnostic;
use crate::scenario::model::Section;

/// Where the generated file takes its fixtures from.
#[derive(Debug, Clone)]
pub enum Fixtures {
    /// In the steps (`json:`): a native run, nothing written.
    Inline,
    /// Files in this folder beside the YAML (`json_file:`), returned in
    /// [`Translated::fixture_files`]: an import.
    Files(String),
}

/// A translated TestScript.
#[derive(Debug)]
pub struct Translated {
    pub yaml: String,
    /// Per scenario (test), its steps then its cleanup steps, as written: where each
    /// came from.
    pub origins: Vec<Vec<StepPlan>>,
    pub name: String,
    pub url: Option<String>,
    pub tests: Vec<String>,
    /// With [`Fixtures::Files`]: each fixture's path (relative to the YAML) and JSON.
    pub fixture_files: Vec<(String, String)>,
}

/// Where one written step came from.
#[derive(Debug, Clone)]
pub struct StepPlan {
    pub section: Section,
    pub operation: String,
    pub asserts: Vec<PlannedAssert>,
}

/// A fixture the script declares.
#[derive(Debug, Clone)]
struct Fixture {
    resource_type: String,
    body: Value,
    autocreate: bool,
    autodelete: bool,
    /// The variable the server's id for it is captured into when it is created.
    id_var: String,
}

/// What the translation knows at a point of the script: which fixtures have been
/// created on the server (so a `targetId` reads the captured id), which responses
/// were kept.
#[derive(Debug, Clone, Default)]
struct State {
    created: BTreeSet<String>,
}

struct Tx<'a> {
    script: &'a Value,
    base: &'a Path,
    mode: Fixtures,
    errors: Vec<String>,
    fixtures: BTreeMap<String, Fixture>,
    /// `responseId`s some later element reads, by the variable that keeps the body
    /// (captured only for those a `targetId` names).
    responses: BTreeMap<String, String>,
    /// `responseId`s a `targetId` names: their whole body is kept.
    targeted: BTreeSet<String>,
    profiles: BTreeMap<String, String>,
    vars: Map<String, Value>,
    inputs: Vec<String>,
    /// A line per input: its description and hint, for the file's header.
    input_notes: Vec<String>,
    /// TestScript variable name → template variable name.
    names: BTreeMap<String, String>,
    /// Variables with an expression and no `sourceId`: evaluated on the last response
    /// where they are used, so substituted into the expressions that use them.
    dynamic: BTreeMap<String, String>,
    /// Captures a variable asks of the operation whose `responseId` it reads.
    response_captures: BTreeMap<String, Vec<(String, Value)>>,
    requires: BTreeSet<String>,
    fixture_files: Vec<(String, String)>,
    /// Fixtures already refused: what names them is not refused again.
    broken: BTreeSet<String>,
}

/// Translates `script`, a TestScript read as JSON, from a file shown as `display`
/// whose fixtures are found relative to `base`.
pub fn translate(
    display: &str,
    script: &Value,
    base: &Path,
    mode: Fixtures,
) -> Result<Translated, Vec<Diagnostic>> {
    let mut tx = Tx {
        script,
        base,
        mode,
        errors: Vec::new(),
        fixtures: BTreeMap::new(),
        responses: BTreeMap::new(),
        targeted: BTreeSet::new(),
        profiles: BTreeMap::new(),
        vars: Map::new(),
        inputs: Vec::new(),
        input_notes: Vec::new(),
        names: BTreeMap::new(),
        dynamic: BTreeMap::new(),
        response_captures: BTreeMap::new(),
        requires: BTreeSet::new(),
        fixture_files: Vec::new(),
        broken: BTreeSet::new(),
    };
    let (yaml, scenarios) = tx.run();
    if tx.errors.is_empty() {
        let plan = |s: &Step| StepPlan {
            section: s.section.unwrap_or(Section::Setup),
            operation: s.comment.clone(),
            asserts: s.asserts.clone(),
        };
        Ok(Translated {
            yaml,
            origins: scenarios
                .iter()
                .map(|sc| sc.steps.iter().chain(&sc.cleanup).map(plan).collect())
                .collect(),
            name: text(script, "name")
                .or_else(|| text(script, "title"))
                .unwrap_or("TestScript")
                .to_owned(),
            url: text(script, "url").map(str::to_owned),
            tests: scenarios.iter().map(|s| s.name.clone()).collect(),
            fixture_files: tx.fixture_files,
        })
    } else {
        Err(tx
            .errors
            .into_iter()
            .map(|e| Diagnostic::whole_file(display, e))
            .collect())
    }
}

/// The elements of TestScript this translation reads; any other present is refused.
const KNOWN_TOP: &[&str] = &[
    "resourceType",
    "id",
    "meta",
    "implicitRules",
    "language",
    "text",
    "contained",
    "extension",
    "url",
    "identifier",
    "version",
    "name",
    "title",
    "status",
    "experimental",
    "date",
    "publisher",
    "contact",
    "description",
    "useContext",
    "jurisdiction",
    "purpose",
    "copyright",
    "origin",
    "destination",
    "metadata",
    "fixture",
    "profile",
    "variable",
    "setup",
    "test",
    "teardown",
];

fn text<'v>(v: &'v Value, key: &str) -> Option<&'v str> {
    v.get(key).and_then(Value::as_str)
}

fn list<'v>(v: &'v Value, key: &str) -> &'v [Value] {
    v.get(key)
        .and_then(Value::as_array)
        .map_or(&[], Vec::as_slice)
}

/// A template variable name for a TestScript name (`patient-id` → `patient_id`).
fn identifier(name: &str) -> String {
    let mut out: String = name
        .chars()
        .map(|c| if c.is_ascii_alphanumeric() { c } else { '_' })
        .collect();
    if out.is_empty() || out.starts_with(|c: char| c.is_ascii_digit()) {
        out.insert(0, '_');
    }
    out
}

impl Tx<'_> {
    fn refuse(&mut self, at: &str, why: impl std::fmt::Display) {
        let why = why.to_string();
        // One refusal per broken fixture: what reads it says nothing new.
        if self
            .broken
            .iter()
            .any(|id| why.contains(&format!("`{id}`")))
        {
            return;
        }
        self.errors.push(format!("{at}: {why}"));
    }

    fn run(&mut self) -> (String, Vec<Scenario>) {
        let script = self.script;
        if text(script, "resourceType") != Some("TestScript") {
            self.refuse("TestScript", "not a TestScript resource");
            return (String::new(), Vec::new());
        }
        if let Some(obj) = script.as_object() {
            for key in obj.keys() {
                if !KNOWN_TOP.contains(&key.as_str()) {
                    self.refuse(
                        &format!("TestScript.{key}"),
                        "not a TestScript R4 element fhirconf knows",
                    );
                }
            }
        }
        for key in ["origin", "destination"] {
            if list(script, key).len() > 1 {
                self.refuse(
                    &format!("TestScript.{key}"),
                    format!("more than one {key} is not supported (fhirconf talks to one server)"),
                );
            }
        }
        self.read_profiles();
        self.read_fixtures();
        self.find_responses();
        self.read_variables();

        let mut state = State::default();
        let mut setup = Vec::new();
        for (id, f) in self.fixtures.clone() {
            if f.autocreate {
                setup.push(self.autocreate(&id, &f));
                state.created.insert(id);
            }
        }
        if let Some(s) = script.get("setup") {
            self.actions(
                list(s, "action"),
                "TestScript.setup",
                &mut setup,
                &mut state,
            );
        }
        let mut teardown = Vec::new();
        if let Some(t) = script.get("teardown") {
            for (i, action) in list(t, "action").iter().enumerate() {
                let at = format!("TestScript.teardown.action[{i}]");
                match action.get("operation") {
                    Some(op) => {
                        let step = self.operation(op, &format!("{at}.operation"), &mut state);
                        teardown.push(step);
                    }
                    None => self.refuse(&at, "a teardown action without an operation"),
                }
            }
        }
        for (id, f) in self.fixtures.clone() {
            if f.autodelete {
                teardown.push(self.autodelete(&id, &f, &state));
            }
        }
        for step in &mut teardown {
            step.section = Some(Section::Teardown);
        }
        let mut scenarios = Vec::new();
        let tests = list(script, "test");
        if tests.is_empty() {
            self.refuse("TestScript.test", "no test: nothing to run");
        }
        for (i, test) in tests.iter().enumerate() {
            let at = format!("TestScript.test[{i}]");
            let mut state = state.clone();
            let mut steps = setup.clone();
            if list(test, "action").is_empty() {
                self.refuse(&at, "a test without actions");
            }
            // A test of asserts only judges the setup's last response.
            let own = steps.len();
            self.actions(list(test, "action"), &at, &mut steps, &mut state);
            for step in &mut steps[own..] {
                step.section = Some(Section::Test(i));
            }
            let name = text(test, "name")
                .or_else(|| text(test, "id"))
                .map_or_else(|| format!("test {}", i + 1), str::to_owned);
            scenarios.push(Scenario {
                comment: at.clone(),
                name,
                description: text(test, "description").map(str::to_owned),
                steps,
                cleanup: teardown.clone(),
            });
        }
        let mut header = vec![format!(
            "Imported by fhirconf from TestScript {:?}{}",
            text(script, "name")
                .or_else(|| text(script, "title"))
                .unwrap_or("(unnamed)"),
            text(script, "url").map_or(String::new(), |u| format!(" ({u})"))
        )];
        if let Some(d) = text(script, "description") {
            header.push(d.to_owned());
        }
        header.extend(self.input_notes.iter().cloned());
        let source = text(script, "url")
            .or_else(|| text(script, "name"))
            .map(|s| format!("TestScript {s}"));
        let yaml = write(
            &header,
            source.as_deref(),
            &self.requires.iter().cloned().collect::<Vec<_>>(),
            &self.inputs,
            &self.vars,
            &scenarios,
        );
        (yaml, scenarios)
    }

    fn read_profiles(&mut self) {
        for (i, p) in list(self.script, "profile").iter().enumerate() {
            match (text(p, "id"), text(p, "reference")) {
                (Some(id), Some(url)) => {
                    self.profiles.insert(id.to_owned(), url.to_owned());
                }
                _ => self.refuse(
                    &format!("TestScript.profile[{i}]"),
                    "a profile needs an id and a reference (its canonical URL)",
                ),
            }
        }
    }

    fn read_fixtures(&mut self) {
        for (i, f) in list(self.script, "fixture").iter().enumerate() {
            let at = format!("TestScript.fixture[{i}]");
            // Nothing can name a fixture without an id, but it may still be created.
            let unnamed = format!("fixture{i}");
            let id = text(f, "id").unwrap_or(&unnamed);
            let Some(reference) = f.get("resource").and_then(|r| text(r, "reference")) else {
                self.refuse(
                    &format!("{at}.resource"),
                    "a fixture without a resource reference",
                );
                self.broken.insert(id.to_owned());
                continue;
            };
            let Some(body) = self.fixture_body(reference, &format!("{at}.resource.reference"))
            else {
                self.broken.insert(id.to_owned());
                continue;
            };
            let Some(resource_type) = text(&body, "resourceType").map(str::to_owned) else {
                self.refuse(
                    &format!("{at}.resource.reference"),
                    format!("`{reference}` is not a FHIR resource (no resourceType)"),
                );
                continue;
            };
            let fixture = Fixture {
                resource_type,
                body,
                autocreate: f.get("autocreate") == Some(&Value::Bool(true)),
                autodelete: f.get("autodelete") == Some(&Value::Bool(true)),
                id_var: format!("{}_id", identifier(id)),
            };
            if let Fixtures::Files(dir) = &self.mode {
                let file = format!("{dir}/{}.json", identifier(id));
                let json = serde_json::to_string_pretty(&fixture.body).unwrap_or_default();
                self.fixture_files.push((file, json + "\n"));
            }
            self.fixtures.insert(id.to_owned(), fixture);
        }
    }

    /// A fixture's resource: contained (`#id`) or a file relative to the script.
    fn fixture_body(&mut self, reference: &str, at: &str) -> Option<Value> {
        if let Some(local) = reference.strip_prefix('#') {
            let found = list(self.script, "contained")
                .iter()
                .find(|c| text(c, "id") == Some(local))
                .cloned();
            if found.is_none() {
                self.refuse(at, format!("no contained resource has the id `{local}`"));
            }
            return found;
        }
        let Some(path) = self.fixture_file(reference) else {
            self.refuse(at, format!("`{reference}` is not a .json or .xml file beside the script (a `Type/id` reference is looked for as `Type-id.json` or `Type-id.xml`; fhirconf reads fixtures from files, not from a server)"));
            return None;
        };
        let xml = super::format_of(&path)?;
        let display = crate::files::display_path(&path);
        let text = match crate::files::read_text(&path, &display, crate::files::MAX_INPUT_BYTES) {
            Ok(t) => t,
            Err(d) => {
                self.refuse(at, format!("`{reference}`: {}", d.message));
                return None;
            }
        };
        match super::read(&display, &text, xml) {
            Ok(v) => Some(v),
            Err(d) => {
                self.refuse(at, format!("{}: {}", d.location(), d.message));
                None
            }
        }
    }

    /// The file a fixture reference names: a path relative to the script, or for a
    /// `Type/id` reference (the R4 specification's examples), `Type-id.json` or
    /// `Type-id.xml` beside it.
    fn fixture_file(&self, reference: &str) -> Option<std::path::PathBuf> {
        let direct = self.base.join(reference);
        if super::format_of(&direct).is_some() {
            return Some(direct);
        }
        let (ty, id) = reference.split_once('/')?;
        let plain = |s: &str| {
            !s.is_empty()
                && s.chars()
                    .all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '.')
        };
        if !plain(ty) || !plain(id) || id.contains('/') {
            return None;
        }
        ["json", "xml"]
            .iter()
            .map(|ext| self.base.join(format!("{ty}-{id}.{ext}")))
            .find(|p| p.is_file())
    }

    /// Every `responseId` an element reads later (a `sourceId` or `targetId` that is
    /// not a fixture): the operation that names it keeps its response.
    fn find_responses(&mut self) {
        let mut declared = BTreeSet::new();
        let mut read = BTreeSet::new();
        let sections = [
            self.script.get("setup").map(|s| list(s, "action")),
            self.script.get("teardown").map(|s| list(s, "action")),
        ];
        let tests = list(self.script, "test")
            .iter()
            .map(|t| Some(list(t, "action")));
        for actions in sections.into_iter().chain(tests).flatten() {
            for a in actions {
                if let Some(op) = a.get("operation") {
                    if let Some(r) = text(op, "responseId") {
                        declared.insert(r.to_owned());
                    }
                    read.extend(
                        ["sourceId", "targetId"]
                            .iter()
                            .filter_map(|k| text(op, k))
                            .map(str::to_owned),
                    );
                    self.targeted
                        .extend(text(op, "targetId").map(str::to_owned));
                }
                if let Some(asrt) = a.get("assert") {
                    read.extend(
                        ["sourceId", "compareToSourceId"]
                            .iter()
                            .filter_map(|k| text(asrt, k))
                            .map(str::to_owned),
                    );
                }
            }
        }
        for v in list(self.script, "variable") {
            read.extend(text(v, "sourceId").map(str::to_owned));
        }
        for id in declared {
            if read.contains(&id) && !self.fixtures.contains_key(&id) {
                self.responses
                    .insert(id.clone(), format!("{}_response", identifier(&id)));
            }
        }
    }

    fn read_variables(&mut self) {
        for (i, v) in list(self.script, "variable").iter().enumerate() {
            let at = format!("TestScript.variable[{i}]");
            let Some(name) = text(v, "name") else {
                self.refuse(&at, "a variable without a name");
                continue;
            };
            let var = identifier(name);
            self.names.insert(name.to_owned(), var.clone());
            let default = text(v, "defaultValue");
            let expression = match (text(v, "expression"), text(v, "path")) {
                (Some(e), _) => Some(e.to_owned()),
                (None, Some(p)) => match xpath_to_fhirpath(p) {
                    Some(e) => Some(e),
                    None => {
                        self.refuse(&format!("{at}.path"), format!("`{p}` is not a simple path fhirconf can rewrite to FHIRPath; use `expression`"));
                        continue;
                    }
                },
                (None, None) => None,
            };
            let header = text(v, "headerField");
            let source = text(v, "sourceId");
            if expression.is_none() && header.is_none() {
                match default {
                    Some(d) => {
                        let d = self.templated(d, &format!("{at}.defaultValue"));
                        self.vars.insert(var, Value::String(d));
                    }
                    None => {
                        let about = [text(v, "description"), text(v, "hint")]
                            .into_iter()
                            .flatten()
                            .collect::<Vec<_>>()
                            .join(" ");
                        if !about.is_empty() {
                            self.input_notes.push(format!("Input `{var}`: {about}"));
                        }
                        self.inputs.push(var);
                    }
                }
                continue;
            }
            let Some(source) = source else {
                // No source: the last response where it is used. An expression is
                // substituted into the expressions that use it; a header has no such
                // home.
                match (expression, header) {
                    (Some(e), _) => {
                        self.names.remove(name);
                        self.dynamic.insert(name.to_owned(), e);
                    }
                    _ => self.refuse(&at, "a headerField variable needs a sourceId"),
                }
                continue;
            };
            if let Some(fixture) = self.fixtures.get(source).cloned() {
                let Some(expr) = expression else {
                    self.refuse(
                        &format!("{at}.headerField"),
                        "a fixture has no headers: headerField needs a response as sourceId",
                    );
                    continue;
                };
                match static_value(&expr, &fixture.body) {
                    Ok(Some(value)) => {
                        self.vars.insert(var, value);
                    }
                    Ok(None) => match default {
                        Some(d) => {
                            self.vars.insert(var, Value::String(d.to_owned()));
                        }
                        None => self.refuse(&at, format!("`{expr}` yields nothing on fixture `{source}` and there is no defaultValue")),
                    },
                    Err(e) => self.refuse(&at, e),
                }
                continue;
            }
            if !self.responses.contains_key(source) {
                self.refuse(
                    &format!("{at}.sourceId"),
                    format!("`{source}` is neither a fixture nor the responseId of an operation"),
                );
                continue;
            }
            let capture = match (expression, header) {
                (Some(e), _) => json!({ "fhirpath": e }),
                (None, Some(h)) => json!({ "header": h }),
                (None, None) => continue,
            };
            if default.is_some() {
                self.refuse(&format!("{at}.defaultValue"), "a defaultValue with a response as sourceId is not supported (the capture fails the step when the response lacks it)");
            }
            self.response_captures
                .entry(source.to_owned())
                .or_default()
                .push((var, capture));
        }
    }

    /// In a FHIRPath expression, `${name}` → `%name` (the variable's value, as the
    /// text a TestScript engine would substitute compares).
    fn fhirpath_vars(&mut self, expr: &str, at: &str) -> String {
        // A variable without a source is its expression, on this same response.
        let mut expr = expr.to_owned();
        for (name, e) in &self.dynamic {
            expr = expr.replace(&format!("${{{name}}}"), &format!("({e})"));
        }
        let templated = self.templated(&expr, at);
        let mut out = String::with_capacity(templated.len());
        let mut rest = templated.as_str();
        while let Some(start) = rest.find("{{ ") {
            out.push_str(&rest[..start]);
            let after = &rest[start + 3..];
            let Some(end) = after.find(" }}") else {
                out.push_str(&rest[start..]);
                return out;
            };
            out.push('%');
            out.push_str(&after[..end]);
            rest = &after[end + 3..];
        }
        out.push_str(rest);
        out
    }

    /// `${name}` → `{{ name }}`; an unknown variable is refused.
    fn templated(&mut self, s: &str, at: &str) -> String {
        let mut out = String::with_capacity(s.len());
        let mut rest = s;
        while let Some(start) = rest.find("${") {
            out.push_str(&rest[..start]);
            let after = &rest[start + 2..];
            let Some(end) = after.find('}') else {
                out.push_str(&rest[start..]);
                return out;
            };
            let name = &after[..end];
            match self.names.get(name) {
                Some(var) => out.push_str(&format!("{{{{ {var} }}}}")),
                None if self.dynamic.contains_key(name) => self.refuse(
                    at,
                    format!("`${{{name}}}` has no sourceId (it is evaluated on the last response): fhirconf supports that inside expressions only"),
                ),
                None => {
                    self.refuse(at, format!("`${{{name}}}` names no variable of the script"));
                }
            }
            rest = &after[end + 1..];
        }
        out.push_str(rest);
        out
    }

    fn actions(&mut self, actions: &[Value], at: &str, steps: &mut Vec<Step>, state: &mut State) {
        for (i, action) in actions.iter().enumerate() {
            let here = format!("{at}.action[{i}]");
            if let Some(op) = action.get("operation") {
                let step = self.operation(op, &format!("{here}.operation"), state);
                steps.push(step);
            } else if let Some(a) = action.get("assert") {
                let at = format!("{here}.assert");
                // An assert judges the response of the operation before it, which for
                // a test's first assert may be the setup's last.
                match steps.last_mut() {
                    Some(step) => {
                        let mut step_copy = std::mem::take(step);
                        self.assert(a, &at, &mut step_copy);
                        *step = step_copy;
                    }
                    None => self.refuse(&at, "an assert before any operation"),
                }
            } else {
                self.refuse(&here, "an action with neither an operation nor an assert");
            }
        }
    }

    fn autocreate(&mut self, id: &str, f: &Fixture) -> Step {
        let mut step = Step::new(
            format!("TestScript.fixture {id} (autocreate)"),
            format!("create fixture {id}"),
        );
        step.request = json!({ "method": "POST", "path": format!("/{}", f.resource_type) });
        self.body(&mut step, id, f);
        step.expect.single.insert("status".into(), json!("2xx"));
        step.capture.push((
            f.id_var.clone(),
            json!({ "header": "location", "regex": format!("{}/([^/?#]+)", f.resource_type) }),
        ));
        step
    }

    fn autodelete(&mut self, id: &str, f: &Fixture, state: &State) -> Step {
        let mut step = Step::new(
            format!("TestScript.fixture {id} (autodelete)"),
            format!("delete fixture {id}"),
        );
        let target = if state.created.contains(id) {
            format!("{{{{ {} }}}}", f.id_var)
        } else {
            text(&f.body, "id").unwrap_or_default().to_owned()
        };
        step.request =
            json!({ "method": "DELETE", "path": format!("/{}/{target}", f.resource_type) });
        step
    }

    fn body(&mut self, step: &mut Step, id: &str, f: &Fixture) {
        match &self.mode {
            Fixtures::Inline => {
                step.request["json"] = f.body.clone();
            }
            Fixtures::Files(dir) => {
                step.request["json_file"] = Value::String(format!("{dir}/{}.json", identifier(id)));
            }
        }
    }

    /// The fixture as a FHIR XML body (`contentType: xml`), written from its JSON.
    fn xml_body(&mut self, step: &mut Step, id: &str, f: &Fixture, at: &str) {
        let xml = match fhir_xml::to_xml(&f.body) {
            Ok(x) => x,
            Err(e) => {
                self.refuse(
                    at,
                    format!("fixture `{id}` cannot be written as FHIR XML: {e}"),
                );
                return;
            }
        };
        step.request["content_type"] = json!("application/fhir+xml");
        match &self.mode {
            Fixtures::Inline => {
                step.request["body"] = Value::String(xml);
            }
            Fixtures::Files(dir) => {
                let file = format!("{dir}/{}.xml", identifier(id));
                if !self.fixture_files.iter().any(|(f, _)| *f == file) {
                    self.fixture_files.push((file.clone(), xml));
                }
                step.request["body_file"] = Value::String(file);
            }
        }
    }

    /// The path segment that names the resource an operation targets.
    fn target_id(&mut self, target: &str, at: &str, state: &State) -> Option<(String, String)> {
        if let Some(f) = self.fixtures.get(target) {
            let id = if state.created.contains(target) {
                format!("{{{{ {} }}}}", f.id_var)
            } else if let Some(id) = text(&f.body, "id") {
                id.to_owned()
            } else {
                self.refuse(
                    at,
                    format!("fixture `{target}` was not created before and has no id"),
                );
                return None;
            };
            return Some((f.resource_type.clone(), id));
        }
        if let Some(var) = self.responses.get(target) {
            return Some((
                format!("{{{{ {var}.resourceType }}}}"),
                format!("{{{{ {var}.id }}}}"),
            ));
        }
        self.refuse(
            at,
            format!("`{target}` is neither a fixture nor the responseId of an earlier operation"),
        );
        None
    }

    fn operation(&mut self, op: &Value, at: &str, state: &mut State) -> Step {
        const KNOWN: &[&str] = &[
            "id",
            "extension",
            "type",
            "resource",
            "label",
            "description",
            "accept",
            "contentType",
            "destination",
            "encodeRequestUrl",
            "method",
            "origin",
            "params",
            "requestHeader",
            "requestId",
            "responseId",
            "sourceId",
            "targetId",
            "url",
        ];
        if let Some(obj) = op.as_object() {
            for key in obj.keys().filter(|k| !KNOWN.contains(&k.as_str())) {
                self.refuse(
                    &format!("{at}.{key}"),
                    "not an operation element fhirconf knows",
                );
            }
        }
        for key in ["origin", "destination"] {
            if let Some(n) = op.get(key).and_then(Value::as_i64)
                && n != 1
            {
                self.refuse(
                    &format!("{at}.{key}"),
                    format!("{key} {n}: fhirconf talks to one server (only 1 is supported)"),
                );
            }
        }
        if let Some(r) = text(op, "requestId") {
            self.refuse(
                &format!("{at}.requestId"),
                format!("keeping the request as `{r}` is not supported"),
            );
        }
        let code = op
            .get("type")
            .and_then(|t| text(t, "code"))
            .unwrap_or_default();
        let label = text(op, "label")
            .or_else(|| text(op, "description"))
            .unwrap_or(code);
        let mut step = Step::new(at.to_owned(), label.to_owned());
        let source = text(op, "sourceId");
        let fixture = source.and_then(|s| self.fixtures.get(s).cloned());
        let target = text(op, "targetId");
        let mut resource = text(op, "resource").map(str::to_owned).or_else(|| {
            fixture
                .as_ref()
                .map(|f| f.resource_type.clone())
                .or_else(|| {
                    target
                        .and_then(|t| self.fixtures.get(t))
                        .map(|f| f.resource_type.clone())
                })
        });
        let (method, interaction) = match code {
            "read" => ("GET", Some("read")),
            "vread" => ("GET", Some("vread")),
            "search" => ("GET", Some("search-type")),
            "history" => ("GET", Some("history-instance")),
            "create" => ("POST", Some("create")),
            "update" | "updateCreate" => ("PUT", Some("update")),
            "delete" => ("DELETE", Some("delete")),
            "patch" => ("PATCH", Some("patch")),
            "transaction" | "batch" => ("POST", None),
            "capabilities" => ("GET", None),
            // No type: a plain request, by its method (GET unless given).
            "" if ["method", "url", "params", "targetId"]
                .iter()
                .any(|k| op.get(*k).is_some()) =>
            {
                ("GET", None)
            }
            "" => {
                self.refuse(
                    &format!("{at}.type"),
                    "an operation without a type (or a method)",
                );
                ("GET", None)
            }
            other => {
                self.refuse(
                    &format!("{at}.type"),
                    format!(
                        "operation type `{other}` is not supported (custom operations are not)"
                    ),
                );
                ("GET", None)
            }
        };
        let method = match text(op, "method") {
            Some(m) => m.to_ascii_uppercase(),
            None => method.to_owned(),
        };
        if !matches!(
            method.as_str(),
            "GET" | "POST" | "PUT" | "PATCH" | "DELETE" | "HEAD"
        ) {
            self.refuse(
                &format!("{at}.method"),
                format!("method `{method}` is not supported"),
            );
        }
        // The request's path.
        let path = if let Some(url) = text(op, "url") {
            Some(self.templated(url, &format!("{at}.url")))
        } else if code == "capabilities" {
            Some("/metadata".to_owned())
        } else if matches!(code, "transaction" | "batch") {
            Some("/".to_owned())
        } else if let Some(params) = text(op, "params") {
            let params = self.templated(params, &format!("{at}.params"));
            match &resource {
                Some(r) => Some(format!("/{r}{params}")),
                None => {
                    self.refuse(at, "params without a resource type (give `resource`)");
                    None
                }
            }
        } else if let Some(t) = target {
            self.target_id(t, &format!("{at}.targetId"), state)
                .map(|(ty, id)| {
                    if resource.is_none() {
                        resource = Some(ty.clone());
                    }
                    let ty = resource.clone().unwrap_or(ty);
                    match code {
                        "history" => format!("/{ty}/{id}/_history"),
                        _ => format!("/{ty}/{id}"),
                    }
                })
        } else if matches!(code, "create" | "search") {
            resource.as_ref().map(|r| format!("/{r}"))
        } else if code == "update" {
            match (
                &resource,
                fixture.as_ref().and_then(|f| text(&f.body, "id")),
            ) {
                (Some(r), Some(id)) => Some(format!("/{r}/{id}")),
                _ => {
                    self.refuse(
                        at,
                        "an update needs params, url, targetId or a fixture with an id",
                    );
                    None
                }
            }
        } else {
            self.refuse(
                at,
                format!(
                    "{} needs params, url or targetId",
                    if code.is_empty() {
                        "an operation"
                    } else {
                        code
                    }
                ),
            );
            None
        };
        let path = path.unwrap_or_else(|| "/".to_owned());
        if path.starts_with("http://") || path.starts_with("https://") {
            step.request = json!({ "method": method, "url": path });
        } else {
            let path = if path.starts_with('/') {
                path
            } else {
                format!("/{path}")
            };
            step.request = json!({ "method": method, "path": path });
        }
        if let (Some(r), Some(i)) = (&resource, interaction)
            && !r.contains("{{")
        {
            self.requires.insert(format!("{r}.{i}"));
        }
        // Headers.
        let mut headers = Map::new();
        let sends_body = text(op, "sourceId").is_some_and(|s| self.fixtures.contains_key(s))
            && matches!(method.as_str(), "POST" | "PUT" | "PATCH");
        match text(op, "accept") {
            None => {}
            Some("json") => {
                headers.insert("accept".into(), json!("application/fhir+json"));
            }
            // An XML answer is judged in its JSON form (`crates/fhir-xml`); a server
            // whose CapabilityStatement has no XML format skips the test.
            Some("xml") => {
                headers.insert("accept".into(), json!("application/fhir+xml"));
                self.requires.insert("format=xml".into());
            }
            Some(mime) if mime.contains("json") || mime.contains("xml") => {
                headers.insert("accept".into(), Value::String(mime.to_owned()));
            }
            Some(other) => self.refuse(
                &format!("{at}.accept"),
                format!("`{other}`: fhirconf reads FHIR JSON and XML answers only"),
            ),
        }
        let mut xml_body = false;
        match text(op, "contentType") {
            None | Some("json") => {}
            Some(mime) if mime.contains("json") => {
                headers.insert("content-type".into(), Value::String(mime.to_owned()));
            }
            // The fixture is sent as FHIR XML (written from its JSON, below).
            Some("xml") if sends_body => {
                xml_body = true;
                self.requires.insert("format=xml".into());
            }
            Some(mime) if sends_body && mime.contains("xml") => xml_body = true,
            Some(other) if sends_body => self.refuse(
                &format!("{at}.contentType"),
                format!("`{other}`: fhirconf sends bodies as FHIR JSON or XML only"),
            ),
            // No body: the header is sent as the script says and means nothing more.
            Some("xml") => {
                headers.insert("content-type".into(), json!("application/fhir+xml"));
            }
            Some(mime) => {
                headers.insert("content-type".into(), Value::String(mime.to_owned()));
            }
        }
        for (i, h) in list(op, "requestHeader").iter().enumerate() {
            let here = format!("{at}.requestHeader[{i}]");
            match (text(h, "field"), text(h, "value")) {
                (Some(f), Some(v)) => {
                    let v = self.templated(v, &here);
                    headers.insert(f.to_ascii_lowercase(), Value::String(v));
                }
                _ => self.refuse(&here, "a request header needs a field and a value"),
            }
        }
        if !headers.is_empty() {
            step.request["headers"] = Value::Object(headers);
        }
        // The body.
        if let Some(source) = source {
            match &fixture {
                Some(f) if matches!(method.as_str(), "POST" | "PUT" | "PATCH") => {
                    let f = f.clone();
                    if xml_body {
                        self.xml_body(&mut step, source, &f, &format!("{at}.sourceId"));
                    } else {
                        self.body(&mut step, source, &f);
                    }
                    if code == "create" {
                        step.capture.push((
                            f.id_var.clone(),
                            json!({ "header": "location", "regex": format!("{}/([^/?#]+)", f.resource_type) }),
                        ));
                        state.created.insert(source.to_owned());
                    }
                }
                Some(_) => {}
                None => self.refuse(&format!("{at}.sourceId"), format!("`{source}` is not a fixture (a response as a request body is not supported)")),
            }
        }
        // What later elements read of the response.
        if let Some(r) = text(op, "responseId") {
            if let Some(var) = self.responses.get(r).cloned()
                && self.targeted.contains(r)
            {
                step.capture.push((var, json!({ "json": "$" })));
            }
            for (var, capture) in self.response_captures.get(r).cloned().unwrap_or_default() {
                step.capture.push((var, capture));
            }
            step.response_id = Some(r.to_owned());
        }
        step
    }

    fn assert(&mut self, a: &Value, at: &str, step: &mut Step) {
        const KNOWN: &[&str] = &[
            "id",
            "extension",
            "label",
            "description",
            "direction",
            "compareToSourceId",
            "compareToSourceExpression",
            "compareToSourcePath",
            "contentType",
            "expression",
            "headerField",
            "minimumId",
            "navigationLinks",
            "operator",
            "path",
            "requestMethod",
            "requestURL",
            "resource",
            "response",
            "responseCode",
            "sourceId",
            "validateProfileId",
            "value",
            "warningOnly",
        ];
        if let Some(obj) = a.as_object() {
            for key in obj.keys().filter(|k| !KNOWN.contains(&k.as_str())) {
                self.refuse(
                    &format!("{at}.{key}"),
                    "not an assert element fhirconf knows",
                );
            }
        }
        if let Some(s) = text(a, "sourceId")
            && step.response_id.as_deref() != Some(s)
        {
            self.refuse(&format!("{at}.sourceId"), format!("an assert on `{s}`, not on the response of the operation before it, is not supported"));
            return;
        }
        step.comments.push(format!(
            "{at}{}",
            text(a, "label")
                .or_else(|| text(a, "description"))
                .map_or(String::new(), |d| format!(": {d}"))
        ));
        let warning = a.get("warningOnly") == Some(&Value::Bool(true));
        let mut e = std::mem::take(if warning {
            &mut step.warn
        } else {
            &mut step.expect
        });
        let before = e.clone();
        self.assert_into(a, at, &mut e);
        let targets: Vec<Target> = e.added_since(&before);
        step.asserts.push(PlannedAssert {
            path: at.to_owned(),
            targets,
            warning,
        });
        *(if warning {
            &mut step.warn
        } else {
            &mut step.expect
        }) = e;
    }

    /// An assert's expectations into `e` (the step's `expect`, or `warn` for a
    /// `warningOnly` one).
    fn assert_into(&mut self, a: &Value, at: &str, e: &mut Expectations) {
        let operator = text(a, "operator").unwrap_or("equals");
        let on_request = text(a, "direction") == Some("request")
            || a.get("requestURL").is_some()
            || a.get("requestMethod").is_some();
        if on_request {
            self.request_assert(a, at, e, operator);
            return;
        }
        let value = text(a, "value").map(|v| self.templated(v, &format!("{at}.value")));
        if let Some(r) = text(a, "response") {
            match response_code(r) {
                Some(code) => self.set_status(e, at, json!(code)),
                None => self.refuse(
                    &format!("{at}.response"),
                    format!("`{r}` is not a TestScript response code"),
                ),
            }
        }
        if let Some(code) = text(a, "responseCode") {
            let codes: Vec<Value> = code
                .split(',')
                .map(|c| {
                    c.trim()
                        .parse::<u16>()
                        .map(Value::from)
                        .unwrap_or(Value::Null)
                })
                .collect();
            if codes.iter().any(Value::is_null) {
                self.refuse(
                    &format!("{at}.responseCode"),
                    format!("`{code}` is not a status code (or a comma-separated list)"),
                );
            } else {
                match operator {
                    "equals" if codes.len() == 1 => self.set_status(e, at, codes[0].clone()),
                    "in" => self.set_status(e, at, json!({ "any_of": codes })),
                    other => self.refuse(
                        &format!("{at}.operator"),
                        format!("`{other}` on responseCode is not supported yet"),
                    ),
                }
            }
        }
        if let Some(ct) = text(a, "contentType") {
            // `json`, `xml`, or a MIME type: the header contains it.
            self.add_header_rule(e, at, "content-type", json!({ "contains": ct }));
        }
        if let Some(field) = text(a, "headerField")
            && let Some(rule) = self.header_rule(operator, value.as_deref(), at, "a header")
        {
            self.add_header_rule(e, at, &field.to_ascii_lowercase(), rule);
        }
        if let Some(r) = text(a, "resource") {
            e.json
                .push(json!({ "path": "$.resourceType", "equals": r }));
        }
        if let Some(p) = text(a, "validateProfileId") {
            match self.profiles.get(p).cloned() {
                Some(url) => {
                    // A core resource's own profile is R4 itself, with that type.
                    let core = url
                        .strip_prefix("http://hl7.org/fhir/StructureDefinition/")
                        .filter(|t| r4_model::r4().is_resource(t));
                    let valid = match core {
                        Some(t) => {
                            e.json
                                .push(json!({ "path": "$.resourceType", "equals": t }));
                            json!(true)
                        }
                        None => json!({ "profile": url }),
                    };
                    match e.single.get("valid") {
                        Some(earlier) if *earlier != valid => self.refuse(
                            &format!("{at}.validateProfileId"),
                            "two profiles validated on one response are not supported yet",
                        ),
                        _ => {
                            e.single.insert("valid".into(), valid);
                        }
                    }
                }
                None => self.refuse(
                    &format!("{at}.validateProfileId"),
                    format!("`{p}` is not the id of a TestScript.profile"),
                ),
            }
        }
        if let Some(id) = text(a, "minimumId") {
            match self.fixtures.get(id).cloned() {
                Some(f) => {
                    let mut minimum = f.body.clone();
                    if let Some(obj) = minimum.as_object_mut() {
                        // Server-assigned: never what a fixture can expect.
                        for key in ["id", "meta", "text"] {
                            obj.remove(key);
                        }
                    }
                    if e.single.contains_key("json_subset") {
                        self.refuse(
                            &format!("{at}.minimumId"),
                            "two minimumId asserts on one response are not supported",
                        );
                    }
                    e.single
                        .insert("json_subset".into(), json!({ "value": minimum }));
                }
                None => self.refuse(
                    &format!("{at}.minimumId"),
                    format!("`{id}` is not a fixture"),
                ),
            }
        }
        if a.get("navigationLinks") == Some(&Value::Bool(true)) {
            for relation in ["first", "last"] {
                e.fhirpath.push(json!({
                    "expr": format!("link.where(relation = '{relation}').url"),
                    "exists": true,
                }));
            }
        }
        let expression = match (text(a, "expression"), text(a, "path")) {
            (Some(e), _) => Some(self.fhirpath_vars(e, &format!("{at}.expression"))),
            (None, Some(p)) => match xpath_to_fhirpath(p) {
                // XPath compares a node set by its first node's value.
                Some(e) if !matches!(operator, "empty" | "notEmpty") => {
                    Some(format!("({e}).first()"))
                }
                Some(e) => Some(e),
                None => {
                    self.refuse(&format!("{at}.path"), format!("`{p}` is not a simple path fhirconf can rewrite to FHIRPath; use `expression`"));
                    return;
                }
            },
            (None, None) => None,
        };
        let compare = match (
            text(a, "compareToSourceExpression"),
            text(a, "compareToSourcePath"),
        ) {
            (Some(e), _) => Some(e.to_owned()),
            (None, Some(p)) => match xpath_to_fhirpath(p) {
                // XPath compares a node set by its first node's value.
                Some(e) => Some(format!("({e}).first()")),
                None => {
                    self.refuse(
                        &format!("{at}.compareToSourcePath"),
                        format!("`{p}` is not a simple path fhirconf can rewrite to FHIRPath"),
                    );
                    return;
                }
            },
            (None, None) => None,
        };
        if let Some(source) = text(a, "compareToSourceId") {
            let Some(compare) = compare else {
                self.refuse(
                    at,
                    "compareToSourceId needs compareToSourceExpression or compareToSourcePath",
                );
                return;
            };
            let Some(fixture) = self.fixtures.get(source).cloned() else {
                self.refuse(
                    &format!("{at}.compareToSourceId"),
                    format!(
                        "comparing with `{source}`, which is not a fixture, is not supported yet"
                    ),
                );
                return;
            };
            let expected = match static_value(&compare, &fixture.body) {
                Ok(Some(v)) => v,
                Ok(None) => {
                    self.refuse(
                        &format!("{at}.compareToSourceExpression"),
                        format!("`{compare}` yields nothing on fixture `{source}`"),
                    );
                    return;
                }
                Err(e) => {
                    self.refuse(&format!("{at}.compareToSourceExpression"), e);
                    return;
                }
            };
            let expr = expression.unwrap_or(compare);
            let key = match operator {
                "equals" => Some("equals"),
                "contains" => Some("contains"),
                "notEquals" => Some("not_equals"),
                "notContains" => Some("not_contains"),
                "greaterThan" => Some("greater_than"),
                "lessThan" => Some("less_than"),
                _ => None,
            };
            match key {
                Some(key) => {
                    let mut rule = Map::new();
                    rule.insert("expr".into(), json!(expr));
                    rule.insert(key.into(), expected);
                    e.fhirpath.push(Value::Object(rule));
                }
                None => self.refuse(
                    &format!("{at}.operator"),
                    format!("`{operator}` with compareToSourceId is not supported yet"),
                ),
            }
            return;
        }
        let Some(expr) = expression else {
            return;
        };
        let rule = match (operator, value) {
            ("equals", Some(v)) => json!({ "expr": expr, "equals": scalar(&v) }),
            ("equals" | "eval", None) => json!({ "expr": expr, "equals": true }),
            ("in", Some(v)) => {
                json!({ "expr": expr, "one_of": v.split(',').map(|s| scalar(s.trim())).collect::<Vec<_>>() })
            }
            ("empty", _) => json!({ "expr": expr, "absent": true }),
            ("notEmpty", _) => json!({ "expr": expr, "exists": true }),
            ("contains", Some(v)) => json!({ "expr": expr, "contains": scalar(&v) }),
            ("notEquals", Some(v)) => json!({ "expr": expr, "not_equals": scalar(&v) }),
            ("notIn", Some(v)) => {
                json!({ "expr": expr, "none_of": v.split(',').map(|s| scalar(s.trim())).collect::<Vec<_>>() })
            }
            ("notContains", Some(v)) => json!({ "expr": expr, "not_contains": scalar(&v) }),
            ("greaterThan", Some(v)) => json!({ "expr": expr, "greater_than": scalar(&v) }),
            ("lessThan", Some(v)) => json!({ "expr": expr, "less_than": scalar(&v) }),
            (other, _) => {
                self.refuse(
                    &format!("{at}.operator"),
                    format!("`{other}` on an expression needs a value (or is not an operator)"),
                );
                return;
            }
        };
        e.fhirpath.push(rule);
    }

    /// An assert on the request sent: `expect.request`.
    fn request_assert(&mut self, a: &Value, at: &str, e: &mut Expectations, operator: &str) {
        let value = text(a, "value").map(|v| self.templated(v, &format!("{at}.value")));
        let mut request = e
            .single
            .get("request")
            .and_then(Value::as_object)
            .cloned()
            .unwrap_or_default();
        if let Some(m) = text(a, "requestMethod") {
            match operator {
                "equals" => {
                    request.insert("method".into(), json!(m.to_ascii_uppercase()));
                }
                other => self.refuse(
                    &format!("{at}.operator"),
                    format!("`{other}` on requestMethod is not supported yet"),
                ),
            }
        }
        if let Some(u) = text(a, "requestURL") {
            let u = self.templated(u, &format!("{at}.requestURL"));
            match operator {
                "equals" => {
                    request.insert("url".into(), json!({ "equals": u }));
                }
                "contains" => {
                    request.insert("url".into(), json!({ "contains": u }));
                }
                other => self.refuse(
                    &format!("{at}.operator"),
                    format!("`{other}` on requestURL is not supported yet"),
                ),
            }
        }
        let mut headers = request
            .get("headers")
            .and_then(Value::as_object)
            .cloned()
            .unwrap_or_default();
        if let Some(field) = text(a, "headerField")
            && let Some(rule) = self.header_rule(operator, value.as_deref(), at, "a request header")
        {
            headers.insert(field.to_ascii_lowercase(), rule);
        }
        if let Some(ct) = text(a, "contentType") {
            headers.insert("content-type".into(), json!({ "contains": ct }));
        }
        for key in [
            "expression",
            "path",
            "resource",
            "minimumId",
            "validateProfileId",
            "compareToSourceId",
            "responseCode",
            "response",
            "navigationLinks",
        ] {
            if a.get(key).is_some() {
                self.refuse(
                    &format!("{at}.{key}"),
                    "on the request (direction: request), only requestMethod, requestURL, headerField and contentType are supported",
                );
            }
        }
        if !headers.is_empty() {
            request.insert("headers".into(), Value::Object(headers));
        }
        e.single.insert("request".into(), Value::Object(request));
    }

    /// A `headerField` assert's operator as a header rule, or `None` after refusing it.
    fn header_rule(
        &mut self,
        operator: &str,
        value: Option<&str>,
        at: &str,
        what: &str,
    ) -> Option<Value> {
        match (operator, value) {
            ("equals", Some(v)) => Some(json!({ "equals": v })),
            ("contains", Some(v)) => Some(json!({ "contains": v })),
            ("notEmpty", _) => Some(json!({ "present": true })),
            ("empty", _) => Some(json!({ "absent": true })),
            (other, _) => {
                self.refuse(
                    &format!("{at}.operator"),
                    format!("`{other}` on {what} is not supported yet"),
                );
                None
            }
        }
    }

    fn set_status(&mut self, e: &mut Expectations, at: &str, status: Value) {
        if e.single.contains_key("status") {
            self.refuse(
                at,
                "a second status assert on one response is not supported",
            );
            return;
        }
        e.single.insert("status".into(), status);
    }

    fn add_header_rule(&mut self, e: &mut Expectations, at: &str, name: &str, rule: Value) {
        if e.headers.contains_key(name) {
            self.refuse(
                at,
                format!("a second assert on header `{name}` for one response is not supported"),
            );
            return;
        }
        e.headers.insert(name.to_owned(), rule);
    }
}

/// A TestScript `response` code as an HTTP status.
fn response_code(name: &str) -> Option<u16> {
    Some(match name {
        "okay" => 200,
        "created" => 201,
        "noContent" => 204,
        "notModified" => 304,
        "bad" => 400,
        "forbidden" => 403,
        "notFound" => 404,
        "methodNotAllowed" => 405,
        "conflict" => 409,
        "gone" => 410,
        "preconditionFailed" => 412,
        "unprocessable" => 422,
        _ => return None,
    })
}

/// A TestScript `value` as the JSON it most likely compares with: a number or a
/// boolean when it reads as one (FHIRPath yields those typed), else the text.
fn scalar(v: &str) -> Value {
    if v.contains("{{") {
        return Value::String(v.to_owned());
    }
    match v {
        "true" => return Value::Bool(true),
        "false" => return Value::Bool(false),
        _ => {}
    }
    if let Ok(i) = v.parse::<i64>() {
        return Value::from(i);
    }
    if v.contains('.')
        && let Ok(f) = v.parse::<f64>()
        && f.is_finite()
    {
        return Value::from(f);
    }
    Value::String(v.to_owned())
}

/// A simple XPath (`fhir:Patient/fhir:name/fhir:family/@value`, `Patient/id`) as
/// FHIRPath (`Patient.name.family`); anything with predicates, axes or functions is
/// `None`.
pub(crate) fn xpath_to_fhirpath(path: &str) -> Option<String> {
    let mut parts = Vec::new();
    for seg in path.trim().trim_start_matches('/').split('/') {
        let seg = seg.strip_prefix("fhir:").unwrap_or(seg);
        if seg == "@value" {
            continue;
        }
        if seg.is_empty() || !seg.chars().all(|c| c.is_ascii_alphanumeric() || c == '_') {
            return None;
        }
        parts.push(seg);
    }
    (!parts.is_empty()).then(|| parts.join("."))
}

/// The value an expression yields on a fixture, computed when the script loads: its
/// single item, a list of several, or `None` for nothing.
fn static_value(expr: &str, fixture: &Value) -> Result<Option<Value>, String> {
    let parsed = crate::fhirpath_expr::FhirPathExpr::parse(expr)?;
    let vars = Map::new();
    let input = crate::fhirpath_expr::Evaluation::new(fixture, &vars);
    let items = parsed.evaluate(&input)?;
    Ok(match items.values.len() {
        0 => None,
        1 => items.values.into_iter().next(),
        _ => Some(Value::Array(items.values)),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn simple_xpaths_become_fhirpath_and_the_rest_is_refused() {
        assert_eq!(
            xpath_to_fhirpath("fhir:Patient/fhir:name/fhir:family/@value").as_deref(),
            Some("Patient.name.family")
        );
        assert_eq!(
            xpath_to_fhirpath("Patient/id").as_deref(),
            Some("Patient.id")
        );
        assert_eq!(xpath_to_fhirpath("/f:Patient/f:name[1]"), None);
        assert_eq!(xpath_to_fhirpath("count(fhir:entry)"), None);
        assert_eq!(xpath_to_fhirpath(""), None);
    }

    #[test]
    fn testscript_values_read_as_the_json_they_compare_with() {
        assert_eq!(scalar("2"), json!(2));
        assert_eq!(scalar("1.5"), json!(1.5));
        assert_eq!(scalar("true"), json!(true));
        assert_eq!(scalar("2024-01-01"), json!("2024-01-01"));
        assert_eq!(scalar("{{ id }}"), json!("{{ id }}"));
        assert_eq!(scalar("NaN"), json!("NaN"));
    }

    /// JSON shaped like a TestScript: its element names as keys, any values.
    fn testscript_like() -> impl proptest::strategy::Strategy<Value = Value> {
        use proptest::prelude::*;
        let key = prop_oneof![
            Just("action"),
            Just("operation"),
            Just("assert"),
            Just("type"),
            Just("code"),
            Just("resource"),
            Just("params"),
            Just("url"),
            Just("sourceId"),
            Just("targetId"),
            Just("responseId"),
            Just("expression"),
            Just("path"),
            Just("value"),
            Just("operator"),
            Just("fixture"),
            Just("id"),
            Just("reference"),
            Just("variable"),
            Just("name"),
            Just("setup"),
            Just("test"),
            Just("teardown"),
            Just("headerField"),
            Just("responseCode"),
            Just("response"),
            Just("minimumId"),
            Just("compareToSourceId"),
            Just("compareToSourceExpression"),
            Just("warningOnly"),
            Just("autocreate"),
            Just("autodelete"),
            Just("defaultValue"),
            Just("requestHeader"),
        ];
        let leaf = prop_oneof![
            Just(Value::Null),
            any::<bool>().prop_map(Value::from),
            (-3i64..300).prop_map(Value::from),
            prop_oneof![
                Just("read"),
                Just("create"),
                Just("Patient"),
                Just("f1"),
                Just("r1"),
                Just("${v}"),
                Just("/${v}"),
                Just("name.family"),
                Just("equals"),
                Just("in"),
                Just("200,201"),
                Just("okay"),
                Just("#c"),
                Just("("),
                Just("$"),
                Just(""),
            ]
            .prop_map(Value::from),
        ];
        leaf.prop_recursive(6, 120, 5, move |inner| {
            prop_oneof![
                proptest::collection::vec(inner.clone(), 0..4).prop_map(Value::Array),
                proptest::collection::btree_map(key.clone(), inner, 0..5).prop_map(|m| {
                    Value::Object(m.into_iter().map(|(k, v)| (k.to_owned(), v)).collect())
                }),
            ]
        })
    }

    proptest::proptest! {
        /// Any input is translated or refused; nothing panics, and what is
        /// translated loads or is reported (never a crash in the loader either).
        #[test]
        fn any_testscript_shaped_json_is_translated_or_refused(mut doc in testscript_like()) {
            if let Some(obj) = doc.as_object_mut() {
                obj.insert("resourceType".into(), json!("TestScript"));
            }
            if let Ok(t) = translate("t.json", &doc, Path::new("."), Fixtures::Inline) {
                let _ = crate::scenario::load::load_str("t.json", &t.yaml, Path::new("."), &Default::default());
            }
        }
    }
}
