#!/usr/bin/env python3
"""Peer benchmark: ONNX Runtime and PyTorch running all-MiniLM-L6-v2 (BertModel + mean pooling
+ L2 normalise) on the same inputs as encserve, with exactly 2 intra-op threads, so that
encserve can report ratios (encserve / peer).

Peers
  ort_fp32    onnxruntime CPU EP, <cache>/minilm.opt.onnx (BERT-fused fp32 graph)
  ort_int8    onnxruntime CPU EP, <cache>/minilm.int8.onnx (quantize_dynamic, QInt8 per-channel)
  torch_fp32  transformers BertModel (default attention = sdpa) + pooling, eager PyTorch
  torch_int8  the same after torch.ao.quantization.quantize_dynamic({nn.Linear}, qint8), per-channel
              weights (per_channel_dynamic_qconfig; --torch-int8-per-tensor for the plain default)
  ov_fp32     OpenVINO CPU plugin, <model>/onnx/model.onnx (tools/prepare_onnx.sh), precision hint
              f32 (set explicitly and checked after compiling), 1 stream x 2 threads
  ov_bf16     the same with the bf16 hint
  ov_int8     <model>/onnx/model_int8.xml: NNCF post-training quantisation (300 MS MARCO queries)
  ct2_fp32    CTranslate2 Encoder (converted from the Hugging Face folder, cached), float32,
              2 intra threads; ragged batches (CTranslate2 pads internally)
  ct2_int8    the same with compute_type int8 (int8 weights, dynamic int8 activations)
  The ov_*/ct2_* peers mean-pool last_hidden_state over the mask and L2-normalise in numpy.

ISA: --peer-isa avx512 / avx2 restricts the oneDNN-based peers (OpenVINO, CTranslate2's oneDNN
and MKL) to AVX-512 without AMX (VNNI/BF16 kept) or AVX2 via ONEDNN_MAX_CPU_ISA /
MKL_ENABLE_INSTRUCTIONS / CT2_FORCE_CPU_ISA, and records what each peer reports it ran
(OpenVINO's executed primitive types); ONNX Runtime (MLAS) and PyTorch have no such switch and
run with what the CPU offers (recorded in the results as isa_restricted = false).

Workloads
  fixed    random ids (numpy default_rng(0) per point, ids in [1000, 30000), [CLS]=101 first,
           [SEP]=102 last, mask all ones, token types 0): seq {16,64,128} x batch {1,8,32,128}
  msmarco  the 6,980 MS MARCO dev-small queries in file order, batches of 1, 32, 128, tokenised
           with the model's fast tokenizer (truncate 256, pad to longest in the batch);
           tokenisation is inside the measured time and also reported on its own
  dl19     the 4,300 TREC DL19 BM25 top-100 query-passage pairs in file order, 32 pairs a batch:
           one call embeds the 32 query texts, one the 32 passage texts, score = dot product

Each peer runs in its own child process (fresh thread pools, OMP/MKL/RAYON_NUM_THREADS=2).
Warm-up batches (up to 3, or 1 s) are run first and excluded. Latency percentiles are
nearest-rank over all measured batches.

One command (builds the ONNX files first if they are missing):
  python bench/peers/run_peers.py --out results/peers.json
Smoke test:
  python bench/peers/run_peers.py --quick --out /tmp/peers-quick.json
"""
import argparse
import datetime
import json
import math
import os
import platform
import subprocess
import sys
import tempfile
import time

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)
import export_onnx as X  # noqa: E402  (shared helpers; imports nothing heavy at module level)
from peers_impl import THREADS, make_peer  # noqa: E402

PEERS = ["ort_fp32", "ort_int8", "torch_fp32", "torch_int8", "ov_fp32", "ov_bf16", "ov_int8",
         "ct2_fp32", "ct2_int8"]
