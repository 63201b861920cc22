//! The items of a collection during evaluation: JSON nodes borrowed from the input
//! (typed by the R4 model where it knows the element, untyped where it does not),
//! and System values computed by the expression.

use std::cmp::Ordering;
use std::sync::Arc;

use r4_model::{Kind, Model};
use serde_json::Value;

use crate::value::{DateTime, Dec, ucum_factor};

/// The type of a JSON node: a model type (`HumanName`, `date`, `Patient.contact`,
/// or `System.String` for an element whose type is a System type, like `id`), or
/// unknown to the model.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Ty {
    Fhir(&'static str),
    Untyped,
}

/// A node of the input: its JSON value (absent for a primitive that has only its
/// `_name` twin) and the twin (`{"id":..., "extension": [...]}`).
#[derive(Debug, Clone, Copy)]
pub(crate) struct Node<'a> {
    pub value: Option<&'a Value>,
    pub twin: Option<&'a Value>,
    pub ty: Ty,
    /// The resource `#id` references inside this node resolve against: the
    /// nearest enclosing resource that is not itself contained.
    pub container: Option<&'a Value>,
}

/// Where the children of a node are: the parent's container, and whether the
/// property is `contained` (whose resources keep their container).
#[derive(Clone, Copy)]
struct Place<'a> {
    container: Option<&'a Value>,
    contained: bool,
}

/// One item of a collection.
#[derive(Debug, Clone)]
pub(crate) enum Item<'a> {
    Node(Node<'a>),
    Bool(bool),
    Int(i64),
    Dec(Dec),
    Str(Arc<str>),
    Date(DateTime),
    DateTime(DateTime),
    Time(DateTime),
    Quantity(Dec, Arc<str>),
    /// What `type()` returns: a namespace (`System`, `FHIR`) and a type name, with
    /// the elements `namespace` and `name`.
    TypeInfo(&'static str, Arc<str>),
}

pub(crate) fn model() -> &'static Model {
    r4_model::r4()
}

impl<'a> Node<'a> {
    /// The node for a whole resource: typed by its `resourceType` when the model
    /// knows it.
    pub fn resource(v: &'a Value) -> Node<'a> {
        let ty = match v.get("resourceType").and_then(Value::as_str) {
            Some(rt) => match model().type_def(rt) {
                Some(t) if t.kind == Kind::Resource => Ty::Fhir(t.name),
                _ => Ty::Untyped,
            },
            None => Ty::Untyped,
        };
        Node {
            value: Some(v),
            twin: None,
            ty,
            container: Some(v),
        }
    }

    fn typed(
        value: Option<&'a Value>,
        twin: Option<&'a Value>,
        code: &'static str,
        place: Place<'a>,
    ) -> Node<'a> {
        if (code == "Resource" || code == "DomainResource")
            && let Some(v) = value
        {
            let mut n = Node::resource(v);
            if place.contained {
                n.container = place.container;
            }
            return n;
        }
        Node {
            value,
            twin,
            ty: Ty::Fhir(code),
            container: place.container,
        }
    }

    fn is_primitive(&self) -> bool {
        match self.ty {
            Ty::Fhir(t) => t.starts_with("System.") || model().is_primitive(t),
            Ty::Untyped => !matches!(self.value, Some(Value::Object(_) | Value::Array(_))),
        }
    }

