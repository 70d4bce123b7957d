#!/usr/bin/env bash
# Installs what Laterbase needs on Debian beside Swift: LMDB and ZeroMQ headers, pkg-config,
# curl for the demo, wrk for the benchmarks, openssl for the TLS tests' certificates, Python 3 with pyzmq for the foreign-client test,
# and what checks the deployment files: docker-compose (config only, no engine), promtool (prometheus),
# systemd-analyze (systemd), PyYAML; schemathesis (PyPI) fuzzes the HTTP API against its OpenAPI description;
# Chromium, its driver and Selenium (PyPI) test the console in a headless browser.
# Safe to run again.
set -euo pipefail
need=()
command -v python3 >/dev/null || need_python=1
for pkg in liblmdb-dev libzmq3-dev pkg-config curl wrk openssl python3-yaml docker-compose prometheus systemd chromium chromium-driver ${need_python:+python3 python3-pip}; do
  dpkg -s "$pkg" >/dev/null 2>&1 || need+=("$pkg")
done
if [ ${#need[@]} -gt 0 ]; then
  sudo=""
  [ "$(id -u)" -eq 0 ] || sudo="sudo"
  echo "installing: ${need[*]}"
  $sudo apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq "${need[@]}" >/dev/null
fi
# pyzmq from PyPI (a system Python may refuse a plain pip install: PEP 668).
if ! python3 -c 'import zmq' 2>/dev/null; then
  echo "installing: pyzmq (PyPI)"
  python3 -m pip install --quiet pyzmq 2>/dev/null || python3 -m pip install --quiet --break-system-packages pyzmq
fi
# Pinned: the tests use schemathesis 4's configuration file and checks, and Selenium 4's API.
if ! python3 -c 'import selenium, sys; sys.exit(not selenium.__version__.startswith("4."))' 2>/dev/null; then
  echo "installing: selenium 4 (PyPI)"
  python3 -m pip install --quiet 'selenium>=4.20,<5' 2>/dev/null || python3 -m pip install --quiet --break-system-packages 'selenium>=4.20,<5'
fi
# schemathesis and hypothesis exactly: hypothesis 6.170 (what a fresh install of schemathesis
# 4.32.5 picks in November 2026) crashes in its own lambda descriptions under two workers on
# Python 3.11 ("SystemError: AST constructor recursion depth mismatch"); 6.155.2 is the one tested.
if ! python3 -c 'import importlib.metadata as m, sys; sys.exit(not (m.version("schemathesis") == "4.32.5" and m.version("hypothesis") == "6.155.2"))' 2>/dev/null; then
  echo "installing: schemathesis 4.32.5 and hypothesis 6.155.2 (PyPI)"
  python3 -m pip install --quiet 'schemathesis==4.32.5' 'hypothesis==6.155.2' 2>/dev/null || python3 -m pip install --quiet --break-system-packages 'schemathesis==4.32.5' 'hypothesis==6.155.2'
fi
command -v swift >/dev/null || { echo "Swift 6.2 or later is needed: https://www.swift.org/install/linux/" >&2; exit 1; }
