"""The write side: an eventsourcing Application whose methods are the ledger's verbs.

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
import random
import re
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from functools import cached_property
from typing import Any, TypeVar

from eventsourcing.application import AggregateNotFoundError, Application
from eventsourcing.domain import Aggregate, Snapshot
from eventsourcing.persistence import OperationalError, RecordConflictError

import stakeledger.domain.service.apikeys  # noqa: F401 - registers the ApiKey aggregate's stable topics
from stakeledger.domain.errors import (
    AccountExistsError,
    AlreadyInitialisedError,
    CommandConflictError,
    ConcurrencyError,
    InvalidInputError,
    NotInitialisedError,
    UnknownAccountError,
)
from stakeledger.domain.model.accounts import TREASURY, Account, account_uuid, agent_account_id
from stakeledger.domain.model.settings import LEDGER_SETTINGS_ID, CommandRecord, LedgerSettings, command_uuid
from stakeledger.domain.rules.money import DEFAULT_DECIMALS, MAX_DECIMALS, check_units
from stakeledger.domain.service.clock import Clock, SystemClock
from stakeledger.domain.service.ids import IdFactory, random_id
from stakeledger.domain.service.risk import RiskCommands
from stakeledger.domain.service.settlement import SettlementCommands
from stakeledger.domain.service.trading import MarketCommands
from stakeledger.domain.service.unit_of_work import UnitOfWork

T = TypeVar("T")

MAX_ATTEMPTS = 12
SNAPSHOT_INTERVAL = 256
MAX_BATCH = 10_000
_USER_REASON = re.compile(r"^transfer(:[a-z0-9_\-]{1,40})?\Z")


@dataclass(frozen=True)
class TransferRequest:
    debit_account: str
    credit_account: str
    amount_units: int
    reason: str = "transfer"


def payload_hash(payload: dict[str, Any]) -> str:
    canonical = json.dumps(payload, sort_keys=True, separators=(",", ":"), default=str)
    return hashlib.sha256(canonical.encode()).hexdigest()


def check_decimals(decimals: int) -> int:
    """A ledger's fractional digits: an integer from 0 to MAX_DECIMALS."""
    if isinstance(decimals, bool) or not isinstance(decimals, int) or not 0 <= decimals <= MAX_DECIMALS:
        raise InvalidInputError(f"decimals must be an integer from 0 to {MAX_DECIMALS}, got {decimals!r}")
    return decimals


