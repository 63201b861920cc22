//! The integration tests, in one binary so they are linked once: each module was its
//! own test binary before. `tests/scenarios.rs` stays apart: it has its own harness.
//!
//! Run one module with a filter, e.g. `cargo test --test it cli::`.

mod common;

mod browser;
mod capability;
mod cleanup;
mod cli;
mod each;
mod faults;
mod hostile;
mod interrupt;
mod limits;
mod partition;
mod properties;
mod regression;
mod retry;
mod sandbox;
mod sandbox_generic;
mod schema;
mod standalone;
mod targets;
mod testscript;
mod validate;
mod validation_run;
