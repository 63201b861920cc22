//! Variables and templates: `{{ name }}` anywhere in a string, with functions for
//! fresh data (`uuid()`, `now()`, `today()`, `slot()`).
//!
//! A string that is exactly one `{{ expression }}` keeps the JSON type of its value,
//! so `count: "{{ n }}"` stays a number and `booking: "{{ slot() }}"` an object.

use std::collections::BTreeSet;
use std::collections::HashMap;
use std::sync::{Arc, Mutex, OnceLock};

use jiff::{Timestamp, ToSpan, tz::TimeZone};
use minijinja::value::Kwargs;
use minijinja::{Environment, UndefinedBehavior};
use regex::Regex;
use serde_json::{Map, Value};

/// Names every template can use without declaring them.
pub const BUILTIN_VARS: &[&str] = &["run_id", "base_url", "auth"];
/// Functions registered on every template environment.
pub const FUNCTIONS: &[&str] = &["uuid", "now", "today", "slot"];

/// Hands out appointment slots that never overlap within a run: each scenario gets
/// its own week, starting on a random far-future day, and its slots are consecutive
/// two-hour windows from midnight UTC of that week's first day. So the slots of one
/// scenario share a date (up to twelve of them) and never meet another scenario's,
/// whatever order scenarios run in.
#[derive(Debug)]
pub struct SlotClock {
    /// Midnight UTC of the first day.
    base: Timestamp,
    /// Scenario key → (its week, slots taken).
    scenarios: Mutex<HashMap<String, (i64, i64)>>,
}

/// The variable the runner sets to tell `slot()` which scenario is asking.
pub const SCENARIO_KEY_VAR: &str = "_fhirconf_scenario";
/// Slots one scenario may take: a week of two-hour windows.
const SLOTS_PER_SCENARIO: i64 = 7 * 12;

impl SlotClock {
    pub fn random() -> Self {
        let bytes = uuid::Uuid::new_v4().into_bytes();
        let r = u64::from_le_bytes(bytes[..8].try_into().unwrap_or([0; 8]));
        // Between ~1 and ~8 years ahead.
        let days_ahead = 400 + (r % 2_500) as i64;
        Self::starting_days_ahead(days_ahead)
    }

    pub fn starting_days_ahead(days_ahead: i64) -> Self {
        let now = Timestamp::now().as_second();
        let base = Timestamp::from_second(now - now.rem_euclid(86_400) + days_ahead * 86_400)
            .unwrap_or(Timestamp::UNIX_EPOCH);
        SlotClock {
            base,
            scenarios: Mutex::new(HashMap::new()),
        }
    }

    /// The next window of the scenario `key`.
    fn take(&self, key: &str, minutes: i64) -> Result<(Timestamp, Timestamp), String> {
        let (week, n) = {
            let mut map = self.scenarios.lock().unwrap_or_else(|e| e.into_inner());
            let weeks = map.len() as i64;
            let entry = map.entry(key.to_owned()).or_insert((weeks, 0));
            entry.1 += 1;
            (entry.0, entry.1 - 1)
        };
        if n >= SLOTS_PER_SCENARIO {
            return Err(format!(
                "slot(): a scenario may book at most {SLOTS_PER_SCENARIO} slots"
            ));
        }
        let hours = week * 7 * 24 + 2 * n;
        let start = self.base.checked_add(hours.hours()).unwrap_or(self.base);
        let end = start.checked_add(minutes.minutes()).unwrap_or(start);
        Ok((start, end))
    }
}

/// FHIR `instant` in UTC with whole seconds: `2031-05-04T13:00:00Z`.
pub fn fhir_instant(ts: Timestamp) -> String {
    ts.to_zoned(TimeZone::UTC)
        .strftime("%Y-%m-%dT%H:%M:%SZ")
        .to_string()
}

fn offset_from_kwargs(kwargs: &Kwargs) -> Result<jiff::Span, minijinja::Error> {
    let mut span = jiff::Span::new();
    for (unit, name) in [(0, "days"), (1, "hours"), (2, "minutes"), (3, "seconds")] {
        let n: Option<i64> = kwargs.get(name)?;
        if let Some(n) = n {
            let limit = 3_650_000; // ten thousand years in days is plenty
            if n.abs() > limit * 86_400 {
                return Err(minijinja::Error::new(
                    minijinja::ErrorKind::InvalidOperation,
                    format!("{name}={n} is out of range"),
                ));
            }
            span = match unit {
                0 => span.try_days(n),
                1 => span.try_hours(n),
                2 => span.try_minutes(n),
                _ => span.try_seconds(n),
            }
            .map_err(|e| {
                minijinja::Error::new(minijinja::ErrorKind::InvalidOperation, e.to_string())
            })?;
        }
    }
    kwargs.assert_all_used()?;
    Ok(span)
}

