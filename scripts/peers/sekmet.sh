#!/usr/bin/env bash
# Runs every built-in suite against SEKMET FHIR R4 Tester (PyPI sekmet-fhir, pinned),
# a third-party FastAPI + SQLite FHIR R4 server:
#   1. installs it in a virtualenv under ~/.cache/fhirconf/peers/ when missing;
#   2. starts it on a free loopback port with a throw-away database, bound to 127.0.0.1
#      and with its simulator off (by default it binds 0.0.0.0 and rewrites Appointments
#      a few seconds after they are written);
#   3. waits for /metadata, creates the records the suites need (seed.py);
#   4. runs the suites with targets/sekmet.yaml and reports/peers/sekmet/baseline.json;
#   5. stops the server by its PID, also on failure or interruption.
# Reports: reports/peers/sekmet/ (junit.xml, run.json, summary.md, server.log, vars.txt).
# Exit code: fhirconf's (0 unless a scenario regressed against the baseline).
# FHIRCONF_PEERS_BLESS=1 records this run as the new baseline instead.
set -euo pipefail
PEER=sekmet
SEKMET_VERSION=0.1.1
# shellcheck source=scripts/peers/lib.sh
source "$(dirname "$0")/lib.sh"
peer_init

venv="$PEERS_CACHE/sekmet-$SEKMET_VERSION"
if ! "$venv/bin/sekmet" --version 2>/dev/null | grep -qx "sekmet-fhir $SEKMET_VERSION"; then
  say "installing sekmet-fhir==$SEKMET_VERSION into $venv"
  rm -rf "$venv"
  mkdir -p "$PEERS_CACHE"
  python3 -m venv "$venv" || die "python3 -m venv failed (Debian: apt-get install python3-venv)"
  "$venv/bin/pip" install --quiet --disable-pip-version-check "sekmet-fhir==$SEKMET_VERSION" \
    || die "pip install sekmet-fhir==$SEKMET_VERSION failed"
fi
say "$("$venv/bin/sekmet" --version)"

port="$(free_port)"
base="http://127.0.0.1:$port/fhir"
mkdir -p "$WORK_DIR/data"
cat >"$WORK_DIR/settings.yaml" <<EOF
# Written by scripts/peers/sekmet.sh for one run; removed afterwards.
base_url: $base
host: 127.0.0.1
port: $port
data_dir: $WORK_DIR/data
own_private_key_path: $WORK_DIR/keys/sekmet_private.pem
simulator:
  enabled: false
server_auth:
  types: [none]
log_inbound: false
EOF

say "starting SEKMET on 127.0.0.1:$port"
(cd "$WORK_DIR" && exec "$venv/bin/sekmet" serve --config "$WORK_DIR/settings.yaml") \
  >"$WORK_DIR/server.log" 2>&1 &
SERVER_PID=$!
wait_for_metadata "$base" 60
seed_server "$base"
run_suites "$base"
