"""HTTP API throughput and latency: a quote (read) and a market order (write), on SQLite and
PostgreSQL, through ``stakeledger serve`` on loopback.

Per backend (each on a fresh SQLite file or PostgreSQL schema): a ledger with 18 decimals,
one funded agent and one trade key per client, one artifact with a deep market. The server
runs as its own process (``python -m cli.api serve --workers W --no-access-log``). The load
generator is ``--clients`` threads, each with its own keep-alive ``httpx`` client, sending
requests back to back (closed loop) until the operation's total is reached:

- quote:  ``GET /api/market/artifacts/ART/quote?side=long&tokens=1`` (public, no writes)
- order, one market:  ``POST /api/market/positions`` for the client's own agent, 1 token,
          alternating sides, each with its own Idempotency-Key; every client trades on the
          same artifact, so writers race for it and its pool (a lost race is retried by the
          server, and a 409 CONCURRENCY_CONFLICT by the client, and counted)
- order, own markets: the same, but each client trades on a market of its own: the write
          path without contention
- order, one market, no queue: the hot market again on a server started with
          STAKELEDGER_MARKET_QUEUE=0, writers not queued per market (the baseline)
- on PostgreSQL, quote and both order kinds again on one worker: the scaling 1 -> W, and
          the hot market with no other process to conflict with

Quotes and own-market orders, whose rates make goal 4's ratio, take turns: ``--rounds`` rounds
of each, one after the other, summed. Every operation warms up first (``--warmup`` requests, not timed). Rates are completed
requests over the wall time of the timed phase; latencies are per request, retries of an
order included in its latency. The load generator shares the machine's cores with the
server (and PostgreSQL), so figures are a floor for a server with a machine to itself.

    python bench/api.py [--quick] [--quotes N] [--orders N] [--clients C] [--workers W]
                        [--rounds R] [--backend sqlite|postgresql]
"""

from __future__ import annotations

import argparse
import os
import signal
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import ExitStack, contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
from _common import BACKENDS, ROOT, backend_version, fresh_store, log, machine_info, postgres_server, report

from stakeledger.adapters.persistence.store_url import open_ledger
from stakeledger.domain.service import apikeys
from tests.api.serving import free_port, stop, wait_until_serving

ART = "BENCH-1"
TOKEN = 10**18
LIQUIDITY_TOKENS = 1_000_000
FUNDING_TOKENS = 10**9
START_SECONDS = 60
MAX_ORDER_ATTEMPTS = 50


def own_market(agent: str) -> str:
    return f"{ART}-{agent}"


def seeded_ledger(url: str, clients: int) -> list[tuple[str, str]]:
    """Agents with keys, and the market they trade on."""
    ledger = open_ledger(url)
    try:
        ledger.initialise(18)
        agents = []
        for number in range(clients):
            agent = f"bench-{number}"
            ledger.open_account(agent)
            ledger.mint(agent, FUNDING_TOKENS * TOKEN)
            agents.append((agent, apikeys.issue_key(ledger, agent)["key"]))
        ledger.list_artifact(ART, "Benchmark market", LIQUIDITY_TOKENS * TOKEN, min_hold_days=0)
        for agent, _ in agents:
            ledger.list_artifact(own_market(agent), f"{agent}'s market", LIQUIDITY_TOKENS * TOKEN, min_hold_days=0)
        return agents
    finally:
        ledger.close()


@contextmanager
def served(url: str, workers: int, env: dict[str, str] | None = None) -> Iterator[str]:
    port = free_port()
    command = [
        sys.executable,
        "-m",
        "stakeledger.cli.main",
        "--db",
        url,
        "serve",
        "--port",
        str(port),
        "--workers",
        str(workers),
        "--no-access-log",
    ]
    env = {**os.environ, "PYTHONPATH": str(ROOT), **(env or {})}
    with tempfile.TemporaryDirectory() as folder:
        server_log = Path(folder) / "server.log"
        with server_log.open("w") as sink:
            process = subprocess.Popen(command, cwd=ROOT, env=env, stdout=subprocess.DEVNULL, stderr=sink)
        base = f"http://127.0.0.1:{port}"
        try:
            wait_until_serving(base, process, server_log, seconds=START_SECONDS)
            yield base
        finally:
            stop(process, signal.SIGINT, seconds=30)


