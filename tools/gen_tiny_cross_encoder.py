#!/usr/bin/env python3
"""Generate two tiny random-weight BERT cross-encoders and their expected logits.

Real cross-encoder weights cannot be obtained here, so the C++ cross-encoder path is tested
against small random models built with transformers, whose outputs are computed by
transformers itself. Produces (defaults under tests/data/):

  tiny-cross-encoder/             num_labels=1, seed 1234, saved by save_pretrained
                                  (tensor names "bert.*" and "classifier.*")
  tiny-cross-encoder-2labels/     num_labels=2, seed 4321, safetensors written by hand with the
                                  leading "bert." stripped ("embeddings.*", "encoder.*",
                                  "pooler.*", "classifier.*"), metadata {"format": "pt"};
                                  config.json from save_pretrained plus explicit
                                  id2label/label2id/dtype (omitted there as defaults)

Each folder holds:
  config.json            BertConfig as written by save_pretrained (id2label etc.); hidden 32,
                         2 layers, 4 heads, intermediate 64, max_position_embeddings 128,
                         initializer_range 0.2, architectures ["BertForSequenceClassification"]
  model.safetensors      float32 weights; LayerNorm weights/biases and every bias have
                         N(0, 0.1) noise added so that a loader ignoring them gives wrong logits
  vocab.txt              small WordPiece vocabulary (no tokenizer.json on purpose)
  tokenizer_config.json  do_lower_case true, BertTokenizer, model_max_length 128
  expected.jsonl         one compact JSON object per line:
                         {"query", "passage", "input_ids", "token_type_ids", "logits"}
                         real TREC DL19 query/passage pairs, tokenised as a pair with
                         truncation="longest_first", max_length=128, no padding; logits from
                         model.eval() in float32, each pair run alone and unpadded
  meta.json              seed, versions, vocabulary recipe, pair selection, checks

Vocabulary (deterministic): [PAD]=0 [UNK]=1 [CLS]=2 [SEP]=3 [MASK]=4; then a-z, 0-9 and the
ASCII punctuation characters; then "##" + each of those; then the most frequent wordpieces
(count desc, then string asc) that the all-MiniLM-L6-v2 uncased tokenizer produces on the
DL19 queries and their unique passages, up to --vocab-size entries in all. Real text thus
tokenises into whole words, ## pieces, and [UNK] for words with characters outside the vocab.

This is a developer tool: CI does NOT run it. The outputs are committed; re-run it only to
regenerate them (needs torch, transformers, safetensors; HF_HUB_OFFLINE=1 is forced).

Usage:
  python3 tools/gen_tiny_cross_encoder.py [--data DIR] [--model DIR] [--out DIR] [--out2 DIR]
"""

import argparse
import collections
import inspect
import json
import os
import string
import sys

os.environ["HF_HUB_OFFLINE"] = "1"
os.environ["TRANSFORMERS_OFFLINE"] = "1"

REPO_ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
DEFAULT_MODEL = "/root/.cache/encserve/models/all-MiniLM-L6-v2"
DEFAULT_DATA = os.environ.get("ENCSERVE_DATA_DIR", "/work/shared/data")
DEFAULT_OUT = os.path.join(REPO_ROOT, "tests", "data", "tiny-cross-encoder")
DEFAULT_OUT2 = os.path.join(REPO_ROOT, "tests", "data", "tiny-cross-encoder-2labels")

SPECIALS = ["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]"]
MAX_LEN = 128
DEFAULT_VOCAB_SIZE = 1536

VARIANTS = [
    # name, num_labels, seed, strip "bert." prefix, DL19 query indices, pairs per query
    dict(key="tiny-cross-encoder", num_labels=1, seed=1234, strip_prefix=False,
         queries=range(0, 32)),
    dict(key="tiny-cross-encoder-2labels", num_labels=2, seed=4321, strip_prefix=True,
         queries=range(32, 43)),
]


def load_dl19(data_dir):
    with open(os.path.join(data_dir, "trec-dl19-bm25-top100.json"), "r", encoding="utf-8") as f:
        queries = json.load(f)
    for q in queries:
        q["hits"] = sorted(q["hits"], key=lambda h: h["rank"])
    return queries


