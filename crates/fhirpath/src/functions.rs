//! The functions: each gets its input collection and its unevaluated arguments
//! (iteration functions evaluate them per item with `$this` and `$index`).

use std::collections::HashMap;
use std::sync::{Arc, Mutex, OnceLock};

use serde_json::Value;

use crate::ast::{Expr, TypeSpec};
use crate::eval::{
    Env, Items, Members, Res, Scope, as_type, contains_item, distinct, fail, is_type, singleton,
    to_bool,
};
use crate::item::{Item, Node, Ty, quantity_item};
use crate::value::{DateTime, Dec, Prec};

/// The most items `repeat()` and `descendants()` produce before giving up.
const MAX_ITEMS: usize = 100_000;

impl<'a> Env<'a> {
    /// Evaluates a function call on `input`.
    pub(crate) fn call(
        &self,
        name: &str,
        input: Items<'a>,
        args: &[Expr],
        type_arg: Option<&TypeSpec>,
        focus: &[Item<'a>],
        scope: &Scope<'a>,
    ) -> Res<Items<'a>> {
        // An argument evaluated once, in the caller's context.
        let arg = |i: usize| -> Res<Items<'a>> {
            match args.get(i) {
                Some(e) => self.eval(e, focus, scope),
                None => Ok(Vec::new()),
            }
        };
        let b = |x: bool| Ok(vec![Item::Bool(x)]);
        let what = format_args!("the input of {name}()");
        match name {
            "empty" => b(input.is_empty()),
            "exists" => {
                if args.is_empty() {
                    b(!input.is_empty())
                } else {
                    b(!self.filter(input, &args[0], scope, name)?.is_empty())
                }
            }
            "all" => {
                for (i, item) in input.iter().enumerate() {
                    let r = self.lambda(&args[0], item, i, scope)?;
                    if to_bool(&r, "all()")? != Some(true) {
                        return b(false);
                    }
                }
                b(true)
            }
            "allTrue" | "anyTrue" | "allFalse" | "anyFalse" => {
                let mut bools = Vec::with_capacity(input.len());
                for i in &input {
                    match i.sys() {
                        Item::Bool(x) => bools.push(x),
                        other => {
                            return fail(format!(
                                "{name}() needs Booleans, not {}",
                                other.type_name()
                            ));
                        }
                    }
                }
                b(match name {
                    "allTrue" => bools.iter().all(|x| *x),
                    "anyTrue" => bools.iter().any(|x| *x),
                    "allFalse" => bools.iter().all(|x| !*x),
                    _ => bools.iter().any(|x| !*x),
                })
            }
            "subsetOf" => {
                let other = arg(0)?;
                let m = Members::new(&other);
                b(input.iter().all(|i| m.contains(i)))
            }
            "supersetOf" => {
                let other = arg(0)?;
                let m = Members::new(&input);
                b(other.iter().all(|i| m.contains(i)))
            }
            "count" => Ok(vec![Item::Int(
                i64::try_from(input.len()).unwrap_or(i64::MAX),
            )]),
            "distinct" => Ok(distinct(input)),
            "isDistinct" => {
                let n = input.len();
                b(distinct(input).len() == n)
            }
            "where" => self.filter(input, &args[0], scope, name),
            "select" => {
                let mut out = Vec::new();
                for (i, item) in input.iter().enumerate() {
                    out.extend(self.lambda(&args[0], item, i, scope)?);
                }
                Ok(out)
            }
            "repeat" => {
                let mut out: Items<'a> = Vec::new();
                // Nodes seen, by identity; System values are compared by value.
                let mut seen = std::collections::HashSet::new();
                let mut values: Items<'a> = Vec::new();
                let mut queue = input;
                while !queue.is_empty() {
                    let mut next = Vec::new();
                    for (i, item) in queue.iter().enumerate() {
                        for r in self.lambda(&args[0], item, i, scope)? {
                            let new = match &r {
                                Item::Node(n) => seen.insert(node_key(n)),
                                other => {
                                    let new = !contains_item(&values, other);
                                    if new {
                                        values.push(other.clone());
                                    }
                                    new
                                }
                            };
                            if new {
                                out.push(r.clone());
                                next.push(r);
                            }
                        }
                        if out.len() > MAX_ITEMS {
                            return fail(format!("repeat() produced more than {MAX_ITEMS} items"));
                        }
                    }
                    queue = next;
                }
                Ok(out)
            }
            "ofType" => {
                let spec = type_arg.ok_or_else(|| crate::EvalError {
                    message: "ofType() needs a type".into(),
                })?;
                Ok(input.into_iter().filter(|i| is_type(i, spec)).collect())
            }
            "is" => {
                let spec = type_arg.ok_or_else(|| crate::EvalError {
                    message: "is() needs a type".into(),
                })?;
                Ok(match singleton(&input, &what)? {
                    None => Vec::new(),
                    Some(i) => vec![Item::Bool(is_type(i, spec))],
                })
            }
            "as" => {
                let spec = type_arg.ok_or_else(|| crate::EvalError {
                    message: "as() needs a type".into(),
                })?;
                as_type(&input, spec, "as()")
            }
            "single" => match singleton(&input, &what)? {
                Some(i) => Ok(vec![i.clone()]),
                None => Ok(Vec::new()),
            },
            "first" => Ok(input.into_iter().take(1).collect()),
            "last" => Ok(input.last().cloned().into_iter().collect()),
            "tail" => Ok(input.into_iter().skip(1).collect()),
            "skip" | "take" => {
                let n = int_arg(&arg(0)?, name)?;
                let Some(n) = n else {
                    return Ok(if name == "skip" { input } else { Vec::new() });
                };
                let n = usize::try_from(n.max(0)).unwrap_or(usize::MAX);
                Ok(if name == "skip" {
                    input.into_iter().skip(n).collect()
                } else {
                    input.into_iter().take(n).collect()
                })
            }
            "intersect" => {
                let other = arg(0)?;
                let m = Members::new(&other);
                Ok(distinct(
                    input.into_iter().filter(|i| m.contains(i)).collect(),
                ))
            }
            "exclude" => {
                let other = arg(0)?;
                let m = Members::new(&other);
                Ok(input.into_iter().filter(|i| !m.contains(i)).collect())
            }
            "union" => {
                let mut all = input;
                all.extend(arg(0)?);
                Ok(distinct(all))
            }
            "combine" => {
                let mut all = input;
                all.extend(arg(0)?);
                Ok(all)
            }
            "iif" => {
                if input.len() > 1 {
                    return fail("iif() must be called on a single item or none");
                }
                let (this, ifocus): (Option<Item<'a>>, Items<'a>) = match input.first() {
                    Some(i) => (Some(i.clone()), input.clone()),
                    None => (scope.this.clone(), focus.to_vec()),
                };
                let s = Scope {
                    this,
                    index: scope.index,
                    total: scope.total.clone(),
                };
                let c = self.eval(&args[0], &ifocus, &s)?;
                let cond = match singleton(&c, &"the criterion of iif()")? {
                    None => false,
                    Some(i) => match i.sys() {
                        Item::Bool(x) => x,
                        other => {
                            return fail(format!(
                                "the criterion of iif() must be a Boolean, not {}",
                                other.type_name()
                            ));
                        }
                    },
                };
                if cond {
                    self.eval(&args[1], &ifocus, &s)
                } else if let Some(e) = args.get(2) {
                    self.eval(e, &ifocus, &s)
                } else {
                    Ok(Vec::new())
                }
            }
            "not" => Ok(to_bool(&input, "not()")?
                .map(|x| Item::Bool(!x))
                .into_iter()
                .collect()),
            "trace" => Ok(input),
            "aggregate" => {
                let mut total: Items<'a> = match args.get(1) {
                    Some(e) => self.eval(e, focus, scope)?,
                    None => Vec::new(),
                };
                for (i, item) in input.iter().enumerate() {
                    let s = Scope {
                        this: Some(item.clone()),
                        index: Some(i),
                        total: Some(Arc::new(total)),
                    };
                    total = self.eval(&args[0], std::slice::from_ref(item), &s)?;
                }
                Ok(total)
            }
            "children" => {
                let mut out = Vec::new();
                for i in &input {
                    if let Item::Node(n) = i {
                        n.children(&mut out);
                    }
                }
                Ok(out)
            }
            "descendants" => {
                let mut out = Vec::new();
                let mut queue = input;
                while !queue.is_empty() {
                    let mut next = Vec::new();
                    for i in &queue {
                        if let Item::Node(n) = i {
                            n.children(&mut next);
                        }
                    }
                    if out.len() + next.len() > MAX_ITEMS {
                        return fail(format!("descendants() has more than {MAX_ITEMS} items"));
                    }
                    out.extend(next.iter().cloned());
                    queue = next;
                }
                Ok(out)
            }
            "today" | "now" | "timeOfDay" => {
                let now = *self.now.get_or_init(now);
                Ok(vec![match name {
                    "today" => {
                        let mut d = now;
                        d.prec = Prec::Day;
                        d.tz = None;
                        (d.hour, d.minute, d.second, d.milli) = (0, 0, 0, 0);
                        Item::Date(d)
                    }
                    "now" => Item::DateTime(now),
                    _ => {
                        let mut t = now;
                        t.tz = None;
                        Item::Time(t)
                    }
                }])
            }
            "extension" => {
                let url = string_arg(&arg(0)?, name)?;
                let mut exts = Vec::new();
                for i in &input {
                    if let Item::Node(n) = i {
                        n.member("extension", &mut exts);
                    }
                }
                Ok(exts
                    .into_iter()
                    .filter(|e| match (e, &url) {
                        (Item::Node(n), Some(u)) => {
                            n.value.and_then(|v| v.get("url")).and_then(Value::as_str)
                                == Some(u.as_str())
                        }
                        _ => false,
                    })
                    .collect())
            }
            "hasValue" => b(match input.as_slice() {
                [one] => has_value(one),
                _ => false,
            }),
            "getValue" => Ok(match input.as_slice() {
                [one] if has_value(one) => vec![one.sys()],
                _ => Vec::new(),
            }),
            "resolve" => {
                let mut out = Vec::new();
                for i in &input {
                    let container = match i {
                        Item::Node(n) => n.container,
                        _ => None,
                    };
                    let reference = match i {
                        Item::Node(n) => match n.value {
                            Some(Value::Object(o)) => o.get("reference").and_then(Value::as_str),
                            Some(Value::String(s)) => Some(s.as_str()),
                            _ => None,
                        },
                        _ => None,
                    };
                    let owned;
                    let reference = match (reference, i) {
                        (Some(r), _) => r,
                        (None, Item::Str(s)) => {
                            owned = s.clone();
                            &*owned
                        }
                        _ => continue,
                    };
                    if let Some((v, container)) = self.input.resolve(reference, container) {
                        let mut n = Node::resource(v);
                        n.container = container;
                        out.push(Item::Node(n));
                    }
                }
                Ok(out)
            }
            "join" => {
                let sep = string_arg(&arg(0)?, name)?.unwrap_or_default();
                let mut parts = Vec::with_capacity(input.len());
                for i in &input {
                    match i.sys() {
                        Item::Str(s) => parts.push(s.to_string()),
                        other => {
                            return fail(format!(
                                "join() needs Strings, not {}",
                                other.type_name()
                            ));
                        }
                    }
                }
                let len = parts.iter().map(String::len).sum::<usize>()
                    + sep.len().saturating_mul(parts.len());
                crate::eval::check_len(len, "join()")?;
                Ok(vec![Item::string(parts.join(&sep))])
            }
            "sort" => self.sort(input, args, scope),
            "type" => Ok(input.iter().filter_map(Item::type_info).collect()),
            "htmlChecks" => Ok(match singleton(&input, &what)? {
                None => Vec::new(),
                Some(i) => match i.sys() {
                    Item::Str(s) => vec![Item::Bool(crate::html::check(&s).is_ok())],
                    _ => vec![Item::Bool(false)],
                },
            }),
            _ => self.scalar_function(name, input, &arg),
        }
    }

    /// `sort(keys...)`: by the items themselves, or by each key in turn; a key
    /// written `-expr` sorts descending.
    fn sort(&self, input: Items<'a>, args: &[Expr], scope: &Scope<'a>) -> Res<Items<'a>> {
        let mut keyed = Vec::with_capacity(input.len());
        for (i, item) in input.into_iter().enumerate() {
            let mut keys = Vec::with_capacity(args.len().max(1));
            if args.is_empty() {
                keys.push((Some(item.sys()), false));
            }
            for a in args {
                let (e, desc) = match a {
                    Expr::Negate(inner) => (&**inner, true),
                    other => (other, false),
                };
                let k = self.lambda(e, &item, i, scope)?;
                keys.push((singleton(&k, &"a key of sort()")?.map(Item::sys), desc));
            }
            keyed.push((keys, item));
        }
        let mut error = None;
        keyed.sort_by(|(a, _), (b, _)| {
            for ((x, desc), (y, _)) in a.iter().zip(b) {
                let o = match (x, y) {
                    (None, None) => std::cmp::Ordering::Equal,
                    // Empty keys sort after all values.
                    (None, Some(_)) => std::cmp::Ordering::Greater,
                    (Some(_), None) => std::cmp::Ordering::Less,
                    (Some(x), Some(y)) => match crate::eval::compare_items(x, y, "sort()") {
                        Ok(o) => o.unwrap_or(std::cmp::Ordering::Equal),
                        Err(e) => {
                            error.get_or_insert(e);
                            std::cmp::Ordering::Equal
                        }
                    },
                };
                let o = if *desc { o.reverse() } else { o };
                if o != std::cmp::Ordering::Equal {
                    return o;
                }
            }
            std::cmp::Ordering::Equal
        });
        match error {
            Some(e) => Err(e),
            None => Ok(keyed.into_iter().map(|(_, i)| i).collect()),
        }
    }

    /// Evaluates `e` with `item` as `$this`.
    fn lambda(&self, e: &Expr, item: &Item<'a>, index: usize, scope: &Scope<'a>) -> Res<Items<'a>> {
        let s = Scope {
            this: Some(item.clone()),
            index: Some(index),
            total: scope.total.clone(),
        };
        self.eval(e, std::slice::from_ref(item), &s)
    }

    fn filter(&self, input: Items<'a>, e: &Expr, scope: &Scope<'a>, name: &str) -> Res<Items<'a>> {
        let mut out = Vec::new();
        for (i, item) in input.into_iter().enumerate() {
            let r = self.lambda(e, &item, i, scope)?;
            if to_bool(&r, name)? == Some(true) {
                out.push(item);
            }
        }
        Ok(out)
    }

    /// Functions on a single value (strings, math, conversions).
    fn scalar_function(
        &self,
        name: &str,
        input: Items<'a>,
        arg: &dyn Fn(usize) -> Res<Items<'a>>,
    ) -> Res<Items<'a>> {
        let Some(item) = singleton(&input, &format_args!("the input of {name}()"))? else {
            return Ok(Vec::new());
        };
        let v = quantity_item(item.sys());
        let one = |i: Item<'a>| Ok(vec![i]);
        let opt = |i: Option<Item<'a>>| Ok(i.into_iter().collect());
        // Conversions take any type.
        match name {
            "toBoolean" => return opt(to_boolean(&v).map(Item::Bool)),
            "convertsToBoolean" => return one(Item::Bool(to_boolean(&v).is_some())),
            "toInteger" => return opt(to_integer(&v).map(Item::Int)),
            "convertsToInteger" => return one(Item::Bool(to_integer(&v).is_some())),
            "toDecimal" => return opt(to_decimal(&v).map(Item::Dec)),
            "convertsToDecimal" => return one(Item::Bool(to_decimal(&v).is_some())),
            "toString" => return opt(to_string(&v).map(Item::string)),
            "convertsToString" => return one(Item::Bool(to_string(&v).is_some())),
            "toDate" => return opt(to_date(&v).map(Item::Date)),
            "convertsToDate" => return one(Item::Bool(to_date(&v).is_some())),
            "toDateTime" => return opt(to_date_time(&v).map(Item::DateTime)),
            "convertsToDateTime" => return one(Item::Bool(to_date_time(&v).is_some())),
            "toTime" => return opt(to_time(&v).map(Item::Time)),
            "convertsToTime" => return one(Item::Bool(to_time(&v).is_some())),
            "toQuantity" | "convertsToQuantity" => {
                let unit = string_arg(&arg(0)?, name)?;
                let q = to_quantity(&v).and_then(|(val, u)| match &unit {
                    None => Some((val, u)),
                    Some(want) if want.as_str() == &*u => Some((val, u)),
                    Some(want) => {
                        let a = crate::value::ucum_factor(&u)?;
                        let b = crate::value::ucum_factor(want)?;
                        if a.0 != b.0 {
                            return None;
                        }
                        Some((val.mul(a.1)?.div(b.1)?, Arc::from(want.as_str())))
                    }
                });
                return if name == "toQuantity" {
                    opt(q.map(|(val, u)| Item::Quantity(val, u)))
                } else {
                    one(Item::Bool(q.is_some()))
                };
            }
            _ => {}
        }
        match (name, &v) {
            ("precision", Item::Dec(d)) => return one(Item::Int(i64::from(d.s))),
            ("precision", Item::Int(_)) => return one(Item::Int(0)),
            ("precision", Item::Date(d) | Item::DateTime(d)) => {
                let digits = match d.prec {
                    Prec::Year => 4,
                    Prec::Month => 6,
                    Prec::Day => 8,
                    Prec::Hour => 10,
                    Prec::Minute => 12,
                    Prec::Second => 14,
                    Prec::Milli => 17,
                };
                return one(Item::Int(digits));
            }
            ("precision", Item::Time(d)) => {
                let digits = match d.prec {
                    Prec::Minute => 4,
                    Prec::Second => 6,
                    Prec::Milli => 9,
                    _ => 2,
                };
                return one(Item::Int(digits));
            }
            ("precision", other) => {
                return fail(format!(
                    "precision() is not defined for {}",
                    other.type_name()
                ));
            }
            ("lowBoundary" | "highBoundary", _) => {
                let high = name == "highBoundary";
                let digits = int_arg(&arg(0)?, name)?;
                return opt(match &v {
                    Item::Int(_) | Item::Dec(_) | Item::Quantity(..) => {
                        let (n, unit) = match &v {
                            Item::Quantity(n, u) => (*n, Some(u.clone())),
                            other => (crate::item::num(other).unwrap_or(Dec::from_int(0)), None),
                        };
                        let places = digits.unwrap_or(8);
                        if !(0..=28).contains(&places) {
                            return Ok(Vec::new());
                        }
                        let places = u32::try_from(places).unwrap_or(8);
                        n.boundary(places, high).map(|b| match unit {
                            Some(u) => Item::Quantity(b, u),
                            None => Item::Dec(b),
                        })
                    }
                    Item::Date(d) => d.boundary(digits.unwrap_or(8), high, 'D').map(Item::Date),
                    Item::DateTime(d) => d
                        .boundary(digits.unwrap_or(17), high, 'T')
                        .map(Item::DateTime),
                    Item::Time(d) => d.boundary(digits.unwrap_or(9), high, 't').map(Item::Time),
                    other => {
                        return fail(format!("{name}() is not defined for {}", other.type_name()));
                    }
                });
            }
            ("comparable", Item::Quantity(_, u)) => {
                let o = arg(0)?;
                let Some(o) = singleton(&o, &"the argument of comparable()")? else {
                    return Ok(Vec::new());
                };
                let Item::Quantity(_, w) = quantity_item(o.sys()) else {
                    return fail("comparable() needs a Quantity argument");
                };
                let base = |u: &str| crate::value::ucum_factor(u).map(|(b, _)| b.to_string());
                let same = u == &w || base(u).is_some_and(|b| Some(b) == base(&w));
                return one(Item::Bool(same));
            }
            ("encode" | "decode" | "escape" | "unescape", Item::Str(s)) => {
                let Some(format) = string_arg(&arg(0)?, name)? else {
                    return Ok(Vec::new());
                };
                return opt(crate::codec::apply(name, &format, s)?.map(Item::string));
            }
            _ => {}
        }
        // String functions.
        if let Some(r) = self.string_function(name, &v, arg)? {
            return Ok(r);
        }
        // Math.
        let num = crate::item::num(&v);
        let dec_out = |d: Option<Dec>| opt(d.map(Item::Dec));
        let f64_out = |f: f64| dec_out(Dec::from_f64(f));
        match (name, &v) {
            ("abs", Item::Int(i)) => opt(i.checked_abs().map(Item::Int)),
            ("abs", Item::Dec(d)) => opt(d.abs().map(Item::Dec)),
            ("abs", Item::Quantity(d, u)) => opt(d.abs().map(|d| Item::Quantity(d, u.clone()))),
            ("ceiling" | "floor" | "truncate", _) if num.is_some() => {
                let d = num.unwrap_or(Dec::from_int(0));
                let r = match name {
                    "ceiling" => d.ceiling(),
                    "floor" => d.floor(),
                    _ => d.truncate(),
                };
                opt(i64::try_from(r.m).ok().map(Item::Int))
            }
            ("round", _) if num.is_some() => {
                let p = int_arg(&arg(0)?, name)?.unwrap_or(0);
                if !(0..=28).contains(&p) {
                    return fail("round() needs a precision from 0 to 28");
                }
                let d = num.unwrap_or(Dec::from_int(0));
                dec_out(Some(d.round(u32::try_from(p).unwrap_or(0))))
            }
            ("exp", _) if num.is_some() => f64_out(num.map_or(0.0, Dec::to_f64).exp()),
            ("ln", _) if num.is_some() => {
                let x = num.map_or(0.0, Dec::to_f64);
                if x <= 0.0 {
                    Ok(Vec::new())
                } else {
                    f64_out(x.ln())
                }
            }
            ("sqrt", _) if num.is_some() => {
                let x = num.map_or(0.0, Dec::to_f64);
                if x < 0.0 {
                    Ok(Vec::new())
                } else {
                    f64_out(x.sqrt())
                }
            }
            ("log", _) if num.is_some() => {
                let base = arg(0)?;
                let Some(base) = singleton(&base, &"the base of log()")? else {
                    return Ok(Vec::new());
                };
                let Some(base) = crate::item::num(&base.sys()) else {
                    return fail("log() needs a number as its base");
                };
                let (x, bs) = (num.map_or(0.0, Dec::to_f64), base.to_f64());
                if x <= 0.0 || bs <= 0.0 || bs == 1.0 {
                    return Ok(Vec::new());
                }
                f64_out(x.ln() / bs.ln())
            }
            ("power", _) if num.is_some() => {
                let e = arg(0)?;
                let Some(e) = singleton(&e, &"the exponent of power()")? else {
                    return Ok(Vec::new());
                };
                let e = e.sys();
                if let (Item::Int(base), Item::Int(exp)) = (&v, &e)
                    && *exp >= 0
                {
                    return opt(u32::try_from(*exp)
                        .ok()
                        .and_then(|x| base.checked_pow(x))
                        .map(Item::Int));
                }
                let Some(ed) = crate::item::num(&e) else {
                    return fail("power() needs a number as its exponent");
                };
                let r = num.map_or(0.0, Dec::to_f64).powf(ed.to_f64());
                if r.is_finite() {
                    f64_out(r)
                } else {
                    Ok(Vec::new())
                }
            }
            (
                "abs" | "ceiling" | "floor" | "truncate" | "round" | "exp" | "ln" | "sqrt" | "log"
                | "power",
                other,
            ) => fail(format!(
                "{name}() needs a number, not {}",
                other.type_name()
            )),
            _ => fail(format!("{name}() is not implemented")),
        }
    }

    fn string_function(
        &self,
        name: &str,
        v: &Item<'a>,
        arg: &dyn Fn(usize) -> Res<Items<'a>>,
    ) -> Res<Option<Items<'a>>> {
        const STRING_FNS: &[&str] = &[
            "indexOf",
            "substring",
            "startsWith",
            "endsWith",
            "contains",
            "upper",
            "lower",
            "replace",
            "matches",
            "matchesFull",
            "replaceMatches",
            "length",
            "toChars",
            "trim",
            "split",
        ];
        if !STRING_FNS.contains(&name) {
            return Ok(None);
        }
        let Item::Str(s) = v else {
            return fail(format!("{name}() needs a String, not {}", v.type_name()));
        };
        let s: &str = s;
        let one = |i: Item<'a>| Ok(Some(vec![i]));
        let empty = || Ok(Some(Vec::new()));
        let sarg = |i: usize| -> Res<Option<String>> { string_arg(&arg(i)?, name) };
        let chars = || s.chars().count();
        Ok(match name {
            "length" => return one(Item::Int(i64::try_from(chars()).unwrap_or(i64::MAX))),
            "upper" => return one(Item::string(s.to_uppercase())),
            "lower" => return one(Item::string(s.to_lowercase())),
            "trim" => return one(Item::string(s.trim())),
            "toChars" => {
                return Ok(Some(
                    s.chars().map(|c| Item::string(c.to_string())).collect(),
                ));
            }
            "indexOf" => {
                let Some(sub) = sarg(0)? else {
                    return empty();
                };
                let idx = s.find(&sub).map_or(-1, |b| {
                    i64::try_from(s[..b].chars().count()).unwrap_or(i64::MAX)
                });
                return one(Item::Int(idx));
            }
            "substring" => {
                let start = int_arg(&arg(0)?, name)?;
                let Some(start) = start else {
                    return empty();
                };
                let n = i64::try_from(chars()).unwrap_or(i64::MAX);
                if start < 0 || start >= n {
                    return empty();
                }
                let len = match int_arg(&arg(1)?, name)? {
                    Some(l) => l.max(0),
                    None => n,
                };
                let start = usize::try_from(start).unwrap_or(0);
                let len = usize::try_from(len).unwrap_or(usize::MAX);
                return one(Item::string(
                    s.chars().skip(start).take(len).collect::<String>(),
                ));
            }
            "startsWith" | "endsWith" | "contains" => {
                let Some(x) = sarg(0)? else {
                    return empty();
                };
                let r = match name {
                    "startsWith" => s.starts_with(&x),
                    "endsWith" => s.ends_with(&x),
                    _ => s.contains(&x),
                };
                return one(Item::Bool(r));
            }
            "replace" => {
                let (Some(pat), Some(rep)) = (sarg(0)?, sarg(1)?) else {
                    return empty();
                };
                let matches = if pat.is_empty() {
                    s.chars().count() + 1
                } else {
                    s.matches(pat.as_str()).count()
                };
                let len = matches.saturating_mul(rep.len()).saturating_add(s.len());
                crate::eval::check_len(len, "replace()")?;
                let r = if pat.is_empty() {
                    let mut out = rep.clone();
                    for c in s.chars() {
                        out.push(c);
                        out.push_str(&rep);
                    }
                    out
                } else {
                    s.replace(&pat, &rep)
                };
                return one(Item::string(r));
            }
            "matches" | "matchesFull" => {
                let Some(pat) = sarg(0)? else {
                    return empty();
                };
                let pat = if name == "matchesFull" {
                    format!("^(?:{pat})$")
                } else {
                    pat
                };
                return one(Item::Bool(regex(&pat)?.is_match(s)));
            }
            "replaceMatches" => {
                let (Some(pat), Some(rep)) = (sarg(0)?, sarg(1)?) else {
                    return empty();
                };
                if pat.is_empty() {
                    return one(Item::string(s));
                }
                let re = regex(&pat)?;
                let out = re.replace_all(s, rep.as_str());
                crate::eval::check_len(out.len(), "replaceMatches()")?;
                return one(Item::string(out.into_owned()));
            }
            "split" => {
                let Some(sep) = sarg(0)? else {
                    return empty();
                };
                if sep.is_empty() {
                    return Ok(Some(
                        s.chars().map(|c| Item::string(c.to_string())).collect(),
                    ));
                }
                return Ok(Some(s.split(sep.as_str()).map(Item::string).collect()));
            }
            _ => None,
        })
    }
}

