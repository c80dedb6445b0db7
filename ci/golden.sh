#!/usr/bin/env bash
# The verdicts a restructuring must not change: for every built-in design,
# the mutation matrix (`stackproof mutants`: each mutant against each claim)
# and the verdict of each claim of `check --json` (figures left out: they
# move from run to run). `record` writes them to tests/golden/; `compare`
# runs them again and prints what moved (exit 1 when anything did; 2 when
# a check wrote no report, with its output).
#
#   bash ci/golden.sh record [design...]     # about 40 minutes for all five
#   bash ci/golden.sh compare [design...]
#
# Each platform has its own: STACKPROOF_PLATFORM=debian-12 records and
# compares tests/golden/debian-12/ (the default platform's otherwise).
# GOLDEN_VERDICTS_ONLY=1 leaves the mutation matrix out (a few minutes
# instead of forty: each step of a restructuring). STACKPROOF_BIN runs
# another build (an older commit's, to record what it gave); GOLDEN_DIR
# writes or reads another folder.
set -euo pipefail
cd "$(dirname "$0")/.."
mode=${1:-compare}
shift || true
designs=("$@")
[ ${#designs[@]} -gt 0 ] || designs=(simple_web simple_web_nginx distributed secured_monitored scale_up)
platform=${STACKPROOF_PLATFORM:-$(sed -n 's/^default = "\(.*\)"/\1/p' fixtures/images/server/platforms.toml)}
golden=${GOLDEN_DIR:-tests/golden/$platform}
mkdir -p "$golden"
if [ -n "${STACKPROOF_BIN:-}" ]; then
  bin=$STACKPROOF_BIN
else
  cargo build -q --bin stackproof
  # A copy: a rebuild while this runs must not change the binary under it.
  bin=$(mktemp)
  cp target/debug/stackproof "$bin"
  chmod +x "$bin"
fi
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"; [ -n "${STACKPROOF_BIN:-}" ] || rm -f "$bin"' EXIT

verdicts() { # report.json -> "id VERDICT" lines, sorted
  python3 -c 'import json,sys
for c in json.load(open(sys.argv[1]))["claims"]:
    print(c["id"], c["verdict"])' "$1" | sort
}

moved=0
for d in "${designs[@]}"; do
  "$bin" check "$d" --platform "$platform" --json "$tmp/$d.json" >"$tmp/$d.check.txt" 2>&1 || true
  if [ ! -s "$tmp/$d.json" ]; then
    # No report: the check itself broke. Its output says why (the folder
    # it is in goes when this script ends).
    cat "$tmp/$d.check.txt"
    echo "golden: check $d wrote no report (its output is above); nothing compared" >&2
    exit 2
  fi
  verdicts "$tmp/$d.json" >"$tmp/$d.verdicts.txt"
  files=(verdicts)
  if [ -z "${GOLDEN_VERDICTS_ONLY:-}" ]; then
    # The matrix's rows only: its header names the claims, the score line sums it.
    STACKPROOF_PLATFORM=$platform "$bin" mutants "$d" 2>&1 | grep -vE '^stackproof mutants|^mutation score' >"$tmp/$d.mutants.txt" || true
    files+=(mutants)
  fi
  for f in "${files[@]}"; do
    if [ "$mode" = record ]; then
      cp "$tmp/$d.$f.txt" "$golden/$d.$f.txt"
      echo "golden: recorded $golden/$d.$f.txt"
    elif ! diff -u "$golden/$d.$f.txt" "$tmp/$d.$f.txt"; then
      echo "golden: $d's $f moved (above: golden, then this run)"
      moved=1
    else
      echo "golden: $d's $f as recorded"
    fi
  done
done
exit $moved
