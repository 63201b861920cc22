//! The bounds on what a scenario can make the harness compute on its own machine: the
//! size of a template's output and the nodes a JSONPath query may visit. Set once per
//! run (`--max-template-bytes`, `--max-jsonpath-nodes`) before any scenario runs; read
//! wherever a template renders or a query runs.

use std::sync::atomic::{AtomicUsize, Ordering};

/// The most bytes a template may produce: a value, or a string inside one.
pub const DEFAULT_TEMPLATE_BYTES: usize = 4 * 1024 * 1024;

/// The most nodes a JSONPath query may visit in one body, as bounded before it runs.
pub const DEFAULT_JSONPATH_NODES: usize = 1_000_000;

static TEMPLATE_BYTES: AtomicUsize = AtomicUsize::new(DEFAULT_TEMPLATE_BYTES);
static JSONPATH_NODES: AtomicUsize = AtomicUsize::new(DEFAULT_JSONPATH_NODES);

/// The template output limit in force.
pub fn template_bytes() -> usize {
    TEMPLATE_BYTES.load(Ordering::Relaxed)
}

/// The JSONPath node budget in force.
pub fn jsonpath_nodes() -> usize {
    JSONPATH_NODES.load(Ordering::Relaxed)
}

/// Sets both limits for the rest of the process (the run's flags).
pub fn set(template_bytes: usize, jsonpath_nodes: usize) {
    TEMPLATE_BYTES.store(template_bytes, Ordering::Relaxed);
    JSONPATH_NODES.store(jsonpath_nodes, Ordering::Relaxed);
}
