//! Evaluates expressions on a JSON file: `cargo run -p fhirpath --example eval -- FILE EXPR...`
//! (`-` as FILE for `{}`); prints each result's items with their types, or the error.

fn main() {
    let mut args = std::env::args().skip(1);
    let file = args.next().unwrap_or_else(|| "-".into());
    let json: serde_json::Value = if file == "-" {
        serde_json::json!({})
    } else {
        let text = std::fs::read_to_string(&file).expect("readable file");
        serde_json::from_str(&text).expect("JSON")
    };
    let input = fhirpath::Input::new(&json);
    for src in args {
        match fhirpath::Expression::parse(&src) {
            Err(e) => println!("{src}\n  parse error: {e}"),
            Ok(expr) => match expr.evaluate(&input, &fhirpath::Variables::default()) {
                Err(e) => println!("{src}\n  error: {e}"),
                Ok(out) => {
                    println!("{src}");
                    for (v, t) in out.to_json().iter().zip(out.type_names()) {
                        println!("  {t}: {v}");
                    }
                }
            },
        }
    }
}
