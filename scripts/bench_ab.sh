#!/usr/bin/env bash
# A/B speed check of two encserve binaries on this machine (e.g. before and after a refactor):
# bench-engine (fixed seq 16 batch 1 and 32, MS MARCO batch 32 and 128; fp32 and int8, 2
# threads) and the server over gRPC (int8, batch 32 x concurrency 8), the two binaries
# alternating REPS times so that the VM's drifts hit both alike. Prints one table row per
# point: the median items/s of each binary over the reps and their ratio B/A.
#   usage: scripts/bench_ab.sh A_BIN B_BIN [OUT.jsonl]   (env: REPS=3, CAP=4 seconds per point,
#          ISA=avx512 to force a kernel set on both binaries, e.g. the non-AMX one on an AMX CPU)
set -euo pipefail
cd "$(dirname "$0")/.."
A="${1:?usage: scripts/bench_ab.sh A_BIN B_BIN [OUT.jsonl]}"
B="${2:?usage: scripts/bench_ab.sh A_BIN B_BIN [OUT.jsonl]}"
OUT="${3:-$(mktemp)}"
REPS="${REPS:-3}"
CAP="${CAP:-4}"
ISA_ARGS=()
[ -n "${ISA:-}" ] && ISA_ARGS=(--isa "$ISA")
TMP="$(mktemp -d)"
trap 'rm -rf "$TMP"; [ -n "${SERVER_PID:-}" ] && kill "$SERVER_PID" 2>/dev/null || true' EXIT
: >"$OUT"

engine_point() {  # bin label precision args...
  local bin="$1" label="$2" precision="$3"
  shift 3
  rm -f "$TMP/e.jsonl"
  "$bin" bench-engine -p "$precision" -t 2 --max-seconds "$CAP" --json "$TMP/e.jsonl" \
    "${ISA_ARGS[@]}" "$@" \
    >/dev/null 2>&1
  python3 -c 'import json,sys; e=json.loads(open(sys.argv[1]).read().splitlines()[-1]); print(e["items_per_s"])' "$TMP/e.jsonl"
}

server_point() {  # bin
  local bin="$1"
  rm -f "$TMP/ready.json" "$TMP/b.json"
  "$bin" serve -p int8 --threads 2 --grpc-port 0 --http-port 0 --ready-file "$TMP/ready.json" \
    "${ISA_ARGS[@]}" $("$bin" serve --help | grep -q -- --queue-budget-ms && echo --queue-budget-ms 0) \
    >"$TMP/serve.log" 2>&1 &
  SERVER_PID=$!
  for _ in $(seq 1 300); do [ -f "$TMP/ready.json" ] && break; sleep 0.1; done
  local port
  port=$(python3 -c 'import json,sys; print(json.load(open(sys.argv[1]))["grpc_port"])' "$TMP/ready.json")
  "$bin" bench --target "127.0.0.1:$port" -c 8 -b 32 --warmup-seconds 1 -d "$CAP" -q \
    --json "$TMP/b.json" >/dev/null 2>&1
  kill -TERM "$SERVER_PID"
  wait "$SERVER_PID" || true
  SERVER_PID=""
  python3 -c 'import json,sys; print(json.load(open(sys.argv[1]))["items_per_s"])' "$TMP/b.json"
}

POINTS=("fixed-s16-b1|fixed --seq 16 -b 1" "fixed-s16-b32|fixed --seq 16 -b 32"
  "msmarco-b32|msmarco -b 32 --limit 2048" "msmarco-b128|msmarco -b 128 --limit 4096")
for rep in $(seq 1 "$REPS"); do
  for precision in fp32 int8; do
    for p in "${POINTS[@]}"; do
      name="${p%%|*}"
      read -r -a args <<<"-w ${p#*|}"
      for side in A B; do
        bin="$A"
        [ "$side" = B ] && bin="$B"
        v=$(engine_point "$bin" "$name" "$precision" "${args[@]}")
        echo "{\"rep\": $rep, \"side\": \"$side\", \"point\": \"engine $precision $name\", \"items_per_s\": $v}" >>"$OUT"
        echo "rep $rep $side engine $precision $name: $v items/s" >&2
      done
    done
  done
  for side in A B; do
    bin="$A"
    [ "$side" = B ] && bin="$B"
    v=$(server_point "$bin")
    echo "{\"rep\": $rep, \"side\": \"$side\", \"point\": \"server grpc int8 b32 c8\", \"items_per_s\": $v}" >>"$OUT"
    echo "rep $rep $side server grpc int8 b32 c8: $v items/s" >&2
  done
done
python3 - "$OUT" <<'PY'
import json, statistics, sys
rows = [json.loads(l) for l in open(sys.argv[1])]
points = list(dict.fromkeys(r["point"] for r in rows))
print("| point | A items/s (median) | B items/s (median) | B/A |")
print("|---|---:|---:|---:|")
for p in points:
    a = statistics.median(r["items_per_s"] for r in rows if r["point"] == p and r["side"] == "A")
    b = statistics.median(r["items_per_s"] for r in rows if r["point"] == p and r["side"] == "B")
    print(f"| {p} | {a:,.1f} | {b:,.1f} | {b / a:.3f} |")
PY
