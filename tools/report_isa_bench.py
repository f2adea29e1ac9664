#!/usr/bin/env python3
"""Writes the "Per CPU class" section of docs/benchmarks/engine.md from one run of
scripts/bench_isa.sh (RUN_DIR): one table per kernel set (amx, avx512 = AVX-512 without AMX tiles,
avx2) with the peers of the same run, efficiency against the measured peak, accuracy, the targets
of the non-AMX issue and the int8 op profile.

  python3 tools/report_isa_bench.py RUN_DIR [docs/benchmarks/engine.md]

The section sits between BEGIN and END markers; a re-run replaces it and leaves the rest of the file
alone (tools/report_engine_bench.py keeps it too: it is inside that file's hand-written part).
"""
import json
import sys
from pathlib import Path

BEGIN = "<!-- per-cpu-class:begin (tools/report_isa_bench.py) -->"
END = "<!-- per-cpu-class:end -->"
HAND_MARK = "<!-- hand-written below: kept when the script regenerates this file -->"
PRECISIONS = ["fp32", "bf16", "int8", "int4"]
PEERS = ["ort_fp32", "ort_int8", "ov_fp32", "ov_bf16", "ov_int8", "ct2_fp32", "ct2_int8"]
POINTS = [("fixed", 16, 1), ("fixed", 16, 32), ("fixed", 128, 32), ("fixed", 256, 32),
          ("msmarco", None, 1), ("msmarco", None, 32), ("msmarco", None, 128), ("dl19", None, 32)]
CLASS_TITLE = {"amx": "AMX (Intel AMX tiles for int8 / bf16 GEMMs)",
               "avx512": "AVX-512 without AMX (VNNI, BF16)",
               "avx2": "AVX2 only (AVX-VNNI where present)"}


def jsonl(path):
    if not path.exists():
        return []
    return [json.loads(line) for line in path.read_text().splitlines() if line.strip()]


def fmt(x, digits=0):
    return "–" if x is None else f"{x:,.{digits}f}"


def kernels_of(r):
    """The kernel table(s) a run used: the quantised one for int8 / int4."""
    if r.get("precision") in ("int8", "int4") and r.get("quant_kernels"):
        return f"{r.get('kernels', '?')}/{r['quant_kernels']}"
    return r.get("kernels", "?")


def ours_point(rows, prec, wl, seq, batch):
    for r in rows:
        if r.get("precision") == prec and r["workload"] == wl and r["batch"] == batch and r.get("seq") == seq:
            return r
    return None


def peer_point(peers, name, wl, seq, batch):
    for p in peers.get("points", []):
        if p["peer"] == name and p["workload"] == wl and p["batch"] == batch and p.get("seq") == seq:
            return p
    return None


def cell(r):
    if r is None:
        return "–"
    rate = r.get("items_per_s", r.get("texts_per_s"))
    s = fmt(rate)
    if r["batch"] == 1:
        s += f" ({r['p50_ms']:.2f} ms)"
    return s


def ratio(a, b):
    return a / b if a and b else None


