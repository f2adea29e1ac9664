"""What an open /dashboard costs the server: gRPC b=32 x c=8 throughput (encserve bench, MS MARCO
queries) with no page open ("without"), with /stats fetched every second as the page does
("poll": the server's cost alone), and with the page open in headless Chromium ("with": on this
machine, so Chromium's own CPU competes with the server too), in turn, `--repeats` runs each;
prints each run, the medians and their ratios, with the CPU, commit and server flags.

  python3 tools/bench_dashboard.py [--seconds 20] [--repeats 3] [--precision int8]
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
    a = ap.parse_args()
    # (No queue-time bound: a closed loop of 8 b=32 requests on one connection is over half the
    # default 100-ms budget on a slow CPU, and refusals would be measured instead of throughput.)
    flags = ["--threads", str(os.cpu_count()), "--precision", a.precision, "--queue-budget-ms", "0"]
    srv = harness.Server(*flags)
    tmp = tempfile.mkdtemp(prefix="encserve-dash-bench-")
    runs = {"without": [], "poll": [], "with": []}
    try:
        for k in range(a.repeats):
            for mode in ("without", "poll", "with"):
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
    w, wo, po = (statistics.median(runs[m]) for m in ("with", "without", "poll"))
    print(f"\nCPU {cpu} ({os.cpu_count()} cores), commit {commit}, encserve serve {' '.join(flags)}; "
          f"encserve bench gRPC v1 b=32 c=8, {a.seconds:g} s x {a.repeats}")
    print(f"median items/s: without {wo:.1f}; /stats polled every second {po:.1f} "
          f"(ratio {po / wo:.3f}, {(po / wo - 1) * 100:+.1f} %); the page open in Chromium {w:.1f} "
          f"(ratio {w / wo:.3f}, {(w / wo - 1) * 100:+.1f} %)")


if __name__ == "__main__":
    main()