def build_vocab(queries, model_dir, size):
    from transformers import AutoTokenizer

    ref = AutoTokenizer.from_pretrained(model_dir)
    chars = list(string.ascii_lowercase) + list(string.digits) + list(string.punctuation)
    vocab = SPECIALS + chars + ["##" + c for c in chars]
    texts = [q["query"] for q in queries]
    seen = set()
    for q in queries:
        for h in q["hits"]:
            if h["docid"] not in seen:
                seen.add(h["docid"])
                texts.append(h["content"])
    counts = collections.Counter()
    for t in texts:
        counts.update(ref.tokenize(t))
    have = set(vocab)
    ranked = sorted(((-c, w) for w, c in counts.items() if w not in have and w not in SPECIALS))
    for _negc, w in ranked:
        if len(vocab) >= size:
            break
        vocab.append(w)
    assert len(vocab) == len(set(vocab))
    return vocab, len(texts)


def make_tokenizer(vocab_path):
    """transformers.BertTokenizerFast over vocab.txt only.

    transformers 5 silently ignores vocab_file= in the constructor (the tokenizer then has
    only the 5 special tokens); it takes the path as vocab=. Older versions use vocab_file=.
    """
    from transformers import BertTokenizerFast

    params = inspect.signature(BertTokenizerFast.__init__).parameters
    if "vocab" in params:
        tok = BertTokenizerFast(vocab=vocab_path, do_lower_case=True)
    else:
        tok = BertTokenizerFast(vocab_file=vocab_path, do_lower_case=True)
    return tok


def select_pairs(queries, qidx):
    """Two pairs per query: the rank-1 passage, then (even query index) the longest passage of
    the top 100 (first by rank on ties) or (odd index) the rank-(10+i) passage."""
    pairs = []
    for i in qidx:
        q = queries[i]
        hits = q["hits"]
        pairs.append((q["query"], hits[0]["content"], i, hits[0]["rank"]))
        if i % 2 == 0:
            h = max(hits[1:], key=lambda h: (len(h["content"]), -h["rank"]))
        else:
            h = hits[min(10 + i, len(hits)) - 1]
        pairs.append((q["query"], h["content"], i, h["rank"]))
    return pairs


