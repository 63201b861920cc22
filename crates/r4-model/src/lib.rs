//! The FHIR R4 type model, as data: which types exist, what they derive from, which
//! elements each has, with their cardinality and types, and which are choice
//! elements (`value[x]`).
//!
//! It is what a reader of FHIR JSON or XML needs to know that the generated model
//! of a full FHIR library would otherwise give: whether `name` is a list, that
//! `valueQuantity` is the `Quantity` choice of `value`, that `birthDate` is a
//! `date`. The table is `data/elements.txt`, generated from the R4
//! StructureDefinitions by `scripts/gen-r4-model.py`, parsed once on first use.
//!
//! Backbone elements are types named by their path (`Patient.contact`), and an
//! element defined by reference (`Questionnaire.item.item`) has the referenced path
//! as its type, so navigation never needs to know the difference.

use std::collections::HashMap;
use std::sync::OnceLock;

const ELEMENTS: &str = include_str!("../data/elements.txt");
const SEARCH_PARAMETERS: &str = include_str!("../data/search-parameters.tsv");
const BINDINGS: &str = include_str!("../data/bindings.tsv");
const INVARIANTS: &str = include_str!("../data/invariants.tsv");

/// An error-level constraint of a resource type's element (R4's `app-1`, `lnk-1`...).
#[derive(Debug)]
pub struct Invariant {
    /// The element it constrains: `Appointment.participant`, or the resource itself.
    pub path: &'static str,
    pub key: &'static str,
    /// FHIRPath, evaluated on each instance of the element.
    pub expression: &'static str,
}

/// The invariants by resource type.
fn invariants() -> &'static HashMap<&'static str, Vec<Invariant>> {
    static BY_TYPE: OnceLock<HashMap<&'static str, Vec<Invariant>>> = OnceLock::new();
    BY_TYPE.get_or_init(|| {
        let mut map: HashMap<&'static str, Vec<Invariant>> = HashMap::new();
        for line in INVARIANTS.lines().filter(|l| !l.starts_with('#')) {
            let mut f = line.split('\t');
            let (Some(path), Some(key), Some(expression)) = (f.next(), f.next(), f.next()) else {
                continue;
            };
            let ty = path.split('.').next().unwrap_or(path);
            map.entry(ty).or_default().push(Invariant {
                path,
                key,
                expression,
            });
        }
        map
    })
}

/// A required binding: the value set an element's code must come from, and the first
/// codes of that value set (empty when it could not be expanded offline).
#[derive(Debug)]
pub struct Binding {
    pub value_set: &'static str,
    /// `(system, code)`, at most four, in the value set's order.
    pub codes: Vec<(&'static str, &'static str)>,
}

/// The required bindings by element path (`Patient.gender`, `ContactPoint.system`).
fn bindings() -> &'static HashMap<&'static str, Binding> {
    static BY_PATH: OnceLock<HashMap<&'static str, Binding>> = OnceLock::new();
    BY_PATH.get_or_init(|| {
        BINDINGS
            .lines()
            .filter(|l| !l.starts_with('#'))
            .filter_map(|line| {
                let mut f = line.split('\t');
                let (path, value_set) = (f.next()?, f.next()?);
                let codes = f.filter_map(|sc| sc.rsplit_once('|')).collect();
                Some((path, Binding { value_set, codes }))
            })
            .collect()
    })
}

/// One R4 SearchParameter, as it applies to one resource type.
#[derive(Debug)]
pub struct SearchParam {
    /// The resource type it is defined on (`Patient`, or `Resource`/`DomainResource`
    /// for the ones every resource has: `_id`, `_lastUpdated`...).
    pub base: &'static str,
    /// What a URL names it by: `family`, `birthdate`, `_id`.
    pub code: &'static str,
    /// `string`, `token`, `reference`, `date`, `number`, `quantity`, `uri`,
    /// `composite`, `special`.
    pub kind: &'static str,
    /// For `reference`: the resource types it may point to.
    pub targets: Vec<&'static str>,
    /// The FHIRPath that finds its values in a resource (may cover several types:
    /// `Patient.name | Practitioner.name`).
    pub expression: &'static str,
}

