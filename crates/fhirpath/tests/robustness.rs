//! Nothing panics: the parser on arbitrary text, evaluation on arbitrary JSON, and
//! deep nesting is an error rather than a stack overflow.

use fhirpath::{Expression, Input, Variables};
use proptest::prelude::*;
use serde_json::{Value, json};

/// Pieces of FHIRPath text, glued together at random.
const TOKENS: &[&str] = &[
    "name",
    "given",
    "Patient",
    "value",
    "(",
    ")",
    "[",
    "]",
    "{",
    "}",
    ".",
    ",",
    "+",
    "-",
    "*",
    "/",
    "&",
    "|",
    "<",
    ">",
    "<=",
    ">=",
    "=",
    "~",
    "!=",
    "!~",
    " and ",
    " or ",
    " xor ",
    " implies ",
    " in ",
    " contains ",
    " is ",
    " as ",
    " div ",
    " mod ",
    "where(",
    "select(",
    "exists(",
    "first()",
    "count()",
    "iif(",
    "substring(",
    "matches(",
    "'a'",
    "'\\u00e9'",
    "1",
    "1.5",
    "0",
    "@2012-04-15",
    "@2012-04-15T10:00:00Z",
    "@T12:00",
    "4 'mg'",
    "1 year",
    "$this",
    "$index",
    "$total",
    "%resource",
    "%'x'",
    "`a b`",
    "//c\n",
    "/*",
    "*/",
    "true",
    "false",
    "ofType(Quantity)",
    "as(HumanName)",
    "resolve()",
    "extension('u')",
    "descendants()",
    "repeat(item)",
    "aggregate($total + 1, 0)",
    "toString()",
    "toInteger()",
    "round(2)",
    "@",
    "%",
    "$",
    "'",
    "`",
    "\\",
    "é",
    "\u{0}",
];

/// Expressions evaluated on arbitrary JSON.
const EXPRESSIONS: &[&str] = &[
    "name.given.first()",
    "descendants().count()",
    "children().distinct()",
    "repeat(children()).count()",
    "value.ofType(Quantity).value > 3",
    "birthDate < today()",
    "name.where(given.exists()).family.upper()",
    "select($this.toString().length())",
    "children().select(toInteger() + 1)",
    "children().select(toDecimal() * 2.5)",
    "children().select(toQuantity())",
    "children().select(toDate() + 1 day)",
    "children().select(toDateTime() - 1 'ms')",
    "children().where($this is String).matches('a.*')",
    "id.substring(1, 2)",
    "contained.resolve()",
    "entry.resource.managingOrganization.resolve().name",
    "text.div.htmlChecks()",
    "extension.value.ofType(string)",
    "%resource.descendants().where($this = 1)",
    "descendants().select($this ~ $this)",
    "descendants().select(hasValue() and getValue().exists())",
    "(children() | children()).count()",
    "children().intersect(children()).exclude(children())",
    "children().sort()",
    "children().select(round(1))",
    "children().select(sqrt() | ln() | exp() | abs() | power(2))",
    "children().select(encode('base64').decode('base64'))",
    "children().as(string)",
];

