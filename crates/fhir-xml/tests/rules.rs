//! One test (or a few) per rule of the FHIR XML to JSON conversion, through the
//! public API. The five `helios_*` tests are the corruptions found in helios-serde
//! 0.2.7 that this crate exists to avoid.

use fhir_xml::{XmlError, to_json, to_json_pretty};
use serde_json::{Value, json};

fn convert(xml: &str) -> Value {
    let text = to_json(xml).unwrap_or_else(|e| panic!("{e}\n{xml}"));
    serde_json::from_str(&text).unwrap_or_else(|e| panic!("not JSON ({e}): {text}"))
}

fn error(xml: &str) -> XmlError {
    match to_json(xml) {
        Ok(json) => panic!("expected an error, got {json}"),
        Err(e) => e,
    }
}

/// A Patient with `body` inside.
fn patient(body: &str) -> String {
    format!(r#"<Patient xmlns="http://hl7.org/fhir">{body}</Patient>"#)
}

#[test]
fn helios_entities_in_attribute_values_are_decoded() {
    let v = convert(&patient(
        r#"<name><family value="Smith &amp; Jones &gt; Brown &lt;&quot;x&quot;&apos; &#233;&#xE9;"/></name>"#,
    ));
    assert_eq!(v["name"][0]["family"], "Smith & Jones > Brown <\"x\"' éé");
}

#[test]
fn helios_boolean_and_integer_choices_are_kept() {
    let v = convert(&patient(
        r#"<extension url="http://example.org/b"><valueBoolean value="true"/></extension>
           <extension url="http://example.org/i"><valueInteger value="42"/></extension>
           <extension url="http://example.org/d"><valueDecimal value="-0.5e3"/></extension>
           <multipleBirthBoolean value="false"/>"#,
    ));
    assert_eq!(
        v["extension"][0],
        json!({"url": "http://example.org/b", "valueBoolean": true})
    );
    assert_eq!(
        v["extension"][1],
        json!({"url": "http://example.org/i", "valueInteger": 42})
    );
    // By value: with serde_json's `arbitrary_precision` (on in a validation build) a
    // number keeps its text, `-0.5e3`.
    assert_eq!(v["extension"][2]["url"], "http://example.org/d");
    assert_eq!(v["extension"][2]["valueDecimal"].as_f64(), Some(-500.0));
    assert_eq!(v["multipleBirthBoolean"], false);
}

#[test]
fn helios_extensions_on_primitives_are_kept() {
    let v = convert(&patient(
        r#"<birthDate id="bd" value="1974-12-25">
             <extension url="http://hl7.org/fhir/StructureDefinition/patient-birthTime">
               <valueDateTime value="1974-12-25T14:35:45-05:00"/>
             </extension>
           </birthDate>"#,
    ));
    assert_eq!(v["birthDate"], "1974-12-25");
    assert_eq!(
        v["_birthDate"],
        json!({
            "id": "bd",
            "extension": [{
                "url": "http://hl7.org/fhir/StructureDefinition/patient-birthTime",
                "valueDateTime": "1974-12-25T14:35:45-05:00"
            }]
        })
    );
}

#[test]
fn helios_decimals_keep_their_text() {
    let xml = r#"<Observation xmlns="http://hl7.org/fhir"><status value="final"/>
        <code><text value="x"/></code>
        <valueQuantity><value value="1.50"/><unit value="mg"/></valueQuantity>
        <referenceRange><low><value value="0.100"/></low><high><value value="1e2"/></high></referenceRange>
        </Observation>"#;
    let text = to_json(xml).unwrap();
    assert!(
        text.contains(r#""valueQuantity":{"value":1.50,"unit":"mg"}"#),
        "{text}"
    );
    assert!(text.contains(r#""low":{"value":0.100}"#), "{text}");
    assert!(text.contains(r#""high":{"value":1e2}"#), "{text}");
    assert!(to_json_pretty(xml).unwrap().contains(r#""value": 1.50"#));
}

#[test]
fn helios_errors_have_positions() {
    let e = error(
        "<Patient xmlns=\"http://hl7.org/fhir\">\n  <active value=\"true\"/>\n  <foo value=\"1\"/>\n</Patient>",
    );
    assert_eq!((e.line, e.column), (3, 3));
    assert_eq!(e.message, "Patient has no element 'foo'");
    assert_eq!(
        e.to_string(),
        "line 3, column 3: Patient has no element 'foo'"
    );

    // Malformed XML: a mismatched end tag.
    let e = error("<Patient xmlns=\"http://hl7.org/fhir\">\n  <name>\n  </nom>\n</Patient>");
    assert_eq!(e.line, 3, "{e}");
    assert!(e.message.starts_with("malformed XML"), "{e}");

    // A bad value points at the value itself, in characters.
    let e =
        error("<Patient xmlns=\"http://hl7.org/fhir\">\n <é/><active value=\"yes\"/></Patient>");
    assert_eq!(e.line, 2);
    assert_eq!(e.column, 2, "the unknown element é comes first: {e}");
    let e = error("<Patient xmlns=\"http://hl7.org/fhir\">\n <active value=\"yes\"/></Patient>");
    assert_eq!((e.line, e.column), (2, 17), "{e}");
    assert_eq!(e.message, "invalid boolean 'yes': expected true or false");
}

#[test]
fn the_root_is_the_resource_type_and_comes_first() {
    let text = to_json(&patient(r#"<id value="p1"/><active value="true"/>"#)).unwrap();
    assert_eq!(
        text,
        r#"{"resourceType":"Patient","id":"p1","active":true}"#
    );
    let text = to_json(r#"<Basic xmlns="http://hl7.org/fhir"/>"#).unwrap();
    assert_eq!(text, r#"{"resourceType":"Basic"}"#);
    // A prefix bound to the FHIR namespace is as good as the default namespace.
    let v =
        convert(r#"<f:Patient xmlns:f="http://hl7.org/fhir"><f:active value="true"/></f:Patient>"#);
    assert_eq!(v, json!({"resourceType": "Patient", "active": true}));
}

#[test]
fn the_root_must_be_a_resource_in_the_fhir_namespace() {
    let e = error("<Patient><active value=\"true\"/></Patient>");
    assert!(
        e.message
            .contains("not in the FHIR namespace http://hl7.org/fhir (no namespace)"),
        "{e}"
    );
    let e = error(r#"<Patient xmlns="http://hl7.org/fhir/v3"/>"#);
    assert!(e.message.contains("(http://hl7.org/fhir/v3)"), "{e}");
    let e = error(r#"<HumanName xmlns="http://hl7.org/fhir"/>"#);
    assert_eq!(e.message, "<HumanName> is not a FHIR R4 resource type");
    let e = error(r#"<DomainResource xmlns="http://hl7.org/fhir"/>"#);
    assert!(e.message.contains("not a FHIR R4 resource type"), "{e}");
    let e = error(&patient(r#"<x:active xmlns:x="urn:other" value="true"/>"#));
    assert!(
        e.message
            .contains("<x:active> is not in the FHIR namespace"),
        "{e}"
    );
}

#[test]
fn primitive_values_are_typed_by_the_model() {
    let v = convert(
        r#"<Questionnaire xmlns="http://hl7.org/fhir"><status value="draft"/>
          <item><linkId value="1"/><type value="string"/><required value="true"/><maxLength value="10"/>
            <enableWhen><question value="q"/><operator value="="/><answerDecimal value="2.50"/></enableWhen>
          </item></Questionnaire>"#,
    );
    let item = &v["item"][0];
    assert_eq!(item["required"], true);
    assert_eq!(item["maxLength"], 10);
    assert_eq!(
        item["linkId"], "1",
        "a string stays a string even when it looks like a number"
    );
    assert_eq!(item["enableWhen"][0]["answerDecimal"], 2.5);
    let v = convert(
        r#"<Appointment xmlns="http://hl7.org/fhir"><status value="booked"/>
          <minutesDuration value="15"/><priority value="0"/>
          <participant><status value="accepted"/></participant></Appointment>"#,
    );
    assert_eq!(v["minutesDuration"], 15, "positiveInt");
    assert_eq!(v["priority"], 0, "unsignedInt");
    assert!(v["status"].is_string());
}

#[test]
fn invalid_values_are_errors() {
    for (body, message) in [
        (r#"<active value="1"/>"#, "invalid boolean '1'"),
        (r#"<active value="True"/>"#, "invalid boolean 'True'"),
        (
            r#"<multipleBirthInteger value="01"/>"#,
            "invalid integer '01'",
        ),
        (
            r#"<multipleBirthInteger value="1.0"/>"#,
            "invalid integer '1.0'",
        ),
        (
            r#"<multipleBirthInteger value="2147483648"/>"#,
            "invalid integer '2147483648'",
        ),
        (r#"<multipleBirthInteger value=""/>"#, "invalid integer ''"),
        (
            r#"<multipleBirthInteger value="+3"/>"#,
            "invalid integer '+3'",
        ),
    ] {
        let e = error(&patient(body));
        assert!(e.message.starts_with(message), "{body}: {e}");
    }
    let obs = |value: &str| {
        format!(
            r#"<Observation xmlns="http://hl7.org/fhir"><status value="final"/><code/><valueQuantity><value value="{value}"/></valueQuantity></Observation>"#
        )
    };
    for bad in ["1.", ".5", "1,5", "NaN", "0x1", "1.5.0", "--1"] {
        let e = error(&obs(bad));
        assert!(e.message.starts_with("invalid decimal"), "{bad}: {e}");
    }
    let e = error(
        r#"<Appointment xmlns="http://hl7.org/fhir"><minutesDuration value="0"/></Appointment>"#,
    );
    assert!(e.message.starts_with("invalid positiveInt '0'"), "{e}");
    let e =
        error(r#"<Appointment xmlns="http://hl7.org/fhir"><priority value="-1"/></Appointment>"#);
    assert!(e.message.starts_with("invalid unsignedInt '-1'"), "{e}");
}

#[test]
fn ids_are_attributes_on_elements_and_an_element_on_resources() {
    let v = convert(&patient(
        r#"<id value="p"/><name id="n1"><family value="X"/></name>"#,
    ));
    assert_eq!(v["id"], "p");
    assert_eq!(v["name"][0]["id"], "n1");
    let e = error(&patient(r#"<name><id value="n1"/></name>"#));
    assert!(
        e.message.contains("'id' is an attribute in FHIR XML"),
        "{e}"
    );
    let e = error(r#"<Patient xmlns="http://hl7.org/fhir" id="p"/>"#);
    assert!(e.message.contains("unexpected attribute 'id'"), "{e}");
    let e = error(&patient(r#"<name foo="bar"/>"#));
    assert!(
        e.message.contains("unexpected attribute 'foo' on <name>"),
        "{e}"
    );
    // Namespace declarations and prefixed attributes (xsi:schemaLocation) are not data.
    let v = convert(
        r#"<Patient xmlns="http://hl7.org/fhir" xmlns:xsi="http://www.w3.org/2001/XMLSchema-instance" xsi:schemaLocation="http://hl7.org/fhir ../../schema/fhir-single.xsd"/>"#,
    );
    assert_eq!(v, json!({"resourceType": "Patient"}));
}

#[test]
fn extension_urls_are_attributes() {
    let v = convert(&patient(
        r#"<modifierExtension id="m" url="http://example.org/m"><valueCode value="x"/></modifierExtension>
           <extension url="http://example.org/complex">
             <extension url="part"><valueString value="a"/></extension>
           </extension>"#,
    ));
    assert_eq!(
        v["modifierExtension"],
        json!([{"id": "m", "url": "http://example.org/m", "valueCode": "x"}])
    );
    assert_eq!(
        v["extension"],
        json!([{"url": "http://example.org/complex", "extension": [{"url": "part", "valueString": "a"}]}])
    );
    let e = error(&patient(r#"<name url="x"/>"#));
    assert!(e.message.contains("unexpected attribute 'url'"), "{e}");
}

#[test]
fn repeating_elements_are_arrays_even_with_one_item() {
    let v = convert(&patient(
        r#"<name><given value="Peter"/></name><telecom><system value="phone"/></telecom>"#,
    ));
    assert_eq!(v["name"], json!([{"given": ["Peter"]}]));
    assert_eq!(v["telecom"], json!([{"system": "phone"}]));
}

#[test]
fn repeating_primitives_align_values_and_twins_with_nulls() {
    let v = convert(&patient(
        r#"<name>
             <given value="A"/>
             <given id="g2"><extension url="http://example.org/e"><valueString value="x"/></extension></given>
             <given value="C"/>
             <given value="D" id="g4"/>
           </name>"#,
    ));
    assert_eq!(v["name"][0]["given"], json!(["A", null, "C", "D"]));
    assert_eq!(
        v["name"][0]["_given"],
        json!([
            null,
            {"id": "g2", "extension": [{"url": "http://example.org/e", "valueString": "x"}]},
            null,
            {"id": "g4"}
        ])
    );
    // No twin at all when no item has an id or extension; no values when none has one.
    let v = convert(&patient(
        r#"<name><given value="A"/><given value="B"/></name>"#,
    ));
    assert!(v["name"][0].get("_given").is_none());
    let v = convert(&patient(r#"<name><given id="a"/></name>"#));
    assert_eq!(v["name"][0], json!({"_given": [{"id": "a"}]}));
    // The twin follows its value in the text.
    let text = to_json(&patient(
        r#"<gender id="g" value="male"/><active value="true"/>"#,
    ))
    .unwrap();
    assert!(
        text.contains(r#""gender":"male","_gender":{"id":"g"},"active":true"#),
        "{text}"
    );
}

#[test]
fn a_primitive_needs_a_value_an_id_or_an_extension() {
    let e = error(&patient(r#"<active/>"#));
    assert_eq!(
        e.message,
        "<active> (boolean) has no value attribute, id or extension"
    );
    let e = error(&patient(r#"<active value="true"><foo/></active>"#));
    assert!(e.message.contains("only <extension>"), "{e}");
    let e = error(&patient(r#"<active value="true">yes</active>"#));
    assert!(
        e.message.starts_with("text is not allowed in <active>"),
        "{e}"
    );
}

#[test]
fn choice_elements_resolve_their_type() {
    let v = convert(
        r#"<Observation xmlns="http://hl7.org/fhir"><status value="final"/><code/>
           <effectivePeriod><start value="2020-01-01"/></effectivePeriod>
           <valueQuantity><value value="185"/><unit value="lbs"/><system value="http://unitsofmeasure.org"/><code value="[lb_av]"/></valueQuantity>
           <component><code/><valueString value="x"/></component>
           <component><code/><valueCodeableConcept><text value="y"/></valueCodeableConcept></component>
           </Observation>"#,
    );
    assert_eq!(v["effectivePeriod"], json!({"start": "2020-01-01"}));
    assert_eq!(v["valueQuantity"]["value"], 185);
    assert_eq!(v["valueQuantity"]["code"], "[lb_av]");
    assert_eq!(v["component"][0]["valueString"], "x");
    assert_eq!(
        v["component"][1]["valueCodeableConcept"],
        json!({"text": "y"})
    );
    let e = error(
        r#"<Observation xmlns="http://hl7.org/fhir"><valueString value="a"/><valueBoolean value="true"/></Observation>"#,
    );
    assert_eq!(
        e.message,
        "Observation.value[x] does not repeat but is given twice"
    );
    let e =
        error(r#"<Observation xmlns="http://hl7.org/fhir"><valueFoo value="a"/></Observation>"#);
    assert_eq!(e.message, "Observation has no element 'valueFoo'");
    let e = error(r#"<Observation xmlns="http://hl7.org/fhir"><value value="a"/></Observation>"#);
    assert_eq!(e.message, "Observation has no element 'value'");
}

#[test]
fn a_non_repeating_element_given_twice_is_an_error() {
    let e = error(&patient(
        "\n<active value=\"true\"/>\n<active value=\"false\"/>",
    ));
    assert_eq!(
        e.message,
        "Patient.active does not repeat but is given twice"
    );
    assert_eq!((e.line, e.column), (3, 1));
    let e = error(&patient(
        r#"<contact><name><family value="a"/></name><name/></contact>"#,
    ));
    assert_eq!(
        e.message,
        "Patient.contact.name does not repeat but is given twice"
    );
}

#[test]
fn backbone_elements_and_recursive_definitions() {
    let v = convert(
        r#"<Questionnaire xmlns="http://hl7.org/fhir"><status value="draft"/>
           <item><linkId value="1"/><type value="group"/>
             <item><linkId value="1.1"/><type value="group"/>
               <item><linkId value="1.1.1"/><type value="boolean"/>
                 <initial><valueBoolean value="true"/></initial></item></item></item></Questionnaire>"#,
    );
    assert_eq!(
        v["item"][0]["item"][0]["item"][0]["initial"],
        json!([{"valueBoolean": true}])
    );
}

#[test]
fn resources_inside_elements_are_objects_with_their_type_first() {
    let text = to_json(
        r##"<MedicationRequest xmlns="http://hl7.org/fhir">
          <contained><Medication><id value="med"/><code><text value="x"/></code></Medication></contained>
          <status value="active"/><intent value="order"/>
          <medicationReference><reference value="#med"/></medicationReference>
          <subject><reference value="Patient/1"/></subject></MedicationRequest>"##,
    )
    .unwrap();
    assert!(
        text.contains(
            r#""contained":[{"resourceType":"Medication","id":"med","code":{"text":"x"}}]"#
        ),
        "{text}"
    );
    let v = convert(
        r#"<Bundle xmlns="http://hl7.org/fhir"><type value="batch-response"/>
          <entry><fullUrl value="urn:uuid:1"/><resource><Patient><active value="true"/></Patient></resource>
            <response><status value="400"/><outcome><OperationOutcome><issue><severity value="error"/><code value="invalid"/></issue></OperationOutcome></outcome></response>
          </entry></Bundle>"#,
    );
    assert_eq!(
        v["entry"][0]["resource"],
        json!({"resourceType": "Patient", "active": true})
    );
    assert_eq!(
        v["entry"][0]["response"]["outcome"]["resourceType"],
        "OperationOutcome"
    );
    let v = convert(
        r#"<Parameters xmlns="http://hl7.org/fhir"><parameter><name value="p"/><resource><Basic/></resource></parameter>
          <parameter><name value="n"/><valueInteger value="3"/><part><name value="x"/><valueBoolean value="false"/></part></parameter></Parameters>"#,
    );
    assert_eq!(
        v["parameter"],
        json!([
            {"name": "p", "resource": {"resourceType": "Basic"}},
            {"name": "n", "valueInteger": 3, "part": [{"name": "x", "valueBoolean": false}]}
        ])
    );
    for (holder, message) in [
        ("<contained/>", "<contained> must contain a resource"),
        (
            "<contained> </contained>",
            "<contained> must contain a resource",
        ),
        (
            "<contained><Basic/><Basic/></contained>",
            "<contained> holds one resource, <Basic> is a second",
        ),
        (
            "<contained><HumanName/></contained>",
            "<contained> must contain a FHIR resource, not <HumanName>",
        ),
        (
            "<contained>text</contained>",
            "text is not allowed in <contained>",
        ),
    ] {
        let e = error(&patient(holder));
        assert!(e.message.starts_with(message), "{holder}: {e}");
    }
}

#[test]
fn the_narrative_div_is_its_xhtml_serialisation() {
    let v = convert(&patient(
        "<text><status value=\"generated\"/><div xmlns=\"http://www.w3.org/1999/xhtml\" lang=\"en\"><p class=\"a&quot;b\">Tom &amp; Jerry &lt;3 &#x263A; &gt;<br/><!-- note --><?pi x?><b>bold</b> <i></i></p>\r\n<![CDATA[<x>]]></div></text>",
    ));
    assert_eq!(v["text"]["status"], "generated");
    assert_eq!(
        v["text"]["div"],
        "<div xmlns=\"http://www.w3.org/1999/xhtml\" lang=\"en\"><p class=\"a&quot;b\">Tom &amp; Jerry &lt;3 \u{263A} &gt;<br/><!-- note --><b>bold</b> <i></i></p>\n&lt;x&gt;</div>"
    );
    // A prefixed XHTML div comes out with the XHTML namespace as the default.
    let v = convert(&patient(
        r#"<text><status value="generated"/><h:div xmlns:h="http://www.w3.org/1999/xhtml"><h:p>x</h:p></h:div></text>"#,
    ));
    assert_eq!(
        v["text"]["div"],
        r#"<div xmlns="http://www.w3.org/1999/xhtml" xmlns:h="http://www.w3.org/1999/xhtml"><p>x</p></div>"#
    );
    let e = error(&patient(
        r#"<text><status value="generated"/><div><p>x</p></div></text>"#,
    ));
    assert!(e.message.starts_with("<div> must be an XHTML div"), "{e}");
    let e = error(&patient(r#"<div xmlns="http://www.w3.org/1999/xhtml"/>"#));
    assert_eq!(e.message, "Patient has no element 'div' (XHTML)");
    let e = error(&patient(
        r#"<text><div xmlns="http://www.w3.org/1999/xhtml">&nbsp;</div></text>"#,
    ));
    assert!(
        e.message.starts_with("unknown entity reference '&nbsp;'"),
        "{e}"
    );
}

#[test]
fn comments_instructions_and_whitespace_are_ignored_outside_the_narrative() {
    let v = convert(
        "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n<!-- a comment -->\n<?pi data?>\n<Patient xmlns=\"http://hl7.org/fhir\">\n  <!-- inside -->\n  <active value=\"true\"><!-- c --></active>\n  <?pi?>\n</Patient>\n<!-- after -->\n",
    );
    assert_eq!(v, json!({"resourceType": "Patient", "active": true}));
    // String values keep their inner whitespace; literal line ends in attributes are
    // spaces (XML attribute-value normalisation), character references are not.
    let v = convert(&patient("<name><text value=\" a  b\nc&#10;d \"/></name>"));
    assert_eq!(v["name"][0]["text"], " a  b c\nd ");
}

#[test]
fn text_where_only_elements_belong_is_an_error() {
    let e = error(&patient("\n  <name>Peter</name>"));
    assert_eq!(
        e.message,
        "text is not allowed in <name>: FHIR XML has values in value attributes"
    );
    assert_eq!((e.line, e.column), (2, 9));
    let e = error(&patient("Peter"));
    assert!(
        e.message.starts_with("text is not allowed in <Patient>"),
        "{e}"
    );
    let e = error(&patient("<name>&amp;</name>"));
    assert!(
        e.message.starts_with("text is not allowed in <name>"),
        "{e}"
    );
    let e = error(&patient("<name><![CDATA[x]]></name>"));
    assert!(
        e.message.starts_with("text is not allowed in <name>"),
        "{e}"
    );
}

#[test]
fn document_level_errors() {
    for (xml, message) in [
        ("", "no root element"),
        ("  <!-- only -->", "no root element"),
        ("text", "text outside the root element"),
        (
            "<Patient xmlns=\"http://hl7.org/fhir\"/><Patient xmlns=\"http://hl7.org/fhir\"/>",
            "a second root element",
        ),
        (
            "<Patient xmlns=\"http://hl7.org/fhir\"/>x",
            "text outside the root element",
        ),
        (
            "<!DOCTYPE Patient><Patient xmlns=\"http://hl7.org/fhir\"/>",
            "a DOCTYPE is not allowed",
        ),
        (
            "<Patient xmlns=\"http://hl7.org/fhir\"><name>",
            "the document ends before </name>",
        ),
        (
            "<Patient xmlns=\"http://hl7.org/fhir\"><active value=\"a&b\"/></Patient>",
            "'&' not followed by a reference",
        ),
        (
            "<Patient xmlns=\"http://hl7.org/fhir\"><active value=\"&foo;\"/></Patient>",
            "unknown entity reference '&foo;'",
        ),
        (
            "<Patient xmlns=\"http://hl7.org/fhir\"><active value=\"true\" value=\"false\"/></Patient>",
            "malformed XML",
        ),
        (
            "<Patient xmlns=\"http://hl7.org/fhir\"><active value=true/></Patient>",
            "malformed XML",
        ),
        (
            "<Patient xmlns=\"http://hl7.org/fhir\"></Patient></Patient>",
            "malformed XML",
        ),
    ] {
        let e = error(xml);
        assert!(e.message.starts_with(message), "{xml:?}: {e}");
        assert!(e.line >= 1 && e.column >= 1);
    }
}

#[test]
fn a_byte_order_mark_is_skipped() {
    let v = convert("\u{feff}<Basic xmlns=\"http://hl7.org/fhir\"/>");
    assert_eq!(v, json!({"resourceType": "Basic"}));
}

#[test]
fn nesting_is_bounded() {
    let depth = 5_000;
    let mut xml = String::from(r#"<Patient xmlns="http://hl7.org/fhir">"#);
    for _ in 0..depth {
        xml.push_str(r#"<extension url="u">"#);
    }
    for _ in 0..depth {
        xml.push_str("</extension>");
    }
    xml.push_str("</Patient>");
    let e = error(&xml);
    assert_eq!(e.message, "elements nested more than 1000 deep");

    let mut xml =
        patient(r#"<text><status value="generated"/><div xmlns="http://www.w3.org/1999/xhtml">"#);
    xml.truncate(xml.len() - "</Patient>".len());
    for _ in 0..depth {
        xml.push_str("<b>");
    }
    let e = error(&xml);
    assert_eq!(e.message, "elements nested more than 1000 deep");

    // Just under the bound converts, on a test thread's 2 MiB stack in a debug build.
    let mut xml = String::from(r#"<Patient xmlns="http://hl7.org/fhir">"#);
    for _ in 0..998 {
        xml.push_str(r#"<extension url="u">"#);
    }
    for _ in 0..998 {
        xml.push_str("</extension>");
    }
    xml.push_str("</Patient>");
    assert!(to_json(&xml).is_ok());
}

#[test]
fn pretty_and_compact_are_the_same_json() {
    let xml = patient(
        r#"<id value="x"/><name><given value="A"/><given value="B"/></name><birthDate value="2000-01-01"/><deceasedBoolean value="false"/>"#,
    );
    let compact: Value = serde_json::from_str(&to_json(&xml).unwrap()).unwrap();
    let pretty_text = to_json_pretty(&xml).unwrap();
    assert!(pretty_text.starts_with("{\n  \"resourceType\": \"Patient\",\n  \"id\": \"x\","));
    let pretty: Value = serde_json::from_str(&pretty_text).unwrap();
    assert_eq!(compact, pretty);
}

#[test]
fn json_string_escaping() {
    let text = to_json(&patient(
        r#"<name><text value="quote &quot; backslash \ tab&#9;nl&#10;cr&#13;"/></name>"#,
    ))
    .unwrap();
    assert!(
        text.contains(r#""text":"quote \" backslash \\ tab\tnl\ncr\r""#),
        "{text}"
    );
}
