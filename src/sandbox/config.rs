//! What a sandbox is told at start: features (how a real server may be configured)
//! and defects (which rule to break on purpose).

use std::collections::{BTreeMap, BTreeSet};

use crate::sandbox::defects::DEFECTS;

/// How to start a sandbox: its features, the rules it breaks on purpose, and its body limit.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SandboxConfig {
    /// Feature name → value, e.g. `"double_booking" -> "forbidden"`; see [`FEATURES`].
    pub features: BTreeMap<String, String>,
    /// Rule ids to break, e.g. `"APPT-CANCELLED-FINAL"`; see [`DEFECTS`].
    pub defects: BTreeSet<String>,
    /// Largest request body accepted; larger ones get 413 with an OperationOutcome.
    pub max_body_bytes: usize,
}

impl Default for SandboxConfig {
    fn default() -> Self {
        Self {
            features: BTreeMap::new(),
            defects: BTreeSet::new(),
            max_body_bytes: 1024 * 1024,
        }
    }
}

/// One configurable behaviour of the sandbox, as `--list-features` shows it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct FeatureInfo {
    pub name: &'static str,
    pub values: &'static str,
    pub default: &'static str,
    pub description: &'static str,
}

/// Every feature the sandbox understands, with its values and default.
pub const FEATURES: &[FeatureInfo] = &[
    FeatureInfo {
        name: "double_booking",
        values: "allowed | forbidden",
        default: "allowed",
        description: "overlapping appointments of one practitioner: allowed → 201 (the documented \
                      default), forbidden → 422 \"This appointment time is no longer available.\"",
    },
    FeatureInfo {
        name: "versioning",
        values: "true | false",
        default: "true",
        description: "true: ETag W/\"vid\" and If-Match with a stale version → 412; false: If-Match \
                      is ignored and no ETag is sent",
    },
    FeatureInfo {
        name: "auth",
        values: "off | on",
        default: "off",
        description: "on: every FHIR interaction but GET /metadata needs a bearer token from \
                      POST /auth/token (client credentials, or a SMART Backend Services \
                      assertion) with a fitting scope",
    },
    FeatureInfo {
        name: "token_lifetime",
        values: "N (seconds, a positive integer)",
        default: "3600",
        description: "how long a token from POST /auth/token is accepted (its expires_in)",
    },
    FeatureInfo {
        name: "rate_limit",
        values: "off | N (a positive integer)",
        default: "off",
        description: "N: more than N requests from one client within a sliding 10 s window → 429 \
                      OperationOutcome (throttled) with Retry-After",
    },
];

impl SandboxConfig {
    /// Every feature with the value this configuration runs with: the defaults of
    /// [`FEATURES`], overridden by `features`. What a target for this sandbox declares.
    pub fn declared_features(&self) -> BTreeMap<String, String> {
        let mut out: BTreeMap<String, String> = FEATURES
            .iter()
            .map(|f| (f.name.to_owned(), f.default.to_owned()))
            .collect();
        out.extend(self.features.clone());
        out
    }

    /// Checks every feature name and value, every defect id and the body limit.
    /// Errors name the bad feature name/value or unknown defect id and list the valid ones.
    pub fn validate(&self) -> Result<(), ConfigError> {
        for (name, value) in &self.features {
            let Some(info) = FEATURES.iter().find(|f| f.name == name) else {
                return Err(ConfigError::UnknownFeature { name: name.clone() });
            };
            if parse_value(name, value).is_none() {
                return Err(ConfigError::BadValue {
                    name: name.clone(),
                    value: value.clone(),
                    valid: info.values,
                });
            }
        }
        if let Some(id) = self
            .defects
            .iter()
            .find(|id| !DEFECTS.iter().any(|d| d.id == id.as_str()))
        {
            return Err(ConfigError::UnknownDefect { id: id.clone() });
        }
        if self.max_body_bytes == 0 {
            return Err(ConfigError::NoBodyLimit);
        }
        Ok(())
    }
}

/// Why a sandbox configuration is refused: what is wrong, and what would be valid.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ConfigError {
    #[error("unknown feature `{name}`; valid features: {}", feature_names())]
    UnknownFeature { name: String },
    #[error("invalid value `{value}` for feature `{name}`; valid values: {valid}")]
    BadValue {
        name: String,
        value: String,
        /// The values the feature accepts, as [`FeatureInfo::values`] lists them.
        valid: &'static str,
    },
    #[error("unknown defect `{id}`; valid defects: {}", defect_ids())]
    UnknownDefect { id: String },
    #[error("max_body_bytes must be at least 1")]
    NoBodyLimit,
}

/// Listed in the errors, so a typo can be put right without `--list-features`.
fn feature_names() -> String {
    FEATURES
        .iter()
        .map(|f| f.name)
        .collect::<Vec<_>>()
        .join(", ")
}

fn defect_ids() -> String {
    DEFECTS.iter().map(|d| d.id).collect::<Vec<_>>().join(", ")
}

/// A parsed feature value; `None` when the value is not one the feature accepts.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Value {
    Flag(bool),
    Limit(Option<u32>),
}

fn parse_value(name: &str, value: &str) -> Option<Value> {
    match (name, value) {
        ("double_booking", "allowed") => Some(Value::Flag(false)),
        ("double_booking", "forbidden") => Some(Value::Flag(true)),
        ("versioning", "true") | ("auth", "on") => Some(Value::Flag(true)),
        ("versioning", "false") | ("auth", "off") => Some(Value::Flag(false)),
        ("rate_limit", "off") => Some(Value::Limit(None)),
        ("rate_limit" | "token_lifetime", n) => match n.parse::<u32>() {
            Ok(n) if n > 0 => Some(Value::Limit(Some(n))),
            _ => None,
        },
        _ => None,
    }
}

/// The configuration as the server uses it: typed, with defaults filled in.
#[derive(Debug, Clone)]
pub(crate) struct Settings {
    pub(crate) double_booking_forbidden: bool,
    pub(crate) versioning: bool,
    pub(crate) auth: bool,
    pub(crate) rate_limit: Option<u32>,
    pub(crate) token_lifetime: std::time::Duration,
    pub(crate) max_body_bytes: usize,
    defects: BTreeSet<String>,
}

impl Settings {
    /// Features with an invalid value keep their default: [`SandboxConfig::validate`] is
    /// the place that refuses them, and a router must never panic.
    pub(crate) fn from_config(config: SandboxConfig) -> Self {
        let flag = |name: &str, default: bool| match config
            .features
            .get(name)
            .and_then(|v| parse_value(name, v))
        {
            Some(Value::Flag(b)) => b,
            _ => default,
        };
        let limit = |name: &str| match config.features.get(name).and_then(|v| parse_value(name, v))
        {
            Some(Value::Limit(n)) => n,
            _ => None,
        };
        let rate_limit = limit("rate_limit");
        let token_lifetime =
            std::time::Duration::from_secs(u64::from(limit("token_lifetime").unwrap_or(3600)));
        Self {
            double_booking_forbidden: flag("double_booking", false),
            versioning: flag("versioning", true),
            auth: flag("auth", false),
            rate_limit,
            token_lifetime,
            max_body_bytes: config.max_body_bytes.max(1),
            defects: config.defects,
        }
    }

    /// Whether the rule `id` is broken on purpose.
    pub(crate) fn defect(&self, id: &str) -> bool {
        debug_assert!(DEFECTS.iter().any(|d| d.id == id), "no defect named {id}");
        self.defects.contains(id)
    }
}
