use std::process::ExitCode;

use clap::Parser;
use fhirconf::cli::{Cli, Command};

fn main() -> ExitCode {
    let cli = Cli::parse();
    ExitCode::from(match &cli.command {
        Command::Run(args) => fhirconf::app::run(args),
        Command::Check(args) => fhirconf::app::check(args),
        Command::List(args) => fhirconf::app::list(args),
        Command::Serve(args) => fhirconf::app::serve(args),
        Command::Compare(args) => fhirconf::app::compare(args),
        Command::Verify(args) => fhirconf::app::verify(args),
    })
}
