"""Portfolio performance statistics, one statistic per function.

This is read-side analytics: it feeds views and reports, never an event, so it works in
float. The risk-adjusted ratios follow the conventions of the empyrical library
(quantopian/empyrical, ``empyrical/stats.py``), and the unit tests check them against
the values published in empyrical's own test suite (``empyrical/tests/test_stats.py``).

Shared conventions, all from empyrical:

* ``returns`` are simple per-period returns (0.01 is +1%), not cumulative.
* NaN returns are skipped; a NaN is "no observation", not a zero.
* ``risk_free`` / ``required_return`` are per period, either one number or one value
  per period (a benchmark series), subtracted element by element.
* Annualisation multiplies by ``periods_per_year`` (252 for daily, 52 weekly,
  12 monthly) or its square root, as each function says.

Only ``math`` and ``statistics`` are used: ``statistics`` sums exactly, so results agree
with numpy's to far more than the eight decimal places empyrical's tests compare.
"""

from __future__ import annotations

import math
import statistics
from collections.abc import Sequence

NAN = float("nan")
PERIODS_PER_YEAR_DAILY = 252
PERIODS_PER_YEAR_WEEKLY = 52
PERIODS_PER_YEAR_MONTHLY = 12


def _check_returns(returns: Sequence[float]) -> list[float]:
    values = [float(value) for value in returns]
    for value in values:
        if math.isinf(value):
            # An infinite return means a curve passed through zero; no ratio built on
            # it means anything, so the caller must deal with it explicitly.
            raise ValueError("returns must be finite or NaN")
    return values


def _adjusted(returns: Sequence[float], adjustment: float | Sequence[float]) -> list[float]:
    """returns − adjustment, element by element when the adjustment is a series."""
    values = _check_returns(returns)
    if isinstance(adjustment, (int, float)):
        return [value - float(adjustment) for value in values]
    adjustments = [float(value) for value in adjustment]
    if len(adjustments) != len(values):
        raise ValueError(f"adjustment series has {len(adjustments)} values for {len(values)} returns")
    return [value - other for value, other in zip(values, adjustments)]


def _present(values: Sequence[float]) -> list[float]:
    return [value for value in values if not math.isnan(value)]


def _check_periods(periods_per_year: float) -> None:
    if not periods_per_year > 0:
        raise ValueError(f"periods_per_year must be positive, got {periods_per_year}")


def returns_from_equity(equity: Sequence[float]) -> list[float]:
    """Simple returns of an equity curve: r_i = e_i / e_(i−1) − 1, one fewer than points.

    Same as empyrical's ``simple_returns`` (pandas ``pct_change`` without the leading
    NaN), except after a zero point: pandas gives ±inf there, this gives NaN, because a
    return on zero equity is undefined and NaN is what the ratios below skip.
    Integer base units may be passed directly; Python's int division rounds correctly.
    """
    returns: list[float] = []
    for previous, current in zip(equity, equity[1:]):
        if previous == 0:
            returns.append(NAN)
        else:
            returns.append(current / previous - 1)
    return returns


def sharpe_ratio(
    returns: Sequence[float],
    risk_free: float | Sequence[float] = 0.0,
    periods_per_year: float = PERIODS_PER_YEAR_DAILY,
) -> float:
    """Annualised Sharpe ratio, empyrical's convention (SPEC "Portfolio and risk"):

        mean(r − rf) / std(r − rf, ddof=1) · sqrt(periods_per_year)

    NaN returns are skipped. NaN when there are fewer than two returns or the standard
    deviation is zero. (empyrical 0.5 returns ±inf for a zero deviation with a non-zero
    mean; this project follows SPEC and the earlier empyrical releases, which return NaN,
    because a ratio with no risk in it is not a measurement.)
    """
    _check_periods(periods_per_year)
    if len(returns) < 2:
        return NAN
    excess = _present(_adjusted(returns, risk_free))
    if len(excess) < 2:
        return NAN
    deviation = statistics.stdev(excess)
    if deviation == 0:
        return NAN
    return statistics.mean(excess) / deviation * math.sqrt(periods_per_year)


