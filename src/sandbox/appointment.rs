//! Appointment as the Canvas API documents it (seed 004, and the older page 001):
//! created only as `proposed`, appointment types and reasons for visit looked up in the
//! server's configuration, a contained meeting Endpoint, updates that keep what they
//! omit, the cancelled status as final, double booking, and search.

use std::cmp::Ordering;
use std::sync::LazyLock;

use axum::body::Bytes;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use jiff::Timestamp;
use jiff::civil::Date;
use jiff::tz::TimeZone;
use regex::Regex;
use serde_json::{Value, json};

use crate::sandbox::auth::{self, Access};
use crate::sandbox::core::{
    ApiError, Ctx, Page, SearchParam, check_body_id, check_if_match, check_known, entry, fhir,
    objects, page_of, parse_resource, reference_id, require_json_body, searchset, take_paging,
    write_response,
};
use crate::sandbox::practitioner::ordered;
use crate::sandbox::seed::{
    APPOINTMENT_TYPES, AppointmentType, CANVAS_BOT, INTERNAL, REASONS, SNOMED,
};
use crate::sandbox::store::{Json, Record, State};

const TY: &str = "Appointment";
const AUTH_DEFECT: Option<&str> = Some("APPT-AUTH");

/// The statuses an update accepts ("proposed, pending, booked, arrived, fulfilled,
/// cancelled, noshow, checked-in").
const UPDATE_STATUSES: &[&str] = &[
    "proposed",
    "pending",
    "booked",
    "arrived",
    "fulfilled",
    "cancelled",
    "noshow",
    "checked-in",
];
/// "Canvas currently does not support marking an appointment as entered-in-error or waitlist."
const REFUSED_STATUSES: &[&str] = &["entered-in-error", "waitlist"];
/// Statuses that no longer hold the practitioner's time.
const FREE_STATUSES: &[&str] = &["cancelled", "noshow", "entered-in-error"];

const MEETING: &str = "appointment-meeting-endpoint";
/// The id the meeting Endpoint is read back with, as in the seed's read example.
const MEETING_STORED: &str = "appointment-meeting-endpoint-0";
/// The meeting Endpoint's connectionType when the client sends none. FHIR R4's
/// endpoint-connection-type codes (an extensible binding) have none for a plain web
/// link, so the code is the sandbox's own.
const MEETING_CONNECTION_SYSTEM: &str =
    "https://sandbox.invalid/fhir/CodeSystem/endpoint-connection-type";

const ORDER: &[&str] = &[
    "resourceType",
    "contained",
    "identifier",
    "status",
    "appointmentType",
    "reasonCode",
    "description",
    "supportingInformation",
    "start",
    "end",
    "participant",
];

/// The fields handled one by one; every other field is taken as sent.
const HANDLED: &[&str] = &[
    "resourceType",
    "id",
    "meta",
    "status",
    "appointmentType",
    "reasonCode",
    "description",
    "participant",
    "start",
    "end",
    "contained",
    "supportingInformation",
    "identifier",
];

pub(crate) const SEARCH_PARAMS: &[SearchParam] = &[
    SearchParam::new("_id", "token", "A Canvas-issued unique identifier"),
    SearchParam::new(
        "patient",
        "reference",
        "A FHIR Patient reference (Patient/{id} or {id})",
    ),
    SearchParam::new(
        "practitioner",
        "reference",
        "A FHIR Practitioner reference (Practitioner/{id} or {id})",
    ),
    SearchParam::new(
        "status",
        "token",
        "The status of the appointment (comma = or)",
    ),
    SearchParam::new(
        "appointment-type",
        "token",
        "The code value under appointmentType.coding ({code} or {system}|{code})",
    ),
    SearchParam::new(
        "location",
        "reference",
        "The location of the appointment (Location/{id} or {id})",
    ),
    SearchParam::new(
        "date",
        "date",
        "The start, in UTC: [eq|gt|ge|lt|le]YYYY-MM-DD (or an instant); at most two, for a range",
    ),
    SearchParam::new(
        "_sort",
        "special",
        "date, patient, practitioner; prefix with - to sort descending",
    ),
];

// ---------------------------------------------------------------------------------------
// Field rules

/// "Seconds and milliseconds can be omitted, but YYYY-MM-DDTHH:MM are required."
static INSTANT: LazyLock<Regex> = LazyLock::new(|| {
    Regex::new(
        r"^(\d{4}-\d{2}-\d{2})T(\d{2}):(\d{2})(?::(\d{2})(\.\d{1,9})?)?(Z|[+-]\d{2}:\d{2})?$",
    )
    .expect("the instant pattern is valid")
});

