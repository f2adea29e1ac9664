"""response_size: POST /tokenize with the largest allowed body (max_body_bytes 4 MiB: 41 texts of
100,000 bytes, "a," repeated, one token per character, truncate false) must be answered with a
bounded reply (<= 16 MiB; limits.max_tokenize_tokens) or refused with 413. Then a dozen clients
send that request and never read the reply: server RSS must not grow by more than 256 MB and
other clients must still be served (b=1 /embed p99 <= 50 ms on HTTP, and on gRPC, meanwhile).
Server: MiniLM native int8 (the b=1 clients run the real model)."""
import json
import socket
import time

import common

NAME = "response_size"
MAX_BODY = 4 * 1024 * 1024
TEXT_BYTES = 100_000
REPLY_LIMIT = 16 * 1024 * 1024
RSS_LIMIT_MB = 256
P99_LIMIT_MS = 50.0
SAFETY_MB = 1536  # the harness kills the server beyond baseline + this (shared machine)


def biggest_body():
    text = "a," * (TEXT_BYTES // 2)
    n = 1
    while len(json.dumps({"inputs": [text] * (n + 1), "truncate": False})) <= MAX_BODY:
        n += 1
    body = json.dumps({"inputs": [text] * n, "truncate": False}).encode()
    return body, n


def tokenize_body(chars):
    """/tokenize of `chars` characters of 'a,' in texts of at most TEXT_BYTES."""
    texts = ["a," * (TEXT_BYTES // 2)] * (chars // TEXT_BYTES)
    if chars % TEXT_BYTES >= 2:
        texts.append("a," * ((chars % TEXT_BYTES) // 2))
    return json.dumps({"inputs": texts, "truncate": False}).encode()


def largest_answered(srv, body_bytes):
    """When the biggest body is refused: the biggest /tokenize body ('a,' characters; halving
    from the refused size, then 6 bisection steps) that the server answers with 200; returns
    (body, reply bytes), or (None, 0)."""
    c = common.KeepAlive(srv.http_port, timeout=120)

    def answered(chars):
        body = tokenize_body(chars)
        st, _, reply, _ = c.request("POST", "/tokenize", body)
        return (body, len(reply)) if st == 200 else None
    try:
        hi, lo, best = body_bytes, body_bytes // 2, None
        while lo >= 1000:
            best = answered(lo)
            if best:
                break
            hi, lo = lo, lo // 2
        if not best:
            return None, 0
        for _ in range(6):
            mid = (lo + hi) // 2
            got = answered(mid)
            if got:
                lo, best = mid, got
            else:
                hi = mid
        return best
    finally:
        c.close()


def run(ctx):
    res = ctx.res
    window_s = ctx.pick(8, 30)
    srv = common.start_server(ctx, *common.INT8)
    body, n = biggest_body()
    res.sent(f"POST /tokenize body {len(body)} bytes ({n} texts x {TEXT_BYTES} bytes of 'a,', "
             "truncate false) read in full; then 12 raw clients sending it without reading the "
             f"reply while b=1 /embed clients (HTTP, gRPC) run for {window_s} s")
    res.figure("body_bytes", len(body))
    # --- one request, reply read in full
    c = common.KeepAlive(srv.http_port, timeout=120)
    t0 = time.perf_counter()
    try:
        st, hdrs, reply, _ = c.request("POST", "/tokenize", body)
        size, outcome = len(reply), f"HTTP {st}"
    except OSError as e:
        st, size, outcome = None, 0, type(e).__name__
    c.close()
    took = time.perf_counter() - t0
    res.figure("single", {"outcome": outcome, "reply_bytes": size, "seconds": round(took, 2)})
    res.log(f"single /tokenize: {outcome}, reply {size / 2**20:.1f} MiB in {took:.2f} s")
    res.bound("biggest /tokenize: bounded reply or 413",
              f"{outcome}, {size / 2**20:.1f} MiB", "200 with <= 16 MiB, or 413",
              (st == 200 and size <= REPLY_LIMIT) or st == 413)
    stalled_body = body
    if st == 413:
        stalled_body, stalled_reply = largest_answered(srv, len(body))
        if stalled_body is None:
            stalled_body = body
        res.figure("largest_answered", {"body_bytes": len(stalled_body), "reply_bytes": stalled_reply})
        res.note(f"the 4 MiB body is refused (413): the stalled readers send the largest body the "
                 f"server answers ({len(stalled_body)} bytes, reply {stalled_reply / 2**20:.1f} MiB)")
        res.sent(f"(413 for the 4 MiB body, so the stalled readers send the largest answered one: "
                 f"{len(stalled_body)} bytes, reply {stalled_reply / 2**20:.1f} MiB)")
    # --- unloaded b=1
    lat_h, _ = common.measure_b1_http(srv.http_port, count=200)
    lat_g, _ = common.measure_b1_grpc(srv.grpc_target, count=200)
    res.figure("unloaded_b1_ms", {"http": common.lat_summary(lat_h), "grpc": common.lat_summary(lat_g)})
    # --- a dozen clients that never read
    time.sleep(0.5)
    base_rss = srv.rss_mb()
    sampler = common.Sampler(srv, 0.05, abort_mb=base_rss + SAFETY_MB)
    t_start = time.monotonic()
    socks = []
    http_b1 = common.Background(common.measure_b1_http, srv.http_port, timeout=window_s + 30)
    grpc_b1 = common.Background(common.measure_b1_grpc, srv.grpc_target, timeout=window_s + 30)
    send_errors = []
    for _ in range(12):
        try:
            s = common.raw_connect(srv.http_port)
            s.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
            socks.append(s)
            s.sendall(common.http_request_bytes("/tokenize", stalled_body))
        except OSError as e:  # e.g. the server was killed at the safety limit
            send_errors.append(f"{type(e).__name__}: {e}")
    while time.monotonic() - t_start < window_s and not sampler.aborted:
        time.sleep(0.1)
    fds_during = srv.fds()
    (lh, eh), (lg, eg) = http_b1.finish(window_s + 60), grpc_b1.finish(window_s + 60)
    peak = sampler.peak(since=t_start)
    for s in socks:
        s.close()
    time.sleep(1.0)
    sampler.stop()
    after = srv.rss_mb()
    alive = srv.alive()
    growth = None if peak is None else peak - base_rss
    h, g = common.lat_summary(lh), common.lat_summary(lg)
    res.figure("stalled_readers", {
        "clients": 12, "window_s": window_s, "rss_before_mb": common.rnd(base_rss, 1),
        "rss_peak_mb": common.rnd(peak, 1), "rss_growth_mb": common.rnd(growth, 1),
        "rss_after_close_mb": common.rnd(after, 1), "server_fds_during": fds_during,
        "safety_kill": sampler.aborted, "send_errors": send_errors, "b1_http_ms": h, "b1_http_errors": eh,
        "b1_grpc_ms": g, "b1_grpc_errors": eg})
    res.log(f"12 stalled readers: RSS {base_rss:.0f} -> peak {peak:.0f} MB; b=1 p99 http "
            f"{h['p99_ms']} ms ({h['count']} req, errors {eh}), grpc {g['p99_ms']} ms "
            f"({g['count']} req, errors {eg})")
    res.bound("RSS growth with 12 clients not reading",
              f"{growth:.0f}" + (" (server killed at the harness's safety limit)" if sampler.aborted else ""),
              RSS_LIMIT_MB, growth is not None and growth <= RSS_LIMIT_MB and not sampler.aborted, " MB")
    for proto, lat, err in (("http", h, eh), ("grpc", g, eg)):
        res.bound(f"{proto}: b=1 p99 meanwhile ({lat['count']} requests, all answered)",
                  f"{lat['p99_ms']} ms" + (f", errors {err}" if err else ""),
                  f"{P99_LIMIT_MS} ms", lat["p99_ms"] is not None and lat["p99_ms"] <= P99_LIMIT_MS
                  and not err, timing=lat["p99_ms"] is not None and not err)
    res.bound("server alive afterwards", "alive" if alive else f"exited {srv.proc.poll()}",
              "alive", alive)
    if alive:
        code = srv.close()
        res.bound("server exit code after SIGTERM", code, 0, code == 0)
    res.key(f"/tokenize 4 MiB: {outcome} {size / 2**20:.1f} MiB; 12 stalled readers: RSS +"
            f"{growth:.0f} MB; b=1 p99 http {h['p99_ms']} ms, grpc {g['p99_ms']} ms")


if __name__ == "__main__":
    common.main(NAME, run)
