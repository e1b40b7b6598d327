"""The Account aggregate: one balance, changed only by the two sides of a transfer.

Every token movement is a transfer with a debit side and a credit side. Each side is
an event on its own account (``Debited`` / ``Credited``) carrying the same transfer
id, amount, reason and references, so an auditor can pair them up. Only the treasury
may go negative: its balance is minus the total supply.
"""

import re
from dataclasses import dataclass, field
from datetime import datetime
from functools import lru_cache
from typing import Any
from uuid import NAMESPACE_URL, UUID, uuid5

from eventsourcing.domain import Aggregate

from stakeledger.domain.errors import InsufficientFundsError, InvalidInputError, SupplyLimitError, TornReadError
from stakeledger.domain.model.copying import CheapCopy
from stakeledger.domain.model.naming import register_aggregate
from stakeledger.domain.model.types import Name, PositiveUnits, Refs
from stakeledger.domain.rules.money import MAX_UINT256, format_amount
from stakeledger.domain.vocabulary import Reason

TREASURY = "sys:treasury"
FEES = "sys:fees"  # every market's trade fees (one account; statements say which market)
AGENT, TREASURY_KIND, POOL, ESCROW = "agent", "treasury", "pool", "escrow"
ACCOUNT_KINDS = (AGENT, TREASURY_KIND, POOL, ESCROW)
FEES_KIND = "fees"

_NAMESPACE = uuid5(NAMESPACE_URL, "https://stakeledger.invalid/account")
_AGENT_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.\-]{0,63}\Z")


def agent_account_id(name: str) -> str:
    """An agent's account id is its name: letters, digits, '_', '.', '-'; at most 64."""
    if not isinstance(name, str) or not _AGENT_NAME.match(name):
        raise InvalidInputError(
            f"agent name must be 1-64 letters, digits, '_', '.' or '-' (starting with a letter or digit): {name!r}"
        )
    return name


def pool_account_id(artifact_id: str) -> str:
    return f"pool:{artifact_id}"


def bounty_escrow_account_id(bounty_id: str) -> str:
    return f"escrow:bounty:{bounty_id}"


def order_escrow_account_id(artifact_id: str) -> str:
    return f"escrow:orders:{artifact_id}"


def account_kind(account_id: str) -> str:
    if account_id == TREASURY:
        return TREASURY_KIND
    if account_id == FEES:
        return FEES_KIND
    if account_id.startswith("pool:"):
        return POOL
    if account_id.startswith("escrow:"):
        return ESCROW
    return AGENT


@lru_cache(maxsize=65_536)
def account_uuid(account_id: str) -> UUID:
    """Accounts are addressed by name: the aggregate id is a UUID5 of the account id."""
    return uuid5(_NAMESPACE, account_id)


@dataclass(frozen=True)
class Transfer:
    """One movement of tokens: ``amount_units`` leave ``debit_account`` for ``credit_account``."""

    transfer_id: str
    debit_account: str
    credit_account: str
    amount_units: int
    reason: str
    refs: dict[str, str] = field(default_factory=dict)


