#!/usr/bin/env bash
# Clone to first verdict, as a new user meets it: a fresh clone of this
# repository compiled from nothing (its own target folder), every
# `stackproof/*` image removed, then the image built and `check scale_up`
# run. Prints compile, image and first-verdict times separately (the
# README's `cargo run -- check scale_up` does all three in one go).
#
#   bash ci/cold.sh    # about 5 minutes on 2 cores; needs a quiet machine
#
# Crates already in ~/.cargo are not downloaded again: on a machine that
# never built Rust, add the download (about 20 s here).
set -euo pipefail
repo="$(cd "$(dirname "$0")/.." && pwd)"
work="$(mktemp -d)"
trap 'rm -rf "$work"' EXIT
git clone --quiet "$repo" "$work/stackproof"
cd "$work/stackproof"
secs() { date +%s.%N; }
t0=$(secs)
cargo build --quiet --bin stackproof
t1=$(secs)
ids=$(docker images --quiet --filter 'reference=stackproof/*')
[ -z "$ids" ] || docker rmi --force $ids >/dev/null
t2=$(secs)
target/debug/stackproof images </dev/null
t3=$(secs)
target/debug/stackproof check scale_up </dev/null | tail -3
t4=$(secs)
awk -v a="$t0" -v b="$t1" -v c="$t2" -v d="$t3" -v e="$t4" 'BEGIN {
  printf "compile %.0f s, image %.0f s, first verdict (check scale_up) %.0f s: clone to first verdict %.0f s (%.1f min)\n",
    b - a, d - c, e - d, (b - a) + (e - c), ((b - a) + (e - c)) / 60 }'
