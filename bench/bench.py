#!/usr/bin/env python3
"""The timing half of bench/run.sh: runs fhirconf and Hurl alternately on each
workload written by gen.py and prints medians, min/max, CPU per step, peak RSS and
the ratio. Servers are started (and stopped) by run.sh; this script only talks to
the base URLs it is given.

    bench.py --work DIR --fhirconf BIN --hurl BIN --base URL --slow-base URL [--runs N]
             [--client-cpu N]

With --client-cpu N, this process (and so every tool, and wrk) runs on CPU N only;
run.sh pins nginx to a CPU too, so the placement of client and server is the same
for every run (see run.sh's --placement).

Each timed run is one process started with posix_spawn (under GNU time) and reaped
with wait4: wall time from spawn to exit (perf_counter), CPU = ru_utime + ru_stime
(the command and GNU time), peak RSS = the command's own, as GNU time reports it (see
measure()). Every run must exit 0 and its JUnit file must show every
scenario passed, or the benchmark stops: a fast wrong answer is no result.
"""

import argparse
import json
import math
import os
import platform
import re
import shutil
import statistics
import subprocess
import sys
import time

# workload -> (scenarios, steps per scenario, jobs)
WORKLOADS = {
    "seq1000": (1, 1000, 1),
    "seq1000fp": (1, 1000, 1),  # seq1000 with one FHIRPath assertion more per step (fhirconf only)
    "par100x10": (100, 10, 8),
    "one": (1, 1, 1),
    "latency200x3": (200, 3, 32),
    "rss100": (1, 100, 1),
    "rss4000": (1, 4000, 1),
}
LATENCY_MS = 50.0

PLACEMENTS = {
    "free": "not pinned: the scheduler places client and server, and seq1000's times change "
            "with where it puts them (docs/performance.md)",
    "apart": "nginx on CPU 0, every client (fhirconf, Hurl, wrk) on CPU 1",
    "together": "nginx and every client (fhirconf, Hurl, wrk) on CPU 0",
}


def log(msg):
    print(msg, file=sys.stderr, flush=True)


GNU_TIME = "/usr/bin/time"


def measure(argv, stdout_path, env=None):
    """Runs argv; returns dict(wall, user, sys, rss_kib, code).

    Peak RSS comes from GNU time wrapped around the command, not from this process's
    wait4: a child spawned from Python (vfork, then exec) keeps Python's own high-water
    mark (about 16 MiB) as the floor of its ru_maxrss, which hid every figure below it.
    GNU time forks the command from a process of ~2 MiB. Wall and CPU stay this
    process's wait4 figures (they include GNU time's own fork and exec, the same for
    every tool)."""
    rss_file = stdout_path + ".rss"
    if os.access(GNU_TIME, os.X_OK):
        argv = [GNU_TIME, "-f", "%M", "-o", rss_file] + argv
    fa = [
        (os.POSIX_SPAWN_OPEN, 0, "/dev/null", os.O_RDONLY, 0),
        (os.POSIX_SPAWN_OPEN, 1, stdout_path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o644),
        (os.POSIX_SPAWN_DUP2, 1, 2),
    ]
    t0 = time.perf_counter()
    pid = os.posix_spawn(argv[0], argv, env if env is not None else os.environ, file_actions=fa)
    _, status, ru = os.wait4(pid, 0)
    wall = time.perf_counter() - t0
    rss_kib = ru.ru_maxrss
    try:
        with open(rss_file) as f:
            rss_kib = int(f.read().split()[-1])  # the last line: "Command exited with ..." may precede it
        os.remove(rss_file)
    except (OSError, ValueError, IndexError):
        pass
    return {
        "wall": wall,
        "user": ru.ru_utime,
        "sys": ru.ru_stime,
        "rss_kib": rss_kib,
        "code": os.waitstatus_to_exitcode(status),
    }


