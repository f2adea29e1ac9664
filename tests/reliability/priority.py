"""priority: interactive requests beside a batch client that saturates the server (issue 20
item 7). An interactive client (its own process, one keep-alive HTTP connection, one MS MARCO
query per request, one request at a time) is timed alone, then while a batch client (another
process, 4 connections each keeping a 32-query /embed in flight with "priority": "batch",
resending a refused one 20 ms later) keeps the engine busy. Bound: the interactive p99 under that
load <= 1.5x its p99 alone. For comparison, not a bound: the same load sent without a priority
(both clients interactive, the server's default). Server: MiniLM native int8, one replica of one
thread per core (--replicas <cores> --threads 1: one replica stays free for interactive work and
batch work pauses while it runs; docs/server.md, "Priorities"), the default batch slice.
Exploration: PRIORITY_REPLICAS, PRIORITY_THREADS, PRIORITY_SLICE_MS (ms; default: the server's),
PRIORITY_SPLIT=1 (the server pinned to CPU 0, the clients to the other CPUs)."""
import json
import os
import time

import common
from common import harness

NAME = "priority"
RATIO_LIMIT = 1.5
BATCH_CONNECTIONS = 4
BATCH_TEXTS = 32


def batch_client(port, texts, priority, stop):
    """Keeps one 32-text /embed in flight on each of BATCH_CONNECTIONS connections until `stop`.
    Returns {"ok": requests answered 200, "refused": 429s, "errors": {what: n}, "items": n}."""
    import threading
    counts = {"ok": 0, "refused": 0, "errors": {}, "items": 0}
    lock = threading.Lock()

    def loop(k):
        c = common.KeepAlive(port, timeout=120)
        i = k * 997
        while not stop.is_set():
            batch = [texts[(i + j) % len(texts)] for j in range(BATCH_TEXTS)]
            i += BATCH_TEXTS
            body = {"inputs": batch}
            if priority:
                body["priority"] = priority
            try:
                st, _, _, _ = c.request("POST", "/embed", json.dumps(body).encode())
            except Exception as e:  # noqa: BLE001 (counted, the loop goes on)
                with lock:
                    counts["errors"][type(e).__name__] = counts["errors"].get(type(e).__name__, 0) + 1
                time.sleep(0.02)
                continue
            with lock:
                if st == 200:
                    counts["ok"] += 1
                    counts["items"] += BATCH_TEXTS
                elif st == 429:
                    counts["refused"] += 1
                else:
                    counts["errors"][f"HTTP {st}"] = counts["errors"].get(f"HTTP {st}", 0) + 1
            if st != 200:
                time.sleep(0.02)
        c.close()

    threads = [threading.Thread(target=loop, args=(k,)) for k in range(BATCH_CONNECTIONS)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    return counts


def interactive_client(port, texts, count, stop=None):
    """`count` sequential one-query /embed requests (no priority named: interactive) on one
    keep-alive connection after 20 untimed ones. Returns (latencies s, errors {what: n})."""
    c = common.KeepAlive(port, timeout=60)
    lats, errors = [], {}
    for n in range(count + 20):
        body = common.embed_body([texts[n % len(texts)]])
        t0 = time.perf_counter()
        try:
            st, _, _, _ = c.request("POST", "/embed", body)
            if st != 200:
                errors[f"HTTP {st}"] = errors.get(f"HTTP {st}", 0) + 1
        except Exception as e:  # noqa: BLE001
            errors[type(e).__name__] = errors.get(type(e).__name__, 0) + 1
        if n >= 20:
            lats.append(time.perf_counter() - t0)
    c.close()
    return lats, errors


def timed_under_load(srv, texts, count, priority):
    """The interactive client's latencies while the batch client (priority `priority`, None: none
    named) runs; plus the batch client's counts and the items/s the server ran meanwhile."""
    batch = common.BackgroundProcess(batch_client, srv.http_port, texts[1000:], priority)
    time.sleep(2.0)  # the batch client's requests are queued and the engine is busy
    m0, t0 = srv.metrics(), time.monotonic()
    probe = common.BackgroundProcess(interactive_client, srv.http_port, texts, count)
    lats, errors = probe.finish(timeout=600)
    m1, t1 = srv.metrics(), time.monotonic()
    counts = batch.finish(timeout=180)
    items = (harness.metric_sum(m1, "encserve_items_total") -
             harness.metric_sum(m0, "encserve_items_total"))
    busy = (harness.metric_sum(m1, "encserve_inference_seconds_sum") -
            harness.metric_sum(m0, "encserve_inference_seconds_sum"))
    return lats, errors, counts, round(items / (t1 - t0), 1), round(busy / (t1 - t0), 3)


def run(ctx):
    res = ctx.res
    rounds, count = ctx.pick(4, 6), ctx.pick(500, 1000)
    slice_ms = os.environ.get("PRIORITY_SLICE_MS")
    options = {"priority.batch_slice_ms": float(slice_ms)} if slice_ms else {}
    if common.SPLIT and os.environ.get("PRIORITY_SPLIT", "0") == "1":
        common.use_client_cpus()
        srv = common.start_server(ctx, *common.INT8_SPLIT, prefix=common.SERVER_CPU_PREFIX,
                                  options=options)
        res.note("server pinned to CPU 0 with 1 engine thread; clients on the other CPUs")
    else:
        threads = os.environ.get("PRIORITY_THREADS", "1")
        replicas = os.environ.get("PRIORITY_REPLICAS", str(max(2, os.cpu_count() or 2)))
        srv = common.start_server(ctx, "--precision", "int8", "--threads", threads,
                                  "--replicas", replicas, options=options)
    texts = common.msmarco_queries()
    res.sent(f"{rounds} rounds of: {count} sequential one-query /embed requests (MS MARCO) on one "
             f"connection alone, then {count} beside a batch client ({BATCH_CONNECTIONS} "
             f"connections each keeping a {BATCH_TEXTS}-query /embed in flight, \"priority\": "
             "\"batch\"); the rounds pooled (alternating, so that a change in the machine's speed "
             "hits both). Then once beside the same load sent without a priority.")
    alone, alone_err, loaded, loaded_err, batch_rounds = [], {}, [], {}, []
    for r in range(rounds):
        lats, errors = common.BackgroundProcess(interactive_client, srv.http_port, texts,
                                                count).finish(timeout=600)
        alone += lats
        for k, v in errors.items():
            alone_err[k] = alone_err.get(k, 0) + v
        lats, errors, counts, items_s, busy = timed_under_load(srv, texts, count, "batch")
        loaded += lats
        for k, v in errors.items():
            loaded_err[k] = loaded_err.get(k, 0) + v
        batch_rounds.append({"batch_client": counts, "server_items_per_s": items_s,
                             "engine_busy_share": busy,
                             "interactive_p99_ms": common.lat_summary(lats)["p99_ms"]})
        res.log(f"round {r + 1}: interactive p99 alone {common.lat_summary(alone[-count:])['p99_ms']}"
                f" ms, beside the batch client {batch_rounds[-1]['interactive_p99_ms']} ms; "
                f"server {items_s} items/s, engine busy {busy:.0%} (sum over replicas); batch "
                f"client {counts}")
    a, b = common.lat_summary(alone), common.lat_summary(loaded)
    res.figure("interactive_alone", {**a, "errors": alone_err})
    res.figure("interactive_beside_batch_priority", {**b, "errors": loaded_err})
    res.figure("rounds", batch_rounds)
    lats, errors, counts, items_s, busy = timed_under_load(srv, texts, count, None)
    nop = {**common.lat_summary(lats), "errors": errors}
    res.figure("interactive_beside_no_priority", {**nop, "batch_client": counts,
                                                 "server_items_per_s": items_s,
                                                 "engine_busy_share": busy})
    res.log(f"pooled: alone p50 {a['p50_ms']} / p99 {a['p99_ms']} ms; beside batch priority p50 "
            f"{b['p50_ms']} / p99 {b['p99_ms']} ms; beside the same load without a priority p50 "
            f"{nop['p50_ms']} / p99 {nop['p99_ms']} ms, errors {errors or 'none'}, server "
            f"{items_s} items/s")
    limit = round(RATIO_LIMIT * a["p99_ms"], 2)
    clean = not alone_err and not loaded_err
    res.bound("interactive p99 beside a saturating batch-priority client (every request "
              f"answered) within {RATIO_LIMIT}x its p99 alone ({a['p99_ms']} ms)",
              f"{b['p99_ms']} ms" + ("" if clean else f", errors {loaded_err}"),
              f"{limit} ms", clean and b["p99_ms"] <= limit, timing=clean)
    served = min(r["batch_client"]["ok"] for r in batch_rounds)
    res.bound("the batch client was served in every round (the load was real): requests "
              "answered", served, "> 0", served > 0)
    busy = min(r["engine_busy_share"] for r in batch_rounds)
    res.bound("the engine was kept busy beside the interactive client (wall time in batches, "
              "summed over replicas, over the round's time; lowest round)", busy, ">= 0.5",
              busy >= 0.5)
    code = srv.close()
    res.bound("server exit code after SIGTERM", code, 0, code == 0)
    refused = sum(errors.values())
    res.key(f"interactive p99: alone {a['p99_ms']} ms, beside a batch client "
            f"{b['p99_ms']} ms with priority batch; without: p99 {nop['p99_ms']} ms, "
            f"{refused} of {count} refused or failed")


if __name__ == "__main__":
    common.main(NAME, run)
