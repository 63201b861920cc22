//! The sandbox through HTTP only, as a black-box client sees it.
//!
//! Each rule id of `scenarios/RULES.md` has a probe: an async check that passes
//! against a correct sandbox. Each rule test runs its probe twice: against a correct
//! sandbox (it must pass) and against one with that rule's defect (it must fail), which
//! proves the defect is observable. `defect_matrix` (ignored by default) runs every probe
//! against every other defect and prints what else each defect breaks.

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::future::Future;
use std::net::SocketAddr;
use std::pin::Pin;

use fhirconf::sandbox::{self, DEFECTS, FEATURES, SandboxConfig};
use reqwest::{Client, Method};
use serde_json::{Value, json};

use crate::common::sandbox_client::{Resp, Sbx, config};

type Check = Result<(), String>;

macro_rules! ensure {
    ($cond:expr, $($arg:tt)+) => {
        if !$cond {
            return Err(format!($($arg)+));
        }
    };
}

// ---------------------------------------------------------------------------------------
// Assertions on the shared client's answers

/// The probes' assertions: each returns a `Check` instead of panicking.
trait Judge {
    fn expect(&self, status: u16, what: &str) -> Check;
    fn is_outcome(&self) -> bool;
    fn issue(&self) -> (String, String, String);
    /// A 4xx with an OperationOutcome (the documented family of a refusal).
    fn expect_refused(&self, what: &str) -> Check;
    fn expect_outcome(&self, status: u16, code: &str, what: &str) -> Check;
    fn expect_text(&self, status: u16, text: &str, what: &str) -> Check;
    fn entries(&self) -> Vec<&Value>;
    /// Ids of the entries with search.mode=match.
    fn match_ids(&self) -> Vec<String>;
    fn expect_searchset(&self, what: &str) -> Check;
}

impl Judge for Resp {
    fn expect(&self, status: u16, what: &str) -> Check {
        ensure!(
            self.status == status,
            "{what}: expected {status}, got {}",
            self.describe()
        );
        Ok(())
    }

    fn is_outcome(&self) -> bool {
        self.body["resourceType"] == "OperationOutcome"
    }

    fn issue(&self) -> (String, String, String) {
        let issue = &self.body["issue"][0];
        let s = |v: &Value| v.as_str().unwrap_or("").to_owned();
        (
            s(&issue["severity"]),
            s(&issue["code"]),
            s(&issue["details"]["text"]),
        )
    }

    /// A 4xx with an OperationOutcome (the documented family of a refusal).
    fn expect_refused(&self, what: &str) -> Check {
        ensure!(
            (400..500).contains(&self.status) && self.is_outcome(),
            "{what}: expected a 4xx OperationOutcome, got {}",
            self.describe()
        );
        Ok(())
    }

    fn expect_outcome(&self, status: u16, code: &str, what: &str) -> Check {
        self.expect(status, what)?;
        let (severity, c, _) = self.issue();
        ensure!(
            self.is_outcome() && severity == "error" && c == code,
            "{what}: expected an OperationOutcome (error, {code}), got {}",
            self.describe()
        );
        Ok(())
    }

    fn expect_text(&self, status: u16, text: &str, what: &str) -> Check {
        self.expect(status, what)?;
        ensure!(
            self.is_outcome() && self.issue().2 == text,
            "{what}: expected the text {text:?}, got {}",
            self.describe()
        );
        Ok(())
    }

    fn entries(&self) -> Vec<&Value> {
        self.body["entry"]
            .as_array()
            .map(|a| a.iter().collect())
            .unwrap_or_default()
    }

    /// Ids of the entries with search.mode=match.
    fn match_ids(&self) -> Vec<String> {
        self.entries()
            .into_iter()
            .filter(|e| e["search"]["mode"] == "match")
            .map(|e| e["resource"]["id"].as_str().unwrap_or("").to_owned())
            .collect()
    }

    fn expect_searchset(&self, what: &str) -> Check {
        self.expect(200, what)?;
        ensure!(
            self.body["resourceType"] == "Bundle" && self.body["type"] == "searchset",
            "{what}: expected a searchset Bundle, got {}",
            self.describe()
        );
        Ok(())
    }
}

/// The probes' sandbox: with `auth=on`, signed in as the sandbox's own client.
impl Sbx {
    async fn start(features: &[(&str, &str)], defects: &[&str]) -> Self {
        Self::with_config(config(features, defects)).await
    }

    async fn with_config(config: SandboxConfig) -> Self {
        let auth = config.features.get("auth").is_some_and(|v| v == "on");
        let mut sbx = Sbx::launch(config).await;
        if auth {
            let id = sbx.var("auth_client_id");
            let secret = sbx.var("auth_client_secret");
            sbx.token = Some(sbx.token_for(&id, &secret, None).await);
        }
        sbx
    }

    /// Creates a resource and returns its id (from Location; 200 or 201 accepted here so
    /// that a broken create status does not hide other rules).
    async fn create(&self, ty: &str, body: &Value) -> Result<String, String> {
        let r = self.post(&format!("/{ty}"), body).await;
        ensure!(
            r.status == 201 || r.status == 200,
            "create {ty}: {}",
            r.describe()
        );
        id_from_location(r.header("location").unwrap_or(""), ty).ok_or_else(|| {
            format!(
                "create {ty}: no usable Location: {:?}",
                r.header("location")
            )
        })
    }

    async fn read(&self, ty: &str, id: &str) -> Result<Value, String> {
        let r = self.get(&format!("/{ty}/{id}")).await;
        r.expect(200, &format!("read {ty}/{id}"))?;
        Ok(r.body)
    }
}

fn loopback() -> SocketAddr {
    "127.0.0.1:0".parse().unwrap()
}

fn id_from_location(location: &str, ty: &str) -> Option<String> {
    let rest = location.split(&format!("{ty}/")).nth(1)?;
    let id = rest.split('/').next()?;
    (!id.is_empty()).then(|| id.to_owned())
}

// ---------------------------------------------------------------------------------------
// Bodies

const EXT: &str = "http://schemas.canvasmedical.com/fhir/extensions/";

fn ext(body: &Value, name: &str) -> Option<Value> {
    body["extension"]
        .as_array()?
        .iter()
        .find(|e| e["url"] == format!("{EXT}{name}"))
        .cloned()
}

fn practitioner(email: &str) -> Value {
    json!({
        "resourceType": "Practitioner",
        "extension": [
            { "url": format!("{EXT}practitioner-user-username"), "valueString": "rquintana" },
            { "url": format!("{EXT}practitioner-personal-meeting-room-link"), "valueUrl": "https://meet.example.com/room-001" },
            { "url": format!("{EXT}practitioner-primary-practice-location"),
              "valueReference": { "reference": "Location/location-1", "type": "Location" } },
            { "url": format!("{EXT}practitioner-signature"),
              "valueAttachment": { "data": "data:application/pdf;base64,JVBERi0xLjIK" } },
            { "url": format!("{EXT}roles"), "extension": [{ "url": "code", "valueCodeableConcept":
                { "coding": [{ "system": "http://schemas.canvasmedical.com/fhir/roles", "code": "RN" }] } }] },
            { "url": "http://example.org/other-extension", "valueString": "other" }
        ],
        "identifier": [{ "system": "http://hl7.org/fhir/sid/us-npi", "value": "1111111111" }],
        "name": [{ "use": "usual", "family": "Quintana", "given": ["Rosalind"] }],
        "telecom": [
            { "system": "phone", "value": "5550001", "use": "work", "rank": 1 },
            { "system": "email", "value": email, "use": "work", "rank": 1 },
            { "system": "email", "value": format!("second.{email}"), "use": "work", "rank": 2 }
        ],
        "address": [
            { "use": "work", "line": ["1 First St"], "city": "Oakland", "state": "CA", "country": "United States" },
            { "use": "work", "line": ["2 Second St"], "city": "Berkeley", "state": "CA", "country": "United States" }
        ],
        "birthDate": "1988-10-10",
        "photo": [{ "url": "https://example.com/photo.jpg", "title": "Profile" }],
        "qualification": [{ "code": { "text": "License" } }]
    })
}

const START: &str = "2030-05-01T09:00:00Z";
const END: &str = "2030-05-01T09:30:00Z";

fn appointment(s: &Sbx, start: &str, end: &str) -> Value {
    json!({
        "resourceType": "Appointment",
        "contained": [{
            "resourceType": "Endpoint",
            "id": "appointment-meeting-endpoint",
            "status": "active",
            "connectionType": { "code": "https" },
            "payloadType": [{ "coding": [{ "code": "video-call" }] }],
            "address": "https://video.example.com/meeting-abc"
        }],
        "identifier": [{
            "use": "usual", "system": "AssigningSystem", "value": "test123",
            "period": { "start": "2024-01-01", "end": "2099-12-31" }
        }],
        "status": "proposed",
        "appointmentType": { "coding": [{
            "system": s.var("appointment_type_system"), "code": s.var("appointment_type_code")
        }] },
        "reasonCode": [{
            "coding": [{ "system": s.var("reason_code_system"), "code": s.var("reason_code_code") }],
            "text": "Initial 30 Minute Visit"
        }],
        "supportingInformation": [
            { "reference": format!("Location/{}", s.var("location_id")) },
            { "reference": "#appointment-meeting-endpoint", "type": "Endpoint" }
        ],
        "start": start,
        "end": end,
        "participant": [
            { "actor": { "reference": format!("Patient/{}", s.var("patient_id")) }, "status": "accepted" },
            { "actor": { "reference": format!("Practitioner/{}", s.var("practitioner_id")) }, "status": "accepted" }
        ]
    })
}

fn with(mut body: Value, key: &str, value: Value) -> Value {
    body[key] = value;
    body
}

fn without(mut body: Value, key: &str) -> Value {
    if let Some(map) = body.as_object_mut() {
        map.remove(key);
    }
    body
}

fn strip_meta(mut body: Value) -> Value {
    if let Some(map) = body.as_object_mut() {
        map.remove("meta");
    }
    body
}

// ---------------------------------------------------------------------------------------
// Probes: Canvas Practitioner (000)

async fn prac_create(s: &Sbx) -> Check {
    let r = s
        .post("/Practitioner", &practitioner("create@example.com"))
        .await;
    r.expect(201, "create")?;
    let location = r.header("location").unwrap_or("");
    let id = id_from_location(location, "Practitioner").ok_or("no id in Location")?;
    s.read("Practitioner", &id).await?;
    Ok(())
}

async fn prac_read(s: &Sbx) -> Check {
    let id = s.var("practitioner_id");
    let body = s.read("Practitioner", &id).await?;
    ensure!(
        body["resourceType"] == "Practitioner" && body["id"] == id.as_str(),
        "read: {body}"
    );
    let r = s.get("/Practitioner/does-not-exist").await;
    r.expect_outcome(404, "not-found", "unknown id")
}

async fn prac_active_default(s: &Sbx) -> Check {
    let id = s
        .create("Practitioner", &practitioner("active@example.com"))
        .await?;
    let body = s.read("Practitioner", &id).await?;
    ensure!(
        body["active"] == true,
        "active not defaulted: {}",
        body["active"]
    );
    Ok(())
}

async fn prac_email_rank1(s: &Sbx) -> Check {
    let mut two = practitioner("two@example.com");
    two["telecom"][2]["rank"] = json!(1);
    s.post("/Practitioner", &two)
        .await
        .expect_refused("two rank-1 emails")?;
    let none = with(
        practitioner("none@example.com"),
        "telecom",
        json!([{ "system": "phone", "value": "5550001", "rank": 1 }]),
    );
    s.post("/Practitioner", &none)
        .await
        .expect_refused("no email")?;
    let r = s
        .get("/Practitioner?name=Quintana&include-non-scheduleable-practitioners=true")
        .await;
    ensure!(
        r.match_ids().is_empty(),
        "something was stored: {:?}",
        r.match_ids()
    );
    Ok(())
}

async fn prac_email_immutable(s: &Sbx) -> Check {
    let id = s
        .create("Practitioner", &practitioner("fixed@example.com"))
        .await?;
    let mut body = strip_meta(s.read("Practitioner", &id).await?);
    body["telecom"][1]["value"] = json!("changed@example.com");
    s.put(&format!("/Practitioner/{id}"), &body)
        .await
        .expect_refused("change the email")?;
    let after = s.read("Practitioner", &id).await?;
    ensure!(
        after["telecom"][1]["value"] == "fixed@example.com",
        "email changed: {}",
        after["telecom"]
    );
    Ok(())
}

