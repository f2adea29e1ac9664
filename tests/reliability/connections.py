"""connections: (a) 1,000 concurrent keep-alive HTTP connections and 200 gRPC channels (one TCP
connection each), every one sending b=1 requests (~1 per second each) for 10 s (short) / 60 s
(long): zero dropped connections or errors. (b) descriptor exhaustion: the server under
`prlimit --nofile=256:256` (it cannot raise it), idle TCP connections opened to the HTTP port
until it is at the limit (and 64 beyond): ONE clear log line about the limit, server CPU < 20 %
of a core over 2 s at the limit (no spinning), a new connection is refused or closed (or
answered) within 5 s rather than left hanging, and after the idle connections close both HTTP and
gRPC answer again within 2 s. (c) a second server on the same gRPC port must exit non-zero with
a clear error. Server: null backend (only the server matters)."""
import asyncio
import os
import random
import re
import signal
import socket
import subprocess
import tempfile
import time

import grpc

import common
from common import harness

NAME = "connections"
N_HTTP, N_GRPC = 1000, 200
NOFILE = 256
LIMIT_LINE = re.compile(r"(?i)too many open files|EMFILE|file descriptor|descriptor limit|nofile")


async def http_conn(port, t_end, stats, i, body):
    c = common.AsyncHttp(port)
    await asyncio.sleep(i * 0.001)  # connects spread over ~1 s
    try:
        await c.connect(timeout=10)
    except (OSError, asyncio.TimeoutError) as e:
        stats["connect_errors"][type(e).__name__] = stats["connect_errors"].get(type(e).__name__, 0) + 1
        return
    stats["connected"] += 1
    reconnects = 0
    await asyncio.sleep(random.uniform(0, 1.0))
    while time.monotonic() < t_end:
        try:
            st, _, _ = await c.request("POST", "/embed", body, timeout=30)
            if st == 200:
                stats["ok"] += 1
            else:
                stats["errors"][f"HTTP {st}"] = stats["errors"].get(f"HTTP {st}", 0) + 1
        except (OSError, asyncio.TimeoutError, asyncio.IncompleteReadError, ValueError) as e:
            stats["errors"][type(e).__name__] = stats["errors"].get(type(e).__name__, 0) + 1
        if not c.connected:
            reconnects += 1  # the server closed the connection (or it broke)
        await asyncio.sleep(random.uniform(0.5, 1.5))
    stats["dropped"] += reconnects
    c.close()


async def grpc_chan(target, t_end, stats, i):
    _, _, v1, v1g = harness.stubs()
    await asyncio.sleep(i * 0.005)
    async with grpc.aio.insecure_channel(target, options=common.GRPC_OPTIONS) as ch:
        stub = v1g.EncoderStub(ch)
        req = v1.EmbedRequest(texts=["how many channels can a server hold"])
        await asyncio.sleep(random.uniform(0, 1.0))
        while time.monotonic() < t_end:
            try:
                await stub.Embed(req, timeout=30)
                stats["grpc_ok"] += 1
            except grpc.aio.AioRpcError as e:
                stats["grpc_errors"][e.code().name] = stats["grpc_errors"].get(e.code().name, 0) + 1
            await asyncio.sleep(random.uniform(0.5, 1.5))
        stats["grpc_state_at_end"].setdefault(str(ch.get_state()), 0)
        stats["grpc_state_at_end"][str(ch.get_state())] += 1


async def many(srv, seconds):
    stats = {"connected": 0, "ok": 0, "errors": {}, "connect_errors": {}, "dropped": 0,
             "grpc_ok": 0, "grpc_errors": {}, "grpc_state_at_end": {}}
    t_end = time.monotonic() + seconds + 1.5
    body = common.embed_body(["how many connections can a server hold"])
    tasks = [http_conn(srv.http_port, t_end, stats, i, body) for i in range(N_HTTP)]
    tasks += [grpc_chan(srv.grpc_target, t_end, stats, i) for i in range(N_GRPC)]

    async def fds_peak():
        peak = 0
        while time.monotonic() < t_end:
            peak = max(peak, srv.fds() or 0)
            await asyncio.sleep(0.5)
        stats["server_fds_peak"] = peak
    await asyncio.gather(*tasks, fds_peak())
    return stats


