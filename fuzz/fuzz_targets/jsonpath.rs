#![no_main]
//! A JSONPath query and a JSON body: the first line of the input is the query, the rest
//! the body (a fixed FHIR-like body when the rest is not JSON). Parsing refuses or
//! accepts, never panics; a parsed query selects within the node budget or says why
//! it was not run, and never selects more nodes than the budget allows.

use std::sync::Once;

use fhirconf::scenario::schema::JsonPathExpr;
use libfuzzer_sys::fuzz_target;
use serde_json::{Value, json};

const NODES: usize = 10_000;

fuzz_target!(|data: &[u8]| {
    static LIMITS: Once = Once::new();
    LIMITS.call_once(|| fhirconf::limits::set(fhirconf::limits::DEFAULT_TEMPLATE_BYTES, NODES));
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    let (query, body) = text.split_once('\n').unwrap_or((text, ""));
    let Ok(expr) = JsonPathExpr::parse(query) else {
        return;
    };
    let doc: Value = serde_json::from_str(body).unwrap_or_else(|_| {
        json!({
            "resourceType": "Bundle",
            "entry": [
                {"resource": {"resourceType": "Patient", "id": "a", "active": true,
                              "name": [{"family": "X", "given": ["Y", "Z"]}]}},
                {"resource": {"resourceType": "Observation", "id": "b",
                              "valueQuantity": {"value": 1.5, "unit": "kg"}}}
            ],
            "total": 2
        })
    });
    if let Ok(found) = expr.select(&doc) {
        assert!(found.len() <= NODES, "{} nodes for `{query}`", found.len());
    }
    if let Ok(paths) = expr.select_paths(&doc) {
        assert!(paths.len() <= NODES, "{} paths for `{query}`", paths.len());
    }
});
