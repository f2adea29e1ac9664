"""A real Prometheus (Debian's `prometheus`) scraping the real server every second on loopback,
with deploy/prometheus/alerts.yml loaded: under HTTP load, `rate(encserve_requests_total[..])`
and `histogram_quantile(0.99, ..)` from the Prometheus HTTP API against what the load clients
measured (`encserve bench`) over the same window; every expression of deploy/grafana/encserve.json evaluates; the
rules load healthy; `promtool check metrics` passes on /metrics.

Prometheus and promtool come from scripts/setup.sh; without them the tests are skipped with the
reason, except under CI=true, where that is a failure."""
import json
import os
import shutil
import socket
import subprocess
import sys
import tempfile
import time
import unittest
import urllib.parse
import urllib.request

import harness

ROOT = os.path.abspath(os.path.join(os.path.dirname(__file__), "..", ".."))
ALERTS = os.path.join(ROOT, "deploy", "prometheus", "alerts.yml")
GRAFANA = os.path.join(ROOT, "deploy", "grafana", "encserve.json")
WINDOW_S = 10


def need(tool):
    path = shutil.which(tool)
    if path is None:
        if os.environ.get("CI") == "true":
            raise AssertionError(f"{tool} is missing under CI=true (scripts/setup.sh installs it)")
        raise unittest.SkipTest(f"{tool} not installed (Debian package `prometheus`)")
    return path


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class Prometheus:
    def __init__(self, target):
        self.dir = tempfile.mkdtemp(prefix="encserve-prom-")
        self.port = free_port()
        cfg = os.path.join(self.dir, "prometheus.yml")
        with open(cfg, "w") as f:
            f.write(f"""global:
  scrape_interval: 1s
  evaluation_interval: 1s
rule_files: ["{ALERTS}"]
scrape_configs:
  - job_name: encserve
    static_configs: [{{targets: ["{target}"]}}]
""")
        self.log = open(os.path.join(self.dir, "prometheus.log"), "w")
        self.proc = subprocess.Popen(
            [need("prometheus"), f"--config.file={cfg}", f"--storage.tsdb.path={self.dir}/data",
             f"--web.listen-address=127.0.0.1:{self.port}", "--web.enable-lifecycle"],
            stdout=self.log, stderr=subprocess.STDOUT)
        deadline = time.time() + 60
        while True:
            try:
                with urllib.request.urlopen(f"http://127.0.0.1:{self.port}/-/ready", timeout=2) as r:
                    if r.status == 200:
                        break
            except OSError:
                pass
            if self.proc.poll() is not None or time.time() > deadline:
                raise RuntimeError("prometheus did not start:\n" + self.logs())
            time.sleep(0.2)

    def logs(self):
        self.log.flush()
        with open(self.log.name) as f:
            return f.read()[-4000:]

    def api(self, path, **params):
        url = f"http://127.0.0.1:{self.port}/api/v1/{path}?" + urllib.parse.urlencode(params)
        with urllib.request.urlopen(url, timeout=30) as r:
            out = json.load(r)
        assert out["status"] == "success", out
        return out["data"]

    def query(self, expr, at=None):
        params = {"query": expr}
        if at is not None:
            params["time"] = f"{at:.3f}"
        return self.api("query", **params)["result"]

    def stop(self):
        self.proc.terminate()
        try:
            self.proc.wait(30)
        except subprocess.TimeoutExpired:
            self.proc.kill()
        self.log.close()
        shutil.rmtree(self.dir, ignore_errors=True)


def bench(port, seconds, out):
    """`encserve bench` (the project's load generator, C++): HTTP /embed, 2 clients in a closed
    loop, 4 MS MARCO queries per request, 1 s warm-up; returns its --json figures."""
    subprocess.run([harness.BINARY, "bench", "--protocol", "http", "--target",
                    f"127.0.0.1:{port}", "-c", "2", "-b", "4", "--warmup-seconds", "1",
                    "-d", str(seconds), "--json", out, "-q"], check=True, timeout=seconds + 120)
    with open(out) as f:
        return json.load(f)


