"""The one table from refusals to statuses, walked code by code. Every refusal has the body
``{"error": CODE, "message": ...}``, and a refused write leaves the log as it was."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest
from fastapi.testclient import TestClient

from stakeledger.api.app import create_app
from tests.api.conftest import ART, SLOW_ART, Api

ORDER = {"agent": "alice", "artifact": ART, "side": "long", "tokens": "10"}


# A resolving transition needs a settlement price past its market's threshold (docs/settlement.md).
RESOLVING_PRICE = {"validated": "0.9", "deprecated": "0.05", "flagged": "0.2"}


def _transition(api: Api, state: str) -> None:
    body = {"state": state, **({"price": RESOLVING_PRICE[state]} if state in RESOLVING_PRICE else {})}
    assert api.post(f"/api/artifacts/{ART}/lifecycle-transition", body, api.admin).status_code == 200


def _limit_risk(api: Api) -> None:
    api.ledger.configure_portfolio("alice")  # default limits: at most 5% of equity in one position


def _cancelled_order(api: Api) -> str:
    order_id = api.post("/api/market/orders", {**ORDER, "limit_price": "0.2"}, api.alice).json()["order"]
    assert api.delete(f"/api/market/orders/{order_id}", api.alice).status_code == 200
    return order_id


# (case, setup returning context, request, status, code)
Case = tuple[str, Callable[[Api], Any], Callable[[Api, Any], Any], int, str]
CASES: list[Case] = [
    (
        "schema: missing field",
        lambda api: None,
        lambda api, _: api.post(
            "/api/market/positions", {"agent": "alice", "artifact": ART, "side": "long"}, api.alice
        ),
        422,
        "INVALID_INPUT",
    ),
    (
        "schema: amount as a JSON number",
        lambda api: None,
        lambda api, _: api.post("/api/market/positions", {**ORDER, "tokens": 10}, api.alice),
        422,
        "INVALID_INPUT",
    ),
    (
        "schema: unknown field",
        lambda api: None,
        lambda api, _: api.post("/api/market/positions", {**ORDER, "leverage": "10"}, api.alice),
        422,
        "INVALID_INPUT",
    ),
    (
        "schema: not JSON",
        lambda api: None,
        lambda api, _: api.client.post(
            "/api/market/positions",
            content=b"{",
            headers={"Authorization": f"Bearer {api.alice}", "Content-Type": "application/json"},
        ),
        422,
        "INVALID_INPUT",
    ),
    (
        "zero amount",
        lambda api: None,
        lambda api, _: api.post("/api/market/positions", {**ORDER, "tokens": "0"}, api.alice),
        422,
        "INVALID_AMOUNT",
    ),
    (
        "too many decimals",
        lambda api: None,
        lambda api, _: api.post("/api/market/positions", {**ORDER, "tokens": "1.0000001"}, api.alice),
        422,
        "INVALID_AMOUNT",
    ),
    (
        "price not below 1",
        lambda api: None,
        lambda api, _: api.post("/api/market/orders", {**ORDER, "limit_price": "1"}, api.alice),
        422,
        "INVALID_AMOUNT",
    ),
    (
        "quote needs one of shares or tokens",
        lambda api: None,
        lambda api, _: api.get(f"/api/market/artifacts/{ART}/quote", params={"side": "long"}),
        422,
        "INVALID_INPUT",
    ),
    ("no key", lambda api: None, lambda api, _: api.post("/api/market/positions", ORDER), 401, "UNAUTHENTICATED"),
    (
        "another agent's key",
        lambda api: None,
        lambda api, _: api.post("/api/market/positions", ORDER, api.bob),
        403,
        "FORBIDDEN",
    ),
    (
        "another agent's position",
        lambda api: api.buy(api.alice).json()["position"],
        lambda api, position: api.post(f"/api/market/positions/{position}/close", key=api.bob),
        403,
        "NOT_OWNER",
    ),
    (
        "unknown artifact",
        lambda api: None,
        lambda api, _: api.get("/api/market/artifacts/NOPE"),
        404,
        "UNKNOWN_ARTIFACT",
    ),
    (
        "unknown artifact to trade",
        lambda api: None,
        lambda api, _: api.post("/api/market/positions", {**ORDER, "artifact": "NOPE"}, api.alice),
        404,
        "UNKNOWN_ARTIFACT",
    ),
    (
        "unknown position",
        lambda api: None,
        lambda api, _: api.post(f"/api/market/positions/{ART}/p99/close", key=api.alice),
        404,
        "UNKNOWN_POSITION",
    ),
    (
        "unknown order",
        lambda api: None,
        lambda api, _: api.delete(f"/api/market/orders/{ART}/o99", api.alice),
        404,
        "UNKNOWN_ORDER",
    ),
    (
        "unknown bounty",
        lambda api: None,
        lambda api, _: api.post(f"/api/bounties/{ART}/b9/refund", key=api.admin),
        404,
        "UNKNOWN_BOUNTY",
    ),
    (
        "unknown account",
        lambda api: None,
        lambda api, _: api.get("/api/accounts/nobody", api.admin),
        404,
        "UNKNOWN_ACCOUNT",
    ),
    ("unknown route", lambda api: None, lambda api, _: api.get("/api/nothing-here"), 404, "NOT_FOUND"),
    (
        "body too large",
        lambda api: None,
        lambda api, _: api.post("/api/market/positions", {**ORDER, "padding": "x" * (2 << 20)}, api.alice),
        413,
        "PAYLOAD_TOO_LARGE",
    ),
    (
        "wrong method",
        lambda api: None,
        lambda api, _: api.client.put("/api/market/positions"),
        405,
        "METHOD_NOT_ALLOWED",
    ),
    ("frozen market", lambda api: _transition(api, "challenged"), lambda api, _: api.buy(api.alice), 409, "FROZEN"),
    (
        "terminal artifact",
        lambda api: _transition(api, "validated"),
        lambda api, _: api.post(f"/api/artifacts/{ART}/lifecycle-transition", {"state": "listed"}, api.admin),
        409,
        "STATE_CONFLICT",
    ),
    (
        "order already cancelled",
        _cancelled_order,
        lambda api, order: api.delete(f"/api/market/orders/{order}", api.alice),
        409,
        "STATE_CONFLICT",
    ),
    (
        "hold period",
        lambda api: api.buy(api.alice, artifact=SLOW_ART).json()["position"],
        lambda api, position: api.post(f"/api/market/positions/{position}/close", key=api.alice),
        409,
        "MIN_HOLD_NOT_REACHED",
    ),
    (
        "not enough tokens",
        lambda api: None,
        lambda api, _: api.buy(api.alice, tokens="5000"),
        409,
        "INSUFFICIENT_FUNDS",
    ),
    (
        "slippage",
        lambda api: None,
        lambda api, _: api.buy(api.alice, tokens="50", min_shares="1000"),
        409,
        "SLIPPAGE_EXCEEDED",
    ),
    (
        "artifact exists",
        lambda api: None,
        lambda api, _: api.post(
            "/api/market/artifacts", {"artifact": ART, "title": "again", "liquidity": "1"}, api.admin
        ),
        409,
        "ARTIFACT_EXISTS",
    ),
    (
        "account exists",
        lambda api: None,
        lambda api, _: api.post("/api/accounts", {"agent": "alice"}, api.alice),
        409,
        "ACCOUNT_EXISTS",
    ),
    (
        "idempotency mismatch",
        lambda api: api.post("/api/market/positions", ORDER, api.alice, idempotency="k"),
        lambda api, _: api.post("/api/market/positions", {**ORDER, "side": "short"}, api.alice, idempotency="k"),
        409,
        "IDEMPOTENCY_MISMATCH",
    ),
]


@pytest.mark.parametrize(("case", "setup", "request_", "status", "code"), CASES, ids=[case[0] for case in CASES])
def test_request_when_refused_then_status_and_code_from_the_table_and_nothing_written(
    memory_api: Api, case, setup, request_, status, code
):
    context = setup(memory_api)
    before = memory_api.head()

    response = request_(memory_api, context)

    body = response.json()
    assert (response.status_code, body["error"]) == (status, code)
    assert isinstance(body["message"], str) and body["message"]
    assert memory_api.head() == before


def test_market_order_when_risk_limit_exceeded_then_409_with_reason_and_the_rejection_is_recorded(memory_api: Api):
    api = memory_api
    _limit_risk(api)
    before = api.head()

    response = api.buy(api.alice, tokens="200")

    body = response.json()
    assert response.status_code == 409
    assert body["error"] == "MAX_POSITION_PCT" and body["rejection"]["reason"] == "MAX_POSITION_PCT"
    assert api.head() > before  # a rejection is an event, not an exception
    assert api.ledger.get_artifact(ART).position_ids == []


def test_any_request_when_ledger_not_initialised_then_409_not_initialised(clock):
    app = create_app("memory://", clock)
    with TestClient(app) as client:
        response = client.get(f"/api/market/artifacts/{ART}/quote", params={"side": "long", "tokens": "1"})
        health = client.get("/healthz")

    assert (response.status_code, response.json()["error"]) == (409, "NOT_INITIALISED")
    assert health.status_code == 200 and health.json()["initialised"] is False


def test_request_when_chunked_body_grows_past_the_limit_then_413_and_nothing_written(memory_api: Api):
    api = memory_api
    before = api.head()
    chunks = (b'{"padding": "' + b"x" * 65_536 for _ in range(20))

    response = api.client.post(
        "/api/market/positions",
        content=chunks,
        headers={"Authorization": f"Bearer {api.alice}", "Content-Type": "application/json"},
    )

    assert (response.status_code, response.json()["error"]) == (413, "PAYLOAD_TOO_LARGE")
    assert api.head() == before
