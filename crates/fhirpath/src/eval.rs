//! Evaluation of an expression tree over the input.

use std::cmp::Ordering;
use std::sync::Arc;

use serde_json::Value;

use crate::ast::{BinOp, Expr, Literal, TypeSpec};
use crate::item::{Item, Node, Ty, equals, equivalent, num, quantity_cmp, quantity_item};
use crate::value::{DateTime, Dec};
use crate::{EvalError, Input, Variables};

pub(crate) type Items<'a> = Vec<Item<'a>>;
pub(crate) type Res<T> = Result<T, EvalError>;

/// The longest string an expression may build (concatenation, `replace()`,
/// `join()`): beyond it evaluation fails instead of exhausting memory.
pub(crate) const MAX_STRING: usize = 16 << 20;

/// Fails when a string of `len` bytes would be longer than [`MAX_STRING`].
pub(crate) fn check_len(len: usize, what: &str) -> Res<()> {
    if len > MAX_STRING {
        fail(format!(
            "{what} would build a string longer than {MAX_STRING} bytes"
        ))
    } else {
        Ok(())
    }
}

pub(crate) fn fail<T>(message: impl Into<String>) -> Res<T> {
    Err(EvalError {
        message: message.into(),
    })
}

/// What stays the same during one evaluation.
pub(crate) struct Env<'a> {
    pub input: &'a Input<'a>,
    pub vars: &'a Variables,
    pub root: Item<'a>,
    /// `now()` is the same for the whole evaluation.
    pub now: std::cell::OnceCell<DateTime>,
}

/// `$this`, `$index` and `$total` where an iteration defines them.
#[derive(Clone, Default)]
pub(crate) struct Scope<'a> {
    pub this: Option<Item<'a>>,
    pub index: Option<usize>,
    pub total: Option<Arc<Items<'a>>>,
}

impl<'a> Env<'a> {
    pub fn new(input: &'a Input<'a>, vars: &'a Variables) -> Env<'a> {
        Env {
            input,
            vars,
            root: Item::Node(Node::resource(input.root)),
            now: std::cell::OnceCell::new(),
        }
    }

    /// Evaluates `e` with `focus` as the input collection of a path's first step.
    pub fn eval(&self, e: &Expr, focus: &[Item<'a>], scope: &Scope<'a>) -> Res<Items<'a>> {
        match e {
            Expr::Literal(l) => Ok(literal(l)),
            Expr::This => Ok(match &scope.this {
                Some(t) => vec![t.clone()],
                None => focus.to_vec(),
            }),
            Expr::Index => Ok(scope
                .index
                .map(|i| vec![Item::Int(i64::try_from(i).unwrap_or(i64::MAX))])
                .unwrap_or_default()),
            Expr::Total => Ok(scope.total.as_deref().cloned().unwrap_or_default()),
            Expr::Var(name) => self.variable(name),
            Expr::Ident(name) => {
                let mut out = Vec::new();
                for item in focus {
                    if let Item::Node(n) = item {
                        if is_type_start(n, name) {
                            if item.is_type(None, name) {
                                out.push(item.clone());
                            }
                            continue;
                        }
                        n.member(name, &mut out);
                    }
                }
                Ok(out)
            }
            Expr::Member(base, name) => {
                let items = self.eval(base, focus, scope)?;
                let mut out = Vec::new();
                for item in &items {
                    match item {
                        Item::Node(n) => n.member(name, &mut out),
                        Item::TypeInfo(ns, t) => match name.as_str() {
                            "namespace" => out.push(Item::string(*ns)),
                            "name" => out.push(Item::Str(t.clone())),
                            _ => {}
                        },
                        _ => {}
                    }
                }
                Ok(out)
            }
            Expr::Call {
                target,
                name,
                args,
                type_arg,
            } => {
                let input = match target {
                    Some(t) => self.eval(t, focus, scope)?,
                    None => match &scope.this {
                        Some(t) => vec![t.clone()],
                        None => focus.to_vec(),
                    },
                };
                self.call(name, input, args, type_arg.as_ref(), focus, scope)
            }
            Expr::Indexer(base, idx) => {
                let items = self.eval(base, focus, scope)?;
                let i = self.eval(idx, focus, scope)?;
                let i = match singleton(&i, &"the index of []")? {
                    None => return Ok(Vec::new()),
                    Some(Item::Int(i)) => *i,
                    Some(other) => {
                        return fail(format!(
                            "the index of [] must be an Integer, not {}",
                            other.type_name()
                        ));
                    }
                };
                Ok(usize::try_from(i)
                    .ok()
                    .and_then(|i| items.get(i).cloned())
                    .into_iter()
                    .collect())
            }
            Expr::Negate(inner) => {
                let v = self.eval(inner, focus, scope)?;
                let Some(v) = singleton(&v, &"the operand of unary '-'")? else {
                    return Ok(Vec::new());
                };
                Ok(match quantity_item(v.sys()) {
                    Item::Int(i) => i.checked_neg().map(Item::Int).into_iter().collect(),
                    Item::Dec(d) => d.neg().map(Item::Dec).into_iter().collect(),
                    Item::Quantity(d, u) => {
                        d.neg().map(|d| Item::Quantity(d, u)).into_iter().collect()
                    }
                    other => {
                        return fail(format!("cannot negate a {}", other.type_name()));
                    }
                })
            }
            Expr::Is(inner, spec) => {
                let v = self.eval(inner, focus, scope)?;
                Ok(match singleton(&v, &"the left operand of 'is'")? {
                    None => Vec::new(),
                    Some(i) => vec![Item::Bool(is_type(i, spec))],
                })
            }
            Expr::As(inner, spec) => {
                let v = self.eval(inner, focus, scope)?;
                as_type(&v, spec, "as")
            }
            Expr::Binary(op, l, r) => self.binary(*op, l, r, focus, scope),
        }
    }

    fn variable(&self, name: &str) -> Res<Items<'a>> {
        let s = |v: &str| Ok(vec![Item::string(v)]);
        match name {
            "resource" | "context" | "rootResource" => Ok(vec![self.root.clone()]),
            "ucum" => s("http://unitsofmeasure.org"),
            "sct" => s("http://snomed.info/sct"),
            "loinc" => s("http://loinc.org"),
            _ => {
                if let Some(v) = self.vars.values.get(name) {
                    let mut out = Vec::new();
                    json_items(v, &mut out);
                    return Ok(out);
                }
                if let Some(vs) = name.strip_prefix("vs-") {
                    return s(&format!("http://hl7.org/fhir/ValueSet/{vs}"));
                }
                if let Some(ext) = name.strip_prefix("ext-") {
                    return s(&format!("http://hl7.org/fhir/StructureDefinition/{ext}"));
                }
                fail(format!("unknown variable %{name}"))
            }
        }
    }

