#!/usr/bin/env python3
"""The TestScript corpus table of docs/testscript.md: how many scripts of
tests/fixtures/testscript `fhirconf check` loads, and what blocks the rest, ranked by
how many scripts each blocks (an element counted once per script).

    python3 scripts/testscript-corpus.py [FHIRCONF]   # default: target/debug/fhirconf
"""
import collections
import os
import re
import subprocess
import sys

ROOT = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "tests", "fixtures", "testscript")


def scripts():
    found = []
    for d, _, files in os.walk(ROOT):
        for f in files:
            p = os.path.join(d, f)
            with open(p, errors="replace") as fh:
                t = fh.read()
            if (f.endswith(".json") and '"resourceType"' in t and '"TestScript"' in t) or (
                f.endswith(".xml") and "<TestScript" in t
            ):
                found.append(p)
    return sorted(found)


def kinds(stderr):
    out = set()
    for line in stderr.splitlines():
        if not line.startswith("error: ") or "problem" in line and "scenario files" in line:
            continue
        line = line[len("error: "):]
        m = re.match(r"(TestScript[^:]*): (.*)", line)
        if m:
            element = re.sub(r"\[\d+\]", "", m.group(1))
            element = re.sub(r"^TestScript\.(setup|test|teardown)\.action\.", "TestScript.*.action.", element)
            out.add(f"`{element}`: {re.sub(r'`[^`]*`', '…', m.group(2))[:90]}")
        else:
            out.add(re.sub(r"`[^`]*`", "…", line)[:100])
    return out


def main():
    fhirconf = sys.argv[1] if len(sys.argv) > 1 else "target/debug/fhirconf"
    blocks = collections.Counter()
    loads = 0
    all_scripts = scripts()
    for p in all_scripts:
        r = subprocess.run([fhirconf, "check", p], capture_output=True, text=True)
        if r.returncode == 0:
            loads += 1
        else:
            blocks.update(kinds(r.stderr))
    print(f"{len(all_scripts)} scripts, {loads} load\n")
    print("| scripts blocked | element: reason |\n|---:|---|")
    for k, n in blocks.most_common():
        print(f"| {n} | {k} |")


if __name__ == "__main__":
    main()
