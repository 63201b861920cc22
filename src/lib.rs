//! fhirconf: a conformance test harness for FHIR REST endpoints.
//!
//! YAML scenario files ([`scenario`]) are run by the [`runner`] against a base URL
//! through the [`http`] client; every outcome lands in one [`record::RunRecord`],
//! which the [`report`] writers turn into JUnit XML, JSON and Markdown.

pub mod scenario;
pub mod template;
pub mod diag;
pub mod http;
pub mod redact;
pub mod assert;
pub mod capability;
pub mod exit;
pub mod record;
pub mod runner;
pub mod report;