    fn place(&self, name: &str) -> Place<'a> {
        Place {
            container: self.container,
            contained: name == "contained",
        }
    }

    /// Appends the children named `name` (FHIRPath member access).
    pub fn member(&self, name: &str, out: &mut Vec<Item<'a>>) {
        if self.is_primitive() {
            // A primitive's id and extension live in its twin.
            if let Some(twin) = self.twin {
                let code = match name {
                    "extension" => "Extension",
                    "id" => "System.String",
                    _ => return,
                };
                let ty = if self.ty == Ty::Untyped {
                    None
                } else {
                    Some(code)
                };
                push_values(twin.get(name), None, ty, self.place(name), out);
            }
            return;
        }
        let Some(Value::Object(obj)) = self.value else {
            return;
        };
        if name == "resourceType" {
            return;
        }
        let Ty::Fhir(t) = self.ty else {
            let twin = twin_of(obj, name);
            push_values(obj.get(name), twin, None, self.place(name), out);
            return;
        };
        let m = model();
        match m.element(t, name) {
            Some(e) if e.choice => {
                for (key, v) in obj {
                    if key.len() > name.len()
                        && key.starts_with(name)
                        && let Some(p) = m.property(t, key)
                        && p.element.name == name
                    {
                        let twin = twin_of(obj, key);
                        push_values(Some(v), twin, Some(p.type_code), self.place(name), out);
                    }
                }
                // A choice primitive that has only its twin (`_valueString`).
                for (key, v) in obj {
                    if let Some(k) = key.strip_prefix('_')
                        && !obj.contains_key(k)
                        && k.starts_with(name)
                        && let Some(p) = m.property(t, k)
                        && p.element.name == name
                    {
                        push_values(None, Some(v), Some(p.type_code), self.place(name), out);
                    }
                }
            }
            Some(e) => {
                let mut code = e.types.first().map_or("", |t| t.code);
                // The definitions type these System.String, with their FHIR type in
                // an extension: a resource's id is an `id`, an element's id a
                // `string`, an extension's url a `uri`.
                if code == "System.String" {
                    if name == "id" {
                        code = if m.type_def(t).is_some_and(|d| d.kind == Kind::Resource) {
                            "id"
                        } else {
                            "string"
                        };
                    } else if name == "url" && t == "Extension" {
                        code = "uri";
                    }
                }
                let twin = twin_of(obj, name);
                push_values(obj.get(name), twin, Some(code), self.place(name), out);
            }
            None => {
                // `valueQuantity`: a choice element by its JSON name.
                if let Some(p) = m.property(t, name) {
                    let twin = twin_of(obj, name);
                    push_values(
                        obj.get(name),
                        twin,
                        Some(p.type_code),
                        self.place(name),
                        out,
                    );
                    return;
                }
                // An element the model does not know: navigable, untyped.
                let twin = twin_of(obj, name);
                push_values(obj.get(name), twin, None, self.place(name), out);
            }
        }
    }

    /// All child nodes, in document order (for `children()`).
    pub fn children(&self, out: &mut Vec<Item<'a>>) {
        if self.is_primitive() {
            if let Some(Value::Object(twin)) = self.twin {
                for k in twin.keys() {
                    self.member(k, out);
                }
            }
            return;
        }
        let Some(Value::Object(obj)) = self.value else {
            return;
        };
        let mut seen: Vec<&str> = Vec::new();
        for key in obj.keys() {
            let k = key.strip_prefix('_').unwrap_or(key);
            if k == "resourceType" || seen.contains(&k) {
                continue;
            }
            seen.push(k);
            if key.starts_with('_') && obj.contains_key(k) {
                continue;
            }
            let twin = twin_of(obj, k);
            let value = obj.get(k);
            let code = match self.ty {
                Ty::Fhir(t) => model().property(t, k).map(|p| p.type_code),
                Ty::Untyped => None,
            };
            push_values(value, twin, code, self.place(k), out);
        }
    }
}

/// The `_name` twin of a property, looked up without allocating.
fn twin_of<'v>(obj: &'v serde_json::Map<String, Value>, name: &str) -> Option<&'v Value> {
    let mut buf = [0u8; 64];
    let n = name.len();
    if n >= buf.len() {
        return obj.get(&format!("_{name}"));
    }
    buf[0] = b'_';
    buf[1..=n].copy_from_slice(name.as_bytes());
    obj.get(std::str::from_utf8(&buf[..=n]).ok()?)
}

/// Pushes a JSON property (flattening arrays, pairing `_name` twin entries).
fn push_values<'a>(
    value: Option<&'a Value>,
    twin: Option<&'a Value>,
    code: Option<&'static str>,
    place: Place<'a>,
    out: &mut Vec<Item<'a>>,
) {
    let make = |v: Option<&'a Value>, t: Option<&'a Value>| -> Option<Item<'a>> {
        let v = v.filter(|v| !v.is_null());
        let t = t.filter(|t| !t.is_null());
        if v.is_none() && t.is_none() {
            return None;
        }
        Some(Item::Node(match code {
            Some(c) => Node::typed(v, t, c, place),
            None => Node {
                value: v,
                twin: t,
                ty: Ty::Untyped,
                container: place.container,
            },
        }))
    };
    match (value, twin) {
        (Some(Value::Array(vs)), t) => {
            let ts = match t {
                Some(Value::Array(ts)) => Some(ts),
                _ => None,
            };
            for (i, v) in vs.iter().enumerate() {
                out.extend(make(Some(v), ts.and_then(|ts| ts.get(i))));
            }
        }
        (None, Some(Value::Array(ts))) => {
            for t in ts {
                out.extend(make(None, Some(t)));
            }
        }
        (v, t) => out.extend(make(v, t)),
    }
}

fn str_item<'a>(s: &str) -> Item<'a> {
    Item::Str(Arc::from(s))
}

