"""What the audit reports: a violation of one invariant, with a stable code beside its prose.

The codes are a closed set, declared in the order the audit's checks run. A program that
reads ``stakeledger audit --json`` matches on the code; the message is for people and
may be reworded.
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum


class ViolationCode(StrEnum):
    # versions
    VERSION_GAP = "VERSION_GAP"
    # balances and transfers
    UNOPENED_ACCOUNT = "UNOPENED_ACCOUNT"
    NEGATIVE_BALANCE = "NEGATIVE_BALANCE"
    BALANCE_ABOVE_UINT256 = "BALANCE_ABOVE_UINT256"
    SUPPLY_ABOVE_UINT256 = "SUPPLY_ABOVE_UINT256"
    DUPLICATE_SIDE = "DUPLICATE_SIDE"
    SIDE_ACCOUNTS_DIFFER = "SIDE_ACCOUNTS_DIFFER"
    SIDE_TERMS_DIFFER = "SIDE_TERMS_DIFFER"
    ONE_SIDED_TRANSFER = "ONE_SIDED_TRANSFER"
    BALANCES_NOT_ZERO = "BALANCES_NOT_ZERO"
    ACCOUNT_UNREADABLE = "ACCOUNT_UNREADABLE"
    ACCOUNT_REPLAY_DIFFERS = "ACCOUNT_REPLAY_DIFFERS"
    # markets and settlement
    ARTIFACT_NEVER_LISTED = "ARTIFACT_NEVER_LISTED"
    POSITION_NEVER_OPENED = "POSITION_NEVER_OPENED"
    ARTIFACT_IDENTITY = "ARTIFACT_IDENTITY"
    SETTLED_POOL_NOT_EMPTY = "SETTLED_POOL_NOT_EMPTY"
    POSITION_PAYOUT_DIFFERS = "POSITION_PAYOUT_DIFFERS"
    UNEXPLAINED_POOL_PAYMENT = "UNEXPLAINED_POOL_PAYMENT"
    PARTIAL_SETTLEMENT_REPEATED = "PARTIAL_SETTLEMENT_REPEATED"
    # projections
    VIEWS_CANNOT_REPLAY = "VIEWS_CANNOT_REPLAY"
    VIEW_DIFFERS = "VIEW_DIFFERS"


@dataclass(frozen=True)
class Violation:
    check: str
    position: int | None
    message: str
    code: ViolationCode

    def __str__(self) -> str:
        where = f"@{self.position} " if self.position is not None else ""
        return f"[{self.check}] {where}{self.message}"

    def to_dict(self) -> dict[str, object]:
        return {"code": str(self.code), "check": self.check, "position": self.position, "message": self.message}
