//! The on-disk scenario format: what a YAML file may say, as serde types.
//!
//! Every struct denies unknown keys. Values that can be checked without a server
//! (regexes, JSONPath queries, status patterns, methods) are checked while
//! deserializing, so a bad one is reported at its own `file:line:col`.
//! Semantic checks that need the whole file (variables, fixtures) live in
//! [`super::validate`].

use std::collections::{BTreeMap, HashMap};
use std::fmt;
use std::sync::{Arc, Mutex};

use jsonpath_rust::parser::model::JpQuery;

pub use crate::fhirpath_expr::FhirPathExpr;
pub use crate::jsonpath::JsonPathExpr;

use schemars::JsonSchema;
use serde::de::{self, Deserializer, MapAccess, Visitor};
use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};
use serde_saphyr::Spanned;

/// A YAML mapping of names to values, in file order, with the mapping's location.
pub type SpannedMap = Spanned<Map<String, Value>>;

/// A scenario file: either one scenario at top level (`name` + `steps`), or
/// several under `scenarios:`. Top-level `vars`, `tags`, `requires` and
/// `inputs` apply to every scenario of the file.
#[derive(Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
#[schemars(
    title = "fhirconf scenario file",
    description = "One scenario (`name` + `steps`) or several under `scenarios:`.",
    transform = file_rules
)]
pub struct FileDoc {
    /// required; unique within the file
    #[schemars(with = "Option<String>")]
    pub name: Option<Spanned<String>>,
    /// free text
    pub description: Option<String>,
    /// the rule it enforces (an id from `scenarios/RULES.md`, optionally with the quoted sentence)
    pub source: Option<String>,
    /// for `--tags` / `--exclude-tags`; built-in suites tag the API family, the resource, and `writes`
    #[serde(default)]
    pub tags: Vec<String>,
    /// interactions (`Appointment.update`, checked against the server's CapabilityStatement) and features (`double_booking=forbidden`, `versioning`) the target must declare; otherwise the scenario is skipped with the reason
    #[serde(default)]
    #[schemars(with = "Vec<Requirement>")]
    pub requires: Vec<Spanned<String>>,
    /// variables the scenario takes from the target or `--var`; a missing one skips the scenario with the reason
    #[serde(default)]
    #[schemars(with = "Vec<VarName>")]
    pub inputs: Vec<Spanned<String>>,
    /// variables with default values, evaluated in order; `--var` wins
    #[schemars(with = "Option<Vars>")]
    pub vars: Option<SpannedMap>,
    /// a reason; the scenario is skipped unless `--include-ignored`
    pub ignore: Option<String>,
    /// rows: the scenario runs once per row, each run its own test case `file::name[label]` (the row's `name`, or its index from 0); the row's other fields are variables that win over all others; every row gives the same fields (see below)
    #[schemars(with = "Option<Rows>")]
    pub each: Option<Spanned<Vec<SpannedMap>>>,
    /// rows from a file beside the scenario: CSV with a header line (values are strings) or JSON (a list of objects); at most 10,000 rows
    #[schemars(with = "Option<String>")]
    pub each_file: Option<Spanned<String>>,
    /// requests in order; the first failing step stops the scenario
    #[schemars(with = "Option<Steps>")]
    pub steps: Option<Spanned<Vec<Box<Step>>>>,
    /// steps that always run afterwards, even after a failure; one whose variables were never captured is skipped
    #[serde(default)]
    pub cleanup: Vec<Box<Step>>,
    /// records the scenario leaves on the server because its cleanup cannot remove them (the server has no delete), as templates (`Patient/{{ id }}`) rendered after the cleanup; each whose variables were captured is listed in the run's summary and in run.json
    #[serde(default)]
    pub leaves_behind: Vec<String>,
    /// several scenarios in one file, instead of `name` and `steps`; they share the file's `vars`, `tags`, `requires` and `inputs`
    #[schemars(with = "Option<Scenarios>")]
    pub scenarios: Option<Spanned<Vec<ScenarioDoc>>>,
}

/// One scenario inside a `scenarios:` list.
#[derive(Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
#[schemars(transform = scenario_rules)]
pub struct ScenarioDoc {
    /// required; unique within the file
    #[schemars(with = "String")]
    pub name: Spanned<String>,
    /// free text
    pub description: Option<String>,
    /// the rule it enforces (an id from `scenarios/RULES.md`, optionally with the quoted sentence)
    pub source: Option<String>,
    /// for `--tags` / `--exclude-tags`; built-in suites tag the API family, the resource, and `writes`
    #[serde(default)]
    pub tags: Vec<String>,
    /// interactions (`Appointment.update`, checked against the server's CapabilityStatement) and features (`double_booking=forbidden`, `versioning`) the target must declare; otherwise the scenario is skipped with the reason
    #[serde(default)]
    #[schemars(with = "Vec<Requirement>")]
    pub requires: Vec<Spanned<String>>,
    /// variables the scenario takes from the target or `--var`; a missing one skips the scenario with the reason
    #[serde(default)]
    #[schemars(with = "Vec<VarName>")]
    pub inputs: Vec<Spanned<String>>,
    /// variables with default values, evaluated in order; `--var` wins
    #[schemars(with = "Option<Vars>")]
    pub vars: Option<SpannedMap>,
    /// a reason; the scenario is skipped unless `--include-ignored`
    pub ignore: Option<String>,
    /// rows: the scenario runs once per row, each run its own test case `file::name[label]` (the row's `name`, or its index from 0); the row's other fields are variables that win over all others; every row gives the same fields (see below)
    #[schemars(with = "Option<Rows>")]
    pub each: Option<Spanned<Vec<SpannedMap>>>,
    /// rows from a file beside the scenario: CSV with a header line (values are strings) or JSON (a list of objects); at most 10,000 rows
    #[schemars(with = "Option<String>")]
    pub each_file: Option<Spanned<String>>,
    // Boxed, so each step's memory is freed as the loader turns it into the model
    // (a `Vec<Step>` would hold all of them, ~1.4 KiB each, until the last).
    /// requests in order; the first failing step stops the scenario
    #[schemars(with = "Steps")]
    pub steps: Vec<Box<Step>>,
    /// steps that always run afterwards, even after a failure; one whose variables were never captured is skipped
    #[serde(default)]
    pub cleanup: Vec<Box<Step>>,
    /// records the scenario leaves on the server because its cleanup cannot remove them (the server has no delete), as templates (`Patient/{{ id }}`) rendered after the cleanup; each whose variables were captured is listed in the run's summary and in run.json
    #[serde(default)]
    pub leaves_behind: Vec<String>,
}

