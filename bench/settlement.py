"""Settling one artifact that holds 10,000 open positions, in one transaction, on SQLite and PostgreSQL.

Goal: one ``transition_artifact(..., "validated")`` of an artifact with 10,000 open positions takes
under 2 s on SQLite on this machine, measured cold (a fresh application instance: nothing cached).

Setup, per backend (a fresh SQLite file or PostgreSQL schema): 200 agents funded with one
``transfer_many``; three artifacts listed (b = 1,000 tokens); on each, ``--positions`` market orders
of one token each, alternating long and short and round-robin over the agents, placed with
``trade_batch`` in batches of ``--batch-size`` (1,000). Then, each timed as one call:

- validated, cold: a fresh application instance settles artifact A;
- deprecated, cold: another fresh instance settles artifact B;
- validated, warm: a fresh instance whose aggregate cache is large enough for the whole market has
  first read artifact C, its positions, the agents' accounts and reputations and the pool; it then
  settles C. (The application fast-forwards cached aggregates, so a warm read still asks the store
  for newer events: one query per aggregate, but no replay and no snapshot decode.)

On PostgreSQL every timed call runs under a watchdog (``--timeout``, default 120 s): with the default
store settings, eventsourcing's recorder inserts a save's events with ``executemany`` in psycopg's
pipeline mode, and a save of tens of thousands of events can hang for ever in ``Pipeline.sync()``
(the server waits in ClientRead; see psycopg issue #685). A call that hangs is reported as such and
the run goes on. The PostgreSQL run is then repeated as ``postgresql+dbfn`` with the library's
``POSTGRES_ENABLE_DB_FUNCTIONS=y`` (one INSERT of an array of events, no pipeline), so both the
shipped configuration and that alternative are measured (``--no-db-functions`` skips it).

Events written is the growth of the notification log across the call. If the cold SQLite run misses
the goal (or with ``--profile``), a fourth artifact is built and one cold settlement of it is run
under cProfile; the top 20 functions by cumulative time are printed.

    python bench/settlement.py [--positions N] [--quick] [--backend sqlite|postgresql] [--profile]
                               [--timeout SECONDS] [--no-db-functions]
"""

from __future__ import annotations

import argparse
import cProfile
import io
import pstats
import signal
import sys
import time
from collections.abc import Callable, Iterator
from contextlib import ExitStack, contextmanager
from typing import Any

from _common import BACKENDS, backend_version, fresh_store, log, machine_info, per_second, postgres_server, report
from eventsourcing.application import AggregateNotFoundError

from stakeledger.adapters.persistence.store_url import env_for_url
from stakeledger.domain.decisions.trading import MarketOrder
from stakeledger.domain.model.accounts import account_uuid, pool_account_id
from stakeledger.domain.model.artifacts import artifact_uuid
from stakeledger.domain.model.positions import position_uuid
from stakeledger.domain.model.reputation import reputation_uuid
from stakeledger.domain.service.application import StakeLedger, TransferRequest
from stakeledger.domain.vocabulary import Side

TOKEN = 10**18
GOAL_SECONDS = 2.0
# A resolver's oracle price meeting each state's default threshold (0.7 / 0.1 / 0.3), so the
# transition settles whatever the 7-day average of p(long) is: the settlement is measured.
ORACLE_PRICE_WAD = {"validated": 8 * 10**17, "deprecated": 5 * 10**16, "flagged": 2 * 10**17}
AGENT_COUNT = 200
LIQUIDITY_UNITS = 1_000 * TOKEN
ORDER_UNITS = TOKEN
AGENT_FUNDS_UNITS = 1_000_000 * TOKEN
PROFILE_TOP = 20
AGENTS = [f"agent-{i:03d}" for i in range(AGENT_COUNT)]
DB_FUNCTIONS_ENV = {"POSTGRES_ENABLE_DB_FUNCTIONS": "y"}


