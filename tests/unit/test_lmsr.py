"""Unit tests for domain.lmsr: hand-derived values, an independent reference, and properties.

The reference below is written from Hanson's unshifted formulas at 80 significant digits and shares
no code with the module; it is only used where |q/b| is moderate, so e^{q/b} cannot overflow.
"""

from __future__ import annotations

from decimal import ROUND_CEILING, ROUND_FLOOR, Context, Decimal, localcontext

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from stakeledger.domain.rules import lmsr
from stakeledger.domain.rules.lmsr import (
    average_price_wad,
    buy_cost_units,
    cost_function,
    max_subsidy_units,
    prices_wad,
    sell_proceeds_units,
    shares_for_tokens,
    shares_to_reach_price,
)
from stakeledger.domain.vocabulary import WAD, Side

ONE_TOKEN_UNITS = 10**18

# Published constants (OEIS A002162 and A002391), to more digits than any test below needs.
LN_2 = Decimal("0.69314718055994530941723212145817656807550013436025525412068")
LN_3 = Decimal("1.09861228866810969139524523692252570464749055782274945173469")

PROPERTY_SETTINGS = settings(max_examples=60, deadline=None)
EXTREME_SETTINGS = settings(max_examples=30, deadline=None)


# --------------------------------------------------------------------------------------------------
# Independent reference (unshifted formulas, 80 digits)
# --------------------------------------------------------------------------------------------------


def _reference_context() -> Context:
    return Context(prec=80)


def _exact_context() -> Context:
    """Room for exact products of the constants below; pytest plugins change the global context."""
    return Context(prec=200)


def reference_cost(q_long: int, q_short: int, b_units: int) -> Decimal:
    """C(q) = b · ln(e^{q_long/b} + e^{q_short/b})."""
    with localcontext(_reference_context()):
        b = Decimal(b_units)
        return b * ((Decimal(q_long) / b).exp() + (Decimal(q_short) / b).exp()).ln()


def reference_long_price(q_long: int, q_short: int, b_units: int) -> Decimal:
    """p_long = e^{q_long/b} / (e^{q_long/b} + e^{q_short/b})."""
    with localcontext(_reference_context()):
        b = Decimal(b_units)
        e_long = (Decimal(q_long) / b).exp()
        return e_long / (e_long + (Decimal(q_short) / b).exp())


def reference_shares_for_tokens(q_long: int, q_short: int, b_units: int, tokens_units: int) -> Decimal:
    """Long shares x with C(q_long + x, q_short) = C(q) + T.

    x = b·ln(e^{(C+T)/b} − e^{q_short/b}) − q_long
    """
    with localcontext(_reference_context()):
        b = Decimal(b_units)
        budget = reference_cost(q_long, q_short, b_units) + tokens_units
        return b * ((budget / b).exp() - (Decimal(q_short) / b).exp()).ln() - q_long


def _snapped(value: Decimal) -> Decimal:
    """The nearest integer if value is within the reference's noise of it, else value.

    A cost is a whole number exactly when a trade only mirrors the gap (|q_long − q_short| is
    unchanged); the reference then carries noise in its 70th digit that must not decide a rounding.
    """
    with localcontext(_exact_context()):
        nearest = value.to_integral_value()
        return nearest if abs(value - nearest) < Decimal("1e-40") else value


def ceil_units(value: Decimal) -> int:
    return int(_snapped(value).to_integral_value(rounding=ROUND_CEILING))


def floor_units(value: Decimal) -> int:
    return int(_snapped(value).to_integral_value(rounding=ROUND_FLOOR))


def after_buy(q_long: int, q_short: int, side: Side, shares_units: int) -> tuple[int, int]:
    if side is Side.LONG:
        return q_long + shares_units, q_short
    return q_long, q_short + shares_units


# --------------------------------------------------------------------------------------------------
# Strategies
# --------------------------------------------------------------------------------------------------

