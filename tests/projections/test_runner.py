"""The runner's promises: a page's rows and its tracking position commit together; a rebuild
equals the live views; a new view backfills; unknown events are ignored; two runners never
apply a page twice; the worker wakes on new events; a corrupted row is found."""

from __future__ import annotations

import json
import threading
import time
import uuid

import pytest
from eventsourcing.persistence import StoredEvent

from stakeledger.adapters.persistence.store_url import open_ledger
from stakeledger.cli.demo import Demo
from stakeledger.domain.service.application import StakeLedger
from stakeledger.domain.service.clock import ManualClock
from stakeledger.domain.service.ids import SeededIds
from stakeledger.projections import queries
from stakeledger.projections.audit import audit
from stakeledger.projections.replay_check import ViewsCheck, replay_check
from stakeledger.projections.runner import Runner
from stakeledger.projections.store import ViewStore, open_store
from stakeledger.projections.views import ALL_VIEWS
from stakeledger.projections.views.inbox import InboxView
from stakeledger.projections.views.statements import ACCOUNTS, LINES
from tests.projections.scenario import TOKEN, bulk_log, head, run_scenario, view_rows


def test_catch_up_when_failure_mid_page_then_rows_and_position_unchanged(ledger, scenario, store, monkeypatch):
    Runner(ledger, store, page_size=10).catch_up(until=scenario.after_transfer)
    before = view_rows(store)
    assert before["positions"]["statements"] == scenario.after_transfer

    calls = []
    original = ViewStore.set_position

    def fail_after_rows_were_written(self, name, position):
        calls.append(name)
        raise RuntimeError("injected: the disk filled up mid-page")

    monkeypatch.setattr(ViewStore, "set_position", fail_after_rows_were_written)
    with pytest.raises(RuntimeError, match="injected"):
        Runner(ledger, store, page_size=10_000).catch_up()
    assert calls == ["statements"]  # the first view's page wrote its rows, then failed
    assert view_rows(store) == before

    monkeypatch.setattr(ViewStore, "set_position", original)
    report = Runner(ledger, store).catch_up()
    assert set(report.positions.values()) == {head(ledger)}
    assert replay_check(ledger, store) == []


def test_catch_up_when_handler_fails_then_later_pages_are_not_applied(ledger, scenario, store, monkeypatch):
    from stakeledger.projections.views.statements import StatementsView

    original = StatementsView.moved
    seen = []

    def fails_on_the_fortieth(self, rows, position, event):
        seen.append(position)
        if len(seen) == 40:
            raise ValueError("injected: a handler bug")
        original(self, rows, position, event)

    monkeypatch.setattr(StatementsView, "moved", fails_on_the_fortieth)
    monkeypatch.setattr(
        StatementsView,
        "handlers",
        {
            **StatementsView.handlers,
            **{
                cls: fails_on_the_fortieth
                for cls in StatementsView.handlers
                if StatementsView.handlers[cls] is original
            },
        },
    )
    runner = Runner(ledger, store, page_size=25)
    with pytest.raises(ValueError, match="handler bug"):
        runner.catch_up()
    position = store.positions()["statements"]
    assert 0 < position < seen[39]  # the failing page left no trace; earlier pages stayed
    lines = store.select(LINES)
    assert lines and max(line["position"] for line in lines) <= position
    monkeypatch.undo()
    Runner(ledger, store).catch_up()
    assert replay_check(ledger, store) == []


def test_rebuild_when_views_were_built_live_then_rows_are_identical(ledger, clock, store):
    runner = Runner(ledger, store, page_size=4)
    # Live: the views catch up after every few commands, as a worker would.
    ledger.open_account("eve")
    runner.catch_up()
    ledger.mint("eve", 500 * TOKEN)
    runner.catch_up()
    run_scenario(ledger, clock)
    runner.catch_up()
    live = view_rows(store)
    report = Runner(ledger, store, page_size=1_000).rebuild()
    assert report.head == head(ledger) and report.events > 0
    assert view_rows(store) == live


def test_rebuild_when_demo_ran_under_a_live_worker_then_equal_on_each_backend(durable_store_url):
    clock = ManualClock()
    app = open_ledger(durable_store_url, clock=clock, new_id=SeededIds(2026))
    store = open_store(app)
    stop = threading.Event()
    worker = threading.Thread(
        target=Runner(app, open_store(app), page_size=50).run_forever,
        args=(stop,),
        kwargs={"poll_seconds": 0.01, "listen_fallback_seconds": 0.05},
    )
    worker.start()
    try:
        Demo(app, clock).run()
        deadline = time.monotonic() + 20
        while set(store.positions().values()) != {head(app)} and time.monotonic() < deadline:
            time.sleep(0.05)
    finally:
        stop.set()
        worker.join()
    live = view_rows(store)
    assert set(live["positions"].values()) == {head(app)} and len(live["positions"]) == len(ALL_VIEWS)
    assert live["settlements"] and live["reputation_history"] and live["statement_lines"]
    Runner(app, store).rebuild()
    assert view_rows(store) == live
    store.close()
    app.close()


