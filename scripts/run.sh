#!/usr/bin/env bash
# The main job: set up, build, then run the default experiment: start the server on the
# default model (all-MiniLM-L6-v2) as a child process, sweep batch size x concurrency with the
# load generator over real MS MARCO queries, measure STS-B quality, stop the server, and print
# the summary table (full results in results/<name>/<UTC time>/).
#   EXPERIMENT=minilm_int8 bash scripts/run.sh
set -euo pipefail
cd "$(dirname "$0")/.."
exec bash scripts/run_experiment.sh "${EXPERIMENT:-minilm_baseline}" "$@"