/// The R4 SearchParameters by base type, parsed on first use.
fn search_parameters() -> &'static std::collections::HashMap<&'static str, Vec<SearchParam>> {
    static PARAMS: OnceLock<std::collections::HashMap<&'static str, Vec<SearchParam>>> =
        OnceLock::new();
    PARAMS.get_or_init(|| {
        let mut by_base: std::collections::HashMap<&'static str, Vec<SearchParam>> =
            std::collections::HashMap::new();
        for line in SEARCH_PARAMETERS.lines().filter(|l| !l.starts_with('#')) {
            let mut f = line.split('\t');
            let (Some(base), Some(code), Some(kind), Some(targets), Some(expression)) =
                (f.next(), f.next(), f.next(), f.next(), f.next())
            else {
                continue;
            };
            let targets = if targets == "-" {
                Vec::new()
            } else {
                targets.split(',').collect()
            };
            by_base.entry(base).or_default().push(SearchParam {
                base,
                code,
                kind,
                targets,
                expression,
            });
        }
        by_base
    })
}

/// What kind of type a [`TypeDef`] is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    /// `boolean`, `string`, `date`...: a JSON primitive with an optional `_name` twin.
    Primitive,
    /// A datatype with elements: `HumanName`, `Quantity`...
    Complex,
    /// A resource: `Patient`, `Bundle`, and the abstract `Resource`/`DomainResource`.
    Resource,
    /// An element with children of its own inside a type: `Patient.contact`.
    Backbone,
}

/// One type of the model.
#[derive(Debug)]
pub struct TypeDef {
    pub name: &'static str,
    pub kind: Kind,
    /// The type it derives from (`DomainResource` for `Patient`, `Quantity` for
    /// `Age`); `None` for `Element` and `Resource`.
    pub base: Option<&'static str>,
    pub is_abstract: bool,
    pub elements: Vec<ElementDef>,
}

/// One element of a type.
#[derive(Debug)]
pub struct ElementDef {
    /// Its name without `[x]`: `value` for `value[x]`.
    pub name: &'static str,
    /// A choice element: in JSON its name is followed by the type (`valueQuantity`).
    pub choice: bool,
    /// Whether it may repeat (`max` is not 0 or 1): a JSON array.
    pub many: bool,
    /// The least number of times it must appear (`min`): 1 for a required element.
    pub min: u32,
    /// Its types: FHIR type names (`Quantity`, `date`), `System.String` and friends
    /// for the value of a primitive, and a backbone path (`Patient.contact`).
    pub types: Vec<ElementType>,
}

/// One type an element may have.
#[derive(Debug)]
pub struct ElementType {
    /// The type's name, as in [`Model::type_def`].
    pub code: &'static str,
    /// For `Reference` and `canonical`: the resource types it may point to, if the
    /// definition says (empty means any).
    pub targets: Vec<&'static str>,
}

/// The model: every type by name.
#[derive(Debug)]
pub struct Model {
    types: HashMap<&'static str, TypeDef>,
}

/// The R4 model, parsed on first use (about 8,000 lines; a millisecond or two).
pub fn r4() -> &'static Model {
    static MODEL: OnceLock<Model> = OnceLock::new();
    MODEL.get_or_init(|| Model::parse(ELEMENTS))
}

impl Model {
    fn parse(text: &'static str) -> Model {
        let mut types: HashMap<&'static str, TypeDef> = HashMap::new();
        let mut current: Option<TypeDef> = None;
        for line in text.lines() {
            let mut fields = line.split(' ');
            match fields.next() {
                Some("T") => {
                    if let Some(done) = current.take() {
                        types.insert(done.name, done);
                    }
                    let name = fields.next().unwrap_or_default();
                    let kind = match fields.next() {
                        Some("primitive") => Kind::Primitive,
                        Some("resource") => Kind::Resource,
                        Some("backbone") => Kind::Backbone,
                        _ => Kind::Complex,
                    };
                    let base = fields.next().filter(|b| *b != "-");
                    let is_abstract = fields.next() == Some("abstract");
                    current = Some(TypeDef {
                        name,
                        kind,
                        base,
                        is_abstract,
                        elements: Vec::new(),
                    });
                }
                Some("E") => {
                    let (Some(name), Some(max), Some(list)) =
                        (fields.next(), fields.next(), fields.next())
                    else {
                        continue;
                    };
                    let min = fields.next().and_then(|m| m.parse().ok()).unwrap_or(0);
                    let (name, choice) = match name.strip_suffix("[x]") {
                        Some(stem) => (stem, true),
                        None => (name, false),
                    };
                    let types = list.split(',').map(ElementType::parse).collect();
                    if let Some(def) = current.as_mut() {
                        def.elements.push(ElementDef {
                            name,
                            choice,
                            many: max == "*",
                            min,
                            types,
                        });
                    }
                }
                _ => {}
            }
        }
        if let Some(done) = current.take() {
            types.insert(done.name, done);
        }
        Model { types }
    }

