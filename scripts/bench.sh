#!/usr/bin/env bash
# make bench: runs the benchmarks in bench/ and prints their figures.
set -euo pipefail
build=${1:-build}
echo "== archive/restore of a 2 GiB file vs cp"
"$build/archive_bench" 2048 3
if [ -x "$build/coordinator_bench" ]; then
  echo "== coordinator throughput, instant movers"
  "$build/coordinator_bench"
fi
if [ -x "$build/watch_bench" ]; then
  echo "== transparent restore latency and watched-read overhead"
  "$build/watch_bench"
fi