def part_many(ctx, srv):
    res = ctx.res
    seconds = ctx.pick(10, 60)
    res.sent(f"{N_HTTP} keep-alive HTTP connections + {N_GRPC} gRPC channels (own TCP connection "
             f"each), b=1 /embed or Embed every 0.5-1.5 s on each, {seconds} s")
    t0 = time.monotonic()
    stats = asyncio.run(many(srv, seconds))
    stats["seconds"] = round(time.monotonic() - t0, 1)
    res.figure("many_connections", stats)
    res.log(f"{stats['connected']} HTTP connections, {stats['ok']} ok, errors {stats['errors']}, "
            f"dropped {stats['dropped']}; gRPC {stats['grpc_ok']} ok, errors {stats['grpc_errors']}; "
            f"server fds peak {stats.get('server_fds_peak')}")
    errs = sum(stats["errors"].values()) + sum(stats["connect_errors"].values()) + sum(
        stats["grpc_errors"].values())
    res.bound(f"{N_HTTP} HTTP + {N_GRPC} gRPC connections: errors", errs, 0, errs == 0)
    res.bound("dropped HTTP connections (closed by the server or broken)",
              stats["dropped"] + (N_HTTP - stats["connected"]), 0,
              stats["dropped"] == 0 and stats["connected"] == N_HTTP)
    return stats


def try_new_connection(port, wait_s):
    """A new connection + GET /health: what happens within wait_s."""
    t0 = time.monotonic()
    try:
        s = socket.create_connection(("127.0.0.1", port), timeout=wait_s)
    except socket.timeout:
        return "connect timed out (SYN not answered: backlog full)", time.monotonic() - t0
    except ConnectionRefusedError:
        return "refused", time.monotonic() - t0
    except OSError as e:
        return f"connect error {e.errno}", time.monotonic() - t0
    try:
        s.sendall(b"GET /health HTTP/1.1\r\nHost: x\r\n\r\n")
    except OSError:
        s.close()
        return "reset on send", time.monotonic() - t0
    what, status, t = common.read_until_close_or_reply(s, t0 + wait_s)
    s.close()
    return (f"reply {status}" if what == "reply" else what), t - t0


def serves_again(srv, limit_s):
    """Seconds until a new HTTP connection gets /health 200 AND a new gRPC channel gets Embed OK
    (polling every 50 ms), or None after limit_s."""
    _, _, v1, v1g = harness.stubs()
    t0 = time.monotonic()
    http_ok = grpc_ok = None
    while time.monotonic() - t0 < limit_s and (http_ok is None or grpc_ok is None):
        if http_ok is None:
            try:
                c = common.KeepAlive(srv.http_port, timeout=0.5)
                st, _, _, _ = c.request("GET", "/health")
                c.close()
                if st == 200:
                    http_ok = time.monotonic() - t0
            except OSError:
                pass
        if grpc_ok is None:
            try:
                with grpc.insecure_channel(srv.grpc_target, options=common.GRPC_OPTIONS) as ch:
                    v1g.EncoderStub(ch).Embed(v1.EmbedRequest(texts=["back"]), timeout=0.5)
                grpc_ok = time.monotonic() - t0
            except grpc.RpcError:
                pass
        time.sleep(0.05)
    return http_ok, grpc_ok