liquidities = st.integers(min_value=1, max_value=10**24)
sides = st.sampled_from(Side)


@st.composite
def moderate_markets(draw: st.DrawFn) -> tuple[int, int, int]:
    """(q_long, q_short, b) with |q/b| <= 30, where the unshifted reference is exact enough."""
    b_units = draw(liquidities)
    q_long = draw(st.integers(min_value=-30 * b_units, max_value=30 * b_units))
    q_short = draw(st.integers(min_value=-30 * b_units, max_value=30 * b_units))
    return q_long, q_short, b_units


@st.composite
def extreme_markets(draw: st.DrawFn) -> tuple[int, int, int]:
    """(q_long, q_short, b) with |q/b| up to about 10**6: e^{q/b} alone would be ~10**434294."""
    b_units = draw(st.integers(min_value=1, max_value=10**20))
    ratio_long = draw(st.integers(min_value=-(10**6), max_value=10**6))
    ratio_short = draw(st.integers(min_value=-(10**6), max_value=10**6))
    q_long = ratio_long * b_units + draw(st.integers(min_value=0, max_value=b_units))
    q_short = ratio_short * b_units + draw(st.integers(min_value=0, max_value=b_units))
    return q_long, q_short, b_units


def share_counts(b_units: int) -> st.SearchStrategy[int]:
    return st.integers(min_value=1, max_value=20 * b_units)


# --------------------------------------------------------------------------------------------------
# Hand-checkable values
# --------------------------------------------------------------------------------------------------


