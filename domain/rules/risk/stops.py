"""Trailing stops: the high-water mark rises with the price, the trigger follows it by
``trail_pct`` and only ever rises (by more than ``min_ratchet_pct``)."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from decimal import Decimal
from typing import Any

from stakeledger.domain.rules.risk.numbers import check_price_wad, coerce_int, coerce_pct, pct_ratio


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
        trail_pct = coerce_pct("trail_pct", self.trail_pct)
        min_ratchet_pct = coerce_pct("min_ratchet_pct", self.min_ratchet_pct)
        object.__setattr__(self, "trail_pct", trail_pct)
        object.__setattr__(self, "min_ratchet_pct", min_ratchet_pct)
        assert trail_pct is not None and min_ratchet_pct is not None
        if not 0 < trail_pct < 100:
            raise ValueError(f"trail_pct must be in (0, 100), got {trail_pct}")
        if min_ratchet_pct < 0:
            raise ValueError(f"min_ratchet_pct must not be negative, got {min_ratchet_pct}")
        check_price_wad("high_water_wad", self.high_water_wad, open_interval=False)
        check_price_wad("trigger_wad", self.trigger_wad, open_interval=False)
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
            high_water_wad=coerce_int("high_water_wad", data["high_water_wad"]),
            trigger_wad=coerce_int("trigger_wad", data["trigger_wad"]),
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
    numerator, denominator = pct_ratio(trail_pct)
    return (high_water_wad * (100 * denominator - numerator)) // (100 * denominator)


def new_trailing_stop(price_wad: int, trail_pct: Decimal, min_ratchet_pct: Decimal = Decimal(0)) -> TrailingStop:
    """A stop opened at ``price_wad`` (the position side's price)."""
    check_price_wad("price_wad", price_wad, open_interval=False)
    if price_wad == 0:
        raise ValueError("price_wad must be positive to open a trailing stop")
    trail = coerce_pct("trail_pct", trail_pct)
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
    check_price_wad("price_wad", price_wad, open_interval=False)
    high_water_wad = max(stop.high_water_wad, price_wad)
    candidate_wad = _trail_trigger_wad(high_water_wad, stop.trail_pct)
    ratchet_numerator, ratchet_denominator = pct_ratio(stop.min_ratchet_pct)
    ratcheted = candidate_wad * 100 * ratchet_denominator > stop.trigger_wad * (
        100 * ratchet_denominator + ratchet_numerator
    )
    trigger_wad = candidate_wad if ratcheted else stop.trigger_wad
    assert trigger_wad >= stop.trigger_wad, "a trailing stop never loosens"
    new_stop = TrailingStop(high_water_wad, trigger_wad, stop.trail_pct, stop.min_ratchet_pct)
    return StopUpdate(new_stop, ratcheted, price_wad <= trigger_wad)
