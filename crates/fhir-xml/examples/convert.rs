//! Prints the FHIR JSON of each FHIR XML file given: `cargo run -p fhir-xml --example convert -- a.xml`.

use std::process::ExitCode;

fn main() -> ExitCode {
    let mut status = ExitCode::SUCCESS;
    for path in std::env::args().skip(1) {
        let xml = match std::fs::read_to_string(&path) {
            Ok(xml) => xml,
            Err(e) => {
                eprintln!("{path}: {e}");
                status = ExitCode::FAILURE;
                continue;
            }
        };
        match fhir_xml::to_json_pretty(&xml) {
            Ok(json) => println!("{json}"),
            Err(e) => {
                eprintln!("{path}:{}:{}: {}", e.line, e.column, e.message);
                status = ExitCode::FAILURE;
            }
        }
    }
    status
}
