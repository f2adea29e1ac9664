#!/usr/bin/env bash
# Each backend's in-process speed against the same library's own Python API, in the same run:
# `encserve bench-engine -w msmarco` (C++: tokenisation + padding + the library + mean pooling +
# L2 normalisation) and tools/bench_python_api.py (the library's Python API: padding + forward +
# pooling + normalisation; PRE-TOKENISED, so the comparison is conservative for C++), the two
# alternating REPS times (the side that goes first alternates too) so that the machine's drifts
# hit both alike. Points: torch fp32/bf16/int8 (PyTorch eager, Debian's /usr/bin/python3),
# onnx fp32/bf16/int8 (openvino Python), mlx fp32/bf16/fp16/int8/int4 (mlx Python).
# Prints a Markdown table: the median items/s of each side over the reps and C++/Python
# (the goal: >= 0.95, i.e. the C++ wrapper adds <= 5 %), and writes every run to a JSONL file.
#
#   usage: scripts/bench_backends.sh [OUT.jsonl]   (default results/bench_backends-<time>.jsonl;
#          the table is also written next to it as .md; progress goes to stderr)
#   env:   REPS=3  THREADS=2  BATCH=32
#          LIMIT=N          queries per run, both sides (default: all 6980 for torch and onnx,
#                           640 for mlx, whose bf16/fp16/quantised matmuls are single-threaded
#                           loops on Linux CPU); LIMIT_TORCH / LIMIT_ONNX / LIMIT_MLX override
#          MAX_SECONDS=S    stop each run's timing after S seconds (both sides; 0: no cap)
#          ONLY="onnx:fp32 mlx"   a subset: backend:precision or a whole backend (space/comma)
#          BIN=build/encserve     the C++ binary; a backend it was built without is looked for
#                           in BIN_<BACKEND> (e.g. BIN_MLX) or build-<backend>/encserve
#          PYTHON=python3 (openvino, mlx)   TORCH_PYTHON=/usr/bin/python3 (torch)
#          MODEL=<folder>   (default: encserve's default model, all-MiniLM-L6-v2)
#          DATA=<file>      the queries, qid<TAB>query (default: the shared msmarco-dev-small)
# The C++ binaries are copied to a temporary folder first, so that a rebuild during the run
# does not change what is measured.
set -euo pipefail
cd "$(dirname "$0")/.."
REPS="${REPS:-3}"
THREADS="${THREADS:-2}"
BATCH="${BATCH:-32}"
MAX_SECONDS="${MAX_SECONDS:-0}"
BIN="${BIN:-build/encserve}"
PYTHON="${PYTHON:-python3}"
TORCH_PYTHON="${TORCH_PYTHON:-/usr/bin/python3}"
MODEL="${MODEL:-${ENCSERVE_MODEL:-$HOME/.cache/encserve/models/all-MiniLM-L6-v2}}"
ONLY="${ONLY:-}"
DATA="${DATA:-${ENCSERVE_DATA_DIR:-/work/shared/data}/msmarco-dev-small-queries.tsv}"
mkdir -p results
OUT="${1:-results/bench_backends-$(date +%Y%m%d-%H%M%S).jsonl}"
MD="${OUT%.jsonl}.md"
TMP="$(mktemp -d)"
trap 'rm -rf "$TMP"' EXIT
: >"$OUT"

POINTS=(torch:fp32 torch:bf16 torch:int8 onnx:fp32 onnx:bf16 onnx:int8
  mlx:fp32 mlx:bf16 mlx:fp16 mlx:int8 mlx:int4)

wanted() {  # backend:precision -> 0 if ONLY selects it
  [ -z "$ONLY" ] && return 0
  local sel
  for sel in ${ONLY//,/ }; do
    [ "$sel" = "$1" ] || [ "$sel" = "${1%%:*}" ] && return 0
  done
  return 1
}

has_backend() {  # bin backend
  [ -x "$1" ] && "$1" bench-engine --help 2>/dev/null | grep -E -- '--backend ' | grep -qw "$2"
}

bin_for() {  # backend -> the binary that has it, or nothing
  local b="$1" var cand
  var="BIN_$(echo "$b" | tr '[:lower:]' '[:upper:]')"
  for cand in "${!var:-}" "$BIN" "build-$b/encserve"; do
    [ -n "$cand" ] && has_backend "$cand" "$b" && { echo "$cand"; return; }
  done
}

limit_for() {  # backend -> queries per run (0: all)
  local var
  var="LIMIT_$(echo "$1" | tr '[:lower:]' '[:upper:]')"
  if [ -n "${!var:-}" ]; then echo "${!var}"
  elif [ -n "${LIMIT:-}" ]; then echo "$LIMIT"
  elif [ "$1" = mlx ]; then echo 640
  else echo 0
  fi
}

lib_for() { case "$1" in onnx) echo openvino ;; *) echo "$1" ;; esac; }

