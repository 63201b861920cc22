//! From paths on disk to validated [`SuiteFile`]s, or to every [`Diagnostic`] found.
//!
//! Nothing here touches the network: `fhirconf check` is this module alone.

use std::collections::{BTreeSet, HashSet};
use std::path::{Path, PathBuf};
use std::sync::Arc;

use serde_json::{Map, Value};
use serde_saphyr::{Location, Spanned};

use super::model::{
    BodySpec, Capture, CaptureSource, Expect, FhirPathRule, FixtureFile, HeaderOp, HeaderRule,
    JsonOp, JsonRule, Located, Requirement, Retry, Scenario, Step, SubsetRule, SuiteFile, Target,
};
use super::schema::{self, FileDoc, ScenarioDoc, SpannedMap};
use crate::diag::{Diagnostic, did_you_mean};
use crate::files::{
    discover, display_path, no_nul_byte, push_at, read_text, sha256_hex, yaml_error,
};
use crate::template::{self, BUILTIN_VARS};

/// Scenario and fixture files larger than this are refused.
pub const MAX_FILE_BYTES: u64 = crate::files::MAX_INPUT_BYTES;

/// Interactions a `requires` entry may name (FHIR R4 `TypeRestfulInteraction`, plus `search`).
pub const INTERACTIONS: &[&str] = &[
    "read",
    "vread",
    "update",
    "patch",
    "delete",
    "history-instance",
    "history-type",
    "create",
    "search-type",
    "search",
];

/// What the loader may assume beyond the files themselves.
#[derive(Debug, Default, Clone)]
pub struct LoadOptions {
    /// Variables that will be supplied at run time (`--var`, target vars).
    pub known_vars: BTreeSet<String>,
    /// Where loaded models are kept between runs (`None`: every file is parsed).
    pub cache: Option<Arc<super::cache::ModelCache>>,
}

/// Loads every scenario file under `paths`; all problems are reported together.
pub fn load(paths: &[PathBuf], opts: &LoadOptions) -> Result<Vec<SuiteFile>, Vec<Diagnostic>> {
    let files = discover(paths)?;
    let mut suites = Vec::new();
    let mut errors = Vec::new();
    let mut ids = HashSet::new();
    for loaded in load_files(&files, opts) {
        match loaded {
            Ok(suite) => {
                for s in &suite.scenarios {
                    if !ids.insert(s.id.clone()) {
                        errors.push(Diagnostic::file(
                            &suite.display,
                            format!("scenario `{}` is loaded twice", s.id),
                        ));
                    }
                }
                suites.push(suite);
            }
            Err(mut e) => errors.append(&mut e),
        }
    }
    if errors.is_empty() {
        Ok(suites)
    } else {
        Err(errors)
    }
}

/// [`load_file`] for each of `files`, on as many threads as there are CPUs (parsing
/// YAML is most of a run's start-up for a large suite); the results in file order.
fn load_files(files: &[PathBuf], opts: &LoadOptions) -> Vec<Result<SuiteFile, Vec<Diagnostic>>> {
    parallel(files, |f| load_file(f, opts))
}

/// `f` over `items` on as many threads as there are CPUs, the results in order (the
/// scenario files of a run, the files of a generated suite).
pub(crate) fn parallel<T: Sync, R: Send>(items: &[T], f: impl Fn(&T) -> R + Sync) -> Vec<R> {
    use std::sync::atomic::{AtomicUsize, Ordering};
    let threads = std::thread::available_parallelism()
        .map_or(1, |n| n.get())
        .min(items.len());
    if threads <= 1 {
        return items.iter().map(&f).collect();
    }
    let next = AtomicUsize::new(0);
    let mut done: Vec<(usize, R)> = std::thread::scope(|scope| {
        let workers: Vec<_> = (0..threads)
            .map(|_| {
                scope.spawn(|| {
                    let mut mine = Vec::new();
                    loop {
                        let i = next.fetch_add(1, Ordering::Relaxed);
                        let Some(item) = items.get(i) else { break mine };
                        mine.push((i, f(item)));
                    }
                })
            })
            .collect();
        workers
            .into_iter()
            .flat_map(|w| {
                w.join()
                    .unwrap_or_else(|panic| std::panic::resume_unwind(panic))
            })
            .collect()
    });
    done.sort_by_key(|(i, _)| *i);
    done.into_iter().map(|(_, r)| r).collect()
}

pub fn load_file(path: &Path, opts: &LoadOptions) -> Result<SuiteFile, Vec<Diagnostic>> {
    let display = display_path(path);
    let text = read_text(path, &display, MAX_FILE_BYTES).map_err(|d| vec![d])?;
    let base = path.parent().unwrap_or(Path::new("."));
    if let Some(xml) = crate::testscript::format_of(path) {
        return load_testscript(&display, &text, xml, base, opts);
    }
    let Some(cache) = &opts.cache else {
        return load_str(&display, &text, base, opts);
    };
    let key = cache.key(&display, base, opts);
    let sha256 = sha256_hex(text.as_bytes());
    if let Some(suite) = cache.get(&key, &sha256) {
        return Ok(suite);
    }
    let (suite, read) = parse_and_build(&display, &text, base, opts)?;
    if cache.seen_before(&key) {
        cache.put(&key, &suite, &read);
    }
    Ok(suite)
}

/// A TestScript (JSON or XML), run as the scenario file it translates to; the file's
/// digest is its own.
fn load_testscript(
    display: &str,
    text: &str,
    xml: bool,
    base: &Path,
    opts: &LoadOptions,
) -> Result<SuiteFile, Vec<Diagnostic>> {
    use crate::testscript;
    no_nul_byte(display, text, "TestScript")?;
    let Some(script) = testscript::read_script(display, text, xml).map_err(|d| vec![d])? else {
        return Err(vec![Diagnostic::whole_file(
            display,
            "neither a scenario file (.yaml) nor a TestScript resource",
        )]);
    };
    let translated = testscript::translate(display, &script, base, testscript::Fixtures::Inline)?;
    let mut suite = load_str(display, &translated.yaml, base, opts).map_err(|errors| {
        // The translation is ours: a problem in it is a fhirconf bug, shown with the
        // generated text's line so it can be reported.
        errors
            .into_iter()
            .map(|mut d| {
                d.message = format!(
                    "in the scenario this TestScript translates to (line {}): {}",
                    d.line, d.message
                );
                d.line = 1;
                d.column = 1;
                d.source_line = None;
                d
            })
            .collect::<Vec<_>>()
    })?;
    suite.sha256 = sha256_hex(text.as_bytes());
    suite.testscript = Some(Arc::new(testscript::origin(&translated, &suite)));
    Ok(suite)
}

