#!/usr/bin/env bash
# The engine benchmark per CPU class (issue: fast on every x86 server CPU): for each kernel set
# this CPU can run -- amx (if present), avx512 (AVX-512 VNNI/BF16 without AMX tiles), avx2 --
# encserve at fp32 / bf16 / int8 / int4 (efficiency vs the measured peak, op profile of int8) and
# the peers restricted the same way where they can be (OpenVINO, CTranslate2: ONEDNN_MAX_CPU_ISA,
# MKL_ENABLE_INSTRUCTIONS, CT2_FORCE_CPU_ISA; ONNX Runtime cannot be restricted and runs once,
# with everything the CPU has). 2 threads, same model and inputs, same run.
# Writes results/isa/<stamp>/ and the "Per CPU class" section of docs/benchmarks/engine.md.
# About 26 minutes on 2 cores (all three classes); run on an otherwise idle machine:
#   bash scripts/bench_isa.sh
set -euo pipefail
cd "$(dirname "$0")/.."
BUILD_DIR="${BUILD_DIR:-build}"
B="$BUILD_DIR/encserve"
[ -x "$B" ] || bash scripts/build.sh
CAP="${CAP:-4}"                                   # seconds per point
PRECISIONS="${PRECISIONS:-fp32 bf16 int8 int4}"
RUN="${RUN:-results/isa/$(date -u +%Y%m%dT%H%M%SZ)}"
mkdir -p "$RUN"
flags=$(grep -m1 '^flags' /proc/cpuinfo)
CLASSES="${CLASSES:-}"
if [ -z "$CLASSES" ]; then
  [[ $flags == *" amx_int8"* ]] && CLASSES="amx"
  [[ $flags == *" avx512f"* ]] && CLASSES="$CLASSES avx512"
  CLASSES="$CLASSES avx2"
fi
python3 - "$RUN/meta.json" "$CLASSES" <<'PY'
import json, subprocess, sys, datetime, os
flags = open("/proc/cpuinfo").read().split("flags")[1].split("\n")[0]
keep = [f for f in ["avx2", "fma", "avx512f", "avx512_vnni", "avx512_bf16", "avx_vnni", "amx_int8", "amx_bf16"] if f" {f}" in flags]
cpu = [l.split(":", 1)[1].strip() for l in open("/proc/cpuinfo") if l.startswith("model name")][0]
vendor = [l.split(":", 1)[1].strip() for l in open("/proc/cpuinfo") if l.startswith("vendor_id")][0]
commit = subprocess.run(["git", "rev-parse", "--short", "HEAD"], capture_output=True, text=True).stdout.strip()
dirty = subprocess.run(["git", "diff", "--quiet"]).returncode != 0
json.dump({"date": datetime.datetime.utcnow().strftime("%Y-%m-%d %H:%M UTC"), "commit": commit + (" (+uncommitted)" if dirty else ""),
           "cpu": cpu, "vendor": vendor, "cores": os.cpu_count(), "flags": " ".join(keep), "classes": sys.argv[2].split()},
          open(sys.argv[1], "w"))
PY
python3 -c "import onnxruntime, openvino, ctranslate2, transformers, sentence_transformers" 2>/dev/null ||
  python3 -m pip install -q -r bench/peers/requirements.txt
MODEL="${ENCSERVE_MODEL:-$HOME/.cache/encserve/models/all-MiniLM-L6-v2}"
bash tools/prepare_onnx.sh "$MODEL" >/dev/null  # the OpenVINO peers' ONNX and NNCF int8 models
for cls in $CLASSES; do
  echo "== $cls: encserve" >&2
  for p in $PRECISIONS; do
    run() { "$B" bench-engine -p "$p" -t 2 --isa "$cls" --max-seconds "$CAP" --json "$RUN/encserve-$cls.jsonl" "$@" >>"$RUN/encserve-$cls.log" 2>&1 || echo "bench-engine $p $* failed (exit $?): $RUN/encserve-$cls.log" >&2; }
    run -w fixed --seq 16 -b 1
    run -w fixed --seq 16 -b 32
    run -w fixed --seq 128 -b 32
    run -w fixed --seq 256 -b 32
    for b in 1 32 128; do run -w msmarco -b "$b"; done
    run -w dl19 -b 32
    "$B" eval-sts -p "$p" -t 2 --isa "$cls" --json "$RUN/sts-$cls.jsonl" >/dev/null 2>&1
  done
  for seq in 16 128; do  # where the time goes (int8), same run
    "$B" bench-engine -p int8 -t 2 --isa "$cls" -w fixed --seq "$seq" -b 32 --max-seconds "$CAP" --profile \
      --json "$RUN/profile-$cls.jsonl" >/dev/null 2>&1
  done
  if [ "${SKIP_PEERS:-0}" != 1 ]; then
    echo "== $cls: peers" >&2
    peers="ov_fp32,ov_bf16,ov_int8,ct2_fp32,ct2_int8"
    isa=$cls
    if [ "$cls" = "$(echo $CLASSES | cut -d' ' -f1)" ]; then peers="ort_fp32,ort_int8,$peers"; fi
    [ "$cls" = amx ] && isa=native
    python3 bench/peers/run_peers.py --peers "$peers" --peer-isa "$isa" --workloads fixed,msmarco,dl19 \
      --fixed-seqs 16 128 256 --fixed-batches 1 32 --msmarco-batches 1 32 128 --max-seconds-per-point "$CAP" \
      --sts --accuracy-n 200 --out "$RUN/peers-$cls.json" > "$RUN/peers-$cls.log" 2>&1 || true
  fi
done
for probe in kernels_bench kernels_quant_bench; do
  "$BUILD_DIR/bench/$probe" --benchmark_filter='Peak' --benchmark_min_time=0.2 2>/dev/null >> "$RUN/peaks.txt" || true
done
python3 tools/report_isa_bench.py "$RUN" docs/benchmarks/engine.md
echo "wrote $RUN and docs/benchmarks/engine.md (section: Per CPU class)" >&2
