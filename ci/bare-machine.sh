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

images=$(docker images -q --filter 'reference=stackproof/*' | sort -u)
if [ -n "$images" ]; then
  log "removing $(wc -l <<<"$images") stackproof image(s): the tests build their own"
  # shellcheck disable=SC2086
  docker rmi -f $images >/dev/null
fi
log "bare: no mmdebstrap, no test tools on the host, no stackproof image"
