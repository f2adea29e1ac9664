#!/usr/bin/env bash
# Server benchmark of record (docs/benchmarks/server.md): the in-process engine and the real
# server driven by `encserve bench`, in one run on one machine, then the report.
#   PRECISION=fp32 THREADS=2 DURATION=20 bash scripts/bench_server.sh
# Run it on an otherwise idle machine: the load generator shares the cores with the server.
set -euo pipefail
cd "$(dirname "$0")/.."
BUILD_DIR="${BUILD_DIR:-build}"
PRECISION="${PRECISION:-fp32}"
THREADS="${THREADS:-2}"
DURATION="${DURATION:-20}"
OUT="${OUT:-docs/benchmarks/server-run}"
B="$BUILD_DIR/encserve"
bash scripts/setup.sh
bash scripts/build.sh >/dev/null
mkdir -p "$OUT"
rm -f "$OUT"/*.json

log() { echo "[bench_server] $*" >&2; }

# 1. In-process engine: the same texts, the same thread count, no network.
for b in 1 32; do
  log "in-process engine, MS MARCO, batch $b"
  limit=$([ "$b" = 1 ] && echo 2000 || echo 6980)
  "$B" bench-engine -w msmarco -b "$b" --limit "$limit" --threads "$THREADS" -p "$PRECISION" \
    --warmup 5 --json "$OUT/inprocess_b$b.json" >/dev/null
done

# 2. The server, once per batching mode.
run_server() {  # $1: name, rest: extra serve flags
  local name="$1"; shift
  local ready="$OUT/.ready.json"
  rm -f "$ready"
  # Closed-loop capacity runs: no queue-time admission (docs/server.md, "Admission and overload").
  "$B" serve --host 127.0.0.1 --grpc-port 0 --http-port 0 --threads "$THREADS" -p "$PRECISION" \
    --queue-budget-ms 0 --ready-file "$ready" "$@" >"$OUT/.server-$name.log" 2>&1 &
  SERVER_PID=$!
  for _ in $(seq 600); do [ -f "$ready" ] && break; sleep 0.1; done
  [ -f "$ready" ] || { cat "$OUT/.server-$name.log"; exit 1; }
  GRPC_PORT=$(python3 -c "import json;print(json.load(open('$ready'))['grpc_port'])")
  HTTP_PORT=$(python3 -c "import json;print(json.load(open('$ready'))['http_port'])")
}
stop_server() { kill -TERM "$SERVER_PID"; wait "$SERVER_PID"; }
load() {  # $1: file name, rest: bench flags
  local name="$1"; shift
  log "load: $name ($*)"
  "$B" bench -q --warmup-seconds 2 --json "$OUT/$name.json" "$@" >/dev/null
}

run_server batching
load grpc_b32_c8 --target "127.0.0.1:$GRPC_PORT" -b 32 -c 8 -d "$DURATION"
load grpc_b1_c1 --target "127.0.0.1:$GRPC_PORT" -b 1 -c 1 -n 2000
load grpc_b1_c64 --target "127.0.0.1:$GRPC_PORT" -b 1 -c 64 -d "$DURATION"
load http_b32_c8 --protocol http --target "127.0.0.1:$HTTP_PORT" -b 32 -c 8 -d "$DURATION"
load http_b1_c1 --protocol http --target "127.0.0.1:$HTTP_PORT" -b 1 -c 1 -n 2000
load http_b1_c64 --protocol http --target "127.0.0.1:$HTTP_PORT" -b 1 -c 64 -d "$DURATION"
curl -s "http://127.0.0.1:$HTTP_PORT/metrics" >"$OUT/metrics_batching.txt"
stop_server

run_server nobatching --no-batching
load grpc_b1_c64_nobatching --target "127.0.0.1:$GRPC_PORT" -b 1 -c 64 -d "$DURATION"
stop_server
rm -f "$OUT"/.ready.json

python3 tools/report_server_bench.py --run "$OUT" --precision "$PRECISION" --threads "$THREADS" \
  --binary "$B" --out docs/benchmarks/server.md
log "wrote docs/benchmarks/server.md"
