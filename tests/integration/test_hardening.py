"""Hostile and unlucky clients against the real server (issue 17's defects, each one a test):
unparsable gRPC messages, a second server on a taken port, oversize request heads, /tokenize
replies bounded, descriptor exhaustion survived by both listeners, SIGHUP drains, requests
still queued when the grace period ends get an answer, the gRPC API key check."""
import os
import resource
import signal
import socket
import subprocess
import threading
import time
import unittest

import grpc

import harness


def null_server(*args, **kw):
    return harness.Server("--backend", "null", "--threads", "1", *args, **kw)


class GrpcInvalidMessages(unittest.TestCase):
    def test_unparsable_requests_get_invalid_argument_and_are_counted(self):
        server = null_server()
        try:
            methods = ["/encserve.v1.Encoder/Embed", "/encserve.v1.Encoder/Score",
                       "/encserve.v1.Encoder/Rerank", "/encserve.v1.Encoder/Tokenize",
                       "/encserve.v1.Encoder/Info", "/inference.InferenceService/Infer",
                       "/inference.InferenceService/GetMetrics"]
            before = len(server.logs().splitlines())
            with grpc.insecure_channel(server.grpc_target) as ch:
                for m in methods:
                    call = ch.unary_unary(m)  # raw bytes in and out
                    for _ in range(20):
                        with self.assertRaises(grpc.RpcError) as e:
                            call(b"\xff\xff\xff\xff\x0f garbage", timeout=10)
                        self.assertEqual(e.exception.code(), grpc.StatusCode.INVALID_ARGUMENT, m)
                        self.assertIn("not a valid", e.exception.details())
                # A valid message still works on the same channel.
                _, _, v1, v1_grpc = harness.stubs()
                r = v1_grpc.EncoderStub(ch).Embed(v1.EmbedRequest(texts=["ok"]), timeout=10)
                self.assertEqual(r.dim, 384)
            m = server.metrics()
            self.assertEqual(harness.metric_sum(m, "encserve_requests_total",
                                                route="grpc:encserve.v1.Embed", code="422"), 20)
            # No log line per bad message (log flooding).
            self.assertLess(len(server.logs().splitlines()) - before, 5, server.logs())
        finally:
            self.assertEqual(server.stop(), 0)


class PortInUse(unittest.TestCase):
    def test_second_server_on_the_grpc_port_refuses_to_start(self):
        first = null_server()
        try:
            t0 = time.time()
            p = subprocess.run([harness.BINARY, "serve", "--model", harness.MODEL_DIR,
                                "--backend", "null", "--host", "127.0.0.1",
                                "--grpc-port", str(first.grpc_port), "--http-port", "0"],
                               capture_output=True, text=True, timeout=120)
            self.assertNotEqual(p.returncode, 0)
            self.assertIn("gRPC", p.stderr)
            self.assertIn(str(first.grpc_port), p.stderr)
            self.assertLess(time.time() - t0, 60)
        finally:
            self.assertEqual(first.stop(), 0)


class HttpLimits(unittest.TestCase):
    def test_oversize_head_gets_431_and_tokenize_reply_is_bounded(self):
        server = null_server(config="limits:\n  max_tokenize_tokens: 1000\n")
        try:
            status, _, body = server.http("POST", "/embed", {"inputs": "x"},
                                          headers={"X-Big": "a" * 100000})
            self.assertEqual(status, 431, body)
            status, _, body = server.http("POST", "/tokenize", {"inputs": ["word " * 600] * 2})
            self.assertEqual(status, 413, body)
            self.assertIn("max_tokenize_tokens", body.decode())
            status, _, _ = server.http("POST", "/tokenize", {"inputs": ["word " * 100] * 2})
            self.assertEqual(status, 200)
        finally:
            self.assertEqual(server.stop(), 0)

    def test_slow_header_is_cut_off(self):
        server = null_server(config="http:\n  header_timeout_ms: 1000\n")
        try:
            s = socket.create_connection(("127.0.0.1", server.http_port))
            s.sendall(b"POST /embed HTTP/1.1\r\nHost: x\r\n")  # and never the rest
            s.settimeout(10)
            t0 = time.time()
            data = s.recv(100)  # closed by the server
            self.assertEqual(data, b"")
            self.assertLess(time.time() - t0, 5)
            s.close()
        finally:
            self.assertEqual(server.stop(), 0)