WORKLOADS = ["fixed", "msmarco", "dl19"]
FIXED_SEQS = [16, 64, 128]
FIXED_BATCHES = [1, 8, 32, 128]
MSMARCO_BATCHES = [1, 32, 128]
DL19_BATCH = 32
MAX_LENGTH = 256
FLAGS = ["avx2", "fma", "avx512f", "avx512bw", "avx512vl", "avx512_vnni", "avx_vnni", "avx512_bf16",
         "avx512_fp16", "amx_tile", "amx_int8", "amx_bf16"]


# ----------------------------------------------------------------------------- helpers

def percentile(samples, p):
    """Nearest-rank percentile."""
    s = sorted(samples)
    k = max(1, math.ceil(p / 100.0 * len(s)))
    return s[k - 1]


def machine_info():
    model, flags = "unknown", set()
    phys = set()
    try:
        cur = {}
        with open("/proc/cpuinfo") as f:
            for line in f:
                if ":" not in line:
                    if cur:
                        phys.add((cur.get("physical id"), cur.get("core id")))
                    cur = {}
                    continue
                k, v = [t.strip() for t in line.split(":", 1)]
                cur[k] = v
                if k == "model name" and model == "unknown":
                    model = v
                elif k == "flags" and not flags:
                    flags = set(v.split())
            if cur:
                phys.add((cur.get("physical id"), cur.get("core id")))
    except OSError:
        pass
    info = {"cpu_model": model, "flags": [f for f in FLAGS if f in flags],
            "logical_cpus": os.cpu_count(),
            "physical_cores": len(phys) if phys and None not in {c for _, c in phys} else None,
            "affinity_cpus": len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else None,
            "cores": len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count(),
            "platform": platform.platform()}
    try:
        with open("/proc/meminfo") as f:
            info["mem_total_gb"] = round(int(f.readline().split()[1]) / 1024 / 1024, 1)
    except (OSError, ValueError, IndexError):
        pass
    return info


def versions():
    import importlib.metadata as md
    v = {"python": platform.python_version()}
    for pkg in ("numpy", "onnxruntime", "onnx", "torch", "transformers", "tokenizers", "sentence-transformers",
                "openvino", "ctranslate2"):
        try:
            v[pkg] = md.version(pkg)
        except md.PackageNotFoundError:
            v[pkg] = None
    return v


def load_sts(data_dir):
    """STS-B test: gold scores and the two sentence lists (split on TAB only: fields 5, 6, score 4)."""
    gold, a, b = [], [], []
    with open(os.path.join(data_dir, "sts-b-test.tsv"), encoding="utf-8") as f:
        for line in f:
            parts = line.rstrip("\n").split("\t")
            gold.append(float(parts[4]))
            a.append(parts[5])
            b.append(parts[6])
    return gold, a, b


def load_dl19(data_dir, n=None):
    with open(os.path.join(data_dir, "trec-dl19-bm25-top100.json"), encoding="utf-8") as f:
        d = json.load(f)
    pairs = [(x["query"], h["content"]) for x in d for h in x["hits"]]
    return pairs[:n] if n else pairs


# ----------------------------------------------------------------------------- measurement (child side)

def run_point(step, n_batches, max_seconds, warmup_max=3, warmup_seconds=1.0):
    """step(i) processes batch i and returns (tokenize_seconds, n_texts, padded_tokens, real_tokens).
    Returns the measured samples."""
    t0 = time.perf_counter()
    w = 0
    while w < min(warmup_max, n_batches):
        step(w)
        w += 1
        if time.perf_counter() - t0 >= warmup_seconds:
            break
    lat, tok_s, texts, padded, real = [], 0.0, 0, 0, 0
    total = 0.0
    for i in range(n_batches):
        t = time.perf_counter()
        ts, n, pt, rt = step(i)
        dt = time.perf_counter() - t
        lat.append(dt)
        total += dt
        tok_s += ts
        texts += n
        padded += pt
        real += rt
        if max_seconds and total >= max_seconds and i + 1 < n_batches:
            break
    return {"texts": texts, "seconds": total, "texts_per_s": texts / total,
            "model_texts_per_s": texts / (total - tok_s),  # tokenisation time taken out
            "p50_ms": percentile(lat, 50) * 1e3, "p99_ms": percentile(lat, 99) * 1e3,
            "mean_ms": total / len(lat) * 1e3, "batches": len(lat), "batches_available": n_batches,
            "capped": len(lat) < n_batches, "warmup_batches": w, "tokenize_seconds": tok_s,
            "padded_tokens": padded, "real_tokens": real}


