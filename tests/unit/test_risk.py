"""Unit tests for domain/risk.py: pre-trade checks, Kelly sizing, trailing stops,
emergency liquidation, rebalancing advice and config validation."""

from __future__ import annotations

from decimal import Decimal
from fractions import Fraction

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from stakeledger.domain.rules.risk.config import MarketConfig, PortfolioConfig
from stakeledger.domain.rules.risk.kelly import SizingReason, kelly_fraction, kelly_order_size_units
from stakeledger.domain.rules.risk.liquidation import should_liquidate
from stakeledger.domain.rules.risk.pretrade import (
    OpenExposure,
    OrderIntent,
    PortfolioState,
    Rejection,
    RejectReason,
    check_batch,
    check_order,
)
from stakeledger.domain.rules.risk.rebalance import RebalanceDirection, RebalanceReason, rebalance_actions
from stakeledger.domain.rules.risk.stops import TrailingStop, new_trailing_stop, update_trailing_stop
from stakeledger.domain.vocabulary import MAX_BATCH_ORDERS, WAD

TOKEN = 10**18

# Whole-token units (decimals 0) keep the table readable: equity 1000 gives limits of
# 50 per position (5%), 200 per group (20%) and 300 in total (30%); min size is 5.
CONFIG = PortfolioConfig.default(decimals=0)
EQUITY = 1000


def positions(*specs: tuple[str, str | None, int]) -> tuple[OpenExposure, ...]:
    return tuple(OpenExposure(artifact_id, group, cost) for artifact_id, group, cost in specs)


def state(available: int = EQUITY, open_positions: tuple[OpenExposure, ...] = ()) -> PortfolioState:
    return PortfolioState(equity_units=EQUITY, available_units=available, open_positions=open_positions)


def order(
    tokens: int = 10,
    artifact_id: str = "new",
    group: str | None = None,
    frozen: bool = False,
    allow_add: bool = False,
) -> OrderIntent:
    return OrderIntent(artifact_id, "long", tokens, group, frozen, allow_add)


TEN_UNGROUPED = positions(*[(f"p{i}", None, 10) for i in range(10)])

# One row per reason code, each built so that exactly that one check fails.
PRECEDENCE_TABLE = [
    pytest.param(state(), order(frozen=True), RejectReason.FROZEN, id="FROZEN"),
    pytest.param(
        state(open_positions=positions(("a1", None, 10))),
        order(artifact_id="a1"),
        RejectReason.ALREADY_IN_MARKET,
        id="ALREADY_IN_MARKET",
    ),
    pytest.param(state(), order(tokens=4), RejectReason.BELOW_MIN_SIZE, id="BELOW_MIN_SIZE"),
    pytest.param(state(available=9), order(tokens=10), RejectReason.INSUFFICIENT_FUNDS, id="INSUFFICIENT_FUNDS"),
    pytest.param(state(), order(tokens=51), RejectReason.MAX_POSITION_PCT, id="MAX_POSITION_PCT"),
    pytest.param(state(open_positions=TEN_UNGROUPED), order(), RejectReason.MAX_POSITIONS, id="MAX_POSITIONS"),
    pytest.param(
        state(open_positions=positions(("g1", "g", 45), ("g2", "g", 50), ("g3", "g", 50), ("g4", "g", 50))),
        order(group="g"),
        RejectReason.GROUP_EXPOSURE,
        id="GROUP_EXPOSURE",
    ),
    pytest.param(
        state(open_positions=positions(*[(f"p{i}", None, 48) for i in range(6)])),
        order(tokens=20),
        RejectReason.TOTAL_EXPOSURE,
        id="TOTAL_EXPOSURE",
    ),
    # Two limits fail (position size and position count): the earlier one is reported.
    pytest.param(
        state(open_positions=TEN_UNGROUPED),
        order(tokens=51),
        RejectReason.MAX_POSITION_PCT,
        id="MAX_POSITION_PCT-beats-MAX_POSITIONS",
    ),
    # Every check fails at once: the first code in the declaration wins.
    pytest.param(
        state(available=1, open_positions=TEN_UNGROUPED + positions(("a1", "g", 300))),
        order(tokens=4, artifact_id="a1", group="g", frozen=True),
        RejectReason.FROZEN,
        id="all-fail-FROZEN-first",
    ),
]


