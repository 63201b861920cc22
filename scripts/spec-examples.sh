#!/usr/bin/env bash
# The FHIR R4 specification's own examples through `fhirconf validate`: how the
# validator judges 5,000-odd resources HL7 publishes as valid. Not part of CI (it
# downloads 19 MB once and takes about two minutes with a release build).
#
#   scripts/spec-examples.sh [--max-kb N]
#
# Downloads the npm package hl7.fhir.r4.examples 4.0.1 (CC0-1.0, HL7's R4 examples)
# into ~/.cache/fhirconf/spec-examples/ when missing, validates every example JSON file
# smaller than N KB (default 1000: the definition Bundles above that take minutes each),
# and prints fhirconf's issues and summary; docs/validation.md says what they mean.
set -euo pipefail
cd "$(dirname "$0")/.."
max_kb=1000
while [ $# -gt 0 ]; do
  case "$1" in
    --max-kb) max_kb=$2; shift ;;
    -h|--help) sed -n '2,12p' "$0" | sed 's/^# \{0,1\}//'; exit 0 ;;
    *) echo "spec-examples.sh: unknown argument $1 (see --help)" >&2; exit 2 ;;
  esac
  shift
done
cache="${XDG_CACHE_HOME:-$HOME/.cache}/fhirconf/spec-examples"
package="$cache/package"
if [ ! -f "$package/package.json" ]; then
  mkdir -p "$cache"
  (cd "$cache" && npm pack --silent hl7.fhir.r4.examples@4.0.1 >/dev/null && tar xzf hl7.fhir.r4.examples-4.0.1.tgz)
fi
cargo build --release --quiet --features validation
target_dir=${CARGO_TARGET_DIR:-target}
case "$target_dir" in /*) ;; *) target_dir="$(pwd)/$target_dir" ;; esac
fhirconf="$target_dir/release/fhirconf"
cd "$package"
list=$(mktemp)
trap 'rm -f "$list"' EXIT
find . -maxdepth 1 -name '*.json' -size "-${max_kb}k" \
  ! -name package.json ! -name .index.json | sed 's|^\./||' | sort > "$list"
echo "spec-examples: $(wc -l < "$list") files under $max_kb KB from hl7.fhir.r4.examples 4.0.1" >&2
# One process for all (one summary line): the names are short, relative to package/.
# xargs says 123 when fhirconf exits 1 (some example has an error): that is the
# finding, not a failure here.
xargs -s 1048576 -a "$list" "$fhirconf" validate || { code=$?; [ "$code" -eq 123 ]; }
