#![no_main]
//! Any bytes as a scenario file: the loader returns scenarios or located errors, never
//! panics, and every content error has a line and column.

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    let opts = fhirconf::scenario::LoadOptions::default();
    if let Err(diags) =
        fhirconf::scenario::load::load_str("f.yaml", text, std::path::Path::new("."), &opts)
    {
        for d in diags {
            assert!(d.line >= 1 && d.column >= 1, "{d}");
        }
    }
});
