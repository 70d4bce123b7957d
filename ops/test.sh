#!/usr/bin/env bash
# Sets up and runs every test: real LMDB in temporary folders, real HTTP servers on 127.0.0.1,
# real `laterbase` processes killed and restarted.
set -euo pipefail
cd "$(dirname "$0")/.."
ops/setup.sh
swift build --build-tests
swift test
# A short smoke of every libFuzzer target (ops/fuzz.sh SECONDS for a real run).
ops/fuzz.sh 5
