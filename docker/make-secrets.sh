#!/usr/bin/env bash
# Makes the secrets docker/compose.yaml reads, in FOLDER (default docker/secrets): a credentials
# file with an admin (ops), a monitor (prometheus), three peers (hq-1..3) and a device (truck-7),
# each one's token in NAME.token and, for nodes, its CURVE secret key in NAME.curve. Tokens are
# printed nowhere else; the credentials file holds only their SHA-256.
# LATERBASE names the binary (default: laterbase on PATH, else this checkout's release build).
set -euo pipefail
folder="${1:-$(dirname "$0")/secrets}"
bin="${LATERBASE:-$(command -v laterbase || echo "$(dirname "$0")/../.build/release/laterbase")}"
[ -x "$bin" ] || { echo "no laterbase binary at $bin: swift build -c release --product laterbase, or set LATERBASE" >&2; exit 1; }
mkdir -p "$folder"
chmod 700 "$folder"
[ ! -e "$folder/credentials.json" ] || { echo "$folder/credentials.json exists; remove the folder to make new secrets" >&2; exit 1; }
add() {  # name, then the options of `laterbase credentials add`
  local name="$1"; shift
  local out
  out="$("$bin" credentials add "$name" --file "$folder/credentials.json" "$@")"
  sed -n 's/^token: //p' <<<"$out" > "$folder/$name.token"
  if grep -q '^curve secret key: ' <<<"$out"; then sed -n 's/^curve secret key: //p' <<<"$out" > "$folder/$name.curve"; fi
}
add ops --role admin
add prometheus --role monitor
for node in hq-1 hq-2 hq-3; do add "$node" --role peer --curve; done
add truck-7 --role device --origin truck-7 --write '*' --read '*' --curve
chmod 600 "$folder"/*
echo "secrets in $folder: credentials.json, and a .token (and .curve) per principal"
