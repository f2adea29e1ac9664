#!/usr/bin/env python3
"""Turns the GEMM peer benchmark JSON into docs/benchmarks/gemm-peers.md (stdlib only).

Inputs (Google Benchmark JSON, written by scripts/bench_gemm_peers.sh):
  RUN/peaks_fp32.json   kernels_bench BM_PeakFma512 / BM_PeakFma256 / BM_PeakBf16Dot512
  RUN/peaks_quant.json  kernels_quant_bench BM_PeakVnni* / BM_PeakAmxInt8 / BM_PeakAmxBf16
  RUN/peers.json        gemm_peers_bench (<precision>/<impl>/M/K/N)
  RUN/meta.json         date, commit, cpu flags, load average, note, oneDNN verbose ISA line
The hand-written section after HAND_MARK in an existing OUT is kept across re-runs.

Usage: report_gemm_peers.py RUN OUT [--copy-json DIR]
"""
import argparse
import json
import os
import shutil
import statistics

HAND_MARK = "<!-- hand-written below: kept when the script regenerates this file -->"

# (title, encserve impls, peer impls, unit)
TABLES = [
    ("fp32", ["encserve"], ["onednn", "openblas"], "GFLOP/s"),
    ("bf16 (x converted from fp32 inside the timed call, both engines)",
     ["encserve", "encserve_avx512"], ["onednn"], "GFLOP/s"),
    ("int8, activations already quantised", ["encserve"], ["onednn_s8s8", "onednn_u8s8"],
     "GOP/s"),
    ("int8, activation quantisation inside the timed call", ["encserve+q"], ["onednn_s8s8+q"],
     "GOP/s"),
]
PRECISION_OF = {0: "f32", 1: "bf16", 2: "int8", 3: "int8"}


def load(path):
    with open(path) as f:
        return json.load(f)


def results(doc):
    """name -> (value counters, label, error, wall/cpu); medians when repeated."""
    runs = {}
    for b in doc.get("benchmarks", []):
        if b.get("run_type") == "aggregate":
            continue
        # BM_Peak/Fma512 (since the probes moved to kernels/peak.h) = BM_PeakFma512
        name = b.get("run_name", b["name"]).replace("BM_Peak/", "BM_Peak")
        runs.setdefault(name, []).append(b)
    out = {}
    for name, rs in runs.items():
        err = next((r.get("error_message", "error") for r in rs if r.get("error_occurred")), None)
        ok = [r for r in rs if not r.get("error_occurred")]
        counters = {}
        for key in ("GFLOP/s", "GOP/s", "rel_err"):
            vals = [r[key] for r in ok if key in r]
            if vals:
                counters[key] = statistics.median(vals)
        ratio = statistics.median([r["real_time"] / r["cpu_time"] for r in ok
                                   if r.get("cpu_time")]) if ok else None
        out[name] = {"c": counters, "label": rs[0].get("label", ""), "error": err,
                     "wall_cpu": ratio}
    return out


PROBES = [  # key, benchmark, counter, description
    ("fma512", "BM_PeakFma512", "GFLOP/s", "vfmadd231ps zmm (24 chains)"),
    ("fma256", "BM_PeakFma256", "GFLOP/s", "vfmadd231ps ymm (12 chains)"),
    ("bf16dot", "BM_PeakBf16Dot512", "GFLOP/s", "vdpbf16ps zmm (24 chains)"),
    ("vnni512", "BM_PeakVnni512", "GOP/s", "vpdpbusd zmm"),
    ("vnni256", "BM_PeakVnni256", "GOP/s", "vpdpbusd ymm (AVX-VNNI)"),
    ("amx_int8", "BM_PeakAmxInt8", "GOP/s", "AMX tdpbusd (4 C tiles)"),
    ("amx_bf16", "BM_PeakAmxBf16", "GFLOP/s", "AMX tdpbf16ps (4 C tiles)"),
]
# Per precision, the ceilings in order of preference (the first one measured is used).
PEAK_FOR = {"f32": ["fma512", "fma256"], "bf16": ["amx_bf16", "bf16dot", "fma512", "fma256"],
            "int8": ["amx_int8", "vnni512", "vnni256"]}