def child_main(args):
    import numpy as np
    peer = make_peer(args.child, args)
    tok = X.make_tokenizer(args.model, MAX_LENGTH)
    out = {"peer": args.child, "info": peer.info, "points": []}

    def emit(point):
        out["points"].append(point)
        seq = f" seq={point['seq']:<4d}" if "seq" in point else " " * 9
        print(f"  {point['peer']:10s} {point['workload']:8s}{seq} batch={point['batch']:<4d} "
              f"texts={point['texts']:<6d} {point['texts_per_s']:9.1f}/s  p50 {point['p50_ms']:8.2f} ms  "
              f"p99 {point['p99_ms']:8.2f} ms  tok {point['tokenize_seconds']:.3f} s"
              f"{'  (capped)' if point['capped'] else ''}", flush=True)

    # accuracy vs sentence-transformers (reference computed by the parent)
    if args.ref:
        ref = np.load(args.ref)
        texts = X.load_queries(args.data, len(ref))
        embs = [peer(X.tokenize(tok, texts[i:i + 32])) for i in range(0, len(texts), 32)]
        c = X.cosines(np.concatenate(embs), ref)
        out["accuracy"] = {"mean_cos": float(c.mean()), "min_cos": float(c.min()), "n": len(texts)}
        print(f"  {args.child:10s} accuracy on {len(texts)} queries: min cos {c.min():.6f} mean {c.mean():.6f}",
              flush=True)

    # STS-B test Spearman (1,379 pairs, both sides embedded), as encserve eval-sts computes it
    if args.sts:
        from scipy.stats import spearmanr
        gold, a, b = load_sts(args.data)
        emb = []
        for side in (a, b):
            emb.append(np.concatenate([peer(X.tokenize(tok, side[i:i + 32])) for i in range(0, len(side), 32)]))
        rho = float(spearmanr((emb[0] * emb[1]).sum(1), gold).correlation)
        out["sts_b_spearman"] = rho
        print(f"  {args.child:10s} STS-B test Spearman {rho:.4f} ({len(gold)} pairs)", flush=True)

    cap = args.max_seconds_per_point
    wl = args.workloads.split(",")
    if "fixed" in wl:
        for seq in args.fixed_seqs:
            for b in args.fixed_batches:
                nb = args.fixed_n_batches or max(50, math.ceil(2048 / b))
                rng = np.random.default_rng(0)
                ids = rng.integers(1000, 30000, size=(nb * b, seq), dtype=np.int64)
                ids[:, 0] = 101
                ids[:, -1] = 102
                mask = np.ones((b, seq), dtype=np.int64)
                tt = np.zeros((b, seq), dtype=np.int64)

                def step(i, ids=ids, mask=mask, tt=tt, b=b, seq=seq):
                    e = peer({"input_ids": ids[i * b:(i + 1) * b], "attention_mask": mask, "token_type_ids": tt})
                    assert e.shape == (b, 384)
                    return 0.0, b, b * seq, b * seq

                r = run_point(step, nb, cap)
                emit({"peer": args.child, "workload": "fixed", "seq": seq, "batch": b, **r})

    if "msmarco" in wl:
        queries = X.load_queries(args.data, args.msmarco_n)
        for b in args.msmarco_batches:
            batches = [queries[i:i + b] for i in range(0, len(queries), b)]

            def step(i, batches=batches):
                t = time.perf_counter()
                feeds = X.tokenize(tok, batches[i])
                ts = time.perf_counter() - t
                e = peer(feeds)
                assert e.shape[0] == len(batches[i])
                return ts, len(batches[i]), feeds["input_ids"].size, int(feeds["attention_mask"].sum())

            r = run_point(step, len(batches), cap)
            emit({"peer": args.child, "workload": "msmarco", "batch": b, **r})

    if "dl19" in wl:
        pairs = load_dl19(args.data, args.dl19_n)
        b = DL19_BATCH
        batches = [pairs[i:i + b] for i in range(0, len(pairs), b)]

        def step(i):
            qs = [q for q, _ in batches[i]]
            ps = [p for _, p in batches[i]]
            t = time.perf_counter()
            fq = X.tokenize(tok, qs)
            ts = time.perf_counter() - t
            eq = peer(fq)
            t = time.perf_counter()
            fp = X.tokenize(tok, ps)
            ts += time.perf_counter() - t
            ep = peer(fp)
            scores = (eq * ep).sum(1)
            assert scores.shape == (len(qs),)
            return (ts, len(qs), fq["input_ids"].size + fp["input_ids"].size,
                    int(fq["attention_mask"].sum() + fp["attention_mask"].sum()))

        r = run_point(step, len(batches), cap)
        r["unit"] = "pairs"
        r["embedded_texts"] = 2 * r["texts"]
        emit({"peer": args.child, "workload": "dl19", "batch": b, **r})

    with open(args.child_out, "w") as f:
        json.dump(out, f)
    return 0


