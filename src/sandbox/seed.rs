//! The records every sandbox starts with, under stable ids (see the module docs of
//! [`crate::sandbox`] and `targets/sandbox.yaml`), and the server's configuration tables:
//! appointment types, structured reasons for visit, OAuth clients.

use serde_json::{Value, json};

use crate::sandbox::store::{Json, State};

pub(crate) const PATIENT_1: &str = "patient-1";
pub(crate) const PATIENT_2: &str = "patient-2";
pub(crate) const LOCATION_1: &str = "location-1";
pub(crate) const PRACTITIONER_1: &str = "practitioner-1";
pub(crate) const PRACTITIONER_2: &str = "practitioner-2";
pub(crate) const PRACTITIONER_INACTIVE: &str = "practitioner-inactive";
pub(crate) const PRACTITIONER_NONSCHEDULABLE: &str = "practitioner-nonschedulable";
/// Who an appointment is booked with when its practitioner reference is left blank.
pub(crate) const CANVAS_BOT: &str = "canvas-bot";

pub(crate) const PPR_ISSUER: &str =
    "https://fhir.infoway-inforoute.ca/NamingSystem/ca-on-license-physician";
pub(crate) const PPR_ISSUER_2: &str =
    "https://fhir.infoway-inforoute.ca/NamingSystem/ca-on-provider-upi";
pub(crate) const PPR_SHARED_VALUE: &str = "12324566";
pub(crate) const PPR_PRACTITIONER_1: &str = "ppr-practitioner-1";
pub(crate) const PPR_PRACTITIONER_2: &str = "ppr-practitioner-2";
pub(crate) const PPR_FAMILY: &str = "Tremblay";

pub(crate) const SNOMED: &str = "http://snomed.info/sct";
pub(crate) const INTERNAL: &str = "INTERNAL";
pub(crate) const NPI_SYSTEM: &str = "http://hl7.org/fhir/sid/us-npi";
/// The sandbox's own staff identifiers (for the one seeded practitioner without an NPI).
pub(crate) const STAFF_ID_SYSTEM: &str = "https://sandbox.invalid/fhir/sid/staff-id";

/// A configured appointment (note) type.
#[derive(Debug, Clone, Copy)]
pub(crate) struct AppointmentType {
    pub(crate) system: &'static str,
    pub(crate) code: &'static str,
    pub(crate) display: &'static str,
    pub(crate) scheduleable: bool,
    pub(crate) is_default: bool,
}

pub(crate) const APPOINTMENT_TYPES: &[AppointmentType] = &[
    AppointmentType {
        system: SNOMED,
        code: "308335008",
        display: "Office Visit",
        scheduleable: true,
        is_default: true,
    },
    AppointmentType {
        system: SNOMED,
        code: "448337001",
        display: "Telemedicine",
        scheduleable: true,
        is_default: false,
    },
    AppointmentType {
        system: INTERNAL,
        code: "INIV",
        display: "Initial Visit",
        scheduleable: true,
        is_default: false,
    },
    AppointmentType {
        system: SNOMED,
        code: "185317003",
        display: "Telephone encounter",
        scheduleable: false,
        is_default: false,
    },
];

pub(crate) const APPOINTMENT_TYPE: &AppointmentType = &APPOINTMENT_TYPES[1];
pub(crate) const APPOINTMENT_TYPE_INTERNAL: &AppointmentType = &APPOINTMENT_TYPES[2];
pub(crate) const APPOINTMENT_TYPE_UNSCHEDULABLE: &AppointmentType = &APPOINTMENT_TYPES[3];

/// A configured structured reason for visit (looked up by code, as the seed says).
#[derive(Debug, Clone, Copy)]
pub(crate) struct Reason {
    pub(crate) system: &'static str,
    pub(crate) code: &'static str,
}

pub(crate) const REASONS: &[Reason] = &[
    Reason {
        system: INTERNAL,
        code: "INIV",
    },
    Reason {
        system: INTERNAL,
        code: "INIV30",
    },
];

/// An OAuth2 client of `POST /auth/token`.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Client {
    pub(crate) id: &'static str,
    pub(crate) secret: &'static str,
    pub(crate) scope: &'static str,
}

pub(crate) const CLIENTS: &[Client] = &[
    Client {
        id: "fhirconf-sandbox",
        secret: "sandbox-secret",
        scope: "system/*.read system/*.write",
    },
    Client {
        id: "fhirconf-limited",
        secret: "limited-secret",
        scope: "system/Patient.read",
    },
];

