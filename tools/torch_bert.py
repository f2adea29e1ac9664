#!/usr/bin/env python3
"""A plain eager PyTorch BERT encoder built from a Hugging Face model folder.

Runs with the SYSTEM python (/usr/bin/python3, Debian's python3-torch 1.13 + numpy); it needs
neither transformers nor the safetensors package: model.safetensors is parsed here with
json + numpy (F32, F16 and BF16 tensors; everything is computed in float32).

The module follows BERT exactly as Hugging Face defines it (absolute position embeddings):
  embeddings = LayerNorm(word[input_ids] + position[0..S-1] + token_type[token_type_ids])
  L layers of: self-attention (additive mask -10000 on padded keys, taken from attention_mask)
               -> dense -> LayerNorm(x + attn); FFN dense -> exact erf GELU -> dense
               -> LayerNorm(x + ffn)                                         (post-LN)
Submodule names mirror the checkpoint's tensor names, so loading is a rename + load_state_dict.

forward(input_ids, attention_mask, token_type_ids) returns
  - embedding models (BertModel, ...):            last_hidden_state  [batch, seq, hidden]
  - cross-encoders (architectures contains "ForSequenceClassification"):
        logits [batch, num_labels] = classifier(tanh(pooler.dense(hidden[:, 0])))

Tensor names accepted: prefixes "", "bert.", "model." in front of "embeddings." / "encoder." /
"pooler."; "classifier.*" with or without that prefix; old LayerNorm names gamma/beta.

Import and call load_model(model_dir) -> (model in eval mode, info dict); used by
tools/export_onnx.py and by benchmarks. Running this file prints a short summary of a folder.
"""
import json
import math
import os
import sys

import numpy as np
import torch
from torch import nn

MASK_VALUE = -10000.0  # added to attention scores of padded keys (exp underflows to 0 in fp32)
PREFIXES = ("", "bert.", "model.")


def read_safetensors(path):
    """Returns {name: float32 numpy array} for every tensor in a .safetensors file."""
    with open(path, "rb") as f:
        header_len = int.from_bytes(f.read(8), "little")
        header = json.loads(f.read(header_len))
        data = f.read()
    tensors = {}
    for name, spec in header.items():
        if name == "__metadata__":
            continue
        begin, end = spec["data_offsets"]
        raw, dtype, shape = data[begin:end], spec["dtype"], spec["shape"]
        if dtype == "F32":
            arr = np.frombuffer(raw, dtype="<f4")
        elif dtype == "F16":
            arr = np.frombuffer(raw, dtype="<f2").astype(np.float32)
        elif dtype == "BF16":  # bfloat16 = the high 16 bits of a float32
            arr = (np.frombuffer(raw, dtype="<u2").astype(np.uint32) << 16).view(np.float32)
        elif dtype == "I64":  # e.g. a stored position_ids buffer; not a weight
            arr = np.frombuffer(raw, dtype="<i8")
        else:
            raise ValueError(f"{path}: tensor {name}: unsupported dtype {dtype}")
        tensors[name] = arr.reshape(shape).copy()
    return tensors


class Embeddings(nn.Module):
    def __init__(self, cfg):
        super().__init__()
        hidden = cfg["hidden_size"]
        self.word_embeddings = nn.Embedding(cfg["vocab_size"], hidden)
        self.position_embeddings = nn.Embedding(cfg["max_position_embeddings"], hidden)
        self.token_type_embeddings = nn.Embedding(cfg.get("type_vocab_size", 2), hidden)
        self.LayerNorm = nn.LayerNorm(hidden, eps=cfg.get("layer_norm_eps", 1e-12))
        self.register_buffer("position_ids",
                             torch.arange(cfg["max_position_embeddings"]).unsqueeze(0),
                             persistent=False)

    def forward(self, input_ids, token_type_ids):
        positions = self.position_ids[:, : input_ids.shape[1]]
        x = (self.word_embeddings(input_ids) + self.position_embeddings(positions)
             + self.token_type_embeddings(token_type_ids))
        return self.LayerNorm(x)


class SelfAttention(nn.Module):
    def __init__(self, hidden, heads):
        super().__init__()
        self.heads, self.head_dim = heads, hidden // heads
        self.query = nn.Linear(hidden, hidden)
        self.key = nn.Linear(hidden, hidden)
        self.value = nn.Linear(hidden, hidden)

    def split(self, x):  # [B, S, H] -> [B, heads, S, head_dim]
        return x.view(x.shape[0], x.shape[1], self.heads, self.head_dim).transpose(1, 2)

    def forward(self, x, mask_add):
        q, k, v = self.split(self.query(x)), self.split(self.key(x)), self.split(self.value(x))
        scores = torch.matmul(q, k.transpose(-1, -2)) / math.sqrt(self.head_dim) + mask_add
        ctx = torch.matmul(torch.softmax(scores, dim=-1), v)  # [B, heads, S, head_dim]
        return ctx.transpose(1, 2).reshape(x.shape[0], x.shape[1], -1)


class DenseNorm(nn.Module):
    """dense(x) + residual, then LayerNorm (BERT's "output" blocks)."""

    def __init__(self, d_in, d_out, eps):
        super().__init__()
        self.dense = nn.Linear(d_in, d_out)
        self.LayerNorm = nn.LayerNorm(d_out, eps=eps)

    def forward(self, x, residual):
        return self.LayerNorm(self.dense(x) + residual)


