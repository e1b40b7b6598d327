"""Every endpoint of the HTTP API doing its job, on the in-memory store, SQLite and PostgreSQL."""

from __future__ import annotations

from decimal import Decimal

from stakeledger.domain.model.accounts import pool_account_id
from tests.api.conftest import ART, FUNDS, SLOW_ART, TOKEN, Api


def test_get_healthz_when_store_initialised_then_ok_with_log_position(api: Api):
    response = api.get("/healthz")

    assert response.status_code == 200
    assert response.json() == {"status": "ok", "initialised": True, "log_position": api.head(), "decimals": 6}


def test_list_artifacts_when_two_are_listed_then_both_with_even_prices(api: Api):
    response = api.get("/api/market/artifacts")

    assert response.status_code == 200
    rows = {row["artifact"]: row for row in response.json()}
    assert set(rows) == {ART, SLOW_ART}
    assert rows[ART]["price_long"] == "0.500000"
    assert rows[ART]["liquidity_units"] == str(100 * TOKEN) and rows[ART]["liquidity"] == "100"


def test_get_artifact_when_listed_then_state_pool_and_prices_from_the_aggregate(api: Api):
    response = api.get(f"/api/market/artifacts/{ART}")

    body = response.json()
    assert response.status_code == 200
    assert body["state"] == "listed" and body["group"] == "bio"
    assert int(body["pool_units"]) == api.ledger.balance_of(pool_account_id(ART))
    assert Decimal(body["price_long"]) + Decimal(body["price_short"]) == 1


def test_quote_when_tokens_given_then_shares_and_prices_and_nothing_written(api: Api):
    before = api.head()

    response = api.get(f"/api/market/artifacts/{ART}/quote", params={"side": "long", "tokens": "10"})

    body = response.json()
    assert response.status_code == 200
    assert body["cost_units"] == str(10 * TOKEN) and body["cost"] == "10"
    assert int(body["shares_units"]) > 10 * TOKEN  # below 0.5 a token buys more than one share
    assert Decimal(body["price_long_after"]) > Decimal(body["price_long_before"]) == Decimal("0.5")
    assert api.head() == before


def test_market_order_when_own_trade_key_then_position_opened_and_portfolio_shows_it(api: Api):
    quote = api.get(f"/api/market/artifacts/{ART}/quote", params={"side": "long", "tokens": "10"}).json()

    response = api.buy(api.alice, tokens="10")

    body = response.json()
    assert response.status_code == 201
    assert body["position"] == f"{ART}/p1" and body["shares_units"] == quote["shares_units"]
    portfolio = api.get("/api/portfolio/alice", api.alice).json()
    assert [p["position_id"] for p in portfolio["positions"]] == [f"{ART}/p1"]
    assert portfolio["cost_units"] == str(10 * TOKEN)
    account = api.get("/api/accounts/alice", api.alice).json()
    assert account["balance_units"] == str((int(FUNDS) - 10) * TOKEN) and account["balance"] == "990"


def test_market_order_when_average_price_above_bound_then_409_slippage_and_nothing_written(api: Api):
    before = api.head()

    response = api.buy(api.alice, tokens="50", max_price="0.51")

    assert response.status_code == 409
    assert response.json()["error"] == "SLIPPAGE_EXCEEDED"
    assert api.head() == before


def test_limit_order_then_cancel_when_owner_then_escrow_released_and_book_empty(api: Api):
    placed = api.post(
        "/api/market/orders",
        {"agent": "alice", "artifact": ART, "side": "short", "tokens": "20", "limit_price": "0.3"},
        api.alice,
    )
    order_id = placed.json()["order"]
    book = api.get(f"/api/market/artifacts/{ART}/book").json()

    cancelled = api.delete(f"/api/market/orders/{order_id}", api.alice)

    assert placed.status_code == 201 and placed.json()["status"] == "open"
    assert [o["order_id"] for o in book["orders"]] == [order_id] and book["orders"][0]["limit_price"] == "0.300000"
    assert cancelled.status_code == 200
    assert cancelled.json() == {
        "order": order_id,
        "status": "cancelled",
        "released_units": str(20 * TOKEN),
        "released": "20",
    }
    assert api.get(f"/api/market/artifacts/{ART}/book").json()["orders"] == []
    assert api.ledger.balance_of("alice") == int(FUNDS) * TOKEN


