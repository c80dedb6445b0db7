#!/usr/bin/env bash
# The soak: every built-in design's check, RUNS times in a row (20 unless
# given), each on a fresh stack, on an otherwise quiet machine. Prints,
# per design, each claim's "held N/RUNS" and each figure's min, p50, p95 and
# max (stackproof bench). A claim that did not hold RUNS of RUNS is a bug to
# find (the probe, the budget, the wait), not a retry to add.
#
#   bash ci/soak.sh            # about 45 minutes on 2 cores
#   RUNS=5 bash ci/soak.sh     # a quicker look
#
# Exits 1 when a claim did not always hold. The whole output goes to
# target/soak/<design>.txt too.
set -uo pipefail
cd "$(dirname "$0")/.."
runs="${RUNS:-20}"
mkdir -p target/soak
# The fixtures compiled into the binary: editing fixtures/ meanwhile changes nothing.
export STACKPROOF_EMBEDDED=1
cargo build --quiet --bin stackproof || exit 2
status=0
for design in simple_web simple_web_nginx distributed secured_monitored scale_up; do
  echo "== $design: $runs runs"
  target/debug/stackproof bench "$design" --runs "$runs" </dev/null | tee "target/soak/$design.txt"
  [ "${PIPESTATUS[0]}" -eq 0 ] || status=1
done
echo "== did not always hold:"
grep -h "did not always hold" target/soak/*.txt || echo "   none: every claim of every design held $runs of $runs"
exit $status
