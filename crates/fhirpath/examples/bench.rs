//! Timing of typical assertion expressions: `cargo run --release -p fhirpath --example bench`.
//!
//! Prints µs per evaluation on a Patient and on a 50-entry searchset Bundle, the
//! parse time per expression, and the time of `Input::new`.

use std::hint::black_box;
use std::time::Instant;

use fhirpath::{Expression, Input, Variables};
use serde_json::{Value, json};

fn patient(i: usize) -> Value {
    json!({
        "resourceType": "Patient",
        "id": format!("p{i}"),
        "meta": {"versionId": "1", "lastUpdated": "2024-01-01T10:00:00Z"},
        "text": {"status": "generated", "div": "<div xmlns=\"http://www.w3.org/1999/xhtml\"><p>Peter James <b>Chalmers</b></p></div>"},
        "identifier": [{"use": "usual", "system": "urn:oid:1.2.36.146.595.217.0.1", "value": format!("{}", 12345 + i)}],
        "active": true,
        "name": [
            {"use": "official", "family": "Chalmers", "given": ["Peter", "James"]},
            {"use": "usual", "given": ["Jim"]}
        ],
        "telecom": [{"system": "phone", "value": "(03) 5555 6473", "use": "work"}],
        "gender": "male",
        "birthDate": "1974-12-25",
        "_birthDate": {"extension": [{"url": "http://hl7.org/fhir/StructureDefinition/patient-birthTime", "valueDateTime": "1974-12-25T14:35:45-05:00"}]},
        "address": [{"use": "home", "line": ["534 Erewhon St"], "city": "PleasantVille", "postalCode": "3999"}],
        "managingOrganization": {"reference": "Organization/1"}
    })
}

fn bundle() -> Value {
    let mut entries: Vec<Value> = (0..49)
        .map(|i| json!({"fullUrl": format!("http://x/fhir/Patient/p{i}"), "resource": patient(i), "search": {"mode": "match"}}))
        .collect();
    entries.push(json!({"fullUrl": "http://x/fhir/Organization/1", "resource": {"resourceType": "Organization", "id": "1", "name": "Acme"}, "search": {"mode": "include"}}));
    json!({"resourceType": "Bundle", "type": "searchset", "total": 49, "entry": entries})
}

fn time<F: FnMut()>(mut f: F) -> f64 {
    // Warm up, then as many rounds as fit in ~100 ms.
    for _ in 0..10 {
        f();
    }
    let mut n = 0u32;
    let start = Instant::now();
    while start.elapsed().as_millis() < 100 {
        f();
        n += 1;
    }
    start.elapsed().as_secs_f64() * 1e6 / f64::from(n)
}

fn main() {
    let on_patient = [
        "birthDate",
        "name.where(use = 'official').family = 'Chalmers'",
        "name.given.first()",
        "identifier.where(system = 'urn:oid:1.2.36.146.595.217.0.1').value.exists()",
        "active = true and gender = 'male'",
        "birthDate < today()",
        "birthDate.extension('http://hl7.org/fhir/StructureDefinition/patient-birthTime').value.exists()",
        "telecom.all(system.exists() and value.exists())",
        "text.div.htmlChecks()",
        "name.given.all(matches('^[A-Z]'))",
    ];
    let on_bundle = [
        "type = 'searchset'",
        "entry.count() = 50",
        "total",
        "entry.resource.ofType(Patient).count()",
        "entry.where(search.mode = 'match').resource.all(resourceType = 'Patient' or $this is Patient)",
        "entry.resource.ofType(Patient).name.where(family = 'Chalmers').exists()",
        "entry.resource.ofType(Patient).all(birthDate <= today())",
        "entry.resource.ofType(Patient).first().managingOrganization.resolve().name = 'Acme'",
        "entry.fullUrl.distinct().count() = entry.count()",
        "entry.resource.descendants().count()",
    ];
    let vars = Variables::default();
    let p = patient(0);
    let b = bundle();

    let input_p = Input::new(&p);
    let input_b = Input::new(&b);
    println!(
        "Input::new: Patient {:.2} µs, Bundle(50) {:.2} µs",
        time(|| {
            black_box(Input::new(black_box(&p)));
        }),
        time(|| {
            black_box(Input::new(black_box(&b)));
        })
    );

    for (label, exprs, input) in [
        ("Patient", &on_patient, &input_p),
        ("Bundle(50)", &on_bundle, &input_b),
    ] {
        println!("\n{label}:");
        println!("{:>10} {:>10}  expression", "parse µs", "eval µs");
        for src in exprs.iter() {
            let parse = time(|| {
                black_box(Expression::parse(black_box(src)).unwrap());
            });
            let e = Expression::parse(src).unwrap();
            let out = e.evaluate(input, &vars);
            assert!(out.is_ok(), "{src}: {out:?}");
            let eval = time(|| {
                black_box(e.evaluate(black_box(input), &vars).unwrap());
            });
            println!("{parse:>10.2} {eval:>10.2}  {src}");
        }
    }
}
