"""Ledger-wide settings fixed at creation, and the record that makes commands idempotent."""

from typing import Any
from uuid import NAMESPACE_URL, UUID, uuid5

from eventsourcing.domain import Aggregate

from stakeledger.domain.model.copying import CheapCopy
from stakeledger.domain.model.naming import register_aggregate
from stakeledger.domain.model.types import Name

LEDGER_SETTINGS_ID = uuid5(NAMESPACE_URL, "https://stakeledger.invalid/ledger-settings")
_COMMAND_NAMESPACE = uuid5(NAMESPACE_URL, "https://stakeledger.invalid/command")


class LedgerSettings(CheapCopy, Aggregate):
    """Decimals never change after ``init``: every stored amount is read with them."""

    class Initialised(Aggregate.Created):
        decimals: int
        name: Name

    def __init__(self, decimals: int, name: str) -> None:
        self.decimals = decimals
        self.name = name


class CommandRecord(CheapCopy, Aggregate):
    """The first result of a client command id, saved in the same transaction as the
    command's effects. A second save under the same id conflicts in the store, so a
    command id can never take effect twice, even across processes."""

    class Recorded(Aggregate.Created):
        command_id: Name
        command: Name
        payload_hash: Name
        result: dict[str, Any]

    def __init__(self, command_id: str, command: str, payload_hash: str, result: dict[str, Any]) -> None:
        self.command_id = command_id
        self.command = command
        self.payload_hash = payload_hash
        self.result = result


def command_uuid(command_id: str) -> UUID:
    return uuid5(_COMMAND_NAMESPACE, command_id)


register_aggregate(LedgerSettings)
register_aggregate(CommandRecord)
