#!/usr/bin/env python3
"""Export all-MiniLM-L6-v2 (BertModel + mean pooling + L2 normalisation, all in one graph)
to ONNX, build the ORT-optimised fp32 graph and the dynamically quantised int8 graph, and
check each against sentence-transformers on 200 real MS MARCO queries.

Outputs (in --cache, default ~/.cache/encserve/peers/):
  minilm.onnx       plain export (torch.onnx.export, TorchScript exporter, opset 17)
  minilm.opt.onnx   onnxruntime.transformers.optimizer (model_type=bert: fused Attention,
                    SkipLayerNormalization, BiasGelu, EmbedLayerNormalization) + ORT_ENABLE_ALL
                    offline optimisation; falls back to plain ORT_ENABLE_ALL if that fails
  minilm.int8.onnx  onnxruntime.quantization.quantize_dynamic(QInt8 weights, per_channel=True,
                    reduce_range=False) of minilm.opt.onnx (MatMul->MatMulInteger/DynamicQuantizeMatMul,
                    Attention->QAttention, EmbedLayerNormalization gets int8 embedding tables);
                    per-tensor weights give mean cosine 0.967 (min 0.94) vs sentence-transformers,
                    per-channel 0.993 (min 0.988), so per-channel is the default (--per-tensor)
  manifest.json     what was built, with the accuracy figures

Usage:  python bench/peers/export_onnx.py [--model DIR] [--cache DIR] [--force]
"""
import argparse
import json
import os
import sys
import time

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TOKENIZERS_PARALLELISM", "true")

HERE = os.path.dirname(os.path.abspath(__file__))
REPO = os.path.dirname(os.path.dirname(HERE))
DEFAULT_MODEL = os.path.expanduser(
    os.environ.get("ENCSERVE_MODEL", "~/.cache/encserve/models/all-MiniLM-L6-v2"))
DEFAULT_CACHE = os.path.expanduser(
    os.path.join(os.environ.get("ENCSERVE_HOME", "~/.cache/encserve"), "peers"))
DEFAULT_DATA = os.environ.get("ENCSERVE_DATA_DIR", os.path.join(os.path.dirname(REPO), "shared", "data"))
if not os.path.isdir(DEFAULT_DATA):
    DEFAULT_DATA = "/work/shared/data"

NUM_HEADS = 12
HIDDEN = 384


def load_queries(data_dir, n=None):
    out = []
    with open(os.path.join(data_dir, "msmarco-dev-small-queries.tsv"), encoding="utf-8") as f:
        for line in f:
            line = line.rstrip("\n")
            if not line:
                continue
            out.append(line.split("\t", 1)[1])
            if n is not None and len(out) >= n:
                break
    return out


def make_tokenizer(model_dir, max_length=256):
    """The model's fast (Rust) tokenizer, configured like sentence-transformers uses it:
    truncation to max_length, padding to the longest text of the batch. tokenizer.json
    ships with truncation 128 / fixed padding 128, which we override."""
    from tokenizers import Tokenizer
    tok = Tokenizer.from_file(os.path.join(model_dir, "tokenizer.json"))
    tok.enable_truncation(max_length=max_length)
    tok.enable_padding(pad_id=0, pad_type_id=0, pad_token="[PAD]")  # no length: longest in batch
    return tok


def tokenize(tok, texts):
    import numpy as np
    encs = tok.encode_batch(list(texts))
    ids = np.array([e.ids for e in encs], dtype=np.int64)
    mask = np.array([e.attention_mask for e in encs], dtype=np.int64)
    tt = np.array([e.type_ids for e in encs], dtype=np.int64)
    return {"input_ids": ids, "attention_mask": mask, "token_type_ids": tt}


def st_reference(model_dir, texts, batch_size=32):
    from sentence_transformers import SentenceTransformer
    from transformers.utils import logging as hf_logging
    hf_logging.disable_progress_bar()
    m = SentenceTransformer(model_dir, device="cpu")
    assert m.max_seq_length == 256, m.max_seq_length
    return m.encode(texts, batch_size=batch_size, convert_to_numpy=True, normalize_embeddings=False)


def cosines(a, b):
    import numpy as np
    a = a.astype(np.float64)
    b = b.astype(np.float64)
    return (a * b).sum(1) / (np.linalg.norm(a, axis=1) * np.linalg.norm(b, axis=1))


