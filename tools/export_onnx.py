#!/usr/bin/env python3
"""Export a Hugging Face BERT folder to an fp32 ONNX model for the C++ "onnx" backend.

Runs with the SYSTEM python (/usr/bin/python3: Debian's python3-torch 1.13 + numpy); the
module itself comes from tools/torch_bert.py (no transformers needed).

    /usr/bin/python3 tools/export_onnx.py MODEL_DIR OUT.onnx [--opset 17]

Opset 17 is the highest torch 1.13 exports; OpenVINO (2026.x, the C++ backend's runtime) reads
it, and LayerNorm becomes one LayerNormalization node instead of ~9 primitive ops (14 also works).

The ONNX graph has three int64 inputs, dynamic axes "batch" and "sequence":
    input_ids, attention_mask, token_type_ids          [batch, sequence]
and one float32 output:
    last_hidden_state [batch, sequence, hidden]        embedding models
    logits            [batch, num_labels]              cross-encoders (ForSequenceClassification)

Checks done after export (the ONNX itself cannot be run here: no onnxruntime/OpenVINO in the
system python; tools/quantize_onnx_int8.py runs it on OpenVINO):
  - padding invariance of the torch module: a right-padded batch vs each sequence run alone,
    max abs diff over real tokens (or over logits); fails above 1e-4;
  - if MODEL_DIR/expected.jsonl exists (tests/data/tiny-cross-encoder*: fp32 logits from
    transformers for pre-tokenised pairs), every pair's logits vs expected; fails above 1e-4.
Prints the ONNX file size and timings. Exit status 1 when a check fails.
"""
import argparse
import json
import os
import sys
import time

import numpy as np
import torch

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from torch_bert import load_model  # noqa: E402

TOLERANCE = 1e-4


def run(model, ids_list, tt_list=None):
    """Runs sequences as one right-padded batch; returns the output tensor."""
    tt_list = tt_list or [[0] * len(x) for x in ids_list]
    seq = max(len(x) for x in ids_list)
    ids = torch.zeros(len(ids_list), seq, dtype=torch.int64)
    mask = torch.zeros_like(ids)
    tt = torch.zeros_like(ids)
    for i, (x, t) in enumerate(zip(ids_list, tt_list)):
        ids[i, : len(x)] = torch.tensor(x)
        mask[i, : len(x)] = 1
        tt[i, : len(t)] = torch.tensor(t)
    with torch.no_grad():
        return model(ids, mask, tt)


def padding_check(model, info, ids_list, tt_list=None):
    """Max abs diff between a padded batch and the same sequences run one at a time."""
    batch = run(model, ids_list, tt_list)
    worst = 0.0
    for i, x in enumerate(ids_list):
        single = run(model, [x], [tt_list[i]] if tt_list else None)[0]
        got = batch[i] if info["num_labels"] else batch[i, : len(x)]
        worst = max(worst, (got - single).abs().max().item())
    return worst


def synthetic_ids(vocab, max_len, seed=0):
    """Deterministic random token ids of varied lengths ([CLS]-like 101 / [SEP]-like 102 ends)."""
    rng = np.random.default_rng(seed)
    lengths = [n for n in (3, 9, 17, 40, 64, 128) if n <= max_len]
    return [[101] + rng.integers(1000, vocab, n - 2).tolist() + [102] for n in lengths]


def expected_check(model, path):
    """Compares logits with expected.jsonl ({input_ids, token_type_ids, logits} per line)."""
    rows = [json.loads(line) for line in open(path) if line.strip()]
    worst = 0.0
    for r in rows:
        got = run(model, [r["input_ids"]], [r["token_type_ids"]])[0].numpy()
        worst = max(worst, float(np.abs(got - np.asarray(r["logits"], np.float32)).max()))
    return rows, worst


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("model_dir")
    ap.add_argument("out_onnx")
    ap.add_argument("--opset", type=int, default=17)
    args = ap.parse_args()
    torch.set_num_threads(max(1, os.cpu_count() or 1))

    t0 = time.perf_counter()
    model, info = load_model(args.model_dir)
    cfg = json.load(open(os.path.join(args.model_dir, "config.json")))
    print(f"loaded {args.model_dir}: {info['kind']}, tensor prefix {info['prefix']!r}, "
          f"{info['layers']} layers, hidden {info['hidden_size']}, num_labels "
          f"{info['num_labels']}, unused tensors {info['unused_tensors']} "
          f"({time.perf_counter() - t0:.2f} s)")

    failed = False
    expected = os.path.join(args.model_dir, "expected.jsonl")
    if os.path.exists(expected):
        rows, worst = expected_check(model, expected)
        ok = worst <= TOLERANCE
        failed |= not ok
        print(f"expected.jsonl: {len(rows)} pairs, max abs logit diff vs transformers "
              f"{worst:.3g} ({'ok' if ok else 'FAIL'}, tolerance {TOLERANCE})")
        ids_list = [r["input_ids"] for r in rows[:16]]
        tt_list = [r["token_type_ids"] for r in rows[:16]]
    else:
        ids_list = synthetic_ids(cfg["vocab_size"], min(128, cfg["max_position_embeddings"]))
        tt_list = None
    worst = padding_check(model, info, ids_list, tt_list)
    ok = worst <= TOLERANCE
    failed |= not ok
    lengths = sorted({len(x) for x in ids_list})
    print(f"padding check: {len(ids_list)} sequences (lengths {lengths[0]}..{lengths[-1]}), "
          f"padded batch vs single max abs diff {worst:.3g} ({'ok' if ok else 'FAIL'})")

    # Dummy input: batch 2, sequence 8 with padding in row 1; shapes stay symbolic.
    ids = torch.tensor([[101, 2000, 2001, 2002, 2003, 2004, 2005, 102],
                        [101, 2010, 2011, 102, 0, 0, 0, 0]], dtype=torch.int64)
    ids = ids.clamp(max=cfg["vocab_size"] - 1)
    mask = (ids != 0).to(torch.int64)
    tt = torch.zeros_like(ids)
    out_name = info["output_name"]
    axes = {n: {0: "batch", 1: "sequence"} for n in ("input_ids", "attention_mask", "token_type_ids")}
    axes[out_name] = {0: "batch"} if info["num_labels"] else {0: "batch", 1: "sequence"}
    os.makedirs(os.path.dirname(os.path.abspath(args.out_onnx)), exist_ok=True)
    t0 = time.perf_counter()
    with torch.no_grad():
        torch.onnx.export(model, (ids, mask, tt), args.out_onnx,
                          input_names=["input_ids", "attention_mask", "token_type_ids"],
                          output_names=[out_name], dynamic_axes=axes,
                          opset_version=args.opset, do_constant_folding=True)
    shape = "[batch, num_labels]" if info["num_labels"] else "[batch, sequence, hidden]"
    print(f"exported {args.out_onnx}: opset {args.opset}, torch {torch.__version__}, "
          f"output {out_name} {shape}, {os.path.getsize(args.out_onnx)} bytes "
          f"({os.path.getsize(args.out_onnx) / 2**20:.2f} MiB), {time.perf_counter() - t0:.2f} s")
    if failed:
        sys.exit("export_onnx: a check FAILED (see above)")


if __name__ == "__main__":
    main()
