"""Rationale over HTTP (issue 19): market, limit, Kelly and batch bodies take an optional
``rationale`` object of decimal strings; GET /api/market/positions/{id} returns the
position's history with it. JSON numbers and unknown keys are refused naming the field,
and nothing is written."""

from __future__ import annotations

from typing import Any

import pytest

from tests.api.conftest import ART, Api

WHY = {
    "belief": "0.62",
    "edge": "-0.05",
    "reasoning": "fear and greed up, momentum fading",
    "features": {"fg_lo": "0.12", "mom_lo": "-0.03"},
}
WHY_STORED = {
    "belief_wad": 62 * 10**16,
    "edge_wad": -5 * 10**16,
    "reasoning": "fear and greed up, momentum fading",
    "features": {"fg_lo": 12 * 10**16, "mom_lo": -3 * 10**16},
}
ORDER = {"agent": "alice", "artifact": ART, "side": "long", "tokens": "5"}


def rationale_of(api: Api, position_id: str) -> Any:
    return api.ledger.position_history(position_id)[0]["rationale"]


def test_every_order_body_when_it_carries_a_rationale_then_the_positions_store_it(api: Api):
    market = api.post("/api/market/positions", {**ORDER, "rationale": WHY}, api.alice)
    assert market.status_code == 201, market.json()
    order = api.post(
        "/api/market/orders",
        {**ORDER, "agent": "bob", "side": "short", "limit_price": "0.45", "rationale": WHY},
        api.bob,
    )
    assert order.status_code == 201, order.json()
    api.post("/api/market/positions", {**ORDER, "tokens": "25"}, api.alice)
    kelly = api.post(
        "/api/portfolio/alice/kelly",
        {"artifact": ART, "belief": "0.9", "rationale": {"edge": "0.2", "features": {"news_lo": "0.4"}}},
        api.alice,
    )
    assert kelly.status_code == 201, kelly.json()
    batch = api.post(
        "/api/portfolio/orders/batch",
        {"orders": [{**ORDER, "agent": "bob", "side": "short", "rationale": {"reasoning": "hedge"}}, ORDER]},
        api.admin,
    )
    assert batch.status_code == 201, batch.json()

    assert rationale_of(api, market.json()["position"]) == WHY_STORED
    filled = api.ledger.get_artifact(ART).position_ids[2]
    assert rationale_of(api, filled) == WHY_STORED
    assert rationale_of(api, kelly.json()["trade"]["position"]) == {
        "belief_wad": 9 * 10**17,
        "edge_wad": 2 * 10**17,
        "features": {"news_lo": 4 * 10**17},
    }
    hedged, bare = (row["position"] for row in batch.json()["results"])
    assert rationale_of(api, hedged) == {"reasoning": "hedge"}
    assert rationale_of(api, bare) is None


def test_get_position_when_it_has_a_rationale_then_history_with_exact_strings_and_decimals(memory_api: Api):
    api = memory_api
    position_id = api.post("/api/market/positions", {**ORDER, "rationale": WHY}, api.alice).json()["position"]
    api.post(f"/api/market/positions/{position_id}/close", {"shares": "1"}, api.alice)

    response = api.get(f"/api/market/positions/{position_id}", api.alice)

    assert response.status_code == 200, response.json()
    body = response.json()
    assert (body["position"], body["owner"], body["side"], body["status"]) == (position_id, "alice", "long", "open")
    assert body["rationale"] == {
        "belief_wad": "620000000000000000",
        "edge_wad": "-50000000000000000",
        "reasoning": "fear and greed up, momentum fading",
        "features": {"fg_lo": "120000000000000000", "mom_lo": "-30000000000000000"},
    }
    assert body["rationale_decimal"] == WHY
    assert [(e["event"], e["version"]) for e in body["events"]] == [("Opened", 1), ("PartiallyClosed", 2)]
    opened, closed = body["events"]
    assert opened["cost_units"] == "5000000" and opened["cost"] == "5" and opened["at"] <= closed["at"]
    assert opened["rationale"] == body["rationale"] and "rationale" not in closed
    assert closed["quantity_sold_units"] == "1000000"


