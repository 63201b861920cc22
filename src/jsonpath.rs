//! JSONPath queries (RFC 9535): parsed once when a file loads, and run only after a
//! bound on the nodes they could visit in the body at hand fits the run's budget
//! ([`crate::limits::jsonpath_nodes`]).
//!
//! Chained recursive descent is the danger: `$..*..*..*` visits every chain of three
//! nested nodes, which on a deep body is billions, each held in memory with its path.
//! The bound is computed from the query's segments and three figures of the body (its
//! node count, depth and widest container) in one pass, so a query that could explode
//! fails its check with a message instead of exhausting memory. The bound is an upper
//! bound, a few times the true figure on pathological bodies and exact on flat ones.

use std::sync::Arc;

use jsonpath_rust::parser::model::{
    Comparable, Filter, FilterAtom, FnArg, JpQuery, Segment, Selector, Test, TestFunction,
};
use serde_json::Value;

/// A parsed query with its source text.
#[derive(Debug, Clone)]
pub struct JsonPathExpr(pub String, pub(crate) Arc<JpQuery>);

impl JsonPathExpr {
    /// Parses `text` (no cache: files are loaded through [`Self::parse_with`]).
    pub fn parse(text: &str) -> Result<JsonPathExpr, String> {
        JsonPathExpr::parse_with(text.to_owned(), |t| {
            jsonpath_rust::parser::parse_json_path(t)
                .map(Arc::new)
                .map_err(|e| e.to_string())
        })
    }

    /// Parses `text` with `parse`, after the check every query needs first.
    pub(crate) fn parse_with(
        text: String,
        parse: impl FnOnce(&str) -> Result<Arc<JpQuery>, String>,
    ) -> Result<JsonPathExpr, String> {
        if !text.starts_with('$') {
            return Err(format!(
                "invalid JSONPath `{text}`: a query starts with `$`"
            ));
        }
        match parse(&text) {
            Ok(query) => Ok(JsonPathExpr(text, query)),
            Err(e) => Err(format!("invalid JSONPath `{text}`: {e}")),
        }
    }

    /// The nodes this query selects in `doc`, or why it was not run.
    pub fn select<'a>(&self, doc: &'a Value) -> Result<Vec<&'a Value>, String> {
        Ok(self.run(doc)?.into_iter().map(|r| r.val).collect())
    }

    /// The normalized paths (`$['a'][0]`) of the nodes this query selects in `doc`.
    pub fn select_paths(&self, doc: &Value) -> Result<Vec<String>, String> {
        Ok(self.run(doc)?.into_iter().map(|r| r.path()).collect())
    }

    /// The query run on `doc`, once its bound fits the budget.
    fn run<'a>(
        &self,
        doc: &'a Value,
    ) -> Result<Vec<jsonpath_rust::query::QueryRef<'a, Value>>, String> {
        self.within_budget(doc)?;
        jsonpath_rust::query::js_path_process(&self.1, doc).map_err(|e| e.to_string())
    }

    fn within_budget(&self, doc: &Value) -> Result<(), String> {
        let budget = crate::limits::jsonpath_nodes();
        let bound = visit_bound(&self.1, doc);
        if bound > budget as f64 {
            return Err(format!(
                "not run: `{}` could visit up to {} nodes of this body, more than the budget of {budget} (--max-jsonpath-nodes); chained `..` multiply, so name the members you want instead",
                self.0,
                show(bound)
            ));
        }
        Ok(())
    }
}

fn show(n: f64) -> String {
    if n >= 1e15 {
        format!("{n:.1e}")
    } else {
        format!("{}", n.round() as u64)
    }
}

/// The three figures of a body the bound needs.
#[derive(Debug, Clone, Copy)]
struct Shape {
    /// Every value in the body, the root included.
    nodes: f64,
    /// The most levels below the root.
    depth: f64,
    /// The most children of one array or object.
    widest: f64,
}

impl Shape {
    fn of(doc: &Value) -> Shape {
        let (mut nodes, mut depth, mut widest) = (0usize, 0usize, 0usize);
        let mut stack = vec![(doc, 0usize)];
        while let Some((value, level)) = stack.pop() {
            nodes += 1;
            depth = depth.max(level);
            match value {
                Value::Array(items) => {
                    widest = widest.max(items.len());
                    stack.extend(items.iter().map(|v| (v, level + 1)));
                }
                Value::Object(map) => {
                    widest = widest.max(map.len());
                    stack.extend(map.values().map(|v| (v, level + 1)));
                }
                _ => {}
            }
        }
        Shape {
            nodes: nodes as f64,
            depth: depth as f64,
            widest: widest as f64,
        }
    }
}

/// What flows between segments: at most `count` nodes, no node more than `repeats`
/// times (descendant segments reach a node once from each of its selected ancestors).
#[derive(Debug, Clone, Copy)]
struct Flow {
    count: f64,
    repeats: f64,
}

