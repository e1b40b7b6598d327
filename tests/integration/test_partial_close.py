"""Partial close (issue 15): `close_position` with ``shares_units`` sells part of a position, with
``tokens_units`` the fewest shares whose sale pays at least that; the P&L realised is the proceeds
less the cost the sold shares carried (pro rata, floored), and the rest stays open with the
remaining cost. Also over the CLI and HTTP; new markets have no minimum hold unless asked.
On memory, SQLite and PostgreSQL.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest

from stakeledger.domain.errors import HoldPeriodError, InvalidAmountError, InvalidInputError
from stakeledger.domain.rules.lmsr import sell_proceeds_units
from stakeledger.domain.service.application import StakeLedger
from stakeledger.domain.vocabulary import Side
from stakeledger.projections import queries
from stakeledger.projections.runner import Runner
from stakeledger.projections.store import open_store
from tests.api.conftest import ART as API_ART
from tests.api.conftest import Api, make_api
from tests.cli.test_cli import run
from tests.integration.test_markets import (
    ART,
    FUNDS_UNITS,
    LIQUIDITY_UNITS,
    TOKEN,
    assert_audit_clean,
    list_market,
    open_funded,
    position_of,
    state_of,
)


def portfolio_row(ledger: StakeLedger, position_id: str) -> dict[str, Any]:
    store = open_store(ledger)
    try:
        Runner(ledger, store).catch_up()
        rows = queries.portfolio(store, position_of(ledger, position_id).owner)["positions"]
    finally:
        store.close()
    (row,) = [row for row in rows if row["position_id"] == position_id]
    return row


def capital_committed(ledger: StakeLedger) -> int:
    """What the markets view says is still at risk in the market's live positions."""
    store = open_store(ledger)
    try:
        Runner(ledger, store).catch_up()
        (market,) = [row for row in queries.artifacts(store) if row["artifact"] == ART]
    finally:
        store.close()
    return int(market["capital_committed_units"])


def bought(ledger: StakeLedger, side: str = "long", tokens_units: int = 40 * TOKEN) -> str:
    open_funded(ledger, "alice", "bob")
    list_market(ledger)
    ledger.open_position("bob", ART, "short", 15 * TOKEN)  # away from the symmetric point
    return ledger.open_position("alice", ART, side, tokens_units)["position"]


@pytest.mark.parametrize("side", ["long", "short"])
def test_partial_close_when_part_of_the_shares_sold_then_pnl_is_pro_rata_to_the_unit_and_the_rest_stays_open(
    ledger: StakeLedger, side
):
    position_id = bought(ledger, side)
    held = position_of(ledger, position_id)
    quantity, cost = held.quantity_units, held.cost_units
    sold = quantity // 3 + 7  # not a round fraction: the floor matters
    artifact = ledger.get_artifact(ART)
    expected_proceeds = sell_proceeds_units(artifact.q_long, artifact.q_short, artifact.b_units, Side(side), sold)
    balance = ledger.balance_of("alice")
    committed = capital_committed(ledger)

    result = ledger.close_position(position_id, agent="alice", shares_units=sold)

    released = cost * sold // quantity
    assert int(result["shares_sold_units"]) == sold and int(result["shares_left_units"]) == quantity - sold
    assert int(result["proceeds_units"]) == expected_proceeds
    assert int(result["cost_released_units"]) == released
    assert int(result["pnl_units"]) == expected_proceeds - released
    assert result["status"] == "open"
    now = position_of(ledger, position_id)
    assert (now.status, now.quantity_units, now.cost_units) == ("open", quantity - sold, cost - released)
    assert now.realized_pnl_units == expected_proceeds - released
    assert ledger.balance_of("alice") == balance + expected_proceeds
    after = ledger.get_artifact(ART)
    q_sold = (after.q_long, after.q_short) if side == "long" else (after.q_short, after.q_long)
    q_before = (artifact.q_long, artifact.q_short) if side == "long" else (artifact.q_short, artifact.q_long)
    assert q_sold == (q_before[0] - sold, q_before[1])
    row = portfolio_row(ledger, position_id)
    assert (row["status"], int(row["quantity_units"]), int(row["cost_units"])) == (
        "open",
        quantity - sold,
        cost - released,
    )
    assert int(row["realized_pnl_units"]) == expected_proceeds - released
    assert capital_committed(ledger) == committed - released  # the cost left stays at risk
    assert_audit_clean(ledger)


