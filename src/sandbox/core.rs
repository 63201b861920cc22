//! What every FHIR interaction shares: OperationOutcome errors, resource responses,
//! searchset Bundles and paging, query and body parsing, content negotiation.

use std::borrow::Cow;

use axum::body::Bytes;
use axum::http::{HeaderMap, HeaderName, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use jiff::Timestamp;
use serde_json::{Value, json};

use crate::sandbox::app::App;
use crate::sandbox::resources::{self, Handler};
use crate::sandbox::store::{Json, Record};

pub(crate) const FHIR_JSON: &str = "application/fhir+json";

/// A FHIR `instant` with millisecond precision, in UTC.
pub(crate) fn instant(ts: Timestamp) -> String {
    ts.strftime("%Y-%m-%dT%H:%M:%S%.3fZ").to_string()
}

fn http_date(ts: Timestamp) -> String {
    ts.strftime("%a, %d %b %Y %H:%M:%S GMT").to_string()
}

/// What one request carries that the domain code needs besides its body.
pub(crate) struct Ctx<'a> {
    pub(crate) app: &'a App,
    /// `http://host:port` from the Host header, without a trailing slash.
    pub(crate) base: String,
    pub(crate) headers: &'a HeaderMap,
    pub(crate) query: Vec<(String, String)>,
}

impl Ctx<'_> {
    pub(crate) fn defect(&self, id: &str) -> bool {
        self.app.settings.defect(id)
    }
}

/// The base URL a client used, from its Host header (loopback when absent or odd).
pub(crate) fn base_url(headers: &HeaderMap) -> String {
    let host = headers
        .get(header::HOST)
        .and_then(|h| h.to_str().ok())
        .filter(|h| {
            !h.is_empty()
                && h.bytes()
                    .all(|b| b.is_ascii_alphanumeric() || b".-:[]_".contains(&b))
        })
        .unwrap_or("localhost");
    format!("http://{host}")
}

// ---------------------------------------------------------------------------------------
// Errors

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum ErrorBody {
    Outcome,
    Empty,
    PlainText,
}

/// An error answer: an OperationOutcome with one issue (or, for a few defects, no body or
/// a plain-text one).
#[derive(Debug)]
pub(crate) struct ApiError {
    status: StatusCode,
    code: &'static str,
    text: String,
    headers: Vec<(HeaderName, String)>,
    body: ErrorBody,
}

impl ApiError {
    pub(crate) fn new(status: StatusCode, code: &'static str, text: impl Into<String>) -> Self {
        Self {
            status,
            code,
            text: text.into(),
            headers: Vec::new(),
            body: ErrorBody::Outcome,
        }
    }

    pub(crate) fn invalid(text: impl Into<String>) -> Self {
        Self::new(StatusCode::BAD_REQUEST, "invalid", text)
    }

    pub(crate) fn not_found(text: impl Into<String>) -> Self {
        Self::new(StatusCode::NOT_FOUND, "not-found", text)
    }

    pub(crate) fn business(text: impl Into<String>) -> Self {
        Self::new(StatusCode::UNPROCESSABLE_ENTITY, "business-rule", text)
    }

    pub(crate) fn processing(text: impl Into<String>) -> Self {
        Self::new(StatusCode::UNPROCESSABLE_ENTITY, "processing", text)
    }

    pub(crate) fn method_not_allowed(method: &str, what: &str, allow: &str) -> Self {
        Self::new(
            StatusCode::METHOD_NOT_ALLOWED,
            "not-supported",
            format!("{method} is not supported on {what}; allowed: {allow}"),
        )
        .with_header(header::ALLOW, allow)
    }

    /// The error status without any body.
    pub(crate) fn empty(status: StatusCode) -> Self {
        Self {
            body: ErrorBody::Empty,
            ..Self::new(status, "unknown", "")
        }
    }

    /// A plain-text body instead of an OperationOutcome.
    pub(crate) fn plain(status: StatusCode, text: impl Into<String>) -> Self {
        Self {
            body: ErrorBody::PlainText,
            ..Self::new(status, "exception", text)
        }
    }

