"""Pre-trade checks: the first limit an order breaks, in a fixed precedence, as a
rejection with a stable reason code; a batch is checked cumulatively."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from decimal import Decimal
from enum import StrEnum
from typing import Any

from stakeledger.domain.rules.money import format_amount
from stakeledger.domain.rules.risk.config import MarketConfig, PortfolioConfig
from stakeledger.domain.rules.risk.numbers import check_side, pct_of_floor, require_int, within_pct
from stakeledger.domain.vocabulary import MAX_BATCH_ORDERS


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

    def describe(self, decimals: int) -> str:
        """The message for people: like ``message``, but every ``*_units`` amount is shown
        in tokens of a ledger with ``decimals`` (``limit=50.13 tokens``); the exact base
        units stay in ``to_dict``'s context."""
        return describe_rejection(str(self.reason), self.context, decimals)

    def to_dict(self) -> dict[str, Any]:
        return {"reason": str(self.reason), "context": dict(self.context)}


def describe_rejection(reason: str, context: Mapping[str, Any], decimals: int) -> str:
    """``REASON key=value ...`` with each ``name_units=N`` shown as ``name=T tokens``."""
    return " ".join([reason, *context_parts(context, decimals)])


def context_parts(context: Mapping[str, Any], decimals: int) -> list[str]:
    """A rejection's context as ``key=value`` texts for people: ``name_units=N`` becomes
    ``name=T tokens`` in a ledger with ``decimals``; every other value is as recorded."""
    parts = []
    for key, value in context.items():
        if key.endswith("_units") and str(value).lstrip("-").isdigit():
            parts.append(f"{key.removesuffix('_units')}={format_amount(int(value), decimals)} tokens")
        else:
            parts.append(f"{key}={value}")
    return parts


@dataclass(frozen=True)
class OpenExposure:
    """One open position as the limits see it: exposure is the cost committed."""

    artifact_id: str
    group: str | None
    cost_units: int

    def __post_init__(self) -> None:
        if require_int("cost_units", self.cost_units) < 0:
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
        if require_int("equity_units", self.equity_units) < 0:
            raise ValueError(f"equity_units must not be negative, got {self.equity_units}")
        if require_int("available_units", self.available_units) < 0:
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
        check_side(self.side)
        if require_int("tokens_units", self.tokens_units) <= 0:
            # A zero or negative order is bad input, not a business outcome.
            raise ValueError(f"tokens_units must be positive, got {self.tokens_units}")


def _order_group(order: OrderIntent, market_config: MarketConfig | None) -> str | None:
    market_group = None if market_config is None else market_config.correlation_group
    if order.group is not None and market_group is not None and order.group != market_group:
        raise ValueError(f"order group {order.group!r} disagrees with market correlation_group {market_group!r}")
    return order.group if order.group is not None else market_group


def position_limit_pct(config: PortfolioConfig, market_config: MarketConfig | None) -> Decimal:
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

    position_pct = position_limit_pct(config, market_config)
    position_units = state.artifact_exposure_units(artifact_id) + tokens_units
    if not within_pct(position_units, state.equity_units, position_pct):
        return Rejection(
            RejectReason.MAX_POSITION_PCT,
            {
                **base,
                "position_units": str(position_units),
                "limit_units": str(pct_of_floor(state.equity_units, position_pct)),
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
        if not within_pct(group_units, state.equity_units, config.max_correlated_exposure_pct):
            return Rejection(
                RejectReason.GROUP_EXPOSURE,
                {
                    **base,
                    "group": group,
                    "exposure_units": str(group_units),
                    "limit_units": str(pct_of_floor(state.equity_units, config.max_correlated_exposure_pct)),
                    "limit_pct": str(config.max_correlated_exposure_pct),
                },
            )

    total_units = state.total_exposure_units + tokens_units
    if not within_pct(total_units, state.equity_units, config.max_total_exposure_pct):
        return Rejection(
            RejectReason.TOTAL_EXPOSURE,
            {
                **base,
                "exposure_units": str(total_units),
                "limit_units": str(pct_of_floor(state.equity_units, config.max_total_exposure_pct)),
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
