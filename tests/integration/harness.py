"""Shared pieces of the server integration tests: start the real `encserve serve` on free
loopback ports, generated gRPC clients (from the seed's proto and ours), a raw HTTP client,
the sentence-transformers golden embeddings, and Prometheus text parsing."""
import http.client
import json
import os
import signal
import subprocess
import sys
import tempfile
import time

import numpy as np

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(os.path.dirname(HERE))
# CTest sets both; by hand the defaults are the usual build folder and model cache.
BINARY = os.environ.get("ENCSERVE_BIN") or os.path.join(ROOT, "build", "encserve")
MODEL_DIR = os.environ.get("ENCSERVE_MODEL_DIR") or os.path.expanduser(
    "~/.cache/encserve/models/all-MiniLM-L6-v2")
TEST_DATA = os.path.join(ROOT, "tests", "data")
DATA_DIR = os.environ.get("ENCSERVE_DATA_DIR") or os.path.join(ROOT, "..", "shared", "data")

_stubs = None


def stubs():
    """(seed_pb2, seed_grpc, v1_pb2, v1_grpc) generated at test time with grpcio-tools."""
    global _stubs
    if _stubs is None:
        from grpc_tools import protoc
        out = tempfile.mkdtemp(prefix="encserve-stubs-")
        for proto_dir, name in ((os.path.join(TEST_DATA), "seed_inference.proto"),
                                (os.path.join(ROOT, "proto"), "encserve.proto")):
            rc = protoc.main(["protoc", f"-I{proto_dir}", f"--python_out={out}",
                              f"--grpc_python_out={out}", os.path.join(proto_dir, name)])
            assert rc == 0, f"protoc failed for {name}"
        sys.path.insert(0, out)
        import seed_inference_pb2, seed_inference_pb2_grpc, encserve_pb2, encserve_pb2_grpc
        _stubs = (seed_inference_pb2, seed_inference_pb2_grpc, encserve_pb2, encserve_pb2_grpc)
    return _stubs


def golden():
    """(texts, embeddings [n, 384]) from sentence-transformers (tools/gen_embedding_golden.py)."""
    d = os.path.join(TEST_DATA, "minilm_golden")
    with open(os.path.join(d, "texts.jsonl"), encoding="utf-8") as f:
        texts = [json.loads(line) for line in f]
    emb = np.fromfile(os.path.join(d, "embeddings.f32"), dtype="<f4").reshape(len(texts), -1)
    return texts, emb


class Server:
    """`encserve serve` as a child process on free loopback ports."""

    def __init__(self, *args, config=None, model=None, timeout=180, preexec_fn=None):
        self.tmp = tempfile.mkdtemp(prefix="encserve-it-")
        ready = os.path.join(self.tmp, "ready.json")
        cmd = [BINARY, "serve", "--model", model or MODEL_DIR, "--host", "127.0.0.1", "--grpc-port", "0",
               "--http-port", "0", "--ready-file", ready, *args]
        if config is not None:
            path = os.path.join(self.tmp, "server.yaml")
            with open(path, "w") as f:
                f.write(config)
            cmd += ["--config", path]
        self.log_path = os.path.join(self.tmp, "server.log")
        self.log = open(self.log_path, "w")
        self.proc = subprocess.Popen(cmd, stdout=self.log, stderr=subprocess.STDOUT,
                                     preexec_fn=preexec_fn)
        t0 = time.time()
        while not os.path.exists(ready):
            if self.proc.poll() is not None:
                self.log.close()
                raise RuntimeError(f"server exited with {self.proc.returncode}:\n{self.logs()}")
            if time.time() - t0 > timeout:
                self.proc.kill()
                raise RuntimeError(f"server not ready after {timeout}s:\n{self.logs()}")
            time.sleep(0.05)
        with open(ready) as f:
            info = json.load(f)
        self.grpc_port, self.http_port = info["grpc_port"], info["http_port"]
        self.grpc_target = f"127.0.0.1:{self.grpc_port}"

    def logs(self):
        if not self.log.closed:
            self.log.flush()
        with open(self.log_path) as f:
            return f.read()

    def stop(self, sig=signal.SIGTERM, timeout=60):
        if self.proc.poll() is None:
            self.proc.send_signal(sig)
        try:
            return self.proc.wait(timeout)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            raise
        finally:
            self.log.close()

    def http(self, method, path, body=None, headers=None, timeout=60):
        """Returns (status, headers dict (lower-case), body bytes). body: bytes, str or JSON."""
        conn = http.client.HTTPConnection("127.0.0.1", self.http_port, timeout=timeout)
        if body is not None and not isinstance(body, (bytes, str)):
            body = json.dumps(body)
        if isinstance(body, str):
            body = body.encode()
        h = {"Content-Type": "application/json"}
        h.update(headers or {})
        conn.request(method, path, body=body, headers=h)
        r = conn.getresponse()
        data = r.read()
        conn.close()
        return r.status, {k.lower(): v for k, v in r.getheaders()}, data

    def metrics(self):
        status, _, body = self.http("GET", "/metrics")
        assert status == 200
        return parse_prometheus(body.decode())


def parse_prometheus(text):
    """{(name, frozenset(labels.items())): value}"""
    out = {}
    for line in text.splitlines():
        if not line or line.startswith("#"):
            continue
        name_labels, value = line.rsplit(" ", 1)
        labels = {}
        if "{" in name_labels:
            name, rest = name_labels.split("{", 1)
            for part in rest.rstrip("}").split('",'):
                if not part:
                    continue
                k, v = part.split("=", 1)
                labels[k.strip(",")] = v.strip('"')
        else:
            name = name_labels
        out[(name, frozenset(labels.items()))] = float(value)
    return out


def metric_sum(metrics, name, **labels):
    """Sum of a metric over all label sets that contain `labels`."""
    total = 0.0
    for (n, ls), v in metrics.items():
        if n == name and all((k, str(val)) in ls for k, val in labels.items()):
            total += v
    return total


def cosine(a, b):
    a, b = np.asarray(a, dtype=np.float64), np.asarray(b, dtype=np.float64)
    return float(a @ b / (np.linalg.norm(a) * np.linalg.norm(b)))
