"""The LMSR's rounded amounts: the fixed-point fast path beside the decimal reference, same run.

Each operation is priced over the same seeded markets (a liquidity of 1,000,000 tokens at 18
decimals, quantities up to 10**24 units, trades of 1 to 100 tokens) by both implementations,
with every remembered spread term forgotten before each pass, so both pay for every
logarithm they need. The best of ``--repeat`` passes counts. The answers are compared too:
the benchmark fails if the two disagree on any amount.

    python bench/lmsr.py [--quick] [--cases N] [--repeat R]
"""

from __future__ import annotations

import argparse
import random
import time
from collections.abc import Callable
from typing import Any

from _common import log, machine_info, report

from stakeledger.domain.rules import lmsr
from stakeledger.domain.vocabulary import WAD, Side

TOKEN = 10**18
B_UNITS = 1_000_000 * TOKEN


def markets(count: int, seed: int = 2026) -> list[tuple[int, int, int, Side, int]]:
    rng = random.Random(seed)
    return [
        (
            rng.randrange(10**24),
            rng.randrange(10**24),
            rng.randrange(1, WAD),
            rng.choice([Side.LONG, Side.SHORT]),
            rng.randrange(TOKEN, 100 * TOKEN),
        )
        for _ in range(count)
    ]


def forget() -> None:
    lmsr._spread_term_at.cache_clear()
    lmsr._spread_term_scaled.cache_clear()


OPERATIONS: dict[str, tuple[Callable[..., Any], Callable[..., Any], Callable[..., tuple]]] = {
    # name: (fast, reference, arguments from one market)
    "buy cost": (lmsr.buy_cost_units, lmsr.reference_buy_cost_units, lambda m: (m[0], m[1], B_UNITS, m[3], m[4])),
    "sell proceeds": (
        lmsr.sell_proceeds_units,
        lmsr.reference_sell_proceeds_units,
        lambda m: (m[0] + m[4], m[1] + m[4], B_UNITS, m[3], m[4]),
    ),
    "shares for tokens": (
        lmsr.shares_for_tokens,
        lmsr.reference_shares_for_tokens,
        lambda m: (m[0], m[1], B_UNITS, m[3], m[4]),
    ),
    "prices": (lmsr.prices_wad, lmsr.reference_prices_wad, lambda m: (m[0], m[1], B_UNITS)),
    "shares to reach price": (
        lmsr.shares_to_reach_price,
        lmsr.reference_shares_to_reach_price,
        lambda m: (m[0], m[1], B_UNITS, m[2]),
    ),
}


def best_pass(fn: Callable[..., Any], calls: list[tuple], repeat: int) -> tuple[float, list[Any]]:
    best, answers = float("inf"), []
    for _ in range(repeat):
        forget()
        started = time.perf_counter()
        answers = [fn(*arguments) for arguments in calls]
        best = min(best, time.perf_counter() - started)
    return best / len(calls), answers


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--quick", action="store_true", help="few cases, one pass: a smoke run")
    parser.add_argument("--cases", type=int, default=400, help="markets priced per pass (default 400)")
    parser.add_argument("--repeat", type=int, default=5, help="passes per implementation; the best counts")
    args = parser.parse_args()
    # Best of three even when quick: one pass of 40 cases is at the mercy of one noisy spell.
    cases, repeat = (40, 3) if args.quick else (args.cases, args.repeat)

    lmsr.buy_cost_units(1, 0, B_UNITS, Side.LONG, TOKEN)  # build the fixed-point tables outside the timing
    sample = markets(cases)
    rows, results = [], {}
    for name, (fast, reference, arguments_of) in OPERATIONS.items():
        log(f"{name}: {cases} markets, {repeat} passes each")
        calls = [arguments_of(market) for market in sample]
        fast_seconds, fast_answers = best_pass(fast, calls, repeat)
        reference_seconds, reference_answers = best_pass(reference, calls, repeat)
        if fast_answers != reference_answers:
            raise SystemExit(f"{name}: the fast path and the reference disagree")
        speedup = reference_seconds / fast_seconds
        rows.append([name, fast_seconds * 1e6, reference_seconds * 1e6, speedup])
        results[name] = {
            "fast_us": round(fast_seconds * 1e6, 2),
            "reference_us": round(reference_seconds * 1e6, 2),
            "speedup": round(speedup, 2),
            "agree": True,
        }
    report(
        "lmsr",
        f"LMSR amounts, fixed point vs decimal reference ({cases} markets, best of {repeat})",
        ["operation", "fixed point us", "decimal us", "speedup"],
        rows,
        {"benchmark": "lmsr", "cases": cases, "repeat": repeat, "machine": machine_info(), "results": results},
    )


if __name__ == "__main__":
    main()
