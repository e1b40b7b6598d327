"""Take-profit (issue 15): a resting sell of a position that fills, in the same transaction as
the trade that moved the price, while the position's side is priced above its limit; it sells
only down to the limit, so its average price is at least the limit. Cancelled with
cancel_order, expires, replays identically. On memory, SQLite and PostgreSQL.
"""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from stakeledger.adapters.persistence.store_url import open_ledger
from stakeledger.domain.errors import InvalidAmountError, InvalidInputError, NotOwnerError, StateError
from stakeledger.domain.service.application import StakeLedger
from stakeledger.domain.service.clock import ManualClock
from stakeledger.domain.vocabulary import WAD, Side
from stakeledger.projections.replay_check import replay_check
from stakeledger.projections.runner import Runner
from stakeledger.projections.store import open_store
from tests.api.conftest import Api, make_api
from tests.cli.test_cli import run
from tests.integration.test_markets import (
    ART,
    TOKEN,
    assert_audit_clean,
    list_market,
    open_funded,
    position_of,
    price,
    state_of,
)


def holding(ledger: StakeLedger, side: str = "long", tokens_units: int = 20 * TOKEN) -> str:
    open_funded(ledger, "alice", "bob")
    list_market(ledger)
    return ledger.open_position("alice", ART, side, tokens_units)["position"]


def side_price(ledger: StakeLedger, side: str) -> int:
    return ledger.get_artifact(ART).side_price_wad(Side(side))


@pytest.mark.parametrize("side", ["long", "short"])
def test_take_profit_when_the_price_has_not_reached_the_limit_then_it_rests_and_sells_nothing(
    ledger: StakeLedger, side
):
    position_id = holding(ledger, side)
    limit = side_price(ledger, side) + WAD // 10
    placed = ledger.place_take_profit(position_id, limit, agent="alice")
    assert (placed["status"], placed["fills"]) == ("open", [])
    quantity = position_of(ledger, position_id).quantity_units
    ledger.open_position("bob", ART, side, 5 * TOKEN)  # up, but not past the limit
    assert side_price(ledger, side) < limit
    assert position_of(ledger, position_id).quantity_units == quantity
    assert ledger.get_artifact(ART).take_profits[placed["order"]]["status"] == "open"


@pytest.mark.parametrize("side", ["long", "short"])
def test_take_profit_when_a_trade_lifts_the_price_past_the_limit_then_it_sells_down_to_the_limit_in_that_trade(
    ledger: StakeLedger, side
):
    position_id = holding(ledger, side, 60 * TOKEN)
    limit = side_price(ledger, side) + WAD // 20
    order_id = ledger.place_take_profit(position_id, limit)["order"]
    quantity, cost = position_of(ledger, position_id).quantity_units, position_of(ledger, position_id).cost_units
    alice = ledger.balance_of("alice")

    trade = ledger.open_position("bob", ART, side, 40 * TOKEN)  # well past the limit

    (fill,) = [f for f in trade["fills"] if f["order"] == order_id]
    sold, proceeds = int(fill["shares_units"]), int(fill["proceeds_units"])
    assert 0 < sold < quantity and fill["kind"] == "take_profit"
    assert proceeds * WAD >= limit * sold  # never below the limit on average
    assert abs(side_price(ledger, side) - limit) <= WAD // 10**6  # sold down to the limit, no further
    now = position_of(ledger, position_id)
    assert (now.status, now.quantity_units) == ("open", quantity - sold)
    assert now.cost_units == cost - cost * sold // quantity
    assert ledger.balance_of("alice") == alice + proceeds
    assert ledger.get_artifact(ART).take_profits[order_id]["status"] == "partially_filled"
    assert_audit_clean(ledger)


