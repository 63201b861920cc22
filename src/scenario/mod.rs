//! Scenario files: the on-disk format ([`schema`]), the loader with its semantic
//! checks ([`load`]) and the validated model the runner executes ([`model`]).

pub mod cache;
pub mod load;
pub mod model;
pub mod schema;

pub use load::{LoadOptions, load};
pub use model::{Scenario, SuiteFile};
