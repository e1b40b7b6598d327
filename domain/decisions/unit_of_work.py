"""A unit of work: the aggregates one command loads and changes, saved together.

A command that touches several aggregates must save them in one
``Application.save(...)`` call, all or nothing. The unit of work loads each aggregate
at most once, so a batch of transfers touching one account sees its own earlier
effects, and hands the whole set to a single save.
"""

from __future__ import annotations

import copy
from collections.abc import Callable, Iterable
from datetime import datetime
from typing import Any, Protocol, TypeVar
from uuid import UUID

from eventsourcing.application import AggregateNotFoundError
from eventsourcing.domain import Aggregate

from stakeledger.domain.errors import InvalidInputError, LedgerError, SelfTransferError, UnknownAccountError
from stakeledger.domain.model.accounts import AGENT, Account, Transfer, account_kind, account_uuid
from stakeledger.domain.rules.money import check_units
from stakeledger.domain.vocabulary import Reason, reason_code

A = TypeVar("A", bound=Aggregate)

# Ids per ``prefetch`` query: each is a part of a compound SELECT, and SQLite allows 500.
PREFETCH_PER_QUERY = 200


class EventStore(Protocol):
    """What a unit of work reads through: the eventsourcing Application of the service layer."""

    recorder: Any
    mapper: Any
    events: Any
    repository: Any

    @property
    def decimals(self) -> int: ...


def replay(aggregate: Aggregate | None, events: Iterable[Any]) -> Aggregate | None:
    """Fold events into an aggregate. The library's default projector re-checks a runtime
    Protocol on every event, which costs more than the mutation itself on long histories."""
    for event in events:
        aggregate = event.mutate(aggregate)
    return aggregate


