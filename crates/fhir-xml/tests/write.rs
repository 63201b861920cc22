//! `to_xml`, the way back: every JSON twin of `tests/data/roundtrip/` (R4 examples)
//! and every JSON TestScript fixture of the corpus, written as FHIR XML and read back
//! with `to_json`, is the JSON it started from, value for value. A member the R4
//! definitions do not know is an error, never dropped.

use std::path::Path;

use fhir_xml::{to_json, to_xml};
use serde_json::{Value, json};

/// JSON → XML → JSON.
fn round_trip(value: &Value) -> Value {
    let xml = to_xml(value).unwrap_or_else(|e| panic!("to_xml: {e}"));
    let back = to_json(&xml).unwrap_or_else(|e| panic!("to_json: {e}\n{xml}"));
    serde_json::from_str(&back).unwrap()
}

/// Numbers by value (`1.0` and `1`, or a text kept by `arbitrary_precision`), and a
/// narrative as XHTML: the reader writes `&quot;` in text as `"` and a newline in an
/// attribute value as a space (as XML reads it), the same XHTML.
fn same(a: &Value, b: &Value) -> bool {
    match (a, b) {
        (Value::String(x), Value::String(y)) if x.starts_with("<div") => {
            let plain = |s: &str| {
                s.replace("&quot;", "\"")
                    .replace("&apos;", "'")
                    .split_whitespace()
                    .collect::<Vec<_>>()
                    .join(" ")
            };
            plain(x) == plain(y)
        }
        (Value::Number(x), Value::Number(y)) => x.as_f64() == y.as_f64(),
        (Value::Array(x), Value::Array(y)) => {
            x.len() == y.len() && x.iter().zip(y).all(|(a, b)| same(a, b))
        }
        (Value::Object(x), Value::Object(y)) => {
            x.len() == y.len() && x.iter().all(|(k, v)| y.get(k).is_some_and(|w| same(v, w)))
        }
        _ => a == b,
    }
}

fn json_files(dir: &Path, out: &mut Vec<std::path::PathBuf>) {
    for entry in std::fs::read_dir(dir).unwrap() {
        let path = entry.unwrap().path();
        if path.is_dir() {
            json_files(&path, out);
        } else if path.extension().is_some_and(|e| e == "json") {
            out.push(path);
        }
    }
}

#[test]
fn every_r4_example_and_corpus_resource_comes_back_as_it_was() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let mut files = Vec::new();
    json_files(&root.join("tests/data/roundtrip"), &mut files);
    json_files(&root.join("../../tests/fixtures/testscript"), &mut files);
    let mut checked = 0;
    for file in files {
        let text = std::fs::read_to_string(&file).unwrap();
        let Ok(value) = serde_json::from_str::<Value>(text.trim_start_matches('\u{feff}')) else {
            continue; // the crucible engine's deliberately broken inputs
        };
        if value.get("resourceType").and_then(Value::as_str).is_none() {
            continue;
        }
        match to_xml(&value) {
            Ok(_) => {
                let back = round_trip(&value);
                assert!(
                    same(&value, &back),
                    "{}: differs after the round trip",
                    file.display()
                );
                checked += 1;
            }
            // Only what is not R4 may be refused: STU3 or invented members, a value
            // of the wrong JSON kind (the crucible engine's `"encodeRequestUrl": "false"`).
            Err(e) => assert!(
                e.contains("has no element")
                    || e.contains("is not an R4 resource type")
                    || e.contains(", a JSON "),
                "{}: {e}",
                file.display()
            ),
        }
    }
    assert!(checked >= 50, "{checked} resources round-tripped");
}

#[test]
fn element_order_ids_urls_and_primitive_twins_follow_the_xml_rules() {
    let patient = json!({
        "resourceType": "Patient",
        "birthDate": "1974-12-25",
        "_birthDate": { "id": "bd", "extension": [{ "url": "http://x/t", "valueDateTime": "1974-12-25T14:35:45-05:00" }] },
        "name": [{ "id": "n1", "given": ["Peter", "James"], "_given": [null, { "extension": [{ "url": "http://x/q", "valueBoolean": true }] }], "family": "Chalmers" }],
        "id": "p1",
        "active": true,
        "multipleBirthInteger": 2
    });
    let xml = to_xml(&patient).unwrap();
    // Definition order, whatever the JSON order: id, active, name, birthDate.
    let id = xml.find("<id value=\"p1\"/>").unwrap();
    let active = xml.find("<active value=\"true\"/>").unwrap();
    let name = xml.find("<name id=\"n1\">").unwrap();
    let birth = xml
        .find("<birthDate id=\"bd\" value=\"1974-12-25\">")
        .unwrap();
    assert!(id < active && active < name && name < birth, "{xml}");
    // family before given in HumanName, and the twin's extension on the second given.
    assert!(xml.contains("<family value=\"Chalmers\"/><given value=\"Peter\"/><given value=\"James\"><extension url=\"http://x/q\"><valueBoolean value=\"true\"/></extension></given>"), "{xml}");
    assert!(xml.contains("<multipleBirthInteger value=\"2\"/>"), "{xml}");
    assert!(same(&round_trip(&patient), &patient));
}

#[test]
fn attribute_values_are_escaped_and_come_back_exactly() {
    let p = json!({ "resourceType": "Patient", "name": [{ "text": "A & B <c> \"d\"\n\te" }] });
    assert!(same(&round_trip(&p), &p));
}

#[test]
fn what_r4_does_not_define_is_refused_not_dropped() {
    let e = to_xml(&json!({ "resourceType": "Patient", "foo": 1 })).unwrap_err();
    assert_eq!(e, "Patient has no element `foo`");
    let e = to_xml(&json!({ "resourceType": "Nope" })).unwrap_err();
    assert!(e.contains("not an R4 resource type"), "{e}");
    let e = to_xml(&json!({ "resourceType": "Patient", "name": "x" })).unwrap_err();
    assert!(e.contains("JSON object"), "{e}");
    assert!(to_xml(&json!([1])).is_err());
    let e = to_xml(&json!({ "resourceType": "Patient", "active": "true" })).unwrap_err();
    assert_eq!(e, "`active` is a boolean, a JSON boolean, not \"true\"");
}
