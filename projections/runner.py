"""Keeping views current: a pull-based runner over the application's notification log.

eventsourcing's ProjectionRunner needs a recorder that can subscribe, which its SQLite
recorder cannot, so this runner pulls: it reads a page of stored notifications after
the lowest position any view has applied (the columns and bounds of the library's
``select_notifications``, as plain tuples: ``_RecordReader``), decodes each event once,
exactly as the application's mapper would (``_EventDecoder``), and hands the page to
every view that is behind. Those views apply the page, write their rows and move their tracking
positions in one transaction of the views' database, holding the tracking rows' locks
(SQLite's write lock, PostgreSQL's ``FOR UPDATE``) for the whole transaction. So:

- a crash at any moment (even SIGKILL) leaves each view at the end of some page, with
  exactly that page's rows: a restart applies nothing twice and loses nothing;
- two runners (a worker and a CLI command) never apply the same page twice: the second
  finds the position moved and skips what is already applied;
- only topics some view handles are read and decoded, so unknown events are ignored.

``Runner.run_forever`` is the worker: on PostgreSQL it sleeps on LISTEN for the channel
the eventsourcing recorder NOTIFYs on every insert (with a timeout fallback poll), on
SQLite and in memory it polls.

    python -m projections.runner --db URL [--page-size N] [--once]
"""

from __future__ import annotations

import argparse
import gc
import json
import queue
import signal
import sys
import threading
import time
from collections.abc import Callable, Iterable, Sequence
from contextlib import nullcontext
from dataclasses import dataclass, field
from typing import Any
from uuid import UUID

from eventsourcing.application import Application

from stakeledger.adapters.persistence.store_url import open_ledger
from stakeledger.projections.store import (
    CACHE_ROWS_MAX,
    TRACKING_TABLE,
    Rows,
    Table,
    ViewStore,
    is_postgres,
    is_sqlite,
    open_store,
    postgres_connection,
)
from stakeledger.projections.views import ALL_VIEWS, View

PAGE_SIZE = 20_000
# A rebuild is a bulk job: larger pages mean fewer, larger transactions, in which SQLite
# writes each B-tree page once (about 100 MB more memory than PAGE_SIZE at this size).
REBUILD_PAGE_SIZE = 50_000
MAX_PAGE_SIZE = 100_000
READ_AHEAD_PAGES = 2
POLL_SECONDS = 0.2
LISTEN_FALLBACK_SECONDS = 5.0
MAX_BACKOFF_SECONDS = 30.0
# The longest a catch-up waits for inserts in flight on PostgreSQL (see Runner.head).
WRITERS_WAIT_SECONDS = 60.0

Progress = Callable[[int, int], None]


@dataclass
class CatchUpReport:
    """What one catch-up did: log positions ``start``..``head``, events read, seconds."""

    views: tuple[str, ...]
    start: int
    head: int
    events: int = 0
    pages: int = 0
    rows_written: int = 0
    seconds: float = 0.0
    positions: dict[str, int] = field(default_factory=dict)
    stopped: bool = False

    @property
    def events_per_second(self) -> float:
        return self.events / self.seconds if self.seconds > 0 else 0.0


@dataclass(frozen=True)
class ViewStatus:
    view: str
    position: int | None
    head: int
    rows: int
    version: int
    stored_version: int | None

    @property
    def lag(self) -> int:
        return self.head - (self.position or 0)

    @property
    def needs_rebuild(self) -> bool:
        return self.stored_version is not None and self.stored_version != self.version


class _ViewState:
    """A view as one runner sees it: its last known position and its cached rows,
    which are valid only while the stored position is the one this runner last saw."""

    def __init__(self, view: View) -> None:
        self.view = view
        self.tables: dict[str, Table] = view.tables_by_name()
        self.dispatch = view.dispatch()
        self.position = -1
        self.committed: dict[str, dict[Any, Any]] = {}
        # Tables whose every stored row is in ``committed`` (see ``Rows``).
        self.complete: set[str] = set()
        # In a rebuild's one transaction: complete tables none of whose rows is stored
        # yet, since they are written once, at the end (``Runner._release``).
        self.held: set[str] = set()

    def forget(self) -> None:
        self.committed = {}
        self.complete = set()
        self.held = set()

    def start_empty(self) -> None:
        """The view's tables were just created empty at position 0: every row it will
        have is one this runner writes and caches, so a row not cached does not exist."""
        self.committed = {}
        self.complete = set(self.tables)
        self.position = 0

    def over_limit(self) -> bool:
        return sum(len(rows) for rows in self.committed.values()) > CACHE_ROWS_MAX

    def trim(self) -> None:
        if self.over_limit():
            self.forget()


@dataclass
class _Records:
    start: int
    end: int
    records: list[Any]


@dataclass
class _Page:
    start: int
    end: int
    count: int
    work: list[list[tuple[int, Any, Any]]]


