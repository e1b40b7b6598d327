"""Where views keep their rows: tables in the same database as the events.

A view store is a plain DB-API connection to the events' database: the same SQLite
file (WAL mode), the same PostgreSQL database and schema, or, for the in-process
``memory://`` store, an in-memory SQLite database owned by the process. The SQL
dialects differ only in placeholders, the integer type and row locking, and all three
differences live in this module.

Every view declares its tables with ``Table``. Amounts can exceed 2**63, so amount
columns are stored as decimal TEXT and read back as Python ints; views do arithmetic
on ints only. ``Rows`` is the write-back cache a view writes through while it applies
one page of events: reads hit the cache or the database, writes are held in memory and
flushed at the end of the page (``executemany`` on SQLite, COPY on PostgreSQL), inside
the same transaction that moves the views' tracking positions.
"""

from __future__ import annotations

import json
import re
import sqlite3
import threading
import weakref
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any
from uuid import UUID as UUIDType

from eventsourcing.application import Application

TEXT, INT, AMOUNT, JSON, UUID = "text", "int", "amount", "json", "uuid"
COLUMN_KINDS = (TEXT, INT, AMOUNT, JSON, UUID)
TRACKING_TABLE = "projection_tracking"
# A view's rows cached between pages, per view; past this many the cache starts afresh.
CACHE_ROWS_MAX = 200_000
# SQLite writers wait this long for the write lock, as the event store's writers do.
LOCK_TIMEOUT_SECONDS = 30
CACHE_KIB = 65_536
# PostgreSQL writes this many rows or more with COPY; fewer with executemany.
COPY_ROWS_MIN = 64
_IDENTIFIER = re.compile(r"^[a-z][a-z0-9_]{0,62}\Z")
_MISSING = object()


def _check_identifier(name: str) -> str:
    if not _IDENTIFIER.match(name):
        raise ValueError(f"table and column names are lower-case identifiers, got {name!r}")
    return name


# One encoder for every JSON column: json.dumps with options builds a new one per call.
_encode_json = json.JSONEncoder(sort_keys=True, separators=(",", ":"), default=str).encode


def encode_json(value: Any) -> str | None:
    if value is None:
        return None
    if not value and isinstance(value, dict):
        return "{}"
    return _encode_json(value)


def _amount_in(value: str | None) -> int | None:
    return None if value is None else int(value)


def _json_in(value: str | None) -> Any:
    return None if value is None else json.loads(value)


def _uuid_in(value: str | None) -> int | None:
    return None if value is None else UUIDType(value).int


_uuid_texts: dict[int, str] = {}


def uuid_text(value: int | None) -> str | None:
    """The canonical text of a UUID given as its integer. A position's id is written by
    several views, so recent conversions are remembered (at most CACHE_ROWS_MAX)."""
    if value is None:
        return None
    text = _uuid_texts.get(value)
    if text is None:
        if len(_uuid_texts) >= CACHE_ROWS_MAX:
            _uuid_texts.clear()
        text = _uuid_texts[value] = str(UUIDType(int=value))
    return text


# Python -> stored, as expressions over ``v`` (inlined into each table's row encoder:
# they run for every column of every row written), and stored -> Python. A UUID column
# holds the canonical text in the database and the UUID's 128-bit integer in Python: an
# int hashes in C, a UUID object in Python, and rows are looked up by it on every event.
_ENCODE_EXPRESSIONS = {
    TEXT: "{v}",
    INT: "{v}",
    AMOUNT: "(None if {v} is None else str({v}))",
    JSON: "encode_json({v})",
    UUID: "uuid_text({v})",
}
_DECODERS: dict[str, Callable[[Any], Any] | None] = {
    TEXT: None,
    INT: None,
    AMOUNT: _amount_in,
    JSON: _json_in,
    UUID: _uuid_in,
}


