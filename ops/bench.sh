#!/usr/bin/env bash
# Builds in release and runs the benchmark table (LMDB ceiling, store, HTTP, feed, aggregates).
set -euo pipefail
cd "$(dirname "$0")/.."
ops/setup.sh
swift build -c release --product laterbase-bench
"$(swift build -c release --show-bin-path)/laterbase-bench" "$@"
