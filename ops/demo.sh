#!/usr/bin/env bash
# Sets up, builds and runs a Laterbase node with the supply-chain demo on 127.0.0.1:8080, walks
# through every endpoint with curl, shows an edge device going offline and syncing back
# (ops/device-demo.sh), and keeps serving until Ctrl-C (which stops it cleanly).
set -euo pipefail
cd "$(dirname "$0")/.."
ops/setup.sh
swift build -c release --product laterbase
bin=$(swift build -c release --show-bin-path)/laterbase
data=${LATERBASE_DATA:-./laterbase-data}
port=${LATERBASE_PORT:-8080}

"$bin" serve --data "$data" --http "127.0.0.1:$port" --root notes &
pid=$!
trap 'kill -TERM $pid 2>/dev/null; wait $pid' INT TERM
for _ in $(seq 1 100); do curl -sf "http://127.0.0.1:$port/healthz" >/dev/null && break; sleep 0.1; done

api="http://127.0.0.1:$port"
show() { echo; echo "\$ $*"; "$@"; echo; }
show curl -s "$api/node"
show curl -s -X POST "$api/e/shipments" -d '[
  {"aggregate":"SHP-1001","type":"shipment.created","data":{"origin":"AKL","destination":"CHC"}},
  {"aggregate":"SHP-1001","type":"shipment.departed","data":{"location":"AKL"}}]'
show curl -s -X POST "$api/e/inventory" -d '[
  {"aggregate":"SKU-1@AKL","type":"stock.received","data":{"qty":10},"time":"2026-11-20T09:00:00Z"},
  {"aggregate":"SKU-1@AKL","type":"stock.picked","data":{"qty":3},"time":"2026-11-20T11:00:00Z"}]'
echo "# A count made at 10:00 is recorded late: it lands where it happened."
show curl -s -X POST "$api/e/inventory" -d '{"aggregate":"SKU-1@AKL","type":"stock.counted","data":{"qty":20},"time":"2026-11-20T10:00:00Z"}'
show curl -s "$api/a/inventory/SKU-1@AKL"
show curl -s "$api/a/inventory/SKU-1@AKL?as_of=2026-11-20T10:30:00Z"
show curl -s "$api/a/shipments/SHP-1001"
show curl -s "$api/a/shipments?limit=10"
show curl -s "$api/e/shipments?vv=&limit=2"
echo "# The same feed by position: what this node stored after a token, in the order it stored it."
show curl -s "$api/e/shipments?since=&limit=2"
show curl -s -H 'Accept: application/x-ndjson' "$api/e/inventory"
echo "# Refusals are JSON with a code:"
show curl -s -X POST "$api/e/shipments" -d '{"aggregate":"SHP-1002","type":"shipment.created","data":{"origin":"AKL"}}'
echo "# Operations: storage statistics, and a backup taken while the node serves (README, Operations runbook):"
show curl -s "$api/stats"
show "$bin" backup --data "$data" --to "${TMPDIR:-/tmp}/laterbase-demo.lbk"
echo "# A device offline and back: ops/device-demo.sh, with two more processes on ports 8090/8091."
LATERBASE_BIN="$bin" ops/device-demo.sh
echo
echo "The console: $api/console (no token needed on this open node). Try Root → inventory → SKU-1@AKL."
echo "Laterbase is serving on $api (data in $data; ZeroMQ ingest tcp://127.0.0.1:5555, publish tcp://127.0.0.1:5556)."
echo "Ctrl-C stops it cleanly."
wait $pid
