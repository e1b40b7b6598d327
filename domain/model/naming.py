"""Stable names for stored events.

eventsourcing names a stored event by ``module:qualname`` unless told otherwise, so
moving a class to another module would orphan every stored event of that class.
Each aggregate class and event class is registered here under a stable name such as
``stakeledger:Account.Credited``; the mapper in ``stakeledger.adapters.persistence``
writes those names and resolves them on the way back, whatever module the class lives
in today. A name is part of the stored format: never change one.
"""

from __future__ import annotations

from eventsourcing.domain import CanMutateAggregate
from eventsourcing.utils import get_topic, register_topic

TOPIC_PREFIX = "stakeledger:"

_stable_by_class: dict[type, str] = {}
_stable_by_module_topic: dict[str, str] = {}


def register_aggregate(aggregate_class: type, name: str | None = None) -> type:
    """Register an aggregate class and every event class defined on it under stable topics."""
    name = name or aggregate_class.__name__
    _register(aggregate_class, f"{TOPIC_PREFIX}{name}")
    for attribute, value in vars(aggregate_class).items():
        if isinstance(value, type) and issubclass(value, CanMutateAggregate):
            if attribute in ("Event", "Created"):
                continue
            _register(value, f"{TOPIC_PREFIX}{name}.{attribute}")
    return aggregate_class


def _register(cls: type, stable: str) -> None:
    _stable_by_class[cls] = stable
    _stable_by_module_topic[get_topic(cls)] = stable
    register_topic(stable, cls)


def stable_topic(cls: type) -> str:
    try:
        return _stable_by_class[cls]
    except KeyError:
        raise TypeError(f"{cls.__qualname__} has no stable topic; call register_aggregate") from None


def has_stable_topic(cls: type) -> bool:
    return cls in _stable_by_class


def stable_topic_for_module_topic(topic: str) -> str:
    """The stable name of a class given by its ``module:qualname`` topic (unchanged if none)."""
    return _stable_by_module_topic.get(topic, topic)


def registered_event_classes() -> dict[str, type]:
    return {topic: cls for cls, topic in _stable_by_class.items() if issubclass(cls, CanMutateAggregate)}
