"""`encserve experiment` end to end: a tiny 2x2 sweep against the real server, every output file
present and parsable, provenance, figures positive and consistent; the null backend and an
unavailable backend."""
import csv
import glob
import html.parser
import json
import os
import re
import subprocess
import tempfile
import unittest

import harness

TINY = """
name: {name}
description: integration test
model: {{backend: {backend}}}
server: {{threads: 1}}
workload: {{name: msmarco-queries, protocol: {protocol}, api: seed}}
sweep: {{batch_sizes: [1, 4], concurrency_levels: [1, 2], requests_per_point: 12, warmup_requests: 2, repeats: 1}}
quality: {{sts_b: {sts}, dl19_ndcg: false}}
"""


def run(tmp, name, backend="native", protocol="grpc", sts="true"):
    path = os.path.join(tmp, name + ".yaml")
    with open(path, "w") as f:
        f.write(TINY.format(name=name, backend=backend, protocol=protocol, sts=sts))
    base = os.path.join(harness.ROOT, "configs", "experiments", "base.yaml")
    p = subprocess.run([harness.BINARY, "experiment", path, "--base", base, "--results",
                        os.path.join(tmp, "results"), "-q"], capture_output=True, text=True,
                       timeout=600, env=dict(os.environ, ENCSERVE_MODEL=harness.MODEL_DIR))
    assert p.returncode == 0, p.stdout + p.stderr
    runs = glob.glob(os.path.join(tmp, "results", name, "*"))
    assert len(runs) == 1, runs
    return runs[0], p.stdout


VOID = {"area", "base", "br", "col", "embed", "hr", "img", "input", "link", "meta", "source",
        "track", "wbr"}


class PageCheck(html.parser.HTMLParser):
    """Parses a page: every element closed in order (void elements aside), every src / href
    attribute local, and the text and <svg> elements seen."""

    def __init__(self):
        super().__init__(convert_charrefs=True)
        self.stack, self.errors, self.refs, self.text, self.svgs = [], [], [], [], 0

    def handle_starttag(self, tag, attrs):
        self.refs += [v or "" for k, v in attrs if k in ("src", "href")]
        self.svgs += tag == "svg"
        if tag not in VOID:
            self.stack.append(tag)

    def handle_startendtag(self, tag, attrs):
        self.refs += [v or "" for k, v in attrs if k in ("src", "href")]

    def handle_endtag(self, tag):
        if not self.stack or self.stack[-1] != tag:
            self.errors.append(f"</{tag}> closes {self.stack[-1:] or 'nothing'}")
        else:
            self.stack.pop()

    def handle_data(self, data):
        self.text.append(data)


def check_page(test, path):
    """The page at `path` parses with balanced elements and loads nothing from elsewhere."""
    with open(path, encoding="utf-8") as f:
        page = f.read()
    p = PageCheck()
    p.feed(page)
    p.close()
    test.assertEqual(p.errors, [], path)
    test.assertEqual(p.stack, [], path)
    for ref in p.refs:
        test.assertIsNone(re.match(r"\s*([a-z][a-z0-9+.-]*:|//)", ref, re.I), ref)
    test.assertIsNone(re.search(r"(src|href)\s*=\s*[\"']?\s*(https?:)?//", page, re.I))
    test.assertNotIn("<script", page)
    test.assertNotIn("<link", page)
    test.assertNotIn("<img", page)
    return page, p


