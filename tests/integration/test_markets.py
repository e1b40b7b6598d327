"""The market verbs (list, quote, trade, limit orders, cancel, close, batch, depth), run on the
in-memory store, SQLite and PostgreSQL.

Amounts are in base units of a ledger with 6 decimals: ``TOKEN`` is one whole token.
"""

from __future__ import annotations

import tempfile
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any

import hypothesis.strategies as st
import psycopg
import pytest
from hypothesis import HealthCheck, given, settings

from stakeledger.adapters.persistence.store_url import open_ledger
from stakeledger.domain.decisions.trading import LimitOrder, MarketOrder
from stakeledger.domain.errors import (
    ArtifactExistsError,
    HoldPeriodError,
    InsufficientFundsError,
    InvalidAmountError,
    InvalidInputError,
    LedgerError,
    NotOwnerError,
    SlippageError,
    StateError,
    UnknownAccountError,
    UnknownArtifactError,
    UnknownOrderError,
    UnknownPositionError,
)
from stakeledger.domain.model.accounts import TREASURY, order_escrow_account_id, pool_account_id
from stakeledger.domain.model.positions import Position, position_uuid
from stakeledger.domain.rules.lmsr import (
    buy_cost_units,
    max_subsidy_units,
    prices_wad,
    sell_proceeds_units,
    shares_for_tokens,
    shares_to_reach_price,
)
from stakeledger.domain.service.application import StakeLedger
from stakeledger.domain.service.clock import ManualClock
from stakeledger.domain.service.ids import SeededIds
from stakeledger.domain.vocabulary import WAD, Side
from stakeledger.projections.audit import audit
from tests.conftest import BACKENDS, fresh_postgres_url, stored_event_count

TOKEN = 10**6
FUNDS_UNITS = 1_000 * TOKEN
LIQUIDITY_UNITS = 100 * TOKEN
ART = "ART"
POOL = pool_account_id(ART)
ESCROW = order_escrow_account_id(ART)
# A fill of fewer shares (or from fewer tokens) than this may be skipped as dust: with b = 10**8
# base units, rounding a cost up by one unit can lift the average price of ~10**4 shares above a limit.
DUST_SHARES_UNITS = LIQUIDITY_UNITS // 1_000


def price(text: str) -> int:
    """A probability written as a decimal string, in WAD: price("0.4") == 4 * 10**17."""
    whole, _, fraction = text.partition(".")
    return int(whole) * WAD + int(fraction.ljust(18, "0"))


def open_funded(ledger: StakeLedger, *names: str, amount_units: int = FUNDS_UNITS) -> None:
    for name in names:
        ledger.open_account(name)
        ledger.mint(name, amount_units)


def list_market(ledger: StakeLedger, artifact_id: str = ART, *, min_hold_days: int = 0) -> dict[str, Any]:
    return ledger.list_artifact(artifact_id, f"Artifact {artifact_id}", LIQUIDITY_UNITS, min_hold_days=min_hold_days)


def position_of(ledger: StakeLedger, position_id: str) -> Position:
    position = ledger.repository.get(position_uuid(position_id))
    assert isinstance(position, Position)
    return position


def balance_or_zero(ledger: StakeLedger, account_id: str) -> int:
    try:
        return ledger.balance_of(account_id)
    except UnknownAccountError:
        return 0  # system accounts are opened on first use


def state_of(ledger: StakeLedger, artifact_id: str = ART) -> dict[str, Any]:
    """Everything a refused market command must leave as it was."""
    artifact = ledger.get_artifact(artifact_id)
    accounts = ("alice", "bob", "carol", TREASURY, pool_account_id(artifact_id), order_escrow_account_id(artifact_id))
    return {
        "events": stored_event_count(ledger),
        "balances": {account: balance_or_zero(ledger, account) for account in accounts},
        "artifact_version": artifact.version,
        "q": (artifact.q_long, artifact.q_short),
        "order_status": dict(artifact.order_status),
        "resting": {order_id: order["remaining_units"] for order_id, order in artifact.orders.items()},
        "positions": list(artifact.position_ids),
    }


def assert_audit_clean(ledger: StakeLedger) -> None:
    report = audit(ledger)
    assert report.clean, report.violations


def assert_fill_within_limit(fill: dict[str, str], limit_price_wad: int) -> None:
    """A fill's average price cost/shares never exceeds the order's limit."""
    assert int(fill["cost_units"]) * WAD <= limit_price_wad * int(fill["shares_units"]), fill


# Listing ------------------------------------------------------------------------------------


