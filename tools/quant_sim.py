#!/usr/bin/env python3
"""Simulates encserve's quantised GEMMs on all-MiniLM-L6-v2 and searches for better schemes.

What it simulates
-----------------
The HF `transformers` BERT model runs in fp32; every nn.Linear of the 6 encoder layers is
replaced by a module that reproduces the integer arithmetic of encserve's quantised kernels
(src/kernels/quant.h, src/kernels/ref/quant_ref.cc, src/model/linear.cc). Per layer there are
4 GEMM kinds: `qkv` (query/key/value; the engine fuses them into one GEMM, so they share the
SmoothQuant vector, computed from max_j |W[j, c]| over all 3·384 rows, and the per-row
activation quantisation), `attn_out` (attention.output.dense), `ffn_in` (intermediate.dense,
GELU fused) and `ffn_out` (output.dense, k = 1536, input = GELU output). Attention, softmax,
LayerNorm, GELU and embeddings stay fp32. Pooling: mean over tokens + L2 normalisation, as
sentence-transformers does.

The engine's scheme before asymmetric activations and affine int4 ("cur-int8", "cur-int4-g64",
the baseline the findings compare with; "eng-int8" and "eng-int4-g64" are the engine today:
activations "asym", int4 weights "affine"):
  * SmoothQuant α = 0.5: s_c = clamp(sqrt(act_absmax_c / max_j |W[j,c]|), 1e-3, 1e3) (1 if
    either is 0); W[:, c]·s_c is quantised, x[:, c]·(1/s_c) at run time (float32 products).
    act_absmax: the fp32 model on 16 LCG pseudo-random sequences of 64 token ids (state = 12345;
    state = state·1664525 + 1013904223 mod 2^32; id = state % vocab), type ids 0, no padding.
  * int8 weights per output channel: s_j = max|W_j|/127, q = rint(W·(127/max)) (half to even).
  * int4 weights per (row, group of g along k): s = max|W|/7, q = rint(W·(7/max)) ∈ [-7, 7].
  * activations per row: a_i = max|x_i|/127, xq = rint(x·(127/max)) ∈ [-127, 127].
  * y = a_i · Σ_k xq·Ŵ + bias with Ŵ = s·q the dequantised weight (== a_i·s_j·Σ xq·q).
The integer dot products are evaluated as float32 (or float64 with --exact) matmuls of the
integer-valued activations with the dequantised weights; the difference to the engine's exact
int32 sums is ~1e-7 relative, far below quantisation error (check with --exact).

Variants (one Scheme field each, see `Scheme`):
  act    sym | asym (u8 with zero point: a = (max-min)/255 over the row with 0 included in
         [min, max], zp = clamp(rint(-min/a), 0, 255), xu = clamp(rint(x/a) + zp, 0, 255),
         y = a·(Σ xu·Ŵ - zp·Σ Ŵ)) | fp32 (weight-only: dequantise-to-fp32 path) | bf16
  wbits  8 | 4 | fp32 | bf16;  group 32/64/128 (int4)
  wfmt   sym (±7 / ±127) | affine (int4: s = (max-min)/15, q = rint((W-min)/s) ∈ [0, 15],
         Ŵ = s·q + min, MLX style)
  clip   none | mse (per group / per output channel: clip ratio r ∈ [0.70, 1.00] step 0.01
         minimising ||W - Ŵ||² of that group)
  smooth sq (s_c = absmax_c^α / wmax_c^(1-α)) | none | search-sq / search-awq (per GEMM, α on a
         grid 0..1 step 0.1 minimising ||Q(x)·Q(W)ᵀ - x·Wᵀ||² on the calibration inputs; awq:
         s_c = mean|x_c|^α normalised by sqrt(max s · min s), as AWQ)
  calib  SmoothQuant's act_absmax source: rand (the engine's LCG tokens) | rand-cls (the same
         ids with [CLS] first and [SEP] last, 62 random ids between) | real (64 MS MARCO
         dev-small queries 6000..6063, disjoint from the eval slice)
  rot    block-diagonal Hadamard rotation of k (block 64 or 128; Sylvester H_b / sqrt(b)),
         after smoothing: Ŵ = Q((W·diag(s))·R), x' = (x·diag(1/s))·R, quantised per row.
         R is orthogonal, so x·Wᵀ = x'·(W·diag(s)·R)ᵀ; in C++ x·R is a 64-point FWHT per block.
  wq     rtn (round to nearest) | gptq (Frantar et al.: column-by-column quantisation with
         error feedback through the inverse Hessian H = XᵀX + 1 % mean(diag) of the GEMM's
         (smoothed, rotated) fp32 calibration inputs; natural column order, block 128, group
         grids (incl. clip search) from the error-updated weights) | gptq-act (act order with
         static groups); `seq` = Hessians of layer l from the model with layers < l quantised
  hcalib text for GPTQ / bias correction: passages (86 TREC-DL19 BM25 passages, ranks 1 and 50
         per query) | real512 (queries 6000..6511) | mix (real512 + passages) | big (queries
         1000..2999 + 215 passages) | rand-cls128 (128 LCG sequences, [CLS]/[SEP] wrapped)
  bcorr  bias correction: bias += (W - Ŵ)·mean(x) over the calibration rows
  overrides: per (layer, kind) changes, e.g. keep `ffn_out` in fp32 or layer 5 in int8.
Scheme names read like i4-g64-asym-aff-mse-gptq-rot64-mix-L5=i8 (int4 group 64, u8 asymmetric
activations, affine weights with MSE clip, GPTQ calibrated on `mix`, Hadamard 64, layer 5 kept
in the engine's int8 with asymmetric activations). Groups: verify int8 sens int4 gptq rot combo
combo2 combo3.

Accuracy: cosine between the fp32 sentence embedding and the simulated one, on the first
--n-msmarco MS MARCO dev-small queries and on the unique STS-B test sentences; STS-B test
Spearman (cosine of the pair vs the gold score; fp32 0.8203) with --spearman.

Run (2 cores shared: 1 thread by default; fp32 embeddings are cached in --cache-dir):
  python3 tools/quant_sim.py --list                     # scheme names and groups
  python3 tools/quant_sim.py --groups verify            # current scheme, must give ~0.9986/0.958
  python3 tools/quant_sim.py --groups int8 int4 --spearman
  python3 tools/quant_sim.py --schemes cur-int8 i8-asym --exact
  python3 tools/quant_sim.py --groups sens --n-msmarco 300 --n-sts 600   # faster sensitivity
"""
import argparse
import copy
import dataclasses
import hashlib
import json
import math
import re
import os
import sys
import time
from typing import Dict, List, Optional, Tuple

import numpy as np
import torch
import torch.nn as nn

KINDS = ("qkv", "attn_out", "ffn_in", "ffn_out")
NUM_LAYERS = 6


# --------------------------------------------------------------------------------------------
# Schemes
# --------------------------------------------------------------------------------------------
@dataclasses.dataclass
class Scheme:
    name: str
    wbits: object = 8          # 8 | 4 | "fp32" | "bf16"
    group: int = 64            # int4 group size along k
    wfmt: str = "sym"          # sym | affine (int4)
    clip: str = "none"         # none | mse
    act: str = "sym"           # sym | asym | fp32 | bf16
    alpha: float = 0.5         # SmoothQuant exponent (smooth = sq)
    smooth: str = "sq"         # sq | none | search-sq | search-awq
    calib: str = "rand"        # rand | rand-cls | real | real512 | passages | rand-cls128
    wq: str = "rtn"            # rtn (round to nearest) | gptq
    bcorr: bool = False        # bias correction with the calibration mean of the input
    hcalib: str = ""           # calibration set of gptq / bias correction ("" = calib)
    rot: int = 0               # block-diagonal Hadamard rotation of the k dimension (block size)
    rot_sign: bool = False     # random ±1 signs before the Hadamard blocks (fixed seed)
    damp: float = 0.01         # gptq: dampening, a fraction of mean diag(H)
    cd: int = 0                # gptq: coordinate-descent sweeps after GPTQ (grids fixed)
    refit: bool = False        # gptq: least-squares scales/offsets for the final codes
    seq: bool = False          # gptq: layer l's Hessians from the model with layers < l quantised
    seqg: bool = False         # gptq: every GEMM's Hessian from the model with the GEMMs before it quantised
    bcq: bool = False          # bias correction: mean fp32 output minus mean output from quantised inputs (seqg)
    pool: float = 0.0          # gptq: H = E_tok[xxᵀ] + pool·E_sent[x̄x̄ᵀ] (x̄: a sequence's mean input)
    pool_layers: tuple = (5,)  # layers whose Hessians get the pooled term
    codebook: tuple = ()       # int4 affine: 16 non-uniform levels in grid units [0, 15] (else 0..15)
    gptaq: float = 0.0         # gptq target: W* = W·XᵀXq·Hq⁻¹ (fp32 outputs from quantised inputs), blended by this
    # [(layers or None, kinds or None, {field: value})], applied in order
    overrides: list = dataclasses.field(default_factory=list)
    note: str = ""

    def resolve(self, layer: int, kind: str) -> dict:
        d = {f: getattr(self, f) for f in ("wbits", "group", "wfmt", "clip", "act", "alpha",
                                           "smooth", "wq", "bcorr", "rot", "rot_sign", "damp", "cd", "refit",
                                           "codebook")}
        for layers, kinds, ch in self.overrides:
            if (layers is None or layer in layers) and (kinds is None or kind in kinds):
                d.update(ch)
        return d


