"""What every view is: named tables, a version, and one handler per event class.

A view is a fold of the log into rows. Its handlers receive ``(rows, position, event)``
and read and write rows only through ``rows`` (a ``projections.store.Rows``), so the
runner can write a whole page of changes and the view's tracking position in one
transaction. Handlers must be deterministic: the same events in the same order always
give the same rows, which is what makes a rebuild equal to the live view.

Adding a view: subclass ``View``, declare ``name``, ``tables`` and ``@handles`` methods,
and list it in ``projections.views.ALL_VIEWS``; on its first catch-up it backfills from
the start of the log. Handling a new event: add a ``@handles(NewEvent)`` method and bump
``version`` so existing stores rebuild the view. Events no view handles are never even
decoded, so unknown topics are ignored.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, ClassVar

from stakeledger.domain.model.naming import stable_topic
from stakeledger.projections.store import Rows, Table

Handler = Callable[[Any, Rows, int, Any], None]


def handles(*event_classes: type, where: Callable[[Any], bool] | None = None) -> Callable[[Handler], Handler]:
    """Mark a view method as the handler of these event classes. ``where`` narrows it to
    the events a stateless test accepts; the runner applies the test while it sorts a
    page into each view's work, so a view that wants one event in a hundred of a busy
    class does not pay a handler call for the other ninety-nine."""

    def mark(method: Handler) -> Handler:
        method.handled_events = event_classes  # type: ignore[attr-defined]
        method.handled_where = where  # type: ignore[attr-defined]
        return method

    return mark


class View:
    name: ClassVar[str]
    # Bump when the view's rows would come out differently: stores then rebuild it.
    version: ClassVar[int] = 1
    tables: ClassVar[tuple[Table, ...]]
    handlers: ClassVar[dict[type, Handler]]

    def __init_subclass__(cls, **kwargs: Any) -> None:
        super().__init_subclass__(**kwargs)
        found: dict[type, Handler] = {}
        for klass in reversed(cls.__mro__):
            for attribute in vars(klass).values():
                for event_class in getattr(attribute, "handled_events", ()):
                    found[event_class] = attribute
        cls.handlers = found

    @classmethod
    def topics(cls) -> tuple[str, ...]:
        return tuple(sorted(stable_topic(event_class) for event_class in cls.handlers))

    @classmethod
    def table(cls, name: str) -> Table:
        for table in cls.tables:
            if table.name == name:
                return table
        raise KeyError(f"view {cls.name!r} has no table {name!r}")

    @classmethod
    def tables_by_name(cls) -> dict[str, Table]:
        return {table.name: table for table in cls.tables}

    def dispatch(self) -> dict[type, Callable[[Rows, int, Any], None]]:
        """Event class -> bound handler: the runner's per-event lookup."""
        return {event_class: handler.__get__(self) for event_class, handler in self.handlers.items()}

    def accepts(self, event_class: type) -> Callable[[Any], bool] | None:
        """The ``where`` test of the handler of this event class, if it has one."""
        return getattr(self.handlers[event_class], "handled_where", None)

    def apply(self, rows: Rows, position: int, event: Any) -> None:
        """Apply one event, as the runner would (for tests and tools)."""
        handler = self.handlers.get(type(event))
        if handler is None:
            return
        where = getattr(handler, "handled_where", None)
        if where is None or where(event):
            handler(self, rows, position, event)


_last_iso: tuple[Any, str] = (None, "")


def iso(moment: Any) -> str | None:
    """ISO 8601 text of a timestamp. The events of one save share their timestamp, so the
    last conversion is remembered: a page of batched transfers converts once per save."""
    global _last_iso
    if moment is None:
        return None
    last_moment, last_text = _last_iso
    if moment == last_moment and moment.tzinfo is last_moment.tzinfo:
        return last_text
    text = moment.isoformat()
    _last_iso = (moment, text)
    return text
