"""Issue 15 over HTTP: the portfolio and risk verbs (api/portfolio.py), exit-value marks,
expired escrow, account refusals in tokens, and expires_in_days as a decimal string.
On the in-memory store, SQLite and PostgreSQL (``api``) or in memory alone (``memory_api``)."""

from __future__ import annotations

from typing import Any

import pytest

from stakeledger.domain.rules.lmsr import sell_proceeds_units
from stakeledger.domain.vocabulary import Side
from tests.api.conftest import ART, TOKEN, Api, auth


def put(api: Api, path: str, body: Any, key: str, idempotency: str | None = None) -> Any:
    headers = auth(key)
    if idempotency is not None:
        headers["Idempotency-Key"] = idempotency
    return api.client.put(path, json=body, headers=headers)


def delete(api: Api, path: str, key: str) -> Any:
    return api.client.delete(path, headers=auth(key))


# Marks at exit value ----------------------------------------------------------------------------


def test_portfolio_when_just_bought_then_value_is_exit_value_and_unrealised_not_a_gain(api):
    assert api.buy(api.alice, tokens="50").status_code == 201

    body = api.get("/api/portfolio/alice", api.alice).json()

    (row,) = body["positions"]
    artifact = api.ledger.get_artifact(ART)
    exit_value = sell_proceeds_units(
        artifact.q_long, artifact.q_short, artifact.b_units, Side.LONG, int(row["quantity_units"])
    )
    assert row["value_units"] == str(exit_value)
    assert int(row["unrealized_pnl_units"]) == exit_value - 50 * TOKEN <= 0
    summary = api.get("/api/portfolio/alice/summary", api.alice).json()
    assert summary["marked_units"] == str(exit_value)
    assert int(summary["unrealized_pnl_units"]) <= 0


# Configuration, Kelly, stops ----------------------------------------------------------------------


def test_config_when_put_then_limits_apply_and_a_json_number_is_refused_naming_the_field(api):
    response = put(api, "/api/portfolio/alice/config", {"max_position_size_pct": "2"}, api.alice)
    assert response.status_code == 200, response.text
    assert response.json()["config"]["max_position_size_pct"] == "2"

    rejected = api.buy(api.alice, tokens="30")  # 30 tokens is 3 % of 1,000
    assert rejected.status_code == 409
    assert rejected.json()["error"] == "MAX_POSITION_PCT"
    assert "tokens" in rejected.json()["message"] and "_units=" not in rejected.json()["message"]

    head = api.head()
    refused = put(api, "/api/portfolio/alice/config", {"max_position_size_pct": 2}, api.alice)
    assert refused.status_code == 422
    assert refused.json()["message"].startswith("body.max_position_size_pct:")
    assert api.head() == head


def test_config_when_another_agents_key_then_forbidden_and_nothing_written(api):
    head = api.head()
    response = put(api, "/api/portfolio/alice/config", {"max_positions": 3}, api.bob)
    assert response.status_code == 403
    assert api.head() == head


def test_market_config_when_trail_set_then_new_positions_start_a_stop(api):
    put(api, "/api/portfolio/alice/config", {}, api.alice)
    response = put(api, f"/api/portfolio/alice/markets/{ART}/config", {"trail_pct": "10"}, api.alice)
    assert response.status_code == 200, response.text

    position = api.buy(api.alice, tokens="10").json()["position"]

    assert position in api.ledger.get_artifact(ART).stops


def test_kelly_when_dry_run_then_only_the_sized_order_and_nothing_written(api):
    head = api.head()
    response = api.post("/api/portfolio/alice/kelly", {"artifact": ART, "belief": "0.7", "dry_run": True}, api.alice)

    assert response.status_code == 200, response.text
    body = response.json()
    assert (body["dry_run"], body["side"], body["should_order"]) == (True, "long", True)
    assert int(body["size_units"]) > 0 and "trade" not in body
    assert api.head() == head

    placed = api.post("/api/portfolio/alice/kelly", {"artifact": ART, "belief": "0.7"}, api.alice)
    assert placed.status_code == 201, placed.text
    assert placed.json()["size_units"] == body["size_units"]  # the dry run sized what is placed
    assert placed.json()["trade"]["cost_units"] == body["size_units"]


def test_stop_when_put_twice_then_replaced_and_delete_removes_it(api):
    position = api.buy(api.alice, tokens="10").json()["position"]
    path = f"/api/portfolio/stops/{position}"

    first = put(api, path, {"trail_pct": "10"}, api.alice)
    second = put(api, path, {"trail_pct": "5"}, api.alice)

    assert (first.status_code, first.json()["replaced"]) == (200, False)
    assert (second.status_code, second.json()["replaced"], second.json()["previous_trail_pct"]) == (200, True, "10")
    assert api.ledger.get_artifact(ART).stops[position]["stop"]["trail_pct"] == "5"
    assert put(api, path, {"trail_pct": "10"}, api.bob).status_code == 403
    removed = delete(api, path, api.alice)
    assert (removed.status_code, removed.json()["removed"]) == (200, True)
    again = delete(api, path, api.alice)
    assert (again.status_code, again.json()["error"]) == (409, "STATE_CONFLICT")


@pytest.mark.parametrize("trail", ["0", "100", "-3"])
def test_stop_when_percent_out_of_range_then_refused_naming_the_unit(memory_api, trail):
    api = memory_api
    position = api.buy(api.alice, tokens="10").json()["position"]
    head = api.head()

    response = put(api, f"/api/portfolio/stops/{position}", {"trail_pct": trail}, api.alice)

    assert response.status_code == 422
    assert "takes a percentage above 0 and below 100 (10 means 10 %)" in response.json()["message"]
    assert api.head() == head