class _PageReader:
    """Pages in order from ``start``. With ``ahead``, a thread reads the next pages' records
    while the views apply this one, so waiting on the database server for reads and for
    writes overlap. The thread only selects: decoding and sorting a page is Python work
    that the applying thread does, since two threads computing at once contend for the
    GIL (measured: a second of CPU more per 200,000 events when the thread decoded too).
    At most ``READ_AHEAD_PAGES`` pages of records wait in memory."""

    def __init__(self, runner: Runner, start: int, head: int, *, ahead: bool) -> None:
        self.runner = runner
        self.head = head
        self.next_start = start
        self._queue: queue.Queue[_Records | BaseException] | None = None
        self._closing = threading.Event()
        self._thread: threading.Thread | None = None
        if ahead:
            self._queue = queue.Queue(maxsize=READ_AHEAD_PAGES)
            self._thread = threading.Thread(
                target=self._read_ahead, args=(start,), name="projections-reader", daemon=True
            )
            self._thread.start()

    def _read_ahead(self, cursor: int) -> None:
        assert self._queue is not None
        try:
            while cursor < self.head and not self._closing.is_set():
                records = self.runner.read_records(cursor, self.head)
                if not self._offer(records):
                    return
                cursor = records.end
        except BaseException as error:  # handed to the applying thread, which raises it
            self._offer(error)

    def _offer(self, item: _Records | BaseException) -> bool:
        assert self._queue is not None
        while not self._closing.is_set():
            try:
                self._queue.put(item, timeout=0.1)
                return True
            except queue.Full:
                continue
        return False

    def next(self) -> _Page:
        if self._queue is None:
            page = self.runner.read_page(self.next_start, self.head)
        else:
            item = self._queue.get()
            if isinstance(item, BaseException):
                raise item
            page = self.runner.sort_page(item)
        assert page.start == self.next_start
        self.next_start = page.end
        return page

    def close(self) -> None:
        self._closing.set()
        if self._thread is not None:
            self._thread.join()


