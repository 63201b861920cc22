//! FHIRPath expressions in scenarios (`expect.fhirpath`, `capture: {fhirpath}`):
//! parsed once when a file loads (a syntax error is the file's error, at its line),
//! evaluated by the `fhirpath` crate over the response body as it arrived.
//!
//! The engine is ours (`crates/fhirpath`): evaluated over `serde_json::Value` with
//! the R4 model for types, so a response that is not valid R4 can still be judged,
//! and element names never match by prefix.

use std::sync::Arc;

use serde_json::{Map, Value};

/// A parsed expression with its source text.
#[derive(Debug, Clone)]
pub struct FhirPathExpr(pub Arc<fhirpath::Expression>);

impl FhirPathExpr {
    /// Parses `text`; the error says where in it, with a caret under the place.
    pub fn parse(text: &str) -> Result<FhirPathExpr, String> {
        fhirpath::Expression::parse(text)
            .map(|e| FhirPathExpr(Arc::new(e)))
            .map_err(|e| describe_parse_error(text, &e))
    }

    pub fn text(&self) -> &str {
        self.0.source()
    }

    /// The items `self` yields on `input`, as JSON, with their FHIRPath types.
    pub fn evaluate(&self, input: &Evaluation<'_>) -> Result<Items, String> {
        let out = self
            .0
            .evaluate(&input.input, &input.vars)
            .map_err(|e| format!("`{}` did not evaluate: {e}", self.text()))?;
        Ok(Items {
            types: out.type_names(),
            values: out.to_json(),
        })
    }
}

/// What an expression yielded.
#[derive(Debug, Clone, Default)]
pub struct Items {
    pub values: Vec<Value>,
    /// One per value: `FHIR.HumanName`, `FHIR.date`, `System.Boolean`...
    pub types: Vec<String>,
}

/// A response body prepared once for every expression of a step, with the
/// scenario's variables as `%name`.
pub struct Evaluation<'a> {
    input: fhirpath::Input<'a>,
    vars: fhirpath::Variables,
}

impl<'a> Evaluation<'a> {
    pub fn new(body: &'a Value, vars: &Map<String, Value>) -> Evaluation<'a> {
        Evaluation {
            input: fhirpath::Input::new(body),
            vars: fhirpath::Variables {
                values: vars.iter().map(|(k, v)| (k.clone(), v.clone())).collect(),
            },
        }
    }
}

/// Whether a FHIRPath type name (`FHIR.HumanName`) is the one a scenario names:
/// with or without its namespace (`HumanName`, `System.Boolean`).
pub fn type_is(actual: &str, wanted: &str) -> bool {
    actual == wanted
        || actual
            .split_once('.')
            .is_some_and(|(ns, name)| name == wanted && (ns == "FHIR" || ns == "System"))
}

fn describe_parse_error(text: &str, e: &fhirpath::ParseError) -> String {
    let column = text
        .char_indices()
        .take_while(|(i, _)| *i < e.offset)
        .count();
    if text.contains('\n') || text.chars().count() > 120 {
        return format!(
            "invalid FHIRPath `{text}`: {} (at character {})",
            e.message,
            column + 1
        );
    }
    format!(
        "invalid FHIRPath: {}\n    {text}\n    {}^",
        e.message,
        " ".repeat(column)
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn type_names_match_with_or_without_their_namespace() {
        assert!(type_is("FHIR.HumanName", "HumanName"));
        assert!(type_is("FHIR.HumanName", "FHIR.HumanName"));
        assert!(type_is("System.Boolean", "Boolean"));
        assert!(!type_is("FHIR.HumanName", "Human"));
        assert!(
            !type_is("FHIR.boolean", "Boolean"),
            "FHIR.boolean is not System.Boolean"
        );
    }
}
