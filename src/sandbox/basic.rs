//! The seeded, read-only resource types: Patient, Location, Organization and
//! PractitionerRole (read, vread, search).

use axum::http::StatusCode;
use axum::response::Response;
use serde_json::Value;

use crate::sandbox::auth::{self, Access};
use crate::sandbox::core::{
    ApiError, Ctx, Page, SearchParam, check_known, entry, fhir, objects, page_of, reference_id,
    searchset, strings, take_paging,
};
use crate::sandbox::store::{Json, Record};

const ID: SearchParam = SearchParam::new("_id", "token", "The logical id");
const NAME: SearchParam = SearchParam::new("name", "string", "Part of the name");

pub(crate) const PATIENT_PARAMS: &[SearchParam] = &[ID, NAME];
pub(crate) const LOCATION_PARAMS: &[SearchParam] = &[ID, NAME];
pub(crate) const ORGANIZATION_PARAMS: &[SearchParam] = &[ID, NAME];
pub(crate) const ROLE_PARAMS: &[SearchParam] = &[
    ID,
    SearchParam::new(
        "practitioner",
        "reference",
        "The Practitioner (Practitioner/{id} or {id})",
    ),
];

pub(crate) fn params_of(ty: &str) -> &'static [SearchParam] {
    match ty {
        "Patient" => PATIENT_PARAMS,
        "Location" => LOCATION_PARAMS,
        "Organization" => ORGANIZATION_PARAMS,
        "PractitionerRole" => ROLE_PARAMS,
        _ => &[],
    }
}

fn name_parts(body: &Json) -> Vec<String> {
    let mut parts: Vec<String> = body
        .get("name")
        .and_then(Value::as_str)
        .map(str::to_owned)
        .into_iter()
        .collect();
    for name in objects(body.get("name")) {
        parts.extend(
            name.get("family")
                .and_then(Value::as_str)
                .map(str::to_owned),
        );
        parts.extend(name.get("text").and_then(Value::as_str).map(str::to_owned));
        parts.extend(strings(name.get("given")).map(str::to_owned));
    }
    parts
}

fn matches(record: &Record, k: &str, v: &str) -> bool {
    let body = record.body();
    match k {
        "_id" => v.split(',').any(|id| id == record.id),
        "name" => {
            let q = v.to_lowercase();
            name_parts(body)
                .iter()
                .any(|p| p.to_lowercase().contains(&q))
        }
        "practitioner" => {
            let want = format!("Practitioner/{}", reference_id(v, "Practitioner"));
            body.get("practitioner")
                .and_then(|p| p.get("reference"))
                .and_then(Value::as_str)
                == Some(want.as_str())
        }
        _ => true,
    }
}

pub(crate) fn search(ctx: &Ctx<'_>, ty: &str) -> Result<Response, ApiError> {
    auth::check(ctx, ty, Access::Search, None)?;
    let mut params = ctx.query.clone();
    let paging = take_paging(&mut params)?;
    check_known(ty, &mut params, params_of(ty), false)?;
    let bundle = ctx.app.store.read(|state| {
        let found: Vec<&Record> = state
            .all(ty)
            .into_iter()
            .filter(|r| params.iter().all(|(k, v)| matches(r, k, v)))
            .collect();
        let total = found.len();
        let entries = page_of(found, paging)
            .iter()
            .map(|r| entry(&ctx.base, r.resource(), Some("match")))
            .collect();
        searchset(ctx, ty, &params, paging, Page { total, entries })
    });
    Ok(fhir(StatusCode::OK, &bundle))
}