def S(name, **kw):
    return Scheme(name=name, **kw)


def build_schemes() -> Dict[str, Tuple[str, Scheme]]:
    """name -> (group, scheme)."""
    out: Dict[str, Tuple[str, Scheme]] = {}

    def add(group, s):
        out[s.name] = (group, s)

    # ---- verification of the engine's current schemes
    add("verify", S("cur-int8", note="engine before asym rows: SQ 0.5 rand calib, sym rows"))
    add("verify", S("cur-int4-g64", wbits=4, group=64, note="engine before affine int4"))
    add("verify", S("eng-int8", act="asym", note="engine today"))
    add("verify", S("eng-int4-g64", wbits=4, group=64, act="asym", wfmt="affine",
                    note="engine today"))

    # ---- int8 variants
    add("int8", S("i8-nosmooth", smooth="none"))
    add("int8", S("i8-asym", act="asym"))
    for a in (0.0, 0.3, 0.7, 0.8):
        add("int8", S(f"i8-a{a}", alpha=a))
        add("int8", S(f"i8-asym-a{a}", act="asym", alpha=a))
    for cal in ("rand-cls", "real"):
        add("int8", S(f"i8-{cal}", calib=cal))
        add("int8", S(f"i8-asym-{cal}", act="asym", calib=cal))
        for a in (0.3, 0.7, 0.8):
            add("int8", S(f"i8-asym-{cal}-a{a}", act="asym", calib=cal, alpha=a))
    add("int8", S("i8-wonly", act="fp32", note="int8 weights, fp32 activations"))
    add("int8", S("i8-search-sq", smooth="search-sq", calib="real"))
    add("int8", S("i8-asym-search-sq", smooth="search-sq", act="asym", calib="real"))
    add("int8", S("i8-asym-search-sq-rand", smooth="search-sq", act="asym", calib="rand"))
    add("int8", S("i8-asym-search-sq-randcls", smooth="search-sq", act="asym",
                  calib="rand-cls"))
    # per-kind keeps
    for kind in KINDS:
        add("int8", S(f"i8-{kind}=fp32", overrides=[(None, (kind,), {"wbits": "fp32",
                                                                       "act": "fp32"})]))
        add("int8", S(f"i8-asym-{kind}=fp32", act="asym",
                      overrides=[(None, (kind,), {"wbits": "fp32", "act": "fp32"})]))
    add("int8", S("i8-ffn_out=bf16", overrides=[(None, ("ffn_out",), {"wbits": "bf16",
                                                                       "act": "bf16"})]))
    add("int8", S("i8-asym-ffn_out=bf16", act="asym",
                  overrides=[(None, ("ffn_out",), {"wbits": "bf16", "act": "bf16"})]))
    add("int8", S("i8-ffn_out-asym", overrides=[(None, ("ffn_out",), {"act": "asym"})]))
    add("int8", S("i8-ffn_out-asym-a0", overrides=[(None, ("ffn_out",),
                                                    {"act": "asym", "alpha": 0.0})]))

    # ---- sensitivity: one kind (all layers) quantised, the rest fp32; then one layer
    for act in ("sym", "asym"):
        for kind in KINDS:
            add("sens", S(f"sens8-{act}-only-{kind}", act=act, overrides=[
                (None, None, {"wbits": "fp32", "act": "fp32"}),
                (None, (kind,), {"wbits": 8, "act": act})]))
        for layer in range(NUM_LAYERS):
            add("sens", S(f"sens8-{act}-only-L{layer}", act=act, overrides=[
                (None, None, {"wbits": "fp32", "act": "fp32"}),
                ((layer,), None, {"wbits": 8, "act": act})]))
    for kind in KINDS:
        add("sens", S(f"sens4-sym-only-{kind}", wbits=4, overrides=[
            (None, None, {"wbits": "fp32", "act": "fp32"}),
            (None, (kind,), {"wbits": 4, "act": "sym"})]))
        add("sens", S(f"sens4-wonly-only-{kind}", wbits=4, act="fp32", overrides=[
            (None, None, {"wbits": "fp32", "act": "fp32"}),
            (None, (kind,), {"wbits": 4})]))
    for layer in range(NUM_LAYERS):
        add("sens", S(f"sens4-sym-only-L{layer}", wbits=4, overrides=[
            (None, None, {"wbits": "fp32", "act": "fp32"}),
            ((layer,), None, {"wbits": 4, "act": "sym"})]))

    # ---- int4 variants
    for g in (32, 64, 128):
        sfx = f"g{g}"
        add("int4", S(f"i4-{sfx}-wonly", wbits=4, group=g, act="fp32"))
        add("int4", S(f"i4-{sfx}-wonly-mse", wbits=4, group=g, act="fp32", clip="mse"))
        add("int4", S(f"i4-{sfx}-wonly-aff", wbits=4, group=g, act="fp32", wfmt="affine"))
        add("int4", S(f"i4-{sfx}-wonly-aff-mse", wbits=4, group=g, act="fp32", wfmt="affine",
                      clip="mse"))
        add("int4", S(f"i4-{sfx}-asym", wbits=4, group=g, act="asym"))
        add("int4", S(f"i4-{sfx}-mse", wbits=4, group=g, clip="mse"))
        add("int4", S(f"i4-{sfx}-asym-mse", wbits=4, group=g, act="asym", clip="mse"))
        add("int4", S(f"i4-{sfx}-aff", wbits=4, group=g, wfmt="affine"))
        add("int4", S(f"i4-{sfx}-asym-aff", wbits=4, group=g, act="asym", wfmt="affine"))
        add("int4", S(f"i4-{sfx}-asym-aff-mse", wbits=4, group=g, act="asym", wfmt="affine",
                      clip="mse"))
    for a in (0.0, 0.3, 0.7):
        add("int4", S(f"i4-g64-asym-aff-mse-a{a}", wbits=4, act="asym", wfmt="affine",
                      clip="mse", alpha=a))
    add("int4", S("i4-g64-wonly-aff-mse-nosmooth", wbits=4, act="fp32", wfmt="affine",
                  clip="mse", smooth="none"))
    add("int4", S("i4-g64-asym-aff-mse-real", wbits=4, act="asym", wfmt="affine", clip="mse",
                  calib="real"))
    add("int4", S("i4-g64-asym-aff-mse-sq", wbits=4, act="asym", wfmt="affine", clip="mse",
                  smooth="search-sq", calib="real"))
    add("int4", S("i4-g64-asym-aff-mse-awq", wbits=4, act="asym", wfmt="affine", clip="mse",
                  smooth="search-awq", calib="real"))
    add("int4", S("i4-g64-asym-mse-awq", wbits=4, act="asym", clip="mse",
                  smooth="search-awq", calib="real"))
    add("int4", S("i4-g64-wonly-aff-mse-awq", wbits=4, act="fp32", wfmt="affine", clip="mse",
                  smooth="search-awq", calib="real"))

    # ---- int4: GPTQ, bias correction, mixed precision
    for hc in ("passages", "real512", "rand-cls128"):
        add("gptq", S(f"i4-g64-wonly-gptq-{hc}", wbits=4, act="fp32", wq="gptq", hcalib=hc))
        add("gptq", S(f"i4-g64-asym-gptq-{hc}", wbits=4, act="asym", wq="gptq", hcalib=hc))
        add("gptq", S(f"i4-g64-asym-aff-mse-gptq-{hc}", wbits=4, act="asym", wfmt="affine",
                      clip="mse", wq="gptq", hcalib=hc))
        add("gptq", S(f"i4-g64-asym-aff-mse-bc-{hc}", wbits=4, act="asym", wfmt="affine",
                      clip="mse", bcorr=True, hcalib=hc))
    add("gptq", S("i4-g64-asym-mse-gptq-passages", wbits=4, act="asym", clip="mse", wq="gptq",
                  hcalib="passages"))
    add("gptq", S("i4-g64-sym-gptq-passages", wbits=4, act="sym", wq="gptq",
                  hcalib="passages"))
    add("gptq", S("i4-g32-asym-aff-mse-gptq-passages", wbits=4, group=32, act="asym",
                  wfmt="affine", clip="mse", wq="gptq", hcalib="passages"))
    add("gptq", S("i4-g128-asym-aff-mse-gptq-passages", wbits=4, group=128, act="asym",
                  wfmt="affine", clip="mse", wq="gptq", hcalib="passages"))
    add("gptq", S("i4-g64-asym-aff-gptq-passages", wbits=4, act="asym", wfmt="affine",
                  wq="gptq", hcalib="passages"))

    # ---- Hadamard rotations (block size b, online FWHT of x per block in C++)
    for b in (64, 128):
        add("rot", S(f"i4-g64-wonly-rot{b}", wbits=4, act="fp32", rot=b))
        add("rot", S(f"i4-g64-asym-rot{b}", wbits=4, act="asym", rot=b))
        add("rot", S(f"i4-g64-asym-rot{b}-nosmooth", wbits=4, act="asym", rot=b, smooth="none"))
        add("rot", S(f"i4-g64-asym-aff-mse-rot{b}", wbits=4, act="asym", wfmt="affine",
                     clip="mse", rot=b))
        add("rot", S(f"i4-g64-asym-mse-rot{b}", wbits=4, act="asym", clip="mse", rot=b))
        add("rot", S(f"i4-g64-asym-mse-rot{b}s", wbits=4, act="asym", clip="mse", rot=b,
                     rot_sign=True))
        add("rot", S(f"i4-g64-asym-mse-gptq-rot{b}", wbits=4, act="asym", clip="mse", rot=b,
                     wq="gptq", hcalib="passages"))
        add("rot", S(f"i4-g64-asym-aff-mse-gptq-rot{b}", wbits=4, act="asym", wfmt="affine",
                     clip="mse", rot=b, wq="gptq", hcalib="passages"))
        add("rot", S(f"i8-sym-rot{b}", rot=b))
        add("rot", S(f"i8-asym-rot{b}", act="asym", rot=b))
        add("rot", S(f"i8-sym-rot{b}-nosmooth", rot=b, smooth="none"))

    # ---- combinations for int4 g64 (mixed precision: I8 = a layer kept in engine int8 + asym)
    I8 = {"wbits": 8, "wfmt": "sym", "clip": "none", "wq": "rtn", "rot": 0, "act": "asym",
          "alpha": 0.5, "smooth": "sq"}
    aff = dict(wbits=4, act="asym", wfmt="affine", clip="mse")
    add("combo", S("i4-g64-aff-mse-L5=i8", **aff, overrides=[((5,), None, I8)]))
    add("combo", S("i4-g64-aff-mse-L45=i8", **aff, overrides=[((4, 5), None, I8)]))
    add("combo", S("i4-g64-aff-mse-rot64-L5=i8", **aff, rot=64, overrides=[((5,), None, I8)]))
    add("combo", S("i4-g64-aff-mse-gptq-L5=i8", **aff, wq="gptq", hcalib="passages",
                   overrides=[((5,), None, I8)]))
    add("combo", S("i4-g64-aff-mse-gptq-rot64-L5=i8", **aff, wq="gptq", hcalib="passages",
                   rot=64, overrides=[((5,), None, I8)]))
    for hc in ("passages", "mix", "rand-cls128"):
        add("combo", S(f"i4-g64-aff-mse-gptq-rot64-{hc}", **aff, wq="gptq", hcalib=hc, rot=64))
        add("combo", S(f"i4-g64-aff-mse-gptqact-rot64-{hc}", **aff, wq="gptq-act", hcalib=hc,
                       rot=64))
    add("combo", S("i4-g64-aff-mse-gptqact-passages", **aff, wq="gptq-act", hcalib="passages"))
    add("combo", S("i4-g64-aff-mse-gptq-mix", **aff, wq="gptq", hcalib="mix"))
    add("combo", S("i4-g32-aff-mse-gptq-rot64-passages", **dict(aff, group=32), wq="gptq",
                   hcalib="passages", rot=64))
    add("combo", S("i4-g64-aff-mse-gptq-rot128-passages", **aff, wq="gptq", hcalib="passages",
                   rot=128))

    # ---- second round
    add("combo2", S("i4-g64-wonly-aff-mse-gptq-rot64-passages", **dict(aff, act="fp32"),
                    wq="gptq", hcalib="passages", rot=64))
    add("combo2", S("i4-g64-aff-mse-gptq-rot64-mix-L5=i8", **aff, wq="gptq", hcalib="mix",
                    rot=64, overrides=[((5,), None, I8)]))
    add("combo2", S("i4-g64-aff-mse-gptq-rot64-randcls128-L5=i8", **aff, wq="gptq",
                    hcalib="rand-cls128", rot=64, overrides=[((5,), None, I8)]))
    add("combo2", S("i4-g64-aff-mse-rot64-L45=i8", **aff, rot=64,
                    overrides=[((4, 5), None, I8)]))
    add("combo2", S("i4-g64-aff-mse-gptq-rot64-big", **aff, wq="gptq", hcalib="big", rot=64))
    add("combo2", S("i4-g64-aff-mse-gptq-rot64-mix-seq", **aff, wq="gptq", hcalib="mix",
                    rot=64, seq=True))
    add("combo2", S("i4-g64-aff-mse-gptq-rot64-passages-seq", **aff, wq="gptq",
                    hcalib="passages", rot=64, seq=True))
    add("combo2", S("i4-g64-sym-mse-gptq-rot64-mix", wbits=4, act="asym", clip="mse",
                    wq="gptq", hcalib="mix", rot=64))

    # ---- third round
    add("combo3", S("i4-g64-aff-mse-gptq-rot64-big-L5=i8", **aff, wq="gptq", hcalib="big",
                    rot=64, overrides=[((5,), None, I8)]))
    add("combo3", S("i4-g64-aff-mse-gptq-rot64-passages-L5ffn=i8", **aff, wq="gptq",
                    hcalib="passages", rot=64,
                    overrides=[((5,), ("ffn_in", "ffn_out"), I8)]))
    add("combo3", S("i4-g64-sym-mse-rot64-L45=i8", wbits=4, act="asym", clip="mse", rot=64,
                    overrides=[((4, 5), None, I8)]))
    add("combo3", S("i4-g64-aff-mse-rot64-L5=i8-L4ffn=i8", **aff, rot=64,
                    overrides=[((5,), None, I8), ((4,), ("ffn_in", "ffn_out"), I8)]))
    add("combo3", S("i4-g32-aff-mse-gptq-rot64-big", **dict(aff, group=32), wq="gptq",
                    hcalib="big", rot=64))
    # ---- data-free calibration text for GPTQ (vocabulary words)
    add("words", S("i4-g64-aff-mse-gptq-rot64-words512", **aff, wq="gptq", hcalib="words512",
                   rot=64))
    add("words", S("i4-g64-aff-mse-gptq-rot64-wordsz512", **aff, wq="gptq", hcalib="wordsz512",
                   rot=64))
    add("words", S("i4-g64-aff-mse-gptq-wordsz512", **aff, wq="gptq", hcalib="wordsz512"))
    add("words2", S("i4-g64-aff-mse-gptq-rot64-wordsz2048", **aff, wq="gptq",
                    hcalib="wordsz2048", rot=64))
    add("words2", S("i4-g64-aff-mse-gptq-rot64-wordszl512", **aff, wq="gptq",
                    hcalib="wordszl512", rot=64))
    add("words3", S("i4-g64-aff-mse-gptq-rot64-wordsz512a", **aff, wq="gptq",
                    hcalib="wordsz512", rot=64, note="ASCII words"))
    add("words3", S("i4-g64-aff-mse-gptq-rot64-wordszs512", **aff, wq="gptq",
                    hcalib="wordszs512", rot=64))
    add("words3", S("i4-g64-aff-mse-gptq-rot64-wordsz1024", **aff, wq="gptq",
                    hcalib="wordsz1024", rot=64))
    for a in (0.3, 0.4, 0.6):
        add("words4", S(f"i4-g64-aff-mse-gptq-rot64-wordsz512-a{a}", **dict(aff, alpha=a),
                        wq="gptq", hcalib="wordsz512", rot=64))
    for d in (0.001, 0.1):
        add("words4", S(f"i4-g64-aff-mse-gptq-rot64-wordsz512-d{d}", **aff, wq="gptq",
                        hcalib="wordsz512", rot=64, damp=d))
    for cd in (1, 3):
        add("cd", S(f"i4-g64-aff-mse-gptq-rot64-wordsz512-cd{cd}", **aff, wq="gptq",
                    hcalib="wordsz512", rot=64, cd=cd))
    add("refit", S("i4-g64-aff-mse-gptq-rot64-wordsz512-refit", **aff, wq="gptq",
                   hcalib="wordsz512", rot=64, refit=True))
    add("refit", S("i4-g64-aff-mse-gptq-rot64-wordsz512-cd2-refit", **aff, wq="gptq",
                   hcalib="wordsz512", rot=64, cd=2, refit=True))
    add("g32", S("i4-g32-aff-mse-gptq-rot64-wordsz512", **dict(aff, group=32), wq="gptq",
                 hcalib="wordsz512", rot=64))
    add("words", S("i4-g64-aff-mse-gptq-rot64-real512", **aff, wq="gptq", hcalib="real512",
                   rot=64))
    # ---- sequential GEMM-by-GEMM Hessians, and GPTAQ-style targets (fp32 outputs)
    W5 = dict(aff, wq="gptq", hcalib="wordsz512", rot=64)
    add("seq", S("i4-g64-w5-seqg", **W5, seqg=True))
    add("seq", S("i4-g64-w5-seqg-gptaq", **W5, seqg=True, gptaq=1.0))
    add("seq", S("i4-g64-w5-seqg-gptaq.5", **W5, seqg=True, gptaq=0.5))
    add("seq2", S("i4-g64-w5-seqg-gptaq.2", **W5, seqg=True, gptaq=0.2))
    add("seq2", S("i4-g64-w5-seqg-bcq", **W5, seqg=True, bcq=True))
    add("seq2", S("i4-g64-w5-bcq", **W5, bcq=True))
    F32 = {"wbits": "fp32", "act": "fp32"}
    for k in ("qkv", "attn_out", "ffn_in", "ffn_out"):
        add("sens5", S(f"i4-g64-w5-only-L5-{k}", **W5, overrides=[
            ((0, 1, 2, 3, 4), None, F32),
            ((5,), tuple(x for x in ("qkv", "attn_out", "ffn_in", "ffn_out") if x != k), F32)]))
    LM = (0.241, 1.656, 2.804, 3.8, 4.697, 5.533, 6.33, 7.107, 7.875, 8.651, 9.448, 10.286,
          11.185, 12.183, 13.333, 14.756)
    add("cb", S("i4-g64-w5-cb-lloyd", **W5, codebook=LM))
    add("cb", S("i4-g64-w5-cb-lloyd8", **W5, codebook=tuple(round(x * 8) / 8 for x in LM)))
    for lam in (1, 4, 16):
        add("pool", S(f"i4-g64-w5-pool{lam}", **W5, pool=lam))
    add("pool", S("i4-g64-w5-pool4-all", **W5, pool=4, pool_layers=(0, 1, 2, 3, 4, 5)))
    for l in range(6):
        add("sens4", S(f"i4-g64-w5-only-L{l}", **W5,
                       overrides=[(tuple(x for x in range(6) if x != l), None, F32)]))
    kinds = ("qkv", "attn_out", "ffn_in", "ffn_out")
    for k in kinds:
        add("sens4", S(f"i4-g64-w5-only-{k}", **W5,
                       overrides=[(None, tuple(x for x in kinds if x != k), F32)]))
    return out