@dataclass(frozen=True)
class Table:
    """One table of a view: columns (name, kind), the primary key and secondary indexes."""

    name: str
    columns: tuple[tuple[str, str], ...]
    key: tuple[str, ...]
    indexes: tuple[tuple[str, ...], ...] = ()
    unique: tuple[tuple[str, ...], ...] = ()
    encode: Callable[[dict[str, Any]], tuple[Any, ...]] = field(init=False, repr=False, compare=False)
    decode: Callable[[Sequence[Any]], dict[str, Any]] = field(init=False, repr=False, compare=False)
    key_of: Callable[[dict[str, Any]], Any] = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        _check_identifier(self.name)
        names = [_check_identifier(name) for name, _ in self.columns]
        if len(set(names)) != len(names):
            raise ValueError(f"table {self.name}: a column appears twice")
        for _, kind in self.columns:
            if kind not in COLUMN_KINDS:
                raise ValueError(f"table {self.name}: column kind must be one of {COLUMN_KINDS}, got {kind!r}")
        for group in (self.key, *self.indexes, *self.unique):
            if not group or any(column not in names for column in group):
                raise ValueError(f"table {self.name}: {group} names a column the table does not have")
        # Row <-> tuple converters are generated once per table: they run for every row
        # a page writes, so they must not loop over columns in Python.
        scope: dict[str, Any] = {"encode_json": encode_json, "uuid_text": uuid_text}
        out_parts, in_parts = [], []
        for index, (name, kind) in enumerate(self.columns):
            decoder = _DECODERS[kind]
            if decoder is not None:
                scope[f"d_{name}"] = decoder
            out_parts.append(_ENCODE_EXPRESSIONS[kind].format(v=f"r[{name!r}]"))
            in_parts.append(f"{name!r}: d_{name}(t[{index}])" if decoder else f"{name!r}: t[{index}]")
        key_source = (
            f"r[{self.key[0]!r}]" if len(self.key) == 1 else "(" + ", ".join(f"r[{k!r}]" for k in self.key) + ",)"
        )
        object.__setattr__(self, "encode", eval(f"lambda r: ({', '.join(out_parts)},)", scope))  # noqa: S307
        object.__setattr__(self, "decode", eval(f"lambda t: {{{', '.join(in_parts)}}}", scope))  # noqa: S307
        object.__setattr__(self, "key_of", eval(f"lambda r: {key_source}", scope))  # noqa: S307

    @property
    def column_names(self) -> tuple[str, ...]:
        return tuple(name for name, _ in self.columns)

    @property
    def binary_types(self) -> list[str]:
        """The PostgreSQL type of each column, for a binary COPY (see ``ViewStore.column_type``)."""
        return ["int8" if kind == INT else "text" for _, kind in self.columns]

    def key_values(self, key: Any) -> tuple[Any, ...]:
        """A key as given to ``Rows.get`` (a scalar for one-column keys) as a tuple of values."""
        return (key,) if len(self.key) == 1 else tuple(key)

    def encode_key(self, key: Any) -> tuple[Any, ...]:
        kinds = dict(self.columns)
        values = self.key_values(key)
        encoded = []
        for column, value in zip(self.key, values):
            kind = kinds[column]
            encoded.append(str(value) if kind == AMOUNT else uuid_text(value) if kind == UUID else value)
        return tuple(encoded)