fn parse_instant(s: &str) -> Option<Timestamp> {
    let c = INSTANT.captures(s)?;
    let seconds = c.get(4).map_or("00", |m| m.as_str());
    let fraction = c.get(5).map_or("", |m| m.as_str());
    let offset = c.get(6).map_or("Z", |m| m.as_str());
    format!("{}T{}:{}:{seconds}{fraction}{offset}", &c[1], &c[2], &c[3])
        .parse()
        .ok()
}

fn render_instant(ts: Timestamp) -> String {
    ts.strftime("%Y-%m-%dT%H:%M:%S+00:00").to_string()
}

/// Normalizes `start`/`end` to `YYYY-MM-DDTHH:MM:SS+00:00`.
fn time_field(ctx: &Ctx<'_>, name: &str, value: &Value) -> Result<Value, ApiError> {
    if let Some(ts) = value.as_str().and_then(parse_instant) {
        return Ok(Value::String(render_instant(ts)));
    }
    if ctx.defect("APPT-START-FORMAT") {
        return Ok(value.clone());
    }
    Err(ApiError::invalid(format!(
        "{name} {value} is not a valid instant: at least YYYY-MM-DDTHH:MM is required \
         (seconds, milliseconds and the offset are optional)"
    )))
}

fn supported_system(system: &str) -> bool {
    system == SNOMED || system.eq_ignore_ascii_case(INTERNAL)
}

fn lookup_type(system: &str, code: &str) -> Option<&'static AppointmentType> {
    APPOINTMENT_TYPES.iter().find(|t| {
        let system_ok = if t.system == INTERNAL {
            system.eq_ignore_ascii_case(INTERNAL)
        } else {
            system == t.system
        };
        system_ok && t.code == code
    })
}

fn type_value(t: &AppointmentType, system: &str) -> Value {
    json!({ "coding": [{ "system": system, "code": t.code, "display": t.display }] })
}

/// The default type ("the note type that has `Is default appointment type`").
fn default_type() -> Option<Value> {
    APPOINTMENT_TYPES
        .iter()
        .find(|t| t.is_default)
        .map(|t| type_value(t, t.system))
}

/// appointmentType: one SNOMED or INTERNAL coding, existing, scheduleable.
fn appointment_type(ctx: &Ctx<'_>, value: &Value) -> Result<Value, ApiError> {
    let codings: Vec<&Json> = objects(value.get("coding")).collect();
    let system_of = |c: &Json| {
        c.get("system")
            .and_then(Value::as_str)
            .unwrap_or("")
            .to_owned()
    };
    let one_supported = codings.len() == 1 && supported_system(&system_of(codings[0]));
    let lenient = ctx.defect("APPT-TYPE-ONE-CODING") && !codings.is_empty();
    if !one_supported && !lenient {
        return Err(ApiError::invalid(format!(
            "appointmentType must contain exactly one coding, with system {SNOMED} (SNOMED) or \
             {INTERNAL}; got {} coding(s)",
            codings.len()
        )));
    }
    let coding = codings[0];
    let system = system_of(coding);
    let code = coding.get("code").and_then(Value::as_str).unwrap_or("");
    match lookup_type(&system, code) {
        None if ctx.defect("APPT-TYPE-UNKNOWN") => Ok(json!({ "coding": [coding] })),
        None => Err(ApiError::processing(format!(
            "Appointment Create Error: Appointment Type does not exist with system: {system} and code: {code}"
        ))),
        Some(t) if !t.scheduleable && !ctx.defect("APPT-TYPE-UNSCHEDULABLE") => Err(
            ApiError::business("Appointment Create Error: Appointment type must be scheduleable"),
        ),
        Some(t) => Ok(type_value(t, &system)),
    }
}

