#!/usr/bin/env bash
# Prepares a machine for stackproof: an engine that answers, the images built
# (stackproof installs mmdebstrap itself when it must build the image from
# Debian's packages).
# Optional (the tests need none of it): warms a machine so the first suite
# does not build the image. Usable on any Debian-like machine with Docker.
set -euo pipefail

export PATH="$PATH:${CARGO_HOME:-$HOME/.cargo}/bin"

# 1. A Docker engine that answers.
bash "$(dirname "$0")/engine.sh"

# 2. No registry is reachable: when the engine has no Debian image, stackproof
#    builds the server image in one mmdebstrap pass and installs mmdebstrap
#    itself (as root), exactly as it does for a user running README's first
#    command.

# The tests need no tool on the host: xmllint and Chromium run in a tools
# image the suites build on the server image, tcpdump from the server image,
# and the remote-engine relay is a thread of the test.

# 3. Leftovers of earlier killed runs would only cost memory: remove them.
cargo run -q --bin stackproof -- sweep

# 4. Build the images once, with progress, so the suites' timings are warm.
cargo run -q --bin stackproof -- images --prune

