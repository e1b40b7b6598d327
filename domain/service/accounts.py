"""The account verbs: initialise the ledger, open accounts, mint, burn and transfer."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from stakeledger.domain.decisions.trading import expire_agent_orders
from stakeledger.domain.decisions.unit_of_work import UnitOfWork
from stakeledger.domain.errors import AccountExistsError, AlreadyInitialisedError, InvalidInputError
from stakeledger.domain.model.accounts import AGENT, TREASURY, Account, account_kind, account_uuid, agent_account_id
from stakeledger.domain.model.settings import LEDGER_SETTINGS_ID, LedgerSettings
from stakeledger.domain.rules.money import check_units
from stakeledger.domain.service.ledger import LedgerCore
from stakeledger.domain.vocabulary import (
    DEFAULT_DECIMALS,
    MAX_BATCH_TRANSFERS,
    MAX_DECIMALS,
    Reason,
    is_user_transfer_reason,
)


@dataclass(frozen=True)
class TransferRequest:
    debit_account: str
    credit_account: str
    amount_units: int
    reason: str = Reason.TRANSFER


def check_decimals(decimals: int) -> int:
    """A ledger's fractional digits: an integer from 0 to MAX_DECIMALS."""
    if isinstance(decimals, bool) or not isinstance(decimals, int) or not 0 <= decimals <= MAX_DECIMALS:
        raise InvalidInputError(f"decimals must be an integer from 0 to {MAX_DECIMALS}, got {decimals!r}")
    return decimals


class AccountCommands(LedgerCore):
    """Mixed into StakeLedger."""

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
        return self._move(TREASURY, agent_account_id(name), amount_units, Reason.MINT, command_id)

    def burn(self, name: str, amount_units: int, *, command_id: str | None = None) -> dict[str, Any]:
        return self._move(agent_account_id(name), TREASURY, amount_units, Reason.BURN, command_id)

    def transfer(
        self,
        source: str,
        destination: str,
        amount_units: int,
        *,
        reason: str = Reason.TRANSFER,
        command_id: str | None = None,
    ) -> dict[str, Any]:
        if not is_user_transfer_reason(reason):
            raise InvalidInputError(
                f"reason must be 'transfer' or 'transfer:<label>' (other codes are the ledger's own), got {reason!r}"
            )
        return self._move(agent_account_id(source), agent_account_id(destination), amount_units, reason, command_id)

    def _move(self, debit: str, credit: str, amount_units: int, reason: str, command_id: str | None) -> dict[str, Any]:
        check_units(amount_units)
        self.settings  # noqa: B018

        def decide(unit: UnitOfWork) -> dict[str, Any]:
            _expire_for(unit, debit, credit)
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
        if len(requests) > MAX_BATCH_TRANSFERS:
            raise InvalidInputError(f"a batch holds at most {MAX_BATCH_TRANSFERS} transfers, got {len(requests)}")
        for request in requests:
            agent_account_id(request.debit_account)
            agent_account_id(request.credit_account)
            check_units(request.amount_units)
            if request.reason != Reason.TRANSFER:
                raise InvalidInputError(f"batched transfers use reason 'transfer', got {request.reason!r}")
        self.settings  # noqa: B018

        def decide(unit: UnitOfWork) -> dict[str, Any]:
            _expire_for(unit, *dict.fromkeys(a for r in requests for a in (r.debit_account, r.credit_account)))
            ids = [unit.post(r.debit_account, r.credit_account, r.amount_units, r.reason).transfer_id for r in requests]
            return {"transfer_ids": ids}

        payload = {"transfers": [[r.debit_account, r.credit_account, str(r.amount_units)] for r in requests]}
        return self.execute("transfer.batch", decide, payload=payload, command_id=command_id)


def _expire_for(unit: UnitOfWork, *account_ids: str) -> None:
    """A command touching an agent's account first releases the agent's expired orders, so
    the balance it decides on includes escrow that died at its expiry time."""
    for account_id in account_ids:
        if account_kind(account_id) == AGENT:
            expire_agent_orders(unit, account_id)