# record rep side backend precision limit json-file log-file: one JSONL line (failed runs too)
record() {
  "$PYTHON" - "$@" "$(cut -d' ' -f1-3 /proc/loadavg)" >>"$OUT" <<'PY'
import json, sys
rep, side, backend, precision, limit, jf, lf, load = sys.argv[1:]
row = {"rep": int(rep), "side": side, "backend": backend, "precision": precision,
       "limit": int(limit), "loadavg": load}
try:
    raw = json.loads(open(jf).read().splitlines()[-1])
    row.update({k: raw.get(k) for k in ("items", "seconds", "items_per_s", "p50_ms", "p99_ms")})
    row["library"] = raw.get("library") or raw.get("backend_library") or raw.get("kernels")
    row["raw"] = raw
except Exception:
    row["error"] = open(lf, errors="replace").read()[-2000:]
print(json.dumps(row))
PY
}

run_cpp() {  # rep backend precision bin limit
  local rep="$1" b="$2" p="$3" bin="$4" limit="$5" args=()
  if [ "$limit" -gt 0 ]; then args+=(--limit "$limit"); fi
  if [ "$MAX_SECONDS" != 0 ]; then args+=(--max-seconds "$MAX_SECONDS"); fi
  rm -f "$TMP/r.jsonl"
  "$bin" bench-engine -m "$MODEL" -w msmarco --data "$DATA" --backend "$b" -p "$p" \
    -b "$BATCH" -t "$THREADS" "${args[@]}" --json "$TMP/r.jsonl" >"$TMP/log" 2>&1 || true
  record "$rep" cpp "$b" "$p" "$limit" "$TMP/r.jsonl" "$TMP/log"
}

run_py() {  # rep backend precision limit
  local rep="$1" b="$2" p="$3" limit="$4" py="$PYTHON" lib
  lib="$(lib_for "$b")"
  [ "$lib" = torch ] && py="$TORCH_PYTHON"
  rm -f "$TMP/r.jsonl"
  # MLX's fp32 GEMMs call whichever cblas_sgemm the process binds first: in encserve that is
  # OpenBLAS (libtorch loads it before libmlx); the Python side gets the same one preloaded,
  # instead of the wheel's bundled reference BLAS (MLX_PY_PRELOAD= to turn it off).
  local preload=""
  [ "$lib" = mlx ] && preload="${MLX_PY_PRELOAD-/usr/lib/x86_64-linux-gnu/libopenblas.so.0}"
  LD_PRELOAD="$preload" "$py" tools/bench_python_api.py --lib "$lib" -p "$p" -m "$MODEL" --data "$DATA" \
    --batch "$BATCH" --threads "$THREADS" --limit "$limit" --max-seconds "$MAX_SECONDS" \
    --json-out "$TMP/r.jsonl" >"$TMP/log" 2>&1 || true
  record "$rep" python "$b" "$p" "$limit" "$TMP/r.jsonl" "$TMP/log"
}

last_line() {  # side: a progress line from the last JSONL row
  tail -n 1 "$OUT" | "$PYTHON" -c 'import json,sys; r=json.loads(sys.stdin.read())
print("%.1f items/s" % r["items_per_s"] if "items_per_s" in r else "FAILED: " + r["error"].strip().splitlines()[-1] if r["error"].strip() else "FAILED")'
}

# The points this run has a binary for.
SELECTED=()
declare -A BIN_OF BIN_SRC
for pt in "${POINTS[@]}"; do
  wanted "$pt" || continue
  b="${pt%%:*}"
  if [ -z "${BIN_OF[$b]+x}" ]; then
    src="$(bin_for "$b")"
    BIN_OF[$b]=""
    if [ -z "$src" ]; then
      echo "skipping $b: no binary with the $b backend (BIN, BIN_${b^^}, build-$b/encserve)" >&2
    else  # a private copy: a concurrent rebuild must not swap the binary mid-run
      cp "$src" "$TMP/encserve-$b"
      has_backend "$TMP/encserve-$b" "$b" || { echo "copy of $src does not run" >&2; exit 1; }
      BIN_OF[$b]="$TMP/encserve-$b"
      BIN_SRC[$b]="$src (built $(date -r "$src" '+%Y-%m-%d %H:%M'), sha256 $(sha256sum "$src" | cut -c1-12))"
    fi
  fi
  if [ -n "${BIN_OF[$b]}" ]; then SELECTED+=("$pt"); fi
done
[ "${#SELECTED[@]}" -eq 0 ] && { echo "nothing to run" >&2; exit 1; }

