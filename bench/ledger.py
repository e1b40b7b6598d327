"""Transfers per second on SQLite and PostgreSQL, next to two baselines from the same run.

Modes, per backend (each measurement gets a fresh SQLite file or PostgreSQL schema):

- stakeledger, single:   ``app.transfer(...)`` once per command, round-robin between agents
- stakeledger, batched:  ``app.transfer_many`` of ``--batch-size`` (1,000) transfers per call
- baseline (a), single:  the eventsourcing library saving bare events of the same stored size,
                         two per "transfer" (one on each of two aggregates), one save each
- baseline (a), batched: the same, 2 x batch-size events in one save
- baseline (b), single:  a plain SQL ledger (balances + ledger tables), one transaction per
                         transfer: lock and check the payer's funds, update both balances,
                         insert the ledger row

A stakeledger transfer stores two events (a Debited and a Credited), so events/s is twice
transfers/s; baseline (b) stores no events. The goal: batched transfers reach at least half
of baseline (a)'s batched rate on each backend.

Every mode warms up first (50 transfers, or one batch). Rates are transfers over total
timed seconds. The two batched modes take turns batch by batch, so a noisy spell on a
shared machine falls on both sides of the goal's ratio.

    python bench/ledger.py [--quick] [--transfers N] [--batches B] [--backend sqlite|postgresql]
                           [--profile]
"""

from __future__ import annotations

import argparse
import cProfile
import io
import pstats
import statistics
import sys
import uuid
from collections.abc import Callable
from contextlib import ExitStack
from datetime import datetime, timezone
from typing import Any

from _common import (
    BACKENDS,
    backend_version,
    fresh_store,
    log,
    machine_info,
    measure,
    per_second,
    plain_connection,
    postgres_server,
    report,
)
from eventsourcing.application import Application
from eventsourcing.domain import Aggregate

from stakeledger.adapters.persistence.store_url import env_for_url, open_ledger
from stakeledger.domain.model.accounts import Account
from stakeledger.domain.service.application import StakeLedger, TransferRequest

AGENTS = [f"agent-{i}" for i in range(10)]
AMOUNT = 10**18  # one token at 18 decimals
FUNDING = 10**30  # each agent's starting balance: far more than any run moves
GOAL = 0.5
WARMUP_TRANSFERS = 50


def pair(i: int) -> tuple[str, str]:
    """Transfer i goes round-robin: agent-k pays agent-(k+1)."""
    return AGENTS[i % len(AGENTS)], AGENTS[(i + 1) % len(AGENTS)]


# stakeledger -----------------------------------------------------------------------------


def funded_ledger(url: str) -> StakeLedger:
    app = open_ledger(url)
    app.initialise(18)
    for name in AGENTS:
        app.open_account(name)
        app.mint(name, FUNDING)
    return app


def batch_requests(size: int) -> list[TransferRequest]:
    return [TransferRequest(*pair(i), AMOUNT) for i in range(size)]


def stakeledger_single(url: str, n: int) -> list[float]:
    app = funded_ledger(url)
    try:
        measure(lambda i: app.transfer(*pair(i), AMOUNT), WARMUP_TRANSFERS)
        return [measure(lambda i: app.transfer(*pair(i), AMOUNT), n)]
    finally:
        app.close()


def transfer_event_size() -> int:
    """Stored state bytes of a real agent-to-agent Debited/Credited event (their mean)."""
    app = funded_ledger("memory://")
    app.transfer(*pair(0), AMOUNT)
    sizes = []
    for name in pair(0):
        last = list(app.events.get(app.get_account(name).id))[-1]
        assert isinstance(last, (Account.Debited, Account.Credited)), type(last)
        sizes.append(len(app.mapper.to_stored_event(last).state))
    app.close()
    return round(sum(sizes) / len(sizes))


def profile_batch(url: str, size: int, top: int = 15) -> str:
    """cProfile of one transfer_many of ``size`` transfers, after one warm-up batch. With 10
    agents no account has crossed a snapshot boundary yet, so this batch also replays each
    account's ~200 events: the slow kind of batch, about one in four or five."""
    app = funded_ledger(url)
    requests = batch_requests(size)
    try:
        app.transfer_many(requests)
        profiler = cProfile.Profile()
        profiler.runcall(app.transfer_many, requests)
    finally:
        app.close()
    out = io.StringIO()
    pstats.Stats(profiler, stream=out).strip_dirs().sort_stats("cumulative").print_stats(top)
    return out.getvalue()


# Baseline (a): the eventsourcing library saving bare events of the same size --------------


class Blob(Aggregate):
    class Noted(Aggregate.Event):
        payload: str


