#!/usr/bin/env bash
# The writer's instructions per event, counted by valgrind (stable on a noisy machine, unlike
# timings): laterbase-profile prepares batches of 1000 events, then its Writer writes them;
# callgrind counts only inside StoreWriter.write (the transaction, the commit included; the
# kernel's side of the commit is not counted). Installs valgrind if missing.
#   ops/profile-writer.sh [events=100000]
# prints, for 10,000 and 100 aggregates on a schema-less root and 10,000 on the typed inventory
# root, the instructions per event.
set -euo pipefail
cd "$(dirname "$0")/.."
events="${1:-100000}"
if ! command -v valgrind >/dev/null; then
  sudo=""; [ "$(id -u)" -eq 0 ] || sudo="sudo"
  $sudo apt-get update -qq && DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq valgrind >/dev/null
fi
swift build -c release --product laterbase-profile
bin="$(swift build -c release --show-bin-path)/laterbase-profile"
out="$(mktemp)"
trap 'rm -f "$out"' EXIT
for run in "$events 10000 notes" "$events 100 notes" "$((events / 2)) 10000 inventory"; do
  set -- $run
  valgrind --tool=callgrind --callgrind-out-file="$out" --toggle-collect='*StoreWriterC5write*' "$bin" "$1" "$2" "$3" >/dev/null 2>&1
  total=$(grep -E '^(summary|totals):' "$out" | head -1 | awk '{print $2}')
  echo "writer instructions per event, $2 aggregates, root $3: $((total / $1))"
done
