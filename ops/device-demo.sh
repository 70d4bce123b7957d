#!/usr/bin/env bash
# An edge device going offline and coming back, with two real processes on loopback:
#   hq     a node on 127.0.0.1:8090 (ZeroMQ ingest 5565, publish 5566)
#   truck  a device on 127.0.0.1:8091 that names hq as its peer (--peer); hq needs no word of it
# The truck records while hq is down, hq comes back, and both end with the same head and the same
# aggregates. Run after a build (ops/demo.sh runs it); LATERBASE_BIN overrides the binary.
set -euo pipefail
cd "$(dirname "$0")/.."
bin=${LATERBASE_BIN:-$(swift build -c release --show-bin-path)/laterbase}
tmp=$(mktemp -d)
pids=()
cleanup() { for p in "${pids[@]}"; do kill -TERM "$p" 2>/dev/null || true; done; wait 2>/dev/null || true; rm -rf "$tmp"; }
trap cleanup EXIT

hq="http://127.0.0.1:8090"
truck="http://127.0.0.1:8091"
start_hq() {
  "$bin" serve --data "$tmp/hq" --replica-id hq --http 127.0.0.1:8090 \
    --ingest tcp://127.0.0.1:5565 --publish tcp://127.0.0.1:5566 --log-level warning &
  hq_pid=$!; pids+=("$hq_pid")
  for _ in $(seq 1 100); do curl -sf "$hq/healthz" >/dev/null && return; sleep 0.1; done
}
head_of() { curl -s "$1/e/shipments?limit=0" | sed -E 's/.*"head":"([^"]*)".*/\1/'; }
wait_same_head() {
  for _ in $(seq 1 100); do [ "$(head_of $hq)" = "$(head_of $truck)" ] && return; sleep 0.1; done
  echo "heads differ: hq $(head_of $hq), truck $(head_of $truck)" >&2; exit 1
}
say() { echo; echo "# $*"; }
show() { echo "\$ $*"; "$@"; echo; }

start_hq
"$bin" serve --data "$tmp/truck" --replica-id truck-7 --http 127.0.0.1:8091 \
  --ingest tcp://127.0.0.1:5567 --publish tcp://127.0.0.1:5568 --peer "$hq" --log-level warning &
pids+=($!)
for _ in $(seq 1 100); do curl -sf "$truck/healthz" >/dev/null && break; sleep 0.1; done

say "hq books a shipment; the truck, which names hq as its peer, receives it."
show curl -s -X POST "$hq/e/shipments" -d '{"aggregate":"SHP-7","type":"shipment.created","data":{"origin":"AKL","destination":"WLG"}}'
wait_same_head
show curl -s "$truck/a/shipments/SHP-7"

say "A dashboard follows hq by position: what hq stored, and the token to ask from next time."
show curl -s "$hq/e/shipments?since="
dashboard=$(curl -s "$hq/e/shipments?since=" | sed -E 's/.*"next":"([^"]*)".*/\1/')

say "The truck loses its network: hq is unreachable (here: stopped)."
kill -TERM "$hq_pid"; wait "$hq_pid" 2>/dev/null || true
sleep 3  # the truck's next probes find hq gone
say "The truck keeps recording, durable on the device. The driver back-dates the departure to 06:00."
show curl -s -X POST "$truck/e/shipments" -d '[
  {"aggregate":"SHP-7","type":"shipment.departed","data":{"location":"AKL"},"time":"2026-11-27T06:00:00Z"},
  {"aggregate":"SHP-7","type":"shipment.arrived","data":{"location":"WLG"}}]'
show curl -s "$truck/node"

say "The network is back. The truck pushes what hq lacks and catches up on what it missed."
start_hq
wait_same_head
echo "hq head:    $(head_of $hq)"
echo "truck head: $(head_of $truck)"
say "The truck follows hq by hq's position (kept in its data folder across the outage): its /node shows the token it holds and the roots in sync."
for _ in $(seq 1 50); do curl -s "$truck/node" | grep -qE '"in_sync":\[[^]]*"shipments"' && break; sleep 0.1; done
curl -s "$truck/node" | sed -E 's/.*("positions":\{[^}]*\}),("in_sync":\[[^]]*\]).*/\1 \2/'; echo
show curl -s "$hq/a/shipments/SHP-7"
show curl -s "$hq/a/shipments/SHP-7?as_of=2026-11-27T07:00:00Z"

say "The dashboard asks hq for what it stored since its token: the truck's two events, in the order hq stored them."
show curl -s "$hq/e/shipments?since=$dashboard"
[ "$(curl -s "$hq/a/shipments/SHP-7")" = "$(curl -s "$truck/a/shipments/SHP-7")" ] && echo "# Same aggregate on both."