@pytest.mark.parametrize(("portfolio", "intent", "expected"), PRECEDENCE_TABLE)
def test_check_order_when_limits_fail_then_first_reason_in_precedence_is_reported(
    portfolio: PortfolioState, intent: OrderIntent, expected: RejectReason
) -> None:
    rejection = check_order(CONFIG, portfolio, intent)
    assert rejection is not None
    assert rejection.reason is expected


# One row per adjacent pair of codes, each built so that exactly those two checks fail.
# Together the rows pin the whole declared order, not just its first and last entries.
ADJACENT_PAIR_TABLE = [
    pytest.param(
        state(open_positions=positions(("a1", None, 10))),
        order(artifact_id="a1", frozen=True),
        RejectReason.FROZEN,
        id="FROZEN-beats-ALREADY_IN_MARKET",
    ),
    pytest.param(
        state(open_positions=positions(("a1", None, 10))),
        order(tokens=4, artifact_id="a1"),
        RejectReason.ALREADY_IN_MARKET,
        id="ALREADY_IN_MARKET-beats-BELOW_MIN_SIZE",
    ),
    pytest.param(
        state(available=3), order(tokens=4), RejectReason.BELOW_MIN_SIZE, id="BELOW_MIN_SIZE-beats-INSUFFICIENT_FUNDS"
    ),
    pytest.param(
        state(available=55),
        order(tokens=60),
        RejectReason.INSUFFICIENT_FUNDS,
        id="INSUFFICIENT_FUNDS-beats-MAX_POSITION_PCT",
    ),
    pytest.param(
        state(open_positions=TEN_UNGROUPED),
        order(tokens=51),
        RejectReason.MAX_POSITION_PCT,
        id="MAX_POSITION_PCT-beats-MAX_POSITIONS",
    ),
    pytest.param(
        state(open_positions=positions(*[(f"g{i}", "g", 20) for i in range(10)])),
        order(group="g"),
        RejectReason.MAX_POSITIONS,
        id="MAX_POSITIONS-beats-GROUP_EXPOSURE",
    ),
    pytest.param(
        state(
            open_positions=positions(("g1", "g", 50), ("g2", "g", 50), ("g3", "g", 50), ("g4", "g", 45))
            + positions(("p1", None, 50), ("p2", None, 50))
        ),
        order(group="g"),
        RejectReason.GROUP_EXPOSURE,
        id="GROUP_EXPOSURE-beats-TOTAL_EXPOSURE",
    ),
]


@pytest.mark.parametrize(("portfolio", "intent", "expected"), ADJACENT_PAIR_TABLE)
def test_check_order_when_two_adjacent_limits_fail_then_the_earlier_one_wins(
    portfolio: PortfolioState, intent: OrderIntent, expected: RejectReason
) -> None:
    rejection = check_order(CONFIG, portfolio, intent)
    assert rejection is not None
    assert rejection.reason is expected


def test_adjacent_pair_table_when_walked_then_covers_every_neighbouring_pair() -> None:
    winners = [param.values[2] for param in ADJACENT_PAIR_TABLE]
    assert winners == list(RejectReason)[:-1]


def test_precedence_table_when_walked_then_every_reason_code_has_a_row() -> None:
    covered = {param.values[2] for param in PRECEDENCE_TABLE}
    assert covered == set(RejectReason)


def test_reject_reason_when_listed_then_declared_in_precedence_order() -> None:
    assert [reason.value for reason in RejectReason] == [
        "FROZEN",
        "ALREADY_IN_MARKET",
        "BELOW_MIN_SIZE",
        "INSUFFICIENT_FUNDS",
        "MAX_POSITION_PCT",
        "MAX_POSITIONS",
        "GROUP_EXPOSURE",
        "TOTAL_EXPOSURE",
    ]


def test_check_order_when_every_limit_has_room_then_order_is_accepted() -> None:
    portfolio = state(open_positions=positions(("g1", "g", 150), ("p1", None, 100)))
    assert check_order(CONFIG, portfolio, order(tokens=50, group="g")) is None


