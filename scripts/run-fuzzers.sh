#!/usr/bin/env bash
# Runs every libFuzzer target in BUILD_DIR for SECONDS each, seeded from fuzz/corpus/<target>/.
# A crash fails the run; its input is left in fuzz/crashes/ to become a regression test. An input that
# runs 10 s is a hang and fails the same way (libFuzzer's RSS limit alone can take many minutes to report
# a runaway parse: it prints ASan's heap profile first).
set -euo pipefail
build=${1:-build-fuzz}
seconds=${2:-60}
cd "$(dirname "$0")/.."
mkdir -p fuzz/crashes
shopt -s nullglob
status=0
for target in "$build"/*_fuzz; do
  name=$(basename "$target")
  seeds=fuzz/corpus/$name
  work=fuzz/corpus-work/$name
  mkdir -p "$work"
  echo "fuzz: $name for ${seconds}s"
  args=("$work")
  [ -d "$seeds" ] && args+=("$seeds")
  if ! "$target" -max_total_time="$seconds" -timeout=10 -rss_limit_mb=4096 -artifact_prefix=fuzz/crashes/"$name"- -print_final_stats=0 \
      "${args[@]}" >"fuzz/corpus-work/$name.log" 2>&1; then
    echo "fuzz: $name FAILED (see fuzz/corpus-work/$name.log and fuzz/crashes/)"
    tail -30 "fuzz/corpus-work/$name.log"
    status=1
  fi
done
exit $status