# Batches, liquidation, dashboard --------------------------------------------------------------------


def test_batch_when_one_order_rejected_then_207_lists_the_row_and_the_rest_are_placed(api):
    put(api, "/api/portfolio/alice/config", {}, api.alice)  # under limits, one position per market
    orders = [
        {"agent": "bob", "artifact": ART, "side": "long", "tokens": "5"},
        {"agent": "alice", "artifact": ART, "side": "long", "tokens": "40"},
        {
            "agent": "alice",
            "artifact": ART,
            "side": "short",
            "tokens": "40",
            "limit_price": "0.2",
            "expires_in_days": "2",
        },
    ]

    response = api.post("/api/portfolio/orders/batch", {"orders": orders}, api.admin)

    assert response.status_code == 207, response.text
    body = response.json()
    assert body["placed"] == 2
    assert [(r["row"], r["reason"]) for r in body["rejected"]] == [(3, "ALREADY_IN_MARKET")]
    assert body["rejected"][0]["message"] == f"ALREADY_IN_MARKET artifact_id={ART}"
    assert "position" in body["results"][1] and api.ledger.get_artifact(ART).orders == {}


def test_batch_when_bad_row_then_whole_batch_refused_and_nothing_written(api):
    head = api.head()
    orders = [
        {"agent": "alice", "artifact": ART, "side": "long", "tokens": "5"},
        {"agent": "alice", "artifact": ART, "side": "long", "tokens": "5", "expires_in_days": "2"},
    ]
    response = api.post("/api/portfolio/orders/batch", {"orders": orders}, api.alice)
    assert response.status_code == 422
    assert "order 2: expires_in_days applies to limit orders only" in response.json()["message"]
    assert api.head() == head


def test_batch_when_key_may_not_act_for_a_row_then_forbidden(api):
    head = api.head()
    orders = [{"agent": "bob", "artifact": ART, "side": "long", "tokens": "5"}]
    assert api.post("/api/portfolio/orders/batch", {"orders": orders}, api.alice).status_code == 403
    assert api.head() == head


def test_liquidate_and_dashboard_when_positions_then_closed_and_reported(api):
    put(api, "/api/portfolio/alice/config", {}, api.alice)
    api.buy(api.alice, tokens="10")
    for view in ("summary", "concentration", "pairs", "rebalance"):
        response = api.get(f"/api/portfolio/alice/{view}", api.alice)
        assert response.status_code == 200, (view, response.text)
    assert len(api.get("/api/portfolio/alice/concentration", api.alice).json()) == 1

    response = api.post("/api/portfolio/alice/liquidate", None, api.alice)

    assert response.status_code == 200, response.text
    assert response.json()["closed"] == [f"{ART}/p1"]
    assert api.get("/api/portfolio/alice/summary", api.alice).json()["active_positions"] == 0
    assert api.get("/api/portfolio/nobody/summary", api.admin).status_code == 404


# Expiry and orders ----------------------------------------------------------------------------------


def test_limit_order_when_expires_in_days_is_a_number_then_refused_naming_the_field(api):
    head = api.head()
    body = {"agent": "alice", "artifact": ART, "side": "long", "tokens": "5", "limit_price": "0.3"}

    refused = api.post("/api/market/orders", {**body, "expires_in_days": 2}, api.alice)

    assert refused.status_code == 422
    assert refused.json()["message"].startswith("body.expires_in_days:")
    assert api.head() == head
    placed = api.post("/api/market/orders", {**body, "expires_in_days": "0.5"}, api.alice)
    assert placed.status_code == 201, placed.text


def test_expire_when_order_past_expiry_then_portfolio_frees_it_and_the_sweep_releases_it(api):
    body = {"agent": "bob", "artifact": ART, "side": "long", "tokens": "10", "limit_price": "0.3"}
    order = api.post("/api/market/orders", {**body, "expires_in_days": "1"}, api.bob).json()["order"]
    api.clock.advance(days=2)

    portfolio = api.get("/api/portfolio/bob", api.bob).json()
    assert portfolio["orders"] == [] and portfolio["expired_escrow_units"] == str(10 * TOKEN)
    assert api.post("/api/orders/expire", None, api.bob).status_code == 403

    swept = api.post("/api/orders/expire", None, api.admin)

    assert swept.status_code == 200, swept.text
    assert swept.json()["expired"] == [{"order": order, "artifact": ART}]
    assert api.ledger.balance_of("bob") == 1000 * TOKEN


def test_transfer_when_short_of_funds_then_message_in_tokens(api):
    response = api.post("/api/accounts/alice/transfers", {"to": "bob", "amount": "1500.25"}, api.alice)

    assert response.status_code == 409
    assert response.json()["message"] == "account 'alice' holds 1000 tokens, 1500.25 tokens needed"


def test_account_when_order_expired_then_available_includes_its_escrow(api):
    body = {"agent": "bob", "artifact": ART, "side": "long", "tokens": "10", "limit_price": "0.3"}
    api.post("/api/market/orders", {**body, "expires_in_days": "1"}, api.bob)
    before = api.get("/api/accounts/bob", api.bob).json()
    assert before["available_units"] == before["balance_units"] == str(990 * TOKEN)

    api.clock.advance(days=1)
    after = api.get("/api/accounts/bob", api.bob).json()

    assert after["balance_units"] == str(990 * TOKEN)  # the release is not written yet
    assert after["available_units"] == str(1000 * TOKEN)
