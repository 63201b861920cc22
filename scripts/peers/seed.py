#!/usr/bin/env python3
"""Creates, through a FHIR R4 server's own REST API, the records the built-in suites
expect to exist, and prints the variables that name them, one `NAME=VALUE` a line.

    python3 scripts/peers/seed.py http://127.0.0.1:8090/fhir > vars.txt

The records are those the built-in sandbox seeds (src/sandbox/seed.rs), created with
plain POSTs so that any server can take them and give them ids of its own: two
patients, a location, four Canvas-style practitioners (two active, one inactive, one
that stands for "not scheduleable"), and the provider-registry practitioners with their
identifiers, organizations, locations and roles. Every record is read back after its
create; any failure stops with a message and exit code 1.

Only the standard library is used, so the peer scripts need nothing beyond python3.
"""

from __future__ import annotations

import json
import re
import sys
import urllib.error
import urllib.request

FHIR_JSON = "application/fhir+json"
NPI = "http://hl7.org/fhir/sid/us-npi"
USERNAME = "http://schemas.canvasmedical.com/fhir/extensions/practitioner-user-username"

# The registry's identifier systems (issuers) and the value both issued, as in
# targets/sandbox.yaml: the PPR scenarios read them from the variables printed below.
PPR_ISSUER = "https://fhir.infoway-inforoute.ca/NamingSystem/ca-on-license-physician"
PPR_ISSUER_2 = "https://fhir.infoway-inforoute.ca/NamingSystem/ca-on-provider-upi"
PPR_SHARED_VALUE = "12324566"
PPR_FAMILY = "Tremblay"


class SeedError(Exception):
    pass


def request(base: str, method: str, path: str, body: dict | None = None):
    data = None if body is None else json.dumps(body).encode()
    req = urllib.request.Request(base.rstrip("/") + path, data=data, method=method)
    req.add_header("Accept", FHIR_JSON)
    if data is not None:
        req.add_header("Content-Type", FHIR_JSON)
    try:
        with urllib.request.urlopen(req, timeout=30) as resp:
            raw = resp.read()
            return resp.status, dict(resp.headers.items()), raw
    except urllib.error.HTTPError as e:
        raw = e.read()
        raise SeedError(f"{method} {path}: {e.code} {raw[:600].decode(errors='replace')}") from None
    except urllib.error.URLError as e:
        raise SeedError(f"{method} {path}: no answer ({e.reason})") from None


def create(base: str, resource: dict) -> str:
    """POSTs the resource and returns the id the server gave it (from Location, else the body)."""
    rtype = resource["resourceType"]
    status, headers, raw = request(base, "POST", f"/{rtype}", resource)
    if status not in (200, 201):
        raise SeedError(f"POST /{rtype}: {status}")
    location = next((v for k, v in headers.items() if k.lower() == "location"), "")
    m = re.search(rf"(?:^|/){rtype}/([A-Za-z0-9.\-]{{1,64}})(?:/_history/|/?$)", location)
    rid = m.group(1) if m else None
    if rid is None and raw.strip():
        rid = json.loads(raw).get("id")
    if not rid:
        raise SeedError(f"POST /{rtype}: no id in Location ({location!r}) nor in the body")
    status, _, raw = request(base, "GET", f"/{rtype}/{rid}")
    if json.loads(raw).get("id") != rid:
        raise SeedError(f"GET /{rtype}/{rid}: the read-back has another id")
    return rid


def canvas_practitioner(key: str, given: str, family: str, gender: str, active: bool, npi: str) -> dict:
    email = f"{given.lower()}.{family.lower()}@example.com"
    return {
        "resourceType": "Practitioner",
        "extension": [{"url": USERNAME, "valueString": f"{given.lower()}{family.lower()}"}],
        "identifier": [{"system": NPI, "value": npi}],
        "active": active,
        "name": [{"use": "usual", "text": f"{given} {family}", "family": family, "given": [given]}],
        "telecom": [
            {"id": f"{key}-phone", "system": "phone", "value": "5554320555", "use": "work", "rank": 1},
            {"id": f"{key}-email", "system": "email", "value": email, "use": "work", "rank": 1},
        ],
        "address": [{
            "id": f"{key}-address", "use": "work", "line": ["1234 Main St"], "city": "San Francisco",
            "state": "CA", "postalCode": "94107", "country": "United States",
        }],
        "gender": gender,
        "birthDate": "1980-01-01",
    }


