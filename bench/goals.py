"""The regression guard: every ratio issue 17 sets a goal for, read from bench/results/*.json.

    python bench/goals.py [--since EPOCH_SECONDS] [--margin 0.8]

Each goal is a ratio the benchmark measured side by side in one run (so a noisy machine
moves both sides). A ratio passes the guard while it is at least ``--margin`` (80 %) of
its goal; for a ceiling (p99 / p50) the ratio may rise to the goal divided by the margin.
The guard prints one row per goal, met or not, and exits 1 if any ratio falls past the
guard, or if a benchmark's result is missing or older than ``--since`` (it did not run or
did not finish). ``make bench BENCH_ARGS=--quick`` runs it after the benchmarks; CI does
not (CI machines are noisy).
"""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Any

from _common import RESULTS_DIR, report

Document = dict[str, Any]


@dataclass(frozen=True)
class Goal:
    benchmark: str
    name: str
    goal: float
    # "floor": the ratio must reach the goal; "ceiling": it must stay under it.
    kind: str
    # The measured ratios of one run, one per backend or operation: (label, value or None).
    measured: Callable[[Document], Iterator[tuple[str, float | None]]]

    def guard(self, margin: float) -> float:
        return self.goal * margin if self.kind == "floor" else self.goal / margin

    def passes(self, value: float | None, margin: float) -> bool:
        if value is None:
            return False
        # Rounded: 0.8 x 0.8 is 0.6400000000000001 in binary, and 0.64 must pass.
        guard = round(self.guard(margin), 9)
        return value >= guard if self.kind == "floor" else value <= guard

    def met(self, value: float | None) -> bool:
        return self.passes(value, 1.0)


def _lmsr(document: Document) -> Iterator[tuple[str, float | None]]:
    for name, result in document["results"].items():
        if "cost" in name:
            yield name, result["speedup"]


def _trading(mode: str) -> Callable[[Document], Iterator[tuple[str, float | None]]]:
    def measured(document: Document) -> Iterator[tuple[str, float | None]]:
        for row in document["results"]:
            if row["operation"] == "market order" and row["mode"] == mode:
                yield row["backend"], row["vs_transfer_same_mode"]

    return measured


def _rebuild(document: Document) -> Iterator[tuple[str, float | None]]:
    for backend, result in document["results"].items():
        yield backend, result["rebuild_vs_raw"]


def _export(step: str) -> Callable[[Document], Iterator[tuple[str, float | None]]]:
    def measured(document: Document) -> Iterator[tuple[str, float | None]]:
        yield f"{document['events']:,} events, {document['workers']} workers", document["ratios"][f"{step}_vs_raw"]

    return measured


def _api_separate(document: Document) -> Iterator[tuple[str, float | None]]:
    for backend, results in document["results"].items():
        quote, orders = results.get("quote"), results.get("order, own markets")
        yield backend, None if not quote or not orders else round(orders["per_second"] / quote["per_second"], 3)


def _api_hot_tail(document: Document) -> Iterator[tuple[str, float | None]]:
    for backend, results in document["results"].items():
        hot = results.get("order, one market")
        if not hot or hot["failures"]:
            yield f"{backend} (failed requests)" if hot else backend, None
        else:
            yield backend, round(hot["p99_ms"] / hot["p50_ms"], 2) if hot["p50_ms"] else None


GOALS: tuple[Goal, ...] = (
    Goal("lmsr", "buy/sell cost: fixed point vs decimal, times faster", 20.0, "floor", _lmsr),
    Goal("trading", "market orders vs transfers, one per command", 0.8, "floor", _trading("single")),
    Goal("trading", "market orders vs transfers, batched", 0.5, "floor", _trading("batched")),
    Goal("export", "export vs raw keccak(abi.encode) on all cores", 0.6, "floor", _export("export")),
    Goal("export", "verify vs raw keccak(abi.encode) on all cores", 0.6, "floor", _export("verify")),
    Goal("projections", "rebuild vs the library's decoded read", 0.8, "floor", _rebuild),
    Goal("api", "market orders on separate markets vs quotes", 0.5, "floor", _api_separate),
    Goal("api", "hot market p99 / p50 (no failed request)", 5.0, "ceiling", _api_hot_tail),
)


def evaluate(
    documents: dict[str, Document | None], margin: float, only: set[str] | None = None
) -> tuple[list[list[Any]], bool]:
    """One row per measured ratio, and whether all of them pass the guard."""
    rows: list[list[Any]] = []
    ok = True
    for goal in GOALS:
        if only is not None and goal.benchmark not in only:
            continue
        document = documents.get(goal.benchmark)
        measured = list(goal.measured(document)) if document is not None else [("no result from this run", None)]
        if not measured:
            measured = [("no such measurement", None)]
        for label, value in measured:
            passes = goal.passes(value, margin)
            ok = ok and passes
            sign = ">=" if goal.kind == "floor" else "<="
            rows.append(
                [
                    goal.benchmark,
                    goal.name,
                    label,
                    value,
                    f"{sign} {goal.goal:g}",
                    f"{sign} {goal.guard(margin):.3g}",
                    goal.met(value),
                    "pass" if passes else "FAIL",
                ]
            )
    return rows, ok


def load(since: float | None) -> dict[str, Document | None]:
    documents: dict[str, Document | None] = {}
    for benchmark in {goal.benchmark for goal in GOALS}:
        path = RESULTS_DIR / f"{benchmark}.json"
        if not path.exists() or (since is not None and path.stat().st_mtime < since):
            documents[benchmark] = None
            continue
        documents[benchmark] = json.loads(path.read_text())
    return documents


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description="Check the benchmarks' ratios against issue 17's goals.")
    parser.add_argument(
        "--since", type=float, help="only results written after this Unix time count (older ones: missing)"
    )
    parser.add_argument("--margin", type=float, default=0.8, help="share of each goal a ratio must keep (0.8)")
    parser.add_argument(
        "--only", action="append", help="check only this benchmark's goals (repeatable; default: all of them)"
    )
    args = parser.parse_args(argv)
    if not 0 < args.margin <= 1:
        parser.error("--margin must be in (0, 1]")
    rows, ok = evaluate(load(args.since), args.margin, set(args.only) if args.only else None)
    report(
        "goals",
        f"Issue 17 goals; the guard fails below {args.margin:.0%} of a goal",
        ["benchmark", "goal", "measured on", "ratio", "target", "guard", "met", "result"],
        rows,
        {"benchmark": "goals", "margin": args.margin, "ok": ok, "rows": rows},
    )
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