def test_check_order_when_size_is_exactly_the_limit_then_accepted_and_one_unit_more_rejected() -> None:
    # 5.1% is not a binary fraction; the check must still be exact to the unit.
    config = PortfolioConfig(max_position_size_pct=Decimal("5.1"))
    portfolio = PortfolioState(equity_units=1000 * TOKEN, available_units=1000 * TOKEN)
    limit_units = 51 * TOKEN
    assert check_order(config, portfolio, OrderIntent("a", "long", limit_units)) is None
    rejection = check_order(config, portfolio, OrderIntent("a", "long", limit_units + 1))
    assert rejection is not None
    assert rejection.reason is RejectReason.MAX_POSITION_PCT
    assert rejection.context["limit_units"] == str(limit_units)


def test_check_order_when_market_overrides_position_size_then_override_is_the_limit() -> None:
    market = MarketConfig(position_size_pct=Decimal(2))
    assert check_order(CONFIG, state(), order(tokens=20), market) is None
    rejection = check_order(CONFIG, state(), order(tokens=21), market)
    assert rejection == Rejection(
        RejectReason.MAX_POSITION_PCT,
        {"artifact_id": "new", "position_units": "21", "limit_units": "20", "limit_pct": "2"},
    )
    assert rejection.message == "MAX_POSITION_PCT artifact_id=new position_units=21 limit_units=20 limit_pct=2"


def test_check_order_when_market_config_names_group_then_group_limit_applies() -> None:
    portfolio = state(open_positions=positions(("g1", "g", 195)))
    rejection = check_order(CONFIG, portfolio, order(tokens=10), MarketConfig(correlation_group="g"))
    assert rejection is not None and rejection.reason is RejectReason.GROUP_EXPOSURE
    assert rejection.context["group"] == "g"
    assert rejection.context["exposure_units"] == "205"


def test_check_order_when_order_and_market_groups_disagree_then_value_error() -> None:
    with pytest.raises(ValueError, match="disagrees"):
        check_order(CONFIG, state(), order(group="a"), MarketConfig(correlation_group="b"))


def test_check_order_when_adding_to_existing_then_position_counts_existing_cost() -> None:
    portfolio = state(open_positions=positions(("a1", None, 40)))
    rejection = check_order(CONFIG, portfolio, order(tokens=11, artifact_id="a1", allow_add=True))
    assert rejection is not None and rejection.reason is RejectReason.MAX_POSITION_PCT
    assert rejection.context["position_units"] == "51"
    assert check_order(CONFIG, portfolio, order(tokens=10, artifact_id="a1", allow_add=True)) is None


def test_check_order_when_adding_to_existing_at_max_positions_then_no_new_slot_needed() -> None:
    portfolio = state(open_positions=TEN_UNGROUPED)
    assert check_order(CONFIG, portfolio, order(tokens=10, artifact_id="p3", allow_add=True)) is None


def test_check_order_when_equity_is_zero_then_position_limit_rejects() -> None:
    portfolio = PortfolioState(equity_units=0, available_units=100)
    rejection = check_order(CONFIG, portfolio, order(tokens=10))
    assert rejection is not None and rejection.reason is RejectReason.MAX_POSITION_PCT


@pytest.mark.parametrize(
    "build",
    [
        pytest.param(lambda: OrderIntent("a", "long", 0), id="zero-tokens"),
        pytest.param(lambda: OrderIntent("a", "long", -5), id="negative-tokens"),
        pytest.param(lambda: OrderIntent("a", "up", 5), id="bad-side"),
        pytest.param(lambda: OrderIntent("a", "long", 5.0), id="float-tokens"),
        pytest.param(lambda: PortfolioState(-1, 0), id="negative-equity"),
        pytest.param(lambda: PortfolioState(10, -1), id="negative-available"),
        pytest.param(lambda: OpenExposure("a", None, -1), id="negative-cost"),
    ],
)
def test_input_records_when_values_are_invalid_then_value_error(build) -> None:
    with pytest.raises(ValueError):
        build()


# --- check_batch ---------------------------------------------------------------------

BATCH_CONFIG = PortfolioConfig(max_position_size_pct=Decimal(15), min_trade_size_units=5)


def test_check_batch_when_second_order_breaches_group_with_first_then_second_rejected() -> None:
    first = order(tokens=120, artifact_id="x", group="g")
    second = order(tokens=120, artifact_id="y", group="g")
    # Each one alone is within every limit.
    assert check_order(BATCH_CONFIG, state(), first) is None
    assert check_order(BATCH_CONFIG, state(), second) is None

    results = check_batch(BATCH_CONFIG, state(), [first, second])
    assert results[0] is None
    assert results[1] is not None and results[1].reason is RejectReason.GROUP_EXPOSURE
    assert results[1].context["exposure_units"] == "240"


