#!/usr/bin/env bash
# Fails when any stackproof container or network is still there: after the
# tests, a leftover is a bug.
set -euo pipefail
left=$(docker ps -aq --filter label=stackproof.run | wc -l)
nets=$(docker network ls -q --filter label=stackproof.run | wc -l)
if [ "$left" -ne 0 ] || [ "$nets" -ne 0 ]; then
  echo "ci: the tests left $left container(s) and $nets network(s) behind"
  docker ps -a --filter label=stackproof.run
  exit 1
fi
echo "ci: nothing left behind"