/// Parses and validates one file's text. `base` is where fixture paths start from.
pub fn load_str(
    display: &str,
    text: &str,
    base: &Path,
    opts: &LoadOptions,
) -> Result<SuiteFile, Vec<Diagnostic>> {
    parse_and_build(display, text, base, opts).map(|(suite, _)| suite)
}

/// Files read besides a scenario file (fixtures, `each_file`), each with the SHA-256
/// of what was read.
pub(crate) type ReadFiles = Vec<(PathBuf, String)>;

/// [`load_str`], with every other file the model was built from (fixtures, `each_file`)
/// and the SHA-256 of what was read from it.
fn parse_and_build(
    display: &str,
    text: &str,
    base: &Path,
    opts: &LoadOptions,
) -> Result<(SuiteFile, ReadFiles), Vec<Diagnostic>> {
    no_nul_byte(display, text, "scenario")?;
    let doc: FileDoc = serde_saphyr::from_str_with_options(text, crate::files::yaml_options())
        .map_err(|e| vec![yaml_error(display, text, &e)])?;
    crate::files::refuse_tags(display, text).map_err(|d| vec![d])?;
    let mut builder = Builder {
        file: display,
        text,
        base,
        opts,
        errors: Vec::new(),
        fixtures: Vec::new(),
        read: Vec::new(),
    };
    let suite = builder.build(doc)?;
    Ok((suite, builder.read))
}

struct Builder<'a> {
    file: &'a str,
    text: &'a str,
    base: &'a Path,
    opts: &'a LoadOptions,
    errors: Vec<Diagnostic>,
    fixtures: Vec<FixtureFile>,
    /// Every file read besides the scenario file.
    read: ReadFiles,
}

/// What a file that is one scenario gives at its top level.
#[expect(
    clippy::vec_box,
    reason = "the schema's boxed steps, each freed as the model is built"
)]
struct TopLevel {
    name: Option<Spanned<String>>,
    description: Option<String>,
    source: Option<String>,
    ignore: Option<String>,
    each: Option<Spanned<Vec<SpannedMap>>>,
    each_file: Option<Spanned<String>>,
    steps: Option<Spanned<Vec<Box<schema::Step>>>>,
    cleanup: Vec<Box<schema::Step>>,
    leaves_behind: Vec<String>,
}

/// One row of `each:`: the label in the scenario's id, and the variables it sets.
struct Row {
    label: String,
    fields: Vec<(String, Value)>,
}

/// Rows one scenario may have.
const MAX_ROWS: usize = 10_000;

/// A CSV text with a header line as rows of string values (an empty cell is "").
fn csv_rows(text: &str) -> Result<Vec<Map<String, Value>>, String> {
    let mut reader = csv::ReaderBuilder::new()
        .has_headers(true)
        .from_reader(text.as_bytes());
    let headers = reader
        .headers()
        .map_err(|e| format!("the header line: {e}"))?
        .clone();
    let mut rows = Vec::new();
    for (i, record) in reader.records().enumerate() {
        let record = record.map_err(|e| format!("row [{i}]: {e}"))?;
        rows.push(
            headers
                .iter()
                .zip(record.iter())
                .map(|(k, v)| (k.trim().to_owned(), Value::String(v.to_owned())))
                .collect(),
        );
        if rows.len() > MAX_ROWS {
            break;
        }
    }
    Ok(rows)
}

/// The body members of a request, as the file gives them.
struct BodyParts {
    json: Option<Spanned<Value>>,
    json_file: Option<Spanned<String>>,
    json_merge: Option<Spanned<Value>>,
    body: Option<Spanned<String>>,
    body_file: Option<Spanned<String>>,
    form: Option<SpannedMap>,
}

/// File-level settings every scenario of the file inherits.
struct Inherited {
    tags: Vec<String>,
    requires: Vec<Requirement>,
    inputs: Vec<String>,
    vars: Vec<(String, Value)>,
}

