"""The live feed under load: messages per second delivered to 1, 10 and 100 concurrent SSE
clients while trades are written, and the delay from a trade's commit to its delivery.

Per backend (a fresh SQLite file or PostgreSQL schema) and per client count: a server
(``stakeledger serve``, one worker) and, in this process, the clients (asyncio, one
``httpx`` stream each on ``/api/stream?topics=trades&artifact=ART``) and one writer thread
that commits market orders straight to the ledger back to back. The writer notes the
time each order returned (its commit); each client notes when that trade's message
arrived. Reported beside each other:

- trade rate: trades committed per second by the writer in the same run (the raw rate);
- delivered: trade messages received by all clients together, per second, from the first
  commit to the last delivery;
- delay p50 / p99: commit -> delivery over every (client, trade) pair.

Clients and writer share this process (and the machine's cores with the server), so the
figures are a floor.

    python bench/feed.py [--quick] [--trades N] [--clients 1,10,100] [--backend sqlite|postgresql]
"""

from __future__ import annotations

import argparse
import asyncio
import os
import signal
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Iterator
from contextlib import ExitStack, contextmanager
from pathlib import Path
from typing import Any

import httpx
from _common import BACKENDS, ROOT, backend_version, fresh_store, log, machine_info, postgres_server, report

from stakeledger.adapters.persistence.store_url import open_ledger
from stakeledger.agents.feed import sse_events
from tests.api.serving import free_port, stop, wait_until_serving

ART = "FEED-1"
TOKEN = 10**6
START_SECONDS = 60
DELIVERY_TIMEOUT_SECONDS = 120


@contextmanager
def served(url: str) -> Iterator[str]:
    port = free_port()
    command = [sys.executable, "-m", "stakeledger.cli.main", "--db", url, "serve", "--port", str(port)]
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(p for p in (str(ROOT), os.environ.get("PYTHONPATH")) if p)}
    with tempfile.TemporaryDirectory() as folder:
        server_log = Path(folder) / "server.log"
        with server_log.open("w") as sink:
            process = subprocess.Popen(
                [*command, "--no-access-log"], cwd=ROOT, env=env, stdout=subprocess.DEVNULL, stderr=sink
            )
        base = f"http://127.0.0.1:{port}"
        try:
            wait_until_serving(base, process, server_log, seconds=START_SECONDS)
            yield base
        finally:
            stop(process, signal.SIGINT, seconds=30)


def percentile(values: list[float], share: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(share * len(ordered)))] if ordered else float("nan")


def run_case(url: str, clients: int, trades: int) -> dict[str, Any]:
    ledger = open_ledger(url)
    ledger.initialise(decimals=6)
    ledger.open_account("writer")
    ledger.mint("writer", 10**9 * TOKEN)
    ledger.list_artifact(ART, "Feed benchmark", 1_000_000 * TOKEN, min_hold_days=0)
    start_after = str(ledger.recorder.max_notification_id())
    committed: dict[str, float] = {}
    received: list[dict[str, float]] = [{} for _ in range(clients)]
    subscribed = [0]
    everyone_subscribed = threading.Event()
    with served(url) as base:

        async def client(number: int, http: httpx.AsyncClient) -> None:
            seen = received[number]
            params = {"topics": "trades", "artifact": ART}
            events = sse_events(http, base, params, last_id=start_after, read_timeout=DELIVERY_TIMEOUT_SECONDS)
            first = True
            async for kind, data in events:
                if first:
                    first = False
                    subscribed[0] += 1
                    if subscribed[0] == clients:
                        everyone_subscribed.set()
                if kind == "message":
                    seen[data["position_id"]] = time.perf_counter()
                    if len(seen) == trades:
                        return

        async def all_clients() -> None:
            limits = httpx.Limits(max_connections=clients + 10)
            async with httpx.AsyncClient(limits=limits) as http:
                await asyncio.wait_for(
                    asyncio.gather(*(client(number, http) for number in range(clients))),
                    DELIVERY_TIMEOUT_SECONDS,
                )

        readers = threading.Thread(target=lambda: asyncio.run(all_clients()), daemon=True)
        # Each client's first event (the server's "retry:" line has no data, so wait for a
        # keep-alive) proves it is subscribed. The writer starts when all are.
        readers.start()
        if not everyone_subscribed.wait(DELIVERY_TIMEOUT_SECONDS):
            raise TimeoutError(f"only {subscribed[0]} of {clients} clients subscribed")
        started = time.perf_counter()
        for number in range(trades):
            result = ledger.open_position("writer", ART, "long" if number % 2 else "short", TOKEN)
            committed[result["position"]] = time.perf_counter()
        written = time.perf_counter() - started
        readers.join(DELIVERY_TIMEOUT_SECONDS)
    ledger.close()
    delivered = sum(len(seen) for seen in received)
    last = max((moment for seen in received for moment in seen.values()), default=started)
    delays = [(moment - committed[pid]) * 1000 for seen in received for pid, moment in seen.items() if pid in committed]
    return {
        "clients": clients,
        "trades": trades,
        "trade_rate": trades / written,
        "delivered": delivered,
        "expected": clients * trades,
        "messages_per_second": delivered / (last - started) if last > started else float("nan"),
        "delay_p50_ms": percentile(delays, 0.50),
        "delay_p99_ms": percentile(delays, 0.99),
        "delay_mean_ms": statistics.fmean(delays) if delays else float("nan"),
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--quick", action="store_true", help="a fast smoke run (40 trades per case)")
    parser.add_argument("--trades", type=int, help="trades written per case (default 300; 40 with --quick)")
    parser.add_argument("--clients", default="1,10,100", help="comma-separated client counts (default 1,10,100)")
    parser.add_argument("--backend", choices=BACKENDS, action="append", help="only this backend (repeatable)")
    args = parser.parse_args(argv)
    trades = args.trades or (40 if args.quick else 300)
    counts = [int(count) for count in args.clients.split(",")]
    backends = args.backend or list(BACKENDS)
    os.environ["STAKELEDGER_FEED_KEEPALIVE_SECONDS"] = "0.5"  # the server's: clients see they are subscribed
    document: dict[str, Any] = {
        "benchmark": "feed",
        "machine": machine_info(),
        "params": {"quick": args.quick, "trades": trades, "clients": counts},
        "backends": {},
        "results": {},
    }
    with ExitStack() as stack:
        for backend in backends:
            server_url = stack.enter_context(postgres_server()) if backend == "postgresql" else None
            document["backends"][backend] = backend_version(backend, server_url)
            document["results"][backend] = []
            for count in counts:
                log(f"{backend}: {count} SSE clients, {trades} trades")
                with fresh_store(backend, server_url, "feed") as url:
                    document["results"][backend].append(run_case(url, count, trades))
    columns = ["backend", "clients", "trades/s", "delivered", "msgs/s", "delay p50 ms", "delay p99 ms"]
    rows = [
        [
            backend,
            r["clients"],
            r["trade_rate"],
            f"{r['delivered']}/{r['expected']}",
            r["messages_per_second"],
            r["delay_p50_ms"],
            r["delay_p99_ms"],
        ]
        for backend, results in document["results"].items()
        for r in results
    ]
    report("feed", "Live feed (SSE) while trades are written", columns, rows, document)
    complete = all(r["delivered"] == r["expected"] for results in document["results"].values() for r in results)
    return 0 if complete else 1


if __name__ == "__main__":
    sys.exit(main())