/// The values of `targets/sandbox.yaml`'s variables for this seed data.
pub(crate) fn vars() -> Vec<(&'static str, String)> {
    let s = |v: &str| v.to_owned();
    vec![
        ("patient_id", s(PATIENT_1)),
        ("patient_id_2", s(PATIENT_2)),
        ("location_id", s(LOCATION_1)),
        ("practitioner_id", s(PRACTITIONER_1)),
        ("practitioner_id_2", s(PRACTITIONER_2)),
        ("practitioner_inactive_id", s(PRACTITIONER_INACTIVE)),
        (
            "practitioner_nonschedulable_id",
            s(PRACTITIONER_NONSCHEDULABLE),
        ),
        ("appointment_type_system", s(APPOINTMENT_TYPE.system)),
        ("appointment_type_code", s(APPOINTMENT_TYPE.code)),
        (
            "appointment_type_internal_system",
            s(APPOINTMENT_TYPE_INTERNAL.system),
        ),
        (
            "appointment_type_internal_code",
            s(APPOINTMENT_TYPE_INTERNAL.code),
        ),
        (
            "appointment_type_unschedulable_system",
            s(APPOINTMENT_TYPE_UNSCHEDULABLE.system),
        ),
        (
            "appointment_type_unschedulable_code",
            s(APPOINTMENT_TYPE_UNSCHEDULABLE.code),
        ),
        ("reason_code_system", s(REASONS[0].system)),
        ("reason_code_code", s(REASONS[0].code)),
        ("ppr_issuer", s(PPR_ISSUER)),
        ("ppr_issuer_2", s(PPR_ISSUER_2)),
        ("ppr_shared_value", s(PPR_SHARED_VALUE)),
        ("ppr_practitioner_id", s(PPR_PRACTITIONER_1)),
        ("ppr_practitioner_id_2", s(PPR_PRACTITIONER_2)),
        ("ppr_family", s(PPR_FAMILY)),
        ("auth_client_id", s(CLIENTS[0].id)),
        ("auth_client_secret", s(CLIENTS[0].secret)),
        ("auth_limited_client_id", s(CLIENTS[1].id)),
        ("auth_limited_client_secret", s(CLIENTS[1].secret)),
    ]
}

fn obj(v: Value) -> Json {
    match v {
        Value::Object(m) => m,
        _ => Json::new(),
    }
}

fn scheduleable(yes: bool) -> Json {
    obj(json!({ "scheduleable": yes }))
}

/// A Canvas staff member: one rank-1 work email, a work phone, a work address.
fn canvas_practitioner(
    id: &str,
    given: &str,
    family: &str,
    gender: &str,
    active: bool,
    npi: &str,
) -> Json {
    let email = format!(
        "{}.{}@example.com",
        given.to_lowercase(),
        family.to_lowercase()
    );
    obj(json!({
        "resourceType": "Practitioner",
        "extension": [{
            "url": "http://schemas.canvasmedical.com/fhir/extensions/practitioner-user-username",
            "valueString": format!("{}{}", given.to_lowercase(), family.to_lowercase())
        }],
        "identifier": [{ "system": NPI_SYSTEM, "value": npi }],
        "active": active,
        "name": [{
            "use": "usual",
            "text": format!("{given} {family}"),
            "family": family,
            "given": [given]
        }],
        "telecom": [
            { "id": format!("{id}-phone"), "system": "phone", "value": "5554320555", "use": "work", "rank": 1 },
            { "id": format!("{id}-email"), "system": "email", "value": email, "use": "work", "rank": 1 }
        ],
        "address": [{
            "id": format!("{id}-address"),
            "use": "work",
            "line": ["1234 Main St"],
            "city": "San Francisco",
            "state": "CA",
            "postalCode": "94107",
            "country": "United States"
        }],
        "gender": gender,
        "birthDate": "1980-01-01"
    }))
}

/// A provincial registry practitioner with its identifiers.
fn registry_practitioner(
    given: &str,
    family: &str,
    gender: &str,
    identifiers: Value,
    city: &str,
    languages: &[&str],
) -> Json {
    let communication: Vec<Value> = languages
        .iter()
        .map(|code| json!({ "coding": [{ "system": "urn:ietf:bcp:47", "code": code }] }))
        .collect();
    obj(json!({
        "resourceType": "Practitioner",
        "identifier": identifiers,
        "active": true,
        "name": [{
            "use": "official",
            "text": format!("Dr. {given} {family}"),
            "family": family,
            "given": [given],
            "prefix": ["Dr."]
        }],
        "address": [{ "use": "work", "line": ["100 Queen St W"], "city": city, "state": "ON", "country": "CA" }],
        "gender": gender,
        "communication": communication
    }))
}

