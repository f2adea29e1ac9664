#!/usr/bin/env python3
"""Reference token ids from Hugging Face `tokenizers` for tokenizer_parity_test.

Run by CTest (fixture `tokenizer_golden`) before the parity test:

  python3 tools/gen_tokenizer_golden.py --model MODEL_DIR --data DATA_DIR \
      --edge-cases tests/data/tokenizer_edge_cases.json --out GOLDEN_DIR

Writes into GOLDEN_DIR:
  tokenizer_json.jsonl  encodings by Tokenizer.from_file(MODEL_DIR/tokenizer.json)
  vocab_txt.jsonl       encodings by BertWordPieceTokenizer(MODEL_DIR/vocab.txt, lowercase=True)
  unicode.json          per-code-point behaviour of BertNormalizer parts, NFD, BertPreTokenizer
  manifest.json         tokenizers version and the number of records per set (written last)

Each JSONL line: {"set", "text", "pair" (null for single), "max_length", "ids", "type_ids",
"truncated"}. Padding is disabled and truncation is `longest_first` to max_length (the model's
tokenizer.json bakes in truncation 128 and fixed padding 128, which are overridden).
Needs only `tokenizers` and the standard library.
"""

import argparse
import json
import os
import sys
import time

import tokenizers
from tokenizers import BertWordPieceTokenizer, Tokenizer
from tokenizers.normalizers import NFD, BertNormalizer
from tokenizers.pre_tokenizers import BertPreTokenizer

SINGLE_MAX_LENGTHS = (256, 512)
PAIR_MAX_LENGTHS = (256, 512)
EDGE_SINGLE_MAX_LENGTHS = (512, 8)
EDGE_PAIR_MAX_LENGTHS = (512, 16, 7)
LEFT_MAX_LENGTHS = (48, 128)
# (set name, BertWordPieceTokenizer options); tokenizer_parity_test uses the same options.
VOCAB_OPTION_VARIANTS = (
    ("opt_cased", dict(lowercase=False)),
    ("opt_keep_accents", dict(lowercase=True, strip_accents=False)),
    ("opt_strip_cased", dict(lowercase=False, strip_accents=True)),
    ("opt_raw", dict(clean_text=False, handle_chinese_chars=False, lowercase=True)),
)


def read_msmarco(data_dir):
    queries = []
    with open(os.path.join(data_dir, "msmarco-dev-small-queries.tsv"), encoding="utf-8") as f:
        for line in f:
            line = line.rstrip("\n")
            if not line:
                continue
            _qid, query = line.split("\t", 1)  # keep leading spaces: they are part of the data
            queries.append(query)
    return queries


def read_sts(data_dir):
    sentences = []
    with open(os.path.join(data_dir, "sts-b-test.tsv"), encoding="utf-8") as f:
        for line in f:
            line = line.rstrip("\n")
            if not line:
                continue
            fields = line.split("\t")  # TAB only: quotes are unbalanced on some lines
            sentences.append(fields[5])
            sentences.append(fields[6])
    return sentences


def read_dl19(data_dir):
    with open(os.path.join(data_dir, "trec-dl19-bm25-top100.json"), encoding="utf-8") as f:
        data = json.load(f)
    return [(q["query"], h["content"]) for q in data for h in q["hits"]]


def read_edge_cases(path):
    with open(path, encoding="utf-8") as f:
        data = json.load(f)

    def expand(obj, key):
        return obj[key] * obj.get("repeat_" + key, 1)

    # Optional per-case "max_lengths" replaces the defaults (long pairs at a tiny max_length
    # make HF build a huge cross product of overflowing windows).
    singles = [(expand(c, "text"), c.get("max_lengths", EDGE_SINGLE_MAX_LENGTHS))
               for c in data["singles"]]
    pairs = [((expand(c, "a"), expand(c, "b")), c.get("max_lengths", EDGE_PAIR_MAX_LENGTHS))
             for c in data["pairs"]]
    return singles, pairs


def encode_edge(tok, set_name, cases, is_pair):
    lengths = sorted({m for _, ms in cases for m in ms}, reverse=True)
    records = []
    for m in lengths:
        inputs = [inp for inp, ms in cases if m in ms]
        records += encode_records(tok, set_name, inputs, (m,), is_pair)
    return records


