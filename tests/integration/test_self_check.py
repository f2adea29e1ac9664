"""The server that checks itself (docs/server.md, "Self-check" and "Embedding-space
fingerprint"), on the real MiniLM: the shipped golden set passes at fp32 and int8 with the
precision's threshold, and a golden set whose rows belong to other texts keeps the server out
of service (or only warns, by config); the fingerprint in /info, on every embedding reply
(header and field, HTTP and gRPC) and as recomputed here from the documented recipe."""
import hashlib
import json
import os
import tempfile
import unittest

import grpc
import numpy as np

import harness

SHIPPED = os.path.join(harness.ROOT, "selfcheck", "all-MiniLM-L6-v2.json")


def sha256_file(path):
    with open(path, "rb") as f:
        return hashlib.sha256(f.read()).hexdigest()


def fingerprint(dimensions=384, normalize=True, prompt="", max_tokens=256):
    """docs/server.md's recipe, from the model folder's files."""
    canonical = ("encserve-embedding-space/1\n"
                 f"weights={sha256_file(os.path.join(harness.MODEL_DIR, 'model.safetensors'))}\n"
                 f"tokenizer={sha256_file(os.path.join(harness.MODEL_DIR, 'tokenizer.json'))}\n"
                 f"pooling=mean\nnormalize={'true' if normalize else 'false'}\n"
                 f"dimensions={dimensions}\n"
                 f"prompt={hashlib.sha256(prompt.encode()).hexdigest()}\n"
                 f"max_tokens={max_tokens}\n")
    return "es1-" + hashlib.sha256(canonical.encode()).hexdigest()[:32]


def load_json(path):
    with open(path, encoding="utf-8") as f:
        return json.load(f)


def save_json(obj, path):
    with open(path, "w", encoding="utf-8") as f:
        json.dump(obj, f)


def info(srv):
    status, _, body = srv.http("GET", "/info")
    assert status == 200
    return json.loads(body)


def quality_metrics(srv):
    m = srv.metrics()
    labels = frozenset({"model": "all-MiniLM-L6-v2"}.items())
    return (m.get(("encserve_quality_min_cosine", labels)),
            m.get(("encserve_quality_check_passed", labels)))


class ShippedGoldenSet(unittest.TestCase):
    def test_rows_are_the_sentence_transformers_references(self):
        g = load_json(SHIPPED)
        texts, emb = harness.golden()
        self.assertEqual(len(g["texts"]), 64)
        self.assertEqual(g["weights_sha256"],
                         sha256_file(os.path.join(harness.MODEL_DIR, "model.safetensors")))
        rows = np.array(g["embeddings"], dtype=np.float32)
        for i, r in enumerate(g["rows"]):
            self.assertEqual(g["texts"][i], texts[r])
        np.testing.assert_array_equal(rows, emb[g["rows"]])  # 9 digits: float32 exactly
        lengths = [len(t) for t in g["texts"]]
        self.assertGreater(max(lengths), 1500)  # texts past 256 tokens: truncation is checked