class Hung(Exception):
    """A timed call outlived the watchdog."""


@contextmanager
def watchdog(seconds: int | None) -> Iterator[None]:
    """Raise Hung in the main thread after ``seconds`` (psycopg's wait loop lets the signal through)."""
    if not seconds:
        yield
        return

    def on_alarm(signum: int, frame: Any) -> None:
        raise Hung(f"no answer after {seconds} s")

    previous = signal.signal(signal.SIGALRM, on_alarm)
    signal.alarm(seconds)
    try:
        yield
    finally:
        signal.alarm(0)
        signal.signal(signal.SIGALRM, previous)


def open_app(url: str, extra_env: dict[str, str], **env: str) -> StakeLedger:
    return StakeLedger(env={**env_for_url(url), **extra_env, **env})


def stored_events(app: StakeLedger) -> int:
    return app.recorder.max_notification_id() or 0


# Building the market --------------------------------------------------------------------------


def fund_agents(url: str, extra_env: dict[str, str]) -> None:
    app = open_app(url, extra_env)
    try:
        app.initialise(18)
        app.open_account("sponsor")
        app.mint("sponsor", AGENT_COUNT * AGENT_FUNDS_UNITS)
        for agent in AGENTS:
            app.open_account(agent)
        app.transfer_many([TransferRequest("sponsor", agent, AGENT_FUNDS_UNITS) for agent in AGENTS])
    finally:
        app.close()


def build_artifact(url: str, extra_env: dict[str, str], artifact_id: str, positions: int, batch_size: int) -> float:
    """List ``artifact_id`` and open ``positions`` one-token positions on it; the seconds it took."""
    app = open_app(url, extra_env)
    started = time.perf_counter()
    try:
        app.list_artifact(artifact_id, f"Benchmark artifact {artifact_id}", LIQUIDITY_UNITS, min_hold_days=0)
        for start in range(0, positions, batch_size):
            orders = [
                MarketOrder(AGENTS[i % AGENT_COUNT], artifact_id, Side.LONG if i % 2 == 0 else Side.SHORT, ORDER_UNITS)
                for i in range(start, min(start + batch_size, positions))
            ]
            app.trade_batch(orders)
        artifact = app.get_artifact(artifact_id)
        assert len(artifact.position_ids) == positions, (len(artifact.position_ids), positions)
    finally:
        app.close()
    return time.perf_counter() - started


# Timing one settlement ------------------------------------------------------------------------


def settle(app: StakeLedger, artifact_id: str, state: str, timeout: int | None = None) -> dict[str, Any]:
    """Time one transition and check it settled every position and emptied the pool."""
    before = stored_events(app)
    started = time.perf_counter()
    try:
        with watchdog(timeout):
            result = app.transition_artifact(
                artifact_id, state, actor="bench", reason="benchmark", price_wad=ORACLE_PRICE_WAD.get(state)
            )
    except Hung as error:
        log(f"    {state} of {artifact_id} HUNG: {error}")
        return {
            "state": state,
            "hung": True,
            "seconds": None,
            "positions": None,
            "positions_per_s": None,
            "events_written": stored_events(app) - before,
            "events_per_s": None,
            "error": str(error),
        }
    seconds = time.perf_counter() - started
    written = stored_events(app) - before
    positions = int(result["positions"])
    assert app.balance_of(pool_account_id(artifact_id)) == 0
    last = app.get_artifact(artifact_id).position_ids[-1]
    assert app.repository.get(position_uuid(last)).status == "settled"
    return {
        "state": state,
        "positions": positions,
        "seconds": round(seconds, 4),
        "positions_per_s": round(per_second(positions, seconds), 1),
        "events_written": written,
        "events_per_s": round(per_second(written, seconds), 1),
    }


def cold_settlement(url: str, extra_env: dict[str, str], artifact_id: str, state: str, timeout: int | None) -> dict:
    app = open_app(url, extra_env)
    try:
        return settle(app, artifact_id, state, timeout)
    finally:
        app.close()


