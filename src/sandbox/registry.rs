//! The provincial provider registry's Practitioner search (seed 003, also 002):
//! `identifier={issuer}|{value}` lookups, the address/gender/communication filters, the
//! related PractitionerRole/Location/Organization returned as includes, and
//! `POST /Practitioner/_search`, whose Content-Type must be `application/fhir+json`.

use axum::body::Bytes;
use axum::response::Response;
use serde_json::Value;

use crate::sandbox::auth::{self, Access};
use crate::sandbox::core::{ApiError, Ctx, content_type, objects, strings};
use crate::sandbox::practitioner;
use crate::sandbox::store::{Json, Record, State};

const GENDERS: &[&str] = &["male", "female", "other", "unknown"];

/// `identifier` as searched: the issuer (None only under the PPR-ISSUER-REQUIRED defect).
#[derive(Debug, Clone)]
struct IdentifierQuery {
    system: Option<String>,
    value: String,
}

/// The registry's filters of one Practitioner search.
#[derive(Debug, Default)]
pub(crate) struct RegistryFilter {
    identifiers: Vec<IdentifierQuery>,
    addresses: Vec<String>,
    genders: Vec<String>,
    communications: Vec<(Option<String>, String)>,
}

impl RegistryFilter {
    /// Takes one registry parameter (the caller has already refused unknown names).
    pub(crate) fn add(&mut self, ctx: &Ctx<'_>, name: &str, value: &str) -> Result<(), ApiError> {
        match name {
            "identifier" => self.identifiers.push(parse_identifier(ctx, value)?),
            "address" => self.addresses.push(value.to_lowercase()),
            "gender" => {
                let g = value.trim().to_ascii_lowercase();
                if !GENDERS.contains(&g.as_str()) {
                    return Err(ApiError::invalid(format!(
                        "gender must be one of {}, got `{value}`",
                        GENDERS.join(", ")
                    )));
                }
                self.genders.push(g);
            }
            "communication" => {
                let (system, code) = match value.split_once('|') {
                    Some((s, c)) if !s.is_empty() => (Some(s.to_owned()), c),
                    Some((_, c)) => (None, c),
                    None => (None, value),
                };
                self.communications.push((system, code.to_lowercase()));
            }
            _ => {}
        }
        Ok(())
    }

    /// A search by identifier looks one practitioner up in the registry.
    pub(crate) fn is_lookup(&self) -> bool {
        !self.identifiers.is_empty()
    }

    pub(crate) fn matches(&self, ctx: &Ctx<'_>, state: &State, record: &Record) -> bool {
        let body = record.body();
        let scoped = !ctx.defect("PPR-ISSUER-SCOPED");
        let identifiers_ok = self.identifiers.iter().all(|q| {
            objects(body.get("identifier")).any(|i| {
                let system = i.get("system").and_then(Value::as_str).map(str::trim);
                let system_ok = match (&q.system, scoped) {
                    (Some(want), true) => system == Some(want.trim()),
                    _ => true,
                };
                system_ok && i.get("value").and_then(Value::as_str) == Some(q.value.as_str())
            })
        });
        if !identifiers_ok {
            return false;
        }
        if ctx.defect("PPR-OTHER-PARAMS") {
            return true;
        }
        let gender = body.get("gender").and_then(Value::as_str);
        self.genders.iter().all(|g| gender == Some(g.as_str()))
            && self
                .addresses
                .iter()
                .all(|q| address_matches(state, record, q))
            && self
                .communications
                .iter()
                .all(|(system, code)| speaks(body, system.as_deref(), code))
    }
}

/// "All searches, by identifier, against PPR must be qualified with the Issuer code."
fn parse_identifier(ctx: &Ctx<'_>, raw: &str) -> Result<IdentifierQuery, ApiError> {
    let unqualified = |value: &str| {
        if ctx.defect("PPR-ISSUER-REQUIRED") && !value.is_empty() {
            Ok(IdentifierQuery {
                system: None,
                value: value.to_owned(),
            })
        } else {
            Err(ApiError::invalid(format!(
                "identifier `{raw}` must be qualified with its issuer: identifier={{issuer system}}|{{value}}"
            )))
        }
    };
    match raw.split_once('|') {
        None => unqualified(raw.trim()),
        Some((system, value)) if system.trim().is_empty() => unqualified(value.trim()),
        Some((_, value)) if value.trim().is_empty() => Err(ApiError::invalid(format!(
            "identifier `{raw}` has no value: identifier={{issuer system}}|{{value}}"
        ))),
        Some((system, value)) => Ok(IdentifierQuery {
            system: Some(system.trim().to_owned()),
            value: value.trim().to_owned(),
        }),
    }
}

