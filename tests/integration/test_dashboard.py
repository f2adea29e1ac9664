"""/dashboard in real browsers: the real server under HTTP load, the page open in headless
Chromium (browser.py) and headless Firefox (firefox.py), and the figures it shows (read from the DOM) checked against /metrics,
/info and what the load clients measured; they must change while load runs and fall to zero
after. The API-key flow (the page asks once, then reads /stats with it). A screenshot is saved
as a test artifact (<build>/test-artifacts/dashboard.png, dashboard-firefox.png).

Chromium is Debian's `chromium`, Firefox `firefox-esr` (scripts/setup.sh installs both); without
one its tests are skipped with the reason, except under CI=true, where that is a failure."""
import json
import os
import subprocess
import sys
import time
import unittest

import browser
import firefox
import harness

FIGURES = ["v-items-per-s", "v-requests-per-s", "v-items-total", "v-requests-total", "v-p50-ms",
           "v-p95-ms", "v-p99-ms", "v-batch-size", "v-batch-tokens", "v-batches-per-s",
           "v-queue-items", "v-in-flight", "v-cpu", "v-rss-mb", "h-model", "h-precision",
           "h-backend", "h-uptime"]
READ = ("(() => { const o = {}; for (const id of %s) o[id] = document.getElementById(id)"
        ".textContent; o.updates = window.encserveDashboard ? window.encserveDashboard.updates : 0;"
        " return o; })()" % json.dumps(FIGURES))
SERVING = ("http:/embed",)


BROWSERS = {  # name: (how to find it, the driver, the Debian package)
    "chromium": (browser.find_chromium, browser.Browser, "chromium"),
    "firefox": (firefox.find_firefox, firefox.Firefox, "firefox-esr"),
}


def need_browser(name):
    find, _, package = BROWSERS[name]
    if find() is None:
        if os.environ.get("CI") == "true":
            raise AssertionError(f"{name} is missing under CI=true (scripts/setup.sh installs it)")
        raise unittest.SkipTest(f"{name} not installed (Debian package `{package}`)")


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


def quantile(q, m_a, m_b, route):
    """Prometheus's histogram_quantile over encserve_request_duration_seconds{route} between two
    /metrics readings (seconds)."""
    def buckets(m):
        out = {}
        for (name, labels), v in m.items():
            d = dict(labels)
            if name == "encserve_request_duration_seconds_bucket" and d.get("route") == route:
                out[float(d["le"])] = v
        return out
    a, b = buckets(m_a), buckets(m_b)
    les = sorted(b)
    cum = [b[le] - a.get(le, 0.0) for le in les]  # cumulative counts
    if not cum or cum[-1] <= 0:
        return None
    rank = q * cum[-1]
    for i, le in enumerate(les):
        if cum[i] >= rank:
            if le == float("inf"):
                return les[i - 1]
            lo = les[i - 1] if i > 0 else 0.0
            below = cum[i - 1] if i > 0 else 0.0
            return lo + (le - lo) * (rank - below) / (cum[i] - below)
    return None


def artifact_dir():
    d = os.path.join(os.path.dirname(os.path.abspath(harness.BINARY)), "test-artifacts")
    os.makedirs(d, exist_ok=True)
    return d


class PageTest(unittest.TestCase):
    """A server started with SERVER_ARGS (and CONFIG, a server.yaml text) for the class's tests,
    which open the page in BROWSER; skipped without it (need_browser)."""
    SERVER_ARGS = ()
    CONFIG = None
    BROWSER = "chromium"

    @classmethod
    def setUpClass(cls):
        need_browser(cls.BROWSER)
        cls.server = harness.Server(*cls.SERVER_ARGS, config=cls.CONFIG)

    def new_browser(self):
        return BROWSERS[self.BROWSER][1]()

    @classmethod
    def tearDownClass(cls):
        assert cls.server.stop() == 0, cls.server.logs()


