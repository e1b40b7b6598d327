"""Portfolio risk rules: pre-trade checks, Kelly sizing, trailing stops, emergency
liquidation and rebalancing advice (seeds 001 and 002, SPEC "Portfolio and risk").

Every function here is pure: it takes the state it needs and returns a decision. It
imports no persistence and reads no clock, so the application can record each decision
as an event and a replay reaches the same decision.

Units and numbers follow SPEC "Money and numbers":

* Amounts are ``int`` base units (``*_units``).
* Prices and beliefs are probabilities scaled by ``WAD`` = 10**18 (``*_wad``).
* Percentages are ``decimal.Decimal`` percent (``*_pct``): ``Decimal("5")`` is 5%.
  That includes ``trail_pct`` and ``min_ratchet_pct`` (seed 001 wrote its trail as the
  fraction 0.02; here the same stop is ``Decimal("2")``), so every ``_pct`` in a config
  reads the same way.

No float is used anywhere in this module, because its outputs feed events. A percentage
is turned into an exact integer ratio with ``Decimal.as_integer_ratio()`` and every limit
is checked by cross-multiplying integers, so a limit never passes or fails because of a
rounding step.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from decimal import ROUND_HALF_EVEN, Decimal, InvalidOperation
from enum import StrEnum
from fractions import Fraction
from typing import Any

from stakeledger.domain.vocabulary import DEFAULT_DECIMALS, MAX_BATCH_ORDERS, WAD, Side

SIDES = tuple(side.value for side in Side)

# Rebalancing percentages are exact fractions internally; they are shown with this many
# decimal places so that advice serialises to the same string on every machine.
REBALANCE_PCT_PLACES = Decimal("0.000001")


# ---------------------------------------------------------------------------
# Percent helpers


def _pct_ratio(pct: Decimal) -> tuple[int, int]:
    """Return ``pct`` as an exact ``(numerator, denominator)`` with a positive denominator."""
    numerator, denominator = pct.as_integer_ratio()
    assert denominator > 0
    return numerator, denominator


def _pct_of_floor(amount_units: int, pct: Decimal) -> int:
    """floor(amount · pct / 100), exactly.

    Limits round down so that an amount equal to the limit always passes the matching
    ``amount·100 <= base·pct`` check, and the next unit up always fails it.
    """
    numerator, denominator = _pct_ratio(pct)
    return (amount_units * numerator) // (100 * denominator)


def _within_pct(amount_units: int, base_units: int, pct: Decimal) -> bool:
    """amount <= base · pct / 100, compared as integers."""
    numerator, denominator = _pct_ratio(pct)
    return amount_units * 100 * denominator <= base_units * numerator


def _coerce_pct(name: str, value: Any, *, allow_none: bool = False) -> Decimal | None:
    """Accept a Decimal, an int or a decimal string; refuse float, bool, NaN and infinity.

    Floats are refused rather than converted because a binary float cannot say "5.1"
    exactly, and a config is the place where that error would be silently frozen in.
    """
    if value is None:
        if allow_none:
            return None
        raise ValueError(f"{name} is required")
    if isinstance(value, bool) or isinstance(value, float):
        raise ValueError(f"{name} must be a Decimal or a decimal string, not {type(value).__name__}")
    if isinstance(value, int):
        value = Decimal(value)
    elif isinstance(value, str):
        try:
            value = Decimal(value.strip())
        except InvalidOperation:
            raise ValueError(f"{name} is not a decimal number: {value!r}") from None
    if not isinstance(value, Decimal):
        raise ValueError(f"{name} must be a Decimal, not {type(value).__name__}")
    if not value.is_finite():
        raise ValueError(f"{name} must be finite, got {value}")
    return value


def _coerce_int(name: str, value: Any) -> int:
    if isinstance(value, bool):
        raise ValueError(f"{name} must be an integer, not bool")
    if isinstance(value, int):
        return value
    if isinstance(value, str) and value.strip().lstrip("-").isdigit():
        return int(value.strip())
    raise ValueError(f"{name} must be an integer, got {value!r}")


def _require_int(name: str, value: Any) -> int:
    """Records built in code take real ints only; strings are parsed at the edges."""
    if isinstance(value, bool) or not isinstance(value, int):
        raise ValueError(f"{name} must be an int, got {type(value).__name__}")
    return value


def _require_range(name: str, value: Decimal, low: Decimal, high: Decimal, *, low_open: bool) -> None:
    below = value <= low if low_open else value < low
    if below or value > high:
        bracket = "(" if low_open else "["
        raise ValueError(f"{name} must be in {bracket}{low}, {high}], got {value}")


def _check_side(side: str) -> None:
    if side not in SIDES:
        raise ValueError(f"side must be one of {SIDES}, got {side!r}")


# ---------------------------------------------------------------------------
# Configuration records


@dataclass(frozen=True)
class PortfolioConfig:
    """Per-agent portfolio limits, with the defaults of seed 001 and SPEC.

    ``min_trade_size_units`` defaults to 5 tokens at 18 decimals; a ledger with other
    ``decimals`` should build its default with :meth:`default`.
    """

    max_position_size_pct: Decimal = Decimal(5)
    max_positions: int = 10
    max_correlated_exposure_pct: Decimal = Decimal(20)
    max_total_exposure_pct: Decimal = Decimal(30)
    rebalance_threshold_pct: Decimal = Decimal(10)
    emergency_liquidation_loss_pct: Decimal = Decimal(-10)
    min_trade_size_units: int = 5 * 10**DEFAULT_DECIMALS

    @classmethod
    def default(cls, decimals: int = DEFAULT_DECIMALS) -> PortfolioConfig:
        """The default limits for a ledger with ``decimals`` (min trade size 5 tokens)."""
        if isinstance(decimals, bool) or not isinstance(decimals, int) or not 0 <= decimals <= 77:
            raise ValueError(f"decimals must be an integer in [0, 77], got {decimals!r}")
        return cls(min_trade_size_units=5 * 10**decimals)

    def __post_init__(self) -> None:
        for name in (
            "max_position_size_pct",
            "max_correlated_exposure_pct",
            "max_total_exposure_pct",
            "rebalance_threshold_pct",
            "emergency_liquidation_loss_pct",
        ):
            object.__setattr__(self, name, _coerce_pct(name, getattr(self, name)))
        object.__setattr__(self, "max_positions", _coerce_int("max_positions", self.max_positions))
        object.__setattr__(self, "min_trade_size_units", _coerce_int("min_trade_size_units", self.min_trade_size_units))

        hundred = Decimal(100)
        # A limit of zero would reject every order, which is a misconfiguration rather
        # than a policy, so the exposure limits must be strictly positive.
        _require_range("max_position_size_pct", self.max_position_size_pct, Decimal(0), hundred, low_open=True)
        _require_range(
            "max_correlated_exposure_pct", self.max_correlated_exposure_pct, Decimal(0), hundred, low_open=True
        )
        _require_range("max_total_exposure_pct", self.max_total_exposure_pct, Decimal(0), hundred, low_open=True)
        # Zero threshold is allowed: it asks for advice on any drift at all. There is
        # no upper bound because drift is relative to the target and can exceed 100%.
        if self.rebalance_threshold_pct < 0:
            raise ValueError(f"rebalance_threshold_pct must not be negative, got {self.rebalance_threshold_pct}")
        # The circuit breaker is a loss: positive would liquidate a winning portfolio.
        _require_range(
            "emergency_liquidation_loss_pct", self.emergency_liquidation_loss_pct, -hundred, Decimal(0), low_open=False
        )
        if self.max_positions < 1:
            raise ValueError(f"max_positions must be at least 1, got {self.max_positions}")
        if self.min_trade_size_units < 0:
            raise ValueError(f"min_trade_size_units must not be negative, got {self.min_trade_size_units}")

    def to_dict(self) -> dict[str, Any]:
        """Decimals as strings and integers as integers, so JSON keeps them exact."""
        return {
            "max_position_size_pct": str(self.max_position_size_pct),
            "max_positions": self.max_positions,
            "max_correlated_exposure_pct": str(self.max_correlated_exposure_pct),
            "max_total_exposure_pct": str(self.max_total_exposure_pct),
            "rebalance_threshold_pct": str(self.rebalance_threshold_pct),
            "emergency_liquidation_loss_pct": str(self.emergency_liquidation_loss_pct),
            "min_trade_size_units": self.min_trade_size_units,
        }

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> PortfolioConfig:
        """Inverse of :meth:`to_dict`. Missing keys take defaults; unknown keys are an error."""
        known = set(cls.__dataclass_fields__)
        unknown = sorted(set(data) - known)
        if unknown:
            raise ValueError(f"unknown PortfolioConfig keys: {', '.join(unknown)}")
        return cls(**dict(data))


@dataclass(frozen=True)
class MarketConfig:
    """Per-market overrides (seed 001's PairConfig, reduced to what a ledger needs).

    ``position_size_pct`` replaces the portfolio's ``max_position_size_pct`` for this
    market; ``trail_pct`` is the trailing stop distance in percent; ``correlation_group``
    names the group whose combined exposure ``max_correlated_exposure_pct`` limits.
    """

    position_size_pct: Decimal | None = None
    trail_pct: Decimal | None = None
    correlation_group: str | None = None

    def __post_init__(self) -> None:
        position_size_pct = _coerce_pct("position_size_pct", self.position_size_pct, allow_none=True)
        trail_pct = _coerce_pct("trail_pct", self.trail_pct, allow_none=True)
        object.__setattr__(self, "position_size_pct", position_size_pct)
        object.__setattr__(self, "trail_pct", trail_pct)
        if position_size_pct is not None:
            _require_range("position_size_pct", position_size_pct, Decimal(0), Decimal(100), low_open=True)
        if trail_pct is not None:
            # A 100% trail would put the trigger at zero, which can never be touched.
            _require_range("trail_pct", trail_pct, Decimal(0), Decimal(100), low_open=True)
            if trail_pct == 100:
                raise ValueError("trail_pct must be below 100")
        if self.correlation_group is not None:
            if not isinstance(self.correlation_group, str) or not self.correlation_group.strip():
                raise ValueError("correlation_group must be a non-empty string or None")

    def to_dict(self) -> dict[str, Any]:
        return {
            "position_size_pct": None if self.position_size_pct is None else str(self.position_size_pct),
            "trail_pct": None if self.trail_pct is None else str(self.trail_pct),
            "correlation_group": self.correlation_group,
        }

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> MarketConfig:
        known = set(cls.__dataclass_fields__)
        unknown = sorted(set(data) - known)
        if unknown:
            raise ValueError(f"unknown MarketConfig keys: {', '.join(unknown)}")
        return cls(**dict(data))


# ---------------------------------------------------------------------------
# Pre-trade checks


class RejectReason(StrEnum):
    """Why an order was rejected. Declared in precedence order: when several limits
    fail, the first one listed here is the one reported.

    The order goes from facts about the market and the agent (frozen, already holding,
    too small, not enough cash) to portfolio limits from narrowest to widest, so the
    reason names the most specific thing the agent can change.
    """

    FROZEN = "FROZEN"
    ALREADY_IN_MARKET = "ALREADY_IN_MARKET"
    BELOW_MIN_SIZE = "BELOW_MIN_SIZE"
    INSUFFICIENT_FUNDS = "INSUFFICIENT_FUNDS"
    MAX_POSITION_PCT = "MAX_POSITION_PCT"
    MAX_POSITIONS = "MAX_POSITIONS"
    GROUP_EXPOSURE = "GROUP_EXPOSURE"
    TOTAL_EXPOSURE = "TOTAL_EXPOSURE"


@dataclass(frozen=True)
class Rejection:
    """A denial: a stable reason code plus key=value context (nautilus style)."""

    reason: RejectReason
    context: dict[str, str] = field(default_factory=dict)

    @property
    def message(self) -> str:
        parts = [str(self.reason)]
        parts.extend(f"{key}={value}" for key, value in self.context.items())
        return " ".join(parts)

    def to_dict(self) -> dict[str, Any]:
        return {"reason": str(self.reason), "context": dict(self.context)}


@dataclass(frozen=True)
class OpenExposure:
    """One open position as the limits see it: exposure is the cost committed."""

    artifact_id: str
    group: str | None
    cost_units: int

    def __post_init__(self) -> None:
        if _require_int("cost_units", self.cost_units) < 0:
            raise ValueError(f"cost_units must not be negative, got {self.cost_units}")


@dataclass(frozen=True)
class PortfolioState:
    """What the checks need to know about an agent.

    ``equity_units`` is cash plus the marked value of open positions; it is the base
    every percentage limit is taken of. ``available_units`` is spendable cash.
    """

    equity_units: int
    available_units: int
    open_positions: tuple[OpenExposure, ...] = ()

    def __post_init__(self) -> None:
        if _require_int("equity_units", self.equity_units) < 0:
            raise ValueError(f"equity_units must not be negative, got {self.equity_units}")
        if _require_int("available_units", self.available_units) < 0:
            raise ValueError(f"available_units must not be negative, got {self.available_units}")
        object.__setattr__(self, "open_positions", tuple(self.open_positions))

    @property
    def total_exposure_units(self) -> int:
        return sum(position.cost_units for position in self.open_positions)

    def group_exposure_units(self, group: str) -> int:
        return sum(position.cost_units for position in self.open_positions if position.group == group)

    def artifact_exposure_units(self, artifact_id: str) -> int:
        return sum(position.cost_units for position in self.open_positions if position.artifact_id == artifact_id)

    @property
    def open_artifact_ids(self) -> frozenset[str]:
        return frozenset(position.artifact_id for position in self.open_positions)


@dataclass(frozen=True)
class OrderIntent:
    """An order before it is checked. ``tokens_units`` is the amount to commit."""

    artifact_id: str
    side: str
    tokens_units: int
    group: str | None = None
    market_frozen: bool = False
    allow_add_to_existing: bool = False

    def __post_init__(self) -> None:
        _check_side(self.side)
        if _require_int("tokens_units", self.tokens_units) <= 0:
            # A zero or negative order is bad input, not a business outcome.
            raise ValueError(f"tokens_units must be positive, got {self.tokens_units}")


def _order_group(order: OrderIntent, market_config: MarketConfig | None) -> str | None:
    market_group = None if market_config is None else market_config.correlation_group
    if order.group is not None and market_group is not None and order.group != market_group:
        raise ValueError(f"order group {order.group!r} disagrees with market correlation_group {market_group!r}")
    return order.group if order.group is not None else market_group


def _position_limit_pct(config: PortfolioConfig, market_config: MarketConfig | None) -> Decimal:
    if market_config is not None and market_config.position_size_pct is not None:
        return market_config.position_size_pct
    return config.max_position_size_pct


def check_order(
    config: PortfolioConfig,
    state: PortfolioState,
    order: OrderIntent,
    market_config: MarketConfig | None = None,
) -> Rejection | None:
    """Return the first failing check in :class:`RejectReason` order, or None to accept.

    Rules, all measured against ``state.equity_units`` with exact integer arithmetic:

    * position size: the agent's cost already in this artifact plus this order must be
      within ``max_position_size_pct`` (or the market's ``position_size_pct``);
    * positions: open markets are counted by distinct artifact; an order that opens a
      new market needs a free slot, an allowed add to an existing one does not;
    * group exposure: open cost in the order's correlation group plus this order must be
      within ``max_correlated_exposure_pct``; an order with no group skips this check;
    * total exposure: all open cost plus this order within ``max_total_exposure_pct``.
    """
    # Inconsistent input is an error whatever the outcome, so resolve the group first.
    group = _order_group(order, market_config)
    tokens_units = order.tokens_units
    artifact_id = order.artifact_id
    base = {"artifact_id": artifact_id}

    if order.market_frozen:
        return Rejection(RejectReason.FROZEN, base)

    already_in_market = artifact_id in state.open_artifact_ids
    if already_in_market and not order.allow_add_to_existing:
        return Rejection(RejectReason.ALREADY_IN_MARKET, base)

    if tokens_units < config.min_trade_size_units:
        return Rejection(
            RejectReason.BELOW_MIN_SIZE,
            {**base, "tokens_units": str(tokens_units), "min_units": str(config.min_trade_size_units)},
        )

    if tokens_units > state.available_units:
        return Rejection(
            RejectReason.INSUFFICIENT_FUNDS,
            {**base, "tokens_units": str(tokens_units), "available_units": str(state.available_units)},
        )

    position_pct = _position_limit_pct(config, market_config)
    position_units = state.artifact_exposure_units(artifact_id) + tokens_units
    if not _within_pct(position_units, state.equity_units, position_pct):
        return Rejection(
            RejectReason.MAX_POSITION_PCT,
            {
                **base,
                "position_units": str(position_units),
                "limit_units": str(_pct_of_floor(state.equity_units, position_pct)),
                "limit_pct": str(position_pct),
            },
        )

    open_count = len(state.open_artifact_ids)
    if not already_in_market and open_count + 1 > config.max_positions:
        return Rejection(
            RejectReason.MAX_POSITIONS,
            {**base, "open_positions": str(open_count), "max_positions": str(config.max_positions)},
        )

    if group is not None:
        group_units = state.group_exposure_units(group) + tokens_units
        if not _within_pct(group_units, state.equity_units, config.max_correlated_exposure_pct):
            return Rejection(
                RejectReason.GROUP_EXPOSURE,
                {
                    **base,
                    "group": group,
                    "exposure_units": str(group_units),
                    "limit_units": str(_pct_of_floor(state.equity_units, config.max_correlated_exposure_pct)),
                    "limit_pct": str(config.max_correlated_exposure_pct),
                },
            )

    total_units = state.total_exposure_units + tokens_units
    if not _within_pct(total_units, state.equity_units, config.max_total_exposure_pct):
        return Rejection(
            RejectReason.TOTAL_EXPOSURE,
            {
                **base,
                "exposure_units": str(total_units),
                "limit_units": str(_pct_of_floor(state.equity_units, config.max_total_exposure_pct)),
                "limit_pct": str(config.max_total_exposure_pct),
            },
        )

    return None


def apply_accepted_order(
    state: PortfolioState, order: OrderIntent, market_config: MarketConfig | None = None
) -> PortfolioState:
    """The state as the next order in a batch sees it after ``order`` was accepted.

    Cash moves into exposure at cost. Equity is left unchanged: within one batch every
    limit is measured against the equity the batch started with, so the order of the
    batch cannot loosen a later limit.
    """
    group = _order_group(order, market_config)
    return PortfolioState(
        equity_units=state.equity_units,
        available_units=state.available_units - order.tokens_units,
        open_positions=state.open_positions + (OpenExposure(order.artifact_id, group, order.tokens_units),),
    )


def check_batch(
    config: PortfolioConfig,
    state: PortfolioState,
    orders: Sequence[OrderIntent],
    market_configs: Mapping[str, MarketConfig] | None = None,
) -> list[Rejection | None]:
    """Check orders in sequence, each one seeing the earlier accepted ones.

    ``market_configs`` is keyed by artifact id. A rejected order changes nothing, so
    the orders after it are checked as if it had not been sent.
    """
    if len(orders) > MAX_BATCH_ORDERS:
        raise ValueError(f"a batch holds at most {MAX_BATCH_ORDERS} orders, got {len(orders)}")
    market_configs = market_configs or {}
    results: list[Rejection | None] = []
    for order in orders:
        market_config = market_configs.get(order.artifact_id)
        rejection = check_order(config, state, order, market_config)
        results.append(rejection)
        if rejection is None:
            state = apply_accepted_order(state, order, market_config)
    assert len(results) == len(orders)
    return results


# ---------------------------------------------------------------------------
# Kelly sizing


def _check_price_wad(name: str, price_wad: int, *, open_interval: bool) -> None:
    _require_int(name, price_wad)
    if open_interval and not 0 < price_wad < WAD:
        raise ValueError(f"{name} must be in (0, {WAD}), got {price_wad}")
    if not open_interval and not 0 <= price_wad <= WAD:
        raise ValueError(f"{name} must be in [0, {WAD}], got {price_wad}")


def kelly_fraction(price_wad: int, belief_wad: int, side: str) -> Fraction:
    """Full Kelly stake as a fraction of equity for a binary contract (seed 002).

    ``price_wad`` is the market's long price c and ``belief_wad`` the agent's
    probability p that the artifact is validated, both in WAD, for either side:

    * long:  f* = (p − c) / (1 − c)
    * short: f* = (c − p) / c   (the same formula with p and c mirrored to 1 − p, 1 − c)

    A result at or below zero means there is no edge on that side.
    """
    _check_side(side)
    _check_price_wad("price_wad", price_wad, open_interval=True)
    _check_price_wad("belief_wad", belief_wad, open_interval=False)
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
        (SizingReason.MAX_POSITION_PCT, _pct_of_floor(equity_units, _position_limit_pct(config, market_config))),
    ]
    group = None if market_config is None else market_config.correlation_group
    if group is not None:
        group_limit = _pct_of_floor(equity_units, config.max_correlated_exposure_pct)
        caps.append((SizingReason.GROUP_EXPOSURE, max(0, group_limit - state.group_exposure_units(group))))
    total_limit = _pct_of_floor(equity_units, config.max_total_exposure_pct)
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


# ---------------------------------------------------------------------------
# Trailing stops


@dataclass(frozen=True)
class TrailingStop:
    """A trailing stop on one position.

    Prices are those of the position's own side, in WAD: a long tracks p_long and a
    short tracks p_short = 1 − p_long. The caller converts before calling, so the stop
    logic is the same "price falls below trigger" rule for both sides.
    """

    high_water_wad: int
    trigger_wad: int
    trail_pct: Decimal
    min_ratchet_pct: Decimal = Decimal(0)

    def __post_init__(self) -> None:
        trail_pct = _coerce_pct("trail_pct", self.trail_pct)
        min_ratchet_pct = _coerce_pct("min_ratchet_pct", self.min_ratchet_pct)
        object.__setattr__(self, "trail_pct", trail_pct)
        object.__setattr__(self, "min_ratchet_pct", min_ratchet_pct)
        assert trail_pct is not None and min_ratchet_pct is not None
        if not 0 < trail_pct < 100:
            raise ValueError(f"trail_pct must be in (0, 100), got {trail_pct}")
        if min_ratchet_pct < 0:
            raise ValueError(f"min_ratchet_pct must not be negative, got {min_ratchet_pct}")
        _check_price_wad("high_water_wad", self.high_water_wad, open_interval=False)
        _check_price_wad("trigger_wad", self.trigger_wad, open_interval=False)
        if self.trigger_wad > self.high_water_wad:
            raise ValueError("trigger_wad must not exceed high_water_wad")

    def to_dict(self) -> dict[str, Any]:
        return {
            "high_water_wad": self.high_water_wad,
            "trigger_wad": self.trigger_wad,
            "trail_pct": str(self.trail_pct),
            "min_ratchet_pct": str(self.min_ratchet_pct),
        }

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> TrailingStop:
        return cls(
            high_water_wad=_coerce_int("high_water_wad", data["high_water_wad"]),
            trigger_wad=_coerce_int("trigger_wad", data["trigger_wad"]),
            trail_pct=data["trail_pct"],
            min_ratchet_pct=data.get("min_ratchet_pct", Decimal(0)),
        )


@dataclass(frozen=True)
class StopUpdate:
    stop: TrailingStop
    ratcheted: bool
    triggered: bool


def _trail_trigger_wad(high_water_wad: int, trail_pct: Decimal) -> int:
    """floor(h · (1 − trail_pct/100)). Rounding down keeps the stop at or below the
    exact trail, so it never fires earlier than the agent asked for."""
    numerator, denominator = _pct_ratio(trail_pct)
    return (high_water_wad * (100 * denominator - numerator)) // (100 * denominator)


def new_trailing_stop(price_wad: int, trail_pct: Decimal, min_ratchet_pct: Decimal = Decimal(0)) -> TrailingStop:
    """A stop opened at ``price_wad`` (the position side's price)."""
    _check_price_wad("price_wad", price_wad, open_interval=False)
    if price_wad == 0:
        raise ValueError("price_wad must be positive to open a trailing stop")
    trail = _coerce_pct("trail_pct", trail_pct)
    assert trail is not None
    if not 0 < trail < 100:
        raise ValueError(f"trail_pct must be in (0, 100), got {trail}")
    return TrailingStop(price_wad, _trail_trigger_wad(price_wad, trail), trail, min_ratchet_pct)


def update_trailing_stop(stop: TrailingStop, price_wad: int) -> StopUpdate:
    """Apply one price (the position side's price) to a stop.

    The high-water mark is max(h, price). The trigger moves only up, and only when the
    new candidate h·(1 − trail) exceeds trigger·(1 + min_ratchet) — seed 001's rule,
    which saves replacing a stop for every tiny uptick. The stop has triggered when the
    price is at or below the trigger after this update.
    """
    _check_price_wad("price_wad", price_wad, open_interval=False)
    high_water_wad = max(stop.high_water_wad, price_wad)
    candidate_wad = _trail_trigger_wad(high_water_wad, stop.trail_pct)
    ratchet_numerator, ratchet_denominator = _pct_ratio(stop.min_ratchet_pct)
    ratcheted = candidate_wad * 100 * ratchet_denominator > stop.trigger_wad * (
        100 * ratchet_denominator + ratchet_numerator
    )
    trigger_wad = candidate_wad if ratcheted else stop.trigger_wad
    assert trigger_wad >= stop.trigger_wad, "a trailing stop never loosens"
    new_stop = TrailingStop(high_water_wad, trigger_wad, stop.trail_pct, stop.min_ratchet_pct)
    return StopUpdate(new_stop, ratcheted, price_wad <= trigger_wad)


# ---------------------------------------------------------------------------
# Emergency liquidation


def should_liquidate(equity_units: int, baseline_units: int, loss_pct: Decimal) -> bool:
    """True when equity < baseline · (1 + loss_pct/100), e.g. below 90% for −10.

    Equality does not liquidate: the breaker fires on a loss strictly beyond the limit.
    """
    _require_int("equity_units", equity_units)
    if _require_int("baseline_units", baseline_units) < 0:
        raise ValueError(f"baseline_units must not be negative, got {baseline_units}")
    loss = _coerce_pct("loss_pct", loss_pct)
    assert loss is not None
    if not -100 <= loss <= 0:
        raise ValueError(f"loss_pct must be in [-100, 0], got {loss}")
    numerator, denominator = _pct_ratio(loss)
    return equity_units * 100 * denominator < baseline_units * (100 * denominator + numerator)


# ---------------------------------------------------------------------------
# Rebalancing advice


class RebalanceReason(StrEnum):
    """Why a rebalance is advised, in precedence order: a breach of the hard position
    limit is reported before a drift from the soft target."""

    MAX_POSITION_PCT = "MAX_POSITION_PCT"
    DRIFT = "DRIFT"


class RebalanceDirection(StrEnum):
    REDUCE = "REDUCE"
    INCREASE = "INCREASE"


@dataclass(frozen=True)
class RebalanceAction:
    """Advice for one artifact. Percentages are of equity, rounded to six places.

    ``drift_pct`` is relative to the target: (weight − target) / target · 100, so a
    5% target held at 6% has drifted +20%. It is None when there is no target to be
    relative to (target zero, or only the position limit applies).
    """

    artifact_id: str
    action: RebalanceDirection
    reason: RebalanceReason
    current_pct: Decimal
    target_pct: Decimal | None
    drift_pct: Decimal | None
    amount_units: int

    def to_dict(self) -> dict[str, Any]:
        return {
            "artifact_id": self.artifact_id,
            "action": str(self.action),
            "reason": str(self.reason),
            "current_pct": str(self.current_pct),
            "target_pct": None if self.target_pct is None else str(self.target_pct),
            "drift_pct": None if self.drift_pct is None else str(self.drift_pct),
            "amount_units": self.amount_units,
        }


def _fraction_to_pct(value: Fraction) -> Decimal:
    exact = Decimal(value.numerator) / Decimal(value.denominator)
    return exact.quantize(REBALANCE_PCT_PLACES, rounding=ROUND_HALF_EVEN)


def rebalance_actions(
    positions: Sequence[tuple[str, int]],
    equity_units: int,
    targets_pct: Mapping[str, Decimal],
    threshold_pct: Decimal,
    max_position_size_pct: Decimal,
) -> list[RebalanceAction]:
    """Advise how to move positions back to their targets (seed 001 "Rebalancing").

    * ``positions`` are (artifact_id, marked value in units); repeated ids are summed.
    * A position above ``max_position_size_pct`` of equity is always flagged REDUCE,
      down to the smaller of the limit and its target.
    * Otherwise, a position with a target whose relative drift exceeds
      ``threshold_pct`` gets REDUCE or INCREASE towards the target. A target above the
      position limit is only increased up to the limit. A target with no position is a
      drift of −100%. A target of zero means "exit": any holding is reduced to zero.
    * Target values round down, so advice never takes a position above its target.

    Actions are returned sorted by artifact id so that the advice is deterministic.
    """
    if _require_int("equity_units", equity_units) <= 0:
        raise ValueError(f"equity_units must be positive to measure weights, got {equity_units}")
    threshold = _coerce_pct("threshold_pct", threshold_pct)
    max_pct = _coerce_pct("max_position_size_pct", max_position_size_pct)
    assert threshold is not None and max_pct is not None
    if threshold < 0:
        raise ValueError(f"threshold_pct must not be negative, got {threshold}")
    _require_range("max_position_size_pct", max_pct, Decimal(0), Decimal(100), low_open=True)

    values: dict[str, int] = {}
    for artifact_id, value_units in positions:
        if _require_int("value_units", value_units) < 0:
            raise ValueError(f"marked value of {artifact_id} must not be negative, got {value_units}")
        values[artifact_id] = values.get(artifact_id, 0) + value_units
    targets: dict[str, Decimal] = {}
    for artifact_id, target in targets_pct.items():
        coerced = _coerce_pct(f"target_pct[{artifact_id}]", target)
        assert coerced is not None
        _require_range(f"target_pct[{artifact_id}]", coerced, Decimal(0), Decimal(100), low_open=False)
        targets[artifact_id] = coerced

    max_value_units = _pct_of_floor(equity_units, max_pct)
    actions: list[RebalanceAction] = []
    for artifact_id in sorted(set(values) | set(targets)):
        value_units = values.get(artifact_id, 0)
        target = targets.get(artifact_id)
        current_fraction = Fraction(value_units * 100, equity_units)
        current_pct = _fraction_to_pct(current_fraction)
        target_value_units = None if target is None else _pct_of_floor(equity_units, target)

        drift: Fraction | None = None
        if target is not None and target > 0:
            target_fraction = Fraction(*_pct_ratio(target))
            drift = (current_fraction - target_fraction) / target_fraction * 100
        drift_pct = None if drift is None else _fraction_to_pct(drift)

        if value_units > max_value_units:
            floor_units = max_value_units if target_value_units is None else min(max_value_units, target_value_units)
            actions.append(
                RebalanceAction(
                    artifact_id,
                    RebalanceDirection.REDUCE,
                    RebalanceReason.MAX_POSITION_PCT,
                    current_pct,
                    target,
                    drift_pct,
                    value_units - floor_units,
                )
            )
            continue
        if target is None:
            continue
        if target == 0:
            if value_units > 0:
                actions.append(
                    RebalanceAction(
                        artifact_id,
                        RebalanceDirection.REDUCE,
                        RebalanceReason.DRIFT,
                        current_pct,
                        target,
                        None,
                        value_units,
                    )
                )
            continue
        assert drift is not None and target_value_units is not None
        threshold_fraction = Fraction(*_pct_ratio(threshold))
        if abs(drift) <= threshold_fraction:
            continue
        goal_units = min(target_value_units, max_value_units)
        if goal_units == value_units:
            # The target sits above the position limit and the position is at the
            # limit already: nothing can be done, so nothing is advised.
            continue
        direction = RebalanceDirection.REDUCE if value_units > goal_units else RebalanceDirection.INCREASE
        actions.append(
            RebalanceAction(
                artifact_id,
                direction,
                RebalanceReason.DRIFT,
                current_pct,
                target,
                drift_pct,
                abs(value_units - goal_units),
            )
        )
    return actions