    fn binary(
        &self,
        op: BinOp,
        l: &Expr,
        r: &Expr,
        focus: &[Item<'a>],
        scope: &Scope<'a>,
    ) -> Res<Items<'a>> {
        let a = self.eval(l, focus, scope)?;
        // `and`, `or`, `implies` need the right side only when the left does not decide.
        match op {
            BinOp::And | BinOp::Or | BinOp::Implies => {
                let x = to_bool(&a, op_name(op))?;
                let decided = match (op, x) {
                    (BinOp::And, Some(false)) => Some(false),
                    (BinOp::Or, Some(true)) => Some(true),
                    (BinOp::Implies, Some(false)) => Some(true),
                    _ => None,
                };
                if let Some(d) = decided {
                    return Ok(vec![Item::Bool(d)]);
                }
                let y = to_bool(&self.eval(r, focus, scope)?, op_name(op))?;
                let out = match op {
                    BinOp::And => match (x, y) {
                        (_, Some(false)) => Some(false),
                        (Some(true), Some(true)) => Some(true),
                        _ => None,
                    },
                    BinOp::Or => match (x, y) {
                        (_, Some(true)) => Some(true),
                        (Some(false), Some(false)) => Some(false),
                        _ => None,
                    },
                    _ => match (x, y) {
                        (Some(true), y) => y,
                        (None, Some(true)) => Some(true),
                        _ => None,
                    },
                };
                return Ok(out.map(Item::Bool).into_iter().collect());
            }
            _ => {}
        }
        let b = self.eval(r, focus, scope)?;
        binary_values(op, a, b)
    }
}

/// A capitalised identifier at the start of a path is a type filter (`Patient.name`)
/// when it names a model type, unless the node has an element of that name (no R4
/// element is capitalised, but JSON that is not R4 may have one).
fn is_type_start(n: &Node<'_>, name: &str) -> bool {
    name.starts_with(|c: char| c.is_ascii_uppercase())
        && matches!(n.ty, Ty::Fhir(_))
        && crate::item::model().type_def(name).is_some()
        && !n
            .value
            .and_then(Value::as_object)
            .is_some_and(|o| o.contains_key(name))
}

