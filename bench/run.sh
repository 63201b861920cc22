#!/usr/bin/env bash
# fhirconf against Hurl on the same workloads, on this machine. Not part of `cargo
# test` or CI: run it by hand, on a machine as quiet as you can get.
#
#   bench/run.sh [--install] [--runs N] [--only W1,W2] [--placement P] [--keep]
#   bench/run.sh --profile [--workload W]
#
#   --install   install what is missing (Debian: nginx, time, wrk, the libraries
#               Hurl builds against; then `cargo install hurl --locked --version 8.0.1`)
#   --runs N    timed runs per tool and workload, after two warm-ups each (default 3)
#   --only ...  some of: wrk,seq1000,par100x10,one,rss,latency200x3,fhirpath,validation
#               (default all; fhirpath: seq1000 with and without one FHIRPath assertion
#               per step; validation: seq1000 with --validate warn against off, when
#               FHIRCONF_VALIDATION is set)
#   --placement where the client and nginx run (with taskset, Linux):
#               apart     nginx on CPU 0, every client (fhirconf, Hurl, wrk) on CPU 1: the
#                         default when there are two CPUs or more
#               together  all on CPU 0
#               free      none pinned: seq1000's times then change from run to run with
#                         where the scheduler puts the two (docs/performance.md)
#   --keep      keep the temporary directory (workloads, nginx config, logs, reports)
#   --profile   no comparison: where fhirconf's CPU time per step goes on workload W
#               (default rss4000), with perf and strace (bench/profile.py; needs
#               Debian's linux-perf and strace, not Hurl); --placement applies
#
# Environment: FHIRCONF (a fhirconf binary; default: `cargo build --release` here and
# target/release/fhirconf), HURL (default: hurl on PATH or ~/.cargo/bin/hurl), NGINX,
# FHIRCONF_B (a second fhirconf build, timed in the same runs as "fhirconf-b": A/B),
# FHIRCONF_VALIDATION (a fhirconf built with `--features validation`, for the
# validation comparison),
# FHIRCONF_CACHE (fhirconf's model cache; default: a folder in the temporary directory,
# so the workloads' entries go with it. fhirconf writes a file's entry the second time
# it loads the file, which the two warm-up runs of each workload do: the timed runs read
# models from it; the first peak-RSS runs find it empty).
#
# What it does: starts nginx (a generated config in a temporary directory, one worker,
# unlimited keep-alive, unprivileged, in the foreground) and a 50 ms server
# (bench/slow_server.py) on 127.0.0.1, writes the workloads (bench/gen.py), runs
# fhirconf and Hurl alternately (bench/bench.py) and prints the table. Every server
# it starts is stopped on exit, also on failure or Ctrl-C. No other traffic.
# Results: target/bench/report.txt and target/bench/results.json.
set -euo pipefail

here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
repo=$(dirname "$here")
HURL_VERSION=8.0.1
runs=3
only=""
install=0
keep=0
profile=0
workload=rss4000
placement=""
while [ $# -gt 0 ]; do
  case "$1" in
    --install) install=1 ;;
    --runs) runs=$2; shift ;;
    --only) only=$2; shift ;;
    --keep) keep=1 ;;
    --profile) profile=1 ;;
    --workload) workload=$2; shift ;;
    --placement) placement=$2; shift ;;
    -h|--help) sed -n '2,40p' "$0" | sed 's/^# \{0,1\}//'; exit 0 ;;
    *) echo "bench/run.sh: unknown argument $1 (see --help)" >&2; exit 2 ;;
  esac
  shift
done
case "$runs" in ''|*[!0-9]*|0) echo "bench/run.sh: --runs takes a positive number" >&2; exit 2 ;; esac
if [ -z "$placement" ]; then
  if [ "$(nproc 2>/dev/null || echo 1)" -ge 2 ] && command -v taskset >/dev/null 2>&1; then placement=apart; else placement=free; fi
fi
case "$placement" in
  free) server_cpu=""; client_cpu="" ;;
  apart) server_cpu=0; client_cpu=1 ;;
  together) server_cpu=0; client_cpu=0 ;;
  *) echo "bench/run.sh: --placement takes apart, together or free" >&2; exit 2 ;;
