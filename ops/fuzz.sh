#!/usr/bin/env bash
# Fuzzes every libFuzzer target (Sources/LaterbaseFuzz) for SECONDS each, with address sanitizer,
# starting from the seeds in Fuzz/corpus/<target>; prints executions and crashes per target and
# exits non-zero on any crash. Crashing inputs are kept in .fuzz/artifacts/ (replay one with
# `swift run laterbase-fuzz TARGET FILE`).
#   ops/fuzz.sh 60          # a minute per target
#   ops/fuzz.sh 5 json      # one target
set -euo pipefail
cd "$(dirname "$0")/.."
seconds=${1:-60}
shift || true
targets=("$@")
[ ${#targets[@]} -gt 0 ] || targets=(json event query record ingest transport)
ops/setup.sh
# A build of its own (other flags than the normal one): fuzzer coverage and ASan in every module
# of the target's closure. lld, since gold fails on this link.
swift build --scratch-path .build/fuzz --product laterbase-fuzz \
  -Xswiftc -sanitize=fuzzer,address -Xswiftc -DFUZZING -Xswiftc -use-ld=lld 2>&1 | grep -vE "Cannot export local symbol" | tail -2
binary=.build/fuzz/debug/laterbase-fuzz
mkdir -p .fuzz/artifacts
failed=0
printf '%-8s %14s %10s %8s\n' target executions exec/s crashes
for target in "${targets[@]}"; do
  work=.fuzz/corpus/$target
  mkdir -p "$work"
  cp -n Fuzz/corpus/"$target"/* "$work"/ 2>/dev/null || true
  log=.fuzz/$target.log
  set +e
  LATERBASE_FUZZ_TARGET=$target "$binary" "$work" -max_total_time="$seconds" -max_len=16384 -rss_limit_mb=2048 \
    -timeout=10 -print_final_stats=1 -artifact_prefix=.fuzz/artifacts/"$target"- >"$log" 2>&1
  rc=$?
  set -e
  runs=$(grep -oE 'stat::number_of_executed_units: *[0-9]+' "$log" | grep -oE '[0-9]+$' || echo 0)
  rate=$(grep -oE 'stat::average_exec_per_sec: *[0-9]+' "$log" | grep -oE '[0-9]+$' || echo 0)
  crashes=0
  if [ $rc -ne 0 ]; then crashes=1; failed=1; fi
  printf '%-8s %14s %10s %8s\n' "$target" "$runs" "$rate" "$crashes"
  [ $rc -eq 0 ] || { echo "--- $target crashed (exit $rc); log: $log"; grep -E "ERROR|Fatal|SUMMARY|Test unit written" "$log" | head -5; }
done
exit $failed