fn shifted_now(kwargs: &Kwargs) -> Result<jiff::Zoned, minijinja::Error> {
    let span = offset_from_kwargs(kwargs)?;
    Timestamp::now()
        .to_zoned(TimeZone::UTC)
        .checked_add(span)
        .map_err(|e| minijinja::Error::new(minijinja::ErrorKind::InvalidOperation, e.to_string()))
}

/// The template engine of one run.
#[derive(Clone)]
pub struct Templates {
    env: Arc<Environment<'static>>,
}

impl std::fmt::Debug for Templates {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Templates")
    }
}

/// Why a template could not be rendered.
#[derive(Debug, Clone, thiserror::Error)]
#[error("{0}")]
pub struct TemplateError(pub String);

fn describe(err: &minijinja::Error) -> TemplateError {
    let mut text = err.kind().to_string();
    if let Some(detail) = err.detail() {
        text = format!("{text}: {detail}");
    }
    TemplateError(text)
}

fn whole_expression(text: &str) -> Option<&str> {
    static WHOLE: OnceLock<Regex> = OnceLock::new();
    let re = WHOLE.get_or_init(|| Regex::new(r"^\s*\{\{(.*)\}\}\s*$").expect("static regex"));
    let inner = re.captures(text)?.get(1)?.as_str();
    if inner.contains("{{") || inner.contains("}}") {
        None
    } else {
        Some(inner)
    }
}

fn too_large(what: &str, bytes: usize) -> minijinja::Error {
    minijinja::Error::new(
        minijinja::ErrorKind::InvalidOperation,
        format!(
            "{what} would make {bytes} bytes, more than the {}-byte limit of a template's output (--max-template-bytes)",
            crate::limits::template_bytes()
        ),
    )
}

/// `replace`, refusing a result over [`crate::limits::template_bytes`] before building it.
fn capped_replace(value: String, from: String, to: String) -> Result<String, minijinja::Error> {
    let times = if from.is_empty() {
        value.chars().count() + 1
    } else {
        value.matches(from.as_str()).count()
    };
    let bytes = value
        .len()
        .saturating_add(times.saturating_mul(to.len().saturating_sub(from.len())));
    if bytes > crate::limits::template_bytes() {
        return Err(too_large("replace", bytes));
    }
    Ok(value.replace(from.as_str(), &to))
}

/// `indent(width=4, first=false, blank=false)`, refusing a result over
/// [`crate::limits::template_bytes`] before building it.
fn capped_indent(
    value: String,
    width: Option<usize>,
    first: Option<bool>,
    blank: Option<bool>,
) -> Result<String, minijinja::Error> {
    let width = width.unwrap_or(4);
    let lines = value.lines().count().max(1);
    let bytes = value.len().saturating_add(lines.saturating_mul(width));
    if bytes > crate::limits::template_bytes() {
        return Err(too_large("indent", bytes));
    }
    let pad = " ".repeat(width);
    let mut out = String::with_capacity(bytes);
    for (i, line) in value.split('\n').enumerate() {
        if i > 0 {
            out.push('\n');
        }
        let indent = (i > 0 || first.unwrap_or(false))
            && (blank.unwrap_or(false) || !line.trim().is_empty());
        if indent {
            out.push_str(&pad);
        }
        out.push_str(line);
    }
    Ok(out)
}

/// A rendered value within [`crate::limits::template_bytes`] (its JSON text, for a structure).
fn within_limit(value: Value) -> Result<Value, TemplateError> {
    let bytes = match &value {
        Value::String(s) => s.len(),
        other => serde_json::to_string(other).map_or(0, |t| t.len()),
    };
    if bytes > crate::limits::template_bytes() {
        return Err(TemplateError(too_large("the template", bytes).to_string()));
    }
    Ok(value)
}

/// How long one template may run: far more than any real one needs.
const TEMPLATE_TIME: std::time::Duration = std::time::Duration::from_secs(10);

/// The memory one rendering may hold: room for its output several times over.
fn memory_budget() -> usize {
    (16usize << 20).saturating_add(crate::limits::template_bytes().saturating_mul(8))
}

