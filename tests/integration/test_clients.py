"""The API clients people already use, unchanged, against the real server (docs/http.md,
"Compatible APIs"): `openai` (embeddings.create), `huggingface_hub.InferenceClient`
(feature_extraction and sentence_similarity, which post to the root route) and `cohere`
(Client and ClientV2: rerank and embed), on the MiniLM bi-encoder and the tiny cross-encoder.
The packages are test-time only (scripts/setup.sh pins them): without one, its tests skip,
except under CI=true, where that is a failure.

The shapes, as the clients send and read them (and Jina's rerank, sent here by hand):
  huggingface_hub feature_extraction  POST / {"inputs": str, "normalize"?, "truncate"?}
                                      -> [[float, ...]]
  huggingface_hub sentence_similarity POST / {"inputs": {"source_sentence", "sentences"},
                                      "parameters": {}} -> [float, ...]
  cohere Client.rerank     POST /v1/rerank {"model", "query", "documents": [str | {"text"}],
                           "top_n"?, "return_documents"?} -> {"id", "results": [{"index",
                           "relevance_score", "document"?: {"text"}}], "meta": {"api_version",
                           "billed_units"}}
  cohere ClientV2.rerank   POST /v2/rerank {"model", "query", "documents": [str], "top_n"?,
                           "max_tokens_per_doc"?} -> {"id", "results": [{"index",
                           "relevance_score"}], "meta"}
  cohere Client.embed      POST /v1/embed {"texts", "model", "input_type", "embedding_types"?}
                           -> {"response_type": "embeddings_floats", "id", "embeddings":
                           [[float]], "texts", "meta"}, or with embedding_types
                           "embeddings_by_type" and "embeddings": {"float": [[float]]}
  cohere ClientV2.embed    POST /v2/embed {"model", "texts", "input_type", "embedding_types",
                           "output_dimension"?} -> {"id", "embeddings": {"float": [[float]]},
                           "texts", "meta"}
  Jina rerank              POST /v1/rerank {"model", "query", "documents": [str | {"text"}],
                           "top_n", "return_documents"} -> {"model", "usage": {"total_tokens"},
                           "results": [{"index", "relevance_score", "document": {"text"}}]}
"""
import base64
import importlib
import json
import math
import os
import unittest

import numpy as np

import harness

PINS = {"openai": "openai==3.63.0", "cohere": "cohere==7.3.1",
        "huggingface_hub": "huggingface_hub==2.4.0"}
QUERY = "how long do fleas live"
DOCS = ["a flea can live up to a year", "dogs bark at the mailman", "fleas live two to three months",
        "the capital of France is Paris"]
TINY = os.path.join(harness.TEST_DATA, "tiny-cross-encoder")


def need(module):
    """The client package, or a skip (a failure under CI=true) saying what to install."""
    try:
        return importlib.import_module(module)
    except ImportError as e:
        reason = f"{module} not installed (pip install {PINS[module]}; scripts/setup.sh): {e}"
        if os.environ.get("CI") == "true":
            raise AssertionError(f"{reason}; required under CI=true") from e
        raise unittest.SkipTest(reason)


def unit(v):
    v = np.asarray(v, dtype=np.float64)
    return v / np.linalg.norm(v)


class ClientTest(unittest.TestCase):
    SERVER_ARGS = ("--threads", "2")
    MODEL = None

    @classmethod
    def setUpClass(cls):
        cls.server = harness.Server(*cls.SERVER_ARGS, model=cls.MODEL)
        cls.url = f"http://127.0.0.1:{cls.server.http_port}"

    @classmethod
    def tearDownClass(cls):
        assert cls.server.stop() == 0, cls.server.logs()

    def open(self, client):
        """`client` entered as a context manager, and closed (its connections) after the test."""
        entered = client.__enter__()
        self.addCleanup(client.__exit__, None, None, None)
        return entered or client

    def post(self, path, body):
        status, _, data = self.server.http("POST", path, body)
        return status, json.loads(data) if data else None

    def api_error_status(self, call):
        """The HTTP status of the cohere ApiError that `call` raises."""
        cohere = need("cohere")
        with self.assertRaises(cohere.core.api_error.ApiError) as cm:
            call()
        return cm.exception.status_code


