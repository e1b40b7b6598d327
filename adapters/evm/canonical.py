"""Canonical byte forms of event data: the JSON payload and the timestamp.

A record's hash covers its payload bytes, so two exports of the same event must
produce the same bytes: keys are sorted, there is no whitespace, text is UTF-8
(not \\u-escaped), and integers are plain JSON numbers of any size. Floats are
refused because no float ever reaches a stored event, and a float's text form
is not stable across languages.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from datetime import datetime, timedelta, timezone
from typing import Any
from uuid import UUID

_EPOCH = datetime(1970, 1, 1, tzinfo=timezone.utc)
_ONE_MICROSECOND = timedelta(microseconds=1)

# A payload this deep is a bug upstream, not an event; the limit keeps the walk bounded.
PAYLOAD_DEPTH_MAX = 32


def canonical_json(state: Mapping[str, Any]) -> bytes:
    """The canonical JSON bytes of an event's state (a mapping with string keys).

    UUIDs are written as their hyphenated lowercase text; every other value must
    already be a JSON type (dict, list, tuple, str, int, bool, None).
    """
    if not isinstance(state, Mapping):
        raise TypeError(f"an event state must be a mapping, not {type(state).__name__}")
    plain = _plain(state, depth=0)
    return json.dumps(plain, sort_keys=True, separators=(",", ":"), ensure_ascii=False, allow_nan=False).encode("utf-8")


class _NotPlain(Exception):
    """A float or a NaN/Infinity constant in JSON text: not for the fast path."""


def _not_plain(text: str) -> None:
    raise _NotPlain(text)


def loads_canonical(text: str | bytes) -> tuple[dict[str, Any], bytes] | None:
    """``(json.loads(text), canonical_json(of it))`` by C code alone, or None when the text
    is not a JSON object, holds a float or a NaN/Infinity constant, or has more opening
    brackets than PAYLOAD_DEPTH_MAX (so might nest too deep): the caller then takes the
    generic path, which raises or refuses with its own message.

    Why it is the same: what json.loads gives holds only dicts with str keys, lists, str,
    int, bool and None; with no float among them and fewer than PAYLOAD_DEPTH_MAX levels,
    ``_plain`` copies it unchanged and raises nothing, so canonical_json is json.dumps of
    the loaded object with the same options. The Python walk of ``_plain`` is skipped;
    a payload is read once per record on every export and verify."""
    brackets = (b"{", b"[") if isinstance(text, bytes) else ("{", "[")
    if text.count(brackets[0]) + text.count(brackets[1]) > PAYLOAD_DEPTH_MAX:
        return None
    try:
        if isinstance(text, bytes):
            # What json.loads does with bytes, before its decoder reads the text.
            text = text.decode(json.detect_encoding(text), "surrogatepass")
        state = _LOADS(text)
    except (_NotPlain, ValueError, TypeError, RecursionError):
        return None
    if not isinstance(state, dict):
        return None
    return state, _DUMPS(state).encode("utf-8")


# Made once: json.loads with any option builds a new decoder on every call.
_LOADS = json.JSONDecoder(parse_float=_not_plain, parse_constant=_not_plain).decode
_DUMPS = json.JSONEncoder(sort_keys=True, separators=(",", ":"), ensure_ascii=False, allow_nan=False).encode


def is_canonical_json(payload: bytes) -> bool:
    """Whether the bytes are exactly what canonical_json writes for their content."""
    return canonical_state(payload) is not None


def canonical_state(payload: bytes) -> dict[str, Any] | None:
    """The JSON object the bytes hold when they are exactly its canonical_json, else None
    (parsed once, for callers that go on to read it)."""
    try:
        text = payload.decode("utf-8")
    except UnicodeDecodeError:
        return None
    fast = loads_canonical(text)
    if fast is not None:
        return fast[0] if fast[1] == payload else None
    try:
        state = json.loads(text)
    except ValueError:
        return None
    if not isinstance(state, dict):
        return None
    try:
        return state if canonical_json(state) == payload else None
    except (TypeError, ValueError):
        return None


def timestamp_micros(moment: datetime) -> int:
    """Whole microseconds since the Unix epoch, computed without floats.

    Naive datetimes are refused: their meaning depends on the machine's zone.
    """
    if moment.tzinfo is None or moment.utcoffset() is None:
        raise ValueError("a timestamp must be timezone-aware")
    return (moment - _EPOCH) // _ONE_MICROSECOND


def _plain(value: Any, depth: int) -> Any:
    if depth > PAYLOAD_DEPTH_MAX:
        raise ValueError(f"payload nests deeper than {PAYLOAD_DEPTH_MAX} levels")
    # bool is checked before int only for clarity: both pass through unchanged.
    if value is None or isinstance(value, (bool, str)):
        return value
    if isinstance(value, int):
        return int(value)
    if isinstance(value, UUID):
        return str(value)
    if isinstance(value, Mapping):
        plain: dict[str, Any] = {}
        for key, item in value.items():
            if not isinstance(key, str):
                raise TypeError(f"payload keys must be strings, not {type(key).__name__}")
            plain[key] = _plain(item, depth + 1)
        return plain
    if isinstance(value, (list, tuple)):
        return [_plain(item, depth + 1) for item in value]
    raise TypeError(f"{type(value).__name__} has no canonical JSON form; convert it before export")
