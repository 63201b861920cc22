//! The sandbox's generic FHIR R4 interactions, through HTTP only: create, read, vread,
//! update (and update-as-create), delete and search by `_id` / `_lastUpdated` for every
//! R4 resource type that no document gives rules of its own, and what stays as the
//! documents say (Practitioner, Appointment, the seed data).

use reqwest::Method;
use serde_json::{Value, json};

use crate::common::sandbox_client::{Resp, Sbx, config};

/// FHIR R4 4.0.1's resource types, typed apart from the sandbox's own list so that a
/// slip in either shows.
const R4_TYPES: &str = "
    Account ActivityDefinition AdverseEvent AllergyIntolerance Appointment
    AppointmentResponse AuditEvent Basic Binary BiologicallyDerivedProduct BodyStructure
    Bundle CapabilityStatement CarePlan CareTeam CatalogEntry ChargeItem
    ChargeItemDefinition Claim ClaimResponse ClinicalImpression CodeSystem Communication
    CommunicationRequest CompartmentDefinition Composition ConceptMap Condition Consent
    Contract Coverage CoverageEligibilityRequest CoverageEligibilityResponse DetectedIssue
    Device DeviceDefinition DeviceMetric DeviceRequest DeviceUseStatement DiagnosticReport
    DocumentManifest DocumentReference EffectEvidenceSynthesis Encounter Endpoint
    EnrollmentRequest EnrollmentResponse EpisodeOfCare EventDefinition Evidence
    EvidenceVariable ExampleScenario ExplanationOfBenefit FamilyMemberHistory Flag Goal
    GraphDefinition Group GuidanceResponse HealthcareService ImagingStudy Immunization
    ImmunizationEvaluation ImmunizationRecommendation ImplementationGuide InsurancePlan
    Invoice Library Linkage List Location Measure MeasureReport Media Medication
    MedicationAdministration MedicationDispense MedicationKnowledge MedicationRequest
    MedicationStatement MedicinalProduct MedicinalProductAuthorization
    MedicinalProductContraindication MedicinalProductIndication MedicinalProductIngredient
    MedicinalProductInteraction MedicinalProductManufactured MedicinalProductPackaged
    MedicinalProductPharmaceutical MedicinalProductUndesirableEffect MessageDefinition
    MessageHeader MolecularSequence NamingSystem NutritionOrder Observation
    ObservationDefinition OperationDefinition OperationOutcome Organization
    OrganizationAffiliation Parameters Patient PaymentNotice PaymentReconciliation Person
    PlanDefinition Practitioner PractitionerRole Procedure Provenance Questionnaire
    QuestionnaireResponse RelatedPerson RequestGroup ResearchDefinition
    ResearchElementDefinition ResearchStudy ResearchSubject RiskAssessment
    RiskEvidenceSynthesis Schedule SearchParameter ServiceRequest Slot Specimen
    SpecimenDefinition StructureDefinition StructureMap Subscription Substance
    SubstanceNucleicAcid SubstancePolymer SubstanceProtein SubstanceReferenceInformation
    SubstanceSourceMaterial SubstanceSpecification SupplyDelivery SupplyRequest Task
    TerminologyCapabilities TestReport TestScript ValueSet VerificationResult
    VisionPrescription";

/// The types whose behaviour their documents set (the Canvas APIs).
const DOCUMENTED: &[&str] = &["Appointment", "Practitioner"];

// ---------------------------------------------------------------------------------------
// Assertions on the shared client's answers, and how these tests start a sandbox

/// Assertions that panic at the caller's line.
trait Asserts {
    fn expect(&self, status: u16, what: &str) -> &Self;
    /// The status, and an OperationOutcome with one error issue of `code`.
    fn expect_outcome(&self, status: u16, code: &str, what: &str);
    /// The ids of a searchset's matches, after checking that it is one.
    fn match_ids(&self) -> Vec<String>;
}

impl Asserts for Resp {
    #[track_caller]
    fn expect(&self, status: u16, what: &str) -> &Self {
        assert_eq!(self.status, status, "{what}: {}", self.text);
        self
    }

