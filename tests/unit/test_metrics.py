"""Unit tests for domain/metrics.py.

Reference values are the ones PUBLISHED in empyrical's own test suite,
quantopian/empyrical ``empyrical/tests/test_stats.py`` (the 0.5.x suite, class
``TestStats``), for its fixture series reproduced below. Each expected value carries a
comment naming the empyrical test it comes from. empyrical compares to 8 decimal places
(``DECIMAL_PLACES = 8``); so do these tests.
"""

from __future__ import annotations

import math

import pytest

from stakeledger.domain.rules.metrics import (
    PERIODS_PER_YEAR_MONTHLY,
    PERIODS_PER_YEAR_WEEKLY,
    annual_volatility,
    concentration_pct,
    downside_risk,
    max_drawdown,
    returns_from_equity,
    sharpe_ratio,
    sortino_ratio,
    total_return_pct,
    win_rate,
)

NAN = float("nan")
PLACES = 8  # empyrical's DECIMAL_PLACES


def percent(*values: float) -> list[float]:
    return [value / 100 for value in values]


# empyrical test_stats.py fixtures (values only; the pandas date index plays no part in
# these statistics).
SIMPLE_BENCHMARK = percent(0.0, 1.0, 0.0, 1.0, 0.0, 1.0, 0.0, 1.0, 0.0)
POSITIVE_RETURNS = percent(1.0, 2.0, 1.0, 1.0, 1.0, 1.0, 1.0, 1.0, 1.0)
NEGATIVE_RETURNS = percent(0.0, -6.0, -7.0, -1.0, -9.0, -2.0, -6.0, -8.0, -5.0)
ALL_NEGATIVE_RETURNS = percent(-2.0, -6.0, -7.0, -1.0, -9.0, -2.0, -6.0, -8.0, -5.0)
MIXED_RETURNS = percent(NAN, 1.0, 10.0, -4.0, 2.0, 3.0, 2.0, 1.0, -10.0)
FLAT_LINE_1 = percent(*[1.0] * 9)
# weekly_returns and monthly_returns share these values; only the period differs.
WEEKLY_RETURNS = percent(0.0, 1.0, 10.0, -4.0, 2.0, 3.0, 2.0, 1.0, -10.0)
MONTHLY_RETURNS = WEEKLY_RETURNS
ONE_RETURN = percent(1.0)
EMPTY_RETURNS: list[float] = []


def assert_matches(actual: float, expected: float) -> None:
    """numpy.testing.assert_almost_equal semantics: NaN equals NaN, inf equals inf."""
    if math.isnan(expected):
        assert math.isnan(actual), actual
    elif math.isinf(expected):
        assert actual == expected
    else:
        assert round(abs(actual - expected), PLACES) == 0, (actual, expected)


# --- Sharpe ------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("returns", "risk_free", "expected"),
    [
        pytest.param(EMPTY_RETURNS, 0.0, NAN, id="empty"),  # test_sharpe_ratio: empty_returns -> nan
        pytest.param(ONE_RETURN, 0.0, NAN, id="one"),  # test_sharpe_ratio: one_return -> nan
        pytest.param(MIXED_RETURNS, MIXED_RETURNS, NAN, id="mixed-minus-itself"),  # test_sharpe_ratio -> nan
        pytest.param(MIXED_RETURNS, 0.0, 1.7238613961706866, id="mixed"),  # test_sharpe_ratio
        pytest.param(
            MIXED_RETURNS, SIMPLE_BENCHMARK, 0.34111411441060574, id="mixed-vs-benchmark"
        ),  # test_sharpe_ratio
        pytest.param(POSITIVE_RETURNS, 0.0, 52.915026221291804, id="positive"),  # test_sharpe_ratio
        pytest.param(NEGATIVE_RETURNS, 0.0, -24.406808633910085, id="negative"),  # test_sharpe_ratio
    ],
)
def test_sharpe_ratio_when_empyrical_fixture_then_matches_published_value(
    returns: list[float], risk_free: float | list[float], expected: float
) -> None:
    assert_matches(sharpe_ratio(returns, risk_free), expected)


def test_sharpe_ratio_when_deviation_is_zero_then_nan() -> None:
    # empyrical 0.5 publishes +inf for flat_line_1; SPEC and this brief choose NaN, as
    # empyrical 0.2 did ("np.nan if adjusted returns are 0" in its docstring).
    assert math.isnan(sharpe_ratio(FLAT_LINE_1))


def test_sharpe_ratio_when_annualised_weekly_then_scales_by_sqrt_52() -> None:
    daily = sharpe_ratio(MIXED_RETURNS)
    weekly = sharpe_ratio(MIXED_RETURNS, periods_per_year=PERIODS_PER_YEAR_WEEKLY)
    assert_matches(weekly, daily / math.sqrt(252) * math.sqrt(52))