    pub(crate) fn with_header(mut self, name: HeaderName, value: impl Into<String>) -> Self {
        self.headers.push((name, value.into()));
        self
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let mut response = match self.body {
            ErrorBody::Outcome => fhir(self.status, &outcome("error", self.code, &self.text)),
            ErrorBody::Empty => self.status.into_response(),
            ErrorBody::PlainText => (
                self.status,
                [(header::CONTENT_TYPE, "text/plain; charset=utf-8")],
                self.text,
            )
                .into_response(),
        };
        for (name, value) in self.headers {
            if let Ok(value) = HeaderValue::from_str(&value) {
                response.headers_mut().append(name, value);
            }
        }
        response
    }
}

/// An OperationOutcome with a single issue.
pub(crate) fn outcome(severity: &str, code: &str, text: &str) -> Value {
    json!({
        "resourceType": "OperationOutcome",
        "issue": [{ "severity": severity, "code": code, "details": { "text": text } }]
    })
}

/// A response with a FHIR JSON body.
pub(crate) fn fhir(status: StatusCode, body: &Value) -> Response {
    (
        status,
        [(header::CONTENT_TYPE, FHIR_JSON)],
        body.to_string(),
    )
        .into_response()
}

// ---------------------------------------------------------------------------------------
// Resource responses

/// HL7 v2 administrative sex codes, which the CORE-VALID-RESOURCE defect serves in
/// place of FHIR's AdministrativeGender (a required binding).
const V2_GENDER: &[(&str, &str)] = &[
    ("male", "M"),
    ("female", "F"),
    ("other", "O"),
    ("unknown", "U"),
];

/// A resource as every answer serves it (read, vread, search entry, create or update
/// echo): as stored, unless a defect about served resources is on.
/// - CORE-VALID-RESOURCE: resources of the generic types (all but Practitioner and
///   Appointment) carry their `gender` as an HL7 v2 code (`F`, `M`, `O`, `U`), which is
///   not R4.
/// - PRAC-USCORE-PROFILE: a Practitioner comes without its `identifier`: still R4, but
///   not US Core Practitioner (identifier 1..*).
pub(crate) fn served<'v>(ctx: &Ctx<'_>, resource: &'v Value) -> Cow<'v, Value> {
    let ty = resource
        .get("resourceType")
        .and_then(Value::as_str)
        .unwrap_or("");
    if ty == "Practitioner"
        && ctx.defect("PRAC-USCORE-PROFILE")
        && resource.get("identifier").is_some()
    {
        let mut out = resource.clone();
        if let Some(map) = out.as_object_mut() {
            map.shift_remove("identifier");
        }
        return Cow::Owned(out);
    }
    if resources::handler(ty) == Some(Handler::Generic) && ctx.defect("CORE-VALID-RESOURCE") {
        let v2 = resource
            .get("gender")
            .and_then(Value::as_str)
            .and_then(|g| V2_GENDER.iter().find(|(fhir, _)| *fhir == g))
            .map(|(_, v2)| *v2);
        if let Some(v2) = v2 {
            let mut out = resource.clone();
            out["gender"] = Value::String(v2.to_owned());
            return Cow::Owned(out);
        }
    }
    Cow::Borrowed(resource)
}

fn set(headers: &mut HeaderMap, name: HeaderName, value: &str) {
    if let Ok(v) = HeaderValue::from_str(value) {
        headers.insert(name, v);
    }
}

/// `200` with the current version of a resource, its ETag and Last-Modified.
pub(crate) fn read_response(ctx: &Ctx<'_>, record: &Record) -> Response {
    let version = record.current();
    let mut response = fhir(StatusCode::OK, &served(ctx, &version.resource));
    version_headers(
        ctx,
        response.headers_mut(),
        version.vid,
        version.last_updated,
    );
    response
}

fn version_headers(ctx: &Ctx<'_>, headers: &mut HeaderMap, vid: u64, last_updated: Timestamp) {
    if ctx.app.settings.versioning {
        set(headers, header::ETAG, &format!("W/\"{vid}\""));
    }
    set(headers, header::LAST_MODIFIED, &http_date(last_updated));
}

/// What a create or update answers with when the client's `Prefer` header does not say.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Return {
    /// No body: the Canvas API answers its writes with an empty body.
    Minimal,
    /// The resource as stored, as FHIR servers commonly answer.
    Representation,
}

