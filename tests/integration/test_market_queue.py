"""Writers to one market take turns: in one process (domain/service/ledger.py MarketQueue) and
across processes (adapters/persistence/market_locks.py: advisory locks on PostgreSQL, a lock
file's bytes on SQLite).

Threads of one process (the API's thread pool) ordering on one market would otherwise decide
on the same artifact version at once, conflict on save and retry after a random back-off.
Queued, they never conflict with each other; writers to other markets do not wait; a
command that runs another command on the same market from inside its turn does not
deadlock (nor does a second ledger over the same store writing from inside the first's
turn: a thread never waits for a lock it holds); and turns are given in arrival order. Two processes trading one market do not
conflict either, and a lock another process keeps delays a writer by the wait, no more. On SQLite,
whose lock file is polled, a process that has had a market its turns in a row lets a process that
waits go first.
"""

from __future__ import annotations

import multiprocessing
import os
import threading
import time

from eventsourcing.persistence import RecordConflictError

from stakeledger.adapters.persistence import market_locks
from stakeledger.adapters.persistence.store_url import open_ledger
from stakeledger.domain.model.accounts import pool_account_id
from stakeledger.domain.service.ledger import MarketQueue, _market_of
from stakeledger.projections.audit import audit

TOKEN = 10**6
THREADS = 6
ORDERS_PER_THREAD = 8


def count_conflicts(ledger) -> list[Exception]:
    """The save conflicts the ledger meets from now on (each is retried, then counted here)."""
    conflicts: list[Exception] = []
    save = ledger.save

    def counting_save(*aggregates):
        try:
            return save(*aggregates)
        except RecordConflictError as error:
            conflicts.append(error)
            raise

    ledger.save = counting_save
    return conflicts