class Runner:
    """Keeps ``views`` (default: every view) in ``store`` current with ``app``'s log."""

    def __init__(
        self, app: Application, store: ViewStore, views: Sequence[View] | None = None, *, page_size: int | None = None
    ) -> None:
        if page_size is not None and not 0 < page_size <= MAX_PAGE_SIZE:
            raise ValueError(f"page size must be 1..{MAX_PAGE_SIZE}, got {page_size}")
        self.app = app
        self.store = store
        self.views = tuple(views if views is not None else ALL_VIEWS)
        _check_unique_tables(self.views)
        # Events per page: PAGE_SIZE for catching up, REBUILD_PAGE_SIZE for a rebuild
        # (unless one size is given for both).
        self.page_size = page_size or PAGE_SIZE
        self.rebuild_page_size = page_size or REBUILD_PAGE_SIZE
        self.states = [_ViewState(view) for view in self.views]
        self.topics = tuple(sorted({topic for view in self.views for topic in view.topics()}))
        self.topic_set = frozenset(self.topics)
        # Event class -> (view index, bound handler) for every view that handles it, so a
        # page is sorted into per-view work in one pass.
        routes: dict[type, list[tuple[int, Any, Any]]] = {}
        for index, state in enumerate(self.states):
            for event_class, handler in state.dispatch.items():
                routes.setdefault(event_class, []).append((index, handler, state.view.accepts(event_class)))
        self.routes = {event_class: tuple(targets) for event_class, targets in routes.items()}
        self._prepared = False
        self._unindexed: set[str] = set()
        # True while a PostgreSQL rebuild runs: every page goes into its one transaction.
        self._one_transaction = False
        # Reading ahead on a thread pays where reading waits on a server (PostgreSQL);
        # reading SQLite is CPU work in this process, and two threads contending for the
        # GIL measured no faster than one.
        self._read_ahead = READ_AHEAD_PAGES > 0 and is_postgres(app.recorder)
        self._reader = _RecordReader(app.recorder)
        self._decoder = _EventDecoder(app.mapper, app.recorder)

    # Catching up ----------------------------------------------------------------------

    def prepare(self) -> None:
        """Create missing view tables: a new view backfills from position 0, and gets its
        secondary indexes when the backfill is done. A view whose indexes are missing
        (a backfill that was interrupted) gets them now."""
        stored = dict(self.store.fetchall(f"SELECT view, version FROM {TRACKING_TABLE}"))
        for state in self.states:
            view = state.view
            if stored.get(view.name) != view.version:
                if self.store.prepare(view.name, view.version, view.tables, indexes=False):
                    state.start_empty()
                else:
                    state.forget()
                self._unindexed.add(view.name)
        self.store.create_missing_indexes(
            [table for view in self.views if view.name not in self._unindexed for table in view.tables]
        )
        self._prepared = True

    def _index_backfilled_views(self) -> None:
        if self._unindexed:
            self.store.create_missing_indexes(
                [table for view in self.views if view.name in self._unindexed for table in view.tables]
            )
            self._unindexed.clear()

    def head(self) -> int:
        """The log position the views may safely catch up to now.

        On PostgreSQL a position is safe once no transaction that could still commit a
        lower one is in flight. The ledger's recorder serialises inserts with a table
        lock, but a writer that inserts through eventsourcing's stored function alone
        takes none: ids are handed out at insert and become visible at commit, so a
        tailing reader could pass an id that a slower transaction commits later, and never
        see it. So: read the highest visible id, then wait for every transaction that was
        writing to the events table at that moment to finish."""
        head = self.app.recorder.max_notification_id() or 0
        if is_postgres(self.app.recorder):
            self._wait_for_writers_in_flight()
        return head

    def _wait_for_writers_in_flight(self) -> None:
        recorder = self.app.recorder
        table = f'"{recorder.datastore.schema}"."{recorder.events_table_name}"'
        statement = (
            "SELECT DISTINCT virtualtransaction AS writer FROM pg_locks WHERE relation = %s::regclass "
            "AND mode = 'RowExclusiveLock' AND granted AND pid <> pg_backend_pid()"
        )

        def writers() -> set[str]:
            # Asked of the events' database itself: the views may live elsewhere (a replay).
            with recorder.datastore.get_connection() as connection:
                return {row["writer"] for row in connection.execute(statement, (table,)).fetchall()}

        writing = writers()
        deadline = time.monotonic() + WRITERS_WAIT_SECONDS
        while writing:
            if time.monotonic() > deadline:
                raise TimeoutError(
                    f"writers to the event log still in flight after {WRITERS_WAIT_SECONDS} s; try again"
                )
            time.sleep(0.002)
            writing &= writers()

    def catch_up(
        self, *, until: int | None = None, progress: Progress | None = None, stop: threading.Event | None = None
    ) -> CatchUpReport:
        """Apply every event up to ``until`` (default: the log's head now) to every view.

        The cyclic garbage collector is paused meanwhile: a page creates hundreds of
        thousands of small acyclic objects, and the view caches keep many alive, so
        collections would rescan them again and again (it doubled a rebuild's time)."""
        collecting = gc.isenabled()
        gc.disable()
        try:
            report = self._catch_up(until, progress, stop)
            if not report.stopped and not self._one_transaction:
                self._index_backfilled_views()
        finally:
            if collecting:
                gc.enable()
        if report.rows_written:
            self.store.checkpoint()
        return report

    def _catch_up(self, until: int | None, progress: Progress | None, stop: threading.Event | None) -> CatchUpReport:
        started = time.perf_counter()
        if not self._prepared:
            self.prepare()
        head = self.head() if until is None else until
        stored = self.store.positions()
        for state in self.states:
            if stored.get(state.view.name, 0) != state.position:
                state.forget()
                state.position = stored.get(state.view.name, 0)
        behind = [state for state in self.states if state.position < head]
        start = min((state.position for state in behind), default=head)
        report = CatchUpReport(tuple(view.name for view in self.views), start, head)
        if progress is not None:
            progress(0, head - start)
        reader: _PageReader | None = None
        try:
            while behind:
                if stop is not None and stop.is_set():
                    report.stopped = True
                    break
                cursor = min(state.position for state in behind)
                if reader is None or reader.next_start != cursor:
                    # First page, or a view moved behind the pages read ahead (another
                    # runner rebuilt it): read from here.
                    if reader is not None:
                        reader.close()
                    reader = _PageReader(self, cursor, head, ahead=self._read_ahead and head - cursor > self.page_size)
                page = reader.next()
                report.events += page.count
                report.pages += 1
                report.rows_written += self._apply(page)
                behind = [state for state in behind if state.position < head]
                if progress is not None:
                    done = min((state.position for state in behind), default=head)
                    progress(max(done - start, 0), head - start)
        finally:
            if reader is not None:
                reader.close()
        report.positions = {state.view.name: state.position for state in self.states}
        report.seconds = time.perf_counter() - started
        return report

    def read_page(self, cursor: int, head: int) -> _Page:
        """The events after ``cursor`` up to ``head``, decoded once and sorted into each
        view's work (``read_records``, then ``sort_page``)."""
        return self.sort_page(self.read_records(cursor, head))

    def read_records(self, cursor: int, head: int) -> _Records:
        """The stored records after ``cursor`` up to ``head``, undecoded. A page shorter
        than asked for ends at ``head``."""
        records = self._reader.select(cursor, head, self.page_size)
        end = records[-1][0] if len(records) == self.page_size else head
        return _Records(cursor, end, records)

    def sort_page(self, page: _Records) -> _Page:
        """A page's records decoded once and sorted into each view's work as (position,
        handler, event). Only topics some view handles are decoded: the rest (and topics
        this code does not know) are skipped unread."""
        work: list[list[tuple[int, Any, Any]]] = [[] for _ in self.states]
        decode = self._decoder.decode
        routes, topics = self.routes, self.topic_set
        count = 0
        for position, originator_id, originator_version, topic, state in page.records:
            if topic not in topics:
                continue
            count += 1
            event = decode(position, originator_id, originator_version, topic, state)
            for index, handler, where in routes.get(type(event), ()):
                if where is None or where(event):
                    work[index].append((position, handler, event))
        return _Page(page.start, page.end, count, work)

    def _apply(self, page: _Page) -> int:
        """Apply one page to every view that has not seen it, and move each such view's
        position to the page's end: rows and positions in one transaction. The tracking
        rows are locked first, so a second runner waits and then skips what is done."""
        due = [(index, state) for index, state in enumerate(self.states) if page.start <= state.position < page.end]
        if not due:
            return 0
        store = self.store
        applied: list[tuple[_ViewState, Rows]] = []
        written = 0
        try:
            # In a rebuild's one transaction the tracking rows are locked from its start.
            with nullcontext() if self._one_transaction else store.transaction():
                if self._one_transaction:
                    stored = {state.view.name: state.position for _, state in due}
                else:
                    stored = store.lock_positions([state.view.name for _, state in due])
                for index, state in due:
                    position = stored[state.view.name]
                    if position != state.position:
                        state.forget()  # another runner moved it: our cached rows may be stale
                        state.position = position
                    if position >= page.end or position < page.start:
                        # Already applied, or rebuilt behind this page: the loop goes back for it.
                        continue
                    rows = Rows(store, state.tables, state.committed, state.complete)
                    for event_position, handler, event in page.work[index]:
                        if event_position > position:
                            handler(rows, event_position, event)
                    writes, count = rows.writes(hold=state.held if self._one_transaction else None)
                    store.write(writes)
                    written += count
                    store.set_position(state.view.name, page.end)
                    applied.append((state, rows))
        except BaseException:
            for _, state in due:
                state.forget()
            raise
        for state, rows in applied:
            rows.committed_changes()
            state.position = page.end
            if state.held and state.over_limit():
                written += self._release(state)  # before the cache that holds them goes
            state.trim()
        return written

    def _release(self, state: _ViewState) -> int:
        """Write the rows of a view's held tables (its cache holds their every row, and
        none is stored yet) with one COPY each: the rebuild's only write of a row that
        its pages created and changed again and again. Returns the rows written."""
        written = 0
        for name in sorted(state.held):
            table = state.tables[name]
            encode = table.encode
            rows = [encode(row) for row in state.committed.get(name, {}).values() if row is not None]
            self.store.insert_rows(table, rows)
            written += len(rows)
        state.held = set()
        return written

    # Rebuilding -----------------------------------------------------------------------

    def rebuild(self, *, progress: Progress | None = None, stop: threading.Event | None = None) -> CatchUpReport:
        """Drop every view's rows, set its position to 0, and catch up from the start of
        the log. On SQLite and in memory: a transaction for each view's restart and then
        for each page, as a catch-up (a transaction held for the whole rebuild would hold
        SQLite's one write lock, and keep the application's own writers out).

        On PostgreSQL the whole rebuild is one transaction (``_rebuild_in_one_transaction``)."""
        if self.store.dialect == "postgres":
            return self._rebuild_in_one_transaction(progress, stop)
        for state in self.states:
            view = state.view
            self.store.restart(view.name, view.version, view.tables)
            self._unindexed.add(view.name)
            state.start_empty()
        self._prepared = True
        page_size, self.page_size = self.page_size, self.rebuild_page_size
        try:
            return self.catch_up(progress=progress, stop=stop)
        finally:
            self.page_size = page_size

    def _rebuild_in_one_transaction(self, progress: Progress | None, stop: threading.Event | None) -> CatchUpReport:
        """A PostgreSQL rebuild: the tables dropped and created again, every page's rows
        and positions, the primary keys and the secondary indexes, in one transaction.

        - A rebuild that fails at any point (an error, a lost connection, a crash of
          either process) leaves the views as they were before it, rows, positions and
          versions: nothing half-written. A stopped one commits what it applied, at the
          end of a page, with its primary keys; its secondary indexes come with the next
          catch-up.
        - A keyed row is written once, when final: the view's cache holds every row of
          its tables (``_ViewState.held``), so the pages only append, and the held rows
          go with one COPY per table at the end, or sooner when the cache is trimmed or
          the table gets appended rows (``Rows.writes``): no upserts through staging
          tables for rows that pages create and then change.
        - The tables are created without their primary keys, which are added once the
          rows are in (one sort per table instead of a B-tree insert per row; with the
          held rows, a fifth less server CPU on the bench's 200,000 events), or as soon
          as a page needs one, to update, delete or look up a stored row
          (``ViewStore.add_key``); a row created twice then fails the rebuild where the
          key is added, never silently. The secondary indexes are built last.
        - The tracking rows are locked first, in name order, as a page's are: a worker
          applying a page meanwhile is waited for, and one that comes later waits, then
          finds the views at the head. Readers of a view's tables wait for the commit
          too (the tables are dropped inside the transaction), then read the new rows.
        - The commit is durable as any other (synchronous_commit is left as configured):
          it is the only one, so it costs one WAL flush, and a rebuild lost with the
          server would simply leave the previous views to catch up or rebuild again."""
        store = self.store
        page_size, self.page_size = self.page_size, self.rebuild_page_size
        self._one_transaction = True
        try:
            with store.transaction():
                store.lock_tracking(sorted(state.view.name for state in self.states))
                for state in self.states:
                    store.reset_view(state.view.name, state.view.version, state.view.tables, keys=False)
                    self._unindexed.add(state.view.name)
                    state.start_empty()
                    state.held = set(state.tables)
                self._prepared = True
                report = self.catch_up(progress=progress, stop=stop)
                for state in self.states:
                    report.rows_written += self._release(state)
                tables = [table for view in self.views for table in view.tables]
                store.add_missing_keys(tables)
                if not report.stopped:
                    store.create_indexes(tables)
                    self._unindexed.clear()
        except BaseException:
            # The stored views are the ones from before: nothing cached here holds.
            for state in self.states:
                state.forget()
                state.position = -1
            self._prepared = False
            self._unindexed.clear()
            raise
        finally:
            self._one_transaction = False
            self.page_size = page_size
        return report

    # The worker -----------------------------------------------------------------------

    def run_forever(
        self,
        stop: threading.Event,
        *,
        poll_seconds: float = POLL_SECONDS,
        listen_fallback_seconds: float = LISTEN_FALLBACK_SECONDS,
        on_catch_up: Callable[[CatchUpReport], None] | None = None,
        on_error: Callable[[BaseException], None] | None = None,
    ) -> None:
        """Keep every view current until ``stop`` is set. A failure (a page that cannot
        be applied, a lost database connection) goes to ``on_error`` and is retried after
        a pause that doubles each time, up to 30 s."""
        waiter: _Poller | _Listener | None = None
        failures = 0
        try:
            while not stop.is_set():
                try:
                    if waiter is None:
                        waiter = _waiter_for(self.app, poll_seconds, listen_fallback_seconds)
                    report = self.catch_up(stop=stop)
                    failures = 0
                    if on_catch_up is not None and report.events:
                        on_catch_up(report)
                    if not report.stopped:
                        waiter.wait(stop)
                except Exception as error:  # a worker reports and retries; it must not die
                    failures += 1
                    if on_error is not None:
                        on_error(error)
                    if waiter is not None:
                        _close_quietly(waiter)
                        waiter = None
                    try:
                        self.store.reconnect_if_broken()
                    except Exception:  # noqa: BLE001 - the server is still away: try again later
                        pass
                    stop.wait(min(MAX_BACKOFF_SECONDS, poll_seconds * 2 ** min(failures, 16)))
        finally:
            if waiter is not None:
                _close_quietly(waiter)

    def status(self) -> list[ViewStatus]:
        head = self.head()
        stored = {
            view: (position, version)
            for view, position, version in self.store.fetchall(f"SELECT view, position, version FROM {TRACKING_TABLE}")
        }
        result = []
        for view in self.views:
            position, version = stored.get(view.name, (None, None))
            rows = sum(self.store.count(table) for table in view.tables) if position is not None else 0
            result.append(ViewStatus(view.name, position, head, rows, view.version, version))
        return result