/// One request and what its response must be.
#[derive(Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct Step {
    /// the step's name in reports (default: `step N: METHOD path`)
    #[schemars(with = "Option<String>")]
    pub name: Option<Spanned<String>>,
    /// the request to send
    #[schemars(with = "Request")]
    pub request: Spanned<Request>,
    /// what the response must be; every expectation is checked
    #[serde(default)]
    pub expect: Expect,
    /// expectations like `expect`, whose failures are reported as warnings and never fail the step (TestScript's `warningOnly`)
    pub warn: Option<Box<Expect>>,
    // By name, sorted.
    /// values from the response, by variable name, for later steps
    #[serde(default, deserialize_with = "sorted_pairs")]
    #[schemars(with = "Captures")]
    pub capture: Vec<(String, Spanned<Capture>)>,
    /// `false`: send this request without the target's credentials
    pub auth: Option<bool>,
    /// send the request again until `until` holds (polling an asynchronous server): `{ until, times, interval, backoff, unsafe }`
    #[schemars(with = "Option<RetrySpec>")]
    pub retry: Option<Box<Spanned<RetrySpec>>>,
}

/// `retry:` on a step: send the request again until `until` holds, at most `times`
/// attempts in all, waiting `interval` (times `backoff` after each attempt) between.
// A POST or PATCH needs `unsafe: true`: the loader checks it, with the request beside.
#[derive(Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct RetrySpec {
    /// stop polling once this holds (the same keys as `expect`)
    pub until: Expect,
    /// attempts in all, the first included (1 to 1000)
    #[schemars(with = "u32", range(min = 1, max = 1000))]
    pub times: Spanned<u32>,
    /// the first wait: 250ms, 2s, 1m or seconds [default 1s]
    #[schemars(with = "Option<DurationText>")]
    pub interval: Option<Spanned<DurationText>>,
    /// each wait is the one before times this (1 to 10) [default 1]
    #[schemars(with = "Option<f64>", range(min = 1.0, max = 10.0))]
    pub backoff: Option<Spanned<f64>>,
    /// also repeat a POST or PATCH, which are not idempotent; the reports mark the step `non-idempotent, repeated`
    #[serde(default, rename = "unsafe")]
    pub repeat_unsafe: bool,
}

/// A duration as written: `250ms`, `2s`, `1.5s`, `1m`, or a bare number of seconds.
#[derive(Debug, Clone, Copy)]
pub struct DurationText(pub f64);

impl<'de> Deserialize<'de> for DurationText {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let value = Value::deserialize(deserializer)?;
        let secs = match &value {
            Value::Number(n) => n.as_f64(),
            Value::String(text) => {
                let text = text.trim();
                let (number, scale) = if let Some(n) = text.strip_suffix("ms") {
                    (n, 0.001)
                } else if let Some(n) = text.strip_suffix('s') {
                    (n, 1.0)
                } else if let Some(n) = text.strip_suffix('m') {
                    (n, 60.0)
                } else {
                    (text, 1.0)
                };
                number.trim().parse::<f64>().ok().map(|n| n * scale)
            }
            _ => None,
        };
        match secs {
            Some(s) if s.is_finite() => Ok(DurationText(s)),
            _ => Err(de::Error::custom(format!(
                "expected a duration such as `500ms`, `2s` or `1m`, found `{}`",
                crate::template::value_to_text(&value)
            ))),
        }
    }
}

/// The HTTP method, in capitals.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, Serialize, JsonSchema)]
#[serde(rename_all = "UPPERCASE")]
pub enum Method {
    Get,
    Post,
    Put,
    Patch,
    Delete,
    Head,
    Options,
}

impl Method {
    pub fn as_str(self) -> &'static str {
        match self {
            Method::Get => "GET",
            Method::Post => "POST",
            Method::Put => "PUT",
            Method::Patch => "PATCH",
            Method::Delete => "DELETE",
            Method::Head => "HEAD",
            Method::Options => "OPTIONS",
        }
    }
}