class Attention(nn.Module):
    def __init__(self, hidden, heads, eps):
        super().__init__()
        self.self = SelfAttention(hidden, heads)
        self.output = DenseNorm(hidden, hidden, eps)

    def forward(self, x, mask_add):
        return self.output(self.self(x, mask_add), x)


class Intermediate(nn.Module):
    def __init__(self, hidden, inner):
        super().__init__()
        self.dense = nn.Linear(hidden, inner)

    def forward(self, x):
        return nn.functional.gelu(self.dense(x))  # exact erf GELU (approximate="none")


class Layer(nn.Module):
    def __init__(self, cfg):
        super().__init__()
        hidden, eps = cfg["hidden_size"], cfg.get("layer_norm_eps", 1e-12)
        self.attention = Attention(hidden, cfg["num_attention_heads"], eps)
        self.intermediate = Intermediate(hidden, cfg["intermediate_size"])
        self.output = DenseNorm(cfg["intermediate_size"], hidden, eps)

    def forward(self, x, mask_add):
        a = self.attention(x, mask_add)
        return self.output(self.intermediate(a), a)


class Encoder(nn.Module):
    def __init__(self, cfg):
        super().__init__()
        self.layer = nn.ModuleList([Layer(cfg) for _ in range(cfg["num_hidden_layers"])])

    def forward(self, x, mask_add):
        for layer in self.layer:
            x = layer(x, mask_add)
        return x


class Pooler(nn.Module):
    def __init__(self, hidden):
        super().__init__()
        self.dense = nn.Linear(hidden, hidden)

    def forward(self, hidden_states):
        return torch.tanh(self.dense(hidden_states[:, 0]))


class Bert(nn.Module):
    def __init__(self, cfg, num_labels=0):
        super().__init__()
        if cfg.get("hidden_act", "gelu") != "gelu":
            raise ValueError(f"hidden_act {cfg.get('hidden_act')!r}: only exact 'gelu' is built")
        if cfg.get("position_embedding_type", "absolute") != "absolute":
            raise ValueError("only absolute position embeddings are supported")
        self.num_labels = num_labels
        self.embeddings = Embeddings(cfg)
        self.encoder = Encoder(cfg)
        if num_labels:
            self.pooler = Pooler(cfg["hidden_size"])
            self.classifier = nn.Linear(cfg["hidden_size"], num_labels)

    def forward(self, input_ids, attention_mask, token_type_ids):
        mask_add = (1.0 - attention_mask.to(torch.float32))[:, None, None, :] * MASK_VALUE
        hidden = self.encoder(self.embeddings(input_ids, token_type_ids), mask_add)
        if not self.num_labels:
            return hidden
        return self.classifier(self.pooler(hidden))


def _canonical_names(raw):
    """Maps checkpoint names to this module's names (prefix stripped, gamma/beta renamed)."""
    prefix = next((p for p in PREFIXES if p + "embeddings.word_embeddings.weight" in raw), None)
    if prefix is None:
        raise ValueError("no embeddings.word_embeddings.weight under prefixes " + repr(PREFIXES))
    out = {}
    for name, value in raw.items():
        if name.startswith(prefix + "classifier.") or name.startswith("classifier."):
            key = name[name.index("classifier."):]
        elif name.startswith(prefix):
            key = name[len(prefix):]
        else:
            key = name  # left as is; reported as unused below
        if ".LayerNorm." in key or key.startswith("LayerNorm."):
            key = key.replace(".gamma", ".weight").replace(".beta", ".bias")
        out[key] = value
    return prefix, out


def load_model(model_dir):
    """Builds the module from MODEL_DIR/config.json + model.safetensors; returns (model, info)."""
    with open(os.path.join(model_dir, "config.json")) as f:
        cfg = json.load(f)
    prefix, weights = _canonical_names(read_safetensors(os.path.join(model_dir, "model.safetensors")))
    is_cross = any("ForSequenceClassification" in a for a in cfg.get("architectures") or [])
    num_labels = 0
    if is_cross:
        if "classifier.weight" not in weights:
            raise ValueError("ForSequenceClassification config but no classifier.weight tensor")
        num_labels = weights["classifier.weight"].shape[0]
    model = Bert(cfg, num_labels)
    wanted = model.state_dict().keys()
    unused = sorted(k for k in weights if k not in wanted)
    state = {k: torch.from_numpy(v) for k, v in weights.items() if k in wanted}
    missing = sorted(k for k in wanted if k not in state)
    if missing:
        raise ValueError(f"{model_dir}: missing tensors {missing}")
    model.load_state_dict(state, strict=True)
    model.eval()
    info = {"kind": "cross-encoder" if is_cross else "embedding", "prefix": prefix,
            "num_labels": num_labels, "hidden_size": cfg["hidden_size"],
            "layers": cfg["num_hidden_layers"], "unused_tensors": unused,
            "output_name": "logits" if is_cross else "last_hidden_state"}
    return model, info


if __name__ == "__main__":
    if len(sys.argv) != 2:
        sys.exit("usage: /usr/bin/python3 tools/torch_bert.py MODEL_DIR")
    m, i = load_model(sys.argv[1])
    print(json.dumps(i, indent=1))
    print("parameters:", sum(p.numel() for p in m.parameters()))
