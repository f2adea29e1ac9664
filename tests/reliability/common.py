"""Shared pieces of the reliability scenarios (issue 17 item 3): the real `encserve serve`
started as tests/integration/harness.py does (free loopback ports, --ready-file), extended with
fixed ports, a command prefix (prlimit), server options the scenario needs but the server may not
have yet, and process sampling (RSS, CPU, descriptors); clients (keep-alive HTTP, asyncio HTTP,
raw sockets, gRPC); the real data sets; the project's load generator; and the Result that each
scenario fills in (what was sent, the figures, every bound with pass/fail) and writes as JSON.

A scenario module defines NAME and run(ctx) and ends with `common.main(NAME, run)`; it runs alone
(`python3 tests/reliability/overload.py --short --out DIR`) or from tests/reliability/run_all.py
(scripts/reliability.sh)."""
import argparse
import asyncio
import datetime
import http.client
import json
import math
import os
import platform
import re
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
import traceback

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(os.path.dirname(HERE))
sys.path.insert(0, os.path.join(ROOT, "tests", "integration"))
import harness  # noqa: E402  (tests/integration/harness.py)

DATA_DIR = os.environ.get("ENCSERVE_DATA_DIR") or os.path.normpath(
    os.path.join(ROOT, "..", "shared", "data"))
CLK_TCK = os.sysconf("SC_CLK_TCK")
INT8 = ("--precision", "int8", "--threads", str(os.cpu_count() or 2))
# Separate cores for the server and its clients, for the scenarios whose bounds are about the
# server's own speed (overload, soak): the server on CPU 0 with one engine thread, every client
# (this process, the load generator, probes: children inherit the affinity) on the other CPUs.
# On a 2-core machine a co-located load generator otherwise takes the server's CPU exactly when
# it works hardest (10x overload), and the figures measure the generator. None: one CPU only.
SPLIT = (os.cpu_count() or 1) >= 2
SERVER_CPU_PREFIX = ("taskset", "-c", "0")
INT8_SPLIT = ("--precision", "int8", "--threads", "1")


def use_client_cpus():
    """Moves this process (and the children it starts from now on) off CPU 0."""
    if SPLIT:
        os.sched_setaffinity(0, set(range(1, os.cpu_count())))
NULL = ("--backend", "null", "--threads", str(os.cpu_count() or 2))
GRPC_OPTIONS = [("grpc.use_local_subchannel_pool", 1),  # one TCP connection per channel
                ("grpc.max_receive_message_length", -1),
                ("grpc.max_send_message_length", -1)]


def log(scenario, msg):
    print(f"[{time.strftime('%H:%M:%S')}] [{scenario}] {msg}", file=sys.stderr, flush=True)


# ---------------------------------------------------------------------------------- statistics

def pct(values, p):
    """Nearest-rank percentile (the smallest sample with at least p % of the samples <= it),
    as `encserve bench` computes it; None for no samples."""
    if not values:
        return None
    s = sorted(values)
    k = max(0, min(len(s) - 1, math.ceil(p / 100.0 * len(s)) - 1))
    return s[k]


def lat_summary(values_s):
    """{count, p50_ms, p99_ms, max_ms} of latencies given in seconds."""
    ms = [v * 1000.0 for v in values_s]
    return {"count": len(ms), "p50_ms": rnd(pct(ms, 50)), "p90_ms": rnd(pct(ms, 90)),
            "p99_ms": rnd(pct(ms, 99)), "max_ms": rnd(max(ms) if ms else None)}


def rnd(x, digits=3):
    return None if x is None else round(float(x), digits)


# ---------------------------------------------------------------------------------- provenance

def commit():
    try:
        h = subprocess.run(["git", "-C", ROOT, "rev-parse", "--short", "HEAD"], capture_output=True,
                           text=True, timeout=10).stdout.strip()
        dirty = subprocess.run(["git", "-C", ROOT, "status", "--porcelain", "--untracked-files=no"],
                               capture_output=True, text=True, timeout=10).stdout.strip() != ""
        return h or "unknown", dirty
    except (OSError, subprocess.SubprocessError):
        return "unknown", False


def cpu_model():
    try:
        with open("/proc/cpuinfo") as f:
            for line in f:
                if line.startswith("model name"):
                    return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or "unknown"


