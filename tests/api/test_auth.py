"""Who may do what: the key matrix for writes, admin-only commands and agents' own reads."""

from __future__ import annotations

import pytest

from stakeledger.domain.service import apikeys
from tests.api.conftest import ART, Api

ORDER = {"agent": "alice", "artifact": ART, "side": "long", "tokens": "5"}


def _wrong_secret(key: str) -> str:
    prefix, key_id, secret = key.split("_", 2)
    return f"{prefix}_{key_id}_{'A' if secret[0] != 'A' else 'B'}{secret[1:]}"


@pytest.mark.parametrize(
    ("who", "status", "code"),
    [
        ("none", 401, "UNAUTHENTICATED"),
        ("malformed", 401, "UNAUTHENTICATED"),
        ("unknown", 401, "UNAUTHENTICATED"),
        ("wrong-secret", 401, "UNAUTHENTICATED"),
        ("revoked", 401, "UNAUTHENTICATED"),
        ("bob", 403, "FORBIDDEN"),
        ("alice", 201, None),
        ("admin", 201, None),
    ],
)
def test_market_order_for_alice_when_key_is_given_then_status_follows_the_matrix(api: Api, who, status, code):
    keys = {
        "none": None,
        "malformed": "not-a-key",
        "unknown": "sl_0123456789abcdef_" + "x" * 43,
        "wrong-secret": _wrong_secret(api.alice),
        "alice": api.alice,
        "bob": api.bob,
        "admin": api.admin,
    }
    if who == "revoked":
        issued = apikeys.issue_key(api.ledger, "alice")
        apikeys.revoke_key(api.ledger, issued["key_id"])
        keys["revoked"] = issued["key"]
    before = api.head()

    response = api.post("/api/market/positions", ORDER, keys[who])

    assert response.status_code == status
    if code is None:
        assert response.json()["position"].startswith(f"{ART}/p")
    else:
        assert response.json()["error"] == code
        assert api.head() == before
    if status == 401:
        assert response.headers["www-authenticate"] == "Bearer"


ADMIN_ONLY = [
    ("post", f"/api/artifacts/{ART}/lifecycle-transition", {"state": "flagged", "price": "0.2"}),
    ("post", "/api/accounts/alice/mint", {"amount": "1"}),
    ("post", "/api/market/artifacts", {"artifact": "ART-NEW", "title": "New", "liquidity": "10"}),
    ("post", f"/api/bounties/{ART}/b1/distribute", {"claimants": [{"agent": "alice", "weight": "1"}]}),
    ("post", f"/api/bounties/{ART}/b1/refund", None),
    ("get", "/api/audit", None),
]


@pytest.mark.parametrize(("method", "path", "body"), ADMIN_ONLY, ids=[path for _, path, _ in ADMIN_ONLY])
def test_admin_only_endpoint_when_trade_key_then_403_and_nothing_written(memory_api: Api, method, path, body):
    api = memory_api
    api.post("/api/bounties", {"artifact": ART, "sponsor": "alice", "amount": "3"}, api.alice)
    before = api.head()

    response = api.post(path, body, api.alice) if method == "post" else api.get(path, api.alice)

    assert response.status_code == 403 and response.json()["error"] == "FORBIDDEN"
    assert api.head() == before


@pytest.mark.parametrize(("method", "path", "body"), ADMIN_ONLY, ids=[path for _, path, _ in ADMIN_ONLY])
def test_admin_only_endpoint_when_admin_key_then_accepted(memory_api: Api, method, path, body):
    api = memory_api
    api.post("/api/bounties", {"artifact": ART, "sponsor": "alice", "amount": "3"}, api.alice)

    response = api.post(path, body, api.admin) if method == "post" else api.get(path, api.admin)

    assert response.status_code in (200, 201), response.json()


@pytest.mark.parametrize("suffix", ["", "/statement", "/inbox"])
@pytest.mark.parametrize(("who", "status"), [("none", 401), ("bob", 403), ("alice", 200), ("admin", 200)])
def test_read_alices_account_when_key_is_given_then_only_alice_or_admin(memory_api: Api, suffix, who, status):
    api = memory_api
    key = {"none": None, "bob": api.bob, "alice": api.alice, "admin": api.admin}[who]

    response = api.get(f"/api/accounts/alice{suffix}", key)

    assert response.status_code == status


@pytest.mark.parametrize("suffix", ["", "/metrics"])
@pytest.mark.parametrize(("who", "status"), [("none", 401), ("bob", 403), ("alice", 200), ("admin", 200)])
def test_read_alices_portfolio_when_key_is_given_then_only_alice_or_admin(memory_api: Api, suffix, who, status):
    api = memory_api
    key = {"none": None, "bob": api.bob, "alice": api.alice, "admin": api.admin}[who]

    response = api.get(f"/api/portfolio/alice{suffix}", key)

    assert response.status_code == status


@pytest.mark.parametrize(
    "path",
    [
        "/api/market/artifacts",
        f"/api/market/artifacts/{ART}",
        f"/api/market/artifacts/{ART}/book",
        f"/api/market/artifacts/{ART}/quote?side=long&tokens=1",
        "/api/market/settlements",
        "/api/reputation",
        "/api/projections",
        "/healthz",
    ],
)
def test_public_read_when_no_key_then_200(memory_api: Api, path):
    assert memory_api.get(path).status_code == 200


def test_close_and_cancel_when_another_agents_trade_key_then_403_not_owner(memory_api: Api):
    api = memory_api
    position_id = api.buy(api.alice).json()["position"]
    order_id = api.post("/api/market/orders", {**ORDER, "limit_price": "0.2"}, api.alice).json()["order"]
    before = api.head()

    closed = api.post(f"/api/market/positions/{position_id}/close", key=api.bob)
    cancelled = api.delete(f"/api/market/orders/{order_id}", api.bob)

    assert (closed.status_code, closed.json()["error"]) == (403, "NOT_OWNER")
    assert (cancelled.status_code, cancelled.json()["error"]) == (403, "NOT_OWNER")
    assert api.head() == before


def test_revoke_when_key_was_working_then_next_request_is_refused(memory_api: Api):
    api = memory_api
    issued = apikeys.issue_key(api.ledger, "alice")
    first = api.buy(issued["key"])

    apikeys.revoke_key(api.ledger, issued["key_id"])
    second = api.buy(issued["key"])

    assert first.status_code == 201
    assert second.status_code == 401 and second.json()["message"] == "unknown or revoked API key"
