#!/usr/bin/env python3
"""The Python-API baseline of `encserve bench-engine -w msmarco`: the same model, the same
batches, each library through its own Python API (scripts/bench_backends.sh compares the two).

  --lib torch     eager PyTorch (tools/torch_bert.py), Debian's /usr/bin/python3 + python3-torch
  --lib openvino  openvino's Python API on model.onnx / model_int8.xml, the pyenv python3
  --lib mlx       mlx's Python API (tools/mlx_bert_ref.py), the pyenv python3

What is timed, as bench-engine times it: MS MARCO dev-small queries in file order, consecutive
batches of --batch (the last one shorter), --warmup batches first (batches 0.., not timed), then
every batch from the first: pad to the batch's longest sequence (input_ids, attention_mask,
token_type_ids = 0), the forward pass, mean pooling over each text's tokens and L2
normalisation in the library (torch ops / numpy for OpenVINO / mx ops). Throughput = items /
wall time of the timed loop; p50/p99 = nearest-rank percentiles of the batch latencies.

NOT timed here (timed by bench-engine): tokenisation. The texts are tokenised once before the
loop with Hugging Face `tokenizers` (tokenizer.json, truncation to sentence_bert_config.json's
max_seq_length incl. [CLS]/[SEP]) and cached in /tmp/encserve-msmarco-ids-<hash>.json; so the
comparison is conservative for the C++ side. Debian's python has no `tokenizers`: when this
script runs there and the cache is missing it runs itself with --tokenize-only under the pyenv
python3 (env TOKENIZE_PYTHON, default: `python3` on PATH) to write the cache.

Precisions (as the C++ backends do them; see src/backends/*/..._impl.cc):
  torch     fp32; bf16: embeddings + their LayerNorm fp32, the encoder (every Linear, LayerNorm,
            attention) in bfloat16 (module.encoder.to(bfloat16)), hidden states back to fp32 for
            pooling; int8: torch.ao.quantization.quantize_dynamic(encoder Linears, qint8,
            per_channel_dynamic_qconfig) on the 'onednn' quantised engine
  openvino  fp32 / bf16: model.onnx with INFERENCE_PRECISION_HINT f32 / bf16; int8: the NNCF
            model onnx/model_int8.xml with f32; NUM_STREAMS 1, INFERENCE_NUM_THREADS --threads,
            ENABLE_CPU_PINNING False, one infer request
  mlx       fp32, bf16, fp16, int8, int4 as tools/mlx_bert_ref.py builds them (group size 64)

Appends one JSON line per run to --json-out and prints a summary line like bench-engine's.
"""
import argparse
import hashlib
import json
import math
import os
import platform
import shutil
import subprocess
import sys
import time

import numpy as np

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(HERE)
DEFAULT_MODEL = os.environ.get(
    "ENCSERVE_MODEL", os.path.expanduser("~/.cache/encserve/models/all-MiniLM-L6-v2"))
DEFAULT_DATA = os.path.join(
    os.environ.get("ENCSERVE_DATA", "/work/shared/data"), "msmarco-dev-small-queries.tsv")
PRECISIONS = {
    "torch": ("fp32", "bf16", "int8"),
    "openvino": ("fp32", "bf16", "int8"),
    "mlx": ("fp32", "bf16", "fp16", "int8", "int4"),
}


def log(*a):
    print(*a, file=sys.stderr, flush=True)


# ---------------------------------------------------------------- data and tokenisation

def read_queries(path):
    """The query column of qid<TAB>query lines, in file order (as eval::LoadMsMarcoQueries)."""
    out = []
    with open(path, encoding="utf-8", newline="") as f:
        for n, line in enumerate(f, 1):
            line = line.rstrip("\n").rstrip("\r")
            if not line:
                continue
            if "\t" not in line:
                raise SystemExit(f"{path}:{n}: expected qid<TAB>query")
            out.append(line.split("\t", 1)[1])
    return out


def max_seq_length(model_dir):
    with open(os.path.join(model_dir, "config.json")) as f:
        n = json.load(f)["max_position_embeddings"]
    p = os.path.join(model_dir, "sentence_bert_config.json")
    if os.path.exists(p):
        with open(p) as f:
            n = json.load(f).get("max_seq_length", n)
    return int(n)