def warm_settlement(
    url: str, extra_env: dict[str, str], artifact_id: str, state: str, positions: int, timeout: int | None
) -> dict[str, Any]:
    cache_size = 2 * (positions + 3 * AGENT_COUNT) + 100
    app = open_app(url, extra_env, AGGREGATE_CACHE_MAXSIZE=str(cache_size))
    try:
        started = time.perf_counter()
        artifact = app.get_artifact(artifact_id)
        ids = [artifact_uuid(artifact_id), account_uuid(pool_account_id(artifact_id)), account_uuid("sys:treasury")]
        ids += [position_uuid(position_id) for position_id in artifact.position_ids]
        ids += [account_uuid(agent) for agent in AGENTS] + [reputation_uuid(agent) for agent in AGENTS]
        for aggregate_id in ids:
            try:
                app.repository.get(aggregate_id)
            except AggregateNotFoundError:  # an agent without a reputation yet: nothing to warm
                pass
        app.settings  # noqa: B018
        warmup_seconds = time.perf_counter() - started
        measured = settle(app, artifact_id, state, timeout)
        return {**measured, "warmup_seconds": round(warmup_seconds, 3), "cache_size": cache_size}
    finally:
        app.close()


def profile_settlement(url: str, extra_env: dict[str, str], artifact_id: str, state: str) -> tuple[str, dict]:
    app = open_app(url, extra_env)
    profiler = cProfile.Profile()
    try:
        result: dict[str, Any] = {}
        profiler.runcall(lambda: result.update(settle(app, artifact_id, state)))
    finally:
        app.close()
    out = io.StringIO()
    pstats.Stats(profiler, stream=out).strip_dirs().sort_stats("cumulative").print_stats(PROFILE_TOP)
    return out.getvalue(), result


# The run ---------------------------------------------------------------------------------------


