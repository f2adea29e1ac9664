#!/usr/bin/env python3
"""Quantise an fp32 BERT embedding ONNX model to an int8 OpenVINO IR with NNCF, and check it.

Runs with the pyenv python (`python3`: openvino, nncf, numpy, tokenizers; no torch needed):

    python3 tools/quantize_onnx_int8.py MODEL_DIR MODEL.onnx OUT.xml [--calibration 300]
        [--eval 200] [--golden tests/data/minilm_golden] [--summary-json FILE]

1. openvino.Core().read_model(MODEL.onnx) (made by tools/export_onnx.py; output last_hidden_state).
2. Calibration: N MS MARCO dev-small queries (file rows CALIB_START.., disjoint from the first
   600 rows used by tests/data/minilm_golden and from the evaluation rows at the end of the file),
   tokenised with MODEL_DIR/tokenizer.json (or vocab.txt via BertWordPieceTokenizer, lowercase
   from tokenizer_config.json), batch 1 per sample, right-padded to a multiple of 16 so that
   masked positions are seen as in served batches; int64 inputs.
3. nncf.quantize(..., model_type=TRANSFORMER, subset_size=N); openvino.save_model(q, OUT.xml,
   compress_to_fp16=False) (OUT.bin next to it).
4. Quality: the last EVAL queries of the file, batches of 16, mean-pooled embeddings from the fp32
   ONNX and the int8 IR, both compiled on CPU with INFERENCE_PRECISION_HINT f32 (so the difference
   is the quantisation alone); prints mean/min cosine and exits 1 if the mean is below 0.98.
   Also printed: int8 with the CPU's default precision (bf16 where the CPU has AMX).
   --golden DIR additionally checks the fp32 ONNX against DIR/embeddings.f32 (normalised
   sentence-transformers embeddings of DIR/texts.jsonl) - an end-to-end check of the export.
"""
import argparse
import json
import os
import sys
import time

import nncf
import numpy as np
import openvino as ov
from tokenizers import Tokenizer
from tokenizers.implementations import BertWordPieceTokenizer

QUERIES = "/work/shared/data/msmarco-dev-small-queries.tsv"
CALIB_START = 1000
MIN_MEAN_COSINE = 0.98
F32 = {"INFERENCE_PRECISION_HINT": "f32"}


def read_json(path, default=None):
    return json.load(open(path)) if os.path.exists(path) else default


def max_length(model_dir):
    """sentence-transformers max_seq_length, else tokenizer model_max_length, capped by positions."""
    cfg = read_json(os.path.join(model_dir, "config.json"))
    st = read_json(os.path.join(model_dir, "sentence_bert_config.json"), {})
    tk = read_json(os.path.join(model_dir, "tokenizer_config.json"), {})
    n = st.get("max_seq_length") or tk.get("model_max_length") or 512
    return int(min(n, cfg["max_position_embeddings"]))


def load_tokenizer(model_dir, max_len):
    path = os.path.join(model_dir, "tokenizer.json")
    if os.path.exists(path):
        tok, source = Tokenizer.from_file(path), "tokenizer.json"
    else:
        tc = read_json(os.path.join(model_dir, "tokenizer_config.json"), {})
        tok = BertWordPieceTokenizer(os.path.join(model_dir, "vocab.txt"),
                                     lowercase=tc.get("do_lower_case", True),
                                     strip_accents=tc.get("strip_accents"),
                                     handle_chinese_chars=tc.get("tokenize_chinese_chars", True))
        source = "vocab.txt"
    tok.no_padding()
    tok.enable_truncation(max_len)
    return tok, source