class BiEncoder(ClientTest):
    """all-MiniLM-L6-v2: the clients' vectors and scores against encserve's own /embed."""

    def embed(self, texts, **kw):
        status, out = self.post("/embed", {"inputs": texts, **kw})
        self.assertEqual(status, 200, out)
        return out

    def assert_same_vectors(self, got, want):
        self.assertEqual(len(got), len(want))
        for g, w in zip(got, want):
            self.assertEqual(len(g), len(w))
            self.assertGreaterEqual(harness.cosine(g, w), 0.99999)

    def test_openai_embeddings_float_base64_dimensions(self):
        openai = need("openai")
        client = self.open(openai.OpenAI(base_url=self.url + "/v1", api_key="any"))
        want = self.embed(DOCS[:3])
        r = client.embeddings.create(model="all-MiniLM-L6-v2", input=DOCS[:3],
                                     encoding_format="float")
        self.assertEqual(r.model, "all-MiniLM-L6-v2")
        self.assertEqual([d.index for d in r.data], [0, 1, 2])
        self.assert_same_vectors([d.embedding for d in r.data], want)
        self.assertGreater(r.usage.prompt_tokens, 3)
        # The client's default: base64, decoded by the client.
        r = client.embeddings.create(model="x", input=DOCS[1])
        self.assert_same_vectors([r.data[0].embedding], want[1:2])
        # Asked for base64, the client leaves the decoding to the caller.
        r = client.embeddings.create(model="x", input=DOCS[:2], dimensions=64,
                                     encoding_format="base64")
        got = [np.frombuffer(base64.b64decode(d.embedding), dtype="<f4") for d in r.data]
        self.assert_same_vectors(got, self.embed(DOCS[:2], dimensions=64))

    def test_huggingface_feature_extraction(self):
        hub = need("huggingface_hub")
        client = self.open(hub.InferenceClient(base_url=self.url))
        for text in (QUERY, DOCS[2]):
            got = client.feature_extraction(text)
            self.assertEqual(got.shape, (1, 384))
            self.assert_same_vectors(got.tolist(), self.embed([text]))
        got = client.feature_extraction(QUERY, normalize=True, truncate=True)
        self.assert_same_vectors(got.tolist(), self.embed([QUERY]))

    def test_huggingface_sentence_similarity(self):
        hub = need("huggingface_hub")
        client = self.open(hub.InferenceClient(base_url=self.url))
        got = client.sentence_similarity(QUERY, other_sentences=DOCS)
        self.assertEqual(len(got), len(DOCS))
        vecs = self.embed([QUERY] + DOCS)
        for score, doc_vec in zip(got, vecs[1:]):
            self.assertAlmostEqual(score, float(unit(vecs[0]) @ unit(doc_vec)), delta=1e-5)
        status, same = self.post("/similarity", {"inputs": {"source_sentence": QUERY,
                                                            "sentences": DOCS}})
        self.assertEqual(status, 200, same)
        np.testing.assert_allclose(got, same, atol=1e-6)

    def expected_cosines(self):
        vecs = self.embed([QUERY] + DOCS)
        return [float(unit(vecs[0]) @ unit(v)) for v in vecs[1:]]

    def test_cohere_v2_rerank_is_cosine(self):
        cohere = need("cohere")
        co = self.open(cohere.ClientV2(api_key="any", base_url=self.url))
        want = self.expected_cosines()
        r = co.rerank(model="rerank-v3.5", query=QUERY, documents=DOCS, top_n=2)
        order = sorted(range(len(DOCS)), key=lambda i: -want[i])
        self.assertEqual([x.index for x in r.results], order[:2])
        for x in r.results:
            self.assertAlmostEqual(x.relevance_score, want[x.index], delta=1e-5)
        self.assertEqual(r.meta.api_version.version, "2")
        self.assertGreater(r.meta.billed_units.input_tokens, 5)
        self.assertEqual(len(r.id), 36)
        # All documents without top_n; a token budget at or above the model's limit is served.
        r = co.rerank(model="m", query=QUERY, documents=DOCS, max_tokens_per_doc=4096)
        self.assertEqual([x.index for x in r.results], order)

    def test_cohere_v1_rerank_with_documents(self):
        cohere = need("cohere")
        co = self.open(cohere.Client(api_key="any", base_url=self.url))
        want = self.expected_cosines()
        docs = [DOCS[0], {"text": DOCS[1]}, DOCS[2], {"text": DOCS[3]}]
        r = co.rerank(model="rerank-english-v3.0", query=QUERY, documents=docs,
                      return_documents=True)
        self.assertEqual(len(r.results), 4)
        for x in r.results:
            self.assertEqual(x.document.text, DOCS[x.index])
            self.assertAlmostEqual(x.relevance_score, want[x.index], delta=1e-5)
        scores = [x.relevance_score for x in r.results]
        self.assertEqual(scores, sorted(scores, reverse=True))
        r = co.rerank(query=QUERY, documents=DOCS, top_n=1)
        self.assertIsNone(r.results[0].document)
        self.assertEqual(r.meta.api_version.version, "1")

    def test_cohere_embed_v1_and_v2(self):
        cohere = need("cohere")
        want = self.embed(DOCS)
        v1 = self.open(cohere.Client(api_key="any", base_url=self.url))
        r = v1.embed(texts=DOCS, model="embed-english-v3.0", input_type="search_document")
        self.assertEqual(r.response_type, "embeddings_floats")
        self.assert_same_vectors(r.embeddings, want)
        self.assertEqual(r.texts, DOCS)
        r = v1.embed(texts=DOCS[:2], model="m", input_type="search_query",
                     embedding_types=["float"])
        self.assertEqual(r.response_type, "embeddings_by_type")
        self.assert_same_vectors(r.embeddings.float_, want[:2])
        v2 = self.open(cohere.ClientV2(api_key="any", base_url=self.url))
        r = v2.embed(model="embed-v4.0", texts=DOCS, input_type="classification",
                     embedding_types=["float"])
        self.assert_same_vectors(r.embeddings.float_, want)
        self.assertEqual(r.meta.api_version.version, "2")
        self.assertGreater(r.meta.billed_units.input_tokens, 10)
        r = v2.embed(model="m", texts=DOCS[:1], input_type="clustering",
                     embedding_types=["float"], output_dimension=64)
        self.assert_same_vectors(r.embeddings.float_, self.embed(DOCS[:1], dimensions=64))

    def test_cohere_errors(self):
        cohere = need("cohere")
        co = self.open(cohere.ClientV2(api_key="any", base_url=self.url))
        # Options encserve cannot honour: 422, not ignored.
        self.assertEqual(self.api_error_status(lambda: co.rerank(
            model="m", query=QUERY, documents=DOCS, max_tokens_per_doc=8)), 422)
        self.assertEqual(self.api_error_status(lambda: co.embed(
            model="m", texts=DOCS, input_type="search_query", embedding_types=["int8"])), 422)
        # The Service's checks: no documents, an empty text.
        self.assertEqual(self.api_error_status(lambda: co.rerank(
            model="m", query=QUERY, documents=[])), 422)
        self.assertEqual(self.api_error_status(lambda: co.embed(
            model="m", texts=[""], input_type="search_query", embedding_types=["float"])), 422)
        # Malformed bodies (no client sends them): 400 with the project's error body.
        for path, body in (("/v1/rerank", {"documents": DOCS}),
                           ("/v2/rerank", {"query": QUERY, "documents": [3]}),
                           ("/v1/embed", {"texts": "one"}),
                           ("/v2/embed", {"texts": ["a"], "embedding_types": "float"})):
            status, out = self.post(path, body)
            self.assertEqual((status, out["type"]), (400, "invalid_request"), (path, out))
            self.assertIsInstance(out["error"], str)

    def test_jina_rerank_shape(self):
        want = self.expected_cosines()
        status, out = self.post("/v1/rerank", {
            "model": "jina-reranker-v2-base-multilingual", "query": QUERY,
            "documents": [DOCS[0], {"text": DOCS[1]}, DOCS[2], DOCS[3]], "top_n": 3,
            "return_documents": True})
        self.assertEqual(status, 200, out)
        self.assertEqual(out["model"], "jina-reranker-v2-base-multilingual")
        self.assertGreater(out["usage"]["total_tokens"], 5)
        self.assertEqual(len(out["results"]), 3)
        for x in out["results"]:
            self.assertEqual(x["document"], {"text": DOCS[x["index"]]})
            self.assertAlmostEqual(x["relevance_score"], want[x["index"]], delta=1e-5)

    def test_invocations_is_the_root(self):
        status, out = self.post("/invocations", {"inputs": [QUERY]})
        self.assertEqual(status, 200, out)
        self.assert_same_vectors(out, self.embed([QUERY]))