/// An HTTP request: `method`, `path` or `url`, and at most one body.
#[derive(Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
#[schemars(transform = request_rules)]
pub struct Request {
    // The members most requests leave out are boxed: every `Option<Spanned<_>>` is
    // ~80 bytes inline, and the whole file is in memory while it is read.
    /// GET POST PUT PATCH DELETE HEAD OPTIONS
    pub method: Method,
    /// joined to the base URL (a request has `path` or `url`)
    #[schemars(with = "Option<String>")]
    pub path: Option<Spanned<String>>,
    /// an absolute URL, used as is (instead of `path`)
    #[schemars(with = "Option<String>")]
    pub url: Option<Box<Spanned<String>>>,
    /// in order; a list repeats the parameter
    #[schemars(with = "Option<Map<String, Value>>")]
    pub query: Option<Box<SpannedMap>>,
    /// sent with the request; a step's own header wins over the target's
    #[schemars(with = "Option<Map<String, Value>>")]
    pub headers: Option<SpannedMap>,
    /// sent as application/fhir+json (at most one body per request)
    #[schemars(with = "Option<Value>")]
    pub json: Option<Spanned<Value>>,
    /// a JSON fixture, relative to this file
    #[schemars(with = "Option<String>")]
    pub json_file: Option<Box<Spanned<String>>>,
    /// RFC 7396 merge patch applied to `json` or `json_file`: null deletes a member
    #[schemars(with = "Option<Value>")]
    pub json_merge: Option<Box<Spanned<Value>>>,
    /// raw text, sent as is
    #[schemars(with = "Option<String>")]
    pub body: Option<Box<Spanned<String>>>,
    /// a raw body read from a file, relative to this file
    #[schemars(with = "Option<String>")]
    pub body_file: Option<Box<Spanned<String>>>,
    /// application/x-www-form-urlencoded
    #[schemars(with = "Option<Map<String, Value>>")]
    pub form: Option<Box<SpannedMap>>,
    /// overrides the default content type of any body
    #[schemars(with = "Option<String>")]
    pub content_type: Option<Box<Spanned<String>>>,
}

/// What the response must be.
#[derive(Debug, Default, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct Expect {
    /// Status: an exact code, a class, or a list.
    #[schemars(with = "Option<StatusExpect>")]
    pub status: Option<Spanned<StatusExpect>>,
    // By name, sorted, one rule per name.
    /// Headers (names are case-insensitive; a plain string means `equals`)
    #[serde(default, deserialize_with = "sorted_pairs")]
    #[schemars(with = "BTreeMap<String, HeaderExpect>")]
    pub headers: Vec<(String, Spanned<HeaderExpect>)>,
    /// JSONPath (RFC 9535) assertions, one operation each
    #[serde(default, deserialize_with = "exact_vec")]
    #[schemars(with = "Vec<JsonAssert>")]
    pub json: Vec<Spanned<JsonAssert>>,
    /// FHIRPath assertions, one operation each (as for `json`; `type` names a FHIR or System type)
    #[serde(default, deserialize_with = "exact_vec")]
    #[schemars(with = "Vec<FhirPathAssert>")]
    pub fhirpath: Vec<Spanned<FhirPathAssert>>,
    // Boxed: most steps have none of these, and a step's size is paid once per step
    // of a suite for as long as it runs.
    /// Subset: the expected document must be contained in the response (extra members and extra array items are allowed; array order is kept). `ignore` removes paths from both sides first. A mismatch shows a unified diff.
    #[schemars(with = "Option<JsonSubset>")]
    pub json_subset: Option<Box<Spanned<JsonSubset>>>,
    /// an OperationOutcome with at least one issue matching every given field (`text` is compared with `details.text` or `diagnostics`)
    #[schemars(with = "Option<OutcomeExpect>")]
    pub operation_outcome: Option<Box<Spanned<OutcomeExpect>>>,
    /// the shape of a Bundle
    #[schemars(with = "Option<BundleExpect>")]
    pub bundle: Option<Box<Spanned<BundleExpect>>>,
    /// the request fhirconf sent, once its templates were rendered (TestScript's `direction: request` asserts): its method, its URL (a string means `equals`) and its headers
    #[schemars(with = "Option<RequestExpect>")]
    pub request: Option<Box<Spanned<RequestExpect>>>,
    /// the body is valid FHIR R4 (a Bundle entry by entry), and conforms to the profiles its `meta.profile` claims: `true`, or `{ profile, severity }` to name a profile too. Needs a build with validation
    #[schemars(with = "Option<ValidExpect>")]
    pub valid: Option<Box<Spanned<ValidExpect>>>,
}

/// A list without spare capacity: serde grows a `Vec` to 4 slots for its first item
/// (~1 KiB for one JSON assertion), and every step of a file is held at once.
fn exact_vec<'de, D, T>(deserializer: D) -> Result<Vec<T>, D::Error>
where
    D: Deserializer<'de>,
    T: Deserialize<'de>,
{
    let mut items = Vec::<T>::deserialize(deserializer)?;
    items.shrink_to_fit();
    Ok(items)
}

/// A mapping read into a sorted `Vec` of pairs (a later duplicate replaces an earlier
/// one, as in a map). A `BTreeMap` with one entry costs a whole B-tree node, 11 slots
/// (~2 KiB for header rules), for every step of a suite.
fn sorted_pairs<'de, D, V>(deserializer: D) -> Result<Vec<(String, V)>, D::Error>
where
    D: Deserializer<'de>,
    V: Deserialize<'de>,
{
    struct Pairs<V>(std::marker::PhantomData<V>);
    impl<'de, V: Deserialize<'de>> Visitor<'de> for Pairs<V> {
        type Value = Vec<(String, V)>;
        fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
            f.write_str("a mapping")
        }
        fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Self::Value, A::Error> {
            let mut pairs: Vec<(String, V)> = Vec::with_capacity(map.size_hint().unwrap_or(1));
            while let Some((key, value)) = map.next_entry::<String, V>()? {
                match pairs.binary_search_by(|(k, _)| k.cmp(&key)) {
                    Ok(at) => pairs[at].1 = value,
                    Err(at) => pairs.insert(at, (key, value)),
                }
            }
            pairs.shrink_to_fit();
            Ok(pairs)
        }
    }
    deserializer.deserialize_map(Pairs(std::marker::PhantomData))
}

