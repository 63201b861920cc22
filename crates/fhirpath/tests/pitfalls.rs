//! The cases where FHIRPath engines go wrong on FHIR JSON (measured on two existing
//! crates), each pinned down.

use fhirpath::{Collection, EvalError, Expression, Input, ParseError, Variables};
use serde_json::{Value, json};

fn eval(expr: &str, resource: &Value) -> Result<Collection, EvalError> {
    let e = Expression::parse(expr).unwrap_or_else(|e| panic!("{expr}: {e}"));
    e.evaluate(&Input::new(resource), &Variables::default())
}

fn values(expr: &str, resource: &Value) -> Vec<Value> {
    eval(expr, resource)
        .unwrap_or_else(|e| panic!("{expr}: {e}"))
        .to_json()
}

fn types(expr: &str, resource: &Value) -> Vec<String> {
    eval(expr, resource)
        .unwrap_or_else(|e| panic!("{expr}: {e}"))
        .type_names()
}

fn parse_err(expr: &str) -> ParseError {
    match Expression::parse(expr) {
        Ok(_) => panic!("{expr} parsed"),
        Err(e) => e,
    }
}

fn patient() -> Value {
    json!({
        "resourceType": "Patient",
        "id": "p1",
        "active": true,
        "name": [
            {"use": "official", "family": "Chalmers", "given": ["Peter", "James"],
             "_given": [null, {"extension": [{"url": "http://example.org/x", "valueString": "J"}]}]},
            {"use": "usual", "given": ["Jim"]}
        ],
        "birthDate": "1974-12-25",
        "_birthDate": {"extension": [{
            "url": "http://hl7.org/fhir/StructureDefinition/patient-birthTime",
            "valueDateTime": "1974-12-25T14:35:45-05:00"
        }]},
        "managingOrganization": {"reference": "Organization/o1"}
    })
}

fn observation() -> Value {
    json!({
        "resourceType": "Observation",
        "status": "final",
        "code": {"text": "weight"},
        "valueQuantity": {"value": 185, "unit": "lbs", "system": "http://unitsofmeasure.org", "code": "[lb_av]"}
    })
}

#[test]
fn element_names_match_exactly() {
    assert!(values("birth", &patient()).is_empty());
    assert!(values("birthDat", &patient()).is_empty());
    assert_eq!(values("birthDate", &patient()), [json!("1974-12-25")]);
    assert!(values("resourceType", &patient()).is_empty());
    assert_eq!(values("birth.exists()", &patient()), [json!(false)]);
}

#[test]
fn response_is_not_response_code() {
    let script = json!({
        "resourceType": "TestScript",
        "setup": {"action": [{"assert": {"responseCode": "200"}}]},
        "test": [{"action": [{"assert": {"responseCode": "201"}}]}]
    });
    assert_eq!(
        values("setup.action.assert.response.exists()", &script),
        [json!(false)]
    );
    assert_eq!(
        values("test.action.assert.response.exists()", &script),
        [json!(false)]
    );
    assert_eq!(
        values("setup.action.assert.responseCode", &script),
        [json!("200")]
    );
    // The same on untyped JSON (the setup alone has no resourceType).
    let setup = script["setup"].clone();
    assert_eq!(
        values("action.assert.response.exists()", &setup),
        [json!(false)]
    );
    let with = json!({"action": [{"assert": {"response": "okay"}}]});
    assert_eq!(
        values("action.assert.response.exists()", &with),
        [json!(true)]
    );
}