    #[track_caller]
    fn expect_outcome(&self, status: u16, code: &str, what: &str) {
        self.expect(status, what);
        assert_eq!(self.body["resourceType"], "OperationOutcome", "{what}");
        assert_eq!(self.body["issue"][0]["severity"], "error", "{what}");
        assert_eq!(self.body["issue"][0]["code"], code, "{what}");
    }

    #[track_caller]
    fn match_ids(&self) -> Vec<String> {
        self.expect(200, "search");
        assert_eq!(self.body["resourceType"], "Bundle", "{}", self.text);
        assert_eq!(self.body["type"], "searchset", "{}", self.text);
        self.body["entry"]
            .as_array()
            .map(Vec::as_slice)
            .unwrap_or_default()
            .iter()
            .filter(|e| e["search"]["mode"] == "match")
            .map(|e| e["resource"]["id"].as_str().unwrap().to_owned())
            .collect()
    }
}

/// A sandbox with these defects; no token, even with `auth=on` (a test signs in).
async fn start(defects: &[&str]) -> Sbx {
    with(&[], defects).await
}

async fn with(features: &[(&str, &str)], defects: &[&str]) -> Sbx {
    Sbx::launch(config(features, defects)).await
}

/// `_lastUpdated` values carry `+`, which a query string must escape.
fn q(value: &str) -> String {
    value.replace('+', "%2B").replace(':', "%3A")
}

/// A small body of each type the round trip covers.
fn body_of(ty: &str) -> Value {
    match ty {
        "Patient" => json!({
            "resourceType": "Patient",
            "name": [{ "family": "Generic", "given": ["Gemma"] }],
            "gender": "female",
            "birthDate": "1990-02-03"
        }),
        "Observation" => json!({
            "resourceType": "Observation",
            "status": "final",
            "code": { "coding": [{ "system": "http://loinc.org", "code": "8867-4" }], "text": "Heart rate" },
            "subject": { "reference": "Patient/patient-1" },
            "valueQuantity": { "value": 72, "unit": "beats/minute" }
        }),
        "Encounter" => json!({
            "resourceType": "Encounter",
            "status": "planned",
            "class": { "system": "http://terminology.hl7.org/CodeSystem/v3-ActCode", "code": "AMB" },
            "subject": { "reference": "Patient/patient-2" }
        }),
        "ImmunizationRecommendation" => json!({
            "resourceType": "ImmunizationRecommendation",
            "patient": { "reference": "Patient/patient-1" },
            "date": "2024-01-15T10:00:00Z",
            "recommendation": [{
                "vaccineCode": [{ "text": "MMR" }],
                "forecastStatus": { "text": "due" }
            }]
        }),
        other => json!({ "resourceType": other }),
    }
}

/// A valid Canvas Appointment that asks to be booked (it must be stored as proposed).
fn appointment(s: &Sbx) -> Value {
    json!({
        "resourceType": "Appointment",
        "status": "booked",
        "appointmentType": { "coding": [{
            "system": s.var("appointment_type_system"), "code": s.var("appointment_type_code")
        }] },
        "reasonCode": [{ "text": "Follow-up" }],
        "start": "2031-03-01T09:00:00Z",
        "end": "2031-03-01T09:30:00Z",
        "participant": [
            { "actor": { "reference": format!("Patient/{}", s.var("patient_id")) }, "status": "accepted" },
            { "actor": { "reference": format!("Practitioner/{}", s.var("practitioner_id")) }, "status": "accepted" }
        ]
    })
}

// ---------------------------------------------------------------------------------------
// The round trip