def test_sharpe_ratio_when_benchmark_length_differs_then_value_error() -> None:
    with pytest.raises(ValueError):
        sharpe_ratio(MIXED_RETURNS, SIMPLE_BENCHMARK[1:])


# --- downside risk and Sortino ---------------------------------------------------------


@pytest.mark.parametrize(
    ("returns", "required", "periods", "expected"),
    [
        pytest.param(EMPTY_RETURNS, 0.0, 252, NAN, id="empty"),  # test_downside_risk
        pytest.param(ONE_RETURN, 0.0, 252, 0.0, id="one"),  # test_downside_risk
        pytest.param(MIXED_RETURNS, MIXED_RETURNS, 252, 0.0, id="mixed-minus-itself"),  # test_downside_risk
        pytest.param(MIXED_RETURNS, 0.0, 252, 0.60448325038829653, id="mixed"),  # test_downside_risk
        pytest.param(MIXED_RETURNS, 0.1, 252, 1.7161730681956295, id="mixed-required-0.1"),  # test_downside_risk
        pytest.param(WEEKLY_RETURNS, 0.0, 52, 0.25888650451930134, id="weekly"),  # test_downside_risk
        pytest.param(WEEKLY_RETURNS, 0.1, 52, 0.7733045971672482, id="weekly-required-0.1"),  # test_downside_risk
        pytest.param(MONTHLY_RETURNS, 0.0, 12, 0.1243650540411842, id="monthly"),  # test_downside_risk
        pytest.param(MONTHLY_RETURNS, 0.1, 12, 0.37148351242013422, id="monthly-required-0.1"),  # test_downside_risk
    ],
)
def test_downside_risk_when_empyrical_fixture_then_matches_published_value(
    returns: list[float], required: float | list[float], periods: int, expected: float
) -> None:
    assert_matches(downside_risk(returns, required, periods), expected)


@pytest.mark.parametrize(
    ("returns", "required", "periods", "expected"),
    [
        pytest.param(EMPTY_RETURNS, 0.0, 252, NAN, id="empty"),  # test_sortino
        pytest.param(ONE_RETURN, 0.0, 252, NAN, id="one"),  # test_sortino
        pytest.param(MIXED_RETURNS, MIXED_RETURNS, 252, NAN, id="mixed-minus-itself"),  # test_sortino
        pytest.param(MIXED_RETURNS, 0.0, 252, 2.605531251673693, id="mixed"),  # test_sortino
        pytest.param(MIXED_RETURNS, FLAT_LINE_1, 252, -1.3934779588919977, id="mixed-vs-flat-line"),  # test_sortino
        pytest.param(POSITIVE_RETURNS, 0.0, 252, math.inf, id="positive"),  # test_sortino
        pytest.param(NEGATIVE_RETURNS, 0.0, 252, -13.532743075043401, id="negative"),  # test_sortino
        pytest.param(SIMPLE_BENCHMARK, 0.0, 252, math.inf, id="benchmark"),  # test_sortino
        pytest.param(WEEKLY_RETURNS, 0.0, PERIODS_PER_YEAR_WEEKLY, 1.1158901056866439, id="weekly"),  # test_sortino
        pytest.param(MONTHLY_RETURNS, 0.0, PERIODS_PER_YEAR_MONTHLY, 0.53605626741889756, id="monthly"),  # test_sortino
    ],
)
def test_sortino_ratio_when_empyrical_fixture_then_matches_published_value(
    returns: list[float], required: float | list[float], periods: int, expected: float
) -> None:
    assert_matches(sortino_ratio(returns, required, periods), expected)


# --- max drawdown ----------------------------------------------------------------------


def compounded(returns: list[float]) -> float:
    total = 1.0
    for value in returns:
        total *= 1 + value
    return total - 1


@pytest.mark.parametrize(
    ("returns", "expected"),
    [
        pytest.param(EMPTY_RETURNS, NAN, id="empty"),  # test_max_drawdown
        pytest.param(ONE_RETURN, 0.0, id="one"),  # test_max_drawdown
        pytest.param(SIMPLE_BENCHMARK, 0.0, id="benchmark"),  # test_max_drawdown
        pytest.param(MIXED_RETURNS, -0.1, id="mixed"),  # test_max_drawdown
        pytest.param(POSITIVE_RETURNS, -0.0, id="positive"),  # test_max_drawdown
        # test_max_drawdown (empyrical 0.2 literal): negative_returns -> -0.36590730349873601
        pytest.param(NEGATIVE_RETURNS, -0.36590730349873601, id="negative"),
        pytest.param(percent(10, -10, 10), -0.10, id="up-down-up"),  # test_max_drawdown
    ],
)
def test_max_drawdown_when_empyrical_fixture_then_matches_published_value(returns, expected) -> None:
    assert_matches(max_drawdown(returns), expected)