/// Whether the client's `Prefer: return=...` (else `default`) asks for the resource.
fn wants_body(ctx: &Ctx<'_>, default: Return) -> bool {
    let prefer: Vec<&str> = ctx
        .headers
        .get_all("prefer")
        .iter()
        .filter_map(|v| v.to_str().ok())
        .collect();
    if prefer.iter().any(|v| v.contains("return=representation")) {
        true
    } else if prefer.iter().any(|v| v.contains("return=")) {
        false
    } else {
        default == Return::Representation
    }
}

/// The answer to a Canvas create or update: the headers of [`write_response_returning`],
/// and the resource only when the client asked for it with
/// `Prefer: return=representation`.
pub(crate) fn write_response(
    ctx: &Ctx<'_>,
    status: StatusCode,
    ty: &str,
    record: &Record,
    created: bool,
) -> Response {
    write_response_returning(ctx, status, ty, record, created, Return::Minimal)
}

/// The answer to a create or update: Location (when `created`), ETag, Last-Modified,
/// and the resource unless `Prefer` (or, without one, `default`) says otherwise.
pub(crate) fn write_response_returning(
    ctx: &Ctx<'_>,
    status: StatusCode,
    ty: &str,
    record: &Record,
    created: bool,
    default: Return,
) -> Response {
    let version = record.current();
    let mut response = if wants_body(ctx, default) {
        fhir(status, &served(ctx, &version.resource))
    } else {
        status.into_response()
    };
    if created {
        // The defect names a resource that does not exist; a relative Location would
        // not be one, as FHIR servers may send either form.
        let id = if ctx.defect("CORE-CREATE") {
            format!("missing-{}", uuid::Uuid::new_v4().simple())
        } else {
            record.id.clone()
        };
        let location = format!("{}/{ty}/{id}/_history/{}", ctx.base, version.vid);
        set(response.headers_mut(), header::LOCATION, &location);
    }
    version_headers(
        ctx,
        response.headers_mut(),
        version.vid,
        version.last_updated,
    );
    response
}

// ---------------------------------------------------------------------------------------
// Requests: query strings, bodies, content types, preconditions

fn hex(b: u8) -> Option<u8> {
    (b as char).to_digit(16).map(|d| d as u8)
}

fn percent_decode(s: &str) -> Option<String> {
    let bytes = s.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        match bytes[i] {
            b'+' => out.push(b' '),
            b'%' => {
                let hi = bytes.get(i + 1).copied().and_then(hex)?;
                let lo = bytes.get(i + 2).copied().and_then(hex)?;
                out.push(hi * 16 + lo);
                i += 2;
            }
            b => out.push(b),
        }
        i += 1;
    }
    String::from_utf8(out).ok()
}

/// Parses `a=1&b=2` (a query string or a form body), keeping order and repeats.
pub(crate) fn parse_query(raw: Option<&str>) -> Result<Vec<(String, String)>, ApiError> {
    let mut pairs = Vec::new();
    for part in raw.unwrap_or("").split('&').filter(|p| !p.is_empty()) {
        let (k, v) = part.split_once('=').unwrap_or((part, ""));
        match (percent_decode(k), percent_decode(v)) {
            (Some(k), Some(v)) => pairs.push((k, v)),
            _ => {
                return Err(ApiError::invalid(format!(
                    "malformed query parameter `{part}`"
                )));
            }
        }
    }
    Ok(pairs)
}