# --------------------------------------------------------------------------------------------
# Quantisers (float32 like the engine, rint = torch.round = half to even)
# --------------------------------------------------------------------------------------------
def quant_rows_sym(x: torch.Tensor, qmax: int = 127):
    """Per-row symmetric: returns (integer-valued xq, scale a [m,1])."""
    mx = x.abs().amax(dim=-1, keepdim=True)
    inv = torch.full_like(mx, float(qmax)) / mx
    zero = ~(mx > 0) | ~torch.isfinite(inv)
    inv = torch.where(zero, torch.zeros_like(inv), inv)
    q = torch.round(x * inv).clamp_(-qmax, qmax)
    scale = torch.where(zero, torch.ones_like(mx), mx / qmax)
    return q, scale


def quant_rows_asym(x: torch.Tensor):
    """Per-row u8 with zero point; returns (xu - zp, a). 0 is inside [min, max]."""
    mn = torch.clamp(x.amin(dim=-1, keepdim=True), max=0.0)
    mx = torch.clamp(x.amax(dim=-1, keepdim=True), min=0.0)
    a = (mx - mn) / 255.0
    zero = ~(a > 0)
    a = torch.where(zero, torch.ones_like(a), a)
    zp = torch.round(-mn / a).clamp_(0, 255)
    xu = (torch.round(x / a) + zp).clamp_(0, 255)
    return xu - zp, a