def test_partial_close_when_closed_in_steps_then_the_total_pnl_is_all_proceeds_less_the_whole_cost(
    ledger: StakeLedger,
):
    position_id = bought(ledger)
    quantity, cost = position_of(ledger, position_id).quantity_units, position_of(ledger, position_id).cost_units
    start = ledger.balance_of("alice")
    first = ledger.close_position(position_id, shares_units=quantity // 4)
    second = ledger.close_position(position_id, shares_units=quantity // 4 + 1)
    last = ledger.close_position(position_id)

    proceeds = sum(int(step["proceeds_units"]) for step in (first, second, last))
    released = sum(int(step["cost_released_units"]) for step in (first, second, last))
    assert released == cost
    assert int(last["shares_sold_units"]) == quantity - 2 * (quantity // 4) - 1 and last["status"] == "closed"
    now = position_of(ledger, position_id)
    assert now.status == "closed" and now.realized_pnl_units == proceeds - cost
    assert sum(int(step["pnl_units"]) for step in (first, second, last)) == proceeds - cost
    assert ledger.balance_of("alice") == start + proceeds
    assert int(portfolio_row(ledger, position_id)["realized_pnl_units"]) == proceeds - cost
    assert_audit_clean(ledger)


def test_partial_close_when_all_the_shares_are_named_then_it_is_a_full_close(ledger: StakeLedger):
    position_id = bought(ledger)
    quantity = position_of(ledger, position_id).quantity_units
    result = ledger.close_position(position_id, shares_units=quantity)
    assert result["status"] == "closed" and int(result["shares_left_units"]) == 0
    assert position_of(ledger, position_id).status == "closed"
    assert_audit_clean(ledger)


def test_partial_close_when_tokens_wanted_then_the_fewest_shares_that_pay_them_are_sold(ledger: StakeLedger):
    position_id = bought(ledger)
    artifact = ledger.get_artifact(ART)
    quantity = position_of(ledger, position_id).quantity_units
    wanted = 10 * TOKEN + 3

    result = ledger.close_position(position_id, tokens_units=wanted)

    sold = int(result["shares_sold_units"])
    assert 0 < sold < quantity
    assert int(result["proceeds_units"]) >= wanted
    fewer = sell_proceeds_units(artifact.q_long, artifact.q_short, artifact.b_units, Side.LONG, sold - 1)
    assert fewer < wanted
    assert_audit_clean(ledger)


@pytest.mark.parametrize(
    ("how", "error"),
    [
        ("more-than-held", InvalidAmountError),
        ("zero", InvalidAmountError),
        ("negative", InvalidAmountError),
        ("both", InvalidInputError),
        ("tokens-beyond-everything", InvalidAmountError),
        ("zero-tokens", InvalidAmountError),
    ],
)
def test_partial_close_when_the_amount_is_wrong_then_refused_and_nothing_written(ledger: StakeLedger, how, error):
    position_id = bought(ledger)
    quantity = position_of(ledger, position_id).quantity_units
    arguments = {
        "more-than-held": {"shares_units": quantity + 1},
        "zero": {"shares_units": 0},
        "negative": {"shares_units": -5},
        "both": {"shares_units": 5, "tokens_units": 5},
        "tokens-beyond-everything": {"tokens_units": quantity},  # selling x shares pays less than x
        "zero-tokens": {"tokens_units": 0},
    }[how]
    before = state_of(ledger)
    with pytest.raises(error) as refused:
        ledger.close_position(position_id, **arguments)
    if how == "more-than-held":
        assert "holds" in str(refused.value) and "cannot sell" in str(refused.value)
    assert state_of(ledger) == before
    assert position_of(ledger, position_id).quantity_units == quantity


def test_min_hold_when_a_market_is_listed_without_one_then_closes_at_once_and_90_days_stays_available(
    ledger: StakeLedger,
):
    open_funded(ledger, "alice")
    ledger.list_artifact("FAST", "No hold", LIQUIDITY_UNITS)
    ledger.list_artifact("SLOW", "Seed 000's hold", LIQUIDITY_UNITS, min_hold_days=90)
    fast = ledger.open_position("alice", "FAST", "long", 5 * TOKEN)["position"]
    slow = ledger.open_position("alice", "SLOW", "long", 5 * TOKEN)["position"]
    assert ledger.artifact_state("FAST")["min_hold_days"] == 0
    ledger.close_position(fast, shares_units=TOKEN)
    before = state_of(ledger, "SLOW")
    with pytest.raises(HoldPeriodError):
        ledger.close_position(slow, shares_units=TOKEN)
    assert state_of(ledger, "SLOW") == before
    assert ledger.balance_of("alice") < FUNDS_UNITS


# Over the CLI and HTTP ---------------------------------------------------------------------


@pytest.fixture
def cli_db(durable_store_url) -> str:
    from stakeledger.adapters.persistence.store_url import open_ledger

    app = open_ledger(durable_store_url)
    try:
        app.initialise(decimals=6)
        open_funded(app, "alice")
        list_market(app)
        app.open_position("alice", ART, "long", 10 * TOKEN)
    finally:
        app.close()
    return durable_store_url


def cli_position(url: str) -> tuple[int, int, int]:
    from stakeledger.adapters.persistence.store_url import open_ledger

    app = open_ledger(url)
    try:
        held = position_of(app, f"{ART}/p1")
        return held.quantity_units, held.cost_units, app.recorder.max_notification_id() or 0
    finally:
        app.close()


def test_cli_close_when_shares_given_then_sells_part_and_says_what_stays_open(cli_db, capsys, monkeypatch):
    quantity, cost, _ = cli_position(cli_db)
    code, out, err = run(capsys, monkeypatch, "--db", cli_db, "trade", "close", f"{ART}/p1", "--shares", "2.5")
    assert code == 0, err
    left, left_cost, _ = cli_position(cli_db)
    assert left == quantity - 2_500_000 and left_cost == cost - cost * 2_500_000 // quantity
    assert out.startswith(f"Sold 2.5 shares of {ART}/p1 for ") and "shares stay open" in out


@pytest.mark.parametrize("shares", ["0", "-1", "2.1234567", " 2", "1000000"])
def test_cli_close_when_the_shares_are_wrong_then_refused_and_nothing_written(cli_db, capsys, monkeypatch, shares):
    before = cli_position(cli_db)
    code, out, err = run(capsys, monkeypatch, "--db", cli_db, "trade", "close", f"{ART}/p1", f"--shares={shares}")
    assert code not in (0, None) and err
    assert cli_position(cli_db) == before


@pytest.fixture
def api(store_url, clock) -> Iterator[Api]:
    yield from make_api(store_url, clock)


def test_api_close_when_a_body_names_shares_or_tokens_then_sells_part(api: Api):
    position_id = api.buy(api.alice, tokens="20").json()["position"]
    response = api.post(f"/api/market/positions/{position_id}/close", {"shares": "3"}, api.alice)
    assert response.status_code == 200, response.text
    body = response.json()
    assert (body["shares_sold"], body["status"]) == ("3", "open")
    assert int(body["pnl_units"]) == int(body["proceeds_units"]) - int(body["cost_released_units"])
    response = api.post(f"/api/market/positions/{position_id}/close", {"tokens": "2"}, api.alice)
    assert response.status_code == 200, response.text
    assert int(response.json()["proceeds_units"]) >= 2 * TOKEN
    response = api.post(f"/api/market/positions/{position_id}/close", None, api.alice)
    assert response.status_code == 200 and response.json()["status"] == "closed"
    assert API_ART in position_id


@pytest.mark.parametrize("body", [{"shares": "0"}, {"shares": "1.0000001"}, {"shares": 3}, {"shares": "999999"}])
def test_api_close_when_the_shares_are_wrong_then_refused_and_nothing_written(api: Api, body):
    position_id = api.buy(api.alice, tokens="20").json()["position"]
    head = api.head()
    response = api.post(f"/api/market/positions/{position_id}/close", body, api.alice)
    assert response.status_code in (409, 422), response.text
    assert response.json()["error"] in ("INVALID_AMOUNT", "INVALID_INPUT")
    assert api.head() == head