class ViewStore:
    """A connection to the view tables, with the few SQL differences between backends."""

    def __init__(
        self,
        connection: Any,
        dialect: str,
        *,
        description: str,
        shared: bool = False,
        reconnect: Callable[[], Any] | None = None,
    ) -> None:
        assert dialect in ("sqlite", "postgres")
        self.connection = connection
        self._reconnect = reconnect
        self.dialect = dialect
        self.description = description
        # A shared store (the in-process one of a memory:// application) outlives callers.
        self.shared = shared
        self._lock = threading.RLock()
        self._in_transaction = False
        # Tables created in the current transaction without their primary key (``add_key``).
        self._keyless: set[str] = set()
        self._ensure_tracking()

    # SQL ------------------------------------------------------------------------------

    def sql(self, text: str) -> str:
        """Statements are written with ``?`` placeholders; PostgreSQL wants ``%s``."""
        return text.replace("?", "%s") if self.dialect == "postgres" else text

    @property
    def integer_type(self) -> str:
        return "BIGINT" if self.dialect == "postgres" else "INTEGER"

    def column_type(self, kind: str) -> str:
        return self.integer_type if kind == INT else "TEXT"

    def execute(self, statement: str, params: Sequence[Any] = ()) -> Any:
        with self._lock:
            return self.connection.execute(self.sql(statement), tuple(params))

    def fetchall(self, statement: str, params: Sequence[Any] = ()) -> list[tuple[Any, ...]]:
        with self._lock:
            return [tuple(row) for row in self.execute(statement, params).fetchall()]

    def fetchone(self, statement: str, params: Sequence[Any] = ()) -> tuple[Any, ...] | None:
        with self._lock:
            row = self.execute(statement, params).fetchone()
        return None if row is None else tuple(row)

    def executemany(self, statement: str, rows: Sequence[Sequence[Any]]) -> None:
        if not rows:
            return
        with self._lock:
            self._executemany(statement, rows)

    def _executemany(self, statement: str, rows: Sequence[Sequence[Any]]) -> None:
        if self.dialect == "postgres":
            with self.connection.cursor() as cursor:
                cursor.executemany(self.sql(statement), rows)
        else:
            self.connection.executemany(statement, rows)

    @contextmanager
    def transaction(self) -> Iterator[None]:
        """One transaction, holding the write lock from the start: SQLite's BEGIN IMMEDIATE
        takes the database's single write lock, so two runners never interleave a page."""
        with self._lock:
            if self._in_transaction:
                raise RuntimeError("view store transactions do not nest")
            self._in_transaction = True
            try:
                if self.dialect == "postgres":
                    with self.connection.transaction():
                        yield
                else:
                    self.connection.execute("BEGIN IMMEDIATE")
                    try:
                        yield
                    except BaseException:
                        if self.connection.in_transaction:  # SQLite may have rolled back already
                            self.connection.execute("ROLLBACK")
                        raise
                    self.connection.execute("COMMIT")
            finally:
                self._in_transaction = False
                self._keyless.clear()  # committed with their keys, or rolled back

    @contextmanager
    def read(self) -> Iterator[None]:
        """A read-only transaction: every query inside sees one committed state, even
        while a worker commits pages (SQLite WAL snapshot, PostgreSQL REPEATABLE READ)."""
        with self._lock:
            if self._in_transaction:
                yield
                return
            self._in_transaction = True
            try:
                if self.dialect == "postgres":
                    with self.connection.transaction():
                        self.connection.execute("SET TRANSACTION ISOLATION LEVEL REPEATABLE READ READ ONLY")
                        yield
                else:
                    self.connection.execute("BEGIN")
                    try:
                        yield
                    finally:
                        self.connection.execute("COMMIT")
            finally:
                self._in_transaction = False

    def reconnect_if_broken(self) -> bool:
        """PostgreSQL: replace a connection the server closed (a restart, a network cut).
        Returns True when it did."""
        broken = getattr(self.connection, "broken", False) or getattr(self.connection, "closed", False)
        if not broken or self._reconnect is None:
            return False
        with self._lock:
            try:
                self.connection.close()
            except Exception:  # noqa: BLE001 - it is already broken
                pass
            self.connection = self._reconnect()
        return True

    def checkpoint(self) -> None:
        """SQLite: copy the WAL back into the database file, without waiting for readers."""
        if self.dialect == "sqlite":
            with self._lock:
                self.connection.execute("PRAGMA wal_checkpoint(PASSIVE)").fetchall()

    def close(self) -> None:
        if not self.shared:
            self.connection.close()

    # Schema ---------------------------------------------------------------------------

    def _ensure_tracking(self) -> None:
        if self._has_table(TRACKING_TABLE):
            return  # the usual case: no write lock taken just to open the store
        with self.transaction():
            self._serialise_schema_changes()
            self.execute(
                f"CREATE TABLE IF NOT EXISTS {TRACKING_TABLE} ("
                f"view TEXT NOT NULL PRIMARY KEY, position {self.integer_type} NOT NULL, "
                f"version {self.integer_type} NOT NULL)"
            )

    def _has_table(self, name: str) -> bool:
        if self.dialect == "postgres":
            row = self.fetchone("SELECT to_regclass(?)", (name,))
            return row is not None and row[0] is not None
        return self.fetchone("SELECT 1 FROM sqlite_master WHERE type = 'table' AND name = ?", (name,)) is not None

    def _serialise_schema_changes(self) -> None:
        # Two PostgreSQL processes creating the same table at once would collide in the
        # catalogue; an advisory lock held to the end of the transaction queues them.
        if self.dialect == "postgres":
            self.execute("SELECT pg_advisory_xact_lock(?)", (0x5A4B_7E11,))

    def create_tables(self, tables: Sequence[Table], *, indexes: bool = True, keys: bool = True) -> None:
        """Drop and create, inside a transaction, when a view starts from zero. Without
        ``indexes`` the secondary indexes come later (``create_missing_indexes``): built
        once over a backfilled table, they cost a fraction of growing them row by row.
        Without ``keys`` (PostgreSQL only, where a key can be added to a table later) the
        primary keys come later too: ``add_key`` before the transaction commits."""
        keys = keys or self.dialect != "postgres"
        for table in tables:
            self.execute(f"DROP TABLE IF EXISTS {table.name}")
            columns = ", ".join(f"{name} {self.column_type(kind)}" for name, kind in table.columns)
            key = f", PRIMARY KEY ({', '.join(table.key)})" if keys else ""
            self.execute(f"CREATE TABLE {table.name} ({columns}{key}){self._layout(table)}")
            if not keys:
                self._keyless.add(table.name)
        if indexes:
            self.create_indexes(tables)

    def _layout(self, table: Table) -> str:
        """SQLite keeps a table keyed by anything but one integer column as a rowid table
        plus a separate index on the key, so every row goes into two B-trees, the second
        in random order for UUID keys. WITHOUT ROWID stores the rows in the key's B-tree."""
        single_integer = len(table.key) == 1 and dict(table.columns)[table.key[0]] == INT
        return " WITHOUT ROWID" if self.dialect == "sqlite" and not single_integer else ""

    @staticmethod
    def index_statements(table: Table) -> list[tuple[str, str]]:
        """(name, CREATE INDEX statement) for each secondary index of the table."""
        statements = []
        for prefix, unique, groups in (("i", "", table.indexes), ("u", "UNIQUE ", table.unique)):
            for number, group in enumerate(groups):
                name = f"{table.name}_{prefix}{number}"
                statements.append(
                    (name, f"CREATE {unique}INDEX IF NOT EXISTS {name} ON {table.name} ({', '.join(group)})")
                )
        return statements

    def existing_indexes(self) -> set[str]:
        if self.dialect == "postgres":
            rows = self.fetchall("SELECT indexname FROM pg_indexes WHERE schemaname = current_schema()")
        else:
            rows = self.fetchall("SELECT name FROM sqlite_master WHERE type = 'index'")
        return {row[0] for row in rows}

    def create_missing_indexes(self, tables: Sequence[Table]) -> int:
        """Build the secondary indexes these tables lack, in one transaction."""
        existing = self.existing_indexes()
        missing = [
            statement for table in tables for name, statement in self.index_statements(table) if name not in existing
        ]
        if missing:
            with self.transaction():
                self._serialise_schema_changes()
                for statement in missing:
                    self.execute(statement)
        return len(missing)

    def prepare(self, name: str, version: int, tables: Sequence[Table], *, indexes: bool = True) -> bool:
        """Make sure a view's tables exist at its current version. A view never seen
        before, or seen at another version, gets fresh tables and position 0, so it
        backfills from the start of the log. Returns True when it started afresh."""
        with self.transaction():
            self._serialise_schema_changes()
            row = self.fetchone(f"SELECT version FROM {TRACKING_TABLE} WHERE view = ?", (name,))
            if row is not None and row[0] == version:
                return False
            self.create_tables(tables, indexes=indexes)
            if row is None:
                self.execute(
                    f"INSERT INTO {TRACKING_TABLE} (view, position, version) VALUES (?, 0, ?)", (name, version)
                )
            else:
                self.execute(f"UPDATE {TRACKING_TABLE} SET position = 0, version = ? WHERE view = ?", (version, name))
            return True

    def restart(self, name: str, version: int, tables: Sequence[Table]) -> None:
        """A rebuild's first step: fresh, empty tables (indexes come after the backfill)
        and position 0, in one transaction."""
        with self.transaction():
            self.reset_view(name, version, tables)

    def reset_view(self, name: str, version: int, tables: Sequence[Table], *, keys: bool = True) -> None:
        """``restart`` inside the caller's transaction (``keys``: see ``create_tables``)."""
        self._serialise_schema_changes()
        self.create_tables(tables, indexes=False, keys=keys)
        self.execute(f"DELETE FROM {TRACKING_TABLE} WHERE view = ?", (name,))
        self.execute(f"INSERT INTO {TRACKING_TABLE} (view, position, version) VALUES (?, 0, ?)", (name, version))

    def lock_tracking(self, names: Sequence[str]) -> None:
        """Lock the tracking rows of these views that exist, in name order (as
        ``lock_positions`` does, so a runner applying a page and a rebuild never wait on
        each other in a cycle), until the transaction ends."""
        if self.dialect == "postgres" and names:
            marks = ", ".join("?" * len(names))
            self.fetchall(f"SELECT view FROM {TRACKING_TABLE} WHERE view IN ({marks}) ORDER BY view FOR UPDATE", names)

    def add_key(self, table: Table) -> None:
        """Give a table created without its primary key the key now: before anything
        looks up, updates or deletes its rows by key, and before the transaction commits.
        The constraint is the one ``CREATE TABLE`` would have made, name and all."""
        if table.name in self._keyless:
            self.execute(f"ALTER TABLE {table.name} ADD PRIMARY KEY ({', '.join(table.key)})")
            self._keyless.discard(table.name)

    def add_missing_keys(self, tables: Sequence[Table]) -> None:
        for table in tables:
            self.add_key(table)

    def create_indexes(self, tables: Sequence[Table]) -> None:
        """Build every secondary index of these tables, inside the caller's transaction."""
        for table in tables:
            for _, statement in self.index_statements(table):
                self.execute(statement)

    # Tracking -------------------------------------------------------------------------

    def positions(self) -> dict[str, int]:
        return {view: position for view, position in self.fetchall(f"SELECT view, position FROM {TRACKING_TABLE}")}

    def lock_positions(self, names: Sequence[str]) -> dict[str, int]:
        """The views' positions, locked until the transaction ends (call inside one).
        PostgreSQL locks the rows in name order, so two runners never deadlock; SQLite's
        write lock, taken by BEGIN IMMEDIATE, already covers them."""
        suffix = " ORDER BY view FOR UPDATE" if self.dialect == "postgres" else ""
        marks = ", ".join("?" * len(names))
        found = dict(
            self.fetchall(f"SELECT view, position FROM {TRACKING_TABLE} WHERE view IN ({marks}){suffix}", names)
        )
        missing = sorted(set(names) - set(found))
        if missing:
            raise LookupError(f"view {missing[0]!r} has no tracking row: prepare it first")
        return {name: int(position) for name, position in found.items()}

    def set_position(self, name: str, position: int) -> None:
        self.execute(f"UPDATE {TRACKING_TABLE} SET position = ? WHERE view = ?", (position, name))

    # Reading rows ---------------------------------------------------------------------

    def count(self, table: Table) -> int:
        row = self.fetchone(f"SELECT COUNT(*) FROM {table.name}")
        return int(row[0]) if row else 0

    def select(
        self, table: Table, where: str = "", params: Sequence[Any] = (), *, order: str = "", limit: int | None = None
    ) -> list[dict[str, Any]]:
        """Rows as dicts with amounts as ints. ``where`` and ``order`` are trusted SQL."""
        statement = f"SELECT {', '.join(table.column_names)} FROM {table.name}"
        if where:
            statement += f" WHERE {where}"
        if order:
            statement += f" ORDER BY {order}"
        if limit is not None:
            statement += f" LIMIT {int(limit)}"
        decode = table.decode
        return [decode(row) for row in self.fetchall(statement, params)]

    def raw_rows(self, table: Table) -> list[tuple[Any, ...]]:
        """Every row as stored, in primary-key order: what replay checks compare."""
        return self.fetchall(
            f"SELECT {', '.join(table.column_names)} FROM {table.name} ORDER BY {', '.join(table.key)}"
        )

    def load(self, table: Table, key: Any) -> dict[str, Any] | None:
        if self._keyless:
            self.add_key(table)
        where = " AND ".join(f"{column} = ?" for column in table.key)
        row = self.fetchone(
            f"SELECT {', '.join(table.column_names)} FROM {table.name} WHERE {where}", table.encode_key(key)
        )
        return None if row is None else table.decode(row)

    # Writing rows ---------------------------------------------------------------------

    def upsert_statement(self, table: Table) -> str:
        names = table.column_names
        updates = ", ".join(f"{name} = excluded.{name}" for name in names if name not in table.key)
        conflict = f"ON CONFLICT ({', '.join(table.key)}) " + (f"DO UPDATE SET {updates}" if updates else "DO NOTHING")
        return f"INSERT INTO {table.name} ({', '.join(names)}) VALUES ({', '.join('?' * len(names))}) {conflict}"

    def insert_statement(self, table: Table) -> str:
        names = table.column_names
        return f"INSERT INTO {table.name} ({', '.join(names)}) VALUES ({', '.join('?' * len(names))})"

    def delete_statement(self, table: Table) -> str:
        return f"DELETE FROM {table.name} WHERE " + " AND ".join(f"{column} = ?" for column in table.key)

    def insert_rows(self, table: Table, rows: Sequence[Sequence[Any]]) -> None:
        """Insert stored-form rows. PostgreSQL: with COPY, which costs a fraction of
        ``executemany``'s per-row round of Python."""
        if not rows:
            return
        if self.dialect == "postgres" and len(rows) >= COPY_ROWS_MIN:
            self._copy(table.name, table, rows)
        else:
            self.executemany(self.insert_statement(table), rows)

    def upsert_rows(self, table: Table, rows: Sequence[Sequence[Any]]) -> None:
        """Insert or replace stored-form rows by primary key. PostgreSQL: COPY into a
        temporary table dropped at commit, then one INSERT … ON CONFLICT from it."""
        if not rows:
            return
        if self._keyless:
            self.add_key(table)  # ON CONFLICT needs it
        if self.dialect != "postgres" or len(rows) < COPY_ROWS_MIN:
            self.executemany(self.upsert_statement(table), rows)
            return
        staging = f"staging_{table.name}"
        names = ", ".join(table.column_names)
        updates = ", ".join(f"{name} = excluded.{name}" for name in table.column_names if name not in table.key)
        with self._lock:
            self.execute(f"CREATE TEMPORARY TABLE {staging} (LIKE {table.name}) ON COMMIT DROP")
            self._copy(staging, table, rows)
            self.execute(
                f"INSERT INTO {table.name} ({names}) SELECT {names} FROM {staging} "
                f"ON CONFLICT ({', '.join(table.key)}) DO " + (f"UPDATE SET {updates}" if updates else "NOTHING")
            )
            self.execute(f"DROP TABLE {staging}")

    def write(self, writes: Sequence[tuple[str, Table, Sequence[Sequence[Any]]]]) -> None:
        """Carry out a page's writes as ``Rows.writes`` lists them."""
        for kind, table, rows in writes:
            if kind != "insert" and self._keyless:
                self.add_key(table)
            if kind == "delete":
                self.executemany(self.delete_statement(table), rows)
            elif kind == "upsert":
                self.upsert_rows(table, rows)
            else:
                self.insert_rows(table, rows)

    def _copy(self, target: str, table: Table, rows: Sequence[Sequence[Any]]) -> None:
        """COPY rows into a table, in binary: each value goes as its bytes, which halves
        the client's work (no text escaping) and spares the server parsing integers. A
        value binary cannot carry as its column's type (a text column is sent str or
        None, an integer one int or None) raises before the server has it; then the
        COPY is rolled back to a savepoint and sent again as text, which adapts any
        value as psycopg does (and fails, if it must, the server's way)."""
        columns = ", ".join(table.column_names)
        with self._lock:
            try:
                with self.connection.transaction(), self.connection.cursor() as cursor:
                    with cursor.copy(f"COPY {target} ({columns}) FROM STDIN (FORMAT BINARY)") as copy:
                        copy.set_types(table.binary_types)
                        write_row = copy.write_row
                        for row in rows:
                            write_row(row)
                return
            except (TypeError, ValueError, OverflowError):
                pass
            with self.connection.cursor() as cursor:
                with cursor.copy(f"COPY {target} ({columns}) FROM STDIN") as copy:
                    write_row = copy.write_row
                    for row in rows:
                        write_row(row)


