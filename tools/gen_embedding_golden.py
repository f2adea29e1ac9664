#!/usr/bin/env python3
"""Generate golden sentence embeddings for all-MiniLM-L6-v2 from the real Python stack.

Produces, in --out (default: tests/data/minilm_golden/):

  texts.jsonl     one JSON string per line (UTF-8, ensure_ascii=False), the exact input text
  embeddings.f32  raw little-endian float32, row-major [n x 384], no header; row i is the
                  L2-normalised sentence-transformers embedding of line i of texts.jsonl
  meta.json       n, dim, model dir, max_seq_length, text sources and counts, package versions,
                  how the pipeline was built, truncation statistics, and the STS-B test
                  Spearman/Pearson correlation (cosine vs gold) over all 1,379 pairs

Text selection (deterministic, in this order):
  1. the first 600 queries of msmarco-dev-small-queries.tsv (text after the first TAB,
     trailing newline removed, nothing else stripped: some queries start with a space);
  2. the first 150 STS-B test pairs, interleaved: s1[0], s2[0], s1[1], s2[1], ...
     (lines split on TAB only; sentence1 = field 5, sentence2 = field 6, 0-based);
  3. 120 TREC DL19 BM25 passages: the rank-1 passage of each of the 43 queries (file order),
     then rank-2 of each, then rank-3 ..., until 120 (duplicates across queries are kept);
  4. texts longer than 256 tokens, because none of the 120 above is: every DL19 passage with
     more than 256 tokens (3 of them), then 5 joins of the top-ranked DL19 passages of one
     query (ranks 1..4+2i of query i, joined with one space). These rows test truncation.
Rows 0..1019 are sources 1-3; source 4 follows (meta.json "sources" gives each row range).

Encoding: sentence-transformers on CPU, float32, batch_size 32, with the model's Normalize
module (max_seq_length 256: source 4 is truncated to 256 tokens including [CLS]/[SEP]).

This is a developer tool: CI does NOT run it. The outputs are committed; re-run it only to
regenerate them (needs torch, transformers, sentence-transformers, scipy, and the model folder
locally; nothing is downloaded: HF_HUB_OFFLINE=1 is forced).

Usage:
  python3 tools/gen_embedding_golden.py [--model DIR] [--data DIR] [--out DIR]
"""

import argparse
import json
import os
import sys

os.environ["HF_HUB_OFFLINE"] = "1"
os.environ["TRANSFORMERS_OFFLINE"] = "1"

REPO_ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
DEFAULT_MODEL = "/root/.cache/encserve/models/all-MiniLM-L6-v2"
DEFAULT_DATA = os.environ.get("ENCSERVE_DATA_DIR", "/work/shared/data")
DEFAULT_OUT = os.path.join(REPO_ROOT, "tests", "data", "minilm_golden")

N_MSMARCO = 600
N_STS_PAIRS = 150
N_DL19 = 120
N_JOINED = 5
BATCH_SIZE = 32
DIM = 384
MAX_SEQ_LENGTH = 256


def read_lines(path):
    """Lines of a UTF-8 text file with only the trailing '\\n' removed."""
    with open(path, "r", encoding="utf-8", newline="") as f:
        for line in f:
            if line.endswith("\n"):
                line = line[:-1]
            yield line


def load_msmarco(data_dir, n):
    out = []
    for line in read_lines(os.path.join(data_dir, "msmarco-dev-small-queries.tsv")):
        if line == "":
            continue
        _qid, text = line.split("\t", 1)
        out.append(text)
        if len(out) == n:
            break
    return out


def load_sts(data_dir):
    """All STS-B test pairs as (score, s1, s2); split on TAB only."""
    pairs = []
    for line in read_lines(os.path.join(data_dir, "sts-b-test.tsv")):
        if line == "":
            continue
        f = line.split("\t")
        pairs.append((float(f[4]), f[5], f[6]))
    return pairs


def load_dl19_passages(data_dir, n):
    with open(os.path.join(data_dir, "trec-dl19-bm25-top100.json"), "r", encoding="utf-8") as f:
        queries = json.load(f)
    by_rank = []
    for q in queries:
        hits = {h["rank"]: h for h in q["hits"]}
        by_rank.append(hits)
    out = []
    rank = 1
    while len(out) < n:
        for hits in by_rank:
            if rank in hits:
                out.append(hits[rank]["content"])
                if len(out) == n:
                    break
        rank += 1
    return out, len(queries), rank


def load_dl19_long(data_dir, n_tokens):
    """Texts longer than MAX_SEQ_LENGTH tokens, made only of DL19 passage text.

    First every DL19 passage (query order, then rank order, unique by docid) whose token count
    with [CLS]/[SEP] exceeds MAX_SEQ_LENGTH; then, for queries 0..N_JOINED-1, the passages of
    ranks 1..(4+2i) joined with a single space (4 to 12 passages, well past the limit).
    """
    with open(os.path.join(data_dir, "trec-dl19-bm25-top100.json"), "r", encoding="utf-8") as f:
        queries = json.load(f)
    out = []
    seen = set()
    for q in queries:
        for h in sorted(q["hits"], key=lambda h: h["rank"]):
            if h["docid"] in seen:
                continue
            seen.add(h["docid"])
            if n_tokens(h["content"]) > MAX_SEQ_LENGTH:
                out.append(h["content"])
    for i in range(N_JOINED):
        hits = sorted(queries[i]["hits"], key=lambda h: h["rank"])
        joined = " ".join(h["content"] for h in hits[: 4 + 2 * i])
        assert n_tokens(joined) > MAX_SEQ_LENGTH
        out.append(joined)
    return out


