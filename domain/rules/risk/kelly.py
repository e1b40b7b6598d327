"""Kelly sizing for a binary contract: f* = (p - c)/(1 - c) long, (c - p)/c short, a
fraction of it (quarter Kelly by default), capped by the portfolio's limits."""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum
from fractions import Fraction

from stakeledger.domain.rules.risk.config import MarketConfig, PortfolioConfig
from stakeledger.domain.rules.risk.numbers import check_price_wad, check_side, pct_of_floor
from stakeledger.domain.rules.risk.pretrade import PortfolioState, position_limit_pct
from stakeledger.domain.vocabulary import WAD


def kelly_fraction(price_wad: int, belief_wad: int, side: str) -> Fraction:
    """Full Kelly stake as a fraction of equity for a binary contract (seed 002).

    ``price_wad`` is the market's long price c and ``belief_wad`` the agent's
    probability p that the artifact is validated, both in WAD, for either side:

    * long:  f* = (p − c) / (1 − c)
    * short: f* = (c − p) / c   (the same formula with p and c mirrored to 1 − p, 1 − c)

    A result at or below zero means there is no edge on that side.
    """
    check_side(side)
    check_price_wad("price_wad", price_wad, open_interval=True)
    check_price_wad("belief_wad", belief_wad, open_interval=False)
    if side == "long":
        return Fraction(belief_wad - price_wad, WAD - price_wad)
    return Fraction(price_wad - belief_wad, price_wad)


class SizingReason(StrEnum):
    """Why Kelly sizing produced no order. Declared in precedence order.

    The limit codes share their spelling with :class:`RejectReason` so that a log line
    reads the same whether the sizer or the pre-trade check stopped the order.
    """

    NO_EDGE = "NO_EDGE"
    INSUFFICIENT_FUNDS = "INSUFFICIENT_FUNDS"
    MAX_POSITION_PCT = "MAX_POSITION_PCT"
    GROUP_EXPOSURE = "GROUP_EXPOSURE"
    TOTAL_EXPOSURE = "TOTAL_EXPOSURE"
    BELOW_MIN_SIZE = "BELOW_MIN_SIZE"


@dataclass(frozen=True)
class KellySizing:
    """The sizing decision and every step that led to it.

    ``size_units`` is the order to place; zero means no order, and then ``reason`` says
    why. ``capped_by`` names the limit that cut the Kelly size, when one did.
    """

    full_fraction: Fraction
    applied_fraction: Fraction
    raw_size_units: int
    size_units: int
    capped_by: SizingReason | None
    reason: SizingReason | None

    @property
    def should_order(self) -> bool:
        return self.size_units > 0


def kelly_order_size_units(
    config: PortfolioConfig,
    state: PortfolioState,
    price_wad: int,
    belief_wad: int,
    side: str,
    fraction: Fraction = Fraction(1, 4),
    market_config: MarketConfig | None = None,
) -> KellySizing:
    """Size a new position by fractional Kelly, then cap it by the portfolio limits.

    raw = floor(equity · f* · fraction). The caps, in :class:`SizingReason` order, are
    available cash, the position limit (the market's ``position_size_pct`` when set),
    the room left in the market's correlation group, and the room left under the total
    exposure limit. Each cap rounds down, so a sized order always passes the matching
    pre-trade check. Below ``min_trade_size_units`` there is no order (seed 002's $5).
    The order still goes through :func:`check_order`, which also checks the market
    state and the position count.
    """
    if not isinstance(fraction, Fraction) or not 0 < fraction <= 1:
        raise ValueError(f"fraction must be a Fraction in (0, 1], got {fraction!r}")
    full = kelly_fraction(price_wad, belief_wad, side)
    if full <= 0:
        return KellySizing(full, Fraction(0), 0, 0, None, SizingReason.NO_EDGE)

    applied = full * fraction
    equity_units = state.equity_units
    raw_units = (equity_units * applied.numerator) // applied.denominator

    caps: list[tuple[SizingReason, int]] = [
        (SizingReason.INSUFFICIENT_FUNDS, state.available_units),
        (SizingReason.MAX_POSITION_PCT, pct_of_floor(equity_units, position_limit_pct(config, market_config))),
    ]
    group = None if market_config is None else market_config.correlation_group
    if group is not None:
        group_limit = pct_of_floor(equity_units, config.max_correlated_exposure_pct)
        caps.append((SizingReason.GROUP_EXPOSURE, max(0, group_limit - state.group_exposure_units(group))))
    total_limit = pct_of_floor(equity_units, config.max_total_exposure_pct)
    caps.append((SizingReason.TOTAL_EXPOSURE, max(0, total_limit - state.total_exposure_units)))

    size_units = raw_units
    capped_by: SizingReason | None = None
    for cap_reason, cap_units in caps:
        # Strictly smaller, so that among equal caps the first in precedence is named.
        if cap_units < size_units:
            size_units = cap_units
            capped_by = cap_reason

    reason: SizingReason | None = None
    if size_units == 0 and capped_by is not None:
        reason = capped_by
    elif size_units < config.min_trade_size_units or size_units == 0:
        reason = SizingReason.BELOW_MIN_SIZE
    if reason is not None:
        size_units = 0

    assert 0 <= size_units <= raw_units
    return KellySizing(full, applied, raw_units, size_units, capped_by, reason)