fn arbitrary_json() -> impl Strategy<Value = Value> {
    let leaf = prop_oneof![
        Just(Value::Null),
        any::<bool>().prop_map(Value::Bool),
        any::<i64>().prop_map(Value::from),
        any::<f64>()
            .prop_map(|f| serde_json::Number::from_f64(f).map_or(Value::Null, Value::Number)),
        ".{0,12}".prop_map(Value::String),
        prop_oneof![
            Just("1974-12-25"),
            Just("2012-04-15T10:00:00Z"),
            Just("12:00"),
            Just("Patient/1"),
            Just("#c1"),
            Just("<div xmlns=\"http://www.w3.org/1999/xhtml\">x</div>"),
            Just("2012-13-45"),
        ]
        .prop_map(|s| Value::String(s.to_string())),
    ];
    let keys = prop_oneof![
        Just("resourceType".to_string()),
        Just("name".to_string()),
        Just("given".to_string()),
        Just("_given".to_string()),
        Just("value".to_string()),
        Just("valueQuantity".to_string()),
        Just("extension".to_string()),
        Just("url".to_string()),
        Just("id".to_string()),
        Just("birthDate".to_string()),
        Just("_birthDate".to_string()),
        Just("contained".to_string()),
        Just("entry".to_string()),
        Just("resource".to_string()),
        Just("reference".to_string()),
        Just("text".to_string()),
        Just("div".to_string()),
        "[a-z]{1,6}",
    ];
    let resource_types = prop_oneof![
        Just("Patient"),
        Just("Observation"),
        Just("Bundle"),
        Just("Questionnaire"),
        Just("Nope"),
    ];
    leaf.prop_recursive(5, 64, 6, move |inner| {
        prop_oneof![
            prop::collection::vec(inner.clone(), 0..4).prop_map(Value::Array),
            prop::collection::vec((keys.clone(), inner.clone()), 0..6)
                .prop_map(|kv| Value::Object(kv.into_iter().collect())),
            (
                resource_types.clone(),
                prop::collection::vec((keys.clone(), inner), 0..6)
            )
                .prop_map(|(rt, kv)| {
                    let mut m: serde_json::Map<String, Value> = kv.into_iter().collect();
                    m.insert("resourceType".into(), json!(rt));
                    Value::Object(m)
                }),
        ]
    })
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(512))]

    #[test]
    fn parser_never_panics_on_text(s in "\\PC{0,80}") {
        let _ = Expression::parse(&s);
    }

    #[test]
    fn parser_never_panics_on_token_soup(parts in prop::collection::vec(prop::sample::select(TOKENS), 0..24)) {
        let src: String = parts.concat();
        if let Ok(e) = Expression::parse(&src) {
            let _ = e.model_warnings(Some("Patient"));
            let _ = e.model_warnings(None);
            let p = json!({"resourceType": "Patient", "name": [{"given": ["a", "b"]}], "birthDate": "2000-01-01"});
            let _ = e.evaluate(&Input::new(&p), &Variables::default());
        }
    }

    #[test]
    fn arithmetic_never_panics(
        a in prop_oneof![any::<i64>().prop_map(|i| i.to_string()), "[0-9]{1,38}(\\.[0-9]{1,30})?", Just("9223372036854775807".to_string())],
        b in prop_oneof![any::<i64>().prop_map(|i| i.to_string()), "[0-9]{1,38}(\\.[0-9]{1,30})?", Just("0".to_string())],
        op in prop::sample::select(&["+", "-", "*", "/", "div", "mod", "<", "=", "~"][..]),
        unit in prop::sample::select(&["", " 'mg'", " 'g'", " days", " 'wk'"][..]),
        f in prop::sample::select(&["abs()", "round(3)", "sqrt()", "ln()", "exp()", "power(3)", "floor()", "ceiling()", "truncate()", "toString()", "log(10)"][..]),
    ) {
        let p = json!({"resourceType": "Patient"});
        let input = Input::new(&p);
        for src in [
            format!("{a}{unit} {op} {b}{unit}"),
            format!("-({a}) {op} -({b})"),
            format!("({a}).{f}"),
            format!("@2012-01-01 + {a} days"),
            format!("@2012-01-01T10:00:00Z - {b} 'ms'"),
            format!("@T10:00 + {a} hours"),
            format!("@2012 + {b} months"),
        ] {
            if let Ok(e) = Expression::parse(&src) {
                let _ = e.evaluate(&input, &Variables::default());
            }
        }
    }

    #[test]
    fn evaluation_never_panics_on_json(v in arbitrary_json()) {
        let input = Input::new(&v);
        for src in EXPRESSIONS {
            let e = Expression::parse(src).unwrap();
            let _ = e.evaluate(&input, &Variables::default());
        }
    }
}

#[test]
fn deep_nesting_is_an_error() {
    for src in [
        "(".repeat(10_000),
        format!("{}1{}", "(".repeat(10_000), ")".repeat(10_000)),
        "-".repeat(10_000) + "1",
        vec!["a"; 10_000].join("."),
        vec!["1"; 10_000].join(" + "),
        "where(".repeat(10_000),
        "x[".repeat(10_000),
    ] {
        let e = Expression::parse(&src).unwrap_err();
        assert!(!e.message.is_empty());
    }
}

#[test]
fn deep_json_is_fine() {
    // JSON nested far deeper than serde_json's parser allows (128), built by hand.
    // serde_json's own Drop of such a value is recursive, so all of it runs on a
    // thread with a big stack; the engine itself walks trees iteratively.
    std::thread::Builder::new()
        .stack_size(64 << 20)
        .spawn(|| {
            let mut v = json!({"value": 1});
            for _ in 0..2_000 {
                v = json!({"item": [v]});
            }
            let input = Input::new(&v);
            for src in [
                "descendants().count()",
                "repeat(item).count()",
                "children().count()",
            ] {
                let e = Expression::parse(src).unwrap();
                let out = e.evaluate(&input, &Variables::default()).unwrap();
                assert_eq!(out.len(), 1);
            }
        })
        .unwrap()
        .join()
        .unwrap();
}

/// The deepest expressions the parser accepts evaluate without exhausting the
/// stack of a test thread (2 MiB, unoptimised build).
#[test]
fn deepest_accepted_expressions_evaluate() {
    let p = json!({"resourceType": "Patient", "name": [{"given": ["a"]}], "active": true});
    let input = Input::new(&p);
    let shapes: [(&str, &str, &str); 6] = [
        ("name.where(", "true", ")"),
        ("iif(true, ", "1", ", 0)"),
        ("-(", "1", ")"),
        ("(1 + ", "1", ")"),
        ("name.select(", "given", ")"),
        ("children().exists(", "true", ")"),
    ];
    for (open, inner, close) in shapes {
        let mut accepted = None;
        for n in (1..400).rev() {
            let src = format!("{}{inner}{}", open.repeat(n), close.repeat(n));
            if let Ok(e) = Expression::parse(&src) {
                accepted = Some((n, e));
                break;
            }
        }
        let (n, e) = accepted.expect("some depth parses");
        assert!(n >= 30, "{open}: only {n} levels accepted");
        let _ = e.evaluate(&input, &Variables::default());
    }
}
