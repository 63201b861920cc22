//! The validated scenario model the runner executes: fixtures read, bodies merged,
//! requirements parsed. Built only by [`super::load`].

use std::sync::Arc;

use serde::{Deserialize, Serialize};
use serde_json::Value;

pub use super::schema::{
    BundleExpect as BundleSpec, FhirPathExpr, JsonPathExpr, JsonType, Method,
    OutcomeExpect as OutcomeSpec, Pattern, StatusExpect as StatusOp, ValidExpect as ValidSpec,
};

/// One scenario file (one JUnit `<testsuite>`).
#[derive(Debug)]
pub struct SuiteFile {
    /// The path as shown to users and in reports (forward slashes).
    pub display: String,
    /// SHA-256 (lowercase hex) of the exact bytes the scenarios were loaded from.
    pub sha256: String,
    /// The fixture files its requests read (`json_file`, `body_file`), each once.
    pub fixtures: Vec<FixtureFile>,
    pub scenarios: Vec<Scenario>,
    /// For a file that is a TestScript: where each step and check came from, for its
    /// TestReport.
    pub testscript: Option<Arc<ScriptOrigin>>,
}

/// A TestScript's elements behind the scenarios it was translated into.
#[derive(Debug, Default)]
pub struct ScriptOrigin {
    pub name: String,
    pub url: Option<String>,
    /// The `test`s, in order: their names, as the scenarios have them.
    pub tests: Vec<String>,
    /// By the step's line in the translated file (unique in the file).
    pub steps: std::collections::BTreeMap<u64, StepOrigin>,
}

/// Which part of a TestScript a step belongs to.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Section {
    Setup,
    /// The test of this index.
    Test(usize),
    Teardown,
}

/// One operation of a TestScript (or an autocreate/autodelete) and its asserts.
#[derive(Debug, Clone)]
pub struct StepOrigin {
    pub section: Section,
    /// The scenario (test) the step was run in.
    pub scenario: usize,
    /// `TestScript.setup.action[0].operation`, or the fixture for an autocreate.
    pub operation: String,
    pub asserts: Vec<AssertOrigin>,
}

/// One assert: the lines of the expectations it became (a check's `line`).
#[derive(Debug, Clone)]
pub struct AssertOrigin {
    pub path: String,
    pub lines: Vec<u64>,
    pub warning: bool,
}

/// A fixture as read at load time.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct FixtureFile {
    /// The path as shown to users: the scenario file's folder joined with the
    /// fixture's path (forward slashes).
    pub display: String,
    pub sha256: String,
}

/// Clone is cheap where it matters: the steps are shared.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Scenario {
    /// `file::name`, unique within a run; what `--list` prints and `--exact` matches.
    pub id: String,
    pub file: String,
    pub name: String,
    pub line: u64,
    pub description: Option<String>,
    pub source: Option<String>,
    pub tags: Vec<String>,
    pub requires: Vec<Requirement>,
    /// Variables the scenario takes from the target or `--var`.
    pub inputs: Vec<String>,
    /// Defaults, evaluated in order (file-level first); target and `--var` values win.
    pub vars: Vec<(String, Value)>,
    pub ignore: Option<String>,
    /// With `each:`, this row's fields: variables that win over every other.
    pub row: Vec<(String, Value)>,
    /// Shared by the scenarios of one `each:` (one per row); the model cache keeps
    /// them once per file (`super::cache`).
    #[serde(skip)]
    pub steps: Arc<Vec<Step>>,
    #[serde(skip)]
    pub cleanup: Arc<Vec<Step>>,
    /// Templates of the records its cleanup cannot remove (`leaves_behind`).
    pub leaves_behind: Vec<String>,
}

