//! Turns validated [`Scenario`]s into HTTP exchanges and verdicts.
//! This module never formats output for people: see [`crate::report`].

use std::sync::Arc;
use std::time::{Duration, Instant};

use serde_json::{Map, Value};

use crate::assert::{Check, evaluate};
use crate::auth::Auth;
use crate::http::{BaseUrl, Exchange, HttpClient, NoAnswer, PreparedRequest, Response, transcript};
use crate::interrupt::Interrupt;
use crate::record::{Phase, ScenarioRecord, StepRecord, Verdict};
use crate::redact::Redactor;
use crate::scenario::model::{BodySpec, Capture, CaptureSource, FHIR_JSON, Scenario, Step, Target};
use crate::spill::Spill;
use crate::template::{SlotClock, Templates, value_to_text};

/// Everything a [`Runner`] is built from.
pub struct RunnerConfig {
    pub client: HttpClient,
    pub base_url: BaseUrl,
    /// Target and command-line variables; they win over scenario `vars`.
    pub vars: Map<String, Value>,
    pub auth: Arc<Auth>,
    pub redactor: Redactor,
    pub templates: Templates,
    /// Bodies in a passing step's transcript are trimmed to this many bytes; a step
    /// that did not pass keeps its bodies whole (within `--max-body`) for `run.json`.
    pub passed_body_limit: usize,
    /// How long one request may spend waiting out `Retry-After` on 429 and 503.
    pub retry_budget: Duration,
    /// Set on Ctrl-C / SIGTERM: no new step starts; cleanups still run.
    pub interrupt: Interrupt,
    /// After an interruption, how long all of a scenario's cleanup steps may take.
    pub cleanup_budget: Duration,
    /// Where passing steps' transcripts wait for `run.json`; `None` keeps them in memory.
    pub spill: Option<Arc<Spill>>,
}

impl RunnerConfig {
    /// A runner's settings over a connection, with the defaults for the rest.
    pub fn new(connection: &crate::pipeline::Connection) -> Self {
        RunnerConfig {
            client: connection.client.clone(),
            base_url: connection.base_url.clone(),
            vars: connection.vars.clone(),
            auth: Arc::clone(&connection.auth),
            redactor: connection.redactor.clone(),
            templates: Templates::new(Arc::new(SlotClock::random())),
            passed_body_limit: 1024,
            retry_budget: Duration::from_secs(60),
            interrupt: Interrupt::default(),
            cleanup_budget: Duration::from_secs(10),
            spill: None,
        }
    }
}

pub struct Runner {
    config: RunnerConfig,
    /// The base URL's origin, where credentials may go.
    target_origin: Option<String>,
    run_id: String,
}

impl Runner {
    pub fn new(config: RunnerConfig) -> Self {
        Runner {
            target_origin: config.base_url.origin(),
            config,
            run_id: uuid::Uuid::new_v4().to_string(),
        }
    }

    /// The interruption flag the runner watches.
    pub fn interrupt(&self) -> &Interrupt {
        &self.config.interrupt
    }

    /// The record of a scenario that was not run, with its verdict and reason.
    pub fn not_run(scenario: &Scenario, verdict: Verdict, reason: String) -> ScenarioRecord {
        ScenarioRecord {
            id: scenario.id.clone(),
            file: scenario.file.clone(),
            name: scenario.name.clone(),
            source: scenario.source.clone(),
            rule_ids: crate::record::rule_ids(scenario.source.as_deref()),
            tags: scenario.tags.clone(),
            verdict,
            reason: Some(reason),
            duration_secs: 0.0,
            steps: Vec::new(),
        }
    }

