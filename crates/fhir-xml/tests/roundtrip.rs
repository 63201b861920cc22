//! The R4 example resources exist in both FHIR XML and FHIR JSON: each XML file of
//! `tests/data/roundtrip/` converted must equal its JSON twin, compared as parsed
//! JSON values (tests/data/LICENSES.md says where each pair comes from).
//!
//! One normalisation, for the one place the representations legitimately differ:
//! the narrative `div` strings are compared as XHTML, not as text. Both sides are
//! read into a canonical token list in which
//! - runs of whitespace in text become one space, and text is trimmed next to tags
//!   (the XML examples are indented inside the narrative, the JSON ones are not);
//! - attributes are sorted by name and their values whitespace-collapsed (the JSON
//!   generator reorders some, and writes a newline from `&#10;` literally);
//! - `<a></a>` and `<a/>` are the same; references are decoded (`&quot;` or `"`).

use std::path::{Path, PathBuf};

use quick_xml::Reader;
use quick_xml::events::Event;
use serde_json::Value;

fn data_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/data/roundtrip")
}

fn read(path: &Path) -> String {
    let text = std::fs::read_to_string(path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    text.strip_prefix('\u{feff}')
        .map(str::to_owned)
        .unwrap_or(text)
}

fn collapse(s: &str) -> String {
    s.split_whitespace().collect::<Vec<_>>().join(" ")
}

/// The XHTML of a narrative as comparable tokens (see the module documentation).
fn canonical_xhtml(div: &str) -> Vec<String> {
    fn flush(text: &mut String, tokens: &mut Vec<String>) {
        let t = collapse(text);
        if !t.is_empty() {
            tokens.push(t);
        }
        text.clear();
    }
    let mut reader = Reader::from_str(div);
    // `<a/>` is read as `<a></a>`.
    reader.config_mut().expand_empty_elements = true;
    let mut tokens = Vec::new();
    let mut text = String::new();
    loop {
        let event = reader
            .read_event()
            .unwrap_or_else(|e| panic!("narrative is not XML ({e}): {div}"));
        match event {
            Event::Start(e) => {
                flush(&mut text, &mut tokens);
                let mut attrs: Vec<(String, String)> = e
                    .attributes()
                    .map(|a| {
                        let a = a.unwrap();
                        let key = String::from_utf8(a.key.as_ref().to_vec()).unwrap();
                        (
                            key,
                            collapse(
                                &a.normalized_value(quick_xml::XmlVersion::default())
                                    .unwrap(),
                            ),
                        )
                    })
                    .collect();
                attrs.sort();
                let name = String::from_utf8(e.name().as_ref().to_vec()).unwrap();
                tokens.push(format!("<{name} {attrs:?}>"));
            }
            Event::End(e) => {
                flush(&mut text, &mut tokens);
                tokens.push(format!("</{}>", String::from_utf8_lossy(e.name().as_ref())));
            }
            Event::Text(t) => text.push_str(&t.decode().unwrap()),
            Event::CData(t) => text.push_str(&t.decode().unwrap()),
            Event::GeneralRef(r) => {
                let name = r.decode().unwrap();
                let c = match name.as_ref() {
                    "lt" => '<',
                    "gt" => '>',
                    "amp" => '&',
                    "quot" => '"',
                    "apos" => '\'',
                    _ => r.resolve_char_ref().unwrap().unwrap(),
                };
                text.push(c);
            }
            Event::Comment(c) => {
                flush(&mut text, &mut tokens);
                tokens.push(format!("<!--{}-->", collapse(&c.decode().unwrap())));
            }
            Event::Eof => break,
            _ => {}
        }
    }
    flush(&mut text, &mut tokens);
    tokens
}

/// `value` with every narrative `div` string replaced by its canonical tokens.
fn normalise(value: &mut Value) {
    match value {
        Value::Object(map) => {
            for (key, v) in map.iter_mut() {
                match v {
                    Value::String(div) if key == "div" => {
                        *v = Value::from(canonical_xhtml(div));
                    }
                    _ => normalise(v),
                }
            }
        }
        Value::Array(items) => items.iter_mut().for_each(normalise),
        _ => {}
    }
}

/// The first place where `ours` and `twin` differ, as a path and both values.
fn first_difference(ours: &Value, twin: &Value, path: &str) -> Option<String> {
    match (ours, twin) {
        (Value::Object(a), Value::Object(b)) => {
            for key in a.keys().chain(b.keys()) {
                let here = format!("{path}.{key}");
                match (a.get(key), b.get(key)) {
                    (Some(x), Some(y)) => {
                        if let Some(d) = first_difference(x, y, &here) {
                            return Some(d);
                        }
                    }
                    (x, y) => return Some(format!("{here}: ours {x:?}, twin {y:?}")),
                }
            }
            None
        }
        (Value::Array(a), Value::Array(b)) if a.len() == b.len() => a
            .iter()
            .zip(b)
            .enumerate()
            .find_map(|(i, (x, y))| first_difference(x, y, &format!("{path}[{i}]"))),
        _ if ours == twin => None,
        // Equal numbers written differently (`1.0e0`, `1.0`): the same value in JSON,
        // and unequal `Value`s when serde_json keeps the text (`arbitrary_precision`,
        // which the validation feature's crates turn on).
        (Value::Number(a), Value::Number(b)) if a.as_f64() == b.as_f64() => None,
        _ => Some(format!("{path}: ours {ours}, twin {twin}")),
    }
}

#[test]
fn r4_examples_convert_to_their_json_twins() {
    let mut pairs = 0;
    let mut failures = Vec::new();
    let mut entries: Vec<_> = std::fs::read_dir(data_dir())
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|e| e == "xml"))
        .collect();
    entries.sort();
    for xml_path in entries {
        let json_path = xml_path.with_extension("json");
        let name = xml_path.file_name().unwrap().to_string_lossy().into_owned();
        let converted = match fhir_xml::to_json(&read(&xml_path)) {
            Ok(text) => text,
            Err(e) => {
                failures.push(format!("{name}: {e}"));
                continue;
            }
        };
        let mut ours: Value = serde_json::from_str(&converted).unwrap();
        let mut twin: Value = serde_json::from_str(&read(&json_path)).unwrap();
        normalise(&mut ours);
        normalise(&mut twin);
        if let Some(d) = first_difference(&ours, &twin, "") {
            failures.push(format!("{name}: {d}"));
        }
        pairs += 1;
    }
    assert!(failures.is_empty(), "{}", failures.join("\n"));
    assert!(
        pairs >= 15,
        "only {pairs} pairs in {}",
        data_dir().display()
    );
}