/// "an operand of '+'", formatted only for an error message.
struct OperandOf(BinOp);

impl std::fmt::Display for OperandOf {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "an operand of '{}'", op_name(self.0))
    }
}

fn op_name(op: BinOp) -> &'static str {
    match op {
        BinOp::Mul => "*",
        BinOp::Div => "/",
        BinOp::IntDiv => "div",
        BinOp::Mod => "mod",
        BinOp::Add => "+",
        BinOp::Sub => "-",
        BinOp::Concat => "&",
        BinOp::Union => "|",
        BinOp::Lt => "<",
        BinOp::Gt => ">",
        BinOp::Le => "<=",
        BinOp::Ge => ">=",
        BinOp::Eq => "=",
        BinOp::Equiv => "~",
        BinOp::Ne => "!=",
        BinOp::NotEquiv => "!~",
        BinOp::In => "in",
        BinOp::Contains => "contains",
        BinOp::And => "and",
        BinOp::Or => "or",
        BinOp::Xor => "xor",
        BinOp::Implies => "implies",
    }
}

/// JSON variable values as items.
pub(crate) fn json_items<'a>(v: &'a Value, out: &mut Items<'a>) {
    match v {
        Value::Null => {}
        Value::Array(a) => {
            for x in a {
                json_items(x, out);
            }
        }
        Value::Object(o) if o.contains_key("resourceType") => {
            out.push(Item::Node(Node::resource(v)));
        }
        other => out.push(
            Item::Node(Node {
                value: Some(other),
                twin: None,
                ty: Ty::Untyped,
                container: None,
            })
            .sys(),
        ),
    }
}

fn literal<'a>(l: &Literal) -> Items<'a> {
    vec![match l {
        Literal::Empty => return Vec::new(),
        Literal::Bool(b) => Item::Bool(*b),
        Literal::Str(s) => Item::Str(s.clone()),
        Literal::Int(i) => Item::Int(*i),
        Literal::Dec(d) => Item::Dec(*d),
        Literal::Date(d) => Item::Date(*d),
        Literal::DateTime(d) => Item::DateTime(*d),
        Literal::Time(d) => Item::Time(*d),
        Literal::Quantity(v, u) => Item::Quantity(*v, u.clone()),
    }]
}

/// The single item of a collection where one is expected: `None` when empty, an
/// error naming `what` when there are several.
pub(crate) fn singleton<'c, 'a>(
    c: &'c [Item<'a>],
    what: &dyn std::fmt::Display,
) -> Res<Option<&'c Item<'a>>> {
    match c {
        [] => Ok(None),
        [one] => Ok(Some(one)),
        _ => fail(format!(
            "{what} must be a single value, but the collection has {} items",
            c.len()
        )),
    }
}

/// A collection as a Boolean (singleton evaluation): empty is empty, one Boolean
/// is itself, one other item is `true`, several items are an error.
pub(crate) fn to_bool(c: &[Item<'_>], what: &str) -> Res<Option<bool>> {
    match singleton(c, &format_args!("the operand of '{what}'"))? {
        None => Ok(None),
        Some(i) => match i.sys() {
            Item::Bool(b) => Ok(Some(b)),
            _ => Ok(Some(true)),
        },
    }
}

pub(crate) fn is_type(i: &Item<'_>, spec: &TypeSpec) -> bool {
    i.is_type(spec.namespace.as_deref(), &spec.name)
}

/// `as` (operator or function): the item if it is of the type, else empty; an
/// error on more than one item, as the specification says.
pub(crate) fn as_type<'a>(c: &[Item<'a>], spec: &TypeSpec, what: &str) -> Res<Items<'a>> {
    match singleton(
        c,
        &format_args!("the input of '{what}' (use ofType() to filter a collection)"),
    )? {
        None => Ok(Vec::new()),
        Some(i) => Ok(if is_type(i, spec) {
            vec![i.clone()]
        } else {
            Vec::new()
        }),
    }
}