def randomize(model, std=0.1):
    import torch

    with torch.no_grad():
        for name, p in model.named_parameters():
            if name.endswith(".bias") or "LayerNorm" in name:
                p.add_(torch.randn_like(p) * std)


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--data", default=DEFAULT_DATA)
    ap.add_argument("--model", default=DEFAULT_MODEL,
                    help="all-MiniLM-L6-v2 folder whose tokenizer ranks the wordpieces")
    ap.add_argument("--out", default=DEFAULT_OUT, help="folder for the num_labels=1 model")
    ap.add_argument("--out2", default=DEFAULT_OUT2, help="folder for the num_labels=2 model")
    ap.add_argument("--vocab-size", type=int, default=DEFAULT_VOCAB_SIZE)
    args = ap.parse_args()

    import numpy as np
    import safetensors
    import safetensors.torch
    import tokenizers
    import torch
    import transformers
    from transformers import AutoTokenizer, BertConfig, BertForSequenceClassification
    try:
        from transformers.models.bert.tokenization_bert_legacy import BertTokenizerLegacy as PyBert
    except ImportError:  # transformers 4: the pure-Python one is BertTokenizer
        from transformers import BertTokenizer as PyBert

    torch.set_num_threads(1)
    transformers.logging.set_verbosity_error()  # the per-pair "overflowing tokens" notice
    queries = load_dl19(args.data)
    vocab, n_vocab_texts = build_vocab(queries, args.model, args.vocab_size)
    print(f"vocab: {len(vocab)} entries from {n_vocab_texts} DL19 texts")

    versions = {
        "python": sys.version.split()[0],
        "torch": torch.__version__,
        "transformers": transformers.__version__,
        "tokenizers": tokenizers.__version__,
        "safetensors": safetensors.__version__,
        "numpy": np.__version__,
    }

    for var, out in zip(VARIANTS, [args.out, args.out2]):
        os.makedirs(out, exist_ok=True)
        for stale in ("tokenizer.json", "pytorch_model.bin", "special_tokens_map.json"):
            if os.path.exists(os.path.join(out, stale)):
                os.remove(os.path.join(out, stale))
        vocab_path = os.path.join(out, "vocab.txt")
        with open(vocab_path, "w", encoding="utf-8", newline="\n") as f:
            f.write("\n".join(vocab) + "\n")
        tok_cfg = {
            "do_lower_case": True,
            "tokenizer_class": "BertTokenizer",
            "model_max_length": MAX_LEN,
            "unk_token": "[UNK]",
            "sep_token": "[SEP]",
            "pad_token": "[PAD]",
            "cls_token": "[CLS]",
            "mask_token": "[MASK]",
            "tokenize_chinese_chars": True,
            "strip_accents": None,
        }
        with open(os.path.join(out, "tokenizer_config.json"), "w", encoding="utf-8") as f:
            json.dump(tok_cfg, f, indent=2)
            f.write("\n")

        tok = make_tokenizer(vocab_path)
        assert len(tok) == len(vocab), (len(tok), len(vocab))

        torch.manual_seed(var["seed"])
        config = BertConfig(
            vocab_size=len(vocab), hidden_size=32, num_hidden_layers=2, num_attention_heads=4,
            intermediate_size=64, max_position_embeddings=MAX_LEN, type_vocab_size=2,
            hidden_act="gelu", layer_norm_eps=1e-12, num_labels=var["num_labels"],
            initializer_range=0.2, pad_token_id=0,
            architectures=["BertForSequenceClassification"],
        )
        model = BertForSequenceClassification(config)
        randomize(model)
        model.eval()

        if var["strip_prefix"]:
            model.config.save_pretrained(out)
            # save_pretrained only writes values that differ from the defaults, and 2 labels is
            # the default: state id2label/label2id explicitly so no loader has to guess.
            cfg_path = os.path.join(out, "config.json")
            with open(cfg_path, "r", encoding="utf-8") as f:
                cfg = json.load(f)
            cfg["id2label"] = {str(i): f"LABEL_{i}" for i in range(var["num_labels"])}
            cfg["label2id"] = {f"LABEL_{i}": i for i in range(var["num_labels"])}
            cfg.setdefault("dtype", "float32")
            with open(cfg_path, "w", encoding="utf-8") as f:
                json.dump(dict(sorted(cfg.items())), f, indent=2)
                f.write("\n")
            sd = {}
            for k, v in model.state_dict().items():
                nk = k[len("bert."):] if k.startswith("bert.") else k
                sd[nk] = v.detach().to(torch.float32).contiguous().clone()
            safetensors.torch.save_file(sd, os.path.join(out, "model.safetensors"),
                                        metadata={"format": "pt"})
        else:
            model.save_pretrained(out, safe_serialization=True)
        names = sorted(safetensors.safe_open(os.path.join(out, "model.safetensors"), "pt").keys())

        pairs = select_pairs(queries, var["queries"])
        rows = []
        n_trunc = 0
        n_unk = 0
        with torch.inference_mode():
            for q, p, qi, rank in pairs:
                enc = tok(q, p, truncation="longest_first", max_length=MAX_LEN, padding=False)
                full = tok(q, p, truncation=False, padding=False)
                n_trunc += len(full["input_ids"]) > MAX_LEN
                n_unk += enc["input_ids"].count(1)
                ids = torch.tensor([enc["input_ids"]])
                tt = torch.tensor([enc["token_type_ids"]])
                logits = model(input_ids=ids, token_type_ids=tt,
                               attention_mask=torch.ones_like(ids)).logits[0]
                rows.append({
                    "query": q, "passage": p,
                    "input_ids": enc["input_ids"], "token_type_ids": enc["token_type_ids"],
                    "logits": [float(x) for x in logits.to(torch.float32)],
                    "_q": qi, "_rank": rank, "_full_len": len(full["input_ids"]),
                })

            # Same pairs as one padded batch.
            qs = [r["query"] for r in rows]
            ps = [r["passage"] for r in rows]
            batch = tok(qs, ps, truncation="longest_first", max_length=MAX_LEN,
                        padding=True, return_tensors="pt")
            blog = model(**batch).logits.numpy()
            single = np.array([r["logits"] for r in rows], dtype=np.float32)
            pad_diff = float(np.abs(blog - single).max())

            # The folder as others would load it.
            reloaded = BertForSequenceClassification.from_pretrained(out).eval()
            rlog = reloaded(**batch).logits.numpy()
            reload_diff = float(np.abs(rlog - blog).max())
            auto_tok = AutoTokenizer.from_pretrained(out)
            py_tok = PyBert(vocab_file=vocab_path, do_lower_case=True)
            tok_mismatch = 0
            for r in rows:
                for other in (auto_tok, py_tok):
                    e = other(r["query"], r["passage"], truncation="longest_first",
                              max_length=MAX_LEN, return_token_type_ids=True)
                    if (e["input_ids"] != r["input_ids"]
                            or e["token_type_ids"] != r["token_type_ids"]):
                        tok_mismatch += 1

        lens = [len(r["input_ids"]) for r in rows]
        spread = float(single.max() - single.min())
        print(f"{var['key']}: {len(rows)} pairs, lengths {min(lens)}..{max(lens)}, "
              f"truncated {n_trunc}, [UNK] tokens {n_unk}, logit range "
              f"[{single.min():.4f}, {single.max():.4f}]")
        print(f"  max |padded batch - unpadded single| = {pad_diff:.3g}")
        print(f"  max |reloaded from folder - in-memory| = {reload_diff:.3g}")
        print(f"  tokenizer mismatches (AutoTokenizer folder, pure-Python BERT): {tok_mismatch}")
        if pad_diff > 1e-5 or reload_diff > 1e-6 or tok_mismatch or spread < 1e-2:
            raise SystemExit("check failed")

        with open(os.path.join(out, "expected.jsonl"), "w", encoding="utf-8", newline="\n") as f:
            for r in rows:
                rec = {k: r[k] for k in ("query", "passage", "input_ids", "token_type_ids",
                                         "logits")}
                f.write(json.dumps(rec, ensure_ascii=False, separators=(",", ":")) + "\n")

        meta = {
            "num_labels": var["num_labels"],
            "seed": var["seed"],
            "tensor_names": "bert.* + classifier.* (save_pretrained)" if not var["strip_prefix"]
            else "no 'bert.' prefix (embeddings.*, encoder.*, pooler.*) + classifier.*; "
                 "safetensors.torch.save_file, metadata {\"format\": \"pt\"}",
            "n_tensors": len(names),
            "n_params": int(sum(p.numel() for p in model.parameters())),
            "vocab_size": len(vocab),
            "vocab_recipe": "5 specials; a-z 0-9 ASCII punctuation; '##'+each; then most "
                            "frequent all-MiniLM-L6-v2 wordpieces over DL19 queries + unique "
                            "passages (count desc, string asc)",
            "init": "torch.manual_seed(seed); BertForSequenceClassification(config) with "
                    "initializer_range 0.2; then N(0, 0.1) added to every LayerNorm weight/bias "
                    "and every bias",
            "tokenization": f"BertTokenizerFast(vocab.txt, do_lower_case=True)(query, passage, "
                            f"truncation='longest_first', max_length={MAX_LEN}), no padding",
            "pairs": len(rows),
            "pair_selection": f"TREC DL19 queries {var['queries'].start}..{var['queries'].stop - 1}"
                              " (file order): rank-1 passage, then the longest passage (even "
                              "index) or the rank-(10+i) passage (odd index)",
            "pairs_truncated": int(n_trunc),
            "unk_tokens": int(n_unk),
            "token_lengths": [min(lens), max(lens)],
            "attn_implementation": model.config._attn_implementation
            if hasattr(model.config, "_attn_implementation") else None,
            "max_abs_diff_padded_batch_vs_single": pad_diff,
            "max_abs_diff_reloaded_vs_in_memory": reload_diff,
            "versions": versions,
            "generated_by": "python3 tools/gen_tiny_cross_encoder.py",
        }
        with open(os.path.join(out, "meta.json"), "w", encoding="utf-8") as f:
            json.dump(meta, f, indent=2)
            f.write("\n")
        print("wrote", out)


if __name__ == "__main__":
    main()