def downside_risk(
    returns: Sequence[float],
    required_return: float | Sequence[float] = 0.0,
    periods_per_year: float = PERIODS_PER_YEAR_DAILY,
) -> float:
    """Annualised downside deviation below ``required_return``, empyrical's convention:

        sqrt(mean(min(r − required, 0)²)) · sqrt(periods_per_year)

    Periods above the requirement count as zero shortfall (they stay in the mean);
    NaN periods are skipped. NaN for no returns.
    """
    _check_periods(periods_per_year)
    if len(returns) < 1:
        return NAN
    shortfalls = _present(_adjusted(returns, required_return))
    if not shortfalls:
        return NAN
    mean_square = statistics.mean(min(value, 0.0) ** 2 for value in shortfalls)
    return math.sqrt(mean_square) * math.sqrt(periods_per_year)


def sortino_ratio(
    returns: Sequence[float],
    required_return: float | Sequence[float] = 0.0,
    periods_per_year: float = PERIODS_PER_YEAR_DAILY,
) -> float:
    """Annualised Sortino ratio, empyrical's convention:

        mean(r − required) · periods_per_year / downside_risk(r, required, periods_per_year)

    NaN when there are fewer than two returns. With no shortfall at all the ratio is
    +inf when the mean excess is positive (empyrical's published value for an all-gain
    series) and NaN when it is zero.
    """
    _check_periods(periods_per_year)
    if len(returns) < 2:
        return NAN
    excess = _present(_adjusted(returns, required_return))
    if not excess:
        return NAN
    annual_excess = statistics.mean(excess) * periods_per_year
    annual_downside = downside_risk(returns, required_return, periods_per_year)
    if annual_downside == 0:
        if annual_excess > 0:
            return math.inf
        return NAN
    return annual_excess / annual_downside


def max_drawdown(returns: Sequence[float]) -> float:
    """Largest peak-to-trough fall of the compounded curve, as a non-positive fraction
    (−0.25 is a 25% drawdown), empyrical's convention.

    The curve starts at 1 before the first return, so a loss in the first period is a
    drawdown from the starting value. NaN returns count as flat periods (empyrical's
    ``cum_returns`` fills them with zero). NaN for no returns.
    """
    values = _check_returns(returns)
    if not values:
        return NAN
    level = 1.0
    peak = 1.0
    worst = 0.0
    for value in values:
        if not math.isnan(value):
            level *= 1.0 + value
        peak = max(peak, level)
        worst = min(worst, (level - peak) / peak)
    return worst


def annual_volatility(
    returns: Sequence[float],
    periods_per_year: float = PERIODS_PER_YEAR_DAILY,
    alpha: float = 2.0,
) -> float:
    """Annualised volatility, empyrical's convention:

        std(r, ddof=1) · periods_per_year ** (1 / alpha)

    ``alpha`` is the scaling exponent (2 for the usual square-root-of-time rule).
    NaN returns are skipped; NaN for fewer than two returns.
    """
    _check_periods(periods_per_year)
    if len(returns) < 2:
        return NAN
    values = _present(_check_returns(returns))
    if len(values) < 2:
        return NAN
    return statistics.stdev(values) * periods_per_year ** (1.0 / alpha)


def win_rate(pnls: Sequence[int]) -> float:
    """Percent (0..100) of closed positions whose P&L is strictly positive.

    A break-even close is not a win, matching SPEC's reputation rule (a prediction is
    correct when the payout exceeds the cost). NaN when nothing has closed.
    """
    if not pnls:
        return NAN
    wins = sum(1 for pnl in pnls if pnl > 0)
    return wins * 100 / len(pnls)


def total_return_pct(equity_units: int, baseline_units: int) -> float:
    """(equity − baseline) / baseline · 100; NaN when the baseline is not positive."""
    if baseline_units <= 0:
        return NAN
    return (equity_units - baseline_units) * 100 / baseline_units


def concentration_pct(values_units: Sequence[int], equity_units: int, top_n: int = 1) -> float:
    """Share of equity held in the ``top_n`` largest positions, in percent.

    The base is equity (cash plus marked positions), as in seed 001's concentration
    dashboard, where $15,000 of a $100,000 portfolio reads 15% and the top three reach
    35%. A base of deployed capital would call a portfolio with one small position 100%
    concentrated, which is not the risk the number is meant to show. Use ``top_n=1`` for
    "largest" and ``top_n=3`` for "top 3". NaN when equity is not positive.
    """
    if top_n < 1:
        raise ValueError(f"top_n must be at least 1, got {top_n}")
    if any(value < 0 for value in values_units):
        raise ValueError("position values must not be negative")
    if equity_units <= 0:
        return NAN
    largest = sorted(values_units, reverse=True)[:top_n]
    return sum(largest) * 100 / equity_units