class UnitOfWork:
    def __init__(
        self, app: EventStore, at: datetime, new_id: Callable[[], str], *, command_record_id: UUID | None = None
    ) -> None:
        self.app = app
        self.at = at
        self.new_id = new_id
        # The record a command id is saved under: ``prefetch`` asks whether it exists, in its
        # own query, so the command loop need not ask again when it does not.
        self.command_record_id = command_record_id
        self._aggregates: dict[UUID, Aggregate] = {}
        self._loaded_versions: dict[UUID, int] = {}
        # When each loaded aggregate's last event happened: a command may not write before it.
        self._loaded_modified_on: dict[UUID, datetime] = {}
        self._missing: set[UUID] = set()
        self.prefetched: set[Any] = set()  # what ``prefetch`` callers have asked for already
        self.refused = False

    @property
    def decimals(self) -> int:
        """The ledger's fractional digits, fixed at ``init``."""
        return self.app.decimals

    # Loading -------------------------------------------------------------------------

    def find(self, aggregate_id: UUID, kind: type[A]) -> A | None:
        """The aggregate with this id, loaded once per unit of work; None if absent."""
        aggregate = self._aggregates.get(aggregate_id)
        if aggregate is None:
            if aggregate_id in self._missing:
                return None
            try:
                aggregate = self._load(aggregate_id, kind)
            except AggregateNotFoundError:
                # Remember the miss: risk checks ask "has this agent a portfolio?" per order.
                self._missing.add(aggregate_id)
                return None
            self._track_loaded(aggregate)
        if not isinstance(aggregate, kind):
            raise InvalidInputError(f"id {aggregate_id} names a {type(aggregate).__name__}, not a {kind.__name__}")
        return aggregate

    def preload(self, aggregate_ids: list[UUID], kind: type[A]) -> None:
        """Load many short-history aggregates with as few queries as the recorder allows."""
        select_many = getattr(self.app.recorder, "select_events_many", None)
        wanted = [i for i in aggregate_ids if i not in self._aggregates and i not in self._missing]
        if select_many is None or not getattr(kind, "short_history", False) or not wanted:
            return
        to_domain_event = self.app.mapper.to_domain_event
        histories: dict[UUID, list[Any]] = {}
        for stored in select_many(wanted):
            histories.setdefault(stored.originator_id, []).append(to_domain_event(stored))
        for aggregate_id in wanted:
            aggregate = replay(None, histories.get(aggregate_id, ()))
            if aggregate is None:
                self._missing.add(aggregate_id)
                continue
            self._track_loaded(aggregate)

    def prefetch(self, aggregate_ids: Iterable[UUID]) -> None:
        """Bring the aggregates a command is about to read up to date with one query.

        Loading a cached aggregate costs a query for the events written since it was cached
        (by another process, or a command of this one that failed); a market order reads four
        such aggregates, and on PostgreSQL each query is a round trip. Here one query asks, for
        every cached id, for its newer events and, for every id not cached, whether it exists
        at all (an agent without a portfolio is asked about on every order). Ids that exist but
        are not cached are left to ``find``, which uses their snapshots."""
        select_after = getattr(self.app.recorder, "select_events_after", None)
        repository = self.app.repository
        cache = repository.cache
        if select_after is None or cache is None or not repository.fastforward:
            return
        if self.command_record_id is not None:
            aggregate_ids = [*aggregate_ids, self.command_record_id]
        wanted = [i for i in dict.fromkeys(aggregate_ids) if i not in self._aggregates and i not in self._missing]
        for start in range(0, len(wanted), PREFETCH_PER_QUERY):
            self._prefetch(wanted[start : start + PREFETCH_PER_QUERY], cache, select_after)

    def _prefetch(self, wanted: list[UUID], cache: Any, select_after: Callable[..., Any]) -> None:
        cached: dict[UUID, Aggregate] = {}
        for aggregate_id in wanted:
            try:
                cached[aggregate_id] = cache.get(aggregate_id)
            except KeyError:
                pass
        versions = {i: (cached[i].version if i in cached else None) for i in wanted}
        newer, missing = select_after(versions)
        self._missing.update(missing)
        to_domain_event = self.app.mapper.to_domain_event
        histories: dict[UUID, list[Any]] = {}
        for stored in newer:
            histories.setdefault(stored.originator_id, []).append(to_domain_event(stored))
        for aggregate_id, aggregate in cached.items():
            events = histories.get(aggregate_id)
            if events:
                # The cached object is never changed in place: another thread may be copying it.
                aggregate = replay(copy.deepcopy(aggregate), events)
                cache.put(aggregate_id, aggregate)
            self._track_loaded(copy.deepcopy(aggregate))

    def knows_absent(self, aggregate_id: UUID) -> bool:
        """Whether a read of this unit found no aggregate with this id."""
        return aggregate_id in self._missing

    def _track_loaded(self, aggregate: Aggregate) -> None:
        self._aggregates[aggregate.id] = aggregate
        self._loaded_versions[aggregate.id] = aggregate.version
        self._loaded_modified_on[aggregate.id] = aggregate.modified_on

    def _load(self, aggregate_id: UUID, kind: type[A]) -> Aggregate:
        if getattr(kind, "short_history", False):
            # Short histories (positions: a handful of events) skip the snapshot lookup and
            # the cache's deep copy: one query instead of two, and no copy, per aggregate.
            aggregate = replay(None, self.app.events.get(aggregate_id))
            if aggregate is None:
                raise AggregateNotFoundError(aggregate_id)
            return aggregate
        return self.app.repository.get(aggregate_id, projector_func=replay)

    def add(self, aggregate: A) -> A:
        """Track a newly created aggregate so it is saved with the rest."""
        self._missing.discard(aggregate.id)
        self._aggregates.setdefault(aggregate.id, aggregate)
        self._loaded_versions.setdefault(aggregate.id, 0)
        return aggregate

    def account(self, account_id: str) -> Account:
        """An existing account. System accounts (pools, escrows) are opened on first use;
        agent accounts must be opened explicitly."""
        account = self.find(account_uuid(account_id), Account)
        if account is not None:
            return account
        if account_kind(account_id) == AGENT:
            raise UnknownAccountError(f"unknown account {account_id!r}: open it first with 'account open'")
        return self.add(Account.open(account_id, self.at))

    # Moving money ---------------------------------------------------------------------

    def post(
        self, debit_account: str, credit_account: str, amount_units: int, reason: Reason | str, **refs: Any
    ) -> Transfer:
        """Move tokens from one account to another: both sides, or neither."""
        check_units(amount_units)
        if debit_account == credit_account:
            raise SelfTransferError(f"cannot transfer from {debit_account!r} to itself")
        transfer = Transfer(
            transfer_id=self.new_id(),
            debit_account=debit_account,
            credit_account=credit_account,
            amount_units=amount_units,
            reason=reason_code(reason),
            refs={key: str(value) for key, value in refs.items() if value is not None},
        )
        debit, credit = self.account(debit_account), self.account(credit_account)
        # Both sides are checked before either changes: a refused transfer leaves no half.
        decimals = self._message_decimals()
        debit.require_can_send(amount_units, decimals)
        credit.require_can_receive(amount_units, decimals)
        debit.debit(transfer, self.at)
        credit.credit(transfer, self.at)
        return transfer

    def _message_decimals(self) -> int | None:
        """The decimals a refusal's amounts are shown in; None (base units) before ``init``."""
        try:
            return self.decimals
        except LedgerError:
            return None

    # Consistency -----------------------------------------------------------------------

    def note_refusal(self) -> None:
        """Mark this decision as a recorded refusal (a risk rejection): it is saved only if
        every aggregate it read is still current, so it was not computed from a torn view."""
        self.refused = True

    def reads_are_current(self) -> bool:
        """Whether every aggregate this unit read (or found absent) is unchanged in the store.

        The unit loads aggregates one query at a time, so another writer's commit can fall
        between two loads: the unit then holds a torn view (an artifact from before a cancel,
        its escrow account from after). When nothing read has changed since, every read is
        what the store holds now, so the view is consistent."""
        select_events = self.app.recorder.select_events
        for aggregate_id in self._missing:
            if select_events(aggregate_id, limit=1):
                return False
        for aggregate_id, version in self._loaded_versions.items():
            if select_events(aggregate_id, gt=version, limit=1):
                return False
        return True

    def last_event_after_start(self) -> datetime | None:
        """The latest last-event time, among the aggregates this unit would change, that is
        after the unit's own time; None when the unit's time is at or after all of them."""
        written = [aggregate.id for aggregate in self.aggregates()]
        latest = max((self._loaded_modified_on[i] for i in written if i in self._loaded_modified_on), default=None)
        return latest if latest is not None and latest > self.at else None

    # Saving ---------------------------------------------------------------------------

    def aggregates(self) -> list[Aggregate]:
        return [aggregate for aggregate in self._aggregates.values() if aggregate.pending_events]

    def crossed_snapshot_boundary(self, interval: int) -> list[Aggregate]:
        """Aggregates whose version passed a multiple of ``interval`` in this unit of work."""
        return [
            aggregate
            for aggregate_id, aggregate in self._aggregates.items()
            if aggregate.version // interval > self._loaded_versions[aggregate_id] // interval
        ]