def test_cancel_when_admin_key_and_slash_encoded_then_cancelled_for_the_owner(api: Api):
    order_id = api.post(
        "/api/market/orders",
        {"agent": "bob", "artifact": ART, "side": "long", "tokens": "5", "limit_price": "0.2"},
        api.bob,
    ).json()["order"]

    response = api.delete(f"/api/market/orders/{order_id.replace('/', '%2F')}", api.admin)

    assert response.status_code == 200 and response.json()["status"] == "cancelled"
    assert api.ledger.balance_of("bob") == int(FUNDS) * TOKEN


def test_close_position_when_owner_then_proceeds_credited_and_position_closed(api: Api):
    position_id = api.buy(api.alice, tokens="10").json()["position"]

    response = api.post(f"/api/market/positions/{position_id}/close", key=api.alice)

    body = response.json()
    assert response.status_code == 200
    assert body["position"] == position_id and int(body["pnl_units"]) <= 0  # selling straight back costs rounding
    assert api.ledger.balance_of("alice") == (int(FUNDS) - 10) * TOKEN + int(body["proceeds_units"])
    statuses = {p["position_id"]: p["status"] for p in api.get("/api/portfolio/alice", api.alice).json()["positions"]}
    assert statuses == {position_id: "closed"}


def test_lifecycle_transition_when_validated_then_positions_settle_and_reads_show_it(api: Api):
    long_id = api.buy(api.alice, side="long", tokens="30").json()["position"]
    short_id = api.buy(api.bob, agent="bob", side="short", tokens="10").json()["position"]

    response = api.post(
        f"/api/artifacts/{ART}/lifecycle-transition",
        {"state": "validated", "price": "0.9", "reason": "replicated"},
        api.admin,
    )

    body = response.json()
    assert response.status_code == 200
    assert (body["from"], body["to"], body["positions"]) == ("listed", "validated", 2)
    history = api.get("/api/market/settlements", params={"artifact_id": ART}).json()
    assert {row["position_id"] for row in history} == {long_id, short_id}
    bob_only = api.get("/api/market/settlements", params={"agent_id": "bob", "limit": 1}).json()
    assert [row["position_id"] for row in bob_only] == [short_id] and bob_only[0]["payout_units"] == "0"
    assert api.get("/api/market/settlements", params={"artifact_id": "NOPE"}).json()["error"] == "UNKNOWN_ARTIFACT"
    assert api.get("/api/market/settlements", params={"agent_id": "nobody"}).status_code == 404
    reputation = {row["agent"]: row for row in api.get("/api/reputation").json()}
    assert Decimal(reputation["alice"]["believability"]) > Decimal("0.5") > Decimal(reputation["bob"]["believability"])
    assert api.get("/api/reputation/bob").json()["history"][0]["position_id"] == short_id
    inbox = api.get("/api/accounts/alice/inbox", api.alice).json()
    assert [message["position_id"] for message in inbox] == [long_id] and "settled" in inbox[0]["message"]
    assert api.get("/api/audit", api.admin).json()["clean"] is True


def test_lifecycle_transition_when_challenged_then_trades_refused_with_409_frozen(api: Api):
    api.post(f"/api/artifacts/{ART}/lifecycle-transition", {"state": "challenged"}, api.admin)
    before = api.head()

    response = api.buy(api.alice)

    assert response.status_code == 409 and response.json()["error"] == "FROZEN"
    assert api.head() == before


def test_bounty_when_posted_then_distributed_by_weight_and_another_refunded(api: Api):
    first = api.post("/api/bounties", {"artifact": ART, "sponsor": "alice", "amount": "15"}, api.alice).json()["bounty"]
    second = api.post("/api/bounties", {"artifact": ART, "sponsor": "alice", "amount": "5"}, api.alice).json()["bounty"]

    distributed = api.post(
        f"/api/bounties/{first}/distribute",
        {"claimants": [{"agent": "bob", "weight": "4/5"}, {"agent": "alice", "weight": "0.2"}]},
        api.admin,
    )
    refunded = api.post(f"/api/bounties/{second}/refund", key=api.admin)

    assert distributed.status_code == 200
    assert distributed.json()["shares"] == {
        "bob": {"amount_units": str(12 * TOKEN), "amount": "12"},
        "alice": {"amount_units": str(3 * TOKEN), "amount": "3"},
    }
    assert refunded.status_code == 200 and refunded.json()["refunded_units"] == str(5 * TOKEN)
    assert api.ledger.balance_of("bob") == (int(FUNDS) + 12) * TOKEN
    assert api.ledger.balance_of("alice") == (int(FUNDS) - 12) * TOKEN
    bounties = api.get(f"/api/market/artifacts/{ART}").json()["bounties"]
    assert {bounty_id: b["status"] for bounty_id, b in bounties.items()} == {first: "distributed", second: "refunded"}


