#!/usr/bin/env bash
# Prepare the "onnx" backend's model files from a Hugging Face BERT folder (idempotent).
#
#   bash tools/prepare_onnx.sh MODEL_DIR [OUT_DIR]        (OUT_DIR defaults to MODEL_DIR/onnx)
#
# Writes into OUT_DIR:
#   model.onnx                    fp32 ONNX (tools/export_onnx.py, run by $TORCH_PYTHON)
#   model_int8.xml/.bin           int8 OpenVINO IR, NNCF post-training quantisation calibrated on
#                                 MS MARCO queries (tools/quantize_onnx_int8.py, run by $PYTHON);
#                                 embedding models only - cross-encoders get the fp32 ONNX alone
#   meta.json                     tool versions, calibration set/size and quality, date, sha256
#   .complete                     written last: the source model.safetensors size + mtime
# Skips all work when OUT_DIR/.complete matches the current model.safetensors size + mtime.
#
# Environment: TORCH_PYTHON (default /usr/bin/python3: Debian python3-torch 1.13),
#              PYTHON (default python3: the pyenv python with openvino + nncf + tokenizers),
#              CALIBRATION (default 300 queries), GOLDEN_DIR (optional: a minilm_golden-style
#              folder; the fp32 ONNX is then also checked against it on OpenVINO).
# Progress lines go to stderr, prefixed "[prepare-onnx]". Exit status non-zero on any failure.
set -euo pipefail

log() { echo "[prepare-onnx] $*" >&2; }
die() { log "ERROR: $*"; exit 1; }
now() { date +%s.%N; }
secs() { awk -v a="$1" -v b="$2" 'BEGIN { printf "%.1f", b - a }'; }