def _check_unique_tables(views: Iterable[View]) -> None:
    seen: dict[str, str] = {}
    for view in views:
        for table in view.tables:
            if table.name in seen:
                raise ValueError(f"table {table.name!r} belongs to both {seen[table.name]!r} and {view.name!r}")
            seen[table.name] = view.name
    names = [view.name for view in views]
    if len(set(names)) != len(names):
        raise ValueError("two views share a name")


# Reading and decoding a page --------------------------------------------------------------

# (notification id, originator id as the recorder stores it, version, topic, state bytes)
_Record = tuple[int, Any, int, str, bytes]
# Originator ids and values decoded from the log, kept for reuse; past this many, afresh.
_DECODED_CACHE_MAX = 200_000


class _RecordReader:
    """A page of stored events as plain tuples.

    The page is one SELECT of the columns the library's ``select_notifications`` reads,
    in the same order and bounds, whose rows come back as tuples; a recorder that is
    neither the library's SQLite nor its PostgreSQL one (or a subclass that selects
    otherwise) is read with ``select_notifications`` itself. What the library adds is
    the part of its read that the views never need: a Row or dict and a Notification
    object per record and a UUID parsed for each (from text on SQLite; on PostgreSQL
    psycopg builds one in Python per row, and unescapes the state from hex text). So
    PostgreSQL's rows come in binary, with the id as text: the decoder below parses each
    distinct id once, as it does on SQLite."""

    def __init__(self, recorder: Any) -> None:
        self.recorder = recorder
        self.mode = _read_mode(recorder)
        if self.mode == "sqlite":
            self.statement = (
                "SELECT rowid, originator_id, originator_version, topic, state "
                f"FROM {recorder.events_table_name} WHERE rowid>? AND rowid<=? ORDER BY rowid LIMIT ?"
            )
        elif self.mode == "postgres":
            from psycopg.sql import SQL, Identifier

            self.statement = SQL(
                "SELECT notification_id, originator_id::text, originator_version, topic, state "
                "FROM {}.{} WHERE notification_id>%s AND notification_id<=%s ORDER BY notification_id LIMIT %s"
            ).format(Identifier(recorder.datastore.schema), Identifier(recorder.events_table_name))

    def select(self, cursor: int, head: int, limit: int) -> list[_Record]:
        if self.mode == "sqlite":
            with self.recorder.datastore.transaction(commit=False) as wrapper:
                raw = wrapper.sqlite_cursor
                raw.row_factory = None
                raw.execute(self.statement, (cursor, head, limit))
                return raw.fetchall()
        if self.mode == "postgres":
            from psycopg.rows import tuple_row

            with self.recorder.datastore.get_connection() as connection:
                with connection.cursor(binary=True, row_factory=tuple_row) as rows:
                    rows.execute(self.statement, (cursor, head, limit), prepare=True)
                    return rows.fetchall()
        return [
            (n.id, n.originator_id, n.originator_version, n.topic, n.state)
            for n in self.recorder.select_notifications(start=cursor, limit=limit, stop=head, inclusive_of_start=False)
        ]