async fn prac_telecom_required(s: &Sbx) -> Check {
    let id = s
        .create("Practitioner", &practitioner("telecom@example.com"))
        .await?;
    let body = strip_meta(s.read("Practitioner", &id).await?);
    let changed = with(body.clone(), "birthDate", json!("1999-09-09"));
    s.put(
        &format!("/Practitioner/{id}"),
        &without(changed.clone(), "telecom"),
    )
    .await
    .expect_refused("telecom omitted")?;
    s.put(
        &format!("/Practitioner/{id}"),
        &with(changed, "telecom", json!([])),
    )
    .await
    .expect_refused("telecom []")?;
    let after = s.read("Practitioner", &id).await?;
    ensure!(
        after["birthDate"] == "1988-10-10",
        "changed: {}",
        after["birthDate"]
    );
    Ok(())
}

async fn prac_update_deletes_omitted(s: &Sbx) -> Check {
    let id = s
        .create("Practitioner", &practitioner("omit@example.com"))
        .await?;
    let stored = s.read("Practitioner", &id).await?;
    let body = json!({
        "resourceType": "Practitioner",
        "name": stored["name"],
        "telecom": stored["telecom"],
    });
    s.put(&format!("/Practitioner/{id}"), &body)
        .await
        .expect(200, "update")?;
    let after = s.read("Practitioner", &id).await?;
    for name in [
        "practitioner-signature",
        "practitioner-primary-practice-location",
        "practitioner-personal-meeting-room-link",
        "roles",
    ] {
        ensure!(ext(&after, name).is_none(), "{name} kept: {after}");
    }
    let other = after["extension"]
        .as_array()
        .into_iter()
        .flatten()
        .any(|e| e["url"] == "http://example.org/other-extension");
    ensure!(!other, "other extension kept");
    for field in [
        "photo",
        "address",
        "birthDate",
        "qualification",
        "identifier",
    ] {
        ensure!(after.get(field).is_none(), "{field} kept: {}", after[field]);
    }
    Ok(())
}

async fn prac_username_kept(s: &Sbx) -> Check {
    let id = s
        .create("Practitioner", &practitioner("user@example.com"))
        .await?;
    let mut body = strip_meta(s.read("Practitioner", &id).await?);
    let exts: Vec<Value> = body["extension"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|e| !e["url"].as_str().unwrap_or("").ends_with("username"))
        .cloned()
        .collect();
    body["extension"] = json!(exts);
    s.put(&format!("/Practitioner/{id}"), &body)
        .await
        .expect(200, "update")?;
    let after = s.read("Practitioner", &id).await?;
    let username = ext(&after, "practitioner-user-username").ok_or("username deleted")?;
    ensure!(
        username["valueString"] == "rquintana",
        "username: {username}"
    );
    Ok(())
}

async fn prac_update_item_ids(s: &Sbx) -> Check {
    let id = s
        .create("Practitioner", &practitioner("items@example.com"))
        .await?;
    let stored = strip_meta(s.read("Practitioner", &id).await?);
    let first = stored["address"][0]["id"]
        .as_str()
        .ok_or("no address id")?
        .to_owned();
    let second = stored["address"][1]["id"]
        .as_str()
        .ok_or("no address id")?
        .to_owned();
    let phone = stored["telecom"][0]["id"]
        .as_str()
        .ok_or("no telecom id")?
        .to_owned();
    let mut body = stored.clone();
    body["address"] = json!([
        with(stored["address"][0].clone(), "city", json!("Alameda")),
        { "use": "home", "line": ["3 Third St"], "city": "Fremont" }
    ]);
    body["telecom"][0]["value"] = json!("5559999");
    s.put(&format!("/Practitioner/{id}"), &body)
        .await
        .expect(200, "update")?;
    let after = s.read("Practitioner", &id).await?;
    let addresses = after["address"].as_array().ok_or("no address")?;
    ensure!(addresses.len() == 2, "addresses: {}", after["address"]);
    let kept = addresses
        .iter()
        .find(|a| a["id"] == first.as_str())
        .ok_or("address id not kept")?;
    ensure!(kept["city"] == "Alameda", "not updated in place: {kept}");
    let new = addresses
        .iter()
        .find(|a| a["city"] == "Fremont")
        .ok_or("new address missing")?;
    ensure!(
        new["id"].is_string() && new["id"] != first.as_str() && new["id"] != second.as_str(),
        "new address id: {new}"
    );
    ensure!(
        !addresses.iter().any(|a| a["id"] == second.as_str()),
        "unsent address kept"
    );
    let tel = after["telecom"].as_array().ok_or("no telecom")?;
    ensure!(
        tel.iter()
            .any(|t| t["id"] == phone.as_str() && t["value"] == "5559999"),
        "telecom not updated in place: {}",
        after["telecom"]
    );
    Ok(())
}

async fn prac_signature_url_ignored(s: &Sbx) -> Check {
    let id = s
        .create("Practitioner", &practitioner("sig@example.com"))
        .await?;
    let stored = strip_meta(s.read("Practitioner", &id).await?);
    let signature = ext(&stored, "practitioner-signature").ok_or("no signature stored")?;
    let mut body = stored.clone();
    for e in body["extension"].as_array_mut().unwrap() {
        if e["url"] == format!("{EXT}practitioner-signature") {
            *e = json!({
                "url": format!("{EXT}practitioner-signature"),
                "extension": [{ "valueAttachment": { "url": "https://example.com/other-signature.pdf" } }]
            });
        }
    }
    s.put(&format!("/Practitioner/{id}"), &body)
        .await
        .expect(200, "update")?;
    let after = s.read("Practitioner", &id).await?;
    let now = ext(&after, "practitioner-signature").ok_or("signature lost")?;
    ensure!(
        now == signature,
        "signature changed from {signature} to {now}"
    );
    Ok(())
}

async fn prac_search_default_active(s: &Sbx) -> Check {
    let inactive = s.var("practitioner_inactive_id");
    let r = s
        .get(&format!(
            "/Practitioner?_id={inactive}&include-non-scheduleable-practitioners=true"
        ))
        .await;
    r.expect_searchset("search")?;
    ensure!(
        r.match_ids().is_empty(),
        "inactive returned without active: {:?}",
        r.match_ids()
    );
    let r = s
        .get(&format!(
            "/Practitioner?_id={inactive}&include-non-scheduleable-practitioners=true&active=false"
        ))
        .await;
    ensure!(
        r.match_ids() == [inactive.clone()],
        "active=false: {:?}",
        r.match_ids()
    );
    let r = s.get("/Practitioner?_count=100").await;
    ensure!(
        !r.match_ids().contains(&inactive),
        "default search has the inactive one"
    );
    Ok(())
}

async fn prac_search_nonschedulable(s: &Sbx) -> Check {
    let id = s.var("practitioner_nonschedulable_id");
    let r = s.get(&format!("/Practitioner?_id={id}")).await;
    ensure!(
        r.match_ids().is_empty(),
        "non-scheduleable by default: {:?}",
        r.match_ids()
    );
    let r = s
        .get(&format!(
            "/Practitioner?_id={id}&include-non-scheduleable-practitioners=true"
        ))
        .await;
    ensure!(
        r.match_ids() == [id.clone()],
        "with the flag: {:?}",
        r.match_ids()
    );
    Ok(())
}

async fn prac_search_params(s: &Sbx) -> Check {
    let p1 = s.var("practitioner_id");
    let p2 = s.var("practitioner_id_2");
    let inactive = s.var("practitioner_inactive_id");
    for q in ["name=Saman", "name=jon", "name=Samantha%20Jones"] {
        let r = s.get(&format!("/Practitioner?{q}")).await;
        r.expect_searchset(q)?;
        ensure!(r.match_ids() == [p1.clone()], "{q}: {:?}", r.match_ids());
    }
    let r = s
        .get("/Practitioner?email=SAMANTHA.JONES@example.com")
        .await;
    ensure!(r.match_ids() == [p1.clone()], "email: {:?}", r.match_ids());
    let r = s.get("/Practitioner?npiNumber=1920301155").await;
    ensure!(
        r.match_ids() == [p1.clone()],
        "npiNumber: {:?}",
        r.match_ids()
    );
    let r = s.get(&format!("/Practitioner?_id={p2}")).await;
    ensure!(r.match_ids() == [p2.clone()], "_id: {:?}", r.match_ids());
    let r = s.get(&format!("/Practitioner?_id={p1}&active=TRUE")).await;
    ensure!(
        r.match_ids() == [p1.clone()],
        "active=TRUE: {:?}",
        r.match_ids()
    );
    let r = s
        .get(&format!(
            "/Practitioner?_id={inactive}&active=False&include-non-scheduleable-practitioners=true"
        ))
        .await;
    ensure!(
        r.match_ids() == [inactive],
        "active=False: {:?}",
        r.match_ids()
    );
    Ok(())
}

/// With auth=on: no token / bad token → 401, limited token → 403, full token → OK.
async fn auth_probe(s: &Sbx, read_path: &str, create: (&str, Value)) -> Check {
    let r = s.send_as(Method::GET, read_path, &[], None, false).await;
    r.expect(401, "no token")?;
    ensure!(
        r.is_outcome(),
        "401 without OperationOutcome: {}",
        r.describe()
    );
    ensure!(
        r.header("www-authenticate")
            .is_some_and(|h| h.starts_with("Bearer")),
        "no WWW-Authenticate"
    );
    let bad = [("authorization", "Bearer not-a-token")];
    s.send_as(Method::GET, read_path, &bad, None, false)
        .await
        .expect(401, "bad token")?;
    let limited = s
        .token_for(
            &s.var("auth_limited_client_id"),
            &s.var("auth_limited_client_secret"),
            None,
        )
        .await;
    let header = format!("Bearer {limited}");
    let r = s
        .send_as(
            Method::GET,
            read_path,
            &[("authorization", &header)],
            None,
            false,
        )
        .await;
    r.expect_outcome(403, "forbidden", "limited token")?;
    let (path, body) = create;
    let json = [("content-type", "application/fhir+json")];
    s.send_as(
        Method::POST,
        path,
        &json,
        Some(body.to_string().into_bytes()),
        false,
    )
    .await
    .expect(401, "create without token")?;
    s.get(read_path).await.expect(200, "full token")?;
    Ok(())
}

async fn prac_auth(s: &Sbx) -> Check {
    let path = format!("/Practitioner/{}", s.var("practitioner_id"));
    auth_probe(
        s,
        &path,
        ("/Practitioner", practitioner("auth@example.com")),
    )
    .await
}

// ---------------------------------------------------------------------------------------
// Probes: Canvas Appointment (004, 001)

async fn appt_create(s: &Sbx) -> Check {
    let r = s.post("/Appointment", &appointment(s, START, END)).await;
    r.expect(201, "create")?;
    let id = id_from_location(r.header("location").unwrap_or(""), "Appointment")
        .ok_or("no id in Location")?;
    s.read("Appointment", &id).await?;
    Ok(())
}

async fn appt_create_proposed(s: &Sbx) -> Check {
    let booked = with(appointment(s, START, END), "status", json!("booked"));
    let id = s.create("Appointment", &booked).await?;
    let body = s.read("Appointment", &id).await?;
    ensure!(
        body["status"] == "proposed",
        "booked stored as {}",
        body["status"]
    );
    let none = without(
        appointment(s, "2030-05-02T09:00Z", "2030-05-02T09:30Z"),
        "status",
    );
    let id = s.create("Appointment", &none).await?;
    let body = s.read("Appointment", &id).await?;
    ensure!(
        body["status"] == "proposed",
        "no status stored as {}",
        body["status"]
    );
    Ok(())
}

async fn appt_type_default(s: &Sbx) -> Check {
    let id = s
        .create(
            "Appointment",
            &without(appointment(s, START, END), "appointmentType"),
        )
        .await?;
    let body = s.read("Appointment", &id).await?;
    let coding = &body["appointmentType"]["coding"][0];
    ensure!(
        coding["code"].is_string() && coding["system"].is_string(),
        "no default type: {}",
        body["appointmentType"]
    );
    Ok(())
}