class Experiment(unittest.TestCase):
    def test_tiny_sweep_end_to_end(self):
        tmp = tempfile.mkdtemp(prefix="encserve-exp-")
        d, stdout = run(tmp, "tiny")
        for f in ["results.json", "results.md", "results.csv", "throughput.svg", "latency.svg",
                  "tradeoff.svg", "report.html"]:
            self.assertTrue(os.path.getsize(os.path.join(d, f)) > 0, f)
        r = json.load(open(os.path.join(d, "results.json")))
        self.assertEqual(r["status"], "ok")
        prov = r["provenance"]
        for k in ["git_commit", "encserve_version", "date_utc", "cpu_model", "cpu_flags", "cores",
                  "memory_bytes", "os"]:
            self.assertIn(k, prov)
        self.assertGreater(prov["cores"], 0)
        self.assertEqual(r["config"]["sweep"]["batch_sizes"], [1, 4])
        self.assertEqual(r["server"]["precision"], "fp32")
        self.assertEqual(len(r["points"]), 4)
        for p in r["points"]:
            self.assertEqual(p["errors"], 0)
            self.assertEqual(p["ok"], 12)
            self.assertEqual(p["items"], p["ok"] * p["batch_size"])  # texts = requests x batch
            self.assertGreater(p["items_per_s"], 0)
            self.assertAlmostEqual(p["items_per_s"], p["items"] / p["seconds"], delta=1e-6 * p["items_per_s"] + 1e-9)
            L = p["latency_ms"]
            self.assertTrue(0 < L["p50"] <= L["p95"] <= L["p99"] <= L["max"])
            self.assertGreaterEqual(p["server_batch_size_mean"], 1.0)
            # Who served the point: every batch of it on native, none fell back.
            self.assertGreater(p["served_by"]["batches"].get("native", 0), 0)
            self.assertEqual(list(p["served_by"]["batches"]), ["native"])
            self.assertEqual(p["served_by"]["fallbacks"], 0)
        self.assertEqual(r["server"]["backend"], "native")
        self.assertEqual([b["name"] for b in r["server"]["backends"]], ["native"])
        self.assertEqual(r["config"]["model"]["native"]["isa"], "auto")  # options recorded
        self.assertAlmostEqual(r["quality"]["sts_b_spearman"], 0.8203, delta=0.001)
        rows = list(csv.reader(open(os.path.join(d, "results.csv"))))
        self.assertEqual(len(rows), 1 + 4)
        self.assertIn("Best throughput", open(os.path.join(d, "results.md")).read())
        self.assertIn("Best throughput", stdout)  # the summary is printed
        self.check_report_html(tmp, d, r)

    def check_report_html(self, tmp, d, r):
        """report.html: self-contained, the points' figures and the three charts inline, and
        `encserve report --run` reproduces it byte for byte; `report --html` the analysis page."""
        path = os.path.join(d, "report.html")
        page, parsed = check_page(self, path)
        self.assertEqual(parsed.svgs, 3)
        for chart in ["throughput.svg", "latency.svg", "tradeoff.svg"]:
            with open(os.path.join(d, chart), encoding="utf-8") as f:
                self.assertIn(f.read(), page)  # the chart file's SVG, inlined
        text = "".join(parsed.text)
        for p in r["points"]:
            self.assertIn(f'{p["items_per_s"]:.1f}', text)
            self.assertIn(f'{p["latency_ms"]["p50"]:.2f}', text)
        self.assertIn("Best throughput", text)
        self.assertIn(r["provenance"]["git_commit"], text)
        self.assertIn(f'STS-B ρ {r["quality"]["sts_b_spearman"]:.4f}', text)
        with open(path, "rb") as f:
            before = f.read()
        os.remove(path)
        p = subprocess.run([harness.BINARY, "report", "--run", d], capture_output=True, text=True)
        self.assertEqual(p.returncode, 0, p.stderr)
        with open(path, "rb") as f:
            self.assertEqual(f.read(), before)
        # The analysis page as HTML, next to its Markdown.
        out = os.path.join(tmp, "docs", "analysis.md")
        p = subprocess.run([harness.BINARY, "report", "--results", os.path.join(tmp, "results"),
                            "--out", out, "--charts", os.path.join(tmp, "docs", "analysis"),
                            "--html"], capture_output=True, text=True)
        self.assertEqual(p.returncode, 0, p.stderr)
        self.assertTrue(os.path.getsize(out) > 0)
        page, parsed = check_page(self, os.path.join(tmp, "docs", "analysis.html"))
        self.assertEqual(parsed.svgs, 3)  # one experiment, three charts
        self.assertIn("Experiment analysis", page)
        best = max(p["items_per_s"] for p in r["points"])
        self.assertIn(f"{best:.1f}", "".join(parsed.text))

    def test_null_and_unavailable_backends(self):
        tmp = tempfile.mkdtemp(prefix="encserve-exp-")
        d, _ = run(tmp, "tiny_null", backend='"null"', protocol="http", sts="false")
        r = json.load(open(os.path.join(d, "results.json")))
        self.assertEqual(r["server"]["backend"], "null")
        self.assertEqual(r["server"]["precision"], "none")  # null computes in no precision
        self.assertIsNone(r["quality"]["sts_b_spearman"])  # no model, no quality claim
        self.assertTrue(all(p["errors"] == 0 and p["ok"] == 12 for p in r["points"]))
        # A backend this build lacks is reported, never measured (all are built where
        # scripts/setup.sh ran: then there is nothing to check here).
        missing = [b for b in ("torch", "onnx", "mlx")
                   if "not available" in subprocess.run([harness.BINARY, "info", "--backend", b],
                                                        capture_output=True, text=True).stderr]
        if not missing:
            self.skipTest("torch, onnx and mlx are all built: no unavailable backend to run")
        d, stdout = run(tmp, "tiny_missing", backend=missing[0])
        r = json.load(open(os.path.join(d, "results.json")))
        self.assertTrue(r["status"].startswith("backend not available"), r["status"])
        self.assertEqual(r["points"], [])
        self.assertIn("backend not available", stdout)


if __name__ == "__main__":
    unittest.main()
