"""Exact numbers for the risk rules, and the checks on their inputs. Percentages without floats: each ``*_pct`` is a ``Decimal`` percent (``Decimal("5")`` is 5%),
turned into an exact integer ratio so a limit never passes or fails on a rounding step.

Shared by every risk rule; nothing here knows about portfolios.
"""

from __future__ import annotations

from decimal import Decimal, InvalidOperation
from typing import Any

from stakeledger.domain.vocabulary import WAD, Side

SIDES = tuple(side.value for side in Side)


def pct_ratio(pct: Decimal) -> tuple[int, int]:
    """Return ``pct`` as an exact ``(numerator, denominator)`` with a positive denominator."""
    numerator, denominator = pct.as_integer_ratio()
    assert denominator > 0
    return numerator, denominator


def pct_of_floor(amount_units: int, pct: Decimal) -> int:
    """floor(amount · pct / 100), exactly.

    Limits round down so that an amount equal to the limit always passes the matching
    ``amount·100 <= base·pct`` check, and the next unit up always fails it.
    """
    numerator, denominator = pct_ratio(pct)
    return (amount_units * numerator) // (100 * denominator)


def within_pct(amount_units: int, base_units: int, pct: Decimal) -> bool:
    """amount <= base · pct / 100, compared as integers."""
    numerator, denominator = pct_ratio(pct)
    return amount_units * 100 * denominator <= base_units * numerator


def coerce_pct(name: str, value: Any, *, allow_none: bool = False) -> Decimal | None:
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


def coerce_int(name: str, value: Any) -> int:
    if isinstance(value, bool):
        raise ValueError(f"{name} must be an integer, not bool")
    if isinstance(value, int):
        return value
    if isinstance(value, str) and value.strip().lstrip("-").isdigit():
        return int(value.strip())
    raise ValueError(f"{name} must be an integer, got {value!r}")


def require_int(name: str, value: Any) -> int:
    """Records built in code take real ints only; strings are parsed at the edges."""
    if isinstance(value, bool) or not isinstance(value, int):
        raise ValueError(f"{name} must be an int, got {type(value).__name__}")
    return value


def require_range(name: str, value: Decimal, low: Decimal, high: Decimal, *, low_open: bool) -> None:
    below = value <= low if low_open else value < low
    if below or value > high:
        bracket = "(" if low_open else "["
        raise ValueError(f"{name} must be in {bracket}{low}, {high}], got {value}")


def check_side(side: str) -> None:
    if side not in SIDES:
        raise ValueError(f"side must be one of {SIDES}, got {side!r}")


def check_price_wad(name: str, price_wad: int, *, open_interval: bool) -> None:
    require_int(name, price_wad)
    if open_interval and not 0 < price_wad < WAD:
        raise ValueError(f"{name} must be in (0, {WAD}), got {price_wad}")
    if not open_interval and not 0 <= price_wad <= WAD:
        raise ValueError(f"{name} must be in [0, {WAD}], got {price_wad}")
