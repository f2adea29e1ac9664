"""The reliability runner's retry rule (tests/reliability/run_all.py): in --short, a scenario
that crossed only timing bounds runs once more and the second result stands; one that crossed a
bound on anything lost or wrong is never retried; --long never retries. Fake scenarios stand in
for the real ones: each run appends a line to a counter file and reads its verdicts from a
plan."""
import json
import os
import sys
import tempfile
import unittest

HERE = os.path.dirname(os.path.abspath(__file__))
RELIABILITY = os.path.normpath(os.path.join(HERE, "..", "reliability"))
sys.path.insert(0, RELIABILITY)
import run_all  # noqa: E402

# A scenario: try k (0-based) takes plan[k] = [timing bound passes, correctness bound passes].
FAKE = """import json, os, sys
sys.path.insert(0, {reliability!r})
import common
out = sys.argv[sys.argv.index("--out") + 1]
runs = os.path.join({here!r}, "{name}.runs")
k = sum(1 for _ in open(runs)) if os.path.exists(runs) else 0
open(runs, "a").write("run\\n")
timing_ok, lost_ok = {plan!r}[k]
res = common.Result("{name}", "short")
res.bound("p99 latency", 1 if timing_ok else 9, 5, timing_ok, " ms", timing=True)
res.bound("requests lost", 0 if lost_ok else 3, 0, lost_ok)
res.doc["pass"] = res.passed
common.write_result(out, res.doc)
"""


class RetryRule(unittest.TestCase):
    def setUp(self):
        self.dir = tempfile.mkdtemp(prefix="encserve-relh-")
        self.out = os.path.join(self.dir, "out")

    def scenario(self, name, plan):
        with open(os.path.join(self.dir, f"{name}.py"), "w") as f:
            f.write(FAKE.format(reliability=RELIABILITY, here=self.dir, name=name, plan=plan))

    def run_it(self, name, mode="short"):
        doc = run_all.run_scenario(name, mode, self.out, 60, "test", False, here=self.dir)
        runs = os.path.join(self.dir, f"{name}.runs")
        with open(runs) as f:
            tries = sum(1 for _ in f)
        with open(os.path.join(self.out, f"{name}.json")) as f:
            self.assertEqual(json.load(f), doc, "the result file is the returned result")
        return doc, tries

    def test_timing_only_miss_is_retried_and_the_second_result_stands(self):
        self.scenario("t1", [[False, True], [True, True]])
        doc, tries = self.run_it("t1")
        self.assertEqual(tries, 2)
        self.assertTrue(doc["pass"])
        self.assertIn("p99 latency", " ".join(doc["notes"]))

    def test_a_second_timing_miss_fails(self):
        self.scenario("t2", [[False, True], [False, True]])
        doc, tries = self.run_it("t2")
        self.assertEqual(tries, 2)
        self.assertFalse(doc["pass"])

    def test_a_correctness_miss_is_not_retried(self):
        self.scenario("t3", [[False, False], [True, True]])
        doc, tries = self.run_it("t3")
        self.assertEqual(tries, 1)
        self.assertFalse(doc["pass"])

    def test_long_never_retries(self):
        self.scenario("t4", [[False, True], [True, True]])
        doc, tries = self.run_it("t4", mode="long")
        self.assertEqual(tries, 1)
        self.assertFalse(doc["pass"])

    def test_a_pass_runs_once(self):
        self.scenario("t5", [[True, True]])
        doc, tries = self.run_it("t5")
        self.assertEqual(tries, 1)
        self.assertTrue(doc["pass"])


class CoreCancelledRule(unittest.TestCase):
    """restart.judge_core_cancelled: gRPC core's CANCELLED at shutdown counts as refused only
    when the server's exit account matches what the clients received."""
    LINE = ("[encserve] gRPC calls: 800 reached a handler, 800 answered (OK 799, UNAVAILABLE 1), "
            "0 of them cancelled, their answer not delivered (client gone, its deadline or the "
            "shutdown deadline)")

    def setUp(self):
        import grpc  # noqa: F401  (restart imports it)
        import restart
        self.r = restart
        self.tally = {"grpc OK": 799, restart.BY_SERVER + "UNAVAILABLE (draining)": 1,
                      restart.CORE_CANCELLED: 2, "grpc refused: UNAVAILABLE (connection refused)": 9}

    def test_the_account_line_parses(self):
        self.assertEqual(self.r.server_account("x\n" + self.LINE + "\nstopped\n"),
                         {"reached": 800, "answered": {"OK": 799, "UNAVAILABLE": 1},
                          "cancelled": 0})
        self.assertIsNone(self.r.server_account("stopped\n"))

    def test_a_matching_account_makes_them_refusals(self):
        ok, _ = self.r.judge_core_cancelled(self.tally, self.r.server_account(self.LINE))
        self.assertTrue(ok)

    def test_any_mismatch_makes_them_losses(self):
        acc = self.r.server_account(self.LINE)
        fewer_ok = dict(self.tally, **{"grpc OK": 798})  # an OK the server sent went missing
        self.assertFalse(self.r.judge_core_cancelled(fewer_ok, acc)[0])
        self.assertFalse(self.r.judge_core_cancelled(self.tally, dict(acc, cancelled=1))[0])
        self.assertFalse(self.r.judge_core_cancelled(self.tally, dict(acc, reached=801))[0])
        self.assertFalse(self.r.judge_core_cancelled(self.tally, None)[0])


if __name__ == "__main__":
    unittest.main()
