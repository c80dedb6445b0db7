#!/usr/bin/env bash
# The fuzz targets at length, with the code they reach measured: the library's
# unit tests are built once with LLVM's coverage instrumentation, then each
# target (the mappers of users' files; the loader of design folders) runs for
# 4, 8, 16 ... MAX seconds (1024 unless given), each run on its own from the
# same deterministic cases, and prints the regions and functions of its own
# code it reached (test code left out). When two doublings of the time in a
# row each reach fewer new regions than a quarter of a percent of the
# target's code, the target has plateaued (a random search's coverage grows
# with the logarithm of its time, then flattens); the functions never
# entered are listed.
#
#   bash ci/fuzz.sh            # up to about 40 minutes on 2 cores
#   MAX=16 bash ci/fuzz.sh     # a quick look
#
# Exits 1 when a target panicked on a case (the test prints the case), 3
# when the last doublings still reached new code (no plateau). Needs
# rustup's llvm-tools (added here) and python3.
set -euo pipefail
cd "$(dirname "$0")/.."
max="${MAX:-1024}"
out=target/fuzz
mkdir -p "$out"
rm -f "$out"/*.profraw

host=$(rustc -vV | sed -n 's/^host: //p')
tools="$(rustc --print sysroot)/lib/rustlib/$host/bin"
[ -x "$tools/llvm-cov" ] || rustup component add llvm-tools >/dev/null
[ -x "$tools/llvm-cov" ] || { echo "llvm-cov not found in $tools: run 'rustup component add llvm-tools'" >&2; exit 2; }

# Only this crate is instrumented: its dependencies stay as `cargo test`
# built them, and the instrumented binary gets a name of its own.
bin=$(cargo rustc --quiet -p stackproof --lib --profile test --message-format=json \
        -- -C instrument-coverage |
      sed -n 's/.*"executable":"\([^"]*\)".*/\1/p' | tail -1)
cp "$bin" "$out/lib-tests-instrumented"

# (test, the files whose code it targets; "!" leaves one out: an install
# script is run by bash in a container, not parsed by us)
targets=(
  "config::fuzz::no_users_file_makes_a_mapper_panic|harness/src/config/ !harness/src/config/script.rs"
  "config::fuzz::no_design_folder_makes_the_loader_panic|harness/src/design.rs harness/src/spec.rs harness/src/mutant.rs harness/src/fixtures.rs"
)

status=0
for target in "${targets[@]}"; do
  test="${target%%|*}"
  files="${target#*|}"
  echo "== ${test##*::} (code in: $files)"
  previous=""
  still=0
  seconds=4
  while [ "$seconds" -le "$max" ]; do
    rm -f "$out"/*.profraw
    if ! STACKPROOF_FUZZ_SECONDS=$seconds LLVM_PROFILE_FILE="$PWD/$out/%p.profraw" \
        "$out/lib-tests-instrumented" "$test" --exact --nocapture >"$out/run.txt" 2>&1; then
      cat "$out/run.txt"
      exit 1
    fi
    "$tools/llvm-profdata" merge -sparse "$out"/*.profraw -o "$out/fuzz.profdata"
    "$tools/llvm-cov" export "$out/lib-tests-instrumented" -instr-profile="$out/fuzz.profdata" \
      -skip-expansions >"$out/coverage.json"
    cases=$(grep -Eo '^[0-9]+ (users|design)' "$out/run.txt" | grep -Eo '^[0-9]+')
    reached=$(python3 ci/fuzz_coverage.py "$out/coverage.json" "$out/missed.txt" $files)
    echo "   ${seconds} s: ${cases} cases, ${reached}"
    current="${reached%%/*}"
    total="${reached#*/}"; total="${total%% *}"
    if [ -n "$previous" ] && [ $(( (current - previous) * 400 )) -lt "$total" ]; then
      still=$((still + 1))
      if [ "$still" -eq 2 ]; then
        echo "   plateau: from $((seconds / 4)) s to ${seconds} s, each doubling reached under 0.25% more of the code"
        break
      fi
    else
      still=0
    fi
    previous="$current"
    seconds=$((seconds * 2))
  done
  if [ "$seconds" -gt "$max" ]; then
    echo "   no plateau within $max s"
    status=3
  fi
  echo "   never reached (file:line of each function, region count):"
  sed 's/^/     /' "$out/missed.txt"
done
exit $status