def test_take_profit_when_the_crossing_would_sell_more_than_held_then_the_whole_position_closes_and_it_is_filled(
    ledger: StakeLedger,
):
    position_id = holding(ledger, "long", 2 * TOKEN)
    order_id = ledger.place_take_profit(position_id, side_price(ledger, "long") + WAD // 50)["order"]
    trade = ledger.open_position("bob", ART, "long", 80 * TOKEN)
    assert [f["order"] for f in trade["fills"]] == [order_id]
    assert position_of(ledger, position_id).status == "closed"
    assert ledger.get_artifact(ART).take_profits[order_id]["status"] == "filled"
    assert ledger.get_artifact(ART).resting_take_profits() == []
    assert_audit_clean(ledger)


def test_take_profit_when_placed_below_the_current_price_then_it_fills_at_once(ledger: StakeLedger):
    position_id = holding(ledger, "long", 30 * TOKEN)
    placed = ledger.place_take_profit(position_id, side_price(ledger, "long") - WAD // 50)
    assert placed["fills"] and placed["fills"][0]["position"] == position_id
    assert_audit_clean(ledger)


def test_take_profit_when_cancelled_or_expired_then_a_crossing_sells_nothing(ledger: StakeLedger, clock: ManualClock):
    position_id = holding(ledger, "long", 30 * TOKEN)
    limit = side_price(ledger, "long") + WAD // 50
    cancelled = ledger.place_take_profit(position_id, limit)["order"]
    assert ledger.cancel_order(cancelled, "alice")["status"] == "cancelled"
    with pytest.raises(StateError):
        ledger.cancel_order(cancelled, "alice")
    expiring = ledger.place_take_profit(position_id, limit, expires_in_days=1)["order"]
    with pytest.raises(NotOwnerError):
        ledger.cancel_order(expiring, "bob")
    clock.advance(days=2)
    quantity = position_of(ledger, position_id).quantity_units

    trade = ledger.open_position("bob", ART, "long", 50 * TOKEN)

    assert trade["fills"] == [] and position_of(ledger, position_id).quantity_units == quantity
    assert ledger.get_artifact(ART).take_profits[expiring]["status"] == "expired"


@pytest.mark.parametrize(
    ("how", "error"),
    [
        ("zero", InvalidAmountError),
        ("one", InvalidAmountError),
        ("past", InvalidInputError),
        ("not-owner", NotOwnerError),
        ("twice", StateError),
        ("closed", StateError),
    ],
)
def test_take_profit_when_refused_then_nothing_written(ledger: StakeLedger, how, error):
    position_id = holding(ledger)
    limit = side_price(ledger, "long") + WAD // 10
    if how == "twice":
        ledger.place_take_profit(position_id, limit)
    if how == "closed":
        ledger.close_position(position_id)
    before = state_of(ledger)
    with pytest.raises(error):
        if how in ("zero", "one"):
            ledger.place_take_profit(position_id, 0 if how == "zero" else WAD)
        elif how == "past":
            ledger.place_take_profit(position_id, limit, expires_in_days=0)
        elif how == "not-owner":
            ledger.place_take_profit(position_id, limit, agent="bob")
        else:
            ledger.place_take_profit(position_id, limit)
    assert state_of(ledger) == before


def test_take_profit_when_the_log_is_replayed_then_aggregates_and_views_are_identical(
    durable_store_url: str, clock: ManualClock
):
    ledger = open_ledger(durable_store_url, clock=clock)
    try:
        ledger.initialise(decimals=6)
        position_id = holding(ledger, "long", 40 * TOKEN)
        other = ledger.open_position("bob", ART, "short", 10 * TOKEN)["position"]
        ledger.place_take_profit(position_id, side_price(ledger, "long") + WAD // 40)
        ledger.place_take_profit(other, price("0.6"), expires_in_days=3)
        for side, tokens in (("long", 30), ("short", 25), ("long", 45), ("long", 5)):
            ledger.open_position("bob", ART, side, tokens * TOKEN)
        clock.advance(days=4)
        ledger.open_position("bob", ART, "short", 90 * TOKEN)
        assert_audit_clean(ledger)
        live = open_store(ledger)
        try:
            Runner(ledger, live).catch_up()
            assert replay_check(ledger, live) == []  # the views equal a fresh replay of the log
        finally:
            live.close()
        expected = (
            vars(position_of(ledger, position_id)).copy(),
            ledger.get_artifact(ART).take_profits,
            ledger.balance_of("alice"),
        )
        assert any(o["status"] != "open" for o in expected[1].values())
    finally:
        ledger.close()
    again = open_ledger(durable_store_url, clock=clock)
    try:  # the aggregates fold from the log again, to the same state
        assert (
            vars(position_of(again, position_id)).copy(),
            again.get_artifact(ART).take_profits,
            again.balance_of("alice"),
        ) == expected
    finally:
        again.close()


# Over the CLI and HTTP ---------------------------------------------------------------------


@pytest.fixture
def api(store_url, clock) -> Iterator[Api]:
    yield from make_api(store_url, clock)


def test_api_take_profit_when_placed_crossed_and_cancelled_then_each_answers(api: Api):
    mine = api.buy(api.alice, tokens="20").json()["position"]
    response = api.post(f"/api/market/positions/{mine}/take-profit", {"limit_price": "0.9"}, api.alice)
    assert response.status_code == 201, response.text
    order_id = response.json()["order"]
    assert response.json()["status"] == "open" and response.json()["limit_price"].startswith("0.9")
    head = api.head()
    refused = api.post(f"/api/market/positions/{mine}/take-profit", {"limit_price": "0.9"}, api.bob)
    assert refused.status_code == 403 and api.head() == head
    bad = api.post(f"/api/market/positions/{mine}/take-profit", {"limit_price": 0.9}, api.alice)
    assert bad.status_code == 422 and api.head() == head
    assert api.delete(f"/api/market/orders/{order_id}", api.alice).json()["status"] == "cancelled"

    placed = api.post(f"/api/market/positions/{mine}/take-profit", {"limit_price": "0.55"}, api.alice).json()
    trade = api.buy(api.bob, agent="bob", tokens="200").json()
    assert [f["order"] for f in trade["fills"]] == [placed["order"]]


def test_cli_take_profit_when_placed_then_a_crossing_trade_reports_its_sale(durable_store_url, capsys, monkeypatch):
    app = open_ledger(durable_store_url)
    try:
        app.initialise(decimals=6)
        holding(app, "long", 20 * TOKEN)
    finally:
        app.close()
    db = ("--db", durable_store_url)
    code, out, err = run(capsys, monkeypatch, *db, "trade", "close", f"{ART}/p1", "--limit-price", "0.6")
    assert code == 0, err
    assert out.startswith(f"Take-profit {ART}/t1 on {ART}/p1 at 0.600000 is open.")
    code, out, err = run(
        capsys, monkeypatch, *db, "trade", "close", f"{ART}/p1", "--limit-price", "0.6", "--shares", "1"
    )
    assert code != 0 and "--shares" in err
    code, out, err = run(capsys, monkeypatch, *db, "trade", "open", "bob", ART, "--side", "long", "--tokens", "100")
    assert code == 0, err
    assert f"take-profit {ART}/t1 sold " in out