/// Renders under [`crate::memory::bounded`]: a template that would exhaust memory or
/// never finish fails its step instead.
fn bounded<T: Send + 'static>(
    render: impl FnOnce() -> Result<T, TemplateError> + Send + 'static,
) -> Result<T, TemplateError> {
    crate::memory::bounded(memory_budget(), TEMPLATE_TIME, render).unwrap_or_else(|stopped| {
        Err(TemplateError(format!(
            "the template was stopped: {stopped} (its output may be at most {} bytes: --max-template-bytes)",
            crate::limits::template_bytes()
        )))
    })
}

/// Lookups (`{{ name }}`, `{{ a.b[0]['c'] }}`) copy what is already there and build
/// nothing: a value whose templates are all lookups, this many at most, renders on the
/// calling thread (a big variable looked up many times would still multiply).
const MAX_INLINE_LOOKUPS: usize = 8;

/// How many `{{ }}` lookups `text` has, or `None` when it has anything else: a
/// statement, a comment, or an expression that is more than a lookup.
fn lookups(text: &str) -> Option<usize> {
    static LOOKUP: OnceLock<Regex> = OnceLock::new();
    let lookup = LOOKUP.get_or_init(|| {
        Regex::new(
            r#"^\s*[A-Za-z_]\w*(?:\.[A-Za-z_]\w*|\[\d+\]|\['[^'\\{}]*'\]|\["[^"\\{}]*"\])*\s*$"#,
        )
        .expect("static regex")
    });
    if text.contains("{%") || text.contains("{#") {
        return None;
    }
    let mut count = 0;
    let mut rest = text;
    while let Some(open) = rest.find("{{") {
        let after = &rest[open + 2..];
        let close = after.find("}}")?;
        if !lookup.is_match(&after[..close]) {
            return None;
        }
        count += 1;
        rest = &after[close + 2..];
    }
    Some(count)
}

/// `text` with each `{{ name }}` replaced by the string variable `name`, when that is
/// all its expressions are: what MiniJinja renders for it (`/Patient/{{ id }}`), without
/// compiling a template and converting every variable for it at each step. `None` for
/// anything else, left to MiniJinja and its messages: another expression or a tag, a
/// name that is a keyword, a variable that is missing or not a string, and a text
/// ending in a newline (which MiniJinja drops).
fn substituted(text: &str, vars: &Map<String, Value>) -> Option<String> {
    const KEYWORDS: [&str; 9] = [
        "true", "false", "none", "True", "False", "None", "loop", "self", "super",
    ];
    if text.contains("{%") || text.contains("{#") || text.ends_with('\n') {
        return None;
    }
    let mut out = String::with_capacity(text.len() + 32);
    let mut rest = text;
    while let Some(open) = rest.find("{{") {
        let after = &rest[open + 2..];
        let close = after.find("}}")?;
        let name = after[..close].trim_matches(|c: char| c.is_ascii_whitespace());
        let plain = name.starts_with(|c: char| c.is_ascii_alphabetic() || c == '_')
            && name.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'_')
            && !KEYWORDS.contains(&name);
        if !plain {
            return None;
        }
        let Some(Value::String(value)) = vars.get(name) else {
            return None;
        };
        out.push_str(&rest[..open]);
        out.push_str(value);
        // Past the output limit: MiniJinja, bounded, says so.
        if out.len() > crate::limits::template_bytes() {
            return None;
        }
        rest = &after[close + 2..];
    }
    out.push_str(rest);
    (out.len() <= crate::limits::template_bytes()).then_some(out)
}

/// True when `text` renders on the calling thread: no template, or a few lookups.
fn renders_inline(text: &str) -> bool {
    !has_template(text) || lookups(text).is_some_and(|n| n <= MAX_INLINE_LOOKUPS)
}

/// True when every string in `value` (keys included) is plain or lookups, at most
/// [`MAX_INLINE_LOOKUPS`] in all.
fn value_renders_inline(value: &Value) -> bool {
    /// Adds `s`'s lookups to `total`; false when `s` is more than lookups.
    fn text(s: &str, total: &mut usize) -> bool {
        if !has_template(s) {
            return true;
        }
        match lookups(s) {
            Some(n) => {
                *total += n;
                *total <= MAX_INLINE_LOOKUPS
            }
            None => false,
        }
    }
    fn count(value: &Value, total: &mut usize) -> bool {
        match value {
            Value::String(s) => text(s, total),
            Value::Array(items) => items.iter().all(|v| count(v, total)),
            Value::Object(map) => map.iter().all(|(k, v)| text(k, total) && count(v, total)),
            _ => true,
        }
    }
    count(value, &mut 0)
}

fn has_template(text: &str) -> bool {
    text.contains("{{") || text.contains("{%") || text.contains("{#")
}

