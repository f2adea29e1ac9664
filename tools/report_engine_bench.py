#!/usr/bin/env python3
"""Writes docs/benchmarks/engine.md from one run of scripts/bench_engine.sh.

Inputs in RUN_DIR: encserve.jsonl (bench-engine --json lines), threading.jsonl (the same, for
the threading modes), sts.jsonl (eval-sts --json lines), peers.json (bench/peers/run_peers.py),
kernels.txt (Google Benchmark console output), meta.json (machine, commit, date). Every number in the output comes from those files, except the
hand-written section after HAND_MARK in an existing output file, which is kept across re-runs.
"""
import json
import re
import statistics
import sys
from pathlib import Path

HAND_MARK = "<!-- hand-written below: kept when the script regenerates this file -->"


def load_jsonl(path):
    if not path.exists():
        return []
    return [json.loads(line) for line in path.read_text().splitlines() if line.strip()]


def key(p):
    return (p["workload"], p.get("seq"), p["batch"])


def fmt(x, digits=0):
    return "–" if x is None else f"{x:,.{digits}f}"


def kernel_rates(text):
    """{benchmark name: rate in G(FL)OP/s} from Google Benchmark console lines, plus
    {name + " adj": %} for the fp32 GEMMs' "%FMA adj" counter (vs interleaved probe slices)."""
    rates = {}
    for line in text.splitlines():
        m = re.match(r"^(BM_\S+)\s.*?G(?:FL)?OP/s=([0-9.]+)([GT])/s", line)
        if m:
            # BM_Peak/Fma512 (since the probes moved to kernels/peak.h) = BM_PeakFma512
            rates[m.group(1).replace("BM_Peak/", "BM_Peak")] = float(m.group(2)) * (1000.0 if m.group(3) == "T" else 1.0)
        a = re.match(r"^(BM_\S+)\s.*?%FMA adj=([0-9.]+)", line)
        if a:
            rates[a.group(1) + " adj"] = float(a.group(2))
    return rates


def h2h_ratios(h2h):
    """scripts/bench_h2h.sh lines -> {precision: [(rep, encserve, ort, ratio)]}."""
    by = {}
    for r in h2h:
        by.setdefault((r["precision"], r["rep"]), {})[r["engine"]] = r["items_per_s"]
    out = {}
    for (prec, rep), v in sorted(by.items()):
        if "encserve" in v and "ort" in v:
            out.setdefault(prec, []).append((rep, v["encserve"], v["ort"], v["encserve"] / v["ort"]))
    return out