    /// A type by name: `Patient`, `HumanName`, `date`, `Patient.contact`.
    pub fn type_def(&self, name: &str) -> Option<&TypeDef> {
        self.types.get(name)
    }

    /// Whether `name` is a resource type that can have instances (`Patient`, not
    /// `DomainResource`).
    pub fn is_resource(&self, name: &str) -> bool {
        self.type_def(name)
            .is_some_and(|t| t.kind == Kind::Resource && !t.is_abstract)
    }

    /// Whether `name` is a FHIR primitive type (`boolean`, `code`, `dateTime`...).
    pub fn is_primitive(&self, name: &str) -> bool {
        self.type_def(name)
            .is_some_and(|t| t.kind == Kind::Primitive)
    }

    /// `name`'s definition, then its base's, and so on (`Patient`, `DomainResource`,
    /// `Resource`); empty for a name the model does not have. The chain is at most five
    /// deep in R4; the bound of 16 guards a malformed table.
    pub fn chain<'a>(&'a self, name: &str) -> impl Iterator<Item = &'a TypeDef> + 'a {
        std::iter::successors(self.type_def(name), move |t| {
            t.base.and_then(|b| self.type_def(b))
        })
        .take(16)
    }

    /// Whether `name` is `base` or derives from it (`Age` is a `Quantity`, `code` a
    /// `string`, `Patient` a `Resource`).
    pub fn is_a(&self, name: &str, base: &str) -> bool {
        name == base || self.chain(name).any(|t| t.name == base)
    }

    /// The element `name` of `type_name`, looked up by its name without `[x]`.
    pub fn element(&self, type_name: &str, name: &str) -> Option<&ElementDef> {
        self.type_def(type_name)?
            .elements
            .iter()
            .find(|e| e.name == name)
    }

    /// What a JSON property of an instance of `type_name` is: the element and, for a
    /// choice element, the type its suffix names (`valueQuantity` is `value` with
    /// type `Quantity`). The `_name` twin of a primitive is not resolved here.
    pub fn property(&self, type_name: &str, json_name: &str) -> Option<Property<'_>> {
        let def = self.type_def(type_name)?;
        if let Some(e) = def
            .elements
            .iter()
            .find(|e| e.name == json_name && !e.choice)
        {
            return Some(Property {
                element: e,
                type_code: e.types.first().map(|t| t.code).unwrap_or_default(),
            });
        }
        def.elements.iter().filter(|e| e.choice).find_map(|e| {
            let suffix = json_name.strip_prefix(e.name)?;
            let t = e
                .types
                .iter()
                .find(|t| choice_suffix_matches(t.code, suffix))?;
            Some(Property {
                element: e,
                type_code: t.code,
            })
        })
    }

    /// The SearchParameters a resource type has: its own and those of `Resource` and
    /// `DomainResource` it inherits.
    pub fn search_params(&self, resource_type: &str) -> Vec<&'static SearchParam> {
        let all = search_parameters();
        self.chain(resource_type)
            .filter_map(|t| all.get(t.name))
            .flatten()
            .collect()
    }

    /// The required binding of the element at `path` (`Observation.status`,
    /// `Patient.contact.gender`), if it has one: a code there must be one of its value
    /// set's.
    pub fn required_binding(&self, path: &str) -> Option<&'static Binding> {
        bindings().get(path)
    }

    /// The error-level invariants of a resource type and its backbone elements (the
    /// generic `ele-1`, `ext-1` and `dom-*` left out).
    pub fn invariants(&self, resource_type: &str) -> &'static [Invariant] {
        invariants()
            .get(resource_type)
            .map(Vec::as_slice)
            .unwrap_or_default()
    }

    /// Every type, in no particular order.
    pub fn types(&self) -> impl Iterator<Item = &TypeDef> {
        self.types.values()
    }
}

