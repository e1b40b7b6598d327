"""The fixed-point LMSR against its decimal reference, and the error bounds it rests on.

The bounds (domain/rules/fixed_point.py, domain/rules/lmsr.py):
- exp_neg and ln1p at p bits are within RESULT_ERROR_ULPS (2) ulp of the exact value, ln_ratio
  within 4;
- spread_term_scaled(gap, b) is within SPREAD_ERROR_BOUND (2) of b·ln(1 + e^(-gap/b))·2**24.
Each is checked here against 160-digit decimal arithmetic. On top of them, every rounded LMSR
amount equals the decimal reference's to the unit, over q, b and sizes up to the uint256 range,
and the decimal fallback (taken when a certificate fails) gives the same answers as well.
"""

from __future__ import annotations

from decimal import Context, Decimal

import pytest
from hypothesis import assume, given, settings
from hypothesis import strategies as st

from stakeledger.domain.rules import fixed_point, lmsr
from stakeledger.domain.vocabulary import WAD, Side

UINT256 = 2**256 - 1
EXACT = Context(prec=160)  # 2**400 has 121 digits: room for 39 more
BOUND_SETTINGS = settings(max_examples=300, deadline=None)
AGREEMENT_SETTINGS = settings(max_examples=150, deadline=None)

precisions = st.integers(min_value=8, max_value=400)
sides = st.sampled_from([Side.LONG, Side.SHORT])


def scaled(p: int) -> Decimal:
    return EXACT.power(Decimal(2), p)


@BOUND_SETTINGS
@given(precisions, st.data())
def test_exp_neg_when_any_argument_then_within_two_ulp(p: int, data: st.DataObject) -> None:
    x_fixed = data.draw(st.integers(min_value=0, max_value=(p + 4) << p) | st.integers(min_value=0, max_value=2**600))
    exact = EXACT.multiply(EXACT.exp(EXACT.divide(-x_fixed, scaled(p))), scaled(p))
    assert abs(fixed_point.exp_neg(x_fixed, p) - exact) < fixed_point.RESULT_ERROR_ULPS


@BOUND_SETTINGS
@given(precisions, st.data())
def test_ln1p_when_any_argument_in_zero_one_then_within_two_ulp(p: int, data: st.DataObject) -> None:
    y_fixed = data.draw(st.integers(min_value=0, max_value=1 << p))
    exact = EXACT.multiply(EXACT.ln(EXACT.add(1, EXACT.divide(y_fixed, scaled(p)))), scaled(p))
    assert abs(fixed_point.ln1p(y_fixed, p) - exact) < fixed_point.RESULT_ERROR_ULPS


@BOUND_SETTINGS
@given(precisions, st.integers(min_value=1, max_value=UINT256), st.integers(min_value=0, max_value=UINT256))
def test_ln_ratio_when_any_ratio_of_at_least_one_then_within_four_ulp(p: int, smaller: int, extra: int) -> None:
    larger = smaller + extra
    exact = EXACT.multiply(EXACT.ln(EXACT.divide(larger, smaller)), scaled(p))
    assert abs(fixed_point.ln_ratio(larger, smaller, p) - exact) < fixed_point.RESULT_ERROR_ULPS + 2


@BOUND_SETTINGS
@given(st.integers(min_value=1, max_value=UINT256), st.data())
def test_spread_term_when_any_gap_and_liquidity_then_within_its_stated_bound(b_units: int, data: st.DataObject) -> None:
    gap_units = data.draw(
        st.integers(min_value=0, max_value=64 * b_units) | st.integers(min_value=0, max_value=UINT256)
    )
    ratio = EXACT.divide(gap_units, b_units)
    exact = EXACT.multiply(EXACT.multiply(b_units, EXACT.ln(EXACT.add(1, EXACT.exp(EXACT.minus(ratio))))), scaled(24))
    assert abs(lmsr.spread_term_scaled(gap_units, b_units) - exact) < lmsr.SPREAD_ERROR_BOUND


def test_bad_arguments_when_given_then_refused_by_name() -> None:
    with pytest.raises(ValueError, match="x >= 0"):
        fixed_point.exp_neg(-1, 64)
    with pytest.raises(ValueError, match=r"y in \[0, 1\]"):
        fixed_point.ln1p((1 << 64) + 1, 64)
    with pytest.raises(ValueError, match="numerator >= denominator > 0"):
        fixed_point.ln_ratio(1, 2, 64)


