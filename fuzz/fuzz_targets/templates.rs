#![no_main]
//! Any text as a template: rendered or refused, never a panic, within the fuel limit and,
//! as in the binary, the memory budget (the counting allocator makes
//! `fhirconf::memory::bounded` run each render on a bounded thread).

use std::sync::{Arc, Once};

use fhirconf::template::{SlotClock, Templates, referenced_vars};
use libfuzzer_sys::fuzz_target;

#[global_allocator]
static A: fhirconf::memory::Counting = fhirconf::memory::Counting;

fuzz_target!(|data: &[u8]| {
    static LIMITS: Once = Once::new();
    LIMITS.call_once(|| fhirconf::limits::set(4 << 20, 1_000_000));
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    let templates = Templates::new(Arc::new(SlotClock::random()));
    let mut vars = serde_json::Map::new();
    vars.insert("a".into(), serde_json::json!("x"));
    let _ = referenced_vars(text);
    let _ = templates.render_string(text, &vars);
});
