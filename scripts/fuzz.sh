#!/usr/bin/env bash
# Builds tierflow's libFuzzer targets (fuzz/, with clang, in build-fuzz) and runs each for
# SECONDS_PER_TARGET (default 15) on a copy of its committed seed corpus. Prints one line per
# target; exits 1 if any target crashed, leaked, ran out of memory or timed out, after copying
# the reproducers and logs to build-fuzz/crashes/.
#   scripts/fuzz.sh [SECONDS_PER_TARGET]
# Replay a reproducer: build-fuzz/<target> build-fuzz/crashes/<target>-crash-<sha1>
set -euo pipefail

seconds=${1:-15}
root=$(cd "$(dirname "$0")/.." && pwd)
build=${FUZZ_BUILD_DIR:-$root/build-fuzz}
crashes=$build/crashes

if [ ! -f "$build/build.ninja" ]; then
  cmake -S "$root/fuzz" -B "$build" -G Ninja -DCMAKE_CXX_COMPILER=clang++ >/dev/null
fi
ninja -C "$build" -j 2 >/dev/null || { echo "fuzz: build of $build failed; run 'ninja -C $build' to see why" >&2; exit 1; }

work=$(mktemp -d /tmp/tierflow-fuzz.XXXXXX)
trap 'rm -rf "$work"' EXIT
mkdir -p "$crashes"

failed=0
for src in "$root"/fuzz/*_fuzz.cc; do
  name=$(basename "$src" .cc)
  dir=$work/$name
  mkdir -p "$dir/corpus" "$dir/artifacts"
  if [ -d "$root/fuzz/corpus/$name" ]; then cp -r "$root/fuzz/corpus/$name/." "$dir/corpus/"; fi
  dict=()
  if [ -f "$root/fuzz/$name.dict" ]; then dict=(-dict="$root/fuzz/$name.dict"); fi
  rc=0
  (cd "$dir" && ASAN_OPTIONS=${ASAN_OPTIONS:-detect_leaks=1} "$build/$name" \
     -max_total_time="$seconds" -rss_limit_mb=2048 -timeout=30 -print_final_stats=1 \
     -artifact_prefix="$dir/artifacts/" "${dict[@]}" "$dir/corpus" >"$dir/log" 2>&1) || rc=$?
  # A target that fails at once prints no coverage: the figures stay "?" (|| true keeps
  # pipefail from ending the script before the failure is reported).
  runs=$(sed -n 's/^stat::number_of_executed_units: *//p' "$dir/log" | tail -1 || true)
  cov=$(grep -o 'cov: [0-9]*' "$dir/log" | tail -1 | awk '{print $2}' || true)
  ft=$(grep -o 'ft: [0-9]*' "$dir/log" | tail -1 | awk '{print $2}' || true)
  result=ok
  if [ "$rc" -ne 0 ]; then
    failed=1
    result="FAILED (exit $rc)"
    for a in "$dir"/artifacts/*; do
      [ -e "$a" ] || continue
      kind=$(basename "$a" | cut -d- -f1)
      result="${kind^^}: $crashes/$name-$(basename "$a")"
      cp "$a" "$crashes/$name-$(basename "$a")"
    done
    cp "$dir/log" "$crashes/$name.log"
  fi
  printf '%-22s runs %10s  cov %6s  ft %6s  %s\n' "$name" "${runs:-?}" "${cov:-?}" "${ft:-?}" "$result"
done

if [ "$failed" -ne 0 ]; then
  echo "fuzz: failures above; logs and reproducers in $crashes (see docs/testing.md to replay)" >&2
  exit 1
fi
