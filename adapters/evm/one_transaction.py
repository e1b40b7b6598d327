"""Write a whole import in one database transaction, so no command ever sees part of it.

The ledger's recorders commit each ``insert_events`` call on its own. An import of a
million events cannot be one call (the batch would sit in memory, and PostgreSQL's
stored function takes one array), and an import committed a batch at a time shows every
other process a truncated ledger that still balances when it is killed at a transaction
boundary. ``one_transaction(recorder)`` opens a single transaction on the recorder's own
datastore and yields a writer that inserts batch after batch into it with the
recorder's own statements; leaving the block commits everything at once, and an error,
a lost connection or a SIGKILL before that leaves the store as it was: SQLite rolls
back the uncommitted WAL frames when the file is next opened, PostgreSQL aborts the
transaction when the client's connection drops.

The writer also proves the store was empty: at the end, inside the transaction, the
events table must hold exactly the rows it wrote (``ImportTargetNotEmptyError``
otherwise, and the transaction rolls back). On PostgreSQL the events table's EXCLUSIVE
lock is taken first, as every insert of the ledger takes it, so no other writer commits
in between, and the notification-id sequence restarts at 1 (a rolled-back import would
otherwise leave a gap at the start of the log).

This reaches into eventsourcing's recorders (``_insert_events``, ``_lock_table``, the
stored function's statement): the one place that does, kept next to the importer that
needs it.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from typing import Any

from eventsourcing.persistence import StoredEvent
from eventsourcing.postgres import PostgresApplicationRecorder
from eventsourcing.sqlite import SQLiteApplicationRecorder
from psycopg.sql import SQL, Identifier

from stakeledger.adapters.evm.bundle import ImportTargetNotEmptyError


class OneTransactionWriter:
    """Inserts batches into an open transaction; ``written`` counts the rows so far."""

    def __init__(self, insert: Callable[[Sequence[StoredEvent]], None], count: Callable[[], int]) -> None:
        self._insert = insert
        self._count = count
        self.written = 0

    def write(self, batch: Sequence[StoredEvent]) -> None:
        if batch:
            self._insert(batch)
            self.written += len(batch)

    def check_only_rows(self, shown: str) -> None:
        """Refuse (and so roll back) when the table holds rows this transaction did not write."""
        rows = self._count()
        if rows != self.written:
            raise ImportTargetNotEmptyError(
                f"{shown} already holds events ({rows - self.written} written by another process "
                "during the import): import needs an empty store; nothing was imported"
            )


@contextmanager
def one_transaction(recorder: Any) -> Iterator[OneTransactionWriter]:
    """A writer whose batches commit together when the block ends without an error."""
    if isinstance(recorder, SQLiteApplicationRecorder):
        with _sqlite(recorder) as writer:
            yield writer
    elif isinstance(recorder, PostgresApplicationRecorder):
        with _postgres(recorder) as writer:
            yield writer
    else:  # the in-memory store: one insert_events call is atomic there
        with _in_memory(recorder) as writer:
            yield writer


@contextmanager
def _sqlite(recorder: SQLiteApplicationRecorder) -> Iterator[OneTransactionWriter]:
    table = recorder.events_table_name
    with recorder.datastore.transaction(commit=True) as cursor:

        def count() -> int:
            cursor.execute(f"SELECT COUNT(*) FROM {table}")
            return int(cursor.fetchone()[0])

        yield OneTransactionWriter(lambda batch: recorder._insert_events(cursor, batch), count)


@contextmanager
def _postgres(recorder: PostgresApplicationRecorder) -> Iterator[OneTransactionWriter]:
    datastore = recorder.datastore
    table = SQL("{schema}.{table}").format(
        schema=Identifier(datastore.schema), table=Identifier(recorder.events_table_name)
    )
    with datastore.get_connection() as connection, connection.transaction(), connection.cursor() as cursor:
        recorder._lock_table(cursor)

        def count() -> int:
            cursor.execute(SQL("SELECT COUNT(*) AS rows FROM {table}").format(table=table))
            return int(cursor.fetchone()["rows"])

        if count() == 0:
            # setval is not transactional, but the table is empty and locked against
            # every writer, so nothing can hold or draw an id meanwhile.
            qualified = f'"{datastore.schema}"."{recorder.events_table_name}"'
            cursor.execute("SELECT setval(pg_get_serial_sequence(%s, 'notification_id'), 1, false)", (qualified,))

        if datastore.enable_db_functions:
            statement = recorder.sql_invoke_pg_function_insert_events  # type: ignore[attr-defined]

            def insert(batch: Sequence[StoredEvent]) -> None:
                rows = [
                    recorder.construct_pg_stored_event(e.originator_id, e.originator_version, e.topic, e.state)
                    for e in batch
                ]
                cursor.execute(statement, (rows,), prepare=True)
                cursor.fetchall()

        else:

            def insert(batch: Sequence[StoredEvent]) -> None:
                recorder._insert_stored_events(cursor, batch)

        yield OneTransactionWriter(insert, count)


@contextmanager
def _in_memory(recorder: Any) -> Iterator[OneTransactionWriter]:
    pending: list[StoredEvent] = []
    writer = OneTransactionWriter(pending.extend, lambda: (recorder.max_notification_id() or 0) + len(pending))
    yield writer
    recorder.insert_events(pending)