/// `status: 201`, `status: 4xx`, `status: { any_of: [200, 201] }`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum StatusExpect {
    Exact(u16),
    Class(u16),
    AnyOf(Vec<StatusExpect>),
}

impl StatusExpect {
    pub fn matches(&self, status: u16) -> bool {
        match self {
            StatusExpect::Exact(code) => *code == status,
            StatusExpect::Class(class) => status / 100 == *class,
            StatusExpect::AnyOf(list) => list.iter().any(|s| s.matches(status)),
        }
    }

    fn parse_str(text: &str) -> Result<Self, String> {
        let t = text.trim();
        let bytes = t.as_bytes();
        if bytes.len() == 3
            && (b'1'..=b'5').contains(&bytes[0])
            && t[1..].eq_ignore_ascii_case("xx")
        {
            return Ok(StatusExpect::Class(u16::from(bytes[0] - b'0')));
        }
        match t.parse::<u16>() {
            Ok(code) => Self::exact(u64::from(code)),
            Err(_) => Err(format!(
                "invalid status `{text}`: expected a code such as 200, a class such as 4xx, or {{ any_of: [...] }}"
            )),
        }
    }

    fn exact(code: u64) -> Result<Self, String> {
        if (100..=599).contains(&code) {
            Ok(StatusExpect::Exact(code as u16))
        } else {
            Err(format!(
                "invalid status {code}: expected a code from 100 to 599"
            ))
        }
    }
}

impl fmt::Display for StatusExpect {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            StatusExpect::Exact(code) => write!(f, "{code}"),
            StatusExpect::Class(class) => write!(f, "{class}xx"),
            StatusExpect::AnyOf(list) => {
                let parts: Vec<String> = list.iter().map(ToString::to_string).collect();
                write!(f, "one of {}", parts.join(", "))
            }
        }
    }
}

impl<'de> Deserialize<'de> for StatusExpect {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        struct StatusVisitor;
        impl<'de> Visitor<'de> for StatusVisitor {
            type Value = StatusExpect;
            fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
                f.write_str("a status code (201), a class (4xx) or { any_of: [...] }")
            }
            fn visit_u64<E: de::Error>(self, v: u64) -> Result<StatusExpect, E> {
                StatusExpect::exact(v).map_err(E::custom)
            }
            fn visit_i64<E: de::Error>(self, v: i64) -> Result<StatusExpect, E> {
                StatusExpect::exact(u64::try_from(v).unwrap_or(0)).map_err(E::custom)
            }
            fn visit_str<E: de::Error>(self, v: &str) -> Result<StatusExpect, E> {
                StatusExpect::parse_str(v).map_err(E::custom)
            }
            fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<StatusExpect, A::Error> {
                let mut list = None;
                while let Some(key) = map.next_key::<String>()? {
                    if key != "any_of" {
                        return Err(de::Error::unknown_field(&key, &["any_of"]));
                    }
                    let items: Vec<StatusExpect> = map.next_value()?;
                    if items.is_empty() {
                        return Err(de::Error::custom("`any_of` needs at least one status"));
                    }
                    list = Some(items);
                }
                list.map(StatusExpect::AnyOf)
                    .ok_or_else(|| de::Error::missing_field("any_of"))
            }
        }
        deserializer.deserialize_any(StatusVisitor)
    }
}

/// `valid: true` or `valid: { profile: URL, severity: error|warning }`.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct ValidExpect {
    /// Also validated against this profile (canonical URL).
    pub profile: Option<String>,
    /// The least severe issue that fails the check (`error` unless given).
    pub fails_at: crate::record::IssueSeverity,
}

impl<'de> Deserialize<'de> for ValidExpect {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        struct ValidVisitor;
        impl<'de> Visitor<'de> for ValidVisitor {
            type Value = ValidExpect;
            fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
                f.write_str("`true` or { profile: <canonical URL>, severity: error|warning }")
            }
            fn visit_bool<E: de::Error>(self, v: bool) -> Result<ValidExpect, E> {
                if v {
                    Ok(ValidExpect::default())
                } else {
                    Err(E::custom(
                        "`valid: false` is not an expectation: leave `valid` out, or check the issues a server reports with `operation_outcome`",
                    ))
                }
            }
            fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<ValidExpect, A::Error> {
                let mut out = ValidExpect::default();
                while let Some(key) = map.next_key::<String>()? {
                    match key.as_str() {
                        "profile" => {
                            let url: String = map.next_value()?;
                            if url.trim().is_empty() || url.chars().any(char::is_whitespace) {
                                return Err(de::Error::custom(format!(
                                    "`profile` must be a canonical URL, found {url:?}"
                                )));
                            }
                            out.profile = Some(url);
                        }
                        "severity" => {
                            out.fails_at = match map.next_value::<String>()?.as_str() {
                                "error" => crate::record::IssueSeverity::Error,
                                "warning" => crate::record::IssueSeverity::Warning,
                                other => {
                                    return Err(de::Error::unknown_variant(
                                        other,
                                        &["error", "warning"],
                                    ));
                                }
                            }
                        }
                        other => {
                            return Err(de::Error::unknown_field(other, &["profile", "severity"]));
                        }
                    }
                }
                Ok(out)
            }
        }
        deserializer.deserialize_any(ValidVisitor)
    }
}

/// What the request sent must have been.
#[derive(Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct RequestExpect {
    /// the method (`GET`, `POST`...; case-insensitive)
    pub method: Option<String>,
    /// the URL sent: a string (equals) or one of equals, matches, contains
    #[schemars(with = "Option<HeaderExpect>")]
    pub url: Option<HeaderExpect>,
    /// request headers (names case-insensitive; a plain string means `equals`)
    #[serde(default, deserialize_with = "sorted_pairs")]
    #[schemars(with = "BTreeMap<String, HeaderExpect>")]
    pub headers: Vec<(String, HeaderExpect)>,
}