/// An upper bound on the nodes `query` visits in `doc`, the root included (for a query
/// that selects at most one node per segment, no body walk is needed).
fn visit_bound(query: &JpQuery, doc: &Value) -> f64 {
    // The root is visited, then at most one node per segment.
    if query.segments.iter().all(is_single) {
        return query.segments.len() as f64 + 1.0;
    }
    let shape = Shape::of(doc);
    let mut work = 1.0;
    segments(
        &query.segments,
        Flow {
            count: 1.0,
            repeats: 1.0,
        },
        &shape,
        &mut work,
    );
    work
}

fn is_single(segment: &Segment) -> bool {
    match segment {
        Segment::Selector(Selector::Name(_) | Selector::Index(_)) => true,
        Segment::Selector(_) | Segment::Selectors(_) | Segment::Descendant(_) => false,
    }
}

fn segments(list: &[Segment], mut flow: Flow, shape: &Shape, work: &mut f64) -> Flow {
    for segment in list {
        flow = match segment {
            Segment::Descendant(inner) => {
                // Every input node and each of its descendants; a node is reached once
                // per selected ancestor, and never more often than there are inputs.
                let repeats = flow.count.min(flow.repeats * (shape.depth + 1.0));
                let visited = (flow.count * shape.nodes).min(shape.nodes * repeats);
                *work += visited;
                let reached = Flow {
                    count: visited,
                    repeats,
                };
                match inner.as_ref() {
                    Segment::Selector(s) => {
                        selectors(std::slice::from_ref(s), reached, shape, work)
                    }
                    Segment::Selectors(s) => selectors(s, reached, shape, work),
                    nested @ Segment::Descendant(_) => {
                        segments(std::slice::from_ref(nested), reached, shape, work)
                    }
                }
            }
            Segment::Selector(s) => selectors(std::slice::from_ref(s), flow, shape, work),
            Segment::Selectors(s) => selectors(s, flow, shape, work),
        };
    }
    flow
}

/// One child segment: each selector picks among the children of every input node, and
/// a node is the child of one parent only.
fn selectors(list: &[Selector], flow: Flow, shape: &Shape, work: &mut f64) -> Flow {
    let mut count = 0.0;
    for selector in list {
        let children = (flow.count * shape.widest).min(shape.nodes * flow.repeats);
        let picked = match selector {
            Selector::Name(_) | Selector::Index(_) => flow.count.min(shape.nodes * flow.repeats),
            Selector::Wildcard | Selector::Slice(..) => children,
            Selector::Filter(filter) => {
                let each = Flow {
                    count: children,
                    repeats: flow.repeats,
                };
                filter_cost(filter, each, shape, work);
                children
            }
        };
        *work += picked;
        count += picked;
    }
    Flow {
        count,
        repeats: flow.repeats * list.len() as f64,
    }
}

/// The queries inside a filter run once per candidate: relative ones from it, absolute
/// ones from the root.
fn filter_cost(filter: &Filter, each: Flow, shape: &Shape, work: &mut f64) {
    match filter {
        Filter::Or(parts) | Filter::And(parts) => {
            for part in parts {
                filter_cost(part, each, shape, work);
            }
        }
        Filter::Atom(FilterAtom::Filter { expr, .. }) => filter_cost(expr, each, shape, work),
        Filter::Atom(FilterAtom::Test { expr, .. }) => test_cost(expr, each, shape, work),
        Filter::Atom(FilterAtom::Comparison(cmp)) => {
            let (left, right) = cmp.vals();
            for side in [left, right] {
                if let Comparable::Function(f) = side {
                    function_cost(f, each, shape, work);
                }
            }
            *work += each.count;
        }
    }
}

fn test_cost(test: &Test, each: Flow, shape: &Shape, work: &mut f64) {
    match test {
        Test::RelQuery(list) => {
            segments(list, each, shape, work);
        }
        Test::AbsQuery(query) => {
            let mut once = 0.0;
            segments(
                &query.segments,
                Flow {
                    count: 1.0,
                    repeats: 1.0,
                },
                shape,
                &mut once,
            );
            *work += once * each.count;
        }
        Test::Function(f) => function_cost(f, each, shape, work),
    }
}

