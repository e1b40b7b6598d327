"""Market orders per second on SQLite and PostgreSQL, beside transfers from the same run.

Modes, per backend (each gets a fresh SQLite file or PostgreSQL schema):

- transfer, single:      ``app.transfer`` once per command (the foundation's figure)
- transfer, batched:     ``app.transfer_many`` of ``--batch-size`` transfers per call
- market order, single:  ``app.open_position`` once per command, agents round-robin over
                         ``--markets`` artifacts, sides alternating so prices stay sane
- market order, batched: ``app.trade_batch`` of ``--batch-size`` MarketOrders per call

Transfers and orders take turns: single commands in ``--rounds`` rounds, batched ones one call
each at a time, and each side's seconds are summed, so the machine's load swings hit both.

A market order writes a debit and a credit, an Artifact.Traded and a Position.Opened:
four events against a transfer's two. Both run on the same store kinds, in the same
process, one after the other, so their ratio is meaningful on a noisy machine.

    python bench/trading.py [--quick] [--orders N] [--batches B] [--batch-size S] [--rounds R] [--backend ...]
"""

from __future__ import annotations

import argparse
from contextlib import ExitStack
from typing import Any

from _common import (
    BACKENDS,
    backend_version,
    fresh_store,
    log,
    machine_info,
    measure,
    per_second,
    postgres_server,
    report,
)

from stakeledger.adapters.persistence.store_url import open_ledger
from stakeledger.domain.decisions.trading import MarketOrder
from stakeledger.domain.service.application import StakeLedger, TransferRequest
from stakeledger.domain.service.clock import ManualClock
from stakeledger.domain.vocabulary import Side

TOKEN = 10**18
AGENTS = [f"trader-{i}" for i in range(20)]


def prepared_ledger(url: str, markets: int) -> StakeLedger:
    app = open_ledger(url, clock=ManualClock())
    app.initialise(decimals=18)
    for agent in AGENTS:
        app.open_account(agent)
        app.mint(agent, 10**9 * TOKEN)
    for index in range(markets):
        app.list_artifact(f"BENCH-{index}", f"benchmark market {index}", 1_000_000 * TOKEN, min_hold_days=0)
    return app


def order(i: int, markets: int) -> MarketOrder:
    return MarketOrder(
        AGENTS[i % len(AGENTS)], f"BENCH-{i % markets}", Side.LONG if i % 2 == 0 else Side.SHORT, 10 * TOKEN
    )


def run_backend(backend: str, server_url: str | None, args: argparse.Namespace) -> list[dict[str, Any]]:
    """Each mode runs in ``--rounds`` rounds, transfers and orders taking turns, and each side's
    seconds are summed over its rounds: a load that comes and goes on the machine (or a slow
    stretch of fsyncs) then falls on both sides of a ratio instead of on whichever ran during it."""
    seconds = {key: 0.0 for key in ("transfer single", "order single", "transfer batched", "order batched")}
    with fresh_store(backend, server_url, "trading") as url:
        app = prepared_ledger(url, args.markets)
        try:

            def transfer(i: int) -> None:
                app.transfer(AGENTS[i % 20], AGENTS[(i + 1) % 20], TOKEN)

            def market_order(i: int) -> None:
                app.open_position(*_args(order(i, args.markets)))

            measure(transfer, 20)  # warm-up
            measure(market_order, 20)
            batch = [TransferRequest(AGENTS[i % 20], AGENTS[(i + 3) % 20], TOKEN) for i in range(args.batch_size)]
            orders = [order(i, args.markets) for i in range(args.batch_size)]
            per_round = max(args.orders // args.rounds, 1)
            for number in range(args.rounds):
                offset = 20 + number * per_round
                seconds["transfer single"] += measure(lambda i, at=offset: transfer(at + i), per_round)
                seconds["order single"] += measure(lambda i, at=offset: market_order(at + i), per_round)
            for _ in range(args.batches):
                seconds["transfer batched"] += measure(lambda _: app.transfer_many(batch))
                seconds["order batched"] += measure(lambda _: app.trade_batch(orders))
        finally:
            app.close()
    singles, batched = per_round * args.rounds, args.batches * args.batch_size
    return [
        row(backend, "transfer", "single", singles, seconds["transfer single"], 2),
        row(backend, "transfer", "batched", batched, seconds["transfer batched"], 2),
        row(backend, "market order", "single", singles, seconds["order single"], 4),
        row(backend, "market order", "batched", batched, seconds["order batched"], 4),
    ]


def _args(o: MarketOrder) -> tuple[str, str, str, int]:
    return o.agent, o.artifact_id, o.side.value, o.tokens_units


def row(backend: str, operation: str, mode: str, count: int, seconds: float, events_each: int) -> dict[str, Any]:
    return {
        "backend": backend,
        "operation": operation,
        "mode": mode,
        "count": count,
        "seconds": round(seconds, 4),
        "per_second": round(per_second(count, seconds), 1),
        "events_per_second": round(per_second(count * events_each, seconds), 1),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--quick", action="store_true", help="a fast smoke run")
    parser.add_argument("--orders", type=int, default=1_000, help="single commands per mode")
    parser.add_argument("--batches", type=int, default=5, help="batched calls per mode")
    parser.add_argument("--batch-size", type=int, default=1_000)
    parser.add_argument("--markets", type=int, default=8)
    parser.add_argument("--rounds", type=int, default=10, help="turns single transfers and orders take (default 10)")
    parser.add_argument("--backend", action="append", choices=BACKENDS)
    args = parser.parse_args()
    if args.quick:
        args.orders, args.batches, args.batch_size, args.rounds = 100, 2, 200, 5
    backends = args.backend or list(BACKENDS)
    rows: list[dict[str, Any]] = []
    versions = {}
    with ExitStack() as stack:
        server_url = stack.enter_context(postgres_server()) if "postgresql" in backends else None
        for backend in backends:
            log(f"{backend}: measuring")
            rows += run_backend(backend, server_url, args)
            versions[backend] = backend_version(backend, server_url)
    for r in rows:
        transfer = next(
            x for x in rows if x["backend"] == r["backend"] and x["operation"] == "transfer" and x["mode"] == r["mode"]
        )
        r["vs_transfer_same_mode"] = round(r["per_second"] / transfer["per_second"], 3)
    report(
        "trading",
        "Market orders vs transfers (per second)",
        ["backend", "operation", "mode", "count", "per second", "events/s", "vs transfer"],
        [
            [
                r["backend"],
                r["operation"],
                r["mode"],
                r["count"],
                r["per_second"],
                r["events_per_second"],
                r["vs_transfer_same_mode"],
            ]
            for r in rows
        ],
        {
            "benchmark": "trading",
            "machine": machine_info(),
            "versions": versions,
            "settings": vars(args),
            "results": rows,
        },
    )


if __name__ == "__main__":
    main()