class Fp32(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        cls.server = harness.Server("--threads", "2")

    @classmethod
    def tearDownClass(cls):
        cls.server.stop()

    def test_passes_and_reports_everywhere(self):
        i = info(self.server)
        sc = i["self_check"]
        self.assertEqual(sc["status"], "passed", sc)
        self.assertEqual(sc["texts"], 64)
        self.assertEqual(sc["threshold"], 0.9999)
        self.assertGreaterEqual(sc["min_cosine"], 0.99999)
        self.assertTrue(sc["golden"].endswith("selfcheck/all-MiniLM-L6-v2.json"), sc["golden"])
        min_cos, passed = quality_metrics(self.server)
        self.assertAlmostEqual(min_cos, sc["min_cosine"], places=12)
        self.assertEqual(passed, 1.0)
        self.assertEqual(self.server.http("GET", "/ready")[0], 200)
        self.assertIn("[self-check] passed: 64 texts", self.server.logs())

    def test_fingerprint_matches_the_documented_recipe_on_every_reply(self):
        fp = fingerprint()
        space = info(self.server)["embedding_space"]
        self.assertEqual(space["fingerprint"], fp)
        self.assertEqual((space["precision"], space["backend"], space["dimensions"]),
                         ("fp32", "native", 384))
        st, h, _ = self.server.http("POST", "/embed", {"inputs": ["a", "b"]})
        self.assertEqual((st, h.get("x-embedding-space")), (200, fp))
        st, h, body = self.server.http("POST", "/v1/embeddings", {"input": "a", "model": "m"})
        self.assertEqual((st, h.get("x-embedding-space")), (200, fp))
        self.assertEqual(json.loads(body)["embedding_space"], fp)
        for path in ("/", "/invocations"):  # TEI's default task of an embedding model
            st, h, _ = self.server.http("POST", path, {"inputs": "a"})
            self.assertEqual((st, h.get("x-embedding-space")), (200, fp), path)
        st, h, body = self.server.http("POST", "/v1/embed", {"texts": ["a"], "model": "m"})
        self.assertEqual((st, h.get("x-embedding-space")), (200, fp), body)
        st, h, body = self.server.http("POST", "/v2/embed", {
            "texts": ["a"], "model": "m", "input_type": "search_query",
            "embedding_types": ["float"]})
        self.assertEqual(st, 200, body)
        self.assertEqual((h.get("x-embedding-space"), json.loads(body)["embedding_space"]),
                         (fp, fp))
        # A Matryoshka cut or raw vectors are another space.
        st, h, _ = self.server.http("POST", "/embed", {"inputs": "a", "dimensions": 128})
        self.assertEqual(h.get("x-embedding-space"), fingerprint(dimensions=128))
        st, h, _ = self.server.http("POST", "/embed", {"inputs": "a", "normalize": False})
        self.assertEqual(h.get("x-embedding-space"), fingerprint(normalize=False))
        self.assertNotEqual(fingerprint(normalize=False), fp)
        # Replies that carry no vectors carry no fingerprint.
        st, h, _ = self.server.http("POST", "/similarity", {
            "inputs": {"source_sentence": "a", "sentences": ["b"]}})
        self.assertEqual(st, 200)
        self.assertNotIn("x-embedding-space", h)

    def test_grpc_reply_carries_the_fingerprint(self):
        _, _, v1, v1g = harness.stubs()
        with grpc.insecure_channel(self.server.grpc_target) as ch:
            r = v1g.EncoderStub(ch).Embed(v1.EmbedRequest(texts=["a"]), timeout=30)
            self.assertEqual(r.embedding_space, fingerprint())
            r = v1g.EncoderStub(ch).Embed(v1.EmbedRequest(texts=["a"], dimensions=64), timeout=30)
            self.assertEqual(r.embedding_space, fingerprint(dimensions=64))


class OtherMaxLength(unittest.TestCase):
    def test_only_texts_both_lengths_leave_whole_are_compared(self):
        srv = harness.Server("--threads", "2", config="model:\n  max_length: 128\n")
        try:
            i = info(srv)
            sc = i["self_check"]
            self.assertEqual(sc["status"], "passed", sc)
            self.assertGreater(sc["texts"], 32)
            self.assertLess(sc["texts"], 64)
            self.assertIn(f"{64 - sc['texts']} of 64 texts left out", sc["note"])
            self.assertGreaterEqual(sc["min_cosine"], 0.99999)
            # Another truncation length is another space.
            self.assertEqual(i["embedding_space"]["fingerprint"], fingerprint(max_tokens=128))
        finally:
            srv.stop()


class Int8(unittest.TestCase):
    # (int8, not int4: int4's load-time quantisation takes minutes in the sanitizer build. The
    # int4 figure, 0.9642 min cosine at its 0.90 threshold, is in docs/server.md.)
    def test_int8_passes_its_own_threshold_and_is_measurably_off_fp32(self):
        srv = harness.Server("--threads", "2", "--precision", "int8")
        try:
            sc = info(srv)["self_check"]
            self.assertEqual(sc["status"], "passed", sc)
            self.assertEqual(sc["threshold"], 0.99)
            # The check measures the precision: int8 is not fp32.
            self.assertLess(sc["min_cosine"], 0.9999)
            self.assertGreater(sc["mean_cosine"], 0.995)
            # Same space as fp32: precision is beside the fingerprint, not in it.
            self.assertEqual(info(srv)["embedding_space"]["fingerprint"], fingerprint())
            self.assertEqual(info(srv)["embedding_space"]["precision"], "int8")
        finally:
            srv.stop()


class BrokenGoldenSet(unittest.TestCase):
    """A golden set whose rows are shifted by one text: what a mix-up of rows looks like."""

    @classmethod
    def setUpClass(cls):
        g = load_json(SHIPPED)
        g["embeddings"] = g["embeddings"][1:] + g["embeddings"][:1]
        cls.tmp = tempfile.mkdtemp(prefix="encserve-golden-")
        cls.path = os.path.join(cls.tmp, "shifted.json")
        save_json(g, cls.path)
        g["weights_sha256"] = "0" * 64
        cls.other = os.path.join(cls.tmp, "other-weights.json")
        save_json(g, cls.other)

    def test_refuse_keeps_the_server_out_of_service(self):
        srv = harness.Server("--threads", "2", "--self-check-golden", self.path)
        try:
            st, _, body = srv.http("GET", "/ready")
            self.assertEqual(st, 503)
            self.assertIn("self-check failed: min cosine", json.loads(body)["error"])
            st, _, body = srv.http("POST", "/embed", {"inputs": "a"})
            self.assertEqual(st, 503, body)
            self.assertIn("self-check failed", body.decode())
            sc = info(srv)["self_check"]
            self.assertEqual((sc["status"], sc["action"]), ("failed", "refuse"))
            self.assertLess(sc["min_cosine"], 0.7)
            self.assertEqual(quality_metrics(srv)[1], 0.0)
            self.assertEqual(srv.http("GET", "/health")[0], 200)  # alive, explains itself
            self.assertIn("will NOT become ready", srv.logs())
            self.assertIn("encserve NOT ready", srv.logs())
            ready = load_json(os.path.join(srv.tmp, "ready.json"))
            self.assertFalse(ready["ready"])
            self.assertIn("self-check failed", ready["not_ready"])
            # gRPC: health NOT_SERVING (status field 1 = 2), Embed UNAVAILABLE with the cause.
            _, _, v1, v1g = harness.stubs()
            with grpc.insecure_channel(srv.grpc_target) as ch:
                check = ch.unary_unary("/grpc.health.v1.Health/Check")
                self.assertEqual(check(b"", timeout=10), b"\x08\x02")
                with self.assertRaises(grpc.RpcError) as e:
                    v1g.EncoderStub(ch).Embed(v1.EmbedRequest(texts=["a"]), timeout=30)
                self.assertEqual(e.exception.code(), grpc.StatusCode.UNAVAILABLE)
                self.assertIn("self-check failed", e.exception.details())
        finally:
            srv.stop()

    def test_warn_serves_and_reports(self):
        srv = harness.Server("--threads", "2", config=(
            f"self_check:\n  golden: {self.path}\n  action: warn\n"))
        try:
            self.assertEqual(srv.http("GET", "/ready")[0], 200)
            self.assertEqual(srv.http("POST", "/embed", {"inputs": "a"})[0], 200)
            sc = info(srv)["self_check"]
            self.assertEqual((sc["status"], sc["action"]), ("failed", "warn"))
        finally:
            srv.stop()

    def test_a_golden_set_for_other_weights_is_refused_by_name(self):
        srv = harness.Server("--threads", "2", "--self-check-golden", self.other)
        try:
            sc = info(srv)["self_check"]
            self.assertEqual(sc["status"], "failed")
            self.assertIn("was made for weights 000000000000", sc["reason"])
            self.assertEqual(srv.http("GET", "/ready")[0], 503)
        finally:
            srv.stop()


class SkippedOrOff(unittest.TestCase):
    def test_null_backend_and_off(self):
        srv = harness.Server("--backend", "null")
        try:
            sc = info(srv)["self_check"]
            self.assertEqual(sc["status"], "skipped")
            self.assertIn("null", sc["reason"])
            self.assertEqual(srv.http("GET", "/ready")[0], 200)
            self.assertEqual(quality_metrics(srv), (None, None))
        finally:
            srv.stop()
        srv = harness.Server("--threads", "2", "--self-check", "off")
        try:
            self.assertEqual(info(srv)["self_check"]["status"], "off")
            self.assertEqual(srv.http("GET", "/ready")[0], 200)
        finally:
            srv.stop()


if __name__ == "__main__":
    unittest.main()
