#![no_main]
//! Any text as a template: rendered or refused, never a panic, within the fuel limit.

use std::sync::Arc;

use fhirconf::template::{SlotClock, Templates, referenced_vars};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    let templates = Templates::new(Arc::new(SlotClock::random()));
    let mut vars = serde_json::Map::new();
    vars.insert("a".into(), serde_json::json!("x"));
    let _ = referenced_vars(text);
    let _ = templates.render_string(text, &vars);
});
