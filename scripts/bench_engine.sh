#!/usr/bin/env bash
# The engine benchmark of record: every encserve precision and the peers (ONNX Runtime, PyTorch)
# in one run, 2 threads, same machine, same model and inputs; writes docs/benchmarks/engine.md.
# Takes ~25 minutes. Run on an otherwise idle machine:  bash scripts/bench_engine.sh
set -euo pipefail
cd "$(dirname "$0")/.."
BUILD_DIR="${BUILD_DIR:-build}"
B="$BUILD_DIR/encserve"
[ -x "$B" ] || bash scripts/build.sh
PRECISIONS="${PRECISIONS:-fp32 bf16 fp16 int8 int4}"
CAP="${CAP:-8}"  # seconds per point
RUN="results/engine/$(date -u +%Y%m%dT%H%M%SZ)"
mkdir -p "$RUN"
python3 - "$RUN/meta.json" <<'PY'
import json, subprocess, sys, datetime, os
flags = open("/proc/cpuinfo").read().split("flags")[1].split("\n")[0]
keep = [f for f in ["avx2", "fma", "avx512f", "avx512_vnni", "avx512_bf16", "avx_vnni", "amx_int8", "amx_bf16"] if f" {f}" in flags]
cpu = [l.split(":", 1)[1].strip() for l in open("/proc/cpuinfo") if l.startswith("model name")][0]
commit = subprocess.run(["git", "rev-parse", "--short", "HEAD"], capture_output=True, text=True).stdout.strip()
dirty = subprocess.run(["git", "diff", "--quiet"]).returncode != 0
json.dump({"date": datetime.datetime.utcnow().strftime("%Y-%m-%d %H:%M UTC"), "commit": commit + (" (+uncommitted)" if dirty else ""),
           "cpu": cpu, "cores": os.cpu_count(), "flags": " ".join(keep)}, open(sys.argv[1], "w"))
PY
for p in $PRECISIONS; do
  echo "== encserve $p" >&2
  for seq in 16 64 128; do
    for b in 1 8 32 128; do
      "$B" bench-engine -p "$p" -t 2 -w fixed --seq "$seq" -b "$b" --max-seconds "$CAP" --json "$RUN/encserve.jsonl" 2>/dev/null
    done
  done
  for b in 1 32 128; do
    "$B" bench-engine -p "$p" -t 2 -w msmarco -b "$b" --max-seconds "$CAP" --json "$RUN/encserve.jsonl" 2>/dev/null
  done
  "$B" bench-engine -p "$p" -t 2 -w dl19 -b 32 --max-seconds "$CAP" --json "$RUN/encserve.jsonl" 2>/dev/null
  "$B" eval-sts -p "$p" -t 2 --json "$RUN/sts.jsonl"
done
# The same 2 cores used three ways (docs/architecture.md, threading): a batch split by sequences
# over 2 threads (the default), every op split over 2 threads (--no-split), and 2 replicas of
# 1 thread fed by 2 concurrent callers; plus 1 thread alone for scale.
for p in fp32 int8; do
  for mode in "-t 2" "-t 2 --no-split" "-t 1 --replicas 2" "-t 1"; do
    # shellcheck disable=SC2086
    "$B" bench-engine -p "$p" $mode -w fixed --seq 16 -b 32 --max-seconds "$CAP" --json "$RUN/threading.jsonl" 2>/dev/null
    # shellcheck disable=SC2086
    "$B" bench-engine -p "$p" $mode -w msmarco -b 32 --max-seconds "$CAP" --json "$RUN/threading.jsonl" 2>/dev/null
  done
done
if [ "${SKIP_PEERS:-0}" != 1 ]; then
  python3 -c "import onnxruntime, onnx, torch, transformers, sentence_transformers" 2>/dev/null ||
    python3 -m pip install -q -r bench/peers/requirements.txt
  python3 bench/peers/run_peers.py --max-seconds-per-point "$CAP" --out "$RUN/peers.json"
  # fp32 and int8 against ONNX Runtime at seq 16 b32, alternating, for the median ratio
  REPS="${H2H_REPS:-9}" CAP=6 BUILD_DIR="$BUILD_DIR" bash scripts/bench_h2h.sh "$RUN/h2h.jsonl"
fi
# Cosine to the fp32 path per precision on 800 real texts (the accuracy targets).
[ -x "$BUILD_DIR/tests/precision_test" ] && "$BUILD_DIR/tests/precision_test" 2>/dev/null |
  grep 'cosine vs fp32' > "$RUN/precision.txt" || true
for bench in "$BUILD_DIR"/bench/kernels_bench "$BUILD_DIR"/bench/kernels_quant_bench; do
  [ -x "$bench" ] && "$bench" --benchmark_min_time=0.2 2>/dev/null >> "$RUN/kernels.txt" || true
done
python3 tools/report_engine_bench.py "$RUN" docs/benchmarks/engine.md
