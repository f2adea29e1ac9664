#!/usr/bin/env bash
# The main job: set up, build, start the server on the default model (all-MiniLM-L6-v2),
# run a short benchmark against it over gRPC and HTTP with real MS MARCO queries, stop it.
#   DURATION=10 PRECISION=fp32 bash scripts/run.sh
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh
bash scripts/build.sh
BUILD_DIR="${BUILD_DIR:-build}"
B="$BUILD_DIR/encserve"
DURATION="${DURATION:-10}"
PRECISION="${PRECISION:-fp32}"
RUN_DIR="$(mktemp -d)"
trap 'rm -rf "$RUN_DIR"' EXIT

echo "== starting encserve serve ($PRECISION) on free loopback ports" >&2
"$B" serve --host 127.0.0.1 --grpc-port 0 --http-port 0 -p "$PRECISION" \
  --ready-file "$RUN_DIR/ready.json" 2>"$RUN_DIR/server.log" >/dev/null &
SERVER=$!
trap 'kill -TERM $SERVER 2>/dev/null || true; rm -rf "$RUN_DIR"' EXIT
for _ in $(seq 600); do [ -f "$RUN_DIR/ready.json" ] && break; sleep 0.1; done
if [ ! -f "$RUN_DIR/ready.json" ]; then cat "$RUN_DIR/server.log" >&2; exit 1; fi
cat "$RUN_DIR/server.log" >&2
GRPC=$(python3 -c "import json;print(json.load(open('$RUN_DIR/ready.json'))['grpc_port'])")
HTTP=$(python3 -c "import json;print(json.load(open('$RUN_DIR/ready.json'))['http_port'])")

echo "== gRPC (seed API Infer), 32 queries per request, 8 concurrent clients, ${DURATION}s" >&2
"$B" bench -q --target "127.0.0.1:$GRPC" -b 32 -c 8 -d "$DURATION" --warmup-seconds 1
echo "== gRPC, single-query requests, 64 concurrent clients (dynamic batching), ${DURATION}s" >&2
"$B" bench -q --target "127.0.0.1:$GRPC" -b 1 -c 64 -d "$DURATION" --warmup-seconds 1
echo "== HTTP /embed, one query per request, one client (latency), ${DURATION}s" >&2
"$B" bench -q --protocol http --target "127.0.0.1:$HTTP" -b 1 -c 1 -d "$DURATION" --warmup-seconds 1
echo "== server metrics (batch sizes)" >&2
curl -s "http://127.0.0.1:$HTTP/metrics" | grep -E "^encserve_(batch_size_(sum|count)|items_total|requests_total)" || true
kill -TERM "$SERVER"
wait "$SERVER"
echo "== server stopped cleanly" >&2