#[test]
fn set_operations_compare_complex_values_deeply() {
    let p = patient();
    assert_eq!(
        values("name.intersect(name).count() = 2", &p),
        [json!(true)]
    );
    assert_eq!(values("name.intersect(name).count()", &p), [json!(2)]);
    assert_eq!(values("(name | name).count()", &p), [json!(2)]);
    assert_eq!(values("name.union(name).count()", &p), [json!(2)]);
    assert_eq!(values("name.combine(name).count()", &p), [json!(4)]);
    assert_eq!(values("name.exclude(name.first()).count()", &p), [json!(1)]);
    assert_eq!(values("name.distinct().count()", &p), [json!(2)]);
    assert_eq!(values("name.first() = name.first()", &p), [json!(true)]);
    assert_eq!(values("name.first() = name.last()", &p), [json!(false)]);
    assert_eq!(values("name.isDistinct()", &p), [json!(true)]);
    // Larger collections take the hashed path: same answers.
    let many = "(1 | 2 | 3 | 4 | 5 | 6 | 7 | 8 | 9 | 10 | 1.0 | 2.0)";
    assert_eq!(values(&format!("{many}.count()"), &p), [json!(10)]);
    let strings = "('a' | 'b' | 'c' | 'd' | 'e' | 'f' | 'g' | 'h' | 'i' | 'j')";
    assert_eq!(
        values(
            &format!("{strings}.combine({strings}).distinct().count()"),
            &p
        ),
        [json!(10)]
    );
    assert_eq!(
        values(&format!("{strings}.intersect('c' | 'z')"), &p),
        [json!("c")]
    );
    assert_eq!(
        values(&format!("{strings}.exclude({strings}).empty()"), &p),
        [json!(true)]
    );
    assert_eq!(
        values(&format!("{many}.intersect(2.0 | 3)"), &p),
        [json!(2), json!(3)]
    );
    assert_eq!(
        values(&format!("{strings}.supersetOf('a' | 'j')"), &p),
        [json!(true)]
    );
}

#[test]
fn as_on_a_collection_follows_the_specification() {
    let p = patient();
    // "If there is more than one item in the input collection, the evaluator will
    // throw an error" (FHIRPath N1, `as`); ofType() is the filter.
    let err = eval("name.as(HumanName)", &p).unwrap_err();
    assert!(err.message.contains("2 items"), "{}", err.message);
    assert!(eval("name as HumanName", &p).is_err());
    assert_eq!(values("name.ofType(HumanName).count()", &p), [json!(2)]);
    assert_eq!(
        values("name.first().as(HumanName).family", &p),
        [json!("Chalmers")]
    );
    assert!(values("name.first().as(Quantity)", &p).is_empty());
    assert!(eval("name is HumanName", &p).is_err());
}

#[test]
fn html_checks_are_real() {
    let with_div =
        |div: &str| json!({"resourceType": "Patient", "text": {"status": "generated", "div": div}});
    let clean = with_div(
        "<div xmlns=\"http://www.w3.org/1999/xhtml\"><p>Peter <b>Chalmers</b> &amp; co</p>\
         <table><tr><td colspan=\"2\">x</td></tr></table><a href=\"http://x\">link</a><br/></div>",
    );
    assert_eq!(values("text.div.htmlChecks()", &clean), [json!(true)]);
    for bad in [
        "<div xmlns=\"http://www.w3.org/1999/xhtml\"><script>alert(1)</script></div>",
        "<div xmlns=\"http://www.w3.org/1999/xhtml\"><p onclick=\"alert(1)\">x</p></div>",
        "<div xmlns=\"http://www.w3.org/1999/xhtml\"><a href=\"javascript:alert(1)\">x</a></div>",
        "<div xmlns=\"http://www.w3.org/1999/xhtml\"><form></form></div>",
        "<div xmlns=\"http://www.w3.org/1999/xhtml\"><p>unclosed</div>",
        "<div><p>no namespace</p></div>",
        "<p xmlns=\"http://www.w3.org/1999/xhtml\">not a div</p>",
        "plain text",
    ] {
        assert_eq!(
            values("text.div.htmlChecks()", &with_div(bad)),
            [json!(false)],
            "{bad}"
        );
    }
}

#[test]
fn invalid_primitives_keep_their_value() {
    let p = json!({"resourceType": "Patient", "active": "yes"});
    assert_eq!(values("active", &p), [json!("yes")]);
    assert_eq!(values("active = true", &p), [json!(false)]);
    assert_eq!(values("active = 'yes'", &p), [json!(true)]);
    assert_eq!(values("active != true", &p), [json!(true)]);
}

#[test]
fn unknown_elements_are_navigable_and_untyped() {
    let p = json!({"resourceType": "Patient", "foo": 3, "bar": {"baz": "x"}});
    assert_eq!(values("foo", &p), [json!(3)]);
    assert_eq!(values("foo = 3", &p), [json!(true)]);
    assert_eq!(values("bar.baz", &p), [json!("x")]);
    assert_eq!(types("bar", &p), ["Untyped"]);
    assert_eq!(values("bar is Element", &p), [json!(false)]);
    assert!(values("bar.as(Element)", &p).is_empty());
}

