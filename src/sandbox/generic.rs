//! Every R4 resource type that no document gives rules of its own (all but Practitioner
//! and Appointment): FHIR R4's core interactions on the in-memory store. Create assigns
//! the id, update takes the client's (and creates under it when there is none), delete
//! leaves a tombstone so that a later read is 410 Gone, and search filters by `_id` and
//! `_lastUpdated` (plus `name` on Patient, Location and Organization, and `practitioner`
//! on PractitionerRole, which the seed data and the registry's includes use).
//!
//! What the server owns is `id` and `meta` (versionId, lastUpdated); the rest of a body
//! is stored as sent, unvalidated: this is a sandbox for clients and scenarios, not a
//! validator.

use axum::body::Bytes;
use axum::http::{StatusCode, header};
use axum::response::{IntoResponse, Response};
use jiff::Timestamp;
use jiff::civil::{Date, Time};
use jiff::tz::{Offset, TimeZone};
use serde_json::Value;

use crate::sandbox::auth::{self, Access};
use crate::sandbox::core::{
    ApiError, Ctx, Page, Return, SearchParam, check_body_id, check_if_match, check_known, entry,
    fhir, objects, page_of, parse_resource, reference_id, require_json_body, searchset, strings,
    take_paging, write_response_returning,
};
use crate::sandbox::store::{Json, Record, State};

const ID: SearchParam = SearchParam::new("_id", "token", "The logical id (several: a,b)");
const LAST_UPDATED: SearchParam = SearchParam::new(
    "_lastUpdated",
    "date",
    "When the resource last changed (meta.lastUpdated), with eq, ne, gt, ge, lt or le; \
     repeat it for a range",
);
const NAME: SearchParam = SearchParam::new("name", "string", "Part of the name");

const PARAMS: &[SearchParam] = &[ID, LAST_UPDATED];
const NAMED_PARAMS: &[SearchParam] = &[ID, LAST_UPDATED, NAME];
const ROLE_PARAMS: &[SearchParam] = &[
    ID,
    LAST_UPDATED,
    SearchParam::new(
        "practitioner",
        "reference",
        "The Practitioner (Practitioner/{id} or {id})",
    ),
];

pub(crate) fn params_of(ty: &str) -> &'static [SearchParam] {
    match ty {
        "Patient" | "Location" | "Organization" => NAMED_PARAMS,
        "PractitionerRole" => ROLE_PARAMS,
        _ => PARAMS,
    }
}

// ---------------------------------------------------------------------------------------
// Writes

/// A generic write's answer: its headers, and the stored resource unless `Prefer` says
/// otherwise (the Canvas types answer without one; nothing documents that here).
fn written(ctx: &Ctx<'_>, status: StatusCode, ty: &str, record: &Record) -> Response {
    let created = status == StatusCode::CREATED;
    write_response_returning(ctx, status, ty, record, created, Return::Representation)
}

/// `POST /{type}`: 201 with the stored resource under a new id; an id in the body is
/// ignored, as FHIR's create says.
pub(crate) fn create(ctx: &Ctx<'_>, ty: &str, body: &Bytes) -> Result<Response, ApiError> {
    auth::check(ctx, ty, Access::Create, None)?;
    require_json_body(ctx.headers)?;
    let sent = parse_resource(ctx, body, ty)?;
    ctx.app.store.write(|state| {
        let record = state.create(ty, None, sent, Json::new(), true);
        Ok(written(ctx, StatusCode::CREATED, ty, record))
    })
}

/// FHIR's `id` type: 1 to 64 of `A-Z a-z 0-9 - .`.
fn valid_id(id: &str) -> bool {
    (1..=64).contains(&id.len())
        && id
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'.')
}