def _read_mode(recorder: Any) -> str:
    """ "sqlite" or "postgres" for a recorder that reads as the library's does, else "library"."""
    from eventsourcing.sqlite import SQLiteApplicationRecorder

    if is_sqlite(recorder) and type(recorder).select_notifications is SQLiteApplicationRecorder.select_notifications:
        return "sqlite"
    if is_postgres(recorder):
        from eventsourcing.postgres import PostgresApplicationRecorder

        if type(recorder).select_notifications is PostgresApplicationRecorder.select_notifications:
            return "postgres"
    return "library"


class _EventDecoder:
    """Stored record -> domain event, giving exactly what ``mapper.to_domain_event``
    gives, faster: the class, its id convertor and its upcasters are looked up once per
    topic, each distinct originator id is parsed once (a page of transfers touches the
    same accounts again and again), and the JSON object hook decodes the library's value
    types with the last value of each remembered (the events of one save share a
    timestamp). Decoded values shared between events are immutable (UUID, datetime,
    Decimal). A mapper that encrypts, compresses or decodes its own way is used as it
    is, and so is the library for any record the fast path cannot decode, so its errors
    are the library's."""

    _IMMUTABLE = frozenset({"uuid_hex", "decimal_str", "datetime_iso"})

    def __init__(self, mapper: Any, recorder: Any) -> None:
        from eventsourcing.persistence import JSONTranscoder, Mapper

        self.mapper = mapper
        self.fast = (
            type(mapper).to_domain_event is Mapper.to_domain_event
            and not getattr(mapper, "cipher", None)
            and not getattr(mapper, "compressor", None)
            and type(mapper.transcoder) is JSONTranscoder
        )
        self.convert_stored_id = _stored_id_convertor(recorder)
        # topic -> (class, id convertor or None to pass it through, class version,
        # upcasters, [its typed keys])
        self.classes: dict[str, tuple[type, Callable[[Any], Any] | None, int, tuple, list[Any]]] = {}
        self.ids: dict[Any, Any] = {}
        if self.fast:
            self.hook = self._hook(mapper.transcoder.names)
            self.json_decode = json.JSONDecoder(object_hook=self.hook).decode
            plain = json.JSONDecoder()
            self.plain_decode, self.plain_scan = plain.decode, plain.scan_once

    def decode_state(self, text: str, data: bytes, known: list[Any] | None = None) -> dict[str, Any]:
        """``transcoder.decode`` of a stored state, the same values, cheaper where it can be.

        The object hook is a Python call for every JSON object, the state itself included.
        Most states hold their typed values (the timestamp, ids) only at the top level, so
        the state is parsed without the hook and those values are decoded here, with the
        hook itself and in the order the hook would meet them; that is the whole answer only
        when every ``"_type_"`` key in the text was one of them (a nested or odd one, or
        the text "_type_" as a string, shows as a count that does not match), else the
        state is parsed again with the hook.

        ``known`` (one per topic) holds the keys whose values were typed in the last state
        of that topic: the events of one class have the same typed fields, so those keys
        are tried first instead of testing every value. When they account for the count,
        no other value can be typed; when they do not, the state is parsed and scanned
        afresh."""
        typed = data.count(b'"_type_"')
        state = self._parse_plain(text)
        if type(state) is not dict:
            return self.json_decode(text)
        if typed:
            keys = known[0] if known is not None else None
            if keys is None or self._decode_typed(state, keys) != typed:
                if keys:
                    state = self._parse_plain(text)  # the tried keys may have changed it
                keys = self._typed_keys(state)
                if keys is None or len(keys) != typed:
                    return self.json_decode(text)
                self._decode_typed(state, keys)
                if known is not None:
                    known[0] = keys
        if len(state) == 2 and "_type_" in state and "_data_" in state:
            return self.json_decode(text)
        return state

    def _parse_plain(self, text: str) -> Any:
        """``json.loads`` without its Python wrapper: the scanner itself, from the first
        character; a text with whitespace around the value, or not JSON, goes the long way
        (which then answers or raises as ``json.loads`` does)."""
        try:
            value, end = self.plain_scan(text, 0)
        except StopIteration:
            return self.plain_decode(text)
        return value if end == len(text) else self.plain_decode(text)

    @staticmethod
    def _typed_keys(state: dict[str, Any]) -> list[str] | None:
        """The keys whose values are typed values of a scalar; None if one holds an object
        or a list (the hook would meet what is inside first)."""
        keys = []
        for key, value in state.items():
            if type(value) is dict and len(value) == 2 and "_type_" in value and "_data_" in value:
                data_value = value["_data_"]
                if type(data_value) is dict or type(data_value) is list:
                    return None
                keys.append(key)
        return keys

    def _decode_typed(self, state: dict[str, Any], keys: list[str]) -> int:
        """Decode the typed values at ``keys`` in place, in that order; how many there
        were, or -1 at the first key whose value is not a typed value of a scalar."""
        hook = self.hook
        for key in keys:
            value = state.get(key)
            if type(value) is not dict or len(value) != 2 or "_type_" not in value or "_data_" not in value:
                return -1
            data_value = value["_data_"]
            if type(data_value) is dict or type(data_value) is list:
                return -1
            state[key] = hook(value)
        return len(keys)

    def _hook(self, names: dict[str, Any]) -> Callable[[dict[str, Any]], Any]:
        immutable = self._IMMUTABLE
        last: dict[str, tuple[Any, Any]] = {}

        def hook(d: dict[str, Any]) -> Any:
            if len(d) != 2 or "_type_" not in d or "_data_" not in d:
                return d
            name, data = d["_type_"], d["_data_"]
            transcoding = names[name]  # KeyError: the library raises its own error below
            if name not in immutable:
                return transcoding.decode(data)
            remembered = last.get(name)
            if remembered is not None and remembered[0] == data and type(remembered[0]) is type(data):
                return remembered[1]
            value = transcoding.decode(data)
            last[name] = (data, value)
            return value

        return hook

    def _learn(self, topic: str, stored_id: Any) -> tuple[type, Callable[[Any], Any] | None, int, tuple, list[Any]]:
        from eventsourcing.persistence import find_id_convertor, pass_through_convertor
        from eventsourcing.utils import resolve_topic

        cls = resolve_topic(topic)
        class_version = getattr(cls, "class_version", 1)
        # A missing upcaster fails when a record needs it, as the library's does.
        upcasters = tuple(getattr(cls, f"upcast_v{v}_v{v + 1}", None) for v in range(1, class_version))
        id_convertor: Callable[[Any], Any] | None = find_id_convertor(cls, type(self._stored_id(stored_id)))
        if id_convertor is pass_through_convertor:
            id_convertor = None  # the id as it is: not a call per event
        entry = (cls, id_convertor, class_version, upcasters, [None])
        self.classes[topic] = entry
        return entry

    def _stored_id(self, stored_id: Any) -> Any:
        """The originator id as the library's recorder hands it over, from the id as
        ``_RecordReader`` read it (text on SQLite and PostgreSQL)."""
        value = self.ids.get(stored_id)
        if value is None:
            if len(self.ids) >= _DECODED_CACHE_MAX:
                self.ids.clear()
            value = self.convert_stored_id(stored_id) if self.convert_stored_id is not None else stored_id
            self.ids[stored_id] = value
        return value

    def decode(self, position: int, originator_id: Any, originator_version: int, topic: str, state: bytes) -> Any:
        if self.fast:
            try:
                entry = self.classes.get(topic) or self._learn(topic, originator_id)
                cls, id_convertor, class_version, upcasters, known = entry
                event_state = self.decode_state(state.decode("utf8"), state, known)
                stored_id = self.ids.get(originator_id) or self._stored_id(originator_id)
                event_state["originator_id"] = stored_id if id_convertor is None else id_convertor(stored_id)
                event_state["originator_version"] = originator_version
                from_version = event_state.pop("class_version", 1)
                if upcasters:
                    for upcast in upcasters[from_version - 1 :]:
                        upcast(event_state)  # type: ignore[misc]  # None: TypeError, the library then decodes
                event = object.__new__(cls)
                object.__setattr__(event, "__dict__", event_state)
                return event
            except Exception:  # noqa: BLE001 - the library decodes it again and reports it its way
                pass
        return self.mapper.to_domain_event(
            self._notification(position, originator_id, originator_version, topic, state)
        )

    def _notification(self, position: int, originator_id: Any, version: int, topic: str, state: bytes) -> Any:
        from eventsourcing.persistence import Notification

        return Notification(
            id=position,
            originator_id=self._stored_id(originator_id),
            originator_version=version,
            topic=topic,
            state=state,
        )


