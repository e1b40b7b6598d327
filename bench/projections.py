"""Rebuilding every view from zero, in events per second, on SQLite and PostgreSQL, beside
the eventsourcing library's raw decoded read rate measured in the same run.

Per backend, on a fresh store:

1. build a seeded log of at least ``--events`` (200,000) events through the application's
   own commands: agents and mints, artifact markets with batched market and limit orders,
   closes, flagged/challenged/validated/deprecated lifecycles that settle thousands of
   positions, bounties, and batched transfers for the rest;
2. raw decoded read: ``select_notifications`` pages of ``--page-size`` (default 50,000, the
   rebuild's own page size) and ``mapper.to_domain_event`` for every event of the log, and
   nothing else: the floor any runner built on the library pays;
3. rebuild: ``Runner.rebuild`` of every view: drop, then catch up page by page, then build
   the secondary indexes. SQLite: the views write their rows and tracking positions in one
   transaction per page, and the WAL is checkpointed at the end. PostgreSQL: the whole
   rebuild is one transaction; the pages COPY their appended rows into tables without
   primary keys, the keyed rows are written once, at the end, then the keys and the
   indexes are built. The clock runs until all of that is done (and committed).

Steps 2 and 3 run ``--rounds`` times, alternating; the table shows the best round of
each and the JSON keeps every round. Goal: the SQLite rebuild reaches 50,000 events/s.

    python bench/projections.py [--events N] [--page-size N] [--rounds N] [--backend sqlite|postgresql]
                                [--quick] [--profile]
"""

from __future__ import annotations

import argparse
import cProfile
import io
import pstats
import random
import sys
import time
from contextlib import ExitStack
from typing import Any

from _common import BACKENDS, backend_version, fresh_store, log, machine_info, per_second, postgres_server, report

from stakeledger.adapters.persistence.store_url import open_ledger
from stakeledger.domain.decisions.trading import LimitOrder, MarketOrder
from stakeledger.domain.service.application import StakeLedger, TransferRequest
from stakeledger.domain.service.clock import ManualClock
from stakeledger.domain.service.ids import SeededIds
from stakeledger.domain.service.log import iter_notifications
from stakeledger.domain.vocabulary import WAD, Side
from stakeledger.projections.runner import REBUILD_PAGE_SIZE, Runner
from stakeledger.projections.store import open_store

