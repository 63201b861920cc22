//! The TestScript corpus of `tests/fixtures/testscript/` (see its LICENSES.md): every
//! XML file in it converts, to JSON whose `resourceType` is the root element's name;
//! and the R4 specification's scripts in XML equal their JSON form from the npm
//! package, narrative aside (the two come from different builds of the specification,
//! whose generated narratives write dates differently).

use std::path::{Path, PathBuf};

use serde_json::Value;

fn corpus() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../../tests/fixtures/testscript")
}

fn files(dir: &Path, ext: &str, out: &mut Vec<PathBuf>) {
    for entry in std::fs::read_dir(dir).unwrap().flatten() {
        let path = entry.path();
        if path.is_dir() {
            files(&path, ext, out);
        } else if path.extension().is_some_and(|e| e == ext) {
            out.push(path);
        }
    }
}

fn root_element(xml: &str) -> String {
    let mut reader = quick_xml::Reader::from_str(xml);
    loop {
        match reader.read_event().unwrap() {
            quick_xml::events::Event::Start(e) | quick_xml::events::Event::Empty(e) => {
                return String::from_utf8(e.local_name().as_ref().to_vec()).unwrap();
            }
            quick_xml::events::Event::Eof => panic!("no root element"),
            _ => {}
        }
    }
}

#[test]
fn every_xml_file_of_the_corpus_converts() {
    let mut xml_files = Vec::new();
    files(&corpus(), "xml", &mut xml_files);
    xml_files.sort();
    let mut failures = Vec::new();
    let mut scripts = 0;
    for path in &xml_files {
        let xml = std::fs::read_to_string(path).unwrap();
        match fhir_xml::to_json(&xml) {
            Ok(json) => {
                let value: Value = serde_json::from_str(&json).unwrap();
                assert_eq!(
                    value["resourceType"],
                    root_element(&xml),
                    "{}",
                    path.display()
                );
                scripts += usize::from(value["resourceType"] == "TestScript");
            }
            Err(e) => failures.push(format!("{}: {e}", path.display())),
        }
    }
    assert!(failures.is_empty(), "{}", failures.join("\n"));
    assert!(
        scripts >= 8,
        "only {scripts} XML TestScripts under {}",
        corpus().display()
    );
}

#[test]
fn the_r4_specification_scripts_in_xml_equal_their_json_form() {
    let dir = corpus().join("r4-spec");
    let mut compared = 0;
    for name in [
        "",
        "-history",
        "-multisystem",
        "-readtest",
        "-search",
        "-update",
    ] {
        let xml =
            std::fs::read_to_string(dir.join(format!("xml/testscript-example{name}.xml"))).unwrap();
        let json =
            std::fs::read_to_string(dir.join(format!("TestScript-testscript-example{name}.json")))
                .unwrap();
        let mut ours: Value = serde_json::from_str(&fhir_xml::to_json(&xml).unwrap()).unwrap();
        let mut twin: Value = serde_json::from_str(&json).unwrap();
        for v in [&mut ours, &mut twin] {
            v.as_object_mut().unwrap().remove("text");
        }
        assert_eq!(ours, twin, "testscript-example{name}");
        compared += 1;
    }
    assert_eq!(compared, 6);
}
