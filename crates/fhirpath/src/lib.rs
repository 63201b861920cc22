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

use std::collections::{BTreeMap, HashMap};
use std::fmt;
use std::sync::Arc;

mod ast;
mod check;
mod codec;
mod eval;
mod functions;
mod html;
mod item;
mod lexer;
mod parser;
mod value;

/// A parsed expression. Parsing checks the syntax and that every function exists
/// and is supported, so `fhirconf check` reports a typo before anything is sent.
#[derive(Debug, Clone)]
pub struct Expression {
    source: String,
    tree: Arc<ast::Expr>,
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
/// resources by `#id` in the resource that holds the reference).
pub struct Input<'a> {
    root: &'a serde_json::Value,
    /// Bundle entries by `fullUrl` and by `Type/id`.
    index: HashMap<String, &'a serde_json::Value>,
}

/// `%name` variables: scenario variables and captures, as JSON values (a string is
/// a FHIRPath String — never parsed as a date —, an integer number an Integer,
/// another number a Decimal, a boolean a Boolean, an array a collection, an object
/// with `resourceType` a resource typed by it, another object an untyped element,
/// `null` empty). A name used by the expression but missing here is an
/// [`EvalError`] ("unknown variable %x"); `resource`, `context`, `rootResource`,
/// `ucum`, `sct`, `loinc`, `vs-*` and `ext-*` are built in (a value given here for
/// `vs-*`/`ext-*` wins).
#[derive(Debug, Clone, Default)]
pub struct Variables {
    pub values: BTreeMap<String, serde_json::Value>,
}

/// The result of an evaluation: an ordered collection of items, each kept as JSON
/// with its FHIRPath type name (owned: it does not borrow the input).
#[derive(Debug, Clone, Default)]
pub struct Collection {
    items: Vec<serde_json::Value>,
    types: Vec<String>,
}

impl Expression {
    /// Parses `source`; unknown or unsupported functions and wrong argument counts
    /// are errors here, not at evaluation.
    pub fn parse(source: &str) -> Result<Expression, ParseError> {
        let tree = parser::parse(source)?;
        Ok(Expression {
            source: source.to_string(),
            tree: Arc::new(tree),
        })
    }

    /// Names in the expression's paths that no instance of the R4 types reached
    /// there can have, for a resource of type `resource_type` (or whatever type
    /// the path names, when `None`): "`birth` is not an element of Patient (did
    /// you mean `birthDate`?)". Evaluation still navigates such names (they are
    /// empty on valid R4, and JSON that is not R4 may have them), so these are
    /// warnings: an assertion like `birth.empty()` would otherwise pass unnoticed.
    pub fn model_warnings(&self, resource_type: Option<&str>) -> Vec<String> {
        check::check(&self.tree, resource_type)
    }

    pub fn source(&self) -> &str {
        &self.source
    }

    /// Evaluates the expression with the input's resource as the context (and
    /// `%resource`, `%context`, `%rootResource`).
    pub fn evaluate(&self, input: &Input<'_>, vars: &Variables) -> Result<Collection, EvalError> {
        let env = eval::Env::new(input, vars);
        let focus = [env.root.clone()];
        let items = env.eval(&self.tree, &focus, &eval::Scope::default())?;
        Ok(Collection {
            types: items.iter().map(item::Item::type_name).collect(),
            items: items.iter().map(item::Item::to_json).collect(),
        })
    }
}

impl<'a> Input<'a> {
    pub fn new(root: &'a serde_json::Value) -> Input<'a> {
        let mut index = HashMap::new();
        if root.get("resourceType").and_then(serde_json::Value::as_str) == Some("Bundle")
            && let Some(entries) = root.get("entry").and_then(serde_json::Value::as_array)
        {
            for e in entries {
                let Some(res) = e.get("resource") else {
                    continue;
                };
                if let Some(url) = e.get("fullUrl").and_then(serde_json::Value::as_str) {
                    index.entry(url.to_string()).or_insert(res);
                }
                if let (Some(t), Some(id)) = (
                    res.get("resourceType").and_then(serde_json::Value::as_str),
                    res.get("id").and_then(serde_json::Value::as_str),
                ) {
                    index.entry(format!("{t}/{id}")).or_insert(res);
                }
            }
        }
        Input { root, index }
    }

    /// The resource a reference points to within this input, and the container
    /// `#id` references inside it resolve against: a contained resource by `#id`
    /// in `container` (the resource that holds the reference; the root for a
    /// plain string), a Bundle entry by `fullUrl` or `Type/id` (a version suffix
    /// `/_history/n` ignored), or the root itself by `Type/id`.
    fn resolve(
        &self,
        reference: &str,
        container: Option<&'a serde_json::Value>,
    ) -> Option<(&'a serde_json::Value, Option<&'a serde_json::Value>)> {
        use serde_json::Value;
        if let Some(id) = reference.strip_prefix('#') {
            let c = container.unwrap_or(self.root);
            if id.is_empty() {
                return Some((c, Some(c)));
            }
            let found = c
                .get("contained")?
                .as_array()?
                .iter()
                .find(|r| r.get("id").and_then(Value::as_str) == Some(id))?;
            return Some((found, Some(c)));
        }
        let own = |v: &'a Value| Some((v, Some(v)));
        if let Some(v) = self.index.get(reference) {
            return own(v);
        }
        let plain = reference.split("/_history/").next().unwrap_or(reference);
        if let Some(v) = self.index.get(plain) {
            return own(v);
        }
        let (t, id) = plain.split_once('/')?;
        let root = self.root;
        if root.get("resourceType").and_then(Value::as_str) == Some(t)
            && root.get("id").and_then(Value::as_str) == Some(id)
        {
            return own(root);
        }
        None
    }
}

impl Collection {
    /// Each item as JSON: primitives as their JSON value (dates and times as their
    /// string, a Quantity as `{value, unit}`), elements and resources as they are.
    /// A primitive that has only its `_name` twin (an extension and no value) is
    /// `null`; `type()` results are `{namespace, name}`.
    pub fn to_json(&self) -> Vec<serde_json::Value> {
        self.items.clone()
    }

    /// Each item's FHIRPath type: `FHIR.HumanName`, `FHIR.date`, `System.Boolean`...
    ///
    /// Backbone elements are named by their path (`FHIR.Patient.contact`), elements
    /// the model does not know are `Untyped`.
    pub fn type_names(&self) -> Vec<String> {
        self.types.clone()
    }

    /// The result as a Boolean by FHIRPath's singleton rule: `Ok(None)` when empty,
    /// the value of a single Boolean, an error otherwise (several items, or one
    /// item that is not a Boolean).
    pub fn as_boolean(&self) -> Result<Option<bool>, EvalError> {
        match self.items.as_slice() {
            [] => Ok(None),
            [serde_json::Value::Bool(b)] => Ok(Some(*b)),
            [_] => Err(EvalError {
                message: format!("expected a Boolean, got {}", self.types[0]),
            }),
            many => Err(EvalError {
                message: format!("expected a single Boolean, got {} items", many.len()),
            }),
        }
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