/// reasonCode (only the first is kept, structured codes must exist) and description
/// (always the reasonCode text), applied onto `target`.
fn apply_reason(ctx: &Ctx<'_>, target: &mut Json, sent: &Json) -> Result<(), ApiError> {
    if let Some(value) = sent.get("reasonCode") {
        let Some(items) = value.as_array().filter(|a| a.iter().all(Value::is_object)) else {
            return Err(ApiError::invalid(
                "reasonCode must be a list of CodeableConcepts",
            ));
        };
        let keep_all = ctx.defect("APPT-REASON-FIRST");
        let items: Vec<Value> = if keep_all {
            items.clone()
        } else {
            items.iter().take(1).cloned().collect()
        };
        let code = items
            .first()
            .and_then(|r| objects(r.get("coding")).next())
            .and_then(|c| c.get("code"))
            .and_then(Value::as_str);
        if let Some(code) = code
            && !keep_all
            && !REASONS.iter().any(|r| r.code == code)
        {
            return Err(ApiError::processing(format!(
                "structured reason for visit with code {code} does not exist"
            )));
        }
        if items.is_empty() {
            target.shift_remove("reasonCode");
        } else {
            target.insert("reasonCode".into(), Value::Array(items));
        }
    }
    if ctx.defect("APPT-DESCRIPTION-MIRRORS") {
        if let Some(d) = sent.get("description") {
            target.insert("description".into(), d.clone());
        }
        return Ok(());
    }
    // The deprecated description alone sets the reason text.
    if let (None, Some(Value::String(d))) = (sent.get("reasonCode"), sent.get("description")) {
        let reasons = target.entry("reasonCode").or_insert_with(|| json!([{}]));
        if let Some(first) = reasons.as_array_mut().and_then(|a| {
            if a.is_empty() {
                a.push(json!({}));
            }
            a.first_mut()
        }) && let Some(first) = first.as_object_mut()
        {
            first.insert("text".into(), Value::String(d.clone()));
        }
    }
    let text = target
        .get("reasonCode")
        .and_then(|r| r.get(0))
        .and_then(|r| r.get("text"))
        .cloned();
    match text {
        Some(t) => target.insert("description".into(), t),
        None => target.shift_remove("description"),
    };
    Ok(())
}

/// participant: must name a Practitioner; a blank practitioner id means Canvas Bot.
fn participants(value: &Value) -> Result<Vec<Value>, ApiError> {
    let Some(items) = value.as_array().filter(|a| a.iter().all(Value::is_object)) else {
        return Err(ApiError::invalid("participant must be a list of objects"));
    };
    let mut out = Vec::new();
    for item in items {
        let mut p = item.as_object().cloned().unwrap_or_default();
        let mut actor = p
            .get("actor")
            .and_then(Value::as_object)
            .cloned()
            .unwrap_or_default();
        if let Some(reference) = actor.get("reference").and_then(Value::as_str) {
            let reference = match reference.trim_end_matches('/') {
                "Practitioner" => format!("Practitioner/{CANVAS_BOT}"),
                _ => reference.to_owned(),
            };
            if !actor.contains_key("type")
                && let Some((ty, _)) = reference.split_once('/')
            {
                actor.insert("type".into(), Value::String(ty.to_owned()));
            }
            actor.insert("reference".into(), Value::String(reference));
        }
        p.insert("actor".into(), Value::Object(actor));
        p.entry("status")
            .or_insert_with(|| Value::String("accepted".into()));
        out.push(Value::Object(p));
    }
    Ok(out)
}

fn references<'a>(appt: &'a Json, field: &str, ty: &str) -> Vec<&'a str> {
    let items: Box<dyn Iterator<Item = &Json>> = if field == "participant" {
        Box::new(objects(appt.get("participant")).filter_map(|p| p.get("actor")?.as_object()))
    } else {
        Box::new(objects(appt.get(field)))
    };
    items
        .filter_map(|r| {
            r.get("reference")?
                .as_str()?
                .strip_prefix(ty)?
                .strip_prefix('/')
        })
        .collect()
}

fn check_practitioner_present(ctx: &Ctx<'_>, appt: &Json) -> Result<(), ApiError> {
    if references(appt, "participant", "Practitioner").is_empty()
        && !ctx.defect("APPT-PRACTITIONER-REQUIRED")
    {
        return Err(ApiError::invalid(
            "participant must include a Practitioner (actor.reference Practitioner/{id})",
        ));
    }
    Ok(())
}

/// Participants and locations must exist.
fn check_references(state: &State, appt: &Json) -> Result<(), ApiError> {
    let wanted = [
        ("participant", "Practitioner"),
        ("participant", "Patient"),
        ("supportingInformation", "Location"),
    ];
    for (field, ty) in wanted {
        for id in references(appt, field, ty) {
            if state.get(ty, id).is_none() {
                return Err(ApiError::processing(format!("{ty}/{id} does not exist")));
            }
        }
    }
    Ok(())
}

