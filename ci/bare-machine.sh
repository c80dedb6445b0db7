#!/usr/bin/env bash
# Makes this machine as bare as a fresh one for stackproof: removes the host
# tools earlier runs or sessions may have installed (mmdebstrap, and the
# tools tests used to need on the host: socat, tcpdump, xmllint, Chromium)
# and every stackproof image, so that README's test command proves it
# installs and builds all it needs by itself, with nothing prepared.
set -euo pipefail

log() { printf 'ci: %s\n' "$*"; }
as_root() { if [ "$(id -u)" -eq 0 ]; then "$@"; else sudo "$@"; fi; }

installed=()
for pkg in mmdebstrap socat tcpdump libxml2-utils chromium; do
  if dpkg-query -W -f='${Status}' "$pkg" 2>/dev/null | grep -q 'install ok installed'; then
    installed+=("$pkg")
  fi
done
if [ "${#installed[@]}" -gt 0 ]; then
  log "removing host packages a fresh machine does not have: ${installed[*]}"
  as_root env DEBIAN_FRONTEND=noninteractive apt-get remove -y -qq "${installed[@]}" >/dev/null
fi

# By reference, not by ID: the tools image is built FROM the server image,
# and an ID with dependent child images cannot be removed, even forced.
# Removing a reference untags; the last child's removal deletes the untagged
# parents with it. Children first, then whatever is left, in a few passes.
refs() { docker images --format '{{.Repository}}:{{.Tag}}' --filter 'reference=stackproof/*' | grep -v ':<none>$' || true; }
found=$(refs)
if [ -n "$found" ]; then
  log "removing $(wc -l <<<"$found") stackproof image(s): the tests build their own"
  for pass in 1 2 3; do
    left=$(refs)
    [ -z "$left" ] && break
    # tools (the child) before server (its parent)
    # shellcheck disable=SC2086
    docker rmi $(sort -r <<<"$left") >/dev/null 2>&1 || true
  done
  left=$(refs)
  if [ -n "$left" ]; then
    log "could not remove: $left"
    docker rmi $left
    exit 1
  fi
fi
log "bare: no mmdebstrap, no test tools on the host, no stackproof image"
