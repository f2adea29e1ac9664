"""slow_clients: hostile HTTP clients against the server's timeouts (http.header_timeout_ms,
http.body_timeout_ms, http.idle_timeout_ms, http.write_timeout_ms: 2000 each in the short
version, the defaults 10000 / 30000 / 60000 / 10000 in the long one). Each case must end in a
timeout or an error within its timeout + 1.5 s (a reply, the connection closed, or the server
releasing its end of the connection, seen in /proc), never hold a worker:
slowloris (headers one byte per second), a body that never finishes (Content-Length 1000, 10
bytes sent), a client that vanishes mid-request (half the body) and mid-response (1,024-text
/embed, closed unread), a client that never reads a large reply (write timeout), an idle
keep-alive connection (idle timeout), 3 pipelined requests in one write (all answered in order),
a 100 KB header (431 or 400), a 10,000-character URL (a 4xx). While 50 slowloris connections
are kept open, a normal client's b=1 p99 stays <= 2x its unloaded p99 + 5 ms.
Server: MiniLM native int8."""
import json
import socket
import threading
import time

import common

NAME = "slow_clients"
SLACK_S = 1.5


def timeouts(ctx):
    if ctx.long:
        return {"http.header_timeout_ms": 10000, "http.body_timeout_ms": 30000,
                "http.idle_timeout_ms": 60000, "http.write_timeout_ms": 10000}
    return {"http.header_timeout_ms": 2000, "http.body_timeout_ms": 2000,
            "http.idle_timeout_ms": 2000, "http.write_timeout_ms": 2000}


def wait_accepted(srv, sock, timeout=3.0):
    """Waits until the server holds its end of the connection (accepted it)."""
    t0 = time.monotonic()
    while time.monotonic() - t0 < timeout:
        if common.server_holds(srv, sock):
            return True
        time.sleep(0.01)
    return False


def wait_released(srv, sock, t_ref, deadline):
    """Until the deadline: the connection is closed/reset/answered on the client side or the
    server released its end (after having accepted it). Returns (what, seconds since t_ref)."""
    if not wait_accepted(srv, sock, max(0.0, deadline - time.monotonic())):
        return "held (never accepted)", time.monotonic() - t_ref
    sock.setblocking(False)
    while time.monotonic() < deadline:
        try:
            data = sock.recv(65536, socket.MSG_PEEK)
            if not data:
                return "closed by the server", time.monotonic() - t_ref
            if data.startswith(b"HTTP/"):
                return f"reply {data.split(b' ', 2)[1].decode()}", time.monotonic() - t_ref
        except BlockingIOError:
            pass
        except (ConnectionResetError, BrokenPipeError):
            return "reset by the server", time.monotonic() - t_ref
        if not common.server_holds(srv, sock):
            return "released by the server", time.monotonic() - t_ref
        time.sleep(0.05)
    return "held (timeout)", time.monotonic() - t_ref


def case_slowloris(srv, limit_s):
    s = common.raw_connect(srv.http_port)
    t0 = time.monotonic()
    head = b"POST /embed HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/json\r\n" \
           b"Content-Length: 40\r\nX-Padding: " + b"a" * 200 + b"\r\n\r\n"
    deadline = t0 + limit_s + SLACK_S + 3.0
    i = 0
    what = "held (timeout)"
    while time.monotonic() < deadline and i < len(head):
        try:
            s.sendall(head[i:i + 1])
        except OSError:
            what = "reset by the server"
            break
        i += 1
        what, _ = wait_released(srv, s, t0, time.monotonic() + 1.0)
        if not what.startswith("held"):
            break
    took = time.monotonic() - t0
    s.close()
    return what, took


def case_body_stall(srv, limit_s):
    s = common.raw_connect(srv.http_port)
    s.sendall(b"POST /embed HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/json\r\n"
              b"Content-Length: 1000\r\n\r\n" + b'{"inputs":')
    t0 = time.monotonic()
    what, took = wait_released(srv, s, t0, t0 + limit_s + SLACK_S + 3.0)
    s.close()
    return what, took


