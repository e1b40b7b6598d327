"""Amounts and prices for people, next to the exact strings for programs.

Every result the ledger and the views return carries amounts as decimal strings of base
units (``cost_units``) and prices as WAD strings (``price_long_wad``). ``human`` adds,
beside each, the same value for people: ``cost`` in tokens with the ledger's decimals
("12.5") and ``price_long`` as a probability with six decimals ("0.625000"), unless the
result already has that key. Nothing is rounded away in the ``*_units`` strings.
"""

from __future__ import annotations

from decimal import Decimal
from typing import TYPE_CHECKING, Any

from stakeledger.domain.rules.money import format_amount
from stakeledger.domain.vocabulary import WAD

if TYPE_CHECKING:
    from fastapi.responses import JSONResponse

MAX_DEPTH = 8
_SIX_PLACES = Decimal("0.000001")


def price_text(wad: int) -> str:
    return str((Decimal(wad) / WAD).quantize(_SIX_PLACES))


def _integer(value: Any) -> int | None:
    if isinstance(value, bool):
        return None
    if isinstance(value, int):
        return value
    if isinstance(value, str) and value.lstrip("-").isdigit() and len(value) <= 100:
        return int(value)
    return None


def human(data: Any, decimals: int, _depth: int = 0) -> Any:
    """``data`` with a human-readable twin after every ``*_units`` and ``*_wad`` value."""
    if _depth > MAX_DEPTH:
        return data
    if isinstance(data, list):
        return [human(item, decimals, _depth + 1) for item in data]
    if not isinstance(data, dict):
        return data
    out: dict[str, Any] = {}
    for key, value in data.items():
        out[key] = human(value, decimals, _depth + 1) if isinstance(value, (dict, list)) else value
        if not isinstance(key, str):
            continue
        number = _integer(value)
        if number is None:
            continue
        if key.endswith("_units") and key[:-6] not in data:
            out[key[:-6]] = format_amount(number, decimals)
        elif key.endswith("_wad") and key[:-4] not in data:
            out[key[:-4]] = price_text(number)
    return out


def respond(data: Any, decimals: int, status_code: int = 200) -> JSONResponse:
    """``human(data)`` as a JSON response with an explicit status (201 for creations)."""
    # Imported here: the CLI renders with ``human`` and should not pay for loading FastAPI.
    from fastapi.encoders import jsonable_encoder
    from fastapi.responses import JSONResponse

    body = human(data, decimals)
    try:
        # Results are plain JSON (strings, integers, lists, dicts) almost always: rendered as they
        # are, a third of the time jsonable_encoder's walk takes; anything else goes through it.
        return JSONResponse(body, status_code=status_code)
    except (TypeError, ValueError):
        return JSONResponse(jsonable_encoder(body), status_code=status_code)
