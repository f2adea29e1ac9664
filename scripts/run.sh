#!/usr/bin/env bash
# The main job: set up, build, then run encserve on the default model (real sentences, timing).
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh
bash scripts/build.sh
BUILD_DIR="${BUILD_DIR:-build}"
exec "$BUILD_DIR/encserve" demo "$@"
