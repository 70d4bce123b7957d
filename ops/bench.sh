#!/usr/bin/env bash
# Builds in release and runs the benchmark table (LMDB ceiling, store, HTTP, feed, aggregates).
# --peers: also Redis Streams and PostgreSQL on the same disk, installed here if missing.
# --memory N: only the heap of a laterbase process taking N events over ZeroMQ.
# --positions N: only positions: a root of N origins against one of a single origin (POST answer
#   and latency, a quiet feed request by token; peer links: catch-up by vv and by position, a new
#   event's arrival, idle bytes per minute).
set -euo pipefail
cd "$(dirname "$0")/.."
ops/setup.sh
if [[ " $* " == *" --peers "* ]]; then
  # Redis and PostgreSQL, measured beside Laterbase on the same disk.
  sudo=""; [ "$(id -u)" -eq 0 ] || sudo="sudo"
  need=()
  for pkg in redis-server redis-tools postgresql; do dpkg -s "$pkg" >/dev/null 2>&1 || need+=("$pkg"); done
  if [ ${#need[@]} -gt 0 ]; then
    $sudo apt-get update -qq
    DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq "${need[@]}" >/dev/null
  fi
  # Debian starts the packaged services; the benchmark runs its own on free ports.
  for svc in redis-server postgresql; do $sudo systemctl stop "$svc" 2>/dev/null || $sudo service "$svc" stop 2>/dev/null || true; done
fi
swift build -c release --product laterbase-bench
swift build -c release --product laterbase  # --memory runs it as a separate process
"$(swift build -c release --show-bin-path)/laterbase-bench" "$@"