class DescriptorExhaustion(unittest.TestCase):
    def test_both_listeners_accept_again_after_running_out(self):
        limit = 200

        def lower():
            resource.setrlimit(resource.RLIMIT_NOFILE, (limit, limit))

        server = harness.Server("--backend", "null", "--threads", "1", preexec_fn=lower)
        idle = []
        try:
            for _ in range(limit + 50):  # more than the server can hold
                try:
                    idle.append(socket.create_connection(("127.0.0.1", server.http_port),
                                                         timeout=2))
                except OSError:
                    break
            time.sleep(1.0)
            # Not spinning: little CPU over a second at the limit.
            cpu0 = cpu_seconds(server.proc.pid)
            time.sleep(1.0)
            self.assertLess(cpu_seconds(server.proc.pid) - cpu0, 0.2)
            logs = server.logs()
            self.assertIn("descriptors nearly exhausted", logs)
            self.assertLessEqual(logs.count("descriptors nearly exhausted"), 2, logs)
            for s in idle:
                s.close()
            idle = []
            time.sleep(0.5)
            status, _, _ = server.http("POST", "/embed", {"inputs": "back"}, timeout=5)
            self.assertEqual(status, 200)
            _, _, v1, v1_grpc = harness.stubs()
            with grpc.insecure_channel(server.grpc_target) as ch:
                r = v1_grpc.EncoderStub(ch).Embed(v1.EmbedRequest(texts=["back"]), timeout=5)
                self.assertEqual(r.dim, 384)
        finally:
            for s in idle:
                s.close()
            self.assertEqual(server.stop(), 0)


def cpu_seconds(pid):
    with open(f"/proc/{pid}/stat") as f:
        fields = f.read().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


class Shutdown(unittest.TestCase):
    def test_sighup_drains(self):
        server = null_server()
        self.assertEqual(server.stop(sig=signal.SIGHUP), 0)
        self.assertIn("SIGHUP", server.logs())

    def test_queued_requests_get_an_answer_when_the_grace_ends(self):
        # A slow backend (every batch hangs 400 ms) and a 300 ms grace: requests queued
        # behind the running batch cannot finish; they must still get a reply (503).
        config = ("backend: fault\nfault:\n  inner: \"null\"\n  hang_every: 1\n  hang_ms: 400\n"
                  "shutdown:\n  grace_ms: 300\nbatching:\n  max_batch_size: 1\n")
        server = harness.Server("--threads", "1", "--queue-budget-ms", "0", config=config)
        results = []
        lock = threading.Lock()

        def client(i):
            try:
                status, _, _ = server.http("POST", "/embed", {"inputs": f"text {i}"}, timeout=30)
            except Exception as e:  # noqa: BLE001 - a lost connection is the failure
                status = repr(e)
            with lock:
                results.append(status)

        threads = [threading.Thread(target=client, args=(i,)) for i in range(6)]
        for t in threads:
            t.start()
        time.sleep(0.3)
        server.proc.send_signal(signal.SIGTERM)
        for t in threads:
            t.join()
        self.assertEqual(server.stop(), 0)
        self.assertEqual(len(results), 6)
        for r in results:
            self.assertIn(r, (200, 503), results)
        self.assertIn(503, results)


class GrpcApiKey(unittest.TestCase):
    def test_key_checked(self):
        server = null_server("--api-key", "s3cret")
        try:
            _, _, v1, v1_grpc = harness.stubs()
            with grpc.insecure_channel(server.grpc_target) as ch:
                stub = v1_grpc.EncoderStub(ch)
                for md in ([], [("authorization", "Bearer s3creX")],
                           [("authorization", "Bearer s3cret2")]):
                    with self.assertRaises(grpc.RpcError) as e:
                        stub.Embed(v1.EmbedRequest(texts=["a"]), metadata=md, timeout=5)
                    self.assertEqual(e.exception.code(), grpc.StatusCode.UNAUTHENTICATED)
                r = stub.Embed(v1.EmbedRequest(texts=["a"]),
                               metadata=[("authorization", "Bearer s3cret")], timeout=5)
                self.assertEqual(r.dim, 384)
        finally:
            self.assertEqual(server.stop(), 0)


if __name__ == "__main__":
    unittest.main()
