#!/usr/bin/env python3
"""End-to-end (model-output) tuning of int4 g64 weights, on top of tools/quant_sim.py.

Asks whether training against the fp32 model's output, instead of layer-wise rounding, lifts
int4 g64 past 0.99 mean cosine to fp32 on MS MARCO queries and STS-B sentences. Two modes:

  scales  the engine's recipe (smoothing, 64-point Hadamard rotation, clip search, GPTQ on the
          data-free calibration text), then, with the int4 codes fixed, every group's affine grid
          (w' = alpha·ŵ + beta, i.e. a new scale and offset), every bias and every LayerNorm
          trained with Adam on the relative token-level MSE of the last hidden state
  round   AutoRound-style (Cheng et al. 2023): round-to-nearest on the clip-searched grid of the
          smoothed, rotated weights, then a learned rounding offset V ∈ [-0.5, 0.5] per weight
          and clip factors per group (sign SGD, linearly decaying step), biases by Adam; same loss

Both keep the engine's per-row asymmetric u8 activations (straight-through gradients). The loss
is the whole model's output, so the quantised layers before a layer are seen while it is tuned.

  python3 tools/quant_e2e.py --mode scales --epochs 6
  python3 tools/quant_e2e.py --mode round --steps 600
  (--calib real: 512 MS MARCO dev queries 6000..6511 instead of the data-free word sequences)
"""
import argparse
import copy
import os
import sys
import time

import torch
import torch.nn as nn

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import quant_sim as qs  # noqa: E402

RECIPE = "i4-g64-aff-mse-gptq-rot64-wordsz512"
G = 64


def ste_act(x2):
    """The engine's per-row u8 activation quantisation, straight-through for the gradient."""
    with torch.no_grad():
        xi, a = qs.quant_rows_asym(x2)
        fq = xi * a
    return x2 + (fq - x2).detach()


