"""The benchmark guard (bench/goals.py): a ratio passes down to 80 % of its goal and fails
below it, a ceiling the other way round, and a missing measurement fails.

bench/ puts the checkout first on the import path when it is imported, so the guard runs
in a child process here and the test session's path stays as it is."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

BENCH = Path(__file__).resolve().parents[2] / "bench"

CHILD = """
import json, sys
sys.path.insert(0, sys.argv[1])
import goals
documents = json.loads(sys.stdin.read())
rows, ok = goals.evaluate(documents, 0.8, set(documents))
print(json.dumps({"ok": ok, "rows": [[row[2], row[3], row[7]] for row in rows]}))
"""


def evaluate(documents: dict) -> dict:
    done = subprocess.run(
        [sys.executable, "-c", CHILD, str(BENCH)],
        input=json.dumps(documents),
        capture_output=True,
        text=True,
        check=True,
        timeout=60,
    )
    return json.loads(done.stdout.strip().splitlines()[-1])


def projections(*ratios: float) -> dict:
    return {"projections": {"results": {f"backend{i}": {"rebuild_vs_raw": r} for i, r in enumerate(ratios)}}}


def test_guard_when_ratio_is_at_or_above_80_percent_of_its_goal_then_passes() -> None:
    result = evaluate(projections(0.8, 0.64))
    assert result["ok"] is True
    assert [row[2] for row in result["rows"]] == ["pass", "pass"]


def test_guard_when_one_ratio_falls_below_80_percent_then_fails_naming_it() -> None:
    result = evaluate(projections(0.9, 0.63))
    assert result["ok"] is False
    assert result["rows"] == [["backend0", 0.9, "pass"], ["backend1", 0.63, "FAIL"]]


def test_guard_when_a_ceiling_ratio_rises_past_goal_over_margin_then_fails() -> None:
    def api(p99: float, failures: int = 0) -> dict:
        hot = {"p50_ms": 10.0, "p99_ms": p99, "failures": failures, "per_second": 100.0}
        orders = {"per_second": 50.0}
        return {
            "api": {
                "results": {
                    "sqlite": {"quote": {"per_second": 100.0}, "order, own markets": orders, "order, one market": hot}
                }
            }
        }

    assert evaluate(api(62.5))["ok"] is True  # p99 = 6.25 x p50 = 5 / 0.8
    assert evaluate(api(63.0))["ok"] is False
    assert evaluate(api(20.0, failures=1))["ok"] is False  # a failed request fails the goal


def test_guard_when_a_benchmark_left_no_result_then_fails() -> None:
    result = evaluate({"export": None})
    assert result["ok"] is False
    assert all(row[2] == "FAIL" for row in result["rows"]) and len(result["rows"]) == 2