def _stored_id_convertor(recorder: Any) -> Callable[[Any], Any] | None:
    """What turns an originator id as ``_RecordReader`` reads it into the one the
    library's ``select_notifications`` gives: SQLite's own convertor of its text; on
    PostgreSQL, for a uuid column, UUID of the text (psycopg would give a UUID); None
    where the reader gives the library's ids already."""
    mode = _read_mode(recorder)
    if mode == "sqlite":
        return getattr(recorder, "convert_originator_id", None)
    if mode == "postgres" and recorder.datastore.originator_id_type == "uuid":
        return UUID
    return None


# Waiting for new events ------------------------------------------------------------------


class _Poller:
    def __init__(self, seconds: float) -> None:
        self.seconds = seconds

    def wait(self, stop: threading.Event) -> None:
        stop.wait(self.seconds)

    def close(self) -> None:
        pass


class _Listener:
    """PostgreSQL: sleep until the events table's channel is notified, or the fallback
    poll interval passes (a notification can be lost when a connection drops)."""

    def __init__(self, app: Application, fallback_seconds: float) -> None:
        from psycopg import sql

        recorder = app.recorder
        self.fallback_seconds = fallback_seconds
        self.connection = postgres_connection(recorder.datastore)
        # LISTEN before the first catch-up, so an insert between the two still wakes us.
        self.connection.execute(sql.SQL("LISTEN {}").format(sql.Identifier(recorder.channel_name)))

    def wait(self, stop: threading.Event) -> None:
        deadline = time.monotonic() + self.fallback_seconds
        while not stop.is_set():
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                return
            # Short slices, so a stop request is seen within half a second. The generator
            # holds the connection's lock until it is exhausted: no early return from it.
            notified = False
            for _ in self.connection.notifies(timeout=min(0.5, remaining), stop_after=1):
                notified = True
            if notified:
                self._drain()
                return

    def _drain(self) -> None:
        # Every insert notifies: one wake-up is enough for a burst. (A timeout of 0
        # would mean "no timeout" to psycopg.)
        for _ in self.connection.notifies(timeout=0.001, stop_after=1_000):
            pass

    def close(self) -> None:
        self.connection.close()