impl<'a> Item<'a> {
    pub fn string(s: impl Into<Arc<str>>) -> Item<'a> {
        Item::Str(s.into())
    }

    /// The System value of a primitive node (FHIR primitive or untyped scalar);
    /// other items as they are. A primitive node without a value (only its twin)
    /// stays a node.
    pub fn sys(&self) -> Item<'a> {
        let Item::Node(n) = self else {
            return self.clone();
        };
        let Some(v) = n.value else {
            return self.clone();
        };
        let code = match n.ty {
            Ty::Fhir(t) => t,
            Ty::Untyped => "",
        };
        if let Ty::Fhir(_) = n.ty
            && !n.is_primitive()
        {
            return self.clone();
        }
        match v {
            Value::Bool(b) => Item::Bool(*b),
            Value::Number(num) => {
                let text = num.to_string();
                let is_dec = matches!(code, "decimal" | "System.Decimal");
                match num.as_i64() {
                    Some(i) if !is_dec => Item::Int(i),
                    _ => Dec::parse(&text).map_or_else(|| str_item(&text), Item::Dec),
                }
            }
            Value::String(s) => match code {
                "date" | "System.Date" => {
                    DateTime::parse_date(s).map_or_else(|| str_item(s), Item::Date)
                }
                "dateTime" | "instant" | "System.DateTime" => {
                    DateTime::parse_date_time(s).map_or_else(|| str_item(s), Item::DateTime)
                }
                "time" | "System.Time" => {
                    DateTime::parse_time(s).map_or_else(|| str_item(s), Item::Time)
                }
                _ => str_item(s),
            },
            _ => self.clone(),
        }
    }

    /// The FHIRPath type name: `FHIR.HumanName`, `System.String`, `Untyped`.
    pub fn type_name(&self) -> String {
        match self {
            Item::Node(n) => match n.ty {
                Ty::Fhir(t) if t.starts_with("System.") => t.to_string(),
                Ty::Fhir(t) => format!("FHIR.{t}"),
                Ty::Untyped => "Untyped".to_string(),
            },
            Item::Bool(_) => "System.Boolean".into(),
            Item::Int(_) => "System.Integer".into(),
            Item::Dec(_) => "System.Decimal".into(),
            Item::Str(_) => "System.String".into(),
            Item::Date(_) => "System.Date".into(),
            Item::DateTime(_) => "System.DateTime".into(),
            Item::Time(_) => "System.Time".into(),
            Item::Quantity(..) => "System.Quantity".into(),
            Item::TypeInfo(..) => "System.SimpleTypeInfo".into(),
        }
    }

    /// The item as JSON.
    pub fn to_json(&self) -> Value {
        match self {
            Item::Node(n) => n.value.cloned().unwrap_or(Value::Null),
            Item::Bool(b) => Value::Bool(*b),
            Item::Int(i) => Value::from(*i),
            Item::Dec(d) => dec_json(*d),
            Item::Str(s) => Value::String(s.to_string()),
            Item::Date(d) => Value::String(d.fmt_date_only()),
            Item::DateTime(d) => Value::String(d.fmt_date_time()),
            Item::Time(d) => Value::String(d.fmt_time()),
            Item::TypeInfo(ns, name) => {
                serde_json::json!({"namespace": ns, "name": name.to_string()})
            }
            Item::Quantity(v, u) => {
                serde_json::json!({"value": dec_json(*v), "unit": u.to_string()})
            }
        }
    }

    /// The item's type as `type()` gives it; `None` for an untyped node.
    pub fn type_info(&self) -> Option<Item<'a>> {
        let name = self.type_name();
        if let Some(t) = name.strip_prefix("FHIR.") {
            return Some(Item::TypeInfo("FHIR", Arc::from(t)));
        }
        let t = name.strip_prefix("System.")?;
        Some(Item::TypeInfo("System", Arc::from(t)))
    }

    /// Whether the item is of the named type (`is`), by the model's derivation
    /// for FHIR types; System values match System type names. Unqualified names
    /// are looked up in FHIR first, then System.
    pub fn is_type(&self, namespace: Option<&str>, name: &str) -> bool {
        let system_ok = namespace.is_none_or(|n| n == "System");
        let fhir_ok = namespace.is_none_or(|n| n == "FHIR");
        match self {
            Item::Node(n) => match n.ty {
                Ty::Fhir(t) => {
                    if let Some(sys) = t.strip_prefix("System.") {
                        return system_ok && sys == name;
                    }
                    if !fhir_ok {
                        return false;
                    }
                    if model().is_a(t, name) {
                        return true;
                    }
                    // A backbone element is a BackboneElement (and an Element).
                    match model().type_def(t) {
                        Some(d) if d.kind == Kind::Backbone => {
                            matches!(name, "BackboneElement" | "Element" | "Base")
                        }
                        _ => name == "Base" && model().type_def(t).is_some(),
                    }
                }
                Ty::Untyped => false,
            },
            _ => {
                system_ok
                    && matches!(
                        (self, name),
                        (Item::Bool(_), "Boolean")
                            | (Item::Int(_), "Integer")
                            | (Item::Dec(_), "Decimal")
                            | (Item::Str(_), "String")
                            | (Item::Date(_), "Date")
                            | (Item::DateTime(_), "DateTime")
                            | (Item::Time(_), "Time")
                            | (Item::Quantity(..), "Quantity")
                    )
            }
        }
    }
}