impl Builder<'_> {
    /// The first place, from `loc` on, where `find` finds something in a line (given
    /// the line's text from `loc`'s column on its first line): the `(line, column)` a
    /// problem inside a multi-line value is really at; `loc` itself if none.
    fn find_after(&self, loc: Location, find: impl Fn(&str) -> Option<usize>) -> (u64, u64) {
        let first = loc.line().saturating_sub(1) as usize;
        let found = self
            .text
            .lines()
            .enumerate()
            .skip(first)
            .find_map(|(i, line)| {
                let from = if i == first {
                    floor_char(line, loc.column().saturating_sub(1) as usize)
                } else {
                    0
                };
                let at = from + find(&line[from..])?;
                Some((i as u64 + 1, line[..at].chars().count() as u64 + 1))
            });
        found.unwrap_or((loc.line(), loc.column()))
    }

    /// Where `needle` first appears from `loc` on.
    fn find_from(&self, loc: Location, needle: &str) -> (u64, u64) {
        self.find_after(loc, |part| part.find(needle))
    }

    /// Where `name` is first used inside a template (after a `{{` or `{%`) from `loc`
    /// on; else where it first appears at all.
    fn find_in_template(&self, loc: Location, name: &str) -> (u64, u64) {
        let in_template = |part: &str| {
            let open = [part.find("{{"), part.find("{%")]
                .into_iter()
                .flatten()
                .min()?;
            part[open..].find(name).map(|at| open + at)
        };
        let (line, column) = self.find_after(loc, in_template);
        if (line, column) == (loc.line(), loc.column()) {
            self.find_from(loc, name)
        } else {
            (line, column)
        }
    }

    fn err_at_position(
        &mut self,
        line: u64,
        column: u64,
        message: impl Into<String>,
    ) -> &mut Diagnostic {
        self.errors
            .push(Diagnostic::at(self.file, self.text, line, column, message));
        self.errors.last_mut().expect("just pushed")
    }

    fn err_at(&mut self, loc: Location, message: impl Into<String>) -> &mut Diagnostic {
        push_at(&mut self.errors, self.file, self.text, loc, message)
    }

    fn build(&mut self, doc: FileDoc) -> Result<SuiteFile, Vec<Diagnostic>> {
        let mut known: BTreeSet<String> = BUILTIN_VARS.iter().map(|s| (*s).to_owned()).collect();
        known.extend(self.opts.known_vars.iter().cloned());
        let inputs = self.inputs(&doc.inputs, &mut known);
        let vars = self.vars(doc.vars.as_ref(), &mut known);
        let inherited = Inherited {
            tags: doc.tags,
            requires: self.requires(&doc.requires),
            inputs,
            vars,
        };
        let docs = match doc.scenarios {
            Some(list) => {
                let beside = [
                    ("name", doc.name.is_some()),
                    ("steps", doc.steps.is_some()),
                    ("cleanup", !doc.cleanup.is_empty()),
                    ("leaves_behind", !doc.leaves_behind.is_empty()),
                    ("source", doc.source.is_some()),
                    ("description", doc.description.is_some()),
                    ("ignore", doc.ignore.is_some()),
                    ("each", doc.each.is_some()),
                    ("each_file", doc.each_file.is_some()),
                ];
                self.listed(list, beside)
            }
            None => {
                let single = TopLevel {
                    name: doc.name,
                    description: doc.description,
                    source: doc.source,
                    ignore: doc.ignore,
                    each: doc.each,
                    each_file: doc.each_file,
                    steps: doc.steps,
                    cleanup: doc.cleanup,
                    leaves_behind: doc.leaves_behind,
                };
                match self.single(single) {
                    Some(sc) => vec![sc],
                    None => return Err(std::mem::take(&mut self.errors)),
                }
            }
        };
        let scenarios: Vec<Scenario> = docs
            .into_iter()
            .flat_map(|sc| self.scenario(sc, &inherited, &known))
            .collect();
        if self.errors.is_empty() {
            Ok(SuiteFile {
                display: self.file.to_owned(),
                // For `load_file`, `text` is exactly the bytes read from disk (valid
                // UTF-8 is kept as is): the digest of the file as it was used.
                sha256: sha256_hex(self.text.as_bytes()),
                fixtures: std::mem::take(&mut self.fixtures),
                scenarios,
                testscript: None,
            })
        } else {
            Err(std::mem::take(&mut self.errors))
        }
    }

    /// A `scenarios:` list, with nothing of a single scenario beside it and no name
    /// twice.
    fn listed(
        &mut self,
        list: Spanned<Vec<ScenarioDoc>>,
        beside: [(&str, bool); 9],
    ) -> Vec<ScenarioDoc> {
        for (key, present) in beside {
            if present {
                self.err_at(
                    list.referenced,
                    format!("`{key}` cannot stand beside `scenarios`"),
                )
                .help = Some(format!("move `{key}` into each scenario of the list"));
            }
        }
        if list.value.is_empty() {
            self.err_at(list.referenced, "`scenarios` is empty");
        }
        let mut names = HashSet::new();
        for sc in &list.value {
            if !names.insert(sc.name.value.clone()) {
                self.err_at(
                    sc.name.referenced,
                    format!("duplicate scenario name `{}`", sc.name.value),
                );
            }
        }
        list.value
    }

    /// A file that is one scenario: it needs `name` and `steps` (`None`: no steps,
    /// nothing more to check).
    fn single(&mut self, top: TopLevel) -> Option<ScenarioDoc> {
        let start = Location::UNKNOWN;
        let name = top.name.unwrap_or_else(|| {
            self.errors.push(
                Diagnostic::at(self.file, self.text, 1, 1, "missing field `name`")
                    .with_help("a scenario file has `name` and `steps`, or a `scenarios:` list"),
            );
            Spanned {
                value: String::new(),
                referenced: start,
                defined: start,
            }
        });
        let Some(steps) = top.steps else {
            self.errors.push(Diagnostic::at(
                self.file,
                self.text,
                1,
                1,
                "missing field `steps`",
            ));
            return None;
        };
        Some(ScenarioDoc {
            name,
            description: top.description,
            source: top.source,
            tags: Vec::new(),
            requires: Vec::new(),
            inputs: Vec::new(),
            vars: None,
            ignore: top.ignore,
            each: top.each,
            each_file: top.each_file,
            steps: steps.value,
            cleanup: top.cleanup,
            leaves_behind: top.leaves_behind,
        })
    }

    fn inputs(&mut self, inputs: &[Spanned<String>], known: &mut BTreeSet<String>) -> Vec<String> {
        let mut out = Vec::new();
        for input in inputs {
            if !is_identifier(&input.value) {
                self.err_at(
                    input.referenced,
                    format!("`{}` is not a variable name", input.value),
                )
                .help = Some(
                    "variable names are letters, digits and `_`, not starting with a digit"
                        .to_owned(),
                );
                continue;
            }
            known.insert(input.value.clone());
            out.push(input.value.clone());
        }
        out
    }

    fn vars(
        &mut self,
        vars: Option<&SpannedMap>,
        known: &mut BTreeSet<String>,
    ) -> Vec<(String, Value)> {
        let Some(vars) = vars else { return Vec::new() };
        let mut out = Vec::new();
        for (name, value) in &vars.value {
            if !is_identifier(name) {
                self.err_at(vars.referenced, format!("`{name}` is not a variable name"));
                continue;
            }
            self.check_refs(vars.referenced, value, known, &format!("variable `{name}`"));
            known.insert(name.clone());
            out.push((name.clone(), value.clone()));
        }
        out
    }

    fn requires(&mut self, list: &[Spanned<String>]) -> Vec<Requirement> {
        let mut out = Vec::new();
        for item in list {
            match parse_requirement(&item.value) {
                Ok(r) => out.push(r),
                Err(e) => self.err_at(item.referenced, e).help = Some(
                    "write an interaction as `Resource.interaction` (e.g. `Appointment.update`) or a feature as `name` or `name=value`".to_owned(),
                ),
            }
        }
        out
    }

    /// The scenario as the model has it: one, or with `each:` one per row (they share
    /// their steps); none after reporting why not.
    fn scenario(
        &mut self,
        doc: ScenarioDoc,
        inh: &Inherited,
        file_known: &BTreeSet<String>,
    ) -> Vec<Scenario> {
        let mut known = file_known.clone();
        let mut inputs = inh.inputs.clone();
        inputs.extend(self.inputs(&doc.inputs, &mut known));
        let mut vars = inh.vars.clone();
        vars.extend(self.vars(doc.vars.as_ref(), &mut known));
        let rows = self.rows(doc.each, doc.each_file, doc.name.referenced);
        if let Some(first) = rows.as_ref().and_then(|r| r.first()) {
            known.extend(first.fields.iter().map(|(name, _)| name.clone()));
        }
        let mut requires = inh.requires.clone();
        requires.extend(self.requires(&doc.requires));
        let mut tags = inh.tags.clone();
        for t in doc.tags {
            if !tags.contains(&t) {
                tags.push(t);
            }
        }
        if doc.steps.is_empty() {
            self.err_at(doc.name.referenced, "a scenario needs at least one step");
        }
        // Sized exactly: a step is ~700 bytes, kept for the whole run. A step with an
        // error is left out (the error is recorded; the file will not run).
        let mut steps = Vec::with_capacity(doc.steps.len());
        for (i, step) in doc.steps.into_iter().enumerate() {
            steps.extend(self.step(step, i + 1, &mut known));
        }
        // Cleanup may read anything a step could have captured; a cleanup step whose
        // variables were never captured is skipped at run time.
        let mut cleanup = Vec::with_capacity(doc.cleanup.len());
        for (i, step) in doc.cleanup.into_iter().enumerate() {
            cleanup.extend(self.step(step, i + 1, &mut known));
        }
        for text in &doc.leaves_behind {
            if let Err(e) = crate::template::referenced_vars(text) {
                self.err_at(
                    doc.name.referenced,
                    format!("`leaves_behind` entry `{text}`: {e}"),
                );
            }
        }
        let name = doc.name.value;
        let base = Scenario {
            id: format!("{}::{}", self.file, name),
            file: self.file.to_owned(),
            line: doc.name.referenced.line(),
            name,
            description: doc.description,
            source: doc.source,
            tags,
            requires,
            inputs,
            vars,
            ignore: doc.ignore,
            row: Vec::new(),
            steps: Arc::new(steps),
            cleanup: Arc::new(cleanup),
            leaves_behind: doc.leaves_behind,
        };
        let Some(rows) = rows else {
            return vec![base];
        };
        rows.into_iter()
            .map(|row| Scenario {
                id: format!("{}[{}]", base.id, row.label),
                name: format!("{}[{}]", base.name, row.label),
                row: row.fields,
                ..base.clone()
            })
            .collect()
    }

    /// The rows of `each:` or `each_file:` (not both): every row a map of variable
    /// names with the same fields as the first, labelled by its `name` field (not a
    /// variable) or its index, no label twice. `None` without rows or when they cannot
    /// be read; problems in rows are reported and the rows still returned.
    fn rows(
        &mut self,
        each: Option<Spanned<Vec<SpannedMap>>>,
        each_file: Option<Spanned<String>>,
        scenario_at: Location,
    ) -> Option<Vec<Row>> {
        let listed: Vec<(Map<String, Value>, Location)> = match (each, each_file) {
            (None, None) => return None,
            (Some(_), Some(file)) => {
                self.err_at(
                    file.referenced,
                    "`each` and `each_file` cannot both be given",
                );
                return None;
            }
            (Some(list), None) => {
                if list.value.is_empty() {
                    self.err_at(list.referenced, "`each` has no rows");
                    return None;
                }
                list.value
                    .into_iter()
                    .map(|row| (row.value, row.referenced))
                    .collect()
            }
            (None, Some(file)) => self
                .rows_from_file(&file)?
                .into_iter()
                .map(|row| (row, file.referenced))
                .collect(),
        };
        if listed.len() > MAX_ROWS {
            self.err_at(
                scenario_at,
                format!(
                    "{} rows: a scenario may have at most {MAX_ROWS}",
                    listed.len()
                ),
            );
            return None;
        }
        // `name` labels a row; the other fields are its variables.
        let variables = |row: &Map<String, Value>| -> BTreeSet<String> {
            row.keys().filter(|k| *k != "name").cloned().collect()
        };
        let first = variables(&listed[0].0);
        let mut labels = HashSet::new();
        let mut rows = Vec::with_capacity(listed.len());
        for (index, (fields, at)) in listed.iter().enumerate() {
            let label = match fields.get("name") {
                Some(Value::String(n)) if !n.trim().is_empty() && !n.contains(['\n', '[', ']']) => {
                    n.clone()
                }
                Some(other) => {
                    self.err_at(
                        *at,
                        format!(
                            "row [{index}]: `name` labels the row in its scenario's id: a one-line string without `[` or `]`, found {}",
                            crate::template::value_to_text(other)
                        ),
                    );
                    continue;
                }
                None => index.to_string(),
            };
            if !labels.insert(label.clone()) {
                self.err_at(
                    *at,
                    format!("row [{index}]: two rows are labelled `{label}`"),
                );
            }
            for name in fields.keys() {
                if !is_identifier(name) {
                    self.err_at(
                        *at,
                        format!("row [{index}]: `{name}` is not a variable name"),
                    );
                }
            }
            let these = variables(fields);
            if these != first {
                let missing: Vec<&str> = first.difference(&these).map(|s| s.as_str()).collect();
                let extra: Vec<&str> = these.difference(&first).map(|s| s.as_str()).collect();
                self.err_at(
                    *at,
                    format!(
                        "row [{index}] has other fields than the first row (missing: {}; extra: {}): every row gives the same variables",
                        if missing.is_empty() { "none".to_owned() } else { missing.join(", ") },
                        if extra.is_empty() { "none".to_owned() } else { extra.join(", ") },
                    ),
                );
            }
            rows.push(Row {
                label,
                fields: fields
                    .iter()
                    .filter(|(k, _)| *k != "name")
                    .map(|(k, v)| (k.clone(), v.clone()))
                    .collect(),
            });
        }
        // Kept after an error too: their fields are still the scenario's variables, so
        // a bad row does not also make every step's use of them "undefined".
        Some(rows)
    }

    /// The rows of an `each_file:`: a CSV file with a header line (every value a
    /// string) or a JSON list of objects.
    fn rows_from_file(&mut self, file: &Spanned<String>) -> Option<Vec<Map<String, Value>>> {
        let path = self.base.join(&file.value);
        let text = match read_text(&path, &file.value, MAX_FILE_BYTES) {
            Ok(text) => {
                self.read.push((path.clone(), sha256_hex(text.as_bytes())));
                text
            }
            Err(d) => {
                self.err_at(file.referenced, format!("`each_file`: {}", d.message));
                return None;
            }
        };
        let lower = file.value.to_ascii_lowercase();
        let parsed: Result<Vec<Map<String, Value>>, String> = if lower.ends_with(".csv") {
            csv_rows(&text)
        } else if lower.ends_with(".json") {
            serde_json::from_str::<Vec<Map<String, Value>>>(&text)
                .map_err(|e| format!("expected a JSON list of objects: {e}"))
        } else {
            Err("the file must end in `.csv` or `.json`".to_owned())
        };
        match parsed {
            Ok(rows) if rows.is_empty() => {
                self.err_at(
                    file.referenced,
                    format!("`each_file` {}: no rows", file.value),
                );
                None
            }
            Ok(rows) => Some(rows),
            Err(e) => {
                self.err_at(file.referenced, format!("`each_file` {}: {e}", file.value));
                None
            }
        }
    }

    fn check_refs(
        &mut self,
        loc: Location,
        value: &Value,
        known: &BTreeSet<String>,
        what: &str,
    ) -> Vec<String> {
        let mut refs = BTreeSet::new();
        if let Err(e) = template::referenced_vars_in(value, &mut refs) {
            // At the broken template's own line, not the first line of its value.
            let (line, column) = match template::first_broken(value) {
                Some(text) => self.find_from(loc, template_line(text)),
                None => (loc.line(), loc.column()),
            };
            self.err_at_position(line, column, format!("template error in {what}: {e}"));
            return Vec::new();
        }
        for name in &refs {
            if !known.contains(name) {
                let help = match did_you_mean(name, known.iter().map(String::as_str)) {
                    Some(s) => format!("did you mean `{s}`?"),
                    None => "define it under `vars:`, capture it in an earlier step, or list it under `inputs:` to take it from the target or --var".to_owned(),
                };
                let (line, column) = self.find_in_template(loc, name);
                self.err_at_position(
                    line,
                    column,
                    format!("undefined variable `{name}` in {what}"),
                )
                .help = Some(help);
            }
        }
        refs.into_iter().collect()
    }

    /// One step of the file as the model has it, or `None` after reporting why not.
    fn step(
        &mut self,
        step: Box<schema::Step>,
        index: usize,
        known: &mut BTreeSet<String>,
    ) -> Option<Step> {
        let step = *step;
        let at = step.request.referenced;
        let schema::Request {
            method,
            path,
            url,
            query,
            headers,
            json,
            json_file,
            json_merge,
            body,
            body_file,
            form,
            content_type,
        } = step.request.value;
        let errors_before = self.errors.len();
        let mut reads = Vec::new();
        let target = self.target(path, url.map(|u| *u), at, known, &mut reads);
        let query = self.pairs(query.map(|q| *q), "`query`", known, &mut reads);
        let headers = self.pairs(headers, "`headers`", known, &mut reads);
        let parts = BodyParts {
            json,
            json_file: json_file.map(|f| *f),
            json_merge: json_merge.map(|m| *m),
            body: body.map(|b| *b),
            body_file: body_file.map(|f| *f),
            form: form.map(|f| *f),
        };
        let body = self.body(parts, at, known, &mut reads);
        let expect = self.expect(step.expect, known, &mut reads);
        let warn = step
            .warn
            .map(|w| Box::new(self.expect(*w, known, &mut reads)));
        let retry = step
            .retry
            .and_then(|r| self.retry(*r, method, known, &mut reads));
        let mut capture = self.captures(step.capture);
        known.extend(capture.iter().map(|(name, _)| name.clone()));
        let name = step.name.map(|n| n.value).unwrap_or_else(|| {
            let what = match &target {
                Some(Target::Path(p) | Target::Url(p)) => p.as_str(),
                None => "",
            };
            format!("step {index}: {} {what}", method.as_str())
        });
        if self.errors.len() > errors_before {
            return None;
        }
        reads.sort();
        reads.dedup();
        // A step lives as long as the run: no spare capacity (serde and `push` grow a
        // Vec to 4 slots for its first item, ~1 KiB for one JSON assertion).
        reads.shrink_to_fit();
        capture.shrink_to_fit();
        Some(Step {
            name,
            line: at.line(),
            request: super::model::Request {
                method,
                target: target?,
                query,
                headers,
                body,
                content_type: content_type.map(|c| c.value),
            },
            expect,
            warn,
            capture,
            reads,
            auth: step.auth.unwrap_or(true),
            retry,
        })
    }

    /// A step's `retry:` with its numbers in range and the method allowed to repeat.
    fn retry(
        &mut self,
        spec: Spanned<schema::RetrySpec>,
        method: schema::Method,
        known: &BTreeSet<String>,
        reads: &mut Vec<String>,
    ) -> Option<Box<Retry>> {
        let at = spec.referenced;
        let spec = spec.value;
        let errors_before = self.errors.len();
        if matches!(method, schema::Method::Post | schema::Method::Patch) && !spec.repeat_unsafe {
            self.err_at(
                at,
                format!(
                    "`retry` sends the request again, and {} is not idempotent: each attempt could create or change something; say `unsafe: true` under `retry` to repeat it anyway",
                    method.as_str()
                ),
            );
        }
        let times = spec.times.value;
        if !(1..=1000).contains(&times) {
            self.err_at(
                spec.times.referenced,
                format!("`times` must be from 1 to 1000, found {times}"),
            );
        }
        let interval = spec.interval.map_or(1.0, |i| {
            if !(0.0..=3600.0).contains(&i.value.0) {
                self.err_at(
                    i.referenced,
                    format!("`interval` must be from 0 to 1 hour, found {} s", i.value.0),
                );
            }
            i.value.0
        });
        let backoff = spec.backoff.map_or(1.0, |b| {
            if !(b.value.is_finite() && (1.0..=10.0).contains(&b.value)) {
                self.err_at(
                    b.referenced,
                    format!("`backoff` must be from 1 to 10, found {}", b.value),
                );
            }
            b.value
        });
        let until = self.expect(spec.until, known, reads);
        if self.errors.len() > errors_before {
            return None;
        }
        Some(Box::new(Retry {
            until,
            times,
            interval: std::time::Duration::from_secs_f64(interval.clamp(0.0, 3600.0)),
            backoff,
            repeats_unsafe: spec.repeat_unsafe
                && matches!(method, schema::Method::Post | schema::Method::Patch),
        }))
    }

    /// `path` (joined to the base URL) or `url`: exactly one.
    fn target(
        &mut self,
        path: Option<Spanned<String>>,
        url: Option<Spanned<String>>,
        at: Location,
        known: &BTreeSet<String>,
        reads: &mut Vec<String>,
    ) -> Option<Target> {
        let (text, what, make): (Spanned<String>, _, fn(String) -> Target) = match (path, url) {
            (Some(p), None) => (p, "`path`", Target::Path),
            (None, Some(u)) => (u, "`url`", Target::Url),
            (Some(_), Some(u)) => {
                self.err_at(u.referenced, "a request has `path` or `url`, not both");
                return None;
            }
            (None, None) => {
                self.err_at(
                    at,
                    "a request needs `path` (joined to the base URL) or `url`",
                );
                return None;
            }
        };
        reads.extend(self.check_refs(
            text.referenced,
            &Value::String(text.value.clone()),
            known,
            what,
        ));
        Some(make(text.value))
    }

    /// A mapping of names to values (query, headers, form), its variables checked.
    fn pairs(
        &mut self,
        map: Option<SpannedMap>,
        what: &str,
        known: &BTreeSet<String>,
        reads: &mut Vec<String>,
    ) -> Vec<(String, Value)> {
        let Some(map) = map else { return Vec::new() };
        reads.extend(self.check_refs(
            map.referenced,
            &Value::Object(map.value.clone()),
            known,
            what,
        ));
        map.value.into_iter().collect()
    }

    /// The request body: at most one of `json`, `json_file`, `body`, `body_file` and
    /// `form`, fixtures read, `json_merge` applied, variables checked.
    fn body(
        &mut self,
        parts: BodyParts,
        at: Location,
        known: &BTreeSet<String>,
        reads: &mut Vec<String>,
    ) -> BodySpec {
        let given: Vec<(&str, Location)> = [
            ("json", parts.json.as_ref().map(|b| b.referenced)),
            ("json_file", parts.json_file.as_ref().map(|b| b.referenced)),
            ("body", parts.body.as_ref().map(|b| b.referenced)),
            ("body_file", parts.body_file.as_ref().map(|b| b.referenced)),
            ("form", parts.form.as_ref().map(|b| b.referenced)),
        ]
        .into_iter()
        .filter_map(|(k, l)| l.map(|l| (k, l)))
        .collect();
        if let [(first, _), (second, second_at), ..] = given.as_slice() {
            let message = format!("a request has one body: `{first}` and `{second}` both given");
            self.err_at(*second_at, message);
        }
        let mut body = if let Some(json) = parts.json {
            BodySpec::Json(json.value)
        } else if let Some(file) = parts.json_file {
            self.json_fixture(&file)
                .map_or(BodySpec::None, BodySpec::Json)
        } else if let Some(raw) = parts.body {
            BodySpec::Raw { text: raw.value }
        } else if let Some(file) = parts.body_file {
            self.fixture(&file)
                .map_or(BodySpec::None, |text| BodySpec::Raw { text })
        } else if let Some(form) = parts.form {
            BodySpec::Form(self.pairs(Some(form), "`form`", known, reads))
        } else {
            BodySpec::None
        };
        if let Some(patch) = parts.json_merge {
            match &mut body {
                BodySpec::Json(doc) => merge_patch(doc, &patch.value),
                _ => {
                    self.err_at(patch.referenced, "`json_merge` patches a `json` or `json_file` body, and this request has none");
                }
            }
        }
        match &body {
            BodySpec::Json(v) => reads.extend(self.check_refs(at, v, known, "the request body")),
            BodySpec::Raw { text } => reads.extend(self.check_refs(
                at,
                &Value::String(text.clone()),
                known,
                "the request body",
            )),
            _ => {}
        }
        body
    }

    /// A `json_file:` fixture parsed, or `None` after reporting why not.
    fn json_fixture(&mut self, file: &Spanned<String>) -> Option<Value> {
        let text = self.fixture(file)?;
        match serde_json::from_str::<Value>(&text) {
            Ok(v) => Some(v),
            Err(e) => {
                self.err_at(
                    file.referenced,
                    format!("fixture `{}` is not JSON: {e}", file.value),
                );
                None
            }
        }
    }

    /// The step's captures, each from exactly one source, into a variable name.
    fn captures(
        &mut self,
        list: Vec<(String, Spanned<schema::Capture>)>,
    ) -> Vec<(String, Capture)> {
        let mut out = Vec::with_capacity(list.len());
        for (name, cap) in list {
            if !is_identifier(&name) {
                self.err_at(cap.referenced, format!("`{name}` is not a variable name"));
            }
            let schema::Capture {
                header,
                json,
                fhirpath,
                regex,
                secret,
            } = cap.value;
            let source = match (header, json, fhirpath) {
                (Some(h), None, None) => CaptureSource::Header(h),
                (None, Some(j), None) => CaptureSource::Json(j),
                (None, None, Some(f)) => CaptureSource::FhirPath(f),
                _ => {
                    self.err_at(
                        cap.referenced,
                        format!(
                            "capture `{name}` takes exactly one of `header`, `json` or `fhirpath`"
                        ),
                    );
                    continue;
                }
            };
            out.push((
                name,
                Capture {
                    source,
                    regex,
                    secret,
                },
            ));
        }
        out
    }

    /// The step's expectations as runtime rules, each with its line; every problem
    /// is reported at its own position.
    fn expect(
        &mut self,
        expect: schema::Expect,
        known: &BTreeSet<String>,
        reads: &mut Vec<String>,
    ) -> Expect {
        let mut headers = Vec::with_capacity(expect.headers.len());
        let mut lower = HashSet::new();
        for (name, rule) in expect.headers {
            if !lower.insert(name.to_ascii_lowercase()) {
                self.err_at(
                    rule.referenced,
                    format!("header `{name}` is expected twice (names are case-insensitive)"),
                );
            }
            let op = header_op(rule.value);
            if let HeaderOp::Equals(text) | HeaderOp::Contains(text) = &op {
                reads.extend(self.check_refs(
                    rule.referenced,
                    &Value::String(text.clone()),
                    known,
                    &format!("header `{name}`"),
                ));
            }
            headers.push(located(rule.referenced, HeaderRule { name, op }));
        }
        let mut json = Vec::with_capacity(expect.json.len());
        for a in expect.json {
            if let Some(rule) = self.json_rule(a.value, a.referenced, known, reads) {
                json.push(located(a.referenced, rule));
            }
        }
        let mut fhirpath = Vec::with_capacity(expect.fhirpath.len());
        for a in expect.fhirpath {
            if let Some(rule) = self.fhirpath_rule(a.value, a.referenced, known, reads) {
                fhirpath.push(located(a.referenced, rule));
            }
        }
        let json_subset = expect.json_subset.map(|sub| {
            reads.extend(self.check_refs(sub.referenced, &sub.value.value, known, "`json_subset`"));
            let schema::JsonSubset { value, ignore } = sub.value;
            Box::new(located(sub.referenced, SubsetRule { value, ignore }))
        });
        if let Some(oo) = &expect.operation_outcome {
            self.check_outcome(oo, known, reads);
        }
        if let Some(b) = &expect.bundle {
            for v in [&b.value.total, &b.value.entries].into_iter().flatten() {
                reads.extend(self.check_refs(b.referenced, v, known, "`bundle`"));
            }
        }
        Expect {
            status: expect.status.map(|s| located(s.referenced, s.value)),
            headers,
            json,
            fhirpath,
            json_subset,
            operation_outcome: expect
                .operation_outcome
                .map(|o| Box::new(located(o.referenced, o.value))),
            bundle: expect
                .bundle
                .map(|b| Box::new(located(b.referenced, b.value))),
            valid: expect
                .valid
                .map(|v| Box::new(located(v.referenced, v.value))),
            request: expect.request.map(|r| {
                let schema::RequestExpect {
                    method,
                    url,
                    headers,
                } = r.value;
                Box::new(located(
                    r.referenced,
                    super::model::RequestRule {
                        method,
                        url: url.map(header_op),
                        headers: headers
                            .into_iter()
                            .map(|(name, rule)| HeaderRule {
                                name,
                                op: header_op(rule),
                            })
                            .collect(),
                    },
                ))
            }),
        }
    }

    /// One JSON assertion as a rule: exactly one operation, or an error at its line.
    fn json_rule(
        &mut self,
        a: schema::JsonAssert,
        at: Location,
        known: &BTreeSet<String>,
        reads: &mut Vec<String>,
    ) -> Option<JsonRule> {
        let schema::JsonAssert {
            path,
            equals,
            exists,
            absent,
            matches,
            contains,
            count,
            type_,
            one_of,
            not_equals,
            none_of,
            not_contains,
            greater_than,
            less_than,
        } = a;
        let ops = AssertOps {
            equals,
            exists,
            absent,
            matches,
            contains,
            count,
            type_: type_.map(JsonOp::Type),
            one_of,
            not_equals,
            none_of,
            not_contains,
            greater_than,
            less_than,
        };
        let op = self.one_op(ops, "a JSON", &path.0, at, known, reads)?;
        Some(JsonRule { path, op })
    }

    /// One FHIRPath assertion as a rule, read like a JSON assertion.
    fn fhirpath_rule(
        &mut self,
        a: schema::FhirPathAssert,
        at: Location,
        known: &BTreeSet<String>,
        reads: &mut Vec<String>,
    ) -> Option<FhirPathRule> {
        let schema::FhirPathAssert {
            expr,
            equals,
            exists,
            absent,
            matches,
            contains,
            count,
            type_,
            one_of,
            not_equals,
            none_of,
            not_contains,
            greater_than,
            less_than,
        } = a;
        let ops = AssertOps {
            equals,
            exists,
            absent,
            matches,
            contains,
            count,
            type_: type_.map(JsonOp::FhirType),
            one_of,
            not_equals,
            none_of,
            not_contains,
            greater_than,
            less_than,
        };
        let op = self.one_op(ops, "a FHIRPath", expr.text(), at, known, reads)?;
        Some(FhirPathRule { expr, op })
    }

    /// The single operation of an assertion (with the variables its values read),
    /// or an error at its line.
    fn one_op(
        &mut self,
        a: AssertOps,
        kind: &str,
        subject: &str,
        at: Location,
        known: &BTreeSet<String>,
        reads: &mut Vec<String>,
    ) -> Option<JsonOp> {
        let mut ops: Vec<JsonOp> = Vec::with_capacity(1);
        ops.extend(a.equals.map(JsonOp::Equals));
        ops.extend(
            a.exists
                .map(|e| if e { JsonOp::Exists } else { JsonOp::Absent }),
        );
        ops.extend(
            a.absent
                .map(|a| if a { JsonOp::Absent } else { JsonOp::Exists }),
        );
        ops.extend(a.matches.map(JsonOp::Matches));
        ops.extend(a.contains.map(JsonOp::Contains));
        ops.extend(a.count.map(JsonOp::Count));
        ops.extend(a.type_);
        ops.extend(a.one_of.map(JsonOp::OneOf));
        ops.extend(a.not_equals.map(JsonOp::NotEquals));
        ops.extend(a.none_of.map(JsonOp::NoneOf));
        ops.extend(a.not_contains.map(JsonOp::NotContains));
        ops.extend(a.greater_than.map(JsonOp::GreaterThan));
        ops.extend(a.less_than.map(JsonOp::LessThan));
        if ops.len() != 1 {
            self.err_at(at, format!("{kind} assertion on `{subject}` takes exactly one of equals, exists, absent, matches, contains, count, type, one_of, not_equals, none_of, not_contains, greater_than, less_than ({} given)", ops.len()))
                .help = Some("write one list item per check".to_owned());
            return None;
        }
        let op = ops.pop()?;
        match &op {
            JsonOp::Equals(v)
            | JsonOp::Contains(v)
            | JsonOp::NotEquals(v)
            | JsonOp::NotContains(v)
            | JsonOp::GreaterThan(v)
            | JsonOp::LessThan(v) => reads.extend(self.check_refs(
                at,
                v,
                known,
                &format!("the assertion on `{subject}`"),
            )),
            JsonOp::OneOf(list) | JsonOp::NoneOf(list) => {
                reads.extend(self.check_refs(at, &Value::Array(list.clone()), known, "`one_of`"))
            }
            _ => {}
        }
        Some(op)
    }

    fn check_outcome(
        &mut self,
        oo: &Spanned<schema::OutcomeExpect>,
        known: &BTreeSet<String>,
        reads: &mut Vec<String>,
    ) {
        let o = &oo.value;
        if o.severity.is_none() && o.code.is_none() && o.text.is_none() && o.text_contains.is_none()
        {
            self.err_at(
                oo.referenced,
                "`operation_outcome` needs at least one of severity, code, text, text_contains",
            )
            .help = Some(
                "write `operation_outcome: { severity: error }` to accept any error outcome"
                    .to_owned(),
            );
        }
        for t in [&o.text, &o.text_contains].into_iter().flatten() {
            reads.extend(self.check_refs(
                oo.referenced,
                &Value::String(t.clone()),
                known,
                "`operation_outcome`",
            ));
        }
    }

    fn fixture(&mut self, file: &Spanned<String>) -> Option<String> {
        let path = self.base.join(&file.value);
        match read_text(&path, &file.value, MAX_FILE_BYTES) {
            Ok(text) => {
                let fixture = FixtureFile {
                    display: display_path(&path),
                    sha256: sha256_hex(text.as_bytes()),
                };
                self.read.push((path.clone(), fixture.sha256.clone()));
                if !self.fixtures.contains(&fixture) {
                    self.fixtures.push(fixture);
                }
                Some(text)
            }
            Err(d) => {
                self.err_at(
                    file.referenced,
                    format!("fixture `{}`: {}", display_path(&path), d.message),
                );
                None
            }
        }
    }
}

