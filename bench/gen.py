#!/usr/bin/env python3
"""Writes the benchmark workloads, the same requests and assertions for fhirconf
(YAML scenarios) and for Hurl (.hurl files).

    gen.py DIR

DIR/<workload>/fhirconf/  scenario files for `fhirconf run`
DIR/<workload>/hurl/      .hurl files for `hurl --test`

Every step alternates, starting with a GET:

  GET  /Patient/{id}  expect 200, Content-Type contains "fhir+json",
                      $.resourceType == "Patient"
  POST /Patient       (a small Patient, application/fhir+json)
                      expect 201, $.resourceType == "Patient",
                      capture id from the Location header (regex Patient/([^/]+))

The first GET reads /Patient/p1; every later GET reads the Patient the previous POST
created (so the captured value is used, on both sides). Both tools send
`Accept: application/fhir+json` (fhirconf's default header, written out for Hurl).
The base URL is not in the files: fhirconf gets --base-url, Hurl --variable base=...

DIR/seq1000fp/fhirconf/ is seq1000 with one FHIRPath assertion more on every step
(`Patient.id.exists()`), fhirconf only: the difference is what FHIRPath costs.
"""

import json
import os
import sys

POST_BODY = {"resourceType": "Patient", "active": True, "name": [{"family": "Bench", "given": ["Ann"]}]}

# name, scenarios, steps per scenario, layout ("one" file holding one scenario, or
# "files": one file per scenario, the same for both tools)
WORKLOADS = [
    ("seq1000", 1, 1000),  # (a) one scenario of 1,000 steps, sequential
    ("par100x10", 100, 10),  # (b) 100 scenarios x 10 steps, 8 in flight
    ("one", 1, 1),  # (c) one step: start-up cost
    ("latency200x3", 200, 3),  # the latency-bound case, 32 in flight
    # peak RSS as the number of steps grows (one scenario each)
    ("rss100", 1, 100),
    ("rss4000", 1, 4000),
]


def yaml_str(s):
    """A YAML double-quoted scalar (JSON strings are valid YAML)."""
    return json.dumps(s)


def fhirconf_steps(n, fhirpath=False):
    """The steps; with `fhirpath`, each also asserts `Patient.id.exists()` in
    FHIRPath."""
    fp = "      fhirpath:\n        - { expr: \"Patient.id.exists()\", equals: true }\n" if fhirpath else ""
    out = []
    for i in range(n):
        if i % 2 == 0:
            path = "/Patient/p1" if i == 0 else "/Patient/{{ id }}"
            out.append(
                f"""  - name: read {i + 1}
    request: {{ method: GET, path: {yaml_str(path)} }}
    expect:
      status: 200
      headers:
        content-type: {{ contains: fhir+json }}
      json:
        - {{ path: $.resourceType, equals: Patient }}
{fp}"""
            )
        else:
            out.append(
                f"""  - name: create {i + 1}
    request: {{ method: POST, path: /Patient, json: {json.dumps(POST_BODY)} }}
    expect:
      status: 201
      json:
        - {{ path: $.resourceType, equals: Patient }}
{fp}    capture:
      id: {{ header: location, regex: "Patient/([^/]+)" }}
"""
            )
    return "".join(out)


def fhirconf_scenario(name, n, fhirpath=False):
    return f"name: {yaml_str(name)}\nsteps:\n" + fhirconf_steps(n, fhirpath)


def hurl_entries(n):
    out = []
    for i in range(n):
        if i % 2 == 0:
            path = "/Patient/p1" if i == 0 else "/Patient/{{id}}"
            out.append(
                f"""# read {i + 1}
GET {{{{base}}}}{path}
Accept: application/fhir+json
HTTP 200
[Asserts]
header "Content-Type" contains "fhir+json"
jsonpath "$.resourceType" == "Patient"

"""
            )
        else:
            out.append(
                f"""# create {i + 1}
POST {{{{base}}}}/Patient
Accept: application/fhir+json
Content-Type: application/fhir+json
{json.dumps(POST_BODY)}
HTTP 201
[Captures]
id: header "Location" regex "Patient/([^/]+)"
[Asserts]
jsonpath "$.resourceType" == "Patient"

"""
            )
    return "".join(out)


def main():
    if len(sys.argv) != 2 or sys.argv[1].startswith("-"):
        # An option is never a folder: `gen.py --help` once wrote the workloads to
        # ./--help.
        sys.exit(__doc__ if sys.argv[1:] in (["-h"], ["--help"]) else "usage: gen.py DIR")
    root = sys.argv[1]
    for name, scenarios, steps in WORKLOADS:
        fdir = os.path.join(root, name, "fhirconf")
        hdir = os.path.join(root, name, "hurl")
        os.makedirs(fdir, exist_ok=True)
        os.makedirs(hdir, exist_ok=True)
        width = len(str(scenarios))
        for k in range(scenarios):
            stem = f"s{k + 1:0{width}d}"
            with open(os.path.join(fdir, stem + ".yaml"), "w") as f:
                f.write(fhirconf_scenario(f"{name} {stem}", steps))
            with open(os.path.join(hdir, stem + ".hurl"), "w") as f:
                f.write(hurl_entries(steps))
    fdir = os.path.join(root, "seq1000fp", "fhirconf")
    os.makedirs(fdir, exist_ok=True)
    with open(os.path.join(fdir, "s1.yaml"), "w") as f:
        f.write(fhirconf_scenario("seq1000fp s1", 1000, fhirpath=True))


if __name__ == "__main__":
    main()
