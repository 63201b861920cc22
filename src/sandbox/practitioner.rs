//! Practitioner as the Canvas API documents it (seed 000): create, update with its
//! "omitted fields are deleted" rule, telecom and email rules, and search.
//!
//! The search endpoint is shared with the provider registry (seed 003): a search with an
//! `identifier` is a registry lookup (no Canvas defaults: inactive and non-scheduleable
//! practitioners are found too); any other search applies the Canvas defaults (active
//! only, scheduleable only). Both return related roles, locations and organizations as
//! `include` entries and an OperationOutcome entry when nothing matches.

use axum::body::Bytes;
use axum::http::StatusCode;
use axum::response::Response;
use serde_json::{Value, json};

use crate::sandbox::auth::{self, Access};
use crate::sandbox::core::{
    ApiError, Ctx, Page, SearchParam, check_body_id, check_if_match, check_known, entry, fhir,
    objects, outcome, page_of, parse_bool, parse_resource, require_json_body, searchset, strings,
    take_paging, write_response,
};
use crate::sandbox::registry::{self, RegistryFilter};
use crate::sandbox::seed::NPI_SYSTEM;
use crate::sandbox::store::{Json, Record, State};

const TY: &str = "Practitioner";
const EXT: &str = "http://schemas.canvasmedical.com/fhir/extensions/";
const SIGNATURE: &str = "practitioner-signature";
/// The documented username url, and the one the documented examples use.
const USERNAME: [&str; 2] = ["username", "practitioner-user-username"];

pub(crate) const SEARCH_PARAMS: &[SearchParam] = &[
    SearchParam::new("_id", "token", "A Canvas-issued unique identifier"),
    SearchParam::new(
        "name",
        "string",
        "Partial, case-insensitive match on any name part: family, given, prefix, suffix, text",
    ),
    SearchParam::new("email", "token", "Practitioner user email"),
    SearchParam::new("npiNumber", "token", "Practitioner NPI number"),
    SearchParam::new(
        "active",
        "token",
        "true or false, case-insensitive; without it only active practitioners are returned",
    ),
    SearchParam::new(
        "include-non-scheduleable-practitioners",
        "token",
        "true also returns active practitioners that are not scheduleable",
    ),
    SearchParam::new(
        "identifier",
        "token",
        "Registry lookup: {issuer system}|{value}; the issuer is required",
    ),
    SearchParam::new(
        "address",
        "string",
        "Part of an address of the practitioner or of a location they work at",
    ),
    SearchParam::new("gender", "token", "male | female | other | unknown"),
    SearchParam::new(
        "communication",
        "token",
        "A language code the practitioner communicates in (e.g. en, fr)",
    ),
];

// ---------------------------------------------------------------------------------------
// Create and update

fn field_objects(body: &Json, name: &str) -> Result<Option<Vec<Value>>, ApiError> {
    match body.get(name) {
        None | Some(Value::Null) => Ok(None),
        Some(Value::Array(items)) if items.iter().all(Value::is_object) => Ok(Some(items.clone())),
        Some(_) => Err(ApiError::invalid(format!(
            "{name} must be a list of objects"
        ))),
    }
}

fn item_id(item: &Value) -> Option<&str> {
    item.get("id").and_then(Value::as_str)
}

fn with_id(mut item: Value, id: String) -> Value {
    if let Some(map) = item.as_object_mut() {
        map.shift_remove("id");
        let mut out = Json::new();
        out.insert("id".into(), Value::String(id));
        out.extend(std::mem::take(map));
        *map = out;
    }
    item
}

fn fresh_id() -> String {
    uuid::Uuid::new_v4().to_string()
}

/// Address/telecom items on update: sent with a stored id → updated in place; without
/// one → created; stored items not sent → deleted. `keep_ids = false` is the defect.
fn merge_items(sent: Vec<Value>, stored: &[Value], keep_ids: bool) -> Vec<Value> {
    sent.into_iter()
        .map(|item| {
            let known = item_id(&item)
                .filter(|id| keep_ids && stored.iter().any(|s| item_id(s) == Some(id)))
                .map(str::to_owned);
            let id = known.unwrap_or_else(fresh_id);
            with_id(item, id)
        })
        .collect()
}

