"""Stable topics and validated payloads for stored events.

eventsourcing names a stored event by ``module:qualname`` unless told otherwise, so
moving a class to another module would orphan every stored event of that class.
Here each aggregate class and event class is registered under a stable name such as
``stakeledger:Account.Credited``; the mapper below writes those names and resolves
them on the way back, whatever module the class lives in today.

The mapper also validates every event payload with a strict pydantic model derived
from the event's annotations before it is written: an int field refuses floats and
bools, a string field refuses numbers. Validation runs once, on the way in.
"""

from __future__ import annotations

import dataclasses
from typing import Any, get_type_hints

from eventsourcing.domain import CanMutateAggregate, Snapshot
from eventsourcing.persistence import Mapper, StoredEvent
from eventsourcing.utils import get_topic, register_topic
from pydantic import BaseModel, ConfigDict, ValidationError, create_model

from stakeledger.domain.errors import InvalidInputError

TOPIC_PREFIX = "stakeledger:"

_stable_by_class: dict[type, str] = {}
_stable_by_module_topic: dict[str, str] = {}
_payload_models: dict[type, type[BaseModel]] = {}

# Fields every aggregate event has; they are not part of the domain payload.
_BASE_FIELDS = frozenset({"originator_id", "originator_version", "timestamp", "originator_topic"})


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


def registered_event_classes() -> dict[str, type]:
    return {topic: cls for cls, topic in _stable_by_class.items() if issubclass(cls, CanMutateAggregate)}


def payload_model(event_class: type) -> type[BaseModel]:
    """A strict pydantic model of the event's own fields, built once per class."""
    model = _payload_models.get(event_class)
    if model is None:
        hints = get_type_hints(event_class, include_extras=True)
        fields: dict[str, Any] = {
            field.name: (hints[field.name], ...)
            for field in dataclasses.fields(event_class)
            if field.name not in _BASE_FIELDS
        }
        model = create_model(
            f"{event_class.__qualname__}Payload",
            __config__=ConfigDict(strict=True, extra="forbid", arbitrary_types_allowed=True),
            **fields,
        )
        _payload_models[event_class] = model
    return model


def validate_payload(event_class: type, state: dict[str, Any]) -> None:
    payload = {key: value for key, value in state.items() if key not in _BASE_FIELDS}
    try:
        payload_model(event_class).model_validate(payload)
    except ValidationError as error:
        first = error.errors()[0]
        location = ".".join(str(part) for part in first["loc"])
        raise InvalidInputError(
            f"{event_class.__qualname__}.{location}: {first['msg']} (got {first.get('input')!r})"
        ) from None


class StableTopicMapper(Mapper):
    """Writes stable topics and validated payloads; reads them back through the registry."""

    def to_stored_event(self, domain_event: Any) -> StoredEvent:
        event_class = type(domain_event)
        if event_class not in _stable_by_class:
            return self._to_stored_snapshot(domain_event)
        topic = stable_topic(event_class)
        event_state = dict(vars(domain_event))
        validate_payload(event_class, event_state)
        originator_topic = event_state.get("originator_topic")
        if originator_topic is not None:
            event_state["originator_topic"] = _stable_by_module_topic.get(originator_topic, originator_topic)
        originator_id = event_state.pop("originator_id")
        originator_version = event_state.pop("originator_version")
        class_version = getattr(event_class, "class_version", 1)
        if class_version > 1:
            event_state["class_version"] = class_version
        return StoredEvent(
            originator_id=originator_id,
            originator_version=originator_version,
            topic=topic,
            state=self.transcoder.encode(event_state),
        )

    def _to_stored_snapshot(self, snapshot: Any) -> StoredEvent:
        """Snapshots are a cache, not history: keep the library's format, but name the
        aggregate class by its stable topic so a snapshot survives a module rename too."""
        if not isinstance(snapshot, Snapshot):
            raise TypeError(f"{type(snapshot).__qualname__} has no stable topic; call register_aggregate")
        stored = super().to_stored_event(snapshot)
        state = self.transcoder.decode(stored.state)
        state["topic"] = _stable_by_module_topic.get(state["topic"], state["topic"])
        return StoredEvent(
            originator_id=stored.originator_id,
            originator_version=stored.originator_version,
            topic=stored.topic,
            state=self.transcoder.encode(state),
        )