def quant_weight_sym(w: torch.Tensor, qmax: int, group: Optional[int], clip: str):
    """Symmetric per row (group=None) or per (row, group). Returns dequantised Ŵ (float32)."""
    n, k = w.shape
    g = k if group is None else group
    wg = w.reshape(n, k // g, g)
    mx = wg.abs().amax(dim=-1, keepdim=True)

    def deq(m):
        inv = torch.full_like(m, float(qmax)) / m
        zero = ~(m > 0) | ~torch.isfinite(inv)
        inv = torch.where(zero, torch.zeros_like(inv), inv)
        q = torch.round(wg * inv).clamp(-qmax, qmax)
        s = torch.where(zero, torch.ones_like(m), m / qmax)
        return q * s

    if clip == "none":
        return deq(mx).reshape(n, k)
    best = None
    best_err = None
    for r in np.arange(0.70, 1.0001, 0.01):
        d = deq(mx * float(r))
        err = ((d - wg) ** 2).sum(dim=-1, keepdim=True)
        if best is None:
            best, best_err = d, err
        else:
            better = err < best_err
            best = torch.where(better, d, best)
            best_err = torch.where(better, err, best_err)
    return best.reshape(n, k)


def affine_deq(wg, mn, mx, levels):
    """Ŵ of the groups wg [..., g] on the affine grids [mn, mx] (a zero-width grid keeps wg)."""
    s = (mx - mn) / (levels - 1)
    zero = ~(s > 0)
    s = torch.where(zero, torch.ones_like(s), s)
    q = torch.round((wg - mn) / s).clamp(0, levels - 1)
    return torch.where(zero, wg, q * s + mn)


def affine_grid(wg, levels, clip):
    """Per group of wg [..., g]: (mn, mx) = r·(min, max), r = 1 (clip "none") or the r in
    0.70..1.00 with the least squared rounding error (the first on ties)."""
    mx0 = wg.amax(dim=-1, keepdim=True)
    mn0 = wg.amin(dim=-1, keepdim=True)
    if clip == "none":
        return mn0, mx0
    best = None
    for r in np.arange(0.70, 1.0001, 0.01):
        mn, mx = mn0 * float(r), mx0 * float(r)
        err = ((affine_deq(wg, mn, mx, levels) - wg) ** 2).sum(dim=-1, keepdim=True)
        if best is None:
            best = (err, mn, mx)
        else:
            better = err < best[0]
            best = tuple(torch.where(better, u, v) for u, v in zip((err, mn, mx), best))
    return best[1], best[2]


def quant_weight_affine(w: torch.Tensor, levels: int, group: int, clip: str):
    """MLX-style affine: s = (max-min)/(levels-1), q = rint((W-min)/s), Ŵ = s·q + min."""
    n, k = w.shape
    wg = w.reshape(n, k // group, group)
    mn, mx = affine_grid(wg, levels, clip)
    return affine_deq(wg, mn, mx, levels).reshape(n, k)


def quantize_weight(w: torch.Tensor, cfg: dict) -> torch.Tensor:
    wb = cfg["wbits"]
    if wb == "fp32":
        return w.clone()
    if wb == "bf16":
        return w.to(torch.bfloat16).float()
    if wb == 8:
        if cfg["wfmt"] == "affine":
            return quant_weight_affine(w, 256, w.shape[1], cfg["clip"])
        return quant_weight_sym(w, 127, None, cfg["clip"])
    if wb == 4:
        if cfg["wfmt"] == "affine":
            return quant_weight_affine(w, 16, cfg["group"], cfg["clip"])
        return quant_weight_sym(w, 7, cfg["group"], cfg["clip"])
    raise ValueError(wb)


class QLinear(nn.Module):
    """y = act_quant(x · smooth_inv) · Ŵᵀ + bias, simulating one quantised engine GEMM."""

    def __init__(self, w_hat, bias, smooth_inv, act, exact, rot=None):
        super().__init__()
        self.rot = rot
        self.w_hat_t = w_hat.t().contiguous()
        self.bias = bias.clone()
        self.smooth_inv = smooth_inv
        self.act = act
        self.exact = exact
        if act == "bf16":
            self.w_hat_t = self.w_hat_t.to(torch.bfloat16).float()
        if exact:
            self.w64 = self.w_hat_t.double()

    def forward(self, x):
        shp = x.shape
        x2 = x.reshape(-1, shp[-1])
        if self.smooth_inv is not None:
            x2 = x2 * self.smooth_inv
        if self.rot is not None:
            x2 = x2 @ self.rot
        if self.act == "fp32":
            y = x2 @ self.w_hat_t + self.bias
        elif self.act == "bf16":
            y = x2.to(torch.bfloat16).float() @ self.w_hat_t + self.bias
        else:
            xi, a = quant_rows_sym(x2) if self.act == "sym" else quant_rows_asym(x2)
            if self.exact:
                y = ((xi.double() @ self.w64) * a.double() + self.bias.double()).float()
            else:
                y = (xi @ self.w_hat_t) * a + self.bias
        return y.reshape(*shp[:-1], y.shape[-1])


def apply_act(x, act):
    if act == "fp32":
        return x
    if act == "bf16":
        return x.to(torch.bfloat16).float()
    xi, a = quant_rows_sym(x) if act == "sym" else quant_rows_asym(x)
    return xi * a


# --------------------------------------------------------------------------------------------
# Model plumbing
# --------------------------------------------------------------------------------------------
def gemm_modules(layer):
    """kind -> list of nn.Linear (query/key/value for qkv)."""
    att = layer.attention
    return {
        "qkv": [att.self.query, att.self.key, att.self.value],
        "attn_out": [att.output.dense],
        "ffn_in": [layer.intermediate.dense],
        "ffn_out": [layer.output.dense],
    }


def rotation(k, block, sign, seed=0):
    """Block-diagonal orthonormal R [k, k]: diag(±1) · blockdiag(H_b / sqrt(b)), Sylvester H_b.
    x·Wᵀ = (x·R)·(W·R)ᵀ; in C++ x·R is a fast Walsh-Hadamard transform per block of b."""
    assert k % block == 0 and block & (block - 1) == 0
    h = torch.ones(1, 1)
    while h.shape[0] < block:
        h = torch.cat([torch.cat([h, h], 1), torch.cat([h, -h], 1)], 0)
    h = h / math.sqrt(block)
    R = torch.block_diag(*([h] * (k // block)))
    if sign:
        g = torch.Generator().manual_seed(seed + k)
        d = torch.randint(0, 2, (k,), generator=g).float() * 2 - 1
        R = d.unsqueeze(1) * R
    return R.float()


def set_module(root, target, new):
    for name, mod in root.named_modules():
        for cname, child in mod.named_children():
            if child is target:
                setattr(mod, cname, new)
                return
    raise KeyError("module not found")


class Capture:
    """Forward pre-hooks on the fp32 model recording each GEMM's (unpadded) input rows."""

    def __init__(self, model):
        self.rows: Dict[Tuple[int, str], List[torch.Tensor]] = {}
        self.mask = None
        self.handles = []
        for l, layer in enumerate(model.encoder.layer):
            for kind, mods in gemm_modules(layer).items():
                self.handles.append(mods[0].register_forward_pre_hook(self._hook(l, kind)))

    def _hook(self, l, kind):
        def f(mod, inp):
            x = inp[0].detach()
            x = x.reshape(-1, x.shape[-1])
            if self.mask is not None:
                x = x[self.mask]
            self.rows.setdefault((l, kind), []).append(x.clone())
        return f

    def close(self):
        for h in self.handles:
            h.remove()

    def get(self):
        return {key: torch.cat(v, 0) for key, v in self.rows.items()}


def lcg_ids(vocab, n=16, length=64):
    state = 12345
    seqs = []
    for _ in range(n):
        ids = []
        for _ in range(length):
            state = (state * 1664525 + 1013904223) & 0xFFFFFFFF
            ids.append(state % vocab)
        seqs.append(ids)
    return seqs


def word_ids(tok, n, zipf, max_len=40):
    """Data-free "text": n sequences of [CLS] + 6..max_len whole-word vocabulary ids + [SEP] (ids of
    entries of 2+ ASCII lower-case letters: no ## pieces, digits or punctuation), uniform or Zipf over the vocabulary order
    (BERT's vocab lists words roughly by frequency); LCG-driven, deterministic."""
    vocab = tok.get_vocab()
    words = sorted(i for w, i in vocab.items() if re.fullmatch("[a-z]{2,}", w))
    state = 777

    def nxt():
        nonlocal state
        state = (state * 1664525 + 1013904223) & 0xFFFFFFFF
        return state / 4294967296.0

    seqs = []
    for _ in range(n):
        length = 6 + int(nxt() * (max_len - 5))
        ids = []
        for _ in range(length):
            u = nxt()
            r = int(math.exp(u * math.log(len(words)))) - 1 if zipf else int(u * len(words))
            ids.append(words[min(r, len(words) - 1)])
        seqs.append([tok.cls_token_id] + ids + [tok.sep_token_id])
    return seqs


def padded_batches(ids_list, batch_size):
    """(indices, ids, mask) per batch of the sequences in length order, padded with id 0."""
    order = sorted(range(len(ids_list)), key=lambda i: len(ids_list[i]))
    for b in range(0, len(order), batch_size):
        idx = order[b:b + batch_size]
        L = max(len(ids_list[i]) for i in idx)
        ids = torch.zeros(len(idx), L, dtype=torch.long)
        mask = torch.zeros(len(idx), L, dtype=torch.long)
        for r, i in enumerate(idx):
            ids[r, :len(ids_list[i])] = torch.tensor(ids_list[i])
            mask[r, :len(ids_list[i])] = 1
        yield idx, ids, mask


def run_model(model, ids_list, batch_size=64, capture=None):
    """ids_list: list of token id lists. Returns list of mean-pooled L2-normalised embeddings."""
    out = [None] * len(ids_list)
    with torch.no_grad():
        for idx, ids, mask in padded_batches(ids_list, batch_size):
            if capture is not None:
                capture.mask = mask.reshape(-1).bool()
            h = model(input_ids=ids, attention_mask=mask,
                      token_type_ids=torch.zeros_like(ids)).last_hidden_state
            m = mask.unsqueeze(-1).float()
            e = (h * m).sum(1) / m.sum(1).clamp(min=1e-9)
            e = torch.nn.functional.normalize(e, p=2, dim=1)
            for r, i in enumerate(idx):
                out[i] = e[r]
    return torch.stack(out)


# --------------------------------------------------------------------------------------------
# Smoothing
# --------------------------------------------------------------------------------------------
def smooth_vector(w, stats, cfg):
    """Returns s [k] (float32) or None. W is [n, k] (qkv: fused)."""
    mode = cfg["smooth"]
    if mode == "none":
        return None
    wmax = w.abs().amax(dim=0)
    if mode == "sq":
        return sq_scale(stats["absmax"], wmax, cfg["alpha"])
    raise ValueError(mode)


def sq_scale(absmax, wmax, alpha):
    ok = (absmax > 0) & (wmax > 0)
    if alpha == 0.5:
        s = torch.sqrt(absmax / wmax)
    else:
        s = absmax.pow(alpha) / wmax.pow(1.0 - alpha)
    s = torch.where(ok, s.clamp(1e-3, 1e3), torch.ones_like(s))
    return s.float()


def awq_scale(meanabs, alpha):
    s = meanabs.clamp(min=1e-8).pow(alpha)
    s = s / torch.sqrt(s.max() * s.min())
    return s.float()


def group_dequant_fn(wg, cfg):
    """Quantisation grid of one group of columns wg [n, g] (current GPTQ weights); returns a
    function mapping a column [n] to its dequantised value, with the same rules as RTN."""
    wb = cfg["wbits"]
    qmax = 7 if wb == 4 else 127
    ratios = np.arange(0.70, 1.0001, 0.01) if cfg["clip"] == "mse" else [1.0]
    if cfg["wfmt"] == "affine":
        levels = 16 if wb == 4 else 256
        if cfg.get("codebook"):
            cb = torch.tensor(cfg["codebook"], dtype=wg.dtype)
            mids = (cb[1:] + cb[:-1]) / 2

            def rq(u):
                return cb[torch.bucketize(u.contiguous(), mids)]
        else:
            def rq(u):
                return torch.round(u).clamp(0, levels - 1)
        mx0 = wg.amax(dim=1, keepdim=True)
        mn0 = wg.amin(dim=1, keepdim=True)
        best = None
        for r in ratios:
            mx, mn = mx0 * float(r), mn0 * float(r)
            sc = (mx - mn) / (levels - 1)
            sc = torch.where(sc > 0, sc, torch.ones_like(sc))
            d = rq((wg - mn) / sc) * sc + mn
            err = ((d - wg) ** 2).sum(1, keepdim=True)
            if best is None:
                best = [err, sc, mn]
            else:
                b = err < best[0]
                best = [torch.where(b, err, best[0]), torch.where(b, sc, best[1]),
                        torch.where(b, mn, best[2])]
        sc, mn = best[1][:, 0], best[2][:, 0]
        return lambda c: rq((c - mn) / sc) * sc + mn
    mx0 = wg.abs().amax(dim=1, keepdim=True)
    best = None
    for r in ratios:
        m = mx0 * float(r)
        sc = torch.where(m > 0, m / qmax, torch.ones_like(m))
        d = torch.round(wg / sc).clamp(-qmax, qmax) * sc
        err = ((d - wg) ** 2).sum(1, keepdim=True)
        if best is None:
            best = [err, sc]
        else:
            b = err < best[0]
            best = [torch.where(b, err, best[0]), torch.where(b, sc, best[1])]
    sc = best[1][:, 0]
    return lambda c: torch.round(c / sc).clamp(-qmax, qmax) * sc


def refit_grids(W0, Q, H, g, deq_of_col, chunk=64):
    """Given GPTQ's codes, the scale and offset of every group of a row that minimise the
    layer loss (W0 − Ŵ) H (W0 − Ŵ)ᵀ jointly (Ŵ = Σ_g s_g·code_g + o_g·1_g, a 2·ng least-squares
    problem per row); a row keeps its old grids when a new scale is not positive."""
    n, k = Q.shape
    ng = k // g
    # codes c ∈ {0..15} and the old (s, lo) per (row, group), recovered from Q on its grid
    Qg = Q.reshape(n, ng, g)
    # each group's grid from its dequantiser (which maps a whole column): level 0 and step
    bot = torch.stack([deq_of_col[gi * g](torch.full((n,), -1e30, dtype=Q.dtype))
                       for gi in range(ng)], dim=1)
    top = torch.stack([deq_of_col[gi * g](torch.full((n,), 1e30, dtype=Q.dtype))
                       for gi in range(ng)], dim=1)
    step_all = (top - bot) / 15.0
    out = Q.clone()
    for r0 in range(0, n, chunk):
        r1 = min(n, r0 + chunk)
        q = Qg[r0:r1]
        s_old = step_all[r0:r1]
        safe = torch.where(s_old > 0, s_old, torch.ones_like(s_old))
        codes = torch.round((q - bot[r0:r1].unsqueeze(2)) / safe.unsqueeze(2))
        # basis B [rows, k, 2ng]: codes in group columns, ones in offset columns
        B = torch.zeros(r1 - r0, k, 2 * ng, dtype=Q.dtype)
        for gi in range(ng):
            B[:, gi * g:(gi + 1) * g, gi] = codes[:, gi]
            B[:, gi * g:(gi + 1) * g, ng + gi] = 1.0
        HB = torch.einsum("kl,rlp->rkp", H, B)
        A = torch.einsum("rkp,rkq->rpq", B, HB)
        b = torch.einsum("rkp,rk->rp", HB, W0[r0:r1])
        A = A + 1e-12 * torch.eye(2 * ng, dtype=Q.dtype) * A.diagonal(dim1=1, dim2=2).mean()
        theta = torch.linalg.solve(A, b.unsqueeze(2)).squeeze(2)
        s_new, o_new = theta[:, :ng], theta[:, ng:]
        ok = (s_new > 0).all(dim=1) & (s_old > 0).all(dim=1)
        w_new = (codes * s_new.unsqueeze(2) + o_new.unsqueeze(2)).reshape(r1 - r0, k)
        out[r0:r1] = torch.where(ok.unsqueeze(1), w_new, Q[r0:r1])
    return out


def gptq_quantize(w, H, cfg, damp=0.01, block=128, act_order=False, cd_sweeps=0, refit=False):
    """GPTQ (Frantar et al. 2022), natural column order, static groups: quantises column by
    column and spreads each column's error over the not yet quantised columns through the
    inverse Hessian of the layer-wise loss ||X·Wᵀ - X·Ŵᵀ||² (H = XᵀX of calibration rows)."""
    W = w.double().clone()
    n, k = W.shape
    H = H.double().clone()
    dead = torch.diag(H) == 0
    H[dead, dead] = 1
    W[:, dead] = 0
    H += damp * torch.mean(torch.diag(H)) * torch.eye(k, dtype=torch.float64)
    L = torch.linalg.cholesky(H)
    Hinv = torch.linalg.cholesky(torch.cholesky_inverse(L), upper=True)
    g = cfg["group"] if cfg["wbits"] == 4 else k
    Q = torch.zeros_like(W)
    deq = group_dequant_fn(W, cfg) if g >= k else None
    if act_order:
        # static groups: grids from the original weights, columns by decreasing diag(H)
        deqs = [group_dequant_fn(W[:, c:c + g], cfg) for c in range(0, k, g)]
        perm = torch.argsort(torch.diag(H), descending=True)
        invperm = torch.argsort(perm)
        W = W[:, perm]
        H = H[perm][:, perm]
        Hinv = torch.linalg.cholesky(
            torch.cholesky_inverse(torch.linalg.cholesky(H)), upper=True)
        for i1 in range(0, k, block):
            i2 = min(i1 + block, k)
            W1 = W[:, i1:i2].clone()
            E1 = torch.zeros_like(W1)
            Hi = Hinv[i1:i2, i1:i2]
            for i in range(i2 - i1):
                q = deqs[int(perm[i1 + i]) // g](W1[:, i])
                Q[:, i1 + i] = q
                err = (W1[:, i] - q) / Hi[i, i]
                W1[:, i:] -= err.unsqueeze(1) @ Hi[i, i:].unsqueeze(0)
                E1[:, i] = err
            W[:, i2:] -= E1 @ Hinv[i1:i2, i2:]
        return Q[:, invperm].float()
    deq_of_col = []
    W0 = W.clone()
    for i1 in range(0, k, block):
        i2 = min(i1 + block, k)
        W1 = W[:, i1:i2].clone()
        E1 = torch.zeros_like(W1)
        Hi = Hinv[i1:i2, i1:i2]
        for i in range(i2 - i1):
            col = i1 + i
            if g < k and col % g == 0:
                assert i + g <= i2 - i1, "block must be a multiple of the group"
                deq = group_dequant_fn(W1[:, i:i + g], cfg)
            q = deq(W1[:, i])
            deq_of_col.append(deq)
            Q[:, col] = q
            err = (W1[:, i] - q) / Hi[i, i]
            W1[:, i:] -= err.unsqueeze(1) @ Hi[i, i:].unsqueeze(0)
            E1[:, i] = err
        W[:, i2:] -= E1 @ Hinv[i1:i2, i2:]
    if cd_sweeps:
        # Cyclic coordinate descent on (W0 − Q) H (W0 − Q)ᵀ per row, grids fixed: each
        # coordinate moves to its grid point nearest the 1-D optimum Q_c + R_c / H_cc.
        R = (W0 - Q) @ H
        for _ in range(cd_sweeps):
            for c in range(k):
                target = Q[:, c] + R[:, c] / H[c, c]
                qn = deq_of_col[c](target)
                d = qn - Q[:, c]
                if torch.any(d != 0):
                    Q[:, c] = qn
                    R -= d.unsqueeze(1) * H[c].unsqueeze(0)
    if refit and g < k:
        Q = refit_grids(W0, Q, H, g, deq_of_col)
    return Q.float()


def search_smooth(w, bias, xs, cfg, family):
    """Per-GEMM α search minimising the output MSE of the quantised GEMM on calibration rows."""
    absmax = xs.abs().amax(0)
    meanabs = xs.abs().mean(0)
    wmax = w.abs().amax(dim=0)
    ref = xs @ w.t()
    best = (None, None, None)
    for a in np.round(np.arange(0.0, 1.0001, 0.1), 2):
        a = float(a)
        s = sq_scale(absmax, wmax, a) if family == "sq" else awq_scale(meanabs, a)
        w_hat = quantize_weight(w * s, cfg)
        xq = apply_act(xs * (1.0 / s), cfg["act"])
        err = ((xq @ w_hat.t() - ref) ** 2).mean().item()
        if best[0] is None or err < best[0]:
            best = (err, a, s)
    return best[2], best[1]


# --------------------------------------------------------------------------------------------
# Building a quantised model
# --------------------------------------------------------------------------------------------
def build_model(base, scheme: Scheme, calib_rows, exact, log, hcalib_rows=None,
                recapture=None):
    model = copy.deepcopy(base)
    chosen = {}
    fp_rows = hcalib_rows or calib_rows
    for l, layer in enumerate(model.encoder.layer):
        if scheme.seq and l > 0:
            hcalib_rows = recapture(model)
        for kind, mods in gemm_modules(layer).items():
            if scheme.seqg and (l > 0 or kind != "qkv"):
                hcalib_rows = recapture(model)
            cfg = scheme.resolve(l, kind)
            if cfg["wbits"] == "fp32" and cfg["act"] == "fp32":
                continue
            w = torch.cat([m.weight.detach() for m in mods], 0).float()
            bias = torch.cat([m.bias.detach() for m in mods], 0).float()
            xs = calib_rows[(l, kind)]
            if cfg["wbits"] in ("fp32", "bf16"):
                s = None  # kept in float: no smoothing
            elif cfg["smooth"].startswith("search-"):
                s, a = search_smooth(w, bias, xs, cfg, cfg["smooth"][7:])
                chosen[(l, kind)] = a
            else:
                s = smooth_vector(w, {"absmax": xs.abs().amax(0)}, cfg)
            ws = w * s if s is not None else w
            inv = (1.0 / s).float() if s is not None else None
            R = None
            if cfg["rot"] and cfg["wbits"] in (4, 8):
                R = rotation(w.shape[1], cfg["rot"], cfg["rot_sign"])
                ws = ws @ R

            def coords(rows, dt=torch.float32):
                """Calibration rows in this GEMM's smoothed (and rotated) input coordinates."""
                x = rows.to(dt)
                if inv is not None:
                    x = x * inv.to(dt)
                if R is not None:
                    x = x @ R.to(dt)
                return x

            cur = hcalib_rows or calib_rows  # quantised-model rows under seq/seqg, else fp32
            hx = None
            if cfg["wq"].startswith("gptq") or cfg["bcorr"]:
                hx = coords(cur[(l, kind)])
            if cfg["wq"] == "gptq" and cfg["wbits"] in (4, 8):
                hx64 = hx.double()
                Hq = hx64.t() @ hx64
                ws_target = ws
                if scheme.pool and l in scheme.pool_layers:
                    lens = cur["lens"]
                    xbar = torch.stack([sg.mean(0) for sg in torch.split(hx64, lens)])
                    Hq = Hq / hx64.shape[0] + scheme.pool * (xbar.t() @ xbar) / len(lens)
                if scheme.gptaq and cur is not fp_rows:
                    x64 = coords(fp_rows[(l, kind)], torch.float64)
                    k_ = Hq.shape[0]
                    Hd = Hq + cfg["damp"] * torch.mean(torch.diag(Hq)) * torch.eye(
                        k_, dtype=torch.float64)
                    # W* = W·XᵀXq·Hd⁻¹ (solve Hd·Z = XqᵀX·Wᵀ)
                    wstar = torch.linalg.solve(Hd, (hx64.t() @ x64) @ ws.double().t()).t()
                    ws = (ws.double() + scheme.gptaq * (wstar - ws.double())).float()
                w_hat = gptq_quantize(ws, Hq, cfg, damp=cfg["damp"],
                                      cd_sweeps=cfg["cd"], refit=cfg["refit"])
            elif cfg["wq"] == "gptq-act" and cfg["wbits"] in (4, 8):
                hx64 = hx.double()
                w_hat = gptq_quantize(ws, hx64.t() @ hx64, cfg, act_order=True)
            else:
                w_hat = quantize_weight(ws, cfg)
            if cfg["bcorr"]:
                bias = bias + (ws - w_hat) @ hx.mean(0)
            if scheme.bcq and cfg["wq"] == "gptq" and cfg["wbits"] in (4, 8):
                xf = coords(fp_rows[(l, kind)])
                bias = bias + (xf.double().mean(0) @ ws_target.double().t()
                               - hx.double().mean(0) @ w_hat.double().t()).float()
            n0 = 0
            for m in mods:
                n = m.weight.shape[0]
                q = QLinear(w_hat[n0:n0 + n], bias[n0:n0 + n], inv, cfg["act"], exact, R)
                set_module(model, m, q)
                n0 += n
    if chosen and log:
        txt = " ".join(f"L{l}.{k}={a}" for (l, k), a in sorted(chosen.items()))
        print(f"  [{scheme.name}] searched alpha: {txt}", file=sys.stderr)
    return model


# --------------------------------------------------------------------------------------------
# Data
# --------------------------------------------------------------------------------------------
def tsv_rows(path, maxsplit=-1):
    """The non-empty lines of a UTF-8 TSV file, split on tabs (at most maxsplit times)."""
    with open(path, encoding="utf-8") as f:
        for line in f:
            line = line.rstrip("\n").rstrip("\r")
            if line:
                yield line.split("\t", maxsplit)


def load_msmarco(path):
    return [row[1] for row in tsv_rows(path, 1)]


def load_stsb(path):
    return [(p[5], p[6], float(p[4])) for p in tsv_rows(path)]


def spearman(a, b):
    from scipy.stats import spearmanr
    return float(spearmanr(a, b).correlation)


def main():
    ap = argparse.ArgumentParser(description=__doc__,
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--model", default="/root/.cache/encserve/models/all-MiniLM-L6-v2")
    ap.add_argument("--data", default="/work/shared/data")
    ap.add_argument("--n-msmarco", type=int, default=1000, help="first N dev-small queries")
    ap.add_argument("--n-sts", type=int, default=0,
                    help="first N unique STS-B test sentences (0 = all)")
    ap.add_argument("--groups", nargs="*", default=[],
                    help="scheme groups: verify int8 sens int4 gptq rot combo combo2 combo3 "
                         "(see --list)")
    ap.add_argument("--schemes", nargs="*", default=[], help="scheme names")
    ap.add_argument("--list", action="store_true")
    ap.add_argument("--spearman", action="store_true", help="also STS-B test Spearman")
    ap.add_argument("--engine-set", action="store_true",
                    help="the 800 texts of tests/unit/precision_test.cc instead (adds 'all')")
    ap.add_argument("--exact", action="store_true", help="float64 dot products")
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--batch", type=int, default=64)
    ap.add_argument("--cache-dir", default="/tmp/quant_sim_cache")
    ap.add_argument("--json", help="append results as JSON lines to this file")
    args = ap.parse_args()

    schemes = build_schemes()
    if args.list:
        for name, (g, s) in schemes.items():
            print(f"{g:7s} {name}")
        return
    sel = [n for n, (g, _) in schemes.items() if g in args.groups] + list(args.schemes)
    for n in sel:
        if n not in schemes:
            sys.exit(f"unknown scheme {n}")
    torch.set_num_threads(args.threads)

    from transformers import AutoModel, AutoTokenizer
    tok = AutoTokenizer.from_pretrained(args.model)
    base = AutoModel.from_pretrained(args.model, dtype=torch.float32).eval()
    vocab = base.config.vocab_size

    queries = load_msmarco(os.path.join(args.data, "msmarco-dev-small-queries.tsv"))
    pairs = load_stsb(os.path.join(args.data, "sts-b-test.tsv"))
    eval_q = queries[:args.n_msmarco]
    sts_sent = list(dict.fromkeys([s for a, b, _ in pairs for s in (a, b)]))
    sts_eval = sts_sent if args.n_sts <= 0 else sts_sent[:args.n_sts]
    if args.spearman and not args.engine_set:
        sts_eval = sts_sent
    if args.engine_set:  # tests/unit/precision_test.cc: 400 queries + 200 STS-B pairs (i·5)
        eval_q = queries[:400]
        sts_eval = [t for i in range(200) for t in pairs[i * 5][:2]]
    texts = eval_q + sts_eval
    enc = tok(texts, truncation=True, max_length=256)["input_ids"]
    nq = len(eval_q)
    print(f"eval: {nq} MS MARCO queries, {len(sts_eval)} STS-B sentences, "
          f"{sum(len(e) for e in enc)} tokens", file=sys.stderr)

    # calibration sets
    cls_id, sep_id = tok.cls_token_id, tok.sep_token_id
    calib_ids = {
        "rand": lcg_ids(vocab),
        "rand-cls": [[cls_id] + s[:62] + [sep_id] for s in lcg_ids(vocab)],
        "real": tok(queries[6000:6064], truncation=True, max_length=256)["input_ids"],
        "real512": tok(queries[6000:6512], truncation=True, max_length=256)["input_ids"],
        "rand-cls128": [[cls_id] + s[:62] + [sep_id] for s in lcg_ids(vocab, n=128)],
        "words512": word_ids(tok, 512, zipf=False),
        "wordsz512": word_ids(tok, 512, zipf=True),
        "wordsz2048": word_ids(tok, 2048, zipf=True),
        "wordszl512": word_ids(tok, 512, zipf=True, max_len=120),
        "wordszs512": word_ids(tok, 512, zipf=True, max_len=20),
        "wordsz1024": word_ids(tok, 1024, zipf=True),
    }
    with open(os.path.join(args.data, "trec-dl19-bm25-top100.json"), encoding="utf-8") as f:
        dl19 = json.load(f)
    # 2 passages (ranks 1 and 50) of each of the 43 DL19 queries: 86 passages
    calib_ids["passages"] = tok([q["hits"][r]["content"] for q in dl19 for r in (0, 49)],
                                truncation=True, max_length=256)["input_ids"]
    calib_ids["mix"] = calib_ids["real512"] + calib_ids["passages"]
    # 2000 queries (1000..2999, disjoint from the eval slice) + 5 passages of each DL19 query
    calib_ids["big"] = tok(queries[1000:3000] + [q["hits"][r]["content"] for q in dl19
                                                 for r in (0, 24, 49, 74, 99)],
                           truncation=True, max_length=256)["input_ids"]
    calib_rows = {}

    def get_calib(name):
        if name not in calib_rows:
            cap = Capture(base)
            run_model(base, calib_ids[name], batch_size=64, capture=cap)
            cap.close()
            calib_rows[name] = cap.get()
            ids = calib_ids[name]
            calib_rows[name]["lens"] = [len(ids[i]) for i in
                                        sorted(range(len(ids)), key=lambda i: len(ids[i]))]
        return calib_rows[name]

    # fp32 reference, cached
    os.makedirs(args.cache_dir, exist_ok=True)
    key = hashlib.sha1(json.dumps([args.model, texts]).encode()).hexdigest()[:16]
    cpath = os.path.join(args.cache_dir, f"fp32_{key}.pt")
    if os.path.exists(cpath):
        ref = torch.load(cpath)
    else:
        t0 = time.time()
        ref = run_model(base, enc, args.batch)
        torch.save(ref, cpath)
        print(f"fp32 reference: {time.time() - t0:.1f} s", file=sys.stderr)

    sent_index = {s: i for i, s in enumerate(sts_eval)}

    def sts_spearman(emb_sts):
        e = emb_sts
        cos = [float(e[sent_index[a]] @ e[sent_index[b]]) for a, b, _ in pairs]
        return spearman(cos, [g for _, _, g in pairs])

    header = (f"{'scheme':34s} {'MSM mean':>9s} {'MSM min':>8s} {'STS mean':>9s} {'STS min':>8s}"
              + (f" {'STS rho':>8s}" if args.spearman else "") + "  note")
    rows = []
    if args.spearman and not args.engine_set:
        rows.append(f"{'fp32':34s} {1:9.5f} {1:8.4f} {1:9.5f} {1:8.4f} "
                    f"{sts_spearman(ref[nq:]):8.4f}")
    print(header)
    for r in rows:
        print(r)
    sys.stdout.flush()
    for name in sel:
        s = schemes[name][1]
        t0 = time.time()
        def recapture(m, name=s.hcalib or s.calib):
            cap = Capture(m)
            run_model(m, calib_ids[name], batch_size=64, capture=cap)
            cap.close()
            return cap.get()

        model = build_model(base, s, get_calib(s.calib), args.exact, log=True,
                            hcalib_rows=get_calib(s.hcalib) if s.hcalib else None,
                            recapture=recapture)
        emb = run_model(model, enc, args.batch)
        cos = (emb * ref).sum(1).clamp(max=1.0)
        cq, cs = cos[:nq], cos[nq:]
        line = (f"{name:34s} {cq.mean().item():9.5f} {cq.min().item():8.4f} "
                f"{cs.mean().item():9.5f} {cs.min().item():8.4f}")
        if args.engine_set:
            line += f"  all mean {cos.mean().item():.5f} min {cos.min().item():.4f}"
        rho = None
        if args.spearman and not args.engine_set:
            rho = sts_spearman(emb[nq:])
            line += f" {rho:8.4f}"
        line += f"  {s.note} ({time.time() - t0:.0f}s)"
        print(line)
        sys.stdout.flush()
        if args.json:
            with open(args.json, "a") as f:
                f.write(json.dumps({"scheme": name, "msm_mean": cq.mean().item(),
                                    "msm_min": cq.min().item(), "sts_mean": cs.mean().item(),
                                    "sts_min": cs.min().item(), "spearman": rho,
                                    "n_msmarco": nq, "n_sts": len(sts_eval),
                                    "exact": args.exact}) + "\n")


if __name__ == "__main__":
    main()
