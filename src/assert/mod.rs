//! Judging a response against a step's `expect`: every check yields a [`Check`]
//! that says what was expected, what came back and, for documents, a diff.

mod check;
mod diff;
mod eval;
mod fhir;
mod json;

pub use check::Check;
pub use eval::{Judging, evaluate};