/// create → Location → read → update (version 2) → vread 1 → search by _id and
/// _lastUpdated → delete → 410, for one type.
async fn round_trip(s: &Sbx, ty: &str) {
    let sent = body_of(ty);
    let r = s.post(&format!("/{ty}"), &sent).await;
    r.expect(201, &format!("create {ty}"));
    let id = r.body["id"]
        .as_str()
        .expect("the body is echoed with its id")
        .to_owned();
    assert_eq!(
        r.header("location"),
        Some(s.url(&format!("/{ty}/{id}/_history/1")).as_str()),
        "{ty}"
    );
    assert_eq!(r.body["resourceType"], ty);
    assert_eq!(r.body["meta"]["versionId"], "1", "{ty}");
    let v1_updated = r.body["meta"]["lastUpdated"].as_str().unwrap().to_owned();
    for (k, v) in sent.as_object().unwrap() {
        assert_eq!(&r.body[k], v, "{ty}.{k} is stored as sent");
    }
    assert_eq!(r.header("etag"), Some("W/\"1\""), "{ty}");

    let read = s.get(&format!("/{ty}/{id}")).await;
    read.expect(200, &format!("read {ty}"));
    assert_eq!(
        read.body, r.body,
        "{ty}: the read is what the create answered"
    );

    let mut changed = sent.clone();
    changed["id"] = json!(id);
    changed["language"] = json!("en-CA");
    let r = s.put(&format!("/{ty}/{id}"), &changed).await;
    r.expect(200, &format!("update {ty}"));
    assert_eq!(r.body["meta"]["versionId"], "2", "{ty}");
    assert_eq!(r.body["language"], "en-CA", "{ty}");
    let v2_updated = r.body["meta"]["lastUpdated"].as_str().unwrap().to_owned();
    assert_eq!(
        s.get(&format!("/{ty}/{id}")).await.body["language"],
        "en-CA"
    );

    let v1 = s.get(&format!("/{ty}/{id}/_history/1")).await;
    v1.expect(200, &format!("vread {ty} 1"));
    assert_eq!(v1.body["meta"]["versionId"], "1");
    assert!(
        v1.body.get("language").is_none(),
        "{ty}: version 1 is as created"
    );
    assert_eq!(v1.body["meta"]["lastUpdated"], v1_updated.as_str());

    let by_id = s.get(&format!("/{ty}?_id={id}")).await;
    assert_eq!(by_id.match_ids(), [id.as_str()], "{ty} by _id");
    assert_eq!(by_id.body["total"], 1);
    let since = s
        .get(&format!("/{ty}?_lastUpdated=ge{}", q(&v2_updated)))
        .await;
    assert!(since.match_ids().contains(&id), "{ty}: ge its lastUpdated");
    let before = s
        .get(&format!("/{ty}?_lastUpdated=lt{}", q(&v1_updated)))
        .await;
    assert!(
        !before.match_ids().contains(&id),
        "{ty}: lt its first lastUpdated"
    );

    s.delete(&format!("/{ty}/{id}"))
        .await
        .expect(204, &format!("delete {ty}"));
    s.get(&format!("/{ty}/{id}")).await.expect_outcome(
        410,
        "deleted",
        &format!("read a deleted {ty}"),
    );
    assert!(
        s.get(&format!("/{ty}?_id={id}"))
            .await
            .match_ids()
            .is_empty()
    );
    s.get(&format!("/{ty}/{id}/_history/2"))
        .await
        .expect(200, "a deleted resource's versions stay readable");
}

#[tokio::test]
async fn create_read_update_vread_search_delete_for_common_and_rare_types() {
    let s = start(&[]).await;
    for ty in [
        "Patient",
        "Observation",
        "Encounter",
        "ImmunizationRecommendation",
    ] {
        round_trip(&s, ty).await;
    }
    s.stop().await;
}

#[tokio::test]
async fn every_generic_type_takes_a_create_and_reads_it_back() {
    let s = start(&[]).await;
    for ty in R4_TYPES
        .split_whitespace()
        .filter(|t| !DOCUMENTED.contains(t))
    {
        let r = s
            .post(&format!("/{ty}"), &json!({ "resourceType": ty }))
            .await;
        r.expect(201, ty);
        let id = r.body["id"].as_str().unwrap();
        s.get(&format!("/{ty}/{id}")).await.expect(200, ty);
        assert_eq!(s.get(&format!("/{ty}?_id={id}")).await.match_ids(), [id]);
    }
    s.stop().await;
}

