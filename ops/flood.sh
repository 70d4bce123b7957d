#!/usr/bin/env bash
# Worst-case memory of a node under a flood: starts a release `laterbase` in a temporary folder,
# floods it from CONNECTIONS (default 500) ZeroMQ senders and then as many HTTP connections, each
# sending batches as large as the body limit allows, and prints the node's peak VmRSS and RssAnon.
# PHASE is zmq, http, both (default: each on a node of its own), or the floods that cost nothing
# but a socket: silent (ingest connections that never greet), multipart (ZMTP frames marked
# "more", never the last), idle-http (idle and half-sent HTTP connections); "all" runs all six.
# Extra arguments go to the node, e.g. --ingest-memory-mib 512.
#   ops/flood.sh [CONNECTIONS] [SECONDS] [PHASE] [-- NODE OPTIONS…]
set -euo pipefail
cd "$(dirname "$0")/.."
connections="${1:-500}"; seconds="${2:-20}"; phases="${3:-zmq http}"
shift $(( $# > 3 ? 3 : $# )); [ "${1:-}" = "--" ] && shift
[ "$phases" = both ] && phases="zmq http"
[ "$phases" = all ] && phases="zmq http silent multipart idle-http"
# LATERBASE_BIN: a binary built already (another commit's, to compare); else a release build.
if [ -n "${LATERBASE_BIN:-}" ]; then
  bin="$LATERBASE_BIN"
else
  ops/setup.sh
  swift build -c release --product laterbase
  bin="$(swift build -c release --show-bin-path)/laterbase"
fi
ulimit -n 65536 2>/dev/null || true
for phase in $phases; do
  dir="$(mktemp -d "${TMPDIR:-/tmp}/laterbase-flood.XXXXXX")"
  port=$((20000 + RANDOM % 20000))
  "$bin" serve --data "$dir" --root notes --http "127.0.0.1:$port" --ingest "tcp://127.0.0.1:$((port + 1))" \
      --publish none --log-level error "$@" &
  node=$!
  trap 'kill -TERM $node 2>/dev/null; wait $node 2>/dev/null; rm -rf "$dir"' EXIT
  for _ in $(seq 100); do curl -sf "http://127.0.0.1:$port/healthz" >/dev/null && break; sleep 0.1; done
  python3 ops/flood.py --pid "$node" --http "http://127.0.0.1:$port" --connections "$connections" --seconds "$seconds" --phase "$phase"
  kill -TERM $node; wait $node || true
  rm -rf "$dir"
done
trap - EXIT
