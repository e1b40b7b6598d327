"""The mapper between domain events and stored records.

It writes each event under its stable name (``stakeledger.domain.model.naming``) and
validates every payload with a strict pydantic model derived from the event's
annotations before it is written: an int field refuses floats and bools, a string field
refuses numbers. Validation runs once, on the way in. The store URL selects this mapper
by configuration (``MAPPER_TOPIC``), so the domain never imports it.
"""

from __future__ import annotations

import dataclasses
from typing import Any, get_type_hints

from eventsourcing.domain import Snapshot
from eventsourcing.persistence import Mapper, StoredEvent
from pydantic import BaseModel, ConfigDict, ValidationError, create_model

from stakeledger.domain.errors import InvalidInputError
from stakeledger.domain.model.naming import has_stable_topic, stable_topic, stable_topic_for_module_topic

_payload_models: dict[type, type[BaseModel]] = {}

# Fields every aggregate event has; they are not part of the domain payload.
_BASE_FIELDS = frozenset({"originator_id", "originator_version", "timestamp", "originator_topic"})


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
        if not has_stable_topic(event_class):
            return self._to_stored_snapshot(domain_event)
        topic = stable_topic(event_class)
        event_state = dict(vars(domain_event))
        validate_payload(event_class, event_state)
        originator_topic = event_state.get("originator_topic")
        if originator_topic is not None:
            event_state["originator_topic"] = stable_topic_for_module_topic(originator_topic)
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
        state["topic"] = stable_topic_for_module_topic(state["topic"])
        return StoredEvent(
            originator_id=stored.originator_id,
            originator_version=stored.originator_version,
            topic=stored.topic,
            state=self.transcoder.encode(state),
        )