fn is_meeting_id(id: &str) -> bool {
    id == MEETING
        || id
            .strip_prefix(MEETING)
            .and_then(|rest| rest.strip_prefix('-'))
            .is_some_and(|n| !n.is_empty() && n.bytes().all(|b| b.is_ascii_digit()))
}

fn list_of_objects(value: Option<&Value>, name: &str) -> Result<Vec<Value>, ApiError> {
    match value {
        None | Some(Value::Null) => Ok(Vec::new()),
        Some(Value::Array(a)) if a.iter().all(Value::is_object) => Ok(a.clone()),
        Some(_) => Err(ApiError::invalid(format!(
            "{name} must be a list of objects"
        ))),
    }
}

/// The meeting link: a contained Endpoint `appointment-meeting-endpoint` referenced from
/// supportingInformation. Stored (and read back) as `appointment-meeting-endpoint-0`.
fn apply_meeting(ctx: &Ctx<'_>, target: &mut Json, sent: &Json) -> Result<(), ApiError> {
    if !sent.contains_key("contained") && !sent.contains_key("supportingInformation") {
        return Ok(());
    }
    let pick = |name: &str| sent.get(name).or_else(|| target.get(name)).cloned();
    let contained = list_of_objects(pick("contained").as_ref(), "contained")?;
    let supporting = list_of_objects(
        pick("supportingInformation").as_ref(),
        "supportingInformation",
    )?;
    let endpoint = contained.iter().find(|c| {
        c.get("resourceType").and_then(Value::as_str) == Some("Endpoint")
            && c.get("id")
                .and_then(Value::as_str)
                .is_some_and(is_meeting_id)
    });
    let drop_link = ctx.defect("APPT-MEETING-LINK");
    let mut refs = Vec::new();
    let mut linked = false;
    for s in supporting {
        let reference = s
            .get("reference")
            .and_then(Value::as_str)
            .unwrap_or("")
            .to_owned();
        if let Some(local) = reference.strip_prefix('#') {
            if !is_meeting_id(local) || endpoint.is_none() {
                return Err(ApiError::invalid(format!(
                    "supportingInformation reference {reference} does not name a contained \
                     Endpoint `{MEETING}`"
                )));
            }
            if !drop_link {
                linked = true;
                refs.push(json!({ "reference": format!("#{MEETING_STORED}"), "type": "Endpoint" }));
            }
            continue;
        }
        let mut s = s.as_object().cloned().unwrap_or_default();
        if reference.starts_with("Location/") {
            s.entry("type")
                .or_insert_with(|| Value::String("Location".into()));
        }
        refs.push(Value::Object(s));
    }
    let mut kept = Vec::new();
    if linked && let Some(endpoint) = endpoint {
        if endpoint.get("address").and_then(Value::as_str).is_none() {
            return Err(ApiError::invalid(format!(
                "the contained Endpoint `{MEETING}` needs the meeting link as its address"
            )));
        }
        let mut e = endpoint.as_object().cloned().unwrap_or_default();
        e.insert("id".into(), Value::String(MEETING_STORED.into()));
        // "All other fields are automatically populated by Canvas and are not required":
        // what FHIR R4 requires of an Endpoint besides its address (status,
        // connectionType, payloadType) is filled in when the client leaves it out.
        e.entry("status")
            .or_insert_with(|| Value::String("active".into()));
        e.entry("connectionType").or_insert_with(|| {
            json!({ "system": MEETING_CONNECTION_SYSTEM, "code": "https", "display": "HTTPS web link" })
        });
        e.entry("payloadType").or_insert_with(|| {
            json!([{ "coding": [{
                "system": "http://terminology.hl7.org/CodeSystem/endpoint-payload-type",
                "code": "none",
                "display": "None"
            }] }])
        });
        kept.push(Value::Object(ordered(
            e,
            &[
                "resourceType",
                "id",
                "status",
                "connectionType",
                "payloadType",
                "address",
            ],
        )));
    }
    for (name, list) in [("contained", kept), ("supportingInformation", refs)] {
        if list.is_empty() {
            target.shift_remove(name);
        } else {
            target.insert(name.into(), Value::Array(list));
        }
    }
    Ok(())
}

fn with_new_id(item: &Value) -> Value {
    let mut out = Json::new();
    out.insert("id".into(), Value::String(uuid::Uuid::new_v4().to_string()));
    for (k, v) in item.as_object().into_iter().flatten() {
        if k != "id" {
            out.insert(k.clone(), v.clone());
        }
    }
    Value::Object(out)
}