    /// Runs the steps in order until one does not pass, then every cleanup step.
    pub async fn run(&self, scenario: &Scenario) -> ScenarioRecord {
        let started = Instant::now();
        let mut record = Self::not_run(scenario, Verdict::Passed, String::new());
        record.reason = None;

        let mut vars = self.config.vars.clone();
        vars.insert("run_id".to_owned(), Value::String(self.run_id.clone()));
        // Tells slot() which scenario asks, so each books in a week of its own.
        vars.insert(
            crate::template::SCENARIO_KEY_VAR.to_owned(),
            Value::String(uuid::Uuid::new_v4().to_string()),
        );
        vars.insert(
            "base_url".to_owned(),
            Value::String(self.config.base_url.to_string()),
        );
        for (name, value) in &scenario.vars {
            if self.config.vars.contains_key(name) {
                continue;
            }
            match self.config.templates.render_value(value, &vars) {
                Ok(v) => {
                    vars.insert(name.clone(), v);
                }
                Err(e) => {
                    record.verdict = Verdict::Error;
                    record.reason = Some(format!("variable `{name}`: {e}"));
                    record.duration_secs = started.elapsed().as_secs_f64();
                    return record;
                }
            }
        }

        for step in &scenario.steps {
            if self.config.interrupt.is_set() {
                record.verdict = Verdict::Error;
                record.reason = Some(format!(
                    "interrupted before step '{}' (line {})",
                    step.name, step.line
                ));
                break;
            }
            let step_record = tokio::select! {
                r = self.step(step, Phase::Step, &mut vars) => r,
                () = self.config.interrupt.wait() => {
                    let mut r = blank_record(step, Phase::Step);
                    r.verdict = Verdict::Error;
                    r.message = Some("interrupted while waiting for the answer".to_owned());
                    r
                }
            };
            let verdict = step_record.verdict;
            if verdict != Verdict::Passed && record.verdict == Verdict::Passed {
                record.verdict = verdict;
                record.reason = Some(format!(
                    "step '{}' (line {}): {}",
                    step_record.name,
                    step_record.line,
                    step_record.message.clone().unwrap_or_default()
                ));
            }
            record.steps.push(step_record);
            if verdict != Verdict::Passed {
                break;
            }
        }
        let mut cleanup_deadline = None;
        for step in &scenario.cleanup {
            let missing: Vec<&str> = step
                .reads
                .iter()
                .filter(|v| !vars.contains_key(*v))
                .map(String::as_str)
                .collect();
            if !missing.is_empty() {
                let mut skipped = blank_record(step, Phase::Cleanup);
                skipped.verdict = Verdict::Skipped;
                skipped.message = Some(format!("not run: {} never captured", missing.join(", ")));
                record.steps.push(skipped);
                continue;
            }
            // Cleanups run even after an interruption, then within a bound.
            let step_record = if self.config.interrupt.is_set() {
                let deadline = *cleanup_deadline.get_or_insert_with(|| {
                    tokio::time::Instant::now() + self.config.cleanup_budget
                });
                match tokio::time::timeout_at(deadline, self.step(step, Phase::Cleanup, &mut vars))
                    .await
                {
                    Ok(r) => r,
                    Err(_) => {
                        let mut r = blank_record(step, Phase::Cleanup);
                        r.verdict = Verdict::Error;
                        r.message = Some(format!(
                            "interrupted: the cleanup did not finish within {} s",
                            self.config.cleanup_budget.as_secs()
                        ));
                        r
                    }
                }
            } else {
                self.step(step, Phase::Cleanup, &mut vars).await
            };
            record.steps.push(step_record);
        }
        record.duration_secs = started.elapsed().as_secs_f64();
        record
    }

