//! fhirconf: a conformance test harness for FHIR REST endpoints.
//!
//! YAML scenario files ([`scenario`]) are run by the [`runner`] against a base URL
//! through the [`http`] client; every outcome lands in one [`record::RunRecord`],
//! which the [`report`] writers turn into JUnit XML, JSON and Markdown. [`compare`]
//! tells what changed between two records; [`evidence`] packs a run for handing over.

pub mod app;
pub(crate) mod assert;
pub mod auth;
pub(crate) mod capability;
pub mod cli;
pub(crate) mod compare;
pub mod diag;
pub(crate) mod evidence;
pub(crate) mod exit;
pub(crate) mod files;
pub(crate) mod http;
pub(crate) mod interrupt;
pub mod pipeline;
pub(crate) mod prepare;
pub mod record;
pub mod redact;
pub mod report;
pub mod runner;
pub mod sandbox;
pub mod scenario;
pub(crate) mod spill;
pub mod target;
pub mod template;