fn ended(identifier: &Value, today: Date) -> bool {
    identifier
        .get("period")
        .and_then(|p| p.get("end"))
        .and_then(Value::as_str)
        .and_then(|end| end.get(..10))
        .and_then(|d| d.parse::<Date>().ok())
        .is_some_and(|end| end < today)
}

/// identifier: on update the sent list replaces the stored identifiers still in effect;
/// an item sent with its stored id is updated in place.
fn apply_identifiers(
    ctx: &Ctx<'_>,
    target: &mut Json,
    sent: &Json,
    creating: bool,
) -> Result<(), ApiError> {
    if !sent.contains_key("identifier") {
        return Ok(());
    }
    let list = list_of_objects(sent.get("identifier"), "identifier")?;
    let stored = list_of_objects(target.get("identifier"), "identifier").unwrap_or_default();
    let id_of = |v: &Value| v.get("id").and_then(Value::as_str).map(str::to_owned);
    let out: Vec<Value> = if creating {
        list.iter().map(with_new_id).collect()
    } else if ctx.defect("APPT-IDENTIFIER-REPLACE") {
        stored
            .iter()
            .cloned()
            .chain(list.iter().map(with_new_id))
            .collect()
    } else {
        let today = Timestamp::now().to_zoned(TimeZone::UTC).date();
        let sent_ids: Vec<String> = list.iter().filter_map(id_of).collect();
        // "deleted if and only if the period.end date is in the future"
        let kept = stored
            .iter()
            .filter(|s| ended(s, today) && id_of(s).is_none_or(|id| !sent_ids.contains(&id)))
            .cloned();
        let replaced = list.iter().map(|item| match id_of(item) {
            Some(id)
                if stored
                    .iter()
                    .any(|s| id_of(s).as_deref() == Some(id.as_str())) =>
            {
                item.clone()
            }
            _ => with_new_id(item),
        });
        kept.chain(replaced).collect()
    };
    if out.is_empty() {
        target.shift_remove("identifier");
    } else {
        target.insert("identifier".into(), Value::Array(out));
    }
    Ok(())
}

fn status_of(appt: &Json) -> &str {
    appt.get("status").and_then(Value::as_str).unwrap_or("")
}

fn interval(appt: &Json) -> Option<(Timestamp, Timestamp)> {
    let at = |k: &str| appt.get(k).and_then(Value::as_str).and_then(parse_instant);
    Some((at("start")?, at("end")?))
}

/// "If double booking is not allowed and the Appointment Create or Appointment Update
/// request is trying to book an appointment for a given Provider that already has a
/// scheduled appointment at that time" → 422.
fn check_double_booking(
    ctx: &Ctx<'_>,
    state: &State,
    appt: &Json,
    self_id: Option<&str>,
) -> Result<(), ApiError> {
    if FREE_STATUSES.contains(&status_of(appt)) {
        return Ok(());
    }
    let Some((start, end)) = interval(appt).filter(|(s, e)| s < e) else {
        return Ok(());
    };
    let mine = references(appt, "participant", "Practitioner");
    let conflict = state.all(TY).into_iter().any(|other| {
        let body = other.body();
        Some(other.id.as_str()) != self_id
            && !FREE_STATUSES.contains(&status_of(body))
            && references(body, "participant", "Practitioner")
                .iter()
                .any(|p| mine.contains(p))
            && interval(body).is_some_and(|(s, e)| s < end && start < e)
    });
    let refuse = if ctx.app.settings.double_booking_forbidden {
        conflict && !ctx.defect("APPT-DOUBLE-BOOKING-422")
    } else {
        conflict && ctx.defect("APPT-DOUBLE-BOOKING-ALLOWED")
    };
    if refuse {
        return Err(ApiError::business(
            "This appointment time is no longer available.",
        ));
    }
    Ok(())
}

fn copy_other_fields(target: &mut Json, sent: &Json) {
    for (k, v) in sent {
        if !HANDLED.contains(&k.as_str()) {
            target.insert(k.clone(), v.clone());
        }
    }
}

// ---------------------------------------------------------------------------------------
// Interactions

