//! The built-in sandbox: an in-memory FHIR R4 server that behaves as the documents in
//! source documents of `scenarios/RULES.md` describe (Canvas Practitioner and Appointment, the provincial provider
//! registry's Practitioner search, FHIR R4 core), and that can break any one rule of
//! `scenarios/RULES.md` on purpose ([`DEFECTS`]) so that a scenario can prove it
//! catches that break.
//!
//! Endpoints live at the root: `GET /metadata`, `/{type}`, `/{type}/{id}`,
//! `/{type}/{id}/_history/{vid}`, `POST /Practitioner/_search`, plus `POST /auth/token`
//! (OAuth2 client credentials) and `GET /_sandbox/stats` (what the API created).
//!
//! Every FHIR R4 resource type is served (`resources`): Practitioner and Appointment as
//! their documents say, every other type with the generic create, read, vread, update,
//! delete and `_id`/`_lastUpdated` search of `generic`.
//!
//! # Seed data
//!
//! | variable (`targets/sandbox.yaml`) | value |
//! |---|---|
//! | patient_id, patient_id_2 | `patient-1` (Isabella Mark), `patient-2` (Noah Okafor) |
//! | location_id | `location-1` (Canvas Clinic San Francisco) |
//! | practitioner_id, practitioner_id_2 | `practitioner-1` (Samantha Jones), `practitioner-2` (Marcus Lee): active, scheduleable |
//! | practitioner_inactive_id | `practitioner-inactive` (Olivia Grant) |
//! | practitioner_nonschedulable_id | `practitioner-nonschedulable` (Henry Park): active, not scheduleable |
//! | appointment_type_system / _code | `http://snomed.info/sct` / `448337001` (Telemedicine, scheduleable) |
//! | appointment_type_internal_system / _code | `INTERNAL` / `INIV` (Initial Visit, scheduleable) |
//! | appointment_type_unschedulable_system / _code | `http://snomed.info/sct` / `185317003` (Telephone encounter) |
//! | reason_code_system / _code | `INTERNAL` / `INIV` (also configured: `INIV30`) |
//! | ppr_issuer, ppr_issuer_2 | `https://fhir.infoway-inforoute.ca/NamingSystem/ca-on-license-physician`, `…/ca-on-provider-upi` |
//! | ppr_shared_value | `12324566` (issuer 1 → `ppr-practitioner-1`, issuer 2 → `ppr-practitioner-2`) |
//! | ppr_family | `Tremblay` (Dr. Amelia Tremblay, `ppr-practitioner-1`) |
//! | auth_client_id / _secret | `fhirconf-sandbox` / `sandbox-secret` (`system/*.read system/*.write`) |
//! | auth_limited_client_id / _secret | `fhirconf-limited` / `limited-secret` (`system/Patient.read`) |
//!
//! Also seeded: the default appointment type `http://snomed.info/sct|308335008` (Office
//! Visit), the practitioner `canvas-bot` (who a blank `Practitioner/` reference books
//! with), and the registry's `ppr-role-{1,2}`, `ppr-location-{1,2}`,
//! `ppr-organization-{1,2}`. No appointment is seeded.

mod app;
mod appointment;
mod auth;
mod config;
mod core;
mod defects;
mod generic;
mod metadata;
mod practitioner;
mod registry;
mod resources;
mod seed;
mod server;
mod store;
mod throttle;

pub use crate::sandbox::config::{ConfigError, FEATURES, FeatureInfo, SandboxConfig};
pub use crate::sandbox::defects::{DEFECTS, Defect};
pub use crate::sandbox::server::{RunningSandbox, router, start};

/// The variables of `targets/sandbox.yaml` with the seed data's values, for
/// `targets/sandbox.yaml`.
pub fn seed_vars() -> Vec<(&'static str, String)> {
    crate::sandbox::seed::vars()
}