class TunedGrid(nn.Module):
    """A recipe QLinear with fixed codes; per group w' = alpha·ŵ + beta (new scale, offset)."""

    def __init__(self, q):
        super().__init__()
        self.q = q
        k, n = q.w_hat_t.shape
        self.alpha = nn.Parameter(torch.ones(k // G, 1, n))
        self.beta = nn.Parameter(torch.zeros(k // G, 1, n))
        self.bias = nn.Parameter(q.bias.clone())

    def forward(self, x):
        q, shp = self.q, x.shape
        x2 = x.reshape(-1, shp[-1]) * q.smooth_inv
        x2 = ste_act(x2 @ q.rot)
        k, n = q.w_hat_t.shape
        w = (q.w_hat_t.view(k // G, G, n) * self.alpha + self.beta).view(k, n)
        return (x2 @ w + self.bias).reshape(*shp[:-1], n)


class LearnedRounding(nn.Module):
    """int4 g64 affine with a learned rounding offset V and clip factors (AutoRound-style)."""

    def __init__(self, ws, bias, inv, rot):
        super().__init__()
        n, k = ws.shape
        self.wg, self.inv, self.rot = ws.reshape(n, k // G, G), inv, rot
        self.mn0, self.mx0 = qs.affine_grid(self.wg, 16, "mse")
        self.a_lo = nn.Parameter(torch.ones_like(self.mn0))
        self.a_hi = nn.Parameter(torch.ones_like(self.mx0))
        self.V = nn.Parameter(torch.zeros_like(self.wg))
        self.bias = nn.Parameter(bias.clone())

    def forward(self, x):
        mn, mx = self.mn0 * self.a_lo, self.mx0 * self.a_hi
        s = ((mx - mn) / 15).clamp(min=1e-12)
        u = (self.wg - mn) / s + self.V
        w = ((u + (torch.round(u) - u).detach()).clamp(0, 15) * s + mn).reshape(
            self.wg.shape[0], -1)
        shp = x.shape
        x2 = ste_act((x.reshape(-1, shp[-1]) * self.inv) @ self.rot)
        return (x2 @ w.t() + self.bias).reshape(*shp[:-1], w.shape[0])


def batches(base, ids_list, size=32):
    """Calibration batches (ids, mask, fp32 last hidden state), sorted by length."""
    out = []
    with torch.no_grad():
        for _, ids, mask in qs.padded_batches(ids_list, size):
            h = base(input_ids=ids, attention_mask=mask,
                     token_type_ids=torch.zeros_like(ids)).last_hidden_state
            out.append((ids, mask, h))
    return out


def token_loss(model, ids, mask, h):
    out = model(input_ids=ids, attention_mask=mask,
                token_type_ids=torch.zeros_like(ids)).last_hidden_state
    m = mask.unsqueeze(-1).float()
    return (((out - h) ** 2) * m).sum() / ((h ** 2) * m).sum()


def main():
    ap = argparse.ArgumentParser(description=__doc__,
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--mode", choices=("scales", "round"), required=True)
    ap.add_argument("--model", default="/root/.cache/encserve/models/all-MiniLM-L6-v2")
    ap.add_argument("--data", default="/work/shared/data")
    ap.add_argument("--calib", choices=("words", "real"), default="words")
    ap.add_argument("--epochs", type=int, default=6, help="scales: passes over the calibration")
    ap.add_argument("--steps", type=int, default=600, help="round: sign-SGD steps")
    ap.add_argument("--lr", type=float, default=None,
                    help="scales: Adam (1e-3); round: sign-SGD step (5e-3)")
    ap.add_argument("--eval-every", type=int, default=100, help="round: evaluate every N steps")
    ap.add_argument("--threads", type=int, default=2)
    args = ap.parse_args()
    torch.set_num_threads(args.threads)
    torch.manual_seed(0)

    from transformers import AutoModel, AutoTokenizer
    tok = AutoTokenizer.from_pretrained(args.model)
    base = AutoModel.from_pretrained(args.model, dtype=torch.float32).eval()
    queries = qs.load_msmarco(os.path.join(args.data, "msmarco-dev-small-queries.tsv"))
    pairs = qs.load_stsb(os.path.join(args.data, "sts-b-test.tsv"))
    sts = list(dict.fromkeys([s for a, b, _ in pairs for s in (a, b)]))
    nq = 1000
    enc = tok(queries[:nq] + sts, truncation=True, max_length=256)["input_ids"]
    ref = qs.run_model(base, enc, 64)
    index = {s: i for i, s in enumerate(sts)}

    def evaluate(model, tag):
        emb = qs.run_model(model, enc, 64)
        cos = (emb * ref).sum(1).clamp(max=1.0)
        e = emb[nq:]
        rho = qs.spearman([float(e[index[a]] @ e[index[b]]) for a, b, _ in pairs],
                          [g for *_, g in pairs])
        print(f"{tag:18s} MS MARCO mean {cos[:nq].mean():.5f} min {cos[:nq].min():.4f}  "
              f"STS-B mean {cos[nq:].mean():.5f} min {cos[nq:].min():.4f}  rho {rho:.4f}",
              flush=True)

    words = qs.word_ids(tok, 512, zipf=True)  # the engine's data-free calibration text
    train_ids = words if args.calib == "words" else tok(
        queries[6000:6512], truncation=True, max_length=256)["input_ids"]
    def capture(ids_list):
        cap = qs.Capture(base)
        qs.run_model(base, ids_list, 64, capture=cap)
        cap.close()
        return cap.get()

    # as quant_sim's recipe: smoothing from random token ids, GPTQ Hessians from the words
    rows = capture(qs.lcg_ids(base.config.vocab_size))
    hrows = capture(words)
    data = batches(base, train_ids)

    if args.mode == "scales":
        model = qs.build_model(base, qs.build_schemes()[RECIPE][1], rows, False, log=False,
                               hcalib_rows=hrows)
        evaluate(model, "recipe")
        tuned = []
        for mod in list(model.modules()):
            for name, child in list(mod.named_children()):
                if isinstance(child, qs.QLinear):
                    t = TunedGrid(child)
                    setattr(mod, name, t)
                    tuned.append(t)
        for p in model.parameters():
            p.requires_grad_(False)
        params = [p for t in tuned for p in (t.alpha, t.beta, t.bias)]
        params += [p for n, p in model.named_parameters() if "LayerNorm" in n]
        for p in params:
            p.requires_grad_(True)
        opt = torch.optim.Adam(params, lr=args.lr or 1e-3)
        sched = torch.optim.lr_scheduler.CosineAnnealingLR(opt, args.epochs * len(data))
        for ep in range(args.epochs):
            t0, tot = time.time(), 0.0
            for bi in torch.randperm(len(data)).tolist():
                loss = token_loss(model, *data[bi])
                opt.zero_grad()
                loss.backward()
                opt.step()
                sched.step()
                tot += loss.item()
            print(f"epoch {ep + 1}: loss {tot / len(data):.5f} ({time.time() - t0:.0f} s)")
            evaluate(model, f"scales epoch {ep + 1}")
        return

    model = copy.deepcopy(base)
    tuned = []
    for l, layer in enumerate(model.encoder.layer):
        for kind, mods in qs.gemm_modules(layer).items():
            w = torch.cat([m.weight.detach() for m in mods], 0).float()
            b = torch.cat([m.bias.detach() for m in mods], 0).float()
            s = qs.sq_scale(rows[(l, kind)].abs().amax(0), w.abs().amax(0), 0.5)
            rot = qs.rotation(w.shape[1], 64, False)
            ws, n0 = (w * s) @ rot, 0
            for m in mods:
                n = m.weight.shape[0]
                t = LearnedRounding(ws[n0:n0 + n], b[n0:n0 + n], 1.0 / s, rot)
                qs.set_module(model, m, t)
                tuned.append(t)
                n0 += n
    for p in model.parameters():
        p.requires_grad_(False)
    signed = [p for t in tuned for p in (t.V, t.a_lo, t.a_hi)]
    biases = [t.bias for t in tuned]
    for p in signed + biases:
        p.requires_grad_(True)
    evaluate(model, "round to nearest")
    opt = torch.optim.Adam(biases, lr=1e-4)
    lr0, t0, tot, count = args.lr or 5e-3, time.time(), 0.0, 0
    order = []
    for step in range(args.steps):
        if not order:  # a fresh shuffle of the length-sorted batches every pass
            order = torch.randperm(len(data)).tolist()
        loss = token_loss(model, *data[order.pop()])
        for p in signed + biases:
            p.grad = None
        loss.backward()
        lr = lr0 * (1 - step / args.steps)
        with torch.no_grad():
            for t in tuned:
                t.V -= lr * torch.sign(t.V.grad)
                t.V.clamp_(-0.5, 0.5)
                for a in (t.a_lo, t.a_hi):
                    a -= lr * torch.sign(a.grad)
                    a.clamp_(0.5, 1.0)
        opt.step()
        tot, count = tot + loss.item(), count + 1
        if (step + 1) % args.eval_every == 0 or step + 1 == args.steps:
            print(f"step {step + 1}: loss {tot / count:.5f} ({time.time() - t0:.0f} s)")
            tot, count = 0.0, 0
            evaluate(model, f"round step {step + 1}")


if __name__ == "__main__":
    main()