def test_statement_when_at_an_earlier_position_then_balance_as_it_stood(api: Api):
    minted_at = api.head()
    api.buy(api.alice, tokens="10")

    now = api.get("/api/accounts/alice/statement", api.alice).json()
    then = api.get("/api/accounts/alice/statement", api.alice, params={"at": minted_at}).json()

    assert now["balance_units"] == str((int(FUNDS) - 10) * TOKEN)
    assert [line["reason"] for line in now["lines"]] == ["mint", "trade:open"]
    assert then["balance_units"] == str(int(FUNDS) * TOKEN) and then["balance"] == FUNDS


def test_statement_when_at_is_beyond_the_log_then_422_naming_the_last_position(api: Api):
    beyond = api.head() + 1

    response = api.get("/api/accounts/alice/statement", api.alice, params={"at": beyond})

    assert response.status_code == 422, response.text
    assert response.json() == {
        "error": "INVALID_INPUT",
        "message": f"log position {beyond} is beyond {beyond - 1}, the last position the statements view holds",
    }


def test_open_account_mint_and_transfer_when_allowed_then_balances_move(api: Api):
    carol = api.post("/api/accounts/alice/transfers", {"to": "bob", "amount": "2.5"}, api.alice)
    opened = api.post("/api/accounts", {"agent": "carol"}, api.admin)
    minted = api.post("/api/accounts/carol/mint", {"amount": "7.25"}, api.admin)

    assert carol.status_code == 200 and carol.json()["amount"] == "2.5"
    assert opened.status_code == 201 and opened.json()["balance_units"] == "0"
    assert minted.status_code == 200 and minted.json()["amount_units"] == "7250000"
    assert api.ledger.balance_of("bob") == int(FUNDS) * TOKEN + 2_500_000
    assert api.ledger.balance_of("carol") == 7_250_000


def test_metrics_when_agent_traded_then_summary_and_performance(api: Api):
    api.buy(api.alice, tokens="10")

    response = api.get("/api/portfolio/alice/metrics", api.alice)

    body = response.json()
    assert response.status_code == 200
    assert body["summary"]["active_positions"] == 1 and body["summary"]["deployed_units"] == str(10 * TOKEN)
    assert body["performance"]["agent"] == "alice" and body["performance"]["days"] == 1


def test_projections_status_when_a_read_caught_up_then_no_view_lags(api: Api):
    api.buy(api.alice)
    api.get("/api/market/artifacts")

    rows = api.get("/api/projections").json()

    assert {row["view"] for row in rows} >= {"statements", "markets", "settlements", "reputation", "inbox"}
    assert all(row["lag"] == 0 and row["head"] == api.head() for row in rows)


def test_openapi_and_docs_when_requested_then_every_issue_endpoint_is_described(memory_api: Api):
    paths = memory_api.get("/openapi.json").json()["paths"]
    docs = memory_api.get("/docs")

    expected = {
        "/healthz": "get",
        "/api/market/artifacts": "get",
        "/api/market/artifacts/{artifact_id}": "get",
        "/api/market/artifacts/{artifact_id}/book": "get",
        "/api/market/artifacts/{artifact_id}/quote": "get",
        "/api/market/positions": "post",
        "/api/market/positions/{position_id}/close": "post",
        "/api/market/orders": "post",
        "/api/market/orders/{order_id}": "delete",
        "/api/artifacts/{artifact_id}/lifecycle-transition": "post",
        "/api/market/settlements": "get",
        "/api/reputation": "get",
        "/api/reputation/{agent}": "get",
        "/api/accounts/{agent}": "get",
        "/api/accounts/{agent}/statement": "get",
        "/api/accounts/{agent}/inbox": "get",
        "/api/portfolio/{agent}": "get",
        "/api/portfolio/{agent}/metrics": "get",
        "/api/bounties": "post",
        "/api/bounties/{bounty_id}/distribute": "post",
        "/api/bounties/{bounty_id}/refund": "post",
        "/api/audit": "get",
        "/api/projections": "get",
    }
    assert {path: method for path, method in expected.items() if method not in paths.get(path, {})} == {}
    assert docs.status_code == 200 and "swagger" in docs.text.lower()