KEEP = ("name", "run_name", "run_type", "repetition_index", "iterations", "real_time",
        "cpu_time", "time_unit", "GFLOP/s", "GOP/s", "rel_err", "label", "error_occurred",
        "error_message")


def write_trimmed(doc, path):
    """The run's JSON without the aggregate rows and per-run noise, one benchmark a line (this
    script reads it back the same way)."""
    runs = [{k: b[k] for k in KEEP if k in b} for b in doc.get("benchmarks", [])
            if b.get("run_type") != "aggregate"]
    with open(path, "w") as f:
        f.write('{"context": ' + json.dumps(doc.get("context", {})) + ',\n"benchmarks": [\n')
        f.write(",\n".join(json.dumps(r) for r in runs) + "\n]}\n")


def peak_values(fp32, quant):
    p = {}
    for key, name, counter, _ in PROBES:
        r = fp32.get(name) or quant.get(name)
        if r and not r["error"] and counter in r["c"]:
            p[key] = r["c"][counter] / 1e9
    return p


def peak_for(prec, peaks):
    """(value, description) of the best ceiling measured for a precision."""
    for key in PEAK_FOR[prec]:
        if peaks.get(key):
            return peaks[key], next(d for k, _, _, d in PROBES if k == key)
    return None, "peak (not measured)"


def fmt(v):
    return "–" if v is None else (f"{v:,.0f}" if v >= 100 else f"{v:.1f}")


