#!/usr/bin/env bash
# A Docker engine that answers: start it if it is installed but stopped.
# The one thing stackproof's tests need from a machine besides Rust.
set -euo pipefail

log() { printf 'ci: %s\n' "$*"; }
as_root() { if [ "$(id -u)" -eq 0 ]; then "$@"; else sudo "$@"; fi; }

if ! timeout 10 docker info >/dev/null 2>&1; then
  log "the Docker engine does not answer; starting it"
  if command -v systemctl >/dev/null 2>&1 && as_root systemctl start docker 2>/dev/null; then
    :
  elif command -v service >/dev/null 2>&1 && as_root service docker start 2>/dev/null; then
    :
  elif command -v dockerd >/dev/null 2>&1; then
    as_root sh -c 'nohup dockerd >/var/log/dockerd-ci.log 2>&1 &'
  else
    log "no Docker engine is installed: install docker.io (apt-get install docker.io) and run again"
    exit 1
  fi
  for _ in $(seq 1 60); do timeout 5 docker info >/dev/null 2>&1 && break; sleep 1; done
  timeout 10 docker info >/dev/null 2>&1 || { log "the Docker engine did not come up within 60 s"; exit 1; }
fi
log "docker engine $(docker version --format '{{.Server.Version}}' 2>/dev/null) answers"