# ----------------------------------------------------------------------------- parent side

def st_reference(args, n):
    import numpy as np
    texts = X.load_queries(args.data, n)
    ref = X.st_reference(args.model, texts)
    fd, path = tempfile.mkstemp(suffix=".npy", prefix="peers-ref-")
    os.close(fd)
    np.save(path, ref)
    return path


def markdown(res):
    lines = ["| peer | workload | seq | batch | texts | texts/s | p50 ms | p99 ms | tokenize s |",
             "|---|---|---:|---:|---:|---:|---:|---:|---:|"]
    for p in res["points"]:
        unit = " pairs" if p.get("unit") == "pairs" else ""
        lines.append(f"| {p['peer']} | {p['workload']} | {p.get('seq', '')} | {p['batch']} | "
                     f"{p['texts']}{unit}{' (capped)' if p['capped'] else ''} | {p['texts_per_s']:.1f} | "
                     f"{p['p50_ms']:.2f} | {p['p99_ms']:.2f} | {p['tokenize_seconds']:.3f} |")
    if res.get("accuracy"):
        lines += ["", "| peer | mean cos vs sentence-transformers | min cos | STS-B ρ |", "|---|---:|---:|---:|"]
        for k, v in res["accuracy"].items():
            rho = f"{v['sts_b_spearman']:.4f}" if "sts_b_spearman" in v else ""
            lines.append(f"| {k} | {v.get('mean_cos', float('nan')):.6f} | {v.get('min_cos', float('nan')):.6f} | {rho} |")
    return "\n".join(lines)


# What restricts each library to a kernel set (see the docstring). "native": no restriction.
def isa_env(isa):
    if isa == "avx512":  # AVX-512 with VNNI and BF16, no AMX tiles
        return {"ONEDNN_MAX_CPU_ISA": "AVX512_CORE_BF16", "MKL_ENABLE_INSTRUCTIONS": "AVX512_E1",
                "CT2_FORCE_CPU_ISA": "AVX512"}
    if isa == "avx2":
        return {"ONEDNN_MAX_CPU_ISA": "AVX2_VNNI", "MKL_ENABLE_INSTRUCTIONS": "AVX2", "CT2_FORCE_CPU_ISA": "AVX2"}
    return {}