/// A header expectation: a plain string means `equals`.
#[derive(Debug, Default)]
pub struct HeaderExpect {
    pub equals: Option<String>,
    pub matches: Option<Pattern>,
    pub contains: Option<String>,
    pub present: Option<bool>,
    pub absent: Option<bool>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct HeaderExpectFields {
    equals: Option<String>,
    matches: Option<Pattern>,
    contains: Option<String>,
    present: Option<bool>,
    absent: Option<bool>,
}

impl<'de> Deserialize<'de> for HeaderExpect {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        struct HeaderVisitor;
        impl<'de> Visitor<'de> for HeaderVisitor {
            type Value = HeaderExpect;
            fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
                f.write_str("a string (the exact value) or a map with equals, matches, contains, present or absent")
            }
            fn visit_str<E: de::Error>(self, v: &str) -> Result<HeaderExpect, E> {
                Ok(HeaderExpect {
                    equals: Some(v.to_owned()),
                    ..HeaderExpect::default()
                })
            }
            fn visit_u64<E: de::Error>(self, v: u64) -> Result<HeaderExpect, E> {
                self.visit_str(&v.to_string())
            }
            fn visit_map<A: MapAccess<'de>>(self, map: A) -> Result<HeaderExpect, A::Error> {
                let f =
                    HeaderExpectFields::deserialize(de::value::MapAccessDeserializer::new(map))?;
                let set = [
                    f.equals.is_some(),
                    f.matches.is_some(),
                    f.contains.is_some(),
                    f.present.is_some(),
                    f.absent.is_some(),
                ]
                .iter()
                .filter(|b| **b)
                .count();
                if set != 1 {
                    return Err(de::Error::custom(
                        "a header expectation takes exactly one of equals, matches, contains, present, absent",
                    ));
                }
                Ok(HeaderExpect {
                    equals: f.equals,
                    matches: f.matches,
                    contains: f.contains,
                    present: f.present,
                    absent: f.absent,
                })
            }
        }
        deserializer.deserialize_any(HeaderVisitor)
    }
}

/// A JSONPath assertion with one operation. `equals`, `matches`, `type` and `one_of`
/// must hold for every node the path selects (and at least one must be selected).
#[derive(Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
#[schemars(transform = json_assert_rules)]
pub struct JsonAssert {
    /// the RFC 9535 JSONPath query, e.g. `$.entry[*].resource.id`
    pub path: JsonPathExpr,
    /// every selected node equals this value
    pub equals: Option<Value>,
    /// `true`: the path selects at least one node
    pub exists: Option<bool>,
    /// `true`: the path selects nothing
    pub absent: Option<bool>,
    /// every selected node is a string matching this regex
    pub matches: Option<Pattern>,
    /// an element of the selected array, a substring of the selected string, or — when the path selects several nodes — a node equal to the value
    pub contains: Option<Value>,
    /// counts the selected nodes
    pub count: Option<usize>,
    /// every selected node has this JSON type
    #[serde(rename = "type")]
    pub type_: Option<JsonType>,
    /// every selected node equals one of these values
    pub one_of: Option<Vec<Value>>,
    /// no selected value equals this value (at least one must be selected)
    pub not_equals: Option<Value>,
    /// no selected value is one of these
    pub none_of: Option<Vec<Value>>,
    /// the opposite of `contains` (at least one value must be selected)
    pub not_contains: Option<Value>,
    /// every selected value is greater: numbers by value, strings (dates, times) by text
    pub greater_than: Option<Value>,
    /// every selected value is less: numbers by value, strings (dates, times) by text
    pub less_than: Option<Value>,
}

/// A FHIRPath assertion with one operation, read like a [`JsonAssert`]: `equals`,
/// `matches`, `type` and `one_of` must hold for every item the expression yields
/// (and at least one must be yielded).
#[derive(Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
#[schemars(transform = json_assert_rules)]
pub struct FhirPathAssert {
    /// the FHIRPath expression, evaluated on the response body, e.g. `name.where(use = 'official').family`
    pub expr: FhirPathExpr,
    /// every item equals this value (dates, times and codes as their JSON strings)
    pub equals: Option<Value>,
    /// `true`: the expression yields at least one item
    pub exists: Option<bool>,
    /// `true`: the expression yields nothing
    pub absent: Option<bool>,
    /// every item is a primitive whose text matches this regex
    pub matches: Option<Pattern>,
    /// an element of the yielded list, a substring of the single yielded string, or an item equal to the value
    pub contains: Option<Value>,
    /// counts the items
    pub count: Option<usize>,
    /// every item has this FHIR or System type: `HumanName`, `date`, `FHIR.Patient`, `System.Boolean`
    #[serde(rename = "type")]
    pub type_: Option<String>,
    /// every item equals one of these values
    pub one_of: Option<Vec<Value>>,
    /// no selected value equals this value (at least one must be selected)
    pub not_equals: Option<Value>,
    /// no selected value is one of these
    pub none_of: Option<Vec<Value>>,
    /// the opposite of `contains` (at least one value must be selected)
    pub not_contains: Option<Value>,
    /// every selected value is greater: numbers by value, strings (dates, times) by text
    pub greater_than: Option<Value>,
    /// every selected value is less: numbers by value, strings (dates, times) by text
    pub less_than: Option<Value>,
}