def test_max_drawdown_when_first_return_is_a_loss_then_it_counts_from_the_start_value() -> None:
    # empyrical test_max_drawdown: all_negative_returns -> cum_returns_final(all_negative_returns),
    # which holds only if the curve starts at 1 before the first (negative) return.
    assert_matches(max_drawdown(ALL_NEGATIVE_RETURNS), compounded(ALL_NEGATIVE_RETURNS))


# --- annual volatility -----------------------------------------------------------------


@pytest.mark.parametrize(
    ("returns", "periods", "expected"),
    [
        pytest.param([0.01] * 1000, 252, 0.0, id="flat-line"),  # test_annual_volatility: flat_line_1_tz
        pytest.param(MIXED_RETURNS, 252, 0.9136465399704637, id="mixed"),  # test_annual_volatility
        pytest.param(WEEKLY_RETURNS, 52, 0.38851569394870583, id="weekly"),  # test_annual_volatility
        pytest.param(MONTHLY_RETURNS, 12, 0.18663690238892558, id="monthly"),  # test_annual_volatility
        pytest.param(ONE_RETURN, 252, NAN, id="one"),  # empyrical annual_volatility: len < 2 -> nan
    ],
)
def test_annual_volatility_when_empyrical_fixture_then_matches_published_value(returns, periods, expected) -> None:
    assert_matches(annual_volatility(returns, periods), expected)


# --- simple returns --------------------------------------------------------------------


def test_returns_from_equity_when_prices_are_flat_then_returns_are_zero() -> None:
    # empyrical test_simple_returns: flat_line_1 prices -> [0.0] * (n - 1).
    assert returns_from_equity([0.01] * 9) == [0.0] * 8


def test_returns_from_equity_when_prices_rise_linearly_then_returns_are_one_over_n() -> None:
    # empyrical test_simple_returns: pos_line = linspace(0, 1, 1000) -> [inf] + [1/n for n in 1..998]
    # (to 4 places). The first point is zero equity, where this module gives NaN, not inf.
    prices = [k / 999 for k in range(1000)]
    returns = returns_from_equity(prices)
    assert math.isnan(returns[0])
    assert len(returns) == 999
    for n, value in enumerate(returns[1:], start=1):
        assert round(abs(value - 1 / n), 4) == 0


def test_returns_from_equity_when_given_base_units_then_ratio_is_exact_enough() -> None:
    assert returns_from_equity([1000 * 10**18, 1100 * 10**18, 990 * 10**18]) == pytest.approx([0.1, -0.1])


def test_returns_when_equity_curve_is_fed_to_max_drawdown_then_drawdown_is_peak_to_trough() -> None:
    equity = [100, 120, 90, 130, 104]
    assert max_drawdown(returns_from_equity(equity)) == pytest.approx(-0.25)


def test_ratios_when_a_return_is_infinite_then_value_error() -> None:
    with pytest.raises(ValueError):
        sharpe_ratio([0.01, math.inf, 0.02])


# --- portfolio counts ------------------------------------------------------------------


def test_win_rate_when_some_positions_won_then_percent_of_strict_wins() -> None:
    assert win_rate([10, -5, 0, 3]) == 50.0  # the break-even close is not a win
    assert win_rate([-1]) == 0.0
    assert win_rate([2, 1]) == 100.0


def test_win_rate_when_nothing_closed_then_nan() -> None:
    assert math.isnan(win_rate([]))


def test_total_return_pct_when_equity_moves_then_percent_of_baseline() -> None:
    assert total_return_pct(110, 100) == 10.0
    assert total_return_pct(90 * 10**18, 100 * 10**18) == -10.0
    assert math.isnan(total_return_pct(10, 0))


def test_concentration_pct_when_seed_001_dashboard_then_15_and_35_percent() -> None:
    # Seed 001 "portfolio_dashboard.py concentration": $100,000 total; BTC $15,000 (15%),
    # ETH $12,000 (27% cumulative), SOL $8,000 (35% cumulative).
    values = [12_000, 8_000, 15_000]
    assert concentration_pct(values, 100_000) == 15.0
    assert concentration_pct(values, 100_000, top_n=2) == 27.0
    assert concentration_pct(values, 100_000, top_n=3) == 35.0
    assert concentration_pct(values, 100_000, top_n=10) == 35.0


def test_concentration_pct_when_equity_is_zero_or_top_n_bad_then_nan_or_error() -> None:
    assert math.isnan(concentration_pct([], 0))
    with pytest.raises(ValueError):
        concentration_pct([1], 100, top_n=0)