    fn prepare(&self, step: &Step, vars: &Map<String, Value>) -> Result<PreparedRequest, String> {
        let r = &step.request;
        let t = &self.config.templates;
        let mut url = match &r.target {
            Target::Url(u) => t
                .render_string(u, vars)
                .map_err(|e| format!("`url`: {e}"))?,
            Target::Path(p) => {
                let path = t
                    .render_string(p, vars)
                    .map_err(|e| format!("`path`: {e}"))?;
                self.config.base_url.join(&path)
            }
        };
        if !r.query.is_empty() {
            let mut pairs = Vec::new();
            for (name, value) in &r.query {
                let value = t
                    .render_value(value, vars)
                    .map_err(|e| format!("query `{name}`: {e}"))?;
                match value {
                    Value::Array(items) => {
                        pairs.extend(items.iter().map(|i| (name.clone(), value_to_text(i))))
                    }
                    Value::Null => {}
                    other => pairs.push((name.clone(), value_to_text(&other))),
                }
            }
            let mut parsed = reqwest::Url::parse(&url)
                .map_err(|e| format!("`{url}` is not a valid URL: {e}"))?;
            parsed.query_pairs_mut().extend_pairs(pairs);
            url = parsed.to_string();
        }
        let mut headers = Vec::new();
        for (name, value) in &r.headers {
            let value = t
                .render_value(value, vars)
                .map_err(|e| format!("header `{name}`: {e}"))?;
            headers.push((name.clone(), value_to_text(&value)));
        }
        let (body, default_type) = match &r.body {
            BodySpec::None => (None, None),
            BodySpec::Json(doc) => {
                let doc = t
                    .render_value(doc, vars)
                    .map_err(|e| format!("body: {e}"))?;
                (
                    Some(serde_json::to_vec(&doc).map_err(|e| e.to_string())?),
                    Some(FHIR_JSON),
                )
            }
            BodySpec::Raw { text } => (
                Some(
                    t.render_string(text, vars)
                        .map_err(|e| format!("body: {e}"))?
                        .into_bytes(),
                ),
                None,
            ),
            BodySpec::Form(fields) => {
                let mut form =
                    reqwest::Url::parse("http://form.invalid/").map_err(|e| e.to_string())?;
                {
                    let mut pairs = form.query_pairs_mut();
                    for (name, value) in fields {
                        let value = t
                            .render_value(value, vars)
                            .map_err(|e| format!("form `{name}`: {e}"))?;
                        pairs.append_pair(name, &value_to_text(&value));
                    }
                }
                (
                    Some(form.query().unwrap_or("").as_bytes().to_vec()),
                    Some("application/x-www-form-urlencoded"),
                )
            }
        };
        let has_content_type = headers
            .iter()
            .any(|(n, _)| n.eq_ignore_ascii_case("content-type"));
        if !has_content_type {
            let content_type = r.content_type.as_deref().or(default_type);
            if let (Some(ct), Some(_)) = (content_type, &body) {
                headers.push(("Content-Type".to_owned(), ct.to_owned()));
            }
        }
        Ok(PreparedRequest {
            method: step.request.method.as_str().to_owned(),
            url,
            headers,
            body,
        })
    }

    /// Whether `url` is on the target's origin: credentials go nowhere else.
    fn on_target(&self, url: &str) -> bool {
        match (reqwest::Url::parse(url), &self.target_origin) {
            (Ok(a), Some(origin)) => a.origin().ascii_serialization() == *origin,
            _ => false,
        }
    }