fn is_email(item: &Value) -> bool {
    item.get("system").and_then(Value::as_str) == Some("email")
}

fn rank1_emails(telecom: &[Value]) -> Vec<&str> {
    telecom
        .iter()
        .filter(|t| is_email(t) && t.get("rank").and_then(Value::as_u64) == Some(1))
        .map(|t| t.get("value").and_then(Value::as_str).unwrap_or(""))
        .collect()
}

/// "There must be exactly one contact field with 'system': 'email' and 'rank': 1."
fn check_rank1(ctx: &Ctx<'_>, telecom: &[Value]) -> Result<(), ApiError> {
    let n = rank1_emails(telecom).len();
    if n == 1 || ctx.defect("PRAC-EMAIL-RANK1") {
        return Ok(());
    }
    Err(ApiError::invalid(format!(
        "telecom must contain exactly one contact with system email and rank 1; found {n}"
    )))
}

/// "Updating email contact fields is not permitted": an email sent with its stored id
/// keeps its value, and the rank-1 email stays the one stored.
fn check_email_unchanged(
    ctx: &Ctx<'_>,
    sent: &[Value],
    stored: &[Value],
    result: &[Value],
) -> Result<(), ApiError> {
    if ctx.defect("PRAC-EMAIL-IMMUTABLE") {
        return Ok(());
    }
    let refuse = |old: &str, new: &str| {
        ApiError::business(format!(
            "Updating email contact fields is not permitted: `{old}` cannot become `{new}`"
        ))
    };
    for item in sent {
        let Some(old) = item_id(item)
            .and_then(|id| stored.iter().find(|s| item_id(s) == Some(id)))
            .filter(|s| is_email(s))
        else {
            continue;
        };
        let (old_value, new_value) = (old.get("value"), item.get("value"));
        if old_value != new_value || !is_email(item) {
            let old_value = old_value.and_then(Value::as_str).unwrap_or("");
            let new_value = new_value.and_then(Value::as_str).unwrap_or("");
            return Err(refuse(old_value, new_value));
        }
    }
    if let Some(old) = rank1_emails(stored).first() {
        let now = rank1_emails(result);
        if !now.contains(old) {
            return Err(refuse(old, now.first().copied().unwrap_or("")));
        }
    }
    Ok(())
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum ExtKind {
    Username,
    Signature,
    Other,
}

fn ext_kind(ext: &Value) -> ExtKind {
    let name = ext
        .get("url")
        .and_then(Value::as_str)
        .and_then(|u| u.strip_prefix(EXT));
    match name {
        Some(n) if USERNAME.contains(&n) => ExtKind::Username,
        Some(SIGNATURE) => ExtKind::Signature,
        _ => ExtKind::Other,
    }
}

/// What a signature extension carries: its file (`data`), a link (`url`), or nothing.
/// Both the flat form of the create example and the nested one of the update example.
enum SignaturePayload {
    Data(String),
    Url(String),
    Nothing,
}

fn signature_payload(ext: &Value) -> SignaturePayload {
    let attachments = std::iter::once(ext.get("valueAttachment"))
        .chain(objects(ext.get("extension")).map(|e| e.get("valueAttachment")))
        .flatten();
    let mut url = None;
    for a in attachments {
        if let Some(data) = a.get("data").and_then(Value::as_str) {
            return SignaturePayload::Data(data.to_owned());
        }
        if let Some(u) = a.get("url").and_then(Value::as_str) {
            url.get_or_insert_with(|| u.to_owned());
        }
    }
    url.map_or(SignaturePayload::Nothing, SignaturePayload::Url)
}

/// The signature as it is read back: a link to the stored file, in the flat form of the
/// create example. Not in the nested form of the update example: its inner extension has
/// no `url`, which FHIR R4 requires of every extension (Extension.url 1..1).
fn signature_extension(link: &str) -> Value {
    json!({
        "url": format!("{EXT}{SIGNATURE}"),
        "valueAttachment": { "url": link },
    })
}

fn new_signature_link() -> String {
    format!(
        "https://signatures.sandbox.invalid/{}.pdf",
        uuid::Uuid::new_v4().simple()
    )
}

fn ext_url(ext: &Value) -> Option<&str> {
    ext.get("url").and_then(Value::as_str)
}

/// Extensions on create: a signature file is kept (served as a link), a signature
/// given only as a url is ignored, everything else is stored as sent.
fn create_extensions(sent: Vec<Value>, hidden: &mut Json) -> Vec<Value> {
    let mut out = Vec::new();
    for ext in sent {
        if ext_kind(&ext) != ExtKind::Signature {
            out.push(ext);
            continue;
        }
        if let SignaturePayload::Data(data) = signature_payload(&ext) {
            hidden.insert("signature".into(), Value::String(data));
            out.push(signature_extension(&new_signature_link()));
        }
    }
    out
}

/// Extensions on update: the sent list replaces the stored one, except that the username
/// is kept when omitted and a signature sent as a url changes nothing.
fn update_extensions(
    ctx: &Ctx<'_>,
    sent: Vec<Value>,
    stored: &[Value],
    hidden: &mut Json,
) -> Vec<Value> {
    let keep_omitted = ctx.defect("PRAC-UPDATE-DELETES-OMITTED");
    let stored_of = |kind: ExtKind| stored.iter().filter(move |e| ext_kind(e) == kind);
    let mut out = Vec::new();
    let (mut saw_username, mut saw_signature) = (false, false);
    for ext in sent {
        match ext_kind(&ext) {
            ExtKind::Username => {
                saw_username = true;
                out.push(ext);
            }
            ExtKind::Signature => {
                saw_signature = true;
                match signature_payload(&ext) {
                    SignaturePayload::Data(data) => {
                        hidden.insert("signature".into(), Value::String(data));
                        out.push(signature_extension(&new_signature_link()));
                    }
                    SignaturePayload::Url(url) if ctx.defect("PRAC-SIGNATURE-URL-IGNORED") => {
                        hidden.shift_remove("signature");
                        out.push(signature_extension(&url));
                    }
                    // "If a 'url' for the signature is provided, it will be ignored."
                    SignaturePayload::Url(_) | SignaturePayload::Nothing => {
                        out.extend(stored_of(ExtKind::Signature).cloned());
                    }
                }
            }
            ExtKind::Other => out.push(ext),
        }
    }
    if !saw_username && !ctx.defect("PRAC-USERNAME-KEPT") {
        out.extend(stored_of(ExtKind::Username).cloned());
    }
    if !saw_signature && !keep_omitted {
        hidden.shift_remove("signature");
    }
    if keep_omitted {
        for ext in stored {
            let url = ext_url(ext);
            let present = out.iter().any(|e| ext_url(e) == url);
            let dropped_username = ext_kind(ext) == ExtKind::Username;
            if !present && !dropped_username {
                out.push(ext.clone());
            }
        }
    }
    out
}

/// Fills `name[].text` from the parts, as the Canvas read example shows it.
fn fill_name_text(resource: &mut Json) {
    let Some(Value::Array(names)) = resource.get_mut("name") else {
        return;
    };
    for name in names.iter_mut().filter_map(Value::as_object_mut) {
        if name.contains_key("text") {
            continue;
        }
        let parts: Vec<String> = strings(name.get("prefix"))
            .chain(strings(name.get("given")))
            .chain(name.get("family").and_then(Value::as_str))
            .chain(strings(name.get("suffix")))
            .map(str::to_owned)
            .collect();
        if !parts.is_empty() {
            name.insert("text".into(), Value::String(parts.join(" ")));
        }
    }
}

const ORDER: &[&str] = &[
    "resourceType",
    "extension",
    "identifier",
    "active",
    "name",
    "telecom",
    "address",
    "gender",
    "birthDate",
    "photo",
    "qualification",
    "communication",
];

/// Puts the known elements in FHIR order, then the rest as sent.
pub(crate) fn ordered(mut resource: Json, order: &[&str]) -> Json {
    let mut out = Json::new();
    for key in order {
        if let Some(v) = resource.shift_remove(*key) {
            out.insert((*key).to_owned(), v);
        }
    }
    out.extend(resource);
    out
}

fn set_list(resource: &mut Json, name: &str, items: Option<Vec<Value>>) {
    match items {
        Some(items) if !items.is_empty() => {
            resource.insert(name.into(), Value::Array(items));
        }
        _ => {
            resource.shift_remove(name);
        }
    }
}

/// The fields handled one by one; every other field is taken as sent.
const HANDLED: &[&str] = &[
    "resourceType",
    "id",
    "meta",
    "extension",
    "telecom",
    "address",
];

/// A new Practitioner holding the fields of `sent` that no rule treats specially,
/// as sent; create and update then add the fields they handle.
fn unhandled_fields(sent: &Json) -> Json {
    let mut resource = Json::new();
    resource.insert("resourceType".into(), Value::String(TY.into()));
    for (k, v) in sent {
        if !HANDLED.contains(&k.as_str()) {
            resource.insert(k.clone(), v.clone());
        }
    }
    resource
}

pub(crate) fn create(ctx: &Ctx<'_>, body: &Bytes) -> Result<Response, ApiError> {
    auth::check(ctx, TY, Access::Create, Some("PRAC-AUTH"))?;
    require_json_body(ctx.headers)?;
    let sent = parse_resource(ctx, body, TY)?;
    let telecom = field_objects(&sent, "telecom")?
        .filter(|t| !t.is_empty())
        .ok_or_else(|| ApiError::invalid("telecom is required and cannot be empty"))?;
    let telecom: Vec<Value> = telecom
        .into_iter()
        .map(|t| with_id(t, fresh_id()))
        .collect();
    check_rank1(ctx, &telecom)?;
    let address = field_objects(&sent, "address")?
        .map(|a| a.into_iter().map(|a| with_id(a, fresh_id())).collect());
    let mut hidden = Json::new();
    hidden.insert("scheduleable".into(), Value::Bool(true));
    let extension = create_extensions(
        field_objects(&sent, "extension")?.unwrap_or_default(),
        &mut hidden,
    );

    let mut resource = unhandled_fields(&sent);
    set_list(&mut resource, "extension", Some(extension));
    set_list(&mut resource, "telecom", Some(telecom));
    set_list(&mut resource, "address", address);
    if !resource.contains_key("active") && !ctx.defect("PRAC-ACTIVE-DEFAULT") {
        resource.insert("active".into(), Value::Bool(true));
    }
    fill_name_text(&mut resource);
    let resource = ordered(resource, ORDER);

    ctx.app.store.write(|state| {
        let record = state.create(TY, None, resource, hidden, true);
        let status = if ctx.defect("PRAC-CREATE") {
            StatusCode::OK
        } else {
            StatusCode::CREATED
        };
        Ok(write_response(ctx, status, TY, record, true))
    })
}

pub(crate) fn update(ctx: &Ctx<'_>, id: &str, body: &Bytes) -> Result<Response, ApiError> {
    auth::check(ctx, TY, Access::Update, Some("PRAC-AUTH"))?;
    require_json_body(ctx.headers)?;
    let sent = parse_resource(ctx, body, TY)?;
    check_body_id(ctx, &sent, id)?;
    let keep_omitted = ctx.defect("PRAC-UPDATE-DELETES-OMITTED");
    let sent_telecom = field_objects(&sent, "telecom")?;
    let sent_address = field_objects(&sent, "address")?;
    let sent_extension = field_objects(&sent, "extension")?.unwrap_or_default();

    ctx.app.store.write(|state| {
        let record = state
            .get(TY, id)
            .ok_or_else(|| ApiError::not_found(format!("Unknown Practitioner resource '{id}'")))?;
        check_if_match(ctx, record.current().vid)?;
        let stored = record.body().clone();
        let mut hidden = record.hidden.clone();
        let stored_items = |name: &str| {
            stored
                .get(name)
                .and_then(Value::as_array)
                .cloned()
                .unwrap_or_default()
        };
        let keep_ids = !ctx.defect("PRAC-UPDATE-ITEM-IDS");

        let stored_telecom = stored_items("telecom");
        let telecom = match sent_telecom.clone().filter(|t| !t.is_empty()) {
            Some(t) => merge_items(t, &stored_telecom, keep_ids),
            None if ctx.defect("PRAC-TELECOM-REQUIRED") => stored_telecom.clone(),
            None => {
                return Err(ApiError::invalid(
                    "telecom is required on update and cannot be empty",
                ));
            }
        };
        check_email_unchanged(
            ctx,
            sent_telecom.as_deref().unwrap_or(&[]),
            &stored_telecom,
            &telecom,
        )?;
        check_rank1(ctx, &telecom)?;
        let address = match sent_address.clone() {
            Some(a) => Some(merge_items(a, &stored_items("address"), keep_ids)),
            None if keep_omitted => Some(stored_items("address")),
            None => None,
        };
        let extension = update_extensions(
            ctx,
            sent_extension.clone(),
            &stored_items("extension"),
            &mut hidden,
        );

        let mut resource = unhandled_fields(&sent);
        if keep_omitted {
            for (k, v) in &stored {
                if !HANDLED.contains(&k.as_str()) && !resource.contains_key(k) {
                    resource.insert(k.clone(), v.clone());
                }
            }
        }
        set_list(&mut resource, "extension", Some(extension));
        set_list(&mut resource, "telecom", Some(telecom));
        set_list(&mut resource, "address", address);
        if !resource.contains_key("active") {
            resource.insert("active".into(), Value::Bool(true));
        }
        fill_name_text(&mut resource);
        let resource = ordered(resource, ORDER);

        if ctx.defect("CORE-UPDATE") {
            return Ok(write_response(ctx, StatusCode::OK, TY, record, false));
        }
        let record = state
            .update(TY, id, resource, hidden)
            .ok_or_else(|| ApiError::not_found(format!("Unknown Practitioner resource '{id}'")))?;
        Ok(write_response(ctx, StatusCode::OK, TY, record, false))
    })
}

// ---------------------------------------------------------------------------------------
// Search

/// The parsed filters of one Practitioner search.
struct Filter {
    ids: Vec<Vec<String>>,
    names: Vec<String>,
    emails: Vec<String>,
    npis: Vec<String>,
    active: Option<bool>,
    include_nonschedulable: bool,
    registry: RegistryFilter,
}

impl Filter {
    fn parse(ctx: &Ctx<'_>, params: &[(String, String)]) -> Result<Self, ApiError> {
        let mut f = Filter {
            ids: Vec::new(),
            names: Vec::new(),
            emails: Vec::new(),
            npis: Vec::new(),
            active: None,
            include_nonschedulable: false,
            registry: RegistryFilter::default(),
        };
        for (k, v) in params {
            match k.as_str() {
                "_id" => f.ids.push(v.split(',').map(str::to_owned).collect()),
                "name" => f.names.push(v.to_lowercase()),
                "email" => f.emails.push(v.to_lowercase()),
                "npiNumber" => f.npis.push(v.clone()),
                "active" => f.active = Some(parse_bool(k, v)?),
                "include-non-scheduleable-practitioners" => {
                    f.include_nonschedulable = parse_bool(k, v)?;
                }
                _ => f.registry.add(ctx, k, v)?,
            }
        }
        Ok(f)
    }

    fn matches(&self, ctx: &Ctx<'_>, state: &State, record: &Record) -> bool {
        let body = record.body();
        let active = body.get("active").and_then(Value::as_bool).unwrap_or(false);
        if self.registry.is_lookup() {
            // A registry lookup names one practitioner: no Canvas defaults apply.
            if self.active.is_some_and(|want| want != active) {
                return false;
            }
        } else {
            let default_active = (!ctx.defect("PRAC-SEARCH-DEFAULT-ACTIVE")).then_some(true);
            if self
                .active
                .or(default_active)
                .is_some_and(|want| want != active)
            {
                return false;
            }
            let all = self.include_nonschedulable && !ctx.defect("PRAC-SEARCH-NONSCHEDULABLE");
            let scheduleable = active
                && record
                    .hidden
                    .get("scheduleable")
                    .and_then(Value::as_bool)
                    .unwrap_or(false);
            if !all && !scheduleable {
                return false;
            }
        }
        self.ids.iter().all(|ids| ids.contains(&record.id))
            && self.names.iter().all(|q| name_matches(ctx, body, q))
            && self.emails.iter().all(|q| {
                objects(body.get("telecom")).any(|t| {
                    t.get("system").and_then(Value::as_str) == Some("email")
                        && t.get("value")
                            .and_then(Value::as_str)
                            .map(str::to_lowercase)
                            .as_deref()
                            == Some(q.as_str())
                })
            })
            && self.npis.iter().all(|q| {
                objects(body.get("identifier")).any(|i| {
                    i.get("system").and_then(Value::as_str).map(str::trim) == Some(NPI_SYSTEM)
                        && i.get("value").and_then(Value::as_str) == Some(q.as_str())
                })
            })
            && self.registry.matches(ctx, state, record)
    }
}

fn name_matches(ctx: &Ctx<'_>, body: &Json, q: &str) -> bool {
    objects(body.get("name")).any(|name| {
        let family = name.get("family").and_then(Value::as_str);
        if ctx.defect("PRAC-SEARCH-PARAMS") {
            return family.is_some_and(|f| f.to_lowercase() == q);
        }
        family
            .into_iter()
            .chain(name.get("text").and_then(Value::as_str))
            .chain(strings(name.get("given")))
            .chain(strings(name.get("prefix")))
            .chain(strings(name.get("suffix")))
            .any(|part| part.to_lowercase().contains(q))
    })
}

/// `GET /Practitioner?...` and, with `via_post`, `POST /Practitioner/_search?...`.
pub(crate) fn search(ctx: &Ctx<'_>, via_post: bool) -> Result<Response, ApiError> {
    auth::check(ctx, TY, Access::Search, Some("PPR-AUTH"))?;
    let mut params = ctx.query.clone();
    let paging = take_paging(&mut params)?;
    check_known(TY, &mut params, SEARCH_PARAMS, ctx.defect("PPR-BAD-PARAM"))?;
    if via_post && ctx.defect("PPR-POST-SEARCH") {
        params.retain(|(k, _)| k != "identifier");
    }
    let filter = Filter::parse(ctx, &params)?;
    let bundle = ctx.app.store.read(|state| {
        let matches: Vec<&Record> = state
            .all(TY)
            .into_iter()
            .filter(|r| filter.matches(ctx, state, r))
            .collect();
        let total = matches.len();
        let shown = page_of(matches, &paging);
        let mode = if filter.registry.is_lookup() && ctx.defect("PPR-IDENTIFIER") {
            None
        } else {
            Some("match")
        };
        let mut entries: Vec<Value> = shown
            .iter()
            .map(|r| entry(ctx, r.resource(), mode))
            .collect();
        if !ctx.defect("PPR-INCLUDE") {
            let ids: Vec<&str> = shown.iter().map(|r| r.id.as_str()).collect();
            entries.extend(
                registry::related(state, &ids)
                    .into_iter()
                    .map(|r| entry(ctx, r, Some("include"))),
            );
        }
        if total == 0 && !ctx.defect("PPR-NO-MATCH") {
            let oo = outcome(
                "warning",
                "not-found",
                "No Practitioner resources match the search criteria",
            );
            entries.push(entry(ctx, &oo, Some("outcome")));
        }
        searchset(ctx, TY, &params, &paging, Page { total, entries })
    });
    Ok(fhir(StatusCode::OK, &bundle))
}
