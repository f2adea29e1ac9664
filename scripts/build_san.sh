#!/usr/bin/env bash
# Configures and builds build-san: clang-14 with AddressSanitizer + UndefinedBehaviorSanitizer
# (UBSan findings abort: -fno-sanitize-recover=undefined) and the libFuzzer targets of fuzz/
# (ENCSERVE_FUZZ=ON: every object is compiled with -fsanitize=fuzzer-no-link coverage).
# Used by scripts/sanitize.sh (the whole test suite under ASan/UBSan) and scripts/fuzz.sh.
#   scripts/build_san.sh [cmake --build args, e.g. --target tokenizer_fuzz]
# Env: BUILD_DIR (default build-san), JOBS (default 2).
set -euo pipefail
cd "$(dirname "$0")/.."
BUILD_DIR="${BUILD_DIR:-build-san}"
JOBS="${JOBS:-2}"

# The optional backends stay off: libtorch, OpenVINO and MLX are prebuilt libraries without ASan
# instrumentation (mixing them with ASan gives false reports and their allocators fight it),
# and their own code is not ours to sanitise. Benchmarks are not tests: off.
CC=clang-14 CXX=clang++-14 cmake -S . -B "$BUILD_DIR" \
  -DENCSERVE_SANITIZE=address,undefined \
  -DENCSERVE_FUZZ=ON \
  -DENCSERVE_BUILD_BENCHMARKS=OFF \
  -DENCSERVE_WITH_TORCH=OFF -DENCSERVE_WITH_OPENVINO=OFF -DENCSERVE_WITH_MLX=OFF \
  -DCMAKE_BUILD_TYPE=RelWithDebInfo \
  "-DCMAKE_CXX_FLAGS_RELWITHDEBINFO=-O2 -gline-tables-only -DNDEBUG" >/dev/null
cmake --build "$BUILD_DIR" -j"$JOBS" "$@"