impl Templates {
    pub fn new(slots: Arc<SlotClock>) -> Self {
        let mut env = Environment::new();
        env.set_undefined_behavior(UndefinedBehavior::Strict);
        env.set_fuel(Some(100_000));
        env.set_recursion_limit(64);
        env.add_filter("replace", capped_replace);
        env.add_filter("indent", capped_indent);
        env.add_function("uuid", || uuid::Uuid::new_v4().to_string());
        env.add_function(
            "now",
            |kwargs: Kwargs| -> Result<String, minijinja::Error> {
                Ok(fhir_instant(shifted_now(&kwargs)?.timestamp()))
            },
        );
        env.add_function(
            "today",
            |kwargs: Kwargs| -> Result<String, minijinja::Error> {
                Ok(shifted_now(&kwargs)?.date().to_string())
            },
        );
        env.add_function(
            "slot",
            move |state: &minijinja::State,
                  kwargs: Kwargs|
                  -> Result<minijinja::Value, minijinja::Error> {
                let minutes: Option<i64> = kwargs.get("minutes")?;
                kwargs.assert_all_used()?;
                let minutes = minutes.unwrap_or(30);
                if !(1..=110).contains(&minutes) {
                    return Err(minijinja::Error::new(
                        minijinja::ErrorKind::InvalidOperation,
                        "slot(minutes=N) takes N from 1 to 110",
                    ));
                }
                let key = state
                    .lookup(SCENARIO_KEY_VAR)
                    .and_then(|v| v.as_str().map(str::to_owned))
                    .unwrap_or_default();
                let (start, end) =
                    crate::memory::critical(|| slots.take(&key, minutes)).map_err(|e| {
                        minijinja::Error::new(minijinja::ErrorKind::InvalidOperation, e)
                    })?;
                Ok(minijinja::context! {
                    start => fhir_instant(start),
                    end => fhir_instant(end),
                    date => start.to_zoned(TimeZone::UTC).date().to_string(),
                })
            },
        );
        Templates { env: Arc::new(env) }
    }

    /// Renders every string inside `value`; whole-expression strings keep their type.
    pub fn render_value(
        &self,
        value: &Value,
        vars: &Map<String, Value>,
    ) -> Result<Value, TemplateError> {
        if value_renders_inline(value) {
            return self.render_value_here(value, vars);
        }
        let (this, value, vars) = (self.clone(), value.clone(), vars.clone());
        bounded(move || this.render_value_here(&value, &vars))
    }

    fn render_value_here(
        &self,
        value: &Value,
        vars: &Map<String, Value>,
    ) -> Result<Value, TemplateError> {
        Ok(match value {
            Value::String(s) => self.render_typed(s, vars)?,
            Value::Array(items) => Value::Array(
                items
                    .iter()
                    .map(|v| self.render_value_here(v, vars))
                    .collect::<Result<_, _>>()?,
            ),
            Value::Object(map) => {
                let mut out = Map::with_capacity(map.len());
                for (k, v) in map {
                    out.insert(
                        self.render_string_here(k, vars)?,
                        self.render_value_here(v, vars)?,
                    );
                }
                Value::Object(out)
            }
            other => other.clone(),
        })
    }

    fn render_typed(&self, text: &str, vars: &Map<String, Value>) -> Result<Value, TemplateError> {
        if !has_template(text) {
            return Ok(Value::String(text.to_owned()));
        }
        if let Some(expr) = whole_expression(text) {
            let compiled = self
                .env
                .compile_expression(expr)
                .map_err(|e| describe(&e))?;
            let value = compiled.eval(PlainMap(vars)).map_err(|e| describe(&e))?;
            let value = serde_json::to_value(&value).map_err(|e| TemplateError(e.to_string()))?;
            return within_limit(value);
        }
        self.render_string_here(text, vars).map(Value::String)
    }

    /// Renders `text` to a string (a whole-expression object becomes its JSON text).
    pub fn render_string(
        &self,
        text: &str,
        vars: &Map<String, Value>,
    ) -> Result<String, TemplateError> {
        // The common case first, without the regexes below: string lookups in a text
        // that is not one whole expression (which is evaluated as an expression).
        let trimmed = text.trim();
        if !(trimmed.starts_with("{{") && trimmed.ends_with("}}"))
            && let Some(out) = substituted(text, vars)
        {
            return Ok(out);
        }
        if renders_inline(text) {
            return self.render_string_here(text, vars);
        }
        let (this, text, vars) = (self.clone(), text.to_owned(), vars.clone());
        bounded(move || this.render_string_here(&text, &vars))
    }

