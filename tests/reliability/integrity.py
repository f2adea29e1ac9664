"""integrity: 64 concurrent clients (32 HTTP /embed, 32 gRPC encserve.v1 Embed), each with its
own distinct real MS MARCO queries, 1-8 texts per request, batching on (the server's defaults),
15 s (short) / 60 s (long): every returned row must equal the same text embedded alone. A
refused request (429 / RESOURCE_EXHAUSTED: the queue budget) is counted and sent again 10 ms
later; any other error fails.

The reference is one b=1 gRPC request per text on the same server before the load. Rows are
compared BIT-EXACTLY (float32 bytes): the native engine is padding-free and computes every
sequence's rows independently of the batch it shares (attention per sequence, per-row
activation quantisation in int8), gRPC carries the float32 values as they are and the HTTP
reply prints each float32 with enough digits to round-trip (checked: max abs diff 0 between
the two), so any difference means a row was mixed up or computed differently in a batch. The
largest absolute difference is reported as well. Server: MiniLM native int8."""
import json
import threading
import time

import grpc
import numpy as np

import common
from common import harness

NAME = "integrity"
CLIENTS = 64
PER_CLIENT = 40  # distinct texts per client
REFUSED = ("HTTP 429", "RESOURCE_EXHAUSTED")


def run(ctx):
    res = ctx.res
    seconds = ctx.pick(15, 60)
    srv = common.start_server(ctx, *common.INT8)
    queries = common.msmarco_queries()
    uniq, seen = [], set()
    for q in queries:
        if q not in seen:
            seen.add(q)
            uniq.append(q)
    pool = uniq[:CLIENTS * PER_CLIENT]
    _, _, v1, v1g = harness.stubs()
    # --- reference: one text per request
    t0 = time.monotonic()
    ref = {}
    with grpc.insecure_channel(srv.grpc_target, options=common.GRPC_OPTIONS) as ch:
        stub = v1g.EncoderStub(ch)
        futs = []
        for q in pool:
            futs.append((q, stub.Embed.future(v1.EmbedRequest(texts=[q]), timeout=60)))
            if len(futs) >= 8:  # at most 8 in flight: batches of <= 8 would do, 1 is the point
                q0, f = futs.pop(0)
                ref[q0] = np.array(f.result().embeddings[0].values, dtype=np.float32)
        for q0, f in futs:
            ref[q0] = np.array(f.result().embeddings[0].values, dtype=np.float32)
    ref_s = time.monotonic() - t0
    # The b=1 references above ran up to 8 at once, so they may have shared batches: check a
    # sample strictly one at a time.
    with grpc.insecure_channel(srv.grpc_target, options=common.GRPC_OPTIONS) as ch:
        stub = v1g.EncoderStub(ch)
        solo_diff = 0
        for q in pool[::40]:
            r = np.array(stub.Embed(v1.EmbedRequest(texts=[q]), timeout=60).embeddings[0].values,
                         dtype=np.float32)
            solo_diff += int(not np.array_equal(r, ref[q]))
    res.log(f"reference: {len(pool)} texts one per request in {ref_s:.1f} s "
            f"({solo_diff} of {len(pool[::40])} differ when re-run strictly alone)")
    res.bound("references equal a strictly one-at-a-time re-run (sample)", solo_diff, 0, solo_diff == 0)

    lock = threading.Lock()
    tally = {"rows": 0, "mismatches": 0, "max_abs_diff": 0.0, "requests": 0, "errors": {},
             "http_rows": 0, "grpc_rows": 0, "examples": []}
    t_end = time.monotonic() + seconds

    def check(c, texts, rows, proto):
        bad, mad = 0, 0.0
        for t, row in zip(texts, rows):
            r = ref[t]
            if row.shape != r.shape or not np.array_equal(row, r):
                bad += 1
                if row.shape == r.shape:
                    mad = max(mad, float(np.abs(row - r).max()))
                else:
                    mad = 1e30  # a row of the wrong length
        with lock:
            tally["rows"] += len(texts)
            tally[f"{proto}_rows"] += len(texts)
            tally["requests"] += 1
            tally["mismatches"] += bad + abs(len(rows) - len(texts))
            tally["max_abs_diff"] = max(tally["max_abs_diff"], mad)
            if bad and len(tally["examples"]) < 5:
                tally["examples"].append({"client": c, "proto": proto, "texts": texts[:3]})

    def err(code):
        with lock:
            tally["errors"][code] = tally["errors"].get(code, 0) + 1
        if code in REFUSED:
            time.sleep(0.01)

    def client(c):
        mine = pool[c * PER_CLIENT:(c + 1) * PER_CLIENT]
        rng = np.random.default_rng(c)
        if c % 2 == 0:
            conn = common.KeepAlive(srv.http_port, timeout=60)
            while time.monotonic() < t_end:
                texts = list(rng.choice(mine, size=int(rng.integers(1, 9)), replace=False))
                try:
                    st, _, body, _ = conn.request("POST", "/embed", common.embed_body(texts))
                except OSError as e:
                    err(type(e).__name__)
                    continue
                if st != 200:
                    err(f"HTTP {st}")
                    continue
                rows = [np.array(r, dtype=np.float32) for r in json.loads(body)]
                check(c, texts, rows, "http")
            conn.close()
        else:
            with grpc.insecure_channel(srv.grpc_target, options=common.GRPC_OPTIONS) as ch:
                stub = v1g.EncoderStub(ch)
                while time.monotonic() < t_end:
                    texts = list(rng.choice(mine, size=int(rng.integers(1, 9)), replace=False))
                    try:
                        r = stub.Embed(v1.EmbedRequest(texts=texts), timeout=60)
                    except grpc.RpcError as e:
                        err(e.code().name)
                        continue
                    rows = [np.array(e.values, dtype=np.float32) for e in r.embeddings]
                    check(c, texts, rows, "grpc")

    m0 = srv.metrics()
    threads = [threading.Thread(target=client, args=(c,), daemon=True) for c in range(CLIENTS)]
    for th in threads:
        th.start()
    for th in threads:
        th.join(seconds + 120)
    m1 = srv.metrics()
    _, mean_items = common.batch_time_ms(m0, m1)
    tally["mean_batch_items"] = common.rnd(mean_items, 2)
    tally["reference_texts"] = len(pool)
    tally["comparison"] = "bit-exact float32 (np.array_equal)"
    res.sent(f"{CLIENTS} clients (32 HTTP /embed, 32 gRPC Embed), {PER_CLIENT} distinct MS MARCO "
             f"queries each, 1-8 per request, {seconds} s; reference: each of the {len(pool)} "
             "texts alone (b=1) before")
    res.figure("load", tally)
    res.log(f"{tally['rows']} rows checked ({tally['requests']} requests, mean batch "
            f"{tally['mean_batch_items']} items): {tally['mismatches']} mismatches, max abs diff "
            f"{tally['max_abs_diff']}, errors {tally['errors']}")
    res.bound("rows that differ from the text embedded alone (bit-exact)", tally["mismatches"], 0,
              tally["mismatches"] == 0 and tally["rows"] > 0)
    other = {k: v for k, v in tally["errors"].items() if k not in REFUSED}
    res.bound("request errors other than refusals (429 / RESOURCE_EXHAUSTED, retried)",
              other if other else 0, 0, not other)
    res.bound("batches formed (mean items per batch > 1)", tally["mean_batch_items"], "> 1",
              (tally["mean_batch_items"] or 0) > 1)
    code = srv.close()
    res.bound("server exit code after SIGTERM", code, 0, code == 0)
    res.key(f"{tally['rows']} rows checked, {tally['mismatches']} mismatches (bit-exact), mean "
            f"batch {tally['mean_batch_items']}; refusals "
            f"{sum(v for k, v in tally['errors'].items() if k in REFUSED)}")


if __name__ == "__main__":
    common.main(NAME, run)