def cache_path(model_dir, data):
    h = hashlib.sha256()
    for path in (os.path.join(model_dir, "tokenizer.json"), data):
        with open(path, "rb") as f:
            h.update(f.read())
    h.update(str(max_seq_length(model_dir)).encode())
    return f"/tmp/encserve-msmarco-ids-{h.hexdigest()[:16]}.json"


def tokenize_to_cache(model_dir, data, path):
    from tokenizers import Tokenizer, __version__ as tok_version
    tok = Tokenizer.from_file(os.path.join(model_dir, "tokenizer.json"))
    tok.enable_truncation(max_seq_length(model_dir))
    tok.no_padding()
    encs = tok.encode_batch(read_queries(data))
    doc = {"model_dir": model_dir, "data": data, "max_seq_length": max_seq_length(model_dir),
           "tokenizers": tok_version,
           "ids": [e.ids for e in encs], "type_ids": [e.type_ids for e in encs]}
    tmp = f"{path}.{os.getpid()}.tmp"
    with open(tmp, "w") as f:
        json.dump(doc, f, separators=(",", ":"))
    os.replace(tmp, path)  # atomic: concurrent runs never read half a file


def load_tokens(model_dir, data):
    """[(ids, type_ids)] of every query, from the cache (made first if missing)."""
    path = cache_path(model_dir, data)
    if not os.path.exists(path):
        try:
            import tokenizers  # noqa: F401
            have = True
        except ImportError:
            have = False
        if have:
            tokenize_to_cache(model_dir, data, path)
        else:
            py = os.environ.get("TOKENIZE_PYTHON") or shutil.which("python3")
            if not py or os.path.realpath(py) == os.path.realpath(sys.executable):
                raise SystemExit("no `tokenizers` in this python and no other python3 to "
                                 "tokenise with (set TOKENIZE_PYTHON)")
            log(f"tokenising with {py} (this python has no `tokenizers`) -> {path}")
            subprocess.run([py, os.path.abspath(__file__), "--tokenize-only", "--model",
                            model_dir, "--data", data], check=True)
    with open(path) as f:
        doc = json.load(f)
    return list(zip(doc["ids"], doc["type_ids"])), path


def pad(batch, pad_id):
    """Padded int64 [B, L] ids, type ids, mask (L = the batch's longest sequence)."""
    seq = max(len(ids) for ids, _ in batch)
    ids = np.full((len(batch), seq), pad_id, np.int64)
    types = np.zeros((len(batch), seq), np.int64)
    mask = np.zeros((len(batch), seq), np.int64)
    for i, (t, ty) in enumerate(batch):
        ids[i, :len(t)] = t
        types[i, :len(t)] = ty
        mask[i, :len(t)] = 1
    return ids, types, mask


# ---------------------------------------------------------------- the libraries

def make_torch(args, pad_id):
    import torch
    sys.path.insert(0, HERE)
    from torch_bert import MASK_VALUE, load_model

    torch.set_num_threads(args.threads)
    model, info = load_model(args.model)
    if info["kind"] != "embedding":
        raise SystemExit("an embedding model is needed")
    notes = "eager nn.Module (tools/torch_bert.py), torch.inference_mode"
    dtype = torch.float32
    if args.precision == "bf16":
        # torch_bert's forward adds an fp32 mask to the scores (bf16 + fp32 -> fp32, and the
        # next matmul with bf16 values fails), so the bf16 step calls its two halves itself.
        dtype = torch.bfloat16
        model.encoder.to(dtype)
        notes += ("; bf16: embeddings + embedding LayerNorm fp32, the encoder (Linears, "
                  "LayerNorms, attention, additive mask) bfloat16, as the C++ backend")
    elif args.precision == "int8":
        from torch.ao.quantization import per_channel_dynamic_qconfig, quantize_dynamic
        torch.backends.quantized.engine = "onednn"  # Debian's libtorch has no fbgemm
        model = quantize_dynamic(model, {torch.nn.Linear: per_channel_dynamic_qconfig},
                                 dtype=torch.qint8)
        notes += ("; int8: quantize_dynamic(nn.Linear: per_channel_dynamic_qconfig, qint8), "
                  "engine onednn")
    model.eval()

    def step(batch):
        ids, types, mask = pad(batch, pad_id)
        with torch.inference_mode():
            ids_t, types_t, mask_t = (torch.from_numpy(ids), torch.from_numpy(types),
                                      torch.from_numpy(mask))
            if dtype == torch.float32:
                hidden = model(ids_t, mask_t, types_t)
            else:
                x = model.embeddings(ids_t, types_t).to(dtype)
                mask_add = (1.0 - mask_t.to(dtype))[:, None, None, :] * MASK_VALUE
                hidden = model.encoder(x, mask_add).to(torch.float32)
            m = mask_t.unsqueeze(-1).to(torch.float32)
            pooled = (hidden * m).sum(1) / m.sum(1)
            return torch.nn.functional.normalize(pooled, p=2.0, dim=1).numpy()

    return step, "torch " + torch.__version__, notes