def targets(ours_by, peers_by, rates, h2h=None):
    """The issue's targets, each computed from this run: (target, measured, met?). h2h: the
    head-to-head pairs as h2h_ratios returns them."""
    rows = []
    h2h = h2h or {}

    def h2h_row(prec, goal):
        reps = h2h.get(prec)
        if reps:
            rs = [r[3] for r in reps]
            med = statistics.median(rs)
            rows.append((f"{prec} ≥ {goal:g}× ONNX Runtime {prec}, seq 16 b32, median of {len(rs)} "
                         f"interleaved pairs (head to head below)",
                         f"{med:.2f}× (range {min(rs):.2f}–{max(rs):.2f}×)", med >= goal))

    def tput(name, k):
        o = ours_by.get((name,) + k) or peers_by.get((name,) + k)
        return o and (o.get("items_per_s") or o.get("texts_per_s"))

    def ratio(a, b, k):
        x, y = tput(a, k), tput(b, k)
        return x / y if x and y else None

    f16b32 = ("fixed", 16, 32)
    r = ratio("int8", "ort_int8", f16b32)
    if r:
        rows.append(("int8 ≥ 2× ONNX Runtime int8, seq 16 b32", f"{r:.2f}×", r >= 2))
    h2h_row("int8", 2)
    t = tput("int8", ("msmarco", None, 128))
    if t:
        rows.append(("int8 ≥ 5,000 MS MARCO queries/s at b128 (on the reference Zen 5)",
                     f"{t:,.0f} q/s", t >= 5000))
    r = ratio("fp32", "ort_fp32", f16b32)
    if r:
        rows.append(("fp32 ≥ 1.3× ONNX Runtime fp32, seq 16 b32", f"{r:.2f}×", r >= 1.3))
    h2h_row("fp32", 1.3)
    r = ratio("bf16", "fp32", f16b32)
    if r:
        rows.append(("bf16 ≥ 1.6× encserve fp32, seq 16 b32", f"{r:.2f}×", r >= 1.6))
    for prec in ("int8", "int4"):
        for k, what in ((("msmarco", None, 1), "real MS MARCO query"), (("fixed", 16, 1), "16 tokens")):
            o = ours_by.get((prec,) + k)
            if o:
                rows.append((f"batch 1 p50 ≤ 0.46 ms, {prec}, {what}", f"{o['p50_ms']:.2f} ms",
                             o["p50_ms"] <= 0.46))
    for gemm, peaks, label in (("BM_GemmS8/amx/512/384/1536", ("BM_PeakAmxInt8", "BM_PeakVnni512"),
                                "int8 GEMM ≥ 70 % of peak at M=512 (384×1536)"),
                               ("BM_GemmF32/avx512/512/384/1536", ("BM_PeakFma512",),
                                "fp32 GEMM ≥ 80 % of FMA peak at M=512 (384×1536)")):
        if gemm in rates:
            for peak in peaks:
                if peak in rates:
                    share = rates[gemm] / rates[peak]
                    rows.append((f"{label}, vs {peak[7:]}",
                                 f"{rates[gemm]:,.0f} of {rates[peak]:,.0f} = {share:.0%}",
                                 share >= (0.7 if "S8" in gemm else 0.8)))
    adj = rates.get("BM_GemmF32/avx512/512/384/1536 adj")
    if adj:
        rows.append(("fp32 GEMM ≥ 80 % of FMA peak at M=512 (384×1536), vs probe slices "
                     "interleaved with the GEMM (same clock)", f"{adj:.0f} %", adj >= 80))
    return rows


