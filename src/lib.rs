//! fhirconf: a conformance test harness for FHIR REST endpoints.
//!
//! A run is a [`pipeline`] of typed stages: plan (the [`target`] and [`scenario`]
//! files), connect, select, execute (the [`runner`]), assemble (one
//! [`record::RunRecord`]) and publish (the [`report`] writers: JUnit XML, JSON,
//! Markdown, HTML). [`app`] calls the stages for each command; `docs/architecture.md`
//! says which module owns what.

pub mod app;
pub(crate) mod assert;
pub mod auth;
pub(crate) mod capability;
pub mod cli;
pub(crate) mod compare;
pub mod diag;
pub(crate) mod evidence;
pub mod exit;
pub(crate) mod fhirpath_expr;
pub(crate) mod files;
pub mod generate;
pub(crate) mod http;
pub(crate) mod init;
pub(crate) mod interrupt;
pub mod jschema;
pub(crate) mod jsonpath;
pub mod limits;
pub mod memory;
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
pub mod testscript;
pub mod validation;

/// Unit tests count allocations as the binary does, so bounded work is tested bounded.
#[cfg(test)]
#[global_allocator]
static ALLOCATOR: memory::Counting = memory::Counting;
