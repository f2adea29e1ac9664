#!/usr/bin/env python3
"""Writes the seed corpora of the fuzz targets into fuzz/corpus/<target>/ from real inputs.

    python3 fuzz/make_seeds.py [--model DIR]

Sources: tests/data/tokenizer_edge_cases.json (tokenizer texts and pairs), the MiniLM folder
(config files; --model, default $ENCSERVE_MODEL_DIR or ~/.cache/encserve/models/all-MiniLM-L6-v2),
tests/data/tiny-cross-encoder (config, safetensors header), configs/server.yaml,
configs/experiments/*.yaml, HTTP requests for every route, and serialized protobuf requests for
every gRPC method (Python classes generated with grpcio-tools from proto/, as
tests/integration/harness.py does). Each file's layout is the one its target's header comment
describes (e.g. a leading byte that picks a route or method). Re-running rewrites the folders.
"""
import argparse
import glob
import hashlib
import json
import os
import shutil
import struct
import sys
import tempfile

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
CORPUS = os.path.join(ROOT, "fuzz", "corpus")
SEP = b"\n%%\n"  # model_config / experiment_config part separator

# Same order as kRoutes in fuzz/http_json_fuzz.cc and kMethods in fuzz/grpc_fuzz.cc.
JSON_ROUTES = ["/embed", "/v1/embeddings", "/rerank", "/similarity", "/score", "/tokenize", "/",
               "/v1/rerank", "/v2/rerank", "/v1/embed", "/v2/embed"]
GRPC_METHODS = ["Embed", "Score", "Rerank", "Tokenize", "Info", "Infer", "GetMetrics",
                "ResetMetrics"]


def write(target, name, data):
    d = os.path.join(CORPUS, target)
    os.makedirs(d, exist_ok=True)
    if isinstance(data, str):
        data = data.encode("utf-8")
    with open(os.path.join(d, name), "wb") as f:
        f.write(data)


def reset(target):
    shutil.rmtree(os.path.join(CORPUS, target), ignore_errors=True)


def tokenizer_seeds():
    # [flags][max_length][split] text: flags bits 0-1 tokenizer, bit 2 pair, bit 3 no truncation.
    reset("tokenizer")
    cases = json.load(open(os.path.join(ROOT, "tests", "data", "tokenizer_edge_cases.json")))
    for i, c in enumerate(cases["singles"]):
        text = (c["text"] * c.get("repeat_text", 1)).encode("utf-8")[:2000]
        flags, max_len = i % 4, [8, 16, 64, 255][i % 4]
        write("tokenizer", f"single_{c['name']}", bytes([flags, max_len, 0]) + text)
    for i, c in enumerate(cases["pairs"]):
        a = (c["a"] * c.get("repeat_a", 1)).encode("utf-8")[:1000]
        b = (c["b"] * c.get("repeat_b", 1)).encode("utf-8")[:1000]
        split = round(255 * len(a) / max(1, len(a) + len(b)))
        # The split byte cuts at len(text) * split // 255: make it land exactly after a.
        while split < 255 and (len(a) + len(b)) * split // 255 < len(a):
            split += 1
        flags = 4 | (i % 4) | (8 if i % 3 == 0 else 0)
        write("tokenizer", f"pair_{c['name']}", bytes([flags, 32, split]) + a + b)
    write("tokenizer", "invalid_utf8", bytes([0, 16, 0]) + b"caf\xc3 \xed\xa0\x80 \xf4\x90\x80\x80")


def safetensors_file(tensors, metadata=True):
    """tensors: [(name, dtype, shape, bytes)] -> a .safetensors file."""
    header, data = {}, b""
    if metadata:
        header["__metadata__"] = {"format": "pt"}
    for name, dtype, shape, raw in tensors:
        header[name] = {"dtype": dtype, "shape": shape, "data_offsets": [len(data), len(data) + len(raw)]}
        data += raw
    h = json.dumps(header, separators=(",", ":")).encode()
    h += b" " * (-len(h) % 8)
    return struct.pack("<Q", len(h)) + h + data


def safetensors_seeds():
    reset("safetensors")
    sizes = {"F32": 4, "F16": 2, "BF16": 2, "F64": 8, "I64": 8, "I32": 4, "I16": 2, "I8": 1,
             "U8": 1, "BOOL": 1}
    write("safetensors", "every_dtype", safetensors_file(
        [(f"t_{d.lower()}", d, [2, 1], bytes(range(2 * s))) for d, s in sizes.items()]))
    write("safetensors", "scalar_and_empty", safetensors_file(
        [("scalar", "F32", [], struct.pack("<f", 1.5)), ("empty", "F16", [0, 4], b"")],
        metadata=False))
    # The real tiny cross-encoder's tensor table, every tensor shrunk to one element.
    path = os.path.join(ROOT, "tests", "data", "tiny-cross-encoder", "model.safetensors")
    with open(path, "rb") as f:
        n = struct.unpack("<Q", f.read(8))[0]
        real = json.loads(f.read(n))
    tensors = [(k, v["dtype"], [1] * len(v["shape"]), bytes(sizes[v["dtype"]]))
               for k, v in real.items() if k != "__metadata__"]
    write("safetensors", "tiny_cross_encoder_shrunk", safetensors_file(tensors))


