#!/usr/bin/env bash
# The shipped monitoring files: deploy/prometheus/alerts.yml passes `promtool check rules` and its
# unit tests (`promtool test rules` on alerts_test.yml: each alert fires where it should), and
# deploy/grafana/encserve.json is valid JSON with its panels' queries (test_prometheus.py runs
# every one against a real Prometheus). Exit 77 (skipped, CTest) without promtool, unless CI=true.
set -euo pipefail
cd "$(dirname "$0")/../deploy"
if ! command -v promtool >/dev/null; then
  if [ "${CI:-}" = true ]; then
    echo "promtool missing under CI=true (scripts/setup.sh installs the prometheus package)" >&2
    exit 1
  fi
  echo "SKIPPED: promtool not installed (Debian package prometheus)"
  exit 77
fi
promtool check rules prometheus/alerts.yml
(cd prometheus && promtool test rules alerts_test.yml)
python3 - grafana/encserve.json <<'PY'
import json, sys
d = json.load(open(sys.argv[1]))
exprs = [t["expr"] for p in d["panels"] for t in p["targets"]]
assert d["uid"] == "encserve" and len(exprs) >= 12, (d.get("uid"), len(exprs))
print(f"grafana/encserve.json: {len(d['panels'])} panels, {len(exprs)} queries")
PY
