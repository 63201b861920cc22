//! The defect switches: one per rule id of `scenarios/RULES.md`, in the same order.
//! A defect breaks its rule where a black-box client can see it, and nothing else;
//! `SANDBOX-NOTES.md` says, for each, what a scenario sends to catch it.

/// A rule the sandbox can be told to break, and what it then does wrong.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Defect {
    pub id: &'static str,
    pub description: &'static str,
}

const fn d(id: &'static str, description: &'static str) -> Defect {
    Defect { id, description }
}

/// Every defect switch, named by the rule id it breaks.
pub const DEFECTS: &[Defect] = &[
    // Canvas Practitioner (000)
    d(
        "PRAC-CREATE",
        "Practitioner create answers 200 instead of 201",
    ),
    d(
        "PRAC-READ",
        "reading an unknown Practitioner answers 404 with an empty body (no OperationOutcome)",
    ),
    d(
        "PRAC-ACTIVE-DEFAULT",
        "a Practitioner created without `active` is stored without it (not defaulted to true)",
    ),
    d(
        "PRAC-EMAIL-RANK1",
        "telecom without exactly one rank-1 email (two, or none) is accepted",
    ),
    d(
        "PRAC-EMAIL-IMMUTABLE",
        "a Practitioner update may change an email contact's value",
    ),
    d(
        "PRAC-TELECOM-REQUIRED",
        "a Practitioner update with telecom omitted or [] is accepted (stored telecom kept, the rest applied)",
    ),
    d(
        "PRAC-UPDATE-DELETES-OMITTED",
        "fields and extensions omitted from a Practitioner PUT are kept instead of deleted",
    ),
    d(
        "PRAC-USERNAME-KEPT",
        "a Practitioner PUT without the username extension deletes the username",
    ),
    d(
        "PRAC-UPDATE-ITEM-IDS",
        "address/telecom items sent with their id get a new id on update instead of being updated in place",
    ),
    d(
        "PRAC-SIGNATURE-URL-IGNORED",
        "a signature sent as a url on update replaces the stored signature",
    ),
    d(
        "PRAC-SEARCH-DEFAULT-ACTIVE",
        "a Practitioner search without `active` also returns inactive practitioners",
    ),
    d(
        "PRAC-SEARCH-NONSCHEDULABLE",
        "include-non-scheduleable-practitioners=true is ignored: non-scheduleable practitioners never come back",
    ),
    d(
        "PRAC-SEARCH-PARAMS",
        "`name` matches only a whole family name (no partial match, no given/prefix/suffix/text match)",
    ),
    d(
        "PRAC-AUTH",
        "Practitioner read/create/update skip the token and scope checks",
    ),
    // Canvas Appointment (004, 001)
    d(
        "APPT-CREATE",
        "Appointment create answers 200 instead of 201",
    ),
    d(
        "APPT-CREATE-PROPOSED",
        "Appointment create stores the status that was sent instead of proposed",
    ),
    d(
        "APPT-TYPE-DEFAULT",
        "an Appointment created without appointmentType is stored without one",
    ),
    d(
        "APPT-TYPE-ONE-CODING",
        "appointmentType with several codings, or a system other than SNOMED/INTERNAL, is accepted (first coding used)",
    ),
    d(
        "APPT-TYPE-UNKNOWN",
        "an appointment type code that does not exist is accepted",
    ),
    d(
        "APPT-TYPE-UNSCHEDULABLE",
        "a non-scheduleable appointment type is accepted",
    ),
    d(
        "APPT-REASON-FIRST",
        "every reasonCode is kept, and an unknown structured reason code is accepted",
    ),
    d(
        "APPT-DESCRIPTION-MIRRORS",
        "description is stored as sent instead of mirroring the reasonCode text",
    ),
    d(
        "APPT-PRACTITIONER-REQUIRED",
        "an Appointment without a Practitioner participant is accepted",
    ),
    d(
        "APPT-MEETING-LINK",
        "the contained meeting Endpoint (and its supportingInformation reference) is dropped",
    ),
    d(
        "APPT-START-FORMAT",
        "malformed start/end values are accepted and stored as sent",
    ),
    d(
        "APPT-UPDATE-STATUSES",
        "Appointment update accepts the statuses entered-in-error and waitlist",
    ),
    d(
        "APPT-CANCELLED-FINAL",
        "a cancelled appointment can be re-booked (its status changed again)",
    ),
    d(
        "APPT-STATUS-OMITTED-KEPT",
        "an Appointment update without status resets the status to proposed",
    ),
    d(
        "APPT-UPDATE-KEEPS-OMITTED",
        "optional fields omitted from an Appointment PUT are deleted (all but status, start, end, participant)",
    ),
    d(
        "APPT-IDENTIFIER-REPLACE",
        "identifiers sent on update are appended with new ids; stored ones are never replaced or updated in place",
    ),
    d(
        "APPT-DOUBLE-BOOKING-422",
        "with double_booking=forbidden, an overlapping appointment of the same practitioner is accepted",
    ),
    d(
        "APPT-DOUBLE-BOOKING-ALLOWED",
        "with double_booking=allowed, an overlapping appointment of the same practitioner is refused with 422",
    ),
    d(
        "APPT-READ",
        "reading an unknown Appointment answers 404 with an empty body (no OperationOutcome)",
    ),
    d(
        "APPT-SEARCH",
        "Appointment date search ignores the gt/ge/lt/le prefixes: every date is compared as eq",
    ),
    d(
        "APPT-PRECONDITION",
        "If-Match is ignored on Appointment update: a stale version is accepted",
    ),
    d(
        "APPT-METHOD",
        "DELETE /Appointment/{id} deletes the appointment (204) instead of answering 405",
    ),
    d(
        "APPT-AUTH",
        "Appointment interactions skip the token and scope checks",
    ),
    // Provider registry Practitioner search (003, 002)
    d(
        "PPR-IDENTIFIER",
        "matches of an identifier search carry no search.mode",
    ),
    d(
        "PPR-INCLUDE",
        "related PractitionerRole/Location/Organization are not included in Practitioner searches",
    ),
    d(
        "PPR-POST-SEARCH",
        "POST /Practitioner/_search ignores its identifier parameter",
    ),
    d(
        "PPR-ISSUER-REQUIRED",
        "an identifier without its issuer is accepted and matches the value under every issuer",
    ),
    d(
        "PPR-ISSUER-SCOPED",
        "identifier search ignores the issuer: a shared value matches the practitioners of both issuers",
    ),
    d(
        "PPR-NO-MATCH",
        "a Practitioner search with no match returns an empty Bundle without the OperationOutcome entry",
    ),
    d(
        "PPR-CONTENT-TYPE",
        "POST /Practitioner/_search accepts any Content-Type",
    ),
    d(
        "PPR-BAD-PARAM",
        "unknown Practitioner search parameters are silently ignored",
    ),
    d(
        "PPR-AUTH",
        "Practitioner searches (GET and POST _search) accept a missing or invalid token",
    ),
    d(
        "PPR-ACCEPT",
        "the Accept header and _format are ignored: an unsupported format still gets 200 JSON",
    ),
    d(
        "PPR-OTHER-PARAMS",
        "the address, gender and communication search filters are ignored",
    ),
    d(
        "PPR-THROTTLE",
        "with rate_limit=N, the limit is never enforced (no 429)",
    ),
    // FHIR R4 core
    d("CORE-METADATA", "CapabilityStatement.fhirVersion is 3.0.2"),
    d(
        "CORE-READ-404",
        "reading an unknown id of any type but Practitioner and Appointment answers 200 with a stub resource",
    ),
    d(
        "CORE-CREATE",
        "the Location header after create names an id that does not exist (a read of it is 404)",
    ),
    d(
        "CORE-UPDATE",
        "update answers 200 but stores nothing: a read-back shows the old version",
    ),
    d(
        "CORE-ID-MISMATCH",
        "a PUT whose body id differs from the URL id is accepted (the URL id wins)",
    ),
    d(
        "CORE-BAD-JSON",
        "an unparseable body answers 500 with a plain-text body",
    ),
    d(
        "CORE-UNKNOWN-TYPE",
        "an unknown resource type answers 200 with an empty searchset Bundle",
    ),
    d(
        "CORE-SEARCHSET",
        "search results are Bundles of type collection",
    ),
    d("CORE-COUNT", "search pages never carry a next link"),
    d(
        "CORE-SEARCH-PARAM",
        "the `_lastUpdated` parameter the CapabilityStatement declares is ignored on every type but Practitioner and Appointment: every record matches",
    ),
    d(
        "CORE-HISTORY",
        "an instance's history lists only its current version",
    ),
    d(
        "CORE-CONTENT-TYPE",
        "FHIR responses are labelled Content-Type: text/plain",
    ),
    // Validity of what a server returns (FHIR R4, US Core)
    d(
        "CORE-VALID-RESOURCE",
        "resources of every type but Practitioner and Appointment are served (read, vread, search entries, create/update echo) with gender as an HL7 v2 code (F, M, O, U), not R4's female, male, other, unknown",
    ),
    d(
        "PRAC-USCORE-PROFILE",
        "Practitioners are served (read, vread, search entries, create/update echo) without their identifier: valid R4, not US Core Practitioner",
    ),
];
