"""The live feed against a real server: a client that disconnects and resumes gets exactly
the messages it missed (SSE and WebSocket, SQLite and PostgreSQL), a trade committed while
a client is connected reaches it, private topics refuse other keys, and a slow consumer
is closed with the id to resume after. Every wait is bounded."""

from __future__ import annotations

import asyncio
import json
import logging
import os
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from websockets.exceptions import ConnectionClosed
from websockets.sync.client import connect

from stakeledger.adapters.persistence.store_url import open_ledger
from stakeledger.api.app import create_app
from stakeledger.api.feed import LAST, FeedHub, Subscription, messages_for, parse_cursor
from stakeledger.domain.service.application import StakeLedger
from stakeledger.domain.service.clock import ManualClock
from tests.api.conftest import ART, TOKEN, seed
from tests.api.serving import free_port, stop, wait_until_serving
from tests.conftest import ROOT

WAIT_SECONDS = 20
TOPICS = "trades,prices,orders"


@pytest.fixture
def server(durable_store_url: str, tmp_path: Path) -> Iterator[tuple[str, StakeLedger, dict[str, str]]]:
    ledger = open_ledger(durable_store_url)
    keys = seed(ledger)
    port = free_port()
    log_path = tmp_path / "serve.log"
    log = open(log_path, "w")
    paths = [str(ROOT), os.environ.get("PYTHONPATH", "")]
    process = subprocess.Popen(
        [sys.executable, "-m", "stakeledger.cli.main", "--db", durable_store_url, "serve", "--port", str(port)]
        + ["--no-access-log"],
        cwd=ROOT,
        stdout=log,
        stderr=subprocess.STDOUT,
        env={
            **os.environ,
            "PYTHONPATH": os.pathsep.join(path for path in paths if path),
            "STAKELEDGER_FEED_KEEPALIVE_SECONDS": "0.5",
        },
    )
    base = f"http://127.0.0.1:{port}"
    try:
        wait_until_serving(base, process, log_path)
        yield base, ledger, keys
    finally:
        stop(process)
        log.close()
        ledger.close()


def trade(ledger: StakeLedger, agent: str = "alice", side: str = "long", tokens: int = 3) -> None:
    ledger.open_position(agent, ART, side, tokens * TOKEN)


def read_sse(
    base: str, count: int, params: dict[str, str], headers: dict[str, str] | None = None, *, during: Any = None
) -> list[dict[str, Any]]:
    """The first ``count`` messages of one SSE connection, then disconnect. ``during`` runs
    once the connection is open and has delivered what the log already held."""
    got: list[dict[str, Any]] = []
    deadline = time.monotonic() + WAIT_SECONDS
    with httpx.stream("GET", f"{base}/api/stream", params=params, headers=headers or {}, timeout=WAIT_SECONDS) as r:
        assert r.status_code == 200, r.read()
        data: list[str] = []
        for line in r.iter_lines():
            assert time.monotonic() < deadline, f"only {len(got)} of {count} messages arrived"
            if line.startswith("data:"):
                data.append(line[5:].strip())
            elif line == "" and data:
                got.append(json.loads("\n".join(data)))
                data = []
                if len(got) == count:
                    return got
            elif line.startswith(":") and during is not None:
                during()  # the first keep-alive: the backlog is delivered
                during = None
    raise AssertionError(f"the stream ended after {len(got)} of {count} messages")


def read_ws(base: str, count: int, query: str, *, during: Any = None) -> list[dict[str, Any]]:
    got: list[dict[str, Any]] = []
    deadline = time.monotonic() + WAIT_SECONDS
    with connect(f"ws{base[4:]}/api/ws?{query}", open_timeout=WAIT_SECONDS) as socket:
        while len(got) < count:
            try:
                frame = socket.recv(timeout=1.0 if during is not None else max(deadline - time.monotonic(), 0.1))
            except TimeoutError:
                assert during is not None, f"only {len(got)} of {count} messages arrived"
                during()
                during = None
                continue
            got.append(json.loads(frame))
            assert time.monotonic() < deadline
    return got