// ---------------------------------------------------------------------------------------
// Writes in detail

#[tokio::test]
async fn update_creates_under_the_client_id_and_revives_a_deleted_one() {
    let s = start(&[]).await;
    let body = json!({ "resourceType": "Observation", "id": "client-chosen.1", "status": "preliminary", "code": { "text": "x" } });
    let r = s.put("/Observation/client-chosen.1", &body).await;
    r.expect(201, "update as create");
    assert_eq!(
        r.header("location"),
        Some(s.url("/Observation/client-chosen.1/_history/1").as_str())
    );
    assert_eq!(r.body["id"], "client-chosen.1");
    assert_eq!(r.body["meta"]["versionId"], "1");
    let again = s.put("/Observation/client-chosen.1", &body).await;
    again.expect(200, "the second PUT updates");
    assert_eq!(again.body["meta"]["versionId"], "2");

    s.delete("/Observation/client-chosen.1")
        .await
        .expect(204, "delete");
    let revived = s.put("/Observation/client-chosen.1", &body).await;
    revived.expect(201, "a PUT after delete creates it again");
    assert_eq!(
        revived.body["meta"]["versionId"], "3",
        "its history goes on"
    );
    s.get("/Observation/client-chosen.1")
        .await
        .expect(200, "readable again");

    s.put(
        "/Observation/bad_id!",
        &json!({ "resourceType": "Observation" }),
    )
    .await
    .expect_outcome(400, "invalid", "an id FHIR does not allow");
    let r = s
        .write(
            Method::PUT,
            "/Observation/not-there",
            &json!({ "resourceType": "Observation" }),
            &[("if-match", "W/\"1\"")],
        )
        .await;
    r.expect_outcome(412, "conflict", "If-Match on nothing");
    s.get("/Observation/not-there")
        .await
        .expect(404, "nothing was created");
    s.stop().await;
}

#[tokio::test]
async fn writes_that_do_not_fit_are_refused_with_an_outcome() {
    let s = start(&[]).await;
    let observation = body_of("Observation");
    s.post("/Encounter", &observation).await.expect_outcome(
        400,
        "invalid",
        "POST: resourceType differs from the URL",
    );
    let id = s.post("/Observation", &observation).await.body["id"]
        .as_str()
        .unwrap()
        .to_owned();
    s.put(&format!("/Encounter/{id}"), &observation)
        .await
        .expect_outcome(400, "invalid", "PUT: resourceType differs from the URL");
    let mut other_id = observation.clone();
    other_id["id"] = json!("someone-else");
    s.put(&format!("/Observation/{id}"), &other_id)
        .await
        .expect_outcome(400, "invalid", "PUT: body id differs from the URL id");
    let bad_json = Some(b"{ \"resourceType\": \"Observation\", ".to_vec());
    let json_type = [("content-type", "application/fhir+json")];
    s.send(Method::POST, "/Observation", &json_type, bad_json.clone())
        .await
        .expect_outcome(400, "invalid", "unparseable JSON (create)");
    s.send(
        Method::PUT,
        &format!("/Observation/{id}"),
        &json_type,
        bad_json,
    )
    .await
    .expect_outcome(400, "invalid", "unparseable JSON (update)");
    s.send(
        Method::POST,
        "/Observation",
        &[("content-type", "text/plain")],
        Some(b"{}".to_vec()),
    )
    .await
    .expect_outcome(415, "not-supported", "text/plain");
    let read = s.get(&format!("/Observation/{id}")).await;
    assert_eq!(
        read.body["meta"]["versionId"], "1",
        "nothing refused was stored"
    );

    // A create ignores a client id, as FHIR's create says.
    let mut with_id = observation.clone();
    with_id["id"] = json!("mine");
    let r = s.post("/Observation", &with_id).await;
    r.expect(201, "create with an id");
    assert_ne!(r.body["id"], "mine");
    s.get("/Observation/mine")
        .await
        .expect(404, "the sent id is not used");
    s.stop().await;
}