fn address_text(address: &Json) -> Vec<&str> {
    ["city", "district", "state", "postalCode", "country", "text"]
        .iter()
        .filter_map(|k| address.get(*k).and_then(Value::as_str))
        .chain(strings(address.get("line")))
        .collect()
}

/// Part of an address of the practitioner, or of a location they work at (the registry
/// documents `address` as `Location.address`).
fn address_matches(state: &State, record: &Record, q: &str) -> bool {
    let hit = |a: &Json| address_text(a).iter().any(|t| t.to_lowercase().contains(q));
    if objects(record.body().get("address")).any(hit) {
        return true;
    }
    related(state, &[record.id.as_str()])
        .iter()
        .filter(|r| r.get("resourceType").and_then(Value::as_str) == Some("Location"))
        .filter_map(|r| r.get("address").and_then(Value::as_object))
        .any(hit)
}

fn speaks(body: &Json, system: Option<&str>, code: &str) -> bool {
    objects(body.get("communication")).any(|c| {
        let coded = objects(c.get("coding")).any(|coding| {
            let system_ok =
                system.is_none_or(|s| coding.get("system").and_then(Value::as_str) == Some(s));
            system_ok
                && coding
                    .get("code")
                    .and_then(Value::as_str)
                    .is_some_and(|v| v.eq_ignore_ascii_case(code))
        });
        coded
            || c.get("text")
                .and_then(Value::as_str)
                .is_some_and(|t| t.eq_ignore_ascii_case(code))
    })
}

fn reference<'a>(v: Option<&'a Value>, ty: &str) -> Option<&'a str> {
    v?.get("reference")?
        .as_str()?
        .strip_prefix(ty)?
        .strip_prefix('/')
}

/// The PractitionerRoles of these practitioners, and their Locations and Organizations,
/// each once.
pub(crate) fn related<'s>(state: &'s State, practitioner_ids: &[&str]) -> Vec<&'s Value> {
    let mut out: Vec<&Value> = Vec::new();
    let mut push = |v: &'s Value| {
        let key = |v: &Value| (v.get("resourceType").cloned(), v.get("id").cloned());
        if !out.iter().any(|o| key(o) == key(v)) {
            out.push(v);
        }
    };
    for role in state.all("PractitionerRole") {
        let body = role.body();
        let Some(who) = reference(body.get("practitioner"), "Practitioner") else {
            continue;
        };
        if !practitioner_ids.contains(&who) {
            continue;
        }
        push(role.resource());
        if let Some(org) = reference(body.get("organization"), "Organization")
            .and_then(|id| state.get("Organization", id))
        {
            push(org.resource());
        }
        for loc in body
            .get("location")
            .and_then(Value::as_array)
            .into_iter()
            .flatten()
        {
            if let Some(loc) =
                reference(Some(loc), "Location").and_then(|id| state.get("Location", id))
            {
                push(loc.resource());
            }
        }
    }
    out
}

/// `POST /Practitioner/_search?identifier=...`: the parameters are in the URL, and
/// the Content-Type must be `application/fhir+json` (seed 003's status code table:
/// "POST operation contains incorrect header value for "Content-Type" - should be
/// "application/fhir+json"" → 400).
pub(crate) fn post_search(ctx: &Ctx<'_>, body: &Bytes) -> Result<Response, ApiError> {
    auth::check(ctx, "Practitioner", Access::Search, Some("PPR-AUTH"))?;
    let ct = content_type(ctx.headers);
    if ct.as_deref() != Some("application/fhir+json") && !ctx.defect("PPR-CONTENT-TYPE") {
        return Err(ApiError::invalid(format!(
            "POST operation contains incorrect header value for \"Content-Type\" ({}) - should be \"application/fhir+json\"",
            ct.as_deref().unwrap_or("none")
        )));
    }
    let json_body = ct.as_deref() == Some("application/fhir+json");
    if json_body
        && !body.iter().all(u8::is_ascii_whitespace)
        && serde_json::from_slice::<Value>(body).is_err()
    {
        return Err(ApiError::invalid("the request body is not valid JSON"));
    }
    practitioner::search(ctx, true)
}