def utc_date():
    return datetime.datetime.now(datetime.timezone.utc).strftime("%Y-%m-%d")


def default_out_dir():
    h, _ = commit()
    return os.path.join(ROOT, "results", "reliability", f"{utc_date()}-{h}")


# ---------------------------------------------------------------------------------- result

class Result:
    """What one scenario sent, what held (bounds), its figures; written as <scenario>.json."""

    def __init__(self, scenario, mode):
        self.scenario = scenario
        self.doc = {"scenario": scenario, "mode": mode, "servers": [], "sent": [], "figures": {},
                    "bounds": [], "notes": [], "unsupported": [], "key_figure": ""}

    def log(self, msg):
        log(self.scenario, msg)

    def sent(self, text):
        self.doc["sent"].append(text)

    def server(self, text):
        if text not in self.doc["servers"]:
            self.doc["servers"].append(text)

    def figure(self, key, value):
        self.doc["figures"][key] = value
        return value

    def note(self, text):
        self.doc["notes"].append(text)
        self.log("note: " + text)

    def key(self, text):
        self.doc["key_figure"] = text

    def bound(self, name, value, limit, ok, unit="", timing=False):
        """One bound: `name` (what must hold), the measured value, the limit, pass/fail.
        timing=True: a latency, time or rate that a busy machine alone can push over its limit
        (nothing lost, wrong or refused amiss); run_all.py retries a --short scenario once when
        only such bounds were crossed."""
        ok = bool(ok)
        self.doc["bounds"].append({"bound": name, "value": value, "limit": limit, "unit": unit,
                                   "pass": ok, "timing": bool(timing)})
        v = f"{value}{unit}" if value is not None else "n/a"
        self.log(f"{'PASS' if ok else 'FAIL'} {name}: {v} (limit {limit}{unit})")
        return ok

    def unsupported(self, option, why):
        """A server option the scenario needs and the server rejected: a failed bound."""
        self.doc["unsupported"].append(option)
        self.bound(f"server supports {option}", f"server rejected {option}: {why}",
                   "accepted", False)

    @property
    def passed(self):
        return bool(self.doc["bounds"]) and all(b["pass"] for b in self.doc["bounds"])


class Ctx:
    def __init__(self, mode, res, out_dir):
        self.mode, self.res, self.out_dir = mode, res, out_dir
        self.servers = []

    @property
    def long(self):
        return self.mode == "long"

    def pick(self, short, long):
        return long if self.long else short


# ---------------------------------------------------------------------------------- server

_serve_help = None


def serve_help():
    global _serve_help
    if _serve_help is None:
        _serve_help = subprocess.run([harness.BINARY, "serve", "--help"], capture_output=True,
                                     text=True, timeout=60).stdout
    return _serve_help


def to_yaml(options):
    """{"http.header_timeout_ms": 2000, ...} -> nested YAML text."""
    tree = {}
    for dotted, value in options.items():
        node = tree
        parts = dotted.split(".")
        for p in parts[:-1]:
            node = node.setdefault(p, {})
        node[parts[-1]] = value

    def emit(node, indent):
        lines = []
        for k, v in node.items():
            if isinstance(v, dict):
                lines.append(" " * indent + f"{k}:")
                lines += emit(v, indent + 2)
            else:
                lines.append(" " * indent + f"{k}: {json.dumps(v)}")
        return lines
    return "\n".join(emit(tree, 0)) + "\n"