/// A JSON type (`integer` is a number without a fraction).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, Serialize, JsonSchema)]
#[serde(rename_all = "lowercase")]
pub enum JsonType {
    String,
    Number,
    Integer,
    Boolean,
    Array,
    Object,
    Null,
}

impl JsonType {
    pub fn of(value: &Value) -> &'static str {
        match value {
            Value::Null => "null",
            Value::Bool(_) => "boolean",
            Value::Number(n) if n.is_i64() || n.is_u64() => "integer",
            Value::Number(_) => "number",
            Value::String(_) => "string",
            Value::Array(_) => "array",
            Value::Object(_) => "object",
        }
    }

    pub fn name(self) -> &'static str {
        match self {
            JsonType::String => "string",
            JsonType::Number => "number",
            JsonType::Integer => "integer",
            JsonType::Boolean => "boolean",
            JsonType::Array => "array",
            JsonType::Object => "object",
            JsonType::Null => "null",
        }
    }

    pub fn accepts(self, value: &Value) -> bool {
        match self {
            JsonType::Number => value.is_number(),
            other => other.name() == Self::of(value),
        }
    }
}

/// The expected document, contained in the response.
#[derive(Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct JsonSubset {
    /// the expected document
    pub value: Value,
    /// JSONPath queries removed from both sides first
    #[serde(default)]
    pub ignore: Vec<JsonPathExpr>,
}

/// An OperationOutcome issue: at least one issue matches every given field.
#[derive(Debug, Deserialize, Serialize, JsonSchema)]
#[serde(deny_unknown_fields)]
#[schemars(transform = outcome_rules)]
pub struct OutcomeExpect {
    /// the issue's severity (`error`, `warning`, ...)
    pub severity: Option<String>,
    /// the issue's code (`invalid`, `not-found`, ...)
    pub code: Option<String>,
    /// equals `details.text` or `diagnostics`
    pub text: Option<String>,
    /// contained in `details.text` or `diagnostics`
    pub text_contains: Option<String>,
}

/// The shape of a Bundle.
#[derive(Debug, Deserialize, Serialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct BundleExpect {
    /// the Bundle's type (`searchset`, `transaction-response`, ...)
    #[serde(rename = "type")]
    pub type_: Option<String>,
    /// the Bundle's `total`
    pub total: Option<Value>,
    /// exact number of entries
    pub entries: Option<Value>,
    /// at least this many entries
    pub min_entries: Option<usize>,
    /// every entry is one of these
    pub resource_types: Option<Vec<String>>,
    /// every entry's search.mode is one of these
    pub search_modes: Option<Vec<String>>,
}

/// A value from a response: from a header (with an optional regex; group 1 is taken
/// when there is one) or from the body by JSONPath.
#[derive(Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
#[schemars(transform = capture_rules)]
pub struct Capture {
    /// the response header to capture
    pub header: Option<String>,
    /// the JSONPath query whose node to capture
    pub json: Option<JsonPathExpr>,
    /// the FHIRPath expression whose first item to capture
    pub fhirpath: Option<FhirPathExpr>,
    /// applied to the value; group 1 is taken when there is one
    pub regex: Option<Pattern>,
    /// masked in every output from now on (e.g. a token)
    #[serde(default)]
    pub secret: bool,
}

/// A regular expression, compiled when the file is loaded.
#[derive(Debug, Clone)]
pub struct Pattern(pub Arc<regex::Regex>);

/// One shared value per source text for the whole process: a suite repeats the same
/// patterns and paths (`Patient/([^/]+)` in every capture, `$.resourceType` in every
/// check), and a `Regex` is ~13 KiB and ~40 µs to build, with its lazy DFA warmed per
/// instance; a JSONPath is parsed (pest) once instead of at every use.
fn interned<T, E>(
    cache: &'static Cache<T>,
    text: &str,
    build: impl FnOnce(&str) -> Result<T, E>,
) -> Result<Arc<T>, E> {
    let cache = cache.get_or_init(Mutex::default);
    if let Some(known) = cache.lock().unwrap_or_else(|e| e.into_inner()).get(text) {
        return Ok(Arc::clone(known));
    }
    let built = Arc::new(build(text)?);
    let mut map = cache.lock().unwrap_or_else(|e| e.into_inner());
    Ok(Arc::clone(map.entry(text.to_owned()).or_insert(built)))
}

type Cache<T> = std::sync::OnceLock<Mutex<HashMap<String, Arc<T>>>>;

fn compiled(text: &str) -> Result<Arc<regex::Regex>, regex::Error> {
    static REGEXES: Cache<regex::Regex> = std::sync::OnceLock::new();
    interned(&REGEXES, text, |t| {
        regex::RegexBuilder::new(t).size_limit(1 << 20).build()
    })
}

impl<'de> Deserialize<'de> for Pattern {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let text = String::deserialize(deserializer)?;
        compiled(&text).map(Pattern).map_err(|e| {
            de::Error::custom(format!(
                "invalid regex `{text}`: {}",
                one_line(&e.to_string())
            ))
        })
    }
}

impl<'de> Deserialize<'de> for JsonPathExpr {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let text = String::deserialize(deserializer)?;
        static PATHS: Cache<JpQuery> = std::sync::OnceLock::new();
        JsonPathExpr::parse_with(text, |t| {
            interned(&PATHS, t, jsonpath_rust::parser::parse_json_path)
                .map_err(|e| one_line(&e.to_string()))
        })
        .map_err(de::Error::custom)
    }
}

// Serialized for the model cache (`super::cache`), in the form the `Deserialize`
// impls above read back: a status as written, a rule's source text. (A JSONPath is
// serialized by the model's fields, `super::model::path_text`: were `JsonPathExpr`
// `Serialize`, the committed JSON Schema would gain `"default": []` for
// `json_subset.ignore`.)