async fn appt_type_one_coding(s: &Sbx) -> Check {
    let two = json!({ "coding": [
        { "system": s.var("appointment_type_system"), "code": s.var("appointment_type_code") },
        { "system": s.var("appointment_type_internal_system"), "code": s.var("appointment_type_internal_code") }
    ] });
    let body = with(appointment(s, START, END), "appointmentType", two);
    s.post("/Appointment", &body)
        .await
        .expect_refused("two codings")?;
    let none = with(
        appointment(s, START, END),
        "appointmentType",
        json!({ "coding": [] }),
    );
    s.post("/Appointment", &none)
        .await
        .expect_refused("no coding")?;
    let loinc = json!({ "coding": [{ "system": "http://loinc.org", "code": s.var("appointment_type_code") }] });
    let body = with(appointment(s, START, END), "appointmentType", loinc);
    s.post("/Appointment", &body)
        .await
        .expect_refused("LOINC coding")?;
    let internal = json!({ "coding": [{
        "system": s.var("appointment_type_internal_system"), "code": s.var("appointment_type_internal_code")
    }] });
    let body = with(appointment(s, START, END), "appointmentType", internal);
    s.post("/Appointment", &body)
        .await
        .expect(201, "one INTERNAL coding")?;
    Ok(())
}

async fn appt_type_unknown(s: &Sbx) -> Check {
    let system = s.var("appointment_type_system");
    let unknown = json!({ "coding": [{ "system": system, "code": "999999999" }] });
    let r = s
        .post(
            "/Appointment",
            &with(appointment(s, START, END), "appointmentType", unknown),
        )
        .await;
    let text = format!(
        "Appointment Create Error: Appointment Type does not exist with system: {system} and code: 999999999"
    );
    r.expect_text(422, &text, "unknown type")?;
    ensure!(r.issue().1 == "processing", "issue code {}", r.issue().1);
    Ok(())
}

async fn appt_type_unschedulable(s: &Sbx) -> Check {
    let t = json!({ "coding": [{
        "system": s.var("appointment_type_unschedulable_system"),
        "code": s.var("appointment_type_unschedulable_code")
    }] });
    let r = s
        .post(
            "/Appointment",
            &with(appointment(s, START, END), "appointmentType", t),
        )
        .await;
    r.expect_text(
        422,
        "Appointment Create Error: Appointment type must be scheduleable",
        "unschedulable type",
    )
}

async fn appt_reason_first(s: &Sbx) -> Check {
    let reasons = json!([
        { "coding": [{ "system": s.var("reason_code_system"), "code": s.var("reason_code_code") }], "text": "First" },
        { "text": "Second" }
    ]);
    let id = s
        .create(
            "Appointment",
            &with(appointment(s, START, END), "reasonCode", reasons),
        )
        .await?;
    let body = s.read("Appointment", &id).await?;
    let kept = body["reasonCode"].as_array().map_or(0, Vec::len);
    ensure!(
        kept == 1 && body["reasonCode"][0]["text"] == "First",
        "reasonCode: {}",
        body["reasonCode"]
    );
    let unknown = json!([{ "coding": [{ "system": "INTERNAL", "code": "NOPE" }], "text": "x" }]);
    let r = s
        .post(
            "/Appointment",
            &with(
                appointment(s, "2030-05-02T09:00Z", "2030-05-02T09:30Z"),
                "reasonCode",
                unknown,
            ),
        )
        .await;
    r.expect_refused("unknown reason")?;
    ensure!(
        r.issue().2 == "structured reason for visit with code NOPE does not exist",
        "text: {}",
        r.issue().2
    );
    Ok(())
}

async fn appt_description_mirrors(s: &Sbx) -> Check {
    let body = with(
        appointment(s, START, END),
        "description",
        json!("Something else"),
    );
    let id = s.create("Appointment", &body).await?;
    let stored = s.read("Appointment", &id).await?;
    ensure!(
        stored["description"] == "Initial 30 Minute Visit",
        "description: {}",
        stored["description"]
    );
    let update = json!({ "resourceType": "Appointment", "reasonCode": [{ "text": "Follow-up" }] });
    s.put(&format!("/Appointment/{id}"), &update)
        .await
        .expect(200, "update")?;
    let stored = s.read("Appointment", &id).await?;
    ensure!(
        stored["description"] == "Follow-up",
        "after update: {}",
        stored["description"]
    );
    Ok(())
}

async fn appt_practitioner_required(s: &Sbx) -> Check {
    let only_patient = json!([{ "actor": { "reference": format!("Patient/{}", s.var("patient_id")) }, "status": "accepted" }]);
    s.post(
        "/Appointment",
        &with(appointment(s, START, END), "participant", only_patient),
    )
    .await
    .expect_refused("no practitioner")
}

async fn appt_meeting_link(s: &Sbx) -> Check {
    let id = s.create("Appointment", &appointment(s, START, END)).await?;
    let body = s.read("Appointment", &id).await?;
    let endpoint = body["contained"]
        .as_array()
        .into_iter()
        .flatten()
        .find(|c| c["resourceType"] == "Endpoint")
        .ok_or("no contained Endpoint")?;
    ensure!(
        endpoint["address"] == "https://video.example.com/meeting-abc",
        "address: {endpoint}"
    );
    let local = format!("#{}", endpoint["id"].as_str().unwrap_or(""));
    let linked = body["supportingInformation"]
        .as_array()
        .into_iter()
        .flatten()
        .any(|r| r["reference"] == local.as_str());
    ensure!(linked, "no supportingInformation reference to {local}");
    Ok(())
}

async fn appt_start_format(s: &Sbx) -> Check {
    let id = s
        .create(
            "Appointment",
            &appointment(s, "2030-05-01T09:00", "2030-05-01T09:30"),
        )
        .await?;
    let body = s.read("Appointment", &id).await?;
    ensure!(
        body["start"] == "2030-05-01T09:00:00+00:00",
        "start: {}",
        body["start"]
    );
    for (start, end) in [
        ("2030-05-03", "2030-05-03T10:00"),
        ("soon", "2030-05-03T10:00"),
        ("2030-05-03T10", "2030-05-03T10:30"),
        ("2030-05-03T10:00", "10:30"),
    ] {
        s.post("/Appointment", &appointment(s, start, end))
            .await
            .expect_refused(&format!("start {start} end {end}"))?;
    }
    Ok(())
}

async fn appt_update_statuses(s: &Sbx) -> Check {
    let id = s.create("Appointment", &appointment(s, START, END)).await?;
    let path = format!("/Appointment/{id}");
    for status in [
        "pending",
        "booked",
        "arrived",
        "checked-in",
        "fulfilled",
        "noshow",
        "proposed",
        "cancelled",
    ] {
        s.put(
            &path,
            &json!({ "resourceType": "Appointment", "status": status }),
        )
        .await
        .expect(200, status)?;
    }
    let id = s
        .create(
            "Appointment",
            &appointment(s, "2030-05-02T09:00Z", "2030-05-02T09:30Z"),
        )
        .await?;
    let path = format!("/Appointment/{id}");
    for status in ["entered-in-error", "waitlist"] {
        s.put(
            &path,
            &json!({ "resourceType": "Appointment", "status": status }),
        )
        .await
        .expect_refused(status)?;
    }
    let body = s.read("Appointment", &id).await?;
    ensure!(
        body["status"] == "proposed",
        "status now {}",
        body["status"]
    );
    Ok(())
}

async fn appt_cancelled_final(s: &Sbx) -> Check {
    let id = s.create("Appointment", &appointment(s, START, END)).await?;
    let path = format!("/Appointment/{id}");
    let cancel = json!({ "resourceType": "Appointment", "status": "cancelled" });
    s.put(&path, &cancel).await.expect(200, "cancel")?;
    let rebook = json!({ "resourceType": "Appointment", "status": "booked" });
    let r = s.put(&path, &rebook).await;
    ensure!(
        r.status == 200 || (400..500).contains(&r.status),
        "re-book: {}",
        r.describe()
    );
    let body = s.read("Appointment", &id).await?;
    ensure!(
        body["status"] == "cancelled",
        "status now {}",
        body["status"]
    );
    Ok(())
}

async fn appt_status_omitted_kept(s: &Sbx) -> Check {
    let id = s.create("Appointment", &appointment(s, START, END)).await?;
    let path = format!("/Appointment/{id}");
    s.put(
        &path,
        &json!({ "resourceType": "Appointment", "status": "booked" }),
    )
    .await
    .expect(200, "book")?;
    let stored = strip_meta(s.read("Appointment", &id).await?);
    let update = with(without(stored, "status"), "description", json!("x"));
    s.put(&path, &update)
        .await
        .expect(200, "update without status")?;
    let body = s.read("Appointment", &id).await?;
    ensure!(body["status"] == "booked", "status now {}", body["status"]);
    Ok(())
}

async fn appt_update_keeps_omitted(s: &Sbx) -> Check {
    let id = s.create("Appointment", &appointment(s, START, END)).await?;
    let before = s.read("Appointment", &id).await?;
    s.put(
        &format!("/Appointment/{id}"),
        &json!({ "resourceType": "Appointment", "status": "booked" }),
    )
    .await
    .expect(200, "update")?;
    let after = s.read("Appointment", &id).await?;
    for field in [
        "contained",
        "identifier",
        "appointmentType",
        "reasonCode",
        "description",
        "supportingInformation",
        "start",
        "end",
        "participant",
    ] {
        ensure!(
            before[field] == after[field],
            "{field}: {} → {}",
            before[field],
            after[field]
        );
    }
    ensure!(after["status"] == "booked", "status {}", after["status"]);
    Ok(())
}

async fn appt_identifier_replace(s: &Sbx) -> Check {
    let ids = json!([
        { "system": "A", "value": "1", "period": { "start": "2024-01-01", "end": "2099-12-31" } },
        { "system": "B", "value": "2", "period": { "start": "2024-01-01", "end": "2099-12-31" } }
    ]);
    let id = s
        .create(
            "Appointment",
            &with(appointment(s, START, END), "identifier", ids),
        )
        .await?;
    let stored = s.read("Appointment", &id).await?;
    let a = stored["identifier"]
        .as_array()
        .into_iter()
        .flatten()
        .find(|i| i["system"] == "A")
        .ok_or("identifier A missing")?
        .clone();
    let a_id = a["id"].as_str().ok_or("identifier without id")?.to_owned();
    let update = json!({
        "resourceType": "Appointment",
        "identifier": [with(a, "value", json!("1-changed"))]
    });
    s.put(&format!("/Appointment/{id}"), &update)
        .await
        .expect(200, "update")?;
    let after = s.read("Appointment", &id).await?;
    let list = after["identifier"].as_array().ok_or("no identifier")?;
    ensure!(list.len() == 1, "identifiers: {}", after["identifier"]);
    ensure!(
        list[0]["id"] == a_id.as_str() && list[0]["value"] == "1-changed",
        "not updated in place: {}",
        list[0]
    );
    Ok(())
}

async fn stats(s: &Sbx) -> Value {
    s.get("/_sandbox/stats").await.body
}

async fn appt_double_booking_422(s: &Sbx) -> Check {
    s.create("Appointment", &appointment(s, START, END)).await?;
    let overlap = appointment(s, "2030-05-01T09:15:00Z", "2030-05-01T09:45:00Z");
    let r = s.post("/Appointment", &overlap).await;
    r.expect_text(
        422,
        "This appointment time is no longer available.",
        "overlap",
    )?;
    let created = stats(s).await["created"]["Appointment"].clone();
    ensure!(created == 1, "stored anyway: {created}");
    let later = appointment(s, "2030-05-01T10:00:00Z", "2030-05-01T10:30:00Z");
    let id = s.create("Appointment", &later).await?;
    let r = s
        .put(
            &format!("/Appointment/{id}"),
            &json!({ "resourceType": "Appointment", "start": "2030-05-01T09:20:00Z", "end": "2030-05-01T09:40:00Z" }),
        )
        .await;
    r.expect_text(
        422,
        "This appointment time is no longer available.",
        "update into overlap",
    )?;
    let body = s.read("Appointment", &id).await?;
    ensure!(
        body["start"] == "2030-05-01T10:00:00+00:00",
        "moved anyway: {}",
        body["start"]
    );
    Ok(())
}

async fn appt_double_booking_allowed(s: &Sbx) -> Check {
    s.create("Appointment", &appointment(s, START, END)).await?;
    let overlap = appointment(s, "2030-05-01T09:15:00Z", "2030-05-01T09:45:00Z");
    s.post("/Appointment", &overlap)
        .await
        .expect(201, "overlap")
}

