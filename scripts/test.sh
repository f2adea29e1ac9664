#!/usr/bin/env bash
# The whole test suite from a fresh clone: set up, build, run every test (CTest).
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh
bash scripts/build.sh
BUILD_DIR="${BUILD_DIR:-build}"
# Which kernel ISAs this CPU lets the kernel tests exercise (CTest runs each test alone, so the
# per-binary summary line of tests/unit/isa_coverage.h is shown here, from one full run each;
# failures are CTest's to report, below).
echo "ISA coverage of the kernel tests on $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | xargs):"
for t in kernels_test kernels_quant_test kernels_amx_test; do
  "$BUILD_DIR/tests/$t" --gtest_brief=1 2>&1 | grep '^\[ ISA \]' | sed "s/^/  $t: /" || true
done
ctest --test-dir "$BUILD_DIR" --output-on-failure -j"$(nproc)" "$@"
