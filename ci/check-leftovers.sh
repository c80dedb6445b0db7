#!/usr/bin/env bash
# Fails when any stackproof container or network is still there: after the
# tests, a leftover is a bug. That includes a swarm grading job's service
# and its tasks' containers (label stackproof.swarm), and a swarm the
# swarm suite made and did not leave.
set -euo pipefail
left=$(docker ps -aq --filter label=stackproof.run | wc -l)
nets=$(docker network ls -q --filter label=stackproof.run | wc -l)
tasks=$(docker ps -aq --filter label=stackproof.swarm | wc -l)
jobs=0
if [ "$(docker info --format '{{.Swarm.LocalNodeState}}')" = active ]; then
  jobs=$(docker service ls -q --filter label=stackproof.swarm | wc -l)
fi
if [ "$left" -ne 0 ] || [ "$nets" -ne 0 ] || [ "$tasks" -ne 0 ] || [ "$jobs" -ne 0 ]; then
  echo "ci: the tests left $left container(s), $nets network(s), $jobs swarm job(s) and $tasks swarm task container(s) behind"
  docker ps -a --filter label=stackproof.run
  docker ps -a --filter label=stackproof.swarm
  exit 1
fi
echo "ci: nothing left behind"