def _close_quietly(waiter: _Poller | _Listener) -> None:
    try:
        waiter.close()
    except Exception:  # noqa: BLE001 - closing a broken connection may fail too; nothing to do
        pass


def _waiter_for(app: Application, poll_seconds: float, fallback_seconds: float) -> _Poller | _Listener:
    if is_postgres(app.recorder):
        return _Listener(app, fallback_seconds)
    return _Poller(poll_seconds)


# Module-level verbs ------------------------------------------------------------------------


def catch_up(
    app: Application,
    store: ViewStore | None = None,
    views: Sequence[View] | None = None,
    *,
    until: int | None = None,
    page_size: int | None = None,
    progress: Progress | None = None,
) -> CatchUpReport:
    store = store if store is not None else open_store(app)
    return Runner(app, store, views, page_size=page_size).catch_up(until=until, progress=progress)


def rebuild(
    app: Application,
    store: ViewStore | None = None,
    views: Sequence[View] | None = None,
    *,
    page_size: int | None = None,
    progress: Progress | None = None,
) -> CatchUpReport:
    store = store if store is not None else open_store(app)
    return Runner(app, store, views, page_size=page_size).rebuild(progress=progress)


def main(argv: list[str] | None = None) -> int:
    """A worker process: keep every view of the store at ``--db`` current until SIGTERM."""
    from stakeledger.adapters.persistence.store_url import resolve_url

    parser = argparse.ArgumentParser(prog="python -m projections.runner", description=__doc__.splitlines()[0])
    parser.add_argument("--db", help="store URL (default: STAKELEDGER_DATABASE_URL or ./stakeledger.db)")
    parser.add_argument("--page-size", type=int, default=None, help=f"events per page (default {PAGE_SIZE:,})")
    parser.add_argument("--poll-seconds", type=float, default=POLL_SECONDS)
    parser.add_argument("--once", action="store_true", help="catch up once and exit")
    args = parser.parse_args(argv)
    app = open_ledger(resolve_url(args.db))
    store = open_store(app)
    runner = Runner(app, store, page_size=args.page_size)
    if args.once:
        report = runner.catch_up()
        print(f"applied {report.events} events up to position {report.head}", file=sys.stderr)
        return 0
    stop = threading.Event()
    for signum in (signal.SIGTERM, signal.SIGINT):
        signal.signal(signum, lambda *_: stop.set())
    runner.run_forever(
        stop,
        poll_seconds=args.poll_seconds,
        on_error=lambda error: print(f"projections: {type(error).__name__}: {error}", file=sys.stderr),
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
