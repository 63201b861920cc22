//! Turns validated [`Scenario`]s into HTTP exchanges and verdicts.
//! This module never formats output for people: see [`crate::report`].

use std::sync::Arc;
use std::time::{Duration, Instant};

use serde_json::{Map, Value};

use crate::assert::{Check, Judging, evaluate};
use crate::auth::{Auth, AuthError};
use crate::fhirpath_expr::Evaluation;
use crate::http::{BaseUrl, Exchange, HttpClient, NoAnswer, PreparedRequest, Response, transcript};
use crate::interrupt::{Cut, Interrupt};
use crate::prepare::prepare;
use crate::record::{Phase, ScenarioRecord, StepRecord, Transcript, Verdict};
use crate::redact::Redactor;
use crate::scenario::model::{Capture, CaptureSource, Scenario, Step};
use crate::spill::Spill;
use crate::template::{SlotClock, Templates, value_to_text};
use crate::validation::Validation;

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
    /// After a signal, how long the cleanups of started scenarios may take, counted
    /// from the signal (cleanups already in flight included).
    pub cleanup_budget: Duration,
    /// Where passing steps' transcripts wait for `run.json`; `None` keeps them in memory.
    pub spill: Option<Arc<Spill>>,
    /// FHIR validation of responses (`--validate`, `expect.valid`), loaded once per run.
    pub validation: Arc<Validation>,
    /// For a runner on a thread's own runtime: the run's shared runtime, where token
    /// requests go (the token endpoint's pooled connections are shared by every
    /// thread, so their tasks must live on a runtime that is always driven).
    pub shared_runtime: Option<tokio::runtime::Handle>,
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
            validation: Arc::new(Validation::off()),
            shared_runtime: None,
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

    /// The same runner with an HTTP connection pool of its own, for a thread that runs
    /// scenarios on a runtime of its own (same run id, credentials, variables, spill
    /// file and validation).
    pub fn with_own_pool(
        &self,
        shared: tokio::runtime::Handle,
    ) -> Result<Self, crate::http::ClientError> {
        let c = &self.config;
        Ok(Runner {
            config: RunnerConfig {
                client: c.client.with_own_pool()?,
                base_url: c.base_url.clone(),
                vars: c.vars.clone(),
                auth: Arc::clone(&c.auth),
                redactor: c.redactor.clone(),
                templates: c.templates.clone(),
                passed_body_limit: c.passed_body_limit,
                retry_budget: c.retry_budget,
                interrupt: c.interrupt.clone(),
                cleanup_budget: c.cleanup_budget,
                spill: c.spill.clone(),
                validation: Arc::clone(&c.validation),
                shared_runtime: Some(shared),
            },
            target_origin: self.target_origin.clone(),
            run_id: self.run_id.clone(),
        })
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
            missing_inputs: Vec::new(),
            left_behind: Vec::new(),
            duration_secs: 0.0,
            steps: Vec::new(),
        }
    }

    /// Runs the steps in order until one does not pass, then every cleanup step.
    pub async fn run(&self, scenario: &Scenario) -> ScenarioRecord {
        let started = Instant::now();
        let mut record = Self::not_run(scenario, Verdict::Passed, String::new());
        record.reason = None;
        let mut vars = match self.scenario_vars(scenario) {
            Ok(vars) => vars,
            Err(reason) => {
                record.verdict = Verdict::Error;
                record.reason = Some(reason);
                record.duration_secs = started.elapsed().as_secs_f64();
                return record;
            }
        };
        self.steps(scenario, &mut vars, &mut record).await;
        self.cleanup(scenario, &mut vars, &mut record).await;
        record.left_behind = self.left_behind(scenario, &vars);
        record.duration_secs = started.elapsed().as_secs_f64();
        record
    }

    /// The scenario's `leaves_behind`, rendered: those whose variables were captured
    /// (a record never created is not left behind).
    fn left_behind(&self, scenario: &Scenario, vars: &Map<String, Value>) -> Vec<String> {
        scenario
            .leaves_behind
            .iter()
            .filter(|t| {
                crate::template::referenced_vars(t)
                    .is_ok_and(|names| names.iter().all(|n| vars.contains_key(n)))
            })
            .filter_map(|t| self.config.templates.render_string(t, vars).ok())
            .map(|s| self.config.redactor.text(&s))
            .collect()
    }

    /// The run's variables, the built-in ones, then the scenario's defaults in order
    /// (the target's and the command line's win), then its `each:` row's fields (which
    /// win over all); why one cannot be rendered.
    fn scenario_vars(&self, scenario: &Scenario) -> Result<Map<String, Value>, String> {
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
            let v = self
                .config
                .templates
                .render_value(value, &vars)
                .map_err(|e| format!("variable `{name}`: {e}"))?;
            vars.insert(name.clone(), v);
        }
        for (name, value) in &scenario.row {
            let v = self
                .config
                .templates
                .render_value(value, &vars)
                .map_err(|e| format!("row field `{name}`: {e}"))?;
            vars.insert(name.clone(), v);
        }
        Ok(vars)
    }

    /// The steps in order, until one does not pass or the run is interrupted.
    async fn steps(
        &self,
        scenario: &Scenario,
        vars: &mut Map<String, Value>,
        record: &mut ScenarioRecord,
    ) {
        for step in scenario.steps.iter() {
            if self.config.interrupt.is_set() {
                record.verdict = Verdict::Error;
                record.reason = Some(format!(
                    "interrupted before step '{}' (line {})",
                    step.name, step.line
                ));
                return;
            }
            let step_record = tokio::select! {
                r = self.step(step, Phase::Step, vars) => r,
                () = self.config.interrupt.wait() => {
                    let mut r = blank_record(step, Phase::Step);
                    r.verdict = Verdict::Error;
                    r.message = Some("interrupted while waiting for the answer".to_owned());
                    r
                }
            };
            let verdict = step_record.verdict;
            first_problem(record, "step", &step_record);
            record.steps.push(step_record);
            if verdict != Verdict::Passed {
                self.keep_write_before(&mut record.steps);
                return;
            }
        }
    }

    /// When a step fails right after a write that passed (a read-back), the write's
    /// answer may be what was wrong: its transcript is kept in memory as text, so the
    /// failure text can show it (passing transcripts otherwise wait in the spill file).
    fn keep_write_before(&self, steps: &mut [StepRecord]) {
        let [.., before, _failed] = steps else {
            return;
        };
        let wrote = matches!(
            before.method.as_deref(),
            Some("POST" | "PUT" | "PATCH" | "DELETE")
        );
        if let (true, Some(spill), Some(t)) = (wrote, &self.config.spill, &before.transcript) {
            before.transcript = Some(Transcript::Text(spill.text_of(t)));
        }
    }

    /// Every cleanup step whose variables were captured. After a signal they have the
    /// cleanup budget, counted from the signal, in flight or not; a second signal
    /// abandons them. A cut cleanup makes a passing scenario an error: it did not finish.
    async fn cleanup(
        &self,
        scenario: &Scenario,
        vars: &mut Map<String, Value>,
        record: &mut ScenarioRecord,
    ) {
        let (interrupt, budget) = (&self.config.interrupt, self.config.cleanup_budget);
        for step in scenario.cleanup.iter() {
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
            let cut = match interrupt.cut_already(budget) {
                Some(cut) => Err((cut, false)),
                None => tokio::select! {
                    biased;
                    r = self.step(step, Phase::Cleanup, vars) => Ok(r),
                    cut = interrupt.cut(budget) => Err((cut, true)),
                },
            };
            let step_record = match cut {
                Ok(r) => r,
                Err((cut, in_flight)) => {
                    let mut r = blank_record(step, Phase::Cleanup);
                    r.verdict = Verdict::Error;
                    r.message = Some(cut_message(cut, in_flight, budget));
                    first_problem(record, "cleanup step", &r);
                    r
                }
            };
            record.steps.push(step_record);
        }
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
        let mut credential = match self.credential_for(step, &request).await {
            Ok(c) => c,
            Err(e) => return Err((request, NoAnswer::Auth(e))),
        };
        if let Some(h) = &credential {
            request
                .headers
                .push(("Authorization".to_owned(), h.clone()));
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
            request = exchange.request;
            if status == 401
                && !renewed
                && !expects(401)
                && let Some(used) = credential.as_deref()
                && self.config.auth.reject(used).await
            {
                renewed = true;
                match self.renew(&mut request).await {
                    Ok(fresh) => credential = Some(fresh),
                    Err(e) => return Err((request, NoAnswer::Auth(e))),
                }
                continue;
            }
            if matches!(status, 429 | 503)
                && !expects(status)
                && let Some(delay) = retry_after(&exchange.response)
            {
                // Saturating: a server's Retry-After may be any number.
                waited = waited.saturating_add(delay);
                if waited > self.config.retry_budget {
                    let waited_secs = waited.saturating_sub(delay).as_secs();
                    let budget_secs = self.config.retry_budget.as_secs();
                    return Err((
                        request,
                        NoAnswer::Throttled {
                            status,
                            waited_secs,
                            budget_secs,
                        },
                    ));
                }
                tokio::time::sleep(delay).await;
                continue;
            }
            return Ok(Exchange {
                request,
                ..exchange
            });
        }
    }

    /// The `Authorization` value this step's request gets: none when the step says
    /// `auth: false`, sets its own, or goes to another origin than the target's.
    async fn credential_for(
        &self,
        step: &Step,
        request: &PreparedRequest,
    ) -> Result<Option<String>, AuthError> {
        let has_own = request
            .headers
            .iter()
            .any(|(n, _)| n.eq_ignore_ascii_case("authorization"));
        if !step.auth || has_own || self.config.auth.is_none() || !self.on_target(&request.url) {
            return Ok(None);
        }
        self.auth_header().await
    }

    /// The credential, fetched on the shared runtime when this runner has its own.
    async fn auth_header(&self) -> Result<Option<String>, AuthError> {
        let Some(shared) = &self.config.shared_runtime else {
            return self.config.auth.header().await;
        };
        let auth = Arc::clone(&self.config.auth);
        shared
            .spawn(async move { auth.header().await })
            .await
            .unwrap_or_else(|e| {
                Err(AuthError::TokenEndpoint {
                    kind: crate::auth::TokenFailure::Other,
                    message: format!("the token request's task failed: {e}"),
                })
            })
    }

    /// After a 401: a fresh token in place of the rejected one.
    async fn renew(&self, request: &mut PreparedRequest) -> Result<String, AuthError> {
        let fresh = self
            .auth_header()
            .await?
            .ok_or(AuthError::NoTokenEndpoint)?;
        for (name, value) in &mut request.headers {
            if name.eq_ignore_ascii_case("authorization") {
                *value = fresh.clone();
            }
        }
        Ok(fresh)
    }

    /// One step: its request prepared and sent, the response judged, its captures
    /// taken, and the exchange kept as evidence.
    async fn step(&self, step: &Step, phase: Phase, vars: &mut Map<String, Value>) -> StepRecord {
        let started = Instant::now();
        let redactor = &self.config.redactor;
        let mut record = blank_record(step, phase);
        record.method = Some(step.request.method.as_str().to_owned());
        let c = &self.config;
        let request = match prepare(&step.request, vars, &c.templates, &c.base_url) {
            Ok(r) => r,
            Err(e) => {
                record.verdict = Verdict::Error;
                record.message = Some(redactor.text(&format!("cannot build the request: {e}")));
                return record;
            }
        };
        record.url = Some(redactor.text(&request.url));
        let polled = match self.send_until(step, request, vars).await {
            Ok(polled) => polled,
            Err((request, why, earlier)) => {
                record.verdict = Verdict::Error;
                record.message = Some(redactor.text(&no_answer_message(&why)));
                let last = transcript(&request, None, redactor, usize::MAX);
                record.transcript = Some(format!("{earlier}{last}").into());
                record.duration_secs = started.elapsed().as_secs_f64();
                return record;
            }
        };
        let exchange = &polled.exchange;
        record.status = Some(exchange.response.status);
        self.judge(step, exchange, vars, &mut record);
        if let Some(retry) = &step.retry {
            record.attempts = Some(polled.attempts);
            record.repeated_unsafe = retry.repeats_unsafe && polled.attempts > 1;
            self.judge_until(&polled, &mut record);
        }
        self.keep_transcript(exchange, &polled.earlier, &mut record);
        record.duration_secs = if step.retry.is_some() {
            started.elapsed().as_secs_f64()
        } else {
            exchange.duration.as_secs_f64()
        };
        record
    }

    /// The step's exchange. With `retry:`, the request is sent again after each wait
    /// until a response meets `until`, the attempts are spent, or the next wait would
    /// pass the retry budget; the answers before the last are kept as text.
    async fn send_until(
        &self,
        step: &Step,
        request: PreparedRequest,
        vars: &Map<String, Value>,
    ) -> Result<Polled, (PreparedRequest, NoAnswer, String)> {
        let Some(retry) = &step.retry else {
            return match self.exchange(step, request).await {
                Ok(exchange) => Ok(Polled::once(exchange)),
                Err((request, why)) => Err((request, why, String::new())),
            };
        };
        let render = |v: &Value| self.config.templates.render_value(v, vars);
        let mut earlier = String::new();
        let (mut wait, mut waited) = (retry.interval, Duration::ZERO);
        let mut attempt = 1;
        loop {
            let exchange = match self.exchange(step, request.clone()).await {
                Ok(exchange) => exchange,
                Err((request, why)) => return Err((request, why, earlier)),
            };
            let validated = retry.until.valid.as_ref().and_then(|v| {
                (self.config.validation)
                    .inspect(&exchange.response, Some(v.value.profile.as_deref()))
            });
            let unmet: Vec<Check> = {
                let with = Judging {
                    render: &render,
                    vars,
                    validated: validated.as_ref(),
                    request: Some(&exchange.request),
                };
                evaluate(&retry.until, &exchange.response, &with)
            }
            .into_iter()
            .filter(|c| !c.passed)
            .collect();
            let out_of_budget = waited.saturating_add(wait) > self.config.retry_budget;
            if unmet.is_empty() || attempt >= retry.times || out_of_budget {
                let stopped = (!unmet.is_empty() && attempt < retry.times).then(|| {
                    format!(
                        "waiting {} s more would pass the retry budget of {} s (the target's `retry_budget`)",
                        crate::interrupt::seconds(wait),
                        crate::interrupt::seconds(self.config.retry_budget)
                    )
                });
                return Ok(Polled {
                    exchange,
                    earlier,
                    attempts: attempt,
                    unmet,
                    stopped,
                });
            }
            let why: Vec<String> = unmet.iter().map(Check::summary).collect();
            earlier.push_str(&format!(
                "# attempt {attempt} of {}: `until` did not hold ({}); next in {} s\n",
                retry.times,
                self.config.redactor.text(&why.join("; ")),
                crate::interrupt::seconds(wait)
            ));
            earlier.push_str(&transcript(
                &exchange.request,
                Some(&exchange.response),
                &self.config.redactor,
                self.config.passed_body_limit,
            ));
            tokio::time::sleep(wait).await;
            waited = waited.saturating_add(wait);
            wait = wait.mul_f64(retry.backoff).min(Duration::from_secs(3600));
            attempt += 1;
        }
    }

    /// After polling: `until` not met by the last answer fails the step, its checks
    /// first, with how many attempts were made.
    fn judge_until(&self, polled: &Polled, record: &mut StepRecord) {
        if polled.unmet.is_empty() {
            return;
        }
        let redactor = &self.config.redactor;
        let mut unmet: Vec<Check> = polled
            .unmet
            .iter()
            .map(|c| {
                let mut c = c.clone();
                c.what = format!("retry.until: {}", c.what);
                c.expected = redactor.text(&c.expected);
                c.actual = redactor.text(&c.actual);
                c
            })
            .collect();
        let plural = if polled.attempts == 1 { "" } else { "s" };
        let mut message = format!(
            "`until` did not hold after {} attempt{plural}",
            polled.attempts
        );
        if let Some(stopped) = &polled.stopped {
            message.push_str(&format!(" (stopped: {stopped})"));
        }
        let summaries: Vec<String> = unmet.iter().map(Check::summary).collect();
        message = format!("{message}: {}", summaries.join("; "));
        if let Some(rest) = record.message.take() {
            message = format!("{message}; {rest}");
        }
        unmet.append(&mut record.checks);
        record.checks = unmet;
        record.message = Some(message);
        if record.verdict == Verdict::Passed {
            record.verdict = Verdict::Failed;
        }
    }

    /// Checks the response; when every check holds, takes the captures into `vars`.
    fn judge(
        &self,
        step: &Step,
        exchange: &Exchange,
        vars: &mut Map<String, Value>,
        record: &mut StepRecord,
    ) {
        let redactor = &self.config.redactor;
        let render = |v: &Value| self.config.templates.render_value(v, vars);
        let named = step
            .expect
            .valid
            .as_ref()
            .map(|v| v.value.profile.as_deref());
        let validation = &self.config.validation;
        let validated = validation.inspect(&exchange.response, named);
        let with = Judging {
            render: &render,
            vars,
            validated: validated.as_ref(),
            request: Some(&exchange.request),
        };
        record.checks = evaluate(&step.expect, &exchange.response, &with);
        if let Some(warn) = &step.warn {
            let mut warnings = evaluate(warn, &exchange.response, &with);
            for w in &mut warnings {
                w.warning = true;
            }
            record.checks.append(&mut warnings);
        }
        if let Some(validated) = validated {
            record
                .checks
                .extend(validation.mode_check(&validated, named.flatten()));
            record.validation = validated.issues;
            // Messages quote the response ("\"M\" is not in ..."), which may echo a secret.
            for issue in &mut record.validation {
                issue.message = redactor.text(&issue.message);
                issue.location = redactor.text(&issue.location);
            }
        }
        let failed: Vec<String> = record
            .checks
            .iter()
            .filter(|c| c.fails())
            .map(Check::summary)
            .collect();
        if !failed.is_empty() {
            record.verdict = Verdict::Failed;
            record.message = Some(redactor.text(&failed.join("; ")));
        } else if let Err(why) = self.take_captures(step, &exchange.response, vars, record) {
            record.verdict = Verdict::Failed;
            record.message = Some(redactor.text(&why));
        } else {
            let warnings: Vec<String> = record
                .checks
                .iter()
                .filter(|c| c.warning && !c.passed)
                .map(Check::summary)
                .collect();
            if !warnings.is_empty() {
                record.message = Some(redactor.text(&format!("warning: {}", warnings.join("; "))));
            }
        }
        for check in &mut record.checks {
            check.expected = redactor.text(&check.expected);
            check.actual = redactor.text(&check.actual);
            check.diff = check.diff.as_ref().map(|d| redactor.text(d));
        }
    }

    /// Each capture of the step into `vars` (and the record, masked), until one fails.
    fn take_captures(
        &self,
        step: &Step,
        response: &Response,
        vars: &mut Map<String, Value>,
        record: &mut StepRecord,
    ) -> Result<(), String> {
        let redactor = &self.config.redactor;
        for (name, capture) in &step.capture {
            let value = capture_value(capture, response, vars)
                .map_err(|why| format!("capture `{name}`: {why}"))?;
            if capture.secret {
                let text = value_to_text(&value);
                if crate::redact::too_short(&text) {
                    return Err(format!(
                        "capture `{name}` is secret, but its value is shorter than {} characters and cannot be masked safely; it was not kept",
                        crate::redact::MIN_SECRET_LEN
                    ));
                }
                redactor.add(text);
            }
            record.captures.insert(name.clone(), redactor.value(&value));
            vars.insert(name.clone(), value);
        }
        Ok(())
    }

    /// Every exchange is kept as evidence: a failing one whole, a passing one with its
    /// bodies cut (a long suite's memory and run.json grow by this per step), and then
    /// in the spill file, since only run.json shows it, at the end.
    fn keep_transcript(&self, exchange: &Exchange, earlier: &str, record: &mut StepRecord) {
        let body_limit = if record.verdict == Verdict::Passed {
            self.config.passed_body_limit
        } else {
            usize::MAX
        };
        let last = transcript(
            &exchange.request,
            Some(&exchange.response),
            &self.config.redactor,
            body_limit,
        );
        let text = if earlier.is_empty() {
            last
        } else {
            format!("{earlier}# the last attempt\n{last}")
        };
        record.transcript = Some(match (&self.config.spill, record.verdict) {
            (Some(spill), Verdict::Passed) => spill.keep(text),
            _ => text.into(),
        });
    }
}

