"""The core of the write side: the command loop and the reads every verb builds on.

Each command runs as get -> decide -> save inside ``execute``: it gets a fresh unit
of work, lets the command decide its events, then saves every touched aggregate in
one transaction. A concurrent writer that saved first makes the save conflict on an
aggregate version; the command is then re-run from fresh state, a bounded number of
times. A client command id makes a command idempotent: the first result is saved with
the effects and returned again for a retry with the same payload.
"""

from __future__ import annotations

import hashlib
import json
import os
import random
import threading
import time
from collections import deque
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from functools import cached_property
from typing import Any, TypeVar

from eventsourcing.application import AggregateNotFoundError, Application, ProcessingEvent
from eventsourcing.domain import Aggregate, Snapshot
from eventsourcing.persistence import OperationalError, RecordConflictError

from stakeledger.domain.decisions.unit_of_work import UnitOfWork, replay
from stakeledger.domain.errors import (
    ClockBehindError,
    CommandConflictError,
    ConcurrencyError,
    InvalidInputError,
    LedgerError,
    NotInitialisedError,
    UnknownAccountError,
)
from stakeledger.domain.model.accounts import TREASURY, Account, account_uuid
from stakeledger.domain.model.settings import LEDGER_SETTINGS_ID, CommandRecord, LedgerSettings, command_uuid
from stakeledger.domain.service.clock import Clock, SystemClock
from stakeledger.domain.service.ids import IdFactory, random_id

T = TypeVar("T")

MAX_ATTEMPTS = 12
SNAPSHOT_INTERVAL = 256
COMMIT_CHECKS = 5  # tries to learn whether a save whose answer was lost committed


def _back_off(attempt: int) -> None:
    """Sleep a random moment, doubling with each attempt, so racing writers spread out."""
    time.sleep(random.uniform(0, 0.005 * 2 ** min(attempt, 6)))


def _queued_back_off(attempt: int) -> None:
    """The pause of a writer that has its market's turn in this process: it can only have lost
    to a writer in another process, which has committed, so a short jitter is enough (the
    doubling back-off spreads a crowd out, and the queue leaves no crowd)."""
    time.sleep(random.uniform(0, 0.002 * (attempt + 1)))


def _first_pending_event(aggregates: Any) -> Any:
    """The first event a save of these aggregates will write, or None when there is none."""
    for aggregate in aggregates:
        if aggregate.pending_events:
            return aggregate.pending_events[0]
    return None


class MarketQueue:
    """Writers to one market in this process take turns, in the order they arrived.

    Commands on one market all save its artifact, so two of them deciding at once in one
    process would conflict and one would retry after a random back-off: under load those
    retries are the latency tail. Queued, a writer decides on state the one before it left,
    and only writers in other processes can still conflict with it (they retry as before).
    """

    def __init__(self, across_processes: Any = None) -> None:
        self._guard = threading.Lock()
        self._queues: dict[str, deque[threading.Lock]] = {}
        self._held = threading.local()
        # The store's own turns between processes, if it has them: an object whose
        # ``hold(market)`` is a context manager (adapters/persistence/market_locks.py).
        self.across_processes = across_processes

    @contextmanager
    def turn(self, market: str | None) -> Iterator[None]:
        held: set[str] = self._held.__dict__.setdefault("markets", set())
        if market is None or market in held:  # no market, or this thread already has its turn
            yield
            return
        mine = threading.Lock()
        mine.acquire()
        with self._guard:
            queue = self._queues.setdefault(market, deque())
            queue.append(mine)
            first = len(queue) == 1
        if not first:
            mine.acquire()  # released by the writer before this one when it is done
        held.add(market)
        try:
            if self.across_processes is None:
                yield
            else:
                with self.across_processes.hold(market):
                    yield
        finally:
            held.discard(market)
            with self._guard:
                queue.popleft()
                if queue:
                    queue[0].release()
                else:
                    del self._queues[market]


def _market_of(payload: dict[str, Any] | None) -> str | None:
    """The market a command writes to, when its payload names one (an artifact, or an
    order or position id "ART/o3", "ART/p17"); None for everything else."""
    if not payload:
        return None
    for key in ("artifact", "artifact_id"):
        value = payload.get(key)
        if isinstance(value, str):
            return value
    for key in ("position", "order"):
        value = payload.get(key)
        if isinstance(value, str) and "/" in value:
            return value.partition("/")[0]
    return None


def payload_hash(payload: dict[str, Any]) -> str:
    canonical = json.dumps(payload, sort_keys=True, separators=(",", ":"), default=str)
    return hashlib.sha256(canonical.encode()).hexdigest()


def check_command_id(command_id: str) -> str:
    if not command_id or len(command_id) > 200:
        raise InvalidInputError("command id must be 1-200 characters")
    return command_id