LOAD_START="$(cut -d' ' -f1-3 /proc/loadavg)"
echo "load average at start: $LOAD_START; tokenising once (not timed) ..." >&2
"$PYTHON" tools/bench_python_api.py --tokenize-only -m "$MODEL" --data "$DATA" >&2

for rep in $(seq 1 "$REPS"); do
  for pt in "${SELECTED[@]}"; do
    b="${pt%%:*}"
    p="${pt#*:}"
    limit="$(limit_for "$b")"
    sides=(cpp python)
    [ $((rep % 2)) -eq 0 ] && sides=(python cpp)  # who goes first alternates
    for side in "${sides[@]}"; do
      if [ "$side" = cpp ]; then
        run_cpp "$rep" "$b" "$p" "${BIN_OF[$b]}" "$limit"
      else
        run_py "$rep" "$b" "$p" "$limit"
      fi
      echo "rep $rep/$REPS $b $p $side (limit $limit): $(last_line)" >&2
    done
  done
done
LOAD_END="$(cut -d' ' -f1-3 /proc/loadavg)"

BINS=""
for b in "${!BIN_SRC[@]}"; do BINS+="$b: ${BIN_SRC[$b]}; "; done
COMMIT="$(git rev-parse --short HEAD)$([ -z "$(git status --porcelain 2>/dev/null)" ] || echo -dirty)"
CPU="$(lscpu | sed -n 's/^Model name: *//p' | head -1)"

"$PYTHON" - "$OUT" "$CPU" "$(nproc)" "$COMMIT" "$THREADS" "$BATCH" "$REPS" "$LOAD_START" \
  "$LOAD_END" "$BINS" "$MAX_SECONDS" <<'PY' | tee "$MD"
import json, statistics, sys
out, cpu, ncpu, commit, threads, batch, reps, load0, load1, bins, max_s = sys.argv[1:]
rows = [json.loads(l) for l in open(out)]
print(f"CPU: {cpu} ({ncpu} CPUs) · commit {commit} · threads {threads} · batch {batch} · "
      f"reps {reps} (median) · load average (1/5/15 min) at start {load0}, at end {load1}")
print(f"\nC++: encserve bench-engine -w msmarco ({bins.rstrip('; ')}), tokenisation timed. "
      "Python: tools/bench_python_api.py, the library's Python API, pre-tokenised "
      "(tokenisation not timed: conservative for C++). Same queries, same batches in file "
      "order, padded per batch, mean pooling + L2 normalisation, 3 warm-up batches"
      + (f", timing capped at {max_s} s per run" if max_s not in ("0", "0.0") else "") + ".\n")
print("| backend | precision | library (C++ / Python) | queries | C++ items/s | Python items/s | C++/Python "
      "| C++ p50 / p99 ms | Python p50 / p99 ms | ≤ 5 % slower? |")
print("|---|---|---|---:|---:|---:|---:|---:|---:|:---:|")
points = list(dict.fromkeys((r["backend"], r["precision"]) for r in rows))
for b, p in points:
    def side(s):
        ok = [r for r in rows if r["backend"] == b and r["precision"] == p and r["side"] == s
              and r.get("items_per_s")]
        fail = sum(1 for r in rows if r["backend"] == b and r["precision"] == p
                   and r["side"] == s and not r.get("items_per_s"))
        return ok, fail
    c, cf = side("cpp")
    y, yf = side("python")
    med = lambda rs, k: statistics.median(r[k] for r in rs) if rs else None
    fmt = lambda v, d=1: "—" if v is None else f"{v:.{d}f}"
    def cell(rs, fails):
        v = med(rs, "items_per_s")
        s = fmt(v)
        if len(rs) > 1:
            s += f" ({min(r['items_per_s'] for r in rs):.1f}–{max(r['items_per_s'] for r in rs):.1f})"
        return s + (f" [{fails} failed]" if fails else "")
    ci, yi = med(c, "items_per_s"), med(y, "items_per_s")
    ratio = ci / yi if ci and yi else None
    lib = " / ".join(next((r.get("library") for r in rs if r.get("library")), "?")
                     for rs in (c, y))
    items = next((r.get("items") for r in c + y if r.get("items")), "")
    verdict = "—" if ratio is None else ("yes" if ratio >= 0.95 else "**no**")
    print(f"| {b} | {p} | {lib} | {items} | {cell(c, cf)} | {cell(y, yf)} | {fmt(ratio, 3)} "
          f"| {fmt(med(c, 'p50_ms'))} / {fmt(med(c, 'p99_ms'))} "
          f"| {fmt(med(y, 'p50_ms'))} / {fmt(med(y, 'p99_ms'))} | {verdict} |")
print(f"\nraw runs: {out}")
PY
