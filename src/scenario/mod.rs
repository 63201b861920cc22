//! Scenario files: the on-disk format, the loader and the semantic checks.

pub mod schema;
