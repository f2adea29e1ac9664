#!/usr/bin/env python3
"""Writes the per-backend tables of docs/benchmarks/backends.md from measured files only:

  report_backends.py RESULTS_ROOT BENCH_JSONL NATIVE_JSONL CONFORMANCE_LOG > table.md

- RESULTS_ROOT: the latest results/backends_compare/<ts>/results.json (server: items/s at
  batch 32 x concurrency 8, STS-B rho, resident MB and load seconds per variant);
- BENCH_JSONL: scripts/bench_backends.sh's raw runs (in-process C++ and the library's Python API);
- NATIVE_JSONL: `encserve bench-engine --backend native --json-out` lines (in-process native);
- CONFORMANCE_LOG: backend_conformance_test output ("[ conformance ] ..." lines: cosine vs
  sentence-transformers).
Missing figures print as "-". Run by hand after scripts/run_all_experiments.sh.
"""
import glob
import json
import os
import re
import statistics
import sys


def latest_compare(root):
    runs = sorted(glob.glob(os.path.join(root, "backends_compare", "*", "results.json")))
    return json.load(open(runs[-1])) if runs else None


def bench(path):
    """{(side, backend, precision): median items/s}"""
    runs = {}
    for line in open(path) if os.path.exists(path) else []:
        r = json.loads(line)
        if r.get("items_per_s"):
            runs.setdefault((r["side"], r["backend"], r["precision"]), []).append(r["items_per_s"])
    return {k: statistics.median(v) for k, v in runs.items()}


def native(path):
    out = {}
    for line in open(path) if os.path.exists(path) else []:
        r = json.loads(line)
        out[r["precision"]] = r["items_per_s"]
    return out


def conformance(path):
    out = {}
    pat = re.compile(r"\[ conformance \] (\S+) (\S+) \(kernels .*\): cosine vs sentence-transformers "
                     r"mean ([0-9.]+) min ([0-9.]+) over (\d+) texts")
    for line in open(path) if os.path.exists(path) else []:
        m = pat.search(line)
        if m:
            out[(m.group(1), m.group(2))] = (float(m.group(3)), float(m.group(4)), int(m.group(5)))
    return out


def f(x, fmt="{:,.1f}"):
    return "-" if x is None else fmt.format(x)


def main():
    root, bench_path, native_path, conf_path = sys.argv[1:5]
    r = latest_compare(root)
    b, n, c = bench(bench_path), native(native_path), conformance(conf_path)
    print("| backend | precision | cosine vs ST mean / min (texts) | STS-B rho | in-process items/s "
          "b=32 | server items/s b=32 c=8 | server / in-process | native / backend (server) | "
          "Python API items/s | C++ / Python | RSS MB | load s |")
    print("|---|---|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|")
    server = {}
    for v in (r or {}).get("variants", []):
        pts = [p for p in r["points"] if p.get("variant") == v["label"]
               and p["batch_size"] == 32 and p["concurrency"] == 8]
        # A point with failed requests (e.g. client deadlines) gives no figure.
        ok = pts and pts[0]["errors"] == 0
        server[(v["backend"], v["precision"])] = pts[0]["items_per_s"] if ok else None
    for v in (r or {}).get("variants", []):
        be, pr = v["backend"], v["precision"]
        inproc = n.get(pr) if be == "native" else b.get(("cpp", be, pr))
        py = b.get(("python", be, pr))
        srv = server.get((be, pr))
        nat = server.get(("native", pr))
        cos = c.get((be, pr))
        q = (v.get("quality") or {}).get("sts_b_spearman")
        name = "onnx (ONNX model on OpenVINO)" if be == "onnx" else be
        print(f"| {name} | {pr} | "
              + (f"{cos[0]:.6f} / {cos[1]:.6f} ({cos[2]})" if cos else "-")
              + f" | {f(q, '{:.4f}')} | {f(inproc)} | {f(srv)} | "
              + f"{f(srv / inproc if srv and inproc else None, '{:.2f}')} | "
              + f"{f(nat / srv if nat and srv else None, '{:.2f}x')} | {f(py)} | "
              + f"{f(inproc / py if inproc and py else None, '{:.3f}')} | "
              + f"{f(v.get('resident_mb'), '{:.0f}')} | {f(v.get('load_seconds'), '{:.2f}')} |")


if __name__ == "__main__":
    main()
