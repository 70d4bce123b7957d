#!/usr/bin/env bash
# Installs what Laterbase needs on Debian beside Swift: LMDB and ZeroMQ headers, pkg-config,
# curl for the demo, wrk for the benchmarks. Safe to run again.
set -euo pipefail
need=()
for pkg in liblmdb-dev libzmq3-dev pkg-config curl wrk; do
  dpkg -s "$pkg" >/dev/null 2>&1 || need+=("$pkg")
done
if [ ${#need[@]} -gt 0 ]; then
  sudo=""
  [ "$(id -u)" -eq 0 ] || sudo="sudo"
  echo "installing: ${need[*]}"
  $sudo apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq "${need[@]}" >/dev/null
fi
command -v swift >/dev/null || { echo "Swift 6.2 or later is needed: https://www.swift.org/install/linux/" >&2; exit 1; }