def table(title, prec, encs, peers, peaks, unit, res, shapes):
    peak, peak_desc = peak_for(prec, peaks)
    encs = [e for e in encs if any(f"{prec}/{e}/" in n for n in res)]
    peers = [p for p in peers if any(f"{prec}/{p}/" in n for n in res)]
    if not encs:
        return []
    cols = encs + peers
    lines = [f"### {title}", "",
             f"{unit}, one thread; % peak against the measured {peak_desc} peak "
             f"({fmt(peak)} {unit}).", "",
             "| M | K | N | " + " | ".join(cols) + " | encserve ÷ best peer | encserve % peak"
             " | best peer % peak |",
             "|---" * (len(cols) + 6) + "|"]
    labels = {}
    for m, k, n in shapes:
        vals = {}
        cells = []
        for c in cols:
            r = res.get(f"{prec}/{c}/{m}/{k}/{n}")
            if r is None:
                cells.append("–")
                continue
            labels.setdefault(c, set()).add(r["label"])
            if r["error"]:
                cells.append(f"error: {r['error']}")
                continue
            v = r["c"].get("GFLOP/s", 0) / 1e9
            vals[c] = v
            cells.append(fmt(v))
        enc = max((vals[e] for e in encs if e in vals), default=None)
        peer = max((vals[p] for p in peers if p in vals), default=None)
        ratio = f"{enc / peer:.2f}×" if enc and peer else "–"
        pe = f"{100 * enc / peak:.0f}%" if enc and peak else "–"
        pp = f"{100 * peer / peak:.0f}%" if peer and peak else "–"
        lines.append(f"| {m} | {k} | {n} | " + " | ".join(cells) + f" | {ratio} | {pe} | {pp} |")
    lines.append("")
    lines.append("Kernels that ran: " + "; ".join(
        f"{c}: `{', '.join(sorted(x for x in labels.get(c, []) if x)) or '?'}`"
        for c in cols) + ".")
    lines.append("")
    return lines


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("run")
    ap.add_argument("out")
    ap.add_argument("--copy-json", help="also copy the run's JSON files into this folder")
    a = ap.parse_args()
    meta = load(os.path.join(a.run, "meta.json"))
    peers_doc = load(os.path.join(a.run, "peers.json"))
    fp32, quant = (results(load(os.path.join(a.run, f)))
                   for f in ("peaks_fp32.json", "peaks_quant.json"))
    res = results(peers_doc)
    ctx = peers_doc.get("context", {})
    peaks = peak_values(fp32, quant)
    shapes = []
    for name in res:
        m, k, n = (int(x) for x in name.split("/")[-3:])
        if (m, k, n) not in shapes:
            shapes.append((m, k, n))
    shapes.sort()
    ratios = [r["wall_cpu"] for r in res.values() if r["wall_cpu"]]
    wall_cpu = statistics.median(ratios) if ratios else 1.0
    busy = meta.get("load1", 0) >= 0.5 or wall_cpu > 1.05
    note = meta.get("note") or ("smoke run, machine not idle" if busy else "")

    out = ["# GEMM implementations: encserve vs oneDNN vs OpenBLAS, one thread", ""]
    if note:
        out += [f"> **{note}** (1-min load average {meta.get('load1', 0):.2f} before the run; "
                f"median wall ÷ CPU time {wall_cpu:.2f}). Re-run `scripts/bench_gemm_peers.sh` "
                "on an idle machine before drawing conclusions.", ""]
    out += [
        f"Generated by `scripts/bench_gemm_peers.sh` → `tools/report_gemm_peers.py` on "
        f"{meta['date']}, commit `{meta['commit']}`.", "",
        f"- Machine: {ctx.get('cpu_brand', meta.get('cpu', '?'))}, {meta.get('cores', '?')} "
        f"cores; flags: {meta.get('flags', '?')}.",
        f"- encserve kernel table: `{ctx.get('encserve_isa', '?')}` (fp32, bf16), quantised "
        f"table `{ctx.get('encserve_quant_table', '?')}` (int8).",
        f"- oneDNN {ctx.get('onednn_version', 'not built')} (Debian `libdnnl-dev`, OpenMP, "
        f"{ctx.get('omp_max_threads', '?')} thread); effective ISA "
        f"`{ctx.get('onednn_effective_isa', '?')}`"
        + (f"; DNNL_VERBOSE: `{meta['dnnl_isa']}`" if meta.get("dnnl_isa") else "") + ".",
        f"- OpenBLAS: `{ctx.get('openblas_config', 'not built')}`, "
        f"{ctx.get('openblas_threads', '?')} thread (no bf16/int8 GEMM in Debian's build).",
        f"- Google Benchmark `--benchmark_min_time={meta.get('min_time', '?')}`"
        f"{', median of ' + str(meta['repetitions']) if meta.get('repetitions', 1) > 1 else ''};"
        " rates use CPU time (the default), so a busy machine hurts less than in wall time.",
        "", "Shapes: M ∈ {1, 16, 288, 512, 4096} rows (tokens), (K, N) the model's four linears: "
        "QKV 384→1152, attention output 384→384, FFN up 384→1536, FFN down 1536→384. "
        "y = x·Wᵀ + bias, W [N, K] as in PyTorch; each library gets its weights in its own "
        "preferred packed layout, prepared once outside the timed loop. oneDNN primitives are "
        "created for the exact M (its best case: a server would have to reuse a few shapes). "
        "What each row times is listed at the top of `bench/gemm_peers_bench.cc`.", "",
        "## Measured single-core peaks", "",
        "| probe | rate |", "|---|---|"]
    for key, _, unit, label in PROBES:
        if peaks.get(key):
            out.append(f"| {label} | {fmt(peaks[key])} {unit} |")
    if peaks.get("fma512"):
        out += ["", f"The FMA-512 peak implies {peaks['fma512'] / 64:.2f} GHz if the core has two "
                "512-bit FMA ports (64 flops/cycle)."]
    out += ["", "## Results", ""]
    for i, (title, encs, prs, unit) in enumerate(TABLES):
        out += table(title, PRECISION_OF[i], encs, prs, peaks, unit, res, shapes)

    hand = "\n## What wins per precision and what we keep\n\n(to be written after a run)\n"
    if os.path.exists(a.out):
        old = open(a.out).read()
        if HAND_MARK in old:
            hand = old.split(HAND_MARK, 1)[1]
    with open(a.out, "w") as f:
        f.write("\n".join(out) + "\n" + HAND_MARK + hand)
    if a.copy_json:
        os.makedirs(a.copy_json, exist_ok=True)
        shutil.copy(os.path.join(a.run, "meta.json"), os.path.join(a.copy_json, "meta.json"))
        for fn in ("peaks_fp32.json", "peaks_quant.json", "peers.json"):
            write_trimmed(load(os.path.join(a.run, fn)), os.path.join(a.copy_json, fn))
    print(f"wrote {a.out}")


if __name__ == "__main__":
    main()
