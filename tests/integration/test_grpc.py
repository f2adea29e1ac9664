"""gRPC against the real server: the seed's client unchanged, the encserve.v1 API, health,
reflection, API key."""
import unittest

import grpc
import numpy as np

import harness


class SeedClient(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        cls.server = harness.Server("--threads", "2")
        cls.pb, cls.pb_grpc, cls.v1, cls.v1_grpc = harness.stubs()
        cls.channel = grpc.insecure_channel(cls.server.grpc_target)
        cls.seed = cls.pb_grpc.InferenceServiceStub(cls.channel)
        cls.encoder = cls.v1_grpc.EncoderStub(cls.channel)

    @classmethod
    def tearDownClass(cls):
        cls.channel.close()
        assert cls.server.stop() == 0, cls.server.logs()

    def test_infer_matches_sentence_transformers(self):
        texts, emb = harness.golden()
        worst = 1.0
        for start in range(0, 256, 32):
            batch = texts[start:start + 32]
            r = self.seed.Infer(self.pb.InferRequest(texts=batch), timeout=60)
            self.assertEqual(r.num_texts, len(batch))
            self.assertEqual(r.embedding_dim, 384)
            got = np.array(r.embeddings, dtype=np.float32).reshape(len(batch), 384)
            for i in range(len(batch)):
                worst = min(worst, harness.cosine(got[i], emb[start + i]))
            self.assertGreater(r.latency_ms, 0)
        self.assertGreaterEqual(worst, 0.99999)

    def test_get_metrics_window(self):
        # The window is since start or the last ResetMetrics (our addition to the service).
        self.channel.unary_unary("/inference.InferenceService/ResetMetrics")(b"", timeout=10)
        m = self.seed.GetMetrics(self.pb.Empty(), timeout=10)
        self.assertEqual(m.count, 0)
        for _ in range(5):
            self.seed.Infer(self.pb.InferRequest(texts=["hello world"]), timeout=60)
        m = self.seed.GetMetrics(self.pb.Empty(), timeout=10)
        self.assertEqual(m.count, 5)
        self.assertGreater(m.avg_ms, 0)
        self.assertLessEqual(m.p50_ms, m.p95_ms)
        self.assertLessEqual(m.p95_ms, m.p99_ms)
        self.assertGreater(m.throughput_rps, 0)

    def test_infer_errors(self):
        with self.assertRaises(grpc.RpcError) as e:
            self.seed.Infer(self.pb.InferRequest(texts=[]), timeout=10)
        self.assertEqual(e.exception.code(), grpc.StatusCode.INVALID_ARGUMENT)
        with self.assertRaises(grpc.RpcError) as e:
            self.seed.Infer(self.pb.InferRequest(texts=["ok", ""]), timeout=10)
        self.assertEqual(e.exception.code(), grpc.StatusCode.INVALID_ARGUMENT)
        self.assertIn("text 1", e.exception.details())
        # Invalid UTF-8 inside a proto3 string, and bytes that are no protobuf at all: gRPC's own
        # parser rejects them before our code runs (gRPC 1.51's callback API answers
        # UNIMPLEMENTED for an unparsable request; others answer INTERNAL or INVALID_ARGUMENT);
        # the server keeps serving.
        parse_errors = (grpc.StatusCode.INVALID_ARGUMENT, grpc.StatusCode.INTERNAL,
                        grpc.StatusCode.UNIMPLEMENTED)
        bad = b"\x0a\x03\xff\xfe\xfd"
        with self.assertRaises(grpc.RpcError) as e:
            self.channel.unary_unary("/inference.InferenceService/Infer")(bad, timeout=10)
        self.assertIn(e.exception.code(), parse_errors)
        # Garbage bytes that are not a protobuf at all.
        with self.assertRaises(grpc.RpcError) as e:
            self.channel.unary_unary("/inference.InferenceService/Infer")(b"\xff\xff\xff", timeout=10)
        self.assertIn(e.exception.code(), parse_errors)
        r = self.seed.Infer(self.pb.InferRequest(texts=["still serving"]), timeout=30)
        self.assertEqual(r.num_texts, 1)

    def test_v1_embed_options(self):
        texts, emb = harness.golden()
        r = self.encoder.Embed(self.v1.EmbedRequest(texts=texts[:3]), timeout=30)
        self.assertEqual(r.dim, 384)
        self.assertEqual(len(r.embeddings), 3)
        for i in range(3):
            self.assertGreaterEqual(harness.cosine(r.embeddings[i].values, emb[i]), 0.99999)
        self.assertGreater(r.prompt_tokens, 6)
        r = self.encoder.Embed(self.v1.EmbedRequest(texts=texts[:2], dimensions=64), timeout=30)
        self.assertEqual(r.dim, 64)
        v = np.array(r.embeddings[0].values)
        self.assertAlmostEqual(float(np.linalg.norm(v)), 1.0, places=5)
        self.assertGreaterEqual(harness.cosine(v, emb[0][:64]), 0.99999)
        r = self.encoder.Embed(self.v1.EmbedRequest(texts=["a b c"], normalize=False), timeout=30)
        self.assertNotAlmostEqual(float(np.linalg.norm(r.embeddings[0].values)), 1.0, places=2)
        long_text = "word " * 600
        with self.assertRaises(grpc.RpcError) as e:
            self.encoder.Embed(self.v1.EmbedRequest(texts=[long_text], truncate=False), timeout=30)
        self.assertEqual(e.exception.code(), grpc.StatusCode.OUT_OF_RANGE)
        r = self.encoder.Embed(self.v1.EmbedRequest(texts=[long_text]), timeout=30)
        self.assertEqual(r.prompt_tokens, 256)

    def test_v1_score_rerank_tokenize_info(self):
        texts, emb = harness.golden()
        pairs = [self.v1.TextPair(a=texts[0], b=texts[1]), self.v1.TextPair(a=texts[2], b=texts[2])]
        r = self.encoder.Score(self.v1.ScoreRequest(pairs=pairs), timeout=30)
        self.assertAlmostEqual(r.scores[0], float(emb[0] @ emb[1]), places=4)
        self.assertAlmostEqual(r.scores[1], 1.0, places=4)
        docs = ["The capital of France is Paris.", "Bananas are yellow.", "Paris is in France."]
        r = self.encoder.Rerank(self.v1.RerankRequest(query="What is the capital of France?",
                                                      documents=docs, top_n=2,
                                                      return_documents=True), timeout=30)
        self.assertEqual(len(r.results), 2)
        self.assertEqual(r.results[0].index, 0)
        self.assertEqual(r.results[0].document, docs[0])
        self.assertGreaterEqual(r.results[0].score, r.results[1].score)
        t = self.encoder.Tokenize(self.v1.TokenizeRequest(texts=["Hello world!"]), timeout=10)
        self.assertEqual([x.text for x in t.texts[0].tokens], ["[CLS]", "hello", "world", "!", "[SEP]"])
        self.assertEqual([x.id for x in t.texts[0].tokens], [101, 7592, 2088, 999, 102])
        info = self.encoder.Info(self.v1.InfoRequest(), timeout=10)
        self.assertEqual(info.model_kind, "embedding")
        self.assertEqual(info.embedding_dim, 384)
        self.assertEqual(info.max_input_length, 256)
        self.assertEqual(info.precision, "fp32")

    def test_health_and_reflection(self):
        # grpc.health.v1.Health/Check with service "": response status field 1 = SERVING (1).
        check = self.channel.unary_unary("/grpc.health.v1.Health/Check")
        self.assertEqual(check(b"", timeout=10), b"\x08\x01")
        # Reflection: ListServices (field 7 of ServerReflectionRequest).
        for path in ("/grpc.reflection.v1alpha.ServerReflection/ServerReflectionInfo",):
            call = self.channel.stream_stream(path)
            reply = b"".join(call(iter([b"\x3a\x00"]), timeout=10))
            self.assertIn(b"inference.InferenceService", reply)
            self.assertIn(b"encserve.v1.Encoder", reply)


class ApiKey(unittest.TestCase):
    def test_grpc_requires_the_key(self):
        server = harness.Server("--threads", "1", "--api-key", "s3cret")
        try:
            pb, pb_grpc, _, _ = harness.stubs()
            with grpc.insecure_channel(server.grpc_target) as ch:
                stub = pb_grpc.InferenceServiceStub(ch)
                with self.assertRaises(grpc.RpcError) as e:
                    stub.Infer(pb.InferRequest(texts=["x"]), timeout=10)
                self.assertEqual(e.exception.code(), grpc.StatusCode.UNAUTHENTICATED)
                with self.assertRaises(grpc.RpcError) as e:
                    stub.Infer(pb.InferRequest(texts=["x"]), timeout=10,
                               metadata=[("authorization", "Bearer wrong")])
                self.assertEqual(e.exception.code(), grpc.StatusCode.UNAUTHENTICATED)
                r = stub.Infer(pb.InferRequest(texts=["x"]), timeout=10,
                               metadata=[("authorization", "Bearer s3cret")])
                self.assertEqual(r.num_texts, 1)
        finally:
            self.assertEqual(server.stop(), 0)


if __name__ == "__main__":
    unittest.main()