def encode_records(tok, set_name, inputs, max_lengths, is_pair, direction="right"):
    records = []
    for max_length in max_lengths:
        # (BertWordPieceTokenizer's enable_truncation has no direction: right only there.)
        extra = {"direction": direction} if direction != "right" else {}
        tok.enable_truncation(max_length=max_length, strategy="longest_first", **extra)
        encodings = tok.encode_batch(inputs)
        for inp, enc in zip(inputs, encodings):
            records.append({
                "set": set_name,
                "text": inp[0] if is_pair else inp,
                "pair": inp[1] if is_pair else None,
                "max_length": max_length,
                "ids": enc.ids,
                "type_ids": enc.type_ids,
                "truncated": len(enc.overflowing) > 0,
                "direction": direction,
            })
    return records


def write_jsonl(path, records):
    tmp = path + ".tmp"
    with open(tmp, "w", encoding="utf-8") as f:
        for r in records:
            f.write(json.dumps(r, ensure_ascii=True, separators=(",", ":")))
            f.write("\n")
    os.replace(tmp, path)


def to_ranges(cps):
    """Sorted code points -> [[first, last], ...]."""
    ranges = []
    for c in cps:
        if ranges and ranges[-1][1] == c - 1:
            ranges[-1][1] = c
        else:
            ranges.append([c, c])
    return ranges


def changed_map(normalizer, cps, inputs=None):
    """What `normalizer` does to each probe string (default: the code point alone), as
    {"removed": ranges (output empty), "spaced": ranges (output " c "),
     "changed": {code point: output}}; code points not listed are unchanged."""
    if inputs is None:
        inputs = list(map(chr, cps))
    outputs = normalizer.normalize_str("|".join(inputs)).split("|")
    assert len(outputs) == len(cps), "separator was altered"
    removed, spaced, changed = [], [], {}
    for c, i, o in zip(cps, inputs, outputs):
        if o == i:
            continue
        if o == "":
            removed.append(c)
        elif o == " " + i + " ":
            spaced.append(c)
        else:
            changed[str(c)] = o
    return {"removed": to_ranges(removed), "spaced": to_ranges(spaced), "changed": changed}


