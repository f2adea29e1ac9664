"""Following a request on the real server (docs/server.md, "Following a request"): ids given,
derived from traceparent or generated, Server-Timing and gRPC's server-timing trailer that
add up and agree with what the client measured, one access-log line per API request with the
tokens the reply reports, and CORS as configured."""
import json
import os
import tempfile
import time
import unittest

import grpc

import harness

TRACEPARENT = "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01"
ORIGIN = "https://app.example.com"


def timing(value):
    """{'tokenize': ms, 'queue': ms, 'infer': ms, 'total': ms} from a Server-Timing value."""
    out = {}
    for part in value.split(","):
        name, dur = part.strip().split(";dur=")
        out[name] = float(dur)
    return out


class Tracing(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        cls.log_dir = tempfile.mkdtemp(prefix="encserve-trace-")
        cls.access = os.path.join(cls.log_dir, "access.log")
        cls.server = harness.Server("--threads", "2", "--access-log", cls.access,
                                    "--cors-origin", ORIGIN)
        cls.pb, cls.pb_grpc, cls.v1, cls.v1_grpc = harness.stubs()
        cls.channel = grpc.insecure_channel(cls.server.grpc_target)
        cls.encoder = cls.v1_grpc.EncoderStub(cls.channel)
        cls.seed = cls.pb_grpc.InferenceServiceStub(cls.channel)

    @classmethod
    def tearDownClass(cls):
        cls.channel.close()
        assert cls.server.stop() == 0, cls.server.logs()

    def log_lines(self, want_ids, timeout=10):
        """The access-log lines of `want_ids`, waiting until each has been written."""
        end = time.time() + timeout
        while True:
            with open(self.access) as f:
                lines = [json.loads(line) for line in f]
            by_id = {}
            for j in lines:
                by_id.setdefault(j["id"], []).append(j)
            if all(i in by_id for i in want_ids) or time.time() > end:
                return by_id

    def test_http_ids_timing_and_log_agree(self):
        texts = ["the quick brown fox jumps over the lazy dog", "hello", "a third text"]
        t0 = time.perf_counter()
        status, headers, body = self.server.http("POST", "/v1/embeddings", {"input": texts},
                                                 {"X-Request-Id": "it-embed-1"})
        client_ms = (time.perf_counter() - t0) * 1e3
        self.assertEqual(status, 200, body)
        self.assertEqual(headers["x-request-id"], "it-embed-1")
        t = timing(headers["server-timing"])
        self.assertEqual(set(t), {"tokenize", "queue", "infer", "total"})
        self.assertGreater(t["infer"], 0)
        self.assertGreater(t["tokenize"], 0)
        parts = t["tokenize"] + t["queue"] + t["infer"]
        self.assertLessEqual(parts, t["total"] + 0.002, t)  # (each rounded to 1 us)
        self.assertLessEqual(t["total"], client_ms, (t, client_ms))
        usage = json.loads(body)["usage"]

        status, headers, _ = self.server.http("POST", "/embed", {"inputs": "x"},
                                              {"traceparent": TRACEPARENT})
        self.assertEqual(headers["x-request-id"], "4bf92f3577b34da6a3ce929d0e0e4736")
        status, headers, _ = self.server.http("POST", "/embed", {"inputs": ""},
                                              {"X-Request-Id": "it-empty"})
        self.assertEqual(status, 422)
        self.server.http("GET", "/health", headers={"X-Request-Id": "it-health"})
        self.server.http("GET", "/metrics", headers={"X-Request-Id": "it-metrics"})

        by_id = self.log_lines(["it-embed-1", "4bf92f3577b34da6a3ce929d0e0e4736", "it-empty"])
        self.assertEqual(len(by_id["it-embed-1"]), 1)
        line = by_id["it-embed-1"][0]
        self.assertEqual(line["route"], "http:/v1/embeddings")
        self.assertEqual(line["status"], 200)
        self.assertEqual(line["items"], 3)
        self.assertEqual(line["tokens"], usage["prompt_tokens"])
        self.assertAlmostEqual(line["infer_us"] / 1e3, t["infer"], delta=0.002)
        self.assertGreaterEqual(line["total_us"] / 1e3, t["total"] - 0.002)
        traced = by_id["4bf92f3577b34da6a3ce929d0e0e4736"][0]
        self.assertEqual(traced["traceparent"], TRACEPARENT)
        self.assertEqual(by_id["it-empty"][0]["status"], 422)
        self.assertEqual(by_id["it-empty"][0]["items"], 0)
        self.assertNotIn("it-health", by_id)   # probes and monitoring are not logged
        self.assertNotIn("it-metrics", by_id)

    def test_generated_ids_are_unique(self):
        ids = {self.server.http("POST", "/embed", {"inputs": "x"})[1]["x-request-id"]
               for _ in range(20)}
        self.assertEqual(len(ids), 20)
        for i in ids:
            self.assertRegex(i, r"^[0-9a-f]{32}$")

    def test_grpc_metadata_and_log(self):
        texts = ["one text", "and another one"]
        r, call = self.encoder.Embed.with_call(self.v1.EmbedRequest(texts=texts), timeout=30,
                                               metadata=[("x-request-id", "it-grpc-1")])
        self.assertEqual(dict(call.initial_metadata())["x-request-id"], "it-grpc-1")
        t = timing(dict(call.trailing_metadata())["server-timing"])
        self.assertGreater(t["infer"], 0)
        self.assertLessEqual(t["tokenize"] + t["queue"] + t["infer"], t["total"] + 0.002)
        # The seed's API too, and an error: the id from traceparent, the code in the log.
        with self.assertRaises(grpc.RpcError) as e:
            self.seed.Infer(self.pb.InferRequest(texts=[]), timeout=30,
                            metadata=[("traceparent", TRACEPARENT.replace("4736", "4737"))])
        self.assertEqual(dict(e.exception.initial_metadata())["x-request-id"],
                         "4bf92f3577b34da6a3ce929d0e0e4737")
        by_id = self.log_lines(["it-grpc-1", "4bf92f3577b34da6a3ce929d0e0e4737"])
        line = by_id["it-grpc-1"][0]
        self.assertEqual(line["route"], "grpc:encserve.v1.Embed")
        self.assertEqual(line["grpc_code"], 0)
        self.assertEqual(line["items"], 2)
        self.assertEqual(line["tokens"], r.prompt_tokens)
        bad = by_id["4bf92f3577b34da6a3ce929d0e0e4737"][0]
        self.assertEqual(bad["route"], "grpc:inference.Infer")
        self.assertEqual(bad["grpc_code"], grpc.StatusCode.INVALID_ARGUMENT.value[0])
        self.assertEqual(bad["status"], 422)

    def test_cors_for_the_configured_origin_only(self):
        status, headers, _ = self.server.http(
            "OPTIONS", "/embed", headers={"Origin": ORIGIN,
                                          "Access-Control-Request-Method": "POST",
                                          "Access-Control-Request-Headers": "content-type"})
        self.assertEqual(status, 204)
        self.assertEqual(headers["access-control-allow-origin"], ORIGIN)
        self.assertIn("POST", headers["access-control-allow-methods"])
        status, headers, _ = self.server.http("POST", "/embed", {"inputs": "x"},
                                              {"Origin": ORIGIN})
        self.assertEqual(headers["access-control-allow-origin"], ORIGIN)
        self.assertIn("Server-Timing", headers["access-control-expose-headers"])
        status, headers, _ = self.server.http("POST", "/embed", {"inputs": "x"},
                                              {"Origin": "https://elsewhere.example"})
        self.assertEqual(status, 200)
        self.assertNotIn("access-control-allow-origin", headers)

    def test_startup_log_names_the_access_log_and_origins(self):
        logs = self.server.logs()
        self.assertIn("access log: " + self.access, logs)
        self.assertIn("CORS for " + ORIGIN, logs)


class Defaults(unittest.TestCase):
    """Without configuration: ids and Server-Timing, no CORS, no access log."""

    def test_no_cors_no_log(self):
        server = harness.Server("--threads", "1")
        try:
            status, headers, _ = server.http("POST", "/embed", {"inputs": "x"},
                                             {"Origin": ORIGIN})
            self.assertEqual(status, 200)
            self.assertNotIn("access-control-allow-origin", headers)
            self.assertRegex(headers["x-request-id"], r"^[0-9a-f]{32}$")
            self.assertIn("infer;dur=", headers["server-timing"])
            status, _, _ = server.http("OPTIONS", "/embed",
                                       headers={"Origin": ORIGIN,
                                                "Access-Control-Request-Method": "POST"})
            self.assertEqual(status, 405)
            self.assertNotIn("access log", server.logs())
        finally:
            self.assertEqual(server.stop(), 0)

    def test_bad_origin_and_unwritable_log_stop_the_start(self):
        for args, want in ((["--cors-origin", "https://x.example/path"], "http.cors_origins"),
                           (["--access-log", "/nonexistent-dir/a.log"], "access log")):
            with self.assertRaises(RuntimeError) as e:
                harness.Server("--threads", "1", *args, timeout=60)
            self.assertIn(want, str(e.exception))


if __name__ == "__main__":
    unittest.main()