/// The byte index of the `chars`th character of `line` (its end if shorter).
fn floor_char(line: &str, chars: usize) -> usize {
    line.char_indices()
        .nth(chars)
        .map_or(line.len(), |(i, _)| i)
}

/// The line of a template text to look for in the file: its first line with a `{{`
/// or `{%`, from that mark on (YAML may quote or fold what comes before).
fn template_line(text: &str) -> &str {
    let line = text
        .lines()
        .find(|l| l.contains("{{") || l.contains("{%"))
        .unwrap_or(text);
    let start = [line.find("{{"), line.find("{%")]
        .into_iter()
        .flatten()
        .min()
        .unwrap_or(0);
    let rest = &line[start..];
    // The mark and what follows on the line, short enough to match as written.
    &rest[..floor_char(rest, 24)]
}

fn located<T>(loc: Location, value: T) -> Located<T> {
    Located {
        line: loc.line(),
        value,
    }
}

/// A header expectation as its one operation (the schema lets through exactly one).
/// The operations an assertion was given (at most one is allowed), whichever
/// language selects the values.
struct AssertOps {
    equals: Option<Value>,
    exists: Option<bool>,
    absent: Option<bool>,
    matches: Option<schema::Pattern>,
    contains: Option<Value>,
    count: Option<usize>,
    type_: Option<JsonOp>,
    one_of: Option<Vec<Value>>,
    not_equals: Option<Value>,
    none_of: Option<Vec<Value>>,
    not_contains: Option<Value>,
    greater_than: Option<Value>,
    less_than: Option<Value>,
}