def encode(tok, texts, multiple=1):
    """Right-padded int64 input dict for a list of texts (length rounded up to `multiple`)."""
    encs = tok.encode_batch(texts)
    seq = max(len(e.ids) for e in encs)
    seq = -(-seq // multiple) * multiple
    arrays = {n: np.zeros((len(texts), seq), np.int64)
              for n in ("input_ids", "attention_mask", "token_type_ids")}
    for i, e in enumerate(encs):
        arrays["input_ids"][i, : len(e.ids)] = e.ids
        arrays["attention_mask"][i, : len(e.ids)] = e.attention_mask
        arrays["token_type_ids"][i, : len(e.ids)] = e.type_ids
    return arrays


def embed(compiled, tok, texts, batch=16, normalize=False):
    """Mask-weighted mean pooling of last_hidden_state; returns (embeddings, seconds)."""
    out, t0 = [], time.perf_counter()
    for i in range(0, len(texts), batch):
        inputs = encode(tok, texts[i: i + batch])
        hidden = compiled(inputs)[0]
        mask = inputs["attention_mask"][:, :, None].astype(np.float32)
        out.append((hidden * mask).sum(1) / np.maximum(mask.sum(1), 1e-9))
    emb = np.concatenate(out)
    if normalize:
        emb /= np.maximum(np.linalg.norm(emb, axis=1, keepdims=True), 1e-12)
    return emb, time.perf_counter() - t0


def cosines(a, b):
    return (a * b).sum(1) / (np.linalg.norm(a, axis=1) * np.linalg.norm(b, axis=1))


def golden_check(compiled, tok, golden_dir):
    meta = read_json(os.path.join(golden_dir, "meta.json"))
    texts = [json.loads(line) for line in open(os.path.join(golden_dir, "texts.jsonl"))]
    ref = np.fromfile(os.path.join(golden_dir, "embeddings.f32"), "<f4").reshape(len(texts), -1)
    tok.enable_truncation(meta.get("max_seq_length", 512))
    emb, secs = embed(compiled, tok, texts, normalize=meta.get("normalized", True))
    cos = cosines(emb, ref)
    print(f"golden {golden_dir}: {len(texts)} texts, fp32 ONNX on OpenVINO vs sentence-transformers: "
          f"max abs diff {np.abs(emb - ref).max():.3g}, min cosine {cos.min():.7f} ({secs:.1f} s)")
    return float(np.abs(emb - ref).max()), float(cos.min())


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("model_dir")
    ap.add_argument("onnx_in")
    ap.add_argument("out_xml")
    ap.add_argument("--calibration", type=int, default=300)
    ap.add_argument("--eval", type=int, default=200)
    ap.add_argument("--queries", default=QUERIES)
    ap.add_argument("--golden", help="tests/data/minilm_golden-style folder to check the fp32 model")
    ap.add_argument("--summary-json", help="write the numbers printed here to this file")
    args = ap.parse_args()

    core = ov.Core()
    t0 = time.perf_counter()
    model = core.read_model(args.onnx_in)
    if model.outputs[0].get_any_name() != "last_hidden_state":
        sys.exit("quantize_onnx_int8: only embedding models (output last_hidden_state) are "
                 "quantised; cross-encoders take pairs, which query calibration does not cover")
    t_read = time.perf_counter() - t0

    queries = [line.rstrip("\n").split("\t", 1)[1] for line in open(args.queries, encoding="utf-8")]
    calib_rows = (CALIB_START, CALIB_START + args.calibration)
    eval_rows = (len(queries) - args.eval, len(queries))
    if calib_rows[1] > eval_rows[0]:
        sys.exit(f"not enough queries for {args.calibration} calibration + {args.eval} evaluation")
    max_len = max_length(args.model_dir)
    tok, tok_source = load_tokenizer(args.model_dir, max_len)
    t0 = time.perf_counter()
    samples = [encode(tok, [q], multiple=16) for q in queries[calib_rows[0]: calib_rows[1]]]
    t_tok = time.perf_counter() - t0
    lengths = [s["input_ids"].shape[1] for s in samples]
    print(f"read {args.onnx_in} ({t_read:.2f} s); calibration: {len(samples)} queries, rows "
          f"{calib_rows[0]}..{calib_rows[1] - 1} of {os.path.basename(args.queries)}, tokenizer "
          f"{tok_source}, max_length {max_len}, padded lengths {min(lengths)}..{max(lengths)} "
          f"({t_tok:.2f} s)")

    t0 = time.perf_counter()
    quantized = nncf.quantize(model, nncf.Dataset(samples), model_type=nncf.ModelType.TRANSFORMER,
                              subset_size=len(samples))
    t_quant = time.perf_counter() - t0
    t0 = time.perf_counter()
    ov.save_model(quantized, args.out_xml, compress_to_fp16=False)
    t_save = time.perf_counter() - t0
    out_bin = os.path.splitext(args.out_xml)[0] + ".bin"
    print(f"nncf.quantize {t_quant:.1f} s; saved {args.out_xml} + .bin "
          f"({os.path.getsize(out_bin) / 2**20:.2f} MiB, {t_save:.2f} s)")

    texts = queries[eval_rows[0]: eval_rows[1]]
    fp32 = core.compile_model(model, "CPU", F32)
    int8 = core.compile_model(core.read_model(args.out_xml), "CPU", F32)
    e32, s32 = embed(fp32, tok, texts)
    e8, s8 = embed(int8, tok, texts)
    cos = cosines(e32, e8)
    e8d, s8d = embed(core.compile_model(core.read_model(args.out_xml), "CPU"), tok, texts)
    cos_d = cosines(e32, e8d)
    print(f"quality: {len(texts)} queries (rows {eval_rows[0]}..{eval_rows[1] - 1}), mean-pooled "
          f"cosine fp32 vs int8: mean {cos.mean():.5f} min {cos.min():.5f}; int8 at the CPU's "
          f"default precision: mean {cos_d.mean():.5f} min {cos_d.min():.5f}")
    print(f"time for {len(texts)} queries (batch 16, {os.cpu_count()} CPUs): fp32 {s32:.2f} s, "
          f"int8 {s8:.2f} s, int8 default precision {s8d:.2f} s")

    summary = {"calibration_set": os.path.basename(args.queries), "calibration_rows": calib_rows,
               "calibration_size": len(samples), "calibration_padding": "each query alone, "
               "right-padded to a multiple of 16", "tokenizer": tok_source, "max_length": max_len,
               "eval_rows": eval_rows, "cosine_mean": float(cos.mean()),
               "cosine_min": float(cos.min()), "cosine_mean_default_precision": float(cos_d.mean()),
               "cosine_min_default_precision": float(cos_d.min()), "quantize_seconds": t_quant,
               "model_type": "TRANSFORMER", "inference_precision_hint": "f32"}
    if args.golden:
        diff, cmin = golden_check(fp32, tok, args.golden)
        summary["golden"] = {"dir": args.golden, "max_abs_diff": diff, "min_cosine": cmin}
    if args.summary_json:
        json.dump(summary, open(args.summary_json, "w"), indent=1)
    if cos.mean() < MIN_MEAN_COSINE:
        sys.exit(f"FAIL: mean cosine {cos.mean():.5f} < {MIN_MEAN_COSINE}")


if __name__ == "__main__":
    main()