class Dashboard(PageTest):
    # (No queue-time bound: every request is answered, the load generator's figures and the
    # page's count the same requests.)
    SERVER_ARGS = ("--threads", "2", "--queue-budget-ms", "0")
    SCREENSHOT = "dashboard.png"

    def test_figures_match_metrics_and_move_with_load(self):
        _, _, info = self.server.http("GET", "/info")
        info = json.loads(info)
        b = self.new_browser()
        load = None
        try:
            b.open(f"http://127.0.0.1:{self.server.http_port}/dashboard?interval_ms=1000")
            b.wait_for("window.encserveDashboard && window.encserveDashboard.updates >= 2")
            load = Load(self.server.http_port, 10,
                        os.path.join(artifact_dir(), "dashboard-bench.json"))
            # Two readings with load on both sides: the page's last interval is all load.
            seen = b.wait_for("window.encserveDashboard.last.items_per_s > 0 &&"
                              " window.encserveDashboard.updates")
            b.wait_for(f"window.encserveDashboard.updates >= {seen + 2}")
            t_a = time.perf_counter()
            m_a = self.server.metrics()
            time.sleep(2.0)
            shown = b.evaluate(READ)
            m_b = self.server.metrics()
            t_b = time.perf_counter()
            b.screenshot(os.path.join(artifact_dir(), self.SCREENSHOT))
            time.sleep(1.5)
            later = b.evaluate(READ)
            figures = load.finish()
            time.sleep(3.0)  # over two readings with no load
            idle = b.evaluate(READ)
        finally:
            if load is not None and load.proc.poll() is None:
                load.proc.kill()
            b.close()
        p99_metrics = quantile(0.99, m_a, m_b, "http:/embed")
        print(f"\n  shown: {shown}\n  /metrics over {t_b - t_a:.1f} s: items/s "
              f"{(harness.metric_sum(m_b, 'encserve_items_total') - harness.metric_sum(m_a, 'encserve_items_total')) / (t_b - t_a):.1f}, "
              f"p99 {p99_metrics * 1e3:.1f} ms; load generator: p99 "
              f"{figures['latency_ms']['p99_ms']:.1f} ms, {figures['items_per_s']:.1f} items/s",
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

        # Rates over the page's last interval (1 s) against the average over the two readings.
        items_rate = (items_b - items_a) / (t_b - t_a)
        self.assertGreater(num(shown["v-items-per-s"]), 0.5 * items_rate, (shown, items_rate))
        self.assertLess(num(shown["v-items-per-s"]), 1.5 * items_rate, (shown, items_rate))
        # Each request is 4 items.
        self.assertAlmostEqual(num(shown["v-items-per-s"]) / 4, num(shown["v-requests-per-s"]),
                               delta=0.25 * num(shown["v-requests-per-s"]) + 1)
        # Latency: the page's last interval against the same histogram between the two /metrics
        # readings (2 s), both interpolated in buckets a factor of 2 wide.
        p99 = num(shown["v-p99-ms"]) / 1000
        self.assertGreater(p99, p99_metrics / 3, (shown, p99_metrics))
        self.assertLess(p99, p99_metrics * 3, (shown, p99_metrics))
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


class DashboardFirefox(Dashboard):
    """The same page, figures and checks in Firefox."""
    BROWSER = "firefox"
    SCREENSHOT = "dashboard-firefox.png"


class DashboardWithKey(PageTest):
    SERVER_ARGS = ("--threads", "1", "--api-key", "s3cret")
    CONFIG = "auth:\n  metrics_open: false\n"

    def test_page_asks_for_the_key_once(self):
        status, _, _ = self.server.http("GET", "/stats")
        self.assertEqual(status, 401)
        b = self.new_browser()
        try:
            b.open(f"http://127.0.0.1:{self.server.http_port}/dashboard?interval_ms=300")
            b.wait_for("getComputedStyle(document.getElementById('keybox')).display !== 'none'")
            # (The box opens on /info's 401; the status follows once /stats has failed too.)
            status = b.wait_for("document.getElementById('status').textContent.includes('API key')"
                                " && document.getElementById('status').textContent")
            self.assertIn("/stats needs the API key", status)
            b.evaluate("document.getElementById('key').value = 's3cret';"
                       "document.getElementById('keybtn').click(); true")
            b.wait_for("window.encserveDashboard && window.encserveDashboard.updates >= 2")
            self.assertEqual(b.evaluate("document.getElementById('status').textContent"),
                             "live, every 300 ms")
            # Kept for the tab: a reload reads /stats without asking again.
            b.evaluate("window.beforeReload = true")
            b.reload()
            b.wait_for("!window.beforeReload && window.encserveDashboard &&"
                       " window.encserveDashboard.updates >= 1")
            self.assertEqual(
                b.evaluate("getComputedStyle(document.getElementById('keybox')).display"), "none")
        finally:
            b.close()


class DashboardWithKeyFirefox(DashboardWithKey):
    BROWSER = "firefox"


class DashboardWithKeyOpenMetrics(PageTest):
    """An API key with /metrics and /stats open (the default): the figures run without the key;
    the page asks for it for the header (/info)."""
    SERVER_ARGS = ("--threads", "1", "--api-key", "s3cret")

    def test_figures_without_the_key_header_with_it(self):
        b = self.new_browser()
        try:
            b.open(f"http://127.0.0.1:{self.server.http_port}/dashboard?interval_ms=300")
            b.wait_for("window.encserveDashboard && window.encserveDashboard.updates >= 2")
            self.assertIn("header: /info needs the API key",
                          b.evaluate("document.getElementById('status').textContent"))
            self.assertEqual(b.evaluate("document.getElementById('h-model').textContent"), "…")
            b.evaluate("document.getElementById('key').value = 's3cret';"
                       "document.getElementById('keybtn').click(); true")
            model = b.wait_for("document.getElementById('h-model').textContent !== '…' &&"
                               " document.getElementById('h-model').textContent")
            _, _, info = self.server.http("GET", "/info", headers={"Authorization": "Bearer s3cret"})
            self.assertEqual(model, json.loads(info)["model_id"])
        finally:
            b.close()


if __name__ == "__main__":
    unittest.main()
