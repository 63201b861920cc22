//! A minimal valid instance of an R4 resource type, built from the type model: its
//! required elements only (recursively), each given a value its type and required
//! binding allow. A required reference points at another resource the scenario creates
//! first (a [`Prerequisite`]). Values that must differ from run to run carry the
//! scenario variable `u` (`{{ u }}`), which the generated file defines.

use std::collections::BTreeSet;

use r4_model::{ElementDef, Kind, Model};
use serde_json::{Map, Value, json};

/// The system of the codes, identifiers and URLs the generator invents.
pub const SYSTEM: &str = "http://fhirconf.dev/capability";
/// UCUM, for quantities.
pub const UCUM: &str = "http://unitsofmeasure.org";
/// The one date every generated date-valued element holds.
pub const DATE: &str = "2021-03-04";
/// A string no other record holds: `Fc` and the scenario's unique variable.
pub const UNIQUE: &str = "Fc{{ u }}";

/// A resource a generated instance refers to, created by the scenario before it.
#[derive(Debug, Clone, PartialEq)]
pub struct Prerequisite {
    /// The variable its id is captured into (`ref1`).
    pub var: String,
    pub resource_type: String,
    pub body: Value,
}

/// What the builder may use: the model, and the types the server lets us create (a
/// reference target must be one of them).
pub struct Builder<'m> {
    pub model: &'m Model,
    pub creatable: &'m BTreeSet<String>,
    pub prerequisites: Vec<Prerequisite>,
    /// Whether a required reference may create a prerequisite.
    pub may_refer: bool,
    /// How many prerequisites deep this builder is.
    depth: usize,
    /// When set, a placed reference points at this type (a `_revinclude` test).
    pub reference_target: Option<String>,
}

/// How deep required elements may nest before the builder gives up (R4's deepest
/// required chain is far shallower; this bounds a cycle of required elements).
const MAX_DEPTH: usize = 8;

/// Reference targets in the order the builder tries them: common, simple types first;
/// Practitioner late, since servers often require more of it than R4 does (US Core's
/// identifier and name, the sandbox's Canvas telecom).
const PREFERRED_TARGETS: &[&str] = &[
    "Patient",
    "Organization",
    "Location",
    "Device",
    "Group",
    "RelatedPerson",
    "Practitioner",
    "PractitionerRole",
    "Medication",
    "Substance",
    "Encounter",
];

impl<'m> Builder<'m> {
    pub fn new(model: &'m Model, creatable: &'m BTreeSet<String>) -> Self {
        Builder {
            model,
            creatable,
            prerequisites: Vec::new(),
            may_refer: true,
            depth: 0,
            reference_target: None,
        }
    }

    /// The minimal instance of `resource_type`, or why none can be built: its
    /// required elements, what some of R4's invariants ask beyond them, and a check of
    /// every invariant of the type.
    pub fn resource(&mut self, resource_type: &str) -> Result<Value, String> {
        if !self.model.is_resource(resource_type) {
            return Err(format!("{resource_type} is not an R4 resource type"));
        }
        let mut body = self.complex(resource_type, resource_type, 0)?;
        if let Value::Object(map) = &mut body {
            map.shift_insert(0, "resourceType".into(), json!(resource_type));
        }
        satisfy_invariants(resource_type, &mut body);
        broken_invariant(self.model, resource_type, &body)?;
        Ok(body)
    }

    /// A value for a type with elements: its required elements, or, when it has none
    /// (an element must have a value or children), the first simple optional one.
    fn complex(&mut self, type_name: &str, path: &str, depth: usize) -> Result<Value, String> {
        if depth > MAX_DEPTH {
            return Err(format!("{path}: required elements nest too deep"));
        }
        if let Some(v) = known_datatype(type_name) {
            return Ok(v);
        }
        let def = self
            .model
            .type_def(type_name)
            .ok_or_else(|| format!("{path}: unknown type {type_name}"))?;
        let mut out = Map::new();
        for e in self.all_elements(type_name) {
            if e.min == 0 || matches!(e.name, "id" | "extension" | "modifierExtension") {
                continue;
            }
            let (json_name, value) =
                self.element(type_name, e, &format!("{path}.{}", e.name), depth)?;
            out.insert(json_name, value);
        }
        if out.is_empty() && def.kind != Kind::Resource {
            // A backbone element with nothing required: one simple optional element.
            let simple = self.all_elements(type_name).into_iter().find(|e| {
                !matches!(e.name, "id" | "extension" | "modifierExtension")
                    && e.types.len() == 1
                    && self.model.is_primitive(e.types[0].code)
            });
            if let Some(e) = simple {
                let (json_name, value) =
                    self.element(type_name, e, &format!("{path}.{}", e.name), depth)?;
                out.insert(json_name, value);
            }
        }
        Ok(Value::Object(out))
    }

