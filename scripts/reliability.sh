#!/usr/bin/env bash
# Reliability scenarios of issue 17 (docs/reliability.md): the real server (build/encserve serve)
# on loopback ports against heavy and hostile clients, each bound checked.
#   bash scripts/reliability.sh [--short|--long] [scenario ...]
#     --short (default): the CI versions, each well under a minute, all together <= 5 min on 2 cores
#     --long: the figures of record (overload 60 s, soak 30 min, ...); run on an idle machine
#     scenarios: overload fairness priority response_size connections slow_clients grpc_invalid integrity
#                soak model_faults restart (default: all, in that order)
# Writes results/reliability/<UTC date>-<short commit>/<scenario>.json and summary.md (OUT=DIR to
# choose another folder); `python3 tools/report_reliability.py DIR` puts the table into
# docs/reliability.md. Exit status 1 when any bound is crossed.
# The binary: $ENCSERVE_BIN, else build/encserve (built with scripts/build.sh when missing); the
# model: $ENCSERVE_MODEL_DIR, else ~/.cache/encserve/models/all-MiniLM-L6-v2; the data:
# $ENCSERVE_DATA_DIR, else ../shared/data.
set -euo pipefail
cd "$(dirname "$0")/.."
if [ -z "${ENCSERVE_BIN:-}" ] && [ ! -x build/encserve ]; then
  bash scripts/setup.sh
  bash scripts/build.sh >/dev/null
fi
args=("$@")
if [ -n "${OUT:-}" ]; then args=(--out "$OUT" "${args[@]}"); fi
exec python3 tests/reliability/run_all.py "${args[@]}"