def test_list_artifact_when_new_then_pool_funded_with_max_subsidy_and_prices_at_half(ledger):
    before = stored_event_count(ledger)
    result = list_market(ledger)
    subsidy_units = max_subsidy_units(LIQUIDITY_UNITS)
    assert result["subsidy_units"] == str(subsidy_units)
    assert ledger.balance_of(POOL) == subsidy_units
    assert ledger.total_supply() == subsidy_units  # the subsidy is minted from the treasury
    artifact = ledger.get_artifact(ART)
    assert (artifact.q_long, artifact.q_short) == (0, 0)
    assert artifact.price_long_wad == WAD // 2
    assert artifact.prices() == (WAD // 2, WAD // 2)
    assert artifact.state == "listed"
    assert stored_event_count(ledger) > before
    pool_events = list(ledger.events.get(ledger.get_account(POOL).id))
    credits = [event for event in pool_events if type(event).__name__ == "Credited"]
    assert [(event.reason, event.amount_units, event.counterparty) for event in credits] == [
        ("amm:subsidy", subsidy_units, TREASURY)
    ]
    assert_audit_clean(ledger)


# Market orders ------------------------------------------------------------------------------


def test_market_order_when_long_then_agent_pays_tokens_and_gets_quoted_shares(ledger):
    open_funded(ledger, "alice")
    list_market(ledger)
    tokens_units = 10 * TOKEN
    quote = ledger.quote(ART, "long", tokens_units=tokens_units)
    expected_shares = shares_for_tokens(0, 0, LIQUIDITY_UNITS, Side.LONG, tokens_units)

    result = ledger.open_position("alice", ART, "long", tokens_units)

    assert int(result["shares_units"]) == expected_shares == int(quote["shares_units"])
    assert result["cost_units"] == quote["cost_units"] == str(tokens_units)
    assert result["fills"] == []
    assert ledger.balance_of("alice") == FUNDS_UNITS - tokens_units
    assert ledger.balance_of(POOL) == max_subsidy_units(LIQUIDITY_UNITS) + tokens_units
    position = position_of(ledger, result["position"])
    assert result["position"] == f"{ART}/p1"
    assert (position.owner, position.artifact_id, position.side, position.status) == ("alice", ART, "long", "open")
    assert (position.quantity_units, position.cost_units) == (expected_shares, tokens_units)
    assert position.entry_price_wad == tokens_units * WAD // expected_shares
    artifact = ledger.get_artifact(ART)
    assert (artifact.q_long, artifact.q_short) == (expected_shares, 0)
    assert artifact.price_long_wad > WAD // 2
    assert str(artifact.price_long_wad) == result["price_long_wad"] == quote["price_long_after_wad"]
    assert artifact.position_ids == [f"{ART}/p1"]
    assert_audit_clean(ledger)


def test_market_order_when_short_then_entry_is_long_equivalent_and_long_price_falls(ledger):
    open_funded(ledger, "alice", "bob")
    list_market(ledger)
    long_units, short_units = 10 * TOKEN, 25 * TOKEN
    first = ledger.open_position("alice", ART, "long", long_units)
    quote = ledger.quote(ART, "short", tokens_units=short_units)
    price_before = ledger.get_artifact(ART).price_long_wad

    result = ledger.open_position("bob", ART, "short", short_units)

    shares_units = int(result["shares_units"])
    assert result["shares_units"] == quote["shares_units"]
    assert shares_units == shares_for_tokens(int(first["shares_units"]), 0, LIQUIDITY_UNITS, Side.SHORT, short_units)
    position = position_of(ledger, result["position"])
    assert (position.owner, position.side, position.quantity_units, position.cost_units) == (
        "bob",
        "short",
        shares_units,
        short_units,
    )
    assert position.entry_price_wad == WAD - short_units * WAD // shares_units
    artifact = ledger.get_artifact(ART)
    assert artifact.q_short == shares_units
    assert artifact.price_long_wad < price_before
    assert ledger.balance_of(POOL) == max_subsidy_units(LIQUIDITY_UNITS) + long_units + short_units
    assert ledger.balance_of("bob") == FUNDS_UNITS - short_units
    assert_audit_clean(ledger)


def test_market_order_when_average_price_exceeds_max_price_then_slippage_error_and_nothing_written(ledger):
    open_funded(ledger, "alice")
    list_market(ledger)
    average_wad = int(ledger.quote(ART, "long", tokens_units=10 * TOKEN)["average_price_wad"])
    before = state_of(ledger)
    with pytest.raises(SlippageError):
        ledger.open_position("alice", ART, "long", 10 * TOKEN, max_price_wad=average_wad - 1)
    assert state_of(ledger) == before
    # The bound is inclusive: exactly the average price is accepted.
    ledger.open_position("alice", ART, "long", 10 * TOKEN, max_price_wad=average_wad)
    assert ledger.balance_of("alice") == FUNDS_UNITS - 10 * TOKEN


def test_market_order_when_min_shares_above_what_tokens_buy_then_slippage_error_and_nothing_written(ledger):
    open_funded(ledger, "alice")
    list_market(ledger)
    shares_units = int(ledger.quote(ART, "short", tokens_units=10 * TOKEN)["shares_units"])
    before = state_of(ledger)
    with pytest.raises(SlippageError):
        ledger.open_position("alice", ART, "short", 10 * TOKEN, min_shares_units=shares_units + 1)
    assert state_of(ledger) == before
    result = ledger.open_position("alice", ART, "short", 10 * TOKEN, min_shares_units=shares_units)
    assert int(result["shares_units"]) == shares_units


# Limit orders -------------------------------------------------------------------------------


def test_place_limit_order_when_price_above_limit_then_tokens_escrowed_and_order_rests(ledger):
    open_funded(ledger, "bob")
    list_market(ledger)
    result = ledger.place_limit_order("bob", ART, "long", 5 * TOKEN, price("0.4"))
    assert result == {"order": f"{ART}/o1", "status": "open", "fills": []}
    assert ledger.balance_of("bob") == FUNDS_UNITS - 5 * TOKEN
    assert ledger.balance_of(ESCROW) == 5 * TOKEN
    artifact = ledger.get_artifact(ART)
    assert artifact.order_status == {f"{ART}/o1": "open"}
    assert artifact.orders[f"{ART}/o1"]["remaining_units"] == 5 * TOKEN
    assert (artifact.q_long, artifact.q_short, artifact.position_ids) == (0, 0, [])
    assert artifact.price_long_wad == WAD // 2
    assert_audit_clean(ledger)


def test_market_order_when_other_side_pushes_price_below_long_limit_then_order_fills_in_same_command(ledger):
    open_funded(ledger, "alice", "bob")
    list_market(ledger)
    limit_wad = price("0.4")
    order_units = 50 * TOKEN  # more than lifting the price back to 0.4 costs: the rest keeps resting
    order_id = ledger.place_limit_order("bob", ART, "long", order_units, limit_wad)["order"]
    before = stored_event_count(ledger)

    result = ledger.open_position("alice", ART, "short", 30 * TOKEN)

    assert stored_event_count(ledger) > before
    assert [fill["order"] for fill in result["fills"]] == [order_id]
    fill = result["fills"][0]
    assert_fill_within_limit(fill, limit_wad)
    filled = position_of(ledger, fill["position"])
    assert (filled.owner, filled.side, filled.order_id) == ("bob", "long", order_id)
    assert (filled.quantity_units, filled.cost_units) == (int(fill["shares_units"]), int(fill["cost_units"]))
    artifact = ledger.get_artifact(ART)
    assert artifact.order_status[order_id] == "partially_filled"
    remaining_units = order_units - int(fill["cost_units"])
    assert artifact.orders[order_id]["remaining_units"] == remaining_units > 0
    assert ledger.balance_of(ESCROW) == remaining_units
    assert ledger.balance_of("bob") == FUNDS_UNITS - order_units
    # The fill lifted the long price back to its limit, so the rest of the order no longer crosses.
    assert artifact.price_long_wad >= limit_wad
    assert (artifact.q_long, artifact.q_short) == (int(fill["shares_units"]), int(result["shares_units"]))
    assert ledger.balance_of(POOL) == max_subsidy_units(LIQUIDITY_UNITS) + 30 * TOKEN + int(fill["cost_units"])
    assert_audit_clean(ledger)


def test_market_order_when_small_limit_order_crossed_then_it_fills_completely_and_releases_nothing(ledger):
    open_funded(ledger, "alice", "bob")
    list_market(ledger)
    limit_wad = price("0.4")
    order_id = ledger.place_limit_order("bob", ART, "long", 2 * TOKEN, limit_wad)["order"]

    result = ledger.open_position("alice", ART, "short", 30 * TOKEN)

    assert [(fill["order"], fill["cost_units"]) for fill in result["fills"]] == [(order_id, str(2 * TOKEN))]
    assert_fill_within_limit(result["fills"][0], limit_wad)
    artifact = ledger.get_artifact(ART)
    assert artifact.order_status[order_id] == "filled"
    assert order_id not in artifact.orders
    assert ledger.balance_of(ESCROW) == 0
    assert artifact.price_long_wad < limit_wad  # the order ran out of tokens before the price reached its limit
    assert_audit_clean(ledger)


def test_market_order_when_long_side_pushes_short_price_below_short_limit_then_short_order_fills(ledger):
    open_funded(ledger, "alice", "bob")
    list_market(ledger)
    limit_wad = price("0.3")  # in the short side's terms: rests until p_short < 0.3, i.e. p_long > 0.7
    order_id = ledger.place_limit_order("bob", ART, "short", 50 * TOKEN, limit_wad)["order"]
    small = ledger.open_position("alice", ART, "long", 20 * TOKEN)
    assert small["fills"] == []  # p_long ~0.6: the short price is still above 0.3
    assert ledger.get_artifact(ART).order_status[order_id] == "open"

    result = ledger.open_position("alice", ART, "long", 60 * TOKEN)

    assert [fill["order"] for fill in result["fills"]] == [order_id]
    assert_fill_within_limit(result["fills"][0], limit_wad)
    filled = position_of(ledger, result["fills"][0]["position"])
    assert (filled.owner, filled.side) == ("bob", "short")
    artifact = ledger.get_artifact(ART)
    assert artifact.side_price_wad(Side.SHORT) >= limit_wad
    assert artifact.price_long_wad <= WAD - limit_wad
    assert ledger.balance_of(ESCROW) == artifact.orders[order_id]["remaining_units"]
    assert_audit_clean(ledger)


def test_crossing_trade_when_two_limits_differ_then_higher_limit_fills_first(ledger):
    open_funded(ledger, "alice", "bob", "carol")
    list_market(ledger)
    low_id = ledger.place_limit_order("bob", ART, "long", 50 * TOKEN, price("0.35"))["order"]
    high_id = ledger.place_limit_order("carol", ART, "long", 1 * TOKEN, price("0.45"))["order"]

    result = ledger.open_position("alice", ART, "short", 60 * TOKEN)

    # The later but better order fills first and runs out; then the price is still below 0.35.
    assert [fill["order"] for fill in result["fills"]] == [high_id, low_id]
    assert_fill_within_limit(result["fills"][0], price("0.45"))
    assert_fill_within_limit(result["fills"][1], price("0.35"))
    status = ledger.get_artifact(ART).order_status
    assert (status[high_id], status[low_id]) == ("filled", "partially_filled")
    assert_audit_clean(ledger)


def test_crossing_trade_when_two_limits_equal_then_older_order_fills_first(ledger):
    open_funded(ledger, "alice", "bob", "carol")
    list_market(ledger)
    older_id = ledger.place_limit_order("bob", ART, "long", 50 * TOKEN, price("0.4"))["order"]
    newer_id = ledger.place_limit_order("carol", ART, "long", 50 * TOKEN, price("0.4"))["order"]

    result = ledger.open_position("alice", ART, "short", 30 * TOKEN)

    # The older order alone lifts the price back to 0.4, so the newer one never crosses.
    assert [fill["order"] for fill in result["fills"]] == [older_id]
    artifact = ledger.get_artifact(ART)
    assert (artifact.order_status[older_id], artifact.order_status[newer_id]) == ("partially_filled", "open")
    assert artifact.orders[newer_id]["remaining_units"] == 50 * TOKEN
    assert ledger.balance_of("carol") == FUNDS_UNITS - 50 * TOKEN
    assert_audit_clean(ledger)


def test_crossing_trade_when_price_barely_dips_below_limit_then_fill_average_still_within_limit(ledger):
    """After a fill the price rests a hair above the limit; a trade of a few base units dips it
    back below. The dust fill must not buy shares at an average price above the limit."""
    open_funded(ledger, "alice", "bob")
    list_market(ledger)
    limit_wad = price("0.4")
    ledger.place_limit_order("bob", ART, "long", 50 * TOKEN, limit_wad)
    ledger.open_position("alice", ART, "short", 30 * TOKEN)
    assert ledger.get_artifact(ART).price_long_wad >= limit_wad

    result = ledger.open_position("alice", ART, "short", 2)

    for fill in result["fills"]:
        assert_fill_within_limit(fill, limit_wad)
    artifact = ledger.get_artifact(ART)
    assert (
        ledger.balance_of(ESCROW) == artifact.orders[f"{ART}/o1"]["remaining_units"]
    )  # a skipped dust fill keeps resting
    assert_audit_clean(ledger)


def test_trade_when_order_expired_on_clock_then_expired_escrow_released_and_never_filled(ledger, clock):
    open_funded(ledger, "alice", "bob")
    list_market(ledger)
    order_id = ledger.place_limit_order("bob", ART, "long", 5 * TOKEN, price("0.4"), expires_in_days=1)["order"]
    assert ledger.balance_of(ESCROW) == 5 * TOKEN
    clock.advance(days=2)

    result = ledger.open_position("alice", ART, "short", 30 * TOKEN)  # would cross 0.4 if the order still rested

    assert result["fills"] == []
    artifact = ledger.get_artifact(ART)
    assert artifact.order_status[order_id] == "expired"
    assert order_id not in artifact.orders
    assert artifact.price_long_wad < price("0.4")
    assert ledger.balance_of(ESCROW) == 0
    assert ledger.balance_of("bob") == FUNDS_UNITS
    assert [position_of(ledger, p).owner for p in artifact.position_ids] == ["alice"]
    assert_audit_clean(ledger)


def test_trade_when_order_not_yet_expired_then_it_still_fills(ledger, clock):
    open_funded(ledger, "alice", "bob")
    list_market(ledger)
    order_id = ledger.place_limit_order("bob", ART, "long", 5 * TOKEN, price("0.4"), expires_in_days=1)["order"]
    clock.advance(days=0.5)
    result = ledger.open_position("alice", ART, "short", 30 * TOKEN)
    assert [fill["order"] for fill in result["fills"]] == [order_id]


# Cancels ------------------------------------------------------------------------------------


def test_cancel_order_when_owner_cancels_then_escrow_released(ledger):
    open_funded(ledger, "bob")
    list_market(ledger)
    order_id = ledger.place_limit_order("bob", ART, "short", 7 * TOKEN, price("0.2"))["order"]
    result = ledger.cancel_order(order_id, "bob")
    assert result == {"order": order_id, "status": "cancelled", "released_units": str(7 * TOKEN)}
    assert ledger.balance_of("bob") == FUNDS_UNITS
    assert ledger.balance_of(ESCROW) == 0
    artifact = ledger.get_artifact(ART)
    assert artifact.order_status[order_id] == "cancelled"
    assert artifact.orders == {}
    assert_audit_clean(ledger)


def test_cancel_order_when_partially_filled_then_only_the_rest_is_released(ledger):
    open_funded(ledger, "alice", "bob")
    list_market(ledger)
    order_id = ledger.place_limit_order("bob", ART, "long", 50 * TOKEN, price("0.4"))["order"]
    fill = ledger.open_position("alice", ART, "short", 30 * TOKEN)["fills"][0]
    result = ledger.cancel_order(order_id, "bob")
    assert int(result["released_units"]) == 50 * TOKEN - int(fill["cost_units"])
    assert ledger.balance_of("bob") == FUNDS_UNITS - int(fill["cost_units"])
    assert ledger.balance_of(ESCROW) == 0
    assert_audit_clean(ledger)


def test_cancel_order_when_cancelled_twice_then_state_error_and_nothing_written(ledger):
    open_funded(ledger, "bob")
    list_market(ledger)
    order_id = ledger.place_limit_order("bob", ART, "long", 5 * TOKEN, price("0.4"))["order"]
    ledger.cancel_order(order_id, "bob")
    before = state_of(ledger)
    with pytest.raises(StateError):
        ledger.cancel_order(order_id, "bob")
    assert state_of(ledger) == before


def test_cancel_order_when_already_filled_then_state_error_and_nothing_written(ledger):
    open_funded(ledger, "alice", "bob")
    list_market(ledger)
    order_id = ledger.place_limit_order("bob", ART, "long", 5 * TOKEN, price("0.4"))["order"]
    fills = ledger.open_position("alice", ART, "short", 60 * TOKEN)["fills"]  # pushes long well below 0.4
    assert [(fill["order"], fill["cost_units"]) for fill in fills] == [(order_id, str(5 * TOKEN))]
    artifact = ledger.get_artifact(ART)
    assert artifact.order_status[order_id] == "filled"
    assert order_id not in artifact.orders
    assert ledger.balance_of(ESCROW) == 0  # the whole escrow bought bob's position
    bob_units = ledger.balance_of("bob")
    before = state_of(ledger)
    with pytest.raises(StateError, match=r"already filled"):
        ledger.cancel_order(order_id, "bob")
    assert state_of(ledger) == before
    assert ledger.balance_of("bob") == bob_units == FUNDS_UNITS - 5 * TOKEN  # no second release of the escrow
    assert_audit_clean(ledger)


# Closes -------------------------------------------------------------------------------------


def test_close_position_when_listed_longer_than_min_hold_then_sold_back_at_market(ledger, clock):
    open_funded(ledger, "alice")
    list_market(ledger, min_hold_days=90)
    opened = ledger.open_position("alice", ART, "long", 20 * TOKEN)
    position_id = opened["position"]
    clock.advance(days=90)  # exactly 90 days is not *longer* than 90 days
    before = state_of(ledger)
    with pytest.raises(HoldPeriodError):
        ledger.close_position(position_id, agent="alice")
    assert state_of(ledger) == before
    assert position_of(ledger, position_id).status == "open"

    clock.advance(seconds=1)
    artifact = ledger.get_artifact(ART)
    quantity_units = int(opened["shares_units"])
    expected_units = sell_proceeds_units(artifact.q_long, artifact.q_short, LIQUIDITY_UNITS, Side.LONG, quantity_units)
    price_before = artifact.price_long_wad

    result = ledger.close_position(position_id, agent="alice")

    assert int(result["proceeds_units"]) == expected_units
    assert 0 < expected_units < 20 * TOKEN  # rounding favours the pool
    assert int(result["pnl_units"]) == expected_units - 20 * TOKEN
    position = position_of(ledger, position_id)
    assert position.status == "closed"
    assert position.realized_pnl_units == expected_units - 20 * TOKEN
    assert position.proceeds_units == expected_units
    artifact = ledger.get_artifact(ART)
    assert (artifact.q_long, artifact.q_short) == (0, 0)
    assert artifact.price_long_wad < price_before
    assert artifact.price_long_wad == WAD // 2
    assert ledger.balance_of("alice") == FUNDS_UNITS - 20 * TOKEN + expected_units
    assert ledger.balance_of(POOL) == max_subsidy_units(LIQUIDITY_UNITS) + 20 * TOKEN - expected_units
    assert_audit_clean(ledger)


def test_close_position_when_min_hold_is_zero_then_closes_at_once(ledger):
    open_funded(ledger, "alice")
    list_market(ledger, min_hold_days=0)
    position_id = ledger.open_position("alice", ART, "short", 15 * TOKEN)["position"]
    result = ledger.close_position(position_id)
    assert position_of(ledger, position_id).status == "closed"
    assert ledger.balance_of("alice") == FUNDS_UNITS - 15 * TOKEN + int(result["proceeds_units"])
    assert_audit_clean(ledger)


def test_close_position_when_closed_twice_then_state_error_and_nothing_written(ledger):
    open_funded(ledger, "alice")
    list_market(ledger, min_hold_days=0)
    position_id = ledger.open_position("alice", ART, "long", 5 * TOKEN)["position"]
    ledger.close_position(position_id, agent="alice")
    before = state_of(ledger)
    with pytest.raises(StateError):
        ledger.close_position(position_id, agent="alice")
    assert state_of(ledger) == before


def test_round_trip_when_bought_then_closed_at_once_then_never_gains_tokens(ledger):
    open_funded(ledger, "alice", "bob")
    list_market(ledger, min_hold_days=0)
    ledger.open_position("bob", ART, "long", 40 * TOKEN)  # start away from the symmetric point
    for side in ("long", "short"):
        for tokens_units in (1, 3, 999_999, 7 * TOKEN, 250 * TOKEN):
            before_units = ledger.balance_of("alice")
            position_id = ledger.open_position("alice", ART, side, tokens_units)["position"]
            ledger.close_position(position_id, agent="alice")
            assert ledger.balance_of("alice") <= before_units, (side, tokens_units)
    assert_audit_clean(ledger)


# Batches ------------------------------------------------------------------------------------


def test_trade_batch_when_two_equal_buys_then_second_sees_first_price_and_gets_fewer_shares(ledger):
    open_funded(ledger, "alice", "bob")
    list_market(ledger)
    first_quote = int(ledger.quote(ART, "long", tokens_units=10 * TOKEN)["shares_units"])
    result = ledger.trade_batch(
        [
            MarketOrder("alice", ART, Side.LONG, 10 * TOKEN),
            MarketOrder("bob", ART, Side.LONG, 10 * TOKEN),
        ]
    )
    first, second = (int(r["shares_units"]) for r in result["results"])
    assert first == first_quote
    assert second == shares_for_tokens(first, 0, LIQUIDITY_UNITS, Side.LONG, 10 * TOKEN)
    assert second < first
    artifact = ledger.get_artifact(ART)
    assert artifact.q_long == first + second
    assert artifact.position_ids == [f"{ART}/p1", f"{ART}/p2"]
    assert ledger.balance_of(POOL) == max_subsidy_units(LIQUIDITY_UNITS) + 20 * TOKEN
    assert_audit_clean(ledger)


def test_trade_batch_when_market_order_crosses_limit_order_from_same_batch_then_it_fills(ledger):
    open_funded(ledger, "alice", "bob")
    list_market(ledger)
    result = ledger.trade_batch(
        [
            LimitOrder("bob", ART, Side.LONG, 50 * TOKEN, price("0.4")),
            MarketOrder("alice", ART, Side.SHORT, 30 * TOKEN),
        ]
    )
    placed, traded = result["results"]
    assert placed["status"] == "open"
    assert [fill["order"] for fill in traded["fills"]] == [placed["order"]]
    assert_audit_clean(ledger)


def test_trade_batch_when_one_order_lacks_funds_then_whole_batch_refused_and_nothing_written(ledger):
    open_funded(ledger, "alice", "bob")
    list_market(ledger)
    before = state_of(ledger)
    with pytest.raises(InsufficientFundsError):
        ledger.trade_batch(
            [
                MarketOrder("alice", ART, Side.LONG, 10 * TOKEN),
                LimitOrder("bob", ART, Side.LONG, 5 * TOKEN, price("0.3")),
                MarketOrder("bob", ART, Side.SHORT, FUNDS_UNITS),  # 5 tokens already escrowed above
            ]
        )
    assert state_of(ledger) == before


# Refusals -----------------------------------------------------------------------------------

BAD_MARKET_REQUESTS = [
    ("unknown artifact", lambda l: l.open_position("alice", "NOPE", "long", TOKEN), UnknownArtifactError),
    (
        "unknown artifact limit",
        lambda l: l.place_limit_order("alice", "NOPE", "long", TOKEN, price("0.4")),
        UnknownArtifactError,
    ),
    ("unknown agent", lambda l: l.open_position("nobody", ART, "long", TOKEN), UnknownAccountError),
    (
        "unknown agent limit",
        lambda l: l.place_limit_order("nobody", ART, "long", TOKEN, price("0.4")),
        UnknownAccountError,
    ),
    ("insufficient funds", lambda l: l.open_position("alice", ART, "long", FUNDS_UNITS + 1), InsufficientFundsError),
    (
        "insufficient funds limit",
        lambda l: l.place_limit_order("bob", ART, "short", FUNDS_UNITS + 1, price("0.1")),
        InsufficientFundsError,
    ),
    ("zero tokens", lambda l: l.open_position("alice", ART, "long", 0), InvalidAmountError),
    ("negative tokens", lambda l: l.open_position("alice", ART, "long", -TOKEN), InvalidAmountError),
    ("liquidity zero", lambda l: l.list_artifact("NEW", "New", 0), InvalidAmountError),
    ("liquidity negative", lambda l: l.list_artifact("NEW", "New", -LIQUIDITY_UNITS), InvalidAmountError),
    ("duplicate artifact", lambda l: l.list_artifact(ART, "Again", LIQUIDITY_UNITS), ArtifactExistsError),
    ("bad artifact id", lambda l: l.list_artifact("has space", "New", LIQUIDITY_UNITS), InvalidInputError),
    ("bad side", lambda l: l.open_position("alice", ART, "up", TOKEN), InvalidInputError),
    ("bad side limit", lambda l: l.place_limit_order("alice", ART, "up", TOKEN, price("0.4")), InvalidInputError),
    ("limit price zero", lambda l: l.place_limit_order("alice", ART, "long", TOKEN, 0), InvalidAmountError),
    ("limit price one", lambda l: l.place_limit_order("alice", ART, "long", TOKEN, WAD), InvalidAmountError),
    ("limit price above one", lambda l: l.place_limit_order("alice", ART, "long", TOKEN, WAD + 1), InvalidAmountError),
    (
        "expiry not in future",
        lambda l: l.place_limit_order("alice", ART, "long", TOKEN, price("0.4"), expires_in_days=0),
        InvalidInputError,
    ),
    ("cancel by another agent", lambda l: l.cancel_order(f"{ART}/o1", "bob"), NotOwnerError),
    ("cancel unknown order", lambda l: l.cancel_order(f"{ART}/o99", "alice"), UnknownOrderError),
    ("cancel on unknown artifact", lambda l: l.cancel_order("NOPE/o1", "alice"), UnknownArtifactError),
    ("close before min hold", lambda l: l.close_position(f"{ART}/p1", agent="alice"), HoldPeriodError),
    ("close by another agent", lambda l: l.close_position(f"{ART}/p1", agent="bob"), NotOwnerError),
    ("close unknown position", lambda l: l.close_position(f"{ART}/p99"), UnknownPositionError),
    ("empty batch", lambda l: l.trade_batch([]), InvalidInputError),
    (
        "slippage in batch",
        lambda l: l.trade_batch([MarketOrder("alice", ART, Side.LONG, TOKEN, max_price_wad=1)]),
        SlippageError,
    ),
]


@pytest.mark.parametrize(
    ("case", "request_", "error"), BAD_MARKET_REQUESTS, ids=[case for case, _, _ in BAD_MARKET_REQUESTS]
)
def test_bad_market_request_when_refused_then_nothing_written(ledger, case, request_, error):
    open_funded(ledger, "alice", "bob")
    list_market(ledger, min_hold_days=90)
    ledger.place_limit_order("alice", ART, "long", 5 * TOKEN, price("0.3"))  # ART/o1
    ledger.open_position("alice", ART, "long", 10 * TOKEN)  # ART/p1
    before = state_of(ledger)
    with pytest.raises(error):
        request_(ledger)
    assert state_of(ledger) == before
    with pytest.raises(UnknownArtifactError):
        ledger.get_artifact("NEW")  # no listing slipped through either


def test_list_artifact_when_ledger_not_initialised_then_refused_and_nothing_written(store_url, clock):
    from stakeledger.domain.errors import NotInitialisedError

    app = open_ledger(store_url, clock=clock)
    try:
        with pytest.raises(NotInitialisedError):
            app.list_artifact(ART, "Title", LIQUIDITY_UNITS)
        assert stored_event_count(app) == 0
    finally:
        app.close()


# Reads --------------------------------------------------------------------------------------


def assert_depth_consistent(ledger: StakeLedger) -> list[dict[str, str]]:
    artifact = ledger.get_artifact(ART)
    q_long, q_short = artifact.q_long, artifact.q_short
    quoted_wad = artifact.price_long_wad
    rows = ledger.market_depth(ART)
    assert [int(row["target_long_wad"]) for row in rows] == [k * WAD // 10 for k in range(1, 10)]
    for row in rows:
        target_wad, shares_units, cost_units = (
            int(row["target_long_wad"]),
            int(row["shares_units"]),
            int(row["cost_units"]),
        )
        if target_wad == quoted_wad:
            assert (shares_units, cost_units) == (0, 0), row
            continue
        side = Side(row["side"])
        assert side == (Side.SHORT if target_wad < quoted_wad else Side.LONG), row
        assert cost_units == buy_cost_units(q_long, q_short, LIQUIDITY_UNITS, side, shares_units), row
        assert 0 < cost_units <= shares_units
        after = (q_long + shares_units, q_short) if side == Side.LONG else (q_long, q_short + shares_units)
        one_less = (after[0] - 1, after[1]) if side == Side.LONG else (after[0], after[1] - 1)
        reached_wad, one_less_wad = prices_wad(*after, LIQUIDITY_UNITS)[0], prices_wad(*one_less, LIQUIDITY_UNITS)[0]
        if side == Side.LONG:
            assert reached_wad >= target_wad > one_less_wad, row  # the fewest shares that reach the target
        else:
            assert reached_wad <= target_wad < one_less_wad, row
    # Moving further from the current price costs more.
    below = [int(row["cost_units"]) for row in rows if int(row["target_long_wad"]) < quoted_wad]
    above = [int(row["cost_units"]) for row in rows if int(row["target_long_wad"]) > quoted_wad]
    assert below == sorted(below, reverse=True)
    assert above == sorted(above)
    return rows


def test_market_depth_when_fresh_market_then_nine_rows_and_no_cost_at_current_price(ledger):
    list_market(ledger)
    before = stored_event_count(ledger)
    rows = assert_depth_consistent(ledger)
    assert len(rows) == 9
    assert rows[4] == {"target_long_wad": str(WAD // 2), "side": "long", "shares_units": "0", "cost_units": "0"}
    assert [row["side"] for row in rows[:4]] == ["short"] * 4
    assert [row["side"] for row in rows[5:]] == ["long"] * 4
    # The binary market is symmetric at 0.5: reaching 0.3 costs what reaching 0.7 does.
    assert rows[2]["cost_units"] == rows[6]["cost_units"]
    assert stored_event_count(ledger) == before


def test_market_depth_when_price_moved_then_targets_below_need_short_shares(ledger):
    open_funded(ledger, "alice")
    list_market(ledger)
    ledger.open_position("alice", ART, "long", 30 * TOKEN)
    quoted_wad = ledger.get_artifact(ART).price_long_wad
    assert price("0.6") < quoted_wad < price("0.7")
    rows = assert_depth_consistent(ledger)
    assert [row["side"] for row in rows] == ["short"] * 6 + ["long"] * 3


def test_quote_when_given_shares_then_cost_matches_a_buy_of_those_shares(ledger):
    open_funded(ledger, "alice")
    list_market(ledger)
    quote = ledger.quote(ART, "short", shares_units=20 * TOKEN)
    assert int(quote["cost_units"]) == buy_cost_units(0, 0, LIQUIDITY_UNITS, Side.SHORT, 20 * TOKEN)
    with pytest.raises(InvalidInputError):
        ledger.quote(ART, "short", shares_units=TOKEN, tokens_units=TOKEN)
    with pytest.raises(InvalidInputError):
        ledger.quote(ART, "short")


# Property -----------------------------------------------------------------------------------

AGENTS = st.sampled_from(["alice", "bob", "carol"])
SIDES = st.sampled_from(["long", "short"])
TOKENS = st.one_of(st.integers(min_value=1, max_value=1_000), st.integers(min_value=1, max_value=400 * TOKEN))
LIMITS = st.integers(min_value=1, max_value=99).map(lambda percent: percent * WAD // 100)
ACTIONS = st.lists(
    st.one_of(
        st.tuples(st.just("buy"), AGENTS, SIDES, TOKENS),
        st.tuples(st.just("limit"), AGENTS, SIDES, TOKENS, LIMITS, st.sampled_from([None, 1, 5])),
        st.tuples(st.just("close"), st.integers(min_value=0, max_value=20)),
        st.tuples(st.just("cancel"), st.integers(min_value=0, max_value=10), AGENTS),
        st.tuples(st.just("wait"), st.integers(min_value=1, max_value=3)),
    ),
    min_size=1,
    max_size=14,
)


def _run(ledger: StakeLedger, clock: ManualClock, action: tuple) -> None:
    kind = action[0]
    if kind == "buy":
        _, agent, side, tokens_units = action
        ledger.open_position(agent, ART, side, tokens_units)
    elif kind == "limit":
        _, agent, side, tokens_units, limit_wad, expires_in_days = action
        ledger.place_limit_order(agent, ART, side, tokens_units, limit_wad, expires_in_days=expires_in_days)
    elif kind == "close":
        position_ids = ledger.get_artifact(ART).position_ids
        if position_ids:
            ledger.close_position(position_ids[action[1] % len(position_ids)])
    elif kind == "cancel":
        order_ids = sorted(ledger.get_artifact(ART).order_status)
        if order_ids:
            ledger.cancel_order(order_ids[action[1] % len(order_ids)], action[2])
    else:
        clock.advance(days=action[1])


@pytest.fixture
def server(request: pytest.FixtureRequest) -> Callable[[], str]:
    """The PostgreSQL server's URL, asked for only by a PostgreSQL run."""
    return lambda: request.getfixturevalue("postgres_server")


@contextmanager
def example_ledger(backend: str, server: Callable[[], str], clock: ManualClock) -> Iterator[StakeLedger]:
    """A new empty ledger for one hypothesis example (pytest fixtures are not reset between
    examples): a SQLite file in a new directory, or a new PostgreSQL schema dropped afterwards."""
    with tempfile.TemporaryDirectory(prefix="stakeledger-markets-") as directory:
        if backend == "memory":
            url = "memory://"
        elif backend == "sqlite":
            url = f"sqlite:///{directory}/ledger.db"
        else:
            server_url = server()
            url = fresh_postgres_url(server_url)
        ledger = open_ledger(url, clock=clock, new_id=SeededIds(11))
        try:
            ledger.initialise(decimals=6)
            yield ledger
        finally:
            ledger.close()
            if backend == "postgres":
                with psycopg.connect(server_url, autocommit=True) as connection:
                    connection.execute(f'DROP SCHEMA "{url.rpartition("schema=")[2]}" CASCADE')


@pytest.mark.parametrize("backend", BACKENDS)
def test_random_trading_when_any_sequence_then_audit_clean_and_pool_covers_winning_side(backend, server):
    # Fewer examples where every command is a database round trip.
    @settings(
        max_examples=25 if backend == "memory" else 12, deadline=None, suppress_health_check=[HealthCheck.too_slow]
    )
    @given(actions=ACTIONS)
    def example(actions: list[tuple]) -> None:
        clock = ManualClock()
        with example_ledger(backend, server, clock) as ledger:
            open_funded(ledger, "alice", "bob", "carol", amount_units=500 * TOKEN)
            list_market(ledger, min_hold_days=0)
            for action in actions:
                before = state_of(ledger)
                try:
                    _run(ledger, clock, action)
                except LedgerError:
                    assert state_of(ledger) == before, action  # a refusal writes nothing
                artifact = ledger.get_artifact(ART)
                pool_units = ledger.balance_of(POOL)
                assert pool_units >= max(artifact.q_long, artifact.q_short), (
                    action,
                    pool_units,
                    artifact.q_long,
                    artifact.q_short,
                )
                resting_units = sum(order["remaining_units"] for order in artifact.orders.values())
                assert balance_or_zero(ledger, ESCROW) == resting_units, action
                # No resting order is left crossing by more than dust: every trade fills what it crossed,
                # except a fill so small that rounding up would price it above the limit.
                for order in artifact.orders.values():
                    side = Side(order["side"])
                    if artifact.side_price_wad(side) < order["limit_price_wad"]:
                        target_wad = order["limit_price_wad"] if side == Side.LONG else WAD - order["limit_price_wad"]
                        _, shares_units, _ = shares_to_reach_price(
                            artifact.q_long, artifact.q_short, LIQUIDITY_UNITS, target_wad
                        )
                        dust = shares_units <= DUST_SHARES_UNITS or order["remaining_units"] <= DUST_SHARES_UNITS
                        assert dust, (action, order, shares_units)
            assert_audit_clean(ledger)
            total_units = sum(ledger.balance_of(name) for name in ("alice", "bob", "carol"))
            assert total_units + ledger.balance_of(POOL) + balance_or_zero(ledger, ESCROW) == ledger.total_supply()

    example()