#[test]
fn choice_elements_by_their_declared_types() {
    let o = observation();
    assert_eq!(values("value.ofType(Quantity).value", &o), [json!(185)]);
    assert_eq!(values("value is Quantity", &o), [json!(true)]);
    assert_eq!(values("value.as(Quantity).unit", &o), [json!("lbs")]);
    assert_eq!(values("(value as Quantity).unit", &o), [json!("lbs")]);
    assert_eq!(values("valueQuantity.unit", &o), [json!("lbs")]);
    assert_eq!(types("value", &o), ["FHIR.Quantity"]);
    assert!(values("value.ofType(string)", &o).is_empty());
    assert!(values("val", &o).is_empty());
    // `valueFoo` is not a declared type of Observation.value: not the choice.
    let odd = json!({"resourceType": "Observation", "valueFoo": 1});
    assert!(values("value", &odd).is_empty());
    assert_eq!(values("value > 100 'kg'", &o), [json!(false)]);
    assert_eq!(values("value > 80 'kg'", &o), [json!(true)]);
}

#[test]
fn primitives_are_typed_and_carry_their_extensions() {
    let p = patient();
    assert_eq!(values("birthDate is date", &p), [json!(true)]);
    assert_eq!(values("birthDate is string", &p), [json!(false)]);
    assert_eq!(types("birthDate", &p), ["FHIR.date"]);
    assert_eq!(types("name", &p), ["FHIR.HumanName", "FHIR.HumanName"]);
    assert_eq!(types("Patient", &p), ["FHIR.Patient"]);
    assert_eq!(types("id", &p), ["FHIR.id"]);
    assert_eq!(
        types("1 | 'a' | 1.5 | true", &p),
        [
            "System.Integer",
            "System.String",
            "System.Decimal",
            "System.Boolean"
        ]
    );
    assert_eq!(
        values("birthDate.extension.value", &p),
        [json!("1974-12-25T14:35:45-05:00")]
    );
    assert_eq!(
        values(
            "birthDate.extension('http://hl7.org/fhir/StructureDefinition/patient-birthTime').value.is(dateTime)",
            &p
        ),
        [json!(true)]
    );
    // `_given: [null, {...}]`: the second given has the extension.
    assert_eq!(values("name.given.extension.value", &p), [json!("J")]);
    assert_eq!(
        values("name.given.where(extension.exists())", &p),
        [json!("James")]
    );
    assert_eq!(values("birthDate > @1970-01-01", &p), [json!(true)]);
    assert_eq!(values("birthDate.hasValue()", &p), [json!(true)]);
}

#[test]
fn type_name_at_the_start_of_a_path_filters() {
    let p = patient();
    assert_eq!(values("Patient.name.count()", &p), [json!(2)]);
    assert!(values("Observation.status", &p).is_empty());
    assert_eq!(values("Resource.id", &p), [json!("p1")]);
    assert_eq!(values("DomainResource.id", &p), [json!("p1")]);
}

#[test]
fn resolve_within_the_input() {
    let bundle = json!({
        "resourceType": "Bundle",
        "type": "searchset",
        "entry": [
            {"fullUrl": "http://x/fhir/Patient/p1", "resource": {
                "resourceType": "Patient", "id": "p1",
                "managingOrganization": {"reference": "Organization/o1"},
                "generalPractitioner": [{"reference": "http://x/fhir/Practitioner/d1"},
                                        {"reference": "Practitioner/missing"}],
                "contained": [{"resourceType": "Organization", "id": "c1", "name": "Inside"}],
                "link": [{"other": {"reference": "#c1"}, "type": "seealso"}]
            }},
            {"fullUrl": "http://x/fhir/Organization/o1", "resource": {
                "resourceType": "Organization", "id": "o1", "name": "Acme"}},
            {"fullUrl": "http://x/fhir/Practitioner/d1", "resource": {
                "resourceType": "Practitioner", "id": "d1", "active": true}}
        ]
    });
    assert_eq!(
        values(
            "Bundle.entry.resource.managingOrganization.resolve().name",
            &bundle
        ),
        [json!("Acme")]
    );
    assert_eq!(
        types(
            "Bundle.entry.resource.managingOrganization.resolve()",
            &bundle
        ),
        ["FHIR.Organization"]
    );
    assert_eq!(
        values(
            "entry.resource.ofType(Patient).generalPractitioner.resolve().active",
            &bundle
        ),
        [json!(true)]
    );
    assert_eq!(
        values(
            "entry.resource.ofType(Patient).link.other.resolve().name",
            &bundle
        ),
        [json!("Inside")]
    );
    assert_eq!(
        values("entry.resource.ofType(Patient).contained.name", &bundle),
        [json!("Inside")]
    );
    assert_eq!(
        types("entry.resource", &bundle),
        ["FHIR.Patient", "FHIR.Organization", "FHIR.Practitioner"]
    );
    assert!(values("Patient.managingOrganization.resolve()", &patient()).is_empty());
}

