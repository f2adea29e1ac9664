"""Long inputs on the real server (docs/http.md, "Long inputs"): with truncation on (the
default) a text over limits.max_text_chars is embedded, not refused, and gives the vector of
its first 256 tokens; truncation_direction "left" keeps the end (token ids as Hugging Face
`tokenizers` with direction="left"), on HTTP (TEI fields, Cohere's truncate "START") and gRPC."""
import json
import os
import unittest

import grpc
import numpy as np
from tokenizers import Tokenizer

import harness

# Words that are one token each in MiniLM's vocabulary (checked in setUpClass), so that a
# suffix of the text that starts at a word is also a suffix of its tokens.
WORDS = ("the cat sat on a mat while dogs ran over green hills and birds sang in tall trees "
         "near old stone walls under blue sky").split()


def text_of(n, offset=0):
    return " ".join(WORDS[(i * 7 + offset) % len(WORDS)] for i in range(n))


class LongInputs(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        cls.server = harness.Server("--threads", "2")
        cls.hf = Tokenizer.from_file(os.path.join(harness.MODEL_DIR, "tokenizer.json"))
        cls.hf.no_padding()
        cls.hf.no_truncation()

    @classmethod
    def tearDownClass(cls):
        cls.server.stop()

    def embed(self, body, path="/embed"):
        st, _, data = self.server.http("POST", path, body)
        self.assertEqual(st, 200, data[:300])
        return np.array(json.loads(data), dtype=np.float64)

    def assert_same_vector(self, a, b):
        cos = float(np.dot(a, b) / np.linalg.norm(a) / np.linalg.norm(b))
        self.assertGreater(cos, 0.99999)

    def test_words_are_single_tokens(self):
        for w in WORDS:
            self.assertEqual(len(self.hf.encode(w, add_special_tokens=False).ids), 1, w)

    def test_over_the_byte_limit_is_embedded_not_refused(self):
        big = text_of(40000)  # ~170 KB > limits.max_text_chars (100,000)
        self.assertGreater(len(big.encode()), 100000)
        v = self.embed({"inputs": big})[0]
        # Its first 256 tokens are the first 254 words.
        self.assert_same_vector(v, self.embed({"inputs": text_of(254)})[0])
        st, _, body = self.server.http("POST", "/embed", {"inputs": big, "truncate": False})
        self.assertEqual(st, 413, body)

    def test_left_keeps_the_end(self):
        text = text_of(600)
        left = self.embed({"inputs": text, "truncation_direction": "Left"})[0]  # TEI spelling
        right = self.embed({"inputs": text})[0]
        tail = " ".join(text.split()[-254:])
        self.assert_same_vector(left, self.embed({"inputs": tail})[0])
        self.assertLess(float(np.dot(left, right)), 0.999)
        # The same over the byte limit (cut near the end, then tokenised).
        big = text_of(40000, offset=3)
        left_big = self.embed({"inputs": big, "truncation_direction": "left"})[0]
        self.assert_same_vector(left_big,
                                self.embed({"inputs": " ".join(big.split()[-254:])})[0])
        # Cohere's truncate "START" and gRPC's TRUNCATION_DIRECTION_LEFT are the same.
        st, _, body = self.server.http("POST", "/v2/embed", {
            "texts": [text], "model": "m", "input_type": "search_document",
            "embedding_types": ["float"], "truncate": "START"})
        self.assertEqual(st, 200, body)
        self.assert_same_vector(np.array(json.loads(body)["embeddings"]["float"][0]), left)
        _, _, v1, v1g = harness.stubs()
        with grpc.insecure_channel(self.server.grpc_target) as ch:
            r = v1g.EncoderStub(ch).Embed(v1.EmbedRequest(
                texts=[text], truncation_direction=v1.TRUNCATION_DIRECTION_LEFT), timeout=30)
            self.assert_same_vector(np.array(r.embeddings[0].values), left)

    def test_tokenize_left_matches_hugging_face(self):
        with open(os.path.join(harness.DATA_DIR, "trec-dl19-bm25-top100.json"),
                  encoding="utf-8") as f:
            passages = [h["content"] for q in json.load(f)[:3] for h in q["hits"][:10]]
        hf = Tokenizer.from_file(os.path.join(harness.MODEL_DIR, "tokenizer.json"))
        hf.no_padding()
        hf.enable_truncation(max_length=256, direction="left")
        st, _, body = self.server.http("POST", "/tokenize", {
            "inputs": passages + [text_of(600)], "truncate": True,
            "truncation_direction": "left"})
        self.assertEqual(st, 200, body[:300])
        got = [[t["id"] for t in toks] for toks in json.loads(body)]
        want = [e.ids for e in hf.encode_batch(passages + [text_of(600)])]
        self.assertEqual(got, want)

    def test_bad_direction_is_a_clear_error(self):
        st, _, body = self.server.http("POST", "/embed", {
            "inputs": "a", "truncation_direction": "middle"})
        self.assertEqual(st, 400)
        self.assertIn("truncation_direction", json.loads(body)["error"])


if __name__ == "__main__":
    unittest.main()
