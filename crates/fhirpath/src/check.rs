//! A static look at an expression's paths against the R4 model: names that no
//! instance of the types reached there can have (`birth` on a Patient, `given1` on
//! a HumanName). Evaluation navigates them anyway (they are empty on valid R4, and
//! untyped JSON may have them), so these are warnings for `fhirconf check`: a typo
//! in an assertion like `birth.empty()` would otherwise pass silently.

use r4_model::Kind;

use crate::ast::{Expr, TypeSpec};

/// The FHIR types an expression may yield, when they are known.
#[derive(Clone, Debug)]
enum St {
    Known(Vec<&'static str>),
    Unknown,
}

/// Warnings for the paths of `e` evaluated on a resource of type `root` (any type
/// when `None`).
pub(crate) fn check(e: &Expr, root: Option<&str>) -> Vec<String> {
    let m = r4_model::r4();
    let root = match root.and_then(|r| m.type_def(r)) {
        Some(t) => St::Known(vec![t.name]),
        None => St::Unknown,
    };
    let mut out = Vec::new();
    walk(e, &root, &root, &root, &mut out);
    out.dedup();
    out
}

fn fhir_type(spec: &TypeSpec) -> St {
    if spec.namespace.as_deref() == Some("System") {
        return St::Unknown;
    }
    match r4_model::r4().type_def(&spec.name) {
        Some(t) => St::Known(vec![t.name]),
        None => St::Unknown,
    }
}

/// The types of `name` on each of `types`; a warning when none has it.
fn member(types: &St, name: &str, out: &mut Vec<String>) -> St {
    let St::Known(types) = types else {
        return St::Unknown;
    };
    if types.is_empty() {
        return St::Unknown;
    }
    let m = r4_model::r4();
    let mut found: Vec<&'static str> = Vec::new();
    let mut any = false;
    for t in types {
        let Some(def) = m.type_def(t) else {
            return St::Unknown;
        };
        if def.kind == Kind::Primitive {
            match name {
                "extension" => {
                    any = true;
                    found.push("Extension");
                }
                "id" => any = true,
                _ => {}
            }
            continue;
        }
        let codes: Vec<&'static str> = match m.element(t, name) {
            Some(e) => e.types.iter().map(|t| t.code).collect(),
            None => match m.property(t, name) {
                Some(p) => vec![p.type_code],
                None => continue,
            },
        };
        any = true;
        for c in codes {
            if c == "Resource" || c == "DomainResource" || c.starts_with("System.") {
                // Any resource, or a System value: nothing more to check.
                return St::Unknown;
            }
            if !found.contains(&c) {
                found.push(c);
            }
        }
    }
    if !any {
        let mut msg = format!(
            "`{name}` is not an element of {}",
            types
                .iter()
                .map(|t| t.to_string())
                .collect::<Vec<_>>()
                .join(" or ")
        );
        if let Some(s) = suggestion(types, name) {
            msg += &format!(" (did you mean `{s}`?)");
        }
        out.push(msg);
        return St::Unknown;
    }
    if found.is_empty() {
        St::Unknown
    } else {
        St::Known(found)
    }
}

/// The closest element name of `types` to `name`, if it is close.
fn suggestion(types: &[&'static str], name: &str) -> Option<&'static str> {
    let m = r4_model::r4();
    let mut best: Option<(usize, &'static str)> = None;
    for t in types {
        for e in m
            .type_def(t)
            .map(|d| d.elements.as_slice())
            .unwrap_or_default()
        {
            let d = if e.name.starts_with(name) || name.starts_with(e.name) {
                1
            } else {
                edit_distance(name, e.name)
            };
            if d <= 2 && best.is_none_or(|(bd, _)| d < bd) {
                best = Some((d, e.name));
            }
        }
    }
    best.map(|(_, n)| n)
}

fn edit_distance(a: &str, b: &str) -> usize {
    let b: Vec<char> = b.chars().collect();
    let mut prev: Vec<usize> = (0..=b.len()).collect();
    for (i, ca) in a.chars().enumerate() {
        let mut cur = vec![i + 1; b.len() + 1];
        for (j, cb) in b.iter().enumerate() {
            let cost = usize::from(ca != *cb);
            cur[j + 1] = (prev[j] + cost).min(prev[j + 1] + 1).min(cur[j] + 1);
        }
        prev = cur;
    }
    prev[b.len()]
}

/// The static types of `e` with `focus` as the start of paths, `this` as `$this`,
/// `root` as `%resource`.
fn walk(e: &Expr, focus: &St, this: &St, root: &St, out: &mut Vec<String>) -> St {
    match e {
        Expr::Literal(_) | Expr::Index | Expr::Total => St::Unknown,
        Expr::This => this.clone(),
        Expr::Var(v) => match v.as_str() {
            "resource" | "context" | "rootResource" => root.clone(),
            _ => St::Unknown,
        },
        Expr::Ident(name) => {
            let m = r4_model::r4();
            if name.starts_with(|c: char| c.is_ascii_uppercase())
                && let Some(def) = m.type_def(name)
            {
                return match focus {
                    St::Known(types) => {
                        let kept: Vec<&'static str> =
                            types.iter().copied().filter(|t| m.is_a(t, name)).collect();
                        if kept.is_empty() {
                            out.push(format!(
                                "`{name}` does not match the type of the context ({})",
                                types.join(" or ")
                            ));
                            St::Unknown
                        } else {
                            St::Known(kept)
                        }
                    }
                    St::Unknown => St::Known(vec![def.name]),
                };
            }
            member(focus, name, out)
        }
        Expr::Member(base, name) => {
            let b = walk(base, focus, this, root, out);
            member(&b, name, out)
        }
        Expr::Indexer(base, idx) => {
            walk(idx, focus, this, root, out);
            walk(base, focus, this, root, out)
        }
        Expr::Negate(inner) | Expr::Is(inner, _) => {
            walk(inner, focus, this, root, out);
            St::Unknown
        }
        Expr::As(inner, spec) => {
            walk(inner, focus, this, root, out);
            fhir_type(spec)
        }
        Expr::Binary(op, l, r) => {
            let a = walk(l, focus, this, root, out);
            let b = walk(r, focus, this, root, out);
            match (op, a, b) {
                (crate::ast::BinOp::Union, St::Known(mut x), St::Known(y)) => {
                    for t in y {
                        if !x.contains(&t) {
                            x.push(t);
                        }
                    }
                    St::Known(x)
                }
                _ => St::Unknown,
            }
        }
        Expr::Call {
            target,
            name,
            args,
            type_arg,
        } => {
            let input = match target {
                Some(t) => walk(t, focus, this, root, out),
                None => this.clone(),
            };
            let iterating = matches!(
                *name,
                "where" | "select" | "exists" | "all" | "repeat" | "aggregate" | "sort" | "trace"
            );
            let mut last = St::Unknown;
            // The argument of is/as/ofType is a type name, not a path.
            let args = if type_arg.is_some() {
                &[][..]
            } else {
                &args[..]
            };
            for a in args {
                last = if iterating {
                    walk(a, &input, &input, root, out)
                } else {
                    walk(a, focus, this, root, out)
                };
            }
            match *name {
                "where" | "first" | "last" | "tail" | "skip" | "take" | "single" | "distinct"
                | "intersect" | "exclude" | "trace" => input,
                "select" => last,
                "ofType" | "as" => type_arg.as_ref().map_or(St::Unknown, fhir_type),
                "extension" => St::Known(vec!["Extension"]),
                _ => St::Unknown,
            }
        }
    }
}