    /// The elements of a type and of the types it derives from, base first.
    fn all_elements(&self, type_name: &str) -> Vec<&'m ElementDef> {
        let chain: Vec<_> = self.model.chain(type_name).collect();
        chain
            .into_iter()
            .rev()
            .flat_map(|d| d.elements.iter())
            .collect()
    }

    /// A required element's JSON name and value (an array when it repeats).
    fn element(
        &mut self,
        owner: &str,
        e: &ElementDef,
        path: &str,
        depth: usize,
    ) -> Result<(String, Value), String> {
        let binding_path = format!("{owner}.{}", e.name);
        // A choice: the first of its types the builder can fill.
        let mut last_err = String::new();
        let mut order: Vec<&r4_model::ElementType> = e.types.iter().collect();
        order.sort_by_key(|t| choice_rank(t.code));
        for t in order {
            match self.typed(t.code, &t.targets, &binding_path, path, depth) {
                Ok(v) => {
                    let name = if e.choice {
                        format!("{}{}", e.name, upper_first(t.code))
                    } else {
                        e.name.to_owned()
                    };
                    let v = if e.many { json!([v]) } else { v };
                    return Ok((name, v));
                }
                Err(why) => last_err = why,
            }
        }
        Err(if last_err.is_empty() {
            format!("{path}: no type")
        } else {
            last_err
        })
    }

    /// A value of one type, for the element at `binding_path` (its required binding).
    pub fn typed(
        &mut self,
        code: &str,
        targets: &[&str],
        binding_path: &str,
        path: &str,
        depth: usize,
    ) -> Result<Value, String> {
        let bound = self.model.required_binding(binding_path);
        if let Some(b) = bound {
            let Some((system, first)) = b.codes.first() else {
                return Err(format!(
                    "{path}: its required value set {} cannot be expanded offline",
                    b.value_set
                ));
            };
            return Ok(match code {
                "CodeableConcept" => json!({ "coding": [{ "system": system, "code": first }] }),
                "Coding" => json!({ "system": system, "code": first }),
                _ => json!(first),
            });
        }
        if code == "Reference" {
            return self.reference(targets, path);
        }
        if let Some(v) = primitive(code) {
            return Ok(v);
        }
        if code == "Resource" || self.model.is_resource(code) {
            return Err(format!("{path}: a required contained resource"));
        }
        self.complex(code, path, depth + 1)
    }

    /// A reference to a resource of one of `targets` that the scenario creates first.
    fn reference(&mut self, targets: &[&str], path: &str) -> Result<Value, String> {
        if !self.may_refer {
            return Err(format!(
                "{path}: a required reference, two levels below the resource under test"
            ));
        }
        let any = targets.is_empty() || targets.contains(&"Resource");
        let mut candidates: Vec<&str> = PREFERRED_TARGETS
            .iter()
            .copied()
            .filter(|t| any || targets.contains(t))
            .collect();
        let rest: Vec<&str> = targets
            .iter()
            .copied()
            .filter(|t| !candidates.contains(t))
            .collect();
        candidates.extend(rest);
        for target in candidates {
            if !self.creatable.contains(target) || !self.model.is_resource(target) {
                continue;
            }
            let (var, ty) = self.prerequisite(target)?;
            if let Some(var) = var {
                return Ok(json!({ "reference": format!("{ty}/{{{{ {var} }}}}") }));
            }
        }
        Err(format!(
            "{path}: a required reference to {} and the server declares create for none of them that can be built",
            if any {
                "any resource".to_owned()
            } else {
                targets.join(" or ")
            }
        ))
    }

    /// A prerequisite of type `target`, added (or an existing one of that type reused);
    /// its variable, or `None` when its own instance cannot be built.
    pub fn prerequisite(&mut self, target: &str) -> Result<(Option<String>, String), String> {
        if let Some(p) = self
            .prerequisites
            .iter()
            .find(|p| p.resource_type == target)
        {
            return Ok((Some(p.var.clone()), target.to_owned()));
        }
        // The target's own references become prerequisites too, created before it,
        // one level deep (a Coverage refers to a Patient and an Organization).
        let before = self.prerequisites.len();
        let mut inner = Builder {
            model: self.model,
            creatable: self.creatable,
            prerequisites: std::mem::take(&mut self.prerequisites),
            may_refer: self.may_refer && self.depth == 0,
            depth: self.depth + 1,
            reference_target: None,
        };
        let built = inner.resource(target);
        self.prerequisites = inner.prerequisites;
        match built {
            Ok(body) => {
                // One prerequisite per type, named by it: instances built apart (the
                // minimal one, a search value's) agree on what `refPatient` is.
                let var = format!("ref{target}");
                self.prerequisites.push(Prerequisite {
                    var: var.clone(),
                    resource_type: target.to_owned(),
                    body,
                });
                Ok((Some(var), target.to_owned()))
            }
            Err(_) => {
                // What the failed target added goes with it.
                self.prerequisites.truncate(before);
                Ok((None, target.to_owned()))
            }
        }
    }
}