async fn appt_read(s: &Sbx) -> Check {
    let id = s.create("Appointment", &appointment(s, START, END)).await?;
    let body = s.read("Appointment", &id).await?;
    ensure!(body["resourceType"] == "Appointment", "read: {body}");
    s.get("/Appointment/does-not-exist")
        .await
        .expect_outcome(404, "not-found", "unknown id")
}

async fn appt_search(s: &Sbx) -> Check {
    let p2 = s.var("practitioner_id_2");
    let patient2 = s.var("patient_id_2");
    let mut ids = Vec::new();
    for day in ["10", "11", "12"] {
        let mut body = appointment(
            s,
            &format!("2031-03-{day}T15:00Z"),
            &format!("2031-03-{day}T15:30Z"),
        );
        body["participant"] = json!([
            { "actor": { "reference": format!("Patient/{patient2}") }, "status": "accepted" },
            { "actor": { "reference": format!("Practitioner/{p2}") }, "status": "accepted" }
        ]);
        ids.push(s.create("Appointment", &body).await?);
    }
    let other = s
        .create(
            "Appointment",
            &appointment(s, "2031-03-11T08:00Z", "2031-03-11T08:30Z"),
        )
        .await?;
    let base = format!("/Appointment?practitioner=Practitioner%2F{p2}");
    let r = s
        .get(&format!(
            "{base}&date=ge2031-03-10&date=lt2031-03-12&_sort=date"
        ))
        .await;
    r.expect_searchset("date range")?;
    ensure!(
        r.match_ids() == ids[..2],
        "ge/lt range: {:?}",
        r.match_ids()
    );
    let r = s
        .get(&format!("{base}&date=gt2031-03-10&_sort=-date"))
        .await;
    ensure!(
        r.match_ids() == [ids[2].clone(), ids[1].clone()],
        "gt, -date: {:?}",
        r.match_ids()
    );
    let r = s.get(&format!("{base}&date=le2031-03-11&_sort=date")).await;
    ensure!(r.match_ids() == ids[..2], "le: {:?}", r.match_ids());
    let r = s
        .get("/Appointment?date=2031-03-11&_sort=practitioner")
        .await;
    ensure!(
        r.match_ids() == [other.clone(), ids[1].clone()],
        "eq, sort practitioner: {:?}",
        r.match_ids()
    );
    let r = s
        .get(&format!(
            "/Appointment?patient=Patient%2F{patient2}&_sort=-date"
        ))
        .await;
    ensure!(r.body["total"] == 3, "patient total: {}", r.body["total"]);
    ensure!(
        r.match_ids().first() == Some(&ids[2]),
        "patient -date: {:?}",
        r.match_ids()
    );
    let r = s
        .get(&format!("/Appointment?_id={other}&status=proposed"))
        .await;
    ensure!(
        r.match_ids() == [other.clone()],
        "_id+status: {:?}",
        r.match_ids()
    );
    let r = s.get("/Appointment?status=booked").await;
    ensure!(
        r.match_ids().is_empty(),
        "status=booked: {:?}",
        r.match_ids()
    );
    let code = s.var("appointment_type_code");
    let loc = s.var("location_id");
    let r = s
        .get(&format!(
            "/Appointment?appointment-type={code}&location=Location%2F{loc}"
        ))
        .await;
    ensure!(
        r.body["total"] == 4,
        "type+location total: {}",
        r.body["total"]
    );
    let r = s
        .get(&format!("{base}&_count=1&_offset=1&_sort=date"))
        .await;
    ensure!(
        r.body["total"] == 3 && r.match_ids() == [ids[1].clone()],
        "paging: {}",
        r.describe()
    );
    for rel in ["self", "first", "last"] {
        ensure!(r.link(rel).is_some(), "no {rel} link");
    }
    Ok(())
}

async fn appt_precondition(s: &Sbx) -> Check {
    let id = s.create("Appointment", &appointment(s, START, END)).await?;
    let path = format!("/Appointment/{id}");
    let r = s.get(&path).await;
    ensure!(
        r.header("etag") == Some("W/\"1\""),
        "ETag {:?}",
        r.header("etag")
    );
    let update = json!({ "resourceType": "Appointment", "status": "booked" });
    s.put_with(&path, &update, &[("if-match", "W/\"1\"")])
        .await
        .expect(200, "current version")?;
    let update = json!({ "resourceType": "Appointment", "status": "arrived" });
    let r = s.put_with(&path, &update, &[("if-match", "W/\"1\"")]).await;
    r.expect_outcome(412, "conflict", "stale version")?;
    let body = s.read("Appointment", &id).await?;
    ensure!(
        body["status"] == "booked",
        "applied anyway: {}",
        body["status"]
    );
    Ok(())
}

async fn appt_method(s: &Sbx) -> Check {
    let id = s.create("Appointment", &appointment(s, START, END)).await?;
    let path = format!("/Appointment/{id}");
    let r = s.send_as(Method::DELETE, &path, &[], None, true).await;
    r.expect_outcome(405, "not-supported", "DELETE")?;
    s.read("Appointment", &id).await?;
    Ok(())
}

async fn appt_auth(s: &Sbx) -> Check {
    let id = s.create("Appointment", &appointment(s, START, END)).await?;
    let body = appointment(s, "2030-06-01T09:00Z", "2030-06-01T09:30Z");
    auth_probe(s, &format!("/Appointment/{id}"), ("/Appointment", body)).await?;
    let r = s
        .send_as(Method::GET, "/Appointment", &[], None, false)
        .await;
    r.expect(401, "search without token")
}

// ---------------------------------------------------------------------------------------
// Probes: provider registry (003, 002)

fn ppr_query(s: &Sbx, issuer: &str) -> String {
    format!(
        "identifier={}%7C{}",
        s.var(issuer).replace(':', "%3A").replace('/', "%2F"),
        s.var("ppr_shared_value")
    )
}

async fn ppr_identifier(s: &Sbx) -> Check {
    let r = s
        .get(&format!("/Practitioner?{}", ppr_query(s, "ppr_issuer")))
        .await;
    r.expect_searchset("identifier search")?;
    let practitioners: Vec<&Value> = r
        .entries()
        .into_iter()
        .filter(|e| e["resource"]["resourceType"] == "Practitioner")
        .collect();
    ensure!(
        practitioners.len() == 1,
        "practitioner entries: {}",
        practitioners.len()
    );
    ensure!(
        practitioners[0]["search"]["mode"] == "match"
            && practitioners[0]["resource"]["id"] == s.var("ppr_practitioner_id").as_str(),
        "match entry: {}",
        practitioners[0]
    );
    Ok(())
}

async fn ppr_include(s: &Sbx) -> Check {
    let r = s
        .get(&format!("/Practitioner?{}", ppr_query(s, "ppr_issuer")))
        .await;
    r.expect_searchset("identifier search")?;
    for ty in ["PractitionerRole", "Location", "Organization"] {
        let included = r
            .entries()
            .into_iter()
            .any(|e| e["resource"]["resourceType"] == ty && e["search"]["mode"] == "include");
        ensure!(included, "no {ty} with search.mode=include");
    }
    Ok(())
}

async fn ppr_post_search(s: &Sbx) -> Check {
    let query = ppr_query(s, "ppr_issuer");
    let get = s.get(&format!("/Practitioner?{query}")).await;
    let post = s
        .send_as(
            Method::POST,
            &format!("/Practitioner/_search?{query}"),
            &[("content-type", "application/fhir+json")],
            None,
            true,
        )
        .await;
    post.expect_searchset("POST _search")?;
    ensure!(
        post.match_ids() == get.match_ids() && post.match_ids() == [s.var("ppr_practitioner_id")],
        "POST {:?} vs GET {:?}",
        post.match_ids(),
        get.match_ids()
    );
    ensure!(post.body["total"] == get.body["total"], "totals differ");
    Ok(())
}

async fn ppr_issuer_required(s: &Sbx) -> Check {
    let value = s.var("ppr_shared_value");
    for q in [value.clone(), format!("%7C{value}")] {
        s.get(&format!("/Practitioner?identifier={q}"))
            .await
            .expect_outcome(400, "invalid", &format!("identifier={q}"))?;
    }
    Ok(())
}

async fn ppr_issuer_scoped(s: &Sbx) -> Check {
    let one = s
        .get(&format!("/Practitioner?{}", ppr_query(s, "ppr_issuer")))
        .await;
    let two = s
        .get(&format!("/Practitioner?{}", ppr_query(s, "ppr_issuer_2")))
        .await;
    ensure!(
        one.match_ids() == [s.var("ppr_practitioner_id")],
        "issuer 1: {:?}",
        one.match_ids()
    );
    ensure!(
        two.match_ids() == [s.var("ppr_practitioner_id_2")],
        "issuer 2: {:?}",
        two.match_ids()
    );
    Ok(())
}

async fn ppr_no_match(s: &Sbx) -> Check {
    let issuer = s.var("ppr_issuer").replace(':', "%3A").replace('/', "%2F");
    let r = s
        .get(&format!("/Practitioner?identifier={issuer}%7C000000001"))
        .await;
    r.expect_searchset("no match")?;
    ensure!(
        r.body["total"] == 0 && r.match_ids().is_empty(),
        "matches: {}",
        r.describe()
    );
    let oo = r
        .entries()
        .into_iter()
        .find(|e| e["resource"]["resourceType"] == "OperationOutcome")
        .ok_or("no OperationOutcome entry")?
        .clone();
    ensure!(oo["search"]["mode"] == "outcome", "mode: {}", oo["search"]);
    let issue = &oo["resource"]["issue"][0];
    ensure!(
        issue["severity"] == "warning" && issue["code"] == "not-found",
        "issue: {issue}"
    );
    Ok(())
}

async fn ppr_content_type(s: &Sbx) -> Check {
    let query = ppr_query(s, "ppr_issuer");
    let path = format!("/Practitioner/_search?{query}");
    for ct in [
        "application/x-www-form-urlencoded",
        "text/plain",
        "application/xml",
    ] {
        s.send_as(
            Method::POST,
            &path,
            &[("content-type", ct)],
            Some(query.clone().into_bytes()),
            true,
        )
        .await
        .expect_outcome(400, "invalid", ct)?;
    }
    s.send_as(
        Method::POST,
        &path,
        &[("content-type", "application/fhir+json")],
        None,
        true,
    )
    .await
    .expect(200, "application/fhir+json")
}

async fn ppr_bad_param(s: &Sbx) -> Check {
    s.get("/Practitioner?colour=red")
        .await
        .expect_outcome(400, "invalid", "unknown parameter")?;
    let query = ppr_query(s, "ppr_issuer");
    s.get(&format!("/Practitioner?{query}&foo=bar"))
        .await
        .expect_outcome(400, "invalid", "unknown parameter with identifier")?;
    s.get("/Practitioner?active=maybe")
        .await
        .expect_outcome(400, "invalid", "malformed active")
}

async fn ppr_auth(s: &Sbx) -> Check {
    let path = format!("/Practitioner?{}", ppr_query(s, "ppr_issuer"));
    let r = s.send_as(Method::GET, &path, &[], None, false).await;
    r.expect_outcome(401, "security", "no token")?;
    let bad = [("authorization", "Bearer nope")];
    s.send_as(Method::GET, &path, &bad, None, false)
        .await
        .expect_outcome(401, "security", "bad token")?;
    let post = format!("/Practitioner/_search?{}", ppr_query(s, "ppr_issuer"));
    let json = [("content-type", "application/fhir+json")];
    s.send_as(Method::POST, &post, &json, None, false)
        .await
        .expect_outcome(401, "security", "POST without token")?;
    s.get(&path).await.expect(200, "token")
}

async fn ppr_accept(s: &Sbx) -> Check {
    let path = format!("/Practitioner?{}", ppr_query(s, "ppr_issuer"));
    for accept in ["application/fhir+xml", "application/xml", "text/html"] {
        s.get_with(&path, &[("accept", accept)])
            .await
            .expect_outcome(406, "not-supported", accept)?;
    }
    s.get(&format!("{path}&_format=xml")).await.expect_outcome(
        406,
        "not-supported",
        "_format=xml",
    )?;
    for accept in [
        "application/fhir+json",
        "application/json",
        "*/*",
        "application/fhir+xml, application/json;q=0.5",
    ] {
        s.get_with(&path, &[("accept", accept)])
            .await
            .expect(200, accept)?;
    }
    Ok(())
}