def parent_main(args):
    peers = args.peers.split(",")
    for p in peers:
        if p not in PEERS:
            raise SystemExit(f"unknown peer {p!r} (choose from {','.join(PEERS)})")
    for w in args.workloads.split(","):
        if w not in WORKLOADS:
            raise SystemExit(f"unknown workload {w!r} (choose from {','.join(WORKLOADS)})")

    need = [f for p, f in (("ort_fp32", "minilm.opt.onnx"), ("ort_int8", "minilm.int8.onnx")) if p in peers]
    if any(not os.path.exists(os.path.join(args.cache, f)) for f in need):
        print("ONNX files missing: running export_onnx.py", flush=True)
        subprocess.run([sys.executable, os.path.join(HERE, "export_onnx.py"), "--model", args.model,
                        "--cache", args.cache, "--data", args.data], check=True)

    res = {"machine": machine_info(), "versions": versions(),
           "date": datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds"),
           "threads": THREADS, "model": os.path.abspath(args.model),
           "settings": {"quick": args.quick, "max_seconds_per_point": args.max_seconds_per_point,
                        "max_length": MAX_LENGTH, "padding": "longest in batch (msmarco, dl19)",
                        "fixed_seqs": args.fixed_seqs, "fixed_batches": args.fixed_batches,
                        "msmarco_batches": args.msmarco_batches, "msmarco_queries": args.msmarco_n or 6980,
                        "dl19_pairs": args.dl19_n or 4300, "dl19_batch_pairs": DL19_BATCH,
                        "warmup": "up to 3 batches or 1 s, excluded",
                        "latency": "per batch (dl19: per 32 pairs = 2 calls), nearest-rank percentiles",
                        "env": {"OMP_NUM_THREADS": "2", "MKL_NUM_THREADS": "2", "RAYON_NUM_THREADS": "2"}},
           "peers": {}, "points": [], "accuracy": {}}
    man = os.path.join(args.cache, "manifest.json")
    if os.path.exists(man):
        with open(man) as f:
            res["onnx_manifest"] = json.load(f)

    ref = st_reference(args, args.accuracy_n) if args.accuracy_n else None
    env = dict(os.environ, OMP_NUM_THREADS=str(THREADS), MKL_NUM_THREADS=str(THREADS),
               RAYON_NUM_THREADS=str(THREADS), TOKENIZERS_PARALLELISM="true", HF_HUB_OFFLINE="1")
    env.update(isa_env(args.peer_isa))
    res["settings"]["peer_isa"] = args.peer_isa
    res["settings"]["isa_env"] = isa_env(args.peer_isa)
    failed = []
    t_all = time.perf_counter()
    try:
        for p in peers:
            fd, cout = tempfile.mkstemp(suffix=".json", prefix=f"peers-{p}-")
            os.close(fd)
            cmd = [sys.executable, os.path.abspath(__file__), "--child", p, "--child-out", cout,
                   "--model", args.model, "--cache", args.cache, "--data", args.data,
                   "--workloads", args.workloads, "--max-seconds-per-point", str(args.max_seconds_per_point),
                   "--fixed-seqs", *map(str, args.fixed_seqs), "--fixed-batches", *map(str, args.fixed_batches),
                   "--msmarco-batches", *map(str, args.msmarco_batches),
                   "--fixed-n-batches", str(args.fixed_n_batches or 0),
                   "--msmarco-n", str(args.msmarco_n or 0), "--dl19-n", str(args.dl19_n or 0)]
            if args.torch_int8_per_tensor:
                cmd.append("--torch-int8-per-tensor")
            if ref:
                cmd += ["--ref", ref]
            if args.sts:
                cmd.append("--sts")
            print(f"[{p}]", flush=True)
            t = time.perf_counter()
            rc = subprocess.run(cmd, env=env).returncode
            if rc != 0:
                print(f"[{p}] FAILED (exit {rc})", file=sys.stderr, flush=True)
                failed.append(p)
                continue
            with open(cout) as f:
                c = json.load(f)
            os.unlink(cout)
            c["info"]["isa_restricted"] = args.peer_isa != "native" and p.startswith(("ov_", "ct2_"))
            res["peers"][p] = c["info"]
            res["points"] += c["points"]
            if "accuracy" in c:
                res["accuracy"][p] = c["accuracy"]
            if "sts_b_spearman" in c:
                res["accuracy"].setdefault(p, {})["sts_b_spearman"] = c["sts_b_spearman"]
            print(f"[{p}] done in {time.perf_counter() - t:.1f} s", flush=True)
    finally:
        if ref:
            os.unlink(ref)
    res["total_seconds"] = time.perf_counter() - t_all
    if failed:
        res["failed_peers"] = failed

    if args.out:
        os.makedirs(os.path.dirname(os.path.abspath(args.out)), exist_ok=True)
        with open(args.out, "w") as f:
            json.dump(res, f, indent=1)
    m = res["machine"]
    print(f"\n{m['cpu_model']}, {m['cores']} cores, flags {' '.join(m['flags'])}; {THREADS} threads; "
          f"onnxruntime {res['versions']['onnxruntime']}, torch {res['versions']['torch']}")
    print(markdown(res))
    print(f"\ntotal {res['total_seconds']:.0f} s" + (f"; wrote {args.out}" if args.out else ""))
    return 1 if failed else 0


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--peers", default=",".join(PEERS), help="comma list of " + ",".join(PEERS))
    ap.add_argument("--workloads", default=",".join(WORKLOADS), help="comma list of " + ",".join(WORKLOADS))
    ap.add_argument("--quick", action="store_true",
                    help="smoke test: seq {16,128} x batch {1,32} x 5 batches, 256 queries, 64 DL19 pairs, "
                         "50 accuracy queries, 2 s cap per point")
    ap.add_argument("--max-seconds-per-point", type=float, default=None,
                    help="stop a point once its measured time passes this (default 20; 0 = no cap); "
                         "the point reports how many texts were measured")
    ap.add_argument("--out", default=None, help="results JSON (e.g. results/peers.json)")
    ap.add_argument("--model", default=X.DEFAULT_MODEL)
    ap.add_argument("--cache", default=X.DEFAULT_CACHE, help="where the ONNX files are (export_onnx.py)")
    ap.add_argument("--data", default=X.DEFAULT_DATA)
    ap.add_argument("--fixed-seqs", type=int, nargs="+", default=None)
    ap.add_argument("--fixed-batches", type=int, nargs="+", default=None)
    ap.add_argument("--fixed-n-batches", type=int, default=None,
                    help="batches per fixed point (default max(50, ceil(2048/batch)))")
    ap.add_argument("--msmarco-batches", type=int, nargs="+", default=None)
    ap.add_argument("--msmarco-n", type=int, default=None, help="first N queries only")
    ap.add_argument("--dl19-n", type=int, default=None, help="first N pairs only")
    ap.add_argument("--accuracy-n", type=int, default=None, help="queries for the accuracy check (default 200)")
    ap.add_argument("--torch-int8-per-tensor", action="store_true",
                    help="torch_int8 with per-tensor weights (plain quantize_dynamic defaults) instead of per-channel")
    ap.add_argument("--peer-isa", choices=["native", "avx512", "avx2"], default="native",
                    help="restrict the oneDNN/MKL-based peers (OpenVINO, CTranslate2) to AVX-512 without AMX "
                         "or to AVX2 (ONNX Runtime and PyTorch cannot be restricted)")
    ap.add_argument("--sts", action="store_true", help="also compute each peer's STS-B test Spearman")
    ap.add_argument("--child", help=argparse.SUPPRESS)
    ap.add_argument("--child-out", help=argparse.SUPPRESS)
    ap.add_argument("--ref", help=argparse.SUPPRESS)
    args = ap.parse_args()

    q = args.quick
    if args.max_seconds_per_point is None:
        args.max_seconds_per_point = 2.0 if q else 20.0
    if args.fixed_seqs is None:
        args.fixed_seqs = [16, 128] if q else FIXED_SEQS
    if args.fixed_batches is None:
        args.fixed_batches = [1, 32] if q else FIXED_BATCHES
    if args.msmarco_batches is None:
        args.msmarco_batches = MSMARCO_BATCHES
    if args.fixed_n_batches is None and q:
        args.fixed_n_batches = 5
    if args.msmarco_n is None and q:
        args.msmarco_n = 256
    if args.dl19_n is None and q:
        args.dl19_n = 64
    if args.accuracy_n is None:
        args.accuracy_n = 50 if q else 200
    for k in ("fixed_n_batches", "msmarco_n", "dl19_n"):
        if getattr(args, k) == 0:
            setattr(args, k, None)
    return child_main(args) if args.child else parent_main(args)


if __name__ == "__main__":
    sys.exit(main())