impl Serialize for StatusExpect {
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        use serde::ser::SerializeMap;
        match self {
            StatusExpect::Exact(code) => serializer.serialize_u16(*code),
            StatusExpect::Class(class) => serializer.collect_str(&format_args!("{class}xx")),
            StatusExpect::AnyOf(list) => {
                let mut map = serializer.serialize_map(Some(1))?;
                map.serialize_entry("any_of", list)?;
                map.end()
            }
        }
    }
}

impl Serialize for ValidExpect {
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        use serde::ser::SerializeMap;
        let mut map = serializer.serialize_map(None)?;
        if let Some(profile) = &self.profile {
            map.serialize_entry("profile", profile)?;
        }
        map.serialize_entry("severity", self.fails_at.as_str())?;
        map.end()
    }
}

impl Serialize for Pattern {
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.serialize_str(self.0.as_str())
    }
}

impl Serialize for FhirPathExpr {
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.serialize_str(self.text())
    }
}

fn one_line(text: &str) -> String {
    text.split_whitespace().collect::<Vec<_>>().join(" ")
}

// JSON Schema (see `crate::jschema`): the derives above describe the keys; what the
// loader reads with its own code (status patterns, header rules, regexes, JSONPath
// queries) and the "exactly one of" rules it checks are described here.

/// The JSON Schema of a scenario file.
pub fn json_schema() -> schemars::Schema {
    crate::jschema::root_for::<FileDoc>()
}

/// The keys of a single scenario, which cannot stand beside `scenarios`.
const BESIDE_SCENARIOS: [&str; 9] = [
    "name",
    "steps",
    "cleanup",
    "leaves_behind",
    "source",
    "description",
    "ignore",
    "each",
    "each_file",
];

fn file_rules(schema: &mut schemars::Schema) {
    use crate::jschema::present;
    let beside: Vec<Value> = BESIDE_SCENARIOS
        .iter()
        .map(|k| match *k {
            // `cleanup: []` is no cleanup.
            "cleanup" | "leaves_behind" => {
                serde_json::json!({ "required": [k], "properties": { *k: { "minItems": 1 } } })
            }
            k => present(k),
        })
        .collect();
    crate::jschema::add_rule(
        schema,
        serde_json::json!({ "oneOf": [
            { "allOf": [present("name"), present("steps")], "not": present("scenarios") },
            { "allOf": [present("scenarios")], "not": { "anyOf": beside } },
        ] }),
    );
    scenario_rules(schema);
}

fn scenario_rules(schema: &mut schemars::Schema) {
    crate::jschema::add_rule(
        schema,
        crate::jschema::at_most_one_of(&["each", "each_file"]),
    );
}

fn request_rules(schema: &mut schemars::Schema) {
    use crate::jschema::{add_rule, at_most_one_of, exactly_one_of};
    add_rule(schema, exactly_one_of(&["path", "url"]));
    add_rule(
        schema,
        at_most_one_of(&["json", "json_file", "body", "body_file", "form"]),
    );
    add_rule(
        schema,
        serde_json::json!({
            "if": crate::jschema::present("json_merge"),
            "then": { "anyOf": [crate::jschema::present("json"), crate::jschema::present("json_file")] }
        }),
    );
}

fn json_assert_rules(schema: &mut schemars::Schema) {
    crate::jschema::add_rule(
        schema,
        crate::jschema::exactly_one_of(&[
            "equals",
            "exists",
            "absent",
            "matches",
            "contains",
            "count",
            "type",
            "one_of",
            "not_equals",
            "none_of",
            "not_contains",
            "greater_than",
            "less_than",
        ]),
    );
}

fn outcome_rules(schema: &mut schemars::Schema) {
    use crate::jschema::present;
    crate::jschema::add_rule(
        schema,
        serde_json::json!({ "anyOf": [present("severity"), present("code"), present("text"), present("text_contains")] }),
    );
}

fn capture_rules(schema: &mut schemars::Schema) {
    crate::jschema::add_rule(
        schema,
        crate::jschema::exactly_one_of(&["header", "json", "fhirpath"]),
    );
}

/// Implements `JsonSchema` for a type whose schema is `$body`, under `$name`.
macro_rules! schema_of {
    ($ty:ty, $name:literal, |$generator:ident| $body:expr) => {
        impl schemars::JsonSchema for $ty {
            fn schema_name() -> std::borrow::Cow<'static, str> {
                $name.into()
            }
            fn json_schema($generator: &mut schemars::SchemaGenerator) -> schemars::Schema {
                $body
            }
        }
    };
}

schema_of!(StatusExpect, "StatusExpect", |generator| {
    let item = generator.subschema_for::<StatusExpect>();
    schemars::json_schema!({
        "description": "an exact code (201), a class (4xx), or { any_of: [...] }",
        "oneOf": [
            { "type": "integer", "minimum": 100, "maximum": 599 },
            { "type": "string", "pattern": "^\\s*([1-5][xX][xX]|\\+?0*[1-5][0-9][0-9])\\s*$" },
            {
                "type": "object",
                "properties": { "any_of": { "type": "array", "minItems": 1, "items": item } },
                "required": ["any_of"],
                "additionalProperties": false
            }
        ]
    })
});

schema_of!(ValidExpect, "ValidExpect", |_generator| {
    schemars::json_schema!({
        "description": "`true`: valid FHIR R4 and the profiles the resource claims; or a profile to validate against too, and the least severe issue that fails (`error` unless given)",
        "oneOf": [
            { "const": true },
            {
                "type": "object",
                "properties": {
                    "profile": { "type": "string", "pattern": "^\\S+$", "description": "a profile's canonical URL (built in: US Core STU3.1.1 Practitioner; others from the target's `profiles:`)" },
                    "severity": { "enum": ["error", "warning"], "description": "the least severe issue that fails the check" }
                },
                "additionalProperties": false
            }
        ]
    })
});