/// Whether `c` has an item equal to `x`.
pub(crate) fn contains_item(c: &[Item<'_>], x: &Item<'_>) -> bool {
    c.iter().any(|y| equals(y, x) == Some(true))
}

/// A hashable stand-in for items whose equality is plain: strings (not dates),
/// Integers, Booleans.
#[derive(Hash, PartialEq, Eq)]
enum Key<'i> {
    S(&'i str),
    I(i64),
    B(bool),
}

fn key<'i>(i: &'i Item<'_>) -> Option<Key<'i>> {
    if let Some(s) = crate::item::plain_str(i) {
        return Some(Key::S(s));
    }
    match i {
        Item::Int(n) => Some(Key::I(*n)),
        Item::Bool(b) => Some(Key::B(*b)),
        _ => None,
    }
}

/// Membership in a collection: hashed when every item has a plain key, by
/// equality otherwise (so large collections of strings are not quadratic).
pub(crate) struct Members<'c, 'a> {
    items: &'c [Item<'a>],
    keys: Option<std::collections::HashSet<Key<'c>>>,
}

impl<'c, 'a> Members<'c, 'a> {
    pub fn new(items: &'c [Item<'a>]) -> Members<'c, 'a> {
        let keys = if items.len() > 8 {
            items.iter().map(key).collect::<Option<_>>()
        } else {
            None
        };
        Members { items, keys }
    }

    pub fn contains(&self, x: &Item<'_>) -> bool {
        match (&self.keys, key(x)) {
            (Some(keys), Some(k)) => keys.contains(&k),
            _ => contains_item(self.items, x),
        }
    }
}

/// Items without repeats (by equality), first occurrence kept.
pub(crate) fn distinct<'a>(c: Items<'a>) -> Items<'a> {
    if c.len() > 8 && c.iter().all(|i| key(i).is_some()) {
        let mut seen = std::collections::HashSet::with_capacity(c.len());
        let keep: Vec<bool> = c
            .iter()
            .map(|i| key(i).is_some_and(|k| seen.insert(k)))
            .collect();
        drop(seen);
        return c
            .into_iter()
            .zip(keep)
            .filter_map(|(i, k)| k.then_some(i))
            .collect();
    }
    let mut out: Items<'a> = Vec::with_capacity(c.len());
    for i in c {
        if !contains_item(&out, &i) {
            out.push(i);
        }
    }
    out
}

pub(crate) fn compare_items(a: &Item<'_>, b: &Item<'_>, op: &str) -> Res<Option<Ordering>> {
    let (a, b) = (quantity_item(a.sys()), quantity_item(b.sys()));
    Ok(match (&a, &b) {
        (Item::Int(_) | Item::Dec(_), Item::Int(_) | Item::Dec(_)) => match (num(&a), num(&b)) {
            (Some(x), Some(y)) => Some(x.cmp_to(y)),
            _ => None,
        },
        (Item::Str(x), Item::Str(y)) => Some(x.cmp(y)),
        (Item::Date(x) | Item::DateTime(x), Item::Date(y) | Item::DateTime(y)) => {
            x.compare(y, true)
        }
        (Item::Time(x), Item::Time(y)) => x.compare(y, false),
        (Item::Quantity(..), Item::Quantity(..)) => quantity_cmp(&a, &b),
        _ => {
            return fail(format!(
                "'{op}' cannot compare {} with {}",
                a.type_name(),
                b.type_name()
            ));
        }
    })
}

