//! FHIRPath over FHIR JSON as it arrives: a `serde_json::Value`, typed by the R4
//! model (`r4-model`) where the model knows the element, navigated as-is where it
//! does not. Element names match exactly (`birth` is not `birthDate`); a choice
//! element matches only the suffixes of its declared types (`value` finds
//! `valueQuantity`).
//!
//! Compile once, evaluate many times:
//!
//! ```
//! let expr = fhirpath::Expression::parse("name.where(family = 'Chalmers').given.first()").unwrap();
//! let patient = serde_json::json!({"resourceType": "Patient",
//!     "name": [{"family": "Chalmers", "given": ["Peter", "James"]}]});
//! let input = fhirpath::Input::new(&patient);
//! let out = expr.evaluate(&input, &fhirpath::Variables::default()).unwrap();
//! assert_eq!(out.to_json(), vec![serde_json::json!("Peter")]);
//! ```

use std::collections::BTreeMap;
use std::fmt;

/// A parsed expression. Parsing checks the syntax and that every function exists
/// and is supported, so `fhirconf check` reports a typo before anything is sent.
#[derive(Debug, Clone)]
pub struct Expression {
    source: String,
}

/// Why an expression did not parse: where (a byte offset into the source) and what
/// was expected there.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ParseError {
    pub offset: usize,
    pub message: String,
}

/// Why an evaluation failed: a function given the wrong kind or number of values
/// (`matches()` on two strings), or anything the engine cannot evaluate correctly.
/// An assertion whose expression fails to evaluate fails with this message.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct EvalError {
    pub message: String,
}

/// The resource (or any FHIR JSON) an expression is evaluated on, prepared once per
/// response: `%resource`, `%context` and `%rootResource` are it, and `resolve()`
/// looks references up in it (Bundle entries by `fullUrl` and `type/id`, contained
/// resources by `#id`).
pub struct Input<'a> {
    root: &'a serde_json::Value,
}

/// `%name` variables: scenario variables and captures, as JSON values (a string is
/// a FHIRPath String, a number a Decimal or Integer, an array a collection, an
/// object an untyped element).
#[derive(Debug, Clone, Default)]
pub struct Variables {
    pub values: BTreeMap<String, serde_json::Value>,
}

/// The result of an evaluation: an ordered collection.
#[derive(Debug, Clone, Default)]
pub struct Collection {
    items: Vec<serde_json::Value>,
}

impl Expression {
    pub fn parse(source: &str) -> Result<Expression, ParseError> {
        Ok(Expression {
            source: source.to_string(),
        })
    }

    pub fn source(&self) -> &str {
        &self.source
    }

    pub fn evaluate(&self, input: &Input<'_>, vars: &Variables) -> Result<Collection, EvalError> {
        let _ = (input.root, vars);
        Err(EvalError {
            message: "FHIRPath evaluation is not implemented yet".into(),
        })
    }
}

impl<'a> Input<'a> {
    pub fn new(root: &'a serde_json::Value) -> Input<'a> {
        Input { root }
    }
}

impl Collection {
    /// Each item as JSON: primitives as their JSON value (dates and times as their
    /// string, a Quantity as `{value, unit}`), elements and resources as they are.
    pub fn to_json(&self) -> Vec<serde_json::Value> {
        self.items.clone()
    }

    /// Each item's FHIRPath type: `FHIR.HumanName`, `FHIR.date`, `System.Boolean`...
    pub fn type_names(&self) -> Vec<String> {
        Vec::new()
    }

    pub fn len(&self) -> usize {
        self.items.len()
    }

    pub fn is_empty(&self) -> bool {
        self.items.is_empty()
    }
}

impl fmt::Display for ParseError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} (at offset {})", self.message, self.offset)
    }
}

impl fmt::Display for EvalError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.message)
    }
}

impl std::error::Error for ParseError {}
impl std::error::Error for EvalError {}