def test_sse_when_a_client_disconnects_and_resumes_then_it_gets_exactly_the_missed_messages(server):
    base, ledger, _ = server
    for number in range(3):
        trade(ledger, side="long" if number % 2 else "short")
    first = read_sse(base, 3, {"topics": TOPICS})  # 3 = trades, prices, trades: it stops inside a position
    assert [message["topic"] for message in first] == ["trades", "prices", "trades"]
    assert first[-1]["id"].endswith(".0")

    # Missed while away: two trades and a resting limit order.
    trade(ledger, "bob", "short", 5)
    ledger.place_limit_order("bob", ART, "long", 4 * TOKEN, 100_000_000_000_000_000)
    trade(ledger, "alice", "long", 2)
    # The second trade's prices, the third trade, then bob's trade, his order and alice's trade.
    missed = 1 + 2 + 2 + 1 + 2
    live = threading.Timer(0, lambda: trade(ledger, "bob", "long", 1))
    resumed = read_sse(base, missed + 2, {"topics": TOPICS}, {"Last-Event-ID": first[-1]["id"]}, during=live.start)
    live.join(WAIT_SECONDS)
    assert resumed[0]["id"] == first[-1]["id"][:-2] + ".1" and resumed[0]["topic"] == "prices"
    assert resumed[missed]["taker"] == "bob" and resumed[missed]["tokens"] == "1"  # committed while connected

    everything = read_sse(base, len(first) + len(resumed), {"topics": TOPICS})
    assert first + resumed == everything
    ids = [message["id"] for message in everything]
    assert len(set(ids)) == len(ids)
    assert [message["position"] for message in everything] == sorted(message["position"] for message in everything)
    orders = [message for message in everything if message["topic"] == "orders"]
    assert [(order["event"], order["agent"], order["tokens"]) for order in orders] == [("placed", "bob", "4")]
    # ?after= resumes the same way as the header.
    assert read_sse(base, missed + 2, {"topics": TOPICS, "after": first[-1]["id"]}) == resumed


def test_websocket_when_a_client_disconnects_and_resumes_then_it_gets_exactly_the_missed_messages(server):
    base, ledger, _ = server
    trade(ledger)
    trade(ledger, "bob", "short")
    first = read_ws(base, 2, "topics=trades")
    assert [message["taker"] for message in first] == ["alice", "bob"]
    # Ids number a position's messages whatever the filter: a trade's is N.0 (its prices N.1).
    assert all(message["id"] == f"{message['position']}.0" for message in first)
    trade(ledger, "alice", "short", 7)
    trade(ledger, "bob", "long", 2)
    resumed = read_ws(
        base, 3, f"topics=trades&after={first[-1]['id']}", during=lambda: trade(ledger, "alice", "long", 1)
    )
    assert [(message["taker"], message["tokens"]) for message in resumed] == [
        ("alice", "7"),
        ("bob", "2"),
        ("alice", "1"),
    ]
    assert read_ws(base, 5, "topics=trades") == first + resumed
    # The same messages as SSE, field for field.
    assert read_sse(base, 5, {"topics": "trades"}) == first + resumed
    # A market filter.
    assert read_ws(base, 5, f"topics=trades,prices&artifact={ART}")[0]["artifact"] == ART


def test_private_topics_when_asked_with_another_agents_key_then_refused_and_with_the_own_key_then_only_own(server):
    base, ledger, keys = server
    trade(ledger, "alice", "long", 2)
    trade(ledger, "bob", "short", 3)
    params = {"topics": "account", "account": "alice"}
    nobody = httpx.get(f"{base}/api/stream", params=params, timeout=WAIT_SECONDS)
    assert (nobody.status_code, nobody.json()["error"]) == (401, "UNAUTHENTICATED")
    bob = httpx.get(f"{base}/api/stream", params=params, headers=bearer(keys["bob"]), timeout=WAIT_SECONDS)
    assert (bob.status_code, bob.json()["error"]) == (403, "FORBIDDEN")
    no_account = httpx.get(f"{base}/api/stream", params={"topics": "transfers"}, timeout=WAIT_SECONDS)
    assert (no_account.status_code, no_account.json()["error"]) == (422, "INVALID_INPUT")
    unknown = httpx.get(f"{base}/api/stream", params={"topics": "gossip"}, timeout=WAIT_SECONDS)
    assert (unknown.status_code, unknown.json()["error"]) == (422, "INVALID_TOPIC")
    with connect(f"ws{base[4:]}/api/ws?topics=account&account=alice&key={keys['bob']}") as socket:
        assert json.loads(socket.recv(timeout=WAIT_SECONDS))["error"] == "FORBIDDEN"
        with pytest.raises(ConnectionClosed):
            socket.recv(timeout=WAIT_SECONDS)
        assert socket.close_code == 4403

    # Alice's own key: her mint, her trade and what she paid for it; none of bob's.
    own = read_sse(base, 3, params, bearer(keys["alice"]))
    assert {message["agent"] for message in own} == {"alice"}
    assert {message["topic"] for message in own} == {"transfers", "trades"}
    admin = read_sse(base, 3, params, bearer(keys["admin"]))
    assert admin == own
    transfers = read_sse(base, 2, {"topics": "transfers", "account": "bob", "key": keys["bob"]})
    assert {(message["topic"], message["account"]) for message in transfers} == {("transfers", "bob")}