esac
if [ -n "$server_cpu" ]; then
  command -v taskset >/dev/null 2>&1 || { echo "bench/run.sh: --placement $placement needs taskset (util-linux)" >&2; exit 2; }
  [ "$(nproc)" -gt "$client_cpu" ] || { echo "bench/run.sh: --placement $placement needs CPU $client_cpu (this machine has $(nproc))" >&2; exit 2; }
fi

say() { printf '== %s\n' "$*" >&2; }

# No bench/__pycache__ in the work tree.
export PYTHONDONTWRITEBYTECODE=1

# Loopback only: no proxy may see (or divert) the traffic of either tool.
unset http_proxy https_proxy HTTP_PROXY HTTPS_PROXY all_proxy ALL_PROXY
export NO_PROXY=127.0.0.1,localhost no_proxy=127.0.0.1,localhost

# --- what it needs ----------------------------------------------------------------
as_root() { if [ "$(id -u)" -eq 0 ]; then "$@"; else sudo "$@"; fi; }
apt_install() {
  say "installing from Debian: $*"
  as_root env DEBIAN_FRONTEND=noninteractive apt-get install -y -q "$@"
}

NGINX=${NGINX:-$(command -v nginx || echo /usr/sbin/nginx)}
missing_debs=()
[ -x "$NGINX" ] || missing_debs+=(nginx)
[ -x /usr/bin/time ] || missing_debs+=(time)
command -v wrk >/dev/null 2>&1 || missing_debs+=(wrk)   # optional: the nginx-alone baseline
if [ "$profile" -eq 1 ]; then
  command -v perf >/dev/null 2>&1 || missing_debs+=(linux-perf)
  command -v strace >/dev/null 2>&1 || missing_debs+=(strace)
fi
python3 -c 'import sys; sys.exit(sys.version_info < (3, 9))' 2>/dev/null || missing_debs+=(python3)

HURL=${HURL:-$(command -v hurl || echo "$HOME/.cargo/bin/hurl")}
hurl_ok=0
if [ "$profile" -eq 1 ]; then
  hurl_ok=1   # not needed
elif [ -x "$HURL" ]; then
  hurl_ok=1
  "$HURL" --version 2>/dev/null | head -n 1 | grep -q " $HURL_VERSION" \
    || echo "warning: $HURL is not Hurl $HURL_VERSION: $("$HURL" --version 2>/dev/null | head -n 1)" >&2
fi

