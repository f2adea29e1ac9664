#!/usr/bin/env bash
# Head to head: encserve against ONNX Runtime at seq 16 × batch 32 (the shape of issue 3's ratio
# targets), alternating the two REPS times, so that this VM's slow drifts in speed hit both
# sides alike. Each line of OUT (JSON) is one measurement:
#   {"rep": 1, "engine": "encserve"|"ort", "precision": "fp32"|"int8", "items_per_s": ...}
# tools/report_engine_bench.py reports the per-rep ratios and their median.
#   usage: scripts/bench_h2h.sh OUT.jsonl     (env: REPS=5, CAP=6 seconds per point, BUILD_DIR)
set -euo pipefail
cd "$(dirname "$0")/.."
OUT="${1:?usage: scripts/bench_h2h.sh OUT.jsonl}"
REPS="${REPS:-5}"
CAP="${CAP:-6}"
B="${BUILD_DIR:-build}/encserve"
[ -x "$B" ] || { echo "bench_h2h: $B not built (bash scripts/build.sh)" >&2; exit 1; }
TMP="$(mktemp -d)"
trap 'rm -rf "$TMP"' EXIT
for rep in $(seq 1 "$REPS"); do
  for precision in fp32 int8; do
    echo "== head to head: rep $rep/$REPS, $precision" >&2
    rm -f "$TMP/e.jsonl" "$TMP/p.json"
    "$B" bench-engine -p "$precision" -t 2 -w fixed --seq 16 -b 32 --max-seconds "$CAP" \
      --json "$TMP/e.jsonl" 2>/dev/null
    python3 bench/peers/run_peers.py --peers "ort_$precision" --workloads fixed --fixed-seqs 16 \
      --fixed-batches 32 --max-seconds-per-point "$CAP" --accuracy-n 0 --out "$TMP/p.json" \
      >/dev/null 2>&1
    python3 - "$TMP/e.jsonl" "$TMP/p.json" "$rep" "$precision" >>"$OUT" <<'PY'
import json, sys
e = json.loads(open(sys.argv[1]).read().splitlines()[-1])
p = [q for q in json.load(open(sys.argv[2]))["points"] if q["workload"] == "fixed"][0]
rep, precision = int(sys.argv[3]), sys.argv[4]
assert e["seq"] == p["seq"] == 16 and e["batch"] == p["batch"] == 32
print(json.dumps({"rep": rep, "engine": "encserve", "precision": precision,
                  "kernels": e["kernels"], "items_per_s": e["items_per_s"]}))
print(json.dumps({"rep": rep, "engine": "ort", "precision": precision,
                  "items_per_s": p["texts_per_s"]}))
PY
  done
done
