"""model_faults: the model folder copied to a temp dir, a server started on the copy, traffic kept
running (HTTP /embed and gRPC Embed of fixed MS MARCO queries, every row compared bit-exactly with
the rows the same server gave before), then model.safetensors is damaged under it: (a) truncated
to half its size, (b) replaced by random bytes of the same size (written to a temp file and
renamed over it), (c) overwritten in place with zeros. Each fault gets a fresh copy and a fresh
server, so each one hits the file the server loaded. The server must not crash and its results
must not change; then a new server started on the damaged folder must exit non-zero within 10 s
with an error naming model.safetensors.
Server: MiniLM native fp32 (the default precision: the one that uses the file's fp32 data as
is), 2 threads."""
import json
import os
import shutil
import subprocess
import tempfile
import time

import grpc
import numpy as np

import common
from common import harness

NAME = "model_faults"
FP32 = ("--threads", str(os.cpu_count() or 2))


def copy_model(dst):
    os.makedirs(dst)
    for name in os.listdir(harness.MODEL_DIR):
        src = os.path.join(harness.MODEL_DIR, name)
        if name == "onnx":
            continue  # the native backend does not read it
        if os.path.isdir(src):
            shutil.copytree(src, os.path.join(dst, name))
        else:
            shutil.copy2(src, os.path.join(dst, name))