fn dec_json(d: Dec) -> Value {
    match d.to_i64_exact() {
        Some(i) if d.s == 0 => Value::from(i),
        _ => serde_json::Number::from_f64(d.to_f64()).map_or(Value::Null, Value::Number),
    }
}

/// A Quantity node's value and unit as a System Quantity (code preferred over unit).
pub(crate) fn quantity_of(n: &Node<'_>) -> Option<(Dec, Arc<str>)> {
    let Ty::Fhir(t) = n.ty else {
        return None;
    };
    if !model().is_a(t, "Quantity") {
        return None;
    }
    let obj = n.value?.as_object()?;
    let v = Dec::parse(&obj.get("value")?.as_number()?.to_string())?;
    let unit = obj
        .get("code")
        .or_else(|| obj.get("unit"))
        .and_then(Value::as_str)
        .unwrap_or("1");
    Some((v, Arc::from(unit)))
}

/// Equality (`=`): `Some(bool)`, or `None` where FHIRPath says empty (dates of
/// different precision, quantities of incomparable units).
pub(crate) fn equals(a: &Item<'_>, b: &Item<'_>) -> Option<bool> {
    // Fast path without allocating: string-valued primitives that are not dates.
    if let (Some(x), Some(y)) = (plain_str(a), plain_str(b)) {
        return Some(x == y);
    }
    let (a, b) = (a.sys(), b.sys());
    let a = quantity_item(a);
    let b = quantity_item(b);
    match (&a, &b) {
        (Item::Node(x), Item::Node(y)) => Some(node_eq(x, y)),
        (Item::Bool(x), Item::Bool(y)) => Some(x == y),
        (Item::Str(x), Item::Str(y)) => Some(x == y),
        (Item::Int(_) | Item::Dec(_), Item::Int(_) | Item::Dec(_)) => {
            Some(num(&a)?.cmp_to(num(&b)?) == Ordering::Equal)
        }
        (Item::Date(x), Item::Date(y)) | (Item::DateTime(x), Item::DateTime(y)) => {
            x.compare(y, true).map(|o| o == Ordering::Equal)
        }
        (Item::Date(x), Item::DateTime(y)) | (Item::DateTime(x), Item::Date(y)) => {
            x.compare(y, true).map(|o| o == Ordering::Equal)
        }
        (Item::Time(x), Item::Time(y)) => x.compare(y, false).map(|o| o == Ordering::Equal),
        (Item::Quantity(..), Item::Quantity(..)) => {
            quantity_cmp(&a, &b).map(|o| o == Ordering::Equal)
        }
        _ => Some(false),
    }
}

/// The text of a String item or of a string-valued primitive node whose type is
/// not a date or time (whose equality is not textual).
pub(crate) fn plain_str<'i>(i: &'i Item<'_>) -> Option<&'i str> {
    match i {
        Item::Str(s) => Some(s),
        Item::Node(n) => {
            let textual = match n.ty {
                Ty::Untyped => true,
                Ty::Fhir(t) => {
                    !matches!(
                        t,
                        "date"
                            | "dateTime"
                            | "instant"
                            | "time"
                            | "System.Date"
                            | "System.DateTime"
                            | "System.Time"
                    ) && (t.starts_with("System.") || model().is_primitive(t))
                }
            };
            if textual { n.value?.as_str() } else { None }
        }
        _ => None,
    }
}

fn node_eq(x: &Node<'_>, y: &Node<'_>) -> bool {
    let same = |p: Option<&Value>, q: Option<&Value>| match (p, q) {
        (Some(p), Some(q)) => std::ptr::eq(p, q) || p == q,
        (None, None) => true,
        _ => false,
    };
    same(x.value, y.value) && same(x.twin, y.twin)
}

