//! Between connect and select: the suites generated from what the server declares
//! (`--suite capability`), loaded like scenario files.

use std::sync::Arc;

use super::connect::Connection;
use super::plan::Plan;
use crate::cli::Suite;
use crate::scenario::Scenario;

/// Why a generated suite could not be had; nothing was run.
#[derive(Debug, thiserror::Error)]
pub enum GenerateError {
    #[error("--suite capability needs the server's CapabilityStatement: {0}")]
    NoStatement(String),
    #[error("--suite capability: {0}")]
    Statement(#[from] crate::generate::GenerateError),
    /// A generated file that does not load is a fhirconf bug.
    #[error(
        "--suite capability: a generated scenario file does not load (a fhirconf bug, please report it):\n{0}"
    )]
    Load(String),
}

/// The scenarios of every generated suite the plan asks for.
pub fn generated(
    plan: &Plan,
    connection: &Connection,
    strict: bool,
) -> Result<Vec<Arc<Scenario>>, GenerateError> {
    let mut out = Vec::new();
    for suite in &plan.generated {
        match suite {
            Suite::Capability => {
                let caps = &connection.capabilities;
                let Some(statement) = &caps.statement else {
                    return Err(GenerateError::NoStatement(
                        caps.error
                            .as_ref()
                            .map_or_else(|| "none was read".to_owned(), |e| e.to_string()),
                    ));
                };
                let opts = crate::generate::Options {
                    strict,
                    // `valid` on the reads only when this run can validate: a build
                    // with validation, not run with `--validate off`.
                    validate: plan.validation.can_validate(),
                };
                let files = crate::generate::generate(statement, &opts)?;
                let suites =
                    crate::generate::load(&files, &plan.load_options).map_err(|errors| {
                        GenerateError::Load(
                            errors
                                .iter()
                                .map(|d| {
                                    format!("{}:{}:{}: {}", d.file, d.line, d.column, d.message)
                                })
                                .collect::<Vec<_>>()
                                .join("\n"),
                        )
                    })?;
                out.extend(suites.into_iter().flat_map(|s| s.scenarios).map(Arc::new));
            }
        }
    }
    Ok(out)
}
