//! FHIR JSON (a `serde_json::Value`) → FHIR XML, the way back: elements in the order
//! the definitions give (XML is ordered, JSON is not), primitives as `value`
//! attributes with their `_name` twins' `id` and extensions, element ids and
//! extension urls as attributes, resources inside `contained` and `resource`
//! elements as elements of their own type, the narrative's XHTML as it is.

use serde_json::{Map, Value};

use r4_model::{Kind, Model};

use crate::{FHIR_NS, MAX_DEPTH};

/// The FHIR XML of the FHIR JSON resource `resource`, or why it has none: a member
/// the R4 definitions do not know for its type, a value of the wrong JSON kind, a
/// nesting deeper than [`MAX_DEPTH`].
pub fn to_xml(resource: &Value) -> Result<String, String> {
    let model = r4_model::r4();
    let mut out = String::from("<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n");
    resource_element(model, resource, true, &mut out, 0)?;
    out.push('\n');
    Ok(out)
}

fn resource_element(
    model: &Model,
    resource: &Value,
    root: bool,
    out: &mut String,
    depth: usize,
) -> Result<(), String> {
    let obj = resource.as_object().ok_or("a resource is a JSON object")?;
    let rt = obj
        .get("resourceType")
        .and_then(Value::as_str)
        .ok_or("a resource without resourceType")?;
    if !model.is_resource(rt) {
        return Err(format!("`{rt}` is not an R4 resource type"));
    }
    out.push('<');
    out.push_str(rt);
    if root {
        out.push_str(" xmlns=\"");
        out.push_str(FHIR_NS);
        out.push('"');
    }
    out.push('>');
    children(model, rt, obj, out, depth + 1)?;
    out.push_str("</");
    out.push_str(rt);
    out.push('>');
    Ok(())
}

/// The elements of `obj`, an instance of `type_name`, in definition order.
fn children(
    model: &Model,
    type_name: &str,
    obj: &Map<String, Value>,
    out: &mut String,
    depth: usize,
) -> Result<(), String> {
    if depth > MAX_DEPTH {
        return Err(format!("nested more than {MAX_DEPTH} levels"));
    }
    let def = model
        .type_def(type_name)
        .ok_or_else(|| format!("no R4 type `{type_name}`"))?;
    let is_resource = def.kind == Kind::Resource;
    // Every member must be an element of the type: nothing is dropped silently.
    for key in obj.keys() {
        let base = key.strip_prefix('_').unwrap_or(key);
        if (is_resource && key == "resourceType") || key == "fhir_comments" {
            continue;
        }
        if model.property(type_name, base).is_none() {
            return Err(format!("{type_name} has no element `{base}`"));
        }
    }
    for element in &def.elements {
        // Attributes, not elements: an element's id, an extension's url.
        if (!is_resource && element.name == "id")
            || (model.is_a(type_name, "Extension") && element.name == "url")
        {
            continue;
        }
        let names: Vec<&String> = obj
            .keys()
            .filter(|k| !k.starts_with('_'))
            .chain(obj.keys().filter(|k| k.starts_with('_')))
            .filter(|k| {
                let base = k.strip_prefix('_').unwrap_or(k);
                model
                    .property(type_name, base)
                    .is_some_and(|p| std::ptr::eq(p.element, element))
            })
            .collect();
        let mut done: Vec<&str> = Vec::new();
        for key in names {
            let name = key.strip_prefix('_').unwrap_or(key);
            if done.contains(&name) {
                continue;
            }
            done.push(name);
            let property = model.property(type_name, name).ok_or("unreachable")?;
            let values = as_list(obj.get(name));
            let twins = as_list(obj.get(&format!("_{name}")));
            for i in 0..values.len().max(twins.len()) {
                let value = values.get(i).copied().filter(|v| !v.is_null());
                let twin = twins.get(i).copied().filter(|v| !v.is_null());
                if value.is_none() && twin.is_none() {
                    continue;
                }
                element_xml(model, name, property.type_code, value, twin, out, depth)?;
            }
        }
    }
    Ok(())
}