def damage(kind, path):
    size = os.path.getsize(path)
    if kind == "truncate":
        os.truncate(path, size // 2)
    elif kind == "replace":
        tmp = path + ".new"
        with open(tmp, "wb") as f:
            left = size
            while left:
                n = min(left, 1 << 20)
                f.write(os.urandom(n))
                left -= n
        os.rename(tmp, path)
    elif kind == "zeros":
        with open(path, "r+b") as f:
            left = size
            while left:
                n = min(left, 1 << 20)
                f.write(b"\0" * n)
                left -= n
            f.flush()
            os.fsync(f.fileno())


def traffic(srv, texts, ref, stop=None):
    """Alternating HTTP / gRPC requests of 4 texts until stopped: counts."""
    _, _, v1, v1g = harness.stubs()
    c = common.KeepAlive(srv.http_port, timeout=30)
    counts = {"requests": 0, "rows": 0, "mismatches": 0, "errors": {}}
    with grpc.insecure_channel(srv.grpc_target, options=common.GRPC_OPTIONS) as ch:
        stub = v1g.EncoderStub(ch)
        k = 0
        while not stop.is_set():
            idx = [(k * 4 + j) % len(texts) for j in range(4)]
            batch = [texts[i] for i in idx]
            try:
                if k % 2 == 0:
                    st, _, body, _ = c.request("POST", "/embed", common.embed_body(batch))
                    if st != 200:
                        raise RuntimeError(f"HTTP {st}")
                    rows = [np.array(r, dtype=np.float32) for r in json.loads(body)]
                else:
                    r = stub.Embed(v1.EmbedRequest(texts=batch), timeout=30)
                    rows = [np.array(e.values, dtype=np.float32) for e in r.embeddings]
                counts["rows"] += len(rows)
                counts["mismatches"] += sum(1 for i, row in zip(idx, rows) if not np.array_equal(row, ref[i]))
            except (OSError, RuntimeError, grpc.RpcError, ValueError) as e:
                code = e.code().name if isinstance(e, grpc.RpcError) else str(e)[:60]
                counts["errors"][code] = counts["errors"].get(code, 0) + 1
                time.sleep(0.05)
            counts["requests"] += 1
            k += 1
    c.close()
    return counts


def restart_on(folder):
    """A new server on the damaged folder: (exit code or 'ready'/'still running', seconds, log)."""
    tmp = tempfile.mkdtemp(prefix="encserve-rel-")
    ready = os.path.join(tmp, "ready.json")
    cmd = [harness.BINARY, "serve", *FP32, "--model", folder, "--host", "127.0.0.1",
           "--grpc-port", "0", "--http-port", "0", "--ready-file", ready]
    t0 = time.monotonic()
    p = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    outcome = None
    while time.monotonic() - t0 < 15:
        if p.poll() is not None:
            outcome = p.returncode
            break
        if os.path.exists(ready):
            outcome = "became ready"
            break
        time.sleep(0.02)
    took = time.monotonic() - t0
    if p.poll() is None:
        p.kill()
        outcome = outcome or "still running after 15 s"
    out = p.communicate()[0]
    shutil.rmtree(tmp, ignore_errors=True)
    return outcome, took, out


def run(ctx):
    res = ctx.res
    hold_s = ctx.pick(2, 15)
    texts = common.msmarco_queries()[100:132]
    res.sent(f"per fault (truncate to half, random bytes renamed over, zeros in place): a fresh "
             f"copy + server, HTTP/gRPC traffic of 4 queries per request ({len(texts)} texts, rows "
             f"compared bit-exactly with the pre-fault rows) for {hold_s} s before and {hold_s} s "
             "after the fault, then a new server on the damaged folder")
    results = {}
    for kind in ("truncate", "replace", "zeros"):
        folder = os.path.join(tempfile.mkdtemp(prefix="encserve-rel-model-"), "model")
        copy_model(folder)
        try:
            srv = common.start_server(ctx, *FP32, model=folder, label=f"{kind}")
            _, _, v1, v1g = harness.stubs()
            with grpc.insecure_channel(srv.grpc_target, options=common.GRPC_OPTIONS) as ch:
                stub = v1g.EncoderStub(ch)
                ref = [np.array(stub.Embed(v1.EmbedRequest(texts=[t]), timeout=30).embeddings[0].values,
                                dtype=np.float32) for t in texts]
            load = common.Background(traffic, srv, texts, ref)
            time.sleep(hold_s)
            path = os.path.join(folder, "model.safetensors")
            t_fault = time.monotonic()
            damage(kind, path)
            time.sleep(hold_s)
            counts = load.finish(60)
            alive = srv.alive()
            rc = srv.proc.poll()
            rss = srv.rss_mb()
            code = srv.close() if alive else rc
            outcome, took, out = restart_on(folder)
            lines = [ln for ln in out.splitlines() if "model.safetensors" in ln or "error" in ln.lower()]
            r = {"server_alive_after_fault": alive, "server_exit": code,
                 "seconds_fault_to_end": round(time.monotonic() - t_fault, 1), "traffic": counts,
                 "rss_mb": common.rnd(rss, 1), "restart_outcome": outcome,
                 "restart_seconds": round(took, 2), "restart_error": lines[:2]}
            results[kind] = r
            res.log(f"{kind}: server {'alive' if alive else f'died ({rc})'}, {counts['rows']} rows, "
                    f"{counts['mismatches']} mismatches, errors {counts['errors']}; restart: {outcome} in "
                    f"{took:.2f} s: {lines[0] if lines else out.strip()[-200:]}")
            res.bound(f"{kind}: running server did not crash", "alive" if alive else f"exited {rc}",
                      "alive", alive)
            res.bound(f"{kind}: results unchanged and answered ({counts['rows']} rows)",
                      f"{counts['mismatches']} mismatches, errors {counts['errors'] or 0}",
                      "0 mismatches, 0 errors", counts["mismatches"] == 0 and not counts["errors"]
                      and counts["rows"] > 0)
            res.bound(f"{kind}: server exit code after SIGTERM", code, 0, code == 0)
            named = any("model.safetensors" in ln for ln in lines)
            clear = isinstance(outcome, int) and outcome != 0 and named
            res.bound(f"{kind}: restart on the damaged folder exits non-zero naming model.safetensors",
                      f"{outcome} in {took:.2f} s" + (f": {lines[0][:160]}" if lines else ""),
                      "non-zero within 10 s", clear and took <= 10.0)
        finally:
            shutil.rmtree(os.path.dirname(folder), ignore_errors=True)
    res.figure("faults", results)
    res.key("; ".join(f"{k}: {'alive' if v['server_alive_after_fault'] else 'crashed'}, "
                      f"{v['traffic']['mismatches']} mismatches, restart {v['restart_outcome']} "
                      f"in {v['restart_seconds']} s" for k, v in results.items()))


if __name__ == "__main__":
    common.main(NAME, run)