async fn ppr_other_params(s: &Sbx) -> Check {
    let p1 = s.var("ppr_practitioner_id");
    let p2 = s.var("ppr_practitioner_id_2");
    let query = ppr_query(s, "ppr_issuer");
    let cases: Vec<(String, Vec<String>)> = vec![
        (format!("{query}&gender=female"), vec![p1.clone()]),
        (format!("{query}&gender=male"), vec![]),
        (format!("{query}&active=true"), vec![p1.clone()]),
        (format!("{query}&active=false"), vec![]),
        (format!("{query}&communication=fr"), vec![p1.clone()]),
        (format!("{query}&address=Ottawa"), vec![]),
        (format!("{query}&address=toronto"), vec![p1.clone()]),
        (
            format!("name={}", &s.var("ppr_family")[..5]),
            vec![p1.clone()],
        ),
        ("address=Ottawa".to_owned(), vec![p2.clone()]),
        ("communication=fr".to_owned(), vec![p1.clone()]),
        ("gender=male&name=Singh".to_owned(), vec![p2.clone()]),
    ];
    for (q, want) in cases {
        let r = s.get(&format!("/Practitioner?{q}")).await;
        r.expect_searchset(&q)?;
        ensure!(
            r.match_ids() == want,
            "{q}: {:?}, want {want:?}",
            r.match_ids()
        );
    }
    Ok(())
}

async fn ppr_throttle(s: &Sbx) -> Check {
    for n in 1..=3 {
        s.get("/metadata")
            .await
            .expect(200, &format!("request {n}"))?;
    }
    let r = s.get("/metadata").await;
    r.expect_outcome(429, "throttled", "request 4")?;
    ensure!(
        r.header("retry-after")
            .and_then(|v| v.parse::<u64>().ok())
            .is_some_and(|n| (1..=10).contains(&n)),
        "Retry-After: {:?}",
        r.header("retry-after")
    );
    Ok(())
}

// ---------------------------------------------------------------------------------------
// Probes: FHIR R4 core

async fn core_metadata(s: &Sbx) -> Check {
    let r = s.get("/metadata").await;
    r.expect(200, "metadata")?;
    ensure!(
        r.body["resourceType"] == "CapabilityStatement",
        "{}",
        r.describe()
    );
    let version = r.body["fhirVersion"].as_str().unwrap_or("");
    ensure!(version.starts_with("4.0."), "fhirVersion {version}");
    Ok(())
}

async fn core_read_404(s: &Sbx) -> Check {
    for path in ["/Patient/does-not-exist", "/Location/does-not-exist"] {
        let r = s.get(path).await;
        r.expect(404, path)?;
        ensure!(
            r.text.is_empty() || r.is_outcome(),
            "{path}: body is not an OperationOutcome"
        );
    }
    s.read("Patient", &s.var("patient_id")).await?;
    Ok(())
}

async fn core_create(s: &Sbx) -> Check {
    let r = s.post("/Appointment", &appointment(s, START, END)).await;
    r.expect(201, "create")?;
    let location = r.header("location").unwrap_or("");
    let prefix = format!("{}/Appointment/", s.server.base_url());
    let rest = location
        .strip_prefix(&prefix)
        .ok_or(format!("Location {location:?}"))?;
    let parts: Vec<&str> = rest.split('/').collect();
    ensure!(
        parts.len() == 1 || (parts.len() == 3 && parts[1] == "_history"),
        "Location {location:?}"
    );
    s.read("Appointment", parts[0]).await?;
    Ok(())
}

async fn core_update(s: &Sbx) -> Check {
    let id = s
        .create("Practitioner", &practitioner("update@example.com"))
        .await?;
    let body = with(
        strip_meta(s.read("Practitioner", &id).await?),
        "birthDate",
        json!("1977-07-07"),
    );
    let r = s.put(&format!("/Practitioner/{id}"), &body).await;
    ensure!(
        r.status == 200 || r.status == 201,
        "update: {}",
        r.describe()
    );
    let after = s.read("Practitioner", &id).await?;
    ensure!(
        after["birthDate"] == "1977-07-07",
        "read-back: {}",
        after["birthDate"]
    );
    ensure!(
        after["meta"]["versionId"] == "2",
        "versionId {}",
        after["meta"]["versionId"]
    );
    Ok(())
}

async fn core_id_mismatch(s: &Sbx) -> Check {
    let id = s
        .create("Practitioner", &practitioner("mismatch@example.com"))
        .await?;
    let body = with(
        strip_meta(s.read("Practitioner", &id).await?),
        "id",
        json!("another-id"),
    );
    s.put(&format!("/Practitioner/{id}"), &body)
        .await
        .expect_outcome(400, "invalid", "mismatched id")
}

async fn core_bad_json(s: &Sbx) -> Check {
    let json = [("content-type", "application/fhir+json")];
    for body in ["{not json", "[1, 2", ""] {
        let r = s
            .send_as(
                Method::POST,
                "/Appointment",
                &json,
                Some(body.as_bytes().to_vec()),
                true,
            )
            .await;
        r.expect_outcome(400, "invalid", &format!("body {body:?}"))?;
    }
    Ok(())
}

async fn core_unknown_type(s: &Sbx) -> Check {
    for path in ["/Foo", "/Foo/1", "/practitioner?identifier=x"] {
        let r = s.get(path).await;
        ensure!(
            r.status == 404 || r.status == 400,
            "{path}: {}",
            r.describe()
        );
    }
    Ok(())
}

async fn core_searchset(s: &Sbx) -> Check {
    for path in [
        "/Patient",
        "/Location?name=clinic",
        "/Practitioner",
        "/Appointment",
    ] {
        s.get(path).await.expect_searchset(path)?;
    }
    Ok(())
}

async fn core_count(s: &Sbx) -> Check {
    let r = s.get("/Location?_count=2").await;
    r.expect_searchset("page 1")?;
    ensure!(
        r.entries().len() == 2,
        "page 1 entries: {}",
        r.entries().len()
    );
    let total = r.body["total"].as_u64().unwrap_or(0);
    ensure!(total == 3, "total {total}");
    let next = r.link("next").ok_or("no next link")?;
    let path = next
        .strip_prefix(s.server.base_url())
        .ok_or(format!("next {next}"))?;
    let r2 = s.get(path).await;
    r2.expect_searchset("page 2")?;
    let mut all = r.match_ids();
    all.extend(r2.match_ids());
    let unique: BTreeSet<&String> = all.iter().collect();
    ensure!(unique.len() == 3, "pages: {all:?}");
    ensure!(r2.link("next").is_none(), "a next link on the last page");
    Ok(())
}

async fn core_search_param(s: &Sbx) -> Check {
    let id = s
        .create(
            "Patient",
            &json!({ "resourceType": "Patient", "name": [{ "family": "Sp" }] }),
        )
        .await?;
    let found = s
        .get(&format!("/Patient?_id={id}&_lastUpdated=gt2000-01-01"))
        .await;
    found.expect_searchset("after 2000")?;
    ensure!(
        found.match_ids() == [id.clone()],
        "after 2000: {:?}",
        found.match_ids()
    );
    let none = s
        .get(&format!("/Patient?_id={id}&_lastUpdated=lt2000-01-01"))
        .await;
    none.expect_searchset("before 2000")?;
    ensure!(
        none.match_ids().is_empty(),
        "before 2000: {:?}",
        none.match_ids()
    );
    Ok(())
}

async fn core_history(s: &Sbx) -> Check {
    let id = s
        .create(
            "Patient",
            &json!({ "resourceType": "Patient", "gender": "male" }),
        )
        .await?;
    let r = s
        .put(
            &format!("/Patient/{id}"),
            &json!({ "resourceType": "Patient", "id": id, "gender": "female" }),
        )
        .await;
    r.expect(200, "update")?;
    let h = s.get(&format!("/Patient/{id}/_history")).await;
    h.expect(200, "history")?;
    ensure!(h.body["type"] == "history", "type {}", h.body["type"]);
    let genders: Vec<&Value> = h
        .entries()
        .iter()
        .map(|e| &e["resource"]["gender"])
        .collect();
    ensure!(
        genders == [&json!("female"), &json!("male")],
        "versions, newest first: {genders:?}"
    );
    Ok(())
}

async fn core_content_type(s: &Sbx) -> Check {
    for path in [
        "/metadata",
        "/Patient/patient-1",
        "/Patient",
        "/Patient/nope",
    ] {
        let r = s.get(path).await;
        let ct = r.header("content-type").unwrap_or("");
        ensure!(
            ct.starts_with("application/fhir+json") || ct.starts_with("application/json"),
            "{path}: Content-Type {ct:?}"
        );
    }
    Ok(())
}

// ---------------------------------------------------------------------------------------
// Validity of what the sandbox returns. Offline validation needs the `validation`
// feature; these probes check, without it, the part of each rule the defect breaks.

/// R4's AdministrativeGender codes (a required binding).
const R4_GENDERS: &[&str] = &["male", "female", "other", "unknown"];

fn r4_gender(what: &str, resource: &Value) -> Check {
    let gender = &resource["gender"];
    ensure!(
        gender.as_str().is_some_and(|g| R4_GENDERS.contains(&g)),
        "{what}: gender {gender} is not an R4 AdministrativeGender code"
    );
    Ok(())
}

async fn core_valid_resource(s: &Sbx) -> Check {
    let id = s.var("patient_id");
    r4_gender("read", &s.read("Patient", &id).await?)?;
    let r = s.get(&format!("/Patient/{id}/_history/1")).await;
    r.expect(200, "vread")?;
    r4_gender("vread", &r.body)?;
    let r = s.get(&format!("/Patient?_id={id}")).await;
    r.expect_searchset("search")?;
    ensure!(!r.entries().is_empty(), "search: no entry");
    for e in r.entries() {
        r4_gender("search entry", &e["resource"])?;
    }
    let body =
        json!({ "resourceType": "Patient", "name": [{ "family": "Valid" }], "gender": "other" });
    let r = s.post("/Patient", &body).await;
    r.expect(201, "create")?;
    r4_gender("create echo", &r.body)?;
    Ok(())
}

/// What US Core Practitioner (STU3.1.1) adds to R4: identifier 1..* with system and
/// value, name 1..* with family.
fn us_core_practitioner(what: &str, p: &Value) -> Check {
    let identified = p["identifier"].as_array().is_some_and(|ids| {
        !ids.is_empty()
            && ids
                .iter()
                .all(|i| i["system"].is_string() && i["value"].is_string())
    });
    ensure!(identified, "{what}: no identifier with system and value");
    let named = p["name"]
        .as_array()
        .is_some_and(|n| !n.is_empty() && n.iter().all(|n| n["family"].is_string()));
    ensure!(named, "{what}: no name with a family name");
    Ok(())
}

async fn prac_uscore_profile(s: &Sbx) -> Check {
    for var in [
        "practitioner_id",
        "practitioner_inactive_id",
        "ppr_practitioner_id",
    ] {
        let id = s.var(var);
        us_core_practitioner(&format!("read {id}"), &s.read("Practitioner", &id).await?)?;
    }
    let r = s
        .get("/Practitioner?include-non-scheduleable-practitioners=true&_count=100")
        .await;
    r.expect_searchset("search")?;
    let practitioners: Vec<&Value> = r
        .entries()
        .into_iter()
        .map(|e| &e["resource"])
        .filter(|r| r["resourceType"] == "Practitioner")
        .collect();
    ensure!(!practitioners.is_empty(), "search: no Practitioner");
    for p in practitioners {
        us_core_practitioner(&format!("search entry {}", p["id"]), p)?;
    }
    let r = s
        .write(
            Method::POST,
            "/Practitioner",
            &practitioner("uscore@example.com"),
            &[("prefer", "return=representation")],
        )
        .await;
    r.expect(201, "create")?;
    us_core_practitioner("create echo", &r.body)?;
    Ok(())
}

// ---------------------------------------------------------------------------------------
// One test per rule id: the probe passes on a correct sandbox and fails with the defect.

type Probe = for<'a> fn(&'a Sbx) -> Pin<Box<dyn Future<Output = Check> + 'a>>;
type Features = &'static [(&'static str, &'static str)];

async fn check_rule(id: &str, features: Features, probe: Probe) {
    let good = Sbx::start(features, &[]).await;
    let result = probe(&good).await;
    good.stop().await;
    if let Err(e) = result {
        panic!("{id}: the correct sandbox breaks the rule: {e}");
    }
    let broken = Sbx::start(features, &[id]).await;
    let result = probe(&broken).await;
    broken.stop().await;
    assert!(result.is_err(), "{id}: the probe does not catch the defect");
}