def test_check_batch_when_an_order_is_rejected_then_later_orders_do_not_see_it() -> None:
    orders = [
        order(tokens=120, artifact_id="x", group="g"),
        order(tokens=120, artifact_id="y", group="g"),  # rejected: 240 > 200
        order(tokens=80, artifact_id="z", group="g"),  # 120 + 80 = 200: exactly the limit
    ]
    results = check_batch(BATCH_CONFIG, state(), orders)
    assert [None if result is None else result.reason for result in results] == [
        None,
        RejectReason.GROUP_EXPOSURE,
        None,
    ]


def test_check_batch_when_orders_repeat_a_market_or_drain_cash_then_later_ones_rejected() -> None:
    orders = [
        order(tokens=30, artifact_id="x"),
        order(tokens=30, artifact_id="x"),
        order(tokens=30, artifact_id="y"),
    ]
    results = check_batch(CONFIG, state(available=50), orders)
    assert results[0] is None
    assert results[1] is not None and results[1].reason is RejectReason.ALREADY_IN_MARKET
    assert results[2] is not None and results[2].reason is RejectReason.INSUFFICIENT_FUNDS
    assert results[2].context["available_units"] == "20"


def test_check_batch_when_market_configs_given_then_each_order_uses_its_own() -> None:
    market_configs = {"x": MarketConfig(position_size_pct=Decimal(1))}
    orders = [order(tokens=20, artifact_id="x"), order(tokens=20, artifact_id="y")]
    results = check_batch(CONFIG, state(), orders, market_configs)
    assert results[0] is not None and results[0].reason is RejectReason.MAX_POSITION_PCT
    assert results[1] is None


def test_check_batch_when_too_many_orders_then_value_error() -> None:
    with pytest.raises(ValueError, match="at most"):
        check_batch(CONFIG, state(), [order()] * (MAX_BATCH_ORDERS + 1))


# --- Kelly -----------------------------------------------------------------------------


def wad(text: str) -> int:
    return int(Decimal(text) * WAD)


KELLY_STATE = PortfolioState(equity_units=1000 * TOKEN, available_units=1000 * TOKEN)
KELLY_CONFIG = PortfolioConfig.default()


def test_kelly_fraction_when_long_belief_beats_price_then_full_kelly_is_edge_over_odds() -> None:
    # Issue example: belief 0.7 at price 0.5 -> (0.7 - 0.5) / (1 - 0.5) = 0.4.
    assert kelly_fraction(wad("0.5"), wad("0.7"), "long") == Fraction(2, 5)
    assert kelly_fraction(wad("0.25"), wad("0.5"), "long") == Fraction(1, 3)


def test_kelly_fraction_when_short_side_then_it_mirrors_long() -> None:
    # Issue example: belief 0.3 at price 0.5, short -> (0.5 - 0.3) / 0.5 = 0.4.
    assert kelly_fraction(wad("0.5"), wad("0.3"), "short") == Fraction(2, 5)
    assert kelly_fraction(wad("0.75"), wad("0.5"), "short") == Fraction(1, 3)


@settings(max_examples=200, deadline=None)
@given(
    price_wad=st.integers(min_value=1, max_value=WAD - 1),
    belief_wad=st.integers(min_value=0, max_value=WAD),
    side=st.sampled_from(["long", "short"]),
)
def test_kelly_fraction_when_any_price_then_equals_seed_002_odds_formula(
    price_wad: int, belief_wad: int, side: str
) -> None:
    # Seed 002 computes f = (b·p − q) / b with b = 1/price − 1 on the side's own price.
    price = Fraction(price_wad, WAD) if side == "long" else 1 - Fraction(price_wad, WAD)
    p = Fraction(belief_wad, WAD) if side == "long" else 1 - Fraction(belief_wad, WAD)
    b = 1 / price - 1
    assert kelly_fraction(price_wad, belief_wad, side) == (b * p - (1 - p)) / b


@pytest.mark.parametrize("price_wad", [0, WAD, -1, WAD + 1])
def test_kelly_fraction_when_price_is_not_inside_zero_one_then_value_error(price_wad: int) -> None:
    with pytest.raises(ValueError):
        kelly_fraction(price_wad, wad("0.5"), "long")