class Tool:
    def __init__(self, name, binary, work, out, kind=None, sources=None, extra=()):
        self.name = name
        self.extra = list(extra)  # more arguments for `fhirconf run`
        self.kind = kind or name  # "fhirconf" or "hurl": which workload files and flags
        self.sources = sources or {}  # workload -> the folder of files run for it instead
        self.binary = binary
        self.work = work
        self.out = out

    def junit(self, workload):
        return os.path.join(self.out, f"{self.name}-{workload}-junit.xml")

    def argv(self, workload, base):
        scenarios, steps, jobs = WORKLOADS[workload]
        src = os.path.join(self.work, self.sources.get(workload, workload), self.kind)
        if self.kind == "fhirconf":
            return [
                self.binary, "run", src,
                "--base-url", base,
                "--jobs", str(jobs),
                "--junit", self.junit(workload),
                "--json", os.path.join(self.out, f"{self.name}-{workload}-run.json"),
                "--markdown", os.path.join(self.out, f"{self.name}-{workload}-summary.md"),
                "-q", "--color", "never",
            ] + self.extra
        files = sorted(os.path.join(src, f) for f in os.listdir(src))
        return [
            self.binary, "--test",
            "--jobs", str(jobs),
            "--variable", f"base={base}",
            "--report-junit", self.junit(workload),
            "--no-color",
        ] + files

    def check(self, workload):
        """`fhirconf check` of the workload's files: what loading them alone costs."""
        src = os.path.join(self.work, self.sources.get(workload, workload), self.kind)
        log_path = os.path.join(self.out, f"{self.name}-{workload}-check.log")
        m = measure([self.binary, "check", src], log_path)
        if m["code"] != 0:
            sys.exit(f"{self.name} check {workload}: exit code {m['code']} (see {log_path})")
        return m

    def run(self, workload, base):
        junit = self.junit(workload)
        # Hurl's --report-junit appends to an existing file: start from none, for both.
        if os.path.exists(junit):
            os.remove(junit)
        log_path = os.path.join(self.out, f"{self.name}-{workload}.log")
        m = measure(self.argv(workload, base), log_path)
        check(self.name, workload, m, junit, log_path)
        return m


def check(tool, workload, m, junit, log_path):
    scenarios = WORKLOADS[workload][0]
    problems = []
    if m["code"] != 0:
        problems.append(f"exit code {m['code']}")
    try:
        with open(junit) as f:
            xml = f.read()
    except OSError as e:
        xml = ""
        problems.append(f"no JUnit report ({e})")
    cases = xml.count("<testcase")
    if xml and cases != scenarios:
        problems.append(f"{cases} test cases in the JUnit report, expected {scenarios}")
    if "<failure" in xml or "<error" in xml:
        problems.append("the JUnit report has failures or errors")
    if problems:
        with open(log_path, errors="replace") as f:
            tail = f.read()[-3000:]
        sys.exit(f"{tool} on {workload}: {'; '.join(problems)}\n--- {log_path} ---\n{tail}")


def summary(runs, steps):
    walls = [r["wall"] for r in runs]
    cpus = [r["user"] + r["sys"] for r in runs]
    rss = [r["rss_kib"] / 1024 for r in runs]
    wall = statistics.median(walls)
    cpu = statistics.median(cpus)
    return {
        "runs": len(runs),
        "wall_median": wall,
        "wall_min": min(walls),
        "wall_max": max(walls),
        "cpu_median": cpu,
        "user_median": statistics.median(r["user"] for r in runs),
        "sys_median": statistics.median(r["sys"] for r in runs),
        "cpu_us_per_step": cpu / steps * 1e6,
        "wall_us_per_step": wall / steps * 1e6,
        "steps_per_s": steps / wall,
        "rss_mib_median": statistics.median(rss),
        "rss_mib_max": max(rss),
        "raw": runs,
    }


def alternate(tools, workload, base, runs, wrk=None):
    """Two untimed warm-up runs each, then `runs` timed runs each, alternating, the
    order swapped on every pass so neither tool always runs right after the other.
    fhirconf writes a file's model-cache entry the second time it loads it, so the
    timed runs read their models from the cache. With `wrk` (a list), one second of
    `wrk -t1 -c1` is taken in every pass too, so the socket's limit is measured under
    the same conditions as the tools."""
    for _ in range(2):
        for t in tools:
            t.run(workload, base)
    results = {t.name: [] for t in tools}
    for i in range(runs):
        order = tools if i % 2 == 0 else list(reversed(tools))
        for t in order:
            results[t.name].append(t.run(workload, base))
        if wrk is not None:
            rps = wrk_once(base)
            if rps:
                wrk.append(rps)
    scenarios, steps, _ = WORKLOADS[workload]
    return {name: summary(r, scenarios * steps) for name, r in results.items()}


