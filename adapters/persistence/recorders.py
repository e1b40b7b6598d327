"""Application recorders that can also read many aggregates' events in one query.

Settling an artifact loads every position on it: 10,000 single-aggregate selects cost
more than the settlement's decisions. These subclasses of eventsourcing's recorders add
``select_events_many``, and ``select_events_after``, which brings a command's cached
aggregates up to date in one query instead of one per aggregate; the store URL picks them by configuration
(``APPLICATION_RECORDER_TOPIC``), and a recorder without it is read one id at a time.

They also make creating the tables safe when several processes open a new store at
once (API and projection workers starting together), and, on PostgreSQL, keep the log's
order equal to its commit order when events go in through the stored insert function
(see ``insert_events``).
"""

from __future__ import annotations

import sqlite3
import time
from collections.abc import Mapping, Sequence
from typing import Any
from uuid import UUID

from eventsourcing.persistence import InterfaceError as PersistenceInterfaceError
from eventsourcing.persistence import OperationalError as PersistenceOperationalError
from eventsourcing.persistence import StoredEvent
from eventsourcing.postgres import PostgresAggregateRecorder, PostgresApplicationRecorder, PostgresFactory
from eventsourcing.sqlite import (
    SQLITE3_DEFAULT_LOCK_TIMEOUT,
    SQLiteAggregateRecorder,
    SQLiteApplicationRecorder,
    SQLiteConnection,
    SQLiteConnectionPool,
    SQLiteFactory,
)
from psycopg.sql import SQL, Identifier

from stakeledger.adapters.persistence.market_locks import FileMarketLocks, PostgresMarketLocks

# Bounded so a statement's parameter list stays far below both databases' limits.
IDS_PER_QUERY = 500


# Processes creating one SQLite file's tables at once: how often to try, and the first pause.
CREATE_ATTEMPTS = 20
CREATE_PAUSE_SECONDS = 0.02


# Statements each SQLite connection keeps prepared (the sqlite3 module's default is 128).
STATEMENT_CACHE_SIZE = 128


class SQLiteLedgerConnectionPool(SQLiteConnectionPool):
    """The library's pool, with connections that keep their statements prepared.

    eventsourcing 9.5 opens each connection with ``cached_statements=True``, which the sqlite3
    module reads as a cache of one statement: a command's BEGIN, SELECT, ROLLBACK, INSERT and
    COMMIT each evicted the one before, so every statement was parsed again on every use. Parsing
    the prefetch's compound SELECT took longer than running it (a market order's prefetch fell
    from ~150 to ~70 us with the cache). Otherwise the connection is the library's: autocommit
    (transactions are begun explicitly), WAL mode on a file, rows as ``sqlite3.Row``."""

    def _create_connection(self) -> SQLiteConnection:
        try:
            connection = sqlite3.connect(
                database=self.db_name,
                uri=True,
                check_same_thread=False,
                isolation_level=None,
                cached_statements=STATEMENT_CACHE_SIZE,
                timeout=self.lock_timeout or SQLITE3_DEFAULT_LOCK_TIMEOUT,
            )
        except (sqlite3.Error, TypeError) as error:
            raise PersistenceInterfaceError(error) from error
        if not self.is_sqlite_memory_mode and not self.is_journal_mode_wal:
            (mode,) = connection.execute("PRAGMA journal_mode;").fetchone()
            if mode.lower() != "wal":
                connection.execute("PRAGMA journal_mode=WAL;")
                self.journal_mode_was_changed_to_wal = True
            self.is_journal_mode_wal = True
        connection.row_factory = sqlite3.Row
        return SQLiteConnection(sqlite_conn=connection, max_age=self.max_age)


class SQLiteCreatesPolitely:
    """Mixed into SQLite recorders: see ``create_table``."""

    def create_table(self) -> None:
        """Create the tables, trying again while another process is creating them.

        eventsourcing runs ``CREATE TABLE IF NOT EXISTS`` in a deferred transaction: it
        reads the schema, then asks to write. If another process commits the same tables
        in between, WAL mode refuses the stale writer at once ("database is locked")
        instead of waiting. The statements are idempotent, so trying again is safe; the
        second try finds the tables there."""
        for attempt in range(1, CREATE_ATTEMPTS + 1):
            try:
                return super().create_table()
            except (sqlite3.OperationalError, PersistenceOperationalError) as error:
                if "locked" not in str(error) or attempt == CREATE_ATTEMPTS:
                    raise
                time.sleep(CREATE_PAUSE_SECONDS * attempt)


class SQLiteSnapshotRecorder(SQLiteCreatesPolitely, SQLiteAggregateRecorder):
    """The snapshots table, created as safely as the events table."""


