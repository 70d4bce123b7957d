#!/usr/bin/env bash
# Sets up and runs every test: real LMDB in temporary folders, real HTTP servers on 127.0.0.1,
# real `laterbase` processes killed and restarted.
set -euo pipefail
cd "$(dirname "$0")/.."
ops/setup.sh
swift build --build-tests
# In parallel (Swift Testing's default), then alone the suites whose assertions are about time
# under load: the front door's "/healthz within a second" beside 2,000 hostile connections, a
# browser's console, the kill -9 soak. They measure the node, not the neighbours a parallel run
# puts beside it on two cores. Nothing in the tests or the node blocks the cooperative pool (the
# helpers that wait on sockets or processes do it on threads of their own), which is what made
# the suite run one test at a time before.
alone='LaterbaseServerTests\.(FrontDoorTests|ConsoleTests|SoakTests)/'
swift test --skip-build --skip "$alone"
swift test --skip-build --no-parallel --filter "$alone"
# The front door from outside, against the built binary as a client would meet it (the floods,
# with a release build: ops/flood.sh all).
python3 ops/front_door_check.py --bin "$(swift build --show-bin-path)/laterbase"
# A short smoke of every libFuzzer target (ops/fuzz.sh SECONDS for a real run).
ops/fuzz.sh 5