#[test]
fn the_normalisation_still_sees_real_narrative_differences() {
    let a = canonical_xhtml(
        r#"<div xmlns="http://www.w3.org/1999/xhtml"><p b="1" a="2">x  &quot;y&quot;</p><br/></div>"#,
    );
    let b = canonical_xhtml(
        "<div xmlns=\"http://www.w3.org/1999/xhtml\">\n  <p a=\"2\" b=\"1\">x \"y\"</p>\n  <br></br>\n</div>",
    );
    assert_eq!(a, b);
    let c = canonical_xhtml(
        r#"<div xmlns="http://www.w3.org/1999/xhtml"><p a="2" b="1">x "z"</p><br/></div>"#,
    );
    assert_ne!(a, c);
    let d = canonical_xhtml(
        r#"<div xmlns="http://www.w3.org/1999/xhtml"><p a="2" b="1">x "y"</p><hr/></div>"#,
    );
    assert_ne!(a, d);
}

#[test]
fn decimals_keep_their_text_across_a_whole_example() {
    // observation-decimal's XML has values such as 1.0 and 0.0000...; they must
    // appear in the JSON text exactly as written.
    let xml = read(&data_dir().join("observation-decimal.xml"));
    let json = fhir_xml::to_json(&xml).unwrap();
    let mut checked = 0;
    for piece in xml.split("<value value=\"").skip(1) {
        let number = &piece[..piece.find('"').unwrap()];
        assert!(
            json.contains(&format!("\"value\":{number}")),
            "{number} in {json}"
        );
        checked += 1;
    }
    assert!(checked > 0);
}
