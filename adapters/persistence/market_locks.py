"""Writers to one market take turns across processes too (the API's workers, the CLI).

The ledger's MarketQueue (domain/service/ledger.py) orders the writers of one market inside
a process; these locks order the processes, so two workers' writers to one hot market do
not decide on the same artifact version and retry each other's conflicts. They only order:
correctness still comes from the optimistic version check on save, so a lock that cannot be
had in time (or a store that fails while taking it) lets the writer go on without it.

- PostgreSQL: a session advisory lock per market (keyed by schema and market), taken on one
  of the store's pooled connections and held while the command decides and saves (on other
  connections). PostgreSQL queues waiters on a lock in arrival order.
- SQLite: a POSIX record lock on one byte of a lock file beside the database, the byte
  chosen by the market's hash, polled for (a blocking lockf cannot time out). Record locks
  belong to the process, which is what is wanted: the MarketQueue already gives one thread
  of the process the market's turn. A waiting writer also holds a shared lock on a second
  byte, and a process that has had the market TURNS_IN_A_ROW times lets a waiting process go
  first: without that, it hands the market from writer to writer before the other's next
  poll, and the other's writers wait until its queue runs dry (the hot market's latency tail).
"""

from __future__ import annotations

import fcntl
import hashlib
import os
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import psycopg
import psycopg_pool

# Longest wait for another process's writer: far above a command's time, short enough that a
# stuck holder delays the market by seconds, not forever (its commands still conflict safely).
WAIT_SECONDS = 10
# At most this many of the store's pooled connections (12 per process) hold or wait for a
# market lock at once: one per market being written at once in this process. A writer that
# finds none free, or no pooled connection within POOL_WAIT_SECONDS, goes on without the lock.
LOCK_CONNECTIONS = 3
POOL_WAIT_SECONDS = 0.05
LOCK_BYTES = 1 << 30  # the SQLite lock file's byte range, never written
# A waiting writer polls the lock file's bytes, first after 0.2 ms, then no less often than
# every 0.5 ms: its turn then starts within half a millisecond of the last writer's end.
POLL_FIRST_SECONDS = 0.0002
POLL_LONGEST_SECONDS = 0.0005
# On SQLite a process that has had a market this many turns in a row lets a writer of another
# process that waits go first. One turn each costs throughput (every turn then reads the other
# process's events first); four kept a hot market's p99 at 2.5-2.7x its p50 for 5 % fewer
# orders than never giving way (p99 9-15x p50), two processes of four threads each.
TURNS_IN_A_ROW = 4


# The locks this thread holds, by (store, market), whichever ledger instance took them: a
# thread that holds a market's lock never waits for it again (two ledgers over one store in
# one thread, the second writing inside the first's command, would otherwise wait out
# WAIT_SECONDS for itself).
_held = threading.local()


@contextmanager
def _once_per_thread(lock: tuple[str, str, int], take: Any) -> Iterator[bool]:
    held: set[tuple[str, str, int]] = _held.__dict__.setdefault("locks", set())
    if lock in held:
        yield True
        return
    with take() as taken:
        if taken:
            held.add(lock)
        try:
            yield taken
        finally:
            held.discard(lock)


def _key(namespace: str, market: str) -> int:
    """A signed 64-bit key for the market: PostgreSQL's advisory lock key, or a byte offset."""
    digest = hashlib.blake2b(f"stakeledger:market:{namespace}:{market}".encode(), digest_size=8).digest()
    return int.from_bytes(digest, "big", signed=True)