    fn render_string_here(
        &self,
        text: &str,
        vars: &Map<String, Value>,
    ) -> Result<String, TemplateError> {
        if !has_template(text) {
            return Ok(text.to_owned());
        }
        if whole_expression(text).is_some() {
            return Ok(value_to_text(&self.render_typed(text, vars)?));
        }
        let out = match substituted(text, vars) {
            Some(out) => out,
            None => self
                .env
                .render_str(text, PlainMap(vars))
                .map_err(|e| describe(&e))?,
        };
        match within_limit(Value::String(out))? {
            Value::String(out) => Ok(out),
            other => Ok(value_to_text(&other)),
        }
    }
}

/// How a JSON value reads when put into a URL, header or message: strings bare.
pub fn value_to_text(value: &Value) -> String {
    match value {
        Value::String(s) => s.clone(),
        other => other.to_string(),
    }
}

/// The variables a template string reads (functions, MiniJinja's own globals such as
/// `range` and `namespace`, and loop variables excluded). Reading an attribute of a
/// function (`uuid.hex`) is an error here, as it would be when the step runs.
pub fn referenced_vars(text: &str) -> Result<BTreeSet<String>, TemplateError> {
    if !has_template(text) {
        return Ok(BTreeSet::new());
    }
    static ENV: OnceLock<Environment<'static>> = OnceLock::new();
    let env = ENV.get_or_init(Environment::new);
    let is_function =
        |name: &str| FUNCTIONS.contains(&name) || env.globals().any(|(global, _)| global == name);
    let names = match whole_expression(text) {
        Some(expr) => env
            .compile_expression(expr)
            .map_err(|e| describe(&e))?
            .undeclared_variables(true),
        None => env
            .template_from_str(text)
            .map_err(|e| describe(&e))?
            .undeclared_variables(true),
    };
    let mut vars = BTreeSet::new();
    for name in names {
        let root = name.split('.').next().unwrap_or(&name);
        if !is_function(root) {
            vars.insert(root.to_owned());
        } else if root != name {
            return Err(TemplateError(format!(
                "`{root}` is a function, so `{name}` has no value when the step runs (call it: `{root}(...)`)"
            )));
        }
    }
    Ok(vars)
}

/// The first string (keys included) inside `value` that is not a valid template.
pub fn first_broken(value: &Value) -> Option<&str> {
    match value {
        Value::String(s) => referenced_vars(s).is_err().then_some(s.as_str()),
        Value::Array(items) => items.iter().find_map(first_broken),
        Value::Object(map) => map.iter().find_map(|(k, v)| {
            if referenced_vars(k).is_err() {
                Some(k.as_str())
            } else {
                first_broken(v)
            }
        }),
        _ => None,
    }
}

/// Like [`referenced_vars`], for every string (keys included) inside a JSON value.
pub fn referenced_vars_in(value: &Value, out: &mut BTreeSet<String>) -> Result<(), TemplateError> {
    match value {
        Value::String(s) => out.extend(referenced_vars(s)?),
        Value::Array(items) => {
            for item in items {
                referenced_vars_in(item, out)?;
            }
        }
        Value::Object(map) => {
            for (k, v) in map {
                out.extend(referenced_vars(k)?);
                referenced_vars_in(v, out)?;
            }
        }
        _ => {}
    }
    Ok(())
}

/// The variables as minijinja sees them: serde_json values whose numbers serialize as
/// plain i64/u64/f64. With serde_json's `arbitrary_precision` feature (the helios crates
/// behind the `validation` feature turn it on for the whole build) a `Number` would
/// serialize as a private one-key map and `{{ n }}` would no longer be a number.
struct PlainMap<'a>(&'a Map<String, Value>);

struct Plain<'a>(&'a Value);

impl serde::Serialize for PlainMap<'_> {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.collect_map(self.0.iter().map(|(k, v)| (k, Plain(v))))
    }
}