def make_openvino(args, pad_id):
    import openvino as ov
    import openvino.properties as props
    import openvino.properties.hint as hints

    file = args.onnx_file or os.path.join(
        args.model, "onnx", "model_int8.xml" if args.precision == "int8" else "model.onnx")
    core = ov.Core()
    model = core.read_model(file)
    hint = ov.Type.bf16 if args.precision == "bf16" else ov.Type.f32
    compiled = core.compile_model(model, "CPU", {
        hints.inference_precision: hint,
        props.num_streams: 1,
        props.inference_num_threads: args.threads,
        hints.enable_cpu_pinning: False,
    })
    used = compiled.get_property(hints.inference_precision)
    if used != hint:
        raise SystemExit(f"OpenVINO runs this model in {used}, not {hint}")
    names = {i.get_any_name() for i in compiled.inputs}
    request = compiled.create_infer_request()

    def step(batch):
        ids, types, mask = pad(batch, pad_id)
        feed = {"input_ids": ids, "attention_mask": mask}
        if "token_type_ids" in names:
            feed["token_type_ids"] = types
        request.infer(feed)
        hidden = request.get_output_tensor(0).data  # [B, L, H] float32, a view
        m = mask[:, :, None].astype(np.float32)
        pooled = (hidden * m).sum(axis=1) / m.sum(axis=1)
        return pooled / np.maximum(np.linalg.norm(pooled, axis=1, keepdims=True), 1e-12)

    notes = (f"{os.path.basename(file)}, INFERENCE_PRECISION_HINT {hint}, NUM_STREAMS 1, "
             f"INFERENCE_NUM_THREADS {args.threads}, ENABLE_CPU_PINNING False, 1 infer request")
    return step, "openvino " + ov.__version__.split("-")[0], notes


def make_mlx(args, pad_id):
    import mlx.core as mx
    sys.path.insert(0, HERE)
    import mlx_bert_ref

    mx.set_default_device(mx.cpu)
    model = mlx_bert_ref.load(args.model, args.precision, args.group_size)
    bert = model.bert

    def step(batch):
        ids, types, mask = pad(batch, pad_id)
        m = mx.array(mask.astype(np.int32))
        hidden = bert(mx.array(ids.astype(np.int32)), mx.array(types.astype(np.int32)), m)
        hidden = hidden.astype(mx.float32)
        mf = m.astype(mx.float32)[:, :, None]
        pooled = (hidden * mf).sum(axis=1) / mf.sum(axis=1)
        out = pooled / mx.maximum(mx.linalg.norm(pooled, axis=1, keepdims=True), 1e-12)
        mx.eval(out)
        return np.array(out)

    notes = (f"tools/mlx_bert_ref.py, {args.precision}"
             + (f" group {args.group_size}" if args.precision in ("int8", "int4") else "")
             + "; mlx cpu has no thread setting (--threads not applied)")
    return step, "mlx " + mx.__version__, notes


def blas_libs():
    """The BLAS-like libraries mapped into this process (fairness check: which GEMM code)."""
    found = set()
    try:
        with open("/proc/self/maps") as f:
            for line in f:
                name = os.path.basename(line.split()[-1]) if "/" in line else ""
                if any(k in name for k in ("blas", "mkl", "dnnl", "lapack")):
                    found.add(name)
    except OSError:
        pass
    return sorted(found)


