#!/usr/bin/env bash
# Sets up and runs every test: real LMDB in temporary folders, real HTTP servers on 127.0.0.1,
# real `laterbase` processes killed and restarted.
set -euo pipefail
cd "$(dirname "$0")/.."
ops/setup.sh
swift build --build-tests
# One test at a time (about 2 minutes, against 45 s in parallel): the in-process servers share
# Swift's cooperative pool (a thread per core) with the tests, and tests that wait on sockets or
# processes in parallel starved them for seconds, so assertions with a time in them (a linger, a
# /healthz bound) failed on a loaded machine.
swift test --no-parallel
# The front door from outside, against the built binary as a client would meet it (the floods,
# with a release build: ops/flood.sh all).
python3 ops/front_door_check.py --bin "$(swift build --show-bin-path)/laterbase"
# A short smoke of every libFuzzer target (ops/fuzz.sh SECONDS for a real run).
ops/fuzz.sh 5
