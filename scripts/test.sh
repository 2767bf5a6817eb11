#!/usr/bin/env bash
# The README's second command, and what CI runs (.ci/run): every test, once
# in a Release build and once more under AddressSanitizer and
# UndefinedBehaviorSanitizer; then the runtime's tests under
# ThreadSanitizer.
set -euo pipefail
cd "$(dirname "$0")/.."
. scripts/deps.sh
rn_install_deps
jobs=$(nproc)

run_suite() { # DIR CTEST_FILTER CMAKE_ARGS...
  local dir=$1 filter=$2; shift 2
  echo "== build $dir ($*)"
  cmake -S . -B "$dir" -G Ninja "$@" >/dev/null
  cmake --build "$dir"
  echo "== test $dir"
  (cd "$dir" && ctest --output-on-failure -j "$jobs" --timeout 900 -R "$filter")
}

run_suite build . -DCMAKE_BUILD_TYPE=Release
export ASAN_OPTIONS=detect_leaks=1:abort_on_error=1:halt_on_error=1
export UBSAN_OPTIONS=print_stacktrace=1:halt_on_error=1
export CK_FORK=no
# The big-state test at a scale the sanitizers' slowdown allows: still
# far more state than its bound.
# AddressSanitizer's shadow memory and quarantine make the process's peak
# memory meaningless, so that test checks its bound only without it.
export RN_BIG_WINDOWS=300000 RN_BIG_MEMORY=8 RN_TEST_SANITIZED=1
run_suite build-asan . -DCMAKE_BUILD_TYPE=Debug -DRN_SANITIZE=ON -DRN_BUILD_BENCH=OFF
# The runtime's threads (queues, workers, exchange) under ThreadSanitizer.
export TSAN_OPTIONS=halt_on_error=1:second_deadlock_stack=1
# Checkpoints (coordinator thread, barriers, alignment) with the memory
# backend: RocksDB's library is not instrumented.
export RN_TEST_BACKENDS=memory
run_suite build-tsan 'unit\.(runtime|watermark)|integration\.(time|file_io|checkpoint_stop)' \
  -DCMAKE_BUILD_TYPE=Debug -DRN_SANITIZE_THREAD=ON -DRN_BUILD_BENCH=OFF
# Fuzzing smoke run (docs/fuzzing.md): each libFuzzer target on its
# corpus for a few seconds, in a clang build of its own.
RN_FUZZ_SECONDS=${RN_FUZZ_SECONDS:-15} fuzz/run.sh
echo "== all tests passed (Release, ASan+UBSan, TSan on the runtime, fuzz smoke run)"