[[ $# -ge 1 && $# -le 2 ]] || { echo "usage: $0 MODEL_DIR [OUT_DIR]" >&2; exit 2; }
MODEL_DIR=${1%/}
OUT_DIR=${2:-$MODEL_DIR/onnx}
OUT_DIR=${OUT_DIR%/}
TOOLS=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
TORCH_PYTHON=${TORCH_PYTHON:-/usr/bin/python3}
PYTHON=${PYTHON:-python3}
CALIBRATION=${CALIBRATION:-300}
SRC=$MODEL_DIR/model.safetensors

[[ -f $SRC && -f $MODEL_DIR/config.json ]] || die "$MODEL_DIR: needs config.json and model.safetensors"
STAMP="model.safetensors size=$(stat -c %s "$SRC") mtime=$(stat -c %Y "$SRC")"
if [[ -f $OUT_DIR/.complete && "$(cat "$OUT_DIR/.complete")" == "$STAMP" ]]; then
    log "$OUT_DIR is up to date ($STAMP); nothing to do"
    exit 0
fi

KIND=$("$TORCH_PYTHON" -c 'import json, sys
archs = json.load(open(sys.argv[1])).get("architectures") or []
print("cross-encoder" if any("ForSequenceClassification" in a for a in archs) else "embedding")' \
    "$MODEL_DIR/config.json")
log "$MODEL_DIR: $KIND model -> $OUT_DIR"
mkdir -p "$OUT_DIR"
rm -f "$OUT_DIR/.complete" "$OUT_DIR/meta.json"
WORK=$(mktemp -d)
trap 'rm -rf "$WORK"' EXIT

t0=$(now)
log "exporting fp32 ONNX with $TORCH_PYTHON"
"$TORCH_PYTHON" "$TOOLS/export_onnx.py" "$MODEL_DIR" "$WORK/model.onnx" >&2 \
    || die "export_onnx.py failed"
mv "$WORK/model.onnx" "$OUT_DIR/model.onnx"
EXPORT_S=$(secs "$t0" "$(now)")
log "model.onnx: $(stat -c %s "$OUT_DIR/model.onnx") bytes (${EXPORT_S} s)"

QUANT_S=""
OV_VERSION=""
NNCF_VERSION=""
rm -f "$OUT_DIR/model_int8.xml" "$OUT_DIR/model_int8.bin"
if [[ $KIND == embedding ]]; then
    t0=$(now)
    log "quantising to int8 with $PYTHON (NNCF, $CALIBRATION MS MARCO queries)"
    golden=()
    [[ -n ${GOLDEN_DIR:-} ]] && golden=(--golden "$GOLDEN_DIR")
    "$PYTHON" "$TOOLS/quantize_onnx_int8.py" "$MODEL_DIR" "$OUT_DIR/model.onnx" \
        "$WORK/model_int8.xml" --calibration "$CALIBRATION" --summary-json "$WORK/int8.json" \
        "${golden[@]}" >&2 || die "quantize_onnx_int8.py failed"
    mv "$WORK/model_int8.bin" "$OUT_DIR/model_int8.bin"
    mv "$WORK/model_int8.xml" "$OUT_DIR/model_int8.xml"
    QUANT_S=$(secs "$t0" "$(now)")
    OV_VERSION=$("$PYTHON" -c 'import openvino; print(openvino.__version__)')
    NNCF_VERSION=$("$PYTHON" -c 'import nncf; print(nncf.__version__)' 2>/dev/null)
    log "model_int8.xml + .bin: $(stat -c %s "$OUT_DIR/model_int8.bin") bytes of weights (${QUANT_S} s)"
fi

log "writing meta.json"
TORCH_VERSION=$("$TORCH_PYTHON" -c 'import torch; print(torch.__version__)')
"$TORCH_PYTHON" - "$OUT_DIR/meta.json" "$WORK/int8.json" <<EOF || die "meta.json failed"
import json, os, sys
int8 = json.load(open(sys.argv[2])) if os.path.exists(sys.argv[2]) else None
meta = {
    "source": {"model_dir": "$MODEL_DIR",
               "model.safetensors": {"sha256": "$(sha256sum "$SRC" | cut -d' ' -f1)",
                                     "bytes": $(stat -c %s "$SRC")},
               "config.json": {"sha256": "$(sha256sum "$MODEL_DIR/config.json" | cut -d' ' -f1)"}},
    "kind": "$KIND",
    "date_utc": "$(date -u +%Y-%m-%dT%H:%M:%SZ)",
    "files": {"model.onnx": {"bytes": $(stat -c %s "$OUT_DIR/model.onnx"),
                             "sha256": "$(sha256sum "$OUT_DIR/model.onnx" | cut -d' ' -f1)",
                             "opset": 17, "precision": "fp32"}},
    "inputs": ["input_ids", "attention_mask", "token_type_ids"],
    "input_shape": "[batch, sequence] int64",
    "output": ("logits [batch, num_labels]" if "$KIND" == "cross-encoder"
               else "last_hidden_state [batch, sequence, hidden]"),
    "versions": {"torch": "$TORCH_VERSION", "openvino": "$OV_VERSION" or None,
                 "nncf": "$NNCF_VERSION" or None},
    "seconds": {"export": $EXPORT_S, "quantize": ${QUANT_S:-None}},
    "generated_by": "bash tools/prepare_onnx.sh",
}
if int8:
    meta["files"]["model_int8.xml"] = {
        "bin_bytes": os.path.getsize(os.path.join(os.path.dirname(sys.argv[1]), "model_int8.bin")),
        "precision": "NNCF PTQ: every Linear MatMul int8 (weights + FakeQuantize"
                     " activations, SmoothQuant + FastBiasCorrection); attention MatMuls,"
                     " softmax, LayerNorm, GELU fp32"}
    meta["int8"] = int8
json.dump(meta, open(sys.argv[1], "w"), indent=1)
open(sys.argv[1], "a").write("\n")
EOF
echo "$STAMP" > "$OUT_DIR/.complete"
log "done: $OUT_DIR"
