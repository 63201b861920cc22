//! FHIR R4 validation of what a server returns: `expect.valid`, `--validate
//! off|warn|error` and the target's `validate:`, `validation.ignore` and `profiles:`.
//!
//! The validator itself is the `fhir-check` workspace crate, compiled in only with the
//! `validation` feature ([`BUILT_IN`]). Everything else here (the mode, the ignore
//! rules, the issues as the reports keep them) exists in every build, so a default
//! build reads the same target files and scenario files and says what it cannot do.

pub mod command;
mod profiles;

use std::path::PathBuf;
#[cfg(any(test, feature = "validation"))]
use std::sync::Arc;

use schemars::JsonSchema;
use serde::{Deserialize, Serialize};
use serde_json::Value;

use crate::assert::Check;
use crate::http::Response;
use crate::record::{FoundIssue, IssueSeverity};
use crate::scenario::schema::Pattern;

pub use profiles::ProfileError;

/// Whether this build can validate.
pub const BUILT_IN: bool = cfg!(feature = "validation");

/// How a default build says what it leaves out.
pub const HOW_TO_ENABLE: &str = "this fhirconf was built without FHIR validation; build it with \
`cargo install --path . --features validation`, or run `cargo run --release --features validation -- ...`";

/// The canonical URL of the profile every build with validation carries: US Core
/// STU3.1.1 Practitioner, which the Canvas Practitioner page (source document 000)
/// says it follows.
pub const US_CORE_PRACTITIONER: &str =
    "http://hl7.org/fhir/us/core/StructureDefinition/us-core-practitioner";

/// `--validate` and the target's `validate:`: what validation does to every FHIR
/// resource a step receives.
#[derive(
    Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize, JsonSchema, clap::ValueEnum,
)]
#[serde(rename_all = "lowercase")]
pub enum Mode {
    /// Not validated (a step's own `expect.valid` still is).
    Off,
    /// Validated; issues are shown in every report and fail nothing.
    #[default]
    Warn,
    /// Validated; a resource with an error issue fails its step.
    Error,
}

impl Mode {
    pub fn as_str(self) -> &'static str {
        match self {
            Mode::Off => "off",
            Mode::Warn => "warn",
            Mode::Error => "error",
        }
    }
}

/// One `validation.ignore` rule of the target: an issue matching every field given is
/// suppressed (kept in the reports as suppressed, and counted, never dropped).
#[derive(Debug, Clone)]
pub struct IgnoreRule {
    /// Searched in the issue's message.
    pub message: Option<Pattern>,
    /// Searched in the issue's FHIRPath location.
    pub path: Option<Pattern>,
    /// The issue's profile, by canonical URL (a `|version` suffix is not compared).
    pub profile: Option<String>,
}

impl PartialEq for IgnoreRule {
    fn eq(&self, other: &Self) -> bool {
        let text = |p: &Option<Pattern>| p.as_ref().map(|p| p.0.as_str().to_owned());
        text(&self.message) == text(&other.message)
            && text(&self.path) == text(&other.path)
            && self.profile == other.profile
    }
}

impl IgnoreRule {
    fn matches(&self, issue: &FoundIssue) -> bool {
        self.message
            .as_ref()
            .is_none_or(|p| p.0.is_match(&issue.message))
            && self
                .path
                .as_ref()
                .is_none_or(|p| p.0.is_match(&issue.location))
            && self.profile.as_ref().is_none_or(|want| {
                issue
                    .profile
                    .as_deref()
                    .is_some_and(|p| unversioned(p) == unversioned(want))
            })
    }
}

/// The validation settings of a run, before anything is loaded.
#[derive(Debug, Clone, Default)]
pub struct Settings {
    pub mode: Mode,
    /// Set when `--validate` or the target's `validate:` chose the mode.
    pub explicit: bool,
    pub ignore: Vec<IgnoreRule>,
    /// The target's `profiles:`: StructureDefinition files, folders, `.tgz` packages.
    pub profiles: Vec<PathBuf>,
}