#[test]
fn environment_variables() {
    let p = patient();
    assert_eq!(values("%resource.id", &p), [json!("p1")]);
    assert_eq!(values("%context.name.count()", &p), [json!(2)]);
    assert_eq!(values("%ucum", &p), [json!("http://unitsofmeasure.org")]);
    let mut vars = Variables::default();
    vars.values.insert("expected".into(), json!("Chalmers"));
    vars.values.insert("n".into(), json!(2));
    let e = Expression::parse("name.family = %expected and name.count() = %n").unwrap();
    let out = e.evaluate(&Input::new(&p), &vars).unwrap();
    assert_eq!(out.to_json(), [json!(true)]);
    let e = Expression::parse("%missing").unwrap();
    let err = e.evaluate(&Input::new(&p), &vars).unwrap_err();
    assert!(err.message.contains("%missing"), "{}", err.message);
}

#[test]
fn several_items_where_one_is_expected_is_an_error() {
    let p = patient();
    // Two strings (Peter, James): an error, not "some match" or "the first matches".
    let err = eval("name.first().given.matches('^P')", &p).unwrap_err();
    assert_eq!(
        err.message,
        "the input of matches() must be a single value, but the collection has 2 items"
    );
    assert!(eval("name.given.matches('^P')", &p).is_err());
    assert!(eval("name.given.single()", &p).is_err());
    assert!(eval("name.given + 'x'", &p).is_err());
    assert!(eval("name.given < 'x'", &p).is_err());
    assert_eq!(
        values("name.given.first().matches('^P')", &p),
        [json!(true)]
    );
    assert!(values("{}.matches('x')", &p).is_empty());
}

#[test]
fn three_valued_logic() {
    let p = patient();
    let cases = [
        ("true and {}", None),
        ("false and {}", Some(false)),
        ("true or {}", Some(true)),
        ("false or {}", None),
        ("{} implies false", None),
        ("false implies {}", Some(true)),
        ("true xor {}", None),
        ("{}.not()", None),
        ("true xor false", Some(true)),
    ];
    for (expr, want) in cases {
        let got = eval(expr, &p).unwrap().as_boolean().unwrap();
        assert_eq!(got, want, "{expr}");
    }
}

#[test]
fn syntax_errors_say_where_and_what() {
    let e = parse_err("name.where(given = 'x'");
    assert_eq!(e.offset, 22);
    assert!(
        e.message.contains("')'") && e.message.contains("where()"),
        "{}",
        e.message
    );
    let e = parse_err("name.given.");
    assert_eq!(e.offset, 11);
    let e = parse_err("1 + ");
    assert_eq!(e.offset, 4);
    let e = parse_err("name.foo()");
    assert_eq!(e.offset, 5);
    assert!(e.message.contains("unknown function"), "{}", e.message);
    let e = parse_err("code.memberOf('http://x')");
    assert_eq!(e.offset, 5);
    assert!(
        e.message
            .contains("`memberOf()` is not supported by fhirconf"),
        "{}",
        e.message
    );
    let e = parse_err("name.where()");
    assert!(
        e.message.contains("where() takes 1 argument"),
        "{}",
        e.message
    );
    let e = parse_err("'unterminated");
    assert_eq!(e.offset, 0);
    let e = parse_err("name.ofType(Foo)");
    assert!(e.message.contains("unknown type"), "{}", e.message);
    let e = parse_err("é = 1");
    assert_eq!(e.offset, 0);
    let deep = format!("{}1{}", "(".repeat(10_000), ")".repeat(10_000));
    let e = parse_err(&deep);
    assert!(e.message.contains("nested too deeply"), "{}", e.message);
    let long = vec!["1"; 5000].join(" + ");
    assert!(parse_err(&long).message.contains("nested too deeply"));
}