def fmt_s(x):
    return f"{x * 1000:.1f} ms" if x < 10 else f"{x:.2f} s"


def version(argv):
    try:
        p = subprocess.run(argv, capture_output=True, text=True, timeout=30)
        return (p.stdout.strip() or p.stderr.strip()).splitlines()[0]
    except Exception as e:  # noqa: BLE001 - a missing version is not fatal
        return f"unknown ({e})"


def machine():
    model = "unknown"
    try:
        with open("/proc/cpuinfo") as f:
            for line in f:
                if line.startswith("model name"):
                    model = line.split(":", 1)[1].strip()
                    break
    except OSError:
        pass
    mem = ""
    try:
        with open("/proc/meminfo") as f:
            mem = f.readline().split(":", 1)[1].strip()
    except OSError:
        pass
    return {
        "cpu": model,
        "cpus": os.cpu_count(),
        "memory": mem,
        "kernel": platform.release(),
        "os": platform.freedesktop_os_release().get("PRETTY_NAME", "") if hasattr(platform, "freedesktop_os_release") else "",
    }


def wrk_once(base, seconds=1):
    """Requests/s of `wrk -t1 -c1` on GET /Patient/p1 for `seconds`, or None."""
    wrk = shutil.which("wrk")
    if not wrk:
        return None
    out = subprocess.run(
        [wrk, "-t1", "-c1", f"-d{seconds}s", f"{base}/Patient/p1"], capture_output=True, text=True, timeout=60
    ).stdout
    m = re.search(r"Requests/sec:\s*([\d.]+)", out)
    return float(m.group(1)) if m else None


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--work", required=True)
    ap.add_argument("--fhirconf", required=True)
    ap.add_argument("--hurl", required=True)
    ap.add_argument("--fhirconf-b", default="", help="a second fhirconf build, timed alongside (A/B)")
    ap.add_argument("--base", required=True, help="nginx base URL")
    ap.add_argument("--slow-base", required=True, help="the 50 ms server's base URL")
    ap.add_argument("--runs", type=int, default=3)
    ap.add_argument("--only", default="", help="comma-separated workloads (default all)")
    ap.add_argument("--fhirconf-validation", default="",
                    help="a fhirconf built with --features validation: seq1000 with --validate warn against off")
    ap.add_argument("--client-cpu", type=int, default=None, help="run every client on this CPU only")
    ap.add_argument("--placement", default="free", help="how run.sh placed client and server (for the report)")
    args = ap.parse_args()
    if args.client_cpu is not None:
        os.sched_setaffinity(0, {args.client_cpu})  # inherited by every process it starts

    out = os.path.join(args.work, "out")
    os.makedirs(out, exist_ok=True)
    tools = [Tool("fhirconf", args.fhirconf, args.work, out), Tool("hurl", args.hurl, args.work, out)]
    if args.fhirconf_b:
        tools.insert(1, Tool("fhirconf-b", args.fhirconf_b, args.work, out, kind="fhirconf"))
    only = set(filter(None, args.only.split(",")))
    want = lambda w: not only or w in only  # noqa: E731

    report = {
        "machine": machine(),
        "versions": {
            "fhirconf": version([args.fhirconf, "--version"]) + f" ({args.fhirconf})",
            "fhirconf-b": (version([args.fhirconf_b, "--version"]) + f" ({args.fhirconf_b})") if args.fhirconf_b else None,
            "hurl": version([args.hurl, "--version"]),
            "nginx": version([os.environ.get("NGINX", "nginx"), "-v"]),
        },
        "runs": args.runs,
        "placement": args.placement,
        "load_before": os.getloadavg(),
        "workloads": {},
    }
    log(f"machine: {report['machine']}")
    log(f"load average before: {report['load_before']}")
    for w in ["seq1000", "par100x10", "one"]:
        if not want(w):
            continue
        log(f"{w}: {args.runs} runs each, alternating ...")
        # wrk is measured in seq1000's passes: the same machine state as the tools.
        wrk = [] if w == "seq1000" and want("wrk") and shutil.which("wrk") else None
        report["workloads"][w] = alternate(tools, w, args.base, args.runs, wrk)
        if wrk:
            report["wrk_rps"] = statistics.median(wrk)
            report["wrk_rps_all"] = wrk
            log(f"wrk, 1 connection, GET /Patient/p1: median {report['wrk_rps']:.0f} requests/s "
                f"({min(wrk):.0f}-{max(wrk):.0f})")
    if want("wrk") and "wrk_rps" not in report:
        rps = wrk_once(args.base, 3)
        if rps:
            report["wrk_rps"] = rps
            log(f"wrk, 1 connection, GET /Patient/p1: {rps:.0f} requests/s (3 s, alone)")

    if want("rss"):
        log("peak RSS against the number of steps (a first run each, a third for fhirconf, "
            "and fhirconf check) ...")
        scaling, warm, loading = {}, {}, {}
        for w in ["rss100", "rss4000"]:
            # A file's first run marks it in fhirconf's model cache, the second writes its
            # entry, the third reads it.
            scaling[w] = {t.name: t.run(w, args.base) for t in tools}
            tools[0].run(w, args.base)
            warm[w] = tools[0].run(w, args.base)
            # Its cache entry differs from the run's (other variables): the same again.
            tools[0].check(w)
            tools[0].check(w)
            loading[w] = tools[0].check(w)
        report["rss_scaling"] = scaling
        report["rss_warm"] = warm
        report["rss_loading"] = loading

    if want("latency200x3"):
        log(f"latency200x3 against the {LATENCY_MS:.0f} ms server: {args.runs} runs each ...")
        report["workloads"]["latency200x3"] = alternate(tools, "latency200x3", args.slow_base, args.runs)

    if want("fhirpath"):
        log(f"seq1000 with and without a FHIRPath assertion per step: {args.runs} runs each ...")
        fp = Tool("fhirconf-fhirpath", args.fhirconf, args.work, out, kind="fhirconf",
                  sources={"seq1000": "seq1000fp"})
        report["fhirpath"] = alternate([tools[0], fp], "seq1000", args.base, args.runs)

    if want("validation") and args.fhirconf_validation:
        log(f"seq1000, validation build, --validate off against warn: {args.runs} runs each ...")
        pair = [Tool(f"validate-{mode}", args.fhirconf_validation, args.work, out, kind="fhirconf",
                     extra=["--validate", mode]) for mode in ("off", "warn")]
        report["validation"] = alternate(pair, "seq1000", args.base, args.runs)

    report["load_after"] = os.getloadavg()
    with open(os.path.join(out, "results.json"), "w") as f:
        json.dump(report, f, indent=2)
    print_report(report)


