"""The SQLite store's connections: the ledger's pool (statements kept prepared) with the
library's settings otherwise: WAL on a file, the URL's lock timeout, rows by column name."""

from __future__ import annotations

import sqlite3

from stakeledger.adapters.persistence.recorders import STATEMENT_CACHE_SIZE, SQLiteLedgerConnectionPool
from stakeledger.adapters.persistence.store_url import open_ledger
from stakeledger.domain.service.clock import ManualClock


def test_sqlite_store_when_opened_then_its_connections_come_from_the_ledger_pool_in_wal_mode(tmp_path):
    app = open_ledger(f"sqlite:///{tmp_path / 'ledger.db'}", clock=ManualClock())
    pool = app.recorder.datastore.pool
    assert isinstance(pool, SQLiteLedgerConnectionPool)
    assert STATEMENT_CACHE_SIZE > 1
    assert pool.lock_timeout == 30
    app.initialise(decimals=18)
    app.open_account("alice")
    with app.recorder.datastore.transaction(commit=False) as cursor:
        cursor.execute("PRAGMA journal_mode")
        assert cursor.fetchone()[0] == "wal"
        cursor.execute("SELECT originator_version FROM stored_events LIMIT 1")
        assert isinstance(cursor.fetchone(), sqlite3.Row)
    assert sqlite3.connect(tmp_path / "ledger.db").execute("PRAGMA journal_mode").fetchone()[0] == "wal"


def test_sqlite_store_when_two_ledgers_share_a_file_then_each_reads_the_others_commits(tmp_path):
    url = f"sqlite:///{tmp_path / 'ledger.db'}"
    first = open_ledger(url, clock=ManualClock())
    first.initialise(decimals=18)
    first.open_account("alice")
    first.mint("alice", 5)
    second = open_ledger(url, clock=ManualClock())
    for _ in range(3):  # the same statements again, prepared once per connection
        second.mint("alice", 1)
        assert first.balance_of("alice") == second.balance_of("alice")
    assert first.balance_of("alice") == 8


def test_sqlite_store_when_in_memory_then_it_works_without_wal():
    app = open_ledger("sqlite:///:memory:", clock=ManualClock())
    app.initialise(decimals=18)
    app.open_account("alice")
    app.mint("alice", 7)
    assert app.balance_of("alice") == 7
    assert not app.recorder.datastore.pool.is_journal_mode_wal