def targets(cls, ours, peers, peer_names):
    """(target, measured, met) rows: the issue's targets, computed for this class."""
    def rate(prec, wl="fixed", seq=16, b=32):
        r = ours_point(ours, prec, wl, seq, b)
        return r and r["items_per_s"]

    def prate(name, wl="fixed", seq=16, b=32):
        p = peer_point(peers, name, wl, seq, b) if name in peer_names else None
        return p and p["texts_per_s"]

    def eff(prec):
        r = ours_point(ours, prec, "fixed", 16, 32)
        return r and r.get("efficiency")

    rows = []

    def add(name, value, goal, text=None, higher=True):
        if value is None:
            rows.append((name, "not measured", "–"))
            return
        met = value >= goal if higher else value <= goal
        short = value / goal if higher else goal / value  # the share of the goal reached
        rows.append((name, text or f"{value:.2f}", "yes" if met else f"**no** ({short:.0%} of the goal)"))

    e = eff("int8")
    add("int8 ≥ 70 % of the peak at seq16 b32", e, 0.70, e and f"{e:.1%}")
    add("int8 ≥ 2× OpenVINO int8, seq16 b32", ratio(rate("int8"), prate("ov_int8")), 2.0,
        ratio(rate("int8"), prate("ov_int8")) and f"{ratio(rate('int8'), prate('ov_int8')):.2f}×")
    add("int8 ≥ 2.5× ONNX Runtime int8, seq16 b32", ratio(rate("int8"), prate("ort_int8")), 2.5,
        ratio(rate("int8"), prate("ort_int8")) and f"{ratio(rate('int8'), prate('ort_int8')):.2f}×")
    b128, b32 = rate("int8", "msmarco", None, 128), rate("int8", "msmarco", None, 32)
    add("int8 MS MARCO b128 ≥ b32", ratio(b128, b32), 1.0, b128 and b32 and f"{b128:,.0f} vs {b32:,.0f}/s")
    e = eff("fp32")
    add("fp32 ≥ 75 % of the FMA peak", e, 0.75, e and f"{e:.1%}")
    for peer in ("ort_fp32", "ov_fp32"):
        r = ratio(rate("fp32"), prate(peer))
        add(f"fp32 ≥ 1.5× {peer}, seq16 b32", r, 1.5, r and f"{r:.2f}×")
    e = eff("bf16")
    add("bf16 ≥ 70 % of the peak of the instruction it uses", e, 0.70, e and f"{e:.1%}")
    r = ratio(rate("bf16"), prate("ov_bf16"))
    add("bf16 ≥ 1.5× OpenVINO bf16, seq16 b32", r, 1.5, r and f"{r:.2f}×")
    for seq in (128, 256):
        for prec, names in (("fp32", ["ort_fp32", "ov_fp32", "ct2_fp32"]), ("bf16", ["ov_bf16"]),
                            ("int8", ["ort_int8", "ov_int8", "ct2_int8"])):
            best = max([(prate(n, "fixed", seq, 32) or 0, n) for n in names])
            r = ratio(rate(prec, "fixed", seq, 32), best[0])
            add(f"{prec} seq{seq} b32 ≥ 2× the best peer ({best[1]})", r, 2.0, r and f"{r:.2f}×")
    q1 = ours_point(ours, "int8", "msmarco", None, 1)
    add("int8 batch 1 MS MARCO p50 ≤ 0.35 ms", q1 and q1["p50_ms"], 0.35, q1 and f"{q1['p50_ms']:.3f} ms",
        higher=False)
    q4 = ours_point(ours, "int4", "msmarco", None, 1)
    add("int4 batch 1 p50 ≤ int8's", q4 and q1 and q4["p50_ms"] / q1["p50_ms"], 1.0,
        q4 and q1 and f"{q4['p50_ms']:.3f} vs {q1['p50_ms']:.3f} ms", higher=False)
    return rows


