"""Token statements: every movement on one account with its running balance."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from datetime import datetime

from stakeledger.domain.model.accounts import Account, account_uuid
from stakeledger.domain.model.naming import stable_topic
from stakeledger.domain.service.application import StakeLedger
from stakeledger.domain.service.log import iter_events


@dataclass(frozen=True)
class StatementLine:
    position: int
    at: datetime
    reason: str
    counterparty: str
    delta_units: int
    balance_units: int
    transfer_id: str
    refs: dict[str, str]


def statement_lines(app: StakeLedger, account_id: str, *, until: int | None = None) -> Iterator[StatementLine]:
    """Movements on ``account_id`` up to log position ``until`` (inclusive), oldest first."""
    originator = account_uuid(account_id)
    topics = (stable_topic(Account.Debited), stable_topic(Account.Credited))
    balance = 0
    for position, event in iter_events(app, until=until, topics=topics):
        if event.originator_id != originator:
            continue
        delta = event.amount_units if isinstance(event, Account.Credited) else -event.amount_units
        balance += delta
        yield StatementLine(
            position,
            event.timestamp,
            event.reason,
            event.counterparty,
            delta,
            balance,
            event.transfer_id,
            dict(event.refs),
        )
