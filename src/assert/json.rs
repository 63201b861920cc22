//! JSONPath queries (RFC 9535, jsonpath-rust) and the `json_subset` relation.

use serde_json::Value;

use crate::jsonpath::JsonPathExpr;

/// True when `expected` is contained in `actual`: every member of an expected object
/// is present and contained; each expected array item is contained in a distinct
/// actual item, in order (servers may add items, not drop or reorder them);
/// scalars are equal (numbers by value).
pub fn is_subset(expected: &Value, actual: &Value) -> bool {
    match (expected, actual) {
        (Value::Object(e), Value::Object(a)) => e
            .iter()
            .all(|(k, ev)| a.get(k).is_some_and(|av| is_subset(ev, av))),
        (Value::Array(e), Value::Array(a)) => {
            let mut rest = a.iter();
            e.iter().all(|ev| rest.any(|av| is_subset(ev, av)))
        }
        (Value::Number(e), Value::Number(a)) => e.as_f64() == a.as_f64(),
        (e, a) => e == a,
    }
}

/// `actual` cut down to the shape of `expected`, so a diff shows only what matters.
pub(crate) fn project(expected: &Value, actual: &Value) -> Value {
    match (expected, actual) {
        (Value::Object(e), Value::Object(a)) => Value::Object(
            e.iter()
                .filter_map(|(k, ev)| a.get(k).map(|av| (k.clone(), project(ev, av))))
                .collect(),
        ),
        (Value::Array(e), Value::Array(a)) => Value::Array(
            a.iter()
                .enumerate()
                .map(|(i, av)| e.get(i).map_or_else(|| av.clone(), |ev| project(ev, av)))
                .collect(),
        ),
        (_, a) => a.clone(),
    }
}

/// Removes from `doc` every node that `path` selects (for `json_subset.ignore`).
pub(crate) fn remove_paths(doc: &mut Value, path: &JsonPathExpr) -> Result<(), String> {
    let paths = path.select_paths(doc)?;
    // Deepest and last first, so removing one does not shift the next.
    let mut pointers: Vec<Vec<Segment>> =
        paths.iter().filter_map(|p| parse_normalized(p)).collect();
    pointers.sort();
    for pointer in pointers.into_iter().rev() {
        remove_at(doc, &pointer);
    }
    Ok(())
}

#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
enum Segment {
    Index(usize),
    Key(String),
}

/// Parses a normalized path such as `$['entry'][0]['id']`.
fn parse_normalized(path: &str) -> Option<Vec<Segment>> {
    let mut rest = path.strip_prefix('$')?;
    let mut out = Vec::new();
    while !rest.is_empty() {
        rest = rest.strip_prefix('[')?;
        if let Some(r) = rest.strip_prefix('\'') {
            let mut key = String::new();
            let mut chars = r.char_indices();
            let end = loop {
                match chars.next()? {
                    (_, '\\') => key.push(chars.next()?.1),
                    (i, '\'') => break i,
                    (_, c) => key.push(c),
                }
            };
            rest = r[end + 1..].strip_prefix(']')?;
            out.push(Segment::Key(key));
        } else {
            let close = rest.find(']')?;
            out.push(Segment::Index(rest[..close].parse().ok()?));
            rest = &rest[close + 1..];
        }
    }
    Some(out)
}

fn remove_at(doc: &mut Value, pointer: &[Segment]) {
    let Some((last, parents)) = pointer.split_last() else {
        return;
    };
    let mut node = doc;
    for seg in parents {
        node = match (seg, node) {
            (Segment::Key(k), Value::Object(m)) => match m.get_mut(k) {
                Some(v) => v,
                None => return,
            },
            (Segment::Index(i), Value::Array(a)) => match a.get_mut(*i) {
                Some(v) => v,
                None => return,
            },
            _ => return,
        };
    }
    match (last, node) {
        (Segment::Key(k), Value::Object(m)) => {
            m.shift_remove(k);
        }
        (Segment::Index(i), Value::Array(a)) if *i < a.len() => {
            a.remove(*i);
        }
        _ => {}
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn subset_allows_extra_members_and_items_in_order() {
        let actual = json!({"a": 1, "b": [{"x": 1, "y": 2}, {"x": 2}, {"x": 3}], "c": "z"});
        assert!(is_subset(&json!({"a": 1}), &actual));
        assert!(is_subset(&json!({"b": [{"x": 1}, {"x": 3}]}), &actual));
        assert!(
            !is_subset(&json!({"b": [{"x": 3}, {"x": 1}]}), &actual),
            "order matters"
        );
        assert!(
            !is_subset(&json!({"b": [{"x": 1}, {"x": 1}]}), &actual),
            "items are distinct"
        );
        assert!(
            !is_subset(&json!({"d": null}), &actual),
            "a missing member is not null"
        );
        assert!(is_subset(&json!({"a": 1.0}), &actual));
    }

    #[test]
    fn projection_keeps_only_expected_shape() {
        let p = project(
            &json!({"a": {"b": 1}}),
            &json!({"a": {"b": 2, "c": 3}, "d": 4}),
        );
        assert_eq!(p, json!({"a": {"b": 2}}));
    }

    #[test]
    fn removes_selected_nodes() {
        let mut doc = json!({"id": "1", "meta": {"v": 1}, "name": [{"id": "a", "t": 1}, {"id": "b"}], "it's": 1});
        for path in ["$.meta", "$.name[*].id", "$['it\\'s']"] {
            remove_paths(&mut doc, &JsonPathExpr::parse(path).unwrap()).unwrap();
        }
        assert_eq!(doc, json!({"id": "1", "name": [{"t": 1}, {}]}));
        let mut arr = json!({"a": [1, 2, 3]});
        remove_paths(&mut arr, &JsonPathExpr::parse("$.a[0,2]").unwrap()).unwrap();
        assert_eq!(arr, json!({"a": [2]}));
    }
}
