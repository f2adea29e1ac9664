"""/dashboard in a real browser: the real server under HTTP load, the page open in headless
Chromium (browser.py), and the figures it shows (read from the DOM) checked against /metrics,
/info and what the load clients measured; they must change while load runs and fall to zero
after. The API-key flow (the page asks once, then reads /stats with it). A screenshot is saved
as a test artifact (<build>/test-artifacts/dashboard.png).

Chromium is Debian's `chromium` (scripts/setup.sh installs it); without it the tests are skipped
with the reason, except under CI=true, where that is a failure."""
import json
import os
import subprocess
import sys
import time
import unittest

import browser
import harness

FIGURES = ["v-items-per-s", "v-requests-per-s", "v-items-total", "v-requests-total", "v-p50-ms",
           "v-p95-ms", "v-p99-ms", "v-batch-size", "v-batch-tokens", "v-batches-per-s",
           "v-queue-items", "v-in-flight", "v-cpu", "v-rss-mb", "h-model", "h-precision",
           "h-backend", "h-uptime"]
READ = ("(() => { const o = {}; for (const id of %s) o[id] = document.getElementById(id)"
        ".textContent; o.updates = window.encserveDashboard ? window.encserveDashboard.updates : 0;"
        " return o; })()" % json.dumps(FIGURES))
SERVING = ("http:/embed",)


def need_chromium(test):
    if browser.find_chromium() is None:
        if os.environ.get("CI") == "true":
            raise AssertionError("chromium is missing under CI=true (scripts/setup.sh installs it)")
        raise unittest.SkipTest("chromium not installed (Debian package `chromium`)")


def num(text):
    return float(text.replace(",", ""))


class Load:
    """`encserve bench` (the project's load generator) in the background: HTTP /embed, 2 clients
    in a closed loop, 4 MS MARCO queries per request, for `seconds`."""

    def __init__(self, port, seconds, out):
        self.out = out
        self.proc = subprocess.Popen(
            [harness.BINARY, "bench", "--protocol", "http", "--target", f"127.0.0.1:{port}", "-c",
             "2", "-b", "4", "-d", str(seconds), "--json", out, "-q"])

    def finish(self):
        """Waits for it; its --json figures."""
        if self.proc.wait(120) != 0:
            raise AssertionError(f"encserve bench exited with {self.proc.returncode}")
        with open(self.out) as f:
            return json.load(f)


def artifact_dir():
    d = os.path.join(os.path.dirname(os.path.abspath(harness.BINARY)), "test-artifacts")
    os.makedirs(d, exist_ok=True)
    return d


