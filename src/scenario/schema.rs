//! The on-disk scenario format: what a YAML file may say, as serde types.
//!
//! Every struct denies unknown keys. Values that can be checked without a server
//! (regexes, JSONPath queries, status patterns, methods) are checked while
//! deserializing, so a bad one is reported at its own `file:line:col`.
//! Semantic checks that need the whole file (variables, fixtures) live in
//! [`super::validate`].

use std::collections::HashMap;
use std::fmt;
use std::sync::{Arc, Mutex};

use jsonpath_rust::parser::model::JpQuery;

pub use crate::jsonpath::JsonPathExpr;

use serde::Deserialize;
use serde::de::{self, Deserializer, MapAccess, Visitor};
use serde_json::{Map, Value};
use serde_saphyr::Spanned;

/// A YAML mapping of names to values, in file order, with the mapping's location.
pub type SpannedMap = Spanned<Map<String, Value>>;

/// A scenario file: either one scenario at top level (`name` + `steps`), or
/// several under `scenarios:`. Top-level `vars`, `tags`, `requires` and
/// `inputs` apply to every scenario of the file.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct FileDoc {
    pub name: Option<Spanned<String>>,
    pub description: Option<String>,
    pub source: Option<String>,
    #[serde(default)]
    pub tags: Vec<String>,
    #[serde(default)]
    pub requires: Vec<Spanned<String>>,
    #[serde(default)]
    pub inputs: Vec<Spanned<String>>,
    pub vars: Option<SpannedMap>,
    pub ignore: Option<String>,
    /// Rows: the scenario runs once per row, with the row's fields as variables.
    pub each: Option<Spanned<Vec<SpannedMap>>>,
    /// Rows from a CSV (with a header line) or JSON (a list of objects) file,
    /// relative to the scenario file.
    pub each_file: Option<Spanned<String>>,
    pub steps: Option<Spanned<Vec<Box<Step>>>>,
    #[serde(default)]
    pub cleanup: Vec<Box<Step>>,
    pub scenarios: Option<Spanned<Vec<ScenarioDoc>>>,
}

/// One scenario inside a `scenarios:` list.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ScenarioDoc {
    pub name: Spanned<String>,
    pub description: Option<String>,
    pub source: Option<String>,
    #[serde(default)]
    pub tags: Vec<String>,
    #[serde(default)]
    pub requires: Vec<Spanned<String>>,
    #[serde(default)]
    pub inputs: Vec<Spanned<String>>,
    pub vars: Option<SpannedMap>,
    pub ignore: Option<String>,
    /// Rows: the scenario runs once per row, with the row's fields as variables.
    pub each: Option<Spanned<Vec<SpannedMap>>>,
    /// Rows from a CSV (with a header line) or JSON (a list of objects) file,
    /// relative to the scenario file.
    pub each_file: Option<Spanned<String>>,
    /// Boxed, so each step's memory is freed as the loader turns it into the model
    /// (a `Vec<Step>` would hold all of them, ~1.4 KiB each, until the last).
    pub steps: Vec<Box<Step>>,
    #[serde(default)]
    pub cleanup: Vec<Box<Step>>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Step {
    pub name: Option<Spanned<String>>,
    pub request: Spanned<Request>,
    #[serde(default)]
    pub expect: Expect,
    /// By name, sorted.
    #[serde(default, deserialize_with = "sorted_pairs")]
    pub capture: Vec<(String, Spanned<Capture>)>,
    /// `false`: send this request without the target's credentials.
    pub auth: Option<bool>,
    /// Repeat the request until `until` holds (polling an asynchronous server).
    pub retry: Option<Box<Spanned<RetrySpec>>>,
}

/// `retry:` on a step: send the request again until `until` holds, at most `times`
/// attempts in all, waiting `interval` (times `backoff` after each attempt) between.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RetrySpec {
    /// The expectations that end the polling (the same keys as `expect`).
    pub until: Expect,
    /// Attempts in all, the first included (1 to 1000).
    pub times: Spanned<u32>,
    /// The wait before the second attempt: `500ms`, `2s`, `1m`, or a number of
    /// seconds [default: 1s].
    pub interval: Option<Spanned<DurationText>>,
    /// Each wait is the one before times this (1 to 10) [default: 1].
    pub backoff: Option<Spanned<f64>>,
    /// Also repeat a POST or PATCH, which are not idempotent; the reports mark it.
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

#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
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

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Request {
    // The members most requests leave out are boxed: every `Option<Spanned<_>>` is
    // ~80 bytes inline, and the whole file is in memory while it is read.
    pub method: Method,
    /// Joined to the target's base URL.
    pub path: Option<Spanned<String>>,
    /// An absolute URL, used as is.
    pub url: Option<Box<Spanned<String>>>,
    /// Query parameters in order; a list value repeats the parameter.
    pub query: Option<Box<SpannedMap>>,
    pub headers: Option<SpannedMap>,
    /// A JSON body (sent as `application/fhir+json` unless a content type is given).
    pub json: Option<Spanned<Value>>,
    /// A JSON fixture file, relative to the scenario file.
    pub json_file: Option<Box<Spanned<String>>>,
    /// An RFC 7396 merge patch applied to `json` or `json_file` (null deletes a member).
    pub json_merge: Option<Box<Spanned<Value>>>,
    /// A raw body, sent as is.
    pub body: Option<Box<Spanned<String>>>,
    /// A raw body read from a file, relative to the scenario file.
    pub body_file: Option<Box<Spanned<String>>>,
    /// A form body (`application/x-www-form-urlencoded`).
    pub form: Option<Box<SpannedMap>>,
    pub content_type: Option<Box<Spanned<String>>>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Expect {
    pub status: Option<Spanned<StatusExpect>>,
    /// By name, sorted, one rule per name.
    #[serde(default, deserialize_with = "sorted_pairs")]
    pub headers: Vec<(String, Spanned<HeaderExpect>)>,
    #[serde(default, deserialize_with = "exact_vec")]
    pub json: Vec<Spanned<JsonAssert>>,
    // Boxed: most steps have none of these, and a step's size is paid once per step
    // of a suite for as long as it runs.
    pub json_subset: Option<Box<Spanned<JsonSubset>>>,
    pub operation_outcome: Option<Box<Spanned<OutcomeExpect>>>,
    pub bundle: Option<Box<Spanned<BundleExpect>>>,
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

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct JsonAssert {
    pub path: JsonPathExpr,
    pub equals: Option<Value>,
    pub exists: Option<bool>,
    pub absent: Option<bool>,
    pub matches: Option<Pattern>,
    pub contains: Option<Value>,
    pub count: Option<usize>,
    #[serde(rename = "type")]
    pub type_: Option<JsonType>,
    pub one_of: Option<Vec<Value>>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
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

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct JsonSubset {
    pub value: Value,
    #[serde(default)]
    pub ignore: Vec<JsonPathExpr>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct OutcomeExpect {
    pub severity: Option<String>,
    pub code: Option<String>,
    pub text: Option<String>,
    pub text_contains: Option<String>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct BundleExpect {
    #[serde(rename = "type")]
    pub type_: Option<String>,
    pub total: Option<Value>,
    pub entries: Option<Value>,
    pub min_entries: Option<usize>,
    pub resource_types: Option<Vec<String>>,
    pub search_modes: Option<Vec<String>>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Capture {
    pub header: Option<String>,
    pub json: Option<JsonPathExpr>,
    pub regex: Option<Pattern>,
    /// The captured value is masked in every output (e.g. a token).
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

fn one_line(text: &str) -> String {
    text.split_whitespace().collect::<Vec<_>>().join(" ")
}
