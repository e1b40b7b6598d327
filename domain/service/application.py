"""The write side: an eventsourcing Application whose methods are the ledger's verbs.

``StakeLedger`` is the command loop of ``LedgerCore`` (get -> decide -> save, retried on a
version conflict, idempotent under a client command id) plus one mixin of verbs per
concern. Open one on a store URL with ``stakeledger.adapters.persistence.store_url.open_ledger``.
"""

from __future__ import annotations

import stakeledger.domain.model.apikeys  # noqa: F401 - registers the ApiKey aggregate's stable topics
from stakeledger.domain.service.accounts import AccountCommands, TransferRequest
from stakeledger.domain.service.risk import RiskCommands
from stakeledger.domain.service.settlement import SettlementCommands
from stakeledger.domain.service.trading import MarketCommands

__all__ = ["StakeLedger", "TransferRequest"]


class StakeLedger(AccountCommands, MarketCommands, SettlementCommands, RiskCommands):
    # eventsourcing names each Application subclass after itself unless told: the name
    # prefixes the application's settings and, on PostgreSQL, its tables. Never change it.
    name = "stakeledger"
