//! Where a search parameter's value goes in an instance, read from the R4
//! SearchParameter's FHIRPath expression, and which searches must find the instance
//! and which must not.
//!
//! The expressions R4 gives are mostly paths (`Patient.name.family`), sometimes with a
//! type (`(Observation.value as Quantity)`, `.as(Period)`, `.ofType(Age)`), a target
//! (`.where(resolve() is Patient)`) or a fixed field (`.where(system='email')`). Those
//! are placed; anything else is a parameter whose value cannot be generated, said so.

use r4_model::{ElementDef, Model, SearchParam};
use serde_json::{Map, Value, json};

use super::instance::{Builder, DATE, SYSTEM, UCUM, UNIQUE, known_datatype, primitive};

/// A parameter's value placed: the part of an instance that carries it, and the
/// searches to run.
#[derive(Debug, Clone)]
pub struct Placed {
    /// Merged (RFC 7386) into the minimal instance.
    pub patch: Value,
    /// Query values that must find the instance.
    pub finds: Vec<String>,
    /// Query values that must not.
    pub misses: Vec<String>,
    /// Whether the value is the instance's alone (a generated string, identifier or
    /// reference); otherwise the searches also filter by `_id`, since other records
    /// may share it (a date, a code of a small value set).
    pub unique: bool,
}

/// One step of a path: the element, the type it has there, fields a `where` fixes.
struct Segment<'m> {
    element: &'m ElementDef,
    /// The type the path takes this element in.
    type_code: &'static str,
    /// The Reference targets a `where(resolve() is X)` keeps.
    targets: Vec<String>,
    fixed: Map<String, Value>,
    /// The type the element belongs to (for its binding path).
    owner: String,
}

impl Segment<'_> {
    /// Takes the element as one of its types (`as Quantity`, `.ofType(Age)`); that
    /// type, or why the element has no such type.
    fn cast(&mut self, code: &str) -> Result<&'static str, String> {
        let t = self
            .element
            .types
            .iter()
            .find(|t| t.code == code)
            .ok_or_else(|| format!("{} has no type {code}", self.element.name))?;
        self.type_code = t.code;
        Ok(t.code)
    }
}

/// Places `param` in an instance of `resource_type`, or says why it cannot.
pub fn place(
    builder: &mut Builder<'_>,
    resource_type: &str,
    param: &SearchParam,
) -> Result<Placed, String> {
    if matches!(param.kind, "composite" | "special") {
        return Err(format!(
            "a {} parameter: no value is generated for it",
            param.kind
        ));
    }
    let alternatives: Vec<&str> = param
        .expression
        .split('|')
        .map(str::trim)
        .filter(|a| {
            let a = a.trim_start_matches('(');
            a.starts_with(&format!("{resource_type}."))
                || a.starts_with("Resource.")
                || a.starts_with("DomainResource.")
        })
        .collect();
    let Some(first) = alternatives.first() else {
        return Err(format!(
            "its expression `{}` names no path in {resource_type}",
            param.expression
        ));
    };
    let segments = parse(builder.model, resource_type, first, param)
        .map_err(|why| format!("expression `{first}`: {why}"))?;
    let last = segments.last().ok_or("an empty path")?;
    let binding = format!("{}.{}", last.owner, last.element.name);
    let (leaf, finds, misses, unique) = value_for(builder, param, last, &binding)?;
    let patch = wrap(builder, &segments, leaf)?;
    Ok(Placed {
        patch,
        finds,
        misses,
        unique,
    })
}