def percentile(values, p):
    """Nearest rank, as encserve's Percentile."""
    if not values:
        return 0.0
    v = sorted(values)
    rank = math.ceil(p / 100.0 * len(v))
    return v[min(max(rank, 1), len(v)) - 1]


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0],
                                 formatter_class=argparse.RawDescriptionHelpFormatter,
                                 epilog=__doc__.split("\n", 2)[2])
    ap.add_argument("--lib", choices=sorted(PRECISIONS))
    ap.add_argument("-p", "--precision", default="fp32")
    ap.add_argument("-m", "--model", default=DEFAULT_MODEL)
    ap.add_argument("--data", default=DEFAULT_DATA)
    ap.add_argument("-b", "--batch", type=int, default=32)
    ap.add_argument("-t", "--threads", type=int, default=2)
    ap.add_argument("--limit", type=int, default=0, help="first N queries (0: all)")
    ap.add_argument("--warmup", type=int, default=3, help="untimed warm-up batches")
    ap.add_argument("--max-seconds", type=float, default=0, help="stop timing after this long")
    ap.add_argument("--group-size", type=int, default=64, help="mlx int8/int4 group size")
    ap.add_argument("--onnx-file", default="", help="openvino: this model file instead")
    ap.add_argument("--json-out", default="", help="append the result as one JSON line")
    ap.add_argument("--dump", default="",
                    help="write the first batch's embeddings as JSON {embeddings} (a check "
                         "against `encserve embed`)")
    ap.add_argument("--tokenize-only", action="store_true",
                    help="write the token cache and exit (needs `tokenizers`)")
    args = ap.parse_args()
    args.model = os.path.abspath(args.model)
    args.data = os.path.abspath(args.data)

    if args.tokenize_only:
        path = cache_path(args.model, args.data)
        if os.path.exists(path):
            log(f"token cache {path} exists")
        else:
            tokenize_to_cache(args.model, args.data, path)
            log(f"wrote {path}")
        return
    if not args.lib:
        ap.error("--lib is required")
    if args.precision not in PRECISIONS[args.lib]:
        ap.error(f"--lib {args.lib} precisions: {', '.join(PRECISIONS[args.lib])}")

    tokens, cache = load_tokens(args.model, args.data)
    if 0 < args.limit < len(tokens):
        tokens = tokens[:args.limit]
    batches = [tokens[i:i + args.batch] for i in range(0, len(tokens), args.batch)]
    with open(os.path.join(args.model, "config.json")) as f:
        pad_id = json.load(f).get("pad_token_id", 0)

    make = {"torch": make_torch, "openvino": make_openvino, "mlx": make_mlx}[args.lib]
    step, version, notes = make(args, pad_id)

    if args.dump:
        with open(args.dump, "w") as f:
            json.dump({"embeddings": np.asarray(step(batches[0]), np.float64).tolist()}, f)
    for w in range(args.warmup):
        step(batches[w % len(batches)])
    lat, items = [], 0
    t0 = time.perf_counter()
    for i, b in enumerate(batches):
        ts = time.perf_counter()
        step(b)
        now = time.perf_counter()
        lat.append((now - ts) * 1000.0)
        items += len(b)
        if i % 20 == 19:
            print(f"\r{i + 1}/{len(batches)} batches", end="", file=sys.stderr, flush=True)
        if args.max_seconds > 0 and now - t0 > args.max_seconds:
            break
    seconds = time.perf_counter() - t0
    print("\r                         \r", end="", file=sys.stderr, flush=True)

    r = {
        "lib": args.lib, "precision": args.precision, "batch": args.batch,
        "threads": args.threads, "items": items, "seconds": seconds,
        "items_per_s": items / seconds, "p50_ms": percentile(lat, 50),
        "p99_ms": percentile(lat, 99), "library": version, "python": sys.executable,
        "python_version": platform.python_version(),
        "tokenisation": "pre-tokenised before timing (not timed; bench-engine times it)",
        "token_cache": cache, "warmup": args.warmup, "limit": args.limit,
        "model": args.model, "settings": notes, "blas_libs": blas_libs(),
    }
    print(f"bench-python-api: lib={args.lib} precision={args.precision} ({version}) "
          f"threads={args.threads} batch={args.batch} items={items} time={seconds:.2f}s "
          f"throughput={r['items_per_s']:.1f} items/s batch_p50={r['p50_ms']:.3f}ms "
          f"batch_p99={r['p99_ms']:.3f}ms [pre-tokenised: tokenisation not timed]")
    if args.json_out:
        with open(args.json_out, "a") as f:
            f.write(json.dumps(r) + "\n")


if __name__ == "__main__":
    main()