def main():
    run = Path(sys.argv[1])
    out = Path(sys.argv[2]) if len(sys.argv) > 2 else Path("docs/benchmarks/engine.md")
    ours = load_jsonl(run / "encserve.jsonl")
    sts = load_jsonl(run / "sts.jsonl")
    peers = json.loads((run / "peers.json").read_text()) if (run / "peers.json").exists() else {"points": []}
    meta = json.loads((run / "meta.json").read_text())
    kernels = (run / "kernels.txt").read_text() if (run / "kernels.txt").exists() else ""
    precision = (run / "precision.txt").read_text() if (run / "precision.txt").exists() else ""

    precisions = [p for p in ["fp32", "bf16", "fp16", "int8", "int4"] if any(o["precision"] == p for o in ours)]
    peer_names = sorted({p["peer"] for p in peers["points"]})
    ours_by = {(o["precision"],) + key(o): o for o in ours}
    peers_by = {(p["peer"],) + key(p): p for p in peers["points"]}
    keys = sorted({key(o) for o in ours}, key=lambda k: (["fixed", "msmarco", "dl19"].index(k[0]), k[1] or 0, k[2]))

    hand = "\n## Findings\n\n(to be written after a run)\n"
    if out.exists() and HAND_MARK in out.read_text():
        hand = out.read_text().split(HAND_MARK, 1)[1]

    L = []
    L.append("# Engine benchmark: encserve precisions vs ONNX Runtime and PyTorch")
    L.append("")
    L.append(f"Generated by `scripts/bench_engine.sh` → `tools/report_engine_bench.py` on {meta['date']}, "
             f"commit `{meta['commit']}`. Machine: {meta['cpu']}, {meta['cores']} cores, flags: {meta['flags']}. "
             f"All engines in the same run on the same machine with **2 threads**, same model "
             f"(all-MiniLM-L6-v2, real weights) and same inputs. encserve: in-process `bench-engine`, "
             f"padding-free batches; peers: padded to the longest text of each batch.")
    L.append("")
    L.append("Throughput in texts/s (pairs/s for dl19); latency = per-batch p50 in ms. Caveats: the "
             "peers pad each batch to its longest text (the fixed-shape rows have no padding, so there "
             "the work is identical); for dl19, encserve's bi-encoder `Score` embeds each distinct "
             "text once per call while the peers embed the query once per pair.")
    L.append("")
    head = ["workload", "seq", "batch"] + [f"encserve {p}" for p in precisions] + peer_names
    L.append("| " + " | ".join(head) + " |")
    L.append("|" + "---|" * len(head))
    for k in keys:
        row = [k[0], str(k[1] or "–"), str(k[2])]
        for p in precisions:
            o = ours_by.get((p,) + k)
            row.append(f"{fmt(o and o['items_per_s'])} ({fmt(o and o['p50_ms'], 2)} ms)" if o else "–")
        for n in peer_names:
            q = peers_by.get((n,) + k)
            row.append(f"{fmt(q and q['texts_per_s'])} ({fmt(q and q['p50_ms'], 2)} ms)" if q else "–")
        L.append("| " + " | ".join(row) + " |")
    L.append("")
    L.append("## Targets (issue 3), computed from this run")
    L.append("")
    L.append("| target | measured | met |")
    L.append("|---|---|---|")
    h2h = h2h_ratios(load_jsonl(run / "h2h.jsonl"))
    for what, got, ok in targets(ours_by, peers_by, kernel_rates(kernels), h2h):
        L.append(f"| {what} | {got} | {'yes' if ok else '**no**'} |")
    L.append("")
    if h2h:
        L.append("## Head to head: encserve and ONNX Runtime alternating (seq 16, batch 32)")
        L.append("")
        L.append("`scripts/bench_h2h.sh`: encserve, then ONNX Runtime, at the same precision, repeated; "
                 "this VM's speed drifts by several per cent over minutes, and alternating lets the "
                 "drift hit both sides alike, so the median ratio is the steadier figure.")
        L.append("")
        L.append("| precision | rep | encserve texts/s | ONNX Runtime texts/s | ratio |")
        L.append("|---|---|---|---|---|")
        for prec, reps in h2h.items():
            for rep, e, o, r in reps:
                L.append(f"| {prec} | {rep} | {e:,.0f} | {o:,.0f} | {r:.2f}× |")
            rs = [x[3] for x in reps]
            L.append(f"| {prec} | **median** | {statistics.median([x[1] for x in reps]):,.0f} | "
                     f"{statistics.median([x[2] for x in reps]):,.0f} | **{statistics.median(rs):.2f}×** |")
        L.append("")
    L.append("## Ratios (encserve ÷ peer, throughput)")
    L.append("")
    pairs = [("fp32", "ort_fp32"), ("fp32", "torch_fp32"), ("int8", "ort_int8"), ("int8", "torch_int8"),
             ("bf16", "ort_fp32"), ("bf16", "fp32"), ("int4", "ort_int8")]
    pairs = [(a, b) for a, b in pairs if a in precisions and (b in peer_names or b in precisions)]
    L.append("| workload | seq | batch | " + " | ".join(f"{a} ÷ {b}" for a, b in pairs) + " |")
    L.append("|---|---|---|" + "---|" * len(pairs))
    for k in keys:
        cells = []
        for a, b in pairs:
            o = ours_by.get((a,) + k)
            q = peers_by.get((b,) + k) or ours_by.get((b,) + k)
            qv = q and (q.get("texts_per_s") or q.get("items_per_s"))
            cells.append(f"{o['items_per_s'] / qv:.2f}×" if o and qv else "–")
        L.append(f"| {k[0]} | {k[1] or '–'} | {k[2]} | " + " | ".join(cells) + " |")
    L.append("")
    threading = load_jsonl(run / "threading.jsonl")
    if threading:
        L.append("## Threading: the same 2 cores used three ways")
        L.append("")
        L.append("texts/s (batch p50 in ms). **split**: each batch cut into 2 runs of whole sequences, "
                 "one per thread (the default); **intra-op**: every op split over 2 threads "
                 "(`--no-split`); **2 replicas × 1**: two batches at once from two concurrent callers; "
                 "**1 thread**: one core alone.")
        L.append("")

        def mode(t):
            if t.get("replicas", 1) > 1:
                return f"{t['replicas']} replicas × {t['threads']}"
            if t["threads"] == 1:
                return "1 thread"
            return "split" if t.get("split", True) else "intra-op"

        modes = ["split", "intra-op", "2 replicas × 1", "1 thread"]
        by = {(t["precision"], t["workload"], t.get("seq"), t["batch"], mode(t)): t for t in threading}
        rows = sorted({(t["precision"], t["workload"], t.get("seq"), t["batch"]) for t in threading},
                      key=lambda r: (r[0], r[1], r[3]))
        L.append("| precision | workload | seq | batch | " + " | ".join(modes) + " | split ÷ intra-op |")
        L.append("|---|---|---|---|" + "---|" * (len(modes) + 1))
        for r in rows:
            cells = []
            for m in modes:
                t = by.get(r + (m,))
                cells.append(f"{fmt(t['items_per_s'])} ({fmt(t['p50_ms'], 2)} ms)" if t else "–")
            a, b = by.get(r + ("split",)), by.get(r + ("intra-op",))
            ratio = f"{a['items_per_s'] / b['items_per_s']:.2f}×" if a and b else "–"
            L.append(f"| {r[0]} | {r[1]} | {r[2] or '–'} | {r[3]} | " + " | ".join(cells) + f" | {ratio} |")
        L.append("")
    L.append("## Accuracy per precision")
    L.append("")
    L.append("STS-B test Spearman computed by `encserve eval-sts` (published fp32 figure: 0.8203). "
             "Cosine vs the fp32 path is asserted by `precision_test`.")
    L.append("")
    L.append("| precision | STS-B Spearman | Pearson |")
    L.append("|---|---|---|")
    for s in sts:
        L.append(f"| {s['precision']}{' g' + str(s['group_size']) if 'group_size' in s else ''} | {s['spearman']:.4f} | {s['pearson']:.4f} |")
    cos_targets = {"bf16": (0.9999, None), "fp16": (0.9999, None), "int8": (0.999, 0.99), "int4": (0.99, None)}
    cos = [m.groups() for m in re.finditer(
        r"^(\w+) \(kernels (\w+)\): cosine vs fp32 mean ([0-9.]+) min ([0-9.]+) over (\d+) texts",
        precision, re.M)]
    if cos:
        L.append("")
        L.append(f"Cosine of each precision's embeddings to the fp32 path (`precision_test`, {cos[0][4]} "
                 "real texts: MS MARCO queries and STS-B sentences), against the issue's targets:")
        L.append("")
        L.append("| precision | kernels | mean cosine | min cosine | target | met |")
        L.append("|---|---|---|---|---|---|")
        for prec, isa, mean, mn, _ in cos:
            tmean, tmin = cos_targets.get(prec, (None, None))
            ok = tmean is not None and float(mean) >= tmean and (tmin is None or float(mn) >= tmin)
            want = (f"mean ≥ {tmean}" + (f", min ≥ {tmin}" if tmin else "")) if tmean else "–"
            L.append(f"| {prec} | {isa} | {mean} | {mn} | {want} | {'yes' if ok else '**no**'} |")
    if peers.get("accuracy"):
        L.append("")
        L.append("Peers vs sentence-transformers (cosine on 200 MS MARCO queries):")
        L.append("")
        L.append("| peer | mean cosine | min cosine |")
        L.append("|---|---|---|")
        for n, a in sorted(peers["accuracy"].items()):
            L.append(f"| {n} | {a['mean_cos']:.6f} | {a['min_cos']:.6f} |")
    if kernels:
        L.append("")
        L.append("## GEMM micro-benchmarks (one thread)")
        L.append("")
        L.append("```")
        L.append(kernels.rstrip())
        L.append("```")
    L.append("")
    L.append(HAND_MARK)
    out.write_text("\n".join(L) + hand)
    print(f"wrote {out}")


if __name__ == "__main__":
    main()