class SQLiteLedgerRecorder(SQLiteCreatesPolitely, SQLiteApplicationRecorder):
    def select_events_many(self, originator_ids: Sequence[UUID]) -> list[StoredEvent]:
        """Every event of every given aggregate, in (aggregate, version) order."""
        events: list[StoredEvent] = []
        with self.datastore.transaction(commit=False) as cursor:
            for start in range(0, len(originator_ids), IDS_PER_QUERY):
                chunk = [originator_id.hex for originator_id in originator_ids[start : start + IDS_PER_QUERY]]
                cursor.execute(
                    f"SELECT originator_id, originator_version, topic, state FROM {self.events_table_name} "
                    f"WHERE originator_id IN ({','.join('?' * len(chunk))}) ORDER BY originator_id, originator_version",
                    chunk,
                )
                events.extend(
                    StoredEvent(
                        self.convert_originator_id(row["originator_id"]),
                        row["originator_version"],
                        row["topic"],
                        row["state"],
                    )
                    for row in cursor.fetchall()
                )
        return events

    def select_events_after(self, versions: Mapping[UUID, int | None]) -> tuple[list[StoredEvent], set[UUID]]:
        """One query for several aggregates (see ``UnitOfWork.prefetch``): for an id with a
        version, its events after that version, in (aggregate, version) order; for an id with
        None, only whether it has any events: the ids that have none come back as the second item."""
        table = self.events_table_name
        parts: list[str] = []
        params: list[Any] = []
        for originator_id, version in versions.items():
            if version is None:
                parts.append(
                    f"SELECT ? AS originator_id, NULL AS originator_version, NULL AS topic, NULL AS state "
                    f"WHERE NOT EXISTS (SELECT 1 FROM {table} WHERE originator_id = ?)"
                )
                params += [originator_id.hex, originator_id.hex]
            else:
                parts.append(
                    f"SELECT originator_id, originator_version, topic, state FROM {table} "
                    "WHERE originator_id = ? AND originator_version > ?"
                )
                params += [originator_id.hex, version]
        if not parts:
            return [], set()
        with self.datastore.transaction(commit=False) as cursor:
            cursor.execute(" UNION ALL ".join(parts) + " ORDER BY 1, 2", params)
            rows = cursor.fetchall()
        return _split_found_and_missing((self.convert_originator_id(row[0]), row[1], row[2], row[3]) for row in rows)


def _split_found_and_missing(rows: Any) -> tuple[list[StoredEvent], set[UUID]]:
    """Rows of ``select_events_after``: stored events, and the ids marked missing (no version)."""
    events: list[StoredEvent] = []
    missing: set[UUID] = set()
    for originator_id, version, topic, state in rows:
        if version is None:
            missing.add(originator_id)
        else:
            events.append(StoredEvent(originator_id, version, topic, bytes(state)))
    return events, missing


class PostgresCreatesOneAtATime:
    """Mixed into PostgreSQL recorders: see ``create_table``."""

    def create_table(self) -> None:
        """Create the tables, types and functions, one process at a time per schema.

        Several processes starting at once (API workers, a projection worker) would
        otherwise race on ``CREATE OR REPLACE FUNCTION`` and ``CREATE TYPE`` and fail
        with "tuple concurrently updated". A session advisory lock, keyed by the schema,
        queues them; the pool has connections to spare for the work itself."""
        with self.datastore.get_connection() as connection:
            key = ("stakeledger:create_table:" + self.datastore.schema,)
            connection.execute("SELECT pg_advisory_lock(hashtext(%s))", key)
            try:
                super().create_table()
            finally:
                connection.execute("SELECT pg_advisory_unlock(hashtext(%s))", key)


class PostgresSnapshotRecorder(PostgresCreatesOneAtATime, PostgresAggregateRecorder):
    """The snapshots table, created under the same lock as the events table (four
    processes opening a new schema at once raced on its row type otherwise)."""