/// The validator of a run: loaded once, shared by every scenario.
pub struct Validation {
    mode: Mode,
    ignore: Vec<IgnoreRule>,
    engine: Option<Engine>,
    profiles: Vec<String>,
    /// What bodies already validated gave, by (SHA-256 of the body, profile): a suite
    /// reads the same CapabilityStatement, OperationOutcome or search page again.
    seen: std::sync::Mutex<std::collections::HashMap<SeenKey, Vec<FoundIssue>>>,
}

/// A body's SHA-256 and the profile it was validated against.
type SeenKey = (String, Option<String>);

/// At most this many bodies' issues are remembered (then the memory starts over).
const SEEN_BODIES: usize = 1024;

impl std::fmt::Debug for Validation {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Validation")
            .field("mode", &self.mode)
            .field("ignore", &self.ignore.len())
            .field("loaded", &self.engine.is_some())
            .field("profiles", &self.profiles)
            .finish()
    }
}

impl Default for Validation {
    fn default() -> Self {
        Validation::off()
    }
}

/// What validating one response found.
#[derive(Debug, Clone, Default)]
pub struct Validated {
    /// Why the body was not validated: there was none, it is not JSON, or not a FHIR
    /// resource. `None` when it was.
    pub not_validated: Option<String>,
    /// Errors and warnings, suppressed ones included (best-practice notes are left
    /// out: `fhirconf validate --verbose` shows them).
    pub issues: Vec<FoundIssue>,
}

impl Validated {
    /// Issues that count: not suppressed, at `fails_at` or worse.
    pub fn failing(&self, fails_at: IssueSeverity) -> impl Iterator<Item = &FoundIssue> {
        self.issues
            .iter()
            .filter(move |i| !i.suppressed && i.severity <= fails_at)
    }
}

impl Validation {
    /// Nothing is validated.
    pub fn off() -> Self {
        Validation {
            mode: Mode::Off,
            ignore: Vec::new(),
            engine: None,
            profiles: Vec::new(),
            seen: Default::default(),
        }
    }

    /// Loads the R4 definitions, the built-in profile and `settings.profiles` when
    /// anything is to be validated (`needed`: a scenario of the run has
    /// `expect.valid`). A default build loads nothing and validates nothing.
    pub fn load(settings: &Settings, needed: bool) -> Result<Self, ProfileError> {
        let mode = settings.mode;
        if !BUILT_IN || (mode == Mode::Off && !needed) {
            return Ok(Validation {
                mode: if BUILT_IN { mode } else { Mode::Off },
                ignore: settings.ignore.clone(),
                engine: None,
                profiles: Vec::new(),
                seen: Default::default(),
            });
        }
        let (engine, profiles) = Engine::load(&settings.profiles)?;
        Ok(Validation {
            mode,
            ignore: settings.ignore.clone(),
            engine: Some(engine),
            profiles,
            seen: Default::default(),
        })
    }

    /// Whether responses can be validated in this run (a build with validation, and
    /// the engine loaded).
    pub fn can_validate(&self) -> bool {
        self.engine.is_some()
    }

    pub fn mode(&self) -> Mode {
        self.mode
    }

    /// Canonical URLs of the profiles loaded (the built-in one first).
    pub fn profiles(&self) -> &[String] {
        &self.profiles
    }

    pub fn ignore_rules(&self) -> usize {
        self.ignore.len()
    }

    /// Whether a profile of this canonical URL is loaded.
    pub fn has_profile(&self, url: &str) -> bool {
        self.profiles.iter().any(|p| p == unversioned(url))
    }

