"""An ``Idempotency-Key`` header is the command id: a retry returns the first response and
writes nothing; the same key with another body is a 409 conflict."""

from __future__ import annotations

from tests.api.conftest import ART, Api

ORDER = {"agent": "alice", "artifact": ART, "side": "long", "tokens": "10"}


def test_market_order_when_retried_with_same_key_and_body_then_first_response_and_nothing_written(api: Api):
    first = api.post("/api/market/positions", ORDER, api.alice, idempotency="order-1")
    head = api.head()

    retry = api.post("/api/market/positions", ORDER, api.alice, idempotency="order-1")

    assert first.status_code == retry.status_code == 201
    assert retry.json() == first.json()
    assert api.head() == head
    assert api.ledger.get_artifact(ART).position_ids == [first.json()["position"]]


def test_market_order_when_same_key_with_another_body_then_409_mismatch_and_nothing_written(api: Api):
    api.post("/api/market/positions", ORDER, api.alice, idempotency="order-1")
    head = api.head()

    response = api.post("/api/market/positions", {**ORDER, "tokens": "11"}, api.alice, idempotency="order-1")

    assert response.status_code == 409 and response.json()["error"] == "IDEMPOTENCY_MISMATCH"
    assert api.head() == head


def test_same_key_when_used_by_two_agents_then_each_gets_its_own_command(memory_api: Api):
    api = memory_api

    alice = api.post("/api/market/positions", ORDER, api.alice, idempotency="shared")
    bob = api.post("/api/market/positions", {**ORDER, "agent": "bob"}, api.bob, idempotency="shared")

    assert alice.status_code == bob.status_code == 201
    assert alice.json()["position"] != bob.json()["position"]


def test_retry_when_first_attempt_was_refused_then_it_runs_again(memory_api: Api):
    api = memory_api
    api.post(f"/api/artifacts/{ART}/lifecycle-transition", {"state": "challenged"}, api.admin)
    refused = api.post("/api/market/positions", ORDER, api.alice, idempotency="after-freeze")
    api.post(f"/api/artifacts/{ART}/lifecycle-transition", {"state": "listed"}, api.admin)

    retry = api.post("/api/market/positions", ORDER, api.alice, idempotency="after-freeze")

    assert refused.status_code == 409 and refused.json()["error"] == "FROZEN"
    assert retry.status_code == 201 and retry.json()["position"] == f"{ART}/p1"


def test_cancel_when_admin_retries_after_the_order_left_the_book_then_first_response(memory_api: Api):
    api = memory_api
    order_id = api.post("/api/market/orders", {**ORDER, "limit_price": "0.2"}, api.alice).json()["order"]
    first = api.client.delete(
        f"/api/market/orders/{order_id}",
        headers={"Authorization": f"Bearer {api.admin}", "Idempotency-Key": "cancel-1"},
    )
    head = api.head()

    retry = api.client.delete(
        f"/api/market/orders/{order_id}",
        headers={"Authorization": f"Bearer {api.admin}", "Idempotency-Key": "cancel-1"},
    )

    assert first.status_code == retry.status_code == 200
    assert retry.json() == first.json()
    assert api.head() == head


def test_lifecycle_transition_when_retried_then_settles_once(memory_api: Api):
    api = memory_api
    api.buy(api.alice, tokens="10")
    body = {"state": "validated", "price": "0.9"}  # a price past the market's threshold
    first = api.post(f"/api/artifacts/{ART}/lifecycle-transition", body, api.admin, idempotency="validate")
    balance = api.ledger.balance_of("alice")

    retry = api.post(f"/api/artifacts/{ART}/lifecycle-transition", body, api.admin, idempotency="validate")

    assert retry.status_code == 200 and retry.json() == first.json()
    assert api.ledger.balance_of("alice") == balance


def test_idempotency_key_when_not_visible_ascii_then_422(memory_api: Api):
    api = memory_api
    head = api.head()

    response = api.client.post(
        "/api/market/positions",
        json=ORDER,
        headers={"Authorization": f"Bearer {api.alice}", "Idempotency-Key": "has space"},
    )

    assert response.status_code == 422 and response.json()["error"] == "INVALID_INPUT"
    assert api.head() == head