fn as_list(v: Option<&Value>) -> Vec<&Value> {
    match v {
        None => Vec::new(),
        Some(Value::Array(items)) => items.iter().collect(),
        Some(one) => vec![one],
    }
}

fn element_xml(
    model: &Model,
    name: &str,
    type_code: &str,
    value: Option<&Value>,
    twin: Option<&Value>,
    out: &mut String,
    depth: usize,
) -> Result<(), String> {
    if type_code == "xhtml" {
        // The narrative: its XHTML as written (it carries its own namespace).
        let div = value
            .and_then(Value::as_str)
            .ok_or("a narrative div is a string")?;
        out.push_str(div);
        return Ok(());
    }
    if model.is_primitive(type_code) || type_code.starts_with("System.") {
        let twin = twin
            .map(|t| t.as_object().ok_or("a `_` member is an object"))
            .transpose()?;
        out.push('<');
        out.push_str(name);
        if let Some(id) = twin.and_then(|t| t.get("id")).and_then(Value::as_str) {
            attribute(out, "id", id);
        }
        if let Some(v) = value {
            // The JSON kind the type has in FHIR JSON: XML would lose the difference.
            let wanted = match type_code {
                "boolean" | "System.Boolean" => "boolean",
                "integer" | "unsignedInt" | "positiveInt" | "decimal" | "System.Integer"
                | "System.Decimal" => "number",
                _ => "string",
            };
            let text = match (wanted, v) {
                ("string", Value::String(s)) => s.clone(),
                ("number", Value::Number(n)) => n.to_string(),
                ("boolean", Value::Bool(b)) => b.to_string(),
                (_, other) => {
                    return Err(format!(
                        "`{name}` is a {type_code}, a JSON {wanted}, not {other}"
                    ));
                }
            };
            attribute(out, "value", &text);
        }
        let extensions = twin
            .map(|t| as_list(t.get("extension")))
            .unwrap_or_default();
        if extensions.is_empty() {
            out.push_str("/>");
        } else {
            out.push('>');
            for e in extensions {
                element_xml(
                    model,
                    "extension",
                    "Extension",
                    Some(e),
                    None,
                    out,
                    depth + 1,
                )?;
            }
            out.push_str("</");
            out.push_str(name);
            out.push('>');
        }
        return Ok(());
    }
    let value = value.ok_or_else(|| format!("`{name}` has only a `_{name}`"))?;
    if type_code == "Resource" || model.is_resource(type_code) {
        out.push('<');
        out.push_str(name);
        out.push('>');
        resource_element(model, value, false, out, depth + 1)?;
        out.push_str("</");
        out.push_str(name);
        out.push('>');
        return Ok(());
    }
    let obj = value
        .as_object()
        .ok_or_else(|| format!("`{name}` is a {type_code}: a JSON object"))?;
    out.push('<');
    out.push_str(name);
    if let Some(id) = obj.get("id").and_then(Value::as_str) {
        attribute(out, "id", id);
    }
    if model.is_a(type_code, "Extension")
        && let Some(url) = obj.get("url").and_then(Value::as_str)
    {
        attribute(out, "url", url);
    }
    out.push('>');
    children(model, type_code, obj, out, depth + 1)?;
    out.push_str("</");
    out.push_str(name);
    out.push('>');
    Ok(())
}

/// ` name="value"`, escaped so that an XML reader gives back `value` exactly.
fn attribute(out: &mut String, name: &str, value: &str) {
    out.push(' ');
    out.push_str(name);
    out.push_str("=\"");
    for c in value.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\n' => out.push_str("&#10;"),
            '\r' => out.push_str("&#13;"),
            '\t' => out.push_str("&#9;"),
            c => out.push(c),
        }
    }
    out.push('"');
}