def test_kelly_size_when_quarter_kelly_exceeds_position_limit_then_capped_at_five_pct() -> None:
    sizing = kelly_order_size_units(KELLY_CONFIG, KELLY_STATE, wad("0.5"), wad("0.7"), "long")
    assert sizing.full_fraction == Fraction(2, 5)
    assert sizing.applied_fraction == Fraction(1, 10)
    assert sizing.raw_size_units == 100 * TOKEN
    assert sizing.size_units == 50 * TOKEN  # 5% of 1000 tokens
    assert sizing.capped_by is SizingReason.MAX_POSITION_PCT
    assert sizing.reason is None
    assert sizing.should_order


def test_kelly_size_when_short_belief_below_price_then_mirrors_long() -> None:
    sizing = kelly_order_size_units(KELLY_CONFIG, KELLY_STATE, wad("0.5"), wad("0.3"), "short")
    assert sizing.full_fraction == Fraction(2, 5)
    assert sizing.size_units == 50 * TOKEN


@pytest.mark.parametrize(
    ("belief", "side"),
    [("0.5", "long"), ("0.4", "long"), ("0.5", "short"), ("0.7", "short")],
)
def test_kelly_size_when_no_edge_then_no_order(belief: str, side: str) -> None:
    sizing = kelly_order_size_units(KELLY_CONFIG, KELLY_STATE, wad("0.5"), wad(belief), side)
    assert sizing.full_fraction <= 0
    assert sizing.size_units == 0
    assert sizing.reason is SizingReason.NO_EDGE
    assert not sizing.should_order


def test_kelly_size_when_uncapped_then_size_is_floor_of_fractional_kelly() -> None:
    # Belief 0.51 at 0.5: full 0.02, quarter 0.005 -> 5 tokens of 1000, under every cap.
    sizing = kelly_order_size_units(KELLY_CONFIG, KELLY_STATE, wad("0.5"), wad("0.51"), "long")
    assert sizing.applied_fraction == Fraction(1, 200)
    assert sizing.size_units == sizing.raw_size_units == 5 * TOKEN
    assert sizing.capped_by is None and sizing.reason is None


def test_kelly_size_when_capped_below_minimum_then_no_order() -> None:
    small = PortfolioState(equity_units=40 * TOKEN, available_units=40 * TOKEN)
    sizing = kelly_order_size_units(KELLY_CONFIG, small, wad("0.5"), wad("0.7"), "long")
    assert sizing.raw_size_units == 4 * TOKEN
    assert sizing.capped_by is SizingReason.MAX_POSITION_PCT  # 2 tokens
    assert sizing.size_units == 0
    assert sizing.reason is SizingReason.BELOW_MIN_SIZE


def test_kelly_size_when_total_exposure_is_full_then_reason_is_total_exposure() -> None:
    full = PortfolioState(1000 * TOKEN, 700 * TOKEN, positions(("a", None, 300 * TOKEN)))
    sizing = kelly_order_size_units(KELLY_CONFIG, full, wad("0.5"), wad("0.7"), "long")
    assert sizing.size_units == 0
    assert sizing.reason is SizingReason.TOTAL_EXPOSURE


def test_kelly_size_when_group_room_is_small_then_capped_by_group() -> None:
    grouped = PortfolioState(1000 * TOKEN, 800 * TOKEN, positions(("a", "g", 180 * TOKEN)))
    sizing = kelly_order_size_units(
        KELLY_CONFIG, grouped, wad("0.5"), wad("0.7"), "long", market_config=MarketConfig(correlation_group="g")
    )
    assert sizing.size_units == 20 * TOKEN
    assert sizing.capped_by is SizingReason.GROUP_EXPOSURE


def test_kelly_size_when_cash_is_short_then_capped_by_funds() -> None:
    poor = PortfolioState(1000 * TOKEN, 30 * TOKEN)
    sizing = kelly_order_size_units(KELLY_CONFIG, poor, wad("0.5"), wad("0.7"), "long")
    assert sizing.size_units == 30 * TOKEN
    assert sizing.capped_by is SizingReason.INSUFFICIENT_FUNDS


