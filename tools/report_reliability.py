#!/usr/bin/env python3
"""The reliability table from one run of scripts/reliability.sh.

    python3 tools/report_reliability.py RESULT_DIR [--doc docs/reliability.md] [--no-doc]

Reads RESULT_DIR/<scenario>.json (written by tests/reliability/*.py), prints the table
(test | what was sent | what held | figure | date | commit | CPU), writes it to
RESULT_DIR/summary.md and replaces what lies between `<!-- reliability:begin -->` and
`<!-- reliability:end -->` in the doc (default docs/reliability.md; --no-doc: leave it)."""
import argparse
import glob
import json
import os
import sys

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
BEGIN, END = "<!-- reliability:begin -->", "<!-- reliability:end -->"
ORDER = ["overload", "fairness", "priority", "response_size", "connections", "slow_clients", "grpc_invalid",
         "integrity", "soak", "model_faults", "restart"]


def load(result_dir):
    out = []
    for path in glob.glob(os.path.join(result_dir, "*.json")):
        with open(path) as f:
            try:
                doc = json.load(f)
            except ValueError:
                continue
        if isinstance(doc, dict) and "scenario" in doc and "bounds" in doc:
            out.append(doc)
    rank = {n: i for i, n in enumerate(ORDER)}
    out.sort(key=lambda d: (rank.get(d["scenario"], len(ORDER)), d["scenario"]))
    return out


def cell(text):
    return str(text).replace("|", "\\|").replace("\n", " ").strip()


def value_text(b):
    v = b.get("value")
    if isinstance(v, (dict, list)):
        v = json.dumps(v, separators=(",", ":"))
    unit = b.get("unit") or ""
    return f"{v}{unit}"


def held_text(doc, limit=6):
    bounds = doc.get("bounds", [])
    ok = [b for b in bounds if b["pass"]]
    bad = [b for b in bounds if not b["pass"]]
    verdict = "**PASS**" if doc.get("pass") else "**FAIL**"
    s = f"{verdict} {len(ok)}/{len(bounds)} bounds held"
    if bad:
        items = [f"{b['bound']}: {value_text(b)[:120]} (limit {b['limit']}{b.get('unit') or ''})"
                 for b in bad[:limit]]
        if len(bad) > limit:
            items.append(f"and {len(bad) - limit} more")
        s += "; failed: " + "; ".join(items)
    return s


def sent_text(doc):
    servers = "; ".join(doc.get("servers", []))
    sent = "; ".join(s.rstrip(". ") for s in doc.get("sent", []))
    mode = doc.get("mode", "")
    return f"[{mode}] {sent}." + (f" Server: {servers}." if servers else "")


def table(docs):
    lines = ["| test | what was sent | what held | figure | date | commit | CPU |",
             "|---|---|---|---|---|---|---|"]
    for d in docs:
        commit = d.get("commit", "?") + ("-dirty" if d.get("dirty") else "")
        cpu = f"{d.get('cpu', '?')} ({d.get('cores', '?')} cores)"
        lines.append("| " + " | ".join(cell(x) for x in (
            d["scenario"], sent_text(d), held_text(d), d.get("key_figure", ""),
            d.get("date", ""), commit, cpu)) + " |")
    return "\n".join(lines) + "\n"


def write_summary(result_dir, docs):
    total = sum(d.get("duration_s", 0) for d in docs)
    passed = sum(1 for d in docs if d.get("pass"))
    text = (f"# Reliability run {os.path.basename(os.path.normpath(result_dir))}\n\n"
            f"{passed}/{len(docs)} scenarios passed; scenario time {total:.0f} s in all.\n\n"
            + table(docs))
    path = os.path.join(result_dir, "summary.md")
    with open(path, "w") as f:
        f.write(text)
    return path


def update_doc(doc_path, result_dir, docs):
    with open(doc_path) as f:
        text = f.read()
    if BEGIN not in text or END not in text:
        raise SystemExit(f"{doc_path}: markers {BEGIN} / {END} not found")
    head, rest = text.split(BEGIN, 1)
    _, tail = rest.split(END, 1)
    rel = os.path.relpath(os.path.abspath(result_dir), ROOT)
    block = f"{BEGIN}\nFrom `{rel}`:\n\n{table(docs)}{END}"
    with open(doc_path, "w") as f:
        f.write(head + block + tail)


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("result_dir")
    ap.add_argument("--doc", default=os.path.join(ROOT, "docs", "reliability.md"))
    ap.add_argument("--no-doc", action="store_true", help="only print and write summary.md")
    a = ap.parse_args()
    docs = load(a.result_dir)
    if not docs:
        print(f"no scenario results in {a.result_dir}", file=sys.stderr)
        return 1
    print(table(docs), end="")
    write_summary(a.result_dir, docs)
    if not a.no_doc:
        update_doc(a.doc, a.result_dir, docs)
        print(f"updated {os.path.relpath(a.doc, os.getcwd())}", file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