def model_config_seeds(model_dir):
    # config.json %% tokenizer_config.json %% modules.json %% sentence_bert_config.json %% pooling
    reset("model_config")

    def read(*parts):
        p = os.path.join(*parts)
        return open(p, "rb").read() if os.path.exists(p) else b""

    minilm = [read(model_dir, "config.json"), read(model_dir, "tokenizer_config.json"),
              read(model_dir, "modules.json"), read(model_dir, "sentence_bert_config.json"),
              read(model_dir, "1_Pooling", "config.json")]
    if not minilm[0]:
        sys.exit(f"no config.json in {model_dir} (--model)")
    write("model_config", "minilm", SEP.join(minilm))
    write("model_config", "minilm_config_only", minilm[0])
    tiny = os.path.join(ROOT, "tests", "data", "tiny-cross-encoder")
    write("model_config", "tiny_cross_encoder",
          SEP.join([read(tiny, "config.json"), read(tiny, "tokenizer_config.json")]))
    two = os.path.join(ROOT, "tests", "data", "tiny-cross-encoder-2labels")
    if os.path.exists(os.path.join(two, "config.json")):
        write("model_config", "tiny_cross_encoder_2labels", read(two, "config.json"))


def config_seeds():
    reset("server_config")
    write("server_config", "server.yaml", read_file(os.path.join(ROOT, "configs", "server.yaml")))
    write("server_config", "null_backend", "backend: null\nengine:\n  threads: 1\n")
    # [mode] text: bit 0 over the real base.yaml; bit 1 "base%%experiment"; else alone.
    reset("experiment_config")
    exp_dir = os.path.join(ROOT, "configs", "experiments")
    base = read_file(os.path.join(exp_dir, "base.yaml"))
    write("experiment_config", "base_alone", b"\x00" + base)
    for path in sorted(glob.glob(os.path.join(exp_dir, "*.yaml"))):
        name = os.path.basename(path)
        if name != "base.yaml":
            write("experiment_config", name, b"\x01" + read_file(path))
    write("experiment_config", "base_and_experiment",
          b"\x02" + base + SEP + read_file(os.path.join(exp_dir, "minilm_int8.yaml")))


def read_file(path):
    with open(path, "rb") as f:
        return f.read()


JSON_BODIES = {
    "/embed": [{"inputs": "how long do fleas live"},
               {"inputs": ["a flea can live up to a year", "Caf\u00e9"], "normalize": False,
                "truncate": True, "dimensions": 128}],
    "/v1/embeddings": [{"input": ["what is a flea"], "model": "all-MiniLM-L6-v2",
                        "encoding_format": "base64", "dimensions": 64},
                       {"input": "hello", "encoding_format": "float"}],
    "/rerank": [{"query": "flea lifespan", "texts": ["a flea lives a year", "dogs bark"],
                 "raw_scores": False, "return_text": True, "truncate": True, "top_n": 1}],
    "/similarity": [{"inputs": {"source_sentence": "a cat", "sentences": ["a dog", "a kitten"]},
                     "truncate": False}],
    "/score": [{"pairs": [["how long do fleas live", "a flea can live up to a year"]],
                "raw_scores": True, "truncate": True}],
    "/tokenize": [{"inputs": ["Hello, world!", "[CLS] caf\u00e9"], "add_special_tokens": False},
                  {"inputs": "Zürich"}],
    "/": [{"inputs": "hello", "normalize": True, "truncate": True},
          {"inputs": {"source_sentence": "a cat", "sentences": ["a dog"]}, "parameters": {}}],
    "/v1/rerank": [{"model": "m", "query": "flea", "top_n": 1, "return_documents": True,
                    "documents": ["a flea lives a year", {"text": "dogs bark", "id": 2}]}],
    "/v2/rerank": [{"model": "m", "query": "flea", "documents": ["a flea"],
                    "max_tokens_per_doc": 4096, "relevant_spans": {"mode": "disabled"}}],
    "/v1/embed": [{"texts": ["a flea"], "input_type": "search_query", "truncate": "NONE"}],
    "/v2/embed": [{"model": "m", "texts": ["a flea", "Caf\u00e9"], "input_type": "clustering",
                   "embedding_types": ["float", "base64"], "output_dimension": 64,
                   "max_tokens": 512}],
}