/// A binary operator on evaluated operands (all but `and`, `or`, `implies`).
pub(crate) fn binary_values<'a>(op: BinOp, a: Items<'a>, b: Items<'a>) -> Res<Items<'a>> {
    let one = |x: Option<bool>| Ok(x.map(Item::Bool).into_iter().collect());
    match op {
        BinOp::Union => {
            let mut all = a;
            all.extend(b);
            Ok(distinct(all))
        }
        BinOp::Xor => {
            let x = to_bool(&a, "xor")?;
            let y = to_bool(&b, "xor")?;
            one(x.zip(y).map(|(x, y)| x != y))
        }
        BinOp::Eq | BinOp::Ne => {
            if a.is_empty() || b.is_empty() {
                return Ok(Vec::new());
            }
            let mut r = Some(a.len() == b.len());
            if a.len() == b.len() {
                for (x, y) in a.iter().zip(&b) {
                    match equals(x, y) {
                        Some(true) => {}
                        Some(false) => {
                            r = Some(false);
                            break;
                        }
                        None => r = None,
                    }
                }
            }
            one(if op == BinOp::Ne { r.map(|x| !x) } else { r })
        }
        BinOp::Equiv | BinOp::NotEquiv => {
            let r = if a.is_empty() && b.is_empty() {
                true
            } else if a.len() != b.len() {
                false
            } else {
                a.iter().all(|x| b.iter().any(|y| equivalent(x, y)))
            };
            one(Some(if op == BinOp::NotEquiv { !r } else { r }))
        }
        BinOp::In | BinOp::Contains => {
            let (needle, hay) = if op == BinOp::In { (&a, &b) } else { (&b, &a) };
            match singleton(
                needle,
                &format_args!("the single side of '{}'", op_name(op)),
            )? {
                None => Ok(Vec::new()),
                Some(x) => one(Some(contains_item(hay, x))),
            }
        }
        BinOp::Lt | BinOp::Gt | BinOp::Le | BinOp::Ge => {
            let what = OperandOf(op);
            let (Some(x), Some(y)) = (singleton(&a, &what)?, singleton(&b, &what)?) else {
                return Ok(Vec::new());
            };
            let o = compare_items(x, y, op_name(op))?;
            one(o.map(|o| match op {
                BinOp::Lt => o == Ordering::Less,
                BinOp::Gt => o == Ordering::Greater,
                BinOp::Le => o != Ordering::Greater,
                _ => o != Ordering::Less,
            }))
        }
        BinOp::Concat => {
            let what = &OperandOf(BinOp::Concat);
            let s = |c: &Items<'a>| -> Res<String> {
                Ok(match singleton(c, what)? {
                    None => String::new(),
                    Some(i) => match i.sys() {
                        Item::Str(s) => s.to_string(),
                        other => {
                            return fail(format!("'&' needs Strings, not {}", other.type_name()));
                        }
                    },
                })
            };
            let (x, y) = (s(&a)?, s(&b)?);
            check_len(x.len() + y.len(), "'&'")?;
            Ok(vec![Item::string(x + &y)])
        }
        _ => {
            let what = OperandOf(op);
            let (Some(x), Some(y)) = (singleton(&a, &what)?, singleton(&b, &what)?) else {
                return Ok(Vec::new());
            };
            arithmetic(op, &quantity_item(x.sys()), &quantity_item(y.sys()))
        }
    }
}

