#!/usr/bin/env bash
# kill -9 soak: CYCLES (default 100) kills of a node at random moments under mixed load (HTTP
# clients, a ZeroMQ device, a peer replicating both ways); after each restart every acknowledged
# event must be there exactly once. SEED repeats a run. Prints the figures the README quotes.
#   ops/soak.sh [CYCLES] [SEED]
set -euo pipefail
cd "$(dirname "$0")/.."
cycles="${1:-100}"
swift build --build-tests
env LATERBASE_SOAK_CYCLES="$cycles" ${2:+LATERBASE_SOAK_SEED="$2"} \
    swift test --skip-build --filter SoakTests 2>&1 | grep -E "^soak:|✘|✔ Test run|Expectation failed"
