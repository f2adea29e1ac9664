#!/usr/bin/env bash
# GEMM implementations by measurement: encserve's kernels vs oneDNN vs OpenBLAS at the model's
# shapes, one thread, plus the single-core peak probes (FMA, VNNI, AMX); writes
# docs/benchmarks/gemm-peers.md (and its JSON under docs/benchmarks/gemm-peers-run/).
# Installs libdnnl-dev and libopenblas-dev with apt when run as root and they are missing.
# Takes about 2 minutes after the build. Run on an otherwise idle machine:
#   bash scripts/bench_gemm_peers.sh
# Environment: BUILD_DIR (build), JOBS (2), MIN_TIME (0.1 s per benchmark), REPETITIONS (3; the
# report takes medians), CMAKE_ARGS, NOTE (a line for the doc header; "smoke run, machine not
# idle" is added automatically when the load average or wall ÷ CPU time says it was busy).
set -euo pipefail
cd "$(dirname "$0")/.."
BUILD_DIR="${BUILD_DIR:-build}"
JOBS="${JOBS:-2}"
MIN_TIME="${MIN_TIME:-0.1}"
REPETITIONS="${REPETITIONS:-3}"
DOC="${DOC:-docs/benchmarks/gemm-peers.md}"

# ---- the peer libraries (Debian / Ubuntu packages) ----
missing=()
if command -v dpkg-query >/dev/null; then
  for pkg in libdnnl-dev libopenblas-dev; do
    dpkg-query -W -f='${Status}' "$pkg" 2>/dev/null | grep -q "ok installed" || missing+=("$pkg")
  done
fi
if ((${#missing[@]})); then
  if [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null; then
    echo "== installing ${missing[*]}" >&2
    apt-get install -y "${missing[@]}" >/dev/null ||
      { apt-get update >/dev/null && apt-get install -y "${missing[@]}" >/dev/null; }
  else
    echo "bench_gemm_peers: ${missing[*]} not installed and not root; install them with" >&2
    echo "  sudo apt-get install -y ${missing[*]}" >&2
    echo "(continuing with whatever peers CMake finds)" >&2
  fi
fi

# ---- build only what is needed ----
# shellcheck disable=SC2086
cfg="$(cmake -S . -B "$BUILD_DIR" -DCMAKE_BUILD_TYPE=Release ${CMAKE_ARGS:-} 2>&1)" ||
  { echo "$cfg" >&2; exit 1; }
grep gemm_peers_bench <<<"$cfg" >&2 || true
cmake --build "$BUILD_DIR" -j"$JOBS" --target kernels_bench kernels_quant_bench gemm_peers_bench
B="$BUILD_DIR/bench"
[ -x "$B/gemm_peers_bench" ] || { echo "gemm_peers_bench was not built (no peer found)" >&2; exit 1; }

RUN="results/gemm-peers/$(date -u +%Y%m%dT%H%M%SZ)"
mkdir -p "$RUN"
LOAD1="$(cut -d' ' -f1 /proc/loadavg)"
run_bench() {  # binary, filter, output, extra flags
  "$1" --benchmark_filter="$2" --benchmark_min_time="$MIN_TIME" \
    --benchmark_repetitions="$REPETITIONS" --benchmark_out="$3" --benchmark_out_format=json "${@:4}"
}
export OMP_NUM_THREADS=1 OPENBLAS_NUM_THREADS=1  # the bench also sets both to one in-process
echo "== peak probes" >&2
run_bench "$B/kernels_bench" '^BM_Peak' "$RUN/peaks_fp32.json"
run_bench "$B/kernels_quant_bench" '^BM_Peak' "$RUN/peaks_quant.json"
# Which ISA oneDNN dispatches to, from its verbose log (one small run, not timed).
DNNL_ISA="$(DNNL_VERBOSE=1 "$B/gemm_peers_bench" --benchmark_filter='onednn/16/384/384' \
  --benchmark_min_time=0.001 2>/dev/null | grep -m1 'info,cpu,isa:' | sed 's/.*isa://' || true)"
echo "== gemm_peers_bench (about 90 s)" >&2
# In registration order (encserve first; see RegisterAll in bench/gemm_peers_bench.cc).
run_bench "$B/gemm_peers_bench" '.' "$RUN/peers.json"

python3 - "$RUN/meta.json" "$LOAD1" "$MIN_TIME" "$REPETITIONS" "${NOTE:-}" "$DNNL_ISA" <<'PY'
import datetime, json, os, subprocess, sys
out, load1, min_time, reps, note, dnnl_isa = sys.argv[1:]
flags = open("/proc/cpuinfo").read().split("flags")[1].split("\n")[0].split()
keep = [f for f in flags if f in ("avx2", "fma", "f16c") or f.startswith(("avx512", "amx", "avx_vnni"))]
cpu = [l.split(":", 1)[1].strip() for l in open("/proc/cpuinfo") if l.startswith("model name")][0]
git = lambda *a: subprocess.run(["git", *a], capture_output=True, text=True)
commit = git("rev-parse", "--short", "HEAD").stdout.strip()
dirty = git("diff", "--quiet", "HEAD").returncode != 0
json.dump({"date": datetime.datetime.utcnow().strftime("%Y-%m-%d %H:%M UTC"),
           "commit": commit + (" (+uncommitted)" if dirty else ""), "cpu": cpu,
           "cores": os.cpu_count(), "flags": " ".join(keep), "load1": float(load1),
           "min_time": min_time, "repetitions": int(reps), "note": note, "dnnl_isa": dnnl_isa},
          open(out, "w"), indent=1)
PY
python3 tools/report_gemm_peers.py "$RUN" "$DOC" --copy-json docs/benchmarks/gemm-peers-run