/// A node's identity: the addresses of its value and twin in the input.
fn node_key(n: &Node<'_>) -> (usize, usize) {
    let addr = |v: Option<&Value>| v.map_or(0, |v| std::ptr::from_ref(v) as usize);
    (addr(n.value), addr(n.twin))
}

fn has_value(i: &Item<'_>) -> bool {
    match i {
        Item::Node(n) => {
            let primitive = match n.ty {
                Ty::Fhir(t) => t.starts_with("System.") || crate::item::model().is_primitive(t),
                Ty::Untyped => true,
            };
            primitive
                && matches!(
                    n.value,
                    Some(Value::Bool(_) | Value::Number(_) | Value::String(_))
                )
        }
        _ => true,
    }
}

/// A single Integer argument (`None` when empty).
fn int_arg(c: &[Item<'_>], name: &str) -> Res<Option<i64>> {
    match singleton(c, &format_args!("the argument of {name}()"))? {
        None => Ok(None),
        Some(i) => match i.sys() {
            Item::Int(n) => Ok(Some(n)),
            other => fail(format!(
                "{name}() needs an Integer argument, not {}",
                other.type_name()
            )),
        },
    }
}

/// A single String argument (`None` when empty).
fn string_arg(c: &[Item<'_>], name: &str) -> Res<Option<String>> {
    match singleton(c, &format_args!("the argument of {name}()"))? {
        None => Ok(None),
        Some(i) => match i.sys() {
            Item::Str(s) => Ok(Some(s.to_string())),
            other => fail(format!(
                "{name}() needs a String argument, not {}",
                other.type_name()
            )),
        },
    }
}

/// Compiled regular expressions, shared by all evaluations (bounded).
fn regex(pattern: &str) -> Res<Arc<regex::Regex>> {
    static CACHE: OnceLock<Mutex<HashMap<String, Arc<regex::Regex>>>> = OnceLock::new();
    let cache = CACHE.get_or_init(|| Mutex::new(HashMap::new()));
    if let Ok(c) = cache.lock()
        && let Some(r) = c.get(pattern)
    {
        return Ok(r.clone());
    }
    let re = regex::RegexBuilder::new(pattern)
        .dot_matches_new_line(true)
        .size_limit(1 << 20)
        .build()
        .map_err(|e| crate::EvalError {
            message: format!("invalid regular expression '{pattern}': {e}"),
        })?;
    let re = Arc::new(re);
    if let Ok(mut c) = cache.lock() {
        if c.len() >= 512 {
            c.clear();
        }
        c.insert(pattern.to_string(), re.clone());
    }
    Ok(re)
}

fn to_boolean(v: &Item<'_>) -> Option<bool> {
    match v {
        Item::Bool(b) => Some(*b),
        Item::Int(1) => Some(true),
        Item::Int(0) => Some(false),
        Item::Dec(d) => match d.normalize() {
            Dec { m: 1, s: 0 } => Some(true),
            Dec { m: 0, .. } => Some(false),
            _ => None,
        },
        Item::Str(s) => match s.to_lowercase().as_str() {
            "true" | "t" | "yes" | "y" | "1" | "1.0" => Some(true),
            "false" | "f" | "no" | "n" | "0" | "0.0" => Some(false),
            _ => None,
        },
        _ => None,
    }
}

fn to_integer(v: &Item<'_>) -> Option<i64> {
    match v {
        Item::Int(i) => Some(*i),
        Item::Bool(b) => Some(i64::from(*b)),
        Item::Str(s) => {
            let body = s.strip_prefix(['+', '-']).unwrap_or(s);
            if body.is_empty() || !body.bytes().all(|b| b.is_ascii_digit()) {
                return None;
            }
            s.parse().ok()
        }
        _ => None,
    }
}

fn to_decimal(v: &Item<'_>) -> Option<Dec> {
    match v {
        Item::Int(i) => Some(Dec::from_int(*i)),
        Item::Dec(d) => Some(*d),
        Item::Bool(b) => Some(Dec {
            m: i128::from(*b) * 10,
            s: 1,
        }),
        Item::Str(s) => {
            let body = s.strip_prefix(['+', '-']).unwrap_or(s);
            let (i, f) = body.split_once('.').unwrap_or((body, "0"));
            if i.is_empty()
                || f.is_empty()
                || !i.bytes().all(|b| b.is_ascii_digit())
                || !f.bytes().all(|b| b.is_ascii_digit())
            {
                return None;
            }
            Dec::parse(s)
        }
        _ => None,
    }
}

fn quote_unit(u: &str) -> String {
    if crate::value::is_calendar_unit(u) {
        u.to_string()
    } else {
        format!("'{u}'")
    }
}

fn to_string(v: &Item<'_>) -> Option<String> {
    Some(match v {
        Item::Str(s) => s.to_string(),
        Item::Bool(b) => b.to_string(),
        Item::Int(i) => i.to_string(),
        Item::Dec(d) => d.to_string(),
        Item::Date(d) => d.fmt_date_only(),
        Item::DateTime(d) => d.fmt_date_time(),
        Item::Time(d) => d.fmt_time(),
        Item::Quantity(d, u) => format!("{d} {}", quote_unit(u)),
        Item::Node(_) | Item::TypeInfo(..) => return None,
    })
}

fn to_date(v: &Item<'_>) -> Option<DateTime> {
    match v {
        Item::Date(d) => Some(*d),
        Item::DateTime(d) => {
            let mut d = *d;
            d.prec = d.prec.min(Prec::Day);
            d.tz = None;
            Some(d)
        }
        Item::Str(s) => DateTime::parse_date(s)
            .or_else(|| to_date(&Item::DateTime(DateTime::parse_date_time(s)?))),
        _ => None,
    }
}

fn to_date_time(v: &Item<'_>) -> Option<DateTime> {
    match v {
        Item::DateTime(d) | Item::Date(d) => Some(*d),
        Item::Str(s) => DateTime::parse_date_time(s),
        _ => None,
    }
}

fn to_time(v: &Item<'_>) -> Option<DateTime> {
    match v {
        Item::Time(d) => Some(*d),
        Item::Str(s) => DateTime::parse_time(s.strip_prefix('T').unwrap_or(s)),
        _ => None,
    }
}

fn to_quantity(v: &Item<'_>) -> Option<(Dec, Arc<str>)> {
    match v {
        Item::Quantity(d, u) => Some((*d, u.clone())),
        Item::Int(i) => Some((Dec::from_int(*i), Arc::from("1"))),
        Item::Dec(d) => Some((*d, Arc::from("1"))),
        Item::Bool(b) => Some((Dec::from_int(i64::from(*b)), Arc::from("1"))),
        Item::Str(s) => {
            let s = s.trim();
            let (n, unit) = match s.find(' ') {
                Some(i) => (&s[..i], s[i..].trim()),
                None => (s, ""),
            };
            let d = to_decimal(&Item::string(n))
                .or_else(|| to_integer(&Item::string(n)).map(Dec::from_int))?;
            if unit.is_empty() {
                return Some((d, Arc::from("1")));
            }
            if let Some(u) = unit.strip_prefix('\'').and_then(|u| u.strip_suffix('\'')) {
                return Some((d, Arc::from(u)));
            }
            crate::value::is_calendar_unit(unit).then(|| (d, Arc::from(unit)))
        }
        _ => None,
    }
}

/// The current date-time in the system's time zone, to the millisecond.
fn now() -> DateTime {
    let z = jiff::Zoned::now();
    let dt = z.datetime();
    let offset = z.offset().seconds() / 60;
    DateTime {
        year: i32::from(dt.year()),
        month: u32::try_from(dt.month()).unwrap_or(1),
        day: u32::try_from(dt.day()).unwrap_or(1),
        hour: u32::try_from(dt.hour()).unwrap_or(0),
        minute: u32::try_from(dt.minute()).unwrap_or(0),
        second: u32::try_from(dt.second()).unwrap_or(0),
        milli: u32::try_from(dt.millisecond()).unwrap_or(0),
        frac_digits: 3,
        prec: Prec::Milli,
        tz: Some(offset),
    }
}