fn header_op(rule: schema::HeaderExpect) -> HeaderOp {
    let schema::HeaderExpect {
        equals,
        matches,
        contains,
        present,
        absent,
    } = rule;
    match (equals, matches, contains, present.or(absent.map(|a| !a))) {
        (Some(e), ..) => HeaderOp::Equals(e),
        (_, Some(m), ..) => HeaderOp::Matches(m),
        (_, _, Some(c), _) => HeaderOp::Contains(c),
        (.., Some(false)) => HeaderOp::Absent,
        _ => HeaderOp::Present,
    }
}

fn is_identifier(name: &str) -> bool {
    let mut chars = name.chars();
    chars
        .next()
        .is_some_and(|c| c.is_ascii_alphabetic() || c == '_')
        && chars.all(|c| c.is_ascii_alphanumeric() || c == '_')
}

fn parse_requirement(text: &str) -> Result<Requirement, String> {
    let text = text.trim();
    if let Some((resource, interaction)) = text.split_once('.')
        && resource
            .chars()
            .next()
            .is_some_and(|c| c.is_ascii_uppercase())
    {
        if !resource.chars().all(|c| c.is_ascii_alphanumeric()) {
            return Err(format!("`{resource}` is not a resource type"));
        }
        let interaction = if interaction == "search" {
            "search-type"
        } else {
            interaction
        };
        if !INTERACTIONS.contains(&interaction) {
            let help = did_you_mean(interaction, INTERACTIONS.iter().copied())
                .map(|s| format!(" (did you mean `{s}`?)"))
                .unwrap_or_default();
            return Err(format!(
                "unknown interaction `{interaction}` in `{text}`{help}; expected one of {}",
                INTERACTIONS.join(", ")
            ));
        }
        return Ok(Requirement::Interaction {
            resource: resource.to_owned(),
            interaction: interaction.to_owned(),
        });
    }
    let (name, value) = match text.split_once('=') {
        Some((n, v)) => (n.trim(), Some(v.trim().to_owned())),
        None => (text, None),
    };
    if !is_identifier(name) || value.as_deref().is_some_and(str::is_empty) {
        return Err(format!("`{text}` is neither an interaction nor a feature"));
    }
    Ok(Requirement::Feature {
        name: name.to_owned(),
        value,
    })
}

