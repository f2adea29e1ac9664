"""Request priorities on the real server (docs/server.md, "Priorities"): the HTTP field
"priority" and header X-Priority, the gRPC field and x-priority metadata are accepted (any case)
on every queued route and give the same vectors; bad values are refused with a clear error; and
an interactive query sent while eight batch-priority clients have their work queued is answered
within the batch running then and its own (by the fair order alone it would wait for a turn of
each client), over HTTP and gRPC."""
import json
import threading
import time
import unittest

import grpc

import harness


class Priority(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        # (No queue-time budget: the eight batch clients' work all queues instead of being
        # refused.)
        # Full batches (no slice cap), so that a batch or two cannot end between the query's
        # answer and the reading of /metrics; no starvation bound within the test (under the
        # sanitizers the batch work waits over the 2-s default before the query comes, and
        # then rightly goes first); a request timeout the sanitizers' speed allows.
        cls.server = harness.Server(
            "--threads", "2", "--queue-budget-ms", "0",
            config="priority:\n  batch_slice_ms: 0\n  batch_max_wait_ms: 3600000\n"
                   "limits:\n  request_timeout_ms: 600000\n")
        cls.pb, cls.pbg, cls.v1, cls.v1g = harness.stubs()
        cls.channel = grpc.insecure_channel(cls.server.grpc_target)
        cls.stub = cls.v1g.EncoderStub(cls.channel)
        with open(harness.DATA_DIR + "/trec-dl19-bm25-top100.json", encoding="utf-8") as f:
            hits = [h["content"] for q in json.load(f) for h in q["hits"]]
        cls.passages = [p for p in dict.fromkeys(hits) if len(p) > 400][:256]

    @classmethod
    def tearDownClass(cls):
        cls.channel.close()
        cls.server.stop()

    def post(self, path, body, headers=None, status=200):
        st, _, data = self.server.http("POST", path, body, headers=headers)
        self.assertEqual(st, status, data[:300])
        return json.loads(data)

    def test_http_field_and_header_give_the_same_vectors(self):
        base = self.post("/embed", {"inputs": ["how long do fleas live"]})
        for body, headers in (({"priority": "batch"}, None), ({"priority": "Interactive"}, None),
                              ({}, {"X-Priority": "BATCH"}),
                              ({"priority": "interactive"}, {"X-Priority": "batch"})):
            got = self.post("/embed", {"inputs": ["how long do fleas live"], **body}, headers)
            self.assertEqual(got, base, (body, headers))
        r = self.post("/v1/embeddings", {"input": "fleas", "priority": "batch"})
        self.assertEqual(len(r["data"]), 1)
        r = self.post("/v2/rerank", {"model": "m", "query": "fleas", "documents": ["a", "b"],
                                     "priority": "batch"})
        self.assertEqual(len(r["results"]), 2)
        for cohere in (0, 7):  # Cohere's integer priority: 0 interactive, above batch
            r = self.post("/v2/embed", {"texts": ["how long do fleas live"], "priority": cohere,
                                        "input_type": "search_query"})
            got = r["embeddings"]["float"][0]
            self.assertLess(max(abs(x - y) for x, y in zip(got, base[0])), 1e-6)
        r = self.post("/similarity", {"inputs": {"source_sentence": "a", "sentences": ["b"]},
                                      "priority": "batch"})
        self.assertEqual(len(r), 1)

    def test_http_bad_values_are_refused(self):
        st, _, data = self.server.http("POST", "/embed", {"inputs": "x", "priority": "urgent"})
        self.assertIn(st, (400, 422), data)
        self.assertIn("priority must be", json.loads(data)["error"])
        st, _, data = self.server.http("POST", "/embed", {"inputs": "x", "priority": -1})
        self.assertIn(st, (400, 422), data)
        st, _, data = self.server.http("POST", "/embed", {"inputs": "x", "priority": 1.5})
        self.assertIn(st, (400, 422), data)
        st, _, data = self.server.http("POST", "/embed", {"inputs": "x"},
                                       headers={"X-Priority": "high"})
        self.assertEqual(st, 400, data)
        self.assertIn("X-Priority must be", json.loads(data)["error"])

    def test_grpc_field_and_metadata(self):
        base = self.stub.Embed(self.v1.EmbedRequest(texts=["fleas"]), timeout=30)
        r = self.stub.Embed(self.v1.EmbedRequest(texts=["fleas"], priority=self.v1.PRIORITY_BATCH),
                            timeout=30)
        self.assertEqual(list(r.embeddings[0].values), list(base.embeddings[0].values))
        r = self.stub.Embed(self.v1.EmbedRequest(texts=["fleas"]), timeout=30,
                            metadata=[("x-priority", "batch")])
        self.assertEqual(list(r.embeddings[0].values), list(base.embeddings[0].values))
        r = self.stub.Rerank(self.v1.RerankRequest(query="q", documents=["a"],
                                                   priority=self.v1.PRIORITY_BATCH), timeout=30)
        self.assertEqual(len(r.results), 1)
        with self.assertRaises(grpc.RpcError) as e:
            self.stub.Embed(self.v1.EmbedRequest(texts=["fleas"]), timeout=30,
                            metadata=[("x-priority", "soon")])
        self.assertEqual(e.exception.code(), grpc.StatusCode.INVALID_ARGUMENT)
        self.assertIn("x-priority", e.exception.details())

    def metric(self, name):
        m = harness.parse_prometheus(self.server.http("GET", "/metrics")[2].decode())
        return harness.metric_sum(m, name)

    def batch_clients_then_query(self, send_batch, send_query):
        """Eight clients (connections) each send one 32-passage batch-priority request (one
        batch's worth: a turn of the fair order); once most is queued, the query. Returns the batches the server ran between the query's send
        and its answer, and the batch requests' outcomes. By the fair order alone the query
        would wait for each of the eight clients' first turn (a batch each)."""
        outcomes = []
        threads = [threading.Thread(target=lambda k=k: outcomes.append(send_batch(k)))
                   for k in range(8)]
        for th in threads:
            th.start()
        deadline = time.monotonic() + 60
        while self.metric("encserve_queue_items") < 180 and time.monotonic() < deadline:
            time.sleep(0.005)
        before = self.metric("encserve_inference_seconds_count")
        send_query()
        ran = self.metric("encserve_inference_seconds_count") - before
        for th in threads:
            th.join(300)
        return ran, outcomes

    def test_interactive_query_goes_before_queued_batch_work_http(self):
        def batch(k):
            st, _, _ = self.server.http("POST", "/embed", {
                "inputs": self.passages[k * 32:(k + 1) * 32], "priority": "batch"}, timeout=300)
            return st

        ran, outcomes = self.batch_clients_then_query(
            batch, lambda: self.post("/embed", {"inputs": ["how long do fleas live"]}))
        self.assertLessEqual(ran, 3, "batches run before the interactive query was answered")
        self.assertEqual(sorted(outcomes), [200] * 8)

    def test_interactive_query_goes_before_queued_batch_work_grpc(self):
        def batch(k):
            with grpc.insecure_channel(self.server.grpc_target,
                                       options=[("grpc.use_local_subchannel_pool", 1)]) as ch:
                r = self.v1g.EncoderStub(ch).Embed(
                    self.v1.EmbedRequest(texts=self.passages[k * 32:(k + 1) * 32]), timeout=300,
                    metadata=[("x-priority", "batch")])
                return len(r.embeddings)

        ran, outcomes = self.batch_clients_then_query(
            batch, lambda: self.stub.Embed(self.v1.EmbedRequest(
                texts=["fleas"], priority=self.v1.PRIORITY_INTERACTIVE), timeout=60))
        self.assertLessEqual(ran, 3, "batches run before the interactive query was answered")
        self.assertEqual(sorted(outcomes), [32] * 8)


if __name__ == "__main__":
    unittest.main()