def test_prices_when_market_is_empty_then_each_side_is_exactly_half() -> None:
    assert prices_wad(0, 0, ONE_TOKEN_UNITS) == (WAD // 2, WAD // 2)


def test_prices_when_both_sides_hold_equal_shares_then_each_side_is_exactly_half() -> None:
    assert prices_wad(-7 * 10**20, -7 * 10**20, 3) == (WAD // 2, WAD // 2)


def test_cost_function_when_market_is_empty_then_equals_b_ln_2() -> None:
    # C(0, 0) = b·ln(e^0 + e^0) = b·ln 2.
    cost = cost_function(0, 0, ONE_TOKEN_UNITS)
    with localcontext(_exact_context()):
        assert abs(cost - ONE_TOKEN_UNITS * LN_2) < Decimal("1e-30")


@pytest.mark.parametrize(
    ("b_units", "expected_units"),
    [
        (1, 1),  # ln 2 = 0.693… → 1
        (100, 70),  # 69.31… → 70
        (ONE_TOKEN_UNITS, 693147180559945310),  # 693147180559945309.417… → …310
    ],
)
def test_max_subsidy_when_b_is_given_then_is_b_ln_2_rounded_up(b_units: int, expected_units: int) -> None:
    assert max_subsidy_units(b_units) == expected_units


def test_shares_to_reach_price_when_long_target_is_three_quarters_then_buys_b_ln_3() -> None:
    # p_long = 3/4 needs q_long − q_short = b·ln(3/4 ÷ 1/4) = b·ln 3 = 1098612288668109691.396,
    # rounded up to …692 (0.604 units more). The exact cost of b·ln 3 shares is
    # b·ln(e^{ln 3} + 1) − b·ln 2 = b·ln 4 − b·ln 2 = b·ln 2; the extra 0.604 shares cost about
    # p·0.604 = 0.453 at p ≈ 3/4, so the cost is 693147180559945309.417 + 0.453 = …309.870 → …310.
    side, shares_units, cost_units = shares_to_reach_price(0, 0, ONE_TOKEN_UNITS, 3 * WAD // 4)
    assert side is Side.LONG
    with localcontext(_exact_context()):
        assert shares_units == ceil_units(ONE_TOKEN_UNITS * LN_3) == 1098612288668109692
    assert cost_units == 693147180559945310


def test_shares_to_reach_price_when_long_target_is_one_quarter_then_mirrors_the_long_case() -> None:
    # By symmetry p_long = 1/4 means p_short = 3/4: the same shares and cost, on the short side.
    side, shares_units, cost_units = shares_to_reach_price(0, 0, ONE_TOKEN_UNITS, WAD // 4)
    assert (side, shares_units, cost_units) == (Side.SHORT, 1098612288668109692, 693147180559945310)


def test_prices_when_q_long_is_b_ln_3_rounded_up_then_long_price_is_three_quarters() -> None:
    # p_long = 3e^δ/(3e^δ + 1) with δ = 0.604/b, i.e. 3/4 + (3/16)·δ: 0.11 units of WAD above 3/4.
    assert prices_wad(1098612288668109692, 0, ONE_TOKEN_UNITS) == (
        750000000000000000,
        250000000000000000,
    )


def test_shares_for_tokens_when_budget_is_cost_of_b_ln_3_shares_then_buys_those_shares() -> None:
    # Inverse of the case above: T = …310 buys x = b·ln(2e^{T/b} − 1) = b·ln 3 + 0.777 → …692.
    shares_units = shares_for_tokens(0, 0, ONE_TOKEN_UNITS, Side.LONG, 693147180559945310)
    assert shares_units == 1098612288668109692


def test_buy_cost_when_buying_one_token_of_shares_at_even_odds_then_matches_hand_formula() -> None:
    # From (0, 0), x = b shares cost b·ln((e + 1)/2) = b·0.620114506958277524632… → …525.
    cost_units = buy_cost_units(0, 0, ONE_TOKEN_UNITS, Side.SHORT, ONE_TOKEN_UNITS)
    assert cost_units == 620114506958277525


def test_trades_when_buy_only_mirrors_the_gap_then_cost_is_an_exact_whole_number() -> None:
    # From (10, 0) buying 20 short gives (10, 20): |q_long − q_short| stays 10, so
    # C(10, 20) − C(10, 0) = (20 + b·ln(1 + e^{−10/b})) − (10 + b·ln(1 + e^{−10/b})) = 10 exactly.
    # Rounding an exact 10 up or down must still give 10, not 11 or 9.
    assert buy_cost_units(10, 0, 7, Side.SHORT, 20) == 10
    assert sell_proceeds_units(10, 20, 7, Side.SHORT, 20) == 10
    assert shares_for_tokens(10, 0, 7, Side.SHORT, 10) == 20


@pytest.mark.parametrize(
    ("cost_units", "shares_units", "expected_wad"),
    [
        (1, 1, WAD),
        (1, 2, WAD // 2),
        (1, 3, 333333333333333334),  # 0.333… rounded up
        # ≈ ln 2 / ln 3 = 0.630929753571457437…; the integer quotient leaves a remainder, so …438.
        (693147180559945310, 1098612288668109692, 630929753571457438),
    ],
)
def test_average_price_when_cost_and_shares_are_given_then_rounds_up(
    cost_units: int, shares_units: int, expected_wad: int
) -> None:
    assert average_price_wad(cost_units, shares_units) == expected_wad


def test_trades_when_global_decimal_context_is_coarse_then_results_do_not_change() -> None:
    # The module must use its own local context, whatever the caller set globally.
    def quote() -> tuple[object, ...]:
        return (
            prices_wad(3 * 10**18, -(10**18), ONE_TOKEN_UNITS),
            buy_cost_units(3 * 10**18, -(10**18), ONE_TOKEN_UNITS, Side.SHORT, 10**17),
            shares_for_tokens(3 * 10**18, -(10**18), ONE_TOKEN_UNITS, Side.LONG, 10**17),
            max_subsidy_units(ONE_TOKEN_UNITS),
        )

    expected = quote()
    lmsr._spread_term_at.cache_clear()  # recompute, rather than recall, under the coarse context
    with localcontext(Context(prec=3, Emax=10, Emin=-10)):
        assert quote() == expected


def test_trades_when_spread_terms_are_remembered_then_results_equal_a_fresh_computation() -> None:
    # One gap at three magnitudes runs at three precisions: a cache that ignored the precision would
    # hand the coarser value to the finer computation, and C(q) would lose digits.
    gap_units = 3 * 10**17

    def quote(q_long: int) -> tuple[object, ...]:
        q_short = q_long - gap_units
        return (
            cost_function(q_long, q_short, ONE_TOKEN_UNITS),
            buy_cost_units(q_long, q_short, ONE_TOKEN_UNITS, Side.LONG, 7 * 10**17),
            shares_for_tokens(q_long, q_short, ONE_TOKEN_UNITS, Side.SHORT, 10**17),
        )

    def forget() -> None:
        lmsr._spread_term_at.cache_clear()
        lmsr._spread_term_scaled.cache_clear()

    magnitudes = (10**18, 10**40, 10**70)
    each_alone = []
    for q_long in magnitudes:
        forget()
        each_alone.append(quote(q_long))
    forget()
    sharing_one_cache = [quote(q_long) for q_long in magnitudes]
    assert lmsr._spread_term_scaled.cache_info().hits > 0  # a trade does reuse its own terms
    assert sharing_one_cache == each_alone


def test_side_when_built_from_its_value_then_is_the_member() -> None:
    assert Side("long") is Side.LONG
    assert Side("short") is Side.SHORT
    assert isinstance(Side.LONG, str)


# --------------------------------------------------------------------------------------------------
# Agreement with the independent reference
# --------------------------------------------------------------------------------------------------


@PROPERTY_SETTINGS
@given(moderate_markets())
def test_cost_function_when_q_is_moderate_then_matches_unshifted_reference(
    market: tuple[int, int, int],
) -> None:
    q_long, q_short, b_units = market
    cost = cost_function(q_long, q_short, b_units)
    with localcontext(_exact_context()):
        assert abs(cost - reference_cost(q_long, q_short, b_units)) < Decimal("1e-30")


@PROPERTY_SETTINGS
@given(moderate_markets())
def test_prices_when_q_is_moderate_then_long_price_is_floor_of_reference_softmax(
    market: tuple[int, int, int],
) -> None:
    q_long, q_short, b_units = market
    expected_long_wad = floor_units(reference_long_price(q_long, q_short, b_units) * WAD)
    expected_long_wad = min(max(expected_long_wad, 1), WAD - 1)
    assert prices_wad(q_long, q_short, b_units) == (expected_long_wad, WAD - expected_long_wad)


@PROPERTY_SETTINGS
@given(st.data(), moderate_markets(), sides)
def test_buy_and_sell_when_q_is_moderate_then_round_the_reference_cost_difference_toward_the_pool(
    data: st.DataObject, market: tuple[int, int, int], side: Side
) -> None:
    q_long, q_short, b_units = market
    shares_units = data.draw(share_counts(b_units))
    q_long_after, q_short_after = after_buy(q_long, q_short, side, shares_units)
    with localcontext(Context(prec=80)):
        exact_units = reference_cost(q_long_after, q_short_after, b_units) - reference_cost(q_long, q_short, b_units)
    assert buy_cost_units(q_long, q_short, b_units, side, shares_units) == ceil_units(exact_units)
    proceeds_units = sell_proceeds_units(q_long_after, q_short_after, b_units, side, shares_units)
    assert proceeds_units == floor_units(exact_units)


@PROPERTY_SETTINGS
@given(st.data(), moderate_markets(), sides)
def test_shares_for_tokens_when_q_is_moderate_then_is_floor_of_reference_closed_form(
    data: st.DataObject, market: tuple[int, int, int], side: Side
) -> None:
    q_long, q_short, b_units = market
    tokens_units = data.draw(st.integers(min_value=1, max_value=20 * b_units))
    q_side, q_other = (q_long, q_short) if side is Side.LONG else (q_short, q_long)
    exact_units = reference_shares_for_tokens(q_side, q_other, b_units, tokens_units)
    expected_units = floor_units(exact_units)
    assert shares_for_tokens(q_long, q_short, b_units, side, tokens_units) == expected_units


# --------------------------------------------------------------------------------------------------
# Properties
# --------------------------------------------------------------------------------------------------


@PROPERTY_SETTINGS
@given(st.one_of(moderate_markets(), extreme_markets()))
def test_prices_when_any_market_then_both_are_strictly_inside_zero_one_and_sum_to_wad(
    market: tuple[int, int, int],
) -> None:
    p_long_wad, p_short_wad = prices_wad(*market)
    assert 0 < p_long_wad < WAD
    assert 0 < p_short_wad < WAD
    assert p_long_wad + p_short_wad == WAD


@PROPERTY_SETTINGS
@given(st.data(), moderate_markets(), sides)
def test_buy_when_split_in_two_steps_then_costs_the_single_buy_plus_at_most_one_unit(
    data: st.DataObject, market: tuple[int, int, int], side: Side
) -> None:
    # ceil(a) + ceil(b) − ceil(a + b) is 0 or 1: splitting never saves and costs at most one unit.
    q_long, q_short, b_units = market
    first_units = data.draw(share_counts(b_units))
    second_units = data.draw(share_counts(b_units))
    first_cost_units = buy_cost_units(q_long, q_short, b_units, side, first_units)
    q_long_mid, q_short_mid = after_buy(q_long, q_short, side, first_units)
    second_cost_units = buy_cost_units(q_long_mid, q_short_mid, b_units, side, second_units)
    single_cost_units = buy_cost_units(q_long, q_short, b_units, side, first_units + second_units)
    assert 0 <= first_cost_units + second_cost_units - single_cost_units <= 1


@PROPERTY_SETTINGS
@given(st.data(), st.one_of(moderate_markets(), extreme_markets()), sides)
def test_buy_then_equal_sell_when_any_market_then_trader_never_gains(
    data: st.DataObject, market: tuple[int, int, int], side: Side
) -> None:
    # proceeds = floor(v) and cost = ceil(v) of the same v, so a round trip never gains; they are
    # equal only when v is a whole number (see the mirrored-gap test).
    q_long, q_short, b_units = market
    shares_units = data.draw(share_counts(b_units))
    cost_units = buy_cost_units(q_long, q_short, b_units, side, shares_units)
    q_long_after, q_short_after = after_buy(q_long, q_short, side, shares_units)
    proceeds_units = sell_proceeds_units(q_long_after, q_short_after, b_units, side, shares_units)
    assert proceeds_units <= cost_units


@PROPERTY_SETTINGS
@given(st.data(), st.one_of(moderate_markets(), extreme_markets()), sides)
def test_buy_and_sell_when_any_market_then_amounts_stay_strictly_between_zero_and_shares(
    data: st.DataObject, market: tuple[int, int, int], side: Side
) -> None:
    # Every price is in (0, 1), so x shares cost in (0, x] after rounding up and sell for [0, x).
    q_long, q_short, b_units = market
    shares_units = data.draw(share_counts(b_units))
    assert 1 <= buy_cost_units(q_long, q_short, b_units, side, shares_units) <= shares_units
    assert 0 <= sell_proceeds_units(q_long, q_short, b_units, side, shares_units) < shares_units


@PROPERTY_SETTINGS
@given(
    liquidities,
    st.lists(st.tuples(sides, st.integers(min_value=1, max_value=10**6)), min_size=1, max_size=8),
)
def test_buys_when_starting_from_empty_market_then_pool_loss_never_exceeds_subsidy(
    b_units: int, trades: list[tuple[Side, int]]
) -> None:
    # Shares are drawn as multiples of b/1000 so trades move prices at every b.
    q_long, q_short, collected_units = 0, 0, 0
    for side, thousandths_of_b in trades:
        shares_units = max(1, thousandths_of_b * b_units // 1000)
        collected_units += buy_cost_units(q_long, q_short, b_units, side, shares_units)
        q_long, q_short = after_buy(q_long, q_short, side, shares_units)
    worst_payout_units = max(q_long, q_short)
    assert worst_payout_units - collected_units <= max_subsidy_units(b_units)


@PROPERTY_SETTINGS
@given(st.data(), st.one_of(moderate_markets(), extreme_markets()), sides)
def test_shares_for_tokens_when_any_budget_then_result_is_affordable_and_one_more_is_not(
    data: st.DataObject, market: tuple[int, int, int], side: Side
) -> None:
    q_long, q_short, b_units = market
    tokens_units = data.draw(st.integers(min_value=1, max_value=20 * b_units))
    shares_units = shares_for_tokens(q_long, q_short, b_units, side, tokens_units)
    # One share costs at most one unit (its price is below 1), so any budget buys at least one.
    assert shares_units >= 1
    assert buy_cost_units(q_long, q_short, b_units, side, shares_units) <= tokens_units
    assert buy_cost_units(q_long, q_short, b_units, side, shares_units + 1) > tokens_units


@PROPERTY_SETTINGS
@given(moderate_markets(), st.integers(min_value=1, max_value=WAD - 1))
def test_shares_to_reach_price_when_any_target_then_fewest_shares_that_cross_it(
    market: tuple[int, int, int], target_long_wad: int
) -> None:
    q_long, q_short, b_units = market
    quote = shares_to_reach_price(q_long, q_short, b_units, target_long_wad)
    side, shares_units, cost_units = quote
    if shares_units == 0:
        assert prices_wad(q_long, q_short, b_units)[0] == target_long_wad
        assert cost_units == 0
        return
    assert cost_units == buy_cost_units(q_long, q_short, b_units, side, shares_units)
    long_after_wad = prices_wad(*after_buy(q_long, q_short, side, shares_units), b_units)[0]
    long_one_short_wad = prices_wad(*after_buy(q_long, q_short, side, shares_units - 1), b_units)[0]
    if side is Side.LONG:
        assert long_after_wad >= target_long_wad > long_one_short_wad
    else:
        assert long_after_wad <= target_long_wad <= long_one_short_wad


# --------------------------------------------------------------------------------------------------
# Extremes: |q/b| up to 10**6, where e^{q/b} alone would overflow any float and most Decimals
# --------------------------------------------------------------------------------------------------


@EXTREME_SETTINGS
@given(extreme_markets())
def test_cost_function_when_q_over_b_is_huge_then_lies_between_max_q_and_max_q_plus_b_ln_2(
    market: tuple[int, int, int],
) -> None:
    # max(q) <= C(q) <= max(q) + b·ln 2, with equality on the right only when the sides are equal;
    # LN_2 is truncated, so the bound adds one unit in its last digit.
    q_long, q_short, b_units = market
    cost = cost_function(q_long, q_short, b_units)
    ln_2_upper = LN_2 + Decimal("1e-59")
    with localcontext(_exact_context()):
        assert max(q_long, q_short) <= cost <= max(q_long, q_short) + b_units * ln_2_upper


@pytest.mark.parametrize("b_units", [1, 1000, ONE_TOKEN_UNITS])
def test_prices_when_long_leads_by_a_million_b_then_clamp_to_one_wad_unit_from_certainty(
    b_units: int,
) -> None:
    assert prices_wad(10**6 * b_units, 0, b_units) == (WAD - 1, 1)
    assert prices_wad(0, 10**6 * b_units, b_units) == (1, WAD - 1)
    assert prices_wad(-(10**6) * b_units, 10**6 * b_units, b_units) == (1, WAD - 1)


@pytest.mark.parametrize("b_units", [1, 1000, ONE_TOKEN_UNITS])
def test_trades_when_long_leads_by_a_million_b_then_pool_never_gives_a_share_away(
    b_units: int,
) -> None:
    q_long = 10**6 * b_units
    # The long price is 1 − e^{−10**6}: a long share costs a whole unit and sells back for nothing.
    assert buy_cost_units(q_long, 0, b_units, Side.LONG, 5) == 5
    assert sell_proceeds_units(q_long, 0, b_units, Side.LONG, 5) == 4
    # The short price is e^{−10**6}: still at least one unit to buy, nothing back on a sale.
    assert buy_cost_units(q_long, 0, b_units, Side.SHORT, 5) == 1
    assert sell_proceeds_units(q_long, 0, b_units, Side.SHORT, 5) == 0


def test_shares_for_tokens_when_short_price_is_e_to_minus_a_million_then_buys_many() -> None:
    # One unit buys x short shares with b·ln(1 + e^{−10**6}(e^{x/b} − 1)) = 1,
    # i.e. x = b·ln(1 + (e^{1/b} − 1)·(1 + e^{10**6})) ≈ b·(10**6 + ln(e^{1/b} − 1)).
    # For b = 1000: 1000·(10**6 − 6.9073) = 999993092.7 → 999993092.
    b_units = 1000
    assert shares_for_tokens(10**6 * b_units, 0, b_units, Side.SHORT, 1) == 999993092
    assert shares_for_tokens(10**6 * b_units, 0, b_units, Side.LONG, 1) == 1


def test_shares_to_reach_price_when_long_leads_by_a_million_b_then_short_buy_evens_odds() -> None:
    # Equalising q costs C(10**9, 10**9) − C(10**9, 0) = b·ln 2 + b·10**6 − b·10**6 = 693.1… → 694.
    b_units = 1000
    assert shares_to_reach_price(10**6 * b_units, 0, b_units, WAD // 2) == (Side.SHORT, 10**9, 694)


# --------------------------------------------------------------------------------------------------
# Input validation
# --------------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("call", "message"),
    [
        (lambda: prices_wad(0, 0, 0), "b_units"),
        (lambda: cost_function(0, 0, -1), "b_units"),
        (lambda: max_subsidy_units(0), "b_units"),
        (lambda: buy_cost_units(0, 0, 10, Side.LONG, 0), "shares_units"),
        (lambda: buy_cost_units(0, 0, 10, Side.LONG, -3), "shares_units"),
        (lambda: sell_proceeds_units(0, 0, 10, Side.SHORT, 0), "shares_units"),
        (lambda: shares_for_tokens(0, 0, 10, Side.LONG, 0), "tokens_units"),
        (lambda: shares_for_tokens(0, 0, 10, Side.LONG, -1), "tokens_units"),
        (lambda: shares_to_reach_price(0, 0, 10, 0), "target_long_wad"),
        (lambda: shares_to_reach_price(0, 0, 10, WAD), "target_long_wad"),
        (lambda: shares_to_reach_price(0, 0, 10, -1), "target_long_wad"),
        (lambda: average_price_wad(0, 1), "cost_units"),
        (lambda: average_price_wad(1, 0), "shares_units"),
        (lambda: buy_cost_units(0, 0, 10, "sideways", 1), "sideways"),  # type: ignore[arg-type]
    ],
)
def test_call_when_input_is_out_of_range_then_raises_value_error_naming_it(call: object, message: str) -> None:
    with pytest.raises(ValueError, match=message):
        call()  # type: ignore[operator]


@pytest.mark.parametrize(
    "call",
    [
        lambda: prices_wad(0, 0, 10**18 * 1.0),  # type: ignore[arg-type]
        lambda: buy_cost_units(0.5, 0, 10, Side.LONG, 1),  # type: ignore[arg-type]
        lambda: shares_for_tokens(0, 0, 10, Side.LONG, True),  # type: ignore[arg-type]
    ],
)
def test_call_when_amount_is_not_an_int_then_raises_type_error(call: object) -> None:
    with pytest.raises(TypeError, match="must be an int"):
        call()  # type: ignore[operator]