schema_of!(HeaderExpect, "HeaderExpect", |generator| {
    let pattern = generator.subschema_for::<Pattern>();
    let mut rules = schemars::json_schema!({
        "type": "object",
        "properties": {
            "equals": { "type": "string", "description": "the exact value" },
            "matches": pattern,
            "contains": { "type": "string", "description": "a substring of the value" },
            "present": { "type": "boolean", "description": "`true`: the header is sent" },
            "absent": { "type": "boolean", "description": "`true`: the header is not sent" }
        },
        "additionalProperties": false
    });
    crate::jschema::add_rule(
        &mut rules,
        crate::jschema::exactly_one_of(&["equals", "matches", "contains", "present", "absent"]),
    );
    schemars::json_schema!({
        "description": "a string (the exact value) or one of equals, matches, contains, present, absent",
        "oneOf": [
            { "type": "string" },
            { "type": "integer", "minimum": 0 },
            rules
        ]
    })
});

schema_of!(Pattern, "Pattern", |_generator| {
    schemars::json_schema!({
        "type": "string",
        "description": "a regular expression (Rust `regex` syntax), compiled when the file is loaded"
    })
});

schema_of!(JsonPathExpr, "JsonPath", |_generator| {
    schemars::json_schema!({
        "type": "string",
        "description": "an RFC 9535 JSONPath query, e.g. `$.entry[*].resource.id`"
    })
});

impl<'de> Deserialize<'de> for FhirPathExpr {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let text = String::deserialize(deserializer)?;
        static EXPRESSIONS: Cache<FhirPathExpr> = std::sync::OnceLock::new();
        interned(&EXPRESSIONS, &text, FhirPathExpr::parse)
            .map(|e| (*e).clone())
            .map_err(de::Error::custom)
    }
}

schema_of!(FhirPathExpr, "FhirPath", |_generator| {
    schemars::json_schema!({
        "type": "string",
        "description": "a FHIRPath expression evaluated on the response body, e.g. `name.where(use = 'official').family`; `%name` reads a variable"
    })
});

/// A `requires` entry, for the schema: `Resource.interaction` or a feature.
struct Requirement;
schema_of!(Requirement, "Requirement", |_generator| {
    let interactions = super::load::INTERACTIONS.join("|");
    crate::jschema::pattern_string(
        &format!(
            "^\\s*([A-Z][A-Za-z0-9]*\\.({interactions})|[a-z_][A-Za-z0-9_]*(\\s*=\\s*\\S.*)?|[A-Z][A-Za-z0-9_]*(\\s*=\\s*[^.\\s][^.]*)?)\\s*$"
        ),
        "an interaction (`Appointment.update`) or a feature (`versioning`, `double_booking=forbidden`)",
    )
});

/// A variable name, for the schema.
struct VarName;
schema_of!(VarName, "VarName", |_generator| {
    crate::jschema::pattern_string(
        crate::jschema::IDENTIFIER,
        "a variable name: letters, digits and `_`, not starting with a digit",
    )
});

/// `vars:`, for the schema: values by variable name, in order.
struct Vars;
schema_of!(Vars, "Vars", |_generator| {
    schemars::json_schema!({
        "type": "object",
        "propertyNames": { "pattern": crate::jschema::IDENTIFIER }
    })
});

/// `steps:`, for the schema: at least one.
struct Steps;
schema_of!(Steps, "Steps", |generator| {
    let step = generator.subschema_for::<Step>();
    schemars::json_schema!({ "type": "array", "items": step, "minItems": 1 })
});

/// `scenarios:`, for the schema: at least one.
struct Scenarios;
schema_of!(Scenarios, "Scenarios", |generator| {
    let scenario = generator.subschema_for::<ScenarioDoc>();
    schemars::json_schema!({ "type": "array", "items": scenario, "minItems": 1 })
});

/// `capture:`, for the schema: captures by variable name.
struct Captures;
schema_of!(Captures, "Captures", |generator| {
    let capture = generator.subschema_for::<Capture>();
    schemars::json_schema!({
        "type": "object",
        "propertyNames": { "pattern": crate::jschema::IDENTIFIER },
        "additionalProperties": capture
    })
});

schema_of!(DurationText, "Duration", |_generator| {
    schemars::json_schema!({
        "description": "`500ms`, `2s`, `1.5s`, `1m`, or a number of seconds (0 to 1 hour)",
        "oneOf": [
            { "type": "number", "minimum": 0, "maximum": 3600 },
            { "type": "string", "pattern": "^\\s*[+]?([0-9]+[.]?[0-9]*|[.][0-9]+)([eE][+-]?[0-9]+)?\\s*(ms|s|m)?\\s*$" }
        ]
    })
});

/// `each:`, for the schema: rows of variables, each optionally labelled by `name`.
struct Rows;
schema_of!(Rows, "Rows", |_generator| {
    schemars::json_schema!({
        "type": "array",
        "minItems": 1,
        "maxItems": 10_000,
        "items": {
            "type": "object",
            "propertyNames": { "pattern": crate::jschema::IDENTIFIER },
            "properties": {
                "name": {
                    "description": "the row's label in the scenario's id, `file::name[label]`",
                    "type": "string",
                    "pattern": "^[^\\n\\[\\]]*\\S[^\\n\\[\\]]*$"
                }
            }
        }
    })
});