def build_torch_module(model_dir, attn_implementation=None):
    """BertModel + mask-weighted mean pooling + L2 normalise (what sentence-transformers does)."""
    import torch
    from transformers import AutoModel
    from transformers.utils import logging as hf_logging

    hf_logging.set_verbosity_error()  # quiet the load report about the unused pooler weights
    hf_logging.disable_progress_bar()
    kw = {"add_pooling_layer": False}  # the BERT pooler (CLS dense+tanh) is not part of the embedding
    if attn_implementation:
        kw["attn_implementation"] = attn_implementation
    bert = AutoModel.from_pretrained(model_dir, **kw)
    bert.eval()

    class SentenceEmbedder(torch.nn.Module):
        def __init__(self, bert):
            super().__init__()
            self.bert = bert

        def forward(self, input_ids, attention_mask, token_type_ids):
            h = self.bert(input_ids=input_ids, attention_mask=attention_mask,
                          token_type_ids=token_type_ids).last_hidden_state
            m = attention_mask.unsqueeze(-1).to(h.dtype)
            s = (h * m).sum(1) / m.sum(1).clamp(min=1e-9)
            return torch.nn.functional.normalize(s, p=2.0, dim=1)

    return SentenceEmbedder(bert).eval()


def export(model_dir, path, opset):
    import torch
    mod = build_torch_module(model_dir, attn_implementation="eager")  # eager = fusable pattern
    ids = torch.tensor([[101, 7592, 2088, 2003, 102], [101, 2054, 2003, 102, 0]], dtype=torch.int64)
    mask = (ids != 0).to(torch.int64)
    tt = torch.zeros_like(ids)
    dyn = {"input_ids": {0: "batch", 1: "seq"}, "attention_mask": {0: "batch", 1: "seq"},
           "token_type_ids": {0: "batch", 1: "seq"}, "sentence_embedding": {0: "batch"}}
    with torch.inference_mode():
        torch.onnx.export(mod, (ids, mask, tt), path, input_names=["input_ids", "attention_mask", "token_type_ids"],
                          output_names=["sentence_embedding"], dynamic_axes=dyn, opset_version=opset,
                          do_constant_folding=True, dynamo=False)


def optimize(src, dst, log):
    """Prefer the BERT-aware optimizer (offline, no hub access needed); fall back to ORT_ENABLE_ALL."""
    import onnx
    try:
        from onnxruntime.transformers import optimizer
        m = optimizer.optimize_model(src, model_type="bert", num_heads=NUM_HEADS, hidden_size=HIDDEN,
                                     opt_level=1, use_gpu=False)
        stats = m.get_fused_operator_statistics()
        log["optimizer"] = "onnxruntime.transformers.optimizer(model_type=bert, opt_level=1)"
        log["fused_ops"] = {k: v for k, v in stats.items() if v}
        m.save_model_to_file(dst)
        if not stats.get("Attention") and not stats.get("MultiHeadAttention"):
            log["optimizer_warning"] = "no attention fusion"
        return
    except Exception as e:  # pragma: no cover - depends on the ORT version
        log["optimizer_error"] = repr(e)
    import onnxruntime as ort
    so = ort.SessionOptions()
    so.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
    so.optimized_model_filepath = dst
    ort.InferenceSession(src, so, providers=["CPUExecutionProvider"])
    log["optimizer"] = "ORT_ENABLE_ALL offline (SessionOptions.optimized_model_filepath)"
    onnx.checker.check_model(dst)


def quantize(src, dst, per_channel, log):
    import onnx
    from onnxruntime.quantization import QuantType, quantize_dynamic
    # The contrib ops of the optimised graph (Attention, SkipLayerNormalization, ...) defeat ONNX
    # shape inference; tell the quantizer their outputs are float.
    quantize_dynamic(src, dst, weight_type=QuantType.QInt8, per_channel=per_channel, reduce_range=False,
                     extra_options={"DefaultTensorType": onnx.TensorProto.FLOAT})
    log["int8"] = {"tool": "onnxruntime.quantization.quantize_dynamic", "weight_type": "QInt8",
                   "per_channel": per_channel, "reduce_range": False, "source": os.path.basename(src)}