def part_exhaustion(ctx):
    res = ctx.res
    res.sent(f"server under prlimit --nofile={NOFILE}:{NOFILE}; idle TCP connections to the HTTP "
             "port until it is at the limit (+64), new connection attempts, then all closed")
    srv = common.start_server(ctx, *common.NULL, prefix=("prlimit", f"--nofile={NOFILE}:{NOFILE}", "--"),
                              label="fdlimit")
    with open(f"/proc/{srv.pid}/limits") as f:
        lim = [ln for ln in f if ln.startswith("Max open files")]
    res.figure("server_nofile_limit", lim[0].split()[3:5] if lim else None)
    base_fds = srv.fds()
    lines0 = len(srv.log_lines())
    socks, at_limit, extra = [], None, 0
    t0 = time.monotonic()
    outcome = "cap of 2000 reached"
    fds_seen = []  # server descriptors after every 16 connections
    while len(socks) < 2000:
        try:
            s = socket.create_connection(("127.0.0.1", srv.http_port), timeout=1.0)
            socks.append(s)
        except socket.timeout:
            outcome = "connect timed out"
            break
        except OSError as e:
            outcome = f"connect error: {e}"
            break
        if at_limit is None:
            if len(socks) % 16 == 0:
                time.sleep(0.01)
                fds_seen.append(srv.fds() or 0)
                # At the limit: the descriptors stopped growing over the last 48 connections
                # (the server closes new ones or leaves them in the backlog) or hit NOFILE.
                if fds_seen[-1] >= NOFILE - 1 or (len(fds_seen) >= 4 and fds_seen[-1] <= fds_seen[-4]):
                    at_limit = len(socks)
        else:
            extra += 1
            if extra >= 64:
                outcome = "at the limit + 64"
                break
    time.sleep(1.0)
    fds_at = srv.fds()
    lines = srv.log_lines()[lines0:]
    limit_lines = [ln for ln in lines if LIMIT_LINE.search(ln)]
    cpu0 = srv.cpu_s()
    time.sleep(2.0)
    cpu1 = srv.cpu_s()
    cpu_share = None if cpu0 is None or cpu1 is None else (cpu1 - cpu0) / 2.0
    new_conn, new_conn_s = try_new_connection(srv.http_port, 5.0)
    lines = srv.log_lines()[lines0:]
    limit_lines = [ln for ln in lines if LIMIT_LINE.search(ln)]
    t_close = time.monotonic()
    for s in socks:
        s.close()
    http_back, grpc_back = serves_again(srv, 10.0)
    fig = {"idle_connections_opened": len(socks), "server_at_limit_after": at_limit,
           "open_stopped_because": outcome, "seconds_to_open": round(t_close - t0, 2),
           "server_fds_before": base_fds, "server_fds_at_limit": fds_at,
           "log_lines_during": len(lines), "log_lines_about_limit": len(limit_lines),
           "first_limit_lines": limit_lines[:3], "last_log_lines": lines[-3:],
           "cpu_share_at_limit": common.rnd(cpu_share), "new_connection": new_conn,
           "new_connection_s": common.rnd(new_conn_s), "http_back_s": common.rnd(http_back),
           "grpc_back_s": common.rnd(grpc_back)}
    res.figure("descriptor_exhaustion", fig)
    res.log(f"fd limit: {len(socks)} idle connections (server at {fds_at} fds), "
            f"{len(limit_lines)} log lines about it ({len(lines)} lines in all), CPU "
            f"{cpu_share if cpu_share is None else round(cpu_share * 100, 1)} % at the limit, "
            f"new connection: {new_conn} after {new_conn_s:.2f} s; back: http {common.rnd(http_back)} s, "
            f"grpc {common.rnd(grpc_back)} s")
    res.bound("server stopped taking connections at its descriptor limit (fds stopped growing)",
              f"after {at_limit} connections, {fds_at} fds" if at_limit else f"no ({fds_at} fds)",
              f"<= {NOFILE} fds", at_limit is not None)
    res.bound("log lines about the descriptor limit while at it", len(limit_lines), 1,
              len(limit_lines) == 1)
    res.bound("server CPU at the limit (2 s)", None if cpu_share is None else round(cpu_share * 100, 1),
              20, cpu_share is not None and cpu_share < 0.20, " % of a core",
              timing=cpu_share is not None)
    res.bound("a new connection at the limit is refused/closed within 5 s (no hang)",
              f"{new_conn} after {new_conn_s:.2f} s", "refused, closed, reset or answered",
              new_conn != "timeout")
    back = None if http_back is None or grpc_back is None else max(http_back, grpc_back)
    res.bound("HTTP and gRPC serve again after the idle connections close",
              common.rnd(back) if back is not None else f"http {http_back}, grpc {grpc_back} (10 s)", 2.0,
              back is not None and back <= 2.0, " s", timing=back is not None)
    code = srv.close()
    res.bound("fd-limited server exit code after SIGTERM", code, 0, code == 0)
    return fig


