"""The orchestrator run from the live feed: a strategy called on each 5-minute candle close
of its markets, through a server restart (reconnect and resume), seeing every candle once
and exactly as the server's candles view has it."""

from __future__ import annotations

import asyncio
import os
import subprocess
import sys
import threading
import time
from datetime import datetime, timezone
from pathlib import Path

from stakeledger.adapters.persistence.store_url import open_ledger
from stakeledger.agents.feed import Candle, CandleTracker, FeedFollower
from stakeledger.agents.orchestrator import MultiMarketOrchestrator
from stakeledger.domain.service.clock import ManualClock
from stakeledger.projections import queries
from stakeledger.projections.runner import catch_up
from stakeledger.projections.store import open_store
from tests.api.serving import free_port, stop, wait_until_serving
from tests.conftest import ROOT

TOKEN = 10**6
ART = "ART-1"
WAIT_SECONDS = 30


def start_server(url: str, port: int, log_path: Path) -> subprocess.Popen:
    paths = [str(ROOT), os.environ.get("PYTHONPATH", "")]
    with log_path.open("a") as log:
        process = subprocess.Popen(
            [sys.executable, "-m", "stakeledger.cli.main", "--db", url, "serve", "--port", str(port)],
            cwd=ROOT,
            stdout=log,
            stderr=subprocess.STDOUT,
            env={
                **os.environ,
                "PYTHONPATH": os.pathsep.join(path for path in paths if path),
                "STAKELEDGER_FEED_KEEPALIVE_SECONDS": "0.3",
            },
        )
    wait_until_serving(f"http://127.0.0.1:{port}", process, log_path)
    return process


def test_orchestrator_when_run_from_the_feed_across_a_restart_then_each_candle_close_once(durable_store_url, tmp_path):
    clock = ManualClock()
    ledger = open_ledger(durable_store_url, clock=clock)
    ledger.initialise(decimals=6)
    for agent in ("alice", "bob"):
        ledger.open_account(agent)
        ledger.mint(agent, 1_000 * TOKEN)
    ledger.list_artifact(ART, "A claim", 100 * TOKEN, min_hold_days=0)
    ledger.list_artifact("ART-2", "Another claim", 100 * TOKEN, min_hold_days=0)
    port = free_port()
    base = f"http://127.0.0.1:{port}"
    log_path = tmp_path / "serve.log"
    server = start_server(durable_store_url, port, log_path)

    orchestrator = MultiMarketOrchestrator(ledger, "alice")
    orchestrator.register_market(ART)
    closed: list[Candle] = []
    outcome: dict[str, object] = {}

    def strategy(me: MultiMarketOrchestrator, candle: Candle) -> None:
        assert me is orchestrator
        closed.append(candle)
        if len(closed) == 3:
            done["event"].set()

    done: dict[str, asyncio.Event] = {}

    def run() -> None:
        loop = asyncio.new_event_loop()
        try:
            outcome["follower"] = loop.run_until_complete(follow())
        except BaseException as error:  # noqa: BLE001 - reported by the test thread
            outcome["error"] = error
        finally:
            loop.close()

    async def follow() -> FeedFollower:
        done["event"] = asyncio.Event()
        return await orchestrator.run_from_feed(base, strategy, interval="5m", stop=done["event"])

    def wait_for(condition, what: str) -> None:
        deadline = time.monotonic() + WAIT_SECONDS
        while not condition():
            assert "error" not in outcome, outcome.get("error")
            assert time.monotonic() < deadline, f"timed out waiting for {what}; candles {closed}"
            time.sleep(0.05)

    def trade(agent: str, side: str, tokens: int, artifact: str = ART) -> None:
        ledger.open_position(agent, artifact, side, tokens * TOKEN)
        clock.advance(seconds=20)

    follower_thread = threading.Thread(target=run, daemon=True)
    follower_thread.start()
    try:
        trade("alice", "long", 3)  # bucket 0
        trade("bob", "short", 2)
        trade("bob", "long", 1, "ART-2")  # another market: not the strategy's
        clock.advance(seconds=300)
        trade("alice", "short", 4)  # bucket 1: closes bucket 0
        wait_for(lambda: len(closed) == 1, "the first candle close")

        stop(server)  # the server goes away; trades go on
        trade("bob", "long", 5)
        clock.advance(seconds=300)
        trade("alice", "long", 1)  # bucket 2: closes bucket 1 while nobody listens
        server = start_server(durable_store_url, port, log_path)
        wait_for(lambda: len(closed) == 2, "the candle closed while the server was down")
        clock.advance(seconds=300)
        trade("bob", "short", 2)  # bucket 3: closes bucket 2
        wait_for(lambda: len(closed) == 3, "the third candle close")
        follower_thread.join(WAIT_SECONDS)
        assert not follower_thread.is_alive() and "error" not in outcome, outcome
    finally:
        stop(server)

    follower = outcome["follower"]
    assert isinstance(follower, FeedFollower) and follower.connections >= 2  # it reconnected
    # The candles the strategy saw are the server's candles view, field for field.
    reader = open_ledger(durable_store_url)
    try:
        store = open_store(reader)
        catch_up(reader, store)
        view = queries.candles(store, ART, "5m", decimals=6)["candles"]
        store.close()
    finally:
        reader.close()
        ledger.close()
    seen = [candle.to_dict() for candle in closed]
    assert [c["trades"] for c in seen] == [2, 2, 1]
    fields = ("start", "open_wad", "high_wad", "low_wad", "close_wad", "volume_units", "trades")
    assert [{key: c[key] for key in fields} for c in view[:3]] == [{key: c[key] for key in fields} for c in seen]


def test_candle_tracker_when_the_clock_passes_a_bucket_then_it_closes_after_the_grace():
    tracker = CandleTracker("1m", frozenset({ART}), grace=2.0)
    message = {
        "topic": "trades",
        "artifact": ART,
        "at": "2026-01-01T00:00:10+00:00",
        "price_before_wad": "500000000000000000",
        "price_after_wad": "510000000000000000",
        "tokens_units": "1000000",
        "position": 7,
    }
    assert tracker.on_message(message) == []
    assert tracker.on_clock(datetime(2026, 1, 1, 0, 1, 1, tzinfo=timezone.utc)) == []
    (candle,) = tracker.on_clock(datetime(2026, 1, 1, 0, 1, 2, tzinfo=timezone.utc))
    assert (candle.open_wad, candle.close_wad, candle.trades, candle.volume_units) == (
        5 * 10**17,
        51 * 10**16,
        1,
        TOKEN,
    )
    assert tracker.on_message({**message, "artifact": "OTHER"}) == []