class Rows:
    """The write-back cache one view writes through while it applies one page.

    ``get`` returns a private copy of a row (from this page's working set, the view's
    cache of committed rows, or the database); ``put`` and ``delete`` mark a row to be
    written; ``append`` queues a row that is only ever inserted (statement lines,
    history). ``writes`` lists everything for ``ViewStore.write``. Until the transaction
    commits nothing reaches the committed cache, so a failed page leaves no trace.

    ``complete`` names the tables whose every stored row is in the committed cache (a
    view rebuilt from empty tables by this runner): a key missing there has no row, and
    is not looked up.
    """

    def __init__(
        self,
        store: ViewStore,
        tables: dict[str, Table],
        committed: dict[str, dict[Any, Any]],
        complete: set[str] | None = None,
    ) -> None:
        self.store = store
        self.tables = tables
        self.committed = committed
        self.complete = complete if complete is not None else set()
        self.working: dict[str, dict[Any, Any]] = {name: {} for name in tables}
        self.dirty: dict[str, set[Any]] = {name: set() for name in tables}
        self.appended: dict[str, list[dict[str, Any]]] = {name: [] for name in tables}
        self.encoded: dict[str, list[tuple[Any, ...]]] = {name: [] for name in tables}

    def get(self, table: str, key: Any) -> dict[str, Any] | None:
        working = self.working[table]
        row = working.get(key, _MISSING)
        if row is _MISSING:
            committed = self.committed.setdefault(table, {})
            row = committed.get(key, _MISSING)
            if row is _MISSING:
                row = committed[key] = None if table in self.complete else self.store.load(self.tables[table], key)
            if row is not None:
                row = dict(row)
            working[key] = row
        return row

    def update(self, table: str, key: Any) -> dict[str, Any] | None:
        """``get`` for a row about to change: it is already marked to be written, so the
        caller changes it in place and need not ``put`` it back (a hot path's shortcut)."""
        row = self.get(table, key)
        if row is not None:
            self.dirty[table].add(key)
        return row

    def put(self, table: str, row: dict[str, Any]) -> dict[str, Any]:
        key = self.tables[table].key_of(row)
        self.working[table][key] = row
        self.dirty[table].add(key)
        return row

    def delete(self, table: str, key: Any) -> None:
        self.working[table][key] = None
        self.dirty[table].add(key)

    def append(self, table: str, row: dict[str, Any]) -> None:
        self.appended[table].append(row)

    def append_encoded(self, table: str, values: tuple[Any, ...]) -> None:
        """Queue a row already in stored form, in column order: for the hottest paths,
        which would otherwise build a dict only to have it turned into this tuple."""
        self.encoded[table].append(values)

    def writes(self, hold: set[str] | None = None) -> tuple[list[tuple[str, Table, list[tuple[Any, ...]]]], int]:
        """The page's changes in stored form, as (kind, table, rows) with kind "delete"
        (rows are keys), "upsert" or "insert", in the order ``ViewStore.write`` carries
        them out, and the number of rows written. Nothing is written here.

        In a complete table a row the committed cache does not hold is not stored, so it
        is inserted, not upserted: on PostgreSQL that is one COPY into the table instead
        of a COPY into a temporary table and an INSERT … ON CONFLICT from there (a rebuild
        creates most of its keyed rows this way). Were it stored after all, the insert
        fails on the primary key: loudly, never a row lost.

        ``hold`` names complete tables none of whose rows is stored: their rows stay in
        the caches only, to be written by the caller once they are final. A held table
        that gets appended rows leaves ``hold`` (it is no longer complete once they are
        committed), and every row it holds goes with them, as inserts."""
        writes: list[tuple[str, Table, list[tuple[Any, ...]]]] = []
        written = 0
        for name, table in self.tables.items():
            working, dirty = self.working[name], self.dirty[name]
            encoded = self.encoded[name] + [table.encode(row) for row in self.appended[name]]
            if hold is not None and name in hold:
                if encoded:
                    hold.discard(name)
                    rows = dict(self.committed.get(name, {}))
                    rows.update((key, working[key]) for key in dirty)
                    encoded.extend(table.encode(row) for row in rows.values() if row is not None)
                    writes.append(("insert", table, encoded))
                    written += len(encoded)
                continue
            if dirty:
                encode = table.encode
                stored = self.committed.get(name, {}) if name in self.complete else None
                upserts = []
                deletes = []
                for key in dirty:
                    row = working[key]
                    if row is None:
                        deletes.append(table.encode_key(key))
                    elif stored is not None and stored.get(key) is None:
                        encoded.append(encode(row))
                    else:
                        upserts.append(encode(row))
                if deletes:
                    writes.append(("delete", table, deletes))
                if upserts:
                    writes.append(("upsert", table, upserts))
                written += len(upserts) + len(deletes)
            if encoded:
                writes.append(("insert", table, encoded))
                written += len(encoded)
        return writes, written

    def committed_changes(self) -> None:
        """After the commit: what this page wrote becomes the committed cache. Appended
        rows are not cached, so a table with some is no longer complete there."""
        if self.complete:
            self.complete.difference_update(name for name in self.tables if self.appended[name] or self.encoded[name])
        for name, dirty in self.dirty.items():
            if dirty:
                working = self.working[name]
                committed = self.committed.setdefault(name, {})
                for key in dirty:
                    committed[key] = working[key]


