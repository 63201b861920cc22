use std::process::ExitCode;

use clap::Parser;
use fhirconf::cli::{Cli, Command};

/// Counts what bounded work allocates (templates), so it fails a step instead of
/// exhausting memory; everything else goes straight to mimalloc.
#[global_allocator]
static ALLOCATOR: fhirconf::memory::Counting = fhirconf::memory::Counting;

fn main() -> ExitCode {
    fhirconf::memory::tune_allocator();
    quiet_on_closed_stdout();
    let cli = Cli::parse();
    ExitCode::from(match &cli.command {
        Command::Run(args) => fhirconf::app::run(args),
        Command::Check(args) => fhirconf::app::check(args),
        Command::List(args) => fhirconf::app::list(args),
        Command::Serve(args) => fhirconf::app::serve(args),
        Command::Compare(args) => fhirconf::app::compare(args),
        Command::Verify(args) => fhirconf::app::verify(args),
        Command::Inputs(args) => fhirconf::app::inputs(args),
        Command::Init(args) => fhirconf::app::init(args),
        Command::Schema(args) => fhirconf::app::schema(args),
        Command::Validate(args) => fhirconf::app::validate(args),
        Command::Import(args) => fhirconf::testscript::import(args),
        Command::Generate(args) => fhirconf::app::generate(args),
    })
}

/// `fhirconf list | head -1`: when the reader of stdout goes away, printing fails with
/// EPIPE (Rust ignores SIGPIPE), which `println!` and libtest-mimic's printer turn into
/// a panic. End as a Unix tool killed by SIGPIPE would instead: silently, with the
/// shell's code for it.
fn quiet_on_closed_stdout() {
    let default = std::panic::take_hook();
    std::panic::set_hook(Box::new(move |info| {
        let payload = info.payload();
        let message = payload
            .downcast_ref::<String>()
            .map(String::as_str)
            .or_else(|| payload.downcast_ref::<&str>().copied())
            .unwrap_or("");
        if message.contains("Broken pipe") || message.contains("BrokenPipe") {
            if fhirconf::exit::PRINTING_PROGRESS.load(std::sync::atomic::Ordering::SeqCst) {
                // The run catches this and goes on to write its reports.
                return;
            }
            std::process::exit(i32::from(fhirconf::exit::CLOSED_PIPE));
        }
        default(info);
    }));
}