pub(crate) fn create(ctx: &Ctx<'_>, body: &Bytes) -> Result<Response, ApiError> {
    auth::check(ctx, TY, Access::Create, AUTH_DEFECT)?;
    require_json_body(ctx.headers)?;
    let sent = parse_resource(ctx, body, TY)?;
    let mut appt = Json::new();
    appt.insert("resourceType".into(), Value::String(TY.into()));
    copy_other_fields(&mut appt, &sent);

    // "Canvas only supports creating an appointment with the status "proposed". Any other
    // input will be ignored."
    let status = match sent.get("status") {
        Some(Value::String(s)) if ctx.defect("APPT-CREATE-PROPOSED") => s.clone(),
        _ => "proposed".to_owned(),
    };
    appt.insert("status".into(), Value::String(status));
    let appointment_type = match sent.get("appointmentType") {
        Some(t) => Some(appointment_type(ctx, t)?),
        None if ctx.defect("APPT-TYPE-DEFAULT") => None,
        None => default_type(),
    };
    if let Some(t) = appointment_type {
        appt.insert("appointmentType".into(), t);
    }
    apply_reason(ctx, &mut appt, &sent)?;
    if let Some(p) = sent.get("participant") {
        appt.insert("participant".into(), Value::Array(participants(p)?));
    }
    check_practitioner_present(ctx, &appt)?;
    for name in ["start", "end"] {
        let value = sent
            .get(name)
            .ok_or_else(|| ApiError::invalid(format!("{name} is required")))?;
        appt.insert(name.into(), time_field(ctx, name, value)?);
    }
    apply_meeting(ctx, &mut appt, &sent)?;
    apply_identifiers(ctx, &mut appt, &sent, true)?;
    let appt = ordered(appt, ORDER);

    ctx.app.store.write(|state| {
        check_references(state, &appt)?;
        check_double_booking(ctx, state, &appt, None)?;
        let record = state.create(TY, None, appt, Json::new(), true);
        let status = if ctx.defect("APPT-CREATE") {
            StatusCode::OK
        } else {
            StatusCode::CREATED
        };
        Ok(write_response(ctx, status, TY, record, true))
    })
}

fn apply_status(ctx: &Ctx<'_>, target: &mut Json, sent: &Json) -> Result<(), ApiError> {
    let old = status_of(target).to_owned();
    let new = match sent.get("status") {
        None => {
            // "If the status is removed, the update will default to what it was previously set to."
            if ctx.defect("APPT-STATUS-OMITTED-KEPT") {
                target.insert("status".into(), Value::String("proposed".into()));
            }
            return Ok(());
        }
        Some(Value::String(s)) => s.as_str(),
        Some(other) => return Err(ApiError::invalid(format!("status {other} is not a string"))),
    };
    if REFUSED_STATUSES.contains(&new) && !ctx.defect("APPT-UPDATE-STATUSES") {
        return Err(ApiError::invalid(format!(
            "status {new} is not supported on update; supported: {}",
            UPDATE_STATUSES.join(", ")
        )));
    }
    if !UPDATE_STATUSES.contains(&new) && !REFUSED_STATUSES.contains(&new) {
        return Err(ApiError::invalid(format!(
            "unknown status {new}; supported: {}",
            UPDATE_STATUSES.join(", ")
        )));
    }
    // "Once an appointment's status is updated to "cancelled" it cannot be changed to a
    // different status."
    if old == "cancelled" && new != "cancelled" && !ctx.defect("APPT-CANCELLED-FINAL") {
        return Err(ApiError::business(format!(
            "the appointment is cancelled; its status cannot be changed to {new}"
        )));
    }
    target.insert("status".into(), Value::String(new.to_owned()));
    Ok(())
}