class LedgerCore(Application):
    """The command loop, settings and balances; the verbs are mixins on top (see application.py)."""

    name = "stakeledger"
    is_snapshotting_enabled = True
    # Long-running processes (the API, workers, benchmarks) keep recently used aggregates
    # and fast-forward them with one query instead of replaying their histories. Stored
    # events go through the stable-topic mapper, named by configuration: the domain never
    # imports the persistence adapters (open a store with adapters.persistence.open_ledger).
    env = {
        "AGGREGATE_CACHE_MAXSIZE": "4096",
        "MAPPER_TOPIC": "stakeledger.adapters.persistence.mapper:StableTopicMapper",
    }

    def __init__(
        self,
        env: dict[str, str] | None = None,
        *,
        clock: Clock | None = None,
        new_id: IdFactory | None = None,
    ) -> None:
        super().__init__(env)
        self.clock: Clock = clock or SystemClock()
        self.new_id: IdFactory = new_id or random_id
        # STAKELEDGER_MARKET_QUEUE=0 turns the queue off: bench/api.py measures both ways.
        self.market_queue: MarketQueue | None = None
        if os.environ.get("STAKELEDGER_MARKET_QUEUE", "1") != "0":
            locks = getattr(self.factory, "market_locks", None)  # the store's, across processes
            self.market_queue = MarketQueue(locks() if locks is not None else None)

    def close(self) -> None:
        if self.market_queue is not None and self.market_queue.across_processes is not None:
            self.market_queue.across_processes.close()
        super().close()

    # The command loop ------------------------------------------------------------------

    def execute(
        self,
        command: str,
        decide: Callable[[UnitOfWork], dict[str, Any]],
        *,
        payload: dict[str, Any] | None = None,
        command_id: str | None = None,
    ) -> dict[str, Any]:
        """Run ``decide`` against fresh state and save what it changed, all or nothing."""
        market = _market_of(payload) if self.market_queue is not None else None
        if market is None:
            return self._execute(command, decide, payload, command_id, _back_off)
        with self.market_queue.turn(market):
            return self._execute(command, decide, payload, command_id, _queued_back_off)

    def _execute(
        self,
        command: str,
        decide: Callable[[UnitOfWork], dict[str, Any]],
        payload: dict[str, Any] | None,
        command_id: str | None,
        back_off: Callable[[int], None],
    ) -> dict[str, Any]:
        # Only a command id's record keeps the payload's hash: a command without one skips hashing it.
        record_id, digest = None, ""
        if command_id is not None:
            record_id = command_uuid(check_command_id(command_id))
            digest = payload_hash({"command": command, **(payload or {})})
        for attempt in range(MAX_ATTEMPTS):
            unit = UnitOfWork(self, self.clock.now(), self.new_id, command_record_id=record_id)
            # A command id seen before gets its first result, whatever deciding again gives. It is
            # looked up after deciding: a trade's prefetch asks about it in the query it makes
            # anyway, so a new id (the usual case) costs no query of its own.
            try:
                result = decide(unit)
            except LedgerError:
                first = self._first_result(unit, digest)
                if first is not None:
                    return first
                # A refusal computed from a torn view (aggregates read around another
                # writer's commit) is no refusal: decide again, as on a version conflict.
                if self._reads_are_current(unit):
                    raise
                back_off(attempt)
                continue
            first = self._first_result(unit, digest)
            if first is not None:
                return first
            if unit.refused and not self._reads_are_current(unit):
                back_off(attempt)  # a recorded rejection must come from a consistent view too
                continue
            if not self._clock_is_in_order(unit):
                continue
            if command_id is not None:
                unit.add(
                    CommandRecord._create(
                        CommandRecord.Recorded,
                        id=record_id,
                        timestamp=unit.at,
                        command_id=command_id,
                        command=command,
                        payload_hash=digest,
                        result=result,
                    )
                )
            changed = unit.aggregates()
            witness = _first_pending_event(changed)
            try:
                self._save_changed(changed)
            except RecordConflictError:
                # Another writer saved one of these aggregates first: decide again on fresh state.
                back_off(attempt)
                continue
            except OperationalError:
                # The store failed: a lock held past its timeout (nothing written) or a
                # connection lost around COMMIT (perhaps written). Deciding again after a
                # commit that landed would apply the command twice, so ask the store first.
                if not self._was_committed(witness):
                    back_off(attempt)
                    continue
            self._snapshot(unit)
            self._remember(changed)
            return result
        raise ConcurrencyError(f"{command}: gave up after {MAX_ATTEMPTS} conflicting attempts; try again")

    def _was_committed(self, witness: Any) -> bool:
        """Whether the save that raised holds in the store: its first event is there, as written.

        One transaction writes every event of a command, so one event tells. A store that
        cannot answer after a few tries is reported, never guessed at.
        """
        if witness is None:
            return False
        version = witness.originator_version
        for attempt in range(COMMIT_CHECKS):
            try:
                found = self.recorder.select_events(witness.originator_id, gt=version - 1, lte=version, limit=1)
            except OperationalError:
                if attempt == COMMIT_CHECKS - 1:
                    raise
                _back_off(attempt)
                continue
            return bool(found) and found[0].state == self.mapper.to_stored_event(witness).state
        return False  # pragma: no cover - the loop returns or raises

    @staticmethod
    def _reads_are_current(unit: UnitOfWork) -> bool:
        try:
            return unit.reads_are_current()
        except OperationalError:
            return False  # the store was busy: treat the view as unproven and decide again

    def _clock_is_in_order(self, unit: UnitOfWork) -> bool:
        """Whether the unit's time is at or after the last event of every aggregate it writes.

        A unit takes its time before it loads anything, so another writer may commit a later
        event in between with a clock that is not ahead at all: when the clock, read again,
        has passed that event, the command is simply decided again at the new time. Only a
        clock that still reads earlier is behind, and the command is refused."""
        latest = unit.last_event_after_start()
        if latest is None:
            return True
        now = self.clock.now()
        if now >= latest:
            return False
        raise ClockBehindError(
            f"this writer's clock reads {now.isoformat()}, before the last recorded event "
            f"({latest.isoformat()}) of what the command would change: set the clock right and try again"
        )

    def _first_result(self, unit: UnitOfWork, digest: str) -> dict[str, Any] | None:
        """The result recorded under the unit's command id, if the id was used before."""
        record_id = unit.command_record_id
        if record_id is None or unit.knows_absent(record_id):
            return None
        # A record is one event: read it directly, one query, where the repository would
        # first look for a snapshot (a second round trip for every new command id).
        record: CommandRecord | None = replay(None, self.events.get(record_id))
        if record is None:
            return None
        if record.payload_hash != digest:
            raise CommandConflictError(
                f"command id {record.command_id!r} was already used for a different {record.command} command"
            )
        return record.result

    def _save_changed(self, changed: list[Aggregate]) -> None:
        """``Application.save`` of the aggregates one command changed, in one transaction.

        The library's ``save`` takes events and aggregates alike and tells them apart with two
        runtime-protocol ``isinstance`` checks per object, which cost more than encoding the
        object's events; everything a command saves is an aggregate, so they are collected directly."""
        processing_event: ProcessingEvent[Any] = ProcessingEvent()
        for aggregate in changed:
            processing_event.events.extend(aggregate.collect_events())
            processing_event.aggregates[aggregate.id] = aggregate
        recordings = self._record(processing_event)
        self._take_snapshots(processing_event)
        self._notify(recordings)

    def _remember(self, saved: list[Aggregate]) -> None:
        """Put what was just saved in the aggregate cache: the next command then reads
        no events back that this process wrote itself (another process's events are
        still read, by the cache's fast-forward). Short histories skip the cache."""
        cache = self.repository.cache
        if cache is None:
            return
        for aggregate in saved:
            if not getattr(type(aggregate), "short_history", False):
                cache.put(aggregate.id, aggregate)

    def _snapshot(self, unit: UnitOfWork) -> None:
        # Snapshots are a cache for loading long-lived accounts (the treasury, pools);
        # they are taken from the in-memory aggregate, outside the command's transaction.
        if self.snapshots is None:
            return
        for aggregate in unit.crossed_snapshot_boundary(SNAPSHOT_INTERVAL):
            self.snapshots.put([Snapshot.take(aggregate)])

    # Reading -----------------------------------------------------------------------------

    @cached_property
    def settings(self) -> LedgerSettings:
        try:
            return self.repository.get(LEDGER_SETTINGS_ID)
        except AggregateNotFoundError:
            raise NotInitialisedError("this ledger is not initialised: run 'stakeledger init' first") from None

    @property
    def decimals(self) -> int:
        return self.settings.decimals

    def is_initialised(self) -> bool:
        try:
            self.settings  # noqa: B018 - loading the settings is the question
        except NotInitialisedError:
            return False
        return True

    def get_account(self, account_id: str) -> Account:
        try:
            account = self.repository.get(account_uuid(account_id))
        except AggregateNotFoundError:
            raise UnknownAccountError(f"unknown account {account_id!r}") from None
        assert isinstance(account, Account)
        return account

    def balance_of(self, account_id: str) -> int:
        return self.get_account(account_id).balance_units

    def total_supply(self) -> int:
        return -self.get_account(TREASURY).balance_units
