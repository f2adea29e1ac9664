#!/usr/bin/env python3
"""Writes the start-up self-check's golden set (src/server/self_check.h) for all-MiniLM-L6-v2:
selfcheck/all-MiniLM-L6-v2.json, 64 texts with their fp32 reference embeddings.

The references are rows of tests/data/minilm_golden (written by tools/gen_embedding_golden.py
with sentence-transformers, fp32, CPU: its meta.json names the versions), not recomputed here:
  24 MS MARCO dev queries (rows 0, 25, ..., 575), 20 STS-B test sentences (600, 615, ..., 885),
  15 TREC DL19 passages (900, 908, ..., 1012) and 5 texts longer than 256 tokens (1020, 1022,
  1024, 1026, 1027: truncation), so the check covers short and long inputs.
The file records the SHA-256 of the model's model.safetensors (the server uses a golden set
only for the weights it was made for) and the token length the references were made at (256):
a server at another max_length compares only the texts that both lengths leave whole. Values are written with 9 significant digits (float32
round-trips exactly).

Usage: python3 tools/gen_selfcheck_golden.py [--model DIR] [--golden DIR] [--out FILE]
"""
import argparse
import hashlib
import json
import os
import struct

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
ROWS = (list(range(0, 600, 25)) + list(range(600, 900, 15)) + list(range(900, 1020, 8)) +
        [1020, 1022, 1024, 1026, 1027])


def sha256_file(path):
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            h.update(block)
    return h.hexdigest()


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--model", default=os.path.expanduser(
        "~/.cache/encserve/models/all-MiniLM-L6-v2"))
    ap.add_argument("--golden", default=os.path.join(ROOT, "tests/data/minilm_golden"))
    ap.add_argument("--out", default=os.path.join(ROOT, "selfcheck/all-MiniLM-L6-v2.json"))
    a = ap.parse_args()
    meta = json.load(open(os.path.join(a.golden, "meta.json")))
    dim, n = meta["dim"], meta["n"]
    with open(os.path.join(a.golden, "texts.jsonl"), encoding="utf-8") as f:
        texts = [json.loads(line) for line in f]
    raw = open(os.path.join(a.golden, "embeddings.f32"), "rb").read()
    assert len(texts) == n and len(raw) == 4 * n * dim, "golden folder is inconsistent"
    assert len(ROWS) == 64 and max(ROWS) < n
    rows = [struct.unpack_from(f"<{dim}f", raw, 4 * dim * r) for r in ROWS]
    v = meta["versions"]
    out = {
        "format": "encserve-selfcheck/1",
        "model": meta["model_name"],
        "weights_sha256": sha256_file(os.path.join(a.model, "model.safetensors")),
        "reference": (f"sentence-transformers {v['sentence_transformers']}, torch {v['torch']}, "
                      f"fp32 CPU, normalised; rows {ROWS[0]}..{ROWS[-1]} (64 of {n}) of "
                      "tests/data/minilm_golden (tools/gen_selfcheck_golden.py)"),
        "normalize": bool(meta["normalized"]),
        "max_seq_length": meta["max_seq_length"],
        "dim": dim,
        "texts": [texts[r] for r in ROWS],
        "rows": ROWS,
    }
    body = json.dumps(out, ensure_ascii=False, indent=1)[:-2]
    lines = ",\n".join("  [" + ",".join(f"{x:.9g}" for x in row) + "]" for row in rows)
    os.makedirs(os.path.dirname(a.out), exist_ok=True)
    with open(a.out, "w", encoding="utf-8") as f:
        f.write(body + ',\n "embeddings": [\n' + lines + "\n ]\n}\n")
    json.load(open(a.out, encoding="utf-8"))  # (valid JSON)
    print(f"wrote {a.out}: {len(ROWS)} texts x {dim}, weights {out['weights_sha256'][:12]}...")


if __name__ == "__main__":
    main()