class PostgresLedgerRecorder(PostgresCreatesOneAtATime, PostgresApplicationRecorder):
    # The stored function that takes the events table's lock and inserts (see insert_events).
    insert_in_order_function = "stakeledger_insert_events_in_order"

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        schema = Identifier(self.datastore.schema)
        function = Identifier(self.insert_in_order_function)
        self.sql_create_statements.append(
            SQL(
                "CREATE OR REPLACE FUNCTION {schema}.{function}(events {schema}.{event}[]) "
                "RETURNS SETOF bigint LANGUAGE plpgsql AS $BODY$ BEGIN "
                "SET LOCAL lock_timeout = '{lock_timeout}s'; "
                "LOCK TABLE {schema}.{table} IN EXCLUSIVE MODE; "
                "NOTIFY {channel}; "
                "RETURN QUERY INSERT INTO {schema}.{table} (originator_id, originator_version, topic, state) "
                "SELECT originator_id, originator_version, topic, state FROM unnest(events) "
                "RETURNING notification_id; "
                "END; $BODY$"
            ).format(
                schema=schema,
                function=function,
                event=Identifier(self.stored_event_type_name),
                lock_timeout=self.datastore.lock_timeout,
                table=Identifier(self.events_table_name),
                channel=Identifier(self.channel_name),
            )
        )
        self.sql_insert_in_order = SQL("SELECT * FROM {schema}.{function}((%s))").format(
            schema=schema, function=function
        )

    def insert_events(self, stored_events: Sequence[StoredEvent], **kwargs: Any) -> Sequence[int] | None:
        """Insert under the events table's EXCLUSIVE lock, in one statement.

        The library's insert function takes no lock: two transactions can draw notification
        ids 1 and 2 and commit 2 first, and a reader tailing the log passes id 1 for good.
        Our function takes the table lock before it inserts, inside the statement's own
        transaction, so id order is commit order. One statement is one round trip, where
        BEGIN, the lock's two statements, the insert and COMMIT each waited for the one before.
        (The function path is kept because a save of thousands of events through psycopg's
        pipeline can stall in ``sync``.)"""
        if not self.datastore.enable_db_functions:
            return super().insert_events(stored_events, **kwargs)
        if not stored_events:
            return []
        rows = [
            self.construct_pg_stored_event(e.originator_id, e.originator_version, e.topic, e.state)
            for e in stored_events
        ]
        with self.datastore.get_connection() as connection, connection.cursor() as cursor:
            cursor.execute(self.sql_insert_in_order, (rows,), prepare=True)
            return [row[self.insert_in_order_function] for row in cursor.fetchall()]

    def select_events_many(self, originator_ids: Sequence[UUID]) -> list[StoredEvent]:
        """Every event of every given aggregate, in (aggregate, version) order."""
        statement = SQL(
            "SELECT originator_id, originator_version, topic, state FROM {schema}.{table} "
            "WHERE originator_id = ANY(%s) ORDER BY originator_id, originator_version"
        ).format(schema=Identifier(self.datastore.schema), table=Identifier(self.events_table_name))
        events: list[StoredEvent] = []
        with self.datastore.get_connection() as connection, connection.cursor() as cursor:
            for start in range(0, len(originator_ids), IDS_PER_QUERY):
                cursor.execute(statement, [list(originator_ids[start : start + IDS_PER_QUERY])])
                events.extend(
                    StoredEvent(row["originator_id"], row["originator_version"], row["topic"], bytes(row["state"]))
                    for row in cursor.fetchall()
                )
        return events

    def select_events_after(self, versions: Mapping[UUID, int | None]) -> tuple[list[StoredEvent], set[UUID]]:
        """As on SQLite: one statement, so one round trip to the server for the whole command.
        Each id is looked up in the primary key on its own (the lateral subquery, fenced by
        OFFSET 0): joined plainly, the planner hashes the ids and scans the whole table."""
        after = [(i, v) for i, v in versions.items() if v is not None]
        probe = [i for i, v in versions.items() if v is None]
        if not after and not probe:
            return [], set()
        statement = SQL(
            "SELECT e.originator_id, e.originator_version, e.topic, e.state "
            "FROM unnest(%s::uuid[], %s::bigint[]) AS w(id, v) CROSS JOIN LATERAL ("
            "SELECT originator_id, originator_version, topic, state FROM {schema}.{table} "
            "WHERE originator_id = w.id AND originator_version > w.v OFFSET 0) e "
            "UNION ALL "
            "SELECT m.id, NULL, NULL, NULL FROM unnest(%s::uuid[]) AS m(id) "
            "WHERE NOT EXISTS (SELECT 1 FROM {schema}.{table} x WHERE x.originator_id = m.id) "
            "ORDER BY 1, 2"
        ).format(schema=Identifier(self.datastore.schema), table=Identifier(self.events_table_name))
        params = [[i for i, _ in after], [v for _, v in after], probe]
        with self.datastore.get_connection() as connection, connection.cursor() as cursor:
            cursor.execute(statement, params)
            rows = cursor.fetchall()
        return _split_found_and_missing(
            (row["originator_id"], row["originator_version"], row["topic"], row["state"]) for row in rows
        )


# The store URL names these factories (PERSISTENCE_MODULE): the library takes the class of
# each recorder from its factory, and the snapshot recorder has no topic of its own.
class SQLiteLedgerFactory(SQLiteFactory):
    aggregate_recorder_class = SQLiteSnapshotRecorder
    application_recorder_class = SQLiteLedgerRecorder

    def __init__(self, env: Any) -> None:
        super().__init__(env)
        # The library's datastore builds its own pool; it has opened no connection yet.
        library_pool = self.datastore.pool
        settings = ("db_name", "lock_timeout", "pool_size", "max_overflow", "pool_timeout", "max_age", "pre_ping")
        self.datastore.pool = SQLiteLedgerConnectionPool(**{name: getattr(library_pool, name) for name in settings})
        library_pool.close()

    def market_locks(self) -> FileMarketLocks | None:
        """Cross-process turns per market (adapters/persistence/market_locks.py)."""
        pool = self.datastore.pool
        return None if pool.is_sqlite_memory_mode else FileMarketLocks(pool.db_name)


class PostgresLedgerFactory(PostgresFactory):
    aggregate_recorder_class = PostgresSnapshotRecorder
    application_recorder_class = PostgresLedgerRecorder

    def market_locks(self) -> PostgresMarketLocks:
        """Cross-process turns per market (adapters/persistence/market_locks.py)."""
        return PostgresMarketLocks(self.datastore)