/// The segments of one expression alternative.
fn parse<'m>(
    model: &'m Model,
    resource_type: &str,
    text: &str,
    param: &SearchParam,
) -> Result<Vec<Segment<'m>>, String> {
    let mut text = text.trim();
    // `(X.y as T)` and `X.y as T`.
    while text.starts_with('(') && text.ends_with(')') {
        text = text[1..text.len() - 1].trim();
    }
    let mut cast: Option<String> = None;
    if let Some((path, ty)) = text.rsplit_once(" as ") {
        cast = Some(ty.trim().to_owned());
        text = path.trim();
    }
    let parts = split_dots(text);
    let mut segments: Vec<Segment<'m>> = Vec::new();
    let mut type_name = resource_type.to_owned();
    for (i, part) in parts.iter().enumerate() {
        if i == 0 {
            if !matches!(part.as_str(), "Resource" | "DomainResource") && part != resource_type {
                return Err(format!("starts with {part}"));
            }
            continue;
        }
        if let Some(inner) = call(part, "as").or_else(|| call(part, "ofType")) {
            let seg = segments.last_mut().ok_or("a cast before any element")?;
            type_name = seg.cast(inner)?.to_owned();
            continue;
        }
        if let Some(inner) = call(part, "where") {
            let seg = segments.last_mut().ok_or("a where() before any element")?;
            if let Some(target) = inner.strip_prefix("resolve() is ") {
                seg.targets = vec![target.trim().to_owned()];
            } else if let Some((field, value)) = inner.split_once('=') {
                let value = value.trim().trim_matches('\'');
                let field = field.trim();
                if !field.chars().all(|c| c.is_ascii_alphanumeric()) {
                    return Err(format!("where({inner}) is not a field test"));
                }
                seg.fixed.insert(field.to_owned(), json!(value));
            } else {
                return Err(format!("where({inner}) is not understood"));
            }
            continue;
        }
        if !part.chars().all(|c| c.is_ascii_alphanumeric()) {
            return Err(format!("`{part}` is not an element"));
        }
        let element = element_of(model, &type_name, part)
            .ok_or_else(|| format!("{type_name} has no element {part}"))?;
        let type_code = choose_type(element, param.kind)
            .ok_or_else(|| format!("{part} has no type a {} value fits", param.kind))?;
        segments.push(Segment {
            element,
            type_code,
            targets: Vec::new(),
            fixed: Map::new(),
            owner: type_name.clone(),
        });
        type_name = type_code.to_owned();
    }
    if let Some(cast) = cast {
        let seg = segments.last_mut().ok_or("a cast of nothing")?;
        seg.cast(&cast)?;
    }
    if segments.is_empty() {
        return Err("no element".to_owned());
    }
    Ok(segments)
}

/// `name(inner)` → `inner`.
fn call<'a>(part: &'a str, name: &str) -> Option<&'a str> {
    part.strip_prefix(name)?
        .strip_prefix('(')?
        .strip_suffix(')')
}

/// Splits on dots outside parentheses and quotes.
fn split_dots(text: &str) -> Vec<String> {
    let (mut parts, mut cur, mut depth, mut quoted) = (Vec::new(), String::new(), 0i32, false);
    for c in text.chars() {
        match c {
            '\'' => quoted = !quoted,
            '(' if !quoted => depth += 1,
            ')' if !quoted => depth -= 1,
            '.' if depth == 0 && !quoted => {
                parts.push(std::mem::take(&mut cur).trim().to_owned());
                continue;
            }
            _ => {}
        }
        cur.push(c);
    }
    parts.push(cur.trim().to_owned());
    parts
}

/// An element of a type or of the types it derives from.
pub fn element_of<'m>(model: &'m Model, type_name: &str, name: &str) -> Option<&'m ElementDef> {
    model
        .chain(type_name)
        .find_map(|def| def.elements.iter().find(|e| e.name == name))
}

/// The type a path takes through an element: its only one, or for a choice the one a
/// value of this kind fits best.
fn choose_type(element: &ElementDef, kind: &str) -> Option<&'static str> {
    let codes: Vec<&'static str> = element.types.iter().map(|t| t.code).collect();
    if codes.len() == 1 {
        return codes.first().copied();
    }
    let wanted: &[&str] = match kind {
        "date" => &["dateTime", "Period", "date", "instant", "Timing"],
        "quantity" => &["Quantity", "Age", "Range"],
        "number" => &["decimal", "integer"],
        "token" => &[
            "CodeableConcept",
            "Coding",
            "Identifier",
            "boolean",
            "code",
            "string",
        ],
        "string" => &["string", "HumanName", "Address", "markdown"],
        "reference" => &["Reference"],
        "uri" => &["uri", "url", "canonical"],
        _ => &[],
    };
    wanted
        .iter()
        .find_map(|w| codes.iter().copied().find(|c| c == w))
}

type Leaf = (Value, Vec<String>, Vec<String>, bool);