def test_kelly_size_when_sized_order_is_checked_then_it_passes_pre_trade_checks() -> None:
    sizing = kelly_order_size_units(KELLY_CONFIG, KELLY_STATE, wad("0.5"), wad("0.7"), "long")
    assert check_order(KELLY_CONFIG, KELLY_STATE, OrderIntent("a", "long", sizing.size_units)) is None


@pytest.mark.parametrize("fraction", [Fraction(0), Fraction(-1, 4), Fraction(5, 4), 0.25])
def test_kelly_size_when_fraction_out_of_range_then_value_error(fraction) -> None:
    with pytest.raises(ValueError):
        kelly_order_size_units(KELLY_CONFIG, KELLY_STATE, wad("0.5"), wad("0.7"), "long", fraction)


# --- trailing stops --------------------------------------------------------------------


def test_new_trailing_stop_when_opened_then_trigger_is_trail_below_price() -> None:
    stop = new_trailing_stop(wad("0.5"), Decimal(2))
    assert stop.high_water_wad == wad("0.5")
    assert stop.trigger_wad == wad("0.49")


def test_update_trailing_stop_when_rise_is_smaller_than_min_ratchet_then_trigger_unchanged() -> None:
    # Seed 001's rule: replace only if new_trigger > trigger · (1 + min_ratchet).
    stop = new_trailing_stop(wad("0.5"), Decimal(2), Decimal(1))
    update = update_trailing_stop(stop, wad("0.5049"))
    # Candidate 0.5049 · 0.98 = 0.494802 is not above 0.49 · 1.01 = 0.4949.
    assert not update.ratcheted
    assert update.stop.trigger_wad == wad("0.49")
    assert update.stop.high_water_wad == wad("0.5049")
    assert not update.triggered


def test_update_trailing_stop_when_rise_exceeds_min_ratchet_then_trigger_rises() -> None:
    stop = new_trailing_stop(wad("0.5"), Decimal(2), Decimal(1))
    update = update_trailing_stop(stop, wad("0.51"))
    assert update.ratcheted
    assert update.stop.trigger_wad == wad("0.4998")


def test_update_trailing_stop_when_price_touches_trigger_then_triggered() -> None:
    stop = new_trailing_stop(wad("0.5"), Decimal(2))
    assert update_trailing_stop(stop, wad("0.49")).triggered
    assert not update_trailing_stop(stop, wad("0.49") + 1).triggered
    assert update_trailing_stop(stop, wad("0.3")).triggered


def test_update_trailing_stop_when_price_falls_then_trigger_does_not_fall() -> None:
    stop = new_trailing_stop(wad("0.8"), Decimal(5))
    update = update_trailing_stop(stop, wad("0.7"))
    assert update.stop.trigger_wad == stop.trigger_wad
    assert update.stop.high_water_wad == wad("0.8")
    assert update.triggered and not update.ratcheted


@settings(max_examples=150, deadline=None)
@given(
    start_wad=st.integers(min_value=1, max_value=WAD),
    path=st.lists(st.integers(min_value=0, max_value=WAD), max_size=40),
    trail_pct=st.decimals(min_value=Decimal("0.01"), max_value=Decimal("99.99"), places=2),
    min_ratchet_pct=st.decimals(min_value=Decimal(0), max_value=Decimal(10), places=2),
)
def test_update_trailing_stop_when_any_price_path_then_trigger_never_falls(
    start_wad: int, path: list[int], trail_pct: Decimal, min_ratchet_pct: Decimal
) -> None:
    stop = new_trailing_stop(start_wad, trail_pct, min_ratchet_pct)
    for price_wad in path:
        update = update_trailing_stop(stop, price_wad)
        assert update.stop.trigger_wad >= stop.trigger_wad
        assert update.stop.high_water_wad == max(stop.high_water_wad, price_wad)
        assert update.stop.trigger_wad <= update.stop.high_water_wad
        assert update.ratcheted == (update.stop.trigger_wad > stop.trigger_wad)
        assert update.triggered == (price_wad <= update.stop.trigger_wad)
        if min_ratchet_pct == 0:
            # With no ratchet threshold the trigger is exactly the trail below the high.
            numerator, denominator = trail_pct.as_integer_ratio()
            expected = update.stop.high_water_wad * (100 * denominator - numerator) // (100 * denominator)
            assert update.stop.trigger_wad == expected
        stop = update.stop


