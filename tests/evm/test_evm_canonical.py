"""Canonical payload bytes and exact timestamps."""

from __future__ import annotations

import json
from datetime import datetime, timedelta, timezone
from uuid import UUID

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from stakeledger.adapters.evm import canonical_json, is_canonical_json, timestamp_micros
from stakeledger.adapters.evm.canonical import canonical_state, loads_canonical


def test_canonical_json_when_keys_are_unordered_then_sorts_them_without_spaces() -> None:
    assert canonical_json({"b": 1, "a": {"d": [1, 2], "c": None}}) == b'{"a":{"c":null,"d":[1,2]},"b":1}'


def test_canonical_json_when_text_is_not_ascii_then_writes_utf8() -> None:
    assert canonical_json({"name": "Zoë"}) == '{"name":"Zoë"}'.encode("utf-8")


def test_canonical_json_when_int_exceeds_64_bits_then_writes_a_plain_number() -> None:
    assert canonical_json({"amount": 2**256 - 1}) == b'{"amount":%d}' % (2**256 - 1)


def test_canonical_json_when_value_is_uuid_then_writes_its_text() -> None:
    assert canonical_json({"id": UUID(int=1)}) == b'{"id":"00000000-0000-0000-0000-000000000001"}'


@pytest.mark.parametrize("state", [{"price": 0.5}, {"nan": float("nan")}, {1: "int key"}, {"x": {1, 2}}])
def test_canonical_json_when_value_has_no_canonical_form_then_raises(state: dict) -> None:
    with pytest.raises((TypeError, ValueError)):
        canonical_json(state)


def test_is_canonical_json_when_bytes_have_spaces_then_returns_false() -> None:
    assert is_canonical_json(b'{"a":1}')
    assert not is_canonical_json(b'{"a": 1}')
    assert not is_canonical_json(b'{"b":1,"a":2}')


def test_timestamp_micros_when_moment_is_aware_then_counts_exact_microseconds() -> None:
    moment = datetime(2024, 1, 1, tzinfo=timezone.utc) + timedelta(microseconds=7)
    assert timestamp_micros(moment) == 1_704_067_200_000_007
    offset = moment.astimezone(timezone(timedelta(hours=5)))
    assert timestamp_micros(offset) == 1_704_067_200_000_007


def test_timestamp_micros_when_moment_is_naive_then_raises() -> None:
    with pytest.raises(ValueError):
        timestamp_micros(datetime(2024, 1, 1))


@settings(max_examples=300, deadline=None)
@given(
    state=st.recursive(
        st.none() | st.booleans() | st.integers() | st.floats() | st.text(max_size=8),
        lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=6), inner, max_size=4),
        max_leaves=40,
    ).map(lambda value: {"v": value})
)
def test_loads_canonical_when_any_json_object_then_equals_the_generic_walk_or_declines(state) -> None:
    text = json.dumps(state, ensure_ascii=bool(len(str(state)) % 2))
    fast = loads_canonical(text)
    try:
        generic = canonical_json(json.loads(text))
    except (TypeError, ValueError):
        generic = None
    if fast is None:
        # Declined: only where the walk refuses (a float) or brackets enough to nest too deep.
        assert generic is None or text.count("[") + text.count("{") > 32
    else:
        assert fast == (json.loads(text), generic)
        assert canonical_state(generic) == json.loads(text)


def test_loads_canonical_when_nested_past_the_depth_limit_then_declines_and_the_walk_refuses() -> None:
    text = '{"a":' + "[" * 32 + "1" + "]" * 32 + "}"
    assert loads_canonical(text) is None
    with pytest.raises(ValueError):
        canonical_json(json.loads(text))
