"""Runs the reliability scenarios (scripts/reliability.sh): each one as its own process (its own
process group, killed with its servers if it runs past its time limit), progress on stderr,
results in results/reliability/<UTC date>-<short commit>/<scenario>.json plus summary.md.
Exit status 1 when any bound is crossed (or a scenario failed to finish), 2 for bad arguments."""
import argparse
import json
import os
import signal
import subprocess
import sys
import time

import common

sys.path.insert(0, os.path.join(common.ROOT, "tools"))
import report_reliability  # noqa: E402  (tools/report_reliability.py)

SCENARIOS = report_reliability.ORDER
# Time limits per scenario (s): the short versions finish in well under a minute each.
LIMIT = {"short": 240, "long": 3600}
LIMIT_LONG = {"soak": 2400}


def run_scenario(name, mode, out, limit, commit, dirty, here=common.HERE):
    """Runs scenario `name` (here/<name>.py): its result doc. In --short, a first try that
    crossed only timing bounds (a latency, a time, a CPU or refusal share: nothing lost, wrong
    or crashed) runs once more; on a shared CI machine the neighbours alone can push those over
    in a 10-s window. The second result stands, its notes naming what the first try crossed."""
    doc = run_one(name, mode, out, limit, commit, dirty, here)
    bad = [b for b in doc["bounds"] if not b["pass"]]
    if not bad or mode != "short" or not all(b.get("timing") for b in bad):
        return doc
    names = "; ".join(b["bound"] for b in bad)
    print(f"    timing bounds crossed: {names}; trying {name} once more", file=sys.stderr,
          flush=True)
    doc = run_one(name, mode, out, limit, commit, dirty, here)
    doc["notes"].append(f"first try crossed timing bounds only (retried once, --short): {names}")
    common.write_result(out, doc)
    return doc


def run_one(name, mode, out, limit, commit, dirty, here):
    """Runs one scenario as its own process group, killed past `limit` s: its result doc."""
    path = os.path.join(out, f"{name}.json")
    if os.path.exists(path):
        os.unlink(path)
    t0 = time.monotonic()
    p = subprocess.Popen([sys.executable, os.path.join(here, f"{name}.py"), f"--{mode}",
                          "--out", out], start_new_session=True)
    try:
        p.wait(limit)
    except subprocess.TimeoutExpired:
        os.killpg(p.pid, signal.SIGKILL)  # the scenario and the servers it started
        p.wait()
    took = time.monotonic() - t0
    if os.path.exists(path):
        with open(path) as f:
            return json.load(f)
    res = common.Result(name, mode)
    res.bound("scenario finished", f"no result after {took:.0f} s (exit {p.returncode})",
              f"within {limit} s", False)
    doc = res.doc
    doc.update({"pass": False, "commit": commit, "dirty": dirty, "cpu": common.cpu_model(),
                "cores": os.cpu_count(), "date": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
                "duration_s": round(took, 1)})
    common.write_result(out, doc)
    return doc


def main():
    ap = argparse.ArgumentParser(prog="scripts/reliability.sh", description=__doc__)
    g = ap.add_mutually_exclusive_group()
    g.add_argument("--short", dest="mode", action="store_const", const="short",
                   help="the CI versions (default): each well under a minute, all <= 5 min on 2 cores")
    g.add_argument("--long", dest="mode", action="store_const", const="long",
                   help="the figures of record (soak 30 min, overload 60 s, ...)")
    ap.add_argument("--out", help="result folder (default results/reliability/<UTC date>-<commit>)")
    ap.add_argument("scenario", nargs="*", help=f"any of: {' '.join(SCENARIOS)} (default all)")
    a = ap.parse_args()
    mode = a.mode or "short"
    names = a.scenario or SCENARIOS
    unknown = [n for n in names if n not in SCENARIOS]
    if unknown:
        print(f"unknown scenario(s): {' '.join(unknown)}; known: {' '.join(SCENARIOS)}", file=sys.stderr)
        return 2
    if not os.access(common.harness.BINARY, os.X_OK):
        print(f"no server binary at {common.harness.BINARY} (build first: bash scripts/build.sh)",
              file=sys.stderr)
        return 2
    out = a.out or common.default_out_dir()
    os.makedirs(out, exist_ok=True)
    commit, dirty = common.commit()
    print(f"reliability {mode}: {len(names)} scenario(s) -> {out} (commit {commit}"
          f"{' + local changes' if dirty else ''}, {common.cpu_model()}, {os.cpu_count()} cores)",
          file=sys.stderr, flush=True)
    t_all = time.monotonic()
    failed = []
    for i, name in enumerate(names, 1):
        limit = LIMIT_LONG.get(name, LIMIT[mode]) if mode == "long" else LIMIT[mode]
        print(f"=== [{i}/{len(names)}] {name} started ({mode}, limit {limit} s)", file=sys.stderr, flush=True)
        t0 = time.monotonic()
        doc = run_scenario(name, mode, out, limit, commit, dirty)
        bad = [b["bound"] for b in doc["bounds"] if not b["pass"]]
        took = time.monotonic() - t0
        verdict = "PASS" if doc.get("pass") else "FAIL"
        print(f"=== [{i}/{len(names)}] {name} finished: {verdict} in {took:.0f} s: "
              f"{doc.get('key_figure', '')}", file=sys.stderr, flush=True)
        if bad:
            print(f"    bounds crossed: {'; '.join(bad)}", file=sys.stderr, flush=True)
            failed.append(name)
    docs = report_reliability.load(out)
    summary = report_reliability.write_summary(out, docs)
    total = time.monotonic() - t_all
    print(f"reliability {mode}: {len(names) - len(failed)}/{len(names)} passed in {total:.0f} s; "
          f"{summary}" + (f"; failed: {' '.join(failed)}" if failed else ""), file=sys.stderr, flush=True)
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
