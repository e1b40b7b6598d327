"""Money rules: integer base units, decimal-string input, pool-favouring rounding.

Every amount the ledger stores is a Python ``int`` in base units. A ledger fixes
``decimals`` at creation (default 18, the ERC-20 convention) so that every amount
maps unchanged onto a ``uint256``. People type amounts as decimal strings; this
module is the one place where those strings become integers.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from fractions import Fraction
from typing import TypeVar

from stakeledger.domain.errors import InvalidAmountError
from stakeledger.domain.vocabulary import WAD

MAX_UINT256 = 2**256 - 1
# The longest text the parsers read: a uint256 has 78 digits, a ledger at most 36 decimals
# (a price 18), so a longer amount can only be refused; a weight or fraction has no use for
# more digits than an amount. Checked before any conversion.
MAX_AMOUNT_CHARS = 160
MAX_FRACTION_CHARS = 160

# Plain positional notation only: exponents ("1e999"), signs, spaces, NaN and
# infinities are refused by construction rather than by a list of special cases.
_DECIMAL_STRING = re.compile(r"^(?P<whole>[0-9]+)(?:\.(?P<fraction>[0-9]+))?\Z")
_FRACTION_STRING = re.compile(r"[0-9]+(?:\.[0-9]+|/[0-9]+)?")  # 0.8 or 4/5, as the HTTP API takes them

K = TypeVar("K")


def parse_amount(text: str, decimals: int, *, allow_zero: bool = False) -> int:
    """Parse a decimal string such as ``"12.5"`` into base units.

    Refuses anything that is not a plain non-negative decimal number (surrounding spaces
    included: exactly the strings the API's ``AMOUNT_PATTERN`` takes), zero (unless
    ``allow_zero``), more fractional digits than ``decimals``, and amounts above
    2**256 - 1.
    """
    if not isinstance(text, str):
        raise InvalidAmountError(f"amount must be a decimal string, got {type(text).__name__}")
    # Lengths are checked before any conversion: int() of a few thousand digits is refused by
    # Python itself ("Exceeds the limit (4300 digits)"), and messages quote at most a cut.
    shown = _shown(text)
    if text != text.strip():  # as the API's pattern: " 5" is not an amount, on any surface
        raise InvalidAmountError(f"amount must not have spaces or other whitespace around it: {shown}")
    if len(text) > MAX_AMOUNT_CHARS:
        raise InvalidAmountError(f"amount has {len(text)} characters; at most {MAX_AMOUNT_CHARS}: {shown}")
    if text.startswith("-"):
        raise InvalidAmountError(f"amount must not be negative: {shown}")
    match = _DECIMAL_STRING.match(text)
    if match is None:
        raise InvalidAmountError(f"amount must be a plain decimal number like 12.5: {shown}")
    fraction = match.group("fraction") or ""
    if len(fraction) > decimals:
        raise InvalidAmountError(f"amount {shown} has {len(fraction)} fractional digits; this ledger allows {decimals}")
    if len(match.group("whole").lstrip("0")) > len(str(MAX_UINT256)):
        raise InvalidAmountError(f"amount exceeds 2**256 - 1 base units: {shown}")
    units = int(match.group("whole")) * 10**decimals + int(fraction.ljust(decimals, "0") or "0")
    check_units(units, allow_zero=allow_zero)
    return units


def check_units(units: int, *, allow_zero: bool = False) -> int:
    """Assert that ``units`` is an int amount a uint256 can hold."""
    if isinstance(units, bool) or not isinstance(units, int):
        raise InvalidAmountError(f"amount must be an integer number of base units, got {units!r}")
    if units < 0:
        raise InvalidAmountError(f"amount must not be negative: {units}")
    if units == 0 and not allow_zero:
        raise InvalidAmountError("amount must be greater than zero")
    if units > MAX_UINT256:
        raise InvalidAmountError("amount exceeds 2**256 - 1 base units")
    return units


def format_amount(units: int, decimals: int, places: int | None = None) -> str:
    """Render base units as a decimal string with no trailing zeros: 12500 (d=3) -> "12.5".
    With ``places``, cut (toward zero) to that many fractional digits for display."""
    sign = "-" if units < 0 else ""
    if places is not None and places < decimals:
        cut = 10 ** (decimals - places)
        units, decimals = (abs(units) // cut) * (1 if units >= 0 else -1), places
        sign = "-" if units < 0 else ""
    whole, fraction = divmod(abs(units), 10**decimals)
    if decimals == 0 or fraction == 0:
        return f"{sign}{whole}"
    return f"{sign}{whole}.{str(fraction).rjust(decimals, '0').rstrip('0')}"


# "N base units" in a refusal, but not the "1" of "2**256 - 1 base units".
_BASE_UNITS_IN_TEXT = re.compile(r"(?<!- )(?<![\w*.])(?P<units>[0-9]+) base units")
_NEEDED_IN_TEXT = re.compile(r"(?P<head>[0-9] base units, )(?P<units>[0-9]+) needed")


def tokens_in_text(text: str, decimals: int) -> str:
    """``text`` with every ``N base units`` shown as tokens of a ledger with ``decimals``:
    "holds 117500000 base units" (d=6) -> "holds 117.5 tokens". For messages people read;
    ``--json`` and the log keep exact base units."""
    # "holds N base units, M needed" (domain.model.accounts) names the unit once for both.
    text = _NEEDED_IN_TEXT.sub(
        lambda found: f"{found['head']}{format_amount(int(found['units']), decimals)} tokens needed", text
    )
    return _BASE_UNITS_IN_TEXT.sub(lambda found: f"{format_amount(int(found['units']), decimals)} tokens", text)


def _shown(text: str) -> str:
    """``text`` for a refusal: quoted whole when short, else its start and its length."""
    return repr(text) if len(text) <= 60 else f"{text[:40]!r}… ({len(text)} characters)"


def parse_price_wad(text: str, what: str = "price") -> int:
    """Parse a probability such as ``"0.65"`` into a WAD-scaled int strictly inside (0, 1);
    ``what`` names the input in the refusal."""
    try:
        wad = parse_amount(text, 18)
    except InvalidAmountError as error:
        raise InvalidAmountError(f"{what} must be a decimal between 0 and 1: {error}") from None
    if not 0 < wad < WAD:
        raise InvalidAmountError(f"{what} must be strictly between 0 and 1: {_shown(text)}")
    return wad


def parse_fraction(text: str, what: str = "weight") -> Fraction:
    """Parse a non-negative weight written as ``"0.8"`` or ``"4/5"`` (ASCII digits only, no
    exponent, no underscores); ``what`` names it in the refusal."""
    written = text.strip() if isinstance(text, str) else ""
    # Checked before any conversion: Fraction() of thousands of digits is refused by Python.
    shown = repr(text) if len(repr(text)) <= 60 else f"{str(text)[:40]!r}… ({len(str(text))} characters)"
    if len(written) > MAX_FRACTION_CHARS:
        raise InvalidAmountError(f"{what} has {len(written)} characters; at most {MAX_FRACTION_CHARS}: {shown}")
    if not _FRACTION_STRING.fullmatch(written):
        if written.startswith("-"):
            raise InvalidAmountError(f"{what} must not be negative: {shown}")
        raise InvalidAmountError(f"{what} must be a decimal or a fraction like 4/5: {shown}")
    try:
        return Fraction(written)
    except ZeroDivisionError:
        raise InvalidAmountError(f"{what} divides by zero: {shown}") from None


def mul_div_down(value: int, numerator: int, denominator: int) -> int:
    """floor(value * numerator / denominator) for non-negative ints."""
    return value * numerator // denominator


def mul_div_up(value: int, numerator: int, denominator: int) -> int:
    """ceil(value * numerator / denominator) for non-negative ints."""
    return -(-(value * numerator) // denominator)


def split_by_weights(total_units: int, weights: Sequence[tuple[K, Fraction]]) -> list[tuple[K, int]]:
    """Split ``total_units`` among weights: floor of each share, then the leftover
    units one at a time in the declared order. The parts always sum to the total.

    15 split 4/5, 2/25, 3/25 gives floors 12, 1, 1 and one leftover unit to the
    first claimant: 13, 1, 1.
    """
    if not weights:
        raise InvalidAmountError("a split needs at least one weight")
    weight_sum = sum((weight for _, weight in weights), Fraction(0))
    if weight_sum <= 0:
        raise InvalidAmountError("weights must sum to more than zero")
    parts = [int(total_units * weight / weight_sum) for _, weight in weights]
    leftover_units = total_units - sum(parts)
    assert 0 <= leftover_units < len(parts)
    for index in range(leftover_units):
        parts[index % len(parts)] += 1
    assert sum(parts) == total_units
    return [(key, part) for (key, _), part in zip(weights, parts, strict=True)]