def http_seeds():
    # http_json: [route index] body.
    reset("http_json")
    for i, route in enumerate(JSON_ROUTES):
        for k, body in enumerate(JSON_BODIES[route]):
            write("http_json", f"{route.strip('/').replace('/', '_') or 'root'}_{k}",
                  bytes([i]) + json.dumps(body, ensure_ascii=False).encode())
    # http: raw requests as a client sends them.
    reset("http")

    def post(route, body, extra=""):
        b = json.dumps(body, ensure_ascii=False).encode()
        head = (f"POST {route} HTTP/1.1\r\nHost: 127.0.0.1:8080\r\nContent-Type: application/json"
                f"\r\nContent-Length: {len(b)}\r\n{extra}\r\n")
        return head.encode() + b

    for route in JSON_ROUTES:
        write("http", "post_" + (route.strip("/").replace("/", "_") or "root"),
              post(route, JSON_BODIES[route][0]))
    for route in ["/health", "/ready", "/info", "/metrics", "/nope"]:
        write("http", "get_" + route.strip("/"),
              f"GET {route} HTTP/1.1\r\nHost: localhost\r\nAccept: */*\r\n\r\n")
    write("http", "auth_and_timeout", post("/embed", {"inputs": "x"},
                                           "Authorization: Bearer fuzz-key\r\nX-Request-Timeout-Ms: 2000\r\n"))
    write("http", "wrong_key", post("/embed", {"inputs": "x"}, "Authorization: Bearer nope\r\n"))
    body = json.dumps({"inputs": ["chunked body"]}).encode()
    write("http", "chunked",
          b"POST /embed HTTP/1.1\r\nHost: h\r\nTransfer-Encoding: chunked\r\n\r\n" +
          b"%x\r\n" % len(body) + body + b"\r\n0\r\n\r\n")
    write("http", "pipelined_keep_alive",
          post("/tokenize", {"inputs": "one"}) + b"GET /health HTTP/1.1\r\nHost: h\r\n\r\n" +
          post("/embed", {"inputs": "two"}, "Connection: close\r\n"))
    write("http", "http10_query", "GET /info?verbose=1 HTTP/1.0\r\n\r\n")
    write("http", "wrong_method", "DELETE /embed HTTP/1.1\r\nHost: h\r\nContent-Length: 0\r\n\r\n")


def grpc_seeds():
    from grpc_tools import protoc
    reset("grpc")
    out = tempfile.mkdtemp(prefix="encserve-fuzz-seeds-")
    proto_dir = os.path.join(ROOT, "proto")
    for name in ("inference.proto", "encserve.proto"):
        rc = protoc.main(["protoc", f"-I{proto_dir}", f"--python_out={out}",
                          os.path.join(proto_dir, name)])
        assert rc == 0, f"protoc failed for {name}"
    sys.path.insert(0, out)
    import encserve_pb2 as v1
    import inference_pb2 as seed
    requests = {
        "Embed": [v1.EmbedRequest(texts=["how long do fleas live", "Caf\u00e9"], normalize=True,
                                  truncate=True, dimensions=64), v1.EmbedRequest()],
        "Score": [v1.ScoreRequest(pairs=[v1.TextPair(a="flea", b="a flea lives a year")],
                                  raw_scores=True, truncate=False)],
        "Rerank": [v1.RerankRequest(query="flea", documents=["a flea lives a year", "dogs"],
                                    top_n=1, return_documents=True, truncate=True)],
        "Tokenize": [v1.TokenizeRequest(texts=["Hello, world!"], add_special_tokens=False,
                                        truncate=True)],
        "Info": [v1.InfoRequest()],
        "Infer": [seed.InferRequest(texts=["what is the capital of france", "Paris"])],
        "GetMetrics": [seed.Empty()],
        "ResetMetrics": [seed.Empty()],
    }
    for i, method in enumerate(GRPC_METHODS):
        for k, msg in enumerate(requests[method]):
            write("grpc", f"{method}_{k}", bytes([i]) + msg.SerializeToString())
    write("grpc", "Embed_not_a_message", bytes([0]) + b"\xff\xff\xff\xff")
    shutil.rmtree(out, ignore_errors=True)


def main():
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--model", default=os.environ.get("ENCSERVE_MODEL_DIR") or os.path.expanduser(
        "~/.cache/encserve/models/all-MiniLM-L6-v2"))
    args = p.parse_args()
    tokenizer_seeds()
    safetensors_seeds()
    model_config_seeds(args.model)
    config_seeds()
    http_seeds()
    grpc_seeds()
    total = sum(len(files) for _, _, files in os.walk(CORPUS))
    digest = hashlib.sha256()
    for d, _, files in sorted(os.walk(CORPUS)):
        for f in sorted(files):
            digest.update(read_file(os.path.join(d, f)))
    print(f"{total} seed files in {CORPUS} (sha256 {digest.hexdigest()[:12]})")


if __name__ == "__main__":
    main()
