#!/usr/bin/env python3
"""Where fhirconf's CPU time per step goes: `bench/run.sh --profile` calls this with
the servers running and the workloads written.

    profile.py --work DIR --fhirconf BIN --base URL [--workload rss4000]

1. times one plain run (CPU = user + system, from wait4) and counts its system calls
   (`strace -c -f`, when strace is installed);
2. samples one run with `perf record --call-graph dwarf` and puts every sample in the
   first bucket whose frames its stack contains (the order matters: a regex compiled
   while loading is "regex compile", not "YAML");
3. prints each bucket's share of the samples, that share of the plain run's CPU per
   step, and how much of the bucket is in the kernel.

perf's unwinding slows the sampled run by ~20 %, hence the shares are applied to the
plain run's CPU time rather than to the sample count.
"""

import argparse
import collections
import os
import shutil
import subprocess
import sys
import tempfile

sys.dont_write_bytecode = True  # no bench/__pycache__ in the work tree
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import bench  # noqa: E402

# (bucket, substrings of demangled frames), first match wins
BUCKETS = [
    ("reports, written after the run", ["fhirconf::report", "app::finish", "record::RunRecord"]),
    ("transcript of every step (http::transcript)", ["http::transcript"]),
    ("loading: regex compile (schema::Pattern)", ["schema::Pattern"]),
    ("loading: JSONPath parse", ["schema::JsonPathExpr"]),
    ("loading: YAML, or the cached model (scenario::load)", ["serde_saphyr", "scenario::load", "scenario::schema"]),
    ("step: checks (body to JSON, JSONPath, compare)", ["assert::eval::evaluate"]),
    ("step: captures", ["runner::capture_value"]),
    ("step: request from templates (Runner::prepare)", ["Runner::prepare"]),
    ("step: reqwest, caller side (HttpClient::send)", ["HttpClient::send"]),
    ("hyper connection task (socket I/O, kernel TCP)", ["hyper::proto", "hyper_util"]),
    ("threads parking and waking (epoll, futex)", ["park", "epoll_wait", "Driver::turn"]),
]
OTHER = "start-up, runtime, other"


def buckets(script_text):
    counts = collections.Counter()
    kernel = collections.Counter()
    threads = collections.Counter()
    sample = []

    def flush():
        if len(sample) < 2:
            return
        threads[sample[0].split()[0]] += 1
        frames = "\n".join(sample[1:])
        name = next((b for b, keys in BUCKETS if any(k in frames for k in keys)), OTHER)
        counts[name] += 1
        if "[kernel.kallsyms]" in sample[1]:
            kernel[name] += 1

    for line in script_text.splitlines():
        if line.strip():
            sample.append(line.strip())
        else:
            flush()
            sample.clear()
    flush()
    return counts, kernel, threads


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--work", required=True)
    ap.add_argument("--fhirconf", required=True)
    ap.add_argument("--base", required=True)
    ap.add_argument("--workload", default="rss4000")
    args = ap.parse_args()

    out = os.path.join(args.work, "out")
    os.makedirs(out, exist_ok=True)
    tool = bench.Tool("fhirconf", args.fhirconf, args.work, out)
    scenarios, steps, _ = bench.WORKLOADS[args.workload]
    n = scenarios * steps
    argv = tool.argv(args.workload, args.base)

    tool.run(args.workload, args.base)  # warm-up, and checks that it passes
    plain = [tool.run(args.workload, args.base) for _ in range(3)]
    cpu = sorted(m["user"] + m["sys"] for m in plain)[1]
    print(f"fhirconf, {args.workload} ({n} steps): median CPU {cpu * 1e3:.0f} ms = {cpu / n * 1e6:.0f} µs per step")

    if shutil.which("strace"):
        with tempfile.NamedTemporaryFile("r", suffix=".strace") as f:
            subprocess.run(["strace", "-c", "-f", "-o", f.name] + argv,
                           stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, check=False)
            rows = [line.split() for line in f.read().splitlines()[2:] if line.strip() and not line.startswith("-")]
        calls = {r[-1]: int(r[3]) for r in rows if len(r) >= 5 and r[3].isdigit() and r[-1] != "total"}
        top = sorted(calls.items(), key=lambda kv: -kv[1])[:8]
        print("system calls per step: " + ", ".join(f"{name} {c / n:.2f}" for name, c in top))
    else:
        print("(strace not installed: no system call counts; apt-get install strace)")

    if not shutil.which("perf"):
        sys.exit("perf is not installed (Debian: apt-get install linux-perf)")
    freq = 1999
    with tempfile.TemporaryDirectory() as tmp:
        data = os.path.join(tmp, "perf.data")
        r = subprocess.run(["perf", "record", "-q", "-F", str(freq), "--call-graph", "dwarf,32768", "-o", data] + argv,
                           stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True, check=False)
        if r.returncode != 0:
            sys.exit(f"perf record failed (is kernel.perf_event_paranoid too high?): {r.stderr.strip()[-500:]}")
        text = subprocess.run(["perf", "script", "-i", data, "--demangle"], capture_output=True,
                              text=True, errors="replace", check=False).stdout
    counts, kernel, threads = buckets(text)
    total = sum(counts.values())
    if not total:
        sys.exit("perf recorded no samples")
    print(f"perf: {total} samples at {freq} Hz ({', '.join(f'{t} {c}' for t, c in threads.most_common())})")
    print()
    print(f"{'where':50s} {'share':>6s} {'µs/step':>8s} {'kernel':>7s}")
    for name, c in counts.most_common():
        print(f"{name:50s} {c / total * 100:5.1f}% {c / total * cpu / n * 1e6:8.1f} {kernel[name] / c * 100:6.0f}%")


if __name__ == "__main__":
    try:
        main()
    except KeyboardInterrupt:
        sys.exit(130)
