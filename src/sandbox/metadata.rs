//! `GET /metadata`: the CapabilityStatement, built from the same tables the handlers use.

use jiff::Timestamp;
use serde_json::{Value, json};

use crate::sandbox::core::{Ctx, FHIR_JSON, SearchParam, instant};
use crate::sandbox::resources::{self, R4_RESOURCE_TYPES};

pub(crate) const SOFTWARE: &str = "fhirconf sandbox";

fn params(list: &[SearchParam]) -> Vec<Value> {
    list.iter()
        .map(|p| json!({ "name": p.name, "type": p.kind, "documentation": p.doc }))
        .collect()
}

pub(crate) fn capability_statement(ctx: &Ctx<'_>) -> Value {
    let settings = &ctx.app.settings;
    let resources: Vec<Value> = R4_RESOURCE_TYPES
        .iter()
        .filter_map(|ty| Some((*ty, resources::handler(ty)?)))
        .map(|(ty, handler)| {
            let interactions: Vec<Value> = handler
                .interactions()
                .iter()
                .map(|code| json!({ "code": code }))
                .collect();
            let mut r = json!({
                "type": ty,
                "interaction": interactions,
                "versioning": if settings.versioning { "versioned-update" } else { "no-version" },
                "readHistory": true,
                "updateCreate": handler.update_creates(),
                "searchParam": params(handler.search_params(ty)),
            });
            if ty == "Practitioner" {
                r["searchInclude"] = json!([
                    "Practitioner:PractitionerRole",
                    "PractitionerRole:location",
                    "PractitionerRole:organization"
                ]);
            }
            r
        })
        .collect();
    let mut rest = json!({
        "mode": "server",
        "documentation": "Canvas Practitioner and Appointment rules, the provider registry's \
                          Practitioner search (also POST /Practitioner/_search), and FHIR R4's \
                          core interactions for every other R4 resource type",
        "resource": resources,
    });
    if settings.auth {
        rest["security"] = json!({
            // Where the token endpoint is, as SMART App Launch (1.0) says servers
            // advertise it; `fhirconf init` reads it.
            "extension": [{
                "url": "http://fhir-registry.smarthealthit.org/StructureDefinition/oauth-uris",
                "extension": [{ "url": "token", "valueUri": format!("{}/auth/token", ctx.base) }]
            }],
            "service": [{ "coding": [{
                "system": "http://terminology.hl7.org/CodeSystem/restful-security-service",
                "code": "OAuth"
            }] }],
            "description": format!(
                "OAuth2 client credentials: POST {}/auth/token, then Authorization: Bearer <token>",
                ctx.base
            ),
        });
    }
    let fhir_version = if ctx.defect("CORE-METADATA") {
        "3.0.2"
    } else {
        "4.0.1"
    };
    json!({
        "resourceType": "CapabilityStatement",
        "status": "active",
        "date": instant(Timestamp::now()),
        "publisher": "fhirconf",
        "kind": "instance",
        "software": { "name": SOFTWARE, "version": env!("CARGO_PKG_VERSION") },
        "implementation": { "description": "fhirconf built-in sandbox FHIR server", "url": ctx.base },
        "fhirVersion": fhir_version,
        "format": [FHIR_JSON, "json"],
        "rest": [rest],
    })
}
