#!/usr/bin/env bash
# Runs one experiment: bash scripts/run_experiment.sh minilm_int8   (or a path to a YAML file)
# Writes results/<name>/<UTC time>/ and prints the summary table.
set -euo pipefail
cd "$(dirname "$0")/.."
[ $# -ge 1 ] || { echo "usage: $0 NAME|PATH [encserve experiment flags]" >&2; exit 2; }
arg="$1"; shift
file="$arg"
[ -f "$file" ] || file="configs/experiments/$arg.yaml"
[ -f "$file" ] || { echo "no experiment $arg (looked for $file)" >&2; exit 2; }
bash scripts/setup.sh
bash scripts/build.sh >/dev/null
exec "${BUILD_DIR:-build}/encserve" experiment "$file" "$@"
