//! Conversion speed in µs per KB of XML, on a TestScript and a Bundle of the
//! round-trip corpus: `cargo run --release -p fhir-xml --example bench`.
//! A measurement to read, not a test: nothing asserts on it.

use std::hint::black_box;
use std::path::Path;
use std::time::Instant;

fn main() {
    let data = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/data/roundtrip");
    // The model is parsed once, on first use; keep that out of the figures.
    let _ = fhir_xml::to_json(r#"<Basic xmlns="http://hl7.org/fhir"/>"#);
    for name in [
        "testscript-example.xml",
        "bundle-transaction.xml",
        "questionnaire-example.xml",
        "observation-20minute-apgar-score.xml",
    ] {
        let xml = std::fs::read_to_string(data.join(name)).expect(name);
        let kb = xml.len() as f64 / 1024.0;
        // Enough rounds for about 0.5 s, after a warm-up.
        for _ in 0..20 {
            black_box(fhir_xml::to_json(black_box(&xml)).expect(name));
        }
        let start = Instant::now();
        let mut rounds = 0u32;
        while start.elapsed().as_secs_f64() < 0.5 {
            black_box(fhir_xml::to_json(black_box(&xml)).expect(name));
            rounds += 1;
        }
        let per_doc = start.elapsed().as_secs_f64() * 1e6 / f64::from(rounds);
        println!(
            "{name:40} {kb:6.1} KB  {per_doc:8.1} µs/document  {:6.1} µs/KB  ({rounds} rounds)",
            per_doc / kb
        );
    }
}
