"""Processes and connections at the same moment: no lost update, no overdraft, no race
on creating the store, and log positions that commit in order."""

import multiprocessing
import sqlite3
import threading

import psycopg
from eventsourcing.sqlite import SQLiteApplicationRecorder

from stakeledger.adapters.persistence.store_url import open_ledger
from stakeledger.domain.errors import ConcurrencyError, InsufficientFundsError
from stakeledger.projections.audit import audit
from tests.conftest import fresh_postgres_url

START_UNITS = 60
ATTEMPTS_PER_WORKER = 45  # 2 x 45 = 90 requested > 60 held: some must be refused


def drain(url: str, destination: str, barrier, results) -> None:
    app = open_ledger(url)
    applied = refused = gave_up = 0
    barrier.wait()
    for _ in range(ATTEMPTS_PER_WORKER):
        try:
            app.transfer("alice", destination, 1)
            applied += 1
        except InsufficientFundsError:
            refused += 1
        except ConcurrencyError:
            gave_up += 1
    results.put((destination, applied, refused, gave_up))
    app.close()


def test_two_processes_when_draining_one_account_then_no_lost_update_and_no_overdraft(durable_store_url):
    ledger = open_ledger(durable_store_url)
    ledger.initialise(decimals=0)
    for name in ("alice", "bob", "carol"):
        ledger.open_account(name)
    ledger.mint("alice", START_UNITS)

    context = multiprocessing.get_context("spawn")
    barrier = context.Barrier(2)
    results = context.Queue()
    workers = [
        context.Process(target=drain, args=(durable_store_url, name, barrier, results)) for name in ("bob", "carol")
    ]
    for worker in workers:
        worker.start()
    outcomes = {}
    for _ in workers:
        destination, applied, refused, gave_up = results.get(timeout=120)
        outcomes[destination] = (applied, refused, gave_up)
    for worker in workers:
        worker.join(timeout=60)
        assert worker.exitcode == 0

    reader = open_ledger(durable_store_url)
    applied_total = sum(applied for applied, _, _ in outcomes.values())
    assert applied_total == START_UNITS, outcomes  # every unit moved exactly once, none twice
    assert reader.balance_of("alice") == 0
    for destination, (applied, _, _) in outcomes.items():
        assert reader.balance_of(destination) == applied
    assert sum(refused for _, refused, _ in outcomes.values()) >= 2 * ATTEMPTS_PER_WORKER - START_UNITS - sum(
        gave_up for _, _, gave_up in outcomes.values()
    )
    report = audit(reader)
    assert report.clean, report.violations


def open_store_at_once(url: str, barrier, results) -> None:
    barrier.wait()
    try:
        app = open_ledger(url)  # creates the tables if this process is first
        results.put(("opened", app.recorder.max_notification_id() or 0))
        app.close()
    except Exception as error:  # reported to the test, which names it
        results.put(("failed", f"{type(error).__name__}: {error}"))


def test_four_processes_when_opening_a_fresh_store_at_once_then_all_open_it(durable_store_url):
    """API and projection workers start together on an empty database: creating the
    tables, types and functions must not race ("tuple concurrently updated")."""
    context = multiprocessing.get_context("spawn")
    barrier = context.Barrier(4)
    results = context.Queue()
    workers = [context.Process(target=open_store_at_once, args=(durable_store_url, barrier, results)) for _ in range(4)]
    for worker in workers:
        worker.start()
    outcomes = [results.get(timeout=120) for _ in workers]
    for worker in workers:
        worker.join(timeout=60)
    assert outcomes == [("opened", 0)] * 4, outcomes

    ledger = open_ledger(durable_store_url)
    ledger.initialise(decimals=0)
    ledger.open_account("alice")
    assert ledger.balance_of("alice") == 0


def test_postgres_insert_when_another_insert_is_in_flight_then_it_waits_for_its_commit(postgres_server):
    """Inserts take the events table's EXCLUSIVE lock, so log positions commit in the
    order they were handed out and a reader tailing the log never passes one for good."""
    url = fresh_postgres_url(postgres_server)
    ledger = open_ledger(url)
    ledger.initialise(decimals=0)
    ledger.open_account("alice")
    recorder = ledger.recorder
    table = f'"{recorder.datastore.schema}"."{recorder.events_table_name}"'
    done = threading.Event()
    with psycopg.connect(postgres_server) as other:
        # The lock an INSERT holds until its commit: an insert in flight, as far as locks go.
        other.execute(f"LOCK TABLE {table} IN ROW EXCLUSIVE MODE")
        writer = threading.Thread(target=lambda: (ledger.mint("alice", 5), done.set()))
        writer.start()
        assert not done.wait(1.0), "the insert did not wait for the one in flight"
        other.commit()
    writer.join(timeout=30)
    assert done.is_set()
    assert ledger.balance_of("alice") == 5


def test_sqlite_create_table_when_another_process_wins_the_race_then_tries_again(tmp_path, monkeypatch):
    """The race above is rare on a quiet machine: stand in for the losing moment directly."""
    create = SQLiteApplicationRecorder.create_table
    attempts = []

    def lose_twice(recorder):
        attempts.append(1)
        if len(attempts) <= 2:
            raise sqlite3.OperationalError("database is locked")
        return create(recorder)

    monkeypatch.setattr(SQLiteApplicationRecorder, "create_table", lose_twice)
    ledger = open_ledger(f"sqlite:///{tmp_path / 'ledger.db'}")
    assert len(attempts) == 3
    ledger.initialise(decimals=0)
    assert ledger.is_initialised()


def test_cached_account_when_another_process_writes_then_the_next_command_sees_it(durable_store_url):
    """What a command saves stays in its process's aggregate cache; a write by another
    application object must still be read before the next decision."""
    first = open_ledger(durable_store_url)
    first.initialise(decimals=0)
    for name in ("alice", "bob"):
        first.open_account(name)
    first.mint("alice", 10)
    first.transfer("alice", "bob", 4)  # alice (6) is now in first's cache at this version

    second = open_ledger(durable_store_url)
    second.transfer("alice", "bob", 5)  # alice (1), written behind first's back

    assert first.balance_of("alice") == 1
    try:
        first.transfer("alice", "bob", 2)
    except InsufficientFundsError:
        pass
    else:
        raise AssertionError("a stale cached balance let alice overdraw")
    assert audit(first).clean


def test_saved_account_when_read_again_in_this_process_then_no_events_are_read_back(durable_store_url, monkeypatch):
    ledger = open_ledger(durable_store_url)
    ledger.initialise(decimals=0)
    for name in ("alice", "bob"):
        ledger.open_account(name)
    ledger.mint("alice", 1_000)
    for _ in range(20):
        ledger.transfer("alice", "bob", 1)
    read_back = []
    select_events = ledger.recorder.select_events

    def counting(originator_id, **kwargs):
        events = select_events(originator_id, **kwargs)
        read_back.extend(events)
        return events

    monkeypatch.setattr(ledger.recorder, "select_events", counting)
    ledger.transfer("alice", "bob", 1)
    assert read_back == []  # both accounts came from the cache, already current
    assert ledger.balance_of("alice") == 1_000 - 21
