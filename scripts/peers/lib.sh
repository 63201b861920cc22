# shellcheck shell=bash
# Shared by scripts/peers/<peer>.sh (sourced, not run): pick a port, wait for a server,
# stop it by its PID, seed it and run the built-in suites against it.
# The caller sets PEER (its name) and, once the server runs, SERVER_PID.

PEERS_DIR="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
REPO_DIR="$(cd "$PEERS_DIR/../.." && pwd)"
# Installed servers are kept between runs here (never in the repository).
# shellcheck disable=SC2034 # used by the peer scripts that source this file
PEERS_CACHE="${FHIRCONF_PEERS_CACHE:-${XDG_CACHE_HOME:-$HOME/.cache}/fhirconf/peers}"
SERVER_PID=""
WORK_DIR=""

say() { printf '[%s] %s\n' "$PEER" "$*"; }
die() { printf '[%s] error: %s\n' "$PEER" "$*" >&2; exit 1; }

# A loopback port nobody listens on right now.
free_port() {
  python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1]); s.close()'
}

# Stops the server this script started (by its PID only): TERM, then KILL after 15 s.
stop_server() {
  local pid="$SERVER_PID"
  SERVER_PID=""
  [ -n "$pid" ] || return 0
  if kill -0 "$pid" 2>/dev/null; then
    say "stopping the server (pid $pid)"
    kill -TERM "$pid" 2>/dev/null || true
    local _
    for _ in $(seq 1 30); do
      kill -0 "$pid" 2>/dev/null || break
      sleep 0.5
    done
    if kill -0 "$pid" 2>/dev/null; then
      say "pid $pid did not stop on TERM: KILL"
      kill -KILL "$pid" 2>/dev/null || true
    fi
  fi
  wait "$pid" 2>/dev/null || true
}

# Always runs: stops the server and removes the throw-away data.
peer_exit() {
  local code=$?
  stop_server
  if [ -n "$WORK_DIR" ] && [ -d "$WORK_DIR" ]; then
    if [ -n "${OUT_DIR:-}" ] && [ -f "$WORK_DIR/server.log" ]; then
      cp "$WORK_DIR/server.log" "$OUT_DIR/server.log" 2>/dev/null || true
    fi
    rm -rf "$WORK_DIR"
  fi
  exit "$code"
}

# Sets up the work dir, the report dir and the traps. Call once, first.
peer_init() {
  OUT_DIR="$REPO_DIR/reports/peers/$PEER"
  mkdir -p "$OUT_DIR"
  rm -f "$OUT_DIR/junit.xml" "$OUT_DIR/run.json" "$OUT_DIR/summary.md" "$OUT_DIR/server.log" "$OUT_DIR/vars.txt"
  WORK_DIR="$(mktemp -d "${TMPDIR:-/tmp}/fhirconf-peer-$PEER.XXXXXX")"
  trap peer_exit EXIT
  trap 'exit 130' INT
  trap 'exit 143' TERM
}

# Waits until GET {base}/metadata answers 200, while the server process lives.
wait_for_metadata() {
  local base="$1" seconds="$2" _
  for _ in $(seq 1 "$((seconds * 2))"); do
    if ! kill -0 "$SERVER_PID" 2>/dev/null; then
      tail -n 30 "$WORK_DIR/server.log" >&2 || true
      die "the server exited before answering /metadata"
    fi
    if python3 - "$base/metadata" <<'PY' 2>/dev/null; then
import sys, urllib.request
with urllib.request.urlopen(sys.argv[1], timeout=5) as r:
    sys.exit(0 if r.status == 200 else 1)
PY
      say "/metadata answers ($base)"
      return 0
    fi
    sleep 0.5
  done
  tail -n 30 "$WORK_DIR/server.log" >&2 || true
  die "/metadata did not answer within ${seconds}s"
}

# Creates the records the suites need; their ids go to $OUT_DIR/vars.txt.
seed_server() {
  local base="$1"
  say "creating the suites' records through the server's API"
  python3 "$PEERS_DIR/seed.py" "$base" >"$OUT_DIR/vars.txt" || die "seeding failed"
  say "$(wc -l <"$OUT_DIR/vars.txt") variables in reports/peers/$PEER/vars.txt"
}