class Account(CheapCopy, Aggregate):
    class Opened(Aggregate.Created):
        account_id: Name
        kind: str

        # Version 1 records had no kind: every account was inferred from its id.
        class_version = 2

        @staticmethod
        def upcast_v1_v2(state: dict[str, Any]) -> None:
            state["kind"] = account_kind(state["account_id"])

    class Debited(Aggregate.Event):
        transfer_id: Name
        amount_units: PositiveUnits
        counterparty: Name
        reason: Name
        refs: Refs

        def apply(self, account: "Account") -> None:
            account.balance_units -= self.amount_units
            expiring = account.expiring_orders
            if self.reason == Reason.ORDER_ESCROW and "expires_at" in self.refs and "order" in self.refs:
                expiring[self.refs["order"]] = {
                    "artifact": self.refs["artifact"],
                    "expires_at": self.refs["expires_at"],
                }
            _forget_passed(expiring, self.timestamp)

    class Credited(Aggregate.Event):
        transfer_id: Name
        amount_units: PositiveUnits
        counterparty: Name
        reason: Name
        refs: Refs

        def apply(self, account: "Account") -> None:
            account.balance_units += self.amount_units
            expiring = account.expiring_orders
            if self.reason == Reason.ORDER_RELEASE and "order" in self.refs:
                expiring.pop(self.refs["order"], None)
            _forget_passed(expiring, self.timestamp)

    def __init__(self, account_id: str, kind: str) -> None:
        self.account_id = account_id
        self.kind = kind
        self.balance_units = 0
        self.expiring_orders: dict[str, dict[str, str]] = {}

    def __getattr__(self, name: str) -> Any:
        # A snapshot taken before expiring orders were tracked has no such field: start empty.
        if name == "expiring_orders":
            value: dict[str, dict[str, str]] = {}
            self.__dict__[name] = value
            return value
        raise AttributeError(name)

    def orders_due(self, at: datetime) -> list[tuple[str, str]]:
        """(artifact, order) of this agent's escrowed orders whose expiry is at or before ``at``.

        Derived from the escrow postings (their ``expires_at`` reference): an entry leaves when
        the order's escrow is released, or once an event of this account is later than the
        expiry (the command that wrote it has released what was due). A filled order's entry
        may linger until then; the caller finds the order gone and does nothing."""
        return sorted(
            (entry["artifact"], order_id)
            for order_id, entry in self.expiring_orders.items()
            if datetime.fromisoformat(entry["expires_at"]) <= at
        )

    @classmethod
    def open(cls, account_id: str, at: datetime) -> "Account":
        return cls._create(
            cls.Opened, id=account_uuid(account_id), timestamp=at, account_id=account_id, kind=account_kind(account_id)
        )

    @property
    def may_go_negative(self) -> bool:
        return self.kind == TREASURY_KIND

    def require_can_send(self, amount_units: int, decimals: int | None = None) -> None:
        """Refuse a debit this account cannot make: an agent short of funds, a system account
        that would go negative (only a torn read can ask that), or a mint past uint256.
        With ``decimals`` (the ledger's), amounts in the message are tokens."""
        if self.may_go_negative:
            # The treasury holds minus the total supply, which must stay a uint256.
            if amount_units - self.balance_units > MAX_UINT256:
                raise SupplyLimitError(
                    f"the total supply would reach {_amount(amount_units - self.balance_units, decimals)}, "
                    "above the uint256 limit 2**256 - 1 base units"
                )
            return
        if self.balance_units >= amount_units:
            return
        if self.kind != AGENT:
            # Internal account names stay out of the message: a user cannot act on them.
            raise TornReadError("another command changed what this one read while it was deciding; try again")
        raise InsufficientFundsError(
            f"account {self.account_id!r} holds {_amount(self.balance_units, decimals)}, "
            f"{_amount(amount_units, decimals)} needed"
        )

    def require_can_receive(self, amount_units: int, decimals: int | None = None) -> None:
        """Refuse a credit that would take this balance above 2**256 - 1 base units."""
        if self.balance_units + amount_units > MAX_UINT256:
            holder = f"account {self.account_id!r}" if self.kind == AGENT else "a system account"
            raise SupplyLimitError(
                f"{holder} would hold {_amount(self.balance_units + amount_units, decimals)}, "
                "above the uint256 limit 2**256 - 1 base units"
            )

    def debit(self, transfer: Transfer, at: datetime) -> None:
        assert transfer.debit_account == self.account_id
        self.require_can_send(transfer.amount_units)
        self.trigger_event(
            self.Debited,
            timestamp=at,
            transfer_id=transfer.transfer_id,
            amount_units=transfer.amount_units,
            counterparty=transfer.credit_account,
            reason=transfer.reason,
            refs=transfer.refs,
        )
        assert self.may_go_negative or self.balance_units >= 0
        assert -self.balance_units <= MAX_UINT256

    def credit(self, transfer: Transfer, at: datetime) -> None:
        assert transfer.credit_account == self.account_id
        self.require_can_receive(transfer.amount_units)
        self.trigger_event(
            self.Credited,
            timestamp=at,
            transfer_id=transfer.transfer_id,
            amount_units=transfer.amount_units,
            counterparty=transfer.debit_account,
            reason=transfer.reason,
            refs=transfer.refs,
        )
        assert self.balance_units <= MAX_UINT256


def _amount(units: int, decimals: int | None) -> str:
    """An amount for a message: tokens in the ledger's decimals, base units when unknown."""
    return f"{units} base units" if decimals is None else f"{format_amount(units, decimals)} tokens"


def _forget_passed(expiring: dict[str, dict[str, str]], at: datetime) -> None:
    if expiring:
        for order_id in [o for o, entry in expiring.items() if datetime.fromisoformat(entry["expires_at"]) < at]:
            del expiring[order_id]


register_aggregate(Account)