@pytest.mark.parametrize(
    ("price_wad", "trail_pct", "min_ratchet_pct"),
    [
        (0, Decimal(2), Decimal(0)),
        (WAD, Decimal(0), Decimal(0)),
        (WAD, Decimal(100), Decimal(0)),
        (WAD, Decimal(2), Decimal(-1)),
    ],
)
def test_new_trailing_stop_when_inputs_invalid_then_value_error(
    price_wad: int, trail_pct: Decimal, min_ratchet_pct: Decimal
) -> None:
    with pytest.raises(ValueError):
        new_trailing_stop(price_wad, trail_pct, min_ratchet_pct)


def test_trailing_stop_when_round_tripped_through_dict_then_equal() -> None:
    stop = new_trailing_stop(wad("0.5"), Decimal("2.5"), Decimal("0.5"))
    assert TrailingStop.from_dict(stop.to_dict()) == stop
    assert stop.to_dict()["trail_pct"] == "2.5"


# --- emergency liquidation -------------------------------------------------------------


@pytest.mark.parametrize(
    ("equity", "baseline", "loss_pct", "expected"),
    [
        pytest.param(899, 1000, Decimal(-10), True, id="below-90pct"),
        pytest.param(900, 1000, Decimal(-10), False, id="exactly-90pct"),
        pytest.param(901, 1000, Decimal(-10), False, id="above-90pct"),
        pytest.param(894, 1000, Decimal("-10.5"), True, id="fractional-below"),
        pytest.param(895, 1000, Decimal("-10.5"), False, id="fractional-at"),
        pytest.param(999, 1000, Decimal(0), True, id="zero-loss-any-loss"),
        pytest.param(1000, 1000, Decimal(0), False, id="zero-loss-flat"),
        pytest.param(0, 1000, Decimal(-100), False, id="minus-100-never"),
        pytest.param(9 * 10**20 - 1, 10**21, Decimal(-10), True, id="wad-scale-one-unit-below"),
    ],
)
def test_should_liquidate_when_equity_near_threshold_then_only_strictly_below_fires(
    equity: int, baseline: int, loss_pct: Decimal, expected: bool
) -> None:
    assert should_liquidate(equity, baseline, loss_pct) is expected


@pytest.mark.parametrize("loss_pct", [Decimal(5), Decimal(-101), Decimal("NaN")])
def test_should_liquidate_when_loss_pct_invalid_then_value_error(loss_pct: Decimal) -> None:
    with pytest.raises(ValueError):
        should_liquidate(900, 1000, loss_pct)


# --- rebalancing -----------------------------------------------------------------------


def test_rebalance_actions_when_positions_drift_or_breach_then_advice_per_position() -> None:
    actions = rebalance_actions(
        positions=[("a", 60), ("b", 40), ("c", 50), ("e", 47)],
        equity_units=1000,
        targets_pct={"a": Decimal(5), "b": Decimal(5), "c": Decimal(5), "d": Decimal(3), "e": Decimal(5)},
        threshold_pct=Decimal(10),
        max_position_size_pct=Decimal(5),
    )
    by_id = {action.artifact_id: action for action in actions}
    assert sorted(by_id) == ["a", "b", "d"]  # c is on target, e drifted only -6%

    assert by_id["a"].action is RebalanceDirection.REDUCE
    assert by_id["a"].reason is RebalanceReason.MAX_POSITION_PCT
    assert by_id["a"].amount_units == 10
    assert by_id["a"].current_pct == Decimal("6.000000")

    assert by_id["b"].action is RebalanceDirection.INCREASE
    assert by_id["b"].reason is RebalanceReason.DRIFT
    assert by_id["b"].drift_pct == Decimal("-20.000000")  # relative: 4% vs 5% target
    assert by_id["b"].amount_units == 10

    assert by_id["d"].action is RebalanceDirection.INCREASE
    assert by_id["d"].drift_pct == Decimal("-100.000000")
    assert by_id["d"].amount_units == 30


def test_rebalance_actions_when_no_target_but_over_limit_then_reduce_to_limit() -> None:
    actions = rebalance_actions([("x", 80)], 1000, {}, Decimal(10), Decimal(5))
    assert len(actions) == 1
    assert actions[0].reason is RebalanceReason.MAX_POSITION_PCT
    assert actions[0].target_pct is None
    assert actions[0].amount_units == 30


