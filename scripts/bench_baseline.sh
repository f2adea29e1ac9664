#!/usr/bin/env bash
# fp32 baseline: in-process embed throughput on all 6,980 MS MARCO queries (batch 32) with 1 and
# 2 threads, plus fp32 GEMM micro-benchmarks per ISA. Writes docs/benchmarks/baseline.md.
# Run on an otherwise idle machine: bash scripts/bench_baseline.sh
set -euo pipefail
cd "$(dirname "$0")/.."
BUILD_DIR="${BUILD_DIR:-build}"
B="$BUILD_DIR/encserve"
OUT=docs/benchmarks/baseline.md
[ -x "$B" ] || bash scripts/build.sh

run() { "$B" bench-engine --batch 32 "$@" 2>/dev/null | tail -n1; }
t1=$(run --threads 1)
t2=$(run --threads 2)
scalar=$(run --threads 1 --isa scalar --limit 640)
gemm=$("$BUILD_DIR/bench/kernels_bench" --benchmark_filter='BM_GemmF32/(avx512|avx2)/(16|512)/' \
        --benchmark_format=console --benchmark_counters_tabular=true 2>/dev/null | grep -E "BM_|Benchmark" || true)
field() { echo "$1" | sed -n "s/.*$2=\([^ ]*\).*/\1/p"; }

{
  echo "# fp32 baseline (engine foundation)"
  echo
  echo "Measured by \`scripts/bench_baseline.sh\` on $(date -u +%Y-%m-%d), commit \`$(git rev-parse --short HEAD)\`$(git diff --quiet || echo ' (+ uncommitted changes)')."
  echo "Machine: $(lscpu | sed -n 's/^Model name: *//p'), $(nproc) cores, kernels: $(field "$t1" kernels)."
  echo "CPU flags used: $("$B" info 2>/dev/null | sed -n 's/.*"cpu_flags": "\(.*\)".*/\1/p')."
  echo
  echo "## In-process embedding throughput, all-MiniLM-L6-v2 fp32, MS MARCO dev-small queries"
  echo
  echo "Real queries (6,980; scalar row: first 640), batches of 32, tokenisation included,"
  echo "padding-free batches, max length 256. \`encserve bench-engine --batch 32 --threads N\`."
  echo
  echo "| kernels | threads | texts/s | batch p50 (ms) | batch p99 (ms) |"
  echo "|---|---|---|---|---|"
  for line in "$t1" "$t2" "$scalar"; do
    echo "| $(field "$line" kernels) | $(field "$line" threads) | $(field "$line" throughput) | $(field "$line" batch_p50 | tr -d ms) | $(field "$line" batch_p99 | tr -d ms) |"
  done
  echo
  echo "Two threads ÷ one thread: $(awk -v a="$(field "$t2" throughput)" -v b="$(field "$t1" throughput)" 'BEGIN{printf "%.2f×", a/b}')."
  echo
  echo "## fp32 GEMM micro-benchmarks (one thread)"
  echo
  echo "\`build/bench/kernels_bench\`: y[M, N] = x[M, K] · Wᵀ with pre-packed W; args are M/K/N."
  echo
  echo '```'
  echo "$gemm"
  echo '```'
  echo
  echo "These are the starting point for the fast-engine work (quantised kernels, tuned GEMM)."
} > "$OUT"
echo "wrote $OUT"
