"""`encserve bench` (the load generator) against the real server: closed loop over gRPC (seed and
v1 APIs) and HTTP, open loop, pair and rerank workloads, errors counted by code; every figure
read back from --json."""
import json
import os
import subprocess
import tempfile
import unittest

import harness


class LoadgenTest(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        # The load generator is under test, not admission: no queue-time budget.
        cls.server = harness.Server("--threads", "1", "--queue-budget-ms", "0")
        cls.tmp = tempfile.mkdtemp(prefix="encserve-loadgen-")

    @classmethod
    def tearDownClass(cls):
        cls.server.stop()

    def bench(self, *args, expect_rc=0):
        out = os.path.join(self.tmp, "result.json")
        p = subprocess.run([harness.BINARY, "bench", "-q", "--json", out, *args],
                           capture_output=True, text=True, timeout=300)
        self.assertEqual(p.returncode, expect_rc, p.stdout + p.stderr)
        with open(out) as f:
            return json.load(f), p.stdout

    def check_ok(self, r, requests, items):
        self.assertEqual(r["requests"]["sent"], requests)
        self.assertEqual(r["requests"]["ok"], requests)
        self.assertEqual(r["requests"]["errors"], 0)
        self.assertEqual(r["items"], items)
        self.assertGreater(r["requests_per_s"], 0)
        self.assertGreater(r["items_per_s"], 0)
        lat = r["latency_ms"]
        self.assertEqual(lat["count"], requests)
        self.assertGreater(lat["min_ms"], 0)
        self.assertLessEqual(lat["p50_ms"], lat["p99_ms"])
        self.assertLessEqual(lat["p99_ms"], lat["max_ms"])

    def test_closed_loop_grpc_seed_v1_and_http(self):
        grpc_t = f"127.0.0.1:{self.server.grpc_port}"
        http_t = f"127.0.0.1:{self.server.http_port}"
        for args in (["--api", "seed", "--target", grpc_t], ["--api", "v1", "--target", grpc_t],
                     ["--protocol", "http", "--target", http_t]):
            with self.subTest(args=args):
                r, text = self.bench(*args, "-c", "4", "-b", "4", "-n", "20",
                                     "--warmup-requests", "4")
                self.check_ok(r, 20, 80)
                self.assertEqual(r["warmup"], {"sent": 4, "errors": 0})
                self.assertEqual(r["mode"], "closed")
                self.assertEqual(r["params"]["concurrency"], 4)
                self.assertIn("p99.9", text)

    def test_pairs_and_rerank(self):
        grpc_t = f"127.0.0.1:{self.server.grpc_port}"
        http_t = f"127.0.0.1:{self.server.http_port}"
        r, _ = self.bench("--api", "v1", "--target", grpc_t, "-w", "sts-b", "-c", "2", "-b", "4",
                          "-n", "6")
        self.check_ok(r, 6, 24)
        r, _ = self.bench("--protocol", "http", "--target", http_t, "-w", "dl19-pairs", "-c", "2",
                          "-b", "4", "-n", "4")
        self.check_ok(r, 4, 16)
        r, _ = self.bench("--api", "v1", "--target", grpc_t, "-w", "dl19-rerank", "-n", "1")
        self.check_ok(r, 1, 100)

    def test_open_loop(self):
        r, _ = self.bench("--target", f"127.0.0.1:{self.server.grpc_port}", "--rate", "50",
                          "-n", "20", "-b", "2", "--max-outstanding", "8", "--seed", "3")
        self.check_ok(r, 20, 40)
        self.assertEqual(r["mode"], "open")
        self.assertEqual(r["open_loop"]["scheduled"], 20)
        self.assertEqual(r["open_loop"]["not_sent"], 0)

    def test_errors_are_counted_by_code(self):
        # Nothing listens on port 1: every request fails, and the run exits 1.
        r, text = self.bench("--target", "127.0.0.1:1", "-n", "3", expect_rc=1)
        self.assertEqual(r["requests"]["errors_by_code"], {"UNAVAILABLE": 3})
        r, _ = self.bench("--protocol", "http", "--target", "127.0.0.1:1", "-n", "3", expect_rc=1)
        self.assertEqual(r["requests"]["errors_by_code"], {"CONNECT_ERROR": 3})
        # The seed API has no pair scoring.
        p = subprocess.run([harness.BINARY, "bench", "-w", "sts-b", "-n", "1"],
                           capture_output=True, text=True)
        self.assertEqual(p.returncode, 2)
        self.assertIn("--api v1", p.stderr)


if __name__ == "__main__":
    unittest.main()