pub(crate) fn update(ctx: &Ctx<'_>, id: &str, body: &Bytes) -> Result<Response, ApiError> {
    auth::check(ctx, TY, Access::Update, AUTH_DEFECT)?;
    require_json_body(ctx.headers)?;
    let sent = parse_resource(ctx, body, TY)?;
    check_body_id(ctx, &sent, id)?;
    ctx.app.store.write(|state| {
        let record = state
            .get(TY, id)
            .ok_or_else(|| ApiError::not_found(format!("Unknown Appointment resource '{id}'")))?;
        if !ctx.defect("APPT-PRECONDITION") {
            check_if_match(ctx, record.current().vid)?;
        }
        let mut appt = record.body().clone();
        if ctx.defect("APPT-UPDATE-KEEPS-OMITTED") {
            let kept = ["resourceType", "status", "start", "end", "participant"];
            appt.retain(|k, _| kept.contains(&k.as_str()) || sent.contains_key(k));
        }
        apply_status(ctx, &mut appt, &sent)?;
        if let Some(t) = sent.get("appointmentType") {
            appt.insert("appointmentType".into(), appointment_type(ctx, t)?);
        }
        apply_reason(ctx, &mut appt, &sent)?;
        if let Some(p) = sent.get("participant") {
            appt.insert("participant".into(), Value::Array(participants(p)?));
            check_practitioner_present(ctx, &appt)?;
        }
        for name in ["start", "end"] {
            if let Some(value) = sent.get(name) {
                appt.insert(name.into(), time_field(ctx, name, value)?);
            }
        }
        apply_meeting(ctx, &mut appt, &sent)?;
        apply_identifiers(ctx, &mut appt, &sent, false)?;
        copy_other_fields(&mut appt, &sent);
        let appt = ordered(appt, ORDER);
        check_references(state, &appt)?;
        check_double_booking(ctx, state, &appt, Some(id))?;

        if ctx.defect("CORE-UPDATE") {
            return Ok(write_response(ctx, StatusCode::OK, TY, record, false));
        }
        let record = state
            .update(TY, id, appt, Json::new())
            .ok_or_else(|| ApiError::not_found(format!("Unknown Appointment resource '{id}'")))?;
        Ok(write_response(ctx, StatusCode::OK, TY, record, false))
    })
}

/// DELETE is not part of the documented API: 405 (unless the APPT-METHOD defect).
pub(crate) fn delete(ctx: &Ctx<'_>, id: &str) -> Result<Response, ApiError> {
    if !ctx.defect("APPT-METHOD") {
        return Err(ApiError::method_not_allowed(
            "DELETE",
            "Appointment",
            "GET, PUT",
        ));
    }
    auth::check(ctx, TY, Access::Update, AUTH_DEFECT)?;
    if ctx.app.store.write(|state| state.delete(TY, id)) {
        Ok(StatusCode::NO_CONTENT.into_response())
    } else {
        Err(ApiError::not_found(format!(
            "Unknown Appointment resource '{id}'"
        )))
    }
}

// ---------------------------------------------------------------------------------------
// Search

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Prefix {
    Eq,
    Gt,
    Ge,
    Lt,
    Le,
}

#[derive(Debug, Clone, Copy)]
enum When {
    Day(Date),
    Instant(Timestamp),
}

#[derive(Debug, Clone, Copy)]
struct DateFilter {
    prefix: Prefix,
    when: When,
}

impl DateFilter {
    fn parse(ctx: &Ctx<'_>, raw: &str) -> Result<Self, ApiError> {
        let (prefix, rest) = match raw.get(..2) {
            Some("eq") => (Prefix::Eq, &raw[2..]),
            Some("gt") => (Prefix::Gt, &raw[2..]),
            Some("ge") => (Prefix::Ge, &raw[2..]),
            Some("lt") => (Prefix::Lt, &raw[2..]),
            Some("le") => (Prefix::Le, &raw[2..]),
            _ => (Prefix::Eq, raw),
        };
        let when = if rest.len() == 10 {
            rest.parse::<Date>().ok().map(When::Day)
        } else {
            parse_instant(rest).map(When::Instant)
        };
        let when = when.ok_or_else(|| {
            ApiError::invalid(format!(
                "date `{raw}` is not [eq|gt|ge|lt|le]YYYY-MM-DD (or an instant)"
            ))
        })?;
        let prefix = if ctx.defect("APPT-SEARCH") {
            Prefix::Eq
        } else {
            prefix
        };
        Ok(Self { prefix, when })
    }

