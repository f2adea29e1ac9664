#!/usr/bin/env bash
# The test suite under sanitizers.
#   scripts/sanitize.sh [ctest args]           ASan + UBSan: builds build-san (scripts/build_san.sh,
#                                              clang-14) and runs the whole CTest suite there: unit
#                                              tests, integration tests (they run the sanitized
#                                              `encserve` through ENCSERVE_BIN) and the fuzz targets'
#                                              regression replays (fuzz.*).
#   scripts/sanitize.sh --thread [ctest args]  TSan: builds only the tests that exercise threads in
#                                              build-tsan-ci and runs them.
# A sanitizer report fails its test: UBSan is built with -fno-sanitize-recover=undefined, ASan
# aborts, LeakSanitizer reports leaks at exit (it needs no ptrace: it runs in-process).
# Env: JOBS (build and ctest parallelism, default 2), BUILD_DIR.
set -euo pipefail
cd "$(dirname "$0")/.."
JOBS="${JOBS:-2}"

# seconds since $1 (an epoch), for the timing lines.
since() { echo $(($(date +%s) - $1)); }

if [[ "${1:-}" == "--thread" ]]; then
  shift
  BUILD_DIR="${BUILD_DIR:-build-tsan-ci}"
  # The tests that run threads of ours: the batcher's workers (batcher_test; with priorities,
  # lanes and paused passes: batcher_priority_test, yield_test), the thread pool
  # (thread_pool_test), the native backend's replicas and split batches (engine_split_test),
  # the fallback chain's batch timeouts and retries across threads (fallback_test), the HTTP
  # server's io threads with Service threads answering, keep-alive and cancellation
  # (http_server_test), its shutdown while requests are in flight (http_server_lifecycle_test),
  # and concurrent callers of every backend (backend_conformance_test: only its
  # ConcurrentCallers cases; the others are numerics on the full goldens, over a minute each
  # under TSan, and their threads are engine_split_test's).
  TSAN_TESTS=(batcher_test batcher_priority_test yield_test thread_pool_test engine_split_test
              fallback_test http_server_test http_server_lifecycle_test backend_conformance_test)
  t0=$(date +%s)
  # gcc's TSan; optional backends off (prebuilt libraries without TSan instrumentation), no
  # benchmarks; -O1 -g keeps TSan's reports readable and the build quick.
  cmake -S . -B "$BUILD_DIR" -DENCSERVE_SANITIZE=thread -DENCSERVE_BUILD_BENCHMARKS=OFF \
    -DENCSERVE_WITH_TORCH=OFF -DENCSERVE_WITH_OPENVINO=OFF -DENCSERVE_WITH_MLX=OFF \
    -DCMAKE_BUILD_TYPE=RelWithDebInfo "-DCMAKE_CXX_FLAGS_RELWITHDEBINFO=-O1 -g -DNDEBUG" >/dev/null
  cmake --build "$BUILD_DIR" -j"$JOBS" --target "${TSAN_TESTS[@]}"
  echo "tsan build: $(since "$t0") s"
  t0=$(date +%s)
  regex="^backend_conformance_test\\..*ConcurrentCallers"
  for t in "${TSAN_TESTS[@]}"; do
    [[ "$t" == backend_conformance_test ]] || regex+="|^$t\\."
  done
  rc=0
  TSAN_OPTIONS="${TSAN_OPTIONS:-halt_on_error=1:second_deadlock_stack=1}" \
    ctest --test-dir "$BUILD_DIR" -R "$regex" --output-on-failure -j"$JOBS" "$@" || rc=$?
  echo "tsan tests: $(since "$t0") s"
  exit $rc
fi

BUILD_DIR="${BUILD_DIR:-build-san}"
t0=$(date +%s)
BUILD_DIR="$BUILD_DIR" JOBS="$JOBS" bash scripts/build_san.sh
echo "asan build: $(since "$t0") s"

# detect_leaks: LeakSanitizer at exit (in-process, no ptrace needed); abort_on_error: a report
# ends the process with SIGABRT (a failed test, a core if enabled); strict_string_checks: the
# str* interceptors check the whole string. UBSan: stack traces, and stop at the first report.
export ASAN_OPTIONS="${ASAN_OPTIONS:-detect_leaks=1:abort_on_error=1:strict_string_checks=1}"
export UBSAN_OPTIONS="${UBSAN_OPTIONS:-print_stacktrace=1:halt_on_error=1}"
# Everything runs. Not built here, so not run: the torch / onnx / mlx backends (prebuilt without
# ASan, see build_san.sh): backend_conformance_test and the fallback tests report them SKIPPED.
EXCLUDE="${SANITIZE_EXCLUDE:-}"
t0=$(date +%s)
rc=0
ctest --test-dir "$BUILD_DIR" --output-on-failure -j"$JOBS" ${EXCLUDE:+-E "$EXCLUDE"} "$@" || rc=$?
echo "asan tests: $(since "$t0") s"
exit $rc
