#![no_main]
//! Any bytes as a target file: parsed or refused with located errors, never a panic.

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    if let Err(diags) = fhirconf::target::parse("t.yaml", text, std::path::Path::new(".")) {
        for d in diags {
            assert!(d.line >= 1 && d.column >= 1, "{d}");
        }
    }
});
