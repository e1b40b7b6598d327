"""How a rebuild leaves the views' tables. On PostgreSQL a rebuild is one transaction whose
tables get their primary keys after the load (or when a page first needs one) and their
secondary indexes last, and whose keyed rows are written once, when final: so its tables
must end with the very keys and indexes a catch-up gives them, and a rebuild that fails
must leave the views as they were, with nothing half-written. On every backend, a failed
or stopped rebuild is finished by the next catch-up, to the same rows."""

from __future__ import annotations

import threading
from typing import Any

import pytest

from stakeledger.domain.service.application import StakeLedger
from stakeledger.domain.service.clock import ManualClock
from stakeledger.projections.replay_check import replay_check
from stakeledger.projections.runner import Runner
from stakeledger.projections.store import COPY_ROWS_MIN, INT, TEXT, Table, ViewStore, open_store
from stakeledger.projections.views import ALL_VIEWS
from stakeledger.projections.views.statements import StatementsView
from tests.projections.scenario import bulk_log, head, run_scenario, view_rows


def _schema(store: ViewStore) -> set[tuple[Any, ...]]:
    """Every view table's primary key, unique constraints and indexes, as the database
    describes them."""
    names = [table.name for view in ALL_VIEWS for table in view.tables]
    marks = ", ".join("?" * len(names))
    if store.dialect == "postgres":
        indexes = store.fetchall(
            f"SELECT tablename, indexname, indexdef FROM pg_indexes "
            f"WHERE schemaname = current_schema() AND tablename IN ({marks})",
            names,
        )
        constraints = store.fetchall(
            f"SELECT conrelid::regclass::text, conname, contype, pg_get_constraintdef(oid) FROM pg_constraint "
            f"WHERE connamespace = current_schema()::regnamespace AND conrelid::regclass::text IN ({marks})",
            names,
        )
        return {("index", *row) for row in indexes} | {("constraint", *row) for row in constraints}
    rows = store.fetchall(f"SELECT type, name, tbl_name, sql FROM sqlite_master WHERE tbl_name IN ({marks})", names)
    return set(rows)


def _primary_keys(store: ViewStore) -> dict[str, str]:
    rows = store.fetchall(
        "SELECT conrelid::regclass::text, pg_get_constraintdef(oid) FROM pg_constraint "
        "WHERE connamespace = current_schema()::regnamespace AND contype = 'p'"
    )
    return dict(rows)


def _fail_statements_handler(monkeypatch: pytest.MonkeyPatch, after: int, on_failure: Any = None) -> list[int]:
    """Make the statements view's transfer handler raise on its ``after``-th call."""
    original = StatementsView.moved
    seen: list[int] = []

    def fails(self: StatementsView, rows: Any, position: int, event: Any) -> None:
        seen.append(position)
        if len(seen) == after:
            if on_failure is not None:
                on_failure()
            raise ValueError("injected: a handler bug mid-rebuild")
        original(self, rows, position, event)

    handlers = {cls: fails if handler is original else handler for cls, handler in StatementsView.handlers.items()}
    monkeypatch.setattr(StatementsView, "handlers", handlers)
    return seen


def _caught_up(ledger: StakeLedger, clock: ManualClock, store: ViewStore) -> dict[str, Any]:
    run_scenario(ledger, clock)
    bulk_log(ledger, clock, 1_200, seed=5)
    Runner(ledger, store, page_size=300).catch_up()
    return view_rows(store)


def test_rebuild_when_done_then_tables_have_the_keys_and_indexes_a_catch_up_gives_them(
    ledger: StakeLedger, clock: ManualClock, store: ViewStore
) -> None:
    followed = _caught_up(ledger, clock, store)
    schema = _schema(store)
    assert schema

    report = Runner(ledger, store, page_size=400).rebuild()

    assert report.head == head(ledger) and report.pages > 2
    assert _schema(store) == schema
    assert view_rows(store) == followed
    if store.dialect == "postgres":
        assert set(_primary_keys(store)) >= {table.name for view in ALL_VIEWS for table in view.tables}


def test_rebuild_when_a_handler_fails_midway_then_the_next_catch_up_gives_the_same_views(
    ledger: StakeLedger, clock: ManualClock, store: ViewStore, monkeypatch: pytest.MonkeyPatch
) -> None:
    before = _caught_up(ledger, clock, store)
    schema = _schema(store)
    seen_by_others: list[dict[str, int]] = []

    def look_from_another_connection() -> None:
        if store.dialect == "postgres":
            other = open_store(ledger)
            try:
                seen_by_others.append(other.positions())
            finally:
                other.close()

    seen = _fail_statements_handler(monkeypatch, after=600, on_failure=look_from_another_connection)
    runner = Runner(ledger, store, page_size=200)
    with pytest.raises(ValueError, match="handler bug"):
        runner.rebuild()
    assert len(seen) == 600

    if store.dialect == "postgres":
        # One transaction: until it commits, others see the views from before it, and
        # after it failed, the views are those, row for row, with their keys and indexes.
        assert seen_by_others == [before["positions"]]
        assert view_rows(store) == before
        assert _schema(store) == schema
    monkeypatch.undo()
    runner.catch_up()  # the runner that failed carries on from what is stored
    assert view_rows(store) == before
    assert _schema(store) == schema
    assert replay_check(ledger, store) == []


def test_rebuild_when_stopped_after_a_page_then_a_catch_up_finishes_it_with_keys_and_indexes(
    ledger: StakeLedger, clock: ManualClock, store: ViewStore
) -> None:
    followed = _caught_up(ledger, clock, store)
    schema = _schema(store)
    stop = threading.Event()

    def stop_after_the_first_page(done: int, total: int) -> None:
        if done:
            stop.set()

    report = Runner(ledger, store, page_size=400).rebuild(progress=stop_after_the_first_page, stop=stop)

    assert report.stopped and 0 < report.pages < 4
    positions = store.positions()
    assert 0 < min(positions.values()) < head(ledger)
    if store.dialect == "postgres":
        # Committed at the end of a page with every primary key, so the next catch-up
        # can update the rows it stored; the secondary indexes come with that catch-up.
        assert set(_primary_keys(store)) >= {table.name for view in ALL_VIEWS for table in view.tables}
    Runner(ledger, store).catch_up()
    assert view_rows(store) == followed
    assert _schema(store) == schema


def test_insert_rows_when_a_text_column_gets_an_int_then_stored_as_its_text(store: ViewStore) -> None:
    """Binary COPY on PostgreSQL cannot carry an int in a text column: that COPY goes again
    as text, which stores the int's digits, as SQLite's text column does."""
    table = Table("scratch_copy", columns=(("id", INT), ("label", TEXT)), key=("id",))
    rows = [(number, number if number % 2 else f"n{number}") for number in range(COPY_ROWS_MIN + 5)]
    with store.transaction():
        store.create_tables([table])
        store.insert_rows(table, rows)
    try:
        stored = store.fetchall("SELECT id, label FROM scratch_copy ORDER BY id")
        assert stored == [(number, str(number) if number % 2 else f"n{number}") for number in range(COPY_ROWS_MIN + 5)]
    finally:
        store.execute("DROP TABLE scratch_copy")
