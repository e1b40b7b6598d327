"""Application recorders that can also read many aggregates' events in one query.

Settling an artifact loads every position on it: 10,000 single-aggregate selects cost
more than the settlement's decisions. These subclasses of eventsourcing's recorders add
``select_events_many``; the store URL picks them by configuration
(``APPLICATION_RECORDER_TOPIC``), and a recorder without it is read one id at a time.
"""

from __future__ import annotations

from collections.abc import Sequence
from uuid import UUID

from eventsourcing.persistence import StoredEvent
from eventsourcing.postgres import PostgresApplicationRecorder
from eventsourcing.sqlite import SQLiteApplicationRecorder
from psycopg.sql import SQL, Identifier

# Bounded so a statement's parameter list stays far below both databases' limits.
IDS_PER_QUERY = 500


class SQLiteLedgerRecorder(SQLiteApplicationRecorder):
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
                    StoredEvent(self.convert_originator_id(row["originator_id"]), row["originator_version"],
                                row["topic"], row["state"])  # fmt: skip
                    for row in cursor.fetchall()
                )
        return events


class PostgresLedgerRecorder(PostgresApplicationRecorder):
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