def build_model(model_dir):
    """Load the model as sentence-transformers would; fall back to an explicit pipeline."""
    import sentence_transformers
    from sentence_transformers import SentenceTransformer

    try:  # sentence-transformers >= 6 moved the module classes
        from sentence_transformers.sentence_transformer import modules as models
    except ImportError:
        from sentence_transformers import models

    info = {}
    try:
        model = SentenceTransformer(model_dir, device="cpu")
        info["construction"] = "SentenceTransformer(model_dir)"
    except Exception as e:  # noqa: BLE001 - report whatever went wrong
        print(f"SentenceTransformer({model_dir}) failed: {e!r}; building explicitly", file=sys.stderr)
        word = models.Transformer(model_dir, max_seq_length=MAX_SEQ_LENGTH)
        pool = models.Pooling(word.get_word_embedding_dimension(), "mean")
        model = SentenceTransformer(modules=[word, pool, models.Normalize()], device="cpu")
        info["construction"] = (
            "explicit: models.Transformer(model_dir, max_seq_length=256) + "
            "models.Pooling(384, 'mean') + models.Normalize()"
        )
        info["load_error"] = repr(e)

    module_types = [type(m).__name__ for m in model]
    info["modules"] = module_types
    info["max_seq_length_as_loaded"] = model.max_seq_length
    if not any(isinstance(m, models.Normalize) for m in model):
        print("loaded model has no Normalize module; appending one", file=sys.stderr)
        model.append(models.Normalize())
        info["construction"] += " + appended models.Normalize()"
        info["modules"] = [type(m).__name__ for m in model]
    return model, info


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--model", default=DEFAULT_MODEL)
    ap.add_argument("--data", default=DEFAULT_DATA)
    ap.add_argument("--out", default=DEFAULT_OUT)
    args = ap.parse_args()

    import numpy as np
    import scipy
    import scipy.stats
    import sentence_transformers
    import tokenizers
    import torch
    import transformers

    torch.manual_seed(0)
    model_dir = os.path.abspath(args.model)

    msmarco = load_msmarco(args.data, N_MSMARCO)
    sts = load_sts(args.data)
    sts_texts = []
    for _score, s1, s2 in sts[:N_STS_PAIRS]:
        sts_texts += [s1, s2]
    dl19, n_dl19_queries, last_rank = load_dl19_passages(args.data, N_DL19)
    assert len(msmarco) == N_MSMARCO and len(sts_texts) == 2 * N_STS_PAIRS and len(dl19) == N_DL19

    model, info = build_model(model_dir)
    model.eval()
    model.max_seq_length = MAX_SEQ_LENGTH
    print("pipeline:", info["construction"])
    print("modules:", info["modules"])
    tok = model.tokenizer

    def n_tokens(t):
        return len(tok(t, add_special_tokens=True, truncation=False)["input_ids"])

    # The 120 passages above happen to all fit in 256 tokens, so add texts that do not:
    # every DL19 passage longer than 256 tokens, then a few joins of consecutive top passages.
    long_texts = load_dl19_long(args.data, n_tokens)
    texts = msmarco + sts_texts + dl19 + long_texts

    def encode(xs):
        with torch.inference_mode():
            e = model.encode(
                xs,
                batch_size=BATCH_SIZE,
                convert_to_numpy=True,
                normalize_embeddings=False,  # normalisation must come from the Normalize module
                show_progress_bar=False,
            )
        return np.asarray(e, dtype=np.float32)

    emb = encode(texts)
    assert emb.shape == (len(texts), DIM), emb.shape
    norms = np.linalg.norm(emb.astype(np.float64), axis=1)
    print(f"norms: min {norms.min():.7f} max {norms.max():.7f}")
    if not np.allclose(norms, 1.0, atol=1e-5):
        raise SystemExit("embeddings are not unit-norm: Normalize module was not applied")

    # Token counts (without truncation) to report how many texts hit max_seq_length.
    full_lens = [n_tokens(t) for t in texts]
    truncated = [i for i, n in enumerate(full_lens) if n > MAX_SEQ_LENGTH]
    print(f"texts: {len(texts)}, truncated to {MAX_SEQ_LENGTH} tokens: {len(truncated)}")

    # STS-B over all pairs.
    s1 = [p[1] for p in sts]
    s2 = [p[2] for p in sts]
    gold = np.array([p[0] for p in sts], dtype=np.float64)
    e1 = encode(s1).astype(np.float64)
    e2 = encode(s2).astype(np.float64)
    cos = np.sum(e1 * e2, axis=1) / (np.linalg.norm(e1, axis=1) * np.linalg.norm(e2, axis=1))
    spearman = float(scipy.stats.spearmanr(cos, gold).correlation)
    pearson = float(scipy.stats.pearsonr(cos, gold)[0])
    print(f"STS-B test ({len(sts)} pairs): spearman {spearman:.6f} pearson {pearson:.6f} "
          f"(published spearman 0.8203)")

    # Sanity: the golden rows for the STS texts equal the embeddings computed above
    # (different batch composition; small differences are expected from padding).
    d = np.abs(emb[N_MSMARCO:N_MSMARCO + 2 * N_STS_PAIRS:2] - e1[:N_STS_PAIRS]).max()
    print(f"max |golden - rebatched| on STS s1 rows: {d:.3g}")

    # Cross-check against plain transformers: BertModel last_hidden_state, mean over the
    # attention mask, L2 normalise. This is exactly what the C++ side must reproduce.
    from transformers import AutoModel

    bert = AutoModel.from_pretrained(model_dir, attn_implementation="eager").eval()
    plain = []
    with torch.inference_mode():
        for i in range(0, len(texts), BATCH_SIZE):
            enc = tok(texts[i:i + BATCH_SIZE], padding=True, truncation=True,
                      max_length=MAX_SEQ_LENGTH, return_tensors="pt")
            h = bert(**enc).last_hidden_state
            m = enc["attention_mask"].unsqueeze(-1).to(h.dtype)
            v = (h * m).sum(1) / m.sum(1).clamp(min=1e-9)
            plain.append(torch.nn.functional.normalize(v, p=2, dim=-1).numpy())
    plain = np.concatenate(plain).astype(np.float32)
    crosscheck = float(np.abs(plain - emb).max())
    print(f"max |sentence-transformers - plain transformers mean-pool| = {crosscheck:.3g}")
    if crosscheck > 1e-4:
        raise SystemExit("plain transformers cross-check failed")

    os.makedirs(args.out, exist_ok=True)
    with open(os.path.join(args.out, "texts.jsonl"), "w", encoding="utf-8", newline="\n") as f:
        for t in texts:
            f.write(json.dumps(t, ensure_ascii=False) + "\n")
    emb.astype("<f4", copy=False).tofile(os.path.join(args.out, "embeddings.f32"))

    meta = {
        "n": len(texts),
        "dim": DIM,
        "dtype": "float32 little-endian, row-major [n x dim], no header",
        "model_dir": model_dir,
        "model_name": "sentence-transformers/all-MiniLM-L6-v2",
        "max_seq_length": MAX_SEQ_LENGTH,
        "normalized": True,
        "pooling": "mean",
        "batch_size": BATCH_SIZE,
        "device": "cpu",
        "pipeline": info,
        "sources": {
            "msmarco_dev_small_queries": {
                "file": "msmarco-dev-small-queries.tsv",
                "count": len(msmarco),
                "rows": [0, len(msmarco)],
                "selection": "first 600 lines, text after first TAB",
            },
            "sts_b_test": {
                "file": "sts-b-test.tsv",
                "count": len(sts_texts),
                "rows": [len(msmarco), len(msmarco) + len(sts_texts)],
                "selection": "first 150 pairs, interleaved s1[0], s2[0], s1[1], s2[1], ...",
            },
            "trec_dl19_passages": {
                "file": "trec-dl19-bm25-top100.json",
                "count": len(dl19),
                "rows": [len(msmarco) + len(sts_texts), len(texts)],
                "selection": f"rank-1 passage of each of the {n_dl19_queries} queries in file "
                             f"order, then rank-2, ... (last rank used: {last_rank - 1})",
            },
            "trec_dl19_long": {
                "file": "trec-dl19-bm25-top100.json",
                "count": len(long_texts),
                "rows": [len(texts) - len(long_texts), len(texts)],
                "selection": "every DL19 passage (query order, rank order, unique docid) with more "
                             "than 256 tokens, then for queries i = 0..4 the passages of ranks "
                             "1..(4+2i) joined with one space; all exceed max_seq_length",
            },
        },
        "truncated_count": len(truncated),
        "truncated_rows": truncated,
        "versions": {
            "python": sys.version.split()[0],
            "torch": torch.__version__,
            "transformers": transformers.__version__,
            "sentence_transformers": sentence_transformers.__version__,
            "tokenizers": tokenizers.__version__,
            "numpy": np.__version__,
            "scipy": scipy.__version__,
        },
        "torch_num_threads": torch.get_num_threads(),
        "crosscheck_plain_transformers_max_abs_diff": crosscheck,
        "sts_b_pairs": len(sts),
        "sts_b_spearman": spearman,
        "sts_b_pearson": pearson,
        "sts_b_published_spearman": 0.8203,
        "generated_by": "python3 tools/gen_embedding_golden.py",
    }
    with open(os.path.join(args.out, "meta.json"), "w", encoding="utf-8") as f:
        json.dump(meta, f, indent=2, ensure_ascii=False)
        f.write("\n")
    print("wrote", args.out)


if __name__ == "__main__":
    main()