def run_backend(
    label: str, backend: str, server_url: str | None, extra_env: dict[str, str], args: argparse.Namespace
) -> tuple[dict[str, Any], str | None]:
    n, size = args.positions, args.batch_size
    timeout = args.timeout if backend == "postgresql" else None
    with fresh_store(backend, server_url, "settlement") as url:
        fund_agents(url, extra_env)
        build_seconds = {}
        for artifact_id in ("A", "B", "C"):
            log(f"  {label}: building artifact {artifact_id} with {n:,} positions ...")
            build_seconds[artifact_id] = round(build_artifact(url, extra_env, artifact_id, n, size), 2)
        log(f"  {label}: settling A (validated, cold) ...")
        cold_validated = cold_settlement(url, extra_env, "A", "validated", timeout)
        log(f"  {label}: settling B (deprecated, cold) ...")
        cold_deprecated = cold_settlement(url, extra_env, "B", "deprecated", timeout)
        log(f"  {label}: settling C (validated, warm) ...")
        warm_validated = warm_settlement(url, extra_env, "C", "validated", n, timeout)
        results = {
            "store_env": extra_env,
            "build_seconds": build_seconds,
            "validated_cold": cold_validated,
            "deprecated_cold": cold_deprecated,
            "validated_warm": warm_validated,
        }
        profile = None
        seconds = cold_validated["seconds"]
        missed = backend == "sqlite" and (seconds is None or seconds >= GOAL_SECONDS)
        if (args.profile and not cold_validated.get("hung")) or missed:
            log(f"  {label}: building artifact D and profiling its cold settlement ...")
            build_artifact(url, extra_env, "D", n, size)
            profile, profiled = profile_settlement(url, extra_env, "D", "validated")
            results["validated_cold_under_profiler"] = profiled
        return results, profile


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument(
        "--positions", type=int, help="open positions per artifact (default 10,000; 1,000 with --quick)"
    )
    parser.add_argument("--quick", action="store_true", help="a fast smoke run with 1,000 positions per artifact")
    parser.add_argument("--batch-size", type=int, default=1000, help="market orders per trade_batch (at most 1,000)")
    parser.add_argument("--backend", choices=BACKENDS, action="append", help="only this backend (repeatable)")
    parser.add_argument("--profile", action="store_true", help="always profile one cold settlement")
    parser.add_argument(
        "--timeout", type=int, default=120, help="PostgreSQL watchdog per timed call, seconds (0: none)"
    )
    parser.add_argument(
        "--no-db-functions",
        action="store_true",
        help="skip the second PostgreSQL run with POSTGRES_ENABLE_DB_FUNCTIONS=y",
    )
    args = parser.parse_args(argv)
    args.positions = args.positions or (1_000 if args.quick else 10_000)
    if not 0 < args.batch_size <= 1_000:
        parser.error("--batch-size must be 1 to 1,000")
    backends = args.backend or list(BACKENDS)

    document: dict[str, Any] = {
        "benchmark": "settlement",
        "machine": machine_info(),
        "params": {
            "quick": args.quick,
            "positions": args.positions,
            "agents": AGENT_COUNT,
            "batch_size": args.batch_size,
            "liquidity_tokens": LIQUIDITY_UNITS // TOKEN,
            "order_tokens": ORDER_UNITS // TOKEN,
            "decimals": 18,
        },
        "backends": {},
        "results": {},
        "goal": {},
    }
    profiles: dict[str, str] = {}
    runs = []
    for backend in backends:
        runs.append((backend, backend, {}))
        if backend == "postgresql" and not args.no_db_functions:
            runs.append(("postgresql+dbfn", backend, DB_FUNCTIONS_ENV))
    with ExitStack() as stack:
        servers: dict[str, str] = {}
        for label, backend, extra_env in runs:
            if backend == "postgresql" and backend not in servers:
                servers[backend] = stack.enter_context(postgres_server())
            server_url = servers.get(backend)
            document["backends"][label] = backend_version(backend, server_url)
            results, profile = run_backend(label, backend, server_url, extra_env, args)
            document["results"][label] = results
            seconds = results["validated_cold"]["seconds"]
            document["goal"][label] = {
                "validated_cold_seconds": seconds,
                "threshold_seconds": GOAL_SECONDS,
                "met": seconds is not None and seconds < GOAL_SECONDS,
                "binding": backend == "sqlite" and args.positions == 10_000,
            }
            if profile is not None:
                profiles[label] = profile

    for backend, text in profiles.items():
        print(
            f"--- cProfile: one cold validated settlement of {args.positions:,} positions on {backend} "
            f"(top {PROFILE_TOP}, cumulative) ---"
        )
        print(text)

    labels: dict[str, Callable[[dict[str, Any]], str]] = {
        "validated_cold": lambda r: "validated, cold",
        "deprecated_cold": lambda r: "deprecated, cold",
        "validated_warm": lambda r: "validated, warm cache",
    }
    rows = []
    for backend, results in document["results"].items():
        for key, label in labels.items():
            r = results[key]
            if r.get("hung"):
                rows.append((backend, f"{label(r)}: HUNG ({r['error']})", "-", None, None, None, None, False))
                continue
            goal = (r["seconds"] < GOAL_SECONDS) if key == "validated_cold" else None
            rows.append(
                (
                    backend,
                    label(r),
                    r["positions"],
                    r["seconds"],
                    r["positions_per_s"],
                    r["events_written"],
                    r["events_per_s"],
                    goal,
                )
            )
    columns = [
        "backend",
        "settlement",
        "positions",
        "seconds",
        "positions/s",
        "events written",
        "events/s",
        f"< {GOAL_SECONDS:g} s",
    ]
    report(
        "settlement",
        f"Settling one artifact with {args.positions:,} open positions (one transaction)",
        columns,
        rows,
        document,
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