def run_load(
    base: str, agents: list[tuple[str, str]], total: int, make_request: Callable[..., tuple[bool, int]], label: str
) -> dict[str, Any]:
    """``total`` requests from ``len(agents)`` closed-loop clients; latencies in ms."""
    latencies: list[float] = []
    failures: list[str] = []
    retries = [0]
    lock = threading.Lock()
    counter = iter(range(total))
    # The clock starts when every client is built: a round of a few requests is not timed with
    # the clients' set-up in it.
    ready = threading.Barrier(len(agents) + 1)

    def client(agent: str, key: str) -> None:
        mine: list[float] = []
        with httpx.Client(base_url=base, timeout=60, headers={"Authorization": f"Bearer {key}"}) as http:
            ready.wait()
            while True:
                with lock:
                    index = next(counter, None)
                if index is None:
                    break
                started = time.perf_counter()
                try:
                    ok, extra_attempts = make_request(http, agent, index, label)
                except Exception as error:  # a failed request is counted, not fatal to the run
                    ok, extra_attempts = False, 0
                    with lock:
                        failures.append(f"{type(error).__name__}: {error}")
                mine.append((time.perf_counter() - started) * 1000)
                with lock:
                    retries[0] += extra_attempts
                    if not ok and len(failures) < 10:
                        failures.append(f"request {index} failed")
        with lock:
            latencies.extend(mine)

    threads = [threading.Thread(target=client, args=agent) for agent in agents]
    for thread in threads:
        thread.start()
    ready.wait()
    started = time.perf_counter()
    for thread in threads:
        thread.join()
    return Load(latencies, time.perf_counter() - started, failures, retries[0])


@dataclass
class Load:
    """What one run of requests measured; ``summary`` of one or several (rounds of one operation)."""

    latencies: list[float]
    seconds: float
    failures: list[str]
    retries: int


def summary(loads: list[Load]) -> dict[str, Any]:
    ordered = sorted(latency for load in loads for latency in load.latencies)
    seconds = sum(load.seconds for load in loads)
    failures = [failure for load in loads for failure in load.failures]
    return {
        "requests": len(ordered),
        "seconds": round(seconds, 3),
        "per_second": round(len(ordered) / seconds, 1),
        "p50_ms": round(statistics.median(ordered), 2),
        "p99_ms": round(ordered[min(len(ordered) - 1, int(len(ordered) * 0.99))], 2),
        "mean_ms": round(statistics.fmean(ordered), 2),
        "failures": len(failures),
        "client_retries": sum(load.retries for load in loads),
        "failure_examples": failures[:3],
    }


def quote(http: httpx.Client, agent: str, index: int, label: str) -> tuple[bool, int]:
    response = http.get(f"/api/market/artifacts/{ART}/quote", params={"side": "long", "tokens": "1"})
    return response.status_code == 200, 0


def order(http: httpx.Client, agent: str, index: int, label: str) -> tuple[bool, int]:
    return _order(http, agent, ART, index, label)


def order_own_market(http: httpx.Client, agent: str, index: int, label: str) -> tuple[bool, int]:
    return _order(http, agent, own_market(agent), index, label)


def _order(http: httpx.Client, agent: str, artifact: str, index: int, label: str) -> tuple[bool, int]:
    body = {"agent": agent, "artifact": artifact, "side": "long" if index % 2 else "short", "tokens": "1"}
    headers = {"Idempotency-Key": f"{label}-{agent}-{index}"}
    for attempt in range(MAX_ORDER_ATTEMPTS):
        response = http.post("/api/market/positions", json=body, headers=headers)
        if response.status_code == 201:
            return True, attempt
        if response.status_code == 409 and response.json().get("error") == "CONCURRENCY_CONFLICT":
            time.sleep(0.005 * (attempt + 1))
            continue
        return False, attempt
    return False, MAX_ORDER_ATTEMPTS