/// The value at the end of the path, and the searches for it.
fn value_for(
    builder: &mut Builder<'_>,
    param: &SearchParam,
    seg: &Segment<'_>,
    binding: &str,
) -> Result<Leaf, String> {
    let ty = seg.type_code;
    let strings = |v: &[&str]| v.iter().map(|s| (*s).to_owned()).collect::<Vec<String>>();
    let unsupported = || {
        Err(format!(
            "a {} parameter on an element of type {ty}: no value is generated for it",
            param.kind
        ))
    };
    Ok(match param.kind {
        "string" => match ty {
            "HumanName" => (
                json!({ "family": UNIQUE }),
                strings(&[UNIQUE]),
                vec![format!("{UNIQUE}zz")],
                true,
            ),
            "Address" => (
                json!({ "city": UNIQUE }),
                strings(&[UNIQUE]),
                vec![format!("{UNIQUE}zz")],
                true,
            ),
            "string" | "markdown" => (
                json!(UNIQUE),
                strings(&[UNIQUE]),
                vec![format!("{UNIQUE}zz")],
                true,
            ),
            _ => return unsupported(),
        },
        "token" => {
            if let Some(b) = builder.model.required_binding(binding) {
                // org-2: an organization's address is never `home`; `work` suits
                // every owner of an Address.
                let first = if binding.ends_with("Address.use") {
                    b.codes
                        .iter()
                        .find(|(_, c)| *c == "work")
                        .or(b.codes.first())
                } else {
                    b.codes.first()
                };
                let Some((system, code)) = first else {
                    return Err(format!(
                        "its required value set {} cannot be expanded offline",
                        b.value_set
                    ));
                };
                let value = match ty {
                    "CodeableConcept" => json!({ "coding": [{ "system": system, "code": code }] }),
                    "Coding" => json!({ "system": system, "code": code }),
                    _ => json!(code),
                };
                let misses = b
                    .codes
                    .iter()
                    .find(|(_, c)| c != code)
                    .map(|(_, c)| vec![(*c).to_owned()])
                    .unwrap_or_default();
                let finds = if ty == "code" {
                    vec![(*code).to_owned()]
                } else {
                    vec![(*code).to_owned(), format!("{system}|{code}")]
                };
                return Ok((value, finds, misses, false));
            }
            match ty {
                "boolean" => (json!(true), strings(&["true"]), strings(&["false"]), false),
                "Identifier" => (
                    json!({ "system": SYSTEM, "value": "{{ u }}" }),
                    vec![format!("{SYSTEM}|{{{{ u }}}}"), "{{ u }}".to_owned()],
                    vec![format!("{SYSTEM}|{{{{ u }}}}x")],
                    true,
                ),
                "CodeableConcept" => (
                    json!({ "coding": [{ "system": SYSTEM, "code": "c{{ u }}" }] }),
                    vec![format!("{SYSTEM}|c{{{{ u }}}}"), "c{{ u }}".to_owned()],
                    vec![format!("{SYSTEM}|c{{{{ u }}}}x")],
                    true,
                ),
                "Coding" => (
                    json!({ "system": SYSTEM, "code": "c{{ u }}" }),
                    vec![format!("{SYSTEM}|c{{{{ u }}}}"), "c{{ u }}".to_owned()],
                    vec![format!("{SYSTEM}|c{{{{ u }}}}x")],
                    true,
                ),
                "ContactPoint" => {
                    let system = seg
                        .fixed
                        .get("system")
                        .and_then(Value::as_str)
                        .unwrap_or("email");
                    (
                        json!({ "system": system, "value": "fc{{ u }}@example.org" }),
                        strings(&["fc{{ u }}@example.org"]),
                        strings(&["fc{{ u }}x@example.org"]),
                        true,
                    )
                }
                "code" | "string" | "id" | "uri" => (
                    json!("c{{ u }}"),
                    strings(&["c{{ u }}"]),
                    strings(&["c{{ u }}x"]),
                    true,
                ),
                _ => return unsupported(),
            }
        }
        "reference" => {
            if ty != "Reference" {
                return unsupported();
            }
            let allowed: Vec<String> = if !seg.targets.is_empty() {
                seg.targets.clone()
            } else {
                let on_element: Vec<&str> = seg
                    .element
                    .types
                    .iter()
                    .flat_map(|t| t.targets.iter().copied())
                    .collect();
                let from_param: Vec<&str> = param.targets.to_vec();
                let mut both: Vec<String> = from_param
                    .iter()
                    .filter(|t| on_element.is_empty() || on_element.contains(t))
                    .map(|t| (*t).to_owned())
                    .collect();
                if both.is_empty() {
                    both = on_element.iter().map(|t| (*t).to_owned()).collect();
                }
                both
            };
            let any = allowed.is_empty() || allowed.iter().any(|t| t == "Resource");
            let allowed: Vec<String> = match &builder.reference_target {
                // A `_revinclude` test: the reference must point at this type.
                Some(t) if any || allowed.contains(t) => vec![t.clone()],
                Some(t) => {
                    return Err(format!(
                        "it cannot refer to a {t} (only to {})",
                        allowed.join(" or ")
                    ));
                }
                // Any resource (`Reference(Any)`): the common types first.
                None if any => [
                    "Patient",
                    "Organization",
                    "Location",
                    "Practitioner",
                    "Device",
                    "Group",
                ]
                .iter()
                .map(|t| (*t).to_owned())
                .collect(),
                None => allowed,
            };
            let mut ordered: Vec<String> = allowed
                .iter()
                .filter(|t| t.as_str() == "Patient")
                .cloned()
                .collect();
            ordered.extend(allowed.iter().filter(|t| t.as_str() != "Patient").cloned());
            for target in ordered {
                if !builder.creatable.contains(&target) || !builder.model.is_resource(&target) {
                    continue;
                }
                if let (Some(var), ty) = builder.prerequisite(&target)? {
                    let reference = format!("{ty}/{{{{ {var} }}}}");
                    return Ok((
                        json!({ "reference": reference }),
                        vec![reference],
                        vec![format!("{ty}/x{{{{ u }}}}")],
                        true,
                    ));
                }
            }
            return Err(format!(
                "a reference to {}: the server declares create for none of them that can be built",
                allowed.join(" or ")
            ));
        }
        "date" => {
            // The day every generated date holds (an instant at its noon); a Period
            // that starts and ends on it.
            let value = match ty {
                "date" | "dateTime" | "instant" => primitive(ty),
                "Timing" => known_datatype(ty),
                "Period" => Some(json!({ "start": DATE, "end": DATE })),
                _ => None,
            };
            let Some(value) = value else {
                return unsupported();
            };
            (
                value,
                strings(&["2021-03-04", "eq2021-03-04", "le2021-03-04", "ge2021-03-04"]),
                strings(&["2021-03-05", "lt2021-03-04", "gt2021-03-04"]),
                false,
            )
        }
        "number" => match ty {
            "integer" | "positiveInt" | "unsignedInt" | "decimal" => (
                json!(7),
                strings(&["7", "ge7", "le7"]),
                strings(&["8", "gt7", "lt7"]),
                false,
            ),
            _ => return unsupported(),
        },
        "quantity" => {
            // The instance builder's quantities: 7 of a UCUM unit fit for the type.
            let value = match ty {
                "Quantity" | "SimpleQuantity" | "Age" | "Duration" => known_datatype(ty),
                _ => None,
            };
            let Some(value) = value else {
                return unsupported();
            };
            let unit = value["code"].as_str().unwrap_or_default().to_owned();
            (
                value,
                vec!["7".to_owned(), format!("7|{UCUM}|{unit}"), "le7".to_owned()],
                vec![format!("8|{UCUM}|{unit}"), "gt7".to_owned()],
                false,
            )
        }
        "uri" => match ty {
            "uri" | "url" | "canonical" => {
                let v = format!("{SYSTEM}/{{{{ u }}}}");
                (json!(v), vec![v.clone()], vec![format!("{v}x")], true)
            }
            _ => return unsupported(),
        },
        _ => return unsupported(),
    })
}

