"""A deep copy of an aggregate's state that knows what cannot change.

The library's aggregate cache hands out a ``copy.deepcopy`` of the cached aggregate on every
load, so a command that fails leaves the cache as it was. ``deepcopy`` visits every object of
the state, and a market's state grows with its history (a position id per position, a price
point per trade in the averaging window): on a market with a thousand positions the copy was
the largest single cost of a market order.

Most of that state cannot change in place: strings, integers, datetimes, and the tuples the
aggregates build only from such values. Those are shared between the copy and the original;
dicts and lists are copied (a list of immutable values in one C-level call); anything else
falls back to ``copy.deepcopy``. The copy is as independent as ``deepcopy``'s for every
mutation the domain makes, which tests/unit/test_aggregate_copy.py checks on the aggregates of
a rich scenario.

The rule this relies on: a tuple in an aggregate's state holds only immutable values (an
aggregate that needs a mutable sequence uses a list).
"""

from __future__ import annotations

import copy
from datetime import date, datetime, timedelta
from decimal import Decimal
from fractions import Fraction
from typing import Any
from uuid import UUID

# Values that cannot change in place, shared by the copy. Tuples are on the list by the rule above.
IMMUTABLE: frozenset[type] = frozenset(
    {str, int, bool, float, bytes, type(None), Decimal, Fraction, datetime, date, timedelta, UUID, tuple, frozenset}
)


def copy_state(value: Any, memo: dict[int, Any] | None = None) -> Any:
    """A copy of ``value`` that shares no mutable object with it."""
    kind = type(value)
    if kind in IMMUTABLE:
        return value
    if kind is dict:
        return {key: copy_state(item, memo) for key, item in value.items()}
    if kind is list:
        if set(map(type, value)) <= IMMUTABLE:
            return list(value)
        return [copy_state(item, memo) for item in value]
    return copy.deepcopy(value, memo)


class CheapCopy:
    """Mixed into an aggregate: ``copy.deepcopy(aggregate)`` copies its state with
    ``copy_state`` instead of visiting every immutable value."""

    def __deepcopy__(self, memo: dict[int, Any]) -> Any:
        duplicate = object.__new__(type(self))
        memo[id(self)] = duplicate
        duplicate.__dict__.update({name: copy_state(value, memo) for name, value in self.__dict__.items()})
        return duplicate