impl Scenario {
    /// Every `valid` of its steps and cleanup steps (`expect` and `retry.until`), with
    /// its line.
    pub fn valid_rules(&self) -> impl Iterator<Item = &Located<ValidSpec>> {
        self.steps.iter().chain(self.cleanup.iter()).flat_map(|s| {
            let until = s.retry.as_ref().and_then(|r| r.until.valid.as_deref());
            let warn = s.warn.as_ref().and_then(|w| w.valid.as_deref());
            s.expect
                .valid
                .as_deref()
                .into_iter()
                .chain(until)
                .chain(warn)
        })
    }

    /// True when any step (cleanup included) may change server state: any POST, PUT,
    /// PATCH or DELETE other than a `_search`.
    pub fn writes(&self) -> bool {
        self.steps
            .iter()
            .chain(self.cleanup.iter())
            .any(Step::writes)
    }
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub enum Requirement {
    /// `Appointment.update`: the CapabilityStatement must declare it.
    Interaction {
        resource: String,
        interaction: String,
    },
    /// `double_booking=forbidden` or `versioning`: the target must declare it.
    Feature { name: String, value: Option<String> },
}

impl std::fmt::Display for Requirement {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Requirement::Interaction {
                resource,
                interaction,
            } => write!(f, "{resource}.{interaction}"),
            Requirement::Feature {
                name,
                value: Some(v),
            } => write!(f, "{name}={v}"),
            Requirement::Feature { name, value: None } => write!(f, "{name}"),
        }
    }
}

/// A value with the line of the scenario file it was written on: where a failure of
/// it points.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Located<T> {
    pub line: u64,
    pub value: T,
}

/// What a step expects of the response, checked in this order. A new kind of
/// expectation is a new member here and a new variant of its own op.
#[derive(Debug, Default, Serialize, Deserialize)]
pub struct Expect {
    pub status: Option<Located<StatusOp>>,
    /// One rule per header name (names case-insensitive), sorted.
    pub headers: Vec<Located<HeaderRule>>,
    pub json: Vec<Located<JsonRule>>,
    pub fhirpath: Vec<Located<FhirPathRule>>,
    // Boxed: most steps have none of these, and a step's size is paid once per step
    // of a suite for as long as it runs.
    pub json_subset: Option<Box<Located<SubsetRule>>>,
    pub operation_outcome: Option<Box<Located<OutcomeSpec>>>,
    pub bundle: Option<Box<Located<BundleSpec>>>,
    /// `valid`: judged on what FHIR validation found (see [`crate::validation`]).
    pub valid: Option<Box<Located<ValidSpec>>>,
    /// `request`: what was sent (TestScript's request asserts).
    pub request: Option<Box<Located<RequestRule>>>,
}

/// `expect.request`: the method, URL and headers the request was sent with.
#[derive(Debug, Serialize, Deserialize)]
pub struct RequestRule {
    pub method: Option<String>,
    pub url: Option<HeaderOp>,
    pub headers: Vec<HeaderRule>,
}

#[derive(Debug, Serialize, Deserialize)]
pub struct HeaderRule {
    pub name: String,
    pub op: HeaderOp,
}

/// One check of a response header.
#[derive(Debug, Serialize, Deserialize)]
pub enum HeaderOp {
    Equals(String),
    Matches(Pattern),
    Contains(String),
    Present,
    Absent,
}

#[derive(Debug, Serialize, Deserialize)]
pub struct JsonRule {
    #[serde(serialize_with = "path_text")]
    pub path: JsonPathExpr,
    pub op: JsonOp,
}

/// One check of the items a FHIRPath expression yields on the body: the operations
/// of [`JsonOp`], with `type` naming a FHIR or System type ([`JsonOp::FhirType`]).
#[derive(Debug, Serialize, Deserialize)]
pub struct FhirPathRule {
    pub expr: FhirPathExpr,
    pub op: JsonOp,
}