def test_threads_when_ordering_on_one_market_then_no_save_conflicts_and_every_order_counts(ledger) -> None:
    agents = [f"agent{i}" for i in range(THREADS)]
    for agent in agents:
        ledger.open_account(agent)
        ledger.mint(agent, 1_000 * TOKEN)
    ledger.list_artifact("ART", "One hot market", 100 * TOKEN)
    pool_before = ledger.balance_of(pool_account_id("ART"))
    conflicts = count_conflicts(ledger)
    start = threading.Barrier(THREADS)
    costs: list[int] = []

    def trade(agent: str, side: str) -> None:
        start.wait()
        for _ in range(ORDERS_PER_THREAD):
            costs.append(int(ledger.open_position(agent, "ART", side, TOKEN)["cost_units"]))

    threads = [threading.Thread(target=trade, args=(a, ("long", "short")[i % 2])) for i, a in enumerate(agents)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()

    assert conflicts == []
    assert len(costs) == THREADS * ORDERS_PER_THREAD
    assert ledger.balance_of(pool_account_id("ART")) == pool_before + sum(costs)
    assert audit(ledger).clean


def test_turns_when_taken_then_given_in_arrival_order_and_other_markets_do_not_wait() -> None:
    queue = MarketQueue()
    entered: list[int] = []
    release = threading.Event()

    def writer(index: int) -> None:
        with queue.turn("ART"):
            entered.append(index)
            if index == 0:
                release.wait(5)

    first = threading.Thread(target=writer, args=(0,))
    first.start()
    while not entered:
        time.sleep(0.001)
    waiting = []
    for index in range(1, 5):
        waiting.append(threading.Thread(target=writer, args=(index,)))
        waiting[-1].start()
        time.sleep(0.02)  # each queues behind the one started before it
    elsewhere = threading.Event()

    def other_market() -> None:
        with queue.turn("OTHER"):
            elsewhere.set()

    threading.Thread(target=other_market).start()
    assert elsewhere.wait(2), "a writer to another market waited for ART's turn"
    assert entered == [0]
    release.set()
    for thread in [first, *waiting]:
        thread.join(5)
    assert entered == [0, 1, 2, 3, 4]
    assert queue._queues == {}  # nothing left behind once every turn is over


def test_a_turn_when_taken_again_by_the_same_thread_then_it_does_not_wait_for_itself() -> None:
    queue = MarketQueue()
    done = threading.Event()

    def nested() -> None:
        with queue.turn("ART"), queue.turn("ART"):
            done.set()

    thread = threading.Thread(target=nested)
    thread.start()
    thread.join(2)
    assert done.is_set()


def test_market_of_when_payloads_name_a_market_then_it_is_found_and_otherwise_none() -> None:
    assert _market_of({"artifact": "ART-1", "agent": "a"}) == "ART-1"
    assert _market_of({"artifact_id": "ART-2"}) == "ART-2"
    assert _market_of({"position": "ART-3/p7"}) == "ART-3"
    assert _market_of({"order": "ART-4/o2", "agent": None}) == "ART-4"
    assert _market_of({"account": "alice"}) is None
    assert _market_of({"position": "no-slash"}) is None
    assert _market_of(None) is None


# Across processes (adapters/persistence/market_locks.py) ------------------------------------


def _trade_in_a_process(url: str, agent: str, side: str, barrier, results) -> None:
    ledger = open_ledger(url)
    conflicts = count_conflicts(ledger)
    ledger.quote("ART", side, tokens_units=TOKEN)  # warm up before the race
    barrier.wait()
    costs = [int(ledger.open_position(agent, "ART", side, TOKEN)["cost_units"]) for _ in range(ORDERS_PER_THREAD * 2)]
    results.put((agent, len(conflicts), sum(costs)))
    ledger.close()


def test_processes_when_ordering_on_one_market_then_the_store_gives_them_turns_and_none_conflicts(
    durable_store_url,
) -> None:
    ledger = open_ledger(durable_store_url)
    ledger.initialise(decimals=6)
    for agent in ("alice", "bob"):
        ledger.open_account(agent)
        ledger.mint(agent, 1_000 * TOKEN)
    ledger.list_artifact("ART", "One hot market", 100 * TOKEN)
    pool_before = ledger.balance_of(pool_account_id("ART"))
    context = multiprocessing.get_context("spawn")
    barrier, results = context.Barrier(2), context.Queue()
    workers = [
        context.Process(target=_trade_in_a_process, args=(durable_store_url, agent, side, barrier, results))
        for agent, side in (("alice", "long"), ("bob", "short"))
    ]
    for worker in workers:
        worker.start()
    outcomes = [results.get(timeout=120) for _ in workers]
    for worker in workers:
        worker.join(30)

    assert [conflicts for _, conflicts, _ in outcomes] == [0, 0]
    assert ledger.balance_of(pool_account_id("ART")) == pool_before + sum(cost for _, _, cost in outcomes)
    assert audit(ledger).clean
    ledger.close()


def test_a_market_lock_when_another_session_keeps_it_then_the_writer_goes_on_without_it(
    durable_store_url, monkeypatch
) -> None:
    monkeypatch.setattr(market_locks, "WAIT_SECONDS", 1)
    ledger = open_ledger(durable_store_url)
    ledger.initialise(decimals=6)
    ledger.open_account("alice")
    ledger.mint("alice", 1_000 * TOKEN)
    ledger.list_artifact("ART", "A market whose lock is kept", 100 * TOKEN)
    locks = ledger.market_queue.across_processes
    if durable_store_url.startswith("postgres"):  # another session, in another thread, holds the lock
        stranger = type(locks)(ledger.factory.datastore)
        ready, done = threading.Event(), threading.Event()

        def keep() -> None:
            with stranger.hold("ART") as held:
                assert held
                ready.set()
                done.wait(60)

        keeper = threading.Thread(target=keep)
    else:  # another process holds the lock file's byte
        context = multiprocessing.get_context("spawn")
        ready, done = context.Event(), context.Event()
        keeper = context.Process(target=_keep_file_lock, args=(durable_store_url, ready, done))
    keeper.start()
    assert ready.wait(60)
    try:
        started = time.monotonic()
        result = ledger.open_position("alice", "ART", "long", TOKEN)
        waited = time.monotonic() - started
    finally:
        done.set()
        keeper.join(30)
    assert int(result["cost_units"]) == TOKEN
    assert 0.9 <= waited < 30
    ledger.close()


def _keep_file_lock(url: str, ready, done) -> None:
    locks = market_locks.FileMarketLocks(url.removeprefix("sqlite:///"))
    with locks.hold("ART") as held:
        assert held
        ready.set()
        done.wait(60)
    locks.close()


def test_two_ledgers_over_one_store_when_the_second_writes_inside_the_first_turn_then_no_wait(
    durable_store_url, monkeypatch
) -> None:
    monkeypatch.setattr(market_locks, "WAIT_SECONDS", 5)
    first, second = open_ledger(durable_store_url), open_ledger(durable_store_url)
    first.initialise(decimals=6)
    first.open_account("alice")
    first.mint("alice", 1_000 * TOKEN)
    first.list_artifact("ART", "One market, two ledgers", 100 * TOKEN)
    inner: list[float] = []

    def decide(unit):
        started = time.monotonic()
        second.open_position("alice", "ART", "long", TOKEN)  # the same market, from inside the turn
        inner.append(time.monotonic() - started)
        return {}

    first.execute("test.nested", decide, payload={"artifact": "ART"})
    assert inner and inner[0] < 2  # not the lock's five-second wait
    first.close()
    second.close()


def _wait_for_the_market(path: str, got, hold_seconds: float) -> None:
    locks = market_locks.FileMarketLocks(path)
    with locks.hold("ART") as held:
        got.put((held, time.time()))
        time.sleep(hold_seconds)
    locks.close()


def test_a_process_when_it_has_had_a_market_its_turns_in_a_row_then_a_waiting_process_goes_first(
    tmp_path,
) -> None:
    """On SQLite the lock file is polled, so without turns between processes the process that
    has a market would take it again before the other's next poll, for as long as it has
    writers queued. After TURNS_IN_A_ROW turns it lets the waiting process go first."""
    path = str(tmp_path / "ledger.db")
    locks = market_locks.FileMarketLocks(path)
    offset = market_locks._key(os.path.abspath(path), "ART") % market_locks.LOCK_BYTES
    for _ in range(market_locks.TURNS_IN_A_ROW - 1):
        with locks.hold("ART") as held:
            assert held
    context = multiprocessing.get_context("spawn")
    got = context.Queue()
    with locks.hold("ART") as held:  # the last turn in a row; another process asks meanwhile
        assert held
        other = context.Process(target=_wait_for_the_market, args=(path, got, 0.5))
        other.start()
        deadline = time.monotonic() + 60
        while not market_locks._held_by_another(locks._file(), market_locks.LOCK_BYTES + offset):
            assert time.monotonic() < deadline, "the other process never said it waits"
            time.sleep(0.01)
    with locks.hold("ART") as held:  # this process's next writer, straight after
        mine = time.time()
        assert held
    other_held, other_got = got.get(timeout=60)
    other.join(30)
    locks.close()

    assert other_held
    assert mine >= other_got + 0.4  # it waited for the other's whole turn, not the other way round


def test_a_process_alone_when_it_takes_a_market_many_times_then_it_never_waits_for_itself(tmp_path) -> None:
    locks = market_locks.FileMarketLocks(str(tmp_path / "ledger.db"))
    started = time.monotonic()
    for _ in range(market_locks.TURNS_IN_A_ROW * 50):
        with locks.hold("ART") as held:
            assert held
    assert time.monotonic() - started < market_locks.WAIT_SECONDS / 2
    locks.close()
