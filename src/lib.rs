//! fhirconf: a conformance test harness for FHIR REST endpoints.
//!
//! YAML scenario files ([`scenario`]) are run by the [`runner`] against a base URL
//! through the [`http`] client; every outcome lands in one [`record::RunRecord`],
//! which the [`report`] writers turn into JUnit XML, JSON and Markdown. [`compare`]
//! tells what changed between two records; [`evidence`] packs a run for handing over.

pub mod app;
pub mod assert;
pub mod auth;
pub mod capability;
pub mod cli;
pub mod compare;
pub mod diag;
pub mod evidence;
pub mod exit;
pub mod files;
pub mod http;
pub mod interrupt;
pub mod pipeline;
pub mod prepare;
pub mod record;
pub mod redact;
pub mod report;
pub mod runner;
pub mod sandbox;
pub mod scenario;
pub mod spill;
pub mod target;
pub mod template;