    /// Sends one step's request: with the target's credentials (fetched again once
    /// after a 401), waiting out `Retry-After` on 429 and 503 within the retry budget
    /// unless the step expects that status.
    async fn exchange(
        &self,
        step: &Step,
        mut request: PreparedRequest,
    ) -> Result<Exchange, (PreparedRequest, NoAnswer)> {
        let mut credential = None;
        let has_own = request
            .headers
            .iter()
            .any(|(n, _)| n.eq_ignore_ascii_case("authorization"));
        if step.auth && !has_own && !self.config.auth.is_none() && self.on_target(&request.url) {
            match self.config.auth.header().await {
                Ok(Some(h)) => {
                    request
                        .headers
                        .push(("Authorization".to_owned(), h.clone()));
                    credential = Some(h);
                }
                Ok(None) => {}
                Err(e) => return Err((request, NoAnswer::Auth(e))),
            }
        }
        let expects = |status: u16| {
            step.expect
                .status
                .as_ref()
                .is_some_and(|s| s.value.matches(status))
        };
        for (name, value) in &request.headers {
            self.config.redactor.add_header(name, value);
        }
        let mut waited = Duration::ZERO;
        let mut renewed = false;
        loop {
            let exchange = self.config.client.send(request).await?;
            let status = exchange.response.status;
            if status == 401
                && !renewed
                && !expects(401)
                && let Some(used) = credential.as_deref()
                && self.config.auth.reject(used).await
            {
                renewed = true;
                request = exchange.request;
                let fresh = match self.config.auth.header().await {
                    Ok(Some(h)) => h,
                    Ok(None) => {
                        return Err((
                            request,
                            NoAnswer::Auth(crate::auth::AuthError::NoTokenEndpoint),
                        ));
                    }
                    Err(e) => return Err((request, NoAnswer::Auth(e))),
                };
                for (name, value) in &mut request.headers {
                    if name.eq_ignore_ascii_case("authorization") {
                        *value = fresh.clone();
                    }
                }
                credential = Some(fresh);
                continue;
            }
            if matches!(status, 429 | 503)
                && !expects(status)
                && let Some(delay) = retry_after(&exchange.response)
            {
                if waited + delay > self.config.retry_budget {
                    return Err((
                        exchange.request,
                        NoAnswer::Throttled {
                            status,
                            waited_secs: waited.as_secs(),
                            budget_secs: self.config.retry_budget.as_secs(),
                        },
                    ));
                }
                tokio::time::sleep(delay).await;
                waited += delay;
                request = exchange.request;
                continue;
            }
            return Ok(exchange);
        }
    }

    async fn step(&self, step: &Step, phase: Phase, vars: &mut Map<String, Value>) -> StepRecord {
        let started = Instant::now();
        let mut record = blank_record(step, phase);
        record.method = Some(step.request.method.as_str().to_owned());
        let request = match self.prepare(step, vars) {
            Ok(r) => r,
            Err(e) => {
                record.verdict = Verdict::Error;
                record.message = Some(
                    self.config
                        .redactor
                        .text(&format!("cannot build the request: {e}")),
                );
                return record;
            }
        };
        record.url = Some(self.config.redactor.text(&request.url));
        let exchange = match self.exchange(step, request).await {
            Ok(ex) => ex,
            Err((request, why)) => {
                record.verdict = Verdict::Error;
                record.message = Some(self.config.redactor.text(&no_answer_message(&why)));
                record.transcript =
                    Some(transcript(&request, None, &self.config.redactor, usize::MAX).into());
                record.duration_secs = started.elapsed().as_secs_f64();
                return record;
            }
        };
        record.status = Some(exchange.response.status);
        let render = |v: &Value| self.config.templates.render_value(v, vars);
        record.checks = evaluate(&step.expect, &exchange.response, &render);
        let failed: Vec<&Check> = record.checks.iter().filter(|c| !c.passed).collect();
        if !failed.is_empty() {
            record.verdict = Verdict::Failed;
            record.message = Some(
                self.config.redactor.text(
                    &failed
                        .iter()
                        .map(|c| c.summary())
                        .collect::<Vec<_>>()
                        .join("; "),
                ),
            );
        } else {
            for (name, capture) in &step.capture {
                match capture_value(capture, &exchange.response) {
                    Ok(value) => {
                        if capture.secret {
                            self.config.redactor.add(value_to_text(&value));
                        }
                        record
                            .captures
                            .insert(name.clone(), self.config.redactor.value(&value));
                        vars.insert(name.clone(), value);
                    }
                    Err(why) => {
                        record.verdict = Verdict::Failed;
                        record.message = Some(
                            self.config
                                .redactor
                                .text(&format!("capture `{name}`: {why}")),
                        );
                        break;
                    }
                }
            }
        }
        for check in &mut record.checks {
            check.expected = self.config.redactor.text(&check.expected);
            check.actual = self.config.redactor.text(&check.actual);
            check.diff = check.diff.as_ref().map(|d| self.config.redactor.text(d));
        }
        // Every exchange is kept as evidence: a failing one whole, a passing one with
        // its bodies cut (a long suite's memory and run.json grow by this per step).
        let body_limit = if record.verdict == Verdict::Passed {
            self.config.passed_body_limit
        } else {
            usize::MAX
        };
        let text = transcript(
            &exchange.request,
            Some(&exchange.response),
            &self.config.redactor,
            body_limit,
        );
        record.transcript = Some(match (&self.config.spill, record.verdict) {
            // Only run.json shows a passing step's transcript, and only at the end.
            (Some(spill), Verdict::Passed) => spill.keep(text),
            _ => text.into(),
        });
        record.duration_secs = exchange.duration.as_secs_f64();
        record
    }
}