impl serde::Serialize for Plain<'_> {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        match self.0 {
            Value::Number(n) => match (n.as_i64(), n.as_u64()) {
                (Some(i), _) => s.serialize_i64(i),
                (None, Some(u)) => s.serialize_u64(u),
                (None, None) => s.serialize_f64(n.as_f64().unwrap_or(f64::NAN)),
            },
            Value::Array(items) => s.collect_seq(items.iter().map(Plain)),
            Value::Object(map) => s.collect_map(map.iter().map(|(k, v)| (k, Plain(v)))),
            other => other.serialize(s),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn string_lookups_are_substituted_as_minijinja_renders_them() {
        let t = engine();
        let vars: Map<String, Value> = serde_json::from_value(json!({
            "id": "p1", "v": "2", "n": 3, "none": "x", "true": "y", "u": "ü{{ id }}", "e": "",
        }))
        .unwrap();
        let texts = [
            "/Patient/{{ id }}",
            "/Patient/{{id}}/_history/{{ v }}",
            "{{ id }}{{ id }}",
            "a}}b{{ id }}c",
            "/{{ id }}}",
            "{{ u }} and {{ e }}.",
            "x{{\tid\n}}y",
            "/Patient/{{ id }}\n",
            "{{ n }}/{{ id }}",
            "{{ none }}/{{ id }}",
            "{{ true }}/{{ id }}",
            "{{ id | upper }}/",
            "{{- id }}/",
            "{{ id.x }}/",
            "{% if true %}{{ id }}{% endif %}/",
            "{# c #}{{ id }}/",
        ];
        for text in texts {
            // A whole expression (`{{ id }}}` too) is evaluated as one, before this.
            if whole_expression(text).is_some() {
                continue;
            }
            let rendered = t
                .env
                .render_str(text, PlainMap(&vars))
                .map_err(|e| describe(&e).0);
            if let Some(fast) = substituted(text, &vars) {
                assert_eq!(Ok(fast), rendered, "{text:?}");
            }
            assert_eq!(
                t.render_string(text, &vars).map_err(|e| e.0),
                rendered,
                "{text:?}"
            );
        }
        assert_eq!(
            substituted("/Patient/{{ id }}", &vars).as_deref(),
            Some("/Patient/p1")
        );
        assert_eq!(substituted("{{ n }}/{{ id }}", &vars), None);
        assert_eq!(substituted("{{ missing }}/", &vars), None);
        // Over the output limit: left to MiniJinja, which refuses it.
        let big: Map<String, Value> = [("b".to_owned(), json!("x".repeat(1 << 20)))]
            .into_iter()
            .collect();
        let text = "/{{ b }}".repeat(5);
        assert_eq!(substituted(&text, &big), None);
        let e = t.render_string(&text, &big).unwrap_err();
        assert!(e.0.contains("limit"), "{e}");
        assert!(t.render_string("{{ missing }}/", &vars).is_err());
    }

    #[test]
    fn a_template_cannot_build_more_than_its_output_limit() {
        let t = engine();
        let vars = Map::new();
        // Three replaces turn 100 kB into 100 MB; the third is refused before it runs.
        let amplify = "{{ ('x' * 100000) | replace('x', 'xxxxxxxxxx') | replace('x', 'xxxxxxxxxx') | replace('x', 'xxxxxxxxxx') }}";
        let e = t.render_string(amplify, &vars).unwrap_err();
        assert!(e.0.contains("more than the 4194304-byte limit"), "{e}");
        let e = t
            .render_string("{{ 'a\nb' | indent(100000000) }}", &vars)
            .unwrap_err();
        assert!(e.0.contains("indent would make"), "{e}");
        // Within the limit both work as the built-ins do.
        assert_eq!(
            t.render_string("{{ 'a-b' | replace('-', '+') }}", &vars)
                .unwrap(),
            "a+b"
        );
        assert_eq!(
            t.render_string("{{ 'a\nb' | indent(2) }}", &vars).unwrap(),
            "a\n  b"
        );
        assert_eq!(
            t.render_string("{{ 'a\nb' | indent(2, true) }}", &vars)
                .unwrap(),
            "  a\n  b"
        );
        // An output that grows past the limit in small steps is refused too.
        let many = "{% for i in range(9000) %}{{ 'y' * 500 }}{% endfor %}";
        let e = t.render_string(many, &vars).unwrap_err();
        assert!(e.0.contains("limit"), "{e}");
    }

    fn engine() -> Templates {
        Templates::new(Arc::new(SlotClock::random()))
    }

    fn vars(v: Value) -> Map<String, Value> {
        v.as_object().cloned().unwrap_or_default()
    }

    #[test]
    fn whole_template_keeps_json_type() {
        let t = engine();
        let v = vars(json!({"n": 5, "flag": true, "obj": {"a": [1, 2]}}));
        assert_eq!(t.render_value(&json!("{{ n }}"), &v).unwrap(), json!(5));
        assert_eq!(
            t.render_value(&json!(" {{ flag }} "), &v).unwrap(),
            json!(true)
        );
        assert_eq!(
            t.render_value(&json!("{{ obj }}"), &v).unwrap(),
            json!({"a": [1, 2]})
        );
        assert_eq!(
            t.render_value(&json!("n={{ n }}"), &v).unwrap(),
            json!("n=5")
        );
    }

    #[test]
    fn renders_nested_values_and_keys() {
        let t = engine();
        let v = vars(json!({"id": "abc", "k": "key"}));
        let out = t
            .render_value(
                &json!({"ref": "Patient/{{ id }}", "{{ k }}": ["{{ id }}"]}),
                &v,
            )
            .unwrap();
        assert_eq!(out, json!({"ref": "Patient/abc", "key": ["abc"]}));
    }

    #[test]
    fn undefined_variable_is_an_error() {
        let t = engine();
        let err = t
            .render_string("/Patient/{{ missing }}", &Map::new())
            .unwrap_err();
        assert!(err.0.contains("undefined"), "{err}");
    }

    #[test]
    fn functions_produce_fhir_formats() {
        let t = engine();
        let none = Map::new();
        let id = t.render_string("{{ uuid() }}", &none).unwrap();
        assert_eq!(
            uuid::Uuid::parse_str(&id)
                .map(|u| u.get_version_num())
                .unwrap(),
            4
        );
        let instant = t
            .render_string("{{ now(days=1, minutes=-5) }}", &none)
            .unwrap();
        assert!(
            Regex::new(r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ$")
                .unwrap()
                .is_match(&instant),
            "{instant}"
        );
        let today = t.render_string("{{ today() }}", &none).unwrap();
        let tomorrow = t.render_string("{{ today(days=1) }}", &none).unwrap();
        let d0: jiff::civil::Date = today.parse().unwrap();
        let d1: jiff::civil::Date = tomorrow.parse().unwrap();
        assert_eq!(d0.tomorrow().unwrap(), d1);
        assert!(t.render_string("{{ now(weeks=1) }}", &none).is_err());
    }

    #[test]
    fn slots_are_future_and_never_overlap() {
        let t = engine();
        let none = Map::new();
        let a = t.render_value(&json!("{{ slot() }}"), &none).unwrap();
        let b = t
            .render_value(&json!("{{ slot(minutes=60) }}"), &none)
            .unwrap();
        let ts = |v: &Value, k: &str| v[k].as_str().unwrap().parse::<Timestamp>().unwrap();
        assert!(ts(&a, "start") > Timestamp::now());
        assert_eq!(
            ts(&a, "end").duration_since(ts(&a, "start")).as_secs(),
            30 * 60
        );
        assert_eq!(
            ts(&b, "end").duration_since(ts(&b, "start")).as_secs(),
            60 * 60
        );
        assert!(ts(&b, "start") >= ts(&a, "end"));
        assert!(
            t.render_value(&json!("{{ slot(minutes=0) }}"), &none)
                .is_err()
        );
    }

    #[test]
    fn each_scenario_books_on_days_of_its_own() {
        let t = engine();
        let mut one = Map::new();
        one.insert(SCENARIO_KEY_VAR.into(), json!("one"));
        let mut two = Map::new();
        two.insert(SCENARIO_KEY_VAR.into(), json!("two"));
        let slot =
            |vars: &Map<String, Value>| t.render_value(&json!("{{ slot() }}"), vars).unwrap();
        let a1 = slot(&one);
        let b1 = slot(&two);
        let a2 = slot(&one);
        let a3 = slot(&one);
        // One scenario's slots share a date and follow each other from midnight.
        assert!(
            a1["start"].as_str().unwrap().ends_with("T00:00:00Z"),
            "{a1}"
        );
        assert!(
            a2["start"].as_str().unwrap().ends_with("T02:00:00Z"),
            "{a2}"
        );
        assert_eq!(a1["date"], a3["date"]);
        // Another scenario's are a week away.
        let day = |v: &Value| {
            v["date"]
                .as_str()
                .unwrap()
                .parse::<jiff::civil::Date>()
                .unwrap()
        };
        assert_eq!((day(&b1) - day(&a1)).get_days(), 7);
        for _ in 3..84 {
            slot(&one);
        }
        assert!(t.render_value(&json!("{{ slot() }}"), &one).is_err());
    }

    #[test]
    fn finds_referenced_variables() {
        let names =
            referenced_vars("/Appointment/{{ id }}?x={{ slot().start }}&y={{ booking.end }}")
                .unwrap();
        assert_eq!(names.into_iter().collect::<Vec<_>>(), vec!["booking", "id"]);
        let mut all = BTreeSet::new();
        referenced_vars_in(&json!({"a": ["{{ p }}"], "{{ q }}": 1}), &mut all).unwrap();
        assert_eq!(all.into_iter().collect::<Vec<_>>(), vec!["p", "q"]);
        assert!(referenced_vars("{{ unclosed ").is_err());
    }

    #[test]
    fn minijinja_globals_are_not_variables_and_function_attributes_are_errors() {
        let names = referenced_vars(
            "{% set ns = namespace(n=0) %}{% for i in range(3) %}{{ dict(a=i).a }}{% endfor %}{{ x }}",
        )
        .unwrap();
        assert_eq!(names.into_iter().collect::<Vec<_>>(), vec!["x"]);
        let err = referenced_vars("{{ uuid.hex }}").unwrap_err();
        assert!(err.0.contains("`uuid` is a function"), "{err}");
        assert!(referenced_vars("{{ range.x }}").is_err());
        // A call's result may have attributes.
        assert!(referenced_vars("{{ slot().start }}").is_ok());
    }

    proptest::proptest! {
        #![proptest_config(proptest::prelude::ProptestConfig::with_cases(48))]
        /// Amplifying filters and operators with any factors: the result is within the
        /// output limit or an error, never an abort or a panic.
        #[test]
        fn no_template_builds_more_than_its_limit(
            seed in "[a-z\n]{0,40}",
            times in 0usize..50_000_000,
            width in 0usize..50_000_000,
            shape in 0usize..5,
        ) {
            let t = engine();
            let vars = vars(json!({"s": seed}));
            let text = match shape {
                0 => format!("{{{{ s * {times} }}}}"),
                1 => format!("{{{{ (s * 1000) | replace('a', s * {times}) }}}}"),
                2 => format!("{{{{ s | indent({width}) }}}}"),
                3 => format!("{{{{ ([s] * {times}) | join(s) }}}}"),
                _ => format!("{{% for i in range({}) %}}{{{{ s * 1000 }}}}{{% endfor %}}", times % 200_000),
            };
            if let Ok(out) = t.render_string(&text, &vars) {
                proptest::prop_assert!(out.len() <= crate::limits::template_bytes(), "{}: {} bytes", text, out.len());
            }
        }
    }

    #[test]
    fn a_few_lookups_render_inline_and_anything_more_is_bounded() {
        assert_eq!(lookups("/Patient/{{ id }}"), Some(1));
        assert_eq!(lookups("{{ a.b[0]['c'] }}-{{ d }}"), Some(2));
        assert_eq!(lookups("plain"), Some(0));
        assert_eq!(lookups("{{ a ~ b }}"), None);
        assert_eq!(lookups("{{ uuid() }}"), None);
        assert_eq!(lookups("{% if a %}x{% endif %}"), None);
        assert!(renders_inline("/Patient/{{ id }}/_history/{{ v }}"));
        assert!(!renders_inline(&"{{ a }}".repeat(MAX_INLINE_LOOKUPS + 1)));
        let many = json!(vec!["{{ a }}"; MAX_INLINE_LOOKUPS + 1]);
        assert!(!value_renders_inline(&many));
        assert!(value_renders_inline(
            &json!({"k": "{{ a }}", "{{ b }}": [1, "x"]})
        ));
        // Many lookups of one large variable are bounded like any other template.
        let t = engine();
        let vars = vars(json!({"big": "x".repeat(1 << 20)}));
        let body = json!(vec!["{{ big }}"; 1000]);
        let err = t.render_value(&body, &vars).unwrap_err();
        assert!(err.0.contains("stopped"), "{err}");
    }

    /// Each of these would allocate gigabytes if run unbounded; each fails alone, and
    /// the engine still renders afterwards.
    #[test]
    fn templates_that_would_exhaust_memory_fail_with_a_message() {
        let t = engine();
        let vars = vars(json!({"big": "x".repeat(1 << 20)}));
        for hostile in [
            "{{ ([1, 2, 3, 4] * 9223372036854775807) | join }}",
            "{% set ns = namespace(s='xx') %}{% for i in range(40) %}{% set ns.s = ns.s ~ ns.s %}{% endfor %}{{ ns.s | length }}",
            "{% for i in range(100000) %}{{ big }}{% endfor %}",
            "{{ (big * 90) ~ (big * 90) ~ (big * 90) }}",
        ] {
            let err = t.render_string(hostile, &vars).unwrap_err();
            assert!(
                err.0.contains("stopped") || err.0.contains("limit"),
                "{hostile}: {err}"
            );
            let err = t.render_value(&json!({"a": [hostile]}), &vars).unwrap_err();
            assert!(!err.0.is_empty());
        }
        assert_eq!(t.render_string("{{ 1 + 1 }}", &vars).unwrap(), "2");
    }
}