if [ ${#missing_debs[@]} -gt 0 ] || [ "$hurl_ok" -eq 0 ]; then
  if [ "$install" -eq 0 ]; then
    {
      echo "bench/run.sh: missing: ${missing_debs[*]} $([ "$hurl_ok" -eq 0 ] && echo "hurl $HURL_VERSION")"
      echo "install it with   bench/run.sh --install   or by hand:"
      [ ${#missing_debs[@]} -gt 0 ] && echo "  apt-get install -y ${missing_debs[*]}"
      if [ "$hurl_ok" -eq 0 ]; then
        echo "  apt-get install -y libcurl4-openssl-dev libxml2-dev libclang-dev pkg-config"
        echo "  cargo install hurl --locked --version $HURL_VERSION   # 10-20 minutes on 2 cores"
      fi
    } >&2
    exit 2
  fi
  [ ${#missing_debs[@]} -gt 0 ] && apt_install "${missing_debs[@]}"
  NGINX=$(command -v nginx || echo /usr/sbin/nginx)
  if [ "$hurl_ok" -eq 0 ]; then
    apt_install libcurl4-openssl-dev libxml2-dev libclang-dev pkg-config
    say "cargo install hurl --locked --version $HURL_VERSION (this takes a while)"
    cargo install hurl --locked --version "$HURL_VERSION"
    HURL="$HOME/.cargo/bin/hurl"
  fi
fi

if [ -z "${FHIRCONF:-}" ]; then
  say "cargo build --release"
  (cd "$repo" && cargo build --release --quiet)
  FHIRCONF="$repo/target/release/fhirconf"
fi
[ -x "$FHIRCONF" ] || { echo "bench/run.sh: $FHIRCONF is not an executable" >&2; exit 2; }

# --- a temporary directory and the servers, stopped on every exit --------------------
work=$(mktemp -d "${TMPDIR:-/tmp}/fhirconf-bench.XXXXXX")
chmod 711 "$work"   # nginx runs as nobody when this script runs as root
export FHIRCONF_CACHE="${FHIRCONF_CACHE:-$work/model-cache}"
server_pids=()
cleanup() {
  local code=$? pid
  for pid in "${server_pids[@]}"; do
    kill -TERM "$pid" 2>/dev/null || true
  done
  for pid in "${server_pids[@]}"; do
    # bounded: 5 s, then KILL
    for _ in $(seq 50); do kill -0 "$pid" 2>/dev/null || break; sleep 0.1; done
    kill -KILL "$pid" 2>/dev/null || true
    wait "$pid" 2>/dev/null || true
  done
  if [ "$keep" -eq 1 ]; then echo "kept $work" >&2; else rm -rf "$work"; fi
  exit "$code"
}
trap cleanup EXIT
trap 'exit 130' INT
trap 'exit 143' TERM

free_port() {
  python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])'
}

# Polls URL until it answers 200, at most 10 s.
wait_for() {
  python3 - "$1" <<'EOF'
import sys, time, urllib.request
for _ in range(100):
    try:
        opener = urllib.request.build_opener(urllib.request.ProxyHandler({}))
        with opener.open(sys.argv[1], timeout=1) as r:
            if r.status == 200:
                sys.exit(0)
    except Exception:
        pass
    time.sleep(0.1)
sys.exit(f"no answer from {sys.argv[1]} within 10 s")
EOF
}

# nginx: static Patient, 201 on POST, a small CapabilityStatement.
ngx="$work/nginx"
mkdir -p "$ngx/www" "$ngx/tmp"
python3 - "$ngx/www" <<'EOF'
import json, sys
patient = {
    "resourceType": "Patient", "id": "p1",
    "meta": {"versionId": "1", "lastUpdated": "2024-03-01T10:15:00Z"},
    "identifier": [
        {"use": "usual", "type": {"coding": [{"system": "http://terminology.hl7.org/CodeSystem/v2-0203", "code": "MR"}]},
         "system": "urn:oid:1.2.36.146.595.217.0.1", "value": "12345", "period": {"start": "2001-05-06"}}],
    "active": True,
    "name": [{"use": "official", "family": "Bench", "given": ["Ann", "Marie"]},
             {"use": "maiden", "family": "Windsor", "given": ["Ann", "Marie"], "period": {"end": "1995-06-01"}}],
    "telecom": [{"system": "phone", "value": "(03) 5555 6473", "use": "work", "rank": 1},
                {"system": "phone", "value": "(03) 3410 5613", "use": "mobile", "rank": 2},
                {"system": "email", "value": "ann.bench@example.org", "use": "home"}],
    "gender": "female", "birthDate": "1970-01-01", "deceasedBoolean": False,
    "address": [{"use": "home", "type": "both", "text": "534 Erewhon St, PleasantVille, Rainbow, Vic 3999",
                 "line": ["534 Erewhon St"], "city": "PleasantVille", "district": "Rainbow",
                 "state": "Vic", "postalCode": "3999", "period": {"start": "1974-12-25"}}],
    "maritalStatus": {"coding": [{"system": "http://terminology.hl7.org/CodeSystem/v3-MaritalStatus", "code": "M"}]},
    "contact": [{"relationship": [{"coding": [{"system": "http://terminology.hl7.org/CodeSystem/v2-0131", "code": "N"}]}],
                 "name": {"family": "du Marché", "given": ["Bénédicte"]},
                 "telecom": [{"system": "phone", "value": "+33 (237) 998327"}], "gender": "female"}],
    "communication": [{"language": {"coding": [{"system": "urn:ietf:bcp:47", "code": "en-AU"}]}, "preferred": True}],
    "managingOrganization": {"reference": "Organization/1"},
}
metadata = {"resourceType": "CapabilityStatement", "status": "active", "date": "2024-03-01",
            "kind": "instance", "fhirVersion": "4.0.1", "format": ["json"],
            "rest": [{"mode": "server", "resource": [
                {"type": "Patient", "interaction": [{"code": "read"}, {"code": "create"}]}]}]}
with open(sys.argv[1] + "/patient.json", "w") as f:
    json.dump(patient, f, ensure_ascii=False, separators=(",", ":"))
with open(sys.argv[1] + "/metadata.json", "w") as f:
    json.dump(metadata, f, separators=(",", ":"))
EOF

start_nginx() {
  local port=$1
  cat > "$ngx/nginx.conf" <<EOF
daemon off;
worker_processes 1;
pid $ngx/nginx.pid;
error_log $ngx/error.log warn;
events { worker_connections 1024; }
http {
  access_log off;
  client_body_temp_path $ngx/tmp/body;
  proxy_temp_path $ngx/tmp/proxy;
  fastcgi_temp_path $ngx/tmp/fastcgi;
  uwsgi_temp_path $ngx/tmp/uwsgi;
  scgi_temp_path $ngx/tmp/scgi;
  keepalive_requests 1000000000;
  keepalive_timeout 3600s;
  keepalive_time 24h;
  server_tokens off;
  default_type application/fhir+json;
  server {
    listen 127.0.0.1:$port;
    root $ngx/www;
    location = /metadata { try_files /metadata.json =404; }
    location ~ ^/Patient/[A-Za-z0-9.-]+\$ { try_files /patient.json =404; }
    location = /Patient {
      add_header Location "http://127.0.0.1:$port/Patient/\$request_id/_history/1";
      return 201 '{"resourceType":"Patient","id":"\$request_id","meta":{"versionId":"1"}}';
    }
  }
}
EOF
  local cmd=("$NGINX" -p "$ngx" -c "$ngx/nginx.conf" -e "$ngx/error.log")
  [ -n "$server_cpu" ] && cmd=(taskset -c "$server_cpu" "${cmd[@]}")
  if [ "$(id -u)" -eq 0 ]; then
    # Never as root: hand the directory to nobody and drop privileges first.
    chown -R nobody "$ngx"
    cmd=(setpriv --reuid=nobody --regid="$(id -g nobody)" --clear-groups -- "${cmd[@]}")
  fi
  "${cmd[@]}" > "$ngx/stdout.log" 2>&1 &
  server_pids+=($!)
}

nginx_port=""
for _ in 1 2 3 4 5; do   # a free port can be taken between the check and the bind
  port=$(free_port)
  start_nginx "$port"
  if wait_for "http://127.0.0.1:$port/metadata" 2>/dev/null; then nginx_port=$port; break; fi
  kill -TERM "${server_pids[-1]}" 2>/dev/null || true
  wait "${server_pids[-1]}" 2>/dev/null || true
  unset 'server_pids[-1]'
done
[ -n "$nginx_port" ] || { echo "bench/run.sh: nginx did not start:" >&2; cat "$ngx/error.log" "$ngx/stdout.log" >&2; exit 1; }
base="http://127.0.0.1:$nginx_port"
say "nginx on $base ($($NGINX -v 2>&1))"

python3 "$here/slow_server.py" "$work/slow.port" 50 > "$work/slow.log" 2>&1 &
server_pids+=($!)
for _ in $(seq 100); do [ -s "$work/slow.port" ] && break; sleep 0.1; done
[ -s "$work/slow.port" ] || { echo "bench/run.sh: the 50 ms server did not start" >&2; cat "$work/slow.log" >&2; exit 1; }
slow_base="http://127.0.0.1:$(cat "$work/slow.port")"
wait_for "$slow_base/metadata"
say "50 ms server on $slow_base"

# --- the workloads and the runs ----------------------------------------------------
python3 "$here/gen.py" "$work/workloads"
if [ "$profile" -eq 1 ]; then
  say "profiling $FHIRCONF on $workload"
  say "placement: $placement"
  ${client_cpu:+taskset -c "$client_cpu"} python3 "$here/profile.py" --work "$work/workloads" --fhirconf "$FHIRCONF" \
    --base "$base" --workload "$workload"
  exit 0
fi
out="$repo/target/bench"
mkdir -p "$out"
say "fhirconf: $FHIRCONF"
say "hurl: $HURL"
NGINX="$NGINX" python3 "$here/bench.py" --work "$work/workloads" --fhirconf "$FHIRCONF" --hurl "$HURL" \
  --base "$base" --slow-base "$slow_base" --runs "$runs" --only "$only" \
  --fhirconf-b "${FHIRCONF_B:-}" --fhirconf-validation "${FHIRCONF_VALIDATION:-}" --placement "$placement" ${client_cpu:+--client-cpu "$client_cpu"} \
  | tee "$out/report.txt"
cp "$work/workloads/out/results.json" "$out/results.json"
say "written: $out/report.txt, $out/results.json"