GOAL_SQLITE_EVENTS_PER_S = 50_000
TOKEN = 10**18
AGENTS = 400
ARTIFACTS = 40
QUICK_ARTIFACTS = 3
TRADES_PER_ARTIFACT = 400
TRANSFER_BATCH = 1_000
# A resolver's oracle price that meets each state's default threshold (0.7 / 0.1 / 0.3),
# so every lifecycle settles whatever the 7-day average of p(long) happens to be.
ORACLE_PRICE_WAD = {"validated": 8 * WAD // 10, "deprecated": 5 * WAD // 100, "flagged": 2 * WAD // 10}


# The log ------------------------------------------------------------------------------------


def build_log(
    app: StakeLedger, clock: ManualClock, target_events: int, *, seed: int = 2026, artifacts: int = ARTIFACTS
) -> dict[str, int]:
    """A seeded, varied history of at least ``target_events`` events; returns what it did."""
    rng = random.Random(seed)
    counts = {
        "agents": AGENTS,
        "artifacts": artifacts,
        "market_orders": 0,
        "limit_orders": 0,
        "closes": 0,
        "transitions": 0,
        "bounties": 0,
        "transfers": 0,
    }
    agents = [f"agent-{i:04d}" for i in range(AGENTS)]
    app.initialise(decimals=18)
    for name in agents:
        app.open_account(name)
        app.mint(name, 1_000_000 * TOKEN)
    lifecycles = (
        ("flagged", "validated"),
        ("challenged", "listed"),
        ("deprecated",),
        ("validated",),
        ("flagged", "listed"),
        (),
    )
    for number in range(artifacts):
        artifact = f"ART-{number:03d}"
        app.list_artifact(artifact, f"Artifact {number}", 5_000 * TOKEN, group=f"field-{number % 7}", min_hold_days=0)
        orders: list[MarketOrder | LimitOrder] = []
        for i in range(TRADES_PER_ARTIFACT):
            agent, side = rng.choice(agents), rng.choice((Side.LONG, Side.SHORT))
            tokens = rng.randint(1, 200) * TOKEN
            if i % 10 == 9:
                orders.append(LimitOrder(agent, artifact, side, tokens, rng.randint(30, 70) * WAD // 100))
                counts["limit_orders"] += 1
            else:
                orders.append(MarketOrder(agent, artifact, side, tokens))
                counts["market_orders"] += 1
        for start in range(0, len(orders), 200):
            app.trade_batch(orders[start : start + 200])
        clock.advance(days=1)
        for position in range(1, 6):
            try:
                app.close_position(f"{artifact}/p{position}")
                counts["closes"] += 1
            except Exception:  # noqa: BLE001 - a position a fill already closed, or dust: skip it
                pass
        if number % 4 == 0:
            bounty = app.post_bounty(artifact, rng.choice(agents), 1_000 * TOKEN)["bounty"]
            from fractions import Fraction

            app.distribute_bounty(bounty, [(name, Fraction(rng.randint(1, 5))) for name in rng.sample(agents, 7)])
            counts["bounties"] += 1
        for state in lifecycles[number % len(lifecycles)]:
            app.transition_artifact(artifact, state, price_wad=ORACLE_PRICE_WAD.get(state))
            counts["transitions"] += 1
    while (app.recorder.max_notification_id() or 0) < target_events:
        requests = [
            TransferRequest(rng.choice(agents), rng.choice(agents), rng.randint(1, 10**6) * 10**12)
            for _ in range(TRANSFER_BATCH)
        ]
        requests = [r for r in requests if r.debit_account != r.credit_account]
        app.transfer_many(requests)
        counts["transfers"] += len(requests)
    counts["events"] = app.recorder.max_notification_id() or 0
    return counts


# The measurements ---------------------------------------------------------------------------


def raw_decoded_read(app: StakeLedger, page_size: int) -> tuple[int, float]:
    """Every event read with select_notifications and decoded with the mapper; nothing else."""
    to_domain_event = app.mapper.to_domain_event
    started = time.perf_counter()
    count = 0
    for notification in iter_notifications(app, page_size=page_size):
        to_domain_event(notification)
        count += 1
    return count, time.perf_counter() - started


def rebuild_all(app: StakeLedger, page_size: int) -> tuple[int, float, int]:
    store = open_store(app)
    try:
        started = time.perf_counter()
        result = Runner(app, store, page_size=page_size).rebuild()
        seconds = time.perf_counter() - started
        return result.head, seconds, result.rows_written
    finally:
        store.close()


def profile_rebuild(app: StakeLedger, page_size: int, top: int = 25) -> str:
    profiler = cProfile.Profile()
    profiler.runcall(rebuild_all, app, page_size)
    out = io.StringIO()
    pstats.Stats(profiler, stream=out).strip_dirs().sort_stats("tottime").print_stats(top)
    return out.getvalue()


def run_backend(backend: str, server_url: str | None, args: argparse.Namespace) -> dict[str, Any]:
    with fresh_store(backend, server_url, "projections") as url:
        clock = ManualClock()
        app = open_ledger(url, clock=clock, new_id=SeededIds(7))
        try:
            log(f"  {backend}: building a log of at least {args.events:,} events ...")
            started = time.perf_counter()
            counts = build_log(app, clock, args.events, artifacts=args.artifacts)
            log(f"  {backend}: {counts['events']:,} events in {time.perf_counter() - started:.1f} s")
            rounds: list[dict[str, Any]] = []
            for number in range(args.rounds):
                events, raw_seconds = raw_decoded_read(app, args.page_size)
                head, rebuild_seconds, rows = rebuild_all(app, args.page_size)
                assert head == counts["events"] and events <= head
                rounds.append(
                    {
                        "raw_events": events,
                        "raw_seconds": round(raw_seconds, 4),
                        "raw_events_per_s": round(per_second(events, raw_seconds), 1),
                        "rebuild_events": head,
                        "rebuild_seconds": round(rebuild_seconds, 4),
                        "rebuild_events_per_s": round(per_second(head, rebuild_seconds), 1),
                        "rows_written": rows,
                    }
                )
                log(
                    f"  {backend}: round {number + 1}: raw decoded read {rounds[-1]['raw_events_per_s']:,.0f} events/s, "
                    f"rebuild {rounds[-1]['rebuild_events_per_s']:,.0f} events/s"
                )
            profile = profile_rebuild(app, args.page_size) if args.profile else None
        finally:
            app.close()
    best_raw = max(r["raw_events_per_s"] for r in rounds)
    best_rebuild = max(r["rebuild_events_per_s"] for r in rounds)
    return {
        "log": counts,
        "rounds": rounds,
        "raw_events_per_s": best_raw,
        "rebuild_events_per_s": best_rebuild,
        "rebuild_vs_raw": round(best_rebuild / best_raw, 3),
        "profile": profile,
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description="Rebuild every view; events/s beside the raw decoded read rate.")
    parser.add_argument("--events", type=int, help="log size to build (default 200,000; 40,000 with --quick)")
    parser.add_argument(
        "--page-size",
        type=int,
        default=REBUILD_PAGE_SIZE,
        help=f"events per page, for the rebuild and the raw read alike (default {REBUILD_PAGE_SIZE:,}, "
        "the rebuild's own default)",
    )
    parser.add_argument("--rounds", type=int, help="read + rebuild rounds per backend (default 3; 2 with --quick)")
    parser.add_argument("--quick", action="store_true", help="a small log, for a smoke run")
    parser.add_argument("--backend", choices=BACKENDS, action="append", help="only this backend (repeatable)")
    parser.add_argument("--profile", action="store_true", help="also print a cProfile of one rebuild")
    args = parser.parse_args(argv)
    args.events = args.events or (40_000 if args.quick else 200_000)
    args.rounds = args.rounds or (2 if args.quick else 3)
    # The trading part of the log alone is ~120,000 events at 40 artifacts: a quick run trades on 3.
    args.artifacts = QUICK_ARTIFACTS if args.quick else ARTIFACTS
    backends = args.backend or list(BACKENDS)

    document: dict[str, Any] = {
        "benchmark": "projections",
        "machine": machine_info(),
        "params": {
            "events": args.events,
            "page_size": args.page_size,
            "rounds": args.rounds,
            "agents": AGENTS,
            "artifacts": args.artifacts,
            "trades_per_artifact": TRADES_PER_ARTIFACT,
        },
        "backends": {},
        "results": {},
        "goal": {},
    }
    profiles: dict[str, str] = {}
    with ExitStack() as stack:
        for backend in backends:
            server_url = stack.enter_context(postgres_server()) if backend == "postgresql" else None
            document["backends"][backend] = backend_version(backend, server_url)
            result = run_backend(backend, server_url, args)
            profile = result.pop("profile")
            if profile:
                profiles[backend] = profile
            document["results"][backend] = result
            if backend == "sqlite":
                rate = result["rebuild_events_per_s"]
                document["goal"]["sqlite"] = {
                    "rebuild_events_per_s": rate,
                    "threshold": GOAL_SQLITE_EVENTS_PER_S,
                    "met": rate >= GOAL_SQLITE_EVENTS_PER_S,
                }
    for backend, text in profiles.items():
        print(f"--- cProfile: one rebuild on {backend} (top 25, tottime) ---")
        print(text)
    rows = [
        (backend, r["log"]["events"], r["raw_events_per_s"], r["rebuild_events_per_s"], r["rebuild_vs_raw"])
        for backend, r in document["results"].items()
    ]
    report(
        "projections",
        f"Rebuild every view (page {args.page_size:,}; best of {args.rounds})",
        ["backend", "log events", "raw decoded read events/s", "rebuild events/s", "rebuild / raw"],
        rows,
        document,
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
