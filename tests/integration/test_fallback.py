"""Fallback between backends on the real server (docs/backends.md, "Fallback"): the fault
backend fails at load, fails every Nth batch, hangs past the batch deadline, or dies; every
accepted request is answered exactly once, correctly (sentence-transformers goldens), by the
fallback, and the metrics count what happened."""
import json
import threading
import unittest

import subprocess

from harness import BINARY, golden, cosine, metric_sum
import harness


def Server(*args, **kw):
    """The server with no queue-time budget: failed and hung batches are meant to be absorbed
    here (fallback), not turned into refusals (docs/server.md, "Admission and overload"); and
    without the start-up self-check, whose batches would go through the fault backend first
    and shift its every-Nth-batch pattern and the exact batch counts these tests check."""
    return harness.Server("--queue-budget-ms", "0", "--self-check", "off", *args, **kw)

TEXTS, GOLDEN = golden()


def embed_all(server, clients=6, per_client=12, batch=5):
    """Concurrent /embed requests over the golden texts; returns (answers, errors) where answers
    is a list of (text index, embedding)."""
    answers, errors, lock = [], [], threading.Lock()

    def client(c):
        for k in range(per_client):
            start = (c * per_client + k) * batch % (len(TEXTS) - batch)
            idx = list(range(start, start + batch))
            status, _, body = server.http("POST", "/embed", {"inputs": [TEXTS[i] for i in idx]})
            with lock:
                if status != 200:
                    errors.append((status, body[:200]))
                else:
                    answers.extend(zip(idx, json.loads(body)))

    threads = [threading.Thread(target=client, args=(c,)) for c in range(clients)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    return answers, errors


class FallbackTest(unittest.TestCase):
    def embed_and_check(self, server, clients=6, per_client=12):
        """embed_all, then: no request failed, every row is its own text's embedding (cosine
        >= 0.99999 vs sentence-transformers), nothing lost. Returns the server's metrics."""
        answers, errors = embed_all(server, clients=clients, per_client=per_client)
        self.assertEqual(errors, [])
        self.assertEqual(len(answers), clients * per_client * 5)
        worst = min(cosine(e, GOLDEN[i]) for i, e in answers)
        self.assertGreaterEqual(worst, 0.99999, "a row is not its text's embedding")
        return server.metrics()

    def info(self, server):
        status, _, body = server.http("GET", "/info")
        self.assertEqual(status, 200)
        return json.loads(body)

    def test_load_failure_starts_on_the_fallback(self):
        s = Server("--threads", "1", "--backend", "fault", "--backend-opt", "fault.fail_load=true",
                   "--fallback", "native")
        try:
            self.assertEqual(s.http("GET", "/ready")[0], 200)
            info = self.info(s)
            self.assertEqual(info["backend"], "native")
            self.assertEqual([b["name"] for b in info["backends"]], ["fault", "native"])
            self.assertFalse(info["backends"][0]["loaded"])
            self.assertIn("injected load failure", info["backends"][0]["load_error"])
            self.assertTrue(info["backends"][1]["in_service"])
            m = self.embed_and_check(s, clients=2, per_client=3)
            self.assertEqual(metric_sum(m, "encserve_backend_failures_total", backend="fault",
                                        reason="load"), 1)
            self.assertEqual(metric_sum(m, "encserve_fallbacks_total", **{"from": "fault"},
                                        to="native", reason="load"), 1)
            self.assertEqual(metric_sum(m, "encserve_backend_info", backend="fault", loaded="0"), 1)
            self.assertIn("falling back from fault to native", s.logs())
        finally:
            self.assertEqual(s.stop(), 0)

    def test_every_third_batch_fails_over_and_nothing_is_lost(self):
        # max_failures is high so fault stays in service: every 3rd batch fails over.
        s = Server("--threads", "1", "--replicas", "2", "--backend", "fault", "--backend-opt",
                   "fault.fail_every=3", "--fallback", "native",
                   config="fallback_policy: {max_failures: 1000}\n")
        try:
            m = self.embed_and_check(s)
            failed = metric_sum(m, "encserve_backend_failures_total", backend="fault",
                                reason="error")
            moved = metric_sum(m, "encserve_fallbacks_total", **{"from": "fault"}, to="native",
                               reason="error")
            on_fault = metric_sum(m, "encserve_backend_batches_total", backend="fault")
            on_native = metric_sum(m, "encserve_backend_batches_total", backend="native")
            batches = metric_sum(m, "encserve_batch_size_count")
            self.assertGreater(failed, 0)
            self.assertEqual(moved, failed, "every failed batch was re-run once")
            self.assertEqual(on_native, failed, "the fallback ran exactly the failed batches")
            self.assertEqual(on_fault + on_native, batches, "each batch answered once")
            # Warm-up ran one batch per replica on fault too: calls = answered + failed + 2.
            self.assertEqual((on_fault + failed + 2) // 3, failed)
        finally:
            self.assertEqual(s.stop(), 0)

    def test_failing_mlx_batches_are_rerun_on_native(self):
        # The seed's MLX path "fell back to PyTorch FP16 when MLX failed": here MLX computes,
        # fault injection fails every 3rd of its batches, and native re-runs exactly those.
        probe = subprocess.run([BINARY, "info", "--backend", "mlx"], capture_output=True,
                               text=True)
        if probe.returncode != 0:
            self.skipTest("mlx backend not available in this build: " + probe.stderr[-200:])
        s = Server("--threads", "2", "--backend", "fault", "--backend-opt", "fault.inner=mlx",
                   "--backend-opt", "fault.fail_every=3", "--fallback", "native",
                   config="fallback_policy: {max_failures: 1000}\n")
        try:
            info = self.info(s)
            self.assertEqual([b["name"] for b in info["backends"]], ["fault", "native"])
            self.assertTrue(info["backends"][0]["library"].startswith("MLX "))
            m = self.embed_and_check(s, clients=3, per_client=6)
            failed = metric_sum(m, "encserve_backend_failures_total", backend="fault",
                                reason="error")
            self.assertGreater(failed, 0)
            self.assertEqual(metric_sum(m, "encserve_fallbacks_total", **{"from": "fault"},
                                        to="native", reason="error"), failed)
            self.assertEqual(metric_sum(m, "encserve_backend_batches_total", backend="native"),
                             failed)
            self.assertEqual(metric_sum(m, "encserve_backend_batches_total"),
                             metric_sum(m, "encserve_batch_size_count"))
        finally:
            self.assertEqual(s.stop(), 0)

    def test_a_hang_past_the_batch_deadline_fails_over(self):
        s = Server("--threads", "1", "--backend", "fault", "--backend-opt", "fault.hang_every=4",
                   "--backend-opt", "fault.hang_ms=1500", "--fallback", "native",
                   config="fallback_policy: {max_failures: 1000, batch_timeout_ms: 300}\n")
        try:
            m = self.embed_and_check(s, clients=3, per_client=6)
            timeouts = metric_sum(m, "encserve_fallbacks_total", **{"from": "fault"},
                                  to="native", reason="timeout")
            self.assertGreater(timeouts, 0)
            self.assertEqual(metric_sum(m, "encserve_backend_batches_total", backend="native"),
                             timeouts)
            self.assertEqual(metric_sum(m, "encserve_backend_batches_total") ,
                             metric_sum(m, "encserve_batch_size_count"))
        finally:
            self.assertEqual(s.stop(), 0)

    def test_a_dying_backend_is_taken_out_of_service(self):
        # fault fails its first 40 batches: out of service after 2 in a row, for a minute (the
        # retry after the back-off is checked by fallback_test, with a fake clock-free policy).
        s = Server("--threads", "1", "--backend", "fault", "--backend-opt", "fault.fail_first=40",
                   "--fallback", "native", "--no-batching",
                   config="warmup: false\nfallback_policy: {max_failures: 2, retry_after_ms: 60000}\n")
        try:
            m = self.embed_and_check(s, clients=2, per_client=10)
            failed = metric_sum(m, "encserve_backend_failures_total", backend="fault")
            native = metric_sum(m, "encserve_backend_batches_total", backend="native")
            self.assertEqual(failed, 2, "out of service after 2: later batches skip fault")
            self.assertEqual(native, 20)
            self.assertEqual(metric_sum(m, "encserve_backend_in_service", backend="fault"), 0)
            info = self.info(s)
            self.assertEqual(info["backend"], "native")
            self.assertFalse(info["backends"][0]["in_service"])
            self.assertIn("out of service", s.logs())
        finally:
            self.assertEqual(s.stop(), 0)

    def test_request_errors_are_not_failed_over(self):
        s = Server("--threads", "1", "--backend", "fault", "--fallback", "native")
        try:
            status, _, body = s.http("POST", "/embed", {"inputs": ["ok", "bad \udc80"]})
            self.assertIn(status, (400, 422), body)
            m = s.metrics()
            self.assertEqual(metric_sum(m, "encserve_fallbacks_total"), 0)
            self.assertEqual(metric_sum(m, "encserve_backend_failures_total"), 0)
        finally:
            self.assertEqual(s.stop(), 0)


if __name__ == "__main__":
    unittest.main()