/// RFC 7396 JSON merge patch: objects merge, `null` removes a member, anything else replaces.
pub fn merge_patch(target: &mut Value, patch: &Value) {
    match (target, patch) {
        (Value::Object(doc), Value::Object(p)) => {
            for (k, v) in p {
                if v.is_null() {
                    doc.remove(k);
                } else {
                    merge_patch(doc.entry(k.clone()).or_insert(Value::Null), v);
                }
            }
        }
        (target, patch) => {
            let mut replacement = patch.clone();
            if let Value::Object(_) = replacement {
                let mut cleaned = Value::Object(serde_json::Map::new());
                merge_patch(&mut cleaned, &replacement);
                replacement = cleaned;
            }
            *target = replacement;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn files_load_in_parallel_but_results_and_errors_keep_file_order() {
        let dir = tempfile::tempdir().unwrap();
        let mut expected_ids = Vec::new();
        let mut expected_errors = Vec::new();
        for i in 0..24 {
            let name = format!("f{i:02}.yaml");
            let text = if i % 5 == 3 {
                expected_errors.push(name.clone());
                "name: broken\nstepz: []\n".to_owned()
            } else {
                expected_ids.push(format!("{name}::scenario {i}"));
                format!(
                    "name: scenario {i}\nsteps:\n  - request: {{ method: GET, path: /metadata }}\n"
                )
            };
            std::fs::write(dir.path().join(&name), text).unwrap();
        }
        let opts = LoadOptions::default();
        let errors = load(&[dir.path().to_path_buf()], &opts).unwrap_err();
        let files: Vec<String> = errors
            .iter()
            .map(|e| e.file.rsplit('/').next().unwrap().to_owned())
            .collect();
        assert_eq!(files, expected_errors);
        for name in &expected_errors {
            std::fs::remove_file(dir.path().join(name)).unwrap();
        }
        let suites = load(&[dir.path().to_path_buf()], &opts).unwrap();
        let ids: Vec<String> = suites
            .iter()
            .flat_map(|s| &s.scenarios)
            .map(|s| s.id.rsplit('/').next().unwrap().to_owned())
            .collect();
        assert_eq!(ids, expected_ids);
    }
}
