//! A run as typed stages, each a function a test or another front end can call:
//!
//! ```text
//! plan ──▶ connect ──▶ select ──▶ execute ──▶ assemble ──▶ publish
//! files,    secrets,    Run/Skip/   Runner     RunRecord,   report::write_all,
//! no secret sandbox,    Fail/Out    trials     comparison   evidence
//!           auth, /metadata
//! ```
//!
//! Each stage's error is a type of its own; [`crate::exit`] alone turns them into exit
//! codes. `docs/architecture.md` says which module owns what.

mod assemble;
mod connect;
mod execute;
mod generated;
mod plan;
mod select;

pub use assemble::{PublishError, Published, Timing, assemble, publish};
pub use connect::{ConnectError, Connection, connect};
pub use execute::{KnownFailures, Terminal, execute, execute_quietly, list};
pub use generated::{GenerateError, generated};
pub use plan::{
    Baseline, DEFAULT_SCENARIOS, EvidencePlan, Plan, PlanError, TargetKind, plan, sandbox_config,
    scenario_paths,
};
pub use select::{Ignored, Offer, Out, Selected, Selection, Selector, left_out, select};

use std::collections::BTreeMap;

use crate::compare::Comparison;
use crate::record::RunRecord;
use crate::report::ReportPaths;

/// How a `run` ended when it ended as planned.
#[derive(Debug)]
pub enum Finished {
    /// `--list`: the scenarios were listed, nothing was sent.
    Listed,
    Ran(Box<Ran>),
}

/// A run that was made and published.
#[derive(Debug)]
pub struct Ran {
    pub reports: ReportPaths,
    pub record: RunRecord,
    pub comparison: Option<Comparison>,
    pub published: Published,
    /// SIGINT or SIGTERM arrived: the reports cover what ran.
    pub interrupted: bool,
}

/// Why a `run` did not end as planned. Each stage's error keeps its own type.
#[derive(Debug, thiserror::Error)]
pub enum RunError {
    #[error(transparent)]
    Plan(#[from] PlanError),
    #[error(transparent)]
    Connect(#[from] ConnectError),
    #[error(transparent)]
    Generate(#[from] GenerateError),
    #[error("cannot start the async runtime: {0}")]
    Runtime(std::io::Error),
    #[error("cannot listen on {bind}: {source}")]
    Serve {
        bind: std::net::SocketAddr,
        source: std::io::Error,
    },
    /// The selection left no scenario to run (nothing was sent but `/metadata`).
    #[error("{}", nothing_selected(.0))]
    NothingSelected(BTreeMap<Out, usize>),
    /// A signal came before the first scenario started (during the token fetch or the
    /// `/metadata` handshake): no scenario ran and no report was written.
    #[error("{signal} before the first scenario: no scenario ran and no report was written")]
    Interrupted { signal: &'static str },
    /// The run happened, but a report or the evidence could not be written.
    #[error("{error}")]
    Report {
        error: PublishError,
        record: Box<RunRecord>,
    },
}

fn nothing_selected(left_out: &BTreeMap<Out, usize>) -> String {
    let how: Vec<String> = left_out
        .iter()
        .map(|(out, n)| format!("{n} left out by {}", out.flag()))
        .collect();
    format!(
        "no scenario selected to run ({}); nothing was run (--allow-empty accepts an empty selection)",
        if how.is_empty() {
            "no scenario files hold any".to_owned()
        } else {
            how.join(", ")
        }
    )
}
