"""HTTP/JSON against the real server: TEI- and OpenAI-style routes, errors with their codes,
overload (429 + Retry-After), timeouts (504), API key, and a cross-encoder model."""
import base64
import json
import math
import os
import threading
import unittest

import numpy as np

import harness

LIMITS = """
limits:
  max_client_batch_size: 16
  max_body_bytes: 65536
"""


class Routes(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        cls.server = harness.Server("--threads", "2", config=LIMITS)
        cls.texts, cls.emb = harness.golden()

    @classmethod
    def tearDownClass(cls):
        assert cls.server.stop() == 0, cls.server.logs()

    def post(self, path, body, **kw):
        status, headers, data = self.server.http("POST", path, body, **kw)
        return status, headers, json.loads(data) if data else None

    def test_embed(self):
        status, _, out = self.post("/embed", {"inputs": self.texts[:4]})
        self.assertEqual(status, 200)
        self.assertEqual(len(out), 4)
        for i in range(4):
            self.assertGreaterEqual(harness.cosine(out[i], self.emb[i]), 0.99999)
        status, _, out = self.post("/embed", {"inputs": self.texts[5]})
        self.assertEqual((status, len(out)), (200, 1))
        self.assertGreaterEqual(harness.cosine(out[0], self.emb[5]), 0.99999)

    def test_openai_embeddings(self):
        status, _, out = self.post("/v1/embeddings", {"input": self.texts[:2], "model": "x"})
        self.assertEqual(status, 200)
        self.assertEqual(out["object"], "list")
        self.assertEqual([d["index"] for d in out["data"]], [0, 1])
        self.assertGreaterEqual(harness.cosine(out["data"][1]["embedding"], self.emb[1]), 0.99999)
        self.assertGreater(out["usage"]["prompt_tokens"], 2)
        status, _, b64 = self.post("/v1/embeddings",
                                   {"input": self.texts[1], "encoding_format": "base64"})
        self.assertEqual(status, 200)
        v = np.frombuffer(base64.b64decode(b64["data"][0]["embedding"]), dtype="<f4")
        self.assertEqual(v.shape, (384,))
        np.testing.assert_allclose(v, out["data"][1]["embedding"], atol=1e-6)

    def test_similarity_rerank_score_tokenize(self):
        status, _, sims = self.post("/similarity", {"inputs": {
            "source_sentence": self.texts[0], "sentences": [self.texts[1], self.texts[0]]}})
        self.assertEqual(status, 200)
        self.assertAlmostEqual(sims[0], float(self.emb[0] @ self.emb[1]), places=4)
        self.assertAlmostEqual(sims[1], 1.0, places=4)
        docs = ["Bananas are yellow.", "The capital of France is Paris."]
        status, _, ranked = self.post("/rerank", {"query": "capital of France", "texts": docs,
                                                  "return_text": True})
        self.assertEqual(status, 200)
        self.assertEqual([r["index"] for r in ranked], [1, 0])
        self.assertEqual(ranked[0]["text"], docs[1])
        status, _, scores = self.post("/score", {"pairs": [[self.texts[0], self.texts[1]]]})
        self.assertEqual(status, 200)
        self.assertAlmostEqual(scores["scores"][0], float(self.emb[0] @ self.emb[1]), places=4)
        status, _, toks = self.post("/tokenize", {"inputs": "Hello world!"})
        self.assertEqual(status, 200)
        self.assertEqual([t["id"] for t in toks[0]], [101, 7592, 2088, 999, 102])

    def test_health_ready_info_metrics(self):
        self.assertEqual(self.server.http("GET", "/health")[0], 200)
        self.assertEqual(self.server.http("GET", "/ready")[0], 200)
        status, _, info = self.server.http("GET", "/info")
        self.assertEqual(status, 200)
        info = json.loads(info)
        self.assertEqual((info["embedding_dim"], info["max_client_batch_size"]), (384, 16))
        self.post("/embed", {"inputs": ["count me"]})
        m = self.server.metrics()
        self.assertGreaterEqual(harness.metric_sum(m, "encserve_requests_total",
                                                   route="http:/embed", code="200"), 1)
        self.assertGreater(harness.metric_sum(m, "process_resident_memory_bytes"), 50e6)

    def expect_error(self, status, body, code, path="/embed", **kw):
        got, headers, data = self.server.http("POST", path, body, **kw)
        self.assertEqual(got, code, data)
        err = json.loads(data)
        self.assertIsInstance(err["error"], str)
        self.assertIsInstance(err["type"], str)
        return err

    def test_errors(self):
        self.expect_error(None, b'{"inputs": ["a"', 400)                  # malformed JSON
        self.expect_error(None, {"inputs": 5}, 400)                        # wrong type
        self.expect_error(None, {"inputs": ["a", 3]}, 400)                 # wrong element type
        self.expect_error(None, {"texts": ["a"]}, 400)                     # missing field
        self.expect_error(None, {"inputs": []}, 422)                       # empty list
        self.expect_error(None, {"inputs": ["ok", ""]}, 422)               # empty text
        self.expect_error(None, b'{"inputs": ["\xff\xfe"]}', 400)          # invalid UTF-8
        self.expect_error(None, {"inputs": ["x"] * 17}, 413)               # too many texts
        self.expect_error(None, {"inputs": ["word " * 20000]}, 413)        # body > 64 KiB
        self.expect_error(None, {"inputs": ["word " * 600], "truncate": False}, 413)
        self.expect_error(None, {"inputs": ["x"]}, 404, path="/nope")
        self.assertEqual(self.server.http("GET", "/embed")[0], 405)
        # Still serving.
        status, _, out = self.post("/embed", {"inputs": ["still here"]})
        self.assertEqual(status, 200)


class OverloadAndTimeouts(unittest.TestCase):
    def test_429_with_retry_after_and_504(self):
        # The item bound (429) and deadlines (504) are under test, not the queue-time budget.
        server = harness.Server("--threads", "1", "--max-batch-size", "8", "--queue-budget-ms", "0",
                                config="queue:\n  max_items: 32\nlimits:\n  max_client_batch_size: 32\n")
        texts, emb = harness.golden()
        results = []
        lock = threading.Lock()

        def client(k):
            idx = [(k * 8 + j) % 600 for j in range(8)]
            status, headers, data = server.http("POST", "/embed",
                                                {"inputs": [texts[i] for i in idx]})
            with lock:
                results.append((idx, status, headers, data))

        try:
            threads = [threading.Thread(target=client, args=(k,)) for k in range(48)]
            for t in threads:
                t.start()
            for t in threads:
                t.join()
            codes = [r[1] for r in results]
            self.assertIn(429, codes)
            self.assertIn(200, codes)
            self.assertEqual(set(codes) - {200, 429}, set())
            for idx, status, headers, data in results:
                if status == 429:
                    self.assertIn("retry-after", headers)
                    self.assertEqual(json.loads(data)["type"], "overloaded")
                else:
                    out = json.loads(data)
                    for j, i in enumerate(idx):
                        self.assertGreaterEqual(harness.cosine(out[j], emb[i]), 0.99999)
            # A client timeout shorter than the queue wait: 504, and the work is dropped.
            load = threading.Thread(target=client, args=(100,))
            load.start()
            status, _, data = server.http("POST", "/embed", {"inputs": texts[900:908]},
                                          headers={"X-Request-Timeout-Ms": "1"})
            load.join()
            self.assertEqual(status, 504, data)
            self.assertEqual(server.http("GET", "/health")[0], 200)
        finally:
            self.assertEqual(server.stop(), 0)


class ApiKey(unittest.TestCase):
    def test_http_requires_the_key(self):
        server = harness.Server("--threads", "1", "--api-key", "s3cret")
        try:
            self.assertEqual(server.http("POST", "/embed", {"inputs": ["x"]})[0], 401)
            self.assertEqual(server.http("POST", "/embed", {"inputs": ["x"]},
                                         headers={"Authorization": "Bearer nope"})[0], 401)
            self.assertEqual(server.http("POST", "/embed", {"inputs": ["x"]},
                                         headers={"Authorization": "Bearer s3cret"})[0], 200)
            self.assertEqual(server.http("GET", "/health")[0], 200)
        finally:
            self.assertEqual(server.stop(), 0)


class CrossEncoder(unittest.TestCase):
    """A tiny random-weight BertForSequenceClassification with logits from transformers."""

    def test_rerank_and_score_match_transformers(self):
        model = os.path.join(harness.TEST_DATA, "tiny-cross-encoder")
        server = harness.Server("--threads", "1", model=model)
        try:
            with open(os.path.join(model, "expected.jsonl")) as f:
                rows = [json.loads(line) for line in f]
            pairs = [[r["query"], r["passage"]] for r in rows[:16]]
            status, _, data = server.http("POST", "/score", {"pairs": pairs, "raw_scores": True})
            self.assertEqual(status, 200, data)
            scores = json.loads(data)["scores"]
            for s, r in zip(scores, rows[:16]):
                self.assertAlmostEqual(s, r["logits"][0], delta=1e-4)
            # Rerank one query's two passages: sigmoid scores, sorted.
            q = rows[0]["query"]
            docs = [r["passage"] for r in rows[:2]]
            status, _, data = server.http("POST", "/rerank", {"query": q, "texts": docs})
            self.assertEqual(status, 200, data)
            ranked = json.loads(data)
            expected = [1 / (1 + math.exp(-rows[i]["logits"][0])) for i in range(2)]
            order = sorted(range(2), key=lambda i: -expected[i])
            self.assertEqual([r["index"] for r in ranked], order)
            for r in ranked:
                self.assertAlmostEqual(r["score"], expected[r["index"]], delta=1e-4)
            self.assertEqual(server.http("POST", "/embed", {"inputs": ["x"]})[0], 422)
        finally:
            self.assertEqual(server.stop(), 0)


if __name__ == "__main__":
    unittest.main()
