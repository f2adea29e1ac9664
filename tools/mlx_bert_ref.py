#!/usr/bin/env python3
"""A BERT encoder in MLX's own Python API (mlx.core + mlx.nn), from a Hugging Face model folder.

The baseline for encserve's `mlx` backend (src/backends/mlx/mlx_backend_impl.cc): the same
library through its Python API, computing the same thing in the same precisions:
  fp32        everything float32
  bf16, fp16  model.set_dtype(...): every encoder parameter and the activations in that dtype
              (mx.fast.layer_norm and the attention softmax compute in float32 inside MLX)
  int8, int4  nn.quantize(...) of every encoder Linear (affine, --group-size weights per group,
              mx.quantized_matmul); embeddings, LayerNorms and activations float32
The pooler and classifier of cross-encoders stay float32 in every precision.

Runs with the pyenv python3 that has mlx[cpu], numpy and tokenizers (no torch, no
transformers): weights come from model.safetensors through mx.load, tokens from
tokenizer.json. Batches are padded to their longest text; attention masks padded keys with a
boolean mask in mx.fast.scaled_dot_product_attention.

  python3 tools/mlx_bert_ref.py -p int8 "how long do fleas live" "a second text"
prints JSON {"dim", "precision", "embeddings"} (pooled as 1_Pooling says, L2-normalised when
the model has a Normalize module), like `encserve embed`. --bench N times N forward passes of
the given texts as one batch (after a warm-up) and prints texts/s instead.
Import: load(model_dir, precision, group_size) -> Model; Model.embed(texts) / .logits(pairs).
"""
import argparse
import json
import math
import os
import sys
import time

import mlx.core as mx
import mlx.nn as nn
import numpy as np
from tokenizers import Tokenizer

DEFAULT_MODEL = os.environ.get(
    "ENCSERVE_MODEL", os.path.expanduser("~/.cache/encserve/models/all-MiniLM-L6-v2"))
PREFIXES = ("bert.", "model.")
DTYPES = {"bf16": mx.bfloat16, "fp16": mx.float16}
BITS = {"int8": 8, "int4": 4}


class Embeddings(nn.Module):
    def __init__(self, cfg):
        super().__init__()
        h = cfg["hidden_size"]
        self.word_embeddings = nn.Embedding(cfg["vocab_size"], h)
        self.position_embeddings = nn.Embedding(cfg["max_position_embeddings"], h)
        self.token_type_embeddings = nn.Embedding(cfg.get("type_vocab_size", 2), h)
        self.LayerNorm = nn.LayerNorm(h, eps=cfg.get("layer_norm_eps", 1e-12))

    def __call__(self, ids, types):
        x = self.word_embeddings(ids) + self.token_type_embeddings(types)
        x = x + self.position_embeddings.weight[: ids.shape[1]]
        return self.LayerNorm(x)