@st.composite
def markets(draw: st.DrawFn) -> tuple[int, int, int]:
    """Liquidity and quantities from one unit to uint256, some near each other, some far apart."""
    b_units = draw(st.integers(min_value=1, max_value=2**200) | st.sampled_from([10**6, 1_000 * 10**18]))
    reach = draw(st.sampled_from([b_units, 40 * b_units, UINT256 // 4]))
    q_long = draw(st.integers(min_value=0, max_value=reach))
    q_short = draw(st.integers(min_value=0, max_value=reach) | st.integers(min_value=0, max_value=q_long + b_units))
    return q_long, q_short, b_units


sizes = st.integers(min_value=1, max_value=10**30) | st.integers(min_value=1, max_value=UINT256 // 4)


@AGREEMENT_SETTINGS
@given(markets(), sides, sizes)
def test_buy_and_sell_when_any_market_then_equal_the_decimal_reference_to_the_unit(
    market: tuple[int, int, int], side: Side, shares_units: int
) -> None:
    q_long, q_short, b_units = market
    assert lmsr.buy_cost_units(q_long, q_short, b_units, side, shares_units) == lmsr.reference_buy_cost_units(
        q_long, q_short, b_units, side, shares_units
    )
    held_long = q_long + (shares_units if side is Side.LONG else 0)
    held_short = q_short + (shares_units if side is Side.SHORT else 0)
    assert lmsr.sell_proceeds_units(held_long, held_short, b_units, side, shares_units) == (
        lmsr.reference_sell_proceeds_units(held_long, held_short, b_units, side, shares_units)
    )


@AGREEMENT_SETTINGS
@given(markets(), sides, sizes)
def test_shares_for_tokens_when_any_budget_then_equals_the_decimal_reference(
    market: tuple[int, int, int], side: Side, tokens_units: int
) -> None:
    q_long, q_short, b_units = market
    assert lmsr.shares_for_tokens(q_long, q_short, b_units, side, tokens_units) == (
        lmsr.reference_shares_for_tokens(q_long, q_short, b_units, side, tokens_units)
    )


@AGREEMENT_SETTINGS
@given(markets(), st.integers(min_value=1, max_value=WAD - 1))
def test_prices_and_depth_when_any_market_then_equal_the_decimal_reference(
    market: tuple[int, int, int], target_long_wad: int
) -> None:
    q_long, q_short, b_units = market
    assert lmsr.prices_wad(q_long, q_short, b_units) == lmsr.reference_prices_wad(q_long, q_short, b_units)
    assert lmsr.shares_to_reach_price(q_long, q_short, b_units, target_long_wad) == (
        lmsr.reference_shares_to_reach_price(q_long, q_short, b_units, target_long_wad)
    )


@settings(max_examples=40, deadline=None)
@given(market=markets(), side=sides, size_units=st.integers(min_value=1, max_value=10**30))
def test_certificates_when_made_to_fail_then_the_fallback_gives_the_same_answers(
    market: tuple[int, int, int], side: Side, size_units: int, monkeypatch_module: pytest.MonkeyPatch
) -> None:
    q_long, q_short, b_units = market
    assume(q_long != q_short)  # an even market's costs are certain without any interval
    with monkeypatch_module.context() as patch:
        patch.setattr(lmsr, "SPREAD_ERROR_BOUND", 2**80)  # no interval is narrow enough: always fall back
        fallback = (
            lmsr.buy_cost_units(q_long, q_short, b_units, side, size_units),
            lmsr.shares_for_tokens(q_long, q_short, b_units, side, size_units),
        )
    assert fallback == (
        lmsr.reference_buy_cost_units(q_long, q_short, b_units, side, size_units),
        lmsr.reference_shares_for_tokens(q_long, q_short, b_units, side, size_units),
    )


@pytest.fixture(scope="module")
def monkeypatch_module() -> pytest.MonkeyPatch:
    patch = pytest.MonkeyPatch()
    yield patch
    patch.undo()


def test_fast_path_when_a_typical_trade_is_priced_then_no_decimal_is_computed() -> None:
    """The point of the fast path: an ordinary trade never reaches the decimal reference."""
    lmsr._spread_term_at.cache_clear()
    b_units = 1_000 * 10**18
    for step in range(1, 200):
        lmsr.buy_cost_units(step * 10**18, 3 * 10**18, b_units, Side.LONG, 10**18 + step)
        lmsr.shares_for_tokens(step * 10**18, 3 * 10**18, b_units, Side.SHORT, 5 * 10**18)
        lmsr.prices_wad(step * 10**18, 3 * 10**18, b_units)
    info = lmsr._spread_term_at.cache_info()
    assert info.hits + info.misses == 0