const NONE: Features = &[];
const FORBIDDEN: Features = &[("double_booking", "forbidden")];
const ALLOWED: Features = &[("double_booking", "allowed")];
const AUTH: Features = &[("auth", "on")];
const VERSIONING: Features = &[("versioning", "true")];
const LIMIT3: Features = &[("rate_limit", "3")];

macro_rules! rules {
    ($($name:ident: $id:literal, $features:expr => $probe:ident;)*) => {
        mod rules {
            use super::*;
            $(
                mod $name {
                    use super::*;
                    pub(crate) fn probe(s: &Sbx) -> Pin<Box<dyn Future<Output = Check> + '_>> {
                        Box::pin($probe(s))
                    }
                    #[tokio::test]
                    async fn correct_and_defect() {
                        check_rule($id, $features, probe).await;
                    }
                }
            )*
            pub(crate) fn all() -> Vec<(&'static str, Features, Probe)> {
                vec![$(($id, $features, $name::probe as Probe)),*]
            }
        }
    };
}

rules! {
    prac_create: "PRAC-CREATE", NONE => prac_create;
    prac_read: "PRAC-READ", NONE => prac_read;
    prac_active_default: "PRAC-ACTIVE-DEFAULT", NONE => prac_active_default;
    prac_email_rank1: "PRAC-EMAIL-RANK1", NONE => prac_email_rank1;
    prac_email_immutable: "PRAC-EMAIL-IMMUTABLE", NONE => prac_email_immutable;
    prac_telecom_required: "PRAC-TELECOM-REQUIRED", NONE => prac_telecom_required;
    prac_update_deletes_omitted: "PRAC-UPDATE-DELETES-OMITTED", NONE => prac_update_deletes_omitted;
    prac_username_kept: "PRAC-USERNAME-KEPT", NONE => prac_username_kept;
    prac_update_item_ids: "PRAC-UPDATE-ITEM-IDS", NONE => prac_update_item_ids;
    prac_signature_url_ignored: "PRAC-SIGNATURE-URL-IGNORED", NONE => prac_signature_url_ignored;
    prac_search_default_active: "PRAC-SEARCH-DEFAULT-ACTIVE", NONE => prac_search_default_active;
    prac_search_nonschedulable: "PRAC-SEARCH-NONSCHEDULABLE", NONE => prac_search_nonschedulable;
    prac_search_params: "PRAC-SEARCH-PARAMS", NONE => prac_search_params;
    prac_auth: "PRAC-AUTH", AUTH => prac_auth;
    appt_create: "APPT-CREATE", NONE => appt_create;
    appt_create_proposed: "APPT-CREATE-PROPOSED", NONE => appt_create_proposed;
    appt_type_default: "APPT-TYPE-DEFAULT", NONE => appt_type_default;
    appt_type_one_coding: "APPT-TYPE-ONE-CODING", NONE => appt_type_one_coding;
    appt_type_unknown: "APPT-TYPE-UNKNOWN", NONE => appt_type_unknown;
    appt_type_unschedulable: "APPT-TYPE-UNSCHEDULABLE", NONE => appt_type_unschedulable;
    appt_reason_first: "APPT-REASON-FIRST", NONE => appt_reason_first;
    appt_description_mirrors: "APPT-DESCRIPTION-MIRRORS", NONE => appt_description_mirrors;
    appt_practitioner_required: "APPT-PRACTITIONER-REQUIRED", NONE => appt_practitioner_required;
    appt_meeting_link: "APPT-MEETING-LINK", NONE => appt_meeting_link;
    appt_start_format: "APPT-START-FORMAT", NONE => appt_start_format;
    appt_update_statuses: "APPT-UPDATE-STATUSES", NONE => appt_update_statuses;
    appt_cancelled_final: "APPT-CANCELLED-FINAL", NONE => appt_cancelled_final;
    appt_status_omitted_kept: "APPT-STATUS-OMITTED-KEPT", NONE => appt_status_omitted_kept;
    appt_update_keeps_omitted: "APPT-UPDATE-KEEPS-OMITTED", NONE => appt_update_keeps_omitted;
    appt_identifier_replace: "APPT-IDENTIFIER-REPLACE", NONE => appt_identifier_replace;
    appt_double_booking_422: "APPT-DOUBLE-BOOKING-422", FORBIDDEN => appt_double_booking_422;
    appt_double_booking_allowed: "APPT-DOUBLE-BOOKING-ALLOWED", ALLOWED => appt_double_booking_allowed;
    appt_read: "APPT-READ", NONE => appt_read;
    appt_search: "APPT-SEARCH", NONE => appt_search;
    appt_precondition: "APPT-PRECONDITION", VERSIONING => appt_precondition;
    appt_method: "APPT-METHOD", NONE => appt_method;
    appt_auth: "APPT-AUTH", AUTH => appt_auth;
    ppr_identifier: "PPR-IDENTIFIER", NONE => ppr_identifier;
    ppr_include: "PPR-INCLUDE", NONE => ppr_include;
    ppr_post_search: "PPR-POST-SEARCH", NONE => ppr_post_search;
    ppr_issuer_required: "PPR-ISSUER-REQUIRED", NONE => ppr_issuer_required;
    ppr_issuer_scoped: "PPR-ISSUER-SCOPED", NONE => ppr_issuer_scoped;
    ppr_no_match: "PPR-NO-MATCH", NONE => ppr_no_match;
    ppr_content_type: "PPR-CONTENT-TYPE", NONE => ppr_content_type;
    ppr_bad_param: "PPR-BAD-PARAM", NONE => ppr_bad_param;
    ppr_auth: "PPR-AUTH", AUTH => ppr_auth;
    ppr_accept: "PPR-ACCEPT", NONE => ppr_accept;
    ppr_other_params: "PPR-OTHER-PARAMS", NONE => ppr_other_params;
    ppr_throttle: "PPR-THROTTLE", LIMIT3 => ppr_throttle;
    core_metadata: "CORE-METADATA", NONE => core_metadata;
    core_read_404: "CORE-READ-404", NONE => core_read_404;
    core_create: "CORE-CREATE", NONE => core_create;
    core_update: "CORE-UPDATE", NONE => core_update;
    core_id_mismatch: "CORE-ID-MISMATCH", NONE => core_id_mismatch;
    core_bad_json: "CORE-BAD-JSON", NONE => core_bad_json;
    core_unknown_type: "CORE-UNKNOWN-TYPE", NONE => core_unknown_type;
    core_searchset: "CORE-SEARCHSET", NONE => core_searchset;
    core_count: "CORE-COUNT", NONE => core_count;
    core_search_param: "CORE-SEARCH-PARAM", NONE => core_search_param;
    core_history: "CORE-HISTORY", NONE => core_history;
    core_content_type: "CORE-CONTENT-TYPE", NONE => core_content_type;
    core_valid_resource: "CORE-VALID-RESOURCE", NONE => core_valid_resource;
    prac_uscore_profile: "PRAC-USCORE-PROFILE", NONE => prac_uscore_profile;
}

/// Every probe against every other defect: prints what each defect breaks besides its
/// own rule. Slow (one sandbox per pair), so run it on demand:
/// `cargo test --test sandbox defect_matrix -- --ignored --nocapture`.
#[tokio::test]
#[ignore = "slow: a sandbox per (rule, defect) pair; run on demand"]
async fn defect_matrix() {
    let rules = rules::all();
    let mut collateral: BTreeMap<&str, Vec<&str>> = BTreeMap::new();
    for defect in DEFECTS {
        for (rule, features, probe) in &rules {
            if *rule == defect.id {
                continue;
            }
            let s = Sbx::start(features, &[defect.id]).await;
            let failed = probe(&s).await.is_err();
            s.stop().await;
            if failed {
                collateral.entry(defect.id).or_default().push(rule);
            }
        }
    }
    for defect in DEFECTS {
        let also = collateral
            .get(defect.id)
            .map(|v| v.join(", "))
            .unwrap_or_default();
        println!(
            "{}\t{}",
            defect.id,
            if also.is_empty() { "-" } else { &also }
        );
    }
}

// ---------------------------------------------------------------------------------------
// The catalogue, the configuration, and the public API

fn requirements() -> Option<String> {
    let manifest = std::path::Path::new(env!("CARGO_MANIFEST_DIR"));
    std::fs::read_to_string(manifest.join("scenarios/RULES.md")).ok()
}

/// The rule ids of scenarios/RULES.md: the first cell of every table row.
fn rule_ids(text: &str) -> Vec<String> {
    text.lines()
        .filter_map(|l| l.strip_prefix('|'))
        .filter_map(|l| l.split('|').next())
        .map(str::trim)
        .filter(|cell| {
            cell.starts_with(|c: char| c.is_ascii_uppercase())
                && cell.contains('-')
                && cell
                    .chars()
                    .all(|c| c.is_ascii_uppercase() || c.is_ascii_digit() || c == '-')
        })
        .map(str::to_owned)
        .collect()
}

#[test]
fn defects_match_the_requirements_catalogue() {
    let text = requirements().expect("scenarios/RULES.md is readable");
    let ids = rule_ids(&text);
    let defects: Vec<String> = DEFECTS.iter().map(|d| d.id.to_owned()).collect();
    assert_eq!(
        ids, defects,
        "DEFECTS must list the rule ids in catalogue order"
    );
    let unique: BTreeSet<&String> = ids.iter().collect();
    assert_eq!(unique.len(), ids.len(), "duplicate rule ids");
    let probed: BTreeSet<&str> = rules::all().iter().map(|(id, _, _)| *id).collect();
    assert_eq!(
        probed,
        unique.iter().map(|s| s.as_str()).collect(),
        "a probe per rule"
    );
    for d in DEFECTS {
        assert!(
            !d.description.is_empty() && !d.description.contains('\n'),
            "{}",
            d.id
        );
    }
}

#[test]
fn every_defect_is_accepted_by_validate() {
    for d in DEFECTS {
        let c = config(&[], &[d.id]);
        assert_eq!(c.validate(), Ok(()), "{}", d.id);
    }
    let all = config(&[], &DEFECTS.iter().map(|d| d.id).collect::<Vec<_>>());
    assert_eq!(all.validate(), Ok(()));
}

#[test]
fn validate_names_what_is_wrong() {
    assert_eq!(SandboxConfig::default().validate(), Ok(()));
    assert_eq!(SandboxConfig::default().max_body_bytes, 1024 * 1024);
    let e = config(&[], &["APPT-CANCELED-FINAL"])
        .validate()
        .unwrap_err()
        .to_string();
    assert!(
        e.contains("APPT-CANCELED-FINAL") && e.contains("APPT-CANCELLED-FINAL"),
        "{e}"
    );
    let e = config(&[("double_booking", "sometimes")], &[])
        .validate()
        .unwrap_err()
        .to_string();
    assert!(
        e.contains("sometimes") && e.contains("double_booking") && e.contains("forbidden"),
        "{e}"
    );
    let e = config(&[("colour", "red")], &[])
        .validate()
        .unwrap_err()
        .to_string();
    assert!(e.contains("colour") && e.contains("rate_limit"), "{e}");
    for bad in ["0", "-1", "many", ""] {
        assert!(
            config(&[("rate_limit", bad)], &[]).validate().is_err(),
            "{bad}"
        );
    }
    for (name, value) in [
        ("double_booking", "allowed"),
        ("double_booking", "forbidden"),
        ("versioning", "true"),
        ("versioning", "false"),
        ("auth", "off"),
        ("auth", "on"),
        ("rate_limit", "off"),
        ("rate_limit", "50"),
    ] {
        assert_eq!(
            config(&[(name, value)], &[]).validate(),
            Ok(()),
            "{name}={value}"
        );
    }
    let zero = SandboxConfig {
        max_body_bytes: 0,
        ..SandboxConfig::default()
    };
    assert!(zero.validate().is_err());
    let names: Vec<&str> = FEATURES.iter().map(|f| f.name).collect();
    assert_eq!(
        names,
        [
            "double_booking",
            "versioning",
            "auth",
            "token_lifetime",
            "rate_limit"
        ]
    );
    for f in FEATURES {
        let c = config(&[(f.name, f.default)], &[]);
        assert_eq!(c.validate(), Ok(()), "default of {}", f.name);
    }
}

#[tokio::test]
async fn start_refuses_an_invalid_config() {
    let e = sandbox::start(config(&[("auth", "maybe")], &[]), loopback())
        .await
        .unwrap_err();
    assert_eq!(e.kind(), std::io::ErrorKind::InvalidInput);
    assert!(e.to_string().contains("maybe"));
}

