"""Rules for untrusted input that the HTTP API and the CLI share: the shape of a JSON
document before it is parsed, and the characters free text may hold.

This module imports neither FastAPI nor typer, so the CLI uses it without loading the web stack.

- ``check_json_shape(text, what)``: a JSON text nesting deeper than ``MAX_JSON_DEPTH`` or
  holding a number longer than ``MAX_NUMBER_DIGITS`` digits is refused before any parser
  sees it. Python's JSON parser recurses once per level, so 200,000 nested brackets end in
  a RecursionError at best, and in a C stack overflow (the process dies) when something
  raised the interpreter's recursion limit; a number of 5,000 digits ends in Python's
  "Exceeds the limit (4300 digits)" ValueError. The scan is one regular expression pass:
  strings are skipped whole (brackets and digits inside them are data), so it costs a few
  milliseconds for the largest body the API accepts.
- ``reject_duplicate_keys``: an ``object_pairs_hook`` for ``json.loads`` that refuses an
  object naming a key twice, instead of keeping the last value as ``json`` does.
- ``check_text(value, what)`` / ``TEXT_PATTERN``: free text (titles, reasons, groups,
  actors) may not hold control characters: C0 and C1 controls, DEL, the bidirectional
  overrides and isolates (U+202A-U+202E, U+2066-U+2069), zero-width and invisible
  formatting characters (U+200B-U+200F, U+2060-U+2064, U+061C, U+FEFF) and the line and
  paragraph separators (U+2028, U+2029). They would rewrite a terminal, reorder a table
  or hide text from the people who read it.
- ``printable(text)``: text for a terminal, every such character shown as its escape
  (``\\u202e``), for text that was stored before these rules (or through the Python API).
- ``rationale_of(body)``: an order body's ``rationale`` object as a domain Rationale, read
  exactly from its decimal strings (None when absent or empty).
"""

from __future__ import annotations

import json
import re
from fractions import Fraction
from itertools import accumulate
from typing import Any

from stakeledger.domain.errors import InvalidAmountError, InvalidInputError
from stakeledger.domain.rules.rationale import Rationale

MAX_JSON_DEPTH = 32
MAX_NUMBER_DIGITS = 100

# A whole JSON string (unrolled and possessive: one step per run of plain characters, no
# backtracking on an unterminated one); brackets and digits inside strings are data.
_JSON_STRING = re.compile(r'"[^"\\]*+(?:\\.[^"\\]*+)*+"', re.DOTALL)
_LONG_NUMBER = re.compile(r"[0-9]{%d}" % (MAX_NUMBER_DIGITS + 1))
# Outside strings, each opening bracket as +1 and each closing one as -1 (a signed byte);
# every other byte is dropped. The running sum is the nesting depth.
_BRACKET_STEPS = bytes.maketrans(b"[{]}", b"\x01\x01\xff\xff")
_NOT_BRACKETS = bytes(sorted(set(range(256)) - set(b"[]{}")))

# The characters free text may not hold, as a regular-expression class body that both
# Python's re and pydantic's (Rust) regex engine read the same way.
FORBIDDEN_TEXT_CLASS = r"\x00-\x1f\x7f-\x9f\u061c\u200b-\u200f\u2028-\u202e\u2060-\u2064\u2066-\u2069\ufeff"
TEXT_PATTERN = rf"^[^{FORBIDDEN_TEXT_CLASS}]*$"
FORBIDDEN_TEXT = re.compile(f"[{FORBIDDEN_TEXT_CLASS}]")


def check_json_shape(text: str, what: str) -> None:
    """Refuse ``text`` (a JSON document not parsed yet) when it nests deeper than
    ``MAX_JSON_DEPTH`` or holds a number of more than ``MAX_NUMBER_DIGITS`` digits. Text that
    is not JSON at all passes when it is shallow: the parser then refuses it, quickly."""
    structure = _JSON_STRING.sub('""', text)
    if _LONG_NUMBER.search(structure):
        raise InvalidInputError(f"{what} holds a number of more than {MAX_NUMBER_DIGITS} digits")
    steps = structure.encode("utf-8", "surrogatepass").translate(_BRACKET_STEPS, _NOT_BRACKETS)
    if max(accumulate(memoryview(steps).cast("b")), default=0) > MAX_JSON_DEPTH:
        raise InvalidInputError(f"{what} nests deeper than {MAX_JSON_DEPTH} levels")


def decode_json_bytes(data: bytes) -> str | None:
    """``data`` decoded as ``json.loads`` would decode it (UTF-8, or UTF-16/32 by its first
    bytes), so the shape check sees the characters the parser will; None if it cannot be."""
    try:
        return data.decode(json.detect_encoding(data), "surrogatepass")
    except (UnicodeDecodeError, LookupError):
        return None


def reject_duplicate_keys(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    """``json.loads(..., object_pairs_hook=reject_duplicate_keys)``: an object may name each key once."""
    result: dict[str, Any] = {}
    for key, value in pairs:
        if key in result:
            raise InvalidInputError(f"duplicate key {shown(key)}")
        result[key] = value
    return result


def check_text(value: str, what: str) -> str:
    """``value``, or InvalidInputError naming the first control or invisible character it holds."""
    found = FORBIDDEN_TEXT.search(value) if isinstance(value, str) else None
    if found is not None:
        raise InvalidInputError(
            f"{what} holds the control or invisible character U+{ord(found.group()):04X} "
            f"at position {found.start() + 1}; free text may not hold control characters"
        )
    return value


def printable(text: str) -> str:
    """``text`` with every control or invisible character shown as its escape (``\\x1b``, ``\\u202e``)."""
    return FORBIDDEN_TEXT.sub(lambda found: found.group().encode("unicode_escape").decode("ascii"), text)


def shown(value: Any, limit: int = 40) -> str:
    """``repr(value)`` cut to about ``limit`` characters, for messages about hostile input."""
    text = repr(value)
    return text if len(text) <= limit else f"{text[: limit - 1]}… ({len(str(value))} characters)"


def check_weights_sum_to_one(weights: list[tuple[str, Fraction]], *, normalise_hint: str = "normalise") -> None:
    """Bounty weights are shares of the bounty: they must sum to exactly 1. (The ledger
    itself shares by weight / sum of weights; the CLI and the API ask for that explicitly.)"""
    total = sum((weight for _, weight in weights), Fraction(0))
    if total == 1:
        return
    small = total.numerator < 10**12 and total.denominator < 10**12
    written = str(total) if small else f"about {float(total):.6g}"  # str() of a huge int is refused by Python
    raise InvalidAmountError(
        f"claimant weights sum to {written}, not 1: fix them, or pass {normalise_hint} to share by weight / sum"
    )


def rationale_of(body: Any, what: str = "rationale") -> Rationale | None:
    """The ``rationale`` object of an order body (``api.models.RationaleIn``) as a Rationale,
    every number read exactly from its decimal string; refusals name ``what`` and the field."""
    if body is None:
        return None
    try:
        return Rationale.from_inputs(
            belief=body.belief, edge=body.edge, reasoning=body.reasoning, features=body.features
        )
    except InvalidInputError as error:
        raise InvalidInputError(f"{what}: {error}") from None
