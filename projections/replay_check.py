"""Does every view equal a fresh replay of the log?

``replay_check`` replays the log into a fresh in-memory SQLite view store, up to the
exact position each live view has applied, and compares every table row by row (as
stored: amounts as decimal strings). Rows are matched by primary key, so the two
databases' sort orders do not matter. ``ViewsCheck`` plugs the same comparison into
``stakeledger audit``.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Any

from eventsourcing.application import Application

from stakeledger.projections.runner import REBUILD_PAGE_SIZE, Runner
from stakeledger.projections.store import TRACKING_TABLE, Table, ViewStore, memory_store, open_store
from stakeledger.projections.views import ALL_VIEWS, View
from stakeledger.projections.violations import Violation, ViolationCode

MAX_DIFFERENCES = 50


@dataclass(frozen=True)
class Difference:
    view: str
    table: str | None
    key: tuple[Any, ...] | None
    live: Any
    replayed: Any
    note: str = ""

    def __str__(self) -> str:
        if self.table is None:
            return f"view {self.view}: {self.note}"
        where = f"{self.view}.{self.table} key {self.key}"
        if self.live is None:
            return f"{where}: missing from the live view (replay has {self.replayed})"
        if self.replayed is None:
            return f"{where}: not produced by a replay (live view has {self.live})"
        return f"{where}: live {self.live} != replay {self.replayed}"


def _snapshot(
    store: ViewStore, views: Sequence[View]
) -> tuple[dict[str, tuple[int, int]], dict[str, list[tuple[Any, ...]]]]:
    """Tracking rows and every table's rows, read in one committed state."""
    with store.read():
        tracking = {
            view: (position, version)
            for view, position, version in store.fetchall(f"SELECT view, position, version FROM {TRACKING_TABLE}")
        }
        rows = {table.name: store.raw_rows(table) for view in views if view.name in tracking for table in view.tables}
    return tracking, rows


def _keyed(table: Table, rows: Iterable[tuple[Any, ...]]) -> dict[tuple[Any, ...], tuple[Any, ...]]:
    positions = [table.column_names.index(column) for column in table.key]
    return {tuple(row[i] for i in positions): row for row in rows}


def view_contents(
    store: ViewStore, views: Sequence[View] = ALL_VIEWS
) -> dict[str, dict[tuple[Any, ...], tuple[Any, ...]]]:
    """Every table of the views, its rows as stored and keyed by primary key: two states of the
    views (before and after a rebuild, or two databases) compare with ``==``."""
    _, rows = _snapshot(store, views)
    tables = {table.name: table for view in views for table in view.tables}
    return {name: _keyed(tables[name], table_rows) for name, table_rows in rows.items()}


def _compare(
    view: View, table: Table, live: list[tuple[Any, ...]], replayed: list[tuple[Any, ...]]
) -> Iterable[Difference]:
    live_rows, replayed_rows = _keyed(table, live), _keyed(table, replayed)
    for key in sorted(live_rows.keys() | replayed_rows.keys(), key=repr):
        a, b = live_rows.get(key), replayed_rows.get(key)
        if a != b:
            yield Difference(view.name, table.name, key, a, b)


def replay_check(
    app: Application,
    store: ViewStore | None = None,
    views: Sequence[View] | None = None,
    *,
    page_size: int = REBUILD_PAGE_SIZE,
    max_differences: int = MAX_DIFFERENCES,
) -> list[Difference]:
    """Differences between each live view and a fresh replay to the same log position;
    empty when they are equal. Views never built in ``store`` are skipped."""
    store = store if store is not None else open_store(app)
    views = tuple(views if views is not None else ALL_VIEWS)
    tracking, live = _snapshot(store, views)
    differences: list[Difference] = []
    built = []
    for view in views:
        if view.name not in tracking:
            continue
        position, version = tracking[view.name]
        if version != view.version:
            differences.append(
                Difference(
                    view.name,
                    None,
                    None,
                    None,
                    None,
                    f"stored at version {version}, the code is at {view.version}: rebuild it",
                )
            )
            continue
        built.append((position, view))
    fresh = memory_store()
    try:
        # One replay per distinct position; usually every view is at the same one.
        for position in sorted({position for position, _ in built}):
            group = [view for at, view in built if at == position]
            Runner(app, fresh, group, page_size=page_size).catch_up(until=position)
            for view in group:
                for table in view.tables:
                    for difference in _compare(view, table, live[table.name], fresh.raw_rows(table)):
                        differences.append(difference)
                        if len(differences) >= max_differences:
                            return differences
    finally:
        fresh.close()
    return differences


class ViewsCheck:
    """An audit check: bring the views up to date, then compare each with a fresh replay.

    Wire into ``projections.audit.audit`` as one of its checks; it needs no events of its
    own, only the store at the end."""

    name = "projections"

    def __init__(self, store: ViewStore | None = None, *, catch_up: bool = True) -> None:
        self.store = store
        self.catch_up = catch_up

    def observe(self, position: int, event: Any) -> Iterable[Any]:
        return ()

    def finish(self, app: Application) -> Iterable[Any]:
        store = self.store if self.store is not None else open_store(app)
        try:
            try:
                if self.catch_up:
                    Runner(app, store).catch_up()
                differences = replay_check(app, store)
            except Exception as error:  # a log the views cannot fold is a finding, not a crash
                yield Violation(
                    self.name,
                    None,
                    f"the views cannot replay this log: {type(error).__name__}: {error}",
                    ViolationCode.VIEWS_CANNOT_REPLAY,
                )
                return
            for difference in differences:
                yield Violation(self.name, None, str(difference), ViolationCode.VIEW_DIFFERS)
        finally:
            if self.store is None:
                store.close()
