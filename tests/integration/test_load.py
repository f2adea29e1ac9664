"""Concurrency against the real server: no cross-talk (batching on and off), real batches,
overload (RESOURCE_EXHAUSTED / 429 for the excess, correct answers for the rest), deadlines
and cancellation dropped and counted."""
import threading
import time
import unittest
from concurrent.futures import ThreadPoolExecutor

import grpc
import numpy as np

import harness


def run_clients(server, clients, requests_per_client, texts_per_request, offset=0):
    """Each client sends its own distinct golden texts; returns (#mismatched rows, #errors)."""
    pb, pb_grpc, _, _ = harness.stubs()
    texts, emb = harness.golden()
    bad, errors = [0], []
    lock = threading.Lock()

    def client(c):
        with grpc.insecure_channel(server.grpc_target) as ch:
            stub = pb_grpc.InferenceServiceStub(ch)
            for k in range(requests_per_client):
                n = 1 + (c + k) % texts_per_request
                idx = [(offset + c * 16 + k * 4 + j) % len(texts) for j in range(n)]
                try:
                    r = stub.Infer(pb.InferRequest(texts=[texts[i] for i in idx]), timeout=120)
                except grpc.RpcError as e:
                    with lock:
                        errors.append(e.code())
                    continue
                got = np.array(r.embeddings, dtype=np.float32).reshape(n, 384)
                for j, i in enumerate(idx):
                    if harness.cosine(got[j], emb[i]) < 0.99999:
                        with lock:
                            bad[0] += 1

    with ThreadPoolExecutor(clients) as ex:
        list(ex.map(client, range(clients)))
    return bad[0], errors


class NoCrossTalk(unittest.TestCase):
    def check(self, *args):
        # No queue-time budget: this is about correctness under concurrency, not admission.
        server = harness.Server("--threads", "2", "--queue-budget-ms", "0", *args)
        try:
            bad, errors = run_clients(server, clients=64, requests_per_client=4, texts_per_request=4)
            self.assertEqual(errors, [])
            self.assertEqual(bad, 0)
        finally:
            self.assertEqual(server.stop(), 0, server.logs())

    def test_batching_on(self):
        self.check()

    def test_batching_off(self):
        self.check("--no-batching")


class RealBatches(unittest.TestCase):
    def test_single_text_clients_form_batches(self):
        server = harness.Server("--threads", "2", "--max-wait-us", "2000", "--queue-budget-ms", "0")
        try:
            bad, errors = run_clients(server, clients=64, requests_per_client=8, texts_per_request=1)
            self.assertEqual((bad, errors), (0, []))
            m = server.metrics()
            count = harness.metric_sum(m, "encserve_batch_size_count")
            items = harness.metric_sum(m, "encserve_batch_size_sum")
            self.assertEqual(items, 64 * 8)
            self.assertGreater(items / count, 4.0, f"{count} batches for {items} items")
        finally:
            self.assertEqual(server.stop(), 0)


class Overload(unittest.TestCase):
    def test_burst_beyond_the_queue_bound(self):
        server = harness.Server("--threads", "1", config="queue:\n  max_items: 64\nlimits:\n  max_client_batch_size: 64\n")
        pb, pb_grpc, _, _ = harness.stubs()
        texts, emb = harness.golden()
        try:
            with grpc.insecure_channel(server.grpc_target) as ch:
                stub = pb_grpc.InferenceServiceStub(ch)
                futures = []
                for k in range(200):
                    idx = [(k * 8 + j) % len(texts) for j in range(8)]
                    futures.append((idx, stub.Infer.future(
                        pb.InferRequest(texts=[texts[i] for i in idx]), timeout=120)))
                ok = exhausted = queue_full = 0
                for idx, f in futures:
                    try:
                        r = f.result()
                    except grpc.RpcError as e:
                        self.assertEqual(e.code(), grpc.StatusCode.RESOURCE_EXHAUSTED, e.details())
                        exhausted += 1
                        queue_full += "queue full" in e.details()
                        continue
                    got = np.array(r.embeddings, dtype=np.float32).reshape(8, 384)
                    for j, i in enumerate(idx):
                        self.assertGreaterEqual(harness.cosine(got[j], emb[i]), 0.99999)
                    ok += 1
                self.assertGreater(exhausted, 0)
                self.assertGreater(ok, 0)
                # HTTP says 429 with Retry-After under the same overload.
                # Still serving afterwards.
                r = stub.Infer(pb.InferRequest(texts=["after the burst"]), timeout=30)
                self.assertEqual(r.num_texts, 1)
            m = server.metrics()
            self.assertEqual(harness.metric_sum(
                m, "encserve_requests_total", route="grpc:inference.Infer", code="429"), exhausted)
            # Every refusal counted once, by the stage that refused it (the budget's before
            # tokenising, the queue bound's or the budget's after).
            self.assertEqual(harness.metric_sum(m, "encserve_overload_refusals_total"), exhausted)
            # The queue bound is checked on the queued tokens: after tokenising.
            self.assertGreaterEqual(harness.metric_sum(
                m, "encserve_overload_refusals_total", stage="after_tokenize"), queue_full)
        finally:
            self.assertEqual(server.stop(), 0)

    def test_deadlines_and_cancellation_drop_queued_work(self):
        # Deliberately queues far more than the queue-time budget allows: budget off.
        server = harness.Server("--threads", "1", "--max-batch-size", "8", "--queue-budget-ms", "0")
        pb, pb_grpc, _, _ = harness.stubs()
        texts, _ = harness.golden()
        long_texts = texts[900:1028]  # DL19 passages: slow
        try:
            with grpc.insecure_channel(server.grpc_target) as ch:
                stub = pb_grpc.InferenceServiceStub(ch)
                # The load as 48 requests of 8 passages on the same connection: the fair order
                # takes a client's requests' first turns oldest first, so the 8 requests below
                # queue behind all of them (one large request would have had its first turn by
                # then, and the newer requests' first turns would go ahead of its rest).
                load = [stub.Infer.future(pb.InferRequest(texts=long_texts[i:i + 8]), timeout=300)
                        for _ in range(3) for i in range(0, len(long_texts), 8)]
                time.sleep(0.2)
                expired = [stub.Infer.future(pb.InferRequest(texts=long_texts[:8]), timeout=0.05)
                           for _ in range(4)]
                cancelled = [stub.Infer.future(pb.InferRequest(texts=long_texts[:8]), timeout=300)
                             for _ in range(4)]
                time.sleep(0.2)
                for f in cancelled:
                    f.cancel()
                for f in expired:
                    with self.assertRaises(grpc.RpcError) as e:
                        f.result()
                    self.assertEqual(e.exception.code(), grpc.StatusCode.DEADLINE_EXCEEDED)
                for f in load:
                    self.assertEqual(f.result().num_texts, 8)
            m = server.metrics()
            dropped = harness.metric_sum(m, "encserve_dropped_items_total")
            self.assertGreaterEqual(dropped, 8 * 8, "expired + cancelled items were computed anyway")
            self.assertEqual(harness.metric_sum(m, "encserve_items_total"), 3 * len(long_texts))
        finally:
            self.assertEqual(server.stop(), 0)


if __name__ == "__main__":
    unittest.main()