class StakeLedger(MarketCommands, SettlementCommands, RiskCommands, Application):
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
        digest = payload_hash({"command": command, **(payload or {})})
        for attempt in range(MAX_ATTEMPTS):
            if command_id is not None:
                first = self._first_result(command_id, digest)
                if first is not None:
                    return first
            unit = UnitOfWork(self, self.clock.now(), self.new_id)
            result = decide(unit)
            if command_id is not None:
                unit.add(
                    CommandRecord._create(
                        CommandRecord.Recorded,
                        id=command_uuid(command_id),
                        timestamp=unit.at,
                        command_id=command_id,
                        command=command,
                        payload_hash=digest,
                        result=result,
                    )
                )
            changed = unit.aggregates()
            try:
                self.save(*changed)
            except (RecordConflictError, OperationalError):
                # Another writer saved one of these aggregates first (or held the
                # SQLite write lock past its timeout): decide again on fresh state.
                time.sleep(random.uniform(0, 0.005 * 2 ** min(attempt, 6)))
                continue
            self._snapshot(unit)
            self._remember(changed)
            return result
        raise ConcurrencyError(f"{command}: gave up after {MAX_ATTEMPTS} conflicting attempts; try again")

    def _first_result(self, command_id: str, digest: str) -> dict[str, Any] | None:
        if not command_id or len(command_id) > 200:
            raise InvalidInputError("command id must be 1-200 characters")
        try:
            record: CommandRecord = self.repository.get(command_uuid(command_id))
        except AggregateNotFoundError:
            return None
        if record.payload_hash != digest:
            raise CommandConflictError(
                f"command id {command_id!r} was already used for a different {record.command} command"
            )
        return record.result

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

    # Commands ----------------------------------------------------------------------------

    def initialise(self, decimals: int = DEFAULT_DECIMALS, name: str = "stakeledger") -> dict[str, Any]:
        check_decimals(decimals)
        if self.is_initialised():
            raise AlreadyInitialisedError(f"this ledger is already initialised with {self.decimals} decimals")

        def decide(unit: UnitOfWork) -> dict[str, Any]:
            unit.add(
                LedgerSettings._create(
                    LedgerSettings.Initialised,
                    id=LEDGER_SETTINGS_ID,
                    timestamp=unit.at,
                    decimals=decimals,
                    name=name,
                )
            )
            unit.add(Account.open(TREASURY, unit.at))
            return {"decimals": decimals, "name": name}

        try:
            return self.execute("init", decide)
        finally:
            self.__dict__.pop("settings", None)

    def open_account(self, name: str, *, command_id: str | None = None) -> dict[str, Any]:
        account_id = agent_account_id(name)
        self.settings  # noqa: B018 - refuse before writing when the ledger is not initialised

        def decide(unit: UnitOfWork) -> dict[str, Any]:
            if unit.find(account_uuid(account_id), Account) is not None:
                raise AccountExistsError(f"account {account_id!r} already exists")
            unit.add(Account.open(account_id, unit.at))
            return {"account": account_id}

        return self.execute("account.open", decide, payload={"account": account_id}, command_id=command_id)

    def mint(self, name: str, amount_units: int, *, command_id: str | None = None) -> dict[str, Any]:
        return self._move(TREASURY, agent_account_id(name), amount_units, "mint", command_id)

    def burn(self, name: str, amount_units: int, *, command_id: str | None = None) -> dict[str, Any]:
        return self._move(agent_account_id(name), TREASURY, amount_units, "burn", command_id)

    def transfer(
        self,
        source: str,
        destination: str,
        amount_units: int,
        *,
        reason: str = "transfer",
        command_id: str | None = None,
    ) -> dict[str, Any]:
        if not _USER_REASON.match(reason or ""):
            raise InvalidInputError(
                f"reason must be 'transfer' or 'transfer:<label>' (other codes are the ledger's own), got {reason!r}"
            )
        return self._move(agent_account_id(source), agent_account_id(destination), amount_units, reason, command_id)

    def _move(self, debit: str, credit: str, amount_units: int, reason: str, command_id: str | None) -> dict[str, Any]:
        check_units(amount_units)
        self.settings  # noqa: B018

        def decide(unit: UnitOfWork) -> dict[str, Any]:
            transfer = unit.post(debit, credit, amount_units, reason)
            return {
                "transfer_id": transfer.transfer_id,
                "from": debit,
                "to": credit,
                "amount_units": str(amount_units),
                "reason": reason,
            }

        payload = {"from": debit, "to": credit, "amount_units": str(amount_units), "reason": reason}
        return self.execute(reason, decide, payload=payload, command_id=command_id)

    def transfer_many(self, requests: Sequence[TransferRequest], *, command_id: str | None = None) -> dict[str, Any]:
        """Post many agent-to-agent transfers in one transaction: all of them, or none."""
        if not requests:
            raise InvalidInputError("a batch needs at least one transfer")
        if len(requests) > MAX_BATCH:
            raise InvalidInputError(f"a batch holds at most {MAX_BATCH} transfers, got {len(requests)}")
        for request in requests:
            agent_account_id(request.debit_account)
            agent_account_id(request.credit_account)
            check_units(request.amount_units)
            if request.reason != "transfer":
                raise InvalidInputError(f"batched transfers use reason 'transfer', got {request.reason!r}")
        self.settings  # noqa: B018

        def decide(unit: UnitOfWork) -> dict[str, Any]:
            ids = [unit.post(r.debit_account, r.credit_account, r.amount_units, r.reason).transfer_id for r in requests]
            return {"transfer_ids": ids}

        payload = {"transfers": [[r.debit_account, r.credit_account, str(r.amount_units)] for r in requests]}
        return self.execute("transfer.batch", decide, payload=payload, command_id=command_id)
