"""Emergency liquidation: when equity falls below the baseline by the configured loss."""

from __future__ import annotations

from decimal import Decimal

from stakeledger.domain.rules.risk.numbers import coerce_pct, pct_ratio, require_int


def should_liquidate(equity_units: int, baseline_units: int, loss_pct: Decimal) -> bool:
    """True when equity < baseline · (1 + loss_pct/100), e.g. below 90% for −10.

    Equality does not liquidate: the breaker fires on a loss strictly beyond the limit.
    """
    require_int("equity_units", equity_units)
    if require_int("baseline_units", baseline_units) < 0:
        raise ValueError(f"baseline_units must not be negative, got {baseline_units}")
    loss = coerce_pct("loss_pct", loss_pct)
    assert loss is not None
    if not -100 <= loss <= 0:
        raise ValueError(f"loss_pct must be in [-100, 0], got {loss}")
    numerator, denominator = pct_ratio(loss)
    return equity_units * 100 * denominator < baseline_units * (100 * denominator + numerator)