    fn matches(&self, start: Option<Timestamp>) -> bool {
        let Some(start) = start else {
            return false;
        };
        let ord = match self.when {
            When::Day(d) => start.to_zoned(TimeZone::UTC).date().cmp(&d),
            When::Instant(t) => start.cmp(&t),
        };
        match self.prefix {
            Prefix::Eq => ord == Ordering::Equal,
            Prefix::Gt => ord == Ordering::Greater,
            Prefix::Ge => ord != Ordering::Less,
            Prefix::Lt => ord == Ordering::Less,
            Prefix::Le => ord != Ordering::Greater,
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum SortKey {
    Date,
    Patient,
    Practitioner,
}

fn parse_sort(raw: &str) -> Result<Vec<(SortKey, bool)>, ApiError> {
    raw.split(',')
        .map(|k| {
            let (desc, name) = k.strip_prefix('-').map_or((false, k), |n| (true, n));
            let key = match name {
                "date" => SortKey::Date,
                "patient" => SortKey::Patient,
                "practitioner" => SortKey::Practitioner,
                _ => {
                    return Err(ApiError::invalid(format!(
                        "_sort `{k}` is not supported; use date, patient, practitioner (- for descending)"
                    )));
                }
            };
            Ok((key, desc))
        })
        .collect()
}

fn sort_value(appt: &Json, key: SortKey) -> (Option<Timestamp>, Option<String>) {
    match key {
        SortKey::Date => (
            appt.get("start")
                .and_then(Value::as_str)
                .and_then(parse_instant),
            None,
        ),
        SortKey::Patient => (
            None,
            references(appt, "participant", "Patient")
                .first()
                .map(|s| s.to_string()),
        ),
        SortKey::Practitioner => (
            None,
            references(appt, "participant", "Practitioner")
                .first()
                .map(|s| s.to_string()),
        ),
    }
}

fn any_of(list: &str, f: impl Fn(&str) -> bool) -> bool {
    list.split(',').any(|v| f(v.trim()))
}

fn matches(appt: &Record, k: &str, v: &str) -> bool {
    let body = appt.body();
    match k {
        "_id" => any_of(v, |id| id == appt.id),
        "patient" => any_of(v, |p| {
            references(body, "participant", "Patient").contains(&reference_id(p, "Patient"))
        }),
        "practitioner" => any_of(v, |p| {
            references(body, "participant", "Practitioner")
                .contains(&reference_id(p, "Practitioner"))
        }),
        "status" => any_of(v, |s| status_of(body) == s),
        "location" => any_of(v, |l| {
            references(body, "supportingInformation", "Location")
                .contains(&reference_id(l, "Location"))
        }),
        "appointment-type" => any_of(v, |t| {
            let (system, code) = t.split_once('|').map_or((None, t), |(s, c)| (Some(s), c));
            objects(body.get("appointmentType").and_then(|a| a.get("coding"))).any(|c| {
                c.get("code").and_then(Value::as_str) == Some(code)
                    && system.is_none_or(|s| c.get("system").and_then(Value::as_str) == Some(s))
            })
        }),
        _ => true,
    }
}

pub(crate) fn search(ctx: &Ctx<'_>) -> Result<Response, ApiError> {
    auth::check(ctx, TY, Access::Search, AUTH_DEFECT)?;
    let mut params = ctx.query.clone();
    let paging = take_paging(&mut params)?;
    check_known(TY, &mut params, SEARCH_PARAMS, false)?;
    let dates: Vec<DateFilter> = params
        .iter()
        .filter(|(k, _)| k == "date")
        .map(|(_, v)| DateFilter::parse(ctx, v))
        .collect::<Result<_, _>>()?;
    if dates.len() > 2 {
        return Err(ApiError::invalid(
            "at most two date parameters are accepted (for a range)",
        ));
    }
    let mut sort = Vec::new();
    for (_, v) in params.iter().filter(|(k, _)| k == "_sort") {
        sort.extend(parse_sort(v)?);
    }
    let bundle = ctx.app.store.read(|state| {
        let mut found: Vec<&Record> = state
            .all(TY)
            .into_iter()
            .filter(|r| params.iter().all(|(k, v)| matches(r, k, v)))
            .filter(|r| {
                let start = r
                    .body()
                    .get("start")
                    .and_then(Value::as_str)
                    .and_then(parse_instant);
                dates.iter().all(|d| d.matches(start))
            })
            .collect();
        found.sort_by(|a, b| {
            sort.iter()
                .map(|(key, desc)| {
                    let (x, y) = (sort_value(a.body(), *key), sort_value(b.body(), *key));
                    // Missing values sort last either way.
                    let ord = match (
                        x.0.is_some() || x.1.is_some(),
                        y.0.is_some() || y.1.is_some(),
                    ) {
                        (true, false) => return Ordering::Less,
                        (false, true) => return Ordering::Greater,
                        _ => x.cmp(&y),
                    };
                    if *desc { ord.reverse() } else { ord }
                })
                .find(|o| *o != Ordering::Equal)
                .unwrap_or(Ordering::Equal)
        });
        let total = found.len();
        let entries = page_of(found, &paging)
            .iter()
            .map(|r| entry(ctx, r.resource(), Some("match")))
            .collect();
        searchset(ctx, TY, &params, &paging, Page { total, entries })
    });
    Ok(fhir(StatusCode::OK, &bundle))
}
