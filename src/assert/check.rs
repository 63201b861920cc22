//! What one expectation yields: a [`Check`]. A leaf of `assert/`: every checker
//! module builds these, and none of them imports another.

use serde::{Deserialize, Serialize};
use serde_json::Value;

use super::json::is_subset;
use crate::template::TemplateError;

/// The verdict of one expectation.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Check {
    /// What was checked, e.g. `status` or `$.status equals "cancelled"`.
    pub what: String,
    pub passed: bool,
    pub expected: String,
    pub actual: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub diff: Option<String>,
    /// The line of the expectation in the scenario file, where a failure points.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub line: Option<u64>,
    /// From the step's `warn:`: a failure is a warning and does not fail the step.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub warning: bool,
}

impl Check {
    /// Whether this check fails its step: it did not hold and is not a warning.
    pub fn fails(&self) -> bool {
        !self.passed && !self.warning
    }

    pub(crate) fn new(
        what: impl Into<String>,
        passed: bool,
        expected: impl Into<String>,
        actual: impl Into<String>,
    ) -> Self {
        Check {
            what: what.into(),
            passed,
            expected: expected.into(),
            actual: actual.into(),
            diff: None,
            line: None,
            warning: false,
        }
    }

    /// One line: `status: expected 201, got 422`.
    pub fn summary(&self) -> String {
        format!(
            "{}: expected {}, got {}",
            self.what, self.expected, self.actual
        )
    }
}

/// Renders the templates inside an expected value.
pub type Render<'a> = &'a dyn Fn(&Value) -> Result<Value, TemplateError>;

pub(crate) fn json_eq(a: &Value, b: &Value) -> bool {
    is_subset(a, b) && is_subset(b, a)
}