def bearer(key: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {key}"}


def test_slow_consumer_when_more_than_the_bound_waits_then_it_is_closed_and_resumes_without_a_gap():
    app = create_app("memory://", ManualClock())
    state = app.state.api
    seed(state.ledger)
    hub = FeedHub(state, poll_seconds=0.01, max_buffered=3)
    wanted = Subscription(frozenset({"trades", "prices"}))
    start = state.ledger.recorder.max_notification_id()

    async def scenario() -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
        slow = messages_for(hub, wanted, (start, LAST), keepalive=0.05)
        assert await slow.__anext__() is None  # subscribed, nothing new yet
        for number in range(4):  # 8 messages: more than 3 wait while the client does not read
            await asyncio.to_thread(trade, state.ledger, "alice", "long" if number % 2 else "short", 2)
        deadline = time.monotonic() + WAIT_SECONDS
        while hub.position < state.ledger.recorder.max_notification_id():
            assert time.monotonic() < deadline
            await asyncio.sleep(0.02)
        received = []
        async for message in slow:
            if message is not None:
                received.append(message)
                if message["topic"] == "close":
                    break
        resume = parse_cursor(received[-1]["resume_after"], "after")
        rest = []
        resumed = messages_for(hub, wanted, resume, keepalive=0.05)
        async for message in resumed:
            if message is None:
                break
            rest.append(message)
        await resumed.aclose()
        return received, rest

    try:
        received, rest = asyncio.run(scenario())
    finally:
        state.close()
    close = received.pop()
    assert close["reason"] == "slow_consumer" and len(received) <= 3
    assert close["resume_after"] == (received[-1]["id"] if received else str(start))
    ids = [message["id"] for message in received + rest]
    assert len(ids) == 8 and len(set(ids)) == 8
    assert [message["topic"] for message in received + rest] == ["trades", "prices"] * 4


def test_feed_when_served_by_several_workers_then_every_connection_gets_the_same_messages(postgres_server, tmp_path):
    from tests.conftest import fresh_postgres_url

    url = fresh_postgres_url(postgres_server)
    ledger = open_ledger(url)
    seed(ledger)
    port = free_port()
    log_path = tmp_path / "serve.log"
    with log_path.open("w") as log:
        paths = [str(ROOT), os.environ.get("PYTHONPATH", "")]
        process = subprocess.Popen(
            [sys.executable, "-m", "stakeledger.cli.main", "--db", url, "serve", "--port", str(port)]
            + ["--workers", "2", "--no-access-log"],
            cwd=ROOT,
            stdout=log,
            stderr=subprocess.STDOUT,
            env={**os.environ, "PYTHONPATH": os.pathsep.join(path for path in paths if path)},
        )
    base = f"http://127.0.0.1:{port}"
    try:
        wait_until_serving(base, process, log_path)
        results: dict[int, Any] = {}

        def reader(number: int) -> None:
            try:
                results[number] = read_sse(base, 6, {"topics": "trades,prices", "artifact": ART})
            except BaseException as error:  # noqa: BLE001 - reported below
                results[number] = error

        readers = [threading.Thread(target=reader, args=(number,)) for number in range(4)]
        for thread in readers:
            thread.start()
        time.sleep(1.0)  # the readers connect (each to whichever worker accepts it) before the trades
        for number in range(3):
            trade(ledger, "bob" if number % 2 else "alice", "long" if number % 2 else "short", number + 1)
        for thread in readers:
            thread.join(WAIT_SECONDS + 5)
        assert all(isinstance(result, list) for result in results.values()) and len(results) == 4, results
        first = results[0]
        assert [message["topic"] for message in first] == ["trades", "prices"] * 3
        assert all(result == first for result in results.values())
    finally:
        stop(process)
        ledger.close()


def test_feed_when_the_request_is_malformed_then_the_usual_error_body_and_nothing_written(memory_api):
    api = memory_api
    head = api.head()
    cases = [
        ({"topics": "trades", "after": "ten"}, {}, 422, "INVALID_INPUT"),
        ({"topics": "trades"}, {"Last-Event-ID": "12.x"}, 422, "INVALID_INPUT"),
        ({"topics": ","}, {}, 422, "INVALID_TOPIC"),
        ({"topics": "trades,gossip"}, {}, 422, "INVALID_TOPIC"),
        ({"topics": "trades", "artifact": "ART 1"}, {}, 422, "INVALID_INPUT"),
        ({"topics": "inbox"}, {}, 422, "INVALID_INPUT"),
        ({"topics": "inbox", "account": "alice", "key": "sl_nope_nope"}, {}, 401, "UNAUTHENTICATED"),
        ({"topics": "inbox", "account": "alice"}, {"Authorization": f"Bearer {api.bob}"}, 403, "FORBIDDEN"),
    ]
    for params, headers, status, code in cases:
        answer = api.client.get("/api/stream", params=params, headers=headers)
        assert (answer.status_code, answer.json()["error"]) == (status, code), (params, headers, answer.text)
        assert answer.json()["message"]
    for query, close_code, code in [
        ("topics=gossip", 4422, "INVALID_TOPIC"),
        ("topics=account&account=alice", 4401, "UNAUTHENTICATED"),
        (f"topics=account&account=alice&key={api.bob}", 4403, "FORBIDDEN"),
        ("topics=trades&after=-1", 4422, "INVALID_INPUT"),
    ]:
        with api.client.websocket_connect(f"/api/ws?{query}") as socket:
            assert socket.receive_json()["error"] == code
            assert socket.receive()["code"] == close_code
    assert api.head() == head


def test_access_log_when_a_key_is_in_the_query_then_the_line_shows_it_redacted():
    from stakeledger.api.feed import RedactKeys

    record = logging.LogRecord(
        "uvicorn.access",
        logging.INFO,
        __file__,
        1,
        '%s - "%s %s HTTP/%s" %d',
        ("127.0.0.1:5", "GET", "/api/stream?topics=inbox&key=sl_abc_secret&account=alice", "1.1", 200),
        None,
    )
    assert RedactKeys().filter(record)
    assert "sl_abc_secret" not in record.getMessage()
    assert "/api/stream?topics=inbox&key=[redacted]&account=alice" in record.getMessage()


def test_feed_when_the_api_does_not_catch_up_then_it_delivers_what_the_projection_worker_applied():
    from stakeledger.projections.runner import catch_up

    app = create_app("memory://", ManualClock(), catch_up=False)
    state = app.state.api
    seed(state.ledger)
    catch_up(state.ledger, state.store())
    hub = FeedHub(state, poll_seconds=0.01)
    wanted = Subscription(frozenset({"trades"}))
    start = state.ledger.recorder.max_notification_id()

    async def scenario() -> tuple[list[Any], list[Any]]:
        messages = messages_for(hub, wanted, (start, LAST), keepalive=0.2)
        assert await messages.__anext__() is None  # subscribed
        await asyncio.to_thread(trade, state.ledger, "alice", "long", 2)
        before = [await messages.__anext__() for _ in range(2)]  # nobody applied the trade yet
        await asyncio.to_thread(catch_up, state.ledger, state.store())  # what a worker does
        after = [await messages.__anext__()]
        await messages.aclose()
        return before, after

    try:
        before, after = asyncio.run(scenario())
    finally:
        state.close()
    assert before == [None, None]
    assert [(message["topic"], message["taker"], message["tokens"]) for message in after] == [("trades", "alice", "2")]


def test_prices_when_a_flag_hands_shares_back_then_a_prices_message_with_the_pools_new_price(store_url):
    from stakeledger.api.feed import build_messages
    from stakeledger.projections import queries
    from stakeledger.projections.runner import catch_up

    app = create_app(store_url, ManualClock(), catch_up=False)
    state = app.state.api
    try:
        seed(state.ledger)
        trade(state.ledger, "alice", "long", 30)
        trade(state.ledger, "bob", "short", 5)
        before_flag = state.ledger.get_artifact(ART).price_long_wad
        start = state.ledger.recorder.max_notification_id()
        state.ledger.transition_artifact(ART, "flagged", reason="dispute", price_wad=2 * 10**17)
        end = state.ledger.recorder.max_notification_id()
        after_flag = state.ledger.get_artifact(ART).price_long_wad
        store = state.store()
        catch_up(state.ledger, store)
        messages, reached = build_messages(state, store, start, end)
    finally:
        state.close()
    ticks = [message for message in messages if message["topic"] == "prices"]
    assert reached == end and ticks, [message["topic"] for message in messages]
    assert {tick["cause"] for tick in ticks} == {"settlement"} and {tick["artifact"] for tick in ticks} == {ART}
    assert all(tick["volume_units"] == "0" and tick["agent"] is None for tick in ticks)
    # The ticks chain from the price before the flag to the pool's price after it.
    assert ticks[0]["p_long_before"] == queries.price(before_flag) and after_flag != before_flag
    for earlier, later in zip(ticks, ticks[1:]):
        assert later["p_long_before"] == earlier["p_long"]
    assert int(ticks[-1]["p_long_wad"]) == after_flag