# Opening a store --------------------------------------------------------------------------

_memory_stores: weakref.WeakKeyDictionary[Application, ViewStore] = weakref.WeakKeyDictionary()
_memory_lock = threading.Lock()


def memory_store() -> ViewStore:
    """A fresh, private in-memory view store: for replays and checks."""
    connection = sqlite3.connect(":memory:", isolation_level=None, check_same_thread=False)
    return ViewStore(connection, "sqlite", description="in-memory SQLite")


def open_store(app: Application) -> ViewStore:
    """The view store beside the application's events.

    SQLite file: the same file. PostgreSQL: the same database and schema. The in-process
    store (``memory://``, or SQLite ``:memory:``): one in-memory SQLite database per
    application object, shared by every caller in the process."""
    recorder = app.recorder
    if is_sqlite(recorder) and not recorder.datastore.pool.is_sqlite_memory_mode:
        return _sqlite_file_store(recorder.datastore.pool.db_name)
    if is_postgres(recorder):
        return _postgres_store(recorder.datastore)
    with _memory_lock:
        store = _memory_stores.get(app)
        if store is None:
            store = _memory_stores[app] = memory_store()
            store.shared = True
        return store


def is_sqlite(recorder: Any) -> bool:
    from eventsourcing.sqlite import SQLiteApplicationRecorder

    return isinstance(recorder, SQLiteApplicationRecorder)