#[test]
fn dates_quantities_and_numbers() {
    let p = patient();
    let t = |e: &str| {
        assert_eq!(values(e, &p), [json!(true)], "{e}");
    };
    t("@2012-04-15 + 1 month = @2012-05-15");
    t("@2012-01-31 + 1 month = @2012-02-29");
    t("@2012-04-15T10:00:00Z - 1 day = @2012-04-14T10:00:00Z");
    t("(@2012-04-15 = @2012-04).empty()");
    t("(@2012-04-15T10:00:00Z > @2012-04-15T10:00:00+01:00)");
    t("1 'kg' = 1000 'g'");
    t("1 'kg' + 1 'g' = 1.001 'kg'");
    t("(1 'kg' + 1 'm').empty()");
    t("3 'min' + 2 'min' = 5 'min'");
    t("1 'h' = 60 'min'");
    t("(1 'kg' = 1 'm').empty()");
    t("1 = 1.0");
    // Equivalence compares decimals at the lesser precision.
    t("1.0 ~ 1.04");
    t("(1.0 ~ 1.1) = false");
    t("(1.0 = 1.04) = false");
    t("'Abc  def' ~ 'abc def'");
    t("(1 / 0).empty()");
    t("7 div 2 = 3 and 7 mod 2 = 1");
    t("(9223372036854775807 + 1).empty()");
    t("1 + 1.5 = 2.5");
    t("'abc'.substring(5).empty()");
    t("'aé'.length() = 2 and 'aéb'.substring(1, 1) = 'é'");
    t("'abc'.replace('', '-') = '-a-b-c-'");
}

#[test]
fn expressions_are_shareable() {
    fn assert_send_sync_clone<T: Send + Sync + Clone>() {}
    assert_send_sync_clone::<Expression>();
    let e = Expression::parse("name.given.first()").unwrap();
    let p = patient();
    std::thread::scope(|s| {
        for _ in 0..2 {
            let e = e.clone();
            let p = &p;
            s.spawn(move || {
                let out = e.evaluate(&Input::new(p), &Variables::default()).unwrap();
                assert_eq!(out.to_json(), [json!("Peter")]);
            });
        }
    });
}

#[test]
fn html_checks_accept_the_narratives_of_the_r4_examples() {
    let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/data");
    let mut checked = 0;
    for entry in std::fs::read_dir(dir).unwrap() {
        let path = entry.unwrap().path();
        if path.extension().and_then(|e| e.to_str()) != Some("json") {
            continue;
        }
        let v: Value = serde_json::from_str(&std::fs::read_to_string(&path).unwrap()).unwrap();
        if v.pointer("/text/div").is_none() {
            continue;
        }
        assert_eq!(
            values("text.div.htmlChecks()", &v),
            [json!(true)],
            "{}",
            path.display()
        );
        checked += 1;
    }
    assert!(checked >= 5, "{checked}");
}

#[test]
fn nested_resources_are_typed_by_their_resource_type() {
    let params = json!({
        "resourceType": "Parameters",
        "parameter": [
            {"name": "p", "resource": {"resourceType": "Patient", "birthDate": "2000-01-01"}},
            {"name": "n", "valueInteger": 3},
            {"name": "s", "valueString": "x", "_valueString": {"extension": [{"url": "u", "valueCode": "c"}]}}
        ]
    });
    assert_eq!(types("parameter.resource", &params), ["FHIR.Patient"]);
    assert_eq!(
        values("parameter.resource.birthDate is date", &params),
        [json!(true)]
    );
    assert_eq!(
        types("parameter.value", &params),
        ["FHIR.integer", "FHIR.string"]
    );
    assert_eq!(
        values("parameter.value.extension('u').value", &params),
        [json!("c")]
    );
    let contained = json!({
        "resourceType": "Patient",
        "contained": [{"resourceType": "Practitioner", "id": "d", "active": true}, {"id": "x"}]
    });
    assert_eq!(
        types("contained", &contained),
        ["FHIR.Practitioner", "Untyped"]
    );
    assert_eq!(
        values("contained.ofType(Practitioner).active", &contained),
        [json!(true)]
    );
    assert_eq!(types("contained.active", &contained), ["FHIR.boolean"]);
}