class RealPrometheus(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        need("prometheus")
        # (No queue-time bound: every request is answered, as the load generator counts them.)
        cls.server = harness.Server("--threads", "2", "--queue-budget-ms", "0")
        cls.prom = Prometheus(f"127.0.0.1:{cls.server.http_port}")

    @classmethod
    def tearDownClass(cls):
        cls.prom.stop()
        assert cls.server.stop() == 0, cls.server.logs()

    def test_rate_and_p99_match_the_load_generator(self):
        deadline = time.time() + 30
        while not self.prom.query('up{job="encserve"} == 1'):
            self.assertLess(time.time(), deadline, "target never up:\n" + self.prom.logs())
            time.sleep(0.5)
        # encserve bench measures from ~1 s (its warm-up) after its start to ~15 s after; the
        # window asked of Prometheus ends at 14 s, well inside that whatever the start-up and
        # exit take (an ASan build's leak check at exit, say); a scrape after it is waited for.
        t_start = time.time()
        figures = bench(self.server.http_port, WINDOW_S + 4,
                        os.path.join(self.prom.dir, "bench.json"))
        at = t_start + 1 + WINDOW_S + 3
        time.sleep(max(0.0, at + 2.5 - time.time()))
        client_rate = figures["requests_per_s"]
        client_p99 = figures["latency_ms"]["p99_ms"] / 1e3
        self.assertGreater(figures["latency_ms"]["count"], 20, "too few requests in the window")
        self.assertEqual(figures["requests"]["errors"], 0, figures["requests"])
        rate = self.prom.query(
            f'sum(rate(encserve_requests_total{{route="http:/embed",code="200"}}[{WINDOW_S}s]))', at)
        p99 = self.prom.query(
            "histogram_quantile(0.99, sum by (le) (rate(encserve_request_duration_seconds_bucket"
            f'{{route="http:/embed"}}[{WINDOW_S}s])))', at)
        prom_rate, prom_p99 = float(rate[0]["value"][1]), float(p99[0]["value"][1])
        print(f"\n  window {WINDOW_S} s: prometheus {prom_rate:.1f} req/s, p99 {prom_p99 * 1e3:.1f} ms; "
              f"clients {client_rate:.1f} req/s, p99 {client_p99 * 1e3:.1f} ms", file=sys.stderr)
        # rate() extrapolates over ~10 scrapes; the histogram's buckets are a factor of 2 wide.
        self.assertAlmostEqual(prom_rate, client_rate, delta=0.15 * client_rate,
                               msg=f"prometheus {prom_rate:.1f}/s, clients {client_rate:.1f}/s")
        self.assertGreater(prom_p99, client_p99 / 2.2, f"p99 {prom_p99} vs clients {client_p99}")
        self.assertLess(prom_p99, client_p99 * 2.2, f"p99 {prom_p99} vs clients {client_p99}")
        items = self.prom.query(f"sum(rate(encserve_items_total[{WINDOW_S}s]))", at)
        self.assertAlmostEqual(float(items[0]["value"][1]), 4 * client_rate,
                               delta=0.15 * 4 * client_rate)

    def test_grafana_expressions_and_rules_evaluate(self):
        deadline = time.time() + 30
        while not self.prom.query("encserve_items_total"):
            self.assertLess(time.time(), deadline, "no scrape yet:\n" + self.prom.logs())
            time.sleep(0.5)
        with open(GRAFANA) as f:
            dash = json.load(f)
        exprs = [t["expr"] for p in dash["panels"] for t in p["targets"]]
        self.assertGreaterEqual(len(exprs), 12)
        for e in exprs:
            e = (e.replace("$__rate_interval", "10s").replace('"$instance"', '".*"')
                 .replace('"$job"', '".*"'))
            self.prom.query(e)  # a syntax or type error fails (status "error")
        groups = self.prom.api("rules")["groups"]
        rules = [r for g in groups for r in g["rules"]]
        self.assertEqual(len(rules), 9, groups)
        for r in rules:
            self.assertEqual(r["health"], "ok", r)

    def test_promtool_check_metrics(self):
        _, _, body = self.server.http("GET", "/metrics")
        p = subprocess.run([need("promtool"), "check", "metrics"], input=body,
                           capture_output=True, timeout=60)
        self.assertEqual(p.returncode, 0, p.stdout.decode() + p.stderr.decode())


if __name__ == "__main__":
    unittest.main()