def is_postgres(recorder: Any) -> bool:
    """An eventsourcing PostgreSQL recorder, or a subclass (domain.recorders has some)."""
    try:
        from eventsourcing.postgres import PostgresApplicationRecorder
    except ImportError:  # psycopg missing: then nothing here is PostgreSQL
        return False
    return isinstance(recorder, PostgresApplicationRecorder)


def _sqlite_file_store(path: str) -> ViewStore:
    connection = sqlite3.connect(
        path, uri=True, isolation_level=None, check_same_thread=False, timeout=LOCK_TIMEOUT_SECONDS
    )
    connection.execute("PRAGMA journal_mode=WAL")
    # With WAL, NORMAL loses no committed page on a process crash (only on power loss,
    # and then the rows and the tracking position are lost together and re-applied).
    connection.execute("PRAGMA synchronous=NORMAL")
    # A catch-up writes many pages: checkpoint once at its end (``checkpoint``), not every
    # 1,000 WAL pages, which would copy and sync the same B-tree pages over and over.
    connection.execute("PRAGMA wal_autocheckpoint=0")
    # Index pages of the busiest tables stay in memory across a page's inserts.
    connection.execute(f"PRAGMA cache_size=-{CACHE_KIB}")
    return ViewStore(connection, "sqlite", description=f"SQLite {path}")


def postgres_connection(datastore: Any, *, autocommit: bool = True) -> Any:
    import psycopg
    from psycopg import sql

    kwargs = {key: value for key, value in datastore.pool.kwargs.items() if key != "row_factory"}
    connection = psycopg.connect(**kwargs, autocommit=autocommit, connect_timeout=10)
    connection.execute(sql.SQL("SET search_path TO {}").format(sql.Identifier(datastore.schema)))
    return connection


def _postgres_store(datastore: Any) -> ViewStore:
    connection = postgres_connection(datastore)
    where = f"PostgreSQL {datastore.pool.kwargs.get('host')}/{datastore.pool.kwargs.get('dbname')} schema {datastore.schema}"
    return ViewStore(connection, "postgres", description=where, reconnect=lambda: postgres_connection(datastore))