fn function_cost(function: &TestFunction, each: Flow, shape: &Shape, work: &mut f64) {
    let args: Vec<&FnArg> = match function {
        TestFunction::Custom(_, args) => args.iter().collect(),
        TestFunction::Length(arg) => vec![arg.as_ref()],
        TestFunction::Value(arg) | TestFunction::Count(arg) => vec![arg],
        TestFunction::Search(a, b) | TestFunction::Match(a, b) => vec![a, b],
    };
    for arg in args {
        match arg {
            FnArg::Literal(_) => {}
            FnArg::Test(test) => test_cost(test, each, shape, work),
            FnArg::Filter(filter) => filter_cost(filter, each, shape, work),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn query(text: &str) -> JsonPathExpr {
        JsonPathExpr::parse(text).expect("valid query")
    }

    /// The nodes the library really returns, to hold the bound against.
    fn returned(q: &JsonPathExpr, doc: &Value) -> f64 {
        jsonpath_rust::query::js_path_process(&q.1, doc)
            .map(|v| v.len())
            .unwrap_or(0) as f64
    }

    /// A chain `depth` objects deep whose innermost holds an array of `leaves` numbers.
    fn deep(depth: usize, leaves: usize) -> Value {
        let mut doc = json!({ "leaves": (0..leaves).collect::<Vec<_>>() });
        for _ in 0..depth {
            doc = json!({ "a": doc, "b": 1 });
        }
        doc
    }

    #[test]
    fn the_bound_is_never_below_what_the_query_returns() {
        let docs = [
            deep(6, 5),
            deep(3, 40),
            json!({"entry": [{"resource": {"id": "1", "name": [{"family": "x"}]}}, {"resource": {"id": "2"}}]}),
            json!([[1, [2, [3, [4]]]], {"a": {"a": {"a": 1}}}]),
            json!("scalar"),
        ];
        let queries = [
            "$..*",
            "$..*..*",
            "$..*..*..*",
            "$..a..a",
            "$.entry[*].resource.id",
            "$..resource[?@.id == '1']",
            "$.entry[?@..family]",
            "$[*][*][*]",
            "$..[0,0]",
            "$..*[?count(@..*) > 1]",
            "$.a.b.c",
        ];
        for doc in &docs {
            for text in queries {
                let q = query(text);
                let bound = visit_bound(&q.1, doc);
                let real = returned(&q, doc);
                assert!(
                    bound >= real,
                    "{text} on {doc}: bound {bound} < {real} returned"
                );
            }
        }
    }

    #[test]
    fn chained_descent_on_a_deep_body_is_refused_before_it_runs() {
        // 100 levels over 10,000 leaves: `$..*..*..*` would return about 50 million nodes.
        let doc = deep(100, 10_000);
        let err = query("$..*..*..*").select(&doc).unwrap_err();
        assert!(err.contains("could visit up to"), "{err}");
        assert!(err.contains("--max-jsonpath-nodes"), "{err}");
        // One descent on the same body is fine.
        assert_eq!(query("$..leaves").select(&doc).unwrap().len(), 1);
    }

    #[test]
    fn ordinary_queries_on_a_large_bundle_fit_the_default_budget() {
        let entries: Vec<Value> = (0..2_000)
            .map(|i| {
                json!({"fullUrl": format!("urn:uuid:{i}"), "resource": {
                    "resourceType": "Practitioner", "id": i.to_string(),
                    "name": [{"family": "Smith", "given": ["A", "B"]}],
                    "identifier": [{"system": "http://hl7.org/fhir/sid/us-npi", "value": "1"}]}})
            })
            .collect();
        let bundle = json!({"resourceType": "Bundle", "entry": entries});
        for text in [
            "$..family",
            "$.entry[*].resource.id",
            "$.entry[?@.resource.resourceType == 'Practitioner']",
            "$.entry[?@..value].fullUrl",
            "$..identifier[?@.system == 'http://hl7.org/fhir/sid/us-npi'].value",
        ] {
            assert!(query(text).select(&bundle).is_ok(), "{text}");
        }
    }

    /// Any JSON up to five levels deep.
    fn any_json() -> impl proptest::strategy::Strategy<Value = Value> {
        use proptest::prelude::*;
        let leaf = prop_oneof![
            Just(Value::Null),
            any::<bool>().prop_map(Value::from),
            (-5i64..5).prop_map(Value::from),
            "[a-c]{0,2}".prop_map(Value::from),
        ];
        leaf.prop_recursive(5, 200, 6, |inner| {
            prop_oneof![
                proptest::collection::vec(inner.clone(), 0..6).prop_map(Value::Array),
                proptest::collection::btree_map("[a-c]", inner, 0..4)
                    .prop_map(|m| Value::Object(m.into_iter().collect())),
            ]
        })
    }

    /// A query of up to five segments, descents and filters included.
    fn any_query() -> impl proptest::strategy::Strategy<Value = String> {
        use proptest::prelude::*;
        let segment = prop_oneof![
            Just(".a"),
            Just(".b"),
            Just("[*]"),
            Just("..*"),
            Just("..a"),
            Just("[0]"),
            Just("[0,0]"),
            Just("[1:]"),
            Just("..[0]"),
            Just("[?@.a]"),
            Just("[?@..b]"),
            Just("[?count(@..*) > 2]"),
        ];
        proptest::collection::vec(segment, 0..6).prop_map(|s| format!("${}", s.concat()))
    }

    proptest::proptest! {
        /// The bound holds on any body for any query: never below what the query
        /// returns, so a refused query could really have been that large.
        #[test]
        fn the_bound_covers_what_any_query_returns(doc in any_json(), text in any_query()) {
            let q = query(&text);
            let bound = visit_bound(&q.1, &doc);
            let real = returned(&q, &doc);
            proptest::prop_assert!(bound >= real, "{} on {}: {} < {}", text, doc, bound, real);
        }
    }

    #[test]
    fn name_and_index_paths_skip_the_body_walk() {
        let q = query("$.entry[0].resource");
        assert_eq!(visit_bound(&q.1, &deep(50, 50)), 4.0);
    }
}
