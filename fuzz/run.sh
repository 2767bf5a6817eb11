#!/usr/bin/env bash
# fuzz/run.sh [TARGET...]: builds the libFuzzer targets (build-fuzz, clang,
# -DRN_FUZZ=ON) and runs each on its corpus for RN_FUZZ_SECONDS (default
# 15: the test command's smoke run), one after the other, then prints per
# target the executions, the size of its corpus and the findings (crashes, leaks,
# timeouts, out-of-memory: libFuzzer's artifacts, kept in
# build-fuzz/fuzz-findings/). Exits 1 when anything was found.
#
# The long run (docs/fuzzing.md): RN_FUZZ_SECONDS=600 fuzz/run.sh
# What a run finds new is kept in build-fuzz/fuzz-corpus/TARGET and used
# by the next run; the seeds in fuzz/corpus/ stay as they are.
set -euo pipefail
cd "$(dirname "$0")/.."
seconds=${RN_FUZZ_SECONDS:-15}
build=${RN_FUZZ_BUILD:-build-fuzz}
all="job_file expr json_record csv_record ckpt_meta state_snapshot kafka_wal rest"
targets=${*:-$all}

echo "== fuzz: build $build (clang, libFuzzer, ASan+UBSan)"
# Warnings are the Release and Debug builds' business (GCC, -Werror): clang
# warns about other things, which would stop this build for no finding.
cmake -S . -B "$build" -G Ninja -DCMAKE_BUILD_TYPE=Debug -DCMAKE_C_COMPILER=clang -DRN_FUZZ=ON \
  -DRN_WERROR=OFF -DRN_BUILD_TESTS=OFF -DRN_BUILD_BENCH=OFF >/dev/null
cmake --build "$build" --target $(for t in $targets; do printf 'fuzz_%s ' "$t"; done)

export ASAN_OPTIONS=${ASAN_OPTIONS:-detect_leaks=1}:abort_on_error=1
export UBSAN_OPTIONS=${UBSAN_OPTIONS:-print_stacktrace=1}:halt_on_error=1
found=0
summary=()
for t in $targets; do
  corpus="$build/fuzz-corpus/$t" findings="$build/fuzz-findings" log="$build/fuzz-$t.log"
  mkdir -p "$corpus" "$findings"
  before=$(ls "$findings" | grep -c "^$t-" || true)
  echo "== fuzz: $t for ${seconds}s"
  rc=0
  # One process (the machine's cores are shared); an input taking more
  # than a minute is a hang, reported as a finding.
  "$build/fuzz/fuzz_$t" -max_total_time="$seconds" -timeout=60 -rss_limit_mb=4096 \
    -print_final_stats=1 -artifact_prefix="$findings/$t-" "$corpus" "fuzz/corpus/$t" \
    >"$log" 2>&1 || rc=$?
  execs=$(sed -n 's/^stat::number_of_executed_units: *//p' "$log" | tail -1)
  size=$(ls "$corpus" | wc -l)
  new=$(( $(ls "$findings" | grep -c "^$t-" || true) - before ))
  if [ "$rc" -ne 0 ] && [ "$new" -eq 0 ]; then
    new=1 # libFuzzer stopped on something without an artifact: see the log
  fi
  if [ "$new" -ne 0 ]; then
    found=1
    echo "fuzz: $t: $new finding(s), exit $rc; the end of $log:"
    grep -A40 -m1 -E '^==[0-9]+==|runtime error|ERROR: libFuzzer' "$log" | head -60 || tail -40 "$log"
  fi
  summary+=("$(printf '%-15s %7ss %12s %8s %9s' "$t" "$seconds" "${execs:-?}" "$size" "$new")")
done
echo "== fuzz: results (findings in $build/fuzz-findings)"
printf '%-15s %8s %12s %8s %9s\n' target time executions corpus findings
printf '%s\n' "${summary[@]}"
exit $found