class Server(harness.Server):
    """harness.Server with: fixed ports (`ports=(grpc, http)`), a command prefix (e.g. prlimit),
    extra environment, and the pid/RSS/CPU/descriptor readings of the process. The start-up is
    harness.Server's (ready file, logs, timeout); everything else is inherited."""

    def __init__(self, *args, config=None, model=None, timeout=180, ports=(0, 0), prefix=(),
                 env=None):
        self.tmp = tempfile.mkdtemp(prefix="encserve-rel-")
        self.ready_path = os.path.join(self.tmp, "ready.json")
        self.cmd = [*prefix, harness.BINARY, "serve", "--model", model or harness.MODEL_DIR,
                    "--host", "127.0.0.1", "--grpc-port", str(ports[0]),
                    "--http-port", str(ports[1]), "--ready-file", self.ready_path, *args]
        if config is not None:
            path = os.path.join(self.tmp, "server.yaml")
            with open(path, "w") as f:
                f.write(config)
            self.cmd += ["--config", path]
        self.log_path = os.path.join(self.tmp, "server.log")
        self.log = open(self.log_path, "w")
        self.t_spawn = time.monotonic()
        try:
            self.proc = subprocess.Popen(self.cmd, stdout=self.log, stderr=subprocess.STDOUT,
                                         env=None if env is None else {**os.environ, **env})
            while not os.path.exists(self.ready_path):
                if self.proc.poll() is not None:
                    raise RuntimeError(f"server exited with {self.proc.returncode}:\n{self.logs()}")
                if time.monotonic() - self.t_spawn > timeout:
                    self.proc.kill()
                    self.proc.wait()
                    raise RuntimeError(f"server not ready after {timeout}s:\n{self.logs()}")
                time.sleep(0.01)
        except BaseException:
            self.log.close()
            shutil.rmtree(self.tmp, ignore_errors=True)
            raise
        time.sleep(0.01)  # the ready file is written in one go; let the write finish
        with open(self.ready_path) as f:
            info = json.load(f)
        self.ready_s = time.monotonic() - self.t_spawn
        self.grpc_port, self.http_port = info["grpc_port"], info["http_port"]
        self.grpc_target = f"127.0.0.1:{self.grpc_port}"

    @property
    def pid(self):
        return self.proc.pid

    def alive(self):
        return self.proc.poll() is None

    def status_kb(self, field):
        """VmRSS / VmHWM in kB from /proc/<pid>/status (None once the process is gone)."""
        try:
            with open(f"/proc/{self.pid}/status") as f:
                for line in f:
                    if line.startswith(field + ":"):
                        return int(line.split()[1])
        except OSError:
            return None
        return None

    def rss_mb(self):
        kb = self.status_kb("VmRSS")
        return None if kb is None else kb / 1024.0

    def hwm_mb(self):
        kb = self.status_kb("VmHWM")
        return None if kb is None else kb / 1024.0

    def cpu_s(self):
        """utime + stime of the whole process, seconds."""
        try:
            with open(f"/proc/{self.pid}/stat") as f:
                fields = f.read().rsplit(")", 1)[1].split()
            return (int(fields[11]) + int(fields[12])) / CLK_TCK
        except (OSError, IndexError):
            return None

    def fds(self):
        try:
            return len(os.listdir(f"/proc/{self.pid}/fd"))
        except OSError:
            return None

    def log_lines(self):
        return self.logs().splitlines()

    def keep_log(self, out_dir, name, limit=256 * 1024):
        """Copies the log (head and tail when long) next to the results."""
        try:
            text = self.logs()
        except (OSError, ValueError):
            return
        if len(text) > limit:
            text = (text[:limit // 2] + f"\n... [{len(text) - limit} bytes left out] ...\n"
                    + text[-limit // 2:])
        with open(os.path.join(out_dir, name), "w") as f:
            f.write(text)

    def close(self, sig=signal.SIGTERM, timeout=60):
        """Stops the server (if still running); returns the exit code."""
        try:
            return self.stop(sig, timeout)
        except subprocess.TimeoutExpired:
            return "killed after timeout"
        except ValueError:  # log already closed
            return self.proc.poll()


def start_server(ctx, *args, options=None, flags=None, label="server", **kw):
    """Starts Server(*args) with the scenario's server options: `flags` {"--flag": value} and
    `options` {"dotted.yaml.key": value}. An option the server does not know yet (a flag not in
    `serve --help`, a YAML key it calls unknown) is recorded as a failed bound naming it and left
    out, so the rest of the scenario still runs and reports its figures."""
    res = ctx.res
    argv = list(args)
    for flag, value in (flags or {}).items():
        if re.search(re.escape(flag) + r"\b", serve_help()):
            argv += [flag, str(value)]
        else:
            res.unsupported(flag, "not in `encserve serve --help` (not implemented yet)")
    opts = dict(options or {})
    while True:
        try:
            srv = Server(*argv, config=to_yaml(opts) if opts else None, **kw)
            break
        except RuntimeError as e:
            m = re.search(r"unknown key ([\w.]+)", str(e))
            if m and m.group(1) in opts:
                res.unsupported(m.group(1), f"unknown key (not implemented yet): {m.group(0)}")
                del opts[m.group(1)]
                continue
            raise
    srv.label = label
    desc = " ".join(a for a in argv) + "".join(f" {k}={v}" for k, v in opts.items())
    backend = "null backend" if "null" in argv else "MiniLM (all-MiniLM-L6-v2) native"
    if "--precision" in argv:
        backend += " " + argv[argv.index("--precision") + 1]
    elif "null" not in argv:
        backend += " fp32"
    res.server(f"{backend}: encserve serve {desc}".strip())
    ctx.servers.append(srv)
    return srv


class Sampler:
    """Samples a server's RSS (and optionally CPU) every `interval` s in a thread. `abort_mb`:
    kill the server when RSS exceeds it (protects the shared machine; the scenario reports it)."""

    def __init__(self, srv, interval=0.1, abort_mb=None):
        self.srv, self.interval, self.abort_mb = srv, interval, abort_mb
        self.samples = []  # (t, rss_mb)
        self.aborted = False
        self._stop = threading.Event()
        self._t = threading.Thread(target=self._run, daemon=True)
        self._t.start()

    def _run(self):
        while not self._stop.is_set():
            r = self.srv.rss_mb()
            if r is None:
                break
            self.samples.append((time.monotonic(), r))
            if self.abort_mb is not None and r > self.abort_mb and not self.aborted:
                self.aborted = True
                self.srv.proc.kill()
            self._stop.wait(self.interval)

    def stop(self):
        self._stop.set()
        self._t.join(5)

    def peak(self, since=None):
        vals = [r for t, r in self.samples if since is None or t >= since]
        return max(vals) if vals else None

    def between(self, t0, t1):
        return [r for t, r in self.samples if t0 <= t <= t1]


def metric(srv, name, **labels):
    return harness.metric_sum(srv.metrics(), name, **labels)


def hist_quantile_ms(m0, m1, name, q, **labels):
    """The q-quantile (ms, linear within its bucket) of a Prometheus histogram's observations between
    two /metrics readings; None without observations."""
    buckets = {}
    for (n, ls), v in m1.items():
        if n != name + "_bucket" or not all((k, str(val)) in ls for k, val in labels.items()):
            continue
        le = dict(ls)["le"]
        bound = math.inf if le == "+Inf" else float(le)
        buckets[bound] = buckets.get(bound, 0.0) + v - m0.get((n, ls), 0.0)
    if not buckets or max(buckets.values()) <= 0:
        return None
    total, lo, below = buckets[max(buckets)], 0.0, 0.0
    for bound in sorted(buckets):
        if buckets[bound] >= q * total:  # linear within the bucket, as histogram_quantile does
            if math.isinf(bound):
                return None
            share = (q * total - below) / max(buckets[bound] - below, 1e-9)
            return round(1000.0 * (lo + (bound - lo) * share), 3)
        lo, below = bound, buckets[bound]
    return None


def batch_time_ms(m0, m1):
    """Mean forward-pass time per batch between two /metrics readings (ms)."""
    s = harness.metric_sum(m1, "encserve_inference_seconds_sum") - harness.metric_sum(
        m0, "encserve_inference_seconds_sum")
    c = harness.metric_sum(m1, "encserve_inference_seconds_count") - harness.metric_sum(
        m0, "encserve_inference_seconds_count")
    items = harness.metric_sum(m1, "encserve_batch_size_sum") - harness.metric_sum(
        m0, "encserve_batch_size_sum")
    return (1000.0 * s / c if c else None), (items / c if c else None)


# ---------------------------------------------------------------------------------- data

_queries = None


DEFAULT_BUDGET_MS = 100  # the server's queue.budget_ms
BUDGET_PER_B32 = 8


def start_server_budgeted(ctx, *args, budget_ms=DEFAULT_BUDGET_MS, per_b32=BUDGET_PER_B32,
                          flags=None, **kw):
    """start_server with --queue-budget-ms: `budget_ms`, or `per_b32` times one b=32
    request's time alone (measured on this server, MS MARCO queries) when that is more, and the
    server started again with it. On the Xeon with AMX one b=32 request takes about 9 ms of one
    core, a tenth of the default 100-ms budget; on a CPU without AVX-512 it takes about 65 ms,
    and a 100-ms budget then refuses much of what a 70 % load or a second client sends. The
    scenarios keep the budget's proportion to the work instead. Returns (server, budget ms);
    records the figures and a note."""
    flags = dict(flags or {})
    base_ms = budget_ms
    flags["--queue-budget-ms"] = budget_ms
    srv = start_server(ctx, *args, flags=flags, **kw)
    c = KeepAlive(srv.http_port, timeout=60)
    body = embed_body(msmarco_queries()[:32])
    lats = []
    try:
        for _ in range(6):
            st, _, _, dt = c.request("POST", "/embed", body)
            if st == 200:
                lats.append(dt * 1000)
    finally:
        c.close()
    one_ms = sorted(lats[1:])[len(lats[1:]) // 2] if len(lats) > 1 else 0.0
    ctx.res.figure("single_b32_request_ms", round(one_ms, 1))
    if per_b32 * one_ms > budget_ms:
        budget_ms = int(math.ceil(per_b32 * one_ms / 10.0) * 10)
        srv.close()
        flags["--queue-budget-ms"] = budget_ms
        srv = start_server(ctx, *args, flags=flags, **kw)
        ctx.res.note(f"queue budget {budget_ms} ms ({per_b32}x one b=32 request alone, "
                     f"{one_ms:.0f} ms "
                     f"on this CPU) instead of {base_ms} ms")
    ctx.res.figure("queue_budget_ms", budget_ms)
    return srv, budget_ms


def msmarco_queries():
    """The 6,980 MS MARCO dev-small queries (real texts), stripped, non-empty."""
    global _queries
    if _queries is None:
        out = []
        with open(os.path.join(DATA_DIR, "msmarco-dev-small-queries.tsv"), encoding="utf-8") as f:
            for line in f:
                q = line.rstrip("\n").split("\t", 1)[-1].strip()
                if q:
                    out.append(q)
        _queries = out
    return _queries


def dl19_passages(min_chars=0):
    """TREC DL19 BM25 top-100 passages (4,300 real passages), distinct, at least min_chars."""
    with open(os.path.join(DATA_DIR, "trec-dl19-bm25-top100.json"), encoding="utf-8") as f:
        data = json.load(f)
    seen, out = set(), []
    for q in data:
        for h in q["hits"]:
            c = h["content"].strip()
            if len(c) >= min_chars and c not in seen:
                seen.add(c)
                out.append(c)
    return out


def embed_body(texts):
    return json.dumps({"inputs": texts}).encode()


# ---------------------------------------------------------------------------------- HTTP

class KeepAlive:
    """A keep-alive HTTP/1.1 connection (http.client); reconnects after an error or a
    `Connection: close`. request() returns (status, headers lower-case, body, seconds)."""

    def __init__(self, port, timeout=30):
        self.port, self.timeout = port, timeout
        self.conn = None

    def request(self, method, path, body=None, headers=None):
        if self.conn is None:
            self.conn = http.client.HTTPConnection("127.0.0.1", self.port, timeout=self.timeout)
        h = {"Content-Type": "application/json"}
        h.update(headers or {})
        t0 = time.perf_counter()
        try:
            self.conn.request(method, path, body=body, headers=h)
            r = self.conn.getresponse()
            data = r.read()
        except BaseException:
            self.close()
            raise
        dt = time.perf_counter() - t0
        hdrs = {k.lower(): v for k, v in r.getheaders()}
        if hdrs.get("connection", "").lower() == "close":
            self.close()
        return r.status, hdrs, data, dt

    def close(self):
        if self.conn is not None:
            self.conn.close()
            self.conn = None


def measure_b1_http(port, seconds=None, count=None, text="how long do fleas live", stop=None,
                    timeout=10):
    """Sequential b=1 /embed requests on one keep-alive connection; returns (latencies s,
    errors {what: n}). Runs `count` requests, or for `seconds`, or until `stop` is set; a
    request that fails counts its time as latency (so a stall shows) and as an error."""
    c = KeepAlive(port, timeout=timeout)
    lats, errors = [], {}
    body = embed_body([text])
    t_end = None if seconds is None else time.monotonic() + seconds
    n = 0
    while True:
        if count is not None and n >= count:
            break
        if t_end is not None and time.monotonic() >= t_end:
            break
        if stop is not None and stop.is_set():
            break
        n += 1
        t0 = time.perf_counter()
        try:
            st, _, _, dt = c.request("POST", "/embed", body)
            if st != 200:
                errors[f"HTTP {st}"] = errors.get(f"HTTP {st}", 0) + 1
            lats.append(dt)
        except (OSError, http.client.HTTPException) as e:
            errors[type(e).__name__] = errors.get(type(e).__name__, 0) + 1
            lats.append(time.perf_counter() - t0)
            time.sleep(0.01)
    c.close()
    return lats, errors


def measure_b1_grpc(target, seconds=None, count=None, text="how long do fleas live", stop=None,
                    timeout=10):
    """Like measure_b1_http on one gRPC channel (encserve.v1 Embed)."""
    import grpc
    _, _, v1, v1g = harness.stubs()
    lats, errors = [], {}
    t_end = None if seconds is None else time.monotonic() + seconds
    n = 0
    with grpc.insecure_channel(target, options=GRPC_OPTIONS) as ch:
        stub = v1g.EncoderStub(ch)
        req = v1.EmbedRequest(texts=[text])
        while True:
            if count is not None and n >= count:
                break
            if t_end is not None and time.monotonic() >= t_end:
                break
            if stop is not None and stop.is_set():
                break
            n += 1
            t0 = time.perf_counter()
            try:
                stub.Embed(req, timeout=timeout)
            except grpc.RpcError as e:
                errors[e.code().name] = errors.get(e.code().name, 0) + 1
            lats.append(time.perf_counter() - t0)
    return lats, errors


class Background(threading.Thread):
    """Runs fn(*args, stop=event) in a thread; .result after join()."""

    def __init__(self, fn, *args, **kw):
        super().__init__(daemon=True)
        self.fn, self.args, self.kw = fn, args, kw
        self.stop_event = threading.Event()
        self.result, self.error = None, None
        self.start()

    def run(self):
        try:
            self.result = self.fn(*self.args, stop=self.stop_event, **self.kw)
        except BaseException as e:  # reported by finish()
            self.error = e

    def finish(self, timeout=60):
        self.stop_event.set()
        self.join(timeout)
        if self.error is not None:
            raise self.error
        return self.result


def _process_main(fn, args, kw, stop, queue):
    try:
        queue.put(("ok", fn(*args, stop=stop, **kw)))
    except BaseException as e:  # reported by finish()
        queue.put(("error", f"{type(e).__name__}: {e}"))


class BackgroundProcess:
    """Background's interface in a separate interpreter (spawned, not forked: gRPC's threads do
    not survive a fork). For clients that time requests: threads of one process wait on each
    other's GIL (5-ms switch interval, gRPC's own poller threads included), which put ~5 ms on
    the tail of a 1-ms refusal. fn must be a module-level function; its result is pickled back."""

    def __init__(self, fn, *args, **kw):
        import multiprocessing
        ctx = multiprocessing.get_context("spawn")
        self.stop_event = ctx.Event()
        self.queue = ctx.Queue()
        self.proc = ctx.Process(target=_process_main, daemon=True,
                                args=(fn, args, kw, self.stop_event, self.queue))
        self.proc.start()

    def finish(self, timeout=60):
        import queue as queue_mod
        self.stop_event.set()
        try:
            status, value = self.queue.get(timeout=timeout)  # (before join: the pipe may be full)
        except queue_mod.Empty:
            self.proc.kill()
            raise RuntimeError(f"background process {self.proc.pid} gave no result in {timeout} s")
        self.proc.join(timeout)
        if status == "error":
            raise RuntimeError(f"background process failed: {value}")
        return value


class AsyncHttp:
    """A minimal asyncio HTTP/1.1 keep-alive client (Content-Length and chunked replies)."""

    def __init__(self, port, host="127.0.0.1"):
        self.host, self.port = host, port
        self.reader = self.writer = None

    async def connect(self, timeout=10):
        self.reader, self.writer = await asyncio.wait_for(
            asyncio.open_connection(self.host, self.port, limit=1 << 20), timeout)

    @property
    def connected(self):
        return self.writer is not None

    async def request(self, method, path, body=b"", headers=None, timeout=30):
        if self.writer is None:
            await self.connect(timeout)
        h = {"Host": f"{self.host}:{self.port}", "Content-Type": "application/json",
             "Content-Length": str(len(body))}
        h.update(headers or {})
        head = f"{method} {path} HTTP/1.1\r\n" + "".join(f"{k}: {v}\r\n" for k, v in h.items())
        self.writer.write(head.encode() + b"\r\n" + body)
        try:
            return await asyncio.wait_for(self._read_response(), timeout)
        except BaseException:
            self.close()
            raise

    async def _read_response(self):
        line = await self.reader.readline()
        if not line:
            raise ConnectionResetError("connection closed with no reply")
        parts = line.decode("latin-1").split(" ", 2)
        status = int(parts[1])
        headers = {}
        while True:
            line = await self.reader.readline()
            if not line:
                raise ConnectionResetError("connection closed in the reply's headers")
            if line in (b"\r\n", b"\n"):
                break
            k, v = line.decode("latin-1").split(":", 1)
            headers[k.strip().lower()] = v.strip()
        if headers.get("transfer-encoding", "").lower() == "chunked":
            chunks = []
            while True:
                size = int((await self.reader.readline()).split(b";")[0], 16)
                if size == 0:
                    await self.reader.readline()
                    break
                chunks.append(await self.reader.readexactly(size))
                await self.reader.readline()
            body = b"".join(chunks)
        else:
            body = await self.reader.readexactly(int(headers.get("content-length", "0")))
        if headers.get("connection", "").lower() == "close":
            self.close()
        return status, headers, body

    def close(self):
        if self.writer is not None:
            try:
                self.writer.close()
            except (OSError, RuntimeError):
                pass
        self.reader = self.writer = None


# ---------------------------------------------------------------------------------- raw sockets

def raw_connect(port, timeout=5):
    s = socket.create_connection(("127.0.0.1", port), timeout=timeout)
    s.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
    return s


def read_until_close_or_reply(sock, deadline):
    """Reads from `sock` until it closes, a complete status line + headers arrive, or the
    deadline (monotonic). Returns ("reply", status, t) | ("closed", None, t) | ("reset", None, t)
    | ("timeout", None, t) with t = monotonic time of the event."""
    buf = b""
    while True:
        left = deadline - time.monotonic()
        if left <= 0:
            return "timeout", None, time.monotonic()
        sock.settimeout(min(left, 0.5))
        try:
            data = sock.recv(65536)
        except socket.timeout:
            continue
        except (ConnectionResetError, BrokenPipeError):
            return "reset", None, time.monotonic()
        if not data:
            if buf.startswith(b"HTTP/"):
                return "reply", int(buf.split(b" ", 2)[1]), time.monotonic()
            return "closed", None, time.monotonic()
        buf += data
        if buf.startswith(b"HTTP/") and b"\r\n\r\n" in buf:
            return "reply", int(buf.split(b" ", 2)[1]), time.monotonic()


def http_request_bytes(path, body, extra_headers=""):
    return (f"POST {path} HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/json\r\n"
            f"Content-Length: {len(body)}\r\n{extra_headers}\r\n").encode() + body


# ---------------------------------------------------------------------------------- load generator

def bench(ctx, args, timeout):
    """Runs `encserve bench ARGS --json F -q`; returns its JSON (dict) or raises."""
    fd, path = tempfile.mkstemp(prefix="encserve-bench-", suffix=".json")
    os.close(fd)
    cmd = [harness.BINARY, "bench", *[str(a) for a in args], "--data", DATA_DIR, "--json", path, "-q"]
    try:
        p = subprocess.run(cmd, capture_output=True, text=True, timeout=timeout)
        if p.returncode not in (0, 1) or os.path.getsize(path) == 0:
            raise RuntimeError(f"bench failed ({p.returncode}): {' '.join(cmd)}\n{p.stderr[-2000:]}")
        with open(path) as f:
            return json.load(f)
    finally:
        os.unlink(path)


def start_bench(args):
    """Starts `encserve bench` in the background; returns (Popen, json path)."""
    fd, path = tempfile.mkstemp(prefix="encserve-bench-", suffix=".json")
    os.close(fd)
    cmd = [harness.BINARY, "bench", *[str(a) for a in args], "--data", DATA_DIR, "--json", path, "-q"]
    p = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
    return p, path


def finish_bench(p, path, timeout):
    try:
        _, err = p.communicate(timeout=timeout)
        if os.path.getsize(path) == 0:
            raise RuntimeError(f"bench wrote no result ({p.returncode}): {err[-2000:]}")
        with open(path) as f:
            return json.load(f)
    finally:
        os.unlink(path)


# ---------------------------------------------------------------------------------- main

def write_result(out_dir, doc):
    os.makedirs(out_dir, exist_ok=True)
    path = os.path.join(out_dir, f"{doc['scenario']}.json")
    with open(path, "w") as f:
        json.dump(doc, f, indent=2)
        f.write("\n")
    return path


def main(name, run):
    ap = argparse.ArgumentParser(description=f"reliability scenario {name}")
    g = ap.add_mutually_exclusive_group()
    g.add_argument("--short", dest="mode", action="store_const", const="short")
    g.add_argument("--long", dest="mode", action="store_const", const="long")
    ap.add_argument("--out", default=None, help="result folder (default results/reliability/<date>-<commit>)")
    a = ap.parse_args()
    mode = a.mode or "short"
    out_dir = a.out or default_out_dir()
    os.makedirs(out_dir, exist_ok=True)
    res = Result(name, mode)
    ctx = Ctx(mode, res, out_dir)
    h, dirty = commit()
    t0 = time.monotonic()
    started = datetime.datetime.now(datetime.timezone.utc)
    try:
        run(ctx)
    except BaseException as e:  # the harness failed: a failed result, with the traceback
        res.doc["error"] = f"{type(e).__name__}: {e}"
        res.doc["traceback"] = traceback.format_exc()
        res.bound("scenario ran to the end", f"{type(e).__name__}: {str(e)[:300]}",
                  "no harness error", False)
    finally:
        for srv in ctx.servers:
            srv.keep_log(out_dir, f"{name}.{getattr(srv, 'label', 'server')}.log")
            if srv.alive():
                srv.close(signal.SIGKILL, 10)
            shutil.rmtree(srv.tmp, ignore_errors=True)
    for d in sys.path:  # the gRPC stubs harness.stubs() generated for this process
        if os.path.basename(d).startswith("encserve-stubs-") and d.startswith(tempfile.gettempdir()):
            shutil.rmtree(d, ignore_errors=True)
    res.doc.update({"pass": res.passed, "commit": h, "dirty": dirty, "cpu": cpu_model(),
                    "cores": os.cpu_count(), "date": started.strftime("%Y-%m-%dT%H:%M:%SZ"),
                    "duration_s": round(time.monotonic() - t0, 1)})
    write_result(out_dir, res.doc)
    sys.exit(0 if res.passed else 1)


# ---------------------------------------------------------------------------------- server sockets

def _socket_inodes(pid):
    out = set()
    try:
        for fd in os.listdir(f"/proc/{pid}/fd"):
            try:
                link = os.readlink(f"/proc/{pid}/fd/{fd}")
            except OSError:
                continue
            if link.startswith("socket:["):
                out.add(link[8:-1])
    except OSError:
        pass
    return out


def server_holds(srv, sock):
    """Whether the server process still holds (has a descriptor for) the server end of the
    client socket `sock` (looked up in /proc/net/tcp by the two ports)."""
    try:
        client_port = sock.getsockname()[1]
    except OSError:
        return False
    want = f":{srv.http_port:04X}"
    inode = None
    for table in ("/proc/net/tcp", "/proc/net/tcp6"):
        try:
            with open(table) as f:
                next(f)
                for line in f:
                    parts = line.split()
                    local, remote = parts[1], parts[2]
                    if local.endswith(want) and remote.endswith(f":{client_port:04X}"):
                        inode = parts[9]
                        break
        except OSError:
            continue
        if inode:
            break
    return inode not in (None, "0") and inode in _socket_inodes(srv.pid)