def test_rebalance_actions_when_target_is_zero_then_reduce_everything() -> None:
    actions = rebalance_actions([("x", 20)], 1000, {"x": Decimal(0)}, Decimal(10), Decimal(5))
    assert [(a.action, a.amount_units, a.drift_pct) for a in actions] == [(RebalanceDirection.REDUCE, 20, None)]


def test_rebalance_actions_when_target_above_limit_then_increase_stops_at_limit() -> None:
    targets = {"x": Decimal(8), "y": Decimal(8)}
    actions = rebalance_actions([("x", 30), ("y", 50)], 1000, targets, Decimal(10), Decimal(5))
    assert [(a.artifact_id, a.action, a.amount_units) for a in actions] == [("x", RebalanceDirection.INCREASE, 20)]


# --- configuration ---------------------------------------------------------------------


def test_portfolio_config_when_defaulted_then_matches_spec() -> None:
    config = PortfolioConfig.default()
    assert config.to_dict() == {
        "max_position_size_pct": "5",
        "max_positions": 10,
        "max_correlated_exposure_pct": "20",
        "max_total_exposure_pct": "30",
        "rebalance_threshold_pct": "10",
        "emergency_liquidation_loss_pct": "-10",
        "min_trade_size_units": 5 * TOKEN,
    }
    assert config == PortfolioConfig()
    assert PortfolioConfig.default(decimals=6).min_trade_size_units == 5_000_000


def test_portfolio_config_when_round_tripped_through_dict_then_equal() -> None:
    config = PortfolioConfig(max_position_size_pct=Decimal("2.5"), max_positions=3, min_trade_size_units=7)
    assert PortfolioConfig.from_dict(config.to_dict()) == config
    assert isinstance(PortfolioConfig.from_dict(config.to_dict()).max_position_size_pct, Decimal)


def test_market_config_when_round_tripped_through_dict_then_equal() -> None:
    market = MarketConfig(position_size_pct=Decimal("3"), trail_pct=Decimal("2"), correlation_group="ai")
    assert MarketConfig.from_dict(market.to_dict()) == market
    assert MarketConfig.from_dict({}) == MarketConfig()


@pytest.mark.parametrize(
    "overrides",
    [
        pytest.param({"max_position_size_pct": Decimal(-1)}, id="negative-pct"),
        pytest.param({"max_position_size_pct": Decimal(0)}, id="zero-pct"),
        pytest.param({"max_total_exposure_pct": Decimal(101)}, id="over-100-pct"),
        pytest.param({"max_correlated_exposure_pct": Decimal("NaN")}, id="nan-pct"),
        pytest.param({"max_correlated_exposure_pct": Decimal("Infinity")}, id="infinite-pct"),
        pytest.param({"max_position_size_pct": 5.0}, id="float-pct"),
        pytest.param({"max_position_size_pct": "five"}, id="text-pct"),
        pytest.param({"rebalance_threshold_pct": Decimal(-1)}, id="negative-threshold"),
        pytest.param({"emergency_liquidation_loss_pct": Decimal(10)}, id="positive-loss"),
        pytest.param({"max_positions": 0}, id="zero-max-positions"),
        pytest.param({"max_positions": True}, id="bool-max-positions"),
        pytest.param({"min_trade_size_units": -1}, id="negative-min-size"),
    ],
)
def test_portfolio_config_when_value_is_bad_then_value_error(overrides: dict) -> None:
    with pytest.raises(ValueError):
        PortfolioConfig(**overrides)


def test_portfolio_config_when_from_dict_has_unknown_key_then_value_error() -> None:
    with pytest.raises(ValueError, match="unknown"):
        PortfolioConfig.from_dict({"max_position_pct": "5"})


@pytest.mark.parametrize(
    "overrides",
    [
        pytest.param({"position_size_pct": Decimal(-1)}, id="negative-position-pct"),
        pytest.param({"trail_pct": Decimal(0)}, id="zero-trail"),
        pytest.param({"trail_pct": Decimal(100)}, id="full-trail"),
        pytest.param({"trail_pct": Decimal("NaN")}, id="nan-trail"),
        pytest.param({"correlation_group": ""}, id="empty-group"),
    ],
)
def test_market_config_when_value_is_bad_then_value_error(overrides: dict) -> None:
    with pytest.raises(ValueError):
        MarketConfig(**overrides)