def test_catch_up_when_a_view_is_added_to_an_existing_ledger_then_it_backfills_from_the_start(ledger, scenario, store):
    without_inbox = [view for view in ALL_VIEWS if view.name != "inbox"]
    Runner(ledger, store, without_inbox).catch_up()
    assert "inbox" not in store.positions()
    report = Runner(ledger, store).catch_up()
    assert report.start == 0 and report.positions["inbox"] == head(ledger)
    assert [m["kind"] for m in queries.inbox(store, "bob", decimals=6)][-1] == "partially_settled"
    assert replay_check(ledger, store) == []


def test_catch_up_when_view_version_changes_then_the_view_is_rebuilt(ledger, scenario, store):
    Runner(ledger, store).catch_up()
    store.execute("DELETE FROM inbox_messages WHERE agent = ?", ("ada",))

    class InboxV2(InboxView):
        version = InboxView.version + 1

    views = [InboxV2() if view.name == "inbox" else view for view in ALL_VIEWS]
    report = Runner(ledger, store, views).catch_up()
    assert report.start == 0
    assert store.fetchone("SELECT version FROM projection_tracking WHERE view = ?", ("inbox",)) == (
        InboxView.version + 1,
    )
    assert store.fetchone("SELECT COUNT(*) FROM inbox_messages WHERE agent = ?", ("ada",))[0] == 6
    assert replay_check(ledger, store, views) == []


def test_catch_up_when_log_holds_an_unknown_topic_then_it_is_skipped(ledger, scenario, store):
    state = json.dumps(
        {"timestamp": {"_type_": "datetime_iso", "_data_": "2026-01-01T00:00:00+00:00"}, "x": 1}
    ).encode()
    ledger.recorder.insert_events([StoredEvent(uuid.uuid4(), 1, "stakeledger:RiskLimits.NotYetInvented", state)])
    ledger.mint("ada", 7)
    report = Runner(ledger, store).catch_up()
    assert set(report.positions.values()) == {head(ledger)}
    assert report.events == head(ledger) - 1 - _unhandled(ledger)
    assert balance_in_view(store, "ada") == ledger.balance_of("ada")


def _unhandled(ledger: StakeLedger) -> int:
    """Stored events of known topics that no view handles (settings, command records)."""
    topics = {topic for view in ALL_VIEWS for topic in view.topics()}
    page = ledger.recorder.select_notifications(start=1, limit=100_000)
    return sum(
        1 for n in page if n.topic not in topics and n.topic.startswith("stakeledger:") and "NotYet" not in n.topic
    )


def balance_in_view(store: ViewStore, account: str) -> int:
    return store.select(ACCOUNTS, "account = ?", (account,))[0]["balance_units"]


def test_catch_up_when_two_runners_race_then_no_page_is_applied_twice(durable_store_url):
    clock = ManualClock()
    app = open_ledger(durable_store_url, clock=clock, new_id=SeededIds(3))
    app.initialise(decimals=6)
    bulk_log(app, clock, 4_000)
    stores = [open_store(app), open_store(app)]
    errors: list[BaseException] = []

    def race(store: ViewStore) -> None:
        try:
            Runner(app, store, page_size=97).catch_up()
        except BaseException as error:  # reported below
            errors.append(error)

    threads = [threading.Thread(target=race, args=(store,)) for store in stores]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert errors == []
    assert set(stores[0].positions().values()) == {head(app)}
    assert replay_check(app, stores[0]) == []
    for store in stores:
        store.close()
    app.close()


def test_run_forever_when_events_arrive_then_the_worker_applies_them_promptly(durable_store_url):
    app = open_ledger(durable_store_url)
    app.initialise(decimals=6)
    app.open_account("ada")
    store = open_store(app)
    stop = threading.Event()
    # On PostgreSQL the fallback poll is far longer than the deadline: only NOTIFY can wake it.
    worker = threading.Thread(
        target=Runner(app, open_store(app)).run_forever,
        args=(stop,),
        kwargs={"poll_seconds": 0.05, "listen_fallback_seconds": 30.0},
    )
    worker.start()
    try:
        for amount in (3, 4):
            app.mint("ada", amount * TOKEN)
            deadline = time.monotonic() + 5
            while store.positions().get("statements") != head(app) and time.monotonic() < deadline:
                time.sleep(0.02)
            assert store.positions()["statements"] == head(app)
        assert balance_in_view(store, "ada") == 7 * TOKEN
    finally:
        stop.set()
        worker.join(timeout=10)
    assert not worker.is_alive()
    store.close()
    app.close()


