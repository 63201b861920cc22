//! Property tests: the loaders and the template engine on arbitrary input never panic,
//! and every problem they report in a file's content carries a line and column.

use std::path::Path;
use std::sync::Arc;

use fhirconf::scenario::{LoadOptions, load::load_str};
use fhirconf::target;
use fhirconf::template::{SlotClock, Templates, referenced_vars};
use proptest::prelude::*;
use serde_json::{Map, Value, json};

const VALID: &str = r#"name: reads a patient
tags: [fhir]
vars:
  id: "p-{{ uuid() }}"
steps:
  - request:
      method: POST
      path: /Patient
      json: { resourceType: Patient, id: "{{ id }}", active: true }
    expect:
      status: 201
      headers: { location: { matches: "Patient/[^/]+" } }
      json: [{ path: $.active, equals: true }]
    capture:
      created: { header: location, regex: "Patient/([^/]+)" }
  - request: { method: GET, path: "/Patient/{{ created }}" }
    expect: { status: [200, 304], json_subset: { resourceType: Patient } }
"#;

fn load(text: &str) -> Result<(), Vec<fhirconf::diag::Diagnostic>> {
    load_str("p.yaml", text, Path::new("."), &LoadOptions::default()).map(|_| ())
}

/// Text that looks like YAML: its punctuation, indentation and keywords.
fn yamlish() -> impl Strategy<Value = String> {
    prop::collection::vec(
        prop_oneof![
            Just("name: ".to_owned()),
            Just("steps:\n".to_owned()),
            Just("  - request: ".to_owned()),
            Just("{ method: GET, path: /x }".to_owned()),
            Just("expect: ".to_owned()),
            Just("\n".to_owned()),
            Just("  ".to_owned()),
            Just("\t".to_owned()),
            Just("{{ ".to_owned()),
            Just(" }}".to_owned()),
            Just("&a ".to_owned()),
            Just("*a".to_owned()),
            Just("---\n".to_owned()),
            Just("[".to_owned()),
            Just("]".to_owned()),
            Just("{".to_owned()),
            Just("}".to_owned()),
            Just("\"".to_owned()),
            Just("'".to_owned()),
            Just("!!binary ".to_owned()),
            Just("? ".to_owned()),
            Just("|\n".to_owned()),
            "[a-z$.\\[\\]0-9:#, -]{1,12}",
            any::<char>().prop_map(String::from),
        ],
        0..60,
    )
    .prop_map(|parts| parts.concat())
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 512, ..ProptestConfig::default() })]

    #[test]
    fn the_scenario_loader_never_panics_on_any_text(text in any::<String>()) {
        let _ = load(&text);
    }

    #[test]
    fn the_scenario_loader_locates_problems_in_yamlish_text(text in yamlish()) {
        if let Err(diags) = load(&text) {
            prop_assert!(!diags.is_empty());
            for d in diags {
                prop_assert!(d.line >= 1 && d.column >= 1, "{d}");
            }
        }
    }

    #[test]
    fn edits_of_a_valid_file_never_panic(cut in 0..VALID.len(), len in 0usize..40, insert in "[ -~\n\t]{0,8}") {
        let mut text = VALID.to_owned();
        let start = (0..=cut).rev().find(|i| text.is_char_boundary(*i)).unwrap_or(0);
        let end = (start + len).min(text.len());
        let end = (end..=text.len()).find(|i| text.is_char_boundary(*i)).unwrap_or(text.len());
        text.replace_range(start..end, &insert);
        if let Err(diags) = load(&text) {
            for d in diags {
                prop_assert!(d.line >= 1 && d.column >= 1, "{d}");
            }
        }
    }

    #[test]
    fn the_target_loader_never_panics(text in prop_oneof![any::<String>(), yamlish()]) {
        if let Err(diags) = target::parse("t.yaml", &text, Path::new(".")) {
            for d in diags {
                prop_assert!(d.line >= 1 && d.column >= 1, "{d}");
            }
        }
    }

    #[test]
    fn templates_never_panic_on_any_text(text in prop_oneof![any::<String>(), "[{}%#a-z_ ()|.,'\"0-9+-]{0,40}"]) {
        let templates = Templates::new(Arc::new(SlotClock::random()));
        let mut vars = Map::new();
        vars.insert("a".into(), json!("x"));
        vars.insert("n".into(), json!(3));
        let _ = referenced_vars(&text);
        let _ = templates.render_string(&text, &vars);
        let _ = templates.render_value(&Value::String(text.clone()), &vars);
    }

    #[test]
    fn plain_text_renders_to_itself(text in "[^{}%#]{0,60}") {
        let templates = Templates::new(Arc::new(SlotClock::random()));
        prop_assert_eq!(templates.render_string(&text, &Map::new()).unwrap(), text);
    }
}
