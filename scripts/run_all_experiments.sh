#!/usr/bin/env bash
# Runs every experiment in configs/experiments/ (except base.yaml), then `encserve report`,
# which writes docs/analysis.md from the latest results of each. Run on an idle machine.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh
bash scripts/build.sh >/dev/null
B="${BUILD_DIR:-build}/encserve"
failed=()
for f in configs/experiments/*.yaml; do
  [ "$(basename "$f")" = base.yaml ] && continue
  echo "== $(basename "$f" .yaml)" >&2
  "$B" experiment "$f" >/dev/null || failed+=("$f")
done
"$B" report --results results --out docs/analysis.md --charts docs/analysis
if [ ${#failed[@]} -gt 0 ]; then
  echo "failed: ${failed[*]}" >&2
  exit 1
fi