/// The leaf value wrapped in its path, each level an array where the element repeats,
/// and each backbone level given its own required elements.
fn wrap(builder: &mut Builder<'_>, segments: &[Segment<'_>], leaf: Value) -> Result<Value, String> {
    let mut value = leaf;
    for (i, seg) in segments.iter().enumerate().rev() {
        if let (Value::Object(obj), false) = (&mut value, seg.fixed.is_empty()) {
            for (k, v) in &seg.fixed {
                obj.insert(k.clone(), v.clone());
            }
        }
        // A level above the leaf: its own required elements, then the path's child.
        if i + 1 < segments.len() && !builder.model.is_primitive(seg.type_code) {
            let mut base = builder.typed(
                seg.type_code,
                &[],
                &format!("{}.{}", seg.owner, seg.element.name),
                &seg.owner,
                1,
            )?;
            super::instance::merge_value(builder.model, seg.type_code, &mut base, &value);
            value = base;
        }
        let name = if seg.element.choice {
            format!(
                "{}{}",
                seg.element.name,
                super::instance::upper_first(seg.type_code)
            )
        } else {
            seg.element.name.to_owned()
        };
        let v = if seg.element.many {
            json!([value])
        } else {
            value
        };
        value = json!({ name: v });
    }
    Ok(value)
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeSet;

    use super::*;

    fn placed(ty: &str, code: &str) -> Result<(Placed, usize), String> {
        let model = r4_model::r4();
        let creatable: BTreeSet<String> = ["Patient", "Practitioner", "Organization", "Substance"]
            .iter()
            .map(|s| (*s).to_owned())
            .collect();
        let mut b = Builder::new(model, &creatable);
        let param = model
            .search_params(ty)
            .into_iter()
            .find(|p| p.code == code)
            .unwrap();
        place(&mut b, ty, param).map(|p| (p, b.prerequisites.len()))
    }

    #[test]
    fn paths_types_targets_and_fixed_fields_are_placed() {
        let (p, _) = placed("Patient", "family").unwrap();
        assert_eq!(p.patch, json!({ "name": [{ "family": UNIQUE }] }));
        assert!(p.unique);
        let (p, _) = placed("Patient", "birthdate").unwrap();
        assert_eq!(p.patch, json!({ "birthDate": DATE }));
        assert!(!p.unique);
        let (p, _) = placed("Patient", "email").unwrap();
        assert_eq!(p.patch["telecom"][0]["system"], "email");
        // One of a choice inside a backbone replaces the one the backbone had.
        let (p, _) = placed("Medication", "ingredient").unwrap();
        let item = p.patch["ingredient"][0].as_object().unwrap();
        assert!(
            item.contains_key("itemReference") && !item.contains_key("itemCodeableConcept"),
            "{item:?}"
        );
        // A bound code: found by its code, missed by another of the value set.
        let (p, _) = placed("Patient", "address-use").unwrap();
        assert_eq!(p.patch["address"][0]["use"], "work");
        assert_eq!(p.misses, ["home"]);
        let (p, _) = placed("Patient", "gender").unwrap();
        assert_eq!(p.patch, json!({ "gender": "male" }));
        assert_eq!(p.misses, ["female"]);
        let (p, refs) = placed("Patient", "general-practitioner").unwrap();
        assert_eq!(
            p.patch["generalPractitioner"][0]["reference"],
            "Practitioner/{{ refPractitioner }}"
        );
        assert_eq!(refs, 1);
        let (p, _) = placed("Observation", "value-quantity").unwrap();
        assert_eq!(p.patch["valueQuantity"]["value"], 7);
        let (p, refs) = placed("Observation", "patient").unwrap();
        assert_eq!(p.patch["subject"]["reference"], "Patient/{{ refPatient }}");
        assert_eq!(refs, 1);
        let (p, _) = placed("Observation", "date").unwrap();
        assert_eq!(p.patch["effectiveDateTime"], DATE);
        let (p, _) = placed("Patient", "_tag").unwrap();
        assert_eq!(p.patch["meta"]["tag"][0]["code"], "c{{ u }}");
    }

    #[test]
    fn what_cannot_be_placed_says_why() {
        let why = placed("Patient", "deceased").unwrap_err();
        assert!(why.contains("expression"), "{why}");
        // Composite parameters.
        let why = placed("Observation", "code-value-quantity").unwrap_err();
        assert!(why.contains("composite"), "{why}");
        // A reference to a type the server does not let us create.
        let why = placed("Observation", "device").unwrap_err();
        assert!(why.contains("Device"), "{why}");
    }
}