def case_vanish_mid_request(srv, limit_s):
    body = common.embed_body(["half a body is never a request"] * 20)
    s = common.raw_connect(srv.http_port)
    raw = common.http_request_bytes("/embed", body)
    s.sendall(raw[:len(raw) - len(body) // 2])
    held_before = wait_accepted(srv, s)
    time.sleep(0.1)
    # Close, then watch the server's end through /proc (by port) from another socket object.
    port = s.getsockname()[1]
    t0 = time.monotonic()
    s.close()
    ghost = _Ghost(port)
    while time.monotonic() - t0 < limit_s + SLACK_S + 3.0:
        if not common.server_holds(srv, ghost):
            what = "released by the server" if held_before else "held (never accepted)"
            return what, time.monotonic() - t0
        time.sleep(0.05)
    return "held (timeout)", time.monotonic() - t0


class _Ghost:
    """Stands for a closed client socket in server_holds (only its port is looked at)."""

    def __init__(self, port):
        self.port = port

    def getsockname(self):
        return ("127.0.0.1", self.port)


def case_vanish_mid_response(srv, limit_s, texts):
    before = common.metric(srv, "encserve_dropped_items_total")
    s = common.raw_connect(srv.http_port)
    s.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
    s.sendall(common.http_request_bytes("/embed", common.embed_body(texts)))
    held_before = wait_accepted(srv, s)
    time.sleep(0.05)
    port = s.getsockname()[1]
    t0 = time.monotonic()
    s.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, b"\x01\x00\x00\x00\x00\x00\x00\x00")
    s.close()  # RST: gone mid-request/response
    ghost = _Ghost(port)
    what = "held (timeout)"
    while time.monotonic() - t0 < limit_s + SLACK_S + 3.0:
        if not common.server_holds(srv, ghost):
            what = "released by the server" if held_before else "held (never accepted)"
            break
        time.sleep(0.05)
    took = time.monotonic() - t0
    time.sleep(0.5)
    dropped = common.metric(srv, "encserve_dropped_items_total") - before
    return what, took, dropped


def case_never_reads(srv, limit_s, texts):
    s = common.raw_connect(srv.http_port)
    s.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
    s.sendall(common.http_request_bytes("/embed", common.embed_body(texts)))
    t0 = time.monotonic()
    deadline = t0 + limit_s + 5.0 + 3.0
    what = "held (timeout)" if wait_accepted(srv, s) else "held (never accepted)"
    while what != "held (never accepted)" and time.monotonic() < deadline:
        if not common.server_holds(srv, s):
            what = "released by the server"
            break
        time.sleep(0.05)
    took = time.monotonic() - t0
    s.close()
    return what, took


def case_idle(srv, limit_s):
    s = common.raw_connect(srv.http_port)
    s.sendall(b"GET /health HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n")
    what, status, _ = common.read_until_close_or_reply(s, time.monotonic() + 5)
    time.sleep(0.05)
    try:  # drain the reply's body
        s.setblocking(False)
        s.recv(65536)
    except BlockingIOError:
        pass
    t0 = time.monotonic()
    what, took = wait_released(srv, s, t0, t0 + limit_s + SLACK_S + 3.0)
    s.close()
    return what, took


def read_responses(sock, n, deadline):
    """Reads n HTTP responses (Content-Length bodies) from sock; returns [(status, body)]."""
    buf, out = b"", []
    sock.settimeout(0.5)
    while len(out) < n and time.monotonic() < deadline:
        while b"\r\n\r\n" in buf and len(out) < n:
            head, rest = buf.split(b"\r\n\r\n", 1)
            length = 0
            for line in head.split(b"\r\n")[1:]:
                k, _, v = line.partition(b":")
                if k.strip().lower() == b"content-length":
                    length = int(v)
            if len(rest) < length:
                break
            out.append((int(head.split(b" ", 2)[1]), rest[:length]))
            buf = rest[length:]
        if len(out) >= n:
            break
        try:
            data = sock.recv(65536)
        except socket.timeout:
            continue
        except OSError:
            break
        if not data:
            break
        buf += data
    return out


def case_pipelined(srv):
    words = ["alpha", "bravo", "charlie"]
    raw = b"".join(common.http_request_bytes("/tokenize", json.dumps({"inputs": [w]}).encode())
                   for w in words)
    s = common.raw_connect(srv.http_port)
    t0 = time.monotonic()
    s.sendall(raw)
    got = read_responses(s, 3, t0 + 10)
    took = time.monotonic() - t0
    s.close()
    order = []
    for st, body in got:
        try:
            order.append(json.loads(body)[0][1]["text"] if st == 200 else f"HTTP {st}")
        except (ValueError, IndexError, KeyError, TypeError):
            order.append("unparsable")
    return order, took


def case_huge_header(srv):
    s = common.raw_connect(srv.http_port)
    t0 = time.monotonic()
    try:
        s.sendall(b"GET /health HTTP/1.1\r\nHost: 127.0.0.1\r\nX-Huge: " + b"h" * 100_000 + b"\r\n\r\n")
    except OSError:
        pass
    what, status, t = common.read_until_close_or_reply(s, t0 + 10)
    s.close()
    return (f"reply {status}" if what == "reply" else what), t - t0, status


def case_long_url(srv):
    s = common.raw_connect(srv.http_port)
    t0 = time.monotonic()
    s.sendall(b"GET /" + b"u" * 10_000 + b" HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n")
    what, status, t = common.read_until_close_or_reply(s, t0 + 10)
    s.close()
    return (f"reply {status}" if what == "reply" else what), t - t0, status


def slowloris_swarm(srv, n, stop=None):
    """Keeps n slowloris connections open (one header byte per second each; a closed one is
    reopened); returns how many were opened in all."""
    head = b"POST /embed HTTP/1.1\r\nHost: 127.0.0.1\r\nX-Slow: " + b"s" * 10_000
    conns = []
    opened = 0
    while not stop.is_set():
        while len(conns) < n:
            try:
                conns.append([common.raw_connect(srv.http_port), 0])
                opened += 1
            except OSError:
                break
        for c in list(conns):
            sock, i = c
            try:
                sock.sendall(head[i % len(head):i % len(head) + 1])
                c[1] += 1
            except OSError:
                sock.close()
                conns.remove(c)
        stop.wait(1.0)
    for sock, _ in conns:
        sock.close()
    return opened


def run(ctx):
    res = ctx.res
    t = timeouts(ctx)
    swarm_s = ctx.pick(8, 30)
    srv = common.start_server(ctx, *common.INT8, options=t)
    unsupported = set(res.doc["unsupported"])
    lim = {k.split(".")[1]: v / 1000.0 for k, v in t.items()}
    res.figure("timeouts_s", lim)
    if unsupported:
        res.note("timeouts the server does not know yet are checked against the values asked for")
    texts = [common.msmarco_queries()[i] for i in range(1024)]
    # --- normal client, unloaded then next to 50 slowloris connections
    common.measure_b1_http(srv.http_port, count=50)
    lat0, _ = common.measure_b1_http(srv.http_port, seconds=3)
    base = common.lat_summary(lat0)
    swarm = common.Background(slowloris_swarm, srv, 50)
    time.sleep(1.0)
    lat1, err1 = common.measure_b1_http(srv.http_port, seconds=swarm_s)
    opened = swarm.finish(30)
    during = common.lat_summary(lat1)
    limit = round(2 * base["p99_ms"] + 5, 3)
    res.sent(f"b=1 /embed client unloaded 3 s, then {swarm_s} s next to 50 slowloris connections "
             "(1 header byte/s, reopened when closed)")
    res.figure("b1_unloaded_ms", base)
    res.figure("b1_with_50_slowloris_ms", during)
    res.figure("slowloris_connections_opened", opened)
    res.log(f"b=1 p99 unloaded {base['p99_ms']} ms, with 50 slowloris {during['p99_ms']} ms "
            f"({opened} slowloris connections opened)")
    res.bound("b=1 p99 next to 50 slowloris connections (<= 2x unloaded p99 + 5 ms)",
              f"{during['p99_ms']} ms" + (f", errors {err1}" if err1 else ""), f"{limit} ms",
              during["p99_ms"] is not None and during["p99_ms"] <= limit and not err1,
              timing=during["p99_ms"] is not None and not err1)
    # --- the cases, all at once (each on its own connection)
    res.sent("slowloris, body stall (CL 1000, 10 bytes), vanish mid-request, vanish mid-response "
             "(1,024 texts), never-reading client (1,024 texts), idle keep-alive, 3 pipelined "
             "requests, 100 KB header, 10,000-char URL; all at once")
    out = {}

    def go(name, fn, *a):
        def body():
            try:
                out[name] = fn(*a)
            except Exception as e:  # reported as the case's outcome
                out[name] = (f"harness error {type(e).__name__}: {e}", None)
        th = threading.Thread(target=body, daemon=True)
        th.start()
        return th
    ths = [go("slowloris", case_slowloris, srv, lim["header_timeout_ms"]),
           go("body_stall", case_body_stall, srv, lim["body_timeout_ms"]),
           go("vanish_mid_request", case_vanish_mid_request, srv, lim["body_timeout_ms"]),
           go("vanish_mid_response", case_vanish_mid_response, srv, lim["write_timeout_ms"], texts),
           go("never_reads", case_never_reads, srv, lim["write_timeout_ms"], texts),
           go("idle", case_idle, srv, lim["idle_timeout_ms"]),
           go("pipelined", case_pipelined, srv),
           go("huge_header", case_huge_header, srv),
           go("long_url", case_long_url, srv)]
    for th in ths:
        th.join(300)
    figs = {k: [common.rnd(x, 3) if isinstance(x, float) else x for x in v] for k, v in out.items()}
    res.figure("cases", figs)

    def timed(name, limit_s, label):
        """A reply, a close, a reset or the server releasing the connection all end a case."""
        what, took = out[name][0], out[name][1]
        ok = took is not None and not what.startswith(("held", "harness")) and took <= limit_s
        res.bound(label, f"{what} after {took:.2f} s" if took is not None else what,
                  f"<= {limit_s:.1f} s", ok)
    timed("slowloris", lim["header_timeout_ms"] + SLACK_S,
          "slowloris (1 header byte/s) ended within the header timeout")
    timed("body_stall", lim["body_timeout_ms"] + SLACK_S,
          "body that never finishes ended within the body timeout")
    timed("vanish_mid_request", SLACK_S,
          "client gone mid-request: connection released")
    timed("vanish_mid_response", lim["write_timeout_ms"] + SLACK_S,
          "client gone mid-response (1,024-text /embed): connection released")
    timed("never_reads", lim["write_timeout_ms"] + 5.0,
          "client never reading a 1,024-text reply: released within the write timeout (+5 s compute)")
    timed("idle", lim["idle_timeout_ms"] + SLACK_S,
          "idle keep-alive connection closed within the idle timeout")
    order, took = out["pipelined"]
    res.bound("3 pipelined requests answered in order", f"{order} in {took:.2f} s" if took else order,
              "['alpha', 'bravo', 'charlie']", order == ["alpha", "bravo", "charlie"])
    what, took, status = (out["huge_header"] if len(out["huge_header"]) == 3
                          else (out["huge_header"][0], None, None))
    res.bound("100 KB header: 431 or 400", f"{what}" + (f" after {took:.2f} s" if took else ""),
              "431 or 400 within 10 s", status in (400, 431))
    what, took, status = (out["long_url"] if len(out["long_url"]) == 3
                          else (out["long_url"][0], None, None))
    res.bound("10,000-char URL: a 4xx", f"{what}" + (f" after {took:.2f} s" if took else ""),
              "4xx within 10 s", status is not None and 400 <= status < 500)
    if len(out["vanish_mid_response"]) == 3:
        res.figure("vanish_mid_response_dropped_items", out["vanish_mid_response"][2])
    alive = srv.alive() and srv.http("GET", "/health")[0] == 200
    res.bound("server serving afterwards", "yes" if alive else "no", "yes", alive)
    code = srv.close()
    res.bound("server exit code after SIGTERM", code, 0, code == 0)
    held = [k for k, v in out.items() if str(v[0]).startswith("held")]
    res.key(f"b=1 p99 {base['p99_ms']} -> {during['p99_ms']} ms with 50 slowloris; held: "
            f"{', '.join(held) if held else 'none'}")


if __name__ == "__main__":
    common.main(NAME, run)