def run_backend(backend: str, server_url: str | None, args: argparse.Namespace) -> dict[str, Any]:
    with fresh_store(backend, server_url, "api") as url:
        log(f"{backend}: seeding {args.clients} agents")
        agents = seeded_ledger(url, args.clients)
        results: dict[str, Any] = {}

        def measure(base: str, name: str, operation: Callable[..., tuple[bool, int]], total: int) -> None:
            log(f"{backend}: {name} warm-up ({args.warmup}), then {total:,} requests from {args.clients} clients")
            label = label_of(name)
            run_load(base, agents, args.warmup, operation, f"warmup-{label}")
            results[name] = summary([run_load(base, agents, total, operation, label)])

        def measure_in_turns(base: str, operations: dict[str, tuple[Callable[..., tuple[bool, int]], int]]) -> None:
            """The operations whose rates make a ratio take turns, ``--rounds`` times: a load swing
            on the machine then falls on both, not on whichever ran while it lasted."""
            names = ", ".join(operations)
            log(f"{backend}: {names}: warm-up, then {args.rounds} rounds of each, {args.clients} clients")
            loads: dict[str, list[Load]] = {name: [] for name in operations}
            for name, (operation, _) in operations.items():
                run_load(base, agents, args.warmup, operation, f"warmup-{label_of(name)}")
            for number in range(args.rounds):
                for name, (operation, total) in operations.items():
                    share = total // args.rounds + (1 if number < total % args.rounds else 0)
                    loads[name].append(run_load(base, agents, share, operation, f"{label_of(name)}-{number}"))
            results.update({name: summary(parts) for name, parts in loads.items()})

        with served(url, args.workers) as base:
            measure_in_turns(
                base, {"quote": (quote, args.quotes), "order, own markets": (order_own_market, args.orders)}
            )
            measure(base, "order, one market", order, args.orders)
        # The baseline for the hot market: the same server with writers not queued per market.
        with served(url, args.workers, {"STAKELEDGER_MARKET_QUEUE": "0"}) as base:
            measure(base, "order, one market, no queue", order, args.orders)
        if backend == "postgresql" and args.workers > 1:
            with served(url, 1) as base:  # the worker count's scaling, 1 -> args.workers
                measure_in_turns(
                    base,
                    {
                        "quote, 1 worker": (quote, args.quotes),
                        "order, own markets, 1 worker": (order_own_market, args.orders),
                    },
                )
                measure(base, "order, one market, 1 worker", order, args.orders)
        return results


def label_of(name: str) -> str:
    """An operation's name as an Idempotency-Key prefix."""
    return name.replace(",", "").replace(" ", "-").replace("(", "").replace(")", "")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--quick", action="store_true", help="a fast smoke run (300 quotes, 100 orders)")
    parser.add_argument("--quotes", type=int, help="timed quote requests (default 3,000; 300 with --quick)")
    parser.add_argument("--orders", type=int, help="timed market orders (default 1,000; 100 with --quick)")
    parser.add_argument("--clients", type=int, default=8, help="concurrent clients (default 8)")
    parser.add_argument("--workers", type=int, default=2, help="uvicorn worker processes (default 2)")
    parser.add_argument("--warmup", type=int, default=50, help="untimed requests per operation first (default 50)")
    parser.add_argument(
        "--rounds",
        type=int,
        help="turns quotes and own-market orders take, one after the other (default 4; 2 with --quick)",
    )
    parser.add_argument("--backend", choices=BACKENDS, action="append", help="only this backend (repeatable)")
    args = parser.parse_args(argv)
    args.quotes = args.quotes or (300 if args.quick else 3_000)
    args.orders = args.orders or (100 if args.quick else 1_000)
    args.rounds = args.rounds or (2 if args.quick else 4)
    backends = args.backend or list(BACKENDS)

    document: dict[str, Any] = {
        "benchmark": "api",
        "machine": machine_info(),
        "params": {
            "quick": args.quick,
            "quotes": args.quotes,
            "orders": args.orders,
            "clients": args.clients,
            "workers": args.workers,
            "warmup": args.warmup,
            "rounds": args.rounds,
            "decimals": 18,
        },
        "backends": {},
        "results": {},
    }
    with ExitStack() as stack:
        for backend in backends:
            server_url = stack.enter_context(postgres_server()) if backend == "postgresql" else None
            document["backends"][backend] = backend_version(backend, server_url)
            document["results"][backend] = run_backend(backend, server_url, args)

    columns = ["backend", "operation", "requests", "req/s", "p50 ms", "p99 ms", "failures", "client retries"]
    rows = [
        [
            backend,
            operation,
            r["requests"],
            r["per_second"],
            r["p50_ms"],
            r["p99_ms"],
            r["failures"],
            r["client_retries"],
        ]
        for backend, results in document["results"].items()
        for operation, r in results.items()
    ]
    for backend, results in document["results"].items():
        for operation in ("quote", "order, own markets"):
            one = results.get(f"{operation}, 1 worker")
            if one:
                scaling = round(results[operation]["per_second"] / one["per_second"], 2)
                document.setdefault("scaling", {}).setdefault(backend, {})[operation] = scaling
                rows.append([backend, f"{operation}: {args.workers} workers / 1", "", f"{scaling}x", "", "", "", ""])
    report("api", f"HTTP API on loopback ({args.workers} workers, {args.clients} clients)", columns, rows, document)
    return 0 if all(r["failures"] == 0 for results in document["results"].values() for r in results.values()) else 1


if __name__ == "__main__":
    sys.exit(main())