fn percent_encode(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for b in s.bytes() {
        if b.is_ascii_alphanumeric() || b"-._~".contains(&b) {
            out.push(b as char);
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    out
}

/// The media type of a request's Content-Type, lowercased, without parameters.
pub(crate) fn content_type(headers: &HeaderMap) -> Option<String> {
    let raw = headers.get(header::CONTENT_TYPE)?.to_str().ok()?;
    Some(raw.split(';').next()?.trim().to_ascii_lowercase())
}

/// Create and update take FHIR JSON (or plain JSON, as the Canvas examples send); else 415.
pub(crate) fn require_json_body(headers: &HeaderMap) -> Result<(), ApiError> {
    match content_type(headers).as_deref() {
        Some("application/fhir+json" | "application/json" | "application/json+fhir") => Ok(()),
        Some(other) => Err(ApiError::new(
            StatusCode::UNSUPPORTED_MEDIA_TYPE,
            "not-supported",
            format!("Content-Type `{other}` is not supported; send application/fhir+json"),
        )),
        None => Err(ApiError::new(
            StatusCode::UNSUPPORTED_MEDIA_TYPE,
            "not-supported",
            "Content-Type is missing; send application/fhir+json",
        )),
    }
}

/// Whether a media range (from Accept) or a `_format` value names a format we serve.
fn serves(format: &str) -> bool {
    matches!(
        format.trim().to_ascii_lowercase().as_str(),
        "*/*"
            | "application/*"
            | "application/fhir+json"
            | "application/json"
            | "application/json+fhir"
            | "json"
    )
}

/// `None` when the Accept header and `_format` allow FHIR JSON, else the refused format.
pub(crate) fn unacceptable(headers: &HeaderMap, query: &[(String, String)]) -> Option<String> {
    if let Some((_, format)) = query.iter().find(|(k, _)| k == "_format") {
        if !serves(format) {
            return Some(format.clone());
        }
        return None;
    }
    let accept: Vec<String> = headers
        .get_all(header::ACCEPT)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(','))
        .map(str::trim)
        .filter(|v| !v.is_empty())
        .map(str::to_owned)
        .collect();
    if accept.is_empty() {
        return None;
    }
    let ok = accept.iter().any(|range| {
        let mut parts = range.split(';');
        let media = parts.next().unwrap_or("");
        let refused = parts.any(|p| {
            let p = p.trim().replace(' ', "");
            p.strip_prefix("q=").and_then(|q| q.parse::<f32>().ok()) == Some(0.0)
        });
        serves(media) && !refused
    });
    (!ok).then(|| accept.join(", "))
}

/// Parses a request body as a resource of type `ty`.
pub(crate) fn parse_resource(ctx: &Ctx<'_>, body: &Bytes, ty: &str) -> Result<Json, ApiError> {
    if body.iter().all(u8::is_ascii_whitespace) {
        return Err(ApiError::invalid(format!(
            "the request body is empty; send a {ty} resource"
        )));
    }
    let value: Value = match serde_json::from_slice(body) {
        Ok(v) => v,
        Err(e) if ctx.defect("CORE-BAD-JSON") => {
            return Err(ApiError::plain(
                StatusCode::INTERNAL_SERVER_ERROR,
                format!("internal error: {e}"),
            ));
        }
        Err(e) => {
            return Err(ApiError::invalid(format!(
                "the request body is not valid JSON: {e}"
            )));
        }
    };
    let Value::Object(map) = value else {
        return Err(ApiError::invalid(format!(
            "the request body must be a JSON object (a {ty} resource)"
        )));
    };
    match map.get("resourceType").and_then(Value::as_str) {
        Some(t) if t == ty => Ok(map),
        Some(t) => Err(ApiError::invalid(format!(
            "resourceType is `{t}`, expected `{ty}`"
        ))),
        None => Err(ApiError::invalid(format!(
            "resourceType is missing; expected `{ty}`"
        ))),
    }
}

/// The id a PUT body gives must match the URL (CORE-ID-MISMATCH); a body without id is
/// taken as naming the URL's resource, as the Canvas update examples send it.
pub(crate) fn check_body_id(ctx: &Ctx<'_>, body: &Json, url_id: &str) -> Result<(), ApiError> {
    match body.get("id") {
        None => Ok(()),
        Some(Value::String(id)) if id == url_id => Ok(()),
        Some(_) if ctx.defect("CORE-ID-MISMATCH") => Ok(()),
        Some(other) => Err(ApiError::invalid(format!(
            "the body id {other} does not match the id `{url_id}` in the URL"
        ))),
    }
}

/// `If-Match` with another version than the current one → 412 (when versioning is on).
pub(crate) fn check_if_match(ctx: &Ctx<'_>, current_vid: u64) -> Result<(), ApiError> {
    if !ctx.app.settings.versioning {
        return Ok(());
    }
    let Some(raw) = ctx.headers.get(header::IF_MATCH) else {
        return Ok(());
    };
    let raw = raw.to_str().unwrap_or("").trim();
    let wanted = raw
        .trim_start_matches("W/")
        .trim_start_matches("w/")
        .trim_matches('"');
    if raw == "*" || wanted == current_vid.to_string() {
        return Ok(());
    }
    Err(ApiError::new(
        StatusCode::PRECONDITION_FAILED,
        "conflict",
        format!("If-Match {raw} does not match the current version W/\"{current_vid}\""),
    ))
}

// ---------------------------------------------------------------------------------------
// Search: paging and searchset Bundles

pub(crate) const DEFAULT_COUNT: usize = 10;
pub(crate) const MAX_COUNT: usize = 100;

#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub(crate) struct Paging {
    pub(crate) count: usize,
    pub(crate) offset: usize,
    /// `_summary=count`: the total without the matches.
    pub(crate) summary_count: bool,
    /// `_elements`: the top-level elements each match keeps (marked SUBSETTED).
    pub(crate) elements: Option<Vec<String>>,
}

