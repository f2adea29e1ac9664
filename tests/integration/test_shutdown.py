"""SIGTERM during load: in-flight requests are answered, readiness turns false, exit code 0."""
import http.client
import signal
import time
import unittest

import grpc
import numpy as np

import harness


class Shutdown(unittest.TestCase):
    def test_sigterm_finishes_in_flight_requests(self):
        # A grace long enough for the queued work even in the sanitizer build (about 10x slower),
        # and no queue-time budget (the burst is meant to be admitted whole).
        server = harness.Server("--threads", "2", "--queue-budget-ms", "0",
                                config="shutdown:\n  grace_ms: 120000\n")
        pb, pb_grpc, _, _ = harness.stubs()
        texts, emb = harness.golden()
        with grpc.insecure_channel(server.grpc_target) as ch:
            stub = pb_grpc.InferenceServiceStub(ch)
            futures = []
            for k in range(24):
                idx = [(k * 32 + j) % 600 for j in range(32)]
                futures.append((idx, stub.Infer.future(
                    pb.InferRequest(texts=[texts[i] for i in idx]), timeout=120)))
            keep_alive = http.client.HTTPConnection("127.0.0.1", server.http_port, timeout=30)
            keep_alive.request("GET", "/ready")
            r = keep_alive.getresponse()
            r.read()
            self.assertEqual(r.status, 200)
            time.sleep(0.3)  # all received and queued
            server.proc.send_signal(signal.SIGTERM)
            time.sleep(0.1)
            # Readiness turns false first (asked on a connection opened before the signal,
            # while the in-flight requests are still being computed).
            keep_alive.request("GET", "/ready")
            r = keep_alive.getresponse()
            r.read()
            self.assertEqual(r.status, 503)
            self.assertFalse(all(f.done() for _, f in futures), "load finished too early")
            for idx, f in futures:
                r = f.result()  # every accepted request gets its answer
                got = np.array(r.embeddings, dtype=np.float32).reshape(len(idx), 384)
                for j, i in enumerate(idx):
                    self.assertGreaterEqual(harness.cosine(got[j], emb[i]), 0.99999)
        self.assertEqual(server.stop(), 0, server.logs())
        self.assertIn("SIGTERM", server.logs())
        # The exit account of the gRPC calls: the 24 Infer calls reached a handler and were
        # answered OK, none cancelled (the reliability scenario `restart` relies on this line).
        self.assertIn("gRPC calls: 24 reached a handler, 24 answered (OK 24), 0 of them cancelled",
                      server.logs())


if __name__ == "__main__":
    unittest.main()