    /// Validates the response body when the mode or the step asks for it (`asked`,
    /// with a profile or not). `None`: nothing to validate. A body that is not a FHIR
    /// resource is only reported when the step asked.
    pub fn inspect(&self, response: &Response, asked: Option<Option<&str>>) -> Option<Validated> {
        let engine = self.engine.as_ref()?;
        if asked.is_none() && self.mode == Mode::Off {
            return None;
        }
        let not = |why: String| {
            asked.is_some().then(|| Validated {
                not_validated: Some(why),
                issues: Vec::new(),
            })
        };
        let body = match response.json() {
            Ok(body) => body,
            Err(why) => return not(why.to_owned()),
        };
        if !body.get("resourceType").is_some_and(Value::is_string) {
            return not("a JSON body that is not a FHIR resource (no resourceType)".to_owned());
        }
        let key = (
            crate::files::sha256_hex(&response.body),
            asked.flatten().map(str::to_owned),
        );
        let known = self
            .seen
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .get(&key)
            .cloned();
        let mut issues = match known {
            Some(issues) => issues,
            None => {
                // Validating a large resource takes milliseconds of CPU: off the async
                // runtime's worker, so the other scenarios' requests go on meanwhile.
                let issues = off_the_runtime(|| engine.validate(body, asked.flatten()));
                let mut seen = self
                    .seen
                    .lock()
                    .unwrap_or_else(std::sync::PoisonError::into_inner);
                if seen.len() >= SEEN_BODIES {
                    seen.clear();
                }
                seen.insert(key, issues.clone());
                issues
            }
        };
        for issue in &mut issues {
            issue.suppressed = self.ignore.iter().any(|rule| rule.matches(issue));
        }
        issues.shrink_to_fit();
        Some(Validated {
            not_validated: None,
            issues,
        })
    }

    /// Under `--validate error`, the check that fails a step whose response has an
    /// error issue (suppressed ones and those of the profile the step's own
    /// `expect.valid` names, which that check judges, aside).
    pub fn mode_check(&self, validated: &Validated, named: Option<&str>) -> Option<Check> {
        if self.mode != Mode::Error || validated.not_validated.is_some() {
            return None;
        }
        let errors: Vec<&FoundIssue> = validated
            .failing(IssueSeverity::Error)
            .filter(|i| {
                named.is_none_or(|n| i.profile.as_deref().map(unversioned) != Some(unversioned(n)))
            })
            .collect();
        let actual = if errors.is_empty() {
            "no error".to_owned()
        } else {
            format!(
                "{} error{}: {}",
                errors.len(),
                if errors.len() == 1 { "" } else { "s" },
                FoundIssue::in_one_line(&errors, FoundIssue::summary)
            )
        };
        Some(Check::new(
            "FHIR R4 validation (--validate error)",
            errors.is_empty(),
            "no error against FHIR R4 and the profiles the resource claims",
            actual,
        ))
    }
}

/// A canonical URL without its `|version`.
fn unversioned(url: &str) -> &str {
    url.split('|').next().unwrap_or(url)
}

/// Runs `f` with `block_in_place` on a multi-thread tokio runtime (its other tasks move
/// to another worker meanwhile), or simply runs it.
fn off_the_runtime<T>(f: impl FnOnce() -> T) -> T {
    use tokio::runtime::{Handle, RuntimeFlavor};
    match Handle::try_current() {
        Ok(handle) if handle.runtime_flavor() == RuntimeFlavor::MultiThread => {
            tokio::task::block_in_place(f)
        }
        _ => f(),
    }
}

#[cfg(feature = "validation")]
struct Engine(Arc<fhir_check::Validator>);

#[cfg(feature = "validation")]
impl Engine {
    fn load(paths: &[PathBuf]) -> Result<(Self, Vec<String>), ProfileError> {
        let mut validator = fhir_check::Validator::new().map_err(|e| ProfileError {
            file: "the FHIR R4 core definitions".to_owned(),
            reason: e.to_string(),
        })?;
        profiles::built_in(&mut validator)?;
        for path in paths {
            profiles::load(&mut validator, path)?;
        }
        let loaded = validator.profiles().to_vec();
        Ok((Engine(Arc::new(validator)), loaded))
    }