/// Takes `_count`, `_offset`, `_summary` and `_elements` out of the parameters (and
/// `_format`, already honoured). `_summary` other than `count` or `false`, which the
/// sandbox does not implement, is ignored, as R4 lets a server do.
pub(crate) fn take_paging(params: &mut Vec<(String, String)>) -> Result<Paging, ApiError> {
    let mut paging = Paging {
        count: DEFAULT_COUNT,
        ..Paging::default()
    };
    for (k, v) in params.iter() {
        let slot = match k.as_str() {
            "_count" => &mut paging.count,
            "_offset" => &mut paging.offset,
            "_summary" => {
                paging.summary_count = v.trim() == "count";
                continue;
            }
            "_elements" => {
                let names: Vec<String> = v
                    .split(',')
                    .map(|n| n.trim().to_owned())
                    .filter(|n| !n.is_empty())
                    .collect();
                paging.elements = Some(names);
                continue;
            }
            _ => continue,
        };
        *slot = v.trim().parse::<usize>().map_err(|_| {
            ApiError::invalid(format!("{k} must be a non-negative integer, got `{v}`"))
        })?;
    }
    paging.count = paging.count.min(MAX_COUNT);
    params.retain(|(k, _)| {
        !matches!(
            k.as_str(),
            "_count" | "_offset" | "_format" | "_summary" | "_elements"
        )
    });
    Ok(paging)
}

/// A search parameter a resource type supports; the CapabilityStatement lists the same.
#[derive(Debug, Clone, Copy)]
pub(crate) struct SearchParam {
    pub(crate) name: &'static str,
    pub(crate) kind: &'static str,
    pub(crate) doc: &'static str,
}

impl SearchParam {
    pub(crate) const fn new(name: &'static str, kind: &'static str, doc: &'static str) -> Self {
        Self { name, kind, doc }
    }
}

/// Refuses any parameter not in `known` (unless `lenient`, when they are dropped).
pub(crate) fn check_known(
    ty: &str,
    params: &mut Vec<(String, String)>,
    known: &[SearchParam],
    lenient: bool,
) -> Result<(), ApiError> {
    let is_known = |k: &str| known.iter().any(|p| p.name == k);
    if lenient {
        params.retain(|(k, _)| is_known(k));
        return Ok(());
    }
    if let Some((k, _)) = params.iter().find(|(k, _)| !is_known(k)) {
        let names: Vec<&str> = known.iter().map(|p| p.name).collect();
        return Err(ApiError::invalid(format!(
            "unknown search parameter `{k}` for {ty}; supported: {}, _count, _offset, _format, _summary, _elements",
            names.join(", ")
        )));
    }
    Ok(())
}

/// A searchset entry, its resource as [`served`].
pub(crate) fn entry(ctx: &Ctx<'_>, resource: &Value, mode: Option<&str>) -> Value {
    let ty = resource
        .get("resourceType")
        .and_then(Value::as_str)
        .unwrap_or("");
    let id = resource.get("id").and_then(Value::as_str);
    let mut e = Json::new();
    if let Some(id) = id {
        e.insert(
            "fullUrl".into(),
            Value::String(format!("{}/{ty}/{id}", ctx.base)),
        );
    }
    e.insert("resource".into(), served(ctx, resource).into_owned());
    if let Some(mode) = mode {
        e.insert("search".into(), json!({ "mode": mode }));
    }
    Value::Object(e)
}

/// A page of search results: `total` counts the matches of every page, `entries` are this
/// page's (matches, then includes and outcomes).
pub(crate) struct Page {
    pub(crate) total: usize,
    pub(crate) entries: Vec<Value>,
}