def registry_practitioner(given: str, family: str, gender: str, identifiers: list, city: str,
                          languages: list[str]) -> dict:
    return {
        "resourceType": "Practitioner",
        "identifier": identifiers,
        "active": True,
        "name": [{"use": "official", "text": f"Dr. {given} {family}", "family": family,
                  "given": [given], "prefix": ["Dr."]}],
        "address": [{"use": "work", "line": ["100 Queen St W"], "city": city, "state": "ON", "country": "CA"}],
        "gender": gender,
        "communication": [{"coding": [{"system": "urn:ietf:bcp:47", "code": c}]} for c in languages],
    }


def seed(base: str) -> list[tuple[str, str]]:
    out: list[tuple[str, str]] = []
    out.append(("patient_id", create(base, {
        "resourceType": "Patient", "active": True,
        "name": [{"use": "official", "family": "Mark", "given": ["Isabella", "Robel"]}],
        "gender": "female", "birthDate": "1980-11-13"})))
    out.append(("patient_id_2", create(base, {
        "resourceType": "Patient", "active": True,
        "name": [{"use": "official", "family": "Okafor", "given": ["Noah"]}],
        "gender": "male", "birthDate": "1975-04-02"})))
    out.append(("location_id", create(base, {
        "resourceType": "Location", "status": "active", "name": "Canvas Clinic San Francisco",
        "address": {"line": ["1234 Main St"], "city": "San Francisco", "state": "CA",
                    "postalCode": "94107", "country": "United States"}})))
    for var, key, given, family, gender, active, npi in (
        ("practitioner_id", "p1", "Samantha", "Jones", "female", True, "1920301155"),
        ("practitioner_id_2", "p2", "Marcus", "Lee", "male", True, "1487602211"),
        ("practitioner_inactive_id", "pi", "Olivia", "Grant", "female", False, "1306851129"),
        # A generic FHIR server has no notion of "scheduleable": this one is an ordinary
        # active practitioner, and the Canvas scenario about it says how the server differs.
        ("practitioner_nonschedulable_id", "pn", "Henry", "Park", "male", True, "1740283366"),
    ):
        out.append((var, create(base, canvas_practitioner(key, given, family, gender, active, npi))))

    # The provincial provider registry: one value under two issuers, two practitioners,
    # each with a role at a location of an organization.
    ppr1 = create(base, registry_practitioner(
        "Amelia", PPR_FAMILY, "female", [{"system": PPR_ISSUER, "value": PPR_SHARED_VALUE}],
        "Toronto", ["en", "fr"]))
    ppr2 = create(base, registry_practitioner(
        "Rajesh", "Singh", "male",
        [{"system": PPR_ISSUER_2, "value": PPR_SHARED_VALUE}, {"system": PPR_ISSUER, "value": "87654321"}],
        "Ottawa", ["en"]))
    for practitioner, name, city, line in (
        (ppr1, "Toronto Downtown Family Clinic", "Toronto", "200 Bay St"),
        (ppr2, "Ottawa Riverside Health Centre", "Ottawa", "45 Rideau St"),
    ):
        org = create(base, {"resourceType": "Organization", "active": True, "name": name})
        loc = create(base, {
            "resourceType": "Location", "status": "active", "name": name,
            "address": {"line": [line], "city": city, "state": "ON", "country": "CA"},
            "managingOrganization": {"reference": f"Organization/{org}"}})
        create(base, {
            "resourceType": "PractitionerRole", "active": True,
            "practitioner": {"reference": f"Practitioner/{practitioner}"},
            "organization": {"reference": f"Organization/{org}"},
            "location": [{"reference": f"Location/{loc}"}],
            "code": [{"coding": [{"system": "http://terminology.hl7.org/CodeSystem/practitioner-role",
                                  "code": "doctor"}]}]})
    out += [
        ("ppr_issuer", PPR_ISSUER),
        ("ppr_issuer_2", PPR_ISSUER_2),
        ("ppr_shared_value", PPR_SHARED_VALUE),
        ("ppr_practitioner_id", ppr1),
        ("ppr_practitioner_id_2", ppr2),
        ("ppr_family", PPR_FAMILY),
    ]
    return out


def main() -> int:
    if len(sys.argv) != 2:
        print("usage: seed.py BASE_URL", file=sys.stderr)
        return 2
    try:
        pairs = seed(sys.argv[1])
    except SeedError as e:
        print(f"seed: {e}", file=sys.stderr)
        return 1
    for name, value in pairs:
        print(f"{name}={value}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
