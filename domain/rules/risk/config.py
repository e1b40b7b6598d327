"""Risk configuration records: the portfolio's limits and the per-market settings
(seeds 001 and 002, SPEC "Portfolio and risk"). Percentages read as percent everywhere,
``trail_pct`` included (seed 001's fraction 0.02 is ``Decimal("2")`` here)."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from decimal import Decimal
from typing import Any

from stakeledger.domain.rules.risk.numbers import coerce_int, coerce_pct, require_range
from stakeledger.domain.vocabulary import DEFAULT_DECIMALS


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
            object.__setattr__(self, name, coerce_pct(name, getattr(self, name)))
        object.__setattr__(self, "max_positions", coerce_int("max_positions", self.max_positions))
        object.__setattr__(self, "min_trade_size_units", coerce_int("min_trade_size_units", self.min_trade_size_units))

        hundred = Decimal(100)
        # A limit of zero would reject every order, which is a misconfiguration rather
        # than a policy, so the exposure limits must be strictly positive.
        require_range("max_position_size_pct", self.max_position_size_pct, Decimal(0), hundred, low_open=True)
        require_range(
            "max_correlated_exposure_pct", self.max_correlated_exposure_pct, Decimal(0), hundred, low_open=True
        )
        require_range("max_total_exposure_pct", self.max_total_exposure_pct, Decimal(0), hundred, low_open=True)
        # Zero threshold is allowed: it asks for advice on any drift at all. There is
        # no upper bound because drift is relative to the target and can exceed 100%.
        if self.rebalance_threshold_pct < 0:
            raise ValueError(f"rebalance_threshold_pct must not be negative, got {self.rebalance_threshold_pct}")
        # The circuit breaker is a loss: positive would liquidate a winning portfolio.
        require_range(
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
        position_size_pct = coerce_pct("position_size_pct", self.position_size_pct, allow_none=True)
        trail_pct = coerce_pct("trail_pct", self.trail_pct, allow_none=True)
        object.__setattr__(self, "position_size_pct", position_size_pct)
        object.__setattr__(self, "trail_pct", trail_pct)
        if position_size_pct is not None:
            require_range("position_size_pct", position_size_pct, Decimal(0), Decimal(100), low_open=True)
        if trail_pct is not None:
            # A 100% trail would put the trigger at zero, which can never be touched.
            require_range("trail_pct", trail_pct, Decimal(0), Decimal(100), low_open=True)
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