/// A step that did not pass gives a scenario that has passed so far its verdict and its
/// reason (`step 'x' (line 7): ...`); a later one changes nothing.
fn first_problem(record: &mut ScenarioRecord, what: &str, step: &StepRecord) {
    if step.verdict == Verdict::Passed || record.verdict != Verdict::Passed {
        return;
    }
    record.verdict = step.verdict;
    record.reason = Some(format!(
        "{what} '{}' (line {}): {}",
        step.name,
        step.line,
        step.message.as_deref().unwrap_or_default()
    ));
}

/// The answer a step is judged on, with what polling saw before it.
struct Polled {
    exchange: Exchange,
    /// The transcripts of the attempts before the last, each after a `#` line.
    earlier: String,
    attempts: u32,
    /// `until`'s checks the last answer did not meet (empty without `retry:`).
    unmet: Vec<Check>,
    /// Why polling stopped before its attempts were spent.
    stopped: Option<String>,
}

impl Polled {
    fn once(exchange: Exchange) -> Self {
        Polled {
            exchange,
            earlier: String::new(),
            attempts: 1,
            unmet: Vec::new(),
            stopped: None,
        }
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
        attempts: None,
        repeated_unsafe: false,
        duration_secs: 0.0,
        checks: Vec::new(),
        validation: Vec::new(),
        captures: Default::default(),
        transcript: None,
    }
}

/// Why a cleanup step after a signal has no answer: cut while in flight, or not started.
fn cut_message(cut: Cut, in_flight: bool, budget: Duration) -> String {
    let secs = crate::interrupt::seconds(budget);
    match (cut, in_flight) {
        (Cut::Budget, true) => {
            format!("interrupted: the cleanup did not finish within {secs} s of the signal")
        }
        (Cut::Budget, false) => {
            format!("interrupted: not run, the {secs} s after the signal were spent")
        }
        (Cut::Abandoned, true) => {
            "interrupted again: the cleanup was abandoned before it finished".to_owned()
        }
        (Cut::Abandoned, false) => {
            "interrupted again: not run, the cleanups were abandoned".to_owned()
        }
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

fn capture_value(
    capture: &Capture,
    response: &Response,
    vars: &Map<String, Value>,
) -> Result<Value, String> {
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
        CaptureSource::FhirPath(expr) => {
            let body = response
                .json()
                .map_err(|_| "the response body is not JSON".to_owned())?;
            let items = expr.evaluate(&Evaluation::new(body, vars))?;
            match items.values.into_iter().next() {
                Some(v) => v,
                None => return Err(format!("{} yields nothing", expr.text())),
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