/// One check of the nodes a JSONPath selects in the body (or of the items a
/// FHIRPath expression yields).
#[derive(Debug, Serialize, Deserialize)]
pub enum JsonOp {
    Equals(Value),
    Exists,
    Absent,
    Matches(Pattern),
    Contains(Value),
    Count(usize),
    Type(JsonType),
    /// FHIRPath only: every item has this type (`HumanName`, `FHIR.date`).
    FhirType(String),
    OneOf(Vec<Value>),
    NotEquals(Value),
    NoneOf(Vec<Value>),
    NotContains(Value),
    GreaterThan(Value),
    LessThan(Value),
}

/// `json_subset`: the expected document is contained in the body, once the `ignore`
/// paths are removed from both.
#[derive(Debug, Serialize, Deserialize)]
pub struct SubsetRule {
    pub value: Value,
    #[serde(serialize_with = "path_texts")]
    pub ignore: Vec<JsonPathExpr>,
}

/// Where a captured value comes from.
#[derive(Debug, Serialize, Deserialize)]
pub enum CaptureSource {
    Header(String),
    Json(#[serde(serialize_with = "path_text")] JsonPathExpr),
    /// The first item the expression yields.
    FhirPath(FhirPathExpr),
}

#[derive(Debug, Serialize, Deserialize)]
pub struct Capture {
    pub source: CaptureSource,
    /// The first group (or the whole match) of this pattern in the value.
    pub regex: Option<Pattern>,
    /// The captured value is masked in every output (e.g. a token).
    pub secret: bool,
}

#[derive(Debug, Serialize, Deserialize)]
pub struct Step {
    pub name: String,
    pub line: u64,
    pub request: Request,
    pub expect: Expect,
    /// `warn:`: judged like `expect`, its failures reported as warnings only.
    pub warn: Option<Box<Expect>>,
    pub capture: Vec<(String, Capture)>,
    /// Variables the step reads (checked at load; used to skip a cleanup step whose
    /// captures never happened).
    pub reads: Vec<String>,
    /// Whether the target's credentials go with the request.
    pub auth: bool,
    /// Polling: the request is sent again until these expectations hold.
    pub retry: Option<Box<Retry>>,
}

/// A step's `retry:`, checked at load.
#[derive(Debug, Serialize, Deserialize)]
pub struct Retry {
    pub until: Expect,
    /// Attempts in all, at least 1.
    pub times: u32,
    pub interval: std::time::Duration,
    /// At least 1.
    pub backoff: f64,
    /// A POST or PATCH repeated because the file says `unsafe: true`.
    pub repeats_unsafe: bool,
}

impl Step {
    pub fn writes(&self) -> bool {
        let r = &self.request;
        let search = match &r.target {
            Target::Path(p) | Target::Url(p) => {
                p.split('?').next().unwrap_or("").ends_with("/_search")
            }
        };
        matches!(
            r.method,
            Method::Post | Method::Put | Method::Patch | Method::Delete
        ) && !search
    }
}

#[derive(Debug, Serialize, Deserialize)]
pub struct Request {
    pub method: Method,
    pub target: Target,
    pub query: Vec<(String, Value)>,
    pub headers: Vec<(String, Value)>,
    pub body: BodySpec,
    /// Overrides the body's default content type.
    pub content_type: Option<String>,
}

#[derive(Debug, Serialize, Deserialize)]
pub enum Target {
    Path(String),
    Url(String),
}

/// The request body as the step gives it (templates not yet rendered).
#[derive(Debug, Serialize, Deserialize)]
pub enum BodySpec {
    None,
    Json(Value),
    Raw { text: String },
    Form(Vec<(String, Value)>),
}

/// A JSONPath as the model cache keeps it: its text.
fn path_text<S: serde::Serializer>(path: &JsonPathExpr, serializer: S) -> Result<S::Ok, S::Error> {
    serializer.serialize_str(&path.0)
}

fn path_texts<S: serde::Serializer>(
    paths: &[JsonPathExpr],
    serializer: S,
) -> Result<S::Ok, S::Error> {
    serializer.collect_seq(paths.iter().map(|p| &p.0))
}

/// The content type a body is sent with unless the step says otherwise.
pub const FHIR_JSON: &str = "application/fhir+json";