class Dashboard(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        need_chromium(cls)
        # (No queue-time bound: every request is answered, the load generator's figures and the
        # page's count the same requests.)
        cls.server = harness.Server("--threads", "2", "--queue-budget-ms", "0")

    @classmethod
    def tearDownClass(cls):
        assert cls.server.stop() == 0, cls.server.logs()

    def test_figures_match_metrics_and_move_with_load(self):
        _, _, info = self.server.http("GET", "/info")
        info = json.loads(info)
        load = Load(self.server.http_port, 8, os.path.join(artifact_dir(), "dashboard-bench.json"))
        b = browser.Browser()
        try:
            b.open(f"http://127.0.0.1:{self.server.http_port}/dashboard?interval_ms=500")
            b.wait_for("window.encserveDashboard && window.encserveDashboard.updates >= 4")
            t_a = time.perf_counter()
            m_a = self.server.metrics()
            time.sleep(2.0)
            shown = b.evaluate(READ)
            m_b = self.server.metrics()
            t_b = time.perf_counter()
            b.screenshot(os.path.join(artifact_dir(), "dashboard.png"))
            time.sleep(1.5)
            later = b.evaluate(READ)
            figures = load.finish()
            time.sleep(2.0)  # over three readings with no load
            idle = b.evaluate(READ)
        finally:
            if load.proc.poll() is None:
                load.proc.kill()
            b.close()
        p99_client = figures["latency_ms"]["p99_ms"] / 1e3
        print(f"\n  shown: {shown}\n  /metrics items/s over {t_b - t_a:.1f} s: "
              f"{(harness.metric_sum(m_b, 'encserve_items_total') - harness.metric_sum(m_a, 'encserve_items_total')) / (t_b - t_a):.1f}; "
              f"load generator: p99 {p99_client * 1e3:.1f} ms, {figures['items_per_s']:.1f} items/s",
              file=sys.stderr)
        self.assertEqual(figures["requests"]["errors"], 0, figures["requests"])

        # Header: what /info says.
        self.assertEqual(shown["h-model"], info["model_id"])
        self.assertEqual(shown["h-precision"], info["precision"])
        self.assertEqual(shown["h-backend"], info["backend"])
        self.assertRegex(shown["h-uptime"], r"^\d+h \d+m \d+s$")

        # Totals: between the /metrics readings just before and after (same counters).
        items_a = harness.metric_sum(m_a, "encserve_items_total")
        items_b = harness.metric_sum(m_b, "encserve_items_total")
        self.assertGreater(items_b, items_a, "no load reached the engine")
        self.assertGreaterEqual(num(shown["v-items-total"]), items_a)
        self.assertLessEqual(num(shown["v-items-total"]), items_b)
        req = lambda m: sum(harness.metric_sum(m, "encserve_requests_total", route=r) for r in SERVING)
        self.assertGreaterEqual(num(shown["v-requests-total"]), req(m_a))
        self.assertLessEqual(num(shown["v-requests-total"]), req(m_b))

        # Rates over the page's last interval against the average over the two readings.
        items_rate = (items_b - items_a) / (t_b - t_a)
        self.assertGreater(num(shown["v-items-per-s"]), 0.5 * items_rate, (shown, items_rate))
        self.assertLess(num(shown["v-items-per-s"]), 1.5 * items_rate, (shown, items_rate))
        # Each request is 4 items.
        self.assertAlmostEqual(num(shown["v-items-per-s"]) / 4, num(shown["v-requests-per-s"]),
                               delta=0.25 * num(shown["v-requests-per-s"]) + 1)
        # Latency: the last interval's, interpolated in buckets a factor of 2 wide, against the
        # load generator's p99 over its run.
        p99 = num(shown["v-p99-ms"]) / 1000
        self.assertGreater(p99, p99_client / 3, (shown, p99_client))
        self.assertLess(p99, p99_client * 3, (shown, p99_client))
        self.assertLessEqual(num(shown["v-p50-ms"]), num(shown["v-p95-ms"]))
        self.assertLessEqual(num(shown["v-p95-ms"]), num(shown["v-p99-ms"]))
        # Batches of 1..8 texts (2 clients x 4), queue and in-flight small, process figures.
        self.assertGreaterEqual(num(shown["v-batch-size"]), 1)
        self.assertLessEqual(num(shown["v-batch-size"]), 8)
        self.assertGreater(num(shown["v-batch-tokens"]), num(shown["v-batch-size"]))
        self.assertLessEqual(num(shown["v-queue-items"]), 8)
        self.assertLessEqual(num(shown["v-in-flight"]), 8)
        self.assertGreater(num(shown["v-cpu"]), 0.05)
        self.assertLess(num(shown["v-cpu"]), os.cpu_count() + 0.5)
        rss_mb = harness.metric_sum(m_b, "process_resident_memory_bytes") / 1e6
        self.assertAlmostEqual(num(shown["v-rss-mb"]), rss_mb, delta=0.1 * rss_mb)

        # It moves while load runs, and falls to zero after.
        self.assertGreater(later["updates"], shown["updates"])
        self.assertGreater(num(later["v-items-total"]), num(shown["v-items-total"]))
        self.assertEqual(num(idle["v-items-per-s"]), 0.0, idle)
        self.assertEqual(num(idle["v-requests-per-s"]), 0.0, idle)


class DashboardWithKey(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        need_chromium(cls)
        cls.server = harness.Server("--threads", "1", "--api-key", "s3cret",
                                    config="auth:\n  metrics_open: false\n")

    @classmethod
    def tearDownClass(cls):
        assert cls.server.stop() == 0, cls.server.logs()

    def test_page_asks_for_the_key_once(self):
        status, _, _ = self.server.http("GET", "/stats")
        self.assertEqual(status, 401)
        b = browser.Browser()
        try:
            b.open(f"http://127.0.0.1:{self.server.http_port}/dashboard?interval_ms=300")
            b.wait_for("getComputedStyle(document.getElementById('keybox')).display !== 'none'")
            self.assertIn("API key", b.evaluate("document.getElementById('status').textContent"))
            b.evaluate("document.getElementById('key').value = 's3cret';"
                       "document.getElementById('keybtn').click(); true")
            b.wait_for("window.encserveDashboard && window.encserveDashboard.updates >= 2")
            self.assertEqual(b.evaluate("document.getElementById('status').textContent"),
                             "live, every 300 ms")
            # Kept for the tab: a reload reads /stats without asking again.
            b.evaluate("window.beforeReload = true")
            b.call("Page.reload")
            b.wait_for("!window.beforeReload && window.encserveDashboard &&"
                       " window.encserveDashboard.updates >= 1")
            self.assertEqual(
                b.evaluate("getComputedStyle(document.getElementById('keybox')).display"), "none")
        finally:
            b.close()


if __name__ == "__main__":
    unittest.main()