/// `targets/sandbox.yaml` (the built-in target) gives exactly the seed data's values,
/// and each id names a record the sandbox has.
#[tokio::test]
async fn seed_vars_match_the_builtin_target_and_exist() {
    let vars: HashMap<&str, String> = sandbox::seed_vars().into_iter().collect();
    let target = fhirconf::target::builtin_sandbox();
    let declared: HashMap<&str, String> = target
        .vars
        .iter()
        .map(|(k, v)| (k.as_str(), v.as_str().unwrap_or_default().to_owned()))
        .collect();
    assert_eq!(declared, vars);
    assert_eq!(
        target.features,
        sandbox::SandboxConfig::default().declared_features()
    );
    let s = Sbx::start(AUTH, &[]).await;
    for (var, ty) in [
        ("patient_id", "Patient"),
        ("patient_id_2", "Patient"),
        ("location_id", "Location"),
        ("practitioner_id", "Practitioner"),
        ("practitioner_id_2", "Practitioner"),
        ("practitioner_inactive_id", "Practitioner"),
        ("practitioner_nonschedulable_id", "Practitioner"),
        ("ppr_practitioner_id", "Practitioner"),
        ("ppr_practitioner_id_2", "Practitioner"),
    ] {
        s.read(ty, &vars[var]).await.unwrap();
    }
    let inactive = s
        .read("Practitioner", &vars["practitioner_inactive_id"])
        .await
        .unwrap();
    assert_eq!(inactive["active"], false);
    let ppr = s
        .read("Practitioner", &vars["ppr_practitioner_id"])
        .await
        .unwrap();
    assert_eq!(ppr["name"][0]["family"], vars["ppr_family"].as_str());
    s.stop().await;
}

// ---------------------------------------------------------------------------------------
// Behaviour beyond the catalogue

#[tokio::test]
async fn capability_statement_lists_what_is_served() {
    let s = Sbx::start(AUTH, &[]).await;
    let r = s.send_as(Method::GET, "/metadata", &[], None, false).await;
    r.expect(200, "metadata without a token").unwrap();
    let cs = &r.body;
    assert_eq!(cs["fhirVersion"], "4.0.1");
    assert_eq!(cs["software"]["name"], "fhirconf sandbox");
    assert!(cs["software"]["version"].is_string());
    let resources = cs["rest"][0]["resource"].as_array().unwrap();
    let find = |ty: &str| resources.iter().find(|r| r["type"] == ty).unwrap();
    let codes = |ty: &str| -> Vec<String> {
        find(ty)["interaction"]
            .as_array()
            .unwrap()
            .iter()
            .map(|i| i["code"].as_str().unwrap().to_owned())
            .collect()
    };
    for ty in ["Practitioner", "Appointment"] {
        assert_eq!(
            codes(ty),
            ["read", "vread", "search-type", "create", "update"],
            "{ty}"
        );
    }
    for ty in ["Patient", "Location", "Organization", "PractitionerRole"] {
        assert_eq!(
            codes(ty),
            [
                "read",
                "vread",
                "history-instance",
                "search-type",
                "create",
                "update",
                "delete"
            ],
            "{ty}"
        );
    }
    let params: Vec<&str> = find("Practitioner")["searchParam"]
        .as_array()
        .unwrap()
        .iter()
        .map(|p| p["name"].as_str().unwrap())
        .collect();
    for p in [
        "name",
        "email",
        "npiNumber",
        "identifier",
        "include-non-scheduleable-practitioners",
    ] {
        assert!(params.contains(&p), "{p}");
    }
    assert!(cs["rest"][0]["security"].is_object());
    s.stop().await;
}

#[tokio::test]
async fn create_and_update_answer_with_headers_and_optional_body() {
    let s = Sbx::start(NONE, &[]).await;
    let r = s
        .post("/Practitioner", &practitioner("h@example.com"))
        .await;
    assert_eq!(r.status, 201);
    assert!(r.text.is_empty(), "minimal by default");
    assert_eq!(r.header("etag"), Some("W/\"1\""));
    assert!(r.header("last-modified").is_some());
    let id = id_from_location(r.header("location").unwrap(), "Practitioner").unwrap();
    assert!(
        r.header("location")
            .unwrap()
            .ends_with(&format!("/Practitioner/{id}/_history/1"))
    );
    let json = [
        ("content-type", "application/fhir+json"),
        ("prefer", "return=representation"),
    ];
    let body = appointment(&s, START, END).to_string().into_bytes();
    let r = s
        .send_as(Method::POST, "/Appointment", &json, Some(body), true)
        .await;
    assert_eq!(r.status, 201);
    assert_eq!(r.header("content-type"), Some("application/fhir+json"));
    assert_eq!(r.body["resourceType"], "Appointment");
    assert_eq!(r.body["meta"]["versionId"], "1");
    let appt = r.body["id"].as_str().unwrap().to_owned();
    let r = s.get(&format!("/Appointment/{appt}/_history/1")).await;
    assert_eq!(r.status, 200);
    let update = json!({ "resourceType": "Appointment", "status": "booked" });
    let r = s.put(&format!("/Appointment/{appt}"), &update).await;
    assert_eq!(r.status, 200);
    assert_eq!(r.header("etag"), Some("W/\"2\""));
    assert!(r.header("location").is_none(), "Location is for creates");
    let v1 = s.get(&format!("/Appointment/{appt}/_history/1")).await;
    assert_eq!(v1.body["status"], "proposed");
    let v2 = s.get(&format!("/Appointment/{appt}/_history/2")).await;
    assert_eq!(v2.body["status"], "booked");
    assert_eq!(
        s.get(&format!("/Appointment/{appt}/_history/9"))
            .await
            .status,
        404
    );
    // Host decides the base of Location.
    let json = [
        ("content-type", "application/fhir+json"),
        ("host", "fhir.example.test:8443"),
    ];
    let body = appointment(&s, "2030-07-01T09:00Z", "2030-07-01T09:30Z")
        .to_string()
        .into_bytes();
    let r = s
        .send_as(Method::POST, "/Appointment", &json, Some(body), true)
        .await;
    assert!(
        r.header("location")
            .unwrap()
            .starts_with("http://fhir.example.test:8443/Appointment/")
    );
    s.stop().await;
}

#[tokio::test]
async fn errors_are_operation_outcomes() {
    let s = Sbx::with_config(SandboxConfig {
        max_body_bytes: 2048,
        ..SandboxConfig::default()
    })
    .await;
    let big = json!({ "resourceType": "Appointment", "comment": "x".repeat(4096) });
    s.post("/Appointment", &big)
        .await
        .expect_outcome(413, "too-costly", "large")
        .unwrap();
    let plain = [("content-type", "text/plain")];
    let body = Some(b"{}".to_vec());
    s.send_as(Method::POST, "/Appointment", &plain, body.clone(), true)
        .await
        .expect_outcome(415, "not-supported", "text/plain")
        .unwrap();
    s.send_as(Method::POST, "/Practitioner", &[], body.clone(), true)
        .await
        .expect_outcome(415, "not-supported", "no content type")
        .unwrap();
    let patient = json!({ "resourceType": "Patient" });
    s.post("/Appointment", &patient)
        .await
        .expect_outcome(400, "invalid", "wrong type")
        .unwrap();
    s.send_as(Method::DELETE, "/Patient", &[], None, true)
        .await
        .expect_outcome(405, "not-supported", "DELETE on the Patient type")
        .unwrap();
    let r = s
        .send_as(
            Method::DELETE,
            "/Practitioner/practitioner-1",
            &[],
            None,
            true,
        )
        .await;
    r.expect_outcome(405, "not-supported", "Practitioner delete")
        .unwrap();
    assert!(r.header("allow").is_some());
    s.get("/Appointment?colour=red")
        .await
        .expect_outcome(400, "invalid", "unknown param")
        .unwrap();
    s.get("/Appointment?date=tomorrow")
        .await
        .expect_outcome(400, "invalid", "bad date")
        .unwrap();
    s.get("/Appointment?_sort=colour")
        .await
        .expect_outcome(400, "invalid", "bad sort")
        .unwrap();
    s.get("/Appointment?_count=-1")
        .await
        .expect_outcome(400, "invalid", "bad _count")
        .unwrap();
    s.get("/Appointment?date=ge2030-01-01&date=le2031-01-01&date=2030-05-05")
        .await
        .expect_outcome(400, "invalid", "three dates")
        .unwrap();
    s.get("/Patient?_id=%ZZ")
        .await
        .expect_outcome(400, "invalid", "bad escape")
        .unwrap();
    s.put(
        "/Appointment/nope",
        &json!({ "resourceType": "Appointment" }),
    )
    .await
    .expect_outcome(404, "not-found", "update unknown")
    .unwrap();
    s.get("/")
        .await
        .expect_outcome(404, "not-found", "root")
        .unwrap();
    let r = s.send_as(Method::PATCH, "/metadata", &[], None, true).await;
    r.expect_outcome(405, "not-supported", "PATCH metadata")
        .unwrap();
    s.stop().await;
}

#[tokio::test]
async fn practitioner_update_keeps_ids_and_refuses_bad_input() {
    let s = Sbx::start(NONE, &[]).await;
    let id = s
        .create("Practitioner", &practitioner("keep@example.com"))
        .await
        .unwrap();
    let stored = strip_meta(s.read("Practitioner", &id).await.unwrap());
    // Round-tripping the read document changes nothing but the version.
    s.put(&format!("/Practitioner/{id}"), &stored)
        .await
        .expect(200, "round trip")
        .unwrap();
    let after = strip_meta(s.read("Practitioner", &id).await.unwrap());
    assert_eq!(after, stored);
    // A signature file on update replaces the stored one.
    let mut body = stored.clone();
    for e in body["extension"].as_array_mut().unwrap() {
        if e["url"] == format!("{EXT}practitioner-signature") {
            *e = json!({ "url": format!("{EXT}practitioner-signature"),
                         "valueAttachment": { "data": "data:application/pdf;base64,AAAA" } });
        }
    }
    s.put(&format!("/Practitioner/{id}"), &body)
        .await
        .expect(200, "new file")
        .unwrap();
    let after = s.read("Practitioner", &id).await.unwrap();
    assert_ne!(
        ext(&after, "practitioner-signature"),
        ext(&stored, "practitioner-signature")
    );
    // Replacing the rank-1 email by a new item without id is an email change too.
    let mut body = strip_meta(after.clone());
    body["telecom"][1] = json!({ "system": "email", "value": "other@example.com", "rank": 1 });
    s.put(&format!("/Practitioner/{id}"), &body)
        .await
        .expect_refused("new rank-1 email")
        .unwrap();
    let r = s
        .put(
            &format!("/Practitioner/{id}"),
            &json!({ "resourceType": "Practitioner", "telecom": "x" }),
        )
        .await;
    r.expect_outcome(400, "invalid", "telecom not a list")
        .unwrap();
    s.stop().await;
}

