"""Fixtures for the HTTP API tests: an application per store with a funded market, keys
for an admin and two traders, and a TestClient.

Amounts are decimal strings of a ledger with 6 decimals; ``TOKEN`` is one token in base units.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import pytest
from fastapi.testclient import TestClient

from stakeledger.api.app import create_app
from stakeledger.domain.service import apikeys
from stakeledger.domain.service.application import StakeLedger
from stakeledger.domain.service.clock import ManualClock

TOKEN = 10**6
FUNDS = "1000"
ART = "ART-1"
SLOW_ART = "ART-SLOW"  # min_hold_days 90: closes refused until then
LIQUIDITY = "100"


@dataclass
class Api:
    client: TestClient
    ledger: StakeLedger
    clock: ManualClock
    admin: str
    alice: str
    bob: str

    def head(self) -> int:
        """The log's last position: nothing written means it did not move."""
        return self.ledger.recorder.max_notification_id() or 0

    def get(self, path: str, key: str | None = None, **kwargs: Any) -> Any:
        return self.client.get(path, headers=auth(key), **kwargs)

    def post(self, path: str, body: Any = None, key: str | None = None, idempotency: str | None = None) -> Any:
        headers = auth(key)
        if idempotency is not None:
            headers["Idempotency-Key"] = idempotency
        return self.client.post(path, json=body, headers=headers)

    def delete(self, path: str, key: str | None = None) -> Any:
        return self.client.delete(path, headers=auth(key))

    def buy(
        self, key: str, agent: str = "alice", side: str = "long", tokens: str = "10", artifact: str = ART, **extra: Any
    ) -> Any:
        return self.post(
            "/api/market/positions",
            {"agent": agent, "artifact": artifact, "side": side, "tokens": tokens, **extra},
            key,
        )


def auth(key: str | None) -> dict[str, str]:
    return {"Authorization": f"Bearer {key}"} if key else {}


def seed(ledger: StakeLedger) -> dict[str, str]:
    """Two funded traders, two markets, and keys: admin, alice (trade), bob (trade)."""
    ledger.initialise(decimals=6)
    for agent in ("alice", "bob"):
        ledger.open_account(agent)
        ledger.mint(agent, int(FUNDS) * TOKEN)
    ledger.list_artifact(ART, "A replicated result", int(LIQUIDITY) * TOKEN, group="bio", min_hold_days=0)
    ledger.list_artifact(SLOW_ART, "A slow market", int(LIQUIDITY) * TOKEN, min_hold_days=90)
    return {
        "admin": apikeys.issue_key(ledger, "operator", apikeys.ADMIN)["key"],
        "alice": apikeys.issue_key(ledger, "alice", apikeys.TRADE)["key"],
        "bob": apikeys.issue_key(ledger, "bob", apikeys.TRADE)["key"],
    }


def make_api(store_url: str, clock: ManualClock) -> Iterator[Api]:
    app = create_app(store_url, clock)
    ledger = app.state.api.ledger
    keys = seed(ledger)
    # raise_server_exceptions=False: a bug must show as the 500 a client would see.
    with TestClient(app, raise_server_exceptions=False) as client:
        yield Api(client, ledger, clock, keys["admin"], keys["alice"], keys["bob"])


@pytest.fixture
def api(store_url: str, clock: ManualClock) -> Iterator[Api]:
    """On the in-memory store, SQLite and PostgreSQL."""
    yield from make_api(store_url, clock)


@pytest.fixture
def memory_api(clock: ManualClock) -> Iterator[Api]:
    """On the in-memory store: for rules that do not depend on the store."""
    yield from make_api("memory://", clock)