class PostgresMarketLocks:
    def __init__(self, datastore: Any) -> None:
        self._schema = datastore.schema
        self._pool = datastore.pool  # the store's own: locks open no connections of their own
        self._holders = threading.BoundedSemaphore(LOCK_CONNECTIONS)

    def hold(self, market: str) -> Any:
        """Hold the market's lock while the block runs; yields whether it is held."""
        key = _key(self._schema, market)
        return _once_per_thread(("postgres", self._schema, key), lambda: self._take(key))

    @contextmanager
    def _take(self, key: int) -> Iterator[bool]:
        if not self._holders.acquire(blocking=False):
            yield False  # enough connections already wait or hold: leave the rest to the commands
            return
        try:
            connection = self._pool.getconn(timeout=POOL_WAIT_SECONDS)
        except (psycopg_pool.PoolTimeout, psycopg.Error):
            self._holders.release()
            yield False
            return
        held = False
        try:
            try:
                # Uncontended (the usual case) one round trip; else wait in PostgreSQL's queue.
                row = connection.execute("SELECT pg_try_advisory_lock(%s) AS held", (key,)).fetchone()
                held = bool(row["held"] if isinstance(row, dict) else row[0])  # the store's rows are dicts
                if not held:
                    connection.execute(f"SET lock_timeout = '{WAIT_SECONDS}s'")
                    connection.execute("SELECT pg_advisory_lock(%s)", (key,))
                    held = True
                    connection.execute("RESET lock_timeout")
            except psycopg.Error:
                pass  # lock_timeout or a lost connection: go on without it
            yield held
        finally:
            try:
                if held:
                    connection.execute("SELECT pg_advisory_unlock(%s)", (key,))
            except psycopg.Error:
                pass  # the session is gone, and its locks with it
            self._pool.putconn(connection)
            self._holders.release()

    def close(self) -> None:
        """Nothing of its own to close: the connections are the store's."""


class FileMarketLocks:
    def __init__(self, database_path: str) -> None:
        self._path = f"{database_path}.markets.lock"
        self._namespace = os.path.abspath(database_path)
        self._fd: int | None = None
        self._guard = threading.Lock()
        # Turns this process has had in a row, by market byte (only its writers count them).
        self._turns: dict[int, int] = {}

    def _file(self) -> int:
        with self._guard:
            if self._fd is None:
                self._fd = os.open(self._path, os.O_RDWR | os.O_CREAT, 0o600)
            return self._fd

    def hold(self, market: str) -> Any:
        """Hold the market's byte while the block runs; yields whether it is held."""
        offset = _key(self._namespace, market) % LOCK_BYTES
        return _once_per_thread(("file", self._namespace, offset), lambda: self._take(offset))

    @contextmanager
    def _take(self, offset: int) -> Iterator[bool]:
        try:
            fd = self._file()
        except OSError:
            yield False
            return
        deadline = time.monotonic() + WAIT_SECONDS
        waiting = LOCK_BYTES + offset  # the market's second byte: "a writer waits for it"
        if self._turns.get(offset, 0) >= TURNS_IN_A_ROW and _held_by_another(fd, waiting):
            # This process has had the market for its turns in a row and another waits:
            # let that one go first (this process's next writer is otherwise ready before
            # the other's next poll, every time).
            self._turns[offset] = 0
            _poll(lambda: not _held_by_another(fd, waiting), deadline)
        if _try_lock(fd, fcntl.LOCK_EX, offset):
            self._turns[offset] = self._turns.get(offset, 0) + 1
        else:
            # Say this process waits (a shared lock: several may wait at once), then poll.
            announced = _poll(lambda: _try_lock(fd, fcntl.LOCK_SH, waiting), deadline)
            taken = _poll(lambda: _try_lock(fd, fcntl.LOCK_EX, offset), deadline)
            if announced:
                _unlock(fd, waiting)
            if not taken:
                yield False
                return
            self._turns[offset] = 1
        try:
            yield True
        finally:
            _unlock(fd, offset)

    def close(self) -> None:
        with self._guard:
            if self._fd is not None:
                os.close(self._fd)  # closing drops every record lock this process held on it
                self._fd = None


def _try_lock(fd: int, kind: int, offset: int) -> bool:
    try:
        fcntl.lockf(fd, kind | fcntl.LOCK_NB, 1, offset)
        return True
    except OSError:
        return False


def _unlock(fd: int, offset: int) -> None:
    try:
        fcntl.lockf(fd, fcntl.LOCK_UN, 1, offset)
    except OSError:
        pass


def _held_by_another(fd: int, offset: int) -> bool:
    """Whether another process holds a lock on the byte (this process's own never conflict:
    record locks belong to the process, so taking and dropping one here tests the others)."""
    if not _try_lock(fd, fcntl.LOCK_EX, offset):
        return True
    _unlock(fd, offset)
    return False


def _poll(done: Any, deadline: float) -> bool:
    """Call ``done`` until it returns true or the deadline passes (a blocking lockf cannot
    time out); whether it did."""
    pause = POLL_FIRST_SECONDS
    while not done():
        if time.monotonic() > deadline:
            return False
        time.sleep(pause)
        pause = min(pause * 2, POLL_LONGEST_SECONDS)
    return True