def part_same_port(ctx, first):
    res = ctx.res
    res.sent(f"a second server started on the first one's gRPC port {first.grpc_port}")
    tmp = tempfile.mkdtemp(prefix="encserve-rel-")
    ready = os.path.join(tmp, "ready.json")
    logp = os.path.join(tmp, "second.log")
    cmd = [harness.BINARY, "serve", *common.NULL, "--model", harness.MODEL_DIR, "--host", "127.0.0.1",
           "--grpc-port", str(first.grpc_port), "--http-port", "0", "--ready-file", ready]
    t0 = time.monotonic()
    with open(logp, "w") as logf:
        p = subprocess.Popen(cmd, stdout=logf, stderr=subprocess.STDOUT)
        became_ready = False
        while time.monotonic() - t0 < 30:
            if p.poll() is not None:
                break
            if os.path.exists(ready):
                became_ready = True
                break
            time.sleep(0.05)
        took = time.monotonic() - t0
        if p.poll() is None:
            p.send_signal(signal.SIGTERM)
            try:
                p.wait(20)
            except subprocess.TimeoutExpired:
                p.kill()
                p.wait()
            code = None
        else:
            code = p.returncode
    with open(logp) as f:
        text = f.read()
    clear = bool(re.search(r"(?i)(address already in use|in use|cannot bind|could not bind|failed to bind)",
                           text)) and str(first.grpc_port) in text
    err_lines = [ln for ln in text.splitlines() if re.search(r"(?i)error|bind|in use", ln)]
    fig = {"exit_code": code, "became_ready": became_ready, "seconds": round(took, 2),
           "error_lines": err_lines[:5]}
    res.figure("second_server_same_grpc_port", fig)
    res.log(f"second server on gRPC port {first.grpc_port}: "
            + ("became ready (bound the port)" if became_ready else f"exit {code} in {took:.1f} s")
            + (f": {err_lines[0]}" if err_lines else ""))
    res.bound("second server on the same gRPC port exits non-zero",
              "became ready" if became_ready else code, "non-zero exit",
              not became_ready and code not in (None, 0))
    res.bound("its error names the port and says it is in use",
              err_lines[0] if err_lines else "no error line", "clear error", clear)
    first_ok = first.alive() and first.http("GET", "/health")[0] == 200
    res.bound("first server unaffected", "serving" if first_ok else "not serving", "serving", first_ok)
    try:
        os.unlink(logp)
        if os.path.exists(ready):
            os.unlink(ready)
        os.rmdir(tmp)
    except OSError:
        pass


def run(ctx):
    res = ctx.res
    srv = common.start_server(ctx, *common.NULL)
    stats = part_many(ctx, srv)
    part_same_port(ctx, srv)
    code = srv.close()
    res.bound("server exit code after SIGTERM", code, 0, code == 0)
    fig = part_exhaustion(ctx)
    res.key(f"{stats['connected']}+{N_GRPC} conns: {sum(stats['errors'].values())} errors, "
            f"{stats['dropped']} dropped; fd limit: {fig['log_lines_about_limit']} log lines, CPU "
            f"{fig['cpu_share_at_limit']}, new conn {fig['new_connection']}, back in "
            f"{fig['http_back_s']}/{fig['grpc_back_s']} s")


if __name__ == "__main__":
    common.main(NAME, run)