class BareEvents:
    """A plain eventsourcing Application on the same store settings, saving Blob.Noted
    events padded to ``event_bytes`` of stored state, on one aggregate per agent."""

    def __init__(self, url: str, event_bytes: int) -> None:
        self.app = Application(env_for_url(url))
        self.blobs = [Blob() for _ in AGENTS]
        self.app.save(*self.blobs)
        self.payload = ""
        bare = len(self._stored_state())
        self.payload = "x" * (event_bytes - bare)
        assert len(self._stored_state()) == event_bytes

    def _stored_state(self) -> bytes:
        event = Blob.Noted(
            originator_id=uuid.uuid4(), originator_version=2, timestamp=datetime.now(timezone.utc), payload=self.payload
        )
        return self.app.mapper.to_stored_event(event).state

    def note(self, i: int) -> tuple[Blob, Blob]:
        """The two events of "transfer" i, on the same pair of aggregates as stakeledger's."""
        k = i % len(self.blobs)
        debit, credit = self.blobs[k], self.blobs[(k + 1) % len(self.blobs)]
        debit.trigger_event(Blob.Noted, payload=self.payload)
        credit.trigger_event(Blob.Noted, payload=self.payload)
        return debit, credit

    def single(self, i: int) -> None:
        self.app.save(*self.note(i))

    def batch(self, size: int) -> None:
        for i in range(size):
            self.note(i)
        self.app.save(*self.blobs)


def baseline_a_single(url: str, n: int, event_bytes: int) -> list[float]:
    bare = BareEvents(url, event_bytes)
    try:
        measure(bare.single, WARMUP_TRANSFERS)
        return [measure(bare.single, n)]
    finally:
        bare.app.close()


# Batched: stakeledger and baseline (a) take turns, batch by batch, each on its own store,
# so a noisy spell on a shared machine (CPU or fsync) falls on both sides of the ratio.


def batched_pair(ledger_url: str, bare_url: str, batches: int, size: int, event_bytes: int) -> tuple[list, list]:
    """Seconds of each stakeledger ``transfer_many`` of ``size`` and of each baseline (a)
    save of ``2 * size`` bare events, alternating, after one warm-up batch of each."""
    app, bare = funded_ledger(ledger_url), BareEvents(bare_url, event_bytes)
    requests = batch_requests(size)
    try:
        app.transfer_many(requests)
        bare.batch(size)
        ledger_times, bare_times = [], []
        for _ in range(batches):
            ledger_times.append(measure(lambda _: app.transfer_many(requests)))
            bare_times.append(measure(lambda _: bare.batch(size)))
        return ledger_times, bare_times
    finally:
        app.close()
        bare.app.close()


# Baseline (b): a plain SQL ledger, one transaction per transfer ---------------------------


def baseline_b_single(url: str, n: int) -> list[float]:
    postgres = not url.startswith("sqlite")
    connection = plain_connection(url)
    p = "%s" if postgres else "?"
    amount_type = "NUMERIC(78, 0)" if postgres else "TEXT"
    time_type = "TIMESTAMPTZ" if postgres else "TEXT"
    ddl = [
        f"CREATE TABLE balances (account TEXT PRIMARY KEY, balance {amount_type} NOT NULL)",
        f"CREATE TABLE ledger (id TEXT PRIMARY KEY, debit TEXT NOT NULL, credit TEXT NOT NULL, "
        f"amount {amount_type} NOT NULL, reason TEXT NOT NULL, created_at {time_type} NOT NULL)",
    ]
    lock = "FOR UPDATE" if postgres else ""
    select = f"SELECT account, balance FROM balances WHERE account IN ({p}, {p}) ORDER BY account {lock}"
    update = f"UPDATE balances SET balance = {p} WHERE account = {p}"
    insert = f"INSERT INTO ledger (id, debit, credit, amount, reason, created_at) VALUES ({p}, {p}, {p}, {p}, {p}, {p})"

    def begin() -> None:
        if not postgres:
            connection.execute("BEGIN IMMEDIATE")  # take the write lock before reading

    def commit() -> None:
        if postgres:
            connection.commit()
        else:
            connection.execute("COMMIT")

    def encode(units: int) -> Any:
        return units if postgres else str(units)

    def transfer(i: int) -> None:
        debit, credit = pair(i)
        begin()
        balances = {account: int(balance) for account, balance in connection.execute(select, (debit, credit))}
        if balances[debit] < AMOUNT:
            raise RuntimeError(f"{debit} holds {balances[debit]}, {AMOUNT} needed")
        connection.execute(update, (encode(balances[debit] - AMOUNT), debit))
        connection.execute(update, (encode(balances[credit] + AMOUNT), credit))
        now = datetime.now(timezone.utc)
        connection.execute(
            insert, (uuid.uuid4().hex, debit, credit, encode(AMOUNT), "transfer", now if postgres else now.isoformat())
        )
        commit()

    try:
        begin()
        for statement in ddl:
            connection.execute(statement)
        for name in AGENTS:
            connection.execute(f"INSERT INTO balances (account, balance) VALUES ({p}, {p})", (name, encode(FUNDING)))
        commit()
        measure(transfer, WARMUP_TRANSFERS)
        return [measure(transfer, n)]
    finally:
        connection.close()


# The run ------------------------------------------------------------------------------------