/// A PUT to an id that holds nothing: the resource is created under the client's id
/// (a deleted one's history goes on). An If-Match cannot match what does not exist.
fn create_at(
    ctx: &Ctx<'_>,
    state: &mut State,
    ty: &str,
    id: &str,
    sent: Json,
) -> Result<Response, ApiError> {
    if !valid_id(id) {
        return Err(ApiError::invalid(format!(
            "`{id}` is not a valid id (1 to 64 of A-Z, a-z, 0-9, '-', '.')"
        )));
    }
    if ctx.headers.contains_key(header::IF_MATCH) {
        return Err(ApiError::new(
            StatusCode::PRECONDITION_FAILED,
            "conflict",
            format!("If-Match was sent, but there is no {ty}/{id} to match"),
        ));
    }
    let record = state.create(ty, Some(id), sent, Json::new(), true);
    Ok(written(ctx, StatusCode::CREATED, ty, record))
}

/// `PUT /{type}/{id}`: 200 with the new version; for an id that does not exist (or was
/// deleted), 201 with the resource created under that id.
pub(crate) fn update(
    ctx: &Ctx<'_>,
    ty: &str,
    id: &str,
    body: &Bytes,
) -> Result<Response, ApiError> {
    auth::check(ctx, ty, Access::Update, None)?;
    require_json_body(ctx.headers)?;
    let sent = parse_resource(ctx, body, ty)?;
    check_body_id(ctx, &sent, id)?;
    ctx.app.store.write(|state| {
        let Some(record) = state.get(ty, id) else {
            return create_at(ctx, state, ty, id, sent);
        };
        check_if_match(ctx, record.current().vid)?;
        if ctx.defect("CORE-UPDATE") {
            return Ok(written(ctx, StatusCode::OK, ty, record));
        }
        let record = state
            .update(ty, id, sent, Json::new())
            .ok_or_else(|| ApiError::not_found(format!("Unknown {ty} resource '{id}'")))?;
        Ok(written(ctx, StatusCode::OK, ty, record))
    })
}

/// `DELETE /{type}/{id}`: 204. Deleting what does not exist (or no longer does) changes
/// nothing and is 204 too, as FHIR's delete says; If-Match guards the current version.
pub(crate) fn delete(ctx: &Ctx<'_>, ty: &str, id: &str) -> Result<Response, ApiError> {
    auth::check(ctx, ty, Access::Delete, None)?;
    ctx.app.store.write(|state| {
        if let Some(record) = state.get(ty, id) {
            check_if_match(ctx, record.current().vid)?;
            state.delete(ty, id);
        }
        Ok(StatusCode::NO_CONTENT.into_response())
    })
}

// ---------------------------------------------------------------------------------------
// Search

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Prefix {
    Eq,
    Ne,
    Gt,
    Ge,
    Lt,
    Le,
}

/// One `_lastUpdated` value: a prefix and the instants its value covers, `[start, end)`.
/// A value covers as much as its precision says: `2024` the whole year, `2024-05-01`
/// the day, `2024-05-01T10:00:00Z` the second. A value without a time zone is UTC.
#[derive(Debug, Clone, Copy)]
struct DateRange {
    prefix: Prefix,
    start: Timestamp,
    end: Timestamp,
}

impl DateRange {
    fn parse(raw: &str) -> Result<Self, ApiError> {
        let bad = || {
            ApiError::invalid(format!(
                "_lastUpdated `{raw}` is not [eq|ne|gt|ge|lt|le]YYYY[-MM[-DD[Thh:mm[:ss[.fff]][Z|±hh:mm]]]]"
            ))
        };
        let (prefix, value) = split_prefix(raw).ok_or_else(bad)?;
        let (start, end) = match value.split_once('T') {
            None => date_range(value),
            Some((date, time)) => instant_range(date, time),
        }
        .ok_or_else(bad)?;
        Ok(Self { prefix, start, end })
    }

    /// Whether an instant (a resource's lastUpdated) is within what the prefix asks for.
    fn matches(&self, at: Timestamp) -> bool {
        let within = self.start <= at && at < self.end;
        match self.prefix {
            Prefix::Eq => within,
            Prefix::Ne => !within,
            Prefix::Gt => at >= self.end,
            Prefix::Ge => at >= self.start,
            Prefix::Lt => at < self.start,
            Prefix::Le => at < self.end,
        }
    }
}