def ort_session(path, threads=2):
    import onnxruntime as ort
    so = ort.SessionOptions()
    so.intra_op_num_threads = threads
    so.inter_op_num_threads = 1
    so.execution_mode = ort.ExecutionMode.ORT_SEQUENTIAL
    so.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
    return ort.InferenceSession(path, so, providers=["CPUExecutionProvider"])


def ort_embed(sess, tok, texts, batch=32):
    import numpy as np
    names = {i.name for i in sess.get_inputs()}
    outs = []
    for i in range(0, len(texts), batch):
        feeds = {k: v for k, v in tokenize(tok, texts[i:i + batch]).items() if k in names}
        outs.append(sess.run(["sentence_embedding"], feeds)[0])
    return np.concatenate(outs)


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--model", default=DEFAULT_MODEL)
    ap.add_argument("--cache", default=DEFAULT_CACHE)
    ap.add_argument("--data", default=DEFAULT_DATA)
    ap.add_argument("--opset", type=int, default=17)
    ap.add_argument("--per-tensor", dest="per_channel", action="store_false",
                    help="per-tensor int8 weights (default per-channel: mean cos 0.993 vs 0.967 per-tensor)")
    ap.add_argument("--int8-from", choices=["opt", "plain"], default="opt",
                    help="quantise the BERT-optimised graph (fused Attention -> QAttention) or the plain export")
    ap.add_argument("--n-check", type=int, default=200)
    ap.add_argument("--force", action="store_true", help="rebuild even if the files exist")
    args = ap.parse_args()

    os.makedirs(args.cache, exist_ok=True)
    plain = os.path.join(args.cache, "minilm.onnx")
    opt = os.path.join(args.cache, "minilm.opt.onnx")
    int8 = os.path.join(args.cache, "minilm.int8.onnx")
    log = {"model": os.path.abspath(args.model), "opset": args.opset}

    t = time.perf_counter()
    if args.force or not os.path.exists(plain):
        export(args.model, plain, args.opset)
        print(f"exported {plain} ({time.perf_counter() - t:.1f} s)")
    if args.force or not os.path.exists(opt):
        optimize(plain, opt, log)
        print(f"optimised -> {opt}: {log.get('optimizer')} {log.get('fused_ops', '')}")
    if args.force or not os.path.exists(int8):
        quantize(opt if args.int8_from == "opt" else plain, int8, args.per_channel, log)
        print(f"quantised -> {int8}: {log['int8']}")

    # accuracy vs sentence-transformers on the first n MS MARCO dev-small queries (file order)
    texts = load_queries(args.data, args.n_check)
    ref = st_reference(args.model, texts)
    tok = make_tokenizer(args.model)
    acc = {}
    ok = True
    for name, path in (("minilm.onnx", plain), ("minilm.opt.onnx", opt), ("minilm.int8.onnx", int8)):
        emb = ort_embed(ort_session(path), tok, texts)
        assert emb.shape == (len(texts), HIDDEN), emb.shape
        c = cosines(emb, ref)
        acc[name] = {"mean_cos": float(c.mean()), "min_cos": float(c.min()),
                     "max_abs_diff": float(abs(emb - ref).max()), "size_mb": os.path.getsize(path) / 1e6}
        print(f"{name:18s} vs sentence-transformers on {len(texts)} MS MARCO queries: "
              f"min cos {c.min():.7f}  mean cos {c.mean():.7f}  max|diff| {abs(emb - ref).max():.2e}  "
              f"({os.path.getsize(path) / 1e6:.1f} MB)")
        if "int8" not in name and c.min() < 0.99999:
            ok = False
            print(f"  FAIL: fp32 graph {name} below 0.99999", file=sys.stderr)
    log["accuracy_vs_sentence_transformers"] = acc
    log["n_check"] = len(texts)
    man = os.path.join(args.cache, "manifest.json")
    old = {}
    if os.path.exists(man):
        try:
            old = json.load(open(man))
        except Exception:
            old = {}
    for k in ("optimizer", "fused_ops", "int8", "optimizer_error", "optimizer_warning"):
        if k not in log and k in old:
            log[k] = old[k]
    json.dump(log, open(man, "w"), indent=2)
    print(f"wrote {man}")
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