    fn validate(&self, body: &Value, profile: Option<&str>) -> Vec<FoundIssue> {
        use fhir_check::Severity;
        self.0
            .validate(body, profile)
            .into_iter()
            .filter_map(|i| {
                let severity = match i.severity {
                    Severity::Error => IssueSeverity::Error,
                    Severity::Warning => IssueSeverity::Warning,
                    Severity::Information => return None,
                };
                Some(FoundIssue {
                    severity,
                    location: i.path,
                    message: i.message,
                    profile: i.profile,
                    rule: i.rule,
                    suppressed: false,
                })
            })
            .collect()
    }
}

/// A default build has no engine: [`Validation::load`] never makes one.
#[cfg(not(feature = "validation"))]
enum Engine {}

#[cfg(not(feature = "validation"))]
impl Engine {
    fn load(_: &[PathBuf]) -> Result<(Self, Vec<String>), ProfileError> {
        Err(ProfileError {
            file: "the FHIR R4 core definitions".to_owned(),
            reason: HOW_TO_ENABLE.to_owned(),
        })
    }

    fn validate(&self, _: &Value, _: Option<&str>) -> Vec<FoundIssue> {
        match *self {}
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn issue(severity: IssueSeverity, location: &str, message: &str) -> FoundIssue {
        FoundIssue {
            severity,
            location: location.to_owned(),
            message: message.to_owned(),
            profile: None,
            rule: None,
            suppressed: false,
        }
    }

    fn pattern(text: &str) -> Option<Pattern> {
        Some(Pattern(Arc::new(regex::Regex::new(text).unwrap())))
    }

    #[test]
    fn an_ignore_rule_needs_every_field_it_gives_to_match() {
        let mut i = issue(
            IssueSeverity::Error,
            "Practitioner.gender",
            "\"M\" is not in",
        );
        i.profile = Some("http://x/p|1.0".to_owned());
        let rule = |message, path, profile: Option<&str>| IgnoreRule {
            message: pattern_opt(message),
            path: pattern_opt(path),
            profile: profile.map(str::to_owned),
        };
        fn pattern_opt(t: Option<&str>) -> Option<Pattern> {
            t.and_then(pattern)
        }
        assert!(rule(Some("not in"), None, None).matches(&i));
        assert!(rule(None, Some(r"\.gender$"), Some("http://x/p")).matches(&i));
        assert!(!rule(Some("not in"), Some("name"), None).matches(&i));
        assert!(!rule(None, None, Some("http://x/other")).matches(&i));
        // A profile rule never matches an issue of the base specification.
        i.profile = None;
        assert!(!rule(None, None, Some("http://x/p")).matches(&i));
    }

    #[test]
    fn suppressed_issues_and_milder_ones_do_not_fail() {
        let mut suppressed = issue(IssueSeverity::Error, "A.b", "bad");
        suppressed.suppressed = true;
        let v = Validated {
            not_validated: None,
            issues: vec![suppressed, issue(IssueSeverity::Warning, "A.c", "meh")],
        };
        assert_eq!(v.failing(IssueSeverity::Error).count(), 0);
        assert_eq!(v.failing(IssueSeverity::Warning).count(), 1);
    }

    #[test]
    fn the_error_mode_check_leaves_the_named_profile_to_the_steps_own_check() {
        let validation = Validation {
            mode: Mode::Error,
            ..Validation::off()
        };
        let mut profiled = issue(IssueSeverity::Error, "Practitioner.identifier", "min 1");
        profiled.profile = Some("http://x/p".to_owned());
        let v = Validated {
            not_validated: None,
            issues: vec![profiled],
        };
        let named = validation.mode_check(&v, Some("http://x/p|3.1.1")).unwrap();
        assert!(named.passed, "{named:?}");
        let unnamed = validation.mode_check(&v, None).unwrap();
        assert!(!unnamed.passed);
        assert!(
            unnamed.actual.contains("Practitioner.identifier: min 1"),
            "{unnamed:?}"
        );
        let warn = Validation {
            mode: Mode::Warn,
            ..Validation::off()
        };
        assert!(warn.mode_check(&v, None).is_none());
    }
}