def class_section(run, cls, meta, L):
    ours = jsonl(run / f"encserve-{cls}.jsonl")
    sts = {r["precision"]: r["spearman"] for r in jsonl(run / f"sts-{cls}.jsonl")}
    prof = jsonl(run / f"profile-{cls}.jsonl")
    pfile = run / f"peers-{cls}.json"
    peers = json.loads(pfile.read_text()) if pfile.exists() else {}
    peer_names = [p for p in PEERS if any(x["peer"] == p for x in peers.get("points", []))]
    failed = peers.get("failed_peers", [])
    kernels = sorted({f"{r['precision']}: {kernels_of(r)}" for r in ours})
    L += [f"### {CLASS_TITLE.get(cls, cls)}", ""]
    L.append(f"encserve `--isa {cls}` (kernels {'; '.join(kernels)}). Peers: " +
             (", ".join(peer_names) or "none") +
             (f"; **failed**: {', '.join(failed)} (see peers-{cls}.log)" if failed else "") + ".")
    env = peers.get("settings", {}).get("isa_env", {})
    if env:
        L.append("OpenVINO and CTranslate2 restricted with " + ", ".join(f"`{k}={v}`" for k, v in env.items()) + ".")
    elif peer_names:
        L.append("Peers unrestricted: they use every instruction the CPU has (AMX included).")
    L.append("")
    L.append("Texts/s (pairs/s for dl19); batch 1 also shows the p50 latency.")
    L.append("")
    head = ["workload", "seq", "batch"] + [f"encserve {p}" for p in PRECISIONS] + peer_names
    L.append("| " + " | ".join(head) + " |")
    L.append("|" + "---|" * len(head))
    for wl, seq, b in POINTS:
        row = [wl, str(seq or "–"), str(b)]
        row += [cell(ours_point(ours, p, wl, seq, b)) for p in PRECISIONS]
        row += [cell(peer_point(peers, n, wl, seq, b)) for n in peer_names]
        L.append("| " + " | ".join(row) + " |")
    L += ["", "Efficiency at seq 16 batch 32 (2 × multiply-adds per second over the measured peak of the "
          "instruction the GEMMs use, probed on 2 threads before and after the point):", "",
          "| precision | kernels | instruction | peak G/s | model G/s | share | STS-B ρ |", "|---|---|---|---|---|---|---|"]
    for p in PRECISIONS:
        r = ours_point(ours, p, "fixed", 16, 32)
        if r is None:
            continue
        L.append(f"| {p} | {kernels_of(r)} | {r.get('peak_probe', '–')} | {fmt(r.get('peak_gops'))} | "
                 f"{fmt(r.get('model_gflops'))} | {fmt(100 * r['efficiency'], 1) + ' %' if 'efficiency' in r else '–'} | "
                 f"{fmt(sts.get(p), 4) if p in sts else '–'} |")
    acc = peers.get("accuracy", {})
    if acc:
        L += ["", "| peer | STS-B ρ | mean cos vs sentence-transformers | min cos |", "|---|---|---|---|"]
        for n in peer_names:
            a = acc.get(n, {})
            L.append(f"| {n} | {fmt(a.get('sts_b_spearman'), 4)} | {fmt(a.get('mean_cos'), 6)} | {fmt(a.get('min_cos'), 6)} |")
    L += ["", "Targets (the non-AMX issue's, computed for this class):", "", "| target | measured | met |", "|---|---|---|"]
    for name, measured, met in targets(cls, ours, peers, peer_names):
        L.append(f"| {name} | {measured} | {met} |")
    for r in prof:
        L += ["", f"Where int8 time goes, seq {r['seq']} batch 32 ({fmt(r['items_per_s'])} texts/s, "
              f"{fmt(100 * r.get('efficiency', 0), 1)} % of the peak): self time per op, all threads", "",
              "| op | share | GFLOP/s |", "|---|---|---|"]
        for o in r.get("op_profile", []):
            if o["share"] >= 0.005:
                L.append(f"| {o['op']} | {100 * o['share']:.1f} % | {fmt(o['gflops'], 1) if o['gflops'] else '–'} |")
    L.append("")


def main():
    run = Path(sys.argv[1])
    out = Path(sys.argv[2]) if len(sys.argv) > 2 else Path("docs/benchmarks/engine.md")
    meta = json.loads((run / "meta.json").read_text())
    L = [BEGIN, "", "## Per CPU class: AMX, AVX-512 without AMX, AVX2", "",
         f"Generated by `scripts/bench_isa.sh` → `tools/report_isa_bench.py` on {meta['date']}, commit "
         f"`{meta['commit']}`. **Every class measured on one machine**: {meta['cpu']} ({meta['vendor']}), "
         f"{meta['cores']} cores, flags {meta['flags']}; the non-AMX classes by forcing encserve's kernel set "
         "(`--isa avx512`, `--isa avx2`) and restricting the oneDNN/MKL-based peers the same way "
         "(the restriction takes effect: OpenVINO bf16 and int8 and CTranslate2 int8 run slower under it). "
         "ONNX Runtime (MLAS) cannot be restricted: it appears once, in the first class, with every "
         "instruction of this CPU. 2 threads everywhere, same model (all-MiniLM-L6-v2) and inputs; peers "
         "pad each batch to its longest text (fixed rows have no padding, so there the work is identical).",
         ""]
    for cls in meta["classes"]:
        class_section(run, cls, meta, L)
    peaks = run / "peaks.txt"
    if peaks.exists():
        L += ["Peak probes (one thread, `kernels_bench` / `kernels_quant_bench --benchmark_filter=Peak`):", "", "```",
              peaks.read_text().strip(), "```", ""]
    L.append(END)
    block = "\n".join(L)
    text = out.read_text() if out.exists() else ""
    if BEGIN in text and END in text:
        pre, rest = text.split(BEGIN, 1)
        text = pre + block + rest.split(END, 1)[1]
    elif HAND_MARK in text:
        pre, post = text.split(HAND_MARK, 1)
        text = pre + HAND_MARK + "\n\n" + block + "\n" + post
    else:
        text = text + "\n" + block + "\n"
    out.write_text(text)
    print(f"wrote {out}")


if __name__ == "__main__":
    main()