#[tokio::test]
async fn prefer_and_if_match_are_honoured() {
    let s = start(&[]).await;
    let r = s
        .write(
            Method::POST,
            "/Basic",
            &json!({ "resourceType": "Basic", "code": { "text": "t" } }),
            &[("prefer", "return=minimal")],
        )
        .await;
    r.expect(201, "minimal create");
    assert!(r.text.is_empty(), "return=minimal: no body");
    let location = r.header("location").unwrap().to_owned();
    let id = location.split('/').nth_back(2).unwrap().to_owned();
    let body = json!({ "resourceType": "Basic", "id": id, "code": { "text": "u" } });
    s.write(
        Method::PUT,
        &format!("/Basic/{id}"),
        &body,
        &[("if-match", "W/\"9\"")],
    )
    .await
    .expect_outcome(412, "conflict", "a stale If-Match");
    s.write(
        Method::PUT,
        &format!("/Basic/{id}"),
        &body,
        &[("if-match", "W/\"1\"")],
    )
    .await
    .expect(200, "the current If-Match");
    s.send(
        Method::DELETE,
        &format!("/Basic/{id}"),
        &[("if-match", "W/\"1\"")],
        None,
    )
    .await
    .expect_outcome(412, "conflict", "delete with a stale If-Match");
    s.delete(&format!("/Basic/{id}"))
        .await
        .expect(204, "delete");
    s.delete(&format!("/Basic/{id}"))
        .await
        .expect(204, "deleting again changes nothing");
    s.delete("/Basic/never-was")
        .await
        .expect(204, "deleting nothing changes nothing");
    s.get("/Basic/never-was")
        .await
        .expect(404, "never created: 404, not 410");
    s.stop().await;
}

// ---------------------------------------------------------------------------------------
// Search

#[tokio::test]
async fn last_updated_filters_by_prefix_and_count_pages() {
    let s = start(&[]).await;
    let mut stamps = Vec::new();
    let mut ids = Vec::new();
    for _ in 0..3 {
        let r = s.post("/Encounter", &body_of("Encounter")).await;
        ids.push(r.body["id"].as_str().unwrap().to_owned());
        stamps.push(q(r.body["meta"]["lastUpdated"].as_str().unwrap()));
        tokio::time::sleep(std::time::Duration::from_millis(5)).await;
    }
    let sbx = &s;
    let found =
        |query: String| async move { sbx.get(&format!("/Encounter?{query}")).await.match_ids() };
    assert_eq!(found(format!("_lastUpdated=ge{}", stamps[0])).await, ids);
    assert_eq!(
        found(format!("_lastUpdated=gt{}", stamps[0])).await,
        ids[1..]
    );
    assert_eq!(
        found(format!("_lastUpdated=lt{}", stamps[2])).await,
        ids[..2]
    );
    assert_eq!(
        found(format!("_lastUpdated=le{}", stamps[1])).await,
        ids[..2]
    );
    assert_eq!(
        found(format!("_lastUpdated={}", stamps[1])).await,
        ids[1..2]
    );
    assert_eq!(
        found(format!("_lastUpdated=eq{}", stamps[1])).await,
        ids[1..2]
    );
    assert_eq!(
        found(format!("_lastUpdated=ne{}", stamps[1])).await,
        [ids[0].clone(), ids[2].clone()]
    );
    assert_eq!(
        found(format!(
            "_lastUpdated=gt{}&_lastUpdated=lt{}",
            stamps[0], stamps[2]
        ))
        .await,
        ids[1..2]
    );
    assert_eq!(found("_lastUpdated=ge2000-01-01".into()).await, ids);
    assert!(found("_lastUpdated=lt2000".into()).await.is_empty());
    assert_eq!(
        found(format!("_id={},{}", ids[2], ids[0])).await,
        [ids[0].clone(), ids[2].clone()]
    );

    let page = s.get("/Encounter?_lastUpdated=ge2000-01-01&_count=2").await;
    assert_eq!(page.match_ids(), ids[..2]);
    assert_eq!(page.body["total"], 3);
    let next = page.link("next").expect("a next link");
    let rest = s.get(&next).await;
    assert_eq!(rest.match_ids(), ids[2..]);
    assert!(rest.link("next").is_none());

    for bad in [
        "_lastUpdated=yesterday",
        "_lastUpdated=sa2024-01-01",
        "_lastUpdated=2024-13",
        "colour=red",
    ] {
        s.get(&format!("/Encounter?{bad}"))
            .await
            .expect_outcome(400, "invalid", bad);
    }
    s.stop().await;
}