def test_get_position_when_asked_by_another_trader_or_for_none_then_403_or_404(memory_api: Api):
    api = memory_api
    position_id = api.post("/api/market/positions", ORDER, api.alice).json()["position"]
    assert api.get(f"/api/market/positions/{position_id}", api.bob).status_code == 403
    assert api.get(f"/api/market/positions/{position_id}", api.admin).json()["rationale"] is None
    missing = api.get(f"/api/market/positions/{ART}/p99", api.alice)
    assert missing.status_code == 404 and missing.json()["error"] == "UNKNOWN_POSITION"


BAD_RATIONALES = [
    ({"belief": 0.62}, "rationale.belief"),
    ({"edge": 0}, "rationale.edge"),
    ({"features": {"fg_lo": 0.12}}, "rationale.features.fg_lo"),
    ({"belief": "0.62", "confidence": "high"}, "rationale.confidence"),
    ({"belief": "0"}, "belief must be strictly between 0 and 1"),
    ({"belief": "1"}, "belief must be strictly between 0 and 1"),
    ({"belief": "-0.1"}, "belief must be strictly between 0 and 1"),
    ({"belief": "1.5"}, "belief must be strictly between 0 and 1"),
    ({"belief": "NaN"}, "rationale.belief"),
    ({"belief": "1e-3"}, "rationale.belief"),
    ({"belief": "0." + "1" * 19}, "rationale.belief"),
    ({"edge": "1.5"}, "edge must be between -1 and 1"),
    ({"reasoning": ""}, "rationale.reasoning"),
    ({"reasoning": "x" * 1001}, "rationale.reasoning"),
    ({"reasoning": "a\x00b"}, "rationale.reasoning"),
    ({"reasoning": "a\nb"}, "rationale.reasoning"),
    ({"features": {"FG": "0.1"}}, "rationale.features"),
    ({"features": {"a" * 49: "0.1"}}, "rationale.features"),
    ({"features": {f"f{i}": "0.1" for i in range(33)}}, "rationale.features"),
    ({"features": {"fg": "100.5"}}, "at most 100 log-odds"),
]


@pytest.mark.parametrize("rationale, message", BAD_RATIONALES, ids=[repr(r)[:40] for r, _ in BAD_RATIONALES])
def test_order_body_when_its_rationale_is_bad_then_422_naming_the_field_and_nothing_written(
    memory_api: Api, rationale, message
):
    api = memory_api
    head = api.head()
    requests = [
        ("/api/market/positions", {**ORDER, "rationale": rationale}),
        ("/api/market/orders", {**ORDER, "limit_price": "0.3", "rationale": rationale}),
        ("/api/portfolio/alice/kelly", {"artifact": ART, "belief": "0.9", "rationale": rationale}),
        ("/api/portfolio/orders/batch", {"orders": [ORDER, {**ORDER, "rationale": rationale}]}),
    ]
    for path, body in requests:
        response = api.post(path, body, api.alice)
        assert response.status_code == 422, (path, response.json())
        assert response.json()["error"] == "INVALID_INPUT"
        assert message in response.json()["message"], (path, response.json())
    assert api.head() == head


def test_kelly_body_when_dry_run_with_a_rationale_or_another_belief_then_refused(memory_api: Api):
    api = memory_api
    head = api.head()
    dry = api.post(
        "/api/portfolio/alice/kelly", {"artifact": ART, "belief": "0.9", "dry_run": True, "rationale": WHY}, api.alice
    )
    assert dry.status_code == 422 and "records no rationale" in dry.json()["message"]
    other = api.post("/api/portfolio/alice/kelly", {"artifact": ART, "belief": "0.9", "rationale": WHY}, api.alice)
    assert other.status_code == 422 and "input belief" in other.json()["message"]
    assert api.head() == head


def test_same_idempotency_key_when_the_rationale_differs_then_409_mismatch_and_nothing_written(memory_api: Api):
    api = memory_api
    first = api.post("/api/market/positions", {**ORDER, "rationale": WHY}, api.alice, idempotency="why-1")
    retry = api.post("/api/market/positions", {**ORDER, "rationale": WHY}, api.alice, idempotency="why-1")
    assert first.status_code == retry.status_code == 201 and retry.json() == first.json()
    head = api.head()
    for body in ({**ORDER, "rationale": {**WHY, "edge": "0.05"}}, ORDER):
        response = api.post("/api/market/positions", body, api.alice, idempotency="why-1")
        assert response.status_code == 409 and response.json()["error"] == "IDEMPOTENCY_MISMATCH"
    assert api.head() == head