/// A step's record before anything happened: passed, with nothing measured.
fn blank_record(step: &Step, phase: Phase) -> StepRecord {
    StepRecord {
        name: step.name.clone(),
        line: step.line,
        phase,
        verdict: Verdict::Passed,
        message: None,
        method: None,
        url: None,
        status: None,
        duration_secs: 0.0,
        checks: Vec::new(),
        captures: Default::default(),
        transcript: None,
    }
}

/// `Retry-After` as seconds or an HTTP date; a date in the past is zero.
fn retry_after(response: &Response) -> Option<Duration> {
    let value = response.header("retry-after")?;
    let value = value.trim();
    if let Ok(secs) = value.parse::<u64>() {
        return Some(Duration::from_secs(secs));
    }
    let at = jiff::fmt::rfc2822::DateTimeParser::new()
        .parse_timestamp(value)
        .ok()?;
    let left = at.duration_since(jiff::Timestamp::now());
    Some(Duration::try_from(left).unwrap_or(Duration::ZERO))
}

fn no_answer_message(why: &NoAnswer) -> String {
    format!("no answer: {why}")
}

fn capture_value(capture: &Capture, response: &Response) -> Result<Value, String> {
    let raw = match &capture.source {
        CaptureSource::Header(header) => Value::String(
            response
                .header(header)
                .ok_or_else(|| format!("the response has no `{header}` header"))?,
        ),
        CaptureSource::Json(path) => {
            let body = response
                .json()
                .map_err(|_| "the response body is not JSON".to_owned())?;
            let nodes = path.select(body)?;
            match nodes.first() {
                Some(v) => (*v).clone(),
                None => return Err(format!("{} selects nothing", path.0)),
            }
        }
    };
    let Some(re) = &capture.regex else {
        return Ok(raw);
    };
    let text = value_to_text(&raw);
    let caps =
        re.0.captures(&text)
            .ok_or_else(|| format!("{text:?} does not match /{}/", re.0.as_str()))?;
    let m = caps
        .get(1)
        .or_else(|| caps.get(0))
        .map(|m| m.as_str())
        .unwrap_or_default();
    Ok(Value::String(m.to_owned()))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn with_retry_after(value: &str) -> Response {
        Response::new(429, vec![("retry-after".into(), value.into())], Vec::new())
    }

    #[test]
    fn retry_after_takes_seconds_or_an_http_date() {
        assert_eq!(
            retry_after(&with_retry_after("7")),
            Some(Duration::from_secs(7))
        );
        assert_eq!(
            retry_after(&with_retry_after("Sun, 06 Nov 1994 08:49:37 GMT")),
            Some(Duration::ZERO),
            "a date in the past"
        );
        let ahead = jiff::Timestamp::now() + jiff::SignedDuration::from_secs(120);
        let date = jiff::fmt::rfc2822::DateTimePrinter::new()
            .timestamp_to_rfc9110_string(&ahead)
            .unwrap();
        let wait = retry_after(&with_retry_after(&date)).unwrap();
        assert!(
            wait > Duration::from_secs(100) && wait <= Duration::from_secs(120),
            "{wait:?}"
        );
        assert_eq!(retry_after(&with_retry_after("soon")), None);
        assert_eq!(retry_after(&Response::new(429, vec![], vec![])), None);
    }
}