def unicode_tables():
    # Every scalar value except surrogates and the separator '|'.
    cps = [c for c in range(0x110000) if not 0xD800 <= c <= 0xDFFF and c != 0x7C]
    out = {
        "clean_text": changed_map(BertNormalizer(True, False, False, False), cps),
        "chinese_chars": changed_map(BertNormalizer(False, True, False, False), cps),
        "strip_accents": changed_map(BertNormalizer(False, False, True, False), cps),
        "lowercase": changed_map(BertNormalizer(False, False, False, True), cps),
        "bert_default": changed_map(BertNormalizer(True, True, None, True), cps),
        # Canonical ordering probes: U+0334 has combining class 1, U+0345 has 240.
        "nfd_c_0334": changed_map(NFD(), cps, [chr(c) + "\u0334" for c in cps]),
        "nfd_0345_c": changed_map(NFD(), cps, ["\u0345" + chr(c) for c in cps]),
    }
    # BertPreTokenizer on "a" + c + "a" + c' + ...: whitespace disappears, punctuation is isolated.
    cps_pt = [c for c in range(0x110000) if not 0xD800 <= c <= 0xDFFF and c != 0x61]
    text = "a" + "a".join(chr(c) for c in cps_pt) + "a"
    pieces = BertPreTokenizer().pre_tokenize_str(text)
    covered = bytearray(len(text))
    punct = []
    for piece, (b, e) in pieces:
        covered[b:e] = b"\x01" * (e - b)
        if e - b == 1 and piece != "a":
            punct.append(ord(piece))
    whitespace = [c for i, c in enumerate(cps_pt) if not covered[1 + 2 * i]]
    out["punctuation"] = punct
    out["whitespace"] = whitespace
    out["pre_tokenizer_skipped"] = [0x61]
    out["normalizer_skipped"] = [0x7C]
    return out


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--model", required=True, help="model folder with tokenizer.json, vocab.txt")
    ap.add_argument("--data", required=True, help="shared data folder")
    ap.add_argument("--edge-cases", required=True, help="tests/data/tokenizer_edge_cases.json")
    ap.add_argument("--out", required=True, help="output folder")
    args = ap.parse_args()
    t0 = time.time()
    os.makedirs(args.out, exist_ok=True)
    manifest_path = os.path.join(args.out, "manifest.json")
    if os.path.exists(manifest_path):
        os.remove(manifest_path)  # a stale manifest must not vouch for partial output

    msmarco = read_msmarco(args.data)
    sts = read_sts(args.data)
    dl19 = read_dl19(args.data)
    edge_singles, edge_pairs = read_edge_cases(args.edge_cases)

    counts = {}

    def add(records, bucket):
        for r in records:
            key = bucket + "/" + r["set"]
            counts[key] = counts.get(key, 0) + 1
        return records

    tok = Tokenizer.from_file(os.path.join(args.model, "tokenizer.json"))
    tok.no_padding()
    recs = []
    recs += add(encode_records(tok, "msmarco", msmarco, SINGLE_MAX_LENGTHS, False), "tokenizer_json")
    recs += add(encode_records(tok, "sts", sts, SINGLE_MAX_LENGTHS, False), "tokenizer_json")
    recs += add(encode_records(tok, "dl19_pairs", dl19, PAIR_MAX_LENGTHS, True), "tokenizer_json")
    # Left truncation (keep the end): DL19 passages alone and query-passage pairs, at lengths
    # where most of them are cut.
    passages = sorted({p for _, p in dl19})
    recs += add(encode_records(tok, "dl19_passages_left", passages, LEFT_MAX_LENGTHS, False,
                               "left"), "tokenizer_json")
    recs += add(encode_records(tok, "dl19_pairs_left", dl19[::4], LEFT_MAX_LENGTHS, True,
                               "left"), "tokenizer_json")
    recs += add(encode_edge(tok, "edge", edge_singles, False),
                "tokenizer_json")
    recs += add(encode_edge(tok, "edge_pairs", edge_pairs, True),
                "tokenizer_json")
    write_jsonl(os.path.join(args.out, "tokenizer_json.jsonl"), recs)

    vtok = BertWordPieceTokenizer(os.path.join(args.model, "vocab.txt"), lowercase=True)
    vtok.no_padding()
    recs = []
    recs += add(encode_records(vtok, "msmarco", msmarco, (512,), False), "vocab_txt")
    recs += add(encode_records(vtok, "sts", sts, (512,), False), "vocab_txt")
    recs += add(encode_records(vtok, "dl19_pairs", dl19, (256,), True), "vocab_txt")
    recs += add(encode_edge(vtok, "edge", edge_singles, False),
                "vocab_txt")
    recs += add(encode_edge(vtok, "edge_pairs", edge_pairs, True),
                "vocab_txt")
    # Other BertNormalizer settings (TokenizerOptions), on the edge cases.
    for set_name, kwargs in VOCAB_OPTION_VARIANTS:
        vt = BertWordPieceTokenizer(os.path.join(args.model, "vocab.txt"), **kwargs)
        vt.no_padding()
        recs += add(encode_edge(vt, set_name, edge_singles, False), "vocab_txt")
        recs += add(encode_edge(vt, set_name + "_pairs", edge_pairs, True), "vocab_txt")
    write_jsonl(os.path.join(args.out, "vocab_txt.jsonl"), recs)

    tables = unicode_tables()
    with open(os.path.join(args.out, "unicode.json.tmp"), "w", encoding="utf-8") as f:
        json.dump(tables, f, ensure_ascii=True)
    os.replace(os.path.join(args.out, "unicode.json.tmp"), os.path.join(args.out, "unicode.json"))

    manifest = {
        "tokenizers_version": tokenizers.__version__,
        "model": os.path.abspath(args.model),
        "counts": counts,
        "edge_singles": len(edge_singles),
        "edge_pairs": len(edge_pairs),
    }
    with open(manifest_path + ".tmp", "w", encoding="utf-8") as f:
        json.dump(manifest, f, indent=1, sort_keys=True)
    os.replace(manifest_path + ".tmp", manifest_path)
    print("golden written to %s in %.1f s: %s" % (args.out, time.time() - t0,
                                                  json.dumps(counts, sort_keys=True)))
    return 0


if __name__ == "__main__":
    sys.exit(main())