class CrossEncoder(ClientTest):
    """The tiny random cross-encoder: rerank scores are sigmoid(logit) from transformers."""
    SERVER_ARGS = ("--threads", "1")
    MODEL = TINY

    @classmethod
    def setUpClass(cls):
        super().setUpClass()
        with open(os.path.join(TINY, "expected.jsonl")) as f:
            rows = [json.loads(line) for line in f]
        cls.query = rows[0]["query"]
        group = [r for r in rows if r["query"] == cls.query]
        cls.docs = [r["passage"] for r in group]
        cls.want = [1 / (1 + math.exp(-r["logits"][0])) for r in group]

    def check(self, results):
        self.assertEqual(len(results), len(self.docs))
        order = sorted(range(len(self.docs)), key=lambda i: -self.want[i])
        self.assertEqual([x.index for x in results], order)
        for x in results:
            self.assertAlmostEqual(x.relevance_score, self.want[x.index], delta=1e-4)

    def test_cohere_rerank_v1_and_v2(self):
        cohere = need("cohere")
        self.assertGreaterEqual(len(self.docs), 2)
        r = self.open(cohere.ClientV2(api_key="any", base_url=self.url)).rerank(
            model="m", query=self.query, documents=self.docs)
        self.check(r.results)
        r = self.open(cohere.Client(api_key="any", base_url=self.url)).rerank(
            query=self.query, documents=self.docs, return_documents=True)
        self.check(r.results)
        self.assertEqual([x.document.text for x in r.results],
                         [self.docs[x.index] for x in r.results])

    def test_root_is_rerank_and_embed_is_refused(self):
        status, out = self.post("/", {"query": self.query, "texts": self.docs})
        self.assertEqual(status, 200, out)
        order = sorted(range(len(self.docs)), key=lambda i: -self.want[i])
        self.assertEqual([x["index"] for x in out], order)
        cohere = need("cohere")
        co = self.open(cohere.ClientV2(api_key="any", base_url=self.url))
        self.assertEqual(self.api_error_status(lambda: co.embed(
            model="m", texts=["x"], input_type="search_query", embedding_types=["float"])), 422)


if __name__ == "__main__":
    unittest.main()