#[tokio::test]
async fn appointment_details() {
    let s = Sbx::start(NONE, &[]).await;
    // Blank practitioner → Canvas Bot; actor types and participant status filled in.
    let mut body = appointment(&s, START, END);
    body["participant"] = json!([{ "actor": { "reference": "Practitioner/" } }]);
    let id = s.create("Appointment", &body).await.unwrap();
    let stored = s.read("Appointment", &id).await.unwrap();
    assert_eq!(
        stored["participant"][0]["actor"]["reference"],
        "Practitioner/canvas-bot"
    );
    assert_eq!(stored["participant"][0]["actor"]["type"], "Practitioner");
    assert_eq!(stored["participant"][0]["status"], "accepted");
    assert_eq!(stored["supportingInformation"][0]["type"], "Location");
    // Unknown references are refused.
    let mut body = appointment(&s, START, END);
    body["participant"][1]["actor"]["reference"] = json!("Practitioner/nobody");
    s.post("/Appointment", &body)
        .await
        .expect_outcome(422, "processing", "unknown practitioner")
        .unwrap();
    // The deprecated description alone becomes the reason text.
    let body = with(
        without(appointment(&s, START, END), "reasonCode"),
        "description",
        json!("Checkup"),
    );
    let id = s.create("Appointment", &body).await.unwrap();
    let stored = s.read("Appointment", &id).await.unwrap();
    assert_eq!(stored["reasonCode"][0]["text"], "Checkup");
    assert_eq!(stored["description"], "Checkup");
    // The 001 example's string reasonCode is refused.
    let body = with(
        appointment(&s, START, END),
        "reasonCode",
        json!("[{\"coding\": []}]"),
    );
    s.post("/Appointment", &body)
        .await
        .expect_refused("string reasonCode")
        .unwrap();
    // A reference to a contained resource that is not there is refused.
    let body = without(appointment(&s, START, END), "contained");
    s.post("/Appointment", &body)
        .await
        .expect_refused("dangling #ref")
        .unwrap();
    // Identifiers whose period has ended stay when not sent.
    let ids = json!([
        { "system": "OLD", "value": "1", "period": { "start": "2020-01-01", "end": "2021-01-01" } },
        { "system": "NOW", "value": "2", "period": { "start": "2020-01-01", "end": "2099-01-01" } }
    ]);
    let id = s
        .create(
            "Appointment",
            &with(appointment(&s, START, END), "identifier", ids),
        )
        .await
        .unwrap();
    let update =
        json!({ "resourceType": "Appointment", "identifier": [{ "system": "NEW", "value": "3" }] });
    s.put(&format!("/Appointment/{id}"), &update)
        .await
        .expect(200, "update")
        .unwrap();
    let stored = s.read("Appointment", &id).await.unwrap();
    let systems: Vec<&str> = stored["identifier"]
        .as_array()
        .unwrap()
        .iter()
        .map(|i| i["system"].as_str().unwrap())
        .collect();
    assert_eq!(systems, ["OLD", "NEW"]);
    // A cancelled appointment frees the slot, even with double booking forbidden.
    let s2 = Sbx::start(FORBIDDEN, &[]).await;
    let first = s2
        .create("Appointment", &appointment(&s2, START, END))
        .await
        .unwrap();
    s2.put(
        &format!("/Appointment/{first}"),
        &json!({ "resourceType": "Appointment", "status": "cancelled" }),
    )
    .await
    .expect(200, "cancel")
    .unwrap();
    s2.post("/Appointment", &appointment(&s2, START, END))
        .await
        .expect(201, "rebook slot")
        .unwrap();
    let mut other = appointment(&s2, START, END);
    other["participant"][1]["actor"]["reference"] =
        json!(format!("Practitioner/{}", s2.var("practitioner_id_2")));
    s2.post("/Appointment", &other)
        .await
        .expect(201, "other practitioner")
        .unwrap();
    s2.stop().await;
    s.stop().await;
}

#[tokio::test]
async fn stats_count_what_the_api_created() {
    let s = Sbx::start(NONE, &[]).await;
    assert_eq!(
        stats(&s).await,
        json!({ "created": { "Appointment": 0, "Practitioner": 0 }, "appointments_not_cancelled": 0, "tokens_issued": 0 })
    );
    s.create("Practitioner", &practitioner("stats@example.com"))
        .await
        .unwrap();
    let a = s
        .create("Appointment", &appointment(&s, START, END))
        .await
        .unwrap();
    s.create(
        "Appointment",
        &appointment(&s, "2030-05-02T09:00Z", "2030-05-02T09:30Z"),
    )
    .await
    .unwrap();
    let st = stats(&s).await;
    assert_eq!(
        st["created"],
        json!({ "Appointment": 2, "Practitioner": 1 })
    );
    assert_eq!(st["appointments_not_cancelled"], 2);
    s.put(
        &format!("/Appointment/{a}"),
        &json!({ "resourceType": "Appointment", "status": "cancelled" }),
    )
    .await
    .expect(200, "cancel")
    .unwrap();
    assert_eq!(stats(&s).await["appointments_not_cancelled"], 1);
    s.stop().await;
}

#[tokio::test]
async fn token_endpoint() {
    let s = Sbx::start(NONE, &[]).await;
    let form = [("content-type", "application/x-www-form-urlencoded")];
    let post = |body: &str| {
        s.send_as(
            Method::POST,
            "/auth/token",
            &form,
            Some(body.as_bytes().to_vec()),
            false,
        )
    };
    let r = post(
        "grant_type=client_credentials&client_id=fhirconf-sandbox&client_secret=sandbox-secret",
    )
    .await;
    assert_eq!(r.status, 200, "{}", r.describe());
    assert_eq!(r.body["token_type"], "Bearer");
    assert_eq!(r.body["scope"], "system/*.read system/*.write");
    assert!(r.body["expires_in"].as_u64().unwrap() > 0);
    let r =
        post("grant_type=client_credentials&client_id=fhirconf-sandbox&client_secret=wrong").await;
    assert_eq!(
        (r.status, r.body["error"].as_str()),
        (401, Some("invalid_client"))
    );
    let r =
        post("grant_type=password&client_id=fhirconf-sandbox&client_secret=sandbox-secret").await;
    assert_eq!(
        (r.status, r.body["error"].as_str()),
        (400, Some("unsupported_grant_type"))
    );
    let r = post("grant_type=client_credentials&client_id=fhirconf-limited&client_secret=limited-secret&scope=system%2FPractitioner.read").await;
    assert_eq!(
        (r.status, r.body["error"].as_str()),
        (400, Some("invalid_scope"))
    );
    s.stop().await;
    // A narrowed scope is honoured.
    let s = Sbx::start(AUTH, &[]).await;
    let read_only = s
        .token_for(
            "fhirconf-sandbox",
            "sandbox-secret",
            Some("system/Practitioner.read"),
        )
        .await;
    let bearer = format!("Bearer {read_only}");
    let auth = [("authorization", bearer.as_str())];
    s.send_as(
        Method::GET,
        "/Practitioner/practitioner-1",
        &auth,
        None,
        false,
    )
    .await
    .expect(200, "read")
    .unwrap();
    let mut headers = auth.to_vec();
    headers.push(("content-type", "application/fhir+json"));
    let body = practitioner("scoped@example.com").to_string().into_bytes();
    s.send_as(Method::POST, "/Practitioner", &headers, Some(body), false)
        .await
        .expect_outcome(403, "forbidden", "write with a read scope")
        .unwrap();
    s.send_as(Method::GET, "/Patient/patient-1", &auth, None, false)
        .await
        .expect(403, "another type")
        .unwrap();
    s.stop().await;
}

#[tokio::test]
async fn versioning_off_ignores_if_match() {
    let s = Sbx::start(&[("versioning", "false")], &[]).await;
    let id = s
        .create("Appointment", &appointment(&s, START, END))
        .await
        .unwrap();
    let r = s
        .put_with(
            &format!("/Appointment/{id}"),
            &json!({ "resourceType": "Appointment", "status": "booked" }),
            &[("if-match", "W/\"7\"")],
        )
        .await;
    assert_eq!(r.status, 200);
    assert!(r.header("etag").is_none());
    s.stop().await;
}

#[tokio::test]
async fn concurrent_double_booking_lets_one_through() {
    let s = Sbx::start(FORBIDDEN, &[]).await;
    let body = appointment(&s, START, END);
    let attempts = (0..12).map(|_| s.post("/Appointment", &body));
    let results = futures_join_all(attempts).await;
    let created = results.iter().filter(|r| r.status == 201).count();
    let refused = results.iter().filter(|r| r.status == 422).count();
    assert_eq!((created, refused), (1, 11));
    s.stop().await;
}

/// Polls every future concurrently (a tiny join_all, to avoid a dependency).
async fn futures_join_all<F: Future>(futures: impl Iterator<Item = F>) -> Vec<F::Output> {
    let mut handles: Vec<Pin<Box<F>>> = futures.map(Box::pin).collect();
    let mut out: Vec<Option<F::Output>> = handles.iter().map(|_| None).collect();
    std::future::poll_fn(|cx| {
        let mut pending = false;
        for (i, h) in handles.iter_mut().enumerate() {
            if out[i].is_none() {
                match h.as_mut().poll(cx) {
                    std::task::Poll::Ready(v) => out[i] = Some(v),
                    std::task::Poll::Pending => pending = true,
                }
            }
        }
        if pending {
            std::task::Poll::Pending
        } else {
            std::task::Poll::Ready(())
        }
    })
    .await;
    out.into_iter()
        .map(|o| o.expect("every future finished"))
        .collect()
}

#[tokio::test]
async fn rate_limit_counts_each_client_window() {
    let s = Sbx::start(&[("rate_limit", "2")], &[]).await;
    s.get("/Patient").await.expect(200, "1").unwrap();
    s.get("/Patient").await.expect(200, "2").unwrap();
    s.get("/Patient").await.expect(429, "3").unwrap();
    // The admin endpoint is not throttled.
    assert_eq!(s.get("/_sandbox/stats").await.status, 200);
    s.stop().await;
}

/// Odd input gets a 4xx (or a 2xx) and never breaks the server.
#[tokio::test]
async fn odd_input_never_breaks_the_server() {
    let s = Sbx::start(&[("double_booking", "forbidden")], &[]).await;
    let huge = "99999999999999999999";
    let paths = [
        "/Appointment?_offset=18446744073709551615&_count=100".to_owned(),
        format!("/Appointment?_count={huge}"),
        "/Appointment?date=ge".to_owned(),
        "/Appointment?date=2030-02-30".to_owned(),
        "/Appointment?date=%E2%82%AC%E2%82%AC".to_owned(),
        "/Practitioner?identifier=%7C".to_owned(),
        "/Practitioner?identifier=a%7C".to_owned(),
        "/Practitioner?gender=robot".to_owned(),
        "/Practitioner?name=&email=&_id=".to_owned(),
        "/Patient/%FF%FE".to_owned(),
        "/Appointment/x/_history/abc".to_owned(),
        "/Appointment/x/_history/99999999999999999999999".to_owned(),
        "/%E2%82%AC/1".to_owned(),
    ];
    for path in &paths {
        let r = s.get(path).await;
        assert!(r.status < 500, "{path}: {}", r.describe());
        assert!(r.status < 300 || r.is_outcome(), "{path}: {}", r.describe());
    }
    let bodies = [
        json!(null),
        json!([]),
        json!("Appointment"),
        json!({ "resourceType": "Appointment", "participant": "x" }),
        json!({ "resourceType": "Appointment", "participant": [1, 2] }),
        json!({ "resourceType": "Appointment", "participant": [{ "actor": 5 }], "start": 1, "end": [] }),
        json!({ "resourceType": "Appointment", "appointmentType": "x", "reasonCode": {} }),
        json!({ "resourceType": "Appointment", "start": "2030-13-45T99:99", "end": "x" }),
        json!({ "resourceType": "Appointment", "contained": {}, "supportingInformation": [{ "reference": 5 }] }),
        json!({ "resourceType": "Appointment", "identifier": [{ "period": { "end": 5 } }] }),
        json!({ "resourceType": "Practitioner", "telecom": [{ "system": "email", "rank": "1" }] }),
        json!({ "resourceType": "Practitioner", "telecom": [1], "extension": [{}] }),
        json!({ "resourceType": "Practitioner", "telecom": [{ "system": "email", "rank": 1 }], "extension": "x" }),
        json!({ "resourceType": "Practitioner", "telecom": [{ "system": "email", "rank": 1, "value": "a@b.c" }],
                "extension": [{ "url": format!("{EXT}practitioner-signature"), "extension": 3 }], "name": 7 }),
    ];
    for ty in ["Appointment", "Practitioner"] {
        for body in &bodies {
            let r = s.post(&format!("/{ty}"), body).await;
            assert!(r.status < 500, "{ty} {body}: {}", r.describe());
            assert!(
                r.status < 300 || r.is_outcome(),
                "{ty} {body}: {}",
                r.describe()
            );
            for id in ["practitioner-1", "does-not-exist"] {
                let r = s.put(&format!("/{ty}/{id}"), body).await;
                assert!(r.status < 500, "PUT {ty} {body}: {}", r.describe());
            }
        }
    }
    s.get("/metadata")
        .await
        .expect(200, "still serving")
        .unwrap();
    s.stop().await;
}

#[tokio::test]
async fn stop_closes_the_port() {
    let s = Sbx::start(NONE, &[]).await;
    let base = s.server.base_url().to_owned();
    assert!(base.starts_with("http://127.0.0.1:") && !base.ends_with('/'));
    assert_eq!(
        s.server.addr().port(),
        base.rsplit(':').next().unwrap().parse::<u16>().unwrap()
    );
    let http = s.http.clone();
    assert!(http.get(format!("{base}/metadata")).send().await.is_ok());
    s.stop().await;
    let fresh = Client::new();
    assert!(fresh.get(format!("{base}/metadata")).send().await.is_err());
}
