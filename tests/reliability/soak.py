"""soak: 60 s (short) / 30 min (long) of Poisson arrivals at 70 % of capacity, each request 1, 8
or 32 MS MARCO queries (uniformly), gRPC encserve.v1 Embed (grpc.aio, latency from the scheduled
send). Capacity first: closed loop, 8 clients, the same mix (requests/s). After the warm-up
(10 s short / 2 min long): server RSS growth <= 5 % (peak of the last fifth vs peak of the first
fifth), p99 drift <= 10 % (p99 of the last fifth vs the first fifth), zero errors (refusals by
the queue budget, RESOURCE_EXHAUSTED, are counted apart and bounded at 1 % of requests).
Server: MiniLM native int8."""
import asyncio
import random
import time

import grpc

import common
from common import harness

NAME = "soak"
SIZES = (1, 8, 32)
CHANNELS = 16


def make_requests(v1, queries):
    rng = random.Random(5)
    out = {}
    for b in SIZES:
        out[b] = [v1.EmbedRequest(texts=rng.sample(queries, b)) for _ in range(64)]
    return out


async def capacity(target, reqs, seconds, v1g):
    # One connection per worker (each is its own client to the server's fair order).
    channels = [grpc.aio.insecure_channel(target, options=common.GRPC_OPTIONS) for _ in range(8)]
    try:
        done = {"ok": 0, "items": 0, "refused": 0}
        t_end = time.monotonic() + seconds

        async def worker(w):
            rng = random.Random(w)
            stub = v1g.EncoderStub(channels[w])
            while time.monotonic() < t_end:
                b = rng.choice(SIZES)
                try:
                    await stub.Embed(rng.choice(reqs[b]), timeout=60)
                    done["ok"] += 1
                    done["items"] += b
                except grpc.aio.AioRpcError:
                    done["refused"] += 1
                    await asyncio.sleep(0.01)
        t0 = time.monotonic()
        await asyncio.gather(*[worker(w) for w in range(8)])
        dt = time.monotonic() - t0
        return done["ok"] / dt, done["items"] / dt, done["refused"]
    finally:
        for ch in channels:
            await ch.close()


async def soak(target, reqs, rate, seconds, v1g):
    """Open loop: [(t_sched (s from start), latency s, b, code, send lag s)]."""
    out = []
    rng = random.Random(11)
    # Traffic from CHANNELS connections (clients), round robin: a service's many callers, not
    # one connection multiplexing everything (which the server caps at half the queue budget).
    channels = [grpc.aio.insecure_channel(target, options=common.GRPC_OPTIONS)
                for _ in range(CHANNELS)]
    stubs = [v1g.EncoderStub(ch) for ch in channels]
    try:
        for stub in stubs:
            await stub.Embed(reqs[1][0], timeout=60)
        t0 = time.monotonic()
        tasks = set()

        async def one(t_sched, b, req, stub):
            lag = time.monotonic() - (t0 + t_sched)
            try:
                await stub.Embed(req, timeout=60)
                code = "OK"
            except grpc.aio.AioRpcError as e:
                code = e.code().name
            out.append((t_sched, time.monotonic() - (t0 + t_sched), b, code, lag))
        t = 0.0
        sent = 0
        while True:
            t += rng.expovariate(rate)
            if t > seconds:
                break
            delay = t0 + t - time.monotonic()
            if delay > 0:
                await asyncio.sleep(delay)
            b = rng.choice(SIZES)
            sent += 1
            task = asyncio.create_task(one(t, b, rng.choice(reqs[b]), stubs[sent % CHANNELS]))
            tasks.add(task)
            task.add_done_callback(tasks.discard)
        if tasks:
            await asyncio.wait(tasks, timeout=120)
    finally:
        for ch in channels:
            await ch.close()
    return out


