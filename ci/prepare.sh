#!/usr/bin/env bash
# Prepares a machine for stackproof: an engine that answers, the images built
# (stackproof installs mmdebstrap itself when it must build the image from
# Debian's packages).
# Used by .ci/run; usable on any Debian-like machine with Docker installed.
set -euo pipefail

export PATH="$PATH:${CARGO_HOME:-$HOME/.cargo}/bin"

log() { printf 'ci: %s\n' "$*"; }
as_root() { if [ "$(id -u)" -eq 0 ]; then "$@"; else sudo "$@"; fi; }

# 1. A Docker engine that answers. Start it if it is installed but stopped.
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

# 2. No registry is reachable: when the engine has no Debian image, stackproof
#    builds the server image in one mmdebstrap pass and installs mmdebstrap
#    itself (as root), exactly as it does for a user running README's first
#    command.

# 2b. xmllint validates the JUnit reports against the schema CI systems read
#     (the harness test installs it itself too, when it may).
if ! command -v xmllint >/dev/null 2>&1; then
  log "installing libxml2-utils (xmllint) for the JUnit schema test"
  as_root env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq libxml2-utils >/dev/null 2>&1 \
    || { as_root apt-get update -qq >/dev/null 2>&1 && as_root env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq libxml2-utils >/dev/null; }
fi

# 2c. Chromium renders the HTML report in a test, as a person would see it.
if ! command -v chromium >/dev/null 2>&1; then
  log "installing chromium for the HTML report's rendering test (about a minute)"
  as_root apt-get update -qq >/dev/null 2>&1 || true
  as_root env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends chromium fonts-dejavu-core >/dev/null
fi

# 2d. socat serves the engine's socket over TCP and tcpdump captures the
#     run's networks, for the remote-engine test (it installs them too).
for tool in socat tcpdump; do
  if ! command -v "$tool" >/dev/null 2>&1; then
    log "installing $tool for the remote-engine test"
    as_root env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "$tool" >/dev/null 2>&1 \
      || { as_root apt-get update -qq >/dev/null 2>&1 && as_root env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "$tool" >/dev/null; }
  fi
done

# 3. Leftovers of earlier killed runs would only cost memory: remove them.
cargo run -q --bin stackproof -- sweep

# 4. Build the images once, with progress, so the suites' timings are warm.
cargo run -q --bin stackproof -- images --prune