def print_report(rep):
    w = rep["workloads"]
    print()
    print(f"machine: {rep['machine']['cpu']}, {rep['machine']['cpus']} CPUs, {rep['machine']['memory']}, "
          f"Linux {rep['machine']['kernel']}, {rep['machine']['os']}")
    print("versions: " + "; ".join(v for v in rep["versions"].values() if v))
    print("load average before / after: %s / %s" % (
        " ".join(f"{x:.2f}" for x in rep["load_before"]), " ".join(f"{x:.2f}" for x in rep["load_after"])))
    print(f"placement: {PLACEMENTS.get(rep.get('placement', 'free'), rep.get('placement'))}")
    if rep.get("wrk_rps_all"):
        print(f"wrk -t1 -c1 GET /Patient/p1 (nginx alone), one second in each pass of seq1000: "
              f"median {rep['wrk_rps']:.0f} requests/s ({min(rep['wrk_rps_all']):.0f}-{max(rep['wrk_rps_all']):.0f})")
    elif rep.get("wrk_rps"):
        print(f"wrk -t1 -c1 GET /Patient/p1 (nginx alone): {rep['wrk_rps']:.0f} requests/s")
    print(f"{rep['runs']} timed runs per tool and workload, after two warm-ups each; "
          "ratio = Hurl median wall / fhirconf median wall (above 1: fhirconf faster)")
    print()
    head = ("workload", "tool", "median", "min", "max", "steps/s", "CPU µs/step", "peak RSS MiB")
    rows = []
    tools = [t for t in ["fhirconf", "fhirconf-b", "hurl"] if any(t in x for x in w.values())]
    for name in ["seq1000", "par100x10", "one", "latency200x3"]:
        if name not in w:
            continue
        for tool in tools:
            s = w[name][tool]
            rows.append((name, tool, fmt_s(s["wall_median"]), fmt_s(s["wall_min"]), fmt_s(s["wall_max"]),
                         f"{s['steps_per_s']:.0f}", f"{s['cpu_us_per_step']:.0f}",
                         f"{s['rss_mib_median']:.1f} (max {s['rss_mib_max']:.1f})"))
    widths = [max(len(str(r[i])) for r in rows + [head]) for i in range(len(head))]
    for r in [head] + rows:
        print("  ".join(str(c).ljust(widths[i]) for i, c in enumerate(r)))
    print()

    def ratio(name, tool="fhirconf"):
        return w[name]["hurl"]["wall_median"] / w[name][tool]["wall_median"]

    if "fhirconf-b" in tools:
        for name in ["seq1000", "par100x10", "one", "latency200x3"]:
            if name in w:
                print(f"{name}: fhirconf-b throughput ratio to Hurl {ratio(name, 'fhirconf-b'):.2f}, "
                      f"to fhirconf {w[name]['fhirconf']['wall_median'] / w[name]['fhirconf-b']['wall_median']:.2f}; "
                      f"CPU/step {w[name]['fhirconf-b']['cpu_us_per_step']:.0f} µs"
                      + (f"; {w[name]['fhirconf-b']['wall_median'] / (3 * LATENCY_MS / 1000 * math.ceil(200 / 32)):.2f}x the ideal"
                         if name == "latency200x3" else ""))
        print()

    # The targets of issue #20 (speed, round two).
    goals = []
    if "seq1000" in w:
        r = ratio("seq1000")
        goals.append((f"seq1000: throughput {r:.2f}x Hurl (goal >= 2)", r >= 2))
        steps_per_s = w["seq1000"]["fhirconf"]["steps_per_s"]
        if rep.get("wrk_rps"):
            share = steps_per_s / rep["wrk_rps"]
            print(f"wrk ratio: fhirconf seq1000 {steps_per_s:.0f} steps/s = {share:.0%} of "
                  f"wrk -t1 -c1 on the same nginx ({rep['wrk_rps']:.0f} requests/s)")
            goals.append((f"seq1000: {share:.0%} of wrk -c1 (goal >= 40%)", share >= 0.4))
        if "one" in w:
            for tool in tools:
                marginal = (w["seq1000"][tool]["cpu_median"] - w["one"][tool]["cpu_median"]) / 999 * 1e6
                print(f"marginal CPU per step, {tool}: {marginal:.0f} µs "
                      "((CPU of 1,000 steps - CPU of 1 step) / 999: start-up, loading and reports left out)")
                if tool == "fhirconf":
                    goals.append((f"marginal CPU per step {marginal:.0f} µs (goal <= 90)", marginal <= 90))
    if "par100x10" in w:
        r = ratio("par100x10")
        goals.append((f"par100x10, 8 in flight: throughput {r:.2f}x Hurl (goal >= 2.5)", r >= 2.5))
    if "one" in w:
        one_ms = w["one"]["fhirconf"]["wall_median"] * 1000
        goals.append((f"one step: {one_ms:.1f} ms wall (goal: no worse than 11.3 ms, issue #20's figure)",
                      one_ms <= 11.3))
    if "rss_scaling" in rep and "seq1000" in w:
        sc = rep["rss_scaling"]
        line = []
        for tool in tools:
            a = sc["rss100"][tool]["rss_kib"] / 1024
            b = w["seq1000"][tool]["rss_mib_median"]
            c = sc["rss4000"][tool]["rss_kib"] / 1024
            line.append(f"{tool} {a:.1f} / {b:.1f} / {c:.1f}")
        print("peak RSS MiB at 100 / 1,000 / 4,000 steps (100 and 4,000: a file's first run, "
              "with fhirconf's model cache empty): " + "; ".join(line))
        if "rss_warm" in rep:
            mib = lambda m: m["rss_kib"] / 1024  # noqa: E731
            run = [mib(rep["rss_warm"][x]) for x in ["rss100", "rss4000"]]
            load = [mib(rep["rss_loading"][x]) for x in ["rss100", "rss4000"]]
            print(f"fhirconf at 100 / 4,000 steps, model cache warm: {run[0]:.1f} / {run[1]:.1f} MiB; loading the "
                  f"file alone (fhirconf check): {load[0]:.1f} / {load[1]:.1f}; the run beyond loading: "
                  f"{run[0] - load[0]:.1f} / {run[1] - load[1]:.1f}")
            grown = (run[1] - load[1]) - (run[0] - load[0])
            goals.append((f"peak RSS beyond loading the file flat as steps grow: {grown:+.1f} MiB from 100 "
                          "to 4,000 steps (goal: < 2 MiB; the loaded file itself grows with its size)",
                          grown < 2))
        below = all(
            sc[size]["fhirconf"]["rss_kib"] < sc[size]["hurl"]["rss_kib"] for size in ["rss100", "rss4000"]
        ) and w["seq1000"]["fhirconf"]["rss_mib_median"] < w["seq1000"]["hurl"]["rss_mib_median"]
        goals.append(("peak RSS below Hurl's at 100, 1,000 and 4,000 steps", below))
    if "latency200x3" in w:
        ideal = 3 * LATENCY_MS / 1000 * math.ceil(200 / 32)
        f = w["latency200x3"]["fhirconf"]["wall_median"]
        h = w["latency200x3"]["hurl"]["wall_median"]
        print(f"latency case: ideal 3 x 50 ms x ceil(200/32) = {ideal:.2f} s; "
              f"fhirconf {f:.2f} s ({f / ideal:.2f}x ideal), Hurl {h:.2f} s ({h / ideal:.2f}x ideal)")
        goals.append((f"latency: fhirconf {f / ideal:.2f}x the ideal (goal <= 1.3)", f / ideal <= 1.3))
    if "fhirpath" in rep:
        a, b = rep["fhirpath"]["fhirconf"], rep["fhirpath"]["fhirconf-fhirpath"]
        print(f"FHIRPath: seq1000 with one assertion more per step (`Patient.id.exists()`): "
              f"{b['cpu_us_per_step']:.0f} against {a['cpu_us_per_step']:.0f} µs CPU per step, "
              f"{b['cpu_us_per_step'] - a['cpu_us_per_step']:+.1f} µs per assertion; wall {fmt_s(b['wall_median'])} "
              f"against {fmt_s(a['wall_median'])} (a run without FHIRPath assertions pays nothing for it)")
    if "validation" in rep:
        a, b = rep["validation"]["validate-off"], rep["validation"]["validate-warn"]
        print(f"validation: seq1000 with --validate warn (every response validated against R4) "
              f"{b['cpu_us_per_step']:.0f} against {a['cpu_us_per_step']:.0f} µs CPU per step with off, "
              f"{b['cpu_us_per_step'] - a['cpu_us_per_step']:+.0f} µs per response; wall {fmt_s(b['wall_median'])} "
              f"against {fmt_s(a['wall_median'])}; peak RSS {b['rss_mib_median']:.1f} against "
              f"{a['rss_mib_median']:.1f} MiB (the default build has no validation: it pays nothing)")
    print()
    for text, ok in goals:
        print(f"  [{'met' if ok else 'MISSED'}] {text}")


if __name__ == "__main__":
    try:
        main()
    except KeyboardInterrupt:
        sys.exit(130)