# Runs every built-in suite against the server with targets/$PEER.yaml, the seeded
# variables and, when it exists, the committed baseline (only regressions fail).
# FHIRCONF_PEERS_BLESS=1 runs without the baseline and writes this run as the new one.
# FHIRCONF_PEERS_SUITE=capability runs the generated capability suite instead (no
# baseline; it fails or passes nothing, the reports are the result).
# FHIRCONF_PEERS_VALIDATE=off|warn|error (opt-in, unset by default and in CI) builds
# fhirconf with the `validation` feature (a cold release build of the helios crates
# takes 15-20 minutes, docs/performance.md) and passes `--validate` with that mode, so
# every resource the server returns is validated against FHIR R4 (docs/peers.md,
# "FHIR validation"). Unset: the default build, no `--validate`, as before.
run_suites() {
  local base="$1" baseline="$OUT_DIR/baseline.json" code=0
  local -a cargo=(cargo run --release --quiet)
  local -a args=(run --color never --target "targets/$PEER.yaml" --base-url "$base"
    --junit "$OUT_DIR/junit.xml" --json "$OUT_DIR/run.json" --markdown "$OUT_DIR/summary.md")
  local validate="${FHIRCONF_PEERS_VALIDATE:-}"
  if [ -n "$validate" ]; then
    case "$validate" in
      off | warn | error) ;;
      *) die "FHIRCONF_PEERS_VALIDATE must be off, warn or error (got '$validate')" ;;
    esac
    # A baseline records verdicts of the default build; keep validation out of it.
    [ "${FHIRCONF_PEERS_BLESS:-}" = 1 ] \
      && die "FHIRCONF_PEERS_BLESS=1 with FHIRCONF_PEERS_VALIDATE: record baselines without validation"
    cargo+=(--features validation)
    args+=(--validate "$validate")
    say "FHIRCONF_PEERS_VALIDATE=$validate: fhirconf built with --features validation"
  fi
  local line
  while IFS= read -r line; do
    [ -n "$line" ] && args+=(--var "$line")
  done <"$OUT_DIR/vars.txt"
  if [ "${FHIRCONF_PEERS_SUITE:-}" = capability ]; then
    # The capability suite generated from the server's CapabilityStatement instead of
    # the built-in suites: no baseline, reports in reports/peers/$PEER/capability/
    # (docs/capability-suite.md has the results).
    local cap="$OUT_DIR/capability"
    mkdir -p "$cap"
    args=(run --color never --target "targets/$PEER.yaml" --base-url "$base" --suite capability
      --junit "$cap/junit.xml" --json "$cap/run.json" --markdown "$cap/summary.md")
    say "FHIRCONF_PEERS_SUITE=capability: fhirconf ${args[*]}"
    (cd "$REPO_DIR" && "${cargo[@]}" -- "${args[@]}") || code=$?
    say "reports in reports/peers/$PEER/capability/; fhirconf exited $code"
    return 0
  fi
  if [ "${FHIRCONF_PEERS_BLESS:-}" = 1 ]; then
    say "FHIRCONF_PEERS_BLESS=1: no baseline; this run becomes reports/peers/$PEER/baseline.json"
  elif [ -f "$baseline" ]; then
    args+=(--baseline "$baseline")
    say "baseline: reports/peers/$PEER/baseline.json (only regressions fail)"
  else
    say "no reports/peers/$PEER/baseline.json: every failure counts"
  fi
  say "fhirconf ${args[*]}"
  (cd "$REPO_DIR" && "${cargo[@]}" -- "${args[@]}") || code=$?
  if [ "${FHIRCONF_PEERS_BLESS:-}" = 1 ] && [ "$code" -le 1 ] && [ -f "$OUT_DIR/run.json" ]; then
    cp "$OUT_DIR/run.json" "$baseline"
    say "wrote reports/peers/$PEER/baseline.json"
    code=0
  fi
  say "reports in reports/peers/$PEER/ (junit.xml, run.json, summary.md); fhirconf exited $code"
  return "$code"
}