def run_backend(backend: str, server_url: str | None, args: argparse.Namespace, event_bytes: int) -> dict:
    def summary(chunks: list[float], per_chunk: int) -> dict[str, Any]:
        """Seconds of timed chunks of ``per_chunk`` transfers -> rates. The rate is over the
        total time: the median batch is shown too, but it would hide the batches that pay
        for a periodic cost (such as replaying events since the last snapshot)."""
        rates = {"transfers_per_s_median_batch": round(per_second(per_chunk, statistics.median(chunks)), 1)}
        return {
            "transfers": per_chunk * len(chunks),
            "seconds": round(sum(chunks), 4),
            "transfers_per_s": round(per_second(per_chunk * len(chunks), sum(chunks)), 1),
            **(rates if len(chunks) > 1 else {}),
        }

    def single(label: str, fn: Callable[[str, int], list[float]]) -> dict[str, Any]:
        log(f"  {backend}: {label}, {n:,} transfers ...")
        with fresh_store(backend, server_url, label.replace(" ", "_")) as url:
            return summary(fn(url, n), n)

    n, batches, size = args.transfers, args.batches, args.batch_size
    results = {"stakeledger_single": single("stakeledger single", stakeledger_single)}
    log(f"  {backend}: stakeledger and baseline_a batched, taking turns, {batches} x {size:,} transfers each ...")
    with (
        fresh_store(backend, server_url, "ledger_batched") as ledger_url,
        fresh_store(backend, server_url, "bare_batched") as bare_url,
    ):
        ledger_times, bare_times = batched_pair(ledger_url, bare_url, batches, size, event_bytes)
    results["stakeledger_batched"] = summary(ledger_times, size)
    results["baseline_a_single"] = single("baseline_a single", lambda url, n: baseline_a_single(url, n, event_bytes))
    results["baseline_a_batched"] = summary(bare_times, size)
    results["baseline_b_single"] = single("baseline_b single", baseline_b_single)
    for key, result in results.items():
        mode = key.rsplit("_", 1)[1]
        stores_events = not key.startswith("baseline_b")
        result["events_per_s"] = round(2 * result["transfers_per_s"], 1) if stores_events else None
        baseline = results[f"baseline_a_{mode}"]["transfers_per_s"]
        result["ratio_vs_baseline_a"] = round(result["transfers_per_s"] / baseline, 3)
    return results


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--quick", action="store_true", help="a fast smoke run (200 single transfers, 2 batches)")
    parser.add_argument("--transfers", type=int, help="single transfers per mode (default 2,000; 200 with --quick)")
    parser.add_argument("--batches", type=int, help="timed batches per mode (default 10; 2 with --quick)")
    parser.add_argument("--batch-size", type=int, default=1000, help="transfers per batch (default 1,000)")
    parser.add_argument("--backend", choices=BACKENDS, action="append", help="only this backend (repeatable)")
    parser.add_argument("--profile", action="store_true", help="also print a cProfile of one transfer_many batch")
    args = parser.parse_args(argv)
    args.transfers = args.transfers or (200 if args.quick else 2000)
    args.batches = args.batches or (2 if args.quick else 10)
    backends = args.backend or list(BACKENDS)

    event_bytes = transfer_event_size()
    log(f"a transfer stores 2 events of ~{event_bytes} bytes of state each")
    document: dict[str, Any] = {
        "benchmark": "ledger",
        "machine": machine_info(),
        "params": {
            "quick": args.quick,
            "transfers": args.transfers,
            "batches": args.batches,
            "batch_size": args.batch_size,
            "agents": len(AGENTS),
            "events_per_transfer": 2,
            "event_state_bytes": event_bytes,
            "warmup_transfers": WARMUP_TRANSFERS,
            "warmup_batches": 1,
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
            results = run_backend(backend, server_url, args, event_bytes)
            document["results"][backend] = results
            ratio = results["stakeledger_batched"]["ratio_vs_baseline_a"]
            goal = {"batched_vs_baseline_a_batched": ratio, "threshold": GOAL, "met": ratio >= GOAL}
            document["goal"][backend] = goal
            if args.profile:
                log(f"  {backend}: profiling one transfer_many of {args.batch_size:,} ...")
                with fresh_store(backend, server_url, "profile") as url:
                    profiles[backend] = profile_batch(url, args.batch_size)

    for backend, text in profiles.items():
        print(f"--- cProfile: one transfer_many of {args.batch_size:,} on {backend} (top 15, cumulative) ---")
        print(text)

    labels = {
        "stakeledger_single": ("stakeledger", "single"),
        "stakeledger_batched": ("stakeledger", "batched"),
        "baseline_a_single": ("baseline (a) bare events", "single"),
        "baseline_a_batched": ("baseline (a) bare events", "batched"),
        "baseline_b_single": ("baseline (b) plain SQL", "single"),
    }
    rows = [
        (backend, *labels[key], r["transfers_per_s"], r["events_per_s"], r["ratio_vs_baseline_a"])
        for backend, results in document["results"].items()
        for key, r in results.items()
    ]
    columns = ["backend", "system", "mode", "transfers/s", "events/s", "vs (a) same mode"]
    report(
        "ledger",
        f"Ledger transfers (N={args.transfers:,} single; {args.batches} x {args.batch_size:,} batched)",
        columns,
        rows,
        document,
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