fn arithmetic<'a>(op: BinOp, x: &Item<'a>, y: &Item<'a>) -> Res<Items<'a>> {
    let some = |i: Option<Item<'a>>| Ok(i.into_iter().collect());
    let name = op_name(op);
    match (op, x, y) {
        (BinOp::Add, Item::Str(a), Item::Str(b)) => {
            check_len(a.len() + b.len(), "'+'")?;
            some(Some(Item::string(format!("{a}{b}"))))
        }
        (_, Item::Int(a), Item::Int(b)) => some(match op {
            BinOp::Add => a.checked_add(*b).map(Item::Int),
            BinOp::Sub => a.checked_sub(*b).map(Item::Int),
            BinOp::Mul => a.checked_mul(*b).map(Item::Int),
            BinOp::Div => Dec::from_int(*a).div(Dec::from_int(*b)).map(Item::Dec),
            BinOp::IntDiv => a.checked_div(*b).map(Item::Int),
            BinOp::Mod => a.checked_rem(*b).map(Item::Int),
            _ => None,
        }),
        (_, Item::Int(_) | Item::Dec(_), Item::Int(_) | Item::Dec(_)) => {
            let (Some(a), Some(b)) = (num(x), num(y)) else {
                return Ok(Vec::new());
            };
            some(match op {
                BinOp::Add => a.add(b).map(Item::Dec),
                BinOp::Sub => a.sub(b).map(Item::Dec),
                BinOp::Mul => a.mul(b).map(Item::Dec),
                BinOp::Div => a.div(b).map(Item::Dec),
                BinOp::IntDiv => a
                    .div(b)
                    .and_then(|q| i64::try_from(q.truncate().m).ok())
                    .map(Item::Int),
                BinOp::Mod => {
                    if b.is_zero() {
                        None
                    } else {
                        a.div(b).and_then(|q| {
                            let t = q.truncate();
                            a.sub(b.mul(t)?).map(Item::Dec)
                        })
                    }
                }
                _ => None,
            })
        }
        (
            BinOp::Add | BinOp::Sub,
            Item::Date(d) | Item::DateTime(d) | Item::Time(d),
            Item::Quantity(v, u),
        ) => {
            let Some(v) = (if op == BinOp::Sub { v.neg() } else { Some(*v) }) else {
                return Ok(Vec::new());
            };
            if crate::value::calendar_base(u).is_none() {
                return fail(format!(
                    "'{name}' on a date/time needs a duration, not a quantity in '{u}'"
                ));
            }
            let with_date = !matches!(x, Item::Time(_));
            let r = d.add(v, u, with_date);
            some(r.map(|r| match x {
                Item::Date(_) => Item::Date(r),
                Item::DateTime(_) => Item::DateTime(r),
                _ => Item::Time(r),
            }))
        }
        (BinOp::Add | BinOp::Sub, Item::Quantity(..), Item::Quantity(..)) => {
            let (Item::Quantity(a, ua), Item::Quantity(b, ub)) = (x, y) else {
                return Ok(Vec::new());
            };
            // Different units: the right side in the left's unit, where they convert
            // (`1 'kg' + 1 'g'` is 1.001 'kg'); otherwise empty.
            let b = if ua == ub {
                *b
            } else {
                match (crate::value::ucum_factor(ua), crate::value::ucum_factor(ub)) {
                    (Some((ba, fa)), Some((bb, fb))) if ba == bb => {
                        match b.mul(fb).and_then(|v| v.div(fa)) {
                            Some(v) => v,
                            None => return Ok(Vec::new()),
                        }
                    }
                    _ => return Ok(Vec::new()),
                }
            };
            let b = &b;
            let r = if op == BinOp::Add {
                a.add(*b)
            } else {
                a.sub(*b)
            };
            some(r.map(|r| Item::Quantity(r, ua.clone())))
        }
        (BinOp::Mul | BinOp::Div, Item::Quantity(a, u), Item::Int(_) | Item::Dec(_)) => {
            let Some(b) = num(y) else {
                return Ok(Vec::new());
            };
            let r = if op == BinOp::Mul { a.mul(b) } else { a.div(b) };
            some(r.map(|r| Item::Quantity(r, u.clone())))
        }
        (BinOp::Mul, Item::Int(_) | Item::Dec(_), Item::Quantity(b, u)) => {
            let Some(a) = num(x) else {
                return Ok(Vec::new());
            };
            some(a.mul(*b).map(|r| Item::Quantity(r, u.clone())))
        }
        (BinOp::Mul | BinOp::Div, Item::Quantity(a, ua), Item::Quantity(b, ub))
            if ua != ub
                && let (Some((ba, fa)), Some((bb, fb))) =
                    (crate::value::ucum_factor(ua), crate::value::ucum_factor(ub))
                && ba == bb =>
        {
            // The same dimension in different units (`2 'cm' * 2 'm'`): in the base
            // unit, squared (`0.04 'm2'`) or cancelled (a ratio in '1').
            let (Some(a), Some(b)) = (a.mul(fa), b.mul(fb)) else {
                return Ok(Vec::new());
            };
            let (r, unit) = if op == BinOp::Mul {
                (a.mul(b), format!("{ba}2"))
            } else {
                (a.div(b), "1".to_string())
            };
            some(r.map(|r| Item::Quantity(r, Arc::from(unit.as_str()))))
        }
        (BinOp::Mul | BinOp::Div, Item::Quantity(a, ua), Item::Quantity(b, ub)) => {
            let r = if op == BinOp::Mul {
                a.mul(*b)
            } else {
                a.div(*b)
            };
            let simple = |u: &str| {
                u.chars()
                    .all(|c| c.is_ascii_alphabetic() || c == '[' || c == ']' || c == '_')
            };
            let unit = if op == BinOp::Div && ua == ub {
                "1".to_string()
            } else if op == BinOp::Mul && ua == ub && simple(ua) {
                format!("{ua}2")
            } else if ua.as_ref() == "1" {
                ub.to_string()
            } else if ub.as_ref() == "1" {
                ua.to_string()
            } else {
                let sep = if op == BinOp::Mul { "." } else { "/" };
                format!("{ua}{sep}{ub}")
            };
            some(r.map(|r| Item::Quantity(r, Arc::from(unit.as_str()))))
        }
        _ => fail(format!(
            "'{name}' is not defined for {} and {}",
            x.type_name(),
            y.type_name()
        )),
    }
}