/// Builds the searchset Bundle with total and self/first/last/next/previous links.
pub(crate) fn searchset(
    ctx: &Ctx<'_>,
    ty: &str,
    params: &[(String, String)],
    paging: &Paging,
    page: Page,
) -> Value {
    let link = |offset: usize| {
        let mut q: Vec<String> = params
            .iter()
            .map(|(k, v)| format!("{}={}", percent_encode(k), percent_encode(v)))
            .collect();
        q.push(format!("_count={}", paging.count));
        q.push(format!("_offset={offset}"));
        format!("{}/{ty}?{}", ctx.base, q.join("&"))
    };
    let (count, offset) = (paging.count, paging.offset);
    let last = if count == 0 || page.total == 0 {
        0
    } else {
        (page.total - 1) / count * count
    };
    let mut links = vec![
        json!({ "relation": "self", "url": link(offset) }),
        json!({ "relation": "first", "url": link(0) }),
    ];
    let next = offset.saturating_add(count);
    if count > 0 && next < page.total && !ctx.defect("CORE-COUNT") {
        links.push(json!({ "relation": "next", "url": link(next) }));
    }
    if count > 0 && offset > 0 {
        let prev = offset.saturating_sub(count);
        links.push(json!({ "relation": "previous", "url": link(prev) }));
    }
    links.push(json!({ "relation": "last", "url": link(last) }));
    let kind = if ctx.defect("CORE-SEARCHSET") {
        "collection"
    } else {
        "searchset"
    };
    let mut bundle = json!({
        "resourceType": "Bundle",
        "id": uuid::Uuid::new_v4().to_string(),
        "meta": { "lastUpdated": instant(Timestamp::now()) },
        "type": kind,
        "total": page.total,
        "link": links,
    });
    let mut entries = page.entries;
    if paging.summary_count {
        entries.clear();
    }
    if let Some(keep) = &paging.elements {
        for e in entries
            .iter_mut()
            .filter(|e| e["search"]["mode"] != "include")
        {
            if let Some(Value::Object(r)) = e.get_mut("resource") {
                r.retain(|k, _| {
                    matches!(k.as_str(), "resourceType" | "id" | "meta") || keep.contains(k)
                });
                let meta = r.entry("meta").or_insert_with(|| json!({}));
                if let Value::Object(meta) = meta {
                    let tags = meta.entry("tag").or_insert_with(|| json!([]));
                    if let Value::Array(tags) = tags {
                        tags.push(json!({
                            "system": "http://terminology.hl7.org/CodeSystem/v3-ObservationValue",
                            "code": "SUBSETTED"
                        }));
                    }
                }
            }
        }
    }
    // FHIR JSON leaves out empty arrays: an empty page has no `entry` at all.
    if !entries.is_empty() {
        bundle["entry"] = Value::Array(entries);
    }
    bundle
}

/// The slice of `items` that the page shows.
pub(crate) fn page_of<T>(items: Vec<T>, paging: &Paging) -> Vec<T> {
    items
        .into_iter()
        .skip(paging.offset)
        .take(paging.count)
        .collect()
}

/// Splits `Type/id` (or a bare id) for reference search parameters.
pub(crate) fn reference_id<'a>(value: &'a str, ty: &str) -> &'a str {
    value
        .strip_prefix(ty)
        .and_then(|rest| rest.strip_prefix('/'))
        .unwrap_or(value)
}

/// Parses `true`/`false`, case-insensitively.
pub(crate) fn parse_bool(name: &str, value: &str) -> Result<bool, ApiError> {
    match value.trim().to_ascii_lowercase().as_str() {
        "true" => Ok(true),
        "false" => Ok(false),
        _ => Err(ApiError::invalid(format!(
            "{name} must be true or false, got `{value}`"
        ))),
    }
}

/// The string items of a JSON array field (ignoring anything else).
pub(crate) fn strings(v: Option<&Value>) -> impl Iterator<Item = &str> {
    v.and_then(Value::as_array)
        .into_iter()
        .flatten()
        .filter_map(Value::as_str)
}

/// The object items of a JSON array field (ignoring anything else).
pub(crate) fn objects(v: Option<&Value>) -> impl Iterator<Item = &Json> {
    v.and_then(Value::as_array)
        .into_iter()
        .flatten()
        .filter_map(Value::as_object)
}