/// What some R4 invariants ask of an instance beyond its required elements, for the
/// types whose minimal instance would break them (the rest are checked by
/// [`broken_invariant`] and skipped with the reason).
fn satisfy_invariants(resource_type: &str, body: &mut Value) {
    let concept =
        |system: &str, code: &str| json!({ "coding": [{ "system": system, "code": code }] });
    match resource_type {
        // app-1: a participant has a type or an actor.
        "Appointment" => {
            if let Some(p) = body.pointer_mut("/participant/0") {
                p["type"] = json!([concept(
                    "http://terminology.hl7.org/CodeSystem/v3-ParticipationType",
                    "ATND"
                )]);
            }
        }
        // ait-1: clinicalStatus unless entered in error.
        "AllergyIntolerance" => {
            body["clinicalStatus"] = concept(
                "http://terminology.hl7.org/CodeSystem/allergyintolerance-clinical",
                "active",
            );
        }
        // bdl-9, -10, -11: a document needs an identifier, a timestamp and a Composition.
        "Bundle" => body["type"] = json!("collection"),
        // ppc-1: a policy or a policy rule.
        "Consent" => {
            body["policyRule"] =
                concept("http://terminology.hl7.org/CodeSystem/v3-ActCode", "OPTIN")
        }
        // ipn-1, org-1: a name or an identifier.
        "InsurancePlan" | "Organization" => body["name"] = json!(UNIQUE),
        // apr-1: a participant type or an actor.
        "AppointmentResponse" => {
            body["participantType"] = json!([concept(
                "http://terminology.hl7.org/CodeSystem/v3-ParticipationType",
                "ATND"
            )]);
        }
        // cpb-1, cpb-2 (tcp-2): what the statement is about; a description.
        // cpb-14, tcp-3: an `instance` statement needs an implementation; a
        // `requirements` one does not.
        "CapabilityStatement" => {
            body["kind"] = json!("requirements");
            body["description"] = json!("fhirconf");
            body["rest"] = json!([{ "mode": "server" }]);
        }
        "TerminologyCapabilities" => {
            body["kind"] = json!("requirements");
            body["description"] = json!("fhirconf");
        }
        // sdf-6 and the rules of a constraint: a profile of Basic with a differential.
        "StructureDefinition" => {
            body["kind"] = json!("resource");
            body["abstract"] = json!(false);
            body["type"] = json!("Basic");
            body["derivation"] = json!("constraint");
            body["baseDefinition"] = json!("http://hl7.org/fhir/StructureDefinition/Basic");
            body["differential"] = json!({ "element": [{ "id": "Basic", "path": "Basic" }] });
        }
        // imr-1: a vaccine code or a target disease.
        "ImmunizationRecommendation" => {
            if let Some(r) = body.pointer_mut("/recommendation/0") {
                r["vaccineCode"] = json!([concept(SYSTEM, "c{{ u }}")]);
            }
        }
        // R4 requires a characteristic (1..*); the definitions the model is generated
        // from carry R5's EvidenceVariable, where it is optional.
        "EvidenceVariable" => {
            body["characteristic"] =
                json!([{ "definitionCodeableConcept": concept(SYSTEM, "c{{ u }}") }]);
        }
        // lnk-1: at least two items.
        "Linkage" => {
            if let Some(Value::Array(items)) = body.get_mut("item")
                && let Some(first) = items.first().cloned()
            {
                let mut second = first;
                second["type"] = json!("alternate");
                items.push(second);
            }
        }
        _ => {}
    }
}