class SelfAttention(nn.Module):
    def __init__(self, h, heads):
        super().__init__()
        self.heads = heads
        self.query, self.key, self.value = nn.Linear(h, h), nn.Linear(h, h), nn.Linear(h, h)

    def __call__(self, x, keep):
        b, s, h = x.shape
        split = lambda t: t.reshape(b, s, self.heads, h // self.heads).transpose(0, 2, 1, 3)
        ctx = mx.fast.scaled_dot_product_attention(
            split(self.query(x)), split(self.key(x)), split(self.value(x)),
            scale=1.0 / math.sqrt(h // self.heads), mask=keep)
        return ctx.transpose(0, 2, 1, 3).reshape(b, s, h)


class DenseLayerNorm(nn.Module):  # BertSelfOutput / BertOutput: LayerNorm(residual + dense(x))
    def __init__(self, d_in, d_out, eps):
        super().__init__()
        self.dense = nn.Linear(d_in, d_out)
        self.LayerNorm = nn.LayerNorm(d_out, eps=eps)

    def __call__(self, x, residual):
        return self.LayerNorm(residual + self.dense(x))


class Attention(nn.Module):
    def __init__(self, h, heads, eps):
        super().__init__()
        self.self = SelfAttention(h, heads)
        self.output = DenseLayerNorm(h, h, eps)

    def __call__(self, x, keep):
        return self.output(self.self(x, keep), x)


class Intermediate(nn.Module):
    def __init__(self, h, inner):
        super().__init__()
        self.dense = nn.Linear(h, inner)

    def __call__(self, x):
        return nn.gelu(self.dense(x))  # exact (erf) GELU


class Layer(nn.Module):
    def __init__(self, cfg):
        super().__init__()
        h, eps = cfg["hidden_size"], cfg.get("layer_norm_eps", 1e-12)
        self.attention = Attention(h, cfg["num_attention_heads"], eps)
        self.intermediate = Intermediate(h, cfg["intermediate_size"])
        self.output = DenseLayerNorm(cfg["intermediate_size"], h, eps)

    def __call__(self, x, keep):
        x = self.attention(x, keep)
        return self.output(self.intermediate(x), x)


class Encoder(nn.Module):
    def __init__(self, cfg):
        super().__init__()
        self.layer = [Layer(cfg) for _ in range(cfg["num_hidden_layers"])]


class Pooler(nn.Module):
    def __init__(self, h):
        super().__init__()
        self.dense = nn.Linear(h, h)


class Bert(nn.Module):
    def __init__(self, cfg, num_labels):
        super().__init__()
        self.embeddings = Embeddings(cfg)
        self.encoder = Encoder(cfg)
        if num_labels:
            self.pooler = Pooler(cfg["hidden_size"])
            self.classifier = nn.Linear(cfg["hidden_size"], num_labels)

    def __call__(self, ids, types, mask):
        """last_hidden_state [batch, seq, hidden] for padded int32 ids/types and 0/1 mask."""
        keep = (mask > 0)[:, None, None, :]
        x = self.embeddings(ids, types)
        for layer in self.encoder.layer:
            x = layer(x, keep)
        return x

    def head(self, hidden):
        cls = hidden[:, 0].astype(mx.float32)
        return self.classifier(mx.tanh(self.pooler.dense(cls)))


def _read_json(path, default=None):
    if not os.path.exists(path):
        return default
    with open(path) as f:
        return json.load(f)


def _weights(model_dir, cross_encoder):
    """{module path: array}: checkpoint prefixes stripped, gamma/beta renamed, extras dropped."""
    out = {}
    for name, value in mx.load(os.path.join(model_dir, "model.safetensors")).items():
        for p in PREFIXES:
            if name.startswith(p):
                name = name[len(p):]
        name = name.replace("LayerNorm.gamma", "LayerNorm.weight").replace(
            "LayerNorm.beta", "LayerNorm.bias")
        wanted = ("embeddings.", "encoder.") + (("pooler.", "classifier.") if cross_encoder else ())
        if name.startswith(wanted) and not name.endswith("position_ids"):
            out[name] = value.astype(mx.float32)
    return out


class Model:
    """A loaded model in one precision: embed(texts) and logits(pairs)."""

    def __init__(self, model_dir, precision="fp32", group_size=64):
        cfg = _read_json(os.path.join(model_dir, "config.json"))
        archs = cfg.get("architectures") or []
        self.cross_encoder = any("ForSequenceClassification" in a for a in archs)
        num_labels = 0
        if self.cross_encoder:
            num_labels = len(cfg.get("id2label", {})) or cfg.get("num_labels", 1)
        self.bert = Bert(cfg, num_labels)
        self.bert.load_weights(list(_weights(model_dir, self.cross_encoder).items()), strict=True)
        self.precision = precision
        if precision in DTYPES:
            self.bert.set_dtype(DTYPES[precision])
            if self.cross_encoder:  # the head stays float32
                self.bert.pooler.set_dtype(mx.float32)
                self.bert.classifier.set_dtype(mx.float32)
        elif precision in BITS:
            nn.quantize(self.bert, group_size=group_size, bits=BITS[precision],
                        class_predicate=lambda path, m: isinstance(m, nn.Linear)
                        and path.startswith("encoder."))
        elif precision != "fp32":
            raise ValueError(f"unknown precision {precision}")
        mx.eval(self.bert.parameters())
        self.pad_id = cfg.get("pad_token_id", 0)
        pooling = _read_json(os.path.join(model_dir, "1_Pooling", "config.json"), {})
        self.pooling = ("cls" if pooling.get("pooling_mode_cls_token")
                        else "max" if pooling.get("pooling_mode_max_tokens") else "mean")
        modules = _read_json(os.path.join(model_dir, "modules.json"), [])
        self.normalize = any(m.get("type", "").endswith("Normalize") for m in modules)
        max_len = _read_json(os.path.join(model_dir, "sentence_bert_config.json"), {}).get(
            "max_seq_length", cfg["max_position_embeddings"])
        self.tokenizer = Tokenizer.from_file(os.path.join(model_dir, "tokenizer.json"))
        self.tokenizer.enable_truncation(max_len)
        self.tokenizer.no_padding()

    def _pad(self, encodings):
        seq = max(len(e.ids) for e in encodings)
        ids = np.full((len(encodings), seq), self.pad_id, np.int32)
        types = np.zeros_like(ids)
        mask = np.zeros_like(ids)
        for i, e in enumerate(encodings):
            n = len(e.ids)
            ids[i, :n], types[i, :n], mask[i, :n] = e.ids, e.type_ids, 1
        return mx.array(ids), mx.array(types), mx.array(mask), mask

    def hidden(self, encodings):
        ids, types, mask, np_mask = self._pad(encodings)
        h = self.bert(ids, types, mask).astype(mx.float32)
        mx.eval(h)
        return np.array(h), np_mask

    def embed(self, texts, normalize=None):
        h, mask = self.hidden(self.tokenizer.encode_batch(texts))
        m = mask[:, :, None].astype(np.float32)
        if self.pooling == "cls":
            out = h[:, 0]
        elif self.pooling == "max":
            out = np.where(m > 0, h, -np.inf).max(axis=1)
        else:
            out = (h * m).sum(axis=1) / m.sum(axis=1)
        if self.normalize if normalize is None else normalize:
            out = out / np.maximum(np.linalg.norm(out, axis=1, keepdims=True), 1e-12)
        return out

    def logits(self, pairs):
        ids, types, mask, _ = self._pad(self.tokenizer.encode_batch(list(pairs)))
        out = self.bert.head(self.bert(ids, types, mask))
        mx.eval(out)
        return np.array(out)


def load(model_dir=DEFAULT_MODEL, precision="fp32", group_size=64):
    return Model(model_dir, precision, group_size)


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("texts", nargs="+")
    ap.add_argument("-m", "--model", default=DEFAULT_MODEL)
    ap.add_argument("-p", "--precision", default="fp32",
                    choices=["fp32", "bf16", "fp16", "int8", "int4"])
    ap.add_argument("--group-size", type=int, default=64, choices=[32, 64, 128])
    ap.add_argument("--bench", type=int, default=0, help="time N passes; print texts/s")
    args = ap.parse_args()
    mx.set_default_device(mx.cpu)
    model = load(args.model, args.precision, args.group_size)
    if args.bench:
        model.embed(args.texts)
        start = time.perf_counter()
        for _ in range(args.bench):
            model.embed(args.texts)
        secs = time.perf_counter() - start
        print(json.dumps({"precision": args.precision, "texts_per_s":
                          round(len(args.texts) * args.bench / secs, 2), "batch": len(args.texts),
                          "mlx": mx.__version__}))
        return
    emb = model.embed(args.texts)
    json.dump({"dim": int(emb.shape[1]), "precision": args.precision,
               "embeddings": [[float(v) for v in row] for row in emb]}, sys.stdout)
    print()


if __name__ == "__main__":
    main()