def test_replay_check_when_rows_are_corrupted_then_each_difference_is_named(ledger, scenario, store):
    Runner(ledger, store).catch_up()
    assert replay_check(ledger, store) == []
    store.execute("UPDATE statement_accounts SET balance_units = ? WHERE account = ?", ("1", "ada"))
    store.execute("DELETE FROM settlements WHERE agent = ? AND kind = ?", ("cy", "bounty"))
    store.execute(
        "INSERT INTO reputation_history (position, agent, position_id, artifact_id, transition, correct, "
        "stake_units, before_wad, after_wad, at) VALUES (999999, 'ada', 'X/p1', 'X', 1, 1, '1', '1', '1', 'now')"
    )
    differences = replay_check(ledger, store)
    text = [str(d) for d in differences]
    assert len(differences) == 3, text
    assert any(
        d.table == "statement_accounts" and "'1'" in str(d) and str(ledger.balance_of("ada")) in str(d)
        for d in differences
    )
    assert any(d.table == "settlements" and "missing from the live view" in str(d) for d in differences)
    assert any(
        d.table == "reputation_history" and d.key == (999999,) and "not produced by a replay" in str(d)
        for d in differences
    )


def test_audit_when_a_view_row_is_corrupted_then_the_projections_check_reports_it(ledger, scenario, store):
    assert audit(ledger, views=ViewsCheck(store)).clean
    store.execute("UPDATE market_artifacts SET capital_committed_units = ? WHERE artifact_id = ?", ("5", "MKT"))
    report = audit(ledger, views=ViewsCheck(store))
    assert not report.clean
    assert [v.check for v in report.violations] == ["projections"]
    assert "market_artifacts" in str(report.violations[0])


def test_run_forever_when_postgres_drops_the_view_connection_then_the_worker_reconnects(postgres_server):
    import psycopg

    from tests.conftest import fresh_postgres_url

    app = open_ledger(fresh_postgres_url(postgres_server))
    app.initialise(decimals=6)
    app.open_account("ada")
    worker_store, store = open_store(app), open_store(app)
    errors: list[BaseException] = []
    stop = threading.Event()
    worker = threading.Thread(
        target=Runner(app, worker_store).run_forever,
        args=(stop,),
        kwargs={"poll_seconds": 0.05, "listen_fallback_seconds": 0.2, "on_error": errors.append},
    )
    worker.start()
    try:
        wait_for_views(store, app)
        with psycopg.connect(postgres_server, autocommit=True) as admin:
            admin.execute("SELECT pg_terminate_backend(%s)", (worker_store.connection.info.backend_pid,))
        app.mint("ada", 9 * TOKEN)
        wait_for_views(store, app)
        assert balance_in_view(store, "ada") == 9 * TOKEN
        assert errors, "the lost connection should have been reported"
    finally:
        stop.set()
        worker.join(timeout=10)
    assert not worker.is_alive()
    store.close()
    app.close()


def wait_for_views(store: ViewStore, app: StakeLedger, seconds: float = 10) -> None:
    deadline = time.monotonic() + seconds
    while set(store.positions().values()) != {head(app)} or len(store.positions()) != len(ALL_VIEWS):
        assert time.monotonic() < deadline, f"views stuck at {store.positions()} (head {head(app)})"
        time.sleep(0.02)


def test_catch_up_when_a_lower_position_commits_late_on_postgres_then_it_is_not_skipped(postgres_server):
    from stakeledger.domain.model.reputation import Reputation
    from stakeledger.projections.store import postgres_connection
    from tests.conftest import fresh_postgres_url

    clock = ManualClock()
    app = open_ledger(fresh_postgres_url(postgres_server), clock=clock)
    app.initialise(decimals=6)
    app.open_account("ada")
    store = open_store(app)
    Runner(app, store).catch_up()
    late = Reputation.start("late", clock.now())
    stored = app.mapper.to_stored_event(late.collect_events()[0])
    slow_writer = postgres_connection(app.recorder.datastore, autocommit=False)
    # A slow transaction takes the next position and has not committed yet...
    slow_writer.execute(
        f"INSERT INTO {app.recorder.events_table_name} (originator_id, originator_version, topic, state) "
        "VALUES (%s, %s, %s, %s)",
        (stored.originator_id, stored.originator_version, stored.topic, stored.state),
    )
    # ...while a fast one writes after it (or waits for it, if inserts lock the table).
    fast_writer = threading.Thread(target=app.mint, args=("ada", 5 * TOKEN))
    fast_writer.start()
    time.sleep(0.3)
    reports = []
    runner = threading.Thread(target=lambda: reports.append(Runner(app, store).catch_up()))
    runner.start()
    time.sleep(0.3)
    assert runner.is_alive(), "the catch-up must wait for the insert in flight"
    slow_writer.commit()
    slow_writer.close()
    fast_writer.join(timeout=10)
    runner.join(timeout=10)
    assert reports and reports[0].head >= stored_position(app, stored.originator_id) - 1
    assert replay_check(app, store) == []  # nothing below the views' positions was passed over
    Runner(app, store).catch_up()
    assert [row["agent"] for row in queries.reputation(store)] == ["late"]
    assert replay_check(app, store) == []
    store.close()
    app.close()


def stored_position(app: StakeLedger, originator_id: uuid.UUID) -> int:
    page = app.recorder.select_notifications(start=1, limit=1_000)
    return next(n.id for n in page if n.originator_id == originator_id)
