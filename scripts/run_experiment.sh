#!/usr/bin/env bash
# Runs one experiment: bash scripts/run_experiment.sh minilm_int8   (or a path to a YAML file)
# Set-up, build (with progress lines), then `encserve experiment`, which writes
# results/<name>/<UTC time>/ and prints the summary table; at the end, where the results are.
set -euo pipefail
cd "$(dirname "$0")/.."
[ $# -ge 1 ] || { echo "usage: $0 NAME|PATH [encserve experiment flags]" >&2; exit 2; }
arg="$1"; shift
file="$arg"
[ -f "$file" ] || file="configs/experiments/$arg.yaml"
[ -f "$file" ] || { echo "no experiment $arg (looked for $file)" >&2; exit 2; }
BUILD_DIR="${BUILD_DIR:-build}"
log() { echo "[run] $*" >&2; }
T0=$(date +%s)

log "1/3 set-up: Debian and PyPI packages, the model (scripts/setup.sh; a bare machine: minutes)"
bash scripts/setup.sh

log "2/3 build: $BUILD_DIR, Release (a first build takes ~10-15 min on 2 cores; progress every 10 %)"
mkdir -p "$BUILD_DIR"
build_log="$BUILD_DIR/build.log"
t_build=$(date +%s)
last=-10
# The full output goes to $build_log; here a line per 10 % and any compiler diagnostic.
if ! bash scripts/build.sh 2>&1 | tee "$build_log" | while IFS= read -r line; do
  if [[ "$line" =~ ^\[\ *([0-9]+)%\] ]]; then
    p=${BASH_REMATCH[1]}
    if ((p >= last + 10)); then
      last=$p
      echo "[build] $p % after $(($(date +%s) - t_build)) s: ${line#*] }" >&2
    fi
  elif [[ "$line" == *"error"* || "$line" == *"warning:"* ]]; then
    echo "$line" >&2
  fi
done; then
  log "the build failed: the end of $build_log follows"
  tail -30 "$build_log" >&2
  exit 1
fi
log "built in $(($(date +%s) - t_build)) s ($build_log)"

log "3/3 experiment $file: the server on its model, the sweep, quality (progress lines follow)"
rc=0
"$BUILD_DIR/encserve" experiment "$file" "$@" || rc=$?
name=$(sed -n 's/^name: *//p' "$file" | head -1 | tr -d '"'"'")
latest=$(ls -1d "results/${name:-x}"/*/ 2>/dev/null | tail -1 || true)
if [ -n "$latest" ]; then
  log "results: ${latest}  (results.md, report.html, results.json, CSV, SVG charts; server logs)"
fi
log "a live dashboard: start a server (${BUILD_DIR}/encserve serve) and open http://127.0.0.1:8080/dashboard"
log "done in $(($(date +%s) - T0)) s (exit $rc)"
exit "$rc"