/// The prefix of a date search value (`eq` when none); `None` for a prefix FHIR has but
/// the sandbox does not serve (`sa`, `eb`, `ap`) and for anything else that is not a date.
fn split_prefix(raw: &str) -> Option<(Prefix, &str)> {
    let prefix = match raw.get(..2)? {
        "eq" => Prefix::Eq,
        "ne" => Prefix::Ne,
        "gt" => Prefix::Gt,
        "ge" => Prefix::Ge,
        "lt" => Prefix::Lt,
        "le" => Prefix::Le,
        p if p.bytes().all(|b| b.is_ascii_digit()) => return Some((Prefix::Eq, raw)),
        _ => return None,
    };
    Some((prefix, &raw[2..]))
}

fn digits(s: &str, len: usize) -> Option<i16> {
    (s.len() == len && s.bytes().all(|b| b.is_ascii_digit()))
        .then(|| s.parse().ok())
        .flatten()
}

/// `YYYY`, `YYYY-MM` or `YYYY-MM-DD` as the UTC instants it covers.
fn date_range(value: &str) -> Option<(Timestamp, Timestamp)> {
    let parts: Vec<&str> = value.split('-').collect();
    let year = digits(parts.first()?, 4)?;
    let month = parts.get(1).map_or(Some(1), |m| digits(m, 2))?;
    let day = parts.get(2).map_or(Some(1), |d| digits(d, 2))?;
    if parts.len() > 3 {
        return None;
    }
    let start = Date::new(year, i8::try_from(month).ok()?, i8::try_from(day).ok()?).ok()?;
    let end = match parts.len() {
        1 => start.checked_add(jiff::Span::new().years(1)),
        2 => start.checked_add(jiff::Span::new().months(1)),
        _ => start.checked_add(jiff::Span::new().days(1)),
    }
    .ok()?;
    let utc = |d: Date| d.to_zoned(TimeZone::UTC).ok().map(|z| z.timestamp());
    Some((utc(start)?, utc(end)?))
}

/// `YYYY-MM-DD` and `hh:mm[:ss[.fff]][Z|±hh:mm]` as the instants the time covers: a
/// minute, a second, or one unit of its last fractional digit.
fn instant_range(date: &str, time: &str) -> Option<(Timestamp, Timestamp)> {
    let date: Date = (date.len() == 10).then(|| date.parse().ok()).flatten()?;
    let zone_at = time.find(['Z', '+', '-']).unwrap_or(time.len());
    let (clock, zone) = time.split_at(zone_at);
    let offset = match zone {
        "" | "Z" => Offset::UTC,
        z => {
            let sign: i32 = if z.starts_with('-') { -1 } else { 1 };
            let (h, m) = z[1..].split_once(':')?;
            let seconds = i32::from(digits(h, 2)?) * 3600 + i32::from(digits(m, 2)?) * 60;
            Offset::from_seconds(sign * seconds).ok()?
        }
    };
    let width_ns: i64 = match clock.len() {
        5 => 60_000_000_000,
        8 => 1_000_000_000,
        n if (10..=18).contains(&n) && clock.as_bytes()[8] == b'.' => {
            10_i64.pow(9 - u32::try_from(n - 9).ok()?)
        }
        _ => return None,
    };
    let clock: Time = clock.parse().ok()?;
    let start = offset.to_timestamp(date.to_datetime(clock)).ok()?;
    let end = start
        .checked_add(jiff::SignedDuration::from_nanos(width_ns))
        .ok()?;
    Some((start, end))
}