/// A JSON property resolved against the model.
#[derive(Debug, Clone, Copy)]
pub struct Property<'m> {
    pub element: &'m ElementDef,
    /// The property's type: the element's single type, or the choice's type.
    pub type_code: &'static str,
}

/// A choice element's JSON name carries its type with the first letter upper-cased:
/// `valueDateTime` for `dateTime`, `valueQuantity` for `Quantity`.
fn choice_suffix_matches(code: &str, suffix: &str) -> bool {
    let mut c = code.chars();
    let mut s = suffix.chars();
    match (c.next(), s.next()) {
        (Some(a), Some(b)) if a.to_ascii_uppercase() == b => c.as_str() == s.as_str(),
        _ => false,
    }
}

impl ElementType {
    fn parse(text: &'static str) -> ElementType {
        match text.split_once('(') {
            Some((code, rest)) => ElementType {
                code,
                targets: rest.trim_end_matches(')').split('|').collect(),
            },
            None => ElementType {
                code: text,
                targets: Vec::new(),
            },
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn resources_datatypes_and_backbones_are_all_there() {
        let m = r4();
        assert!(m.is_resource("Patient"));
        assert!(m.is_resource("Bundle"));
        assert!(!m.is_resource("DomainResource"));
        assert!(!m.is_resource("HumanName"));
        assert!(m.is_primitive("dateTime"));
        assert_eq!(m.type_def("Patient.contact").unwrap().kind, Kind::Backbone);
        // The R4 StructureDefinitions define 147 resource types that can have instances.
        let resources = m.types().filter(|t| m.is_resource(t.name)).count();
        assert_eq!(resources, 147);
    }

    #[test]
    fn a_type_s_chain_runs_through_its_bases() {
        let m = r4();
        let names = |t: &str| m.chain(t).map(|d| d.name).collect::<Vec<_>>();
        assert_eq!(names("Patient"), ["Patient", "DomainResource", "Resource"]);
        assert_eq!(names("Age"), ["Age", "Quantity", "Element"]);
        assert!(names("NoSuchType").is_empty());
        assert!(m.is_a("Age", "Quantity") && m.is_a("Patient", "Resource"));
        assert!(!m.is_a("Quantity", "Age") && !m.is_a("Patient", "Bundle"));
        // Inherited search parameters come after the type's own.
        let params: Vec<&str> = m.search_params("Patient").iter().map(|p| p.code).collect();
        let (own, inherited) = (
            params.iter().position(|c| *c == "family").unwrap(),
            params.iter().position(|c| *c == "_id").unwrap(),
        );
        assert!(own < inherited, "{params:?}");
    }

    #[test]
    fn cardinality_and_types_come_from_the_definitions() {
        let m = r4();
        let name = m.element("Patient", "name").unwrap();
        assert!(name.many);
        assert_eq!(name.types[0].code, "HumanName");
        let birth = m.element("Patient", "birthDate").unwrap();
        assert!(!birth.many);
        assert_eq!(birth.types[0].code, "date");
        assert!(
            m.element("Patient", "birth").is_none(),
            "no prefix matching"
        );
        let org = m.element("Patient", "managingOrganization").unwrap();
        assert_eq!(org.types[0].targets, ["Organization"]);
        // A recursive element refers to its definition by path.
        let nested = m.element("Questionnaire.item", "item").unwrap();
        assert_eq!(nested.types[0].code, "Questionnaire.item");
        // The value of a primitive is a System type.
        assert_eq!(
            m.element("boolean", "value").unwrap().types[0].code,
            "System.Boolean"
        );
    }

    #[test]
    fn choice_properties_resolve_by_their_type_suffix() {
        let m = r4();
        let p = m.property("Observation", "valueQuantity").unwrap();
        assert_eq!(p.element.name, "value");
        assert_eq!(p.type_code, "Quantity");
        let p = m.property("Observation", "effectiveDateTime").unwrap();
        assert_eq!(p.type_code, "dateTime");
        assert!(m.property("Observation", "valueFoo").is_none());
        assert!(m.property("Observation", "value").is_none());
        assert!(m.property("Patient", "birth").is_none());
        let p = m.property("Patient", "birthDate").unwrap();
        assert_eq!((p.element.name, p.type_code), ("birthDate", "date"));
    }

    #[test]
    fn derivation_chains() {
        let m = r4();
        assert!(m.is_a("Age", "Quantity"));
        assert!(m.is_a("code", "string"));
        assert!(m.is_a("Patient", "Resource"));
        assert!(m.is_a("Patient", "DomainResource"));
        assert!(!m.is_a("Bundle", "DomainResource"));
        assert!(!m.is_a("Quantity", "Age"));
    }

    #[test]
    fn required_elements_carry_their_minimum() {
        let m = r4();
        assert_eq!(m.element("Observation", "status").unwrap().min, 1);
        assert_eq!(m.element("Observation", "code").unwrap().min, 1);
        assert_eq!(m.element("Observation", "subject").unwrap().min, 0);
        assert_eq!(m.element("Patient", "name").unwrap().min, 0);
    }

    #[test]
    fn required_bindings_give_codes_of_their_value_set() {
        let m = r4();
        let status = m.required_binding("Observation.status").unwrap();
        assert_eq!(
            status.value_set,
            "http://hl7.org/fhir/ValueSet/observation-status"
        );
        assert_eq!(
            status.codes[0],
            ("http://hl7.org/fhir/observation-status", "registered")
        );
        let gender = m.required_binding("Patient.gender").unwrap();
        let codes: Vec<&str> = gender.codes.iter().map(|c| c.1).collect();
        assert_eq!(codes, ["male", "female", "other", "unknown"]);
        // On a datatype's element, and on a backbone element.
        assert!(m.required_binding("ContactPoint.system").is_some());
        assert!(m.required_binding("Patient.contact.gender").is_some());
        // An external code system, given by hand in the generator.
        assert_eq!(
            m.required_binding("Money.currency").unwrap().codes[0],
            ("urn:iso:std:iso:4217", "USD")
        );
        // Extensible or example bindings are not required ones.
        assert!(m.required_binding("Observation.code").is_none());
        assert!(m.required_binding("Patient.maritalStatus").is_none());
    }

    #[test]
    fn invariants_by_resource_type() {
        let m = r4();
        let app = m.invariants("Appointment");
        let one = app.iter().find(|i| i.key == "app-1").unwrap();
        assert_eq!(one.path, "Appointment.participant");
        assert_eq!(one.expression, "type.exists() or actor.exists()");
        assert!(m.invariants("Linkage").iter().any(|i| i.key == "lnk-1"));
        assert!(
            m.invariants("Patient")
                .iter()
                .all(|i| !i.key.starts_with("dom-"))
        );
        assert!(m.invariants("NotAType").is_empty());
    }

    #[test]
    fn search_parameters_by_type_with_the_inherited_ones() {
        let m = r4();
        let patient = m.search_params("Patient");
        let find = |code: &str| patient.iter().find(|p| p.code == code);
        let family = find("family").expect("Patient has family");
        assert_eq!(family.kind, "string");
        assert!(
            family.expression.contains("Patient.name.family"),
            "{}",
            family.expression
        );
        let org = find("organization").expect("Patient has organization");
        assert_eq!(org.kind, "reference");
        assert_eq!(org.targets, ["Organization"]);
        assert_eq!(find("birthdate").unwrap().kind, "date");
        // From Resource and DomainResource.
        assert_eq!(find("_id").unwrap().kind, "token");
        assert_eq!(find("_lastUpdated").unwrap().kind, "date");
        assert!(find("_text").is_some());
        assert!(find("nonsense").is_none());
        assert!(m.search_params("NotAType").is_empty());
    }
}