#[test]
fn model_warnings_catch_names_no_instance_can_have() {
    let w = |src: &str, root: Option<&str>| Expression::parse(src).unwrap().model_warnings(root);
    assert_eq!(
        w("birth.empty()", Some("Patient")),
        ["`birth` is not an element of Patient (did you mean `birthDate`?)"]
    );
    assert_eq!(
        w("name.given1", Some("Patient")),
        ["`given1` is not an element of HumanName (did you mean `given`?)"]
    );
    assert_eq!(
        w("Patient.name.where(famly = 'x')", None),
        ["`famly` is not an element of HumanName (did you mean `family`?)"]
    );
    assert_eq!(
        w("Encounter.status", Some("Patient")),
        ["`Encounter` does not match the type of the context (Patient)"]
    );
    assert_eq!(
        w("setup.action.assert.respons.exists()", Some("TestScript")).len(),
        1
    );
    for ok in [
        "name.given.first()",
        "birthDate.extension.value",
        "value.ofType(Quantity).unit",
        "valueQuantity.unit",
        "contained.ofType(Organization).name",
        "name.select(given.first() & family)",
        "Bundle.entry.resource.ofType(Patient).birthDate",
        "%resource.id",
        "managingOrganization.resolve().name",
        "contact.name.family",
        "text.div.htmlChecks()",
    ] {
        let root = if ok.starts_with("value") {
            "Observation"
        } else {
            "Patient"
        };
        let root = if ok.starts_with("Bundle") {
            None
        } else {
            Some(root)
        };
        assert!(w(ok, root).is_empty(), "{ok}: {:?}", w(ok, root));
    }
    assert!(
        w("entry.resource.foo", Some("Bundle")).is_empty(),
        "any resource: unknown"
    );
    assert_eq!(w("entry.resourc", Some("Bundle")).len(), 1);
}

#[test]
fn contained_references_resolve_in_their_own_resource() {
    let entry = |n: &str, med: &str| {
        json!({"fullUrl": format!("http://x/MedicationRequest/{n}"), "resource": {
            "resourceType": "MedicationRequest", "id": n,
            "contained": [
                {"resourceType": "Medication", "id": "med", "code": {"text": med},
                 "ingredient": [{"itemReference": {"reference": "#sub"}}]},
                {"resourceType": "Substance", "id": "sub", "code": {"text": format!("{med} substance")}}
            ],
            "medicationReference": {"reference": "#med"}
        }})
    };
    let bundle = json!({"resourceType": "Bundle", "type": "searchset",
        "entry": [entry("a", "Aspirin"), entry("b", "Ibuprofen")]});
    assert_eq!(
        values(
            "entry.resource.medicationReference.resolve().code.text",
            &bundle
        ),
        [json!("Aspirin"), json!("Ibuprofen")]
    );
    // A reference inside a contained resource resolves among its container's.
    assert_eq!(
        values(
            "entry.resource.medicationReference.resolve().ingredient.item.resolve().code.text",
            &bundle
        ),
        [json!("Aspirin substance"), json!("Ibuprofen substance")]
    );
    assert!(
        values(
            "entry.resource.contained.ingredient.item.resolve().exists()",
            &bundle
        ) == [json!(true)]
    );
    assert!(
        values("'#med'.resolve()", &bundle).is_empty(),
        "the Bundle has no contained"
    );
}

#[test]
fn strings_cannot_grow_without_bound() {
    let big = "x".repeat(1 << 20);
    let p = json!({"resourceType": "Patient", "id": big});
    let err = eval("id.replace('', id)", &p).unwrap_err();
    assert!(err.message.contains("longer than"), "{}", err.message);
    let doubled = (0..5).fold("id".to_string(), |e, _| format!("({e} + {e})"));
    assert!(eval(&doubled, &p).is_err());
    assert_eq!(values("(id + id).length()", &p), [json!(2 << 20)]);
}
