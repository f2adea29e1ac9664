"""TLS on both front ends with a self-signed certificate made at test time (openssl)."""
import http.client
import json
import os
import ssl
import subprocess
import tempfile
import unittest

import grpc

import harness


class Tls(unittest.TestCase):
    def test_grpc_and_https(self):
        d = tempfile.mkdtemp(prefix="encserve-tls-")
        cert, key = os.path.join(d, "cert.pem"), os.path.join(d, "key.pem")
        subprocess.run(["openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "1",
                        "-subj", "/CN=localhost", "-addext", "subjectAltName=DNS:localhost,IP:127.0.0.1",
                        "-keyout", key, "-out", cert], check=True, capture_output=True)
        server = harness.Server("--threads", "1",
                                config=f"tls:\n  cert_file: {cert}\n  key_file: {key}\n")
        try:
            pb, pb_grpc, _, _ = harness.stubs()
            with open(cert, "rb") as f:
                creds = grpc.ssl_channel_credentials(root_certificates=f.read())
            with grpc.secure_channel(f"localhost:{server.grpc_port}", creds) as ch:
                r = pb_grpc.InferenceServiceStub(ch).Infer(pb.InferRequest(texts=["over tls"]),
                                                          timeout=30)
                self.assertEqual((r.num_texts, r.embedding_dim), (1, 384))
            ctx = ssl.create_default_context(cafile=cert)
            conn = http.client.HTTPSConnection("localhost", server.http_port, context=ctx, timeout=30)
            conn.request("POST", "/embed", body=json.dumps({"inputs": ["over https"]}),
                         headers={"Content-Type": "application/json"})
            resp = conn.getresponse()
            self.assertEqual(resp.status, 200)
            self.assertEqual(len(json.loads(resp.read())[0]), 384)
            conn.close()
            # Plain HTTP to the TLS port fails cleanly and the server keeps serving.
            with self.assertRaises(Exception):
                server.http("GET", "/health", timeout=5)
        finally:
            self.assertEqual(server.stop(), 0, server.logs())

    def test_bad_certificate_paths_are_clear_errors(self):
        with self.assertRaises(RuntimeError) as e:
            harness.Server("--threads", "1",
                           config="tls:\n  cert_file: /nonexistent.pem\n  key_file: /nonexistent.key\n")
        self.assertIn("nonexistent", str(e.exception))


if __name__ == "__main__":
    unittest.main()
