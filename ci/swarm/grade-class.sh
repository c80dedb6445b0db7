#!/usr/bin/env bash
# A class graded on a Docker swarm: one replicated-job of SHARDS tasks,
# each grading its slice of the submissions (`grade --shard I/N`, I from
# the task's slot) against its own node's engine through the engine's
# socket, at most one task per node at a time (timed verdicts need the
# node's cores), then one `merge` of the shards' class.json into one class
# page, CSV table and JUnit file. Run it on a manager node:
#
#   bash ci/swarm/grade-class.sh DESIGN CLASS_DIR RESULTS_DIR SHARDS [grade options]
#   bash ci/swarm/grade-class.sh secured_monitored /srv/class /srv/results 4 --html
#
# CLASS_DIR holds one folder per student; RESULTS_DIR gets shard-<slot>/
# from each task and merged/ from the merge. Both are bind mounts: on a
# swarm of several machines, give every node the same paths (an NFS
# share), or copy each node's RESULTS_DIR/shard-* to the manager before
# the merge (the script merges what it finds here).
#
# Every node needs the grader image `stackproof/grader` (the stackproof
# binary on the server image; ci/kubernetes/Dockerfile says how to build
# it) and the server image (`stackproof images --save DIR` on one machine,
# `stackproof images --load DIR` on each, or let each build it: about a
# minute). No registry is needed: tasks use the node's local image
# (`--no-resolve-image`).
#
# A swarm of one machine: `docker swarm init --advertise-addr 127.0.0.1`.
# More machines: `docker swarm join-token worker` on the manager prints the
# `docker swarm join --token ... <manager>:2377` to run on each other one;
# `docker node ls` lists them. Leave with `docker swarm leave --force`.
#
# Exits as `merge` does for a class: 0 every submission graded (whatever
# its verdicts), 1 one could not be because of what it holds, 2 stackproof
# itself failed on one (or a task never ran).
set -euo pipefail
if [ $# -lt 4 ]; then
  sed -n '2,12p' "$0" >&2
  exit 2
fi
design=$1 class=$(realpath "$2") results=$3 shards=$4
shift 4
mkdir -p "$results"
results=$(realpath "$results")
image=${STACKPROOF_GRADER_IMAGE:-stackproof/grader}
if [ "$(docker info --format '{{.Swarm.ControlAvailable}}')" != true ]; then
  echo "grade-class: this engine is no swarm manager: run it on one (docker swarm init --advertise-addr 127.0.0.1 makes this machine one)" >&2
  exit 2
fi
if ! docker image inspect "$image" >/dev/null 2>&1; then
  echo "grade-class: no image $image on this node: build it as ci/kubernetes/Dockerfile says" >&2
  exit 2
fi
nodes=$(docker node ls -q --filter role=worker | wc -l)
nodes=$((nodes + $(docker node ls -q --filter role=manager | wc -l)))
id=$(date +%s)-$$
name=stackproof-grade-$id
# Quoted for the task's shell: the grade options as given here.
opts=""
[ $# -eq 0 ] || opts=$(printf ' %q' "$@")
# Swarm expands templates only in --env, --hostname and --mount, and its
# slot 0 comes out as the node's ID on Docker 20.10: any slot that is not
# a number is slot 0. grade's exit 1 (a submission that could not be
# graded, its row says why) is the shard's result, not the task's failure:
# a failed task would stop the job; exit 2 (stackproof itself failed) is,
# and swarm retries it.
# shellcheck disable=SC2016
task='case "$SLOT" in ""|*[!0-9]*) SLOT=0 ;; esac
stackproof grade "$DESIGN" /class/* --shard "$((SLOT + 1))/$SHARDS" --out "/results/shard-$SLOT"'"$opts"' && exit 0
status=$?; [ "$status" -eq 1 ] && exit 0; exit "$status"'
# The service, then its task containers, which swarm removes after it.
cleanup() {
  docker service rm "$name" >/dev/null 2>&1 || true
  for _ in $(seq 30); do
    [ -z "$(docker ps -aq --filter label=stackproof.swarm="$id")" ] && return
    sleep 1
  done
  docker ps -aq --filter label=stackproof.swarm="$id" | xargs -r docker rm -f >/dev/null
}
trap cleanup EXIT
echo "grade-class: $name, $shards task(s) on $nodes node(s), one at a time per node"
docker service create --detach --quiet --name "$name" \
  --mode replicated-job --replicas "$shards" \
  --max-concurrent "$nodes" --replicas-max-per-node 1 \
  --restart-condition on-failure --restart-max-attempts 2 \
  --label stackproof.swarm="$id" --container-label stackproof.swarm="$id" \
  --network host \
  --mount type=bind,src=/var/run/docker.sock,dst=/var/run/docker.sock \
  --mount type=bind,src="$class",dst=/class,readonly \
  --mount type=bind,src="$results",dst=/results \
  --env 'SLOT={{.Task.Slot}}' --env SHARDS="$shards" --env DESIGN="$design" \
  --no-resolve-image --entrypoint sh "$image" -c "$task" >/dev/null
# Until every shard is complete, or nothing more will run (a task that
# failed past its retries stops the job).
idle=0 deadline=$((SECONDS + ${GRADE_CLASS_TIMEOUT:-7200}))
while :; do
  if [ "$SECONDS" -ge "$deadline" ]; then
    echo "grade-class: the job did not end within ${GRADE_CLASS_TIMEOUT:-7200} s (GRADE_CLASS_TIMEOUT)" >&2
    break
  fi
  states=$(docker service ps "$name" --format '{{.CurrentState}}' 2>/dev/null || true)
  complete=$(grep -c '^Complete' <<<"$states" || true)
  active=$(grep -cE '^(New|Pending|Assigned|Accepted|Preparing|Ready|Starting|Running)' <<<"$states" || true)
  [ "$complete" -ge "$shards" ] && break
  if [ "$active" -eq 0 ]; then
    idle=$((idle + 1))
    [ "$idle" -ge 5 ] && break
  else
    idle=0
  fi
  sleep 2
done
docker service ps "$name" --format '  {{.Name}} on {{.Node}}: {{.CurrentState}} {{.Error}}'
docker service logs --raw "$name" >"$results/tasks.log" 2>&1 || true
shopt -s nullglob
found=("$results"/shard-*/class.json)
if [ ${#found[@]} -lt "$shards" ]; then
  echo "grade-class: ${#found[@]} of $shards shard(s) wrote class.json (their tasks' output: $results/tasks.log)" >&2
  exit 2
fi
mkdir -p "$results/merged"
# shellcheck disable=SC2016
docker run --rm --network none --label stackproof.swarm="$id" \
  -v "$results:/results" --entrypoint sh "$image" -c \
  'stackproof merge /results/shard-*/class.json --html /results/merged/class.html --csv /results/merged/summary.csv --junit /results/merged/junit.xml --markdown /results/merged/summary.md' 
