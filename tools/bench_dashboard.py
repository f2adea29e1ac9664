"""What an open /dashboard costs the server: gRPC b=32 x c=8 throughput (encserve bench, MS MARCO
queries) with no page open ("without"), with /stats fetched every second as the page does
("poll": the server's cost alone), and with the page open in headless Chromium ("with": on this
machine, so Chromium's own CPU competes with the server too), in turn, `--repeats` rounds of one run each;
prints each run, the medians, and the ratio to "without" of the same round (paired: slow drift
of the machine cancels) with its mean and 95 % interval, with the CPU, commit and server flags.

  python3 tools/bench_dashboard.py [--seconds 20] [--repeats 3] [--precision int8]
                                   [--modes without,poll,with]
Needs build/encserve (or $ENCSERVE_BIN), the default model and Debian's chromium."""
import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import threading

ROOT = os.path.abspath(os.path.join(os.path.dirname(__file__), ".."))
sys.path.insert(0, os.path.join(ROOT, "tests", "integration"))
import browser  # noqa: E402
import harness  # noqa: E402


def bench(port, seconds, out):
    subprocess.run([harness.BINARY, "bench", "--protocol", "grpc", "--api", "v1", "--target",
                    f"127.0.0.1:{port}", "-b", "32", "-c", "8", "--warmup-seconds", "2", "-d",
                    str(seconds), "--json", out, "-q"], check=True)
    with open(out) as f:
        return json.load(f)["items_per_s"]


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--seconds", type=float, default=20)
    ap.add_argument("--repeats", type=int, default=3)
    ap.add_argument("--precision", default="int8")
    ap.add_argument("--modes", default="without,poll,with",
                    help="comma-separated, 'without' first: without, poll, with")
    a = ap.parse_args()
    modes = a.modes.split(",")
    if modes[0] != "without" or not set(modes) <= {"without", "poll", "with"}:
        ap.error("--modes: 'without' first, then any of poll, with")
    # (No queue-time bound: a closed loop of 8 b=32 requests on one connection is over half the
    # default 100-ms budget on a slow CPU, and refusals would be measured instead of throughput.)
    flags = ["--threads", str(os.cpu_count()), "--precision", a.precision, "--queue-budget-ms", "0"]
    srv = harness.Server(*flags)
    tmp = tempfile.mkdtemp(prefix="encserve-dash-bench-")
    runs = {"without": [], "poll": [], "with": []}
    try:
        for k in range(a.repeats):
            for mode in modes:
                b = None
                stop = threading.Event()
                if mode == "poll":
                    def poll():
                        while not stop.wait(1.0):
                            srv.http("GET", "/stats")
                    poller = threading.Thread(target=poll)
                    poller.start()
                if mode == "with":
                    b = browser.Browser()
                    b.open(f"http://127.0.0.1:{srv.http_port}/dashboard")
                    b.wait_for("window.encserveDashboard && window.encserveDashboard.updates >= 1")
                try:
                    ips = bench(srv.grpc_port, a.seconds, os.path.join(tmp, f"{mode}{k}.json"))
                    updates = b.evaluate("window.encserveDashboard.updates") if b else 0
                finally:
                    stop.set()
                    if mode == "poll":
                        poller.join()
                    if b:
                        b.close()
                runs[mode].append(ips)
                print(f"run {k + 1} {mode:7s} dashboard: {ips:8.1f} items/s"
                      + (f" (page updated {updates} times)" if b else ""), flush=True)
    finally:
        srv.stop()
    cpu = next((l.split(":", 1)[1].strip() for l in open("/proc/cpuinfo")
                if l.startswith("model name")), "?")
    commit = subprocess.run(["git", "-C", ROOT, "rev-parse", "--short", "HEAD"],
                            capture_output=True, text=True).stdout.strip()
    print(f"\nCPU {cpu} ({os.cpu_count()} cores), commit {commit}, encserve serve {' '.join(flags)}; "
          f"encserve bench gRPC v1 b=32 c=8, {a.seconds:g} s x {a.repeats}")
    wo = statistics.median(runs["without"])
    print(f"median items/s without a dashboard: {wo:.1f}")
    names = {"poll": "/stats polled every second", "with": "the page open in Chromium"}
    for mode in modes[1:]:
        ratios = [x / y for x, y in zip(runs[mode], runs["without"])]
        mean = statistics.mean(ratios)
        # 95 % interval of the mean ratio (Student's t for the rounds we have).
        half = (T95.get(len(ratios) - 1, 1.96) * statistics.stdev(ratios) / len(ratios) ** 0.5
                if len(ratios) > 1 else float("nan"))
        print(f"{names[mode]}: median {statistics.median(runs[mode]):.1f} items/s; paired ratio "
              f"to without: mean {mean:.3f} ({(mean - 1) * 100:+.1f} %), 95 % interval "
              f"{mean - half:.3f}..{mean + half:.3f}, per round "
              + " ".join(f"{r:.3f}" for r in ratios))


# Student's t, two-sided 95 %, by degrees of freedom.
T95 = {1: 12.71, 2: 4.30, 3: 3.18, 4: 2.78, 5: 2.57, 6: 2.45, 7: 2.36, 8: 2.31, 9: 2.26,
       10: 2.23, 11: 2.20, 12: 2.18, 13: 2.16, 14: 2.14, 15: 2.13, 16: 2.12, 17: 2.11,
       18: 2.10, 19: 2.09, 20: 2.09}


if __name__ == "__main__":
    main()