def run(ctx):
    res = ctx.res
    total = ctx.pick(60, 1800)
    warm = ctx.pick(10, 120)
    cap_s = ctx.pick(3, 15)
    if common.SPLIT:
        common.use_client_cpus()
        srv, _ = common.start_server_budgeted(ctx, *common.INT8_SPLIT,
                                              prefix=common.SERVER_CPU_PREFIX)
        res.note("server pinned to CPU 0 with 1 engine thread; clients on the other CPUs")
    else:
        srv, _ = common.start_server_budgeted(ctx, *common.INT8)
    _, _, v1, v1g = harness.stubs()
    reqs = make_requests(v1, common.msmarco_queries())
    cap_rps, cap_items, cap_refused = asyncio.run(capacity(srv.grpc_target, reqs, cap_s, v1g))
    # From items/s: requests/s would count the closed loop's mix as served, and a loop that is
    # refused some b=32 requests serves more b=1 ones (more requests/s than the mix allows).
    rate = 0.7 * cap_items / (sum(SIZES) / len(SIZES))
    res.log(f"capacity {cap_rps:.0f} req/s ({cap_items:.0f} items/s, {cap_refused} refused); "
            f"soak at {rate:.0f} req/s for {total} s (warm-up {warm} s)")
    res.sent(f"capacity: closed loop 8 clients, b uniform in {{1, 8, 32}} MS MARCO queries, "
             f"{cap_s} s; soak: Poisson arrivals at 70 % of it, same mix, gRPC Embed, {total} s "
             f"({warm} s warm-up)")
    sampler = common.Sampler(srv, 1.0)
    t_start = time.monotonic()
    out = asyncio.run(soak(srv.grpc_target, reqs, rate, total, v1g))
    sampler.stop()
    measured = [r for r in out if r[0] >= warm]
    span = total - warm
    fifth = span / 5.0
    first = [r[1] for r in measured if r[0] < warm + fifth and r[3] == "OK"]
    last = [r[1] for r in measured if r[0] >= warm + 4 * fifth and r[3] == "OK"]
    p99_first, p99_last = common.pct(first, 99), common.pct(last, 99)
    drift = None if not p99_first or p99_last is None else (p99_last - p99_first) / p99_first
    rss_first = [r for t, r in sampler.samples if t_start + warm <= t < t_start + warm + fifth]
    rss_last = [r for t, r in sampler.samples if t >= t_start + warm + 4 * fifth]
    growth = None if not rss_first or not rss_last else (max(rss_last) - max(rss_first)) / max(rss_first)
    errors = {}
    for r in out:
        if r[3] != "OK":
            errors[r[3]] = errors.get(r[3], 0) + 1
    lags = [r[4] for r in out]
    by_size = {b: common.lat_summary([r[1] for r in measured if r[2] == b and r[3] == "OK"]) for b in SIZES}
    fig = {"capacity_rps": round(cap_rps, 1), "capacity_items_per_s": round(cap_items, 1),
           "capacity_refused": cap_refused, "rate_rps": round(rate, 1), "requests": len(out),
           "measured_requests": len(measured), "errors": errors,
           "p99_first_fifth_ms": common.rnd(p99_first and p99_first * 1000),
           "p99_last_fifth_ms": common.rnd(p99_last and p99_last * 1000),
           "p99_drift": common.rnd(drift, 4), "latency_by_size_ms": by_size,
           "latency_all_ms": common.lat_summary([r[1] for r in measured if r[3] == "OK"]),
           "rss_first_fifth_peak_mb": common.rnd(max(rss_first) if rss_first else None, 1),
           "rss_last_fifth_peak_mb": common.rnd(max(rss_last) if rss_last else None, 1),
           "rss_growth": common.rnd(growth, 4), "vmhwm_mb": common.rnd(srv.hwm_mb(), 1),
           "client_send_lag_ms": {"mean": common.rnd(1000 * sum(lags) / len(lags)) if lags else None,
                                  "max": common.rnd(1000 * max(lags)) if lags else None},
           "rss_series_mb": [round(r, 1) for _, r in sampler.samples][::max(1, len(sampler.samples) // 120)]}
    res.figure("soak", fig)
    res.log(f"{len(out)} requests, errors {errors}; p99 {fig['p99_first_fifth_ms']} -> "
            f"{fig['p99_last_fifth_ms']} ms (drift {drift}); RSS {fig['rss_first_fifth_peak_mb']} -> "
            f"{fig['rss_last_fifth_peak_mb']} MB")
    res.bound("RSS growth after warm-up (last fifth peak vs first fifth peak)",
              None if growth is None else round(100 * growth, 2), 5,
              growth is not None and growth <= 0.05, " %")
    # 10 % is the bound of record (30 min, fifths of 6 minutes). The 60-s CI run has fifths of
    # 10 s, whose p99 moves by tens of percent with the machine alone: there the bound only
    # catches a gross degradation (a leak, a queue that never drains).
    drift_limit = ctx.pick(0.5, 0.10)
    res.bound("p99 drift (last fifth vs first fifth)",
              None if drift is None else round(100 * drift, 1), round(100 * drift_limit),
              drift is not None and drift <= drift_limit, " %", timing=drift is not None)
    # A refusal (RESOURCE_EXHAUSTED) is the queue-time budget answering a Poisson burst, not a
    # failure: at 70 % load an M/M/1 queue holds more than the 100-ms budget a small share of
    # the time. Errors are everything else (none allowed); refusals are bounded at 1 % (--long);
    # in the 60-s CI run at 3 %: 60-s windows on an idle machine gave 0.1-1.7 %.
    refused = errors.pop("RESOURCE_EXHAUSTED", 0)
    share = refused / len(out) if out else 0.0
    res.figure("refused", refused)
    res.bound("errors (anything but OK and a RESOURCE_EXHAUSTED refusal)",
              errors if errors else 0, 0, not errors)
    share_limit = ctx.pick(0.03, 0.01)
    res.bound("refusals (RESOURCE_EXHAUSTED: the queue budget) share of requests",
              round(100 * share, 2), round(100 * share_limit), share <= share_limit, " %",
              timing=True)
    code = srv.close()
    res.bound("server exit code after SIGTERM", code, 0, code == 0)
    res.key(f"{rate:.0f} req/s x {total} s: p99 {fig['p99_first_fifth_ms']} -> "
            f"{fig['p99_last_fifth_ms']} ms, "
            f"RSS {fig['rss_first_fifth_peak_mb']} -> {fig['rss_last_fifth_peak_mb']} MB, "
            f"{sum(errors.values())} errors, {refused} refused")


if __name__ == "__main__":
    common.main(NAME, run)