/// A resource's lastUpdated as clients see it in `meta.lastUpdated`: to the millisecond.
fn last_updated(record: &Record) -> Timestamp {
    let at = record.current().last_updated;
    Timestamp::from_millisecond(at.as_millisecond()).unwrap_or(at)
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

/// Whether a record matches one parameter (`_lastUpdated` is matched apart, parsed).
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

/// `GET /{type}?...`: a searchset of the matches in creation order, paged by `_count`
/// and `_offset`; an unknown parameter or a malformed `_lastUpdated` is 400.
pub(crate) fn search(ctx: &Ctx<'_>, ty: &str) -> Result<Response, ApiError> {
    auth::check(ctx, ty, Access::Search, None)?;
    let mut params = ctx.query.clone();
    let paging = take_paging(&mut params)?;
    check_known(ty, &mut params, params_of(ty), false)?;
    let dates: Vec<DateRange> = params
        .iter()
        .filter(|(k, _)| k == "_lastUpdated")
        .map(|(_, v)| DateRange::parse(v))
        .collect::<Result<_, _>>()?;
    let bundle = ctx.app.store.read(|state| {
        let found: Vec<&Record> = state
            .all(ty)
            .into_iter()
            .filter(|r| params.iter().all(|(k, v)| matches(r, k, v)))
            .filter(|r| {
                ctx.defect("CORE-SEARCH-PARAM") || dates.iter().all(|d| d.matches(last_updated(r)))
            })
            .collect();
        let total = found.len();
        let entries = page_of(found, &paging)
            .iter()
            .map(|r| entry(ctx, r.resource(), Some("match")))
            .collect();
        searchset(ctx, ty, &params, &paging, Page { total, entries })
    });
    Ok(fhir(StatusCode::OK, &bundle))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ts(s: &str) -> Timestamp {
        s.parse().unwrap()
    }

    #[test]
    fn a_date_value_covers_what_its_precision_says() {
        let r = DateRange::parse("2024").unwrap();
        assert_eq!(
            (r.start, r.end),
            (ts("2024-01-01T00:00:00Z"), ts("2025-01-01T00:00:00Z"))
        );
        let r = DateRange::parse("ge2024-02").unwrap();
        assert_eq!(
            (r.start, r.end),
            (ts("2024-02-01T00:00:00Z"), ts("2024-03-01T00:00:00Z"))
        );
        let r = DateRange::parse("lt2024-02-29").unwrap();
        assert_eq!(r.end, ts("2024-03-01T00:00:00Z"));
        let r = DateRange::parse("eq2024-05-01T10:00:00.123+02:00").unwrap();
        assert_eq!(
            (r.start, r.end),
            (
                ts("2024-05-01T08:00:00.123Z"),
                ts("2024-05-01T08:00:00.124Z")
            )
        );
        let r = DateRange::parse("2024-05-01T10:00").unwrap();
        assert_eq!(r.end, ts("2024-05-01T10:01:00Z"));
        for bad in [
            "",
            "sa2024",
            "2024-5",
            "2024-02-30",
            "2024-05-01T10",
            "2024-05-01T25:00:00Z",
            "yesterday",
            "ge",
        ] {
            assert!(DateRange::parse(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn prefixes_compare_against_the_range() {
        let at = ts("2024-05-01T12:00:00Z");
        let check = |v: &str| DateRange::parse(v).unwrap().matches(at);
        assert!(check("2024-05-01") && check("eq2024-05-01") && !check("ne2024-05-01"));
        assert!(check("ge2024-05-01") && check("le2024-05-01"));
        assert!(!check("gt2024-05-01") && !check("lt2024-05-01"));
        assert!(check("gt2024-04-30") && check("lt2024-05-02"));
        assert!(check("ge2024-05-01T12:00:00Z") && !check("gt2024-05-01T12:00:00Z"));
        assert!(check("le2024-05-01T12:00:00Z") && !check("lt2024-05-01T12:00:00Z"));
    }

    #[test]
    fn ids_are_fhir_ids() {
        assert!(valid_id("abc-1.2") && valid_id(&"a".repeat(64)));
        assert!(
            !valid_id("") && !valid_id(&"a".repeat(65)) && !valid_id("a_b") && !valid_id("a/b")
        );
    }
}