/// The first of the type's error-level invariants that `body` breaks, as the reason a
/// scenario is not generated: a server may refuse such an instance, and rightly.
pub fn broken_invariant(model: &Model, resource_type: &str, body: &Value) -> Result<(), String> {
    let input = fhirpath::Input::new(body);
    let vars = fhirpath::Variables::default();
    for (inv, expr) in parsed_invariants(model, resource_type).iter() {
        let Some(expr) = expr else {
            continue;
        };
        // An invariant the engine cannot evaluate is not held against the instance.
        if let Ok(Some(false)) = expr.evaluate(&input, &vars).and_then(|c| c.as_boolean()) {
            return Err(format!(
                "it would break R4 invariant {} ({}: {})",
                inv.key, inv.path, inv.expression
            ));
        }
    }
    Ok(())
}

type ParsedInvariants = Vec<(&'static r4_model::Invariant, Option<fhirpath::Expression>)>;

/// The invariants of a type as `path.all(expression)`, parsed once per process (the
/// suite checks each type's instances many times; one that does not parse is `None`).
fn parsed_invariants(model: &Model, resource_type: &str) -> std::sync::Arc<ParsedInvariants> {
    use std::collections::HashMap;
    use std::sync::{Arc, Mutex, OnceLock};
    static CACHE: OnceLock<Mutex<HashMap<String, Arc<ParsedInvariants>>>> = OnceLock::new();
    let cache = CACHE.get_or_init(Mutex::default);
    if let Some(known) = cache
        .lock()
        .unwrap_or_else(|e| e.into_inner())
        .get(resource_type)
    {
        return Arc::clone(known);
    }
    let parsed: ParsedInvariants = model
        .invariants(resource_type)
        .iter()
        .map(|inv| {
            let text = format!("{}.all({})", inv.path, inv.expression);
            (inv, fhirpath::Expression::parse(&text).ok())
        })
        .collect();
    let parsed = Arc::new(parsed);
    cache
        .lock()
        .unwrap_or_else(|e| e.into_inner())
        .insert(resource_type.to_owned(), Arc::clone(&parsed));
    parsed
}

/// Merges a placed search value into an instance (RFC 7386), dropping the other types of
/// a choice element it sets (`medicationReference` replaces `medicationCodeableConcept`:
/// R4 allows one).
pub fn merge_value(model: &Model, resource_type: &str, body: &mut Value, patch: &Value) {
    if let (Value::Object(target), Value::Object(add)) = (&mut *body, patch) {
        for key in add.keys() {
            let Some(p) = model.property(resource_type, key) else {
                continue;
            };
            if !p.element.choice {
                continue;
            }
            let element = p.element.name;
            target.retain(|k, _| {
                k == key
                    || model
                        .property(resource_type, k)
                        .is_none_or(|q| !q.element.choice || q.element.name != element)
            });
        }
    }
    crate::scenario::load::merge_patch(body, patch);
}

/// A search value placed in a resource ([`merge_value`]), and what an R4 invariant
/// then asks of the rest: app-2, an Appointment given a start (the `date` parameter)
/// ends then too.
pub fn place_value(model: &Model, resource_type: &str, body: &mut Value, patch: &Value) {
    merge_value(model, resource_type, body, patch);
    if resource_type == "Appointment" {
        match (body.get("start").cloned(), body.get("end").cloned()) {
            (Some(start), None) => body["end"] = start,
            (None, Some(end)) => body["start"] = end,
            _ => {}
        }
    }
}

/// Choice types in the order the builder prefers them.
fn choice_rank(code: &str) -> u8 {
    match code {
        "CodeableConcept" => 0,
        "string" => 1,
        "boolean" => 2,
        "dateTime" | "date" => 3,
        "Quantity" => 4,
        "Reference" => 9,
        _ => 5,
    }
}

/// `valueQuantity` from `value` and `Quantity`.
pub fn upper_first(code: &str) -> String {
    let mut c = code.chars();
    match c.next() {
        Some(f) => f.to_ascii_uppercase().to_string() + c.as_str(),
        None => String::new(),
    }
}

/// A value of a primitive type, valid for its regex and the usual invariants.
pub fn primitive(code: &str) -> Option<Value> {
    Some(match code {
        "boolean" => json!(true),
        "integer" | "positiveInt" | "unsignedInt" => json!(1),
        "decimal" => json!(2),
        "string" | "markdown" => json!(UNIQUE),
        "code" => json!("fhirconf"),
        "id" => json!("fhirconf"),
        "uri" | "url" | "canonical" => json!(format!("{SYSTEM}/{{{{ u }}}}")),
        "oid" => json!("urn:oid:1.2.3.4"),
        "uuid" => json!("urn:uuid:00000000-0000-4000-8000-{{ u }}"),
        "date" | "dateTime" => json!(DATE),
        "instant" => json!("2021-03-04T12:00:00Z"),
        "time" => json!("10:30:00"),
        "base64Binary" => json!("ZmhpcmNvbmY="),
        "xhtml" => json!("<div xmlns=\"http://www.w3.org/1999/xhtml\">fhirconf</div>"),
        _ => return None,
    })
}

/// Datatypes whose required elements alone would break an invariant, or that read
/// better filled by hand.
pub fn known_datatype(code: &str) -> Option<Value> {
    let quantity = json!({ "value": 7, "unit": "mg", "system": UCUM, "code": "mg" });
    Some(match code {
        "Quantity" | "SimpleQuantity" | "MoneyQuantity" => quantity,
        // age-1, drt-1, dis-1, cnt-3: UCUM codes of the right dimension.
        "Age" => json!({ "value": 7, "unit": "a", "system": UCUM, "code": "a" }),
        "Duration" => json!({ "value": 7, "unit": "min", "system": UCUM, "code": "min" }),
        "Distance" => json!({ "value": 7, "unit": "m", "system": UCUM, "code": "m" }),
        "Count" => json!({ "value": 7, "unit": "1", "system": UCUM, "code": "1" }),
        "Money" => json!({ "value": 7, "currency": "USD" }),
        "Range" => json!({ "low": { "value": 7, "unit": "mg", "system": UCUM, "code": "mg" } }),
        "Ratio" => {
            json!({ "numerator": quantity, "denominator": { "value": 1, "unit": "mg", "system": UCUM, "code": "mg" } })
        }
        "Period" => json!({ "start": DATE }),
        "CodeableConcept" => json!({ "coding": [{ "system": SYSTEM, "code": "c{{ u }}" }] }),
        "Coding" => json!({ "system": SYSTEM, "code": "c{{ u }}" }),
        "Identifier" => json!({ "system": SYSTEM, "value": "{{ u }}" }),
        "HumanName" => json!({ "family": UNIQUE }),
        "Address" => json!({ "city": UNIQUE }),
        "ContactPoint" => json!({ "system": "email", "value": "fc{{ u }}@example.org" }),
        "Annotation" => json!({ "text": "fhirconf" }),
        "Attachment" => json!({ "contentType": "text/plain", "data": "ZmhpcmNvbmY=" }),
        "Narrative" => json!({
            "status": "generated",
            "div": "<div xmlns=\"http://www.w3.org/1999/xhtml\">fhirconf</div>"
        }),
        "Timing" => json!({ "event": [DATE] }),
        "Meta" => json!({ "tag": [{ "system": SYSTEM, "code": "fhirconf" }] }),
        // trd-1: a named event has a name.
        "TriggerDefinition" => json!({ "type": "named-event", "name": "fhirconf" }),
        _ => return None,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn all() -> BTreeSet<String> {
        r4_model::r4()
            .types()
            .filter(|t| r4_model::r4().is_resource(t.name))
            .map(|t| t.name.to_owned())
            .collect()
    }

    #[test]
    fn an_observation_has_its_required_status_and_code() {
        let creatable = all();
        let mut b = Builder::new(r4_model::r4(), &creatable);
        let obs = b.resource("Observation").unwrap();
        assert_eq!(obs["resourceType"], "Observation");
        // The first code of the required value set.
        assert_eq!(obs["status"], "registered");
        assert_eq!(obs["code"]["coding"][0]["system"], SYSTEM);
        assert!(b.prerequisites.is_empty());
        assert!(obs.get("subject").is_none(), "optional elements stay out");
    }

    #[test]
    fn a_required_reference_creates_its_target_first() {
        let creatable = all();
        let mut b = Builder::new(r4_model::r4(), &creatable);
        let condition = b.resource("Condition").unwrap();
        assert_eq!(
            condition["subject"]["reference"],
            "Patient/{{ refPatient }}"
        );
        assert_eq!(b.prerequisites.len(), 1);
        assert_eq!(b.prerequisites[0].resource_type, "Patient");
        // Without Patient, the other allowed target.
        let no_patient: BTreeSet<String> = creatable
            .iter()
            .filter(|t| *t != "Patient")
            .cloned()
            .collect();
        let mut b = Builder::new(r4_model::r4(), &no_patient);
        let condition = b.resource("Condition").unwrap();
        assert_eq!(condition["subject"]["reference"], "Group/{{ refGroup }}");
        // With neither, the reason.
        let none = BTreeSet::new();
        let mut b = Builder::new(r4_model::r4(), &none);
        let why = b.resource("Condition").unwrap_err();
        assert!(why.contains("Condition.subject"), "{why}");
    }

    #[test]
    fn choices_carry_their_type_suffix_and_backbones_their_required_children() {
        let creatable = all();
        let mut b = Builder::new(r4_model::r4(), &creatable);
        let req = b.resource("MedicationRequest").unwrap();
        assert!(req.get("medicationCodeableConcept").is_some(), "{req}");
        let appt = b.resource("Appointment").unwrap();
        assert_eq!(appt["participant"][0]["status"], "accepted");
    }

    #[test]
    fn invariants_are_met_or_the_reason_given() {
        let creatable = all();
        let mut b = Builder::new(r4_model::r4(), &creatable);
        // Fixed up: app-1, lnk-1.
        let appt = b.resource("Appointment").unwrap();
        assert!(appt["participant"][0]["type"].is_array(), "{appt}");
        let linkage = b.resource("Linkage").unwrap();
        assert_eq!(linkage["item"].as_array().unwrap().len(), 2);
        // A broken one is named.
        let mut bad = appt.clone();
        bad["participant"][0]
            .as_object_mut()
            .unwrap()
            .remove("type");
        let why = broken_invariant(r4_model::r4(), "Appointment", &bad).unwrap_err();
        assert!(why.contains("app-1"), "{why}");
    }

    #[test]
    fn every_r4_resource_type_builds_or_says_why() {
        let creatable = all();
        let mut built = 0;
        for ty in &creatable {
            let mut b = Builder::new(r4_model::r4(), &creatable);
            match b.resource(ty) {
                Ok(v) => {
                    assert_eq!(v["resourceType"], ty.as_str());
                    built += 1;
                }
                Err(why) => assert!(
                    why.contains(ty.as_str()) || why.contains('.'),
                    "{ty}: {why}"
                ),
            }
        }
        assert!(built > 130, "only {built} of {} build", creatable.len());
    }
}
