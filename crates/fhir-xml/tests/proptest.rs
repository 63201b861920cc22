//! `to_json` never panics, whatever the input, and whatever it returns as Ok is JSON
//! with a `resourceType`.

use proptest::prelude::*;
use serde_json::Value;

fn check(xml: &str) -> Result<(), TestCaseError> {
    if let Ok(text) = fhir_xml::to_json(xml) {
        let value: Value = serde_json::from_str(&text)
            .map_err(|e| TestCaseError::fail(format!("not JSON ({e}): {text}\nfrom {xml}")))?;
        prop_assert!(value["resourceType"].is_string(), "{text}");
        let pretty = fhir_xml::to_json_pretty(xml).expect("pretty fails where compact did not");
        prop_assert_eq!(serde_json::from_str::<Value>(&pretty).unwrap(), value);
    }
    Ok(())
}

/// Pieces of FHIR XML, well-formed or not, to string together.
const PIECES: &[&str] = &[
    r#"<Patient xmlns="http://hl7.org/fhir">"#,
    "</Patient>",
    r#"<Bundle xmlns="http://hl7.org/fhir">"#,
    "</Bundle>",
    "<entry>",
    "</entry>",
    "<resource>",
    "</resource>",
    "<contained>",
    "</contained>",
    "<Basic/>",
    "<Basic>",
    "</Basic>",
    "<name>",
    "</name>",
    r#"<given value="A"/>"#,
    r#"<given id="g">"#,
    "</given>",
    r#"<family value="x &amp; y &#233;"/>"#,
    r#"<active value="true"/>"#,
    r#"<active value="nope"/>"#,
    r#"<birthDate value="1974-12-25">"#,
    "</birthDate>",
    r#"<multipleBirthInteger value="01"/>"#,
    r#"<multipleBirthInteger value="2"/>"#,
    r#"<extension url="http://e/x">"#,
    "</extension>",
    r#"<valueDecimal value="1.50"/>"#,
    r#"<valueBoolean value="false"/>"#,
    r#"<valueString value="q&quot;&lt;"/>"#,
    "<text>",
    "</text>",
    r#"<status value="generated"/>"#,
    r#"<div xmlns="http://www.w3.org/1999/xhtml">"#,
    "</div>",
    "<p>",
    "</p>",
    "<br/>",
    "<!-- comment -->",
    "<?pi x?>",
    "<![CDATA[<b>&]]>",
    "&amp;",
    "&nbsp;",
    "&#0;",
    "&#x1F600;",
    "text",
    " \n\t",
    "<",
    ">",
    "&",
    "\"",
    "'",
    "/>",
    "<?xml version=\"1.0\"?>",
    "<!DOCTYPE x>",
    r#"<x:active xmlns:x="urn:x" value="true"/>"#,
    r#"<f:Patient xmlns:f="http://hl7.org/fhir">"#,
    "</f:Patient>",
    "\u{feff}",
    "é",
];

fn xmlish() -> impl Strategy<Value = String> {
    prop::collection::vec(prop::sample::select(PIECES), 0..40).prop_map(|v| v.concat())
}

/// A Patient whose extensions nest at random: well-formed and valid.
fn nested_extensions() -> impl Strategy<Value = String> {
    let leaf = prop_oneof![
        Just(r#"<extension url="u"><valueBoolean value="true"/></extension>"#.to_owned()),
        Just(r#"<extension url="u"><valueDecimal value="0.10"/></extension>"#.to_owned()),
        Just(r#"<extension url="u"><valueString value="a &amp; b"/></extension>"#.to_owned()),
    ];
    let tree = leaf.prop_recursive(8, 64, 4, |inner| {
        prop::collection::vec(inner, 1..4)
            .prop_map(|kids| format!(r#"<extension url="n">{}</extension>"#, kids.concat()))
    });
    prop::collection::vec(tree, 0..4).prop_map(|exts| {
        format!(
            r#"<Patient xmlns="http://hl7.org/fhir">{}<name><given value="A"/><given id="x"><extension url="e"><valueInteger value="3"/></extension></given></name></Patient>"#,
            exts.concat()
        )
    })
}

proptest! {
    #[test]
    fn arbitrary_strings_never_panic(s in any::<String>()) {
        check(&s)?;
    }

    #[test]
    fn arbitrary_xmlish_strings_never_panic(s in xmlish()) {
        check(&s)?;
    }

    #[test]
    fn xmlish_strings_inside_a_patient_never_panic(s in xmlish()) {
        check(&format!(r#"<Patient xmlns="http://hl7.org/fhir">{s}</Patient>"#))?;
    }

    #[test]
    fn valid_nested_extensions_convert(xml in nested_extensions()) {
        let text = fhir_xml::to_json(&xml).map_err(|e| TestCaseError::fail(format!("{e}\n{xml}")))?;
        let value: Value = serde_json::from_str(&text).unwrap();
        prop_assert_eq!(&value["name"][0]["given"], &serde_json::json!(["A", null]));
        prop_assert_eq!(xml.matches("<extension").count(), text.matches("\"url\"").count());
    }
}