/// Loads the seed records into an empty store.
pub(crate) fn load(state: &mut State) {
    let none = Json::new;
    let mut put = |ty: &str, id: &str, body: Json, hidden: Json| {
        state.create(ty, Some(id), body, hidden, false);
    };

    put(
        "Patient",
        PATIENT_1,
        obj(json!({
            "resourceType": "Patient",
            "active": true,
            "name": [{ "use": "official", "family": "Mark", "given": ["Isabella", "Robel"] }],
            "gender": "female",
            "birthDate": "1980-11-13"
        })),
        none(),
    );
    put(
        "Patient",
        PATIENT_2,
        obj(json!({
            "resourceType": "Patient",
            "active": true,
            "name": [{ "use": "official", "family": "Okafor", "given": ["Noah"] }],
            "gender": "male",
            "birthDate": "1975-04-02"
        })),
        none(),
    );
    put(
        "Location",
        LOCATION_1,
        obj(json!({
            "resourceType": "Location",
            "status": "active",
            "name": "Canvas Clinic San Francisco",
            "address": { "line": ["1234 Main St"], "city": "San Francisco", "state": "CA", "postalCode": "94107", "country": "United States" }
        })),
        none(),
    );

    put(
        "Practitioner",
        PRACTITIONER_1,
        canvas_practitioner(
            PRACTITIONER_1,
            "Samantha",
            "Jones",
            "female",
            true,
            "1920301155",
        ),
        scheduleable(true),
    );
    put(
        "Practitioner",
        PRACTITIONER_2,
        canvas_practitioner(PRACTITIONER_2, "Marcus", "Lee", "male", true, "1487602211"),
        scheduleable(true),
    );
    put(
        "Practitioner",
        PRACTITIONER_INACTIVE,
        canvas_practitioner(
            PRACTITIONER_INACTIVE,
            "Olivia",
            "Grant",
            "female",
            false,
            "1306851129",
        ),
        scheduleable(true),
    );
    put(
        "Practitioner",
        PRACTITIONER_NONSCHEDULABLE,
        canvas_practitioner(
            PRACTITIONER_NONSCHEDULABLE,
            "Henry",
            "Park",
            "male",
            true,
            "1740283366",
        ),
        scheduleable(false),
    );
    put(
        "Practitioner",
        CANVAS_BOT,
        // No NPI (it is no person), but an identifier all the same: US Core Practitioner
        // requires one of every Practitioner (PRAC-USCORE-PROFILE).
        obj(json!({
            "resourceType": "Practitioner",
            "identifier": [{ "system": STAFF_ID_SYSTEM, "value": CANVAS_BOT }],
            "active": true,
            "name": [{ "use": "usual", "text": "Canvas Bot", "family": "Bot", "given": ["Canvas"] }]
        })),
        scheduleable(false),
    );

    // The provincial provider registry: one value under two issuers, two practitioners.
    put(
        "Practitioner",
        PPR_PRACTITIONER_1,
        registry_practitioner(
            "Amelia",
            PPR_FAMILY,
            "female",
            json!([{ "system": PPR_ISSUER, "value": PPR_SHARED_VALUE }]),
            "Toronto",
            &["en", "fr"],
        ),
        scheduleable(true),
    );
    put(
        "Practitioner",
        PPR_PRACTITIONER_2,
        registry_practitioner(
            "Rajesh",
            "Singh",
            "male",
            json!([
                { "system": PPR_ISSUER_2, "value": PPR_SHARED_VALUE },
                { "system": PPR_ISSUER, "value": "87654321" }
            ]),
            "Ottawa",
            &["en"],
        ),
        scheduleable(true),
    );
    for (n, name, city, line) in [
        (1, "Toronto Downtown Family Clinic", "Toronto", "200 Bay St"),
        (
            2,
            "Ottawa Riverside Health Centre",
            "Ottawa",
            "45 Rideau St",
        ),
    ] {
        put(
            "Organization",
            &format!("ppr-organization-{n}"),
            obj(json!({ "resourceType": "Organization", "active": true, "name": name })),
            none(),
        );
        put(
            "Location",
            &format!("ppr-location-{n}"),
            obj(json!({
                "resourceType": "Location",
                "status": "active",
                "name": name,
                "address": { "line": [line], "city": city, "state": "ON", "country": "CA" },
                "managingOrganization": { "reference": format!("Organization/ppr-organization-{n}") }
            })),
            none(),
        );
        put(
            "PractitionerRole",
            &format!("ppr-role-{n}"),
            obj(json!({
                "resourceType": "PractitionerRole",
                "active": true,
                "practitioner": { "reference": format!("Practitioner/ppr-practitioner-{n}") },
                "organization": { "reference": format!("Organization/ppr-organization-{n}") },
                "location": [{ "reference": format!("Location/ppr-location-{n}") }],
                "code": [{ "coding": [{ "system": "http://terminology.hl7.org/CodeSystem/practitioner-role", "code": "doctor" }] }]
            })),
            none(),
        );
    }
}