// ---------------------------------------------------------------------------------------
// What /metadata says

#[tokio::test]
async fn metadata_lists_every_r4_type_with_what_it_supports() {
    let s = start(&[]).await;
    let r = s.get("/metadata").await;
    r.expect(200, "metadata");
    let resources = r.body["rest"][0]["resource"].as_array().unwrap();
    let listed: Vec<&str> = resources
        .iter()
        .map(|r| r["type"].as_str().unwrap())
        .collect();
    let r4: Vec<&str> = R4_TYPES.split_whitespace().collect();
    assert_eq!(r4.len(), 146);
    assert_eq!(
        listed, r4,
        "every R4 type, in alphabetical order, and nothing else"
    );
    for resource in resources {
        let ty = resource["type"].as_str().unwrap();
        let codes: Vec<&str> = resource["interaction"]
            .as_array()
            .unwrap()
            .iter()
            .map(|i| i["code"].as_str().unwrap())
            .collect();
        let params: Vec<&str> = resource["searchParam"]
            .as_array()
            .unwrap()
            .iter()
            .map(|p| p["name"].as_str().unwrap())
            .collect();
        if DOCUMENTED.contains(&ty) {
            assert_eq!(
                codes,
                ["read", "vread", "search-type", "create", "update"],
                "{ty}"
            );
            assert_eq!(resource["updateCreate"], false, "{ty}");
        } else {
            assert_eq!(
                codes,
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
            assert_eq!(resource["updateCreate"], true, "{ty}");
            assert!(
                params.starts_with(&["_id", "_lastUpdated"]),
                "{ty}: {params:?}"
            );
            let last_updated = &resource["searchParam"][1];
            assert_eq!(last_updated["type"], "date");
        }
    }
    let params_of = |ty: &str| -> Vec<String> {
        resources.iter().find(|r| r["type"] == ty).unwrap()["searchParam"]
            .as_array()
            .unwrap()
            .iter()
            .map(|p| p["name"].as_str().unwrap().to_owned())
            .collect()
    };
    assert_eq!(params_of("Patient"), ["_id", "_lastUpdated", "name"]);
    assert_eq!(
        params_of("PractitionerRole"),
        ["_id", "_lastUpdated", "practitioner"]
    );
    assert_eq!(params_of("Observation"), ["_id", "_lastUpdated"]);
    s.stop().await;
}

// ---------------------------------------------------------------------------------------
// Unknown types, documented types, seed data

#[tokio::test]
async fn unknown_types_stay_404_unless_the_defect_is_on() {
    let s = start(&[]).await;
    for path in [
        "/FhirconfNoSuchType",
        "/FhirconfNoSuchType/x",
        "/patient",
        "/Resource/1",
        "/DomainResource",
    ] {
        s.get(path).await.expect_outcome(404, "not-found", path);
    }
    s.post(
        "/FhirconfNoSuchType",
        &json!({ "resourceType": "FhirconfNoSuchType" }),
    )
    .await
    .expect_outcome(404, "not-found", "create of an unknown type");
    s.delete("/FhirconfNoSuchType/x").await.expect_outcome(
        404,
        "not-found",
        "delete of an unknown type",
    );
    s.stop().await;

    let s = start(&["CORE-UNKNOWN-TYPE"]).await;
    assert!(s.get("/FhirconfNoSuchType").await.match_ids().is_empty());
    s.stop().await;
}

#[tokio::test]
async fn practitioner_and_appointment_keep_their_documented_behaviour() {
    let s = start(&[]).await;
    let r = s.post("/Appointment", &appointment(&s)).await;
    r.expect(201, "appointment create");
    assert!(
        r.text.is_empty(),
        "the Canvas API answers writes without a body"
    );
    let location = r.header("location").unwrap().to_owned();
    let id = location.split('/').nth_back(2).unwrap().to_owned();
    let stored = s.get(&format!("/Appointment/{id}")).await;
    assert_eq!(
        stored.body["status"], "proposed",
        "a create asking for booked stores proposed"
    );
    let r = s.delete(&format!("/Appointment/{id}")).await;
    r.expect_outcome(405, "not-supported", "Appointment has no delete");
    assert_eq!(r.header("allow"), Some("GET, PUT"));
    s.get(&format!("/Appointment/{id}"))
        .await
        .expect(200, "still there");
    s.put(
        "/Appointment/made-up-id",
        &json!({ "resourceType": "Appointment" }),
    )
    .await
    .expect_outcome(404, "not-found", "no update-as-create for Appointment");

    s.delete("/Practitioner/practitioner-1")
        .await
        .expect_outcome(405, "not-supported", "Practitioner has no delete");
    s.put(
        "/Practitioner/made-up-id",
        &json!({ "resourceType": "Practitioner" }),
    )
    .await
    .expect_outcome(404, "not-found", "no update-as-create for Practitioner");
    s.get("/Practitioner?_lastUpdated=ge2000-01-01")
        .await
        .expect_outcome(
            400,
            "invalid",
            "Practitioner search keeps its documented parameters",
        );
    s.stop().await;
}

#[tokio::test]
async fn seed_data_keeps_its_ids_and_content() {
    let s = start(&[]).await;
    let p1 = s.get(&format!("/Patient/{}", s.var("patient_id"))).await;
    p1.expect(200, "patient_id");
    assert_eq!(p1.body["name"][0]["family"], "Mark");
    assert_eq!(p1.body["meta"]["versionId"], "1");
    let p2 = s.get(&format!("/Patient/{}", s.var("patient_id_2"))).await;
    assert_eq!(p2.body["name"][0]["given"][0], "Noah");
    let loc = s.get(&format!("/Location/{}", s.var("location_id"))).await;
    assert_eq!(loc.body["name"], "Canvas Clinic San Francisco");
    assert_eq!(
        s.get("/Patient?name=okafor").await.match_ids(),
        [s.var("patient_id_2")]
    );
    assert_eq!(
        s.get("/Patient?_lastUpdated=ge2000-01-01")
            .await
            .match_ids(),
        [s.var("patient_id"), s.var("patient_id_2")]
    );
    assert_eq!(
        s.get("/PractitionerRole?practitioner=ppr-practitioner-1")
            .await
            .match_ids(),
        ["ppr-role-1"]
    );
    s.stop().await;
}

/// PractitionerRole, Location and Organization are seeded for the registry's includes;
/// no document rules their writes, so they are generic, and what a client writes is
/// what the registry search includes.
#[tokio::test]
async fn registry_types_take_generic_writes_that_the_registry_search_includes() {
    let s = start(&[]).await;
    let location = json!({ "resourceType": "Location", "status": "active", "name": "Kingston Annex", "address": { "city": "Kingston" } });
    let loc_id = s.post("/Location", &location).await.body["id"]
        .as_str()
        .unwrap()
        .to_owned();
    let role = json!({
        "resourceType": "PractitionerRole",
        "practitioner": { "reference": format!("Practitioner/{}", s.var("ppr_practitioner_id_2")) },
        "location": [{ "reference": format!("Location/{loc_id}") }]
    });
    s.post("/PractitionerRole", &role)
        .await
        .expect(201, "role create");
    let search = format!(
        "/Practitioner?identifier={}%7C{}",
        s.var("ppr_issuer_2"),
        s.var("ppr_shared_value")
    );
    let r = s.get(&search).await;
    r.expect(200, "registry search");
    let included: Vec<&Value> = r.body["entry"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|e| e["search"]["mode"] == "include")
        .collect();
    assert!(
        included
            .iter()
            .any(|e| e["resource"]["id"] == loc_id.as_str()),
        "the new Location is included: {}",
        r.text
    );
    s.stop().await;
}

// ---------------------------------------------------------------------------------------
// Defect switches and auth over the generic types

#[tokio::test]
async fn core_defects_also_break_the_generic_types() {
    let s = start(&["CORE-ID-MISMATCH"]).await;
    let id = s.post("/Observation", &body_of("Observation")).await.body["id"]
        .as_str()
        .unwrap()
        .to_owned();
    let mut other = body_of("Observation");
    other["id"] = json!("someone-else");
    let r = s.put(&format!("/Observation/{id}"), &other).await;
    r.expect(200, "CORE-ID-MISMATCH: accepted");
    assert_eq!(r.body["id"], id.as_str(), "the URL id wins");
    s.stop().await;

    let s = start(&["CORE-BAD-JSON"]).await;
    let r = s
        .send(
            Method::POST,
            "/Observation",
            &[("content-type", "application/fhir+json")],
            Some(b"{".to_vec()),
        )
        .await;
    r.expect(500, "CORE-BAD-JSON");
    assert!(r.header("content-type").unwrap().starts_with("text/plain"));
    s.stop().await;

    let s = start(&["CORE-READ-404"]).await;
    s.get("/Observation/never-was")
        .await
        .expect(200, "CORE-READ-404: a stub");
    s.stop().await;

    let s = start(&["CORE-UPDATE"]).await;
    let id = s.post("/Encounter", &body_of("Encounter")).await.body["id"]
        .as_str()
        .unwrap()
        .to_owned();
    let mut changed = body_of("Encounter");
    changed["status"] = json!("finished");
    s.put(&format!("/Encounter/{id}"), &changed)
        .await
        .expect(200, "CORE-UPDATE");
    assert_eq!(
        s.get(&format!("/Encounter/{id}")).await.body["status"],
        "planned",
        "nothing stored"
    );
    s.stop().await;

    let s = start(&["CORE-CREATE"]).await;
    let r = s.post("/Encounter", &body_of("Encounter")).await;
    let location = r.header("location").unwrap().to_owned();
    s.get(&location.replace("/_history/1", ""))
        .await
        .expect(404, "CORE-CREATE: Location names nothing");
    s.stop().await;
}

#[tokio::test]
async fn with_auth_on_scopes_govern_generic_interactions() {
    let mut s = with(&[("auth", "on")], &[]).await;
    s.post("/Observation", &body_of("Observation"))
        .await
        .expect_outcome(401, "security", "no token");
    s.token = Some(
        s.token_for(
            &s.var("auth_limited_client_id"),
            &s.var("auth_limited_client_secret"),
            None,
        )
        .await,
    );
    s.get(&format!("/Patient/{}", s.var("patient_id")))
        .await
        .expect(200, "system/Patient.read reads");
    s.post("/Patient", &body_of("Patient"))
        .await
        .expect_outcome(403, "forbidden", "system/Patient.read does not create");
    s.delete(&format!("/Patient/{}", s.var("patient_id")))
        .await
        .expect_outcome(403, "forbidden", "system/Patient.read does not delete");
    s.get("/Observation")
        .await
        .expect_outcome(403, "forbidden", "no Observation scope");
    s.token = Some(
        s.token_for(&s.var("auth_client_id"), &s.var("auth_client_secret"), None)
            .await,
    );
    let id = s.post("/Observation", &body_of("Observation")).await.body["id"]
        .as_str()
        .unwrap()
        .to_owned();
    s.delete(&format!("/Observation/{id}"))
        .await
        .expect(204, "system/*.write deletes");
    s.stop().await;
}
