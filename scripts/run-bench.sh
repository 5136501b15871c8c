#!/usr/bin/env bash
# Runs every benchmark behind bench/RESULTS.md: the Google Benchmark programs, then the server-level
# ingress and latency comparison (bench/ingress.sh). Figures go to standard output.
set -euo pipefail
build=${1:-build}
cd "$(dirname "$0")/.."
for bench in "$build"/*_bench; do
  echo "== $(basename "$bench")"
  "$bench" --benchmark_counters_tabular=true
done
echo "== ingress"
bench/ingress.sh "$build"
echo "== mcp gateway"
bench/mcp.sh "$build"