/// A Quantity node as a System Quantity; other items unchanged.
pub(crate) fn quantity_item(i: Item<'_>) -> Item<'_> {
    if let Item::Node(n) = &i
        && let Some((v, u)) = quantity_of(n)
    {
        return Item::Quantity(v, u);
    }
    i
}

pub(crate) fn num(i: &Item<'_>) -> Option<Dec> {
    match i {
        Item::Int(n) => Some(Dec::from_int(*n)),
        Item::Dec(d) => Some(*d),
        _ => None,
    }
}

/// Canonical form of a quantity: (base unit, value) where the unit converts.
fn canonical(v: Dec, u: &str) -> Option<(String, Dec)> {
    match ucum_factor(u) {
        Some((base, f)) => Some((base.to_string(), v.mul(f)?)),
        None => Some((u.to_string(), v)),
    }
}

/// Orders two quantities when their units are the same or convert; calendar
/// years and months compare only with themselves.
pub(crate) fn quantity_cmp(a: &Item<'_>, b: &Item<'_>) -> Option<Ordering> {
    let (Item::Quantity(va, ua), Item::Quantity(vb, ub)) = (a, b) else {
        return None;
    };
    let norm = |u: &str| -> String {
        match u {
            "year" | "years" => "year".into(),
            "month" | "months" => "month".into(),
            _ => u.to_string(),
        }
    };
    if norm(ua) == norm(ub) {
        return Some(va.cmp_to(*vb));
    }
    let (ba, ca) = canonical(*va, ua)?;
    let (bb, cb) = canonical(*vb, ub)?;
    (ba == bb).then(|| ca.cmp_to(cb))
}

/// Equivalence (`~`).
pub(crate) fn equivalent(a: &Item<'_>, b: &Item<'_>) -> bool {
    let (a, b) = (quantity_item(a.sys()), quantity_item(b.sys()));
    match (&a, &b) {
        (Item::Str(x), Item::Str(y)) => norm_ws(x) == norm_ws(y),
        (Item::Int(_) | Item::Dec(_), Item::Int(_) | Item::Dec(_)) => match (num(&a), num(&b)) {
            (Some(x), Some(y)) => x.equivalent(y),
            _ => false,
        },
        (Item::Date(x) | Item::DateTime(x), Item::Date(y) | Item::DateTime(y)) => {
            x.compare(y, true) == Some(Ordering::Equal)
        }
        (Item::Time(x), Item::Time(y)) => x.compare(y, false) == Some(Ordering::Equal),
        (Item::Quantity(va, ua), Item::Quantity(vb, ub)) => {
            // Calendar durations are equivalent to their UCUM counterparts (`1 year ~
            // 1 'a'`), though `=` keeps years and months apart.
            let (ua, ub) = (ucum_of_calendar(ua), ucum_of_calendar(ub));
            if ua == ub {
                return va.equivalent(*vb);
            }
            match (canonical(*va, ua), canonical(*vb, ub)) {
                (Some((ba, x)), Some((bb, y))) => ba == bb && x.equivalent(y),
                _ => false,
            }
        }
        (Item::Node(x), Item::Node(y)) => match (x.value, y.value) {
            (Some(p), Some(q)) => json_equivalent(p, q),
            _ => node_eq(x, y),
        },
        _ => equals(&a, &b).unwrap_or(false),
    }
}

fn ucum_of_calendar(u: &str) -> &str {
    match u {
        "year" | "years" => "a",
        "month" | "months" => "mo",
        "week" | "weeks" => "wk",
        "day" | "days" => "d",
        "hour" | "hours" => "h",
        "minute" | "minutes" => "min",
        "second" | "seconds" => "s",
        "millisecond" | "milliseconds" => "ms",
        other => other,
    }
}

fn norm_ws(s: &str) -> String {
    s.split_whitespace()
        .collect::<Vec<_>>()
        .join(" ")
        .to_lowercase()
}

fn json_equivalent(a: &Value, b: &Value) -> bool {
    match (a, b) {
        (Value::String(x), Value::String(y)) => norm_ws(x) == norm_ws(y),
        (Value::Object(x), Value::Object(y)) => {
            x.len() == y.len()
                && x.iter()
                    .all(|(k, v)| y.get(k).is_some_and(|w| json_equivalent(v, w)))
        }
        (Value::Array(x), Value::Array(y)) => {
            x.len() == y.len() && x.iter().zip(y).all(|(v, w)| json_equivalent(v, w))
        }
        _ => a == b,
    }
}
